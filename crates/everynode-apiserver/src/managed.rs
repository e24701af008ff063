//! Field ownership for server-side apply (`metadata.managedFields`).
//!
//! Each manager (`fieldManager`, with the operation `Apply` or `Update`) owns a set of
//! fields in the FieldsV1 form: `f:name` a field, `k:{"name":"c"}` a list item matched by
//! its merge key, `v:"x"` an item of a list of primitives merged as a set, `"."` the item
//! itself, `{}` a leaf. An apply owns exactly the fields of the configuration it sent;
//! a field another manager owns with a different value is a conflict (409, unless
//! `force=true` takes it over); a field the applier applied last time and no longer
//! does is removed, unless another manager owns it. An update by a manager takes the
//! fields it changed from everyone else.
//!
//! Tracking starts at creation for the kinds people write ([`tracked_from_creation`]:
//! DaemonSets, ConfigMaps, Secrets, Services, Namespaces, ServiceAccounts) and with the
//! first apply for the others: pods, events and leases written by the thousand carry no
//! `managedFields` until someone applies them. Status writes are
//! not tracked. Lists follow the strategic-merge keys (`smp`), so a list without a merge
//! key is owned as a whole.

use everynode_api::smp::{ListRule, Position};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::resources::ResourceInfo;

/// Kinds whose field ownership is kept from their creation on, as Kubernetes keeps it
/// for everything: the objects people write (so a first server-side apply conflicts
/// with `kubectl create`, and takes over from client-side apply). Pods, events, leases
/// and the other objects components write by the thousand start with their first apply.
pub fn tracked_from_creation(res: &ResourceInfo) -> bool {
    matches!(
        (res.group, res.kind),
        ("apps", "DaemonSet")
            | (
                "",
                "ConfigMap" | "Secret" | "Service" | "Namespace" | "ServiceAccount"
            )
    )
}

/// Who writes, and for an apply what it applies.
#[derive(Clone, Debug)]
pub struct Manager {
    pub name: String,
    pub apply: Option<Applied>,
}

/// kubectl's client-side apply record.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// After a server-side apply by `kubectl` (the manager kubectl uses), an object that
/// still carries client-side apply's record gets it rewritten to this configuration, as
/// kube-apiserver does, so a later client-side `kubectl apply` computes its three-way
/// patch from what was really applied last. Other managers leave it alone.
pub fn sync_last_applied(manager: &str, config: &Value, merged: &mut Value) {
    let has = merged
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if manager != "kubectl" || !has {
        return;
    }
    let mut record = config.clone();
    if let Some(a) = record
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    // As Go encodes a map: keys sorted, compact, one newline at the end.
    let mut text = sorted(&record).to_string();
    text.push('\n');
    if let Some(a) = merged
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(LAST_APPLIED.to_string(), Value::String(text));
    }
}

/// `v` with every object's keys in order.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[derive(Clone, Debug)]
pub struct Applied {
    /// The configuration as sent.
    pub config: Value,
    /// `force=true`: take over conflicting fields.
    pub force: bool,
    /// The fields the configuration sets (computed once, used before and after
    /// admission).
    fields: Set,
}

impl Applied {
    /// An apply of `config` to an object of `kind`.
    pub fn new(kind: &str, config: Value, force: bool) -> Applied {
        let fields = fields_of(kind, &config);
        Applied {
            config,
            force,
            fields,
        }
    }
}

/// A set of fields in the FieldsV1 form.
type Set = Map<String, Value>;
/// A leaf's path through a set: its FieldsV1 elements.
type Path = Vec<String>;

/// Top-level fields no manager owns: the object's type, and status (written through its
/// own subresource).
const UNTRACKED: [&str; 3] = ["apiVersion", "kind", "status"];
/// Metadata that identifies the object or that the server keeps.
const UNTRACKED_META: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The fields `obj` sets, as a FieldsV1 set.
fn fields_of(kind: &str, obj: &Value) -> Set {
    let mut out = Set::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    let root = Position::root(kind);
    for (k, v) in m {
        if UNTRACKED.contains(&k.as_str()) {
            continue;
        }
        let (rule, pos) = root.field(k);
        if k == "metadata" {
            let meta: Set = v
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(mk, _)| !UNTRACKED_META.contains(&mk.as_str()))
                .map(|(mk, mv)| {
                    let (r, p) = pos.field(mk);
                    (format!("f:{mk}"), value_set(mv, r, p))
                })
                .collect();
            if !meta.is_empty() {
                out.insert("f:metadata".into(), Value::Object(meta));
            }
            continue;
        }
        out.insert(format!("f:{k}"), value_set(v, rule, pos));
    }
    out
}

