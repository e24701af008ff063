//! OpenAPI v3, generated once at start-up from k8s-openapi's schemas: one document per
//! group/version with the real component schemas (so `kubectl explain` works) and
//! paths whose PATCH operations declare `fieldValidation` (so kubectl's default
//! `--validate=strict` uses server-side validation, compat doc §4). The same schemas
//! drive unknown-field detection for `fieldValidation=Strict|Warn`.
//!
//! PATCH operations deliberately carry no `requestBody`: kubectl then computes
//! strategic merge patches from the patch metadata compiled into it (the real struct
//! tags) instead of from these schemas.

use std::collections::HashMap;

use bytes::Bytes;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::resources::{self, ResourceInfo};

pub struct OpenApi {
    index: Bytes,
    docs: HashMap<String, Bytes>,
    /// The fields every kind's schema allows, for unknown-field detection.
    fields: FieldTree,
}

/// The schemas reduced to what unknown-field detection needs, with every `$ref`
/// resolved once at start-up: per node, the fields an object may have (or the schema
/// all its values follow), or the schema of an array's items. Walking a body then costs
/// one map lookup per field.
struct FieldTree {
    nodes: Vec<FieldNode>,
    /// The node of each definition, by definition name.
    roots: HashMap<String, usize>,
    /// The Go type of each definition's node (`v1.PodSpec`), for type errors.
    go_names: HashMap<usize, String>,
}

enum FieldNode {
    /// An object with these fields, each with its node.
    Fields(HashMap<String, usize>),
    /// A map whose values all follow one node.
    Values(usize),
    /// An array whose items follow one node.
    Items(usize),
    /// A JSON scalar of one type.
    Scalar(Scalar),
    /// Anything goes (a schema that says nothing about its fields, or a type that
    /// takes several JSON forms: a Quantity, an IntOrString).
    Any,
    /// What another node says (a definition that is only a reference to another).
    Same(usize),
}

/// The scalar types of the schemas, as Go (and k8s-openapi) decode them: only the JSON
/// form of that type, or null.
#[derive(Clone, Copy)]
enum Scalar {
    String,
    Bool,
    Int32,
    Int64,
    Float,
}

/// Definitions whose values take more than one JSON form (both decoders accept them).
const LENIENT: [&str; 2] = [
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
];

/// What a walk of a body against its kind's schema found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Fields the schema does not know, as dotted paths (`spec.foo`,
    /// `spec.template.spec.containers[0].bar`).
    pub unknown: Vec<String>,
    /// The first value whose JSON type the field cannot take, in Go's words (`json:
    /// cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.
    /// containerPort of type int32`): the body cannot be decoded.
    pub type_error: Option<String>,
}

impl FieldTree {
    fn build(defs: &Map<String, Value>) -> FieldTree {
        let mut tree = FieldTree {
            nodes: Vec::new(),
            roots: HashMap::new(),
            go_names: HashMap::new(),
        };
        for name in defs.keys() {
            tree.definition(defs, name);
        }
        tree
    }

    /// The node of a named definition, built once (recursive schemas point back at it).
    fn definition(&mut self, defs: &Map<String, Value>, name: &str) -> usize {
        if let Some(&at) = self.roots.get(name) {
            return at;
        }
        let at = self.nodes.len();
        self.nodes.push(FieldNode::Any);
        self.roots.insert(name.to_string(), at);
        // `io.k8s.api.core.v1.PodSpec` is Go's `v1.PodSpec`.
        let mut parts = name.rsplit('.');
        if let (Some(ty), Some(pkg)) = (parts.next(), parts.next()) {
            self.go_names.insert(at, format!("{pkg}.{ty}"));
        }
        if let Some(schema) = defs.get(name)
            && !LENIENT.contains(&name)
        {
            self.nodes[at] = self.node(defs, schema);
        }
        at
    }

