//! Strategic merge patch (`application/strategic-merge-patch+json`) on `serde_json::Value`.
//!
//! This is a port of the *apply* half of Kubernetes'
//! `k8s.io/apimachinery/pkg/util/strategicpatch` (as shipped with 1.33), driven by a
//! static schema table instead of Go struct tags. The observable rules:
//!
//! * maps merge recursively; `"k": null` deletes `k`;
//! * lists with strategy `merge` and a merge key match elements by that key, merge
//!   matched ones and add the others; lists of primitives with strategy `merge` are
//!   unions; every other list is replaced wholesale;
//! * directives: `$patch: replace | delete` (in maps and as list elements),
//!   `$deleteFromPrimitiveList/<f>`, `$setElementOrder/<f>`, `$retainKeys`;
//! * the resulting order of a merged list follows Kubernetes exactly: patch items in patch
//!   (or `$setElementOrder`) order, server-only items interleaved where they were.
//!
//! After merging, the result is "decoded" the way kube-apiserver's typed decode would see
//! it: `null` map values and directive keys that Kubernetes leaves behind inside
//! verbatim-copied patch content are dropped, so directives never reach storage.
//!
//! Known differences from Kubernetes (all in inputs kubectl never produces):
//! * a field missing from the schema table is handled as a plain field (maps merged,
//!   lists replaced) where Go fails with `unable to find api field in struct ...` when
//!   the field is present in both the object and the patch (e.g. inside
//!   ControllerRevision `data`);
//! * where Go would crash (maps used as list keys of an atomic list with
//!   `$setElementOrder`), this code returns some order instead;
//! * when a patch has both `f` and `$deleteFromPrimitiveList/f` (Go: random map order),
//!   deletions run after the merge.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Deeper documents are refused instead of risking the stack (serde_json's own parser
/// stops at 128 levels, so real requests never get close).
const MAX_DEPTH: usize = 512;
/// Error messages embed Go-formatted maps; keep them bounded.
const MAX_ERROR_VALUE_CHARS: usize = 4096;

/// Why a strategic merge patch could not be applied. `Display` is the message
/// kube-apiserver puts into the `Status`; [`PatchError::status_code`] is the HTTP code it uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The object or the patch is not a JSON object.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// A list whose elements are lists.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// Malformed `$deleteFromPrimitiveList` key.
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    /// `$retainKeys` not a list, or the patch sets a key the list does not retain.
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    /// Malformed `$setElementOrder` key.
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    /// A list element without the declared merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The element, Go-formatted (`map[k:v]`).
        map: String,
        /// The merge key.
        key: String,
    },
    /// `$patch` with an unknown value.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType {
        /// The directive value, Go-formatted.
        directive: String,
        /// The map holding it, Go-formatted.
        map: String,
    },
    /// A value of an unexpected JSON type.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// Go type name expected.
        expected: &'static str,
        /// Go type name received.
        actual: String,
    },
    /// Mixed element types in a merged list.
    #[error("list element types are not identical: {0}")]
    ElementTypesNotIdentical(String),
    /// A `$setElementOrder` directive for an empty list.
    #[error("no elements in any of the given slices")]
    NoElements,
    /// `{"$patch": "merge"}` as a list element.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A merged list of maps whose schema declares no merge key.
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKeyForList(String),
    /// The patch list and its `$setElementOrder` list disagree.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch {
        /// The patch list, Go-formatted.
        patch: String,
        /// The order list, Go-formatted.
        order: String,
    },
    /// A list searched by merge key holds a non-map element.
    #[error("value for key {0} is not a map.")]
    NotAMap(usize),
    /// The document nests deeper than [`MAX_DEPTH`].
    #[error("the patch or the object nests too deeply")]
    TooDeep,
}

impl PatchError {
    /// HTTP status kube-apiserver answers with (`interpretStrategicMergePatchError`):
    /// 400 for malformed directives, 422 for lists of lists, 500 (reason unknown) for the
    /// rest, which kubectl prints as `Error from server: <message>`.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadJsonDoc
            | PatchError::BadPatchFormatForPrimitiveList
            | PatchError::BadPatchFormatForRetainKeys
            | PatchError::BadPatchFormatForSetElementOrderList
            | PatchError::TooDeep => 400,
            PatchError::NoListOfLists => 422,
            _ => 500,
        }
    }
}

