//! Scheduling predicates for the DaemonSet controller and the pod binder: taints and
//! tolerations, node selectors and required node affinity, which nodes should run a
//! daemon pod (daemonset-semantics.md §7), the tolerations and node affinity daemon pods
//! get (§7.3, §8.4), pod readiness and availability, and a pod's effective resource
//! requests.
//!
//! Everything here is a pure function of its arguments; `now` is passed in.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Container, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodCondition, PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity::parse_milli;
use crate::selector::{Operator, Requirement};

pub const TAINT_EFFECT_NO_SCHEDULE: &str = "NoSchedule";
pub const TAINT_EFFECT_PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const TAINT_EFFECT_NO_EXECUTE: &str = "NoExecute";

pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NODE_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_NODE_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_NODE_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NODE_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// The only field node-affinity `matchFields` can use.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

fn opt_str(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

// ---------------------------------------------------------------------------------------
// Taints and tolerations
// ---------------------------------------------------------------------------------------

/// `Toleration.ToleratesTaint`: an empty effect matches every effect; an empty key (with
/// `Exists`) matches every key; `Exists` ignores the value, `Equal` (or no operator)
/// needs equal values. `tolerationSeconds` plays no part.
pub fn toleration_tolerates_taint(t: &Toleration, taint: &Taint) -> bool {
    let effect = opt_str(&t.effect);
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = opt_str(&t.key);
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match opt_str(&t.operator) {
        "" | "Equal" => opt_str(&t.value) == opt_str(&taint.value),
        "Exists" => true,
        _ => false,
    }
}

/// `FindMatchingUntoleratedTaint`: the first taint passing `filter` that no toleration
/// tolerates.
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints.iter().filter(|t| filter(t)).find(|taint| {
        !tolerations
            .iter()
            .any(|t| toleration_tolerates_taint(t, taint))
    })
}

/// `Toleration.MatchToleration`: same key, operator, value and effect.
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    opt_str(&a.key) == opt_str(&b.key)
        && opt_str(&a.operator) == opt_str(&b.operator)
        && opt_str(&a.value) == opt_str(&b.value)
        && opt_str(&a.effect) == opt_str(&b.effect)
}

/// `AddOrUpdateTolerationInPodSpec`: if a toleration with the same key, operator, value
/// and effect exists it is replaced in place (dropping e.g. its `tolerationSeconds`),
/// otherwise `toleration` is appended. Returns false when an identical one was already
/// there (nothing changed).
pub fn add_or_update_toleration(spec: &mut PodSpec, toleration: &Toleration) -> bool {
    let current = spec.tolerations.as_deref().unwrap_or_default();
    let mut next = Vec::with_capacity(current.len() + 1);
    let mut replaced = false;
    for existing in current {
        if same_toleration(toleration, existing) {
            if toleration.toleration_seconds == existing.toleration_seconds {
                return false;
            }
            next.push(toleration.clone());
            replaced = true;
        } else {
            next.push(existing.clone());
        }
    }
    if !replaced {
        next.push(toleration.clone());
    }
    spec.tolerations = Some(next);
    true
}

fn exists_toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        value: None,
        toleration_seconds: None,
    }
}

/// `AddOrUpdateDaemonPodTolerations` (§7.3): the tolerations every daemon pod gets so that
/// node problems neither evict it nor keep it off the node. `network-unavailable` only
/// for `hostNetwork` pods (they do not need the pod network).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let always = [
        (TAINT_NODE_NOT_READY, TAINT_EFFECT_NO_EXECUTE),
        (TAINT_NODE_UNREACHABLE, TAINT_EFFECT_NO_EXECUTE),
        (TAINT_NODE_DISK_PRESSURE, TAINT_EFFECT_NO_SCHEDULE),
        (TAINT_NODE_MEMORY_PRESSURE, TAINT_EFFECT_NO_SCHEDULE),
        (TAINT_NODE_PID_PRESSURE, TAINT_EFFECT_NO_SCHEDULE),
        (TAINT_NODE_UNSCHEDULABLE, TAINT_EFFECT_NO_SCHEDULE),
    ];
    for (key, effect) in always {
        add_or_update_toleration(spec, &exists_toleration(key, effect));
    }
    if spec.host_network == Some(true) {
        add_or_update_toleration(
            spec,
            &exists_toleration(TAINT_NODE_NETWORK_UNAVAILABLE, TAINT_EFFECT_NO_SCHEDULE),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Node selectors and node affinity
// ---------------------------------------------------------------------------------------

/// A `matchExpressions` entry as a label requirement; `None` if it would not parse in
/// Kubernetes (unknown operator, bad key or values, wrong value count).
fn label_requirement(r: &NodeSelectorRequirement) -> Option<Requirement> {
    let operator = match r.operator.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        _ => return None,
    };
    Requirement::new(&r.key, operator, r.values.clone().unwrap_or_default()).ok()
}

/// A `matchFields` entry as `(field, must_equal, value)`; only `In` and `NotIn` with
/// exactly one value parse.
fn field_requirement(r: &NodeSelectorRequirement) -> Option<(&str, bool, &str)> {
    let [value] = r.values.as_deref().unwrap_or_default() else {
        return None;
    };
    match r.operator.as_str() {
        "In" => Some((&r.key, true, value)),
        "NotIn" => Some((&r.key, false, value)),
        _ => None,
    }
}

/// One `nodeSelectorTerm`: all its expressions and fields must hold. An empty term, or
/// one Kubernetes could not parse, matches nothing.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let Some(label_reqs) = expressions
        .iter()
        .map(label_requirement)
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let Some(field_reqs) = fields
        .iter()
        .map(field_requirement)
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    if !label_reqs.iter().all(|r| r.matches(labels)) {
        return false;
    }
    // The node's field set is `{metadata.name: name}`, and empty for a nameless node, in
    // which case Kubernetes skips matchFields altogether. Unknown fields read as "".
    if name.is_empty() {
        return true;
    }
    field_reqs.iter().all(|(field, must_equal, value)| {
        let actual = if *field == OBJECT_NAME_FIELD {
            name
        } else {
            ""
        };
        (actual == *value) == *must_equal
    })
}

