//! Per-kind registry strategies: how an object is normalised, defaulted, validated and
//! reset on create, update and status update, and which fields a field selector can
//! name. Generic JSON handling lives in `handlers.rs`; the typed rules live in the pure
//! `everynode-api` crate. This module is the glue between them.

use everynode_api::field::FieldError;
use everynode_api::{defaults, priority, rbac, validation};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::resources::{ResourceInfo, Strategy};

/// DaemonSet annotation holding the template generation (daemonset-semantics §2.3).
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn typed<T: DeserializeOwned>(res: &ResourceInfo, v: &Value) -> ApiResult<T> {
    T::deserialize(v).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {}",
            res.kind, res.version, res.kind, e
        ))
    })
}

fn untyped<T: Serialize>(t: &T) -> ApiResult<Value> {
    serde_json::to_value(t).map_err(|e| ApiError::internal(e.to_string()))
}

/// Like [`typed`], but moves the strings and maps out of `v` instead of copying them
/// (`v` is left `null`; the caller writes the result back).
fn typed_owned<T: DeserializeOwned>(res: &ResourceInfo, v: &mut Value) -> ApiResult<T> {
    T::deserialize(std::mem::take(v)).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {}",
            res.kind, res.version, res.kind, e
        ))
    })
}

/// Runs `f` on the typed form of `v` and writes the result back.
fn edit<T: DeserializeOwned + Serialize>(
    res: &ResourceInfo,
    v: &mut Value,
    f: impl FnOnce(&mut T),
) -> ApiResult<()> {
    let mut t: T = typed_owned(res, v)?;
    f(&mut t);
    *v = untyped(&t)?;
    Ok(())
}

/// The typed `LabelSelector` cannot tell `selector: {}` (empty: "invalid for
/// daemonset") from a missing selector (matches nothing). Keep the difference by giving
/// an empty selector an explicit empty `matchLabels`.
fn mark_empty_selector(v: &mut Value) {
    if let Some(sel) = v
        .pointer_mut("/spec/selector")
        .and_then(Value::as_object_mut)
        && sel.get("matchLabels").is_none_or(Value::is_null)
        && sel.get("matchExpressions").is_none_or(Value::is_null)
    {
        sel.insert("matchLabels".into(), json!({}));
    }
}

/// Round-trips the object through its typed form: type errors become 400s and unknown
/// fields are pruned (they were already reported by field validation).
///
/// Defaulting happens inside the same round trip (one decode and one encode per write
/// instead of two).
pub fn normalize_and_default(res: &ResourceInfo, v: &mut Value) -> ApiResult<()> {
    normalize_typed(res, v)?;
    drop_empty_meta(v);
    Ok(())
}

/// Go's ObjectMeta omits empty labels, annotations, owner references and finalizers;
/// k8s-openapi keeps `Some(empty)` as `[]`/`{}`. Drop them so objects read back as
/// they do from Kubernetes (an orphaned pod has no `ownerReferences` at all).
fn drop_empty_meta(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "managedFields",
        ] {
            let empty = match meta.get(key) {
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                _ => false,
            };
            if empty {
                meta.remove(key);
            }
        }
    }
}

fn normalize_typed(res: &ResourceInfo, v: &mut Value) -> ApiResult<()> {
    use k8s_openapi::api as k;
    match res.strategy {
        Strategy::DaemonSet => {
            mark_empty_selector(v);
            edit::<DaemonSet>(res, v, defaults::default_daemonset)
        }
        Strategy::ControllerRevision => edit::<ControllerRevision>(res, v, |_| {}),
        Strategy::Pod => edit::<Pod>(res, v, defaults::default_pod),
        Strategy::Node => edit::<Node>(res, v, defaults::default_node),
        Strategy::Namespace => edit::<Namespace>(res, v, defaults::default_namespace),
        Strategy::Event => edit::<Event>(res, v, |_| {}),
        Strategy::EventV1 => edit::<k::events::v1::Event>(res, v, |_| {}),
        Strategy::Lease => edit::<Lease>(res, v, |_| {}),
        Strategy::Service => edit::<Service>(res, v, defaults::default_service),
        Strategy::CertificateSigningRequest => {
            edit::<k::certificates::v1::CertificateSigningRequest>(res, v, |_| {})
        }
        Strategy::Rbac => match res.kind {
            "Role" => edit::<k::rbac::v1::Role>(res, v, |_| {}),
            "ClusterRole" => edit::<k::rbac::v1::ClusterRole>(res, v, |_| {}),
            "RoleBinding" => edit::<k::rbac::v1::RoleBinding>(res, v, rbac::default_role_binding),
            "ClusterRoleBinding" => {
                edit::<k::rbac::v1::ClusterRoleBinding>(res, v, rbac::default_cluster_role_binding)
            }
            _ => Ok(()),
        },
        Strategy::PriorityClass => {
            edit::<k::scheduling::v1::PriorityClass>(res, v, priority::default_priority_class)
        }
        Strategy::Generic => match res.kind {
            "ConfigMap" => edit::<k::core::v1::ConfigMap>(res, v, |_| {}),
            // As the API server does, `stringData` is written into `data` (replacing
            // what `data` had under the same key) and not stored.
            "Secret" => edit::<k::core::v1::Secret>(res, v, |s| {
                if s.type_.as_deref().is_none_or(str::is_empty) {
                    s.type_ = Some("Opaque".into());
                }
                if let Some(plain) = s.string_data.take() {
                    let data = s.data.get_or_insert_with(Default::default);
                    for (k, v) in plain {
                        data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
                    }
                }
            }),
            "ServiceAccount" => edit::<k::core::v1::ServiceAccount>(res, v, |_| {}),
            "Endpoints" => edit::<k::core::v1::Endpoints>(res, v, |_| {}),
            "EndpointSlice" => edit::<k::discovery::v1::EndpointSlice>(res, v, |_| {}),
            _ => Ok(()),
        },
    }
}

