//! The DaemonSet controller's decisions, as a pure function (`syncDaemonSet` minus I/O).
//!
//! [`plan`] takes what the controller observed — the DaemonSet, every node, the pods
//! and ControllerRevisions of the namespace, the time, whether the expectations of the
//! previous sync are met, and the failed-pod back-off — and returns the [`Plan`]: the
//! [`Action`]s to perform, in order, the status to write, and when to look again. Section
//! numbers (§) refer to `docs/daemonset-semantics.md`.
//!
//! One pass, as in Kubernetes:
//!
//! 1. a selector that selects everything → Warning `SelectingAll`, nothing else (§6.3);
//!    a DaemonSet being deleted → nothing at all (§6.4, §14);
//! 2. claim ControllerRevisions and pods: keep ours, adopt matching orphans, release ours
//!    that stopped matching, ignore those of other controllers (§9);
//! 3. history: find the revision whose data is the current template, create or renumber
//!    it, label and de-duplicate (§10.3); its hash labels new pods;
//! 4. expectations not met → status only, `observedGeneration` untouched (§6.6);
//! 5. `manage`: per node, create the missing pod, delete failed/succeeded ones (with
//!    back-off), duplicates and pods on nodes that no longer qualify (§8);
//! 6. nothing to do in 5 → `RollingUpdate` deletes (or, with `maxSurge`, creates) within
//!    the budgets (§11); `OnDelete` does nothing;
//! 7. prune old revisions beyond `revisionHistoryLimit` (§10.5);
//! 8. status (§12), written only when it changed.
//!
//! The controller loop executes the actions in the order given. A failed revision or
//! ownership action should end the pass (Kubernetes returns the error and requeues with
//! rate limiting); pod creates and deletes set the expectations
//! (`creates = node_names.len()`, `deletes = pods.len()`) before they are issued and
//! creates go out in [`slow_start_batches`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use everynode_api::hash::compute_template_hash;
use everynode_api::scheduling::{
    ShouldRun, add_daemon_tolerations, daemon_pod_target_node, is_pod_available, is_pod_ready,
    node_should_run_daemon_pod, set_daemon_node_affinity,
};
use everynode_api::selector::Selector;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetCondition, DaemonSetSpec, DaemonSetStatus,
};
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value};

use super::backoff::FailedPodBackoff;

/// Label on pods and revisions: the hash of the template revision (§1).
pub const CONTROLLER_REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// Label on pods: the DaemonSet's template generation when the pod was created.
pub const POD_TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// DaemonSet annotation maintained by the apiserver: the template generation.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
/// At most this many creates and this many deletes per pass (`BurstReplicas`, §5).
pub const BURST_REPLICAS: usize = 250;
/// First slow-start batch (`SlowStartInitialBatchSize`, §8.3).
pub const SLOW_START_INITIAL_BATCH_SIZE: usize = 1;
/// Default `revisionHistoryLimit` when the field is absent (§2.1).
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

/// everynode extension (RollingUpdate only): `"true"` pauses the rollout; pods missing
/// while paused are created from the [stable revision](Stable).
pub const PAUSED_ANNOTATION: &str = "everynode.io/paused";
/// everynode extension (RollingUpdate only): a label selector over nodes; only the nodes
/// it picks are updated, the others keep (and get new pods from) the stable revision.
pub const CANARY_SELECTOR_ANNOTATION: &str = "everynode.io/canary-selector";
/// everynode extension (RollingUpdate only): seconds without progress after which the
/// `Progressing` condition turns `False` with reason `ProgressDeadlineExceeded`.
pub const PROGRESS_DEADLINE_ANNOTATION: &str = "everynode.io/progress-deadline-seconds";
/// The condition type the extensions maintain in `status.conditions`.
pub const PROGRESSING: &str = "Progressing";

/// Reasons of the `Progressing` condition (everynode extensions only; Kubernetes never
/// sets DaemonSet conditions).
pub mod progress_reasons {
    /// True: pods are being replaced and the last one was replaced (or became available)
    /// at `lastTransitionTime`.
    pub const ROLLING_UPDATE: &str = "RollingUpdate";
    /// True: every targeted node runs an available pod of the current revision.
    pub const NEW_REVISION_AVAILABLE: &str = "NewRevisionAvailable";
    /// False: no progress for `everynode.io/progress-deadline-seconds`.
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// Unknown: `everynode.io/paused` holds the rollout.
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    /// False: `everynode.io/canary-selector` does not parse; no node is updated.
    pub const INVALID_CANARY_SELECTOR: &str = "InvalidCanarySelector";
}

/// Event types.
pub const EVENT_NORMAL: &str = "Normal";
/// Event types.
pub const EVENT_WARNING: &str = "Warning";

/// Event reasons recorded on the DaemonSet (§15). The plan emits the last three; the
/// loop emits the create/delete ones once it knows the pod's name or the error.
pub mod reasons {
    /// Normal, `Created pod: <pod>`.
    pub const SUCCESSFUL_CREATE: &str = "SuccessfulCreate";
    /// Warning, `Error creating: <error>`.
    pub const FAILED_CREATE: &str = "FailedCreate";
    /// Normal, `Deleted pod: <pod>`.
    pub const SUCCESSFUL_DELETE: &str = "SuccessfulDelete";
    /// Warning, `Error deleting: <error>`.
    pub const FAILED_DELETE: &str = "FailedDelete";
    /// Warning, emitted by [`plan`](super::plan) for a `Failed` daemon pod it deletes.
    pub const FAILED_DAEMON_POD: &str = "FailedDaemonPod";
    /// Normal, emitted by [`plan`](super::plan) for a `Succeeded` daemon pod it deletes.
    pub const SUCCEEDED_DAEMON_POD: &str = "SucceededDaemonPod";
    /// Warning, emitted by [`plan`](super::plan) for a selector that selects everything.
    pub const SELECTING_ALL: &str = "SelectingAll";
}

/// Message of the `SelectingAll` event.
pub const SELECTING_ALL_MESSAGE: &str =
    "This daemon set is selecting all pods. A non-empty selector is required.";

/// Everything [`plan`] looks at. Slices come straight from the informer caches.
pub struct Observed<'a> {
    /// The DaemonSet being synced.
    pub ds: &'a DaemonSet,
    /// All nodes of the cluster.
    pub nodes: &'a [Arc<Node>],
    /// Pods of the DaemonSet's namespace (all of them: the plan claims, adopts and
    /// releases; pods of other namespaces are ignored).
    pub pods: &'a [Arc<Pod>],
    /// ControllerRevisions of the namespace (claimed like pods).
    pub revisions: &'a [Arc<ControllerRevision>],
    /// The time of this pass, for availability (`minReadySeconds`) and back-off.
    pub now: Timestamp,
    /// The creates/deletes of earlier passes have all been observed (or timed out). When
    /// false only the status is computed, without raising `observedGeneration` (§5.2).
    pub expectations_satisfied: bool,
    /// Back-off state for replacing failed pods, kept by the loop (§8.2).
    pub failed_pod_backoff: &'a FailedPodBackoff,
    /// Also delete pods *bound* to nodes that no longer exist. Kubernetes leaves those to
    /// the pod garbage collector (false, the faithful default); a cluster without one
    /// (everynode's own control plane) sets this so they do not linger.
    pub delete_pods_on_missing_nodes: bool,
    /// At most this many creates and this many deletes in this pass. Kubernetes uses
    /// [`BURST_REPLICAS`] on every pass; everynode's loop starts there and raises it
    /// after passes whose writes all succeeded (slow start across passes).
    pub burst: usize,
}