/// `nodeaffinity.NodeSelector.Match`: the terms are ORed; within a term `matchExpressions`
/// (node labels; In, NotIn, Exists, DoesNotExist, Gt, Lt) and `matchFields`
/// (`metadata.name`; In, NotIn) are ANDed. No terms, or only empty ones, match nothing.
pub fn node_matches_node_selector_terms(node: &Node, selector: &NodeSelector) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = opt_str(&node.metadata.name);
    selector
        .node_selector_terms
        .iter()
        .any(|term| term_matches(term, labels, name))
}

/// `GetRequiredNodeAffinity(pod).Match(node)`: every `nodeSelector` entry is a node label
/// with that value, and the required node affinity (if any) matches. Preferred affinity,
/// pod (anti-)affinity, resources and readiness are not considered.
pub fn pod_matches_node(spec: &PodSpec, node: &Node) -> bool {
    if let Some(selector) = &spec.node_selector {
        let labels = node.metadata.labels.as_ref();
        let all_present = selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !all_present {
            return false;
        }
    }
    match spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        }) {
        Some(required) => node_matches_node_selector_terms(node, required),
        None => true,
    }
}

// ---------------------------------------------------------------------------------------
// Daemon pods
// ---------------------------------------------------------------------------------------

/// The verdict of [`node_should_run_daemon_pod`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShouldRun {
    /// A daemon pod should be created here (the node counts as "desired").
    pub should_run: bool,
    /// An existing daemon pod may stay; when false it is deleted.
    pub should_continue_running: bool,
}

impl ShouldRun {
    const YES: ShouldRun = ShouldRun {
        should_run: true,
        should_continue_running: true,
    };
    const NO: ShouldRun = ShouldRun {
        should_run: false,
        should_continue_running: false,
    };
}

/// `NodeShouldRunDaemonPod` (§7.2). The would-be pod is the template bound to this node
/// (`spec.nodeName`) with the §7.3 daemon tolerations added; then:
///
/// 1. the template names another node → (false, false);
/// 2. `nodeSelector` or required node affinity does not match → (false, false);
/// 3. a `NoSchedule`/`NoExecute` taint the pod does not tolerate → should_run false, and
///    should_continue_running false only if one of those is `NoExecute`;
/// 4. otherwise (true, true).
///
/// `PreferNoSchedule` taints, node readiness and deletion, and resources are ignored, as
/// in Kubernetes (node conditions reach this decision only through their taints).
pub fn node_should_run_daemon_pod(node: &Node, ds: &DaemonSet) -> ShouldRun {
    let default_spec = PodSpec::default();
    let template = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap_or(&default_spec);
    let node_name = opt_str(&node.metadata.name);

    let wanted = opt_str(&template.node_name);
    if !wanted.is_empty() && wanted != node_name {
        return ShouldRun::NO;
    }
    if !pod_matches_node(template, node) {
        return ShouldRun::NO;
    }

    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    if taints.is_empty() {
        // Nothing to tolerate (the common case, and a pass looks at every node).
        return ShouldRun::YES;
    }
    // Only the tolerations of the simulated pod matter from here on.
    let mut simulated = PodSpec {
        tolerations: template.tolerations.clone(),
        host_network: template.host_network,
        ..PodSpec::default()
    };
    add_daemon_tolerations(&mut simulated);
    let tolerations = simulated.tolerations.as_deref().unwrap_or_default();

    let blocking =
        |t: &Taint| t.effect == TAINT_EFFECT_NO_SCHEDULE || t.effect == TAINT_EFFECT_NO_EXECUTE;
    if find_untolerated_taint(taints, tolerations, blocking).is_none() {
        return ShouldRun::YES;
    }
    let evicting =
        find_untolerated_taint(taints, tolerations, |t| t.effect == TAINT_EFFECT_NO_EXECUTE);
    ShouldRun {
        should_run: false,
        should_continue_running: evicting.is_none(),
    }
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity` (§8.4): the required node affinity becomes
/// exactly one term, `matchFields: metadata.name In [node_name]`. Earlier required terms
/// (with their matchExpressions) are dropped; preferred terms and pod (anti-)affinity
/// are kept; missing levels are created.
pub fn set_daemon_node_affinity(affinity: Option<Affinity>, node_name: &str) -> Affinity {
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity.node_affinity.get_or_insert_with(Default::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: OBJECT_NAME_FIELD.to_string(),
                operator: "In".to_string(),
                values: Some(vec![node_name.to_string()]),
            }]),
        }],
    });
    affinity
}

/// `GetTargetNodeName`: the node a daemon pod belongs to — `spec.nodeName` once bound,
/// before that the value of the first `metadata.name In [...]` matchFields requirement of
/// the required node affinity (`None` if that requirement has other than one value).
pub fn daemon_pod_target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let bound = opt_str(&spec.node_name);
    if !bound.is_empty() {
        return Some(bound.to_string());
    }
    let required = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    let requirement = required
        .node_selector_terms
        .iter()
        .flat_map(|term| term.match_fields.iter().flatten())
        .find(|r| r.key == OBJECT_NAME_FIELD && r.operator == "In")?;
    match requirement.values.as_deref() {
        Some([name]) => Some(name.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Readiness and availability
// ---------------------------------------------------------------------------------------

/// The node's first `Ready` condition has status `True`.
pub fn is_node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn pod_ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod_condition(pod, "Ready")
}

/// The status (`True`, `False`, `Unknown`) of the pod's first condition of this type.
pub fn pod_condition_status<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod_condition(pod, type_).map(|c| c.status.as_str())
}

/// `IsPodReady`: the pod's first `Ready` condition has status `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// `IsPodAvailable`: ready, and with `min_ready_seconds > 0` ready for longer than that
/// (the Ready condition's `lastTransitionTime + minReadySeconds` strictly before `now`,
/// as in Kubernetes; no transition time means not available yet).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    let Some(ready) = pod_ready_condition(pod) else {
        return false;
    };
    if ready.status != "True" {
        return false;
    }
    if min_ready_seconds == 0 {
        return true;
    }
    let Some(since) = &ready.last_transition_time else {
        return false;
    };
    since
        .0
        .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
        .is_ok_and(|available_at| available_at < now)
}