    /// A reference to a definition, or a single-element `allOf` around one, as the
    /// node it stands for; an inline schema as a new node.
    fn child(&mut self, defs: &Map<String, Value>, schema: &Value) -> usize {
        match reference(schema) {
            Some(name) if defs.contains_key(name) => self.definition(defs, name),
            _ => {
                let node = self.node(defs, schema);
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }

    fn node(&mut self, defs: &Map<String, Value>, schema: &Value) -> FieldNode {
        if let Some(name) = reference(schema) {
            // A reference to a definition we do not have: nothing to check against.
            return if defs.contains_key(name) {
                FieldNode::Same(self.definition(defs, name))
            } else {
                FieldNode::Any
            };
        }
        if let Some(Value::Object(props)) = schema.get("properties") {
            let fields = props
                .iter()
                .map(|(k, v)| (k.clone(), self.child(defs, v)))
                .collect();
            FieldNode::Fields(fields)
        } else if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            FieldNode::Values(self.child(defs, values))
        } else if let Some(items) = schema.get("items") {
            FieldNode::Items(self.child(defs, items))
        } else if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            FieldNode::Any
        } else {
            let format = schema.get("format").and_then(Value::as_str);
            match (schema.get("type").and_then(Value::as_str), format) {
                (Some("string"), _) => FieldNode::Scalar(Scalar::String),
                (Some("boolean"), _) => FieldNode::Scalar(Scalar::Bool),
                (Some("integer"), Some("int32")) => FieldNode::Scalar(Scalar::Int32),
                (Some("integer"), _) => FieldNode::Scalar(Scalar::Int64),
                (Some("number"), _) => FieldNode::Scalar(Scalar::Float),
                _ => FieldNode::Any,
            }
        }
    }

    /// Go's name of the type a node decodes into (`int32`, `[]v1.Container`).
    fn go_type(&self, node: usize) -> String {
        if let Some(name) = self.go_names.get(&node) {
            return name.clone();
        }
        match &self.nodes[node] {
            FieldNode::Fields(_) => "struct".into(),
            FieldNode::Values(n) => format!("map[string]{}", self.go_type(*n)),
            FieldNode::Items(n) => format!("[]{}", self.go_type(*n)),
            FieldNode::Scalar(Scalar::String) => "string".into(),
            FieldNode::Scalar(Scalar::Bool) => "bool".into(),
            FieldNode::Scalar(Scalar::Int32) => "int32".into(),
            FieldNode::Scalar(Scalar::Int64) => "int64".into(),
            FieldNode::Scalar(Scalar::Float) => "float64".into(),
            FieldNode::Any => "interface {}".into(),
            FieldNode::Same(n) => self.go_type(*n),
        }
    }

    /// What Go's decoder calls `v` when it cannot store it in a node of this kind:
    /// `string`, `bool`, `array`, `object`, `number`, or (a number that does not fit
    /// an integer type) `number 1.5`. None: the value fits.
    fn misfit(&self, node: usize, v: &Value) -> Option<String> {
        let kind = match v {
            Value::Null => return None,
            Value::String(_) => "string",
            Value::Bool(_) => "bool",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Number(_) => "number",
        };
        let fits = match (&self.nodes[node], v) {
            (FieldNode::Fields(_) | FieldNode::Values(_), Value::Object(_))
            | (FieldNode::Items(_), Value::Array(_))
            | (FieldNode::Scalar(Scalar::String), Value::String(_))
            | (FieldNode::Scalar(Scalar::Bool), Value::Bool(_))
            | (FieldNode::Scalar(Scalar::Float), Value::Number(_))
            | (FieldNode::Any | FieldNode::Same(_), _) => true,
            (FieldNode::Scalar(int @ (Scalar::Int32 | Scalar::Int64)), Value::Number(n)) => {
                let fits = match int {
                    Scalar::Int32 => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                    _ => n.as_i64().is_some(),
                };
                if !fits {
                    return Some(format!("number {n}"));
                }
                true
            }
            _ => false,
        };
        (!fits).then(|| kind.to_string())
    }