/// One thing for the loop to do. Listed in execution order within a [`Plan`].
// A pass yields a handful of actions, so the size of the largest variant does not matter;
// unboxed objects keep building and matching them simple.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the current revision (§10.2/§10.3). On `AlreadyExists` the loop GETs it: if
    /// [`revision_matches`] it is ours, otherwise it is a hash collision and the loop
    /// increments `status.collisionCount` (if unchanged since the pass began) and ends
    /// the pass with an error.
    CreateRevision(ControllerRevision),
    /// Renumber an existing revision that became current again (rollback, §10.3 step 7).
    UpdateRevision { name: String, revision: i64 },
    /// Add the missing `controller-revision-hash` label (value: the revision's name) to
    /// an old revision (§10.3 step 2).
    LabelRevision { name: String, hash: String },
    /// Delete a revision: a duplicate of the current one (§10.3 step 6) or history beyond
    /// `revisionHistoryLimit` (§10.5).
    DeleteRevision { name: String },
    /// Make the DaemonSet the controller of an orphaned revision (same patch as
    /// [`Action::AdoptPod`]).
    AdoptRevision { name: String, uid: String },
    /// Drop the DaemonSet's ownerReference from a revision that no longer matches.
    ReleaseRevision { name: String, uid: String },
    /// Add the controller ownerReference to an orphaned pod matching the selector: SMP
    /// `{"metadata":{"ownerReferences":[<controller ref>],"uid":"<uid>"}}`, after a fresh
    /// GET of the DaemonSet confirms its uid and that it is not being deleted (§9).
    AdoptPod { name: String, uid: String },
    /// Remove our ownerReference from a pod that stopped matching the selector: SMP
    /// `{"metadata":{"ownerReferences":[{"$patch":"delete","uid":"<ds uid>"}],"uid":"<uid>"}}`;
    /// 404 and 422 are not errors (§9).
    ReleasePod { name: String, uid: String },
    /// Set the pod's `controller-revision-hash` label to `hash` (merge patch), when
    /// duplicate current revisions are folded into one (§10.3 step 6).
    RelabelPod {
        name: String,
        uid: String,
        hash: String,
    },
    /// Advance the failed-pod back-off for `key` ([`FailedPodBackoff::next`] at the
    /// pass's `now`); comes right before the delete of the failed pod.
    AdvanceFailedPodBackoff { key: String },
    /// Create one pod per node from [`pod_for_node`]`(ds, &template, node, &hash,
    /// template_generation)`, in [`slow_start_batches`]; stop at the first batch with a
    /// failure. At most [`Observed::burst`] nodes.
    CreatePods {
        node_names: Vec<String>,
        /// `spec.template` as observed (without per-node affinity or daemon tolerations).
        template: PodTemplateSpec,
        /// The current revision's hash, for the `controller-revision-hash` label.
        hash: String,
        /// The template generation annotation, if it parses (§8.4).
        template_generation: Option<i64>,
    },
    /// Delete these pods `(name, uid)` concurrently, with empty DeleteOptions (the uid may
    /// be sent as a precondition); NotFound is not an error. At most [`Observed::burst`].
    DeletePods { pods: Vec<(String, String)> },
    /// Record an event on the DaemonSet (§15).
    Event {
        type_: &'static str,
        reason: &'static str,
        message: String,
    },
}

/// The outcome of one pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// What to do, in order.
    pub actions: Vec<Action>,
    /// The status to `PUT …/status`, when it differs from the stored one (§12 write
    /// rule). `None`: nothing to write (unchanged, or nothing may be written: a
    /// DaemonSet being deleted or selecting everything).
    pub status: Option<DaemonSetStatus>,
    /// Look at the DaemonSet again after this long even if nothing changes: a pod is
    /// about to become available (`minReadySeconds`) or a failed pod is backing off.
    pub requeue_after: Option<Duration>,
}

// ---------------------------------------------------------------------------------------
// Small helpers over the Kubernetes types
// ---------------------------------------------------------------------------------------

fn opt_str(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or_default()
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn labels_of(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    meta.labels.as_ref().unwrap_or(&NO_LABELS)
}

fn hash_label(meta: &ObjectMeta) -> Option<&str> {
    labels_of(meta)
        .get(CONTROLLER_REVISION_HASH_LABEL)
        .map(String::as_str)
}

fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .map(|s| opt_str(&s.phase))
        .unwrap_or_default()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod_phase(pod), "Succeeded" | "Failed")
}