type Result<T, E = PatchError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------
// Schema table
// ---------------------------------------------------------------------------------------

/// The Go types whose fields carry patch metadata (or lead to such fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    /// No metadata: maps merge, lists are replaced.
    Unknown,
    /// An object of a kind without special fields: only `metadata` has rules.
    GenericRoot,
    PodRoot,
    NodeRoot,
    DaemonSetRoot,
    NamespaceRoot,
    ServiceRoot,
    PodTemplateRoot,
    ObjectMeta,
    PodTemplateSpec,
    PodSpec,
    Container,
    PodStatus,
    NodeSpec,
    NodeStatus,
    DaemonSetSpec,
    DaemonSetStatus,
    NamespaceStatus,
    ServiceSpec,
    ServiceStatus,
}

/// Patch metadata of one field.
#[derive(Clone, Copy, Debug)]
struct FieldMeta {
    /// `patchStrategy:"merge"` (possibly with retainKeys, which only matters to diffing).
    merge: bool,
    /// `patchMergeKey`; `None` for primitive lists and non-merge fields.
    key: Option<&'static str>,
    /// The field's (element) type.
    child: Ty,
}

const PLAIN: FieldMeta = FieldMeta {
    merge: false,
    key: None,
    child: Ty::Unknown,
};

const fn nested(child: Ty) -> FieldMeta {
    FieldMeta {
        merge: false,
        key: None,
        child,
    }
}
const fn merge_by(key: &'static str, child: Ty) -> FieldMeta {
    FieldMeta {
        merge: true,
        key: Some(key),
        child,
    }
}
const MERGE_PRIMITIVES: FieldMeta = FieldMeta {
    merge: true,
    key: None,
    child: Ty::Unknown,
};

fn root_type(kind: &str) -> Ty {
    match kind {
        "Pod" => Ty::PodRoot,
        "Node" => Ty::NodeRoot,
        "DaemonSet" => Ty::DaemonSetRoot,
        "Namespace" => Ty::NamespaceRoot,
        "Service" => Ty::ServiceRoot,
        "PodTemplate" => Ty::PodTemplateRoot,
        _ => Ty::GenericRoot,
    }
}

fn field_meta(ty: Ty, field: &str) -> FieldMeta {
    use Ty::*;
    match (ty, field) {
        (
            GenericRoot | PodRoot | NodeRoot | DaemonSetRoot | NamespaceRoot | ServiceRoot
            | PodTemplateRoot,
            "metadata",
        ) => nested(ObjectMeta),
        (PodRoot, "spec") => nested(PodSpec),
        (PodRoot, "status") => nested(PodStatus),
        (NodeRoot, "spec") => nested(NodeSpec),
        (NodeRoot, "status") => nested(NodeStatus),
        (DaemonSetRoot, "spec") => nested(DaemonSetSpec),
        (DaemonSetRoot, "status") => nested(DaemonSetStatus),
        (NamespaceRoot, "status") => nested(NamespaceStatus),
        (ServiceRoot, "spec") => nested(ServiceSpec),
        (ServiceRoot, "status") => nested(ServiceStatus),
        (PodTemplateRoot, "template") => nested(PodTemplateSpec),

        (ObjectMeta, "ownerReferences") => merge_by("uid", Unknown),
        (ObjectMeta, "finalizers") => MERGE_PRIMITIVES,

        (PodTemplateSpec, "metadata") => nested(ObjectMeta),
        (PodTemplateSpec, "spec") => nested(PodSpec),

        (PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
            merge_by("name", Container)
        }
        (PodSpec, "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims") => {
            merge_by("name", Unknown)
        }
        (PodSpec, "hostAliases") => merge_by("ip", Unknown),
        (PodSpec, "topologySpreadConstraints") => merge_by("topologyKey", Unknown),

        (Container, "env") => merge_by("name", Unknown),
        (Container, "ports") => merge_by("containerPort", Unknown),
        (Container, "volumeMounts") => merge_by("mountPath", Unknown),
        (Container, "volumeDevices") => merge_by("devicePath", Unknown),

        (PodStatus, "conditions") => merge_by("type", Unknown),
        (PodStatus, "podIPs" | "hostIPs") => merge_by("ip", Unknown),
        (PodStatus, "resourceClaimStatuses") => merge_by("name", Unknown),

        (NodeSpec, "podCIDRs") => MERGE_PRIMITIVES,
        (NodeStatus, "conditions" | "addresses") => merge_by("type", Unknown),

        (DaemonSetSpec, "template") => nested(PodTemplateSpec),
        (DaemonSetStatus, "conditions") => merge_by("type", Unknown),
        (NamespaceStatus, "conditions") => merge_by("type", Unknown),
        (ServiceSpec, "ports") => merge_by("port", Unknown),
        (ServiceStatus, "conditions") => merge_by("type", Unknown),
        _ => PLAIN,
    }
}