/// Create admission of an object that already carries its final name (a generated
/// name's random suffix does not change its validity): type errors become 400s, unknown
/// fields are pruned, defaults and create-time resets are applied, and the result is
/// validated. Returns the validation errors (empty: valid).
///
/// Pods, the kind created most, take one typed pass: decoded once, defaulted, given
/// their create-time resets (default tolerations, initial status) and validated in
/// their typed form, then encoded once. Other kinds are normalised and reset in JSON
/// form and validated after.
pub fn admit_create(res: &ResourceInfo, mut v: Value) -> ApiResult<(Admitted, Vec<FieldError>)> {
    if res.strategy == Strategy::Pod {
        let mut pod: Pod = typed_owned(res, &mut v)?;
        defaults::default_pod(&mut pod);
        prepare_pod_create(&mut pod, res.has_generation);
        drop_empty_meta_typed(&mut pod.metadata);
        let errs = validation::validate_pod(&pod);
        return Ok((Admitted::Pod(Box::new(pod)), errs));
    }
    normalize_and_default(res, &mut v)?;
    prepare_create(res, &mut v);
    let errs = validate_create(res, &v)?;
    Ok((Admitted::Json(v), errs))
}

/// An admitted new object: in JSON form, or (pods) still in the typed form admission
/// used, which is encoded straight to the stored bytes.
pub enum Admitted {
    Json(Value),
    Pod(Box<Pod>),
}

impl Admitted {
    pub fn name(&self) -> &str {
        match self {
            Admitted::Json(v) => v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or(""),
            Admitted::Pod(p) => p.metadata.name.as_deref().unwrap_or(""),
        }
    }

    pub fn set_name(&mut self, name: &str) {
        match self {
            Admitted::Json(v) => v["metadata"]["name"] = json!(name),
            Admitted::Pod(p) => p.metadata.name = Some(name.to_string()),
        }
    }

    /// Sets the uid and creationTimestamp a create gives every object.
    pub fn set_created(&mut self, uid: String, created: jiff::Timestamp) {
        match self {
            Admitted::Json(v) => {
                v["metadata"]["uid"] = json!(uid);
                v["metadata"]["creationTimestamp"] = json!(crate::registry::format_time(created));
            }
            Admitted::Pod(p) => {
                p.metadata.uid = Some(uid);
                // `Time` encodes with second precision, as `format_time` does.
                p.metadata.creation_timestamp = Some(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(created),
                );
            }
        }
    }

    pub fn into_value(self) -> ApiResult<Value> {
        match self {
            Admitted::Json(v) => Ok(v),
            Admitted::Pod(p) => {
                let mut v = untyped(&p)?;
                drop_empty_meta(&mut v);
                Ok(v)
            }
        }
    }
}

/// [`drop_empty_meta`] on the typed form.
fn drop_empty_meta_typed(m: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    if m.labels.as_ref().is_some_and(|l| l.is_empty()) {
        m.labels = None;
    }
    if m.annotations.as_ref().is_some_and(|a| a.is_empty()) {
        m.annotations = None;
    }
    if m.owner_references.as_ref().is_some_and(|o| o.is_empty()) {
        m.owner_references = None;
    }
    if m.finalizers.as_ref().is_some_and(|f| f.is_empty()) {
        m.finalizers = None;
    }
    if m.managed_fields.as_ref().is_some_and(|f| f.is_empty()) {
        m.managed_fields = None;
    }
}