fn is_deleting(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

fn name_uid(meta: &ObjectMeta) -> (String, String) {
    (
        opt_str(&meta.name).to_string(),
        opt_str(&meta.uid).to_string(),
    )
}

/// The controller ownerReference every object created for `ds` carries.
pub fn controller_ref(ds: &DaemonSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: "DaemonSet".to_string(),
        name: opt_str(&ds.metadata.name).to_string(),
        uid: opt_str(&ds.metadata.uid).to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The template generation from the `deprecated.daemonset.template.generation`
/// annotation; `None` when absent or not a number.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)?
        .parse()
        .ok()
}

/// The key of the failed-pod back-off for `node` (`<ds uid>/<observedGeneration>/<node>`).
pub fn failed_pod_backoff_key(ds: &DaemonSet, node: &str) -> String {
    let observed = ds
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    format!("{}/{observed}/{node}", opt_str(&ds.metadata.uid))
}

/// Pod order of §8.2: bound pods first, then older `creationTimestamp`, then name.
fn pod_order(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    let bound = |p: &Pod| {
        p.spec
            .as_ref()
            .is_some_and(|s| !opt_str(&s.node_name).is_empty())
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    bound(b)
        .cmp(&bound(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| opt_str(&a.metadata.name).cmp(opt_str(&b.metadata.name)))
}

/// `slow_start_batches(n)`: the sizes of the create batches for `n` pods — 1, 2, 4, 8, …
/// with the last one holding what is left (§8.3). The loop issues a batch concurrently
/// and stops at the first batch with a failure.
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut pos = 0;
    let mut size = count.min(SLOW_START_INITIAL_BATCH_SIZE);
    while pos < count && size > 0 {
        batches.push(size);
        pos += size;
        size = size.saturating_mul(2).min(count - pos);
    }
    batches
}

// ---------------------------------------------------------------------------------------
// Pods and revisions built for the DaemonSet
// ---------------------------------------------------------------------------------------

/// The `generateName` of daemon pods: `<ds>-`, or the bare name when the dash would make
/// it longer than a name may be (§8.4).
fn pod_name_prefix(ds_name: &str) -> String {
    if ds_name.len() < 253 {
        format!("{ds_name}-")
    } else {
        ds_name.to_string()
    }
}

/// The pod to create on `node_name` (§8.4): `template` with `generateName: <ds>-`, the
/// DaemonSet's namespace, labels plus `controller-revision-hash: hash` and (if known)
/// `pod-template-generation`, the template's annotations and finalizers, a controller
/// ownerReference, the daemon tolerations (§7.3) and a required node affinity on
/// `metadata.name` for the node. `spec.nodeName` stays as in the template (normally
/// unset: a scheduler binds the pod).
pub fn pod_for_node(
    ds: &DaemonSet,
    template: &PodTemplateSpec,
    node_name: &str,
    hash: &str,
    generation: Option<i64>,
) -> Pod {
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH_LABEL.to_string(), hash.to_string());
    if let Some(generation) = generation {
        labels.insert(
            POD_TEMPLATE_GENERATION_LABEL.to_string(),
            generation.to_string(),
        );
    }
    let metadata = ObjectMeta {
        generate_name: Some(pod_name_prefix(opt_str(&ds.metadata.name))),
        namespace: ds.metadata.namespace.clone(),
        labels: Some(labels),
        annotations: template_meta.annotations,
        finalizers: template_meta.finalizers,
        owner_references: Some(vec![controller_ref(ds)]),
        ..ObjectMeta::default()
    };
    let mut spec = template.spec.clone().unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    spec.affinity = Some(set_daemon_node_affinity(spec.affinity.take(), node_name));
    Pod {
        metadata,
        spec: Some(spec),
        status: None,
    }
}

/// Recursively sort object keys (Go's map marshalling order).
fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// The revision payload for a template (§10.1): `{"spec":{"template":{…,"$patch":"replace"}}}`
/// with keys sorted and, as Go writes it, `"creationTimestamp": null` in the template
/// metadata. Applied as a strategic merge patch it restores the template
/// (`kubectl rollout undo`).
pub fn revision_data(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Value::Object(t) = &mut template {
        let meta = t
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = meta {
            m.entry("creationTimestamp").or_insert(Value::Null);
        }
        t.insert("$patch".to_string(), Value::String("replace".to_string()));
    }
    let mut spec = Map::new();
    spec.insert("template".to_string(), template);
    let mut root = Map::new();
    root.insert("spec".to_string(), Value::Object(spec));
    let mut data = Value::Object(root);
    sort_keys(&mut data);
    data
}

/// Whether `revision` stores `template` (§10.3 step 3). Compared as typed templates,
/// so key order, `null` versus absent and similar spelling differences (e.g. revisions
/// written by kube-controller-manager) do not matter.
pub fn revision_matches(template: &PodTemplateSpec, revision: &ControllerRevision) -> bool {
    let Some(RawExtension(data)) = &revision.data else {
        return false;
    };
    let Some(Value::Object(stored)) = data.get("spec").and_then(|s| s.get("template")) else {
        return false;
    };
    let mut stored = stored.clone();
    stored.remove("$patch");
    serde_json::from_value::<PodTemplateSpec>(Value::Object(stored))
        .is_ok_and(|stored| stored == *template)
}

/// The ControllerRevision recording `template` under `hash` with number `revision`
/// (§10.2): name `<ds>-<hash>`, template labels plus the hash label, the DaemonSet's
/// annotations, a controller ownerReference.
pub fn revision_for(
    ds: &DaemonSet,
    template: &PodTemplateSpec,
    hash: &str,
    revision: i64,
) -> ControllerRevision {
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH_LABEL.to_string(), hash.to_string());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", opt_str(&ds.metadata.name))),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![controller_ref(ds)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(revision_data(template))),
        revision,
    }
}

// ---------------------------------------------------------------------------------------
// Claiming (§9)
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// Ours and still selected.
    Keep,
    /// An orphan we take.
    Adopt,
    /// Ours but no longer selected: give it up.
    Release,
    /// Someone else's, or an orphan we leave alone.
    Ignore,
}