// ---------------------------------------------------------------------------------------
// Resource requests
// ---------------------------------------------------------------------------------------

fn add_into(total: &mut BTreeMap<String, i128>, more: &BTreeMap<String, i128>) {
    for (k, v) in more {
        *total.entry(k.clone()).or_insert(0) += v;
    }
}

fn max_into(total: &mut BTreeMap<String, i128>, other: &BTreeMap<String, i128>) {
    for (k, v) in other {
        let slot = total.entry(k.clone()).or_insert(*v);
        if *v > *slot {
            *slot = *v;
        }
    }
}

fn parse_list(list: &BTreeMap<String, Quantity>) -> BTreeMap<String, i128> {
    list.iter()
        .filter_map(|(k, q)| parse_milli(&q.0).ok().map(|v| (k.clone(), v)))
        .collect()
}

/// A container's requests in milli-units; a resource with only a limit requests its limit
/// (what defaulting does). Unparseable quantities are skipped (validation rejects them).
fn container_requests(c: &Container) -> BTreeMap<String, i128> {
    let Some(resources) = &c.resources else {
        return BTreeMap::new();
    };
    let requests = resources.requests.as_ref();
    let mut out = requests.map(parse_list).unwrap_or_default();
    for (k, q) in resources.limits.iter().flatten() {
        if requests.is_some_and(|r| r.contains_key(k)) {
            continue;
        }
        if let Ok(v) = parse_milli(&q.0) {
            out.insert(k.clone(), v);
        }
    }
    out
}