/// Encodes a pod as `serde_json::to_vec(pod)` would (apiVersion, kind, metadata, spec,
/// status: the fields of `Pod`), with room for the usual pod from the start.
pub fn encode_pod(pod: &Pod) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(2048);
    out.extend_from_slice(br#"{"apiVersion":"v1","kind":"Pod","metadata":"#);
    serde_json::to_writer(&mut out, &pod.metadata)?;
    if let Some(spec) = &pod.spec {
        out.extend_from_slice(br#","spec":"#);
        serde_json::to_writer(&mut out, spec)?;
    }
    if let Some(status) = &pod.status {
        out.extend_from_slice(br#","status":"#);
        serde_json::to_writer(&mut out, status)?;
    }
    out.push(b'}');
    Ok(out)
}

/// A new pod's create-time resets in typed form (what [`prepare_create`] does in JSON
/// form for other kinds): the default not-ready/unreachable tolerations, the initial
/// status with its QoS class, and the generation.
fn prepare_pod_create(pod: &mut Pod, has_generation: bool) {
    use k8s_openapi::api::core::v1::{PodStatus, Toleration};
    if let Some(spec) = pod.spec.as_mut() {
        // The ServiceAccount admission's default (and the deprecated field kept equal).
        let account = [&spec.service_account_name, &spec.service_account]
            .into_iter()
            .flatten()
            .find(|a| !a.is_empty())
            .cloned()
            .unwrap_or_else(|| "default".into());
        spec.service_account_name = Some(account.clone());
        spec.service_account = Some(account);
        let missing: Vec<&str> = DEFAULT_TOLERATED
            .into_iter()
            .filter(|key| !tolerates_no_execute(spec.tolerations.as_deref().unwrap_or(&[]), key))
            .collect();
        if !missing.is_empty() {
            let list = spec.tolerations.get_or_insert_with(Vec::new);
            list.extend(missing.into_iter().map(|key| Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(DEFAULT_TOLERATION_SECONDS),
                ..Toleration::default()
            }));
        }
    }
    let qos = pod
        .spec
        .as_ref()
        .map_or("BestEffort", defaults::pod_qos_class);
    pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        qos_class: Some(qos.into()),
        ..PodStatus::default()
    });
    if has_generation {
        pod.metadata.generation = Some(1);
    }
}

fn validate_create(res: &ResourceInfo, v: &Value) -> ApiResult<Vec<FieldError>> {
    Ok(match res.strategy {
        Strategy::DaemonSet => validation::validate_daemonset(&typed(res, v)?),
        Strategy::ControllerRevision => validation::validate_controller_revision(&typed(res, v)?),
        Strategy::Pod => validation::validate_pod(&typed(res, v)?),
        Strategy::Node => validation::validate_node(&typed(res, v)?),
        Strategy::Namespace => validation::validate_namespace(&typed(res, v)?),
        Strategy::Event => validation::validate_event(&typed(res, v)?),
        Strategy::Lease => validation::validate_lease(&typed(res, v)?),
        Strategy::Service => validation::validate_service(&typed(res, v)?),
        Strategy::CertificateSigningRequest => {
            let mut e = generic_meta(res, v)?;
            e.extend(csr::validate_spec(v));
            e
        }
        Strategy::Rbac => match res.kind {
            "Role" => rbac::validate_role(&typed(res, v)?),
            "ClusterRole" => rbac::validate_cluster_role(&typed(res, v)?),
            "RoleBinding" => rbac::validate_role_binding(&typed(res, v)?),
            "ClusterRoleBinding" => rbac::validate_cluster_role_binding(&typed(res, v)?),
            _ => generic_meta(res, v)?,
        },
        Strategy::PriorityClass => priority::validate_priority_class(&typed(res, v)?),
        Strategy::EventV1 | Strategy::Generic => {
            let mut e = generic_meta(res, v)?;
            match res.kind {
                "ConfigMap" => e.extend(validation::validate_config_map(&typed(res, v)?)),
                "Secret" => e.extend(validation::validate_secret(&typed(res, v)?)),
                "EndpointSlice" => e.extend(validation::validate_endpoint_slice(&typed(res, v)?)),
                _ => {}
            }
            e
        }
    })
}

fn generic_meta(res: &ResourceInfo, v: &Value) -> ApiResult<Vec<FieldError>> {
    let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
        typed(res, v.get("metadata").unwrap_or(&Value::Null))?;
    let mut errs = validation::validate_object_meta(
        &meta,
        res.namespaced,
        validation::NameRule::Dns1123Subdomain,
        "metadata",
    );
    errs.extend(data_too_large(res, v));
    Ok(errs)
}