/// The fields that identify an item of a list merged by `key`: the key, and for ports
/// their protocol too (server-side apply's list-map keys: a DNS daemon serves port 53
/// over both UDP and TCP).
fn item_keys(key: &'static str) -> Vec<&'static str> {
    match key {
        "containerPort" => vec!["containerPort", "protocol"],
        "port" => vec!["port", "protocol"],
        _ => vec![key],
    }
}

/// An item's value for one of its key fields (a port's protocol defaults to TCP).
fn key_value(item: &Value, k: &str) -> Option<Value> {
    item.get(k)
        .filter(|v| !v.is_null())
        .cloned()
        .or_else(|| (k == "protocol").then(|| json!("TCP")))
}

/// The key fields of an item of a list merged by `key`; None without the key itself.
fn item_id(item: &Value, key: &'static str) -> Option<Map<String, Value>> {
    item.get(key)?;
    item_keys(key)
        .into_iter()
        .map(|k| Some((k.to_string(), key_value(item, k)?)))
        .collect()
}

/// `k:{"name":"c"}`: a keyed item's element.
fn key_element(id: Map<String, Value>) -> String {
    format!("k:{}", Value::Object(id))
}

fn value_set(v: &Value, rule: ListRule, pos: Position) -> Value {
    match (v, rule) {
        (Value::Object(m), _) => Value::Object(
            m.iter()
                .map(|(k, c)| {
                    let (r, p) = pos.field(k);
                    (format!("f:{k}"), value_set(c, r, p))
                })
                .collect(),
        ),
        (Value::Array(items), ListRule::Keyed(key)) => {
            let mut s = Set::new();
            for item in items {
                // An item without its key cannot be told apart: the list as a whole.
                let Some(id) = item_id(item, key) else {
                    return json!({});
                };
                let mut child = match value_set(item, ListRule::Plain, pos) {
                    Value::Object(m) => m,
                    _ => Set::new(),
                };
                child.insert(".".into(), json!({}));
                s.insert(key_element(id), Value::Object(child));
            }
            Value::Object(s)
        }
        (Value::Array(items), ListRule::Set) => Value::Object(
            items
                .iter()
                .map(|item| (format!("v:{item}"), json!({})))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// What server-side apply refuses in a configuration before merging it: two items of
/// one keyed list with the same key (`duplicate entries for key [name="A"]`).
pub fn check_config(
    res: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    config: &Value,
) -> Result<(), ApiError> {
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    fn walk(v: &Value, pos: Position, at: &str) -> Option<String> {
        let Value::Object(m) = v else {
            return None;
        };
        for (k, child) in m {
            let (rule, p) = pos.field(k);
            let here = format!("{at}.{k}");
            match (child, rule) {
                (Value::Array(items), ListRule::Keyed(key)) => {
                    let mut seen = std::collections::HashSet::new();
                    for item in items {
                        let Some(id) = item_id(item, key) else {
                            continue;
                        };
                        let shown = display(&[key_element(id.clone())]);
                        if !seen.insert(Value::Object(id)) {
                            let inner = shown.trim_start_matches('[').trim_end_matches(']');
                            return Some(format!("{here}: duplicate entries for key [{inner}]"));
                        }
                        let item_at = format!("{here}{shown}");
                        if let Some(e) = walk(item, p, &item_at) {
                            return Some(e);
                        }
                    }
                }
                (Value::Object(_), _) => {
                    if let Some(e) = walk(child, p, &here) {
                        return Some(e);
                    }
                }
                _ => {}
            }
        }
        None
    }
    match walk(config, Position::root(res.kind), "") {
        None => Ok(()),
        Some(e) => Err(ApiError::bad_request(format!(
            "failed to create typed patch object ({}/{name}; {}, Kind={}): {e}",
            ns.unwrap_or(""),
            res.api_version(),
            res.kind
        ))),
    }
}

/// The configuration to merge for an apply, when strategic merge would match its items
/// wrongly: a list whose items share their strategic-merge key but differ in their
/// apply key (ports 53/UDP and 53/TCP) is replaced whole (`$patch: replace`) instead.
/// `None`: merge the configuration as it is.
pub fn merge_body(res: &ResourceInfo, config: &Value) -> Option<Value> {
    fn walk(v: &mut Value, pos: Position) -> bool {
        let Value::Object(m) = v else {
            return false;
        };
        let mut changed = false;
        for (k, child) in m.iter_mut() {
            let (rule, p) = pos.field(k);
            if let (Value::Array(items), ListRule::Keyed(key)) = (&mut *child, rule) {
                let mut plain = std::collections::HashSet::new();
                let shared = items
                    .iter()
                    .filter_map(|item| item.get(key))
                    .any(|id| !plain.insert(id.to_string()));
                for item in items.iter_mut() {
                    changed |= walk(item, p);
                }
                if shared {
                    items.push(json!({ "$patch": "replace" }));
                    changed = true;
                }
            } else if child.is_object() {
                changed |= walk(child, p);
            }
        }
        changed
    }
    let mut body = config.clone();
    walk(&mut body, Position::root(res.kind)).then_some(body)
}

/// Every leaf of a set.
fn leaves(set: &Set) -> Vec<Path> {
    fn walk(set: &Set, at: &mut Path, out: &mut Vec<Path>) {
        for (k, v) in set {
            at.push(k.clone());
            match v.as_object() {
                Some(children) if !children.is_empty() => walk(children, at, out),
                _ => out.push(at.clone()),
            }
            at.pop();
        }
    }
    let mut out = Vec::new();
    walk(set, &mut Vec::new(), &mut out);
    out
}

/// The part of a set at `path` (an empty one is a leaf).
fn node_at<'a>(set: &'a Set, path: &[String]) -> Option<&'a Set> {
    let (last, above) = path.split_last()?;
    let mut node = set;
    for el in above {
        node = node.get(el)?.as_object()?;
    }
    node.get(last)?.as_object()
}

fn has_leaf(set: &Set, path: &[String]) -> bool {
    node_at(set, path).is_some_and(Set::is_empty)
}

fn has_node(set: &Set, path: &[String]) -> bool {
    node_at(set, path).is_some()
}

/// Removes a leaf and the parents it leaves empty (an empty parent would read as a leaf).
fn remove_leaf(set: &mut Set, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        set.remove(first);
        return;
    }
    // Below a leaf nothing is owned separately: nothing to remove (and the leaf stays).
    if let Some(Value::Object(child)) = set.get_mut(first)
        && !child.is_empty()
    {
        remove_leaf(child, rest);
        if child.is_empty() {
            set.remove(first);
        }
    }
}

fn insert_leaf(set: &mut Set, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let child = set
        .entry(first.clone())
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(child) = child
        && !rest.is_empty()
    {
        insert_leaf(child, rest);
    }
}

/// The item of `list` an element (`k:…`, `v:…`) names, by index.
fn find_item(list: &[Value], el: &str) -> Option<usize> {
    if let Some(key) = el.strip_prefix("k:") {
        let want: Map<String, Value> = serde_json::from_str(key).ok()?;
        list.iter().position(|item| {
            want.iter()
                .all(|(k, v)| key_value(item, k).as_ref() == Some(v))
        })
    } else {
        let want: Value = serde_json::from_str(el.strip_prefix("v:")?).ok()?;
        list.iter().position(|item| *item == want)
    }
}

/// The value a leaf path names in `obj` (for `"."`, the item itself).
fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut v = obj;
    for el in path {
        v = match el.strip_prefix("f:") {
            Some(field) => v.get(field)?,
            None if el == "." => v,
            None => {
                let list = v.as_array()?;
                &list[find_item(list, el)?]
            }
        };
    }
    Some(v)
}