    /// Walks `v` against `node`: `owner` is the innermost named struct around it (for
    /// Go's wording of a type error), `path` the way from the root.
    fn walk<'v>(
        &self,
        node: usize,
        v: &'v Value,
        owner: usize,
        path: &mut Vec<Segment<'v>>,
        out: &mut Findings,
        depth: usize,
    ) {
        if depth > 64 {
            return;
        }
        if out.type_error.is_none()
            && let Some(found) = self.misfit(node, v)
        {
            out.type_error = Some(self.type_error(owner, path, &found, node));
            return;
        }
        match (&self.nodes[node], v) {
            (FieldNode::Fields(fields), Value::Object(m)) => {
                let owner = if self.go_names.contains_key(&node) {
                    node
                } else {
                    owner
                };
                for (k, child) in m {
                    path.push(Segment::Key(k));
                    match fields.get(k.as_str()) {
                        Some(&n) => self.walk(n, child, owner, path, out, depth + 1),
                        None => out.unknown.push(join_path(path)),
                    }
                    path.pop();
                }
            }
            (FieldNode::Values(n), Value::Object(m)) => {
                for (k, child) in m {
                    path.push(Segment::MapKey(k));
                    self.walk(*n, child, owner, path, out, depth + 1);
                    path.pop();
                }
            }
            (FieldNode::Same(n), _) => {
                let owner = match self.nodes[*n] {
                    FieldNode::Fields(_) => *n,
                    _ => owner,
                };
                self.walk(*n, v, owner, path, out, depth + 1)
            }
            (FieldNode::Items(n), Value::Array(a)) => {
                for (i, child) in a.iter().enumerate() {
                    path.push(Segment::Index(i));
                    self.walk(*n, child, owner, path, out, depth + 1);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// Go's `json: cannot unmarshal string into Go struct field
    /// ContainerPort.spec.containers.ports.containerPort of type int32`: the struct
    /// that has the field, the field's JSON path from the root without indices or map
    /// keys, the Go type it wanted.
    fn type_error(&self, owner: usize, path: &[Segment<'_>], found: &str, node: usize) -> String {
        let fields: Vec<&str> = path
            .iter()
            .filter_map(|seg| match seg {
                Segment::Key(k) => Some(*k),
                _ => None,
            })
            .collect();
        let ty = self.go_type(node);
        if fields.is_empty() {
            return format!("json: cannot unmarshal {found} into Go value of type {ty}");
        }
        let owner = self
            .go_names
            .get(&owner)
            .map_or("", |n| n.rsplit('.').next().unwrap_or(n));
        format!(
            "json: cannot unmarshal {found} into Go struct field {owner}.{} of type {ty}",
            fields.join(".")
        )
    }
}

/// The definition a schema stands for: its `$ref`, or the `$ref` of the one schema of
/// its `allOf` (how schemars wraps a reference that carries a description).
fn reference(schema: &Value) -> Option<&str> {
    let mut s = schema;
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            return r.rsplit('/').next();
        }
        match s.get("allOf") {
            Some(Value::Array(all)) if all.len() == 1 => s = &all[0],
            _ => return None,
        }
    }
    None
}

/// The closed sets of values Kubernetes' schemas list for string fields (`kubectl
/// explain` prints them under ENUM); k8s-openapi's schemas do not carry them.
const ENUMS: &[(&str, &str, &[&str])] = &[
    (
        "io.k8s.api.apps.v1.DaemonSetUpdateStrategy",
        "type",
        &["OnDelete", "RollingUpdate"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "restartPolicy",
        &["Always", "Never", "OnFailure"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "dnsPolicy",
        &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "preemptionPolicy",
        &["Never", "PreemptLowerPriority"],
    ),
    (
        "io.k8s.api.core.v1.Container",
        "imagePullPolicy",
        &["Always", "IfNotPresent", "Never"],
    ),
    (
        "io.k8s.api.core.v1.Container",
        "terminationMessagePolicy",
        &["FallbackToLogsOnError", "File"],
    ),
    (
        "io.k8s.api.core.v1.ContainerPort",
        "protocol",
        &["SCTP", "TCP", "UDP"],
    ),
    (
        "io.k8s.api.core.v1.Toleration",
        "operator",
        &["Equal", "Exists"],
    ),
    (
        "io.k8s.api.core.v1.Toleration",
        "effect",
        &["NoExecute", "NoSchedule", "PreferNoSchedule"],
    ),
    (
        "io.k8s.api.core.v1.Taint",
        "effect",
        &["NoExecute", "NoSchedule", "PreferNoSchedule"],
    ),
    (
        "io.k8s.api.core.v1.NodeSelectorRequirement",
        "operator",
        &["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"],
    ),
    (
        "io.k8s.api.core.v1.HostPathVolumeSource",
        "type",
        &[
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "phase",
        &["Failed", "Pending", "Running", "Succeeded", "Unknown"],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "qosClass",
        &["BestEffort", "Burstable", "Guaranteed"],
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "phase",
        &["Active", "Terminating"],
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "phase",
        &["Pending", "Running", "Terminated"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "type",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "sessionAffinity",
        &["ClientIP", "None"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "externalTrafficPolicy",
        &["Cluster", "Local"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "internalTrafficPolicy",
        &["Cluster", "Local"],
    ),
    (
        "io.k8s.api.core.v1.ServicePort",
        "protocol",
        &["SCTP", "TCP", "UDP"],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ipFamilyPolicy",
        &["PreferDualStack", "RequireDualStack", "SingleStack"],
    ),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        "addressType",
        &["FQDN", "IPv4", "IPv6"],
    ),
    (
        "io.k8s.api.scheduling.v1.PriorityClass",
        "preemptionPolicy",
        &["Never", "PreemptLowerPriority"],
    ),
    (
        "io.k8s.api.core.v1.HTTPGetAction",
        "scheme",
        &["HTTP", "HTTPS"],
    ),
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "whenUnsatisfiable",
        &["DoNotSchedule", "ScheduleAnyway"],
    ),
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "nodeAffinityPolicy",
        &["Honor", "Ignore"],
    ),
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "nodeTaintsPolicy",
        &["Honor", "Ignore"],
    ),
    (
        "io.k8s.api.core.v1.SeccompProfile",
        "type",
        &["Localhost", "RuntimeDefault", "Unconfined"],
    ),
    (
        "io.k8s.api.core.v1.AppArmorProfile",
        "type",
        &["Localhost", "RuntimeDefault", "Unconfined"],
    ),
    (
        "io.k8s.api.core.v1.PodSecurityContext",
        "fsGroupChangePolicy",
        &["Always", "OnRootMismatch"],
    ),
    (
        "io.k8s.api.core.v1.SecurityContext",
        "procMount",
        &["Default", "Unmasked"],
    ),
    (
        "io.k8s.api.core.v1.VolumeMount",
        "mountPropagation",
        &["Bidirectional", "HostToContainer", "None"],
    ),
];

fn add<T: JsonSchema>(g: &mut SchemaGenerator) {
    g.subschema_for::<T>();
}

fn register(g: &mut SchemaGenerator, r: &ResourceInfo) {
    use k8s_openapi::api::{
        apps, certificates, coordination, core, discovery, events, rbac, scheduling,
    };
    match r.schema {
        "io.k8s.api.core.v1.Namespace" => add::<core::v1::Namespace>(g),
        "io.k8s.api.core.v1.Node" => add::<core::v1::Node>(g),
        "io.k8s.api.core.v1.Pod" => add::<core::v1::Pod>(g),
        "io.k8s.api.core.v1.Event" => add::<core::v1::Event>(g),
        "io.k8s.api.core.v1.Service" => add::<core::v1::Service>(g),
        "io.k8s.api.core.v1.Endpoints" => add::<core::v1::Endpoints>(g),
        "io.k8s.api.core.v1.ConfigMap" => add::<core::v1::ConfigMap>(g),
        "io.k8s.api.core.v1.Secret" => add::<core::v1::Secret>(g),
        "io.k8s.api.core.v1.ServiceAccount" => {
            add::<core::v1::ServiceAccount>(g);
            // The body of its `token` subresource.
            add::<k8s_openapi::api::authentication::v1::TokenRequest>(g);
        }
        "io.k8s.api.apps.v1.DaemonSet" => add::<apps::v1::DaemonSet>(g),
        "io.k8s.api.apps.v1.ControllerRevision" => add::<apps::v1::ControllerRevision>(g),
        "io.k8s.api.coordination.v1.Lease" => add::<coordination::v1::Lease>(g),
        "io.k8s.api.discovery.v1.EndpointSlice" => add::<discovery::v1::EndpointSlice>(g),
        "io.k8s.api.events.v1.Event" => add::<events::v1::Event>(g),
        "io.k8s.api.rbac.v1.Role" => add::<rbac::v1::Role>(g),
        "io.k8s.api.rbac.v1.ClusterRole" => add::<rbac::v1::ClusterRole>(g),
        "io.k8s.api.rbac.v1.RoleBinding" => add::<rbac::v1::RoleBinding>(g),
        "io.k8s.api.rbac.v1.ClusterRoleBinding" => add::<rbac::v1::ClusterRoleBinding>(g),
        "io.k8s.api.scheduling.v1.PriorityClass" => add::<scheduling::v1::PriorityClass>(g),
        "io.k8s.api.certificates.v1.CertificateSigningRequest" => {
            add::<certificates::v1::CertificateSigningRequest>(g)
        }
        _ => {}
    }
}

fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn fnv_hex(b: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for x in b {
        h ^= *x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

fn operation(r: &ResourceInfo, action: &str, id: &str, with_validation: bool, list: bool) -> Value {
    let mut params = Vec::new();
    if with_validation {
        params.push(json!({ "name": "fieldValidation", "in": "query", "schema": { "type": "string", "uniqueItems": true },
                            "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields." }));
        params.push(json!({ "name": "dryRun", "in": "query", "schema": { "type": "string", "uniqueItems": true } }));
        params.push(json!({ "name": "fieldManager", "in": "query", "schema": { "type": "string", "uniqueItems": true } }));
    }
    let schema = if list {
        json!({ "type": "object" })
    } else {
        json!({ "$ref": format!("#/components/schemas/{}", r.schema) })
    };
    json!({
        "operationId": format!("{action}{id}"),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": r.group, "version": r.version, "kind": r.kind },
        "parameters": params,
        "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": schema } } },
                       "401": { "description": "Unauthorized" } },
    })
}

fn paths_for(r: &ResourceInfo, paths: &mut Map<String, Value>) {
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let coll = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    };
    let id = format!("{}{}", r.group.replace('.', ""), r.kind);
    paths.insert(
        coll.clone(),
        json!({
            "get": operation(r, "list", &id, false, true),
            "post": operation(r, "post", &id, true, false),
            "delete": operation(r, "deletecollection", &id, false, false),
        }),
    );
    paths.insert(
        format!("{coll}/{{name}}"),
        json!({
            "get": operation(r, "get", &id, false, false),
            "put": operation(r, "put", &id, true, false),
            "patch": operation(r, "patch", &id, true, false),
            "delete": operation(r, "delete", &id, false, false),
        }),
    );
    if r.has_subresource("status") {
        let sid = format!("{id}Status");
        paths.insert(
            format!("{coll}/{{name}}/status"),
            json!({
                "get": operation(r, "get", &sid, false, false),
                "put": operation(r, "put", &sid, true, false),
                "patch": operation(r, "patch", &sid, true, false),
            }),
        );
    }
}

impl OpenApi {
    pub fn build() -> OpenApi {
        let mut index = Map::new();
        let mut docs = HashMap::new();
        let mut all = Map::new();
        for (g, v) in resources::groups() {
            let mut generator = SchemaSettings::openapi3().into_generator();
            let mut paths = Map::new();
            for r in resources::in_group_version(g, v) {
                register(&mut generator, r);
                paths_for(r, &mut paths);
            }
            let mut defs = generator.take_definitions(true);
            // k8s-openapi's types hold `metadata` unconditionally, so its schemas list
            // it as required; Kubernetes' own require it nowhere (`kubectl explain ds`
            // must not mark it `-required-`).
            for s in defs.values_mut() {
                if let Some(Value::Array(req)) = s.get_mut("required") {
                    req.retain(|f| f != "metadata");
                    if req.is_empty() {
                        s.as_object_mut().map(|o| o.remove("required"));
                    }
                }
            }
            for (def, prop, values) in ENUMS {
                if let Some(p) = defs
                    .get_mut(*def)
                    .and_then(|d| d.pointer_mut(&format!("/properties/{prop}")))
                    .and_then(Value::as_object_mut)
                {
                    p.insert("enum".into(), json!(values));
                }
            }
            for r in resources::in_group_version(g, v) {
                if let Some(Value::Object(s)) = defs.get_mut(r.schema) {
                    s.insert(
                        "x-kubernetes-group-version-kind".into(),
                        json!([{ "group": r.group, "kind": r.kind, "version": r.version }]),
                    );
                }
            }
            for (k, s) in &defs {
                all.insert(k.clone(), s.clone());
            }
            let doc = json!({
                "openapi": "3.0.0",
                "info": { "title": "Kubernetes", "version": GIT_VERSION },
                "paths": paths,
                "components": { "schemas": defs },
            });
            let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
            let key = gv_key(g, v);
            index.insert(key.clone(), json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", fnv_hex(&bytes)) }));
            docs.insert(key, bytes);
        }
        let index = Bytes::from(serde_json::to_vec(&json!({ "paths": index })).unwrap_or_default());
        OpenApi {
            index,
            docs,
            fields: FieldTree::build(&all),
        }
    }

    pub fn index(&self) -> Bytes {
        self.index.clone()
    }

    pub fn doc(&self, path: &str) -> Option<Bytes> {
        self.docs.get(path).cloned()
    }

    /// Fields of `obj` that the kind's schema does not know, as dotted paths
    /// (`spec.foo`, `spec.template.spec.containers[0].bar`).
    pub fn unknown_fields(&self, r: &ResourceInfo, obj: &Value) -> Vec<String> {
        self.check(r, obj).unknown
    }

    /// Walks `obj` against its kind's schema: the fields the schema does not know and
    /// the first value of a JSON type its field cannot take.
    pub fn check(&self, r: &ResourceInfo, obj: &Value) -> Findings {
        self.check_schema(r.schema, obj)
    }

    /// [`OpenApi::check`] against the definition named `schema` (a subresource's body).
    pub fn check_schema(&self, schema: &str, obj: &Value) -> Findings {
        let mut out = Findings::default();
        if let Some(&root) = self.fields.roots.get(schema) {
            // The path is a stack of segments, joined only when something is found:
            // this runs on every write, and most writes are fine.
            self.fields
                .walk(root, obj, root, &mut Vec::new(), &mut out, 0);
        }
        out
    }
}

/// One step of a field path: `spec`, a map's key, `[0]`.
enum Segment<'a> {
    Key(&'a str),
    MapKey(&'a str),
    Index(usize),
}

/// `spec.containers[0].foo`, as kube-apiserver names unknown fields.
fn join_path(path: &[Segment<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Segment::Key(k) | Segment::MapKey(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Segment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The Kubernetes release whose API everynode serves (`/version`, OpenAPI `info`).
pub const GIT_VERSION: &str = "v1.33.0";

/// A Swagger 2.0 document without definitions, for `/openapi/v2`.
///
/// kubectl only reaches for v2 where v3 cannot serve it: manifests whose group/version the
/// server does not have (legacy `extensions/v1beta1`) and `kind: List` files. With no
/// definitions it skips client-side schema checks for those kinds — the server still
/// validates every object — and reports an unknown kind as "no matches for kind", as it
/// does against Kubernetes. `kubectl apply` likewise falls back to its compiled-in patch
/// metadata, which is exactly Kubernetes' own.
pub fn v2_document(protobuf: bool) -> Vec<u8> {
    const TITLE: &str = "Kubernetes";
    if !protobuf {
        let doc = serde_json::json!({
            "swagger": "2.0",
            "info": { "title": TITLE, "version": GIT_VERSION },
            "paths": {},
        });
        return serde_json::to_vec(&doc).unwrap_or_default();
    }
    // Protobuf wire format by hand: Document { swagger = 1; info = 2 { title = 1; version = 2 }; paths = 8 {} }.
    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        out.push(number << 3 | 2);
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(bytes);
    }
    let mut info = Vec::new();
    field(&mut info, 1, TITLE.as_bytes());
    field(&mut info, 2, GIT_VERSION.as_bytes());
    let mut doc = Vec::new();
    field(&mut doc, 1, b"2.0");
    field(&mut doc, 2, &info);
    field(&mut doc, 8, &[]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_exist_per_group_version_with_gvk_schemas() {
        let o = OpenApi::build();
        let idx: Value = serde_json::from_slice(&o.index()).unwrap();
        assert!(
            idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        let doc: Value = serde_json::from_slice(&o.doc("apis/apps/v1").unwrap()).unwrap();
        let ds = &doc["components"]["schemas"]["io.k8s.api.apps.v1.DaemonSet"];
        assert_eq!(
            ds["x-kubernetes-group-version-kind"][0]["kind"],
            "DaemonSet"
        );
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"]["patch"];
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(patch.get("requestBody").is_none());
        assert!(doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"].is_object());
    }

    #[test]
    fn unknown_fields_in_nested_lists_maps_and_references() {
        let o = OpenApi::build();
        let pods = resources::lookup("", "v1", "pods").unwrap();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "labels": { "any": "label" }, "annotations": { "x": "y" },
                          "ownerReferences": [{ "apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u", "extra": 1 }] },
            "spec": {
                "containers": [
                    { "name": "a", "image": "i", "ports": [{ "containerPort": 80 }, { "containerPort": 81, "hostPrt": 1 }],
                      "resources": { "requests": { "cpu": "1", "anything": "2" }, "limitz": {} },
                      "env": [{ "name": "E", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName", "bogus": true } } }],
                      "livenessProbe": { "httpGet": { "port": 8080, "pth": "/" } } },
                    { "name": "b", "image": "i", "securityContext": { "privileged": true, "capabilities": { "add": ["NET_ADMIN"], "drop_": [] } } }
                ],
                "volumes": [{ "name": "v", "hostPath": { "path": "/var/log", "kind": "x" } }],
                "tolerations": [{ "key": "k", "operator": "Exists", "effect": "NoSchedule" }],
                "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{ "matchExpressions": [{ "key": "k", "operator": "In", "values": ["a"], "value": "b" }] }] } } }
            },
            "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True", "why": "x" }] },
            "top": 1
        });
        let mut u = o.unknown_fields(pods, &pod);
        u.sort();
        assert_eq!(
            u,
            vec![
                "metadata.ownerReferences[0].extra",
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].value",
                "spec.containers[0].env[0].valueFrom.fieldRef.bogus",
                "spec.containers[0].livenessProbe.httpGet.pth",
                "spec.containers[0].ports[1].hostPrt",
                "spec.containers[0].resources.limitz",
                "spec.containers[1].securityContext.capabilities.drop_",
                "spec.volumes[0].hostPath.kind",
                "status.conditions[0].why",
                "top",
            ]
        );
        // A body with no unknown field has none, whatever its shape.
        let ds = resources::lookup("apps", "v1", "daemonsets").unwrap();
        let clean = json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": { "name": "x", "namespace": "kube-system" },
            "spec": { "selector": { "matchLabels": { "a": "b" } },
                      "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": "10%", "maxSurge": 0 } },
                      "template": { "metadata": { "labels": { "a": "b" } },
                                    "spec": { "containers": [{ "name": "c", "image": "i", "args": ["x"] }],
                                              "nodeSelector": { "disk": "ssd" } } } }
        });
        assert!(o.unknown_fields(ds, &clean).is_empty());
        // Values of the wrong shape are not fields: nothing to report.
        assert!(
            o.unknown_fields(ds, &json!({ "spec": "text", "metadata": [1] }))
                .is_empty()
        );
    }

    #[test]
    fn type_errors_in_gos_words() {
        let o = OpenApi::build();
        let pods = resources::lookup("", "v1", "pods").unwrap();
        let ds = resources::lookup("apps", "v1", "daemonsets").unwrap();
        let pod = |spec: Value| json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" }, "spec": spec });
        let cases = [
            (
                pods,
                pod(
                    json!({ "containers": [{ "name": "c", "image": "i", "ports": [{ "containerPort": "abc" }] }] }),
                ),
                "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
            ),
            (
                pods,
                pod(json!({ "hostNetwork": "yes", "containers": [] })),
                "json: cannot unmarshal string into Go struct field PodSpec.spec.hostNetwork of type bool",
            ),
            (
                pods,
                pod(json!({ "containers": {} })),
                "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container",
            ),
            (
                pods,
                pod(json!({ "terminationGracePeriodSeconds": 1.5, "containers": [] })),
                "json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64",
            ),
            (
                pods,
                pod(
                    json!({ "containers": [{ "name": "c", "ports": [{ "containerPort": 3_000_000_000u64 }] }] }),
                ),
                "json: cannot unmarshal number 3000000000 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
            ),
            (
                pods,
                json!({ "metadata": { "name": "p", "labels": { "a": 1 } } }),
                "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
            ),
            (
                pods,
                json!({ "spec": "x" }),
                "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec",
            ),
            (
                ds,
                json!({ "spec": { "revisionHistoryLimit": "x" } }),
                "json: cannot unmarshal string into Go struct field DaemonSetSpec.spec.revisionHistoryLimit of type int32",
            ),
            (
                ds,
                json!({ "spec": { "template": { "spec": { "containers": [{ "name": 5 }] } } } }),
                "json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.name of type string",
            ),
        ];
        for (res, body, want) in cases {
            let found = o.check(res, &body);
            assert_eq!(found.type_error.as_deref(), Some(want), "{body}");
        }
        // What both decoders take: quantities and int-or-strings in either form, nulls,
        // integers written as such, a float where a float goes.
        let fine = pod(json!({
            "containers": [{ "name": "c", "image": "i", "ports": [{ "containerPort": 80, "hostIP": null }],
                "resources": { "limits": { "cpu": 1, "memory": "1Gi" }, "requests": { "cpu": 0.5 } },
                "livenessProbe": { "httpGet": { "port": "http" }, "periodSeconds": 10 },
                "readinessProbe": { "tcpSocket": { "port": 8080 } } }],
            "activeDeadlineSeconds": 9_000_000_000u64,
            "tolerations": [{ "key": "k", "operator": "Exists", "tolerationSeconds": null }]
        }));
        assert_eq!(o.check(pods, &fine).type_error, None);
        let strategy = json!({ "spec": { "updateStrategy": { "rollingUpdate": { "maxUnavailable": "10%", "maxSurge": 1 } } } });
        assert_eq!(o.check(ds, &strategy).type_error, None);
    }

    /// Whatever the walk calls a type error, the typed decode rejects too: replace each
    /// value of a valid pod by values of every JSON type and compare.
    #[test]
    fn a_type_error_is_never_reported_for_a_decodable_body() {
        let o = OpenApi::build();
        let pods = resources::lookup("", "v1", "pods").unwrap();
        let valid = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "labels": { "a": "b" }, "generation": 1 },
            "spec": { "containers": [{ "name": "c", "image": "i", "args": ["x"], "stdin": false,
                "ports": [{ "containerPort": 80, "protocol": "TCP" }],
                "resources": { "limits": { "cpu": "1" } },
                "livenessProbe": { "httpGet": { "port": 80, "path": "/" }, "periodSeconds": 3 } }],
                "hostNetwork": true, "priority": 0, "nodeSelector": { "d": "s" },
                "tolerations": [{ "key": "k", "tolerationSeconds": 300 }] },
            "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] }
        });
        let replacements = [
            json!("x"),
            json!(7),
            json!(-1.5),
            json!(4_000_000_000u64),
            json!(true),
            json!(null),
            json!([]),
            json!([1]),
            json!({}),
            json!({ "k": "v" }),
        ];
        let mut pointers = Vec::new();
        fn collect(v: &Value, at: String, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => m
                    .iter()
                    .for_each(|(k, c)| collect(c, format!("{at}/{k}"), out)),
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .for_each(|(i, c)| collect(c, format!("{at}/{i}"), out)),
                _ => {}
            }
            if !at.is_empty() {
                out.push(at);
            }
        }
        collect(&valid, String::new(), &mut pointers);
        let mut flagged = 0;
        for at in &pointers {
            for r in &replacements {
                let mut body = valid.clone();
                *body.pointer_mut(at).unwrap() = r.clone();
                if let Some(e) = o.check(pods, &body).type_error {
                    flagged += 1;
                    assert!(
                        serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(body).is_err(),
                        "{at} = {r}: {e}, yet the pod decodes"
                    );
                }
            }
        }
        assert!(
            flagged > pointers.len(),
            "only {flagged} type errors over {} places",
            pointers.len()
        );
    }

    #[test]
    fn unknown_fields_are_found_with_their_paths() {
        let o = OpenApi::build();
        let ds = resources::lookup("apps", "v1", "daemonsets").unwrap();
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": { "name": "x", "labels": { "a": "b" }, "bogus": 1 },
            "spec": { "foo": 1, "template": { "spec": { "containers": [{ "name": "c", "image": "i", "imagePolicy": "x" }] } },
                      "selector": { "matchLabels": { "a": "b" } } }
        });
        let mut u = o.unknown_fields(ds, &obj);
        u.sort();
        assert_eq!(
            u,
            vec![
                "metadata.bogus",
                "spec.foo",
                "spec.template.spec.containers[0].imagePolicy"
            ]
        );
        let cr = resources::lookup("apps", "v1", "controllerrevisions").unwrap();
        assert!(
            o.unknown_fields(
                cr,
                &json!({ "data": { "anything": { "goes": 1 } }, "revision": 1 })
            )
            .is_empty()
        );
    }
}