/// The most a ConfigMap's or a Secret's data may hold: 1 MiB of values (keys not
/// counted, binary values as their decoded bytes).
const MAX_DATA_BYTES: usize = 1 << 20;

/// A ConfigMap (`data` plus `binaryData`, reported at the object) or a Secret (`data`)
/// holding more than [`MAX_DATA_BYTES`].
fn data_too_large(res: &ResourceInfo, v: &Value) -> Option<FieldError> {
    fn sum(v: &Value, field: &str, len: fn(&str) -> usize) -> usize {
        v.get(field)
            .and_then(Value::as_object)
            .map_or(0, |m| m.values().filter_map(Value::as_str).map(len).sum())
    }
    // The length of what a base64 string decodes to.
    fn decoded(b64: &str) -> usize {
        let pad = b64.bytes().rev().take_while(|&b| b == b'=').count();
        (b64.len() / 4 * 3).saturating_sub(pad)
    }
    let (total, field) = match res.kind {
        "ConfigMap" if res.strategy == Strategy::Generic => {
            // At the object's root, which kube-apiserver prints as `[]`.
            (
                sum(v, "data", str::len) + sum(v, "binaryData", decoded),
                "[]",
            )
        }
        "Secret" if res.strategy == Strategy::Generic => (sum(v, "data", decoded), "data"),
        _ => return None,
    };
    (total > MAX_DATA_BYTES).then(|| FieldError::too_long(field, MAX_DATA_BYTES))
}

fn generic_meta_update(res: &ResourceInfo, new: &Value, old: &Value) -> ApiResult<Vec<FieldError>> {
    let n: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
        typed(res, new.get("metadata").unwrap_or(&Value::Null))?;
    let o: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
        typed(res, old.get("metadata").unwrap_or(&Value::Null))?;
    let mut errs = generic_meta(res, new)?;
    errs.extend(validation::validate_object_meta_update(&n, &o, "metadata"));
    Ok(errs)
}

pub fn validate_update(res: &ResourceInfo, new: &Value, old: &Value) -> ApiResult<Vec<FieldError>> {
    Ok(match res.strategy {
        Strategy::DaemonSet => {
            validation::validate_daemonset_update(&typed(res, new)?, &typed(res, old)?)
        }
        Strategy::ControllerRevision => {
            validation::validate_controller_revision_update(&typed(res, new)?, &typed(res, old)?)
        }
        Strategy::Pod => validation::validate_pod_update(&typed(res, new)?, &typed(res, old)?),
        Strategy::Node => validation::validate_node_update(&typed(res, new)?, &typed(res, old)?),
        Strategy::Namespace => {
            let mut e = validation::validate_namespace(&typed(res, new)?);
            e.extend(
                generic_meta_update(res, new, old)?
                    .into_iter()
                    .filter(|e| e.field != "metadata.name"),
            );
            e
        }
        Strategy::Service => {
            validation::validate_service_update(&typed(res, new)?, &typed(res, old)?)
        }
        Strategy::Event => {
            let mut e = validation::validate_event(&typed(res, new)?);
            e.extend(generic_meta_update(res, new, old)?);
            e
        }
        Strategy::Lease => {
            let mut e = validation::validate_lease(&typed(res, new)?);
            e.extend(generic_meta_update(res, new, old)?);
            e
        }
        Strategy::Rbac => match res.kind {
            "Role" => rbac::validate_role_update(&typed(res, new)?, &typed(res, old)?),
            "ClusterRole" => {
                rbac::validate_cluster_role_update(&typed(res, new)?, &typed(res, old)?)
            }
            "RoleBinding" => {
                rbac::validate_role_binding_update(&typed(res, new)?, &typed(res, old)?)
            }
            "ClusterRoleBinding" => {
                rbac::validate_cluster_role_binding_update(&typed(res, new)?, &typed(res, old)?)
            }
            _ => generic_meta_update(res, new, old)?,
        },
        Strategy::PriorityClass => {
            priority::validate_priority_class_update(&typed(res, new)?, &typed(res, old)?)
        }
        Strategy::EventV1 | Strategy::Generic | Strategy::CertificateSigningRequest => {
            let mut e = generic_meta_update(res, new, old)?;
            match (res.strategy, res.kind) {
                (Strategy::Generic, "ConfigMap") => e.extend(
                    validation::validate_config_map_update(&typed(res, new)?, &typed(res, old)?),
                ),
                (Strategy::Generic, "Secret") => e.extend(validation::validate_secret_update(
                    &typed(res, new)?,
                    &typed(res, old)?,
                )),
                (Strategy::Generic, "EndpointSlice") => {
                    e.extend(validation::validate_endpoint_slice_update(
                        &typed(res, new)?,
                        &typed(res, old)?,
                    ))
                }
                _ => {}
            }
            e
        }
    })
}