/// Removes what a leaf path names from `obj` (a field, or a list item with `"."`).
fn remove_at(obj: &mut Value, path: &[String]) {
    let (parent, last) = match path {
        [parent @ .., item, dot] if dot == "." => {
            let Some(Value::Array(list)) = value_at_mut(obj, parent) else {
                return;
            };
            if let Some(i) = find_item(list, item) {
                list.remove(i);
            }
            return;
        }
        [parent @ .., last] => (parent, last),
        [] => return,
    };
    match (value_at_mut(obj, parent), last.strip_prefix("f:")) {
        (Some(Value::Object(m)), Some(field)) => {
            m.remove(field);
        }
        (Some(Value::Array(list)), None) => {
            if let Some(i) = find_item(list, last) {
                list.remove(i);
            }
        }
        _ => {}
    }
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut v = obj;
    for el in path {
        v = match el.strip_prefix("f:") {
            Some(field) => v.get_mut(field)?,
            None => {
                let list = v.as_array_mut()?;
                let i = find_item(list, el)?;
                &mut list[i]
            }
        };
    }
    Some(v)
}

/// `.spec.template.spec.containers[name="nginx"].image`, as conflicts are reported.
fn display(path: &[String]) -> String {
    let mut s = String::new();
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = el.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    raw: Value,
    manager: String,
    operation: String,
    set: Set,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str) -> bool {
        self.manager == manager && self.operation == operation
    }
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Entry {
            raw: e.clone(),
            manager: e["manager"].as_str().unwrap_or("").to_string(),
            operation: e["operation"].as_str().unwrap_or("").to_string(),
            set: e["fieldsV1"].as_object().cloned().unwrap_or_default(),
        })
        .collect()
}