/// `resourcehelper.PodRequests`, in milli-units per resource name: the sum over the app
/// containers and restartable ("sidecar") init containers, or — if larger, per resource —
/// the peak while an ordinary init container runs (its requests plus the sidecars started
/// before it); then `spec.overhead` on top.
///
/// Pod-level `spec.resources` (alpha in 1.33) and in-place-resize status are not
/// considered.
pub fn pod_requests(spec: &PodSpec) -> BTreeMap<String, i128> {
    let mut total = BTreeMap::new();
    for c in &spec.containers {
        add_into(&mut total, &container_requests(c));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        let own = container_requests(c);
        let while_running = if c.restart_policy.as_deref() == Some("Always") {
            add_into(&mut total, &own);
            add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut usage = own;
            add_into(&mut usage, &sidecars);
            usage
        };
        max_into(&mut init_peak, &while_running);
    }
    max_into(&mut total, &init_peak);
    if let Some(overhead) = &spec.overhead {
        add_into(&mut total, &parse_list(overhead));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{
        NodeAffinity, NodeCondition, NodeSpec, NodeStatus, PodAffinity, PodStatus, PodTemplateSpec,
        PreferredSchedulingTerm, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    // ---- builders --------------------------------------------------------------------

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect: effect.to_string(),
            time_added: None,
        }
    }

    fn toleration(key: &str, op: Option<&str>, value: Option<&str>, effect: &str) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.to_string()),
            operator: op.map(str::to_string),
            value: value.map(str::to_string),
            effect: (!effect.is_empty()).then(|| effect.to_string()),
            toleration_seconds: None,
        }
    }

    fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: (!name.is_empty()).then(|| name.to_string()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn term(
        exprs: Vec<NodeSelectorRequirement>,
        fields: Vec<NodeSelectorRequirement>,
    ) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: (!exprs.is_empty()).then_some(exprs),
            match_fields: (!fields.is_empty()).then_some(fields),
        }
    }

    fn required(terms: Vec<NodeSelectorTerm>) -> Affinity {
        Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        }
    }

    fn daemonset(spec: PodSpec) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some("ds".to_string()),
                namespace: Some("default".to_string()),
                ..Default::default()
            },
            spec: Some(DaemonSetSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(spec),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    fn run(should_run: bool, should_continue_running: bool) -> ShouldRun {
        ShouldRun {
            should_run,
            should_continue_running,
        }
    }

    fn ts(s: &str) -> Timestamp {
        match s.parse() {
            Ok(t) => t,
            Err(e) => panic!("bad timestamp {s}: {e}"),
        }
    }

    // ---- tolerations -----------------------------------------------------------------

    #[test]
    fn tolerates_taint_table() {
        let t = taint("k", Some("v"), TAINT_EFFECT_NO_SCHEDULE);
        let cases = [
            (
                toleration("k", Some("Equal"), Some("v"), "NoSchedule"),
                true,
            ),
            (toleration("k", None, Some("v"), "NoSchedule"), true),
            (
                toleration("k", Some("Equal"), Some("w"), "NoSchedule"),
                false,
            ),
            (toleration("k", Some("Equal"), None, "NoSchedule"), false),
            (toleration("k", Some("Exists"), None, "NoSchedule"), true),
            (toleration("k", Some("Exists"), None, ""), true),
            (toleration("k", Some("Exists"), None, "NoExecute"), false),
            (toleration("other", Some("Exists"), None, ""), false),
            (toleration("", Some("Exists"), None, ""), true),
            (toleration("", Some("Exists"), None, "NoSchedule"), true),
            (toleration("", Some("Exists"), None, "NoExecute"), false),
            (toleration("k", Some("Bogus"), Some("v"), ""), false),
        ];
        for (tol, want) in cases {
            assert_eq!(toleration_tolerates_taint(&tol, &t), want, "{tol:?}");
        }
        // Valueless taint against Equal with no value.
        let bare = taint("k", None, TAINT_EFFECT_NO_EXECUTE);
        assert!(toleration_tolerates_taint(
            &toleration("k", Some("Equal"), None, ""),
            &bare
        ));
        assert!(toleration_tolerates_taint(
            &toleration("k", Some("Equal"), Some(""), ""),
            &bare
        ));
    }

    #[test]
    fn finds_first_untolerated_taint_after_filtering() {
        let taints = vec![
            taint("a", None, TAINT_EFFECT_PREFER_NO_SCHEDULE),
            taint("b", None, TAINT_EFFECT_NO_SCHEDULE),
            taint("c", None, TAINT_EFFECT_NO_EXECUTE),
        ];
        let tolerate_b = vec![toleration("b", Some("Exists"), None, "")];
        let all = |_: &Taint| true;
        assert_eq!(
            find_untolerated_taint(&taints, &[], all).map(|t| t.key.as_str()),
            Some("a")
        );
        assert_eq!(
            find_untolerated_taint(&taints, &tolerate_b, |t| t.effect != "PreferNoSchedule")
                .map(|t| t.key.as_str()),
            Some("c")
        );
        assert_eq!(
            find_untolerated_taint(&taints, &tolerate_b, |t| t.effect == "NoSchedule"),
            None
        );
        let everything = vec![toleration("", Some("Exists"), None, "")];
        assert_eq!(find_untolerated_taint(&taints, &everything, all), None);
    }

    #[test]
    fn daemon_tolerations_added_in_order_once() {
        let mut spec = PodSpec::default();
        add_daemon_tolerations(&mut spec);
        let keys = |spec: &PodSpec| -> Vec<(String, String)> {
            spec.tolerations
                .iter()
                .flatten()
                .map(|t| (opt_str(&t.key).to_string(), opt_str(&t.effect).to_string()))
                .collect()
        };
        let expected: Vec<(String, String)> = [
            (TAINT_NODE_NOT_READY, "NoExecute"),
            (TAINT_NODE_UNREACHABLE, "NoExecute"),
            (TAINT_NODE_DISK_PRESSURE, "NoSchedule"),
            (TAINT_NODE_MEMORY_PRESSURE, "NoSchedule"),
            (TAINT_NODE_PID_PRESSURE, "NoSchedule"),
            (TAINT_NODE_UNSCHEDULABLE, "NoSchedule"),
        ]
        .iter()
        .map(|(k, e)| (k.to_string(), e.to_string()))
        .collect();
        assert_eq!(keys(&spec), expected);
        assert!(spec.tolerations.iter().flatten().all(|t| {
            t.operator.as_deref() == Some("Exists") && t.toleration_seconds.is_none()
        }));

        // Twice: nothing duplicated.
        let once = spec.clone();
        add_daemon_tolerations(&mut spec);
        assert_eq!(spec, once);

        // hostNetwork adds network-unavailable at the end.
        let mut host = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        add_daemon_tolerations(&mut host);
        let host_keys = keys(&host);
        assert_eq!(host_keys.len(), 7);
        assert_eq!(
            host_keys.last(),
            Some(&(
                TAINT_NODE_NETWORK_UNAVAILABLE.to_string(),
                "NoSchedule".to_string()
            ))
        );
    }

    #[test]
    fn daemon_tolerations_replace_matching_user_ones_in_place() {
        let mut user_not_ready = exists_toleration(TAINT_NODE_NOT_READY, "NoExecute");
        user_not_ready.toleration_seconds = Some(300);
        let custom = toleration("dedicated", Some("Equal"), Some("infra"), "NoSchedule");
        // Same key but Equal operator: a different toleration, kept as is.
        let unreachable_equal =
            toleration(TAINT_NODE_UNREACHABLE, Some("Equal"), None, "NoExecute");
        let mut spec = PodSpec {
            tolerations: Some(vec![
                custom.clone(),
                user_not_ready,
                unreachable_equal.clone(),
            ]),
            ..Default::default()
        };
        add_daemon_tolerations(&mut spec);
        let tolerations = spec.tolerations.unwrap_or_default();
        assert_eq!(tolerations.len(), 3 + 5);
        assert_eq!(tolerations[0], custom);
        assert_eq!(
            tolerations[1],
            exists_toleration(TAINT_NODE_NOT_READY, "NoExecute"),
            "tolerationSeconds dropped, position kept"
        );
        assert_eq!(tolerations[2], unreachable_equal);
        assert_eq!(
            tolerations[3],
            exists_toleration(TAINT_NODE_UNREACHABLE, "NoExecute")
        );
    }

    #[test]
    fn add_or_update_reports_changes() {
        let t = exists_toleration("k", "NoSchedule");
        let mut spec = PodSpec::default();
        assert!(add_or_update_toleration(&mut spec, &t));
        assert!(!add_or_update_toleration(&mut spec, &t));
        let mut timed = t.clone();
        timed.toleration_seconds = Some(5);
        assert!(add_or_update_toleration(&mut spec, &timed));
        assert_eq!(spec.tolerations, Some(vec![timed]));
    }

    // ---- node selectors --------------------------------------------------------------

    #[test]
    fn node_selector_terms_table() {
        let n = node(
            "n1",
            &[
                ("zone", "a"),
                ("gpu", "true"),
                ("cores", "8"),
                ("kubernetes.io/os", "linux"),
            ],
            vec![],
        );
        let cases: Vec<(&str, Vec<NodeSelectorTerm>, bool)> = vec![
            ("no terms", vec![], false),
            ("empty term", vec![term(vec![], vec![])], false),
            (
                "In",
                vec![term(vec![req("zone", "In", &["a", "b"])], vec![])],
                true,
            ),
            (
                "In miss",
                vec![term(vec![req("zone", "In", &["b"])], vec![])],
                false,
            ),
            (
                "NotIn",
                vec![term(vec![req("zone", "NotIn", &["b"])], vec![])],
                true,
            ),
            (
                "NotIn absent",
                vec![term(vec![req("x", "NotIn", &["b"])], vec![])],
                true,
            ),
            (
                "Exists",
                vec![term(vec![req("gpu", "Exists", &[])], vec![])],
                true,
            ),
            (
                "DoesNotExist",
                vec![term(vec![req("gpu", "DoesNotExist", &[])], vec![])],
                false,
            ),
            (
                "Gt",
                vec![term(vec![req("cores", "Gt", &["4"])], vec![])],
                true,
            ),
            (
                "Gt miss",
                vec![term(vec![req("cores", "Gt", &["8"])], vec![])],
                false,
            ),
            (
                "Lt",
                vec![term(vec![req("cores", "Lt", &["9"])], vec![])],
                true,
            ),
            (
                "Gt non-integer label",
                vec![term(vec![req("zone", "Gt", &["1"])], vec![])],
                false,
            ),
            (
                "Gt two values",
                vec![term(vec![req("cores", "Gt", &["1", "2"])], vec![])],
                false,
            ),
            (
                "bad operator",
                vec![term(vec![req("zone", "Equals", &["a"])], vec![])],
                false,
            ),
            (
                "In without values",
                vec![term(vec![req("zone", "In", &[])], vec![])],
                false,
            ),
            (
                "bad key",
                vec![term(vec![req("bad key", "Exists", &[])], vec![])],
                false,
            ),
            (
                "ANDed within a term",
                vec![term(
                    vec![req("zone", "In", &["a"]), req("gpu", "DoesNotExist", &[])],
                    vec![],
                )],
                false,
            ),
            (
                "ORed across terms",
                vec![
                    term(vec![req("zone", "In", &["b"])], vec![]),
                    term(vec![req("gpu", "Exists", &[])], vec![]),
                ],
                true,
            ),
            (
                "broken term does not spoil the others",
                vec![
                    term(vec![req("zone", "Bogus", &[])], vec![]),
                    term(vec![req("zone", "In", &["a"])], vec![]),
                ],
                true,
            ),
            (
                "matchFields In",
                vec![term(vec![], vec![req("metadata.name", "In", &["n1"])])],
                true,
            ),
            (
                "matchFields In other",
                vec![term(vec![], vec![req("metadata.name", "In", &["n2"])])],
                false,
            ),
            (
                "matchFields NotIn",
                vec![term(vec![], vec![req("metadata.name", "NotIn", &["n2"])])],
                true,
            ),
            (
                "matchFields two values",
                vec![term(
                    vec![],
                    vec![req("metadata.name", "In", &["n1", "n2"])],
                )],
                false,
            ),
            (
                "matchFields Exists",
                vec![term(vec![], vec![req("metadata.name", "Exists", &[])])],
                false,
            ),
            (
                "unknown field is empty",
                vec![term(vec![], vec![req("spec.x", "NotIn", &["y"])])],
                true,
            ),
            (
                "labels and fields ANDed",
                vec![term(
                    vec![req("zone", "In", &["a"])],
                    vec![req("metadata.name", "In", &["n2"])],
                )],
                false,
            ),
        ];
        for (name, terms, want) in cases {
            let selector = NodeSelector {
                node_selector_terms: terms,
            };
            assert_eq!(
                node_matches_node_selector_terms(&n, &selector),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn nameless_node_skips_match_fields() {
        let n = node("", &[("zone", "a")], vec![]);
        let selector = NodeSelector {
            node_selector_terms: vec![term(vec![], vec![req("metadata.name", "In", &["n2"])])],
        };
        assert!(node_matches_node_selector_terms(&n, &selector));
    }

    #[test]
    fn pod_matches_node_selector_and_affinity() {
        let n = node("n1", &[("disk", "ssd"), ("zone", "a")], vec![]);
        let spec = |selector: &[(&str, &str)], affinity: Option<Affinity>| PodSpec {
            node_selector: Some(
                selector
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            affinity,
            ..Default::default()
        };
        assert!(pod_matches_node(&PodSpec::default(), &n));
        assert!(pod_matches_node(&spec(&[], None), &n));
        assert!(pod_matches_node(&spec(&[("disk", "ssd")], None), &n));
        assert!(pod_matches_node(
            &spec(&[("disk", "ssd"), ("zone", "a")], None),
            &n
        ));
        assert!(!pod_matches_node(&spec(&[("disk", "hdd")], None), &n));
        assert!(!pod_matches_node(&spec(&[("gpu", "true")], None), &n));
        let on_n1 = required(vec![term(
            vec![],
            vec![req("metadata.name", "In", &["n1"])],
        )]);
        let on_n2 = required(vec![term(
            vec![],
            vec![req("metadata.name", "In", &["n2"])],
        )]);
        assert!(pod_matches_node(
            &spec(&[("disk", "ssd")], Some(on_n1.clone())),
            &n
        ));
        assert!(!pod_matches_node(
            &spec(&[("disk", "ssd")], Some(on_n2)),
            &n
        ));
        assert!(!pod_matches_node(
            &spec(&[("disk", "hdd")], Some(on_n1)),
            &n
        ));
        // A required selector with no terms matches nothing.
        assert!(!pod_matches_node(&spec(&[], Some(required(vec![]))), &n));
        // Preferred-only affinity does not restrict.
        let preferred = Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    PreferredSchedulingTerm {
                        weight: 1,
                        preference: term(vec![req("zone", "In", &["b"])], vec![]),
                    },
                ]),
                required_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        };
        assert!(pod_matches_node(&spec(&[], Some(preferred)), &n));
    }

    // ---- should run ------------------------------------------------------------------

    #[test]
    fn node_should_run_daemon_pod_table() {
        let control_plane = taint("node-role.kubernetes.io/control-plane", None, "NoSchedule");
        let tolerate_control_plane = toleration(
            "node-role.kubernetes.io/control-plane",
            Some("Exists"),
            None,
            "NoSchedule",
        );
        let tolerate_all = toleration("", Some("Exists"), None, "");
        let plain = PodSpec::default();
        let with_tolerations = |ts: Vec<Toleration>| PodSpec {
            tolerations: Some(ts),
            ..Default::default()
        };
        let cases: Vec<(&str, Vec<Taint>, PodSpec, ShouldRun)> = vec![
            ("untainted", vec![], plain.clone(), run(true, true)),
            (
                "control-plane NoSchedule",
                vec![control_plane.clone()],
                plain.clone(),
                run(false, true),
            ),
            (
                "control-plane tolerated",
                vec![control_plane.clone()],
                with_tolerations(vec![tolerate_control_plane]),
                run(true, true),
            ),
            (
                "untolerated NoExecute",
                vec![taint("dedicated", Some("x"), "NoExecute")],
                plain.clone(),
                run(false, false),
            ),
            (
                "NoExecute tolerated by value",
                vec![taint("dedicated", Some("x"), "NoExecute")],
                with_tolerations(vec![toleration(
                    "dedicated",
                    Some("Equal"),
                    Some("x"),
                    "NoExecute",
                )]),
                run(true, true),
            ),
            (
                "NoSchedule and NoExecute",
                vec![control_plane.clone(), taint("dedicated", None, "NoExecute")],
                plain.clone(),
                run(false, false),
            ),
            (
                "PreferNoSchedule ignored",
                vec![taint("soft", None, "PreferNoSchedule")],
                plain.clone(),
                run(true, true),
            ),
            (
                "cordoned",
                vec![taint(TAINT_NODE_UNSCHEDULABLE, None, "NoSchedule")],
                plain.clone(),
                run(true, true),
            ),
            (
                "pressure taints",
                vec![
                    taint(TAINT_NODE_MEMORY_PRESSURE, None, "NoSchedule"),
                    taint(TAINT_NODE_DISK_PRESSURE, None, "NoSchedule"),
                    taint(TAINT_NODE_PID_PRESSURE, None, "NoSchedule"),
                ],
                plain.clone(),
                run(true, true),
            ),
            (
                "not ready: both effects",
                vec![
                    taint(TAINT_NODE_NOT_READY, None, "NoSchedule"),
                    taint(TAINT_NODE_NOT_READY, None, "NoExecute"),
                ],
                plain.clone(),
                run(false, true),
            ),
            (
                "unreachable: both effects, tolerate-all template",
                vec![
                    taint(TAINT_NODE_UNREACHABLE, None, "NoSchedule"),
                    taint(TAINT_NODE_UNREACHABLE, None, "NoExecute"),
                ],
                with_tolerations(vec![tolerate_all]),
                run(true, true),
            ),
            (
                "not ready: NoExecute only",
                vec![taint(TAINT_NODE_NOT_READY, None, "NoExecute")],
                plain.clone(),
                run(true, true),
            ),
            (
                "network unavailable",
                vec![taint(TAINT_NODE_NETWORK_UNAVAILABLE, None, "NoSchedule")],
                plain.clone(),
                run(false, true),
            ),
            (
                "network unavailable, hostNetwork",
                vec![taint(TAINT_NODE_NETWORK_UNAVAILABLE, None, "NoSchedule")],
                PodSpec {
                    host_network: Some(true),
                    ..Default::default()
                },
                run(true, true),
            ),
        ];
        for (name, taints, spec, want) in cases {
            let n = node("n1", &[("kubernetes.io/hostname", "n1")], taints);
            assert_eq!(
                node_should_run_daemon_pod(&n, &daemonset(spec)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn should_run_respects_placement() {
        let n = node("n1", &[("disk", "ssd")], vec![]);
        let cases: Vec<(&str, PodSpec, ShouldRun)> = vec![
            (
                "nodeName other",
                PodSpec {
                    node_name: Some("n2".to_string()),
                    ..Default::default()
                },
                run(false, false),
            ),
            (
                "nodeName this",
                PodSpec {
                    node_name: Some("n1".to_string()),
                    ..Default::default()
                },
                run(true, true),
            ),
            (
                "nodeName empty",
                PodSpec {
                    node_name: Some(String::new()),
                    ..Default::default()
                },
                run(true, true),
            ),
            (
                "nodeSelector mismatch",
                PodSpec {
                    node_selector: Some(BTreeMap::from([("disk".to_string(), "hdd".to_string())])),
                    ..Default::default()
                },
                run(false, false),
            ),
            (
                "nodeSelector match",
                PodSpec {
                    node_selector: Some(BTreeMap::from([("disk".to_string(), "ssd".to_string())])),
                    ..Default::default()
                },
                run(true, true),
            ),
            (
                "affinity matchFields other node",
                PodSpec {
                    affinity: Some(required(vec![term(
                        vec![],
                        vec![req("metadata.name", "In", &["n2"])],
                    )])),
                    ..Default::default()
                },
                run(false, false),
            ),
            (
                "affinity matchFields this node",
                PodSpec {
                    affinity: Some(required(vec![term(
                        vec![],
                        vec![req("metadata.name", "In", &["n1"])],
                    )])),
                    ..Default::default()
                },
                run(true, true),
            ),
            (
                "affinity mismatch beats tolerations",
                PodSpec {
                    affinity: Some(required(vec![term(
                        vec![req("disk", "In", &["hdd"])],
                        vec![],
                    )])),
                    tolerations: Some(vec![toleration("", Some("Exists"), None, "")]),
                    ..Default::default()
                },
                run(false, false),
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(
                node_should_run_daemon_pod(&n, &daemonset(spec)),
                want,
                "{name}"
            );
        }
        // A DaemonSet without a spec behaves like an empty template.
        let bare = DaemonSet::default();
        assert_eq!(node_should_run_daemon_pod(&n, &bare), run(true, true));
    }

    #[test]
    fn taints_added_after_the_pod_started() {
        // The node gains a NoSchedule taint: no new pod, the running one stays.
        let ds = daemonset(PodSpec::default());
        let before = node("n1", &[], vec![]);
        assert_eq!(node_should_run_daemon_pod(&before, &ds), run(true, true));
        let no_schedule = node("n1", &[], vec![taint("maintenance", None, "NoSchedule")]);
        assert_eq!(
            node_should_run_daemon_pod(&no_schedule, &ds),
            run(false, true)
        );
        // Then a NoExecute one: the pod must go.
        let no_execute = node(
            "n1",
            &[],
            vec![
                taint("maintenance", None, "NoSchedule"),
                taint("maintenance", None, "NoExecute"),
            ],
        );
        assert_eq!(
            node_should_run_daemon_pod(&no_execute, &ds),
            run(false, false)
        );
    }

    // ---- daemon pod affinity and target ----------------------------------------------

    fn name_term(node: &str) -> NodeSelectorTerm {
        term(vec![], vec![req(OBJECT_NAME_FIELD, "In", &[node])])
    }

    #[test]
    fn set_daemon_node_affinity_cases() {
        let want_required = Some(NodeSelector {
            node_selector_terms: vec![name_term("n1")],
        });

        let fresh = set_daemon_node_affinity(None, "n1");
        assert_eq!(
            fresh.node_affinity.as_ref().and_then(|na| na
                .required_during_scheduling_ignored_during_execution
                .clone()),
            want_required
        );
        assert!(fresh.pod_affinity.is_none());

        let preferred = vec![PreferredSchedulingTerm {
            weight: 10,
            preference: term(vec![req("zone", "In", &["a"])], vec![]),
        }];
        let existing = Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(preferred.clone()),
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![
                        term(vec![req("disk", "In", &["ssd"])], vec![]),
                        name_term("old"),
                    ],
                }),
            }),
            pod_affinity: Some(PodAffinity::default()),
            pod_anti_affinity: None,
        };
        let replaced = set_daemon_node_affinity(Some(existing), "n1");
        let na = replaced.node_affinity.clone().unwrap_or_default();
        assert_eq!(
            na.required_during_scheduling_ignored_during_execution,
            want_required
        );
        assert_eq!(
            na.preferred_during_scheduling_ignored_during_execution,
            Some(preferred)
        );
        assert_eq!(replaced.pod_affinity, Some(PodAffinity::default()));

        let no_node_affinity = Affinity {
            pod_affinity: Some(PodAffinity::default()),
            ..Default::default()
        };
        let added = set_daemon_node_affinity(Some(no_node_affinity), "n1");
        assert_eq!(
            added
                .node_affinity
                .and_then(|na| na.required_during_scheduling_ignored_during_execution),
            want_required
        );
        assert_eq!(added.pod_affinity, Some(PodAffinity::default()));
    }

    #[test]
    fn daemon_pod_target_node_cases() {
        let pod = |node_name: Option<&str>, affinity: Option<Affinity>| Pod {
            spec: Some(PodSpec {
                node_name: node_name.map(str::to_string),
                affinity,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(daemon_pod_target_node(&Pod::default()), None);
        assert_eq!(daemon_pod_target_node(&pod(None, None)), None);
        assert_eq!(
            daemon_pod_target_node(&pod(Some("n1"), Some(set_daemon_node_affinity(None, "n2")))),
            Some("n1".to_string())
        );
        assert_eq!(
            daemon_pod_target_node(&pod(Some(""), Some(set_daemon_node_affinity(None, "n2")))),
            Some("n2".to_string())
        );
        assert_eq!(
            daemon_pod_target_node(&pod(None, Some(required(vec![])))),
            None
        );
        let labels_only = required(vec![term(vec![req("zone", "In", &["a"])], vec![])]);
        assert_eq!(daemon_pod_target_node(&pod(None, Some(labels_only))), None);
        let two = required(vec![term(
            vec![],
            vec![req(OBJECT_NAME_FIELD, "In", &["a", "b"])],
        )]);
        assert_eq!(daemon_pod_target_node(&pod(None, Some(two))), None);
        let later_term = required(vec![
            term(vec![], vec![req(OBJECT_NAME_FIELD, "NotIn", &["x"])]),
            term(
                vec![req("zone", "In", &["a"])],
                vec![req(OBJECT_NAME_FIELD, "In", &["n3"])],
            ),
        ]);
        assert_eq!(
            daemon_pod_target_node(&pod(None, Some(later_term))),
            Some("n3".to_string())
        );
    }

    // ---- readiness -------------------------------------------------------------------

    fn node_with_conditions(conditions: &[(&str, &str)]) -> Node {
        Node {
            status: Some(NodeStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| NodeCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod_with_ready(status: &str, since: Option<&str>) -> Pod {
        Pod {
            status: Some(PodStatus {
                conditions: Some(vec![
                    PodCondition {
                        type_: "Initialized".to_string(),
                        status: "True".to_string(),
                        ..Default::default()
                    },
                    PodCondition {
                        type_: "Ready".to_string(),
                        status: status.to_string(),
                        last_transition_time: since.map(|s| Time(ts(s))),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn node_readiness() {
        assert!(is_node_ready(&node_with_conditions(&[
            ("MemoryPressure", "False"),
            ("Ready", "True")
        ])));
        assert!(!is_node_ready(&node_with_conditions(&[("Ready", "False")])));
        assert!(!is_node_ready(&node_with_conditions(&[(
            "Ready", "Unknown"
        )])));
        assert!(!is_node_ready(&node_with_conditions(&[])));
        assert!(!is_node_ready(&Node::default()));
        // The first Ready condition decides.
        assert!(!is_node_ready(&node_with_conditions(&[
            ("Ready", "False"),
            ("Ready", "True")
        ])));
    }

    #[test]
    fn pod_readiness_and_availability() {
        let now = ts("2025-01-01T00:01:00Z");
        assert!(!is_pod_ready(&Pod::default()));
        assert!(!is_pod_available(&Pod::default(), 0, now));
        let not_ready = pod_with_ready("False", Some("2025-01-01T00:00:00Z"));
        assert!(!is_pod_ready(&not_ready));
        assert!(!is_pod_available(&not_ready, 0, now));

        let ready = pod_with_ready("True", Some("2025-01-01T00:00:00Z"));
        assert!(is_pod_ready(&ready));
        let cases = [(0, true), (10, true), (59, true), (60, false), (61, false)];
        for (min_ready, want) in cases {
            assert_eq!(
                is_pod_available(&ready, min_ready, now),
                want,
                "minReadySeconds {min_ready}"
            );
        }
        let ready_no_time = pod_with_ready("True", None);
        assert!(is_pod_available(&ready_no_time, 0, now));
        assert!(!is_pod_available(&ready_no_time, 1, now));
    }

    // ---- requests --------------------------------------------------------------------

    fn container(
        requests: &[(&str, &str)],
        limits: &[(&str, &str)],
        restart: Option<&str>,
    ) -> Container {
        let list = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect::<BTreeMap<_, _>>()
            })
        };
        Container {
            name: "c".to_string(),
            resources: Some(ResourceRequirements {
                requests: list(requests),
                limits: list(limits),
                claims: None,
            }),
            restart_policy: restart.map(str::to_string),
            ..Default::default()
        }
    }

    fn milli(pairs: &[(&str, i128)]) -> BTreeMap<String, i128> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn pod_requests_table() {
        let cases: Vec<(&str, PodSpec, BTreeMap<String, i128>)> = vec![
            ("nothing", PodSpec::default(), milli(&[])),
            (
                "containers are summed",
                PodSpec {
                    containers: vec![
                        container(&[("cpu", "100m"), ("memory", "64Mi")], &[], None),
                        container(&[("cpu", "250m")], &[], None),
                    ],
                    ..Default::default()
                },
                milli(&[("cpu", 350), ("memory", 64 * 1024 * 1024 * 1000)]),
            ),
            (
                "limits stand in for missing requests",
                PodSpec {
                    containers: vec![container(
                        &[("cpu", "100m")],
                        &[("cpu", "1"), ("memory", "1Gi")],
                        None,
                    )],
                    ..Default::default()
                },
                milli(&[("cpu", 100), ("memory", (1 << 30) * 1000)]),
            ),
            (
                "init containers take the max",
                PodSpec {
                    containers: vec![container(&[("cpu", "100m"), ("memory", "1Mi")], &[], None)],
                    init_containers: Some(vec![
                        container(&[("cpu", "500m")], &[], None),
                        container(&[("cpu", "200m"), ("ephemeral-storage", "1Gi")], &[], None),
                    ]),
                    ..Default::default()
                },
                milli(&[
                    ("cpu", 500),
                    ("memory", 1024 * 1024 * 1000),
                    ("ephemeral-storage", (1 << 30) * 1000),
                ]),
            ),
            (
                "sidecars add up and raise later init containers",
                PodSpec {
                    containers: vec![container(&[("cpu", "100m")], &[], None)],
                    init_containers: Some(vec![
                        container(&[("cpu", "200m")], &[], Some("Always")),
                        container(&[("cpu", "250m")], &[], None),
                    ]),
                    ..Default::default()
                },
                // regular + sidecar = 300m; init peak = 250m + 200m = 450m.
                milli(&[("cpu", 450)]),
            ),
            (
                "overhead on top",
                PodSpec {
                    containers: vec![container(&[("cpu", "100m")], &[], None)],
                    overhead: Some(BTreeMap::from([(
                        "cpu".to_string(),
                        Quantity("50m".to_string()),
                    )])),
                    ..Default::default()
                },
                milli(&[("cpu", 150)]),
            ),
            (
                "unparseable quantities skipped",
                PodSpec {
                    containers: vec![container(&[("cpu", "lots"), ("memory", "1Ki")], &[], None)],
                    ..Default::default()
                },
                milli(&[("memory", 1_024_000)]),
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(pod_requests(&spec), want, "{name}");
        }
    }
}