fn claim(meta: &ObjectMeta, ds_uid: &str, ds_namespace: &str, selector: &Selector) -> Claim {
    let selected = selector.matches(labels_of(meta));
    match controller_of(meta) {
        Some(owner) if owner.uid != ds_uid => Claim::Ignore,
        Some(_) if selected => Claim::Keep,
        Some(_) => Claim::Release,
        None => {
            let same_namespace = meta
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == ds_namespace);
            if selected && !is_deleting(meta) && same_namespace {
                Claim::Adopt
            } else {
                Claim::Ignore
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rolling update parameters
// ---------------------------------------------------------------------------------------

/// `GetScaledValueFromIntOrPercent` rounding up; `None` for a malformed value.
fn scaled(value: Option<&IntOrString>, total: i64) -> Option<i64> {
    match value {
        None => Some(0),
        Some(IntOrString::Int(i)) => Some(i64::from(*i)),
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.strip_suffix('%')?.parse().ok()?;
            Some((pct * total + 99).div_euclid(100))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    OnDelete,
    RollingUpdate,
}

fn strategy(spec: &DaemonSetSpec) -> Strategy {
    match spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
    {
        Some("OnDelete") => Strategy::OnDelete,
        _ => Strategy::RollingUpdate,
    }
}

/// `(maxSurge, maxUnavailable)` resolved against `desired` (§11.1). A strategy without
/// `rollingUpdate` gets the defaults (surge 0, unavailable 1).
fn budgets(spec: &DaemonSetSpec, desired: i64) -> (i64, i64) {
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let surge = rolling
        .and_then(|r| scaled(r.max_surge.as_ref(), desired))
        .unwrap_or(0)
        .max(0);
    let unavailable = match rolling {
        None => 1,
        Some(r) => match &r.max_unavailable {
            None => 1,
            v => scaled(v.as_ref(), desired).unwrap_or(0).max(0),
        },
    };
    if desired > 0 && surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// `AllowsSurge`: RollingUpdate with a non-zero `maxSurge`.
fn allows_surge(spec: &DaemonSetSpec) -> bool {
    strategy(spec) == Strategy::RollingUpdate && budgets(spec, 1).0 > 0
}

// ---------------------------------------------------------------------------------------
// The pass
// ---------------------------------------------------------------------------------------

/// The everynode rollout extensions read from the DaemonSet's annotations. They apply to
/// `RollingUpdate` DaemonSets only; on `OnDelete` ones they are ignored.
#[derive(Debug, Default)]
struct Extensions {
    /// Any of the annotations is set: the `Progressing` condition is maintained.
    enabled: bool,
    /// `everynode.io/paused: "true"`.
    paused: bool,
    /// `everynode.io/canary-selector`, parsed; a selector that does not parse selects
    /// nothing (and [`Extensions::canary_error`] says why).
    canary: Option<Selector>,
    canary_error: Option<String>,
    /// `everynode.io/progress-deadline-seconds`, when a positive integer.
    deadline: Option<i64>,
}

fn extensions(ds: &DaemonSet, spec: &DaemonSetSpec) -> Extensions {
    let Some(annotations) = ds.metadata.annotations.as_ref() else {
        return Extensions::default();
    };
    if strategy(spec) != Strategy::RollingUpdate {
        return Extensions::default();
    }
    let paused = annotations.get(PAUSED_ANNOTATION);
    let canary = annotations.get(CANARY_SELECTOR_ANNOTATION);
    let deadline = annotations.get(PROGRESS_DEADLINE_ANNOTATION);
    let mut ext = Extensions {
        enabled: paused.is_some() || canary.is_some() || deadline.is_some(),
        paused: paused.is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        deadline: deadline
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|&secs| secs > 0),
        ..Extensions::default()
    };
    if let Some(text) = canary {
        match Selector::parse(text) {
            Ok(selector) => ext.canary = Some(selector),
            Err(e) => {
                ext.canary = Some(Selector::nothing());
                ext.canary_error = Some(e.to_string());
            }
        }
    }
    ext
}

/// The revision the running fleet is on, for pods created while the rollout is held back
/// (paused, or a node outside the canary): the old revision most live pods run (ties: the
/// newer revision).
#[derive(Clone, Debug)]
struct Stable {
    template: PodTemplateSpec,
    hash: String,
    template_generation: Option<i64>,
}

/// The template stored in a revision (§10.1), without the `$patch` directive.
fn revision_template(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let RawExtension(data) = revision.data.as_ref()?;
    let Value::Object(stored) = data.get("spec")?.get("template")? else {
        return None;
    };
    let mut stored = stored.clone();
    stored.remove("$patch");
    serde_json::from_value(Value::Object(stored)).ok()
}

fn stable_revision(hash: &str, claimed: &[&Pod], old: &[&ControllerRevision]) -> Option<Stable> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in claimed {
        if is_deleting(&pod.metadata) || is_terminal(pod) {
            continue;
        }
        match hash_label(&pod.metadata) {
            Some(h) if h != hash && !h.is_empty() => *count.entry(h).or_default() += 1,
            _ => {}
        }
    }
    let revision = old
        .iter()
        .filter_map(|r| {
            let h = hash_label(&r.metadata).unwrap_or(opt_str(&r.metadata.name));
            count.get(h).map(|n| (*n, r.revision, *r, h))
        })
        .max_by_key(|(n, number, _, _)| (*n, *number))?;
    let (_, _, rev, stable_hash) = revision;
    let template = revision_template(rev)?;
    let template_generation = claimed
        .iter()
        .filter(|p| hash_label(&p.metadata) == Some(stable_hash))
        .find_map(|p| labels_of(&p.metadata).get(POD_TEMPLATE_GENERATION_LABEL))
        .and_then(|g| g.parse().ok());
    Some(Stable {
        template,
        hash: stable_hash.to_string(),
        template_generation,
    })
}

/// Read-only facts shared by the steps of one pass.
struct Ctx<'a> {
    obs: &'a Observed<'a>,
    ds: &'a DaemonSet,
    spec: &'a DaemonSetSpec,
    /// Current revision hash (label of the current revision).
    hash: String,
    min_ready_seconds: i32,
    /// Per node in `obs.nodes`, by name: the eligibility verdict.
    verdicts: BTreeMap<&'a str, ShouldRun>,
    /// Claimed pods by target node (terminal pods being deleted left out, §8.1).
    node_pods: BTreeMap<String, Vec<&'a Pod>>,
    /// The everynode extensions in force.
    ext: Extensions,
    /// With a canary selector: the nodes it picks (the only ones updated).
    canary_nodes: Option<BTreeSet<&'a str>>,
    /// Where pods created while the rollout is held back come from; `None`: the current
    /// template (nothing is held back, or no older revision runs).
    stable: Option<Stable>,
}

impl<'a> Ctx<'a> {
    fn verdict(&self, node: &str) -> ShouldRun {
        self.verdicts.get(node).copied().unwrap_or(ShouldRun {
            should_run: false,
            should_continue_running: false,
        })
    }

    fn is_updated(&self, pod: &Pod) -> bool {
        hash_label(&pod.metadata) == Some(self.hash.as_str())
    }

    fn available(&self, pod: &Pod) -> bool {
        is_pod_available(pod, self.min_ready_seconds, self.obs.now)
    }

    /// Whether the rolling update may replace the pod on `node` (the canary selector).
    fn updatable(&self, node: &str) -> bool {
        self.canary_nodes
            .as_ref()
            .is_none_or(|nodes| nodes.contains(node))
    }

    /// Whether a pod created on `node` now comes from the stable revision.
    fn held_back(&self, node: &str) -> bool {
        self.stable.is_some() && (self.ext.paused || !self.updatable(node))
    }

    fn pods_on(&self, node: &str) -> &[&'a Pod] {
        self.node_pods
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Nodes in the order the steps visit them: the observed nodes, then the nodes that
    /// only pods point at (gone from the cluster), by name.
    fn node_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .obs
            .nodes
            .iter()
            .map(|n| opt_str(&n.metadata.name))
            .collect();
        let known: BTreeSet<&str> = names.iter().copied().collect();
        names.extend(
            self.node_pods
                .keys()
                .map(String::as_str)
                .filter(|n| !known.contains(n)),
        );
        names
    }
}

/// What the history step decided.
enum History<'a> {
    /// The current hash and the old (non-current) revisions we control.
    Ready {
        hash: String,
        old: Vec<&'a ControllerRevision>,
    },
    /// A revision with the name we need exists with another template: bump
    /// `collisionCount` and stop (§10.3 step 5).
    Collision,
}

/// `{}`: neither matchLabels nor matchExpressions (Kubernetes compares with an empty
/// `LabelSelector`; the API cannot tell a null selector from an empty one here).
fn selects_everything(spec: &DaemonSetSpec) -> bool {
    spec.selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && spec
            .selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// One sync of one DaemonSet. See the module documentation.
pub fn plan(obs: &Observed<'_>) -> Plan {
    let ds = obs.ds;
    let mut out = Plan::default();
    let Some(spec) = ds.spec.as_ref() else {
        return out;
    };
    if selects_everything(spec) {
        out.actions.push(Action::Event {
            type_: EVENT_WARNING,
            reason: reasons::SELECTING_ALL,
            message: SELECTING_ALL_MESSAGE.to_string(),
        });
        return out;
    }
    if is_deleting(&ds.metadata) {
        return out;
    }
    let selector = match Selector::from_label_selector(&spec.selector) {
        Ok(s) => s,
        Err(e) => {
            // Validation rejects such selectors; nothing sensible can be done.
            tracing::warn!(daemonset = opt_str(&ds.metadata.name), error = %e, "invalid selector");
            return out;
        }
    };
    let ds_uid = opt_str(&ds.metadata.uid);
    let ds_namespace = opt_str(&ds.metadata.namespace);

    // Claim pods (the ownership actions are emitted after the revision ones).
    let mut pod_actions = Vec::new();
    let mut claimed: Vec<&Pod> = Vec::new();
    for pod in obs.pods {
        if pod
            .metadata
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != ds_namespace)
        {
            continue;
        }
        let (name, uid) = name_uid(&pod.metadata);
        match claim(&pod.metadata, ds_uid, ds_namespace, &selector) {
            Claim::Keep => claimed.push(pod),
            Claim::Adopt => {
                pod_actions.push(Action::AdoptPod { name, uid });
                claimed.push(pod);
            }
            Claim::Release => pod_actions.push(Action::ReleasePod { name, uid }),
            Claim::Ignore => {}
        }
    }

    let (hash, old) = match construct_history(obs, spec, &selector, &claimed, &mut out.actions) {
        History::Ready { hash, old } => (hash, old),
        History::Collision => {
            let mut status = ds.status.clone().unwrap_or_default();
            status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
            out.status = Some(status);
            return out;
        }
    };
    out.actions.extend(pod_actions);

    let mut node_pods: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for pod in &claimed {
        if is_terminal(pod) && is_deleting(&pod.metadata) {
            continue;
        }
        if let Some(node) = daemon_pod_target_node(pod) {
            node_pods.entry(node).or_default().push(pod);
        }
    }
    for pods in node_pods.values_mut() {
        pods.sort_by(|a, b| pod_order(a, b));
    }
    let verdicts = obs
        .nodes
        .iter()
        .map(|n| (opt_str(&n.metadata.name), node_should_run_daemon_pod(n, ds)))
        .collect();
    let ext = extensions(ds, spec);
    let canary_nodes = ext.canary.as_ref().map(|selector| {
        obs.nodes
            .iter()
            .filter(|n| selector.matches(labels_of(&n.metadata)))
            .map(|n| opt_str(&n.metadata.name))
            .collect()
    });
    let stable = if ext.paused || ext.canary.is_some() {
        stable_revision(&hash, &claimed, &old)
    } else {
        None
    };
    let ctx = Ctx {
        obs,
        ds,
        spec,
        hash,
        min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
        verdicts,
        node_pods,
        ext,
        canary_nodes,
        stable,
    };

    let mut requeue = availability_requeue(&ctx, &claimed);
    if obs.expectations_satisfied {
        let mut work = manage(&ctx);
        if work.creates.is_empty() && work.stable_creates.is_empty() && work.deletes.is_empty() {
            match strategy(spec) {
                Strategy::OnDelete => {}
                Strategy::RollingUpdate => rolling_update(&ctx, &mut work),
            }
        }
        requeue = min_some(requeue, work.requeue);
        out.actions.append(&mut work.before);
        let burst = obs.burst.max(1);
        work.creates.truncate(burst);
        work.stable_creates.truncate(burst - work.creates.len());
        work.deletes.truncate(burst);
        if !work.creates.is_empty() {
            out.actions.push(Action::CreatePods {
                node_names: work.creates,
                template: spec.template.clone(),
                hash: ctx.hash.clone(),
                template_generation: template_generation(ds),
            });
        }
        if let Some(stable) = ctx.stable.as_ref()
            && !work.stable_creates.is_empty()
        {
            out.actions.push(Action::CreatePods {
                node_names: work.stable_creates,
                template: stable.template.clone(),
                hash: stable.hash.clone(),
                template_generation: stable.template_generation,
            });
        }
        if !work.deletes.is_empty() {
            out.actions.push(Action::DeletePods {
                pods: work.deletes.iter().map(|p| name_uid(&p.metadata)).collect(),
            });
        }
        cleanup_history(&ctx, &claimed, old, &mut out.actions);
    }
    let (status, status_requeue) = status(&ctx, obs.expectations_satisfied);
    out.status = status;
    out.requeue_after = min_some(requeue, status_requeue);
    out
}

fn min_some(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// When the next claimed pod that is Ready but not yet available (minReadySeconds)
/// becomes available, plus a second of slack (availability is "strictly after").
fn availability_requeue(ctx: &Ctx<'_>, claimed: &[&Pod]) -> Option<Duration> {
    if ctx.min_ready_seconds <= 0 {
        return None;
    }
    let window = SignedDuration::from_secs(i64::from(ctx.min_ready_seconds));
    claimed
        .iter()
        .filter(|p| !is_deleting(&p.metadata) && is_pod_ready(p) && !ctx.available(p))
        .map(|p| {
            let since = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0);
            let left = since
                .and_then(|s| s.checked_add(window).ok())
                .map(|at| at.duration_since(ctx.obs.now))
                .unwrap_or(window);
            Duration::try_from(left).unwrap_or(Duration::ZERO) + Duration::from_secs(1)
        })
        .min()
}

// ---------------------------------------------------------------------------------------
// History (§10.3, §10.5)
// ---------------------------------------------------------------------------------------

fn construct_history<'a>(
    obs: &Observed<'a>,
    spec: &DaemonSetSpec,
    selector: &Selector,
    claimed_pods: &[&Pod],
    actions: &mut Vec<Action>,
) -> History<'a> {
    let ds = obs.ds;
    let ds_uid = opt_str(&ds.metadata.uid);
    let ds_namespace = opt_str(&ds.metadata.namespace);
    let template = &spec.template;

    let in_namespace = |r: &&Arc<ControllerRevision>| {
        r.metadata
            .namespace
            .as_deref()
            .is_none_or(|ns| ns == ds_namespace)
    };
    let mut current: Vec<&ControllerRevision> = Vec::new();
    let mut old: Vec<&ControllerRevision> = Vec::new();
    for rev in obs.revisions.iter().filter(in_namespace) {
        let (name, uid) = name_uid(&rev.metadata);
        match claim(&rev.metadata, ds_uid, ds_namespace, selector) {
            Claim::Keep => {}
            Claim::Adopt => actions.push(Action::AdoptRevision {
                name: name.clone(),
                uid,
            }),
            Claim::Release => {
                actions.push(Action::ReleaseRevision { name, uid });
                continue;
            }
            Claim::Ignore => continue,
        }
        if hash_label(&rev.metadata).is_none() {
            actions.push(Action::LabelRevision {
                name: name.clone(),
                hash: name,
            });
        }
        if revision_matches(template, rev) {
            current.push(rev);
        } else {
            old.push(rev);
        }
    }

    let next_revision = old.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    // The hash of a revision is its label, or its name when it is only being labelled.
    let rev_hash = |r: &ControllerRevision| {
        hash_label(&r.metadata)
            .unwrap_or(opt_str(&r.metadata.name))
            .to_string()
    };

    let Some(keep) = current.iter().copied().max_by_key(|r| r.revision) else {
        let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_template_hash(template, collision_count);
        let name = format!("{}-{hash}", opt_str(&ds.metadata.name));
        // A revision of that name we do not control (or a true collision) is in the
        // cache: Kubernetes would find out from AlreadyExists.
        if let Some(existing) = obs
            .revisions
            .iter()
            .filter(in_namespace)
            .find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
        {
            if revision_matches(template, existing) {
                return History::Ready {
                    hash: rev_hash(existing),
                    old,
                };
            }
            return History::Collision;
        }
        actions.push(Action::CreateRevision(revision_for(
            ds,
            template,
            &hash,
            next_revision,
        )));
        return History::Ready { hash, old };
    };

    let hash = rev_hash(keep);
    if current.len() > 1 {
        for pod in claimed_pods {
            if hash_label(&pod.metadata) != Some(hash.as_str()) {
                let (name, uid) = name_uid(&pod.metadata);
                actions.push(Action::RelabelPod {
                    name,
                    uid,
                    hash: hash.clone(),
                });
            }
        }
        for dup in current
            .iter()
            .filter(|r| r.metadata.name != keep.metadata.name)
        {
            actions.push(Action::DeleteRevision {
                name: opt_str(&dup.metadata.name).to_string(),
            });
        }
    }
    if keep.revision < next_revision {
        actions.push(Action::UpdateRevision {
            name: opt_str(&keep.metadata.name).to_string(),
            revision: next_revision,
        });
    }
    History::Ready { hash, old }
}