fn operation(m: &Manager) -> &'static str {
    if m.apply.is_some() { "Apply" } else { "Update" }
}

/// Before defaulting, for an apply: refuses fields other managers own with other values
/// (unless forced), and removes from `new` what this applier applied last time and no
/// longer applies, where no other manager owns it.
pub fn before_defaults(old: &Value, new: &mut Value, m: &Manager) -> Result<(), ApiError> {
    let Some(applied) = &m.apply else {
        return Ok(());
    };
    let owned = entries(old);
    let set = &applied.fields;
    if !forced(old, &owned, applied, &m.name) {
        let conflicts: Vec<(String, String, Vec<String>)> =
            conflicts(old, &owned, applied, &m.name)
                .into_iter()
                .map(|(e, paths)| {
                    let version = e.raw["apiVersion"].as_str().unwrap_or("").to_string();
                    (
                        e.manager.clone(),
                        version,
                        paths.iter().map(|p| display(p)).collect(),
                    )
                })
                .collect();
        if !conflicts.is_empty() {
            return Err(conflict(&conflicts));
        }
    }
    if let Some(last) = owned.iter().find(|e| e.is(&m.name, "Apply")) {
        for p in leaves(&last.set) {
            // Still applied (as it was, or now with content: `{}` that became
            // `{disk: ssd}`), owned by someone else (it or anything under it), or the
            // key of an item that stays: kept.
            // An item (`…, k:{…}, .`) stays while anyone owns any field of it.
            let theirs = match p.split_last() {
                Some((dot, item)) if dot == "." => item,
                _ => &p[..],
            };
            let kept = has_node(set, &p)
                || owned
                    .iter()
                    .any(|e| !e.is(&m.name, "Apply") && has_node(&e.set, theirs))
                || is_item_key(&p);
            if !kept {
                remove_at(new, &p);
                prune_emptied(new, &p, set);
            }
        }
    }
    Ok(())
}

/// The fields `applied` sets that another manager owns with another value, by owner.
fn conflicts<'a>(
    old: &Value,
    owned: &'a [Entry],
    applied: &Applied,
    name: &str,
) -> Vec<(&'a Entry, Vec<Path>)> {
    let wanted = leaves(&applied.fields);
    owned
        .iter()
        .filter(|e| e.manager != name)
        .map(|e| {
            let paths: Vec<Path> = wanted
                .iter()
                .filter(|p| p.last().is_some_and(|l| l != "."))
                .filter(|p| has_leaf(&e.set, p))
                .filter(|p| value_at(old, p) != value_at(&applied.config, p))
                .cloned()
                .collect();
            (e, paths)
        })
        .filter(|(_, paths)| !paths.is_empty())
        .collect()
}

/// The manager of kubectl's client-side apply.
const CLIENT_SIDE_APPLY: &str = "kubectl-client-side-apply";