pub fn validate_status_update(
    res: &ResourceInfo,
    new: &Value,
    old: &Value,
) -> ApiResult<Vec<FieldError>> {
    Ok(match res.strategy {
        Strategy::DaemonSet => {
            validation::validate_daemonset_status_update(&typed(res, new)?, &typed(res, old)?)
        }
        Strategy::CertificateSigningRequest => {
            let mut e = generic_meta_update(res, new, old)?;
            e.extend(csr::validate_status(new, old));
            e
        }
        _ => generic_meta_update(res, new, old)?,
    })
}

/// The status a freshly created object starts with (status is not writable on create).
fn initial_status(res: &ResourceInfo) -> Option<Value> {
    match res.strategy {
        Strategy::DaemonSet => Some(json!({
            "currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0
        })),
        Strategy::Namespace => Some(json!({ "phase": "Active" })),
        Strategy::Service => Some(json!({ "loadBalancer": {} })),
        _ => None,
    }
}

/// Kubernetes' DefaultTolerationSeconds admission: a pod that does not tolerate the
/// not-ready / unreachable NoExecute taints gets tolerations for 300 s, so a node that
/// drops out briefly does not lose its pods at once.
const DEFAULT_TOLERATED: [&str; 2] = [
    everynode_api::scheduling::TAINT_NODE_NOT_READY,
    everynode_api::scheduling::TAINT_NODE_UNREACHABLE,
];
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Whether `list` tolerates the NoExecute taint `key`.
fn tolerates_no_execute(list: &[k8s_openapi::api::core::v1::Toleration], key: &str) -> bool {
    let taint = k8s_openapi::api::core::v1::Taint {
        key: key.to_string(),
        effect: "NoExecute".into(),
        ..Default::default()
    };
    list.iter()
        .any(|t| everynode_api::scheduling::toleration_tolerates_taint(t, &taint))
}

