//! The generic registry: every resource's objects are stored as JSON under
//! `/registry/<storage>/[<namespace>/]<name>`, without `resourceVersion` (which is the
//! store revision of the object's last write and is put in on every read, as
//! kube-apiserver does over etcd). Create, update (the retrying "guaranteed update"),
//! and delete (grace periods, finalizers, propagation policy) live here, generic over
//! resources; the per-kind rules come from `strategy.rs`.

use std::time::Duration;

use everynode_store::{KeyValue, Store, WriteError};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceInfo, Strategy};
use crate::services::{ServiceAllocator, ServiceConfig};
use crate::strategy;

/// Characters kube-apiserver uses for `generateName` suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// How many times a write retries after losing a compare-and-swap race.
const MAX_RETRIES: usize = 32;

pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// RFC 3339 with second precision, as Kubernetes' `metav1.Time`.
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

/// A random (version 4) UUID for `metadata.uid`, from the thread's CSPRNG (seeded and
/// reseeded from the OS) rather than a `getrandom` system call per object.
pub fn new_uid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Which part of the object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    /// A CertificateSigningRequest's `/approval`: only its conditions change.
    Approval,
    /// A write by the server itself (binding, namespace finalize): no spec/status
    /// resets and no update validation; the caller owns the semantics.
    System,
}

/// Options common to writes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// Who writes, for field ownership (`managed`); `None` leaves `managedFields` as
    /// they are.
    pub manager: Option<crate::managed::Manager>,
}

/// Delete options (from the body or the query).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body, then lets query parameters fill in what it lacks.
    pub fn parse(
        body: Option<&Value>,
        query: &std::collections::HashMap<String, String>,
    ) -> ApiResult<Self> {
        let mut o = DeleteOptions::default();
        if let Some(b) = body.filter(|b| !b.is_null()) {
            if !b.is_object() {
                return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
            }
            o.grace_period_seconds = b.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.propagation_policy = b
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.orphan_dependents = b.get("orphanDependents").and_then(Value::as_bool);
            o.precondition_uid = b
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.precondition_rv = b
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.dry_run = b
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All"));
        }
        if o.grace_period_seconds.is_none()
            && let Some(g) = query.get("gracePeriodSeconds")
        {
            o.grace_period_seconds =
                Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}"))
                })?);
        }
        if o.propagation_policy.is_none() {
            o.propagation_policy = query.get("propagationPolicy").cloned();
        }
        if o.orphan_dependents.is_none() {
            o.orphan_dependents = query
                .contains_key("orphanDependents")
                .then(|| crate::request::flag(query, "orphanDependents"));
        }
        if query.get("dryRun").is_some_and(|v| v == "All") {
            o.dry_run = true;
        }
        if let Some(p) = &o.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::invalid_delete_options(&format!(
                "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
        if o.propagation_policy.is_some() && o.orphan_dependents.is_some() {
            return Err(ApiError::invalid_delete_options(
                "propagationPolicy: Invalid value: \"\": orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        Ok(o)
    }
}

impl ApiError {
    fn invalid_delete_options(msg: &str) -> Self {
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("DeleteOptions.meta.k8s.io \"\" is invalid: {msg}"),
            details: None,
        }
    }
}

/// The outcome of a delete: the object as last seen, and whether it is gone or only
/// marked for deletion (grace period or finalizers pending).
pub struct Deleted {
    pub object: Value,
    pub gone: bool,
}

/// Decodes a stored object into the resource's API view with its resourceVersion.
pub fn decode(res: &ResourceInfo, kv: &KeyValue) -> ApiResult<Value> {
    decode_at(res, &kv.value, kv.mod_revision)
}

pub fn decode_at(res: &ResourceInfo, bytes: &[u8], rev: u64) -> ApiResult<Value> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("corrupt object: {e}")))?;
    let mut v = strategy::from_storage(res, v);
    v["metadata"]["resourceVersion"] = json!(rev.to_string());
    Ok(v)
}