/// Whether an apply takes what it conflicts on: asked to (`force=true`), or kubectl's
/// move from client-side to server-side apply, which kube-apiserver lets through when
/// every conflict is with client-side apply on a field still holding the value its
/// `last-applied-configuration` records.
fn forced(old: &Value, owned: &[Entry], applied: &Applied, name: &str) -> bool {
    if applied.force {
        return true;
    }
    if name != "kubectl" {
        return false;
    }
    let last: Option<Value> = old
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok());
    let Some(last) = last else {
        return false;
    };
    let found = conflicts(old, owned, applied, name);
    !found.is_empty()
        && found.iter().all(|(e, paths)| {
            e.manager == CLIENT_SIDE_APPLY
                && paths
                    .iter()
                    .all(|p| value_at(&last, p).is_some() && value_at(&last, p) == value_at(old, p))
        })
}

/// Whether a leaf is a key field of the list item around it (`…, k:{"name":"c"},
/// f:name`): it goes with the item (`…, k:{…}, .`), never alone.
fn is_item_key(path: &[String]) -> bool {
    let [.., item, field] = path else {
        return false;
    };
    let (Some(key), Some(field)) = (item.strip_prefix("k:"), field.strip_prefix("f:")) else {
        return false;
    };
    serde_json::from_str::<Map<String, Value>>(key).is_ok_and(|k| k.contains_key(field))
}

/// After removing `path`: its parents that are now empty maps or lists, and that the
/// applied configuration does not mention, go too (`nodeSelector: {}` would stay).
fn prune_emptied(obj: &mut Value, path: &[String], applied: &Set) {
    // A removed list item (`…, k:{…}, .`): from its list up.
    let top = if path.last().is_some_and(|l| l == ".") {
        path.len().saturating_sub(1)
    } else {
        path.len()
    };
    for end in (1..top).rev() {
        let parent = &path[..end];
        if !parent.last().is_some_and(|l| l.starts_with("f:")) || has_node(applied, parent) {
            return;
        }
        let empty = match value_at(obj, parent) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if !empty {
            return;
        }
        remove_at(obj, parent);
    }
}

/// The 409 of an apply that conflicts, as kube-apiserver words it.
fn conflict(conflicts: &[(String, String, Vec<String>)]) -> ApiError {
    let total: usize = conflicts.iter().map(|(_, _, p)| p.len()).sum();
    let causes: Vec<Value> = conflicts
        .iter()
        .flat_map(|(manager, version, paths)| {
            paths.iter().map(move |p| {
                json!({ "reason": "FieldManagerConflict",
                        "message": format!("conflict with \"{manager}\" using {version}"), "field": p })
            })
        })
        .collect();
    let message = if total == 1 {
        let (manager, version, paths) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with \"{manager}\" using {version}: {}",
            paths[0]
        )
    } else {
        let groups: Vec<String> = conflicts
            .iter()
            .map(|(manager, version, paths)| {
                let list: Vec<String> = paths.iter().map(|p| format!("- {p}")).collect();
                format!(
                    "conflicts with \"{manager}\" using {version}:\n{}",
                    list.join("\n")
                )
            })
            .collect();
        format!("Apply failed with {total} conflicts: {}", groups.join("\n"))
    };
    ApiError::conflict_with_causes(message, causes)
}