/// Create-time resets: status, generation, the DaemonSet template generation.
fn prepare_create(res: &ResourceInfo, obj: &mut Value) {
    if res.strategy == Strategy::Pod {
        // Pods get theirs in [`admit_create`]'s typed pass (`prepare_pod_create`).
        return;
    }
    if res.has_subresource("status") && res.strategy != Strategy::Node {
        match initial_status(res) {
            Some(s) => obj["status"] = s,
            None => {
                if let Some(m) = obj.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    if res.has_generation {
        obj["metadata"]["generation"] = json!(1);
    }
    if res.strategy == Strategy::DaemonSet {
        let given = obj["metadata"]["annotations"][TEMPLATE_GENERATION]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|g| *g >= 1)
            .unwrap_or(1);
        set_annotation(obj, TEMPLATE_GENERATION, &given.to_string());
    }
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value);
}

/// Main-resource update: status comes from storage, generation is bumped on spec
/// changes, the DaemonSet template generation on template changes.
pub fn prepare_update(res: &ResourceInfo, new: &mut Value, old: &Value) {
    if res.has_subresource("status") {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    if res.strategy == Strategy::Service {
        carry_over_service_allocations(new, old);
    }
    if res.strategy == Strategy::Pod {
        // As the Priority admission does on update: what it set at creation is kept when
        // an update leaves it out; a change is left for validation to refuse (pod specs
        // are immutable but for a few fields).
        for field in ["priority", "preemptionPolicy"] {
            let sent = new
                .get("spec")
                .and_then(|s| s.get(field))
                .is_some_and(|v| !v.is_null());
            if let (false, Some(v)) = (sent, old.get("spec").and_then(|s| s.get(field)))
                && new.get("spec").is_some_and(Value::is_object)
            {
                new["spec"][field] = v.clone();
            }
        }
    }
    if res.strategy == Strategy::CertificateSigningRequest {
        // A request is immutable once made; only its metadata can change here.
        new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
    }
    if res.strategy == Strategy::Namespace {
        // Namespace finalizers change only through the finalize subresource.
        new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
    }
    if res.has_generation {
        let old_gen = old["metadata"]["generation"].as_i64().unwrap_or(1);
        let spec_changed = new.get("spec") != old.get("spec");
        new["metadata"]["generation"] = json!(if spec_changed { old_gen + 1 } else { old_gen });
    }
    if res.strategy == Strategy::DaemonSet {
        let old_tg = old["metadata"]["annotations"][TEMPLATE_GENERATION]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(1);
        let template_changed = new["spec"].get("template") != old["spec"].get("template");
        let tg = if template_changed { old_tg + 1 } else { old_tg };
        set_annotation(new, TEMPLATE_GENERATION, &tg.to_string());
    }
}

/// What an update leaves out of an allocated Service (its cluster IP, node ports) is kept
/// from the stored one; see `service_alloc::carry_over_allocated`.
fn carry_over_service_allocations(new: &mut Value, old: &Value) {
    let (Ok(mut n), Ok(o)) = (
        serde_json::from_value::<Service>(new.clone()),
        serde_json::from_value::<Service>(old.clone()),
    ) else {
        return;
    };
    everynode_api::service_alloc::carry_over_allocated(&mut n, &o);
    if let Ok(spec) = serde_json::to_value(&n.spec) {
        new["spec"] = spec;
    }
}

/// `/status` update: the spec comes from storage; status and metadata are kept.
pub fn prepare_status_update(res: &ResourceInfo, new: &mut Value, old: &Value) {
    match old.get("spec") {
        Some(s) => new["spec"] = s.clone(),
        None => {
            if let Some(m) = new.as_object_mut() {
                m.remove("spec");
            }
        }
    }
    if res.has_generation {
        new["metadata"]["generation"] = old["metadata"]["generation"].clone();
    }
    if res.strategy == Strategy::DaemonSet {
        new["metadata"]["annotations"] = old["metadata"]["annotations"].clone();
    }
    if res.strategy == Strategy::CertificateSigningRequest {
        // The signer's write: the certificate and its own conditions (Failed); approval
        // and denial are kept as they were (they change only through /approval).
        csr::keep_decisions(new, old);
    }
}

/// `/approval` of a CertificateSigningRequest: only `status.conditions` change.
pub fn prepare_approval_update(new: &mut Value, old: &Value) {
    let conditions = new.pointer("/status/conditions").cloned();
    let mut merged = old.clone();
    if let Some(m) = merged.as_object_mut() {
        m.insert("metadata".into(), new["metadata"].clone());
    }
    match conditions {
        Some(c) => merged["status"]["conditions"] = c,
        None => {
            if let Some(s) = merged.get_mut("status").and_then(Value::as_object_mut) {
                s.remove("conditions");
            }
        }
    }
    *new = merged;
}

/// The server fills in who asked for a certificate; clients cannot choose it.
pub fn set_csr_requestor(obj: &mut Value, user: &crate::auth::User) {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    obj["spec"]["username"] = json!(user.name);
    obj["spec"]["groups"] = json!(user.groups);
    obj["spec"]["uid"] = json!("");
    if let Some(spec) = obj["spec"].as_object_mut() {
        spec.remove("extra");
    }
}

/// CertificateSigningRequest rules (certificates.k8s.io/v1).
mod csr {
    use super::*;
    use base64::Engine;

    const KNOWN_USAGES: &[&str] = &[
        "signing",
        "digital signature",
        "content commitment",
        "key encipherment",
        "key agreement",
        "data encipherment",
        "cert sign",
        "crl sign",
        "encipher only",
        "decipher only",
        "any",
        "server auth",
        "client auth",
        "code signing",
        "email protection",
        "s/mime",
        "ipsec end system",
        "ipsec tunnel",
        "ipsec user",
        "timestamping",
        "ocsp signing",
        "microsoft sgc",
        "netscape sgc",
    ];

    /// The DER of a PEM `CERTIFICATE REQUEST` block, or why it is not one.
    pub fn request_der(pem: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
        let begin = "-----BEGIN CERTIFICATE REQUEST-----";
        let end = "-----END CERTIFICATE REQUEST-----";
        let start = text
            .find(begin)
            .ok_or_else(|| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
        let rest = &text[start + begin.len()..];
        let stop = rest
            .find(end)
            .ok_or_else(|| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
        let b64: String = rest[..stop].split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the PEM block does not decode: {e}"))
    }

    /// Parses and checks the signature of a PKCS#10 request.
    pub fn check_request(pem: &[u8]) -> Result<(), String> {
        use x509_parser::prelude::FromDer;
        let der = request_der(pem)?;
        let (_, req) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
            .map_err(|e| format!("the request is not a PKCS#10 certificate request: {e}"))?;
        req.verify_signature()
            .map_err(|e| format!("the request's signature does not verify: {e}"))
    }

    pub fn validate_spec(v: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let request = v
            .pointer("/spec/request")
            .and_then(Value::as_str)
            .unwrap_or("");
        if request.is_empty() {
            errs.push(FieldError::required("spec.request", ""));
        } else {
            // `request` is base64 of the PEM (a []byte field).
            match base64::engine::general_purpose::STANDARD.decode(request) {
                Ok(pem) => {
                    if let Err(e) = check_request(&pem) {
                        errs.push(FieldError::invalid_omitted("spec.request", e));
                    }
                }
                Err(_) => errs.push(FieldError::invalid_omitted(
                    "spec.request",
                    "the request is not base64",
                )),
            }
        }
        let signer = v
            .pointer("/spec/signerName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if signer.is_empty() {
            errs.push(FieldError::required("spec.signerName", ""));
        } else if !signer
            .split_once('/')
            .is_some_and(|(d, p)| d.contains('.') && !p.is_empty())
        {
            errs.push(FieldError::invalid(
                "spec.signerName",
                signer,
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            ));
        }
        match v.pointer("/spec/usages").and_then(Value::as_array) {
            None => errs.push(FieldError::required("spec.usages", "")),
            Some(us) if us.is_empty() => errs.push(FieldError::required("spec.usages", "")),
            Some(us) => {
                let mut seen = Vec::new();
                for (i, u) in us.iter().enumerate() {
                    let u = u.as_str().unwrap_or("");
                    let field = format!("spec.usages[{i}]");
                    if !KNOWN_USAGES.contains(&u) {
                        errs.push(FieldError::not_supported(&field, u, KNOWN_USAGES));
                    } else if seen.contains(&u) {
                        errs.push(FieldError::duplicate(&field, u));
                    }
                    seen.push(u);
                }
            }
        }
        if let Some(secs) = v.pointer("/spec/expirationSeconds").and_then(Value::as_i64)
            && secs < 600
        {
            errs.push(FieldError::invalid(
                "spec.expirationSeconds",
                &secs.to_string(),
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
        errs
    }

    fn condition_types(v: &Value) -> Vec<String> {
        v.pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("type").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn validate_status(new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let types = condition_types(new);
        let has = |t: &str| types.iter().any(|x| x == t);
        for (i, t) in types.iter().enumerate() {
            if types[..i].contains(t) && matches!(t.as_str(), "Approved" | "Denied" | "Failed") {
                errs.push(FieldError::duplicate(
                    format!("status.conditions[{i}].type"),
                    t,
                ));
            }
        }
        if has("Approved") && has("Denied") {
            errs.push(FieldError::invalid_omitted(
                "status.conditions",
                "Approved and Denied conditions are mutually exclusive",
            ));
        }
        let old_types = condition_types(old);
        for t in ["Approved", "Denied"] {
            if old_types.iter().any(|x| x == t) && !has(t) {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    &format!("updates may not remove a condition of type \"{t}\""),
                ));
            }
        }
        let cert = |v: &Value| {
            v.pointer("/status/certificate")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (new_cert, old_cert) = (cert(new), cert(old));
        if !old_cert.is_empty() && new_cert != old_cert {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
        if !new_cert.is_empty() && !has("Approved") {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "certificate may only be set if the request is approved",
            ));
        }
        errs
    }

    /// Keeps the Approved and Denied conditions of `old` in `new`.
    pub fn keep_decisions(new: &mut Value, old: &Value) {
        let decisions = |v: &Value| -> Vec<Value> {
            v.pointer("/status/conditions")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter(|c| matches!(c["type"].as_str(), Some("Approved" | "Denied")))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut conds: Vec<Value> = new
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter(|c| !matches!(c["type"].as_str(), Some("Approved" | "Denied")))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut kept = decisions(old);
        kept.append(&mut conds);
        if kept.is_empty() {
            if let Some(s) = new.get_mut("status").and_then(Value::as_object_mut) {
                s.remove("conditions");
            }
        } else {
            if !new["status"].is_object() {
                new["status"] = json!({});
            }
            new["status"]["conditions"] = Value::Array(kept);
        }
    }
}

/// Kubernetes' pod QoS class, used when the pod's status is reset.
pub fn pod_qos(spec: &k8s_openapi::api::core::v1::PodSpec) -> &'static str {
    defaults::pod_qos_class(spec)
}

/// The value of a field-selector field for this object, or `Err` with kube-apiserver's
/// message when the field is not supported for the resource.
pub fn field_value(res: &ResourceInfo, obj: &Value, field: &str) -> Result<String, String> {
    let s = |p: &str| -> String {
        match obj.pointer(p) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    match field {
        "metadata.name" => return Ok(s("/metadata/name")),
        "metadata.namespace" => return Ok(s("/metadata/namespace")),
        _ => {}
    }
    let v = match (res.strategy, field) {
        (Strategy::Pod, "spec.nodeName") => s("/spec/nodeName"),
        (Strategy::Pod, "spec.restartPolicy") => s("/spec/restartPolicy"),
        (Strategy::Pod, "spec.schedulerName") => s("/spec/schedulerName"),
        (Strategy::Pod, "spec.serviceAccountName") => s("/spec/serviceAccountName"),
        (Strategy::Pod, "spec.hostNetwork") => {
            let v = s("/spec/hostNetwork");
            if v.is_empty() { "false".into() } else { v }
        }
        (Strategy::Pod, "status.phase") => s("/status/phase"),
        (Strategy::Pod, "status.podIP") => s("/status/podIP"),
        (Strategy::Pod, "status.nominatedNodeName") => s("/status/nominatedNodeName"),
        (Strategy::CertificateSigningRequest, "spec.signerName") => s("/spec/signerName"),
        (Strategy::Node, "spec.unschedulable") => {
            let v = s("/spec/unschedulable");
            if v.is_empty() { "false".into() } else { v }
        }
        (Strategy::Namespace, "status.phase") => s("/status/phase"),
        (Strategy::Event, f) if f.starts_with("involvedObject.") => {
            let sub = &f["involvedObject.".len()..];
            match sub {
                "kind" | "namespace" | "name" | "uid" | "apiVersion" | "resourceVersion"
                | "fieldPath" => s(&format!("/involvedObject/{sub}")),
                _ => return Err(format!("field label not supported: {field}")),
            }
        }
        (Strategy::Event, "reason") => s("/reason"),
        (Strategy::Event, "reportingComponent") => s("/reportingComponent"),
        (Strategy::Event, "source") => {
            let c = s("/source/component");
            if c.is_empty() {
                s("/reportingComponent")
            } else {
                c
            }
        }
        (Strategy::Event, "type") => s("/type"),
        (Strategy::EventV1, f) if f.starts_with("regarding.") => {
            s(&format!("/regarding/{}", &f["regarding.".len()..]))
        }
        (Strategy::EventV1, "reason") => s("/reason"),
        (Strategy::EventV1, "reportingController") => s("/reportingController"),
        (Strategy::EventV1, "type") => s("/type"),
        (Strategy::Generic, "type") if res.kind == "Secret" => s("/type"),
        _ => return Err(format!("field label not supported: {field}")),
    };
    Ok(v)
}

// ---------------------------------------------------------------------------------
// events.k8s.io/v1 <-> core/v1 Event: both views share the `events` storage, which
// holds the core/v1 form (so `kubectl describe` sees events that kube-rs recorders
// write through events.k8s.io/v1).

fn move_field(
    from: &mut serde_json::Map<String, Value>,
    to: &mut serde_json::Map<String, Value>,
    a: &str,
    b: &str,
) {
    if let Some(v) = from.remove(a)
        && !v.is_null()
    {
        to.insert(b.to_string(), v);
    }
}

/// Converts an object of this resource's API view into its stored form.
pub fn to_storage(res: &ResourceInfo, v: Value) -> Value {
    if res.strategy != Strategy::EventV1 {
        return v;
    }
    let Value::Object(mut src) = v else { return v };
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    src.remove("apiVersion");
    src.remove("kind");
    for (a, b) in [
        ("metadata", "metadata"),
        ("regarding", "involvedObject"),
        ("related", "related"),
        ("note", "message"),
        ("reason", "reason"),
        ("type", "type"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
        ("eventTime", "eventTime"),
        ("series", "series"),
        ("action", "action"),
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
    ] {
        move_field(&mut src, &mut out, a, b);
    }
    if !out.contains_key("involvedObject") {
        out.insert("involvedObject".into(), json!({}));
    }
    if !out.contains_key("source")
        && let Some(c) = out.get("reportingComponent").cloned()
    {
        out.insert("source".into(), json!({ "component": c }));
    }
    Value::Object(out)
}

/// Converts a stored object into this resource's API view.
pub fn from_storage(res: &ResourceInfo, v: Value) -> Value {
    if res.strategy != Strategy::EventV1 {
        return v;
    }
    let Value::Object(mut src) = v else { return v };
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    out.insert("kind".into(), json!("Event"));
    src.remove("apiVersion");
    src.remove("kind");
    for (b, a) in [
        ("metadata", "metadata"),
        ("regarding", "involvedObject"),
        ("related", "related"),
        ("note", "message"),
        ("reason", "reason"),
        ("type", "type"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
        ("eventTime", "eventTime"),
        ("series", "series"),
        ("action", "action"),
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
    ] {
        move_field(&mut src, &mut out, a, b);
    }
    // events.k8s.io/v1 requires eventTime; old core events may lack it.
    if !out.contains_key("eventTime") {
        let t = out
            .get("deprecatedLastTimestamp")
            .and_then(|t| t.as_str())
            .map(|t| t.replace('Z', ".000000Z"))
            .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".to_string());
        out.insert("eventTime".into(), json!(t));
    }
    Value::Object(out)
}