fn encode(res: &ResourceInfo, obj: &Value) -> ApiResult<bytes::Bytes> {
    // The store keeps these bytes while the object and its history last: no spare
    // capacity (a growing Vec averages a third of its size unused).
    let compact = |mut v: Vec<u8>| {
        v.shrink_to_fit();
        bytes::Bytes::from(v)
    };
    if res.strategy != Strategy::EventV1 && obj.pointer("/metadata/resourceVersion").is_none() {
        // Already in its stored form: no copy needed.
        return serde_json::to_vec(obj)
            .map(compact)
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    let mut stored = strategy::to_storage(res, obj.clone());
    if let Some(m) = stored.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&stored)
        .map(compact)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// An updated object, and its API form as JSON where it could be made from the stored
/// bytes without encoding the object again (see [`api_bytes`]).
pub struct Updated {
    pub object: Value,
    pub json: Option<bytes::Bytes>,
}

impl Updated {
    fn object(object: Value) -> Updated {
        Updated { object, json: None }
    }
}

/// A created object: its JSON (the API form), or the object itself.
pub enum Created {
    Json(bytes::Bytes),
    Object(Value),
}

impl Created {
    pub fn into_value(self) -> ApiResult<Value> {
        match self {
            Created::Object(v) => Ok(v),
            Created::Json(b) => serde_json::from_slice(&b)
                .map_err(|e| ApiError::internal(format!("encoding the created object: {e}"))),
        }
    }
}

/// Where [`with_resource_version`] can put the resourceVersion into stored bytes: just
/// inside the brace of the top-level `metadata` object, when that object is not empty.
/// A scan of the compact JSON the store holds, without decoding it; `None` when the
/// bytes are not a JSON object with such a `metadata`.
fn metadata_offset(b: &[u8]) -> Option<usize> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    loop {
        let key_start = i;
        i = skip_string(b, i)?;
        let is_metadata = b.get(key_start..i) == Some(b"\"metadata\"".as_slice());
        i = skip_ws(b, i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if is_metadata {
            if b.get(i) != Some(&b'{') || b.get(skip_ws(b, i + 1)) == Some(&b'}') {
                return None;
            }
            return Some(i + 1);
        }
        i = skip_ws(b, skip_value(b, i)?);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The index just past the JSON string starting at `i`.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The index just past the JSON value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The API form of an object's stored bytes at revision `rev`, made without decoding
/// them: the stored form is the API form without its resourceVersion, except for
/// events.k8s.io's view of events. `None` where that does not hold or the bytes have no
/// metadata to put it in; decode those instead ([`decode_at`]).
pub(crate) fn api_bytes(res: &ResourceInfo, stored: &[u8], rev: u64) -> Option<bytes::Bytes> {
    if res.strategy == Strategy::EventV1 {
        return None;
    }
    let at = metadata_offset(stored)?;
    Some(with_resource_version(stored, at, &rev.to_string()))
}

/// The stored bytes of an object with `"resourceVersion":"<rv>"` put in as the first
/// field of its metadata, at `at` from [`metadata_offset`].
fn with_resource_version(stored: &[u8], at: usize, rv: &str) -> bytes::Bytes {
    let mut out = Vec::with_capacity(stored.len() + rv.len() + 24);
    out.extend_from_slice(&stored[..at]);
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rv.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(&stored[at..]);
    out.into()
}

fn storage_error(e: WriteError) -> ApiError {
    match e {
        WriteError::Storage(m) => ApiError::internal(format!("storage: {m}")),
        WriteError::Closed => ApiError::service_unavailable("the server is shutting down"),
        other => ApiError::internal(other.to_string()),
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

pub fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Strips what only the server may set, before admission of a new object.
fn clear_system_fields(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
            "managedFields",
        ] {
            m.remove(f);
        }
    }
}

/// Carries the system fields of the stored object over to an update.
fn keep_system_fields(new: &mut Value, old: &Value) {
    let Some(om) = old.get("metadata").and_then(Value::as_object) else {
        return;
    };
    let Some(nm) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if nm
        .get("uid")
        .is_none_or(|u| u.as_str().is_none_or(|s| s.is_empty()))
        && let Some(u) = om.get("uid")
    {
        nm.insert("uid".into(), u.clone());
    }
    for f in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match om.get(f) {
            Some(v) => {
                nm.insert(f.into(), v.clone());
            }
            None => {
                nm.remove(f);
            }
        }
    }
    // Field ownership carries over; `managed::after_admission` rewrites it for the
    // writes it tracks.
    match om.get("managedFields") {
        Some(v) => {
            nm.insert("managedFields".into(), v.clone());
        }
        None => {
            nm.remove("managedFields");
        }
    }
    nm.remove("selfLink");
}

/// Whether two objects are equal apart from their resourceVersions (compared in place:
/// every update asks this, and objects can be large).
fn same_but_rv(a: &Value, b: &Value) -> bool {
    const RV: &str = "resourceVersion";
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let same_meta = |x: &Value, y: &Value| match (x.as_object(), y.as_object()) {
        (Some(x), Some(y)) => {
            x.len() - usize::from(x.contains_key(RV)) == y.len() - usize::from(y.contains_key(RV))
                && x.iter().all(|(k, v)| k == RV || y.get(k) == Some(v))
        }
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| match b.get(k) {
            Some(w) if k == "metadata" => same_meta(v, w),
            other => other == Some(v),
        })
}

/// The registry over one store. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    pub store: Store,
    /// Service cluster IPs and node ports (`services.rs`).
    pub services: std::sync::Arc<ServiceAllocator>,
    /// Store events decoded once for every watcher that receives them (`watch.rs`).
    pub decoded: std::sync::Arc<crate::watch::DecodeCache>,
    /// The global default PriorityClass, for the Priority admission (`priority.rs`).
    pub default_priority: std::sync::Arc<crate::priority::DefaultClass>,
}

/// Where a pod's containers find their ServiceAccount token, CA bundle and namespace.
pub const API_ACCESS_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The ServiceAccount admission's token volume: a projected `kube-api-access-xxxxx`
/// (a bound token refreshed by the kubelet, `kube-root-ca.crt`'s `ca.crt`, the
/// namespace) mounted read-only at [`API_ACCESS_MOUNT_PATH`] in every init container and
/// container that does not mount something of its own there. A pod that already has
/// such a volume keeps it (and its name); one whose containers all mount their own gets
/// none.
fn mount_api_access(spec: &mut k8s_openapi::api::core::v1::PodSpec) {
    use k8s_openapi::api::core::v1::VolumeMount;
    const PREFIX: &str = "kube-api-access-";
    let existing = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with(PREFIX))
        .map(|v| v.name.clone());
    // (No volume has the prefix yet, so a fresh suffix cannot clash with one.)
    let name = existing
        .clone()
        .unwrap_or_else(|| format!("{PREFIX}{}", random_suffix(5)));
    let mount = VolumeMount {
        name: name.clone(),
        mount_path: API_ACCESS_MOUNT_PATH.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    let mut needed = false;
    for c in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
        if !mounts.iter().any(|m| m.mount_path == API_ACCESS_MOUNT_PATH) {
            mounts.push(mount.clone());
            needed = true;
        }
    }
    if needed && existing.is_none() {
        spec.volumes
            .get_or_insert_with(Vec::new)
            .push(api_access_volume(name));
    }
}

fn api_access_volume(name: String) -> k8s_openapi::api::core::v1::Volume {
    use k8s_openapi::api::core::v1::{
        ConfigMapProjection, DownwardAPIProjection, DownwardAPIVolumeFile, KeyToPath,
        ObjectFieldSelector, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume,
        VolumeProjection,
    };
    Volume {
        name,
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o644),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        expiration_seconds: Some(3607),
                        path: "token".into(),
                        audience: None,
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            mode: None,
                        }]),
                        optional: None,
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                api_version: Some("v1".into()),
                                field_path: "metadata.namespace".into(),
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
        }),
        ..Volume::default()
    }
}