/// After admission: `new`'s `managedFields`. An apply owns what it applied (taking
/// forced fields from the others); an update, on an object some manager applied,
/// takes the fields it changed from everyone else.
pub fn after_admission(res: &ResourceInfo, old: Option<&Value>, new: &mut Value, m: &Manager) {
    // `new` holds the stored ownership (the registry carries it over), or the one the
    // client wrote itself (kubectl's move from client-side to server-side apply).
    let mut owned = entries(new);
    if owned.is_empty() && m.apply.is_none() && !tracked_from_creation(res) {
        return;
    }
    let op = operation(m);
    let (taken, mine): (Vec<Path>, Set) = match &m.apply {
        Some(applied) => {
            let set = applied.fields.clone();
            // A forced apply takes the fields it conflicted on (another value than the
            // one it applies); fields it applies with the value they had stay shared.
            let forced = old.is_some_and(|o| forced(o, &entries(o), applied, &m.name));
            let taken = if forced {
                leaves(&set)
                    .into_iter()
                    .filter(|p| old.and_then(|o| value_at(o, p)) != value_at(&applied.config, p))
                    .collect()
            } else {
                Vec::new()
            };
            (taken, set)
        }
        None => {
            let before = old.map(|o| fields_of(res.kind, o)).unwrap_or_default();
            let after = fields_of(res.kind, new);
            // What the update set or changed; a list item itself only when it added it
            // (changing a field of an item does not take the item).
            let changed: Vec<Path> = leaves(&after)
                .into_iter()
                .filter(|p| {
                    let before = old.and_then(|o| value_at(o, p));
                    if p.last().is_some_and(|l| l == ".") {
                        return before.is_none();
                    }
                    value_at(new, p) != before
                })
                .collect();
            let gone: Vec<Path> = leaves(&before)
                .into_iter()
                .filter(|p| value_at(new, p).is_none())
                .collect();
            let mut mine = owned
                .iter()
                .find(|e| e.is(&m.name, "Update"))
                .map(|e| e.set.clone())
                .unwrap_or_default();
            for p in &gone {
                remove_leaf(&mut mine, p);
            }
            for p in &changed {
                insert_leaf(&mut mine, p);
            }
            (changed.into_iter().chain(gone).collect(), mine)
        }
    };
    let now = crate::registry::format_time(jiff::Timestamp::now());
    let api_version = res.api_version();
    let mut out: Vec<Value> = Vec::new();
    let mut placed = false;
    for e in owned.iter_mut() {
        if e.is(&m.name, op) {
            placed = true;
            if e.set == mine {
                out.push(e.raw.clone());
            } else if !mine.is_empty() {
                out.push(entry(&m.name, op, &api_version, &now, &mine));
            }
            continue;
        }
        let before = e.set.clone();
        for p in &taken {
            remove_leaf(&mut e.set, p);
        }
        if e.set.is_empty() {
            continue;
        }
        if e.set == before {
            out.push(e.raw.clone());
        } else {
            let mut raw = e.raw.clone();
            raw["fieldsV1"] = Value::Object(e.set.clone());
            raw["time"] = json!(now);
            out.push(raw);
        }
    }
    if !placed && !mine.is_empty() {
        out.push(entry(&m.name, op, &api_version, &now, &mine));
    }
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        if out.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(out));
        }
    }
}