/// `cleanupHistory`: delete the oldest revisions beyond `revisionHistoryLimit`, except
/// those a claimed pod (any phase) still carries the hash of.
fn cleanup_history(
    ctx: &Ctx<'_>,
    claimed: &[&Pod],
    mut old: Vec<&ControllerRevision>,
    actions: &mut Vec<Action>,
) {
    let limit = ctx
        .spec
        .revision_history_limit
        .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
        .max(0);
    let Ok(limit) = usize::try_from(limit) else {
        return;
    };
    let mut to_kill = old.len().saturating_sub(limit);
    if to_kill == 0 {
        return;
    }
    let live: BTreeSet<&str> = claimed
        .iter()
        .filter_map(|p| hash_label(&p.metadata))
        .filter(|h| !h.is_empty())
        .collect();
    old.sort_by_key(|r| r.revision);
    for rev in old {
        if to_kill == 0 {
            break;
        }
        let hash = hash_label(&rev.metadata).unwrap_or(opt_str(&rev.metadata.name));
        if live.contains(hash) {
            continue;
        }
        actions.push(Action::DeleteRevision {
            name: opt_str(&rev.metadata.name).to_string(),
        });
        to_kill -= 1;
    }
}

// ---------------------------------------------------------------------------------------
// manage (§8.2) and rollingUpdate (§11)
// ---------------------------------------------------------------------------------------