/// A place in an object's schema, for walking it field by field with the list rules
/// strategic merge uses (server-side apply's field sets follow the same keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position(Ty);

/// How a field's value is merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListRule {
    /// Not a list with merge semantics: a map merges, a list is replaced as a whole.
    Plain,
    /// A list whose items are matched by this key.
    Keyed(&'static str),
    /// A list of primitives merged as a set.
    Set,
}

impl Position {
    /// The top of an object of `kind`.
    pub fn root(kind: &str) -> Position {
        Position(root_type(kind))
    }

    /// Field `name` of an object at this position: how its value merges, and the
    /// position of the value (of its items, for a list).
    pub fn field(self, name: &str) -> (ListRule, Position) {
        let meta = field_meta(self.0, name);
        let rule = match (meta.merge, meta.key) {
            (true, Some(k)) => ListRule::Keyed(k),
            (true, None) => ListRule::Set,
            (false, _) => ListRule::Plain,
        };
        (rule, Position(meta.child))
    }
}

// ---------------------------------------------------------------------------------------
// Go value model helpers
// ---------------------------------------------------------------------------------------

/// The Go dynamic type a JSON value decodes to in apimachinery (`int64` when the number
/// is integral and fits, otherwise `float64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GoKind {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

fn go_kind(v: &Value) -> GoKind {
    match v {
        Value::Null => GoKind::Nil,
        Value::Bool(_) => GoKind::Bool,
        Value::Number(n) => {
            if n.as_i64().is_some() {
                GoKind::Int
            } else {
                GoKind::Float
            }
        }
        Value::String(_) => GoKind::String,
        Value::Array(_) => GoKind::Slice,
        Value::Object(_) => GoKind::Map,
    }
}

fn go_type_name(v: &Value) -> &'static str {
    match go_kind(v) {
        GoKind::Nil => "%!s(<nil>)",
        GoKind::Bool => "bool",
        GoKind::Int => "int64",
        GoKind::Float => "float64",
        GoKind::String => "string",
        GoKind::Slice => "[]interface {}",
        GoKind::Map => "map[string]interface {}",
    }
}

const GO_MAP: &str = "map[string]interface {}";
const GO_SLICE: &str = "[]interface {}";

fn bad_arg(expected: &'static str, actual: &Value) -> PatchError {
    PatchError::BadArgType {
        expected,
        actual: go_type_name(actual).to_string(),
    }
}

/// `fmt.Sprintf("%v", v)` of a decoded JSON value, bounded in length.
fn go_fmt(v: &Value) -> String {
    let mut out = String::new();
    go_fmt_into(v, &mut out, 0);
    if out.len() > MAX_ERROR_VALUE_CHARS {
        let mut cut = MAX_ERROR_VALUE_CHARS;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

fn go_fmt_into(v: &Value, out: &mut String, depth: usize) {
    if out.len() > MAX_ERROR_VALUE_CHARS || depth > 64 {
        out.push_str("...");
        return;
    }
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(f) = n.as_f64() {
                out.push_str(&go_fmt_float(f));
            }
        }
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_fmt_into(e, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                if let Some(e) = m.get(k) {
                    go_fmt_into(e, out, depth + 1);
                }
            }
            out.push(']');
        }
    }
}

/// Go's `%v` for float64 (`strconv.FormatFloat(f, 'g', -1, 64)` with Go's exponent style).
fn go_fmt_float(f: f64) -> String {
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i64
    };
    if (-4..21).contains(&exp) {
        format!("{f}")
    } else {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mant, e)) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                let digits = if digits.len() < 2 {
                    format!("0{digits}")
                } else {
                    digits.to_string()
                };
                format!("{mant}e{sign}{digits}")
            }
            None => s,
        }
    }
}

/// Go's `%s` of a decoded JSON value (a non-string prints as `%!s(type=value)`).
fn go_fmt_directive(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        other => format!("%!s({}={})", go_type_name(other), go_fmt(other)),
    }
}