impl Registry {
    pub fn new(store: Store) -> Self {
        Self::with_services(store, ServiceConfig::default())
    }

    /// A registry whose Services get addresses and node ports from `config`'s ranges.
    pub fn with_services(store: Store, config: ServiceConfig) -> Self {
        let services = std::sync::Arc::new(ServiceAllocator::load(&store, config));
        Registry {
            store,
            services,
            decoded: Default::default(),
            default_priority: Default::default(),
        }
    }

    fn is_service(res: &ResourceInfo) -> bool {
        res.strategy == Strategy::Service
    }

    /// After a write of `res`: a PriorityClass written may change the global default.
    fn written(&self, res: &ResourceInfo) {
        if res.strategy == Strategy::PriorityClass {
            self.default_priority.invalidate();
        }
    }

    pub fn get(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        let kv = self
            .store
            .get(&res.key(ns, name))
            .ok_or_else(|| ApiError::not_found(res, name))?;
        decode(res, &kv)
    }

    /// NamespaceLifecycle admission: the namespace must exist and not be terminating.
    fn check_namespace(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult<()> {
        let nsres = resources::namespaces();
        // Reads only `metadata.deletionTimestamp` (every create into a namespace asks).
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(default)]
            metadata: MetaProbe,
        }
        #[derive(serde::Deserialize, Default)]
        struct MetaProbe {
            #[serde(default, rename = "deletionTimestamp")]
            deletion_timestamp: Option<serde::de::IgnoredAny>,
        }
        match self.store.get(&nsres.key(None, ns)) {
            None => Err(ApiError::namespace_not_found(ns)),
            // Nothing to parse when the field's name is nowhere in the object (the
            // usual case); when it is (perhaps only inside a label), the parse decides.
            Some(kv) if memchr::memmem::find(&kv.value, b"deletionTimestamp").is_none() => Ok(()),
            Some(kv) => {
                let probe: Probe = serde_json::from_slice(&kv.value)
                    .map_err(|e| ApiError::internal(format!("corrupt object: {e}")))?;
                if probe.metadata.deletion_timestamp.is_some() {
                    Err(ApiError::namespace_terminating(res, name, ns))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The ServiceAccount admission: a pod runs as a ServiceAccount that exists in its
    /// namespace (mirror pods, which name none, excepted), and a pod that names no image
    /// pull secrets gets its ServiceAccount's.
    fn check_service_account(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        pod: &mut k8s_openapi::api::core::v1::Pod,
    ) -> ApiResult<()> {
        let mirror = pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
        let Some(sas) = resources::lookup("", "v1", "serviceaccounts") else {
            return Ok(());
        };
        let account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.as_deref())
            .unwrap_or("default");
        if mirror {
            return Ok(());
        }
        if let Some(kv) = self.store.get(&sas.key(Some(ns), account)) {
            let none_named = pod
                .spec
                .as_ref()
                .is_some_and(|s| s.image_pull_secrets.as_ref().is_none_or(Vec::is_empty));
            let has = |field: &[u8]| memchr::memmem::find(&kv.value, field).is_some();
            // (Most ServiceAccounts set neither: nothing to decode then.)
            let sa: Option<k8s_openapi::api::core::v1::ServiceAccount> =
                if (none_named && has(b"imagePullSecrets")) || has(b"automountServiceAccountToken")
                {
                    Some(
                        serde_json::from_slice(&kv.value)
                            .map_err(|e| ApiError::internal(format!("corrupt object: {e}")))?,
                    )
                } else {
                    None
                };
            let sa_automount = sa
                .as_ref()
                .and_then(|sa| sa.automount_service_account_token);
            if let Some(spec) = pod.spec.as_mut() {
                if none_named && let Some(sa) = &sa {
                    spec.image_pull_secrets =
                        sa.image_pull_secrets.clone().filter(|s| !s.is_empty());
                }
                if spec
                    .automount_service_account_token
                    .or(sa_automount)
                    .unwrap_or(true)
                {
                    mount_api_access(spec);
                }
            }
            return Ok(());
        }
        Err(ApiError::forbidden_object(
            res,
            name,
            &format!(
                "error looking up service account {ns}/{account}: serviceaccount \"{account}\" not found"
            ),
        ))
    }

    /// Admission for a new object: type, namespace, defaults, create-time resets,
    /// validation. Returns the admitted object and the validation errors (empty: valid).
    fn admit_create(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
    ) -> ApiResult<(strategy::Admitted, Vec<everynode_api::field::FieldError>)> {
        crate::request::check_type(res, &mut obj)?;
        if obj
            .pointer("/metadata/resourceVersion")
            .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        clear_system_fields(&mut obj);
        // An empty one may be sent; the stored form has none.
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        if res.namespaced {
            let ns = ns.ok_or_else(|| {
                ApiError::bad_request("a namespace is required to create this object")
            })?;
            match meta_str(&obj, "namespace") {
                None | Some("") => obj["metadata"]["namespace"] = json!(ns),
                Some(n) if n == ns => {}
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        } else if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
        strategy::admit_create(res, obj)
    }

    /// Creates an object (admission included). Returns the stored object.
    pub async fn create(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        self.create_encoded(res, ns, obj, opts).await?.into_value()
    }

    /// [`Registry::create`], returning the created object as its JSON when that could
    /// be made from the stored bytes (the stored form is the API form, so the answer is
    /// the stored bytes with the resourceVersion put in, not a second encoding).
    pub async fn create_encoded(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Created> {
        let generate = match meta_str(&obj, "name") {
            Some(n) if !n.is_empty() => None,
            _ => meta_str(&obj, "generateName")
                .filter(|g| !g.is_empty())
                .map(|g| g.chars().take(58).collect::<String>()),
        };
        // A generated name is chosen before admission, so the object is admitted and
        // validated once: another random suffix (same alphabet, same length) after an
        // AlreadyExists cannot change its validity.
        if let Some(base) = &generate {
            obj["metadata"]["name"] = json!(format!("{base}{}", random_suffix(5)));
        }
        // Admission plugins run before kube-apiserver picks a generated name: their
        // refusals name the object by its `generateName` (`pods "nosa-" is forbidden`).
        let admitted_as = generate
            .as_ref()
            .and_then(|_| meta_str(&obj, "generateName"))
            .map(str::to_string);
        let (mut obj, errs) = self.admit_create(res, ns, obj)?;
        let mut name = obj.name().to_string();
        let shown = admitted_as.as_deref().unwrap_or(&name);
        // Kubernetes' order: the admission plugins (namespace lifecycle, then the
        // ServiceAccount lookup) before the object's validation.
        if res.namespaced
            && let Some(ns) = ns
        {
            self.check_namespace(res, ns, shown)?;
            if let strategy::Admitted::Pod(pod) = &mut obj {
                self.check_service_account(res, ns, shown, pod)?;
                crate::priority::admit_pod(&self.store, &self.default_priority, res, shown, pod)?;
            }
        }
        if !errs.is_empty() {
            return Err(ApiError::invalid(res, &name, &errs));
        }
        // Validating admission, after the object's own validation.
        if let strategy::Admitted::Json(v) = &obj
            && res.strategy == Strategy::PriorityClass
        {
            crate::priority::check_one_default(&self.store, res, v)?;
        }
        // A server-side apply that creates: the applier owns what it applied.
        if let Some(m) = opts
            .manager
            .as_ref()
            .filter(|m| m.apply.is_some() || crate::managed::tracked_from_creation(res))
        {
            match &mut obj {
                strategy::Admitted::Json(v) => crate::managed::after_admission(res, None, v, m),
                strategy::Admitted::Pod(p) => {
                    let mut v = json!({ "metadata": {} });
                    crate::managed::after_admission(res, None, &mut v, m);
                    p.metadata.managed_fields =
                        serde_json::from_value(v["metadata"]["managedFields"].take()).ok();
                }
            }
        }
        let attempts = if generate.is_some() { 8 } else { 1 };
        for attempt in 0..attempts {
            if attempt > 0
                && let Some(base) = &generate
            {
                name = format!("{base}{}", random_suffix(5));
                obj.set_name(&name);
            }
            obj.set_created(new_uid(), now());
            let alloc = match &mut obj {
                strategy::Admitted::Json(v) if Self::is_service(res) => {
                    Some(self.services.create(v)?)
                }
                _ => None,
            };
            if opts.dry_run {
                if let Some(a) = alloc {
                    self.services.rollback(a);
                }
                return Ok(Created::Object(obj.into_value()?));
            }
            let key = res.key(ns, &name);
            let encoded = match &obj {
                strategy::Admitted::Json(v) => encode(res, v),
                strategy::Admitted::Pod(p) => strategy::encode_pod(p)
                    .map(|mut bytes| {
                        bytes.shrink_to_fit();
                        bytes::Bytes::from(bytes)
                    })
                    .map_err(|e| ApiError::internal(e.to_string())),
            };
            let result = match encoded {
                Ok(bytes) => self.store.create(&key, bytes).await,
                Err(e) => {
                    if let Some(a) = alloc {
                        self.services.rollback(a);
                    }
                    return Err(e);
                }
            };
            if let Some(a) = alloc {
                match result {
                    Ok(_) => self.services.commit(a),
                    Err(_) => self.services.rollback(a),
                }
            }
            match result {
                Ok(kv) => {
                    self.written(res);
                    // The namespace stands whatever becomes of its ServiceAccount (the
                    // next start creates one that is missing).
                    if res.strategy == Strategy::Namespace
                        && let Err(e) = self.default_service_account(&name).await
                    {
                        tracing::warn!(namespace = %name, error = %e.message, "default ServiceAccount");
                    }
                    if let Some(json) = api_bytes(res, &kv.value, kv.mod_revision) {
                        return Ok(Created::Json(json));
                    }
                    let mut v = obj.into_value()?;
                    v["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
                    return Ok(Created::Object(v));
                }
                Err(WriteError::AlreadyExists) if generate.is_some() => continue,
                Err(WriteError::AlreadyExists) => return Err(ApiError::already_exists(res, &name)),
                Err(e) => return Err(storage_error(e)),
            }
        }
        Err(ApiError::generate_name_exhausted(res, &name))
    }

    /// The retrying read-modify-write every update and patch goes through. `mutate`
    /// receives the current object (with its resourceVersion) and returns the desired
    /// one; a resourceVersion left in the result is a precondition (409 on mismatch).
    pub async fn update<F>(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        mutate: F,
    ) -> ApiResult<Updated>
    where
        F: Fn(&Value) -> ApiResult<Value>,
    {
        let key = res.key(ns, name);
        for _ in 0..MAX_RETRIES {
            let kv = self
                .store
                .get(&key)
                .ok_or_else(|| ApiError::not_found(res, name))?;
            let old = decode(res, &kv)?;
            let mut new = mutate(&old)?;
            crate::request::check_type(res, &mut new)?;
            let body_name = name_of(&new).to_string();
            if body_name.is_empty() {
                new["metadata"]["name"] = json!(name);
            } else if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            if res.namespaced {
                match meta_str(&new, "namespace") {
                    None | Some("") => new["metadata"]["namespace"] = json!(ns.unwrap_or("")),
                    Some(n) if Some(n) == ns => {}
                    Some(_) => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                }
            }
            let precondition = meta_str(&new, "resourceVersion")
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            if let Some(rv) = &precondition
                && *rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::stale(res, name));
            }
            let manager = opts.manager.as_ref().filter(|_| part == Part::Main);
            if let Some(m) = manager {
                crate::managed::before_defaults(&old, &mut new, m)?;
            }
            // managedFields a client rewrote (kubectl's client-side to server-side apply
            // move) are kept; anything else carries the stored ones over.
            let sent = manager
                .and_then(|_| new.pointer("/metadata/managedFields").cloned())
                .filter(|mf| old.pointer("/metadata/managedFields") != Some(mf));
            keep_system_fields(&mut new, &old);
            if let Some(mf) = sent {
                new["metadata"]["managedFields"] = mf;
            }
            strategy::normalize_and_default(res, &mut new)?;
            match part {
                Part::Main => strategy::prepare_update(res, &mut new, &old),
                Part::Status => strategy::prepare_status_update(res, &mut new, &old),
                Part::Approval => strategy::prepare_approval_update(&mut new, &old),
                Part::System => {}
            }
            if let Some(m) = manager {
                crate::managed::after_admission(res, Some(&old), &mut new, m);
            }
            let errs = match part {
                Part::Main => strategy::validate_update(res, &new, &old)?,
                Part::Status | Part::Approval => strategy::validate_status_update(res, &new, &old)?,
                Part::System => Vec::new(),
            };
            if !errs.is_empty() {
                return Err(ApiError::invalid(res, name, &errs));
            }
            if res.strategy == Strategy::PriorityClass && part == Part::Main {
                crate::priority::check_one_default(&self.store, res, &new)?;
            }
            let deleting = new
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null());
            if deleting {
                let added: Vec<String> = finalizers(&new)
                    .into_iter()
                    .filter(|f| !finalizers(&old).contains(f))
                    .collect();
                if !added.is_empty() {
                    return Err(ApiError::invalid(
                        res,
                        name,
                        &[everynode_api::field::FieldError::forbidden(
                            "metadata.finalizers",
                            &format!(
                                "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                            ),
                        )],
                    ));
                }
            }
            if same_but_rv(&new, &old) {
                return Ok(Updated {
                    json: api_bytes(res, &kv.value, kv.mod_revision),
                    object: old,
                });
            }
            let alloc = if Self::is_service(res) && part == Part::Main && !deleting {
                Some(self.services.update(&mut new, &old)?)
            } else {
                None
            };
            if opts.dry_run {
                if let Some(a) = alloc {
                    self.services.rollback(a);
                }
                // Nothing was written: the answer carries the stored version (a patch
                // leaves it out of `new`), so `kubectl diff` sees no change there.
                new["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
                return Ok(Updated::object(new));
            }
            // An object being deleted whose last finalizer (and grace period) is gone
            // is removed by this write.
            let ns_finalizers = res.strategy == Strategy::Namespace
                && new
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
            let finish = deleting
                && finalizers(&new).is_empty()
                && !self.grace_pending(res, &new)
                && !ns_finalizers;
            if finish {
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(d) => {
                        self.written(res);
                        if Self::is_service(res) {
                            self.services.release(&old);
                        }
                        new["metadata"]["resourceVersion"] = json!(d.mod_revision.to_string());
                        return Ok(Updated::object(new));
                    }
                    Err(WriteError::Conflict { .. }) if precondition.is_none() => continue,
                    Err(WriteError::Conflict { .. }) => return Err(ApiError::stale(res, name)),
                    Err(WriteError::NotFound) => return Err(ApiError::not_found(res, name)),
                    Err(e) => return Err(storage_error(e)),
                }
            }
            let result = match encode(res, &new) {
                Ok(bytes) => self.store.update(&key, bytes, kv.mod_revision).await,
                Err(e) => Err(WriteError::Storage(e.message)),
            };
            if let Some(a) = alloc {
                match result {
                    Ok(_) => self.services.commit(a),
                    Err(_) => self.services.rollback(a),
                }
            }
            match result {
                Ok(kv) => {
                    self.written(res);
                    new["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
                    return Ok(Updated {
                        json: api_bytes(res, &kv.value, kv.mod_revision),
                        object: new,
                    });
                }
                Err(WriteError::Conflict { .. }) if precondition.is_none() => continue,
                Err(WriteError::Conflict { .. }) => return Err(ApiError::stale(res, name)),
                Err(WriteError::NotFound) => return Err(ApiError::not_found(res, name)),
                Err(e) => return Err(storage_error(e)),
            }
        }
        Err(ApiError::conflict(
            res,
            name,
            "too many concurrent writers; please retry",
        ))
    }

    /// A pod whose graceful termination has not been confirmed by its node keeps existing
    /// until the node (or a grace-0 delete) removes it.
    fn grace_pending(&self, res: &ResourceInfo, obj: &Value) -> bool {
        res.strategy == Strategy::Pod
            && obj
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
    }

    /// Deletes an object following Kubernetes' rules (compat doc §11).
    pub async fn delete(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        if res.strategy == Strategy::PriorityClass {
            crate::priority::check_delete(res, name)?;
        }
        let key = res.key(ns, name);
        for _ in 0..MAX_RETRIES {
            let kv = self
                .store
                .get(&key)
                .ok_or_else(|| ApiError::not_found(res, name))?;
            let mut obj = decode(res, &kv)?;
            if let Some(uid) = &opts.precondition_uid {
                let have = meta_str(&obj, "uid").unwrap_or("");
                if uid != have {
                    return Err(ApiError::conflict(
                        res,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                        ),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_rv
                && *rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::conflict(
                    res,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                ));
            }
            let policy = match (&opts.propagation_policy, opts.orphan_dependents) {
                (Some(p), _) => p.clone(),
                (None, Some(true)) => "Orphan".to_string(),
                (None, _) => "Background".to_string(),
            };
            let mut fins = finalizers(&obj);
            let mut changed_fins = false;
            let want = match policy.as_str() {
                "Orphan" => Some("orphan"),
                "Foreground" => Some("foregroundDeletion"),
                _ => None,
            };
            if let Some(f) = want
                && !fins.iter().any(|x| x == f)
            {
                fins.push(f.to_string());
                changed_fins = true;
            }
            let grace = if res.strategy == Strategy::Pod {
                pod_grace(&obj, opts.grace_period_seconds)
            } else {
                0
            };
            let already = obj
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null());
            if opts.dry_run {
                return Ok(Deleted {
                    object: obj,
                    gone: false,
                });
            }
            let ns_finalizers = res.strategy == Strategy::Namespace
                && obj
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
            if fins.is_empty() && grace == 0 && !ns_finalizers {
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(d) => {
                        self.written(res);
                        if Self::is_service(res) {
                            self.services.release(&obj);
                        }
                        // As Kubernetes' service account controller does: a namespace
                        // that is not going away gets its `default` back at once.
                        if let Some(ns) = ns
                            && name == "default"
                            && res.plural == "serviceaccounts"
                            && res.group.is_empty()
                            && let Err(e) = self.default_service_account(ns).await
                        {
                            tracing::warn!(namespace = ns, error = %e.message, "recreating the default ServiceAccount");
                        }
                        obj["metadata"]["resourceVersion"] = json!(d.mod_revision.to_string());
                        return Ok(Deleted {
                            object: obj,
                            gone: true,
                        });
                    }
                    Err(WriteError::Conflict { .. }) => continue,
                    Err(WriteError::NotFound) => return Err(ApiError::not_found(res, name)),
                    Err(e) => return Err(storage_error(e)),
                }
            }
            // Mark for deletion: deletionTimestamp (+ grace), finalizers.
            let now = now();
            if already {
                // A second delete may only shorten a pod's grace period.
                let current = obj
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let shortens = res.strategy == Strategy::Pod && grace < current;
                if !shortens && !changed_fins {
                    return Ok(Deleted {
                        object: obj,
                        gone: false,
                    });
                }
                if res.strategy == Strategy::Pod && grace < current {
                    obj["metadata"]["deletionTimestamp"] =
                        json!(format_time(now + Duration::from_secs(grace as u64)));
                    obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                }
            } else {
                obj["metadata"]["deletionTimestamp"] =
                    json!(format_time(now + Duration::from_secs(grace as u64)));
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                if res.has_generation {
                    let g = obj
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    obj["metadata"]["generation"] = json!(g + 1);
                }
                if res.strategy == Strategy::Namespace {
                    obj["status"]["phase"] = json!("Terminating");
                }
            }
            if changed_fins {
                obj["metadata"]["finalizers"] = json!(fins);
            }
            match self
                .store
                .update(&key, encode(res, &obj)?, kv.mod_revision)
                .await
            {
                Ok(kv) => {
                    obj["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
                    return Ok(Deleted {
                        object: obj,
                        gone: false,
                    });
                }
                Err(WriteError::Conflict { .. }) => continue,
                Err(WriteError::NotFound) => return Err(ApiError::not_found(res, name)),
                Err(e) => return Err(storage_error(e)),
            }
        }
        Err(ApiError::conflict(
            res,
            name,
            "too many concurrent writers; please retry",
        ))
    }

    /// Creates the namespaces every cluster starts with, if they are missing, and the
    /// `default` ServiceAccount of every namespace that lacks one.
    pub async fn bootstrap(&self) -> ApiResult<()> {
        let res = resources::namespaces();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if self.store.get(&res.key(None, ns)).is_some() {
                continue;
            }
            let obj =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
            match self.create(res, None, obj, &WriteOptions::default()).await {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
        let namespaces = self
            .store
            .list(&res.prefix(None), None, None, None)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        for kv in namespaces.items {
            let Some(name) = kv.key.rsplit('/').next() else {
                continue;
            };
            self.default_service_account(name).await?;
        }
        self.bootstrap_policy().await
    }

    /// The system PriorityClasses and the default ClusterRoles and ClusterRoleBinding,
    /// each created if missing (one deleted comes back at the next start, as
    /// kube-apiserver's bootstrap reconciles it).
    async fn bootstrap_policy(&self) -> ApiResult<()> {
        use everynode_api::{priority, rbac};
        let mut objects: Vec<(&str, &str, Value)> = Vec::new();
        let encode_err = |e: serde_json::Error| ApiError::internal(e.to_string());
        for pc in priority::system_priority_classes() {
            objects.push((
                "scheduling.k8s.io",
                "priorityclasses",
                serde_json::to_value(pc).map_err(encode_err)?,
            ));
        }
        for role in rbac::bootstrap_cluster_roles() {
            objects.push((
                rbac::GROUP,
                "clusterroles",
                serde_json::to_value(role).map_err(encode_err)?,
            ));
        }
        for binding in rbac::bootstrap_cluster_role_bindings() {
            objects.push((
                rbac::GROUP,
                "clusterrolebindings",
                serde_json::to_value(binding).map_err(encode_err)?,
            ));
        }
        for (group, plural, obj) in objects {
            let Some(res) = resources::lookup(group, "v1", plural) else {
                continue;
            };
            if self.store.get(&res.key(None, name_of(&obj))).is_some() {
                continue;
            }
            match self.create(res, None, obj, &WriteOptions::default()).await {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The ServiceAccount `default` in namespace `ns` (what Kubernetes' service account
    /// controller keeps in every namespace, and what pods run as unless they say
    /// otherwise), created if missing.
    async fn default_service_account(&self, ns: &str) -> ApiResult<()> {
        let Some(sas) = resources::lookup("", "v1", "serviceaccounts") else {
            return Ok(());
        };
        if self.store.get(&sas.key(Some(ns), "default")).is_some() {
            return Ok(());
        }
        let sa = json!({ "apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": { "name": "default", "namespace": ns } });
        match Box::pin(self.create(sas, Some(ns), sa, &WriteOptions::default())).await {
            Ok(_) => Ok(()),
            Err(e) if e.reason == "AlreadyExists" => Ok(()),
            // A namespace already terminating takes no new content; nothing to keep.
            Err(e) if e.code == 403 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Kubernetes' pod grace period rules: the request's value, else the pod's
/// `terminationGracePeriodSeconds` (30); 0 for unscheduled or finished pods; negative
/// values are treated as 1.
fn pod_grace(pod: &Value, requested: Option<i64>) -> i64 {
    let unscheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let terminal = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if unscheduled || terminal {
        return 0;
    }
    let g = requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30);
    if g < 0 { 1 } else { g }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "namespace": "default", "labels": { "app": "x" } },
            "spec": { "containers": [{ "name": "c", "image": "i",
                "resources": { "requests": { "cpu": "10m" } } }] }
        })
    }

    #[test]
    fn uids_are_random_version_4_uuids() {
        let uids: std::collections::HashSet<String> = (0..1000).map(|_| new_uid()).collect();
        assert_eq!(uids.len(), 1000);
        for uid in &uids {
            let parsed = uuid::Uuid::parse_str(uid).unwrap();
            assert_eq!(parsed.get_version(), Some(uuid::Version::Random), "{uid}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{uid}");
            assert_eq!(uid.len(), 36);
        }
    }

    /// The answer made from the stored bytes is the stored object plus its
    /// resourceVersion, for the typed (pod) and the JSON encodings alike.
    #[test]
    fn answer_is_stored_bytes_with_resource_version() {
        let pods = resources::lookup("", "v1", "pods").unwrap();
        let cms = resources::lookup("", "v1", "configmaps").unwrap();
        let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap",
            "data": { "k": "\"metadata\":{" }, "metadata": { "name": "c", "namespace": "default" } });
        for (res, obj) in [(pods, pod()), (cms, cm)] {
            let (admitted, errs) = strategy::admit_create(res, obj).unwrap();
            assert!(errs.is_empty(), "{errs:?}");
            let bytes = match &admitted {
                strategy::Admitted::Pod(p) => strategy::encode_pod(p).unwrap(),
                strategy::Admitted::Json(v) => encode(res, v).unwrap().to_vec(),
            };
            let expected = admitted.into_value().unwrap();
            let stored: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(stored, expected, "{}", res.kind);
            let answer: Value =
                serde_json::from_slice(&api_bytes(res, &bytes, 42).unwrap()).unwrap();
            let mut want = expected.clone();
            want["metadata"]["resourceVersion"] = json!("42");
            assert_eq!(answer, want, "{}", res.kind);
        }
    }

    /// Every namespace has a `default` ServiceAccount (deleting it brings a new one),
    /// and pods run as it unless they name another (in either of the two fields), which
    /// must exist.
    #[tokio::test]
    async fn namespaces_get_a_default_service_account_and_pods_use_it() {
        let reg = Registry::new(Store::memory());
        reg.bootstrap().await.unwrap();
        let sas = resources::lookup("", "v1", "serviceaccounts").unwrap();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            reg.get(sas, Some(ns), "default").unwrap();
        }
        let nss = resources::namespaces();
        let opts = WriteOptions::default();
        let ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "team" } });
        reg.create(nss, None, ns, &opts).await.unwrap();
        reg.get(sas, Some("team"), "default").unwrap();
        let pods = resources::lookup("", "v1", "pods").unwrap();
        let plain = reg
            .create(pods, Some("default"), pod(), &opts)
            .await
            .unwrap();
        assert_eq!(plain["spec"]["serviceAccountName"], "default");
        assert_eq!(plain["spec"]["serviceAccount"], "default");
        let mut old_style = pod();
        old_style["metadata"]["name"] = json!("q");
        old_style["spec"]["serviceAccount"] = json!("fluentd");
        let refused = reg
            .create(pods, Some("default"), old_style.clone(), &opts)
            .await
            .err()
            .unwrap();
        assert_eq!((refused.code, refused.reason), (403, "Forbidden"));
        assert_eq!(
            refused.message,
            "pods \"q\" is forbidden: error looking up service account default/fluentd: serviceaccount \"fluentd\" not found"
        );
        let sa = json!({ "apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": { "name": "fluentd", "namespace": "default" } });
        reg.create(sas, Some("default"), sa, &opts).await.unwrap();
        let named = reg
            .create(pods, Some("default"), old_style, &opts)
            .await
            .unwrap();
        assert_eq!(named["spec"]["serviceAccountName"], "fluentd");
        assert_eq!(named["spec"]["serviceAccount"], "fluentd");
        // A ServiceAccount's image pull secrets go to pods that name none.
        let puller = json!({ "apiVersion": "v1", "kind": "ServiceAccount",
                             "metadata": { "name": "puller", "namespace": "default" },
                             "imagePullSecrets": [{ "name": "registry" }] });
        reg.create(sas, Some("default"), puller, &opts)
            .await
            .unwrap();
        let mut pulled = pod();
        pulled["metadata"]["name"] = json!("pulled");
        pulled["spec"]["serviceAccountName"] = json!("puller");
        let mut own = pulled.clone();
        let pulled = reg
            .create(pods, Some("default"), pulled, &opts)
            .await
            .unwrap();
        assert_eq!(
            pulled["spec"]["imagePullSecrets"],
            json!([{ "name": "registry" }])
        );
        own["metadata"]["name"] = json!("own");
        own["spec"]["imagePullSecrets"] = json!([{ "name": "mine" }]);
        let own = reg.create(pods, Some("default"), own, &opts).await.unwrap();
        assert_eq!(own["spec"]["imagePullSecrets"], json!([{ "name": "mine" }]));

        let before = reg.get(sas, Some("team"), "default").unwrap();
        reg.delete(sas, Some("team"), "default", &DeleteOptions::default())
            .await
            .unwrap();
        let after = reg.get(sas, Some("team"), "default").unwrap();
        assert_ne!(after["metadata"]["uid"], before["metadata"]["uid"]);
        let mut in_team = pod();
        in_team["metadata"]["namespace"] = json!("team");
        reg.create(pods, Some("team"), in_team, &opts)
            .await
            .unwrap();
    }

    /// Creating into a namespace refuses only a terminating namespace: a namespace
    /// whose labels merely mention `deletionTimestamp` takes new objects.
    #[tokio::test]
    async fn only_a_terminating_namespace_refuses_creates() {
        let reg = Registry::new(Store::memory());
        let nss = resources::namespaces();
        let pods = resources::lookup("", "v1", "pods").unwrap();
        let opts = WriteOptions::default();
        for metadata in [
            json!({ "name": "mentions",
                "labels": { "deletionTimestamp": "deletionTimestamp" } }),
            json!({ "name": "going", "finalizers": ["example.com/hold"] }),
        ] {
            let ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": metadata });
            reg.create(nss, None, ns, &opts).await.unwrap();
        }
        reg.delete(nss, None, "going", &DeleteOptions::default())
            .await
            .unwrap();
        let in_ns = |ns: &str| {
            let mut p = pod();
            p["metadata"]["namespace"] = json!(ns);
            p
        };
        reg.create_encoded(pods, Some("mentions"), in_ns("mentions"), &opts)
            .await
            .unwrap();
        let refused = reg
            .create_encoded(pods, Some("going"), in_ns("going"), &opts)
            .await
            .err()
            .unwrap();
        assert_eq!((refused.code, refused.reason), (403, "Forbidden"));
        assert!(
            refused.message.contains("because it is being terminated"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn no_mark_without_metadata() {
        let at = metadata_offset(br#"{"kind":"X","metadata":{}}"#);
        assert_eq!(at, None);
        let at = metadata_offset(br#"{"kind":"X"}"#);
        assert_eq!(at, None);
    }

    /// The scan finds the same place the encoder marked, wherever `metadata` sits and
    /// whatever the strings before it hold.
    #[test]
    fn metadata_offset_finds_the_top_level_metadata() {
        for obj in [
            pod(),
            json!({ "kind": "X", "spec": { "template": { "metadata": { "name": "t" } } },
                "metadata": { "name": "m" } }),
            json!({ "a\"metadata\"": "\"metadata\":{\\", "b": [1, -2.5e3, true, null, {"x": []}],
                "metadata": { "name": "m" }, "z": 1 }),
            json!({ "kind": "X", "metadata": {} }),
            json!({ "kind": "X" }),
            json!({ "metadata": "not an object" }),
            json!([1, 2]),
        ] {
            // Found exactly when the top-level metadata is a non-empty object, and the
            // version lands in it (not in a nested `metadata`, not in a string).
            let bytes = serde_json::to_vec(&obj).unwrap();
            let expected = obj
                .get("metadata")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty());
            let at = metadata_offset(&bytes);
            assert_eq!(at.is_some(), expected, "{obj}");
            if let Some(at) = at {
                let spliced: Value =
                    serde_json::from_slice(&with_resource_version(&bytes, at, "7")).unwrap();
                let mut want = obj.clone();
                want["metadata"]["resourceVersion"] = json!("7");
                assert_eq!(spliced, want);
            }
            // Whitespace between tokens is no obstacle either.
            let pretty = serde_json::to_vec_pretty(&obj).unwrap();
            let spliced =
                metadata_offset(&pretty).map(|at| with_resource_version(&pretty, at, "7"));
            if let Some(b) = spliced {
                let v: Value = serde_json::from_slice(&b).unwrap();
                assert_eq!(v["metadata"]["resourceVersion"], "7", "{obj}");
            }
        }
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\"",
            b"{\"a\":",
            b"{\"a\":\"x",
            b"{\"a\":1,",
        ] {
            assert_eq!(metadata_offset(bad), None);
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::{Just, any, prop_assert, prop_assert_eq, prop_oneof, proptest};
        use proptest::strategy::Strategy as Generator;

        fn json_value() -> impl Generator<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                "[ -~\\\\\"{}\\[\\]]{0,12}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    proptest::collection::btree_map("[a-z\"{}:,]{0,8}", inner, 0..5)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn splice_matches_decoding(
                before in proptest::collection::btree_map("[a-z\"{}]{1,6}", json_value(), 0..3),
                meta in proptest::collection::btree_map("[a-z]{1,6}", json_value(), 1..4),
                after in proptest::collection::btree_map("[a-z]{1,6}", json_value(), 0..3),
            ) {
                let mut m = serde_json::Map::new();
                m.extend(before.into_iter().filter(|(k, _)| k != "metadata"));
                m.insert("metadata".into(), Value::Object(meta.into_iter().collect()));
                m.extend(after.into_iter().filter(|(k, _)| k != "metadata"));
                let obj = Value::Object(m);
                let bytes = serde_json::to_vec(&obj).unwrap();
                let at = metadata_offset(&bytes);
                prop_assert!(at.is_some());
                let spliced: Value =
                    serde_json::from_slice(&with_resource_version(&bytes, at.unwrap(), "9")).unwrap();
                let mut want = obj.clone();
                want["metadata"]["resourceVersion"] = json!("9");
                prop_assert_eq!(spliced, want);
            }

            /// The in-place comparison agrees with removing the resourceVersions and
            /// comparing what is left.
            #[test]
            fn same_but_rv_is_equality_without_resource_versions(
                a in json_value(),
                rv_a in proptest::option::of("[0-9]{1,3}"),
                rv_b in proptest::option::of("[0-9]{1,3}"),
                change in any::<bool>(),
            ) {
                let with_rv = |mut v: Value, rv: &Option<String>| {
                    if let (Some(m), Some(rv)) = (v.as_object_mut(), rv) {
                        m.entry("metadata").or_insert_with(|| json!({}));
                        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                            meta.insert("resourceVersion".into(), json!(rv));
                        }
                    }
                    v
                };
                let mut b = a.clone();
                if change && let Some(m) = b.as_object_mut() {
                    m.insert("extra".into(), json!(1));
                }
                let (a, b) = (with_rv(a, &rv_a), with_rv(b, &rv_b));
                let strip = |v: &Value| {
                    let mut c = v.clone();
                    if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("resourceVersion");
                    }
                    c
                };
                prop_assert_eq!(same_but_rv(&a, &b), strip(&a) == strip(&b));
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                if let Some(at) = metadata_offset(&bytes) {
                    prop_assert!(at <= bytes.len());
                }
            }
        }
    }
}