/// Pod work decided by `manage` or the rolling update.
#[derive(Default)]
struct Work<'a> {
    /// Events and back-off steps, emitted before the creates and deletes.
    before: Vec<Action>,
    /// Nodes that get a new pod from the current template.
    creates: Vec<String>,
    /// Nodes that get a new pod from the stable revision (rollout held back there).
    stable_creates: Vec<String>,
    /// Pods to delete.
    deletes: Vec<&'a Pod>,
    requeue: Option<Duration>,
}

impl Work<'_> {
    /// A missing pod on `node`: from the stable revision where the rollout is held back.
    fn create(&mut self, ctx: &Ctx<'_>, node: &str) {
        if ctx.held_back(node) {
            self.stable_creates.push(node.to_string());
        } else {
            self.creates.push(node.to_string());
        }
    }
}

fn manage<'a>(ctx: &Ctx<'a>) -> Work<'a> {
    let mut work = Work::default();
    let surge = allows_surge(ctx.spec);
    let ds = ctx.ds;
    let namespace = opt_str(&ds.metadata.namespace);
    // The back-off as it will be after this pass's steps, so that a second failed pod on
    // the same node waits like Kubernetes' (which advances the shared state in place).
    let mut backoff: Option<FailedPodBackoff> = None;
    for node in ctx.obs.nodes {
        let node_name = opt_str(&node.metadata.name);
        let verdict = ctx.verdict(node_name);
        let pods = ctx.pods_on(node_name);
        if verdict.should_run && pods.is_empty() {
            work.create(ctx, node_name);
        } else if verdict.should_continue_running {
            let mut running: Vec<&Pod> = Vec::new();
            for &pod in pods {
                if is_deleting(&pod.metadata) {
                    continue;
                }
                let pod_name = opt_str(&pod.metadata.name);
                match pod_phase(pod) {
                    "Failed" => {
                        let key = failed_pod_backoff_key(ds, node_name);
                        let state =
                            backoff.get_or_insert_with(|| ctx.obs.failed_pod_backoff.clone());
                        if let Some(left) = state.in_backoff(&key, ctx.obs.now) {
                            work.requeue = min_some(work.requeue, Some(left));
                            continue;
                        }
                        state.next(&key, ctx.obs.now);
                        work.before.push(Action::AdvanceFailedPodBackoff { key });
                        work.before.push(Action::Event {
                            type_: EVENT_WARNING,
                            reason: reasons::FAILED_DAEMON_POD,
                            message: format!(
                                "Found failed daemon pod {namespace}/{pod_name} on node {node_name}, will try to kill it"
                            ),
                        });
                        work.deletes.push(pod);
                    }
                    "Succeeded" => {
                        work.before.push(Action::Event {
                            type_: EVENT_NORMAL,
                            reason: reasons::SUCCEEDED_DAEMON_POD,
                            message: format!(
                                "Found succeeded daemon pod {namespace}/{pod_name} on node {node_name}, will try to delete it"
                            ),
                        });
                        work.deletes.push(pod);
                    }
                    _ => running.push(pod),
                }
            }
            // `pods` is already in §8.2 order, so `running` is too.
            if !surge {
                work.deletes.extend(running.iter().skip(1));
                continue;
            }
            if running.is_empty() {
                if verdict.should_run {
                    work.create(ctx, node_name);
                }
                continue;
            }
            let mut oldest_new: Option<&Pod> = None;
            let mut oldest_old: Option<&Pod> = None;
            for &pod in &running {
                let slot = if ctx.is_updated(pod) {
                    &mut oldest_new
                } else {
                    &mut oldest_old
                };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    work.deletes.push(pod);
                }
            }
            if let (Some(new_pod), Some(old_pod)) = (oldest_new, oldest_old)
                && (!is_pod_ready(old_pod) || ctx.available(new_pod))
            {
                work.deletes.push(old_pod);
            }
        } else {
            work.deletes
                .extend(pods.iter().filter(|p| !is_deleting(&p.metadata)));
        }
    }
    // Pods for nodes that are gone: unbound ones would never be scheduled, so they are
    // ours to delete; bound ones are the pod GC's, unless there is none.
    let known: BTreeSet<&str> = ctx
        .obs
        .nodes
        .iter()
        .map(|n| opt_str(&n.metadata.name))
        .collect();
    for (node, pods) in &ctx.node_pods {
        if known.contains(node.as_str()) {
            continue;
        }
        for &pod in pods {
            let bound = pod
                .spec
                .as_ref()
                .is_some_and(|s| !opt_str(&s.node_name).is_empty());
            if !is_deleting(&pod.metadata) && (!bound || ctx.obs.delete_pods_on_missing_nodes) {
                work.deletes.push(pod);
            }
        }
    }
    work
}