/// A hashable identity for Go interface equality of scalars (type and value).
fn identity(v: Option<&Value>) -> String {
    match v {
        None => "\u{0}absent".to_string(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------

/// Applies a strategic merge patch to `original`, using the patch schema of `kind`
/// (`"Pod"`, `"DaemonSet"`, ...; unknown kinds get the `metadata` rules only).
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    kind: &str,
) -> Result<Value, PatchError> {
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::BadJsonDoc),
    };
    let patch = match patch {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::BadJsonDoc),
    };
    let merged = merge_map(original, patch, root_type(kind), 0)?;
    let mut out = Value::Object(merged);
    // A ControllerRevision's `data` is a raw extension: decoding keeps it byte for byte,
    // directives and nulls included (DaemonSet revisions carry `$patch: replace`).
    let raw = match (kind, out.as_object_mut()) {
        ("ControllerRevision", Some(m)) => m.remove("data"),
        _ => None,
    };
    typed_decode_cleanup(&mut out, 0);
    if let (Some(data), Some(m)) = (raw, out.as_object_mut()) {
        m.insert("data".into(), data);
    }
    Ok(out)
}

/// What kube-apiserver's typed decode does with the merged map: `null` fields become
/// absent and directive keys (unknown fields) disappear. Go leaves them in patch content
/// it copies verbatim (new list elements, `$patch: replace` maps, replaced lists).
fn typed_decode_cleanup(v: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            m.retain(|k, v| !v.is_null() && !is_directive_key(k));
            for (_, child) in m.iter_mut() {
                typed_decode_cleanup(child, depth + 1);
            }
        }
        Value::Array(a) => {
            for child in a.iter_mut() {
                typed_decode_cleanup(child, depth + 1);
            }
        }
        _ => {}
    }
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE_MARKER
        || k == RETAIN_KEYS_DIRECTIVE
        || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

// ---------------------------------------------------------------------------------------
// Fresh values (Kubernetes' discardNullValuesFromPatch + removeDirectives)
// ---------------------------------------------------------------------------------------

/// Drops `null` map values everywhere (list elements that are `null` stay).
fn discard_nulls(v: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for (_, child) in m.iter_mut() {
                discard_nulls(child, depth + 1);
            }
        }
        Value::Array(a) => {
            for child in a.iter_mut() {
                discard_nulls(child, depth + 1);
            }
        }
        _ => {}
    }
}

/// Removes every map carrying a `$patch` key (and the field or list slot holding it).
/// Returns `None` when `v` itself is such a map.
fn remove_directives(v: Value, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return Some(v);
    }
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let mut out = Map::with_capacity(m.len());
            for (k, child) in m {
                if let Some(c) = remove_directives(child, depth + 1) {
                    out.insert(k, c);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter()
                .filter_map(|c| remove_directives(c, depth + 1))
                .collect(),
        )),
        other => Some(other),
    }
}

fn fresh_value(mut v: Value, depth: usize) -> Option<Value> {
    discard_nulls(&mut v, depth);
    remove_directives(v, depth)
}

// ---------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Ty,
    depth: usize,
) -> Result<Map<String, Value>> {
    if depth > MAX_DEPTH {
        return Err(PatchError::TooDeep);
    }
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.remove(DIRECTIVE_MARKER);
                Ok(patch)
            }
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(PatchError::BadPatchType {
                directive: go_fmt_directive(directive),
                map: go_fmt(&Value::Object(patch.clone())),
            }),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, ty, depth)?;

    // Deletion lists run after the other keys (Go iterates in random order).
    let mut deletions = Vec::new();
    for (k, patch_v) in patch {
        if k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            let key = extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?;
            if !key.is_empty() {
                deletions.push((key.to_string(), patch_v));
            }
            continue;
        }
        merge_field(&mut original, k, patch_v, false, ty, depth)?;
    }
    for (k, patch_v) in deletions {
        merge_field(&mut original, k, patch_v, true, ty, depth)?;
    }
    Ok(original)
}