fn entry(manager: &str, operation: &str, api_version: &str, time: &str, set: &Set) -> Value {
    json!({ "manager": manager, "operation": operation, "apiVersion": api_version,
            "time": time, "fieldsType": "FieldsV1", "fieldsV1": set })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds_config(image: &str, extra_label: bool) -> Value {
        let mut labels = json!({ "app": "x" });
        if extra_label {
            labels["tier"] = json!("web");
        }
        json!({ "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": { "name": "d", "labels": labels },
            "spec": { "selector": { "matchLabels": { "app": "x" } },
                "template": { "metadata": { "labels": { "app": "x" } },
                    "spec": { "containers": [{ "name": "c", "image": image, "args": ["a", "b"] }] } } } })
    }

    #[test]
    fn field_sets_follow_the_merge_keys() {
        let set = fields_of("DaemonSet", &ds_config("nginx:1", true));
        let paths: Vec<String> = leaves(&set).iter().map(|p| display(p)).collect();
        for want in [
            ".metadata.labels.app",
            ".metadata.labels.tier",
            ".spec.selector.matchLabels.app",
            ".spec.template.spec.containers[name=\"c\"].image",
            ".spec.template.spec.containers[name=\"c\"].args",
        ] {
            assert!(paths.contains(&want.to_string()), "{want} not in {paths:?}");
        }
        // The item itself, and nothing of the name or the type.
        assert!(paths.contains(&".spec.template.spec.containers[name=\"c\"]".to_string()));
        assert!(!paths.iter().any(|p| p == ".metadata.name" || p == ".kind"));
        let image: Path = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"c\"}",
            "f:image",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            value_at(&ds_config("nginx:1", false), &image),
            Some(&json!("nginx:1"))
        );
        // An applier that stops applying a map's last key takes the map with it.
        let mut obj = ds_config("nginx:1", true);
        let tier: Path = ["f:metadata", "f:labels", "f:tier"]
            .map(String::from)
            .to_vec();
        remove_at(&mut obj, &tier);
        prune_emptied(
            &mut obj,
            &tier,
            &fields_of("DaemonSet", &ds_config("nginx:1", false)),
        );
        assert_eq!(
            obj.pointer("/metadata/labels"),
            Some(&json!({ "app": "x" }))
        );
        let mut obj = ds_config("nginx:1", false);
        remove_at(&mut obj, &image);
        assert!(value_at(&obj, &image).is_none());
        let item: Path = image[..5]
            .iter()
            .cloned()
            .chain(["."].map(String::from))
            .collect();
        remove_at(&mut obj, &item);
        assert_eq!(
            obj.pointer("/spec/template/spec/containers"),
            Some(&json!([]))
        );
        // Emptied by the removal, and not in the (empty) applied set: the list goes, its
        // parent (which still holds other fields) stays.
        prune_emptied(&mut obj, &item, &Set::new());
        assert!(obj.pointer("/spec/template/spec/containers").is_none());
        assert!(obj.pointer("/spec/template/metadata").is_some());
    }

    fn ds() -> &'static ResourceInfo {
        crate::resources::lookup("apps", "v1", "daemonsets").expect("daemonsets")
    }

    fn apply_as(name: &str, config: &Value) -> Manager {
        Manager {
            name: name.into(),
            apply: Some(Applied::new(
                config["kind"].as_str().unwrap_or(""),
                config.clone(),
                false,
            )),
        }
    }

    /// The object a first apply of `config` stores.
    fn applied(config: &Value) -> Value {
        let mut obj = config.clone();
        after_admission(ds(), None, &mut obj, &apply_as("kubectl", config));
        obj
    }

    #[test]
    fn a_map_applied_empty_then_filled_keeps_its_content() {
        let mut first = ds_config("nginx:1", false);
        first["spec"]["template"]["spec"]["nodeSelector"] = json!({});
        let old = applied(&first);
        let mut second = first.clone();
        second["spec"]["template"]["spec"]["nodeSelector"] = json!({ "disk": "ssd" });
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({ "disk": "ssd" });
        before_defaults(&old, &mut new, &apply_as("kubectl", &second)).expect("no conflict");
        assert_eq!(
            new.pointer("/spec/template/spec/nodeSelector"),
            Some(&json!({ "disk": "ssd" }))
        );
    }

    #[test]
    fn an_item_another_manager_changed_stays_whole_when_the_applier_drops_it() {
        let mut config = ds_config("nginx:1", false);
        config["spec"]["template"]["spec"]["containers"] =
            json!([{ "name": "c", "image": "nginx:1" }, { "name": "d", "image": "busybox" }]);
        let old = applied(&config);
        // `kubectl set image ds/x c=nginx:2`: an update of one field of item c.
        let mut updated = old.clone();
        updated["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        let set = Manager {
            name: "kubectl-set".into(),
            apply: None,
        };
        after_admission(ds(), Some(&old), &mut updated, &set);
        // The applier drops c; strategic merge keeps c in the merged object.
        let mut without_c = config.clone();
        without_c["spec"]["template"]["spec"]["containers"] =
            json!([{ "name": "d", "image": "busybox" }]);
        let mut new = updated.clone();
        before_defaults(&updated, &mut new, &apply_as("kubectl", &without_c)).expect("no conflict");
        assert_eq!(
            new.pointer("/spec/template/spec/containers"),
            Some(
                &json!([{ "name": "c", "image": "nginx:2" }, { "name": "d", "image": "busybox" }])
            ),
            "c keeps its name and the image kubectl-set owns"
        );
        // Dropped by the applier and owned by nobody else, an item goes whole.
        let mut new = old.clone();
        before_defaults(&old, &mut new, &apply_as("kubectl", &without_c)).expect("no conflict");
        assert_eq!(
            new.pointer("/spec/template/spec/containers"),
            Some(&json!([{ "name": "d", "image": "busybox" }]))
        );
    }

    /// `--force-conflicts` takes the conflicting fields only: a field applied with the
    /// value it had stays shared, and survives the forcing applier dropping it.
    #[test]
    fn forcing_takes_only_the_conflicting_fields() {
        let cms = crate::resources::lookup("", "v1", "configmaps").expect("configmaps");
        let cm = |data: Value| json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" }, "data": data });
        let first = cm(json!({ "a": "1", "b": "2", "c": "3" }));
        let mut old = first.clone();
        after_admission(cms, None, &mut old, &apply_as("kubectl", &first));
        let forced = cm(json!({ "a": "1", "b": "9" }));
        let x = Manager {
            name: "x".into(),
            apply: Some(Applied::new("ConfigMap", forced.clone(), true)),
        };
        let mut new = old.clone();
        new["data"] = json!({ "a": "1", "b": "9", "c": "3" });
        before_defaults(&old, &mut new, &x).expect("forced");
        after_admission(cms, Some(&old), &mut new, &x);
        let owners = |obj: &Value, manager: &str| -> Vec<String> {
            let e = entries(obj)
                .into_iter()
                .find(|e| e.manager == manager)
                .expect(manager);
            leaves(&e.set).iter().map(|p| display(p)).collect()
        };
        assert_eq!(owners(&new, "kubectl"), [".data.a", ".data.c"]);
        assert_eq!(owners(&new, "x"), [".data.a", ".data.b"]);
        // x drops a: kubectl still owns it, so it stays.
        let dropped = cm(json!({ "b": "9" }));
        let mut after = new.clone();
        before_defaults(&new, &mut after, &apply_as("x", &dropped)).expect("no conflict");
        assert_eq!(after["data"], json!({ "a": "1", "b": "9", "c": "3" }));
    }

    /// Ports are told apart by port and protocol (a DNS daemon's 53/UDP and 53/TCP);
    /// strategic merge, which knows only the port, replaces such a list whole; true
    /// duplicates are refused as server-side apply refuses them.
    #[test]
    fn ports_are_keyed_by_protocol_too_and_duplicates_are_refused() {
        let mut config = ds_config("coredns", false);
        config["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([
            { "name": "dns", "containerPort": 53, "protocol": "UDP" },
            { "name": "dns-tcp", "containerPort": 53 }
        ]);
        let paths: Vec<String> = leaves(&fields_of("DaemonSet", &config))
            .iter()
            .map(|p| display(p))
            .collect();
        for port in [
            "[containerPort=53,protocol=\"UDP\"]",
            "[containerPort=53,protocol=\"TCP\"]",
        ] {
            let want = format!(".spec.template.spec.containers[name=\"c\"].ports{port}.name");
            assert!(paths.contains(&want), "{want} not in {paths:?}");
        }
        check_config(ds(), Some("default"), "d", &config).expect("distinct keys");
        let mut owned = config.clone();
        owned["metadata"]["managedFields"] = json!([]);
        let err = check_config(ds(), Some("default"), "d", &owned).expect_err("managedFields");
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "metadata.managedFields must be nil")
        );
        let body = merge_body(ds(), &config).expect("the ports list is replaced whole");
        assert_eq!(
            body.pointer("/spec/template/spec/containers/0/ports/2"),
            Some(&json!({ "$patch": "replace" }))
        );
        assert!(merge_body(ds(), &ds_config("nginx", false)).is_none());
        let mut twice = ds_config("nginx", false);
        twice["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{ "name": "A", "value": "1" }, { "name": "A", "value": "2" }]);
        let err = check_config(ds(), Some("default"), "d", &twice).expect_err("duplicate");
        assert_eq!(
            err.message,
            "failed to create typed patch object (default/d; apps/v1, Kind=DaemonSet): .spec.template.spec.containers[name=\"c\"].env: duplicate entries for key [name=\"A\"]"
        );
    }

    #[test]
    fn removing_below_a_leaf_leaves_the_leaf() {
        let mut set = Set::new();
        insert_leaf(
            &mut set,
            &["f:metadata".to_string(), "f:labels".to_string()],
        );
        let below: Path = ["f:metadata", "f:labels", "f:x"].map(String::from).to_vec();
        remove_leaf(&mut set, &below);
        assert_eq!(
            Value::Object(set),
            json!({ "f:metadata": { "f:labels": {} } })
        );
    }

    #[test]
    fn removing_a_leaf_prunes_its_emptied_parents() {
        let mut set = fields_of("DaemonSet", &ds_config("nginx:1", false));
        for p in leaves(&set.clone()) {
            if display(&p).starts_with(".spec") {
                remove_leaf(&mut set, &p);
            }
        }
        assert!(!set.contains_key("f:spec"), "{set:?}");
        assert!(set.contains_key("f:metadata"));
    }
}