/// The status of the node's Ready condition, if it reports one.
fn node_ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// `findUpdatedPodsOnNode`: the node's one new and one old live pod; `None` when there is
/// more than one of either (left to `manage`).
fn updated_and_old<'a>(
    ctx: &Ctx<'_>,
    pods: &[&'a Pod],
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let mut new_pod = None;
    let mut old_pod = None;
    for &pod in pods.iter().filter(|p| !is_deleting(&p.metadata)) {
        let slot = if ctx.is_updated(pod) {
            &mut new_pod
        } else {
            &mut old_pod
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod);
    }
    Some((new_pod, old_pod))
}

/// `rollingUpdate` (§11.2, §11.3), run when `manage` found nothing to do.
///
/// everynode extensions: paused → nothing; a canary selector → pods on other nodes are
/// neither replaced nor surged, but still count against `maxUnavailable`.
fn rolling_update<'a>(ctx: &Ctx<'a>, work: &mut Work<'a>) {
    if ctx.ext.paused {
        return;
    }
    let desired = ctx.verdicts.values().filter(|v| v.should_run).count();
    let desired_i64 = i64::try_from(desired).unwrap_or(i64::MAX);
    let (max_surge, max_unavailable) = budgets(ctx.spec, desired_i64);
    // Every node with pods, and every node that should run one — except nodes whose
    // Ready condition is False or Unknown (everynode, unlike Kubernetes): their pods
    // cannot be confirmed gone, so deleting them would hold a unit of the budget until
    // the node returns, and a silent node would stall the rollout for good. They are
    // updated when they are Ready again.
    let unready: BTreeSet<&str> = ctx
        .obs
        .nodes
        .iter()
        .filter(|n| node_ready_status(n).is_some_and(|s| s != "True"))
        .map(|n| opt_str(&n.metadata.name))
        .collect();
    let nodes: Vec<&str> = ctx
        .node_names()
        .into_iter()
        .filter(|n| ctx.node_pods.contains_key(*n) || ctx.verdict(n).should_run)
        .filter(|n| !unready.contains(n))
        .collect();

    if max_surge == 0 {
        let mut unavailable: i64 = 0;
        let mut candidates: Vec<&Pod> = Vec::new();
        for node in nodes {
            let Some(pair) = updated_and_old(ctx, ctx.pods_on(node)) else {
                unavailable += 1;
                continue;
            };
            match pair {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new_pod), None) => {
                    if !ctx.available(new_pod) {
                        unavailable += 1;
                    }
                }
                (None, Some(old_pod)) => {
                    if !ctx.available(old_pod) {
                        if ctx.updatable(node) {
                            work.deletes.push(old_pod);
                        }
                        unavailable += 1;
                    } else if unavailable < max_unavailable && ctx.updatable(node) {
                        candidates.push(old_pod);
                    }
                }
            }
        }
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0);
        work.deletes.extend(candidates.into_iter().take(room));
        return;
    }

    let mut surging: i64 = 0;
    let mut available: i64 = 0;
    let mut allowed: Vec<String> = Vec::new();
    let mut candidates: Vec<String> = Vec::new();
    let mut should_not_run: Vec<&Pod> = Vec::new();
    for node in nodes {
        let Some((new_pod, old_pod)) = updated_and_old(ctx, ctx.pods_on(node)) else {
            surging += 1;
            continue;
        };
        if let Some(counted) = old_pod.or(new_pod)
            && ctx.available(counted)
        {
            available += 1;
        }
        match (new_pod, old_pod) {
            (_, None) => {}
            (None, Some(_)) if !ctx.updatable(node) => {}
            (None, Some(old_pod)) => {
                let should_run = ctx.verdict(node).should_run;
                if !ctx.available(old_pod) {
                    if should_run {
                        allowed.push(node.to_string());
                    } else {
                        work.deletes.push(old_pod);
                    }
                } else if !should_run {
                    should_not_run.push(old_pod);
                } else if surging < max_surge {
                    candidates.push(node.to_string());
                }
            }
            (Some(new_pod), Some(old_pod)) => {
                if ctx.available(new_pod) {
                    work.deletes.push(old_pod);
                } else {
                    surging += 1;
                }
            }
        }
    }
    let deletable = usize::try_from((available - desired_i64).max(0)).unwrap_or(0);
    work.deletes
        .extend(should_not_run.into_iter().take(deletable));
    let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0);
    work.creates.extend(allowed);
    work.creates.extend(candidates.into_iter().take(room));
}

// ---------------------------------------------------------------------------------------
// Status (§12)
// ---------------------------------------------------------------------------------------

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `updateDaemonSetStatus`: the status to write (if it changed) and the re-check delay
/// for `minReadySeconds`.
fn status(ctx: &Ctx<'_>, full_pass: bool) -> (Option<DaemonSetStatus>, Option<Duration>) {
    let (mut desired, mut current, mut misscheduled) = (0usize, 0usize, 0usize);
    let (mut ready, mut available, mut updated) = (0usize, 0usize, 0usize);
    // Every node the rollout targets runs an available pod of the current revision.
    let mut complete = true;
    for node in ctx.obs.nodes {
        let name = opt_str(&node.metadata.name);
        let pods = ctx.pods_on(name);
        if ctx.verdict(name).should_run {
            desired += 1;
            let Some(&oldest) = pods.first() else {
                complete = false;
                continue;
            };
            current += 1;
            if ctx.updatable(name) && !(ctx.is_updated(oldest) && ctx.available(oldest)) {
                complete = false;
            }
            if is_pod_ready(oldest) {
                ready += 1;
                if ctx.available(oldest) {
                    available += 1;
                }
            }
            if ctx.is_updated(oldest) {
                updated += 1;
            }
        } else if !pods.is_empty() {
            misscheduled += 1;
        }
    }
    let unavailable = desired.saturating_sub(available);
    complete &= available == desired;

    let stored = ctx.ds.status.clone().unwrap_or_default();
    let counters = Counters {
        ready,
        available,
        updated,
    };
    let (conditions, deadline_requeue) = conditions(ctx, &stored, counters, complete);
    let generation = ctx.ds.metadata.generation.unwrap_or(0);
    let unchanged = stored.desired_number_scheduled == to_i32(desired)
        && stored.current_number_scheduled == to_i32(current)
        && stored.number_misscheduled == to_i32(misscheduled)
        && stored.number_ready == to_i32(ready)
        && stored.updated_number_scheduled.unwrap_or(0) == to_i32(updated)
        && stored.number_available.unwrap_or(0) == to_i32(available)
        && stored.number_unavailable.unwrap_or(0) == to_i32(unavailable)
        && stored.observed_generation.unwrap_or(0) >= generation
        && stored.conditions == conditions;

    let requeue = (ctx.min_ready_seconds > 0 && ready != available)
        .then(|| Duration::from_secs(u64::try_from(ctx.min_ready_seconds).unwrap_or(0)));
    let requeue = min_some(requeue, deadline_requeue);
    if unchanged {
        return (None, requeue);
    }
    let status = DaemonSetStatus {
        desired_number_scheduled: to_i32(desired),
        current_number_scheduled: to_i32(current),
        number_misscheduled: to_i32(misscheduled),
        number_ready: to_i32(ready),
        updated_number_scheduled: nonzero(to_i32(updated)),
        number_available: nonzero(to_i32(available)),
        number_unavailable: nonzero(to_i32(unavailable)),
        observed_generation: if full_pass && generation != 0 {
            Some(generation)
        } else {
            stored.observed_generation
        },
        collision_count: stored.collision_count,
        conditions,
    };
    (Some(status), requeue)
}