fn merge_field(
    original: &mut Map<String, Value>,
    k: String,
    patch_v: Value,
    is_delete_list: bool,
    ty: Ty,
    depth: usize,
) -> Result<()> {
    if patch_v.is_null() {
        original.remove(&k);
        return Ok(());
    }
    let Some(orig_v) = original.get_mut(&k) else {
        if !is_delete_list && let Some(v) = fresh_value(patch_v, depth) {
            original.insert(k, v);
        }
        return Ok(());
    };
    let kind = go_kind(orig_v);
    if kind != go_kind(&patch_v) {
        if !is_delete_list {
            match fresh_value(patch_v, depth) {
                Some(v) => *orig_v = v,
                None => {
                    original.remove(&k);
                }
            }
        }
        return Ok(());
    }
    let meta = field_meta(ty, &k);
    match (orig_v.take(), patch_v) {
        (Value::Object(o), Value::Object(p)) => {
            *orig_v = Value::Object(merge_map(o, p, meta.child, depth + 1)?);
        }
        (Value::Array(o), Value::Array(p)) => {
            *orig_v = Value::Array(merge_slice_handler(o, p, meta, is_delete_list, depth + 1)?);
        }
        (_, p) => *orig_v = p,
    }
    Ok(())
}

fn extract_key<'a>(s: &'a str, prefix: &str) -> Result<&'a str> {
    match s.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest),
        _ => Err(if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX {
            PatchError::BadPatchFormatForPrimitiveList
        } else {
            PatchError::BadPatchFormatForSetElementOrderList
        }),
    }
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(list) = retain else {
        return Err(PatchError::BadPatchFormatForRetainKeys);
    };
    let retained: std::collections::HashSet<&str> = list.iter().filter_map(Value::as_str).collect();
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained.contains(k.as_str()) {
            return Err(PatchError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|k, _| retained.contains(k.as_str()));
    Ok(())
}

/// `mergePatchIntoOriginal`: handles each `$setElementOrder/<f>` together with `<f>`.
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: Ty,
    depth: usize,
) -> Result<()> {
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for order_key in order_keys {
        let Some(order_v) = patch.remove(&order_key) else {
            continue;
        };
        let Value::Array(order) = order_v else {
            return Err(bad_arg(GO_SLICE, &order_v));
        };
        let field = extract_key(&order_key, SET_ELEMENT_ORDER_PREFIX)?.to_string();

        let original_list = match original.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg(GO_SLICE, other)),
        };
        let patch_list = match patch.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg(GO_SLICE, other)),
        };
        let meta = field_meta(ty, &field);
        let merge_key = if meta.merge { meta.key } else { None };
        validate_patch_with_set_order_list(patch_list.as_deref(), &order, merge_key)?;

        let merged = match (&original_list, &patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => match remove_directives(Value::Array(p.clone()), depth) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            (Some(o), Some(p)) => {
                merge_slice_handler(o.clone(), p.clone(), meta, false, depth + 1)?
            }
            (None, None) => continue,
        };

        let (patch_items, server_only) = match merge_key {
            None => partition_primitives(merged, &order),
            Some(key) => partition_maps(merged, &order, key)?,
        };
        let orig_slice = original_list.as_deref().unwrap_or(&[]);
        let kind = slice_element_type(&[orig_slice, patch_list.as_deref().unwrap_or(&[])])?;
        let server_order = match (merge_key, &patch_list) {
            (Some(key), Some(p)) if kind == GoKind::Map => aliased_server_order(orig_slice, p, key),
            _ => orig_slice.to_vec(),
        };
        let both = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &server_order,
            merge_key,
            kind,
        )?;
        original.insert(field.clone(), Value::Array(both));
        patch.remove(&field);
    }
    Ok(())
}