/// The progress counters of a status (what `Progressing` watches grow).
#[derive(Clone, Copy)]
struct Counters {
    ready: usize,
    available: usize,
    updated: usize,
}

/// `status.conditions` after this pass: the stored ones, with the `Progressing` condition
/// of the everynode extensions set (when any extension annotation is present) or removed
/// (when none is). Also when to look again for the progress deadline.
///
/// `DaemonSetCondition` has no `lastUpdateTime`, so while the rollout runs
/// (`True`/`RollingUpdate`) `lastTransitionTime` is moved to the time of the last progress:
/// more pods updated, ready or available than the stored status says, or a new revision
/// (named in the message). `everynode.io/progress-deadline-seconds` after it without
/// progress the condition turns `False`/`ProgressDeadlineExceeded` and stays so until
/// progress resumes.
fn conditions(
    ctx: &Ctx<'_>,
    stored: &DaemonSetStatus,
    now_counts: Counters,
    complete: bool,
) -> (Option<Vec<DaemonSetCondition>>, Option<Duration>) {
    let mut others: Vec<DaemonSetCondition> = stored
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.type_ != PROGRESSING)
        .cloned()
        .collect();
    let (cond, requeue) = if ctx.ext.enabled {
        let (cond, requeue) = progressing(ctx, stored, now_counts, complete);
        (Some(cond), requeue)
    } else {
        (None, None)
    };
    others.extend(cond);
    ((!others.is_empty()).then_some(others), requeue)
}

fn progressing(
    ctx: &Ctx<'_>,
    stored: &DaemonSetStatus,
    now_counts: Counters,
    complete: bool,
) -> (DaemonSetCondition, Option<Duration>) {
    use progress_reasons::*;
    let ds_name = opt_str(&ctx.ds.metadata.name);
    let revision = format!("revision \"{ds_name}-{}\"", ctx.hash);
    // Whole seconds, as the API stores times: an unchanged condition compares equal.
    let now = Timestamp::from_second(ctx.obs.now.as_second()).unwrap_or(ctx.obs.now);
    let prev = stored
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == PROGRESSING);
    let make = |status: &str, reason: &str, message: String, since: Timestamp| DaemonSetCondition {
        type_: PROGRESSING.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: Some(Time(since)),
    };
    // The stored condition if it says the same, else a new one from now.
    let settle = |status: &str, reason: &str, message: String| match prev {
        Some(p)
            if p.status == status
                && p.reason.as_deref() == Some(reason)
                && p.message.as_deref() == Some(message.as_str()) =>
        {
            p.clone()
        }
        _ => make(status, reason, message, now),
    };

    if let Some(error) = &ctx.ext.canary_error {
        let message = format!(
            "{CANARY_SELECTOR_ANNOTATION} is not a label selector ({error}): no node is updated"
        );
        return (settle("False", INVALID_CANARY_SELECTOR, message), None);
    }
    if complete {
        let scope = if ctx.canary_nodes.is_some() {
            "every node the canary selector picks"
        } else {
            "every node"
        };
        let message = format!(
            "DaemonSet \"{ds_name}\" has successfully progressed: {revision} is available on {scope}"
        );
        return (settle("True", NEW_REVISION_AVAILABLE, message), None);
    }
    if ctx.ext.paused {
        let message =
            format!("DaemonSet \"{ds_name}\" is paused ({PAUSED_ANNOTATION}): {revision} waits");
        return (settle("Unknown", ROLLOUT_PAUSED, message), None);
    }

    let rolling_message = format!("DaemonSet \"{ds_name}\" is rolling out {revision}");
    let same_rollout = prev.is_some_and(|p| {
        matches!(
            p.reason.as_deref(),
            Some(ROLLING_UPDATE | PROGRESS_DEADLINE_EXCEEDED)
        ) && p
            .message
            .as_deref()
            .is_some_and(|m| m.contains(revision.as_str()))
    });
    let grew = |now_n: usize, before: Option<i32>| to_i32(now_n) > before.unwrap_or(0);
    let progressed = !same_rollout
        || grew(now_counts.updated, stored.updated_number_scheduled)
        || grew(now_counts.available, stored.number_available)
        || grew(now_counts.ready, Some(stored.number_ready));
    let Some(prev) = prev.filter(|_| !progressed) else {
        let requeue = ctx.ext.deadline.map(deadline_wait);
        return (make("True", ROLLING_UPDATE, rolling_message, now), requeue);
    };
    if prev.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED) {
        return (prev.clone(), None);
    }
    let Some(deadline) = ctx.ext.deadline else {
        return (prev.clone(), None);
    };
    let since = prev.last_transition_time.as_ref().map_or(now, |t| t.0);
    let due = since
        .checked_add(SignedDuration::from_secs(deadline))
        .unwrap_or(since);
    if now >= due {
        let message = format!(
            "DaemonSet \"{ds_name}\" has timed out progressing: {revision} made no progress for {deadline}s"
        );
        return (
            make("False", PROGRESS_DEADLINE_EXCEEDED, message, now),
            None,
        );
    }
    let left = Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO);
    (prev.clone(), Some(left + Duration::from_secs(1)))
}

/// How long after fresh progress the deadline is checked again.
fn deadline_wait(secs: i64) -> Duration {
    Duration::from_secs(u64::try_from(secs).unwrap_or(0)) + Duration::from_secs(1)
}

/// The merge patch that writes `status` as a whole (Kubernetes `PUT`s the status): every
/// optional field the new status leaves out is sent as `null`, so a counter that drops
/// to zero (`numberUnavailable` after a rollout) or a removed condition is cleared instead
/// of keeping its stored value. The status was computed from the DaemonSet at
/// `resource_version`, so the patch carries it: should another client have written the
/// DaemonSet since (a condition of its own), the write is refused (409) instead of
/// dropping that change, and the pass runs again on the newer object.
pub fn status_patch(status: &DaemonSetStatus, resource_version: Option<&str>) -> Value {
    let mut body = match serde_json::to_value(status) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for field in [
        "updatedNumberScheduled",
        "numberAvailable",
        "numberUnavailable",
        "observedGeneration",
        "collisionCount",
        "conditions",
    ] {
        body.entry(field).or_insert(Value::Null);
    }
    let mut root = Map::new();
    if let Some(rv) = resource_version {
        root.insert(
            "metadata".to_string(),
            serde_json::json!({ "resourceVersion": rv }),
        );
    }
    root.insert("status".to_string(), Value::Object(body));
    Value::Object(root)
}

#[cfg(test)]
mod tests;