/// The live list as Go's `mergePatchIntoOriginal` sees it *after* merging.
///
/// Go merges into the live list's backing array in place: `$patch: delete` elements are
/// removed by shifting the tail left, and new elements are appended into the freed slots.
/// The length-n view of the live list, which then orders the server-only items, therefore
/// shows the survivors, then the first appended elements, then stale copies of the old
/// tail. Only merge keys matter for ordering, so that is all this keeps.
fn aliased_server_order(original: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let n = original.len();
    let mut slots: Vec<Option<Value>> = original.iter().map(|o| o.get(key).cloned()).collect();
    let mut len = n;
    let mut replace = false;
    for p in patch {
        match p.get(DIRECTIVE_MARKER).and_then(Value::as_str) {
            Some(DELETE_DIRECTIVE) => {
                let target = p.get(key);
                while let Some(i) = slots.iter().take(len).position(|s| s.as_ref() == target) {
                    for j in i..len.saturating_sub(1) {
                        if let Some(next) = slots.get(j + 1).cloned()
                            && let Some(slot) = slots.get_mut(j)
                        {
                            *slot = next;
                        }
                    }
                    len -= 1;
                }
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            _ => {}
        }
    }
    if !replace {
        for p in patch {
            if p.get(DIRECTIVE_MARKER).is_some() {
                continue;
            }
            let kv = p.get(key).cloned();
            if slots.iter().take(len).any(|s| *s == kv) {
                continue;
            }
            match slots.get_mut(len) {
                Some(slot) => *slot = kv,
                None => slots.push(kv),
            }
            len += 1;
        }
    }
    slots
        .into_iter()
        .take(n)
        .map(|kv| {
            let mut m = Map::new();
            if let Some(kv) = kv {
                m.insert(key.to_string(), kv);
            }
            Value::Object(m)
        })
        .collect()
}

fn validate_patch_with_set_order_list(
    patch_list: Option<&[Value]>,
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<()> {
    let patch_list = patch_list.unwrap_or(&[]);
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_some() {
        let mut v = Vec::new();
        for item in patch_list {
            let Value::Object(m) = item else {
                return Err(bad_arg(GO_MAP, item));
            };
            if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE) {
                v.push(item);
            }
        }
        v
    } else {
        patch_list.iter().collect()
    };
    let (mut pi, mut oi) = (0usize, 0usize);
    while let (Some(p), Some(o)) = (non_delete.get(pi), order.get(oi)) {
        if matches!(p, Value::Object(m) if m.contains_key(DIRECTIVE_MARKER)) {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(p, o, merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(PatchError::SetElementOrderMismatch {
            patch: go_fmt(&Value::Array(patch_list.to_vec())),
            order: go_fmt(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: Option<&str>) -> Result<bool> {
    let Some(key) = merge_key else {
        return Ok(left == right);
    };
    let Value::Object(l) = left else {
        return Err(bad_arg(GO_MAP, left));
    };
    let Value::Object(r) = right else {
        return Err(bad_arg(GO_MAP, right));
    };
    let lk = l.get(key).ok_or_else(|| no_merge_key(l, key))?;
    let rk = r.get(key).ok_or_else(|| no_merge_key(r, key))?;
    Ok(lk == rk)
}

fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: go_fmt(&Value::Object(m.clone())),
        key: key.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
    is_delete_list: bool,
    depth: usize,
) -> Result<Vec<Value>> {
    if meta.merge || is_delete_list {
        merge_slice(original, patch, meta, is_delete_list, depth)
    } else {
        Ok(patch)
    }
}

fn slice_element_type(slices: &[&[Value]]) -> Result<GoKind> {
    let mut prev: Option<GoKind> = None;
    for s in slices {
        for v in s.iter() {
            let k = go_kind(v);
            match prev {
                None => {
                    if k == GoKind::Slice {
                        return Err(PatchError::NoListOfLists);
                    }
                    prev = Some(k);
                }
                Some(p) if p != k => {
                    let all: Vec<Value> = slices.iter().map(|s| Value::Array(s.to_vec())).collect();
                    return Err(PatchError::ElementTypesNotIdentical(go_fmt(&Value::Array(
                        all,
                    ))));
                }
                Some(_) => {}
            }
        }
    }
    prev.ok_or(PatchError::NoElements)
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
    is_delete_list: bool,
    depth: usize,
) -> Result<Vec<Value>> {
    if depth > MAX_DEPTH {
        return Err(PatchError::TooDeep);
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_type(&[&original, &patch])?;
    let merge_key = meta.key;

    let (merged, server_order, patch_order) = if kind != GoKind::Map {
        if is_delete_list {
            let doomed: std::collections::HashSet<String> =
                patch.iter().map(|v| identity(Some(v))).collect();
            return Ok(original
                .into_iter()
                .filter(|v| !doomed.contains(&identity(Some(v))))
                .collect());
        }
        let mut seen = std::collections::HashSet::new();
        let merged: Vec<Value> = original
            .iter()
            .chain(patch.iter())
            .filter(|v| seen.insert(identity(Some(v))))
            .cloned()
            .collect();
        (merged, original, patch)
    } else {
        let Some(key) = merge_key else {
            let elem = if meta.merge { "string" } else { "struct" };
            return Err(PatchError::NoMergeKeyForList(format!("type {elem}")));
        };
        let (original, patch) = merge_slice_with_special_elements(original, patch, key)?;
        let merged =
            merge_slice_without_special_elements(original.clone(), &patch, key, meta.child, depth)?;
        (merged, original, patch)
    };

    let (patch_items, server_only) = match merge_key {
        None => partition_primitives(merged, &patch_order),
        Some(key) => partition_maps(merged, &patch_order, key)?,
    };
    normalize_element_order(
        patch_items,
        server_only,
        &patch_order,
        &server_order,
        merge_key,
        kind,
    )
}

fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = &v else {
            return Err(bad_arg(GO_MAP, &v));
        };
        let Some(directive) = m.get(DIRECTIVE_MARKER) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let Some(target) = m.get(key) else {
                    return Err(no_merge_key(m, key));
                };
                for o in &original {
                    if !o.is_object() {
                        return Err(bad_arg(GO_MAP, o));
                    }
                }
                original.retain(|o| o.get(key) != Some(target));
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => return Err(PatchError::MergeDirectiveInList),
            _ => {
                return Err(PatchError::BadPatchType {
                    directive: go_fmt_directive(directive),
                    map: go_fmt(&v),
                });
            }
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
    elem_ty: Ty,
    depth: usize,
) -> Result<Vec<Value>> {
    for v in patch {
        let Value::Object(pm) = v else {
            return Err(bad_arg(GO_MAP, v));
        };
        let Some(merge_value) = pm.get(key) else {
            return Err(no_merge_key(pm, key));
        };
        let mut found = None;
        for (i, o) in original.iter().enumerate() {
            let Value::Object(om) = o else {
                return Err(PatchError::BadArgType {
                    expected: GO_MAP,
                    actual: go_type_name(o).to_string(),
                });
            };
            if om.get(key) == Some(merge_value) {
                found = Some(i);
                break;
            }
        }
        match found.and_then(|i| original.get_mut(i).map(|slot| (i, slot))) {
            Some((_, slot)) => {
                let om = match slot.take() {
                    Value::Object(om) => om,
                    _ => Map::new(),
                };
                *slot = Value::Object(merge_map(om, pm.clone(), elem_ty, depth + 1)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

fn partition_primitives(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let present: std::collections::HashSet<String> = by.iter().map(|v| identity(Some(v))).collect();
    merged
        .into_iter()
        .partition(|v| present.contains(&identity(Some(v))))
}

fn partition_maps(merged: Vec<Value>, by: &[Value], key: &str) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut present = std::collections::HashSet::new();
    let mut not_a_map = None;
    for (i, b) in by.iter().enumerate() {
        match b {
            Value::Object(bm) => {
                if let Some(kv) = bm.get(key) {
                    present.insert(identity(Some(kv)));
                }
            }
            _ => {
                not_a_map = Some(i);
                break;
            }
        }
    }
    let mut patch_items = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let Value::Object(m) = &v else {
            return Err(bad_arg(GO_MAP, &v));
        };
        let Some(kv) = m.get(key) else {
            return Err(no_merge_key(m, key));
        };
        if let Some(i) = not_a_map {
            // Go's findMapInSliceBasedOnKeyValue fails on a non-map element.
            return Err(PatchError::NotAMap(i));
        }
        if present.contains(&identity(Some(kv))) {
            patch_items.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((patch_items, server_only))
}

/// The value a list element is ordered by: its merge key value for maps, itself otherwise.
fn order_identity(item: &Value, merge_key: Option<&str>, kind: GoKind) -> String {
    if kind == GoKind::Map {
        let key = merge_key.unwrap_or("");
        identity(item.as_object().and_then(|m| m.get(key)))
    } else {
        identity(Some(item))
    }
}

/// First index of every identity in `order`.
fn order_index(order: &[Value], merge_key: Option<&str>, kind: GoKind) -> HashMap<String, usize> {
    let mut idx = HashMap::with_capacity(order.len());
    for (i, v) in order.iter().enumerate() {
        idx.entry(order_identity(v, merge_key, kind)).or_insert(i);
    }
    idx
}

fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
    kind: GoKind,
) -> Result<Vec<Value>> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
    kind: GoKind,
) -> Result<Vec<Value>> {
    let (mut keep, to_delete) = if kind == GoKind::Map {
        let key = merge_key.unwrap_or("");
        for item in to_sort.iter().chain(order.iter()) {
            let Value::Object(m) = item else {
                return Err(bad_arg(GO_MAP, item));
            };
            if !m.contains_key(key) {
                return Err(no_merge_key(m, key));
            }
        }
        to_sort.into_iter().partition::<Vec<Value>, _>(|v| {
            v.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE)
        })
    } else {
        (to_sort, Vec::new())
    };
    let idx = order_index(order, merge_key, kind);
    // Stable; elements missing from `order` (never the case for inputs that reach here
    // in Go without its comparator misbehaving) go last.
    keep.sort_by_key(|v| {
        idx.get(&order_identity(v, merge_key, kind))
            .copied()
            .unwrap_or(usize::MAX)
    });
    keep.extend(to_delete);
    Ok(keep)
}

fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: Option<&str>,
    kind: GoKind,
) -> Vec<Value> {
    let idx = order_index(server_order, merge_key, kind);
    let pos = |v: &Value| idx.get(&order_identity(v, merge_key, kind)).copied();
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        let take_left = matches!((pos(l), pos(r)), (Some(li), Some(ri)) if li < ri);
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out.extend(left);
    out.extend(right);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(o: Value, p: Value, kind: &str) -> Value {
        strategic_merge_patch(&o, &p, kind).unwrap()
    }

    #[test]
    fn controller_revision_data_is_kept_verbatim() {
        let original = serde_json::json!({
            "metadata": { "name": "r" },
            "data": { "spec": { "template": { "$patch": "replace", "metadata": { "creationTimestamp": null } } } },
        });
        let patch = serde_json::json!({ "metadata": { "labels": { "a": "b" } } });
        let out = strategic_merge_patch(&original, &patch, "ControllerRevision").expect("patch");
        assert_eq!(out["data"], original["data"]);
        assert_eq!(out["metadata"]["labels"]["a"], "b");
    }

    #[test]
    fn null_deletes_and_maps_merge() {
        let out = smp(
            json!({"metadata":{"labels":{"a":"1","b":"2"}}}),
            json!({"metadata":{"labels":{"a":null,"c":"3"}}}),
            "Pod",
        );
        assert_eq!(out, json!({"metadata":{"labels":{"b":"2","c":"3"}}}));
    }

    #[test]
    fn new_items_go_before_server_only_items() {
        let out = smp(
            json!({"status":{"conditions":[{"type":"A"}]}}),
            json!({"status":{"conditions":[{"type":"B"}]}}),
            "Pod",
        );
        assert_eq!(
            out,
            json!({"status":{"conditions":[{"type":"B"},{"type":"A"}]}})
        );
    }

    #[test]
    fn error_messages_match_go() {
        let e = strategic_merge_patch(
            &json!({"spec":{"containers":[{"name":"a"}]}}),
            &json!({"spec":{"containers":[{"image":"x"}]}}),
            "Pod",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "map: map[image:x] does not contain declared merge key: name"
        );
        assert_eq!(e.status_code(), 500);
        let e = strategic_merge_patch(
            &json!({"spec":{}}),
            &json!({"spec":{"$patch":"foo"}}),
            "Pod",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown patch type: foo in map: map[$patch:foo]"
        );
        let e = strategic_merge_patch(
            &json!({"metadata":{"finalizers":["a"]}}),
            &json!({"metadata":{"finalizers":[1]}}),
            "Pod",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "list element types are not identical: [[a] [1]]"
        );
        let e = strategic_merge_patch(
            &json!({"spec":{}}),
            &json!({"spec":{"$setElementOrderX/c":[]}}),
            "Pod",
        )
        .unwrap_err();
        assert_eq!(e.status_code(), 400);
    }

    #[test]
    fn go_float_format() {
        assert_eq!(go_fmt_float(1.5), "1.5");
        assert_eq!(go_fmt_float(1e21), "1e+21");
        assert_eq!(go_fmt_float(1.5e-7), "1.5e-07");
    }

    #[test]
    fn not_objects_are_bad_documents() {
        assert_eq!(
            strategic_merge_patch(&json!([]), &json!({}), "Pod"),
            Err(PatchError::BadJsonDoc)
        );
        assert_eq!(
            strategic_merge_patch(&json!({}), &json!(3), "Pod"),
            Err(PatchError::BadJsonDoc)
        );
        assert_eq!(smp(json!({"a":1}), Value::Null, "Pod"), json!({"a":1}));
    }
}
