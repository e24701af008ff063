//! Table-style tests of [`plan`], modelled on the cases of Kubernetes'
//! `pkg/controller/daemon/daemon_controller_test.go` and `update_test.go`: build the
//! observed world from small helpers, run one pass, look at the actions and status.

use std::collections::BTreeMap;
use std::time::Duration;

use everynode_api::hash::compute_template_hash;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetCondition, DaemonSetSpec, DaemonSetStatus,
    DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Affinity, Container, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    NodeSpec, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;

// ---------------------------------------------------------------------------------------
// World builders
// ---------------------------------------------------------------------------------------

const NS: &str = "default";
const DS_UID: &str = "ds-uid-1";

/// Seconds after a fixed epoch; all tests share this clock.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// "Now" in every scenario.
const NOW: i64 = 1000;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn node(name: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    }
}

/// Builder methods on the Kubernetes types, so scenarios read like the Go tests.
trait NodeExt {
    fn label(self, k: &str, v: &str) -> Self;
    fn taint(self, key: &str, effect: &str) -> Self;
    fn unschedulable(self) -> Self;
}

impl NodeExt for Node {
    fn label(mut self, k: &str, v: &str) -> Self {
        self.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.to_string(), v.to_string());
        self
    }
    fn taint(mut self, key: &str, effect: &str) -> Self {
        self.spec
            .get_or_insert_with(NodeSpec::default)
            .taints
            .get_or_insert_with(Vec::new)
            .push(Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                ..Taint::default()
            });
        self
    }
    fn unschedulable(mut self) -> Self {
        self.spec
            .get_or_insert_with(NodeSpec::default)
            .unschedulable = Some(true);
        self
    }
}

fn nodes(n: usize) -> Vec<Node> {
    (1..=n).map(|i| node(&format!("n{i}"))).collect()
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&[("app", "fluentd")])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "fluentd".to_string(),
                image: Some(image.to_string()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

/// A DaemonSet as the apiserver returns it: defaults applied, generation 1, template
/// generation annotation, status observed at generation 1.
fn ds() -> DaemonSet {
    DaemonSet {
        metadata: ObjectMeta {
            name: Some("fluentd".to_string()),
            namespace: Some(NS.to_string()),
            uid: Some(DS_UID.to_string()),
            generation: Some(1),
            annotations: Some(labels(&[(TEMPLATE_GENERATION_ANNOTATION, "1")])),
            ..ObjectMeta::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "fluentd")])),
                match_expressions: None,
            },
            template: template("fluentd:v1"),
            revision_history_limit: Some(10),
            min_ready_seconds: None,
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    max_surge: Some(IntOrString::Int(0)),
                }),
            }),
        }),
        status: None,
    }
}

trait DsExt {
    fn spec_mut(&mut self) -> &mut DaemonSetSpec;
    fn pod_spec_mut(&mut self) -> &mut PodSpec;
    fn node_selector(self, k: &str, v: &str) -> Self;
    fn toleration(self, key: &str, effect: &str) -> Self;
    fn image(self, image: &str) -> Self;
    fn on_delete(self) -> Self;
    fn rolling(self, max_unavailable: IntOrString, max_surge: IntOrString) -> Self;
    fn min_ready(self, secs: i32) -> Self;
    fn history_limit(self, n: i32) -> Self;
    fn generation(self, generation: i64, template_generation: i64) -> Self;
}

impl DsExt for DaemonSet {
    fn spec_mut(&mut self) -> &mut DaemonSetSpec {
        self.spec.get_or_insert_with(DaemonSetSpec::default)
    }
    fn pod_spec_mut(&mut self) -> &mut PodSpec {
        self.spec_mut()
            .template
            .spec
            .get_or_insert_with(PodSpec::default)
    }
    fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.pod_spec_mut()
            .node_selector
            .get_or_insert_with(BTreeMap::new)
            .insert(k.to_string(), v.to_string());
        self
    }
    fn toleration(mut self, key: &str, effect: &str) -> Self {
        self.pod_spec_mut()
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".to_string()),
                effect: Some(effect.to_string()),
                ..Toleration::default()
            });
        self
    }
    fn image(mut self, image: &str) -> Self {
        if let Some(c) = self.pod_spec_mut().containers.first_mut() {
            c.image = Some(image.to_string());
        }
        self
    }
    fn on_delete(mut self) -> Self {
        self.spec_mut().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("OnDelete".to_string()),
            rolling_update: None,
        });
        self
    }
    fn rolling(mut self, max_unavailable: IntOrString, max_surge: IntOrString) -> Self {
        self.spec_mut().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".to_string()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_unavailable: Some(max_unavailable),
                max_surge: Some(max_surge),
            }),
        });
        self
    }
    fn min_ready(mut self, secs: i32) -> Self {
        self.spec_mut().min_ready_seconds = Some(secs);
        self
    }
    fn history_limit(mut self, n: i32) -> Self {
        self.spec_mut().revision_history_limit = Some(n);
        self
    }
    fn generation(mut self, generation: i64, template_generation: i64) -> Self {
        self.metadata.generation = Some(generation);
        self.metadata.annotations = Some(labels(&[(
            TEMPLATE_GENERATION_ANNOTATION,
            &template_generation.to_string(),
        )]));
        self
    }
}

fn ds_template(ds: &DaemonSet) -> PodTemplateSpec {
    ds.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

/// The hash of the DaemonSet's current template (no collisions).
fn hash_of(ds: &DaemonSet) -> String {
    compute_template_hash(&ds_template(ds), None)
}

/// The current revision of `ds`, as an earlier pass would have created it.
fn current_revision(ds: &DaemonSet, revision: i64) -> ControllerRevision {
    let mut rev = revision_for(ds, &ds_template(ds), &hash_of(ds), revision);
    rev.metadata.uid = Some(format!("rev-uid-{revision}"));
    rev
}

/// A revision of `ds` with another image.
fn old_revision(ds: &DaemonSet, image: &str, revision: i64) -> ControllerRevision {
    let old = ds.clone().image(image);
    let mut rev = revision_for(&old, &ds_template(&old), &hash_of(&old), revision);
    rev.metadata.uid = Some(format!("rev-uid-{revision}"));
    rev
}

/// A running, Ready daemon pod of `ds` bound to `node_name`, created from the current
/// template (current hash), Ready since long before [`NOW`].
fn pod_on(ds: &DaemonSet, node_name: &str) -> Pod {
    let mut pod = pod_for_node(
        ds,
        &ds_template(ds),
        node_name,
        &hash_of(ds),
        template_generation(ds),
    );
    pod.metadata.name = Some(format!("fluentd-{node_name}"));
    pod.metadata.uid = Some(format!("uid-fluentd-{node_name}"));
    pod.metadata.creation_timestamp = Some(Time(at(0)));
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node_name.to_string());
    }
    pod.status = Some(PodStatus {
        phase: Some("Running".to_string()),
        conditions: Some(vec![ready_condition("True", 0)]),
        ..PodStatus::default()
    });
    pod
}

fn ready_condition(status: &str, since: i64) -> PodCondition {
    PodCondition {
        type_: "Ready".to_string(),
        status: status.to_string(),
        last_transition_time: Some(Time(at(since))),
        ..PodCondition::default()
    }
}

trait PodExt {
    fn named(self, name: &str) -> Self;
    fn created(self, secs: i64) -> Self;
    fn phase(self, phase: &str) -> Self;
    fn not_ready(self) -> Self;
    fn ready_since(self, secs: i64) -> Self;
    fn deleting(self) -> Self;
    fn unbound(self) -> Self;
    fn hash(self, hash: &str) -> Self;
    fn orphan(self) -> Self;
    fn owned_by(self, uid: &str) -> Self;
    fn relabel(self, k: &str, v: &str) -> Self;
}

impl PodExt for Pod {
    fn named(mut self, name: &str) -> Self {
        self.metadata.name = Some(name.to_string());
        self.metadata.uid = Some(format!("uid-{name}"));
        self
    }
    fn created(mut self, secs: i64) -> Self {
        self.metadata.creation_timestamp = Some(Time(at(secs)));
        self
    }
    fn phase(mut self, phase: &str) -> Self {
        self.status.get_or_insert_with(PodStatus::default).phase = Some(phase.to_string());
        self
    }
    fn not_ready(mut self) -> Self {
        self.status
            .get_or_insert_with(PodStatus::default)
            .conditions = Some(vec![ready_condition("False", 0)]);
        self
    }
    fn ready_since(mut self, secs: i64) -> Self {
        self.status
            .get_or_insert_with(PodStatus::default)
            .conditions = Some(vec![ready_condition("True", secs)]);
        self
    }
    fn deleting(mut self) -> Self {
        self.metadata.deletion_timestamp = Some(Time(at(NOW - 1)));
        self
    }
    fn unbound(mut self) -> Self {
        if let Some(spec) = self.spec.as_mut() {
            spec.node_name = None;
        }
        self
    }
    fn hash(self, hash: &str) -> Self {
        self.relabel(CONTROLLER_REVISION_HASH_LABEL, hash)
    }
    fn orphan(mut self) -> Self {
        self.metadata.owner_references = None;
        self
    }
    fn owned_by(mut self, uid: &str) -> Self {
        self.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".to_string(),
            kind: "ReplicaSet".to_string(),
            name: "other".to_string(),
            uid: uid.to_string(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        self
    }
    fn relabel(mut self, k: &str, v: &str) -> Self {
        self.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.to_string(), v.to_string());
        self
    }
}

/// The observed world of one pass.
struct World {
    ds: DaemonSet,
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    revisions: Vec<ControllerRevision>,
    now: Timestamp,
    expectations_satisfied: bool,
    backoff: FailedPodBackoff,
    delete_pods_on_missing_nodes: bool,
    burst: usize,
}

/// A world where `ds` already has its current revision (revision 1), so that passes
/// show only pod work unless a test says otherwise.
fn world(ds: DaemonSet, nodes: Vec<Node>, pods: Vec<Pod>) -> World {
    let revisions = vec![current_revision(&ds, 1)];
    World {
        ds,
        nodes,
        pods,
        revisions,
        now: at(NOW),
        expectations_satisfied: true,
        backoff: FailedPodBackoff::default(),
        delete_pods_on_missing_nodes: false,
        burst: BURST_REPLICAS,
    }
}

impl World {
    fn plan(&self) -> Plan {
        fn shared<T: Clone>(v: &[T]) -> Vec<std::sync::Arc<T>> {
            v.iter().cloned().map(std::sync::Arc::new).collect()
        }
        plan(&Observed {
            ds: &self.ds,
            nodes: &shared(&self.nodes),
            pods: &shared(&self.pods),
            revisions: &shared(&self.revisions),
            now: self.now,
            expectations_satisfied: self.expectations_satisfied,
            failed_pod_backoff: &self.backoff,
            delete_pods_on_missing_nodes: self.delete_pods_on_missing_nodes,
            burst: self.burst,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Reading plans
// ---------------------------------------------------------------------------------------

fn creates(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePods { node_names, .. } => Some(node_names.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn deletes(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::DeletePods { pods } => Some(pods.iter().map(|(n, _)| n.clone())),
            _ => None,
        })
        .flatten()
        .collect()
}

fn events(plan: &Plan) -> Vec<(&'static str, &'static str, String)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Event {
                type_,
                reason,
                message,
            } => Some((*type_, *reason, message.clone())),
            _ => None,
        })
        .collect()
}

fn revision_actions(plan: &Plan) -> Vec<&Action> {
    plan.actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::CreateRevision(_)
                    | Action::UpdateRevision { .. }
                    | Action::LabelRevision { .. }
                    | Action::DeleteRevision { .. }
                    | Action::AdoptRevision { .. }
                    | Action::ReleaseRevision { .. }
            )
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `(desired, current, ready, available, misscheduled, updated, unavailable)`.
type Counts = (i32, i32, i32, i32, i32, i32, i32);

fn counts(status: &DaemonSetStatus) -> Counts {
    (
        status.desired_number_scheduled,
        status.current_number_scheduled,
        status.number_ready,
        status.number_available.unwrap_or(0),
        status.number_misscheduled,
        status.updated_number_scheduled.unwrap_or(0),
        status.number_unavailable.unwrap_or(0),
    )
}

fn status_counts(plan: &Plan) -> Counts {
    plan.status.as_ref().map(counts).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Placement: which nodes get a pod (TestSimpleDaemonSetLaunchesPods and friends)
// ---------------------------------------------------------------------------------------

#[test]
fn one_pod_per_node() {
    let w = world(ds(), nodes(3), vec![]);
    let plan = w.plan();
    assert_eq!(creates(&plan), names(&["n1", "n2", "n3"]));
    assert_eq!(deletes(&plan), Vec::<String>::new());
    let create = plan
        .actions
        .iter()
        .find(|a| matches!(a, Action::CreatePods { .. }));
    match create {
        Some(Action::CreatePods {
            template,
            hash,
            template_generation,
            ..
        }) => {
            assert_eq!(*template, ds_template(&w.ds));
            assert_eq!(*hash, hash_of(&w.ds));
            assert_eq!(*template_generation, Some(1));
        }
        other => panic!("no CreatePods: {other:?}"),
    }
    // Status reflects what was observed, not what is about to be created.
    assert_eq!(status_counts(&plan), (3, 0, 0, 0, 0, 0, 3));
}

#[test]
fn no_nodes_no_pods() {
    let plan = world(ds(), vec![], vec![]).plan();
    assert!(creates(&plan).is_empty());
    let status = plan.status.unwrap_or_default();
    assert_eq!(counts(&status), (0, 0, 0, 0, 0, 0, 0));
    assert_eq!(status.observed_generation, Some(1));
}

#[test]
fn node_eligibility_table() {
    const CP: &str = "node-role.kubernetes.io/control-plane";
    struct Case {
        name: &'static str,
        node: Node,
        ds: DaemonSet,
        create: bool,
    }
    let cases = [
        Case {
            name: "plain node",
            node: node("n1"),
            ds: ds(),
            create: true,
        },
        Case {
            name: "control-plane NoSchedule taint not tolerated",
            node: node("n1").taint(CP, "NoSchedule"),
            ds: ds(),
            create: false,
        },
        Case {
            name: "control-plane NoSchedule taint tolerated",
            node: node("n1").taint(CP, "NoSchedule"),
            ds: ds().toleration(CP, "NoSchedule"),
            create: true,
        },
        Case {
            name: "PreferNoSchedule is ignored",
            node: node("n1").taint("dedicated", "PreferNoSchedule"),
            ds: ds(),
            create: true,
        },
        Case {
            name: "NoExecute taint not tolerated",
            node: node("n1").taint("dedicated", "NoExecute"),
            ds: ds(),
            create: false,
        },
        Case {
            name: "cordoned node (unschedulable + taint) is tolerated",
            node: node("n1")
                .unschedulable()
                .taint("node.kubernetes.io/unschedulable", "NoSchedule"),
            ds: ds(),
            create: true,
        },
        Case {
            name: "memory pressure is tolerated",
            node: node("n1").taint("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ds: ds(),
            create: true,
        },
        Case {
            name: "not-ready node (NoSchedule + NoExecute)",
            node: node("n1")
                .taint("node.kubernetes.io/not-ready", "NoSchedule")
                .taint("node.kubernetes.io/not-ready", "NoExecute"),
            ds: ds(),
            create: false,
        },
        Case {
            name: "nodeSelector matches",
            node: node("n1").label("disk", "ssd"),
            ds: ds().node_selector("disk", "ssd"),
            create: true,
        },
        Case {
            name: "nodeSelector does not match",
            node: node("n1").label("disk", "hdd"),
            ds: ds().node_selector("disk", "ssd"),
            create: false,
        },
        Case {
            name: "nodeSelector on a node without labels",
            node: node("n1"),
            ds: ds().node_selector("disk", "ssd"),
            create: false,
        },
        Case {
            name: "required node affinity matches",
            node: node("n1").label("zone", "a"),
            ds: with_required_affinity(ds(), "zone", "In", &["a", "b"]),
            create: true,
        },
        Case {
            name: "required node affinity does not match",
            node: node("n1").label("zone", "c"),
            ds: with_required_affinity(ds(), "zone", "In", &["a", "b"]),
            create: false,
        },
        Case {
            name: "template nodeName names this node",
            node: node("n1"),
            ds: with_node_name(ds(), "n1"),
            create: true,
        },
        Case {
            name: "template nodeName names another node",
            node: node("n1"),
            ds: with_node_name(ds(), "n2"),
            create: false,
        },
    ];
    for case in cases {
        let plan = world(case.ds, vec![case.node], vec![]).plan();
        let want: Vec<String> = if case.create { names(&["n1"]) } else { vec![] };
        assert_eq!(creates(&plan), want, "{}", case.name);
        assert_eq!(
            status_counts(&plan).0,
            i32::from(case.create),
            "desired for {}",
            case.name
        );
    }
}

fn with_required_affinity(mut ds: DaemonSet, key: &str, op: &str, values: &[&str]) -> DaemonSet {
    ds.pod_spec_mut().affinity = Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: key.to_string(),
                        operator: op.to_string(),
                        values: Some(names(values)),
                    }]),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Affinity::default()
    });
    ds
}

fn with_node_name(mut ds: DaemonSet, node_name: &str) -> DaemonSet {
    ds.pod_spec_mut().node_name = Some(node_name.to_string());
    ds
}

// ---------------------------------------------------------------------------------------
// Pods that must go (TestNodeShouldRunDaemonPod, TestDeleteNoDaemonPod, ...)
// ---------------------------------------------------------------------------------------

#[test]
fn existing_pods_on_nodes_that_stop_qualifying() {
    struct Case {
        name: &'static str,
        node: Node,
        delete: bool,
        misscheduled: i32,
    }
    let ds = ds().node_selector("disk", "ssd");
    let cases = [
        Case {
            name: "still matches",
            node: node("n1").label("disk", "ssd"),
            delete: false,
            misscheduled: 0,
        },
        Case {
            name: "label removed: nodeSelector no longer matches",
            node: node("n1"),
            delete: true,
            misscheduled: 1,
        },
        Case {
            name: "NoSchedule taint added: kept but misscheduled",
            node: node("n1")
                .label("disk", "ssd")
                .taint("dedicated", "NoSchedule"),
            delete: false,
            misscheduled: 1,
        },
        Case {
            name: "NoExecute taint added: evicted",
            node: node("n1")
                .label("disk", "ssd")
                .taint("dedicated", "NoExecute"),
            delete: true,
            misscheduled: 1,
        },
        Case {
            name: "node not ready: pod stays, node leaves desired",
            node: node("n1")
                .label("disk", "ssd")
                .taint("node.kubernetes.io/not-ready", "NoSchedule")
                .taint("node.kubernetes.io/not-ready", "NoExecute"),
            delete: false,
            misscheduled: 1,
        },
    ];
    for case in cases {
        let pod = pod_on(&ds, "n1");
        let plan = world(ds.clone(), vec![case.node], vec![pod]).plan();
        let want: Vec<String> = if case.delete {
            names(&["fluentd-n1"])
        } else {
            vec![]
        };
        assert_eq!(deletes(&plan), want, "{}", case.name);
        assert!(creates(&plan).is_empty(), "{}", case.name);
        let status = plan.status.clone().unwrap_or_default();
        assert_eq!(
            status.number_misscheduled, case.misscheduled,
            "{}",
            case.name
        );
    }
}

#[test]
fn a_pod_being_deleted_is_not_deleted_again_and_blocks_a_replacement() {
    let ds = ds();
    // The node stopped qualifying: nothing more to delete.
    let gone = world(
        ds.clone(),
        vec![node("n1").taint("dedicated", "NoExecute")],
        vec![pod_on(&ds, "n1").deleting()],
    )
    .plan();
    assert!(deletes(&gone).is_empty());
    // Still qualifies: the terminating pod counts as present, no replacement yet
    // (Kubernetes waits for it to disappear unless surge is allowed).
    let stays = world(ds.clone(), nodes(1), vec![pod_on(&ds, "n1").deleting()]).plan();
    assert!(creates(&stays).is_empty());
    assert!(deletes(&stays).is_empty());
    assert_eq!(
        status_counts(&stays).1,
        1,
        "current counts terminating pods"
    );
}

#[test]
fn duplicates_keep_the_oldest() {
    let ds = ds();
    struct Case {
        name: &'static str,
        pods: Vec<Pod>,
        delete: Vec<&'static str>,
    }
    let cases = [
        Case {
            name: "older creationTimestamp wins",
            pods: vec![
                pod_on(&ds, "n1").named("b").created(10),
                pod_on(&ds, "n1").named("a").created(20),
                pod_on(&ds, "n1").named("c").created(30),
            ],
            delete: vec!["a", "c"],
        },
        Case {
            name: "bound pods before unbound ones",
            pods: vec![
                pod_on(&ds, "n1").named("unbound").created(1).unbound(),
                pod_on(&ds, "n1").named("bound").created(50),
            ],
            delete: vec!["unbound"],
        },
        Case {
            name: "same creationTimestamp: by name",
            pods: vec![
                pod_on(&ds, "n1").named("y").created(5),
                pod_on(&ds, "n1").named("x").created(5),
            ],
            delete: vec!["y"],
        },
        Case {
            name: "a terminating duplicate is neither kept nor deleted again",
            pods: vec![
                pod_on(&ds, "n1").named("old").created(1).deleting(),
                pod_on(&ds, "n1").named("new").created(2),
            ],
            delete: vec![],
        },
    ];
    for case in cases {
        let plan = world(ds.clone(), nodes(1), case.pods).plan();
        assert_eq!(deletes(&plan), names(&case.delete), "{}", case.name);
        assert!(creates(&plan).is_empty(), "{}", case.name);
    }
}

#[test]
fn failed_pod_is_deleted_with_backoff_and_then_replaced() {
    let ds = ds();
    let failed = pod_on(&ds, "n1").phase("Failed").not_ready();
    let key = failed_pod_backoff_key(&ds, "n1");
    assert_eq!(key, format!("{DS_UID}/0/n1"));

    // First failure: event, back-off step, delete; no create in the same pass.
    let mut w = world(ds.clone(), nodes(1), vec![failed.clone()]);
    let plan = w.plan();
    assert_eq!(deletes(&plan), names(&["fluentd-n1"]));
    assert!(creates(&plan).is_empty());
    assert_eq!(
        events(&plan),
        vec![(
            EVENT_WARNING,
            reasons::FAILED_DAEMON_POD,
            "Found failed daemon pod default/fluentd-n1 on node n1, will try to kill it"
                .to_string()
        )]
    );
    assert!(
        plan.actions
            .contains(&Action::AdvanceFailedPodBackoff { key: key.clone() })
    );

    // The loop advanced the back-off; the pod failed again right away: wait.
    w.backoff.next(&key, w.now);
    w.now = at(NOW);
    let plan = w.plan();
    assert!(deletes(&plan).is_empty());
    assert!(events(&plan).is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));

    // After the back-off: deleted again.
    w.now = at(NOW + 2);
    assert_eq!(deletes(&w.plan()), names(&["fluentd-n1"]));

    // Once it is gone (or only a terminal pod being deleted is left) a new one is made.
    w.pods = vec![failed.deleting()];
    assert_eq!(creates(&w.plan()), names(&["n1"]));
    w.pods.clear();
    assert_eq!(creates(&w.plan()), names(&["n1"]));
}

#[test]
fn two_failed_pods_on_one_node_share_the_backoff() {
    let ds = ds();
    let w = world(
        ds.clone(),
        nodes(1),
        vec![
            pod_on(&ds, "n1").named("f1").phase("Failed"),
            pod_on(&ds, "n1").named("f2").phase("Failed"),
        ],
    );
    let plan = w.plan();
    assert_eq!(deletes(&plan), names(&["f1"]));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));
}

#[test]
fn succeeded_pod_is_deleted() {
    let ds = ds();
    let plan = world(
        ds.clone(),
        nodes(1),
        vec![pod_on(&ds, "n1").phase("Succeeded")],
    )
    .plan();
    assert_eq!(deletes(&plan), names(&["fluentd-n1"]));
    assert_eq!(
        events(&plan),
        vec![(
            EVENT_NORMAL,
            reasons::SUCCEEDED_DAEMON_POD,
            "Found succeeded daemon pod default/fluentd-n1 on node n1, will try to delete it"
                .to_string()
        )]
    );
}

#[test]
fn pods_for_missing_nodes() {
    let ds = ds();
    let unbound = pod_on(&ds, "gone").named("unbound").unbound();
    let bound = pod_on(&ds, "gone2").named("bound");
    let mut w = world(ds, nodes(1), vec![unbound, bound]);
    let plan = w.plan();
    // Only the unbound one is ours to delete (the pod GC handles bound pods).
    assert_eq!(deletes(&plan), names(&["unbound"]));
    assert_eq!(creates(&plan), names(&["n1"]));
    // Neither counts in status.
    assert_eq!(status_counts(&plan), (1, 0, 0, 0, 0, 0, 1));
    // Without a pod GC, bound ones go too.
    w.delete_pods_on_missing_nodes = true;
    assert_eq!(deletes(&w.plan()), names(&["unbound", "bound"]));
}

#[test]
fn pods_without_a_target_node_are_ignored() {
    let ds = ds();
    let mut pod = pod_on(&ds, "n1").unbound();
    if let Some(spec) = pod.spec.as_mut() {
        spec.affinity = None;
    }
    let plan = world(ds, nodes(1), vec![pod]).plan();
    assert_eq!(creates(&plan), names(&["n1"]));
    assert!(deletes(&plan).is_empty());
}

#[test]
fn unbound_pod_counts_for_its_affinity_node() {
    let ds = ds();
    let plan = world(ds.clone(), nodes(2), vec![pod_on(&ds, "n1").unbound()]).plan();
    assert_eq!(creates(&plan), names(&["n2"]));
}

#[test]
fn creates_and_deletes_are_capped_per_pass() {
    let plan = world(ds(), nodes(300), vec![]).plan();
    assert_eq!(creates(&plan).len(), BURST_REPLICAS);
    assert_eq!(creates(&plan).first().map(String::as_str), Some("n1"));

    let ds = ds().node_selector("disk", "ssd");
    let pods: Vec<Pod> = (1..=260).map(|i| pod_on(&ds, &format!("n{i}"))).collect();
    let plan = world(ds, nodes(260), pods).plan();
    assert_eq!(deletes(&plan).len(), BURST_REPLICAS);
}

#[test]
fn the_loop_may_raise_the_burst() {
    let mut w = world(ds(), nodes(300), vec![]);
    w.burst = 1000;
    assert_eq!(creates(&w.plan()).len(), 300);
    w.burst = 7;
    assert_eq!(creates(&w.plan()).len(), 7);
}

// ---------------------------------------------------------------------------------------
// Ownership (TestDaemonSetAdoptsPods, TestDaemonSetReleasesPods, ...)
// ---------------------------------------------------------------------------------------

#[test]
fn ownership_table() {
    let ds = ds();
    struct Case {
        name: &'static str,
        pod: Pod,
        action: Option<Action>,
        create_on_n1: bool,
    }
    let cases = [
        Case {
            name: "orphan matching the selector is adopted and counts",
            pod: pod_on(&ds, "n1").orphan(),
            action: Some(Action::AdoptPod {
                name: "fluentd-n1".to_string(),
                uid: "uid-fluentd-n1".to_string(),
            }),
            create_on_n1: false,
        },
        Case {
            name: "orphan being deleted is left alone",
            pod: pod_on(&ds, "n1").orphan().deleting(),
            action: None,
            create_on_n1: true,
        },
        Case {
            name: "orphan not matching the selector is left alone",
            pod: pod_on(&ds, "n1").orphan().relabel("app", "other"),
            action: None,
            create_on_n1: true,
        },
        Case {
            name: "owned pod no longer matching is released and replaced",
            pod: pod_on(&ds, "n1").relabel("app", "other"),
            action: Some(Action::ReleasePod {
                name: "fluentd-n1".to_string(),
                uid: "uid-fluentd-n1".to_string(),
            }),
            create_on_n1: true,
        },
        Case {
            name: "pod controlled by another controller is ignored",
            pod: pod_on(&ds, "n1").owned_by("someone-else"),
            action: None,
            create_on_n1: true,
        },
    ];
    for case in cases {
        let plan = world(ds.clone(), nodes(1), vec![case.pod]).plan();
        let ownership: Vec<&Action> = plan
            .actions
            .iter()
            .filter(|a| matches!(a, Action::AdoptPod { .. } | Action::ReleasePod { .. }))
            .collect();
        assert_eq!(
            ownership,
            case.action.iter().collect::<Vec<_>>(),
            "{}",
            case.name
        );
        let want: Vec<String> = if case.create_on_n1 {
            names(&["n1"])
        } else {
            vec![]
        };
        assert_eq!(creates(&plan), want, "{}", case.name);
        assert!(deletes(&plan).is_empty(), "{}", case.name);
    }
}

#[test]
fn pods_of_other_namespaces_are_ignored() {
    let ds = ds();
    let mut pod = pod_on(&ds, "n1").orphan();
    pod.metadata.namespace = Some("other".to_string());
    let plan = world(ds, nodes(1), vec![pod]).plan();
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::AdoptPod { .. }))
    );
    assert_eq!(creates(&plan), names(&["n1"]));
}

#[test]
fn selector_selecting_everything_only_warns() {
    let mut ds = ds();
    ds.spec_mut().selector = LabelSelector::default();
    let plan = world(ds, nodes(2), vec![]).plan();
    assert_eq!(
        plan.actions,
        vec![Action::Event {
            type_: EVENT_WARNING,
            reason: reasons::SELECTING_ALL,
            message: SELECTING_ALL_MESSAGE.to_string(),
        }]
    );
    assert_eq!(plan.status, None);
}

#[test]
fn daemonset_being_deleted_does_nothing() {
    let mut ds = ds();
    ds.metadata.deletion_timestamp = Some(Time(at(NOW)));
    let orphan = pod_on(&ds, "n2").orphan();
    let plan = world(ds, nodes(2), vec![orphan]).plan();
    assert_eq!(plan, Plan::default());
}

#[test]
fn selector_with_expressions() {
    let mut ds = ds();
    ds.spec_mut().selector = LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "app".to_string(),
            operator: "In".to_string(),
            values: Some(names(&["fluentd", "fluent-bit"])),
        }]),
    };
    let keep = pod_on(&ds, "n1");
    let release = pod_on(&ds, "n2").relabel("app", "nginx");
    let plan = world(ds, nodes(2), vec![keep, release]).plan();
    assert!(plan.actions.contains(&Action::ReleasePod {
        name: "fluentd-n2".to_string(),
        uid: "uid-fluentd-n2".to_string(),
    }));
    assert_eq!(creates(&plan), names(&["n2"]));
}

// ---------------------------------------------------------------------------------------
// Status (TestDaemonSetStatus..., TestNumberReadyStatus, TestObservedGeneration)
// ---------------------------------------------------------------------------------------

#[test]
fn status_counts_table() {
    let base = ds().node_selector("role", "worker");
    let v2 = base.clone().image("fluentd:v2").generation(2, 2);
    let worker = |name: &str| node(name).label("role", "worker");
    struct Case {
        name: &'static str,
        ds: DaemonSet,
        nodes: Vec<Node>,
        pods: Vec<Pod>,
        want: Counts,
    }
    let cases = [
        Case {
            name: "all ready",
            ds: base.clone(),
            nodes: vec![worker("n1"), worker("n2")],
            pods: vec![pod_on(&base, "n1"), pod_on(&base, "n2")],
            want: (2, 2, 2, 2, 0, 2, 0),
        },
        Case {
            name: "one missing, one not ready",
            ds: base.clone(),
            nodes: vec![worker("n1"), worker("n2"), worker("n3")],
            pods: vec![pod_on(&base, "n1").not_ready(), pod_on(&base, "n2")],
            want: (3, 2, 1, 1, 0, 2, 2),
        },
        Case {
            name: "pod on a node that does not qualify is misscheduled",
            ds: base.clone(),
            nodes: vec![worker("n1"), node("n2")],
            pods: vec![pod_on(&base, "n1"), pod_on(&base, "n2")],
            want: (1, 1, 1, 1, 1, 1, 0),
        },
        Case {
            name: "template changed: old pods are not updated",
            ds: v2.clone(),
            nodes: vec![worker("n1"), worker("n2")],
            pods: vec![pod_on(&base, "n1"), pod_on(&v2, "n2")],
            want: (2, 2, 2, 2, 0, 1, 0),
        },
        Case {
            name: "oldest pod decides ready and updated",
            ds: v2.clone(),
            nodes: vec![worker("n1")],
            pods: vec![
                pod_on(&base, "n1").named("old").created(1).not_ready(),
                pod_on(&v2, "n1").named("new").created(2),
            ],
            want: (1, 1, 0, 0, 0, 0, 1),
        },
        Case {
            name: "minReadySeconds: ready but not yet available",
            ds: base.clone().min_ready(30),
            nodes: vec![worker("n1"), worker("n2")],
            pods: vec![
                pod_on(&base, "n1").ready_since(NOW - 10),
                pod_on(&base, "n2").ready_since(NOW - 60),
            ],
            want: (2, 2, 2, 1, 0, 2, 1),
        },
        Case {
            name: "terminating pod still counts as current",
            ds: base.clone(),
            nodes: vec![worker("n1")],
            pods: vec![pod_on(&base, "n1").deleting()],
            want: (1, 1, 1, 1, 0, 1, 0),
        },
    ];
    for case in cases {
        let mut w = world(case.ds, case.nodes, case.pods);
        // Only the pod/status logic matters here: pretend the update already rolled.
        w.ds = w.ds.on_delete();
        w.revisions = vec![current_revision(&w.ds, 2)];
        let plan = w.plan();
        assert_eq!(status_counts(&plan), case.want, "{}", case.name);
    }
}

#[test]
fn observed_generation_and_write_rule() {
    let ds = ds().generation(3, 2);
    let mut w = world(ds.clone(), nodes(1), vec![pod_on(&ds, "n1")]);
    let plan = w.plan();
    let status = plan.status.clone().unwrap_or_default();
    assert_eq!(status.observed_generation, Some(3));
    assert_eq!(counts(&status), (1, 1, 1, 1, 0, 1, 0));
    // Zero counters are left out, as Go's omitempty does.
    assert_eq!(status.number_unavailable, None);

    // Stored status equal and observed: nothing to write.
    w.ds.status = Some(status.clone());
    assert_eq!(w.plan().status, None);

    // collisionCount and conditions are carried over untouched.
    let mut stored = status;
    stored.collision_count = Some(2);
    stored.number_ready = 0;
    w.ds.status = Some(stored);
    w.revisions = vec![{
        let mut rev = revision_for(
            &w.ds,
            &ds_template(&w.ds),
            &compute_template_hash(&ds_template(&w.ds), Some(2)),
            1,
        );
        rev.metadata.uid = Some("r".to_string());
        rev
    }];
    let status = w.plan().status.unwrap_or_default();
    assert_eq!(status.collision_count, Some(2));
    assert_eq!(status.number_ready, 1);
}

#[test]
fn expectations_not_satisfied_only_updates_status() {
    let ds = ds().generation(2, 1);
    let mut w = world(ds.clone(), nodes(2), vec![pod_on(&ds, "n1")]);
    w.ds.status = Some(DaemonSetStatus {
        observed_generation: Some(1),
        ..DaemonSetStatus::default()
    });
    w.expectations_satisfied = false;
    let plan = w.plan();
    assert!(creates(&plan).is_empty());
    assert!(deletes(&plan).is_empty());
    let status = plan.status.unwrap_or_default();
    assert_eq!(counts(&status), (2, 1, 1, 1, 0, 1, 1));
    assert_eq!(status.observed_generation, Some(1), "not raised");
}

#[test]
fn min_ready_seconds_requeues_when_a_pod_becomes_available() {
    let ds = ds().min_ready(30);
    let w = world(
        ds.clone(),
        nodes(1),
        vec![pod_on(&ds, "n1").ready_since(NOW - 10)],
    );
    let plan = w.plan();
    // Available at NOW + 20 (strictly after), so look again a second later.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(21)));
    // Nothing pending: no requeue.
    let w = world(ds.clone(), nodes(1), vec![pod_on(&ds, "n1")]);
    assert_eq!(w.plan().requeue_after, None);
}

// ---------------------------------------------------------------------------------------
// History (TestDaemonSetHistory..., constructHistory, cleanupHistory)
// ---------------------------------------------------------------------------------------

#[test]
fn first_pass_creates_revision_one() {
    let mut w = world(ds(), nodes(2), vec![]);
    w.revisions.clear();
    let plan = w.plan();
    let hash = hash_of(&w.ds);
    let expected = revision_for(&w.ds, &ds_template(&w.ds), &hash, 1);
    assert_eq!(
        plan.actions.first(),
        Some(&Action::CreateRevision(expected.clone()))
    );
    assert_eq!(expected.metadata.name, Some(format!("fluentd-{hash}")));
    assert_eq!(
        expected.metadata.labels,
        Some(labels(&[
            ("app", "fluentd"),
            (CONTROLLER_REVISION_HASH_LABEL, &hash)
        ]))
    );
    assert_eq!(expected.metadata.annotations, w.ds.metadata.annotations);
    assert_eq!(
        expected.metadata.owner_references,
        Some(vec![controller_ref(&w.ds)])
    );
    // Pods are created with the new revision's hash in the same pass.
    assert!(plan.actions.iter().any(|a| matches!(
        a,
        Action::CreatePods { hash: h, .. } if *h == hash
    )));
}

#[test]
fn matching_revision_is_reused() {
    let w = world(ds(), nodes(1), vec![]);
    let plan = w.plan();
    assert!(revision_actions(&plan).is_empty());
}

#[test]
fn template_change_creates_the_next_revision() {
    let v1 = ds();
    let v2 = v1.clone().image("fluentd:v2").generation(2, 2);
    let mut w = world(v2.clone(), nodes(1), vec![]);
    w.revisions = vec![current_revision(&v1, 1), old_revision(&v1, "fluentd:v0", 3)];
    let plan = w.plan();
    match revision_actions(&plan).as_slice() {
        [Action::CreateRevision(rev)] => {
            assert_eq!(rev.revision, 4);
            assert_eq!(rev.metadata.name, Some(format!("fluentd-{}", hash_of(&v2))));
        }
        other => panic!("unexpected: {other:?}"),
    }
}

#[test]
fn rollback_renumbers_the_old_revision() {
    let v1 = ds();
    let v2 = v1.clone().image("fluentd:v2");
    let mut w = world(v1.clone(), nodes(1), vec![pod_on(&v2, "n1")]);
    w.ds = w.ds.on_delete();
    w.revisions = vec![current_revision(&v1, 1), current_revision(&v2, 2)];
    let plan = w.plan();
    assert_eq!(
        revision_actions(&plan),
        vec![&Action::UpdateRevision {
            name: format!("fluentd-{}", hash_of(&v1)),
            revision: 3,
        }]
    );
}

#[test]
fn revisions_are_claimed_like_pods() {
    let ds = ds();
    let mut w = world(ds.clone(), nodes(0), vec![]);
    let mut orphan = old_revision(&ds, "fluentd:v0", 5);
    orphan.metadata.owner_references = None;
    let mut foreign = old_revision(&ds, "fluentd:v9", 6);
    foreign.metadata.owner_references = Some(vec![OwnerReference {
        uid: "other".to_string(),
        controller: Some(true),
        ..controller_ref(&ds)
    }]);
    let mut unmatched = old_revision(&ds, "fluentd:v8", 7);
    unmatched.metadata.labels = Some(labels(&[("app", "x")]));
    let mut unlabelled = old_revision(&ds, "fluentd:v7", 2);
    unlabelled.metadata.labels = Some(labels(&[("app", "fluentd")]));
    w.revisions.extend([
        orphan.clone(),
        foreign,
        unmatched.clone(),
        unlabelled.clone(),
    ]);
    let plan = w.plan();
    let name = |r: &ControllerRevision| r.metadata.name.clone().unwrap_or_default();
    assert_eq!(
        revision_actions(&plan),
        vec![
            &Action::AdoptRevision {
                name: name(&orphan),
                uid: "rev-uid-5".to_string()
            },
            &Action::ReleaseRevision {
                name: name(&unmatched),
                uid: "rev-uid-7".to_string()
            },
            &Action::LabelRevision {
                name: name(&unlabelled),
                hash: name(&unlabelled)
            },
            // Revision 1 is current; the adopted 5 is the highest old one.
            &Action::UpdateRevision {
                name: format!("fluentd-{}", hash_of(&ds)),
                revision: 6,
            },
        ]
    );
}

#[test]
fn duplicate_current_revisions_are_folded() {
    let ds = ds().on_delete();
    let mut w = world(ds.clone(), nodes(1), vec![pod_on(&ds, "n1").hash("dup")]);
    let mut dup = current_revision(&ds, 1);
    dup.metadata.name = Some("fluentd-dup".to_string());
    dup.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(
            CONTROLLER_REVISION_HASH_LABEL.to_string(),
            "dup".to_string(),
        );
    w.revisions = vec![dup, current_revision(&ds, 2)];
    let plan = w.plan();
    assert_eq!(
        revision_actions(&plan),
        vec![&Action::DeleteRevision {
            name: "fluentd-dup".to_string()
        }]
    );
    assert!(plan.actions.contains(&Action::RelabelPod {
        name: "fluentd-n1".to_string(),
        uid: "uid-fluentd-n1".to_string(),
        hash: hash_of(&ds),
    }));
}

#[test]
fn hash_collision_bumps_collision_count() {
    let ds = ds();
    let mut w = world(ds.clone(), nodes(1), vec![]);
    // Someone else's revision already has our name, with another template.
    let mut squatter = old_revision(&ds, "fluentd:v0", 1);
    squatter.metadata.name = Some(format!("fluentd-{}", hash_of(&ds)));
    squatter.metadata.owner_references = None;
    squatter.metadata.labels = Some(labels(&[("app", "unrelated")]));
    w.revisions = vec![squatter];
    let plan = w.plan();
    assert!(creates(&plan).is_empty());
    assert!(revision_actions(&plan).is_empty());
    assert_eq!(plan.status.and_then(|s| s.collision_count), Some(1));
    // With the bumped count the hash (and the name) differ.
    assert_ne!(
        compute_template_hash(&ds_template(&ds), Some(1)),
        hash_of(&ds)
    );
}

#[test]
fn history_is_pruned_oldest_first_keeping_live_hashes() {
    let ds = ds().history_limit(2).on_delete();
    let old1 = old_revision(&ds, "fluentd:a", 1);
    let old2 = old_revision(&ds, "fluentd:b", 2);
    let old3 = old_revision(&ds, "fluentd:c", 3);
    let old4 = old_revision(&ds, "fluentd:d", 4);
    let live_hash = hash_label(&old1.metadata).unwrap_or_default().to_string();
    // A pod (even a failed one being deleted) still uses revision 1.
    let pod = pod_on(&ds, "n1")
        .hash(&live_hash)
        .phase("Failed")
        .deleting();
    let mut w = world(ds.clone(), nodes(0), vec![pod]);
    w.revisions = vec![
        old3.clone(),
        old1.clone(),
        current_revision(&ds, 5),
        old4,
        old2.clone(),
    ];
    let plan = w.plan();
    let deleted: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteRevision { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let name = |r: &ControllerRevision| r.metadata.name.clone().unwrap_or_default();
    assert_eq!(deleted, vec![name(&old2), name(&old3)]);
}

#[test]
fn history_limit_zero_keeps_only_the_current_revision() {
    let ds = ds().history_limit(0);
    let old = old_revision(&ds, "fluentd:a", 1);
    let mut w = world(ds.clone(), nodes(0), vec![]);
    w.revisions = vec![old.clone(), current_revision(&ds, 2)];
    let plan = w.plan();
    assert_eq!(
        revision_actions(&plan),
        vec![&Action::DeleteRevision {
            name: old.metadata.name.clone().unwrap_or_default()
        }]
    );
}

#[test]
fn revision_payload_format() {
    let t = template("fluentd:v1");
    let data = revision_data(&t);
    assert_eq!(
        serde_json::to_string(&data).unwrap_or_default(),
        r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"fluentd"}},"spec":{"containers":[{"image":"fluentd:v1","name":"fluentd"}]}}}}"#
    );
    // A revision written by kube-controller-manager (Go spelling) still matches.
    let go_written = ControllerRevision {
        data: Some(RawExtension(json!({"spec":{"template":{
            "$patch":"replace",
            "metadata":{"creationTimestamp":null,"labels":{"app":"fluentd"}},
            "spec":{"containers":[{"name":"fluentd","image":"fluentd:v1"}]}
        }}}))),
        ..ControllerRevision::default()
    };
    assert!(revision_matches(&t, &go_written));
    assert!(!revision_matches(&template("fluentd:v2"), &go_written));
    assert!(!revision_matches(&t, &ControllerRevision::default()));
}

// ---------------------------------------------------------------------------------------
// Updates: OnDelete and RollingUpdate (update_test.go)
// ---------------------------------------------------------------------------------------

/// The world after `kubectl set image`: pods of v1 everywhere, DaemonSet at v2 with both
/// revisions present.
fn updated_world(v2: DaemonSet, n: usize) -> World {
    let v1 = ds();
    let pods = (1..=n).map(|i| pod_on(&v1, &format!("n{i}"))).collect();
    let mut w = world(v2.clone(), nodes(n), pods);
    w.revisions = vec![current_revision(&v1, 1), current_revision(&v2, 2)];
    w
}

fn v2() -> DaemonSet {
    ds().image("fluentd:v2").generation(2, 2)
}

#[test]
fn no_template_change_no_work() {
    let ds = ds();
    let pods = (1..=3).map(|i| pod_on(&ds, &format!("n{i}"))).collect();
    let plan = world(ds, nodes(3), pods).plan();
    assert!(creates(&plan).is_empty());
    assert!(deletes(&plan).is_empty());
    assert_eq!(status_counts(&plan), (3, 3, 3, 3, 0, 3, 0));
}

#[test]
fn on_delete_never_deletes_for_an_update() {
    let w = updated_world(v2().on_delete(), 3);
    let plan = w.plan();
    assert!(deletes(&plan).is_empty());
    assert!(creates(&plan).is_empty());
    assert_eq!(status_counts(&plan), (3, 3, 3, 3, 0, 0, 0));

    // A user deleted one: it comes back from the new template.
    let mut w = w;
    w.pods.remove(0);
    let plan = w.plan();
    assert_eq!(creates(&plan), names(&["n1"]));
    assert!(plan.actions.iter().any(|a| matches!(
        a,
        Action::CreatePods { hash, template_generation: Some(2), .. } if *hash == hash_of(&v2())
    )));
}

#[test]
fn rolling_update_max_unavailable_table() {
    struct Case {
        name: &'static str,
        max_unavailable: IntOrString,
        mutate: fn(&mut World),
        delete: usize,
    }
    let cases = [
        Case {
            name: "maxUnavailable 1: one old pod at a time",
            max_unavailable: IntOrString::Int(1),
            mutate: |_| {},
            delete: 1,
        },
        Case {
            name: "maxUnavailable 2",
            max_unavailable: IntOrString::Int(2),
            mutate: |_| {},
            delete: 2,
        },
        Case {
            name: "maxUnavailable 50% of 5 rounds up to 3",
            max_unavailable: IntOrString::String("50%".to_string()),
            mutate: |_| {},
            delete: 3,
        },
        Case {
            name: "an unavailable new pod uses the budget",
            max_unavailable: IntOrString::Int(1),
            mutate: |w| {
                let v2 = v2();
                w.pods[0] = pod_on(&v2, "n1").not_ready();
            },
            delete: 0,
        },
        Case {
            name: "a node being replaced (old pod terminating) uses the budget",
            max_unavailable: IntOrString::Int(2),
            mutate: |w| {
                let pod = w.pods[0].clone().deleting();
                w.pods[0] = pod;
            },
            delete: 1,
        },
        Case {
            name: "unavailable old pods go regardless of the budget",
            max_unavailable: IntOrString::Int(1),
            mutate: |w| {
                for i in 0..3 {
                    let pod = w.pods[i].clone().not_ready();
                    w.pods[i] = pod;
                }
            },
            delete: 3,
        },
    ];
    for case in cases {
        let ds = v2().rolling(case.max_unavailable, IntOrString::Int(0));
        let mut w = updated_world(ds, 5);
        (case.mutate)(&mut w);
        let plan = w.plan();
        assert_eq!(deletes(&plan).len(), case.delete, "{}", case.name);
        assert!(creates(&plan).is_empty(), "{}", case.name);
    }
}

#[test]
fn rolling_update_impossible_budgets_fall_back_to_one_unavailable() {
    let ds = v2().rolling(IntOrString::Int(0), IntOrString::String("0%".to_string()));
    let plan = updated_world(ds, 3).plan();
    assert_eq!(deletes(&plan), names(&["fluentd-n1"]));
}

#[test]
fn surge_keeps_availability_when_the_daemon_moves() {
    // n3 stopped qualifying (untolerated NoSchedule: its pod may stay). Its old pod goes
    // only while more pods are available than desired.
    let ds = v2().rolling(IntOrString::Int(0), IntOrString::Int(1));
    let mut w = updated_world(ds, 3);
    w.nodes[2] = node("n3").taint("dedicated", "NoSchedule");
    let plan = w.plan();
    assert_eq!(deletes(&plan), names(&["fluentd-n3"]));
    assert_eq!(creates(&plan), names(&["n1"]));

    // One of the others is unavailable: 2 available for 2 desired, n3 stays.
    w.pods[1] = w.pods[1].clone().not_ready();
    let plan = w.plan();
    assert!(deletes(&plan).is_empty());
}

#[test]
fn surge_mode_manage_prunes_extra_pods() {
    let ds = v2().rolling(IntOrString::Int(0), IntOrString::Int(1));
    let v1 = ds_with_v1();
    struct Case {
        name: &'static str,
        pods: Vec<Pod>,
        delete: Vec<&'static str>,
    }
    let cases = [
        Case {
            name: "two new pods: the younger goes",
            pods: vec![
                pod_on(&ds, "n1").named("new-a").created(1),
                pod_on(&ds, "n1").named("new-b").created(2),
            ],
            delete: vec!["new-b"],
        },
        Case {
            name: "old not ready next to a new one: old goes",
            pods: vec![
                pod_on(&v1, "n1").named("old").created(1).not_ready(),
                pod_on(&ds, "n1").named("new").created(2).not_ready(),
            ],
            delete: vec!["old"],
        },
        Case {
            name: "old ready, new not yet available: both stay",
            pods: vec![
                pod_on(&v1, "n1").named("old").created(1),
                pod_on(&ds, "n1").named("new").created(2).not_ready(),
            ],
            delete: vec![],
        },
    ];
    for case in cases {
        let mut w = world(ds.clone(), nodes(1), case.pods);
        w.revisions = vec![current_revision(&v1, 1), current_revision(&ds, 2)];
        let plan = w.plan();
        assert_eq!(deletes(&plan), names(&case.delete), "{}", case.name);
        assert!(creates(&plan).is_empty(), "{}", case.name);
    }
}

#[test]
fn rolling_update_waits_for_manage_work() {
    // A node without a pod: manage creates first; the update waits for the next pass.
    let mut w = updated_world(v2(), 3);
    w.nodes.push(node("n4"));
    let plan = w.plan();
    assert_eq!(creates(&plan), names(&["n4"]));
    assert!(deletes(&plan).is_empty());
}

#[test]
fn rolling_update_with_surge() {
    let ds = v2().rolling(IntOrString::Int(0), IntOrString::Int(1));
    // Step 1: one new pod is surged next to an old one.
    let mut w = updated_world(ds.clone(), 3);
    let plan = w.plan();
    assert_eq!(creates(&plan), names(&["n1"]));
    assert!(deletes(&plan).is_empty());

    // Step 2: the new pod exists but is not ready: wait (budget used).
    w.pods
        .push(pod_on(&ds, "n1").named("new-n1").created(5).not_ready());
    let plan = w.plan();
    assert!(creates(&plan).is_empty());
    assert!(deletes(&plan).is_empty());

    // Step 3: it is available: manage (surge mode) deletes the old one.
    let last = w.pods.len() - 1;
    w.pods[last] = pod_on(&ds, "n1").named("new-n1").created(5);
    let plan = w.plan();
    assert_eq!(deletes(&plan), names(&["fluentd-n1"]));
    assert!(creates(&plan).is_empty());
}

#[test]
fn surge_replaces_an_unready_old_pod_immediately() {
    let ds = v2().rolling(IntOrString::Int(0), IntOrString::Int(1));
    let mut w = updated_world(ds, 3);
    w.pods[2] = w.pods[2].clone().not_ready();
    let plan = w.plan();
    // n3 is allowed outside the budget; n1 uses the one surge slot.
    assert_eq!(creates(&plan), names(&["n3", "n1"]));
}

#[test]
fn surge_allows_a_replacement_next_to_a_terminating_pod() {
    let ds = v2().rolling(IntOrString::Int(0), IntOrString::Int(1));
    let v1 = ds_with_v1();
    let mut w = updated_world(ds, 1);
    w.pods = vec![pod_on(&v1, "n1").deleting()];
    assert_eq!(creates(&w.plan()), names(&["n1"]));
}

fn ds_with_v1() -> DaemonSet {
    ds()
}

// ---------------------------------------------------------------------------------------
// Building pods, slow start
// ---------------------------------------------------------------------------------------

#[test]
fn pod_for_node_contents() {
    let mut ds =
        with_required_affinity(ds(), "zone", "In", &["a"]).toleration("dedicated", "NoSchedule");
    if let Some(meta) = ds.spec_mut().template.metadata.as_mut() {
        meta.annotations = Some(labels(&[("note", "x")]));
        meta.finalizers = Some(names(&["example.com/keep"]));
    }
    let template = ds_template(&ds);
    let pod = pod_for_node(&ds, &template, "n7", "abc123", Some(4));

    assert_eq!(pod.metadata.name, None);
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("fluentd-"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some(NS));
    assert_eq!(
        pod.metadata.labels,
        Some(labels(&[
            ("app", "fluentd"),
            (CONTROLLER_REVISION_HASH_LABEL, "abc123"),
            (POD_TEMPLATE_GENERATION_LABEL, "4"),
        ]))
    );
    assert_eq!(pod.metadata.annotations, Some(labels(&[("note", "x")])));
    assert_eq!(pod.metadata.finalizers, Some(names(&["example.com/keep"])));
    assert_eq!(
        pod.metadata.owner_references,
        Some(vec![OwnerReference {
            api_version: "apps/v1".to_string(),
            kind: "DaemonSet".to_string(),
            name: "fluentd".to_string(),
            uid: DS_UID.to_string(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }])
    );

    let spec = pod.spec.unwrap_or_default();
    assert_eq!(spec.node_name, None, "the scheduler binds it");
    // The required affinity is replaced by the node's metadata.name.
    let required = spec
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|n| n.required_during_scheduling_ignored_during_execution)
        .map(|r| r.node_selector_terms);
    assert_eq!(
        required,
        Some(vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".to_string(),
                operator: "In".to_string(),
                values: Some(names(&["n7"])),
            }]),
        }])
    );
    // User tolerations first, then the daemon ones (no network-unavailable: no hostNetwork).
    let tolerations: Vec<(String, String)> = spec
        .tolerations
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.effect.unwrap_or_default()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("dedicated", "NoSchedule"),
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    .iter()
    .map(|(k, e)| (k.to_string(), e.to_string()))
    .collect();
    assert_eq!(tolerations, expected);

    // A pod built this way is attributed to its node and claimed by the DaemonSet.
    let built = pod_for_node(&ds, &template, "n7", "abc123", None);
    assert_eq!(daemon_pod_target_node(&built), Some("n7".to_string()));
    assert!(
        !built
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(POD_TEMPLATE_GENERATION_LABEL)
    );
}

#[test]
fn host_network_pods_tolerate_network_unavailable() {
    let mut ds = ds();
    ds.pod_spec_mut().host_network = Some(true);
    let pod = pod_for_node(&ds, &ds_template(&ds), "n1", "h", Some(1));
    let keys: Vec<String> = pod
        .spec
        .and_then(|s| s.tolerations)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| t.key)
        .collect();
    assert!(keys.contains(&"node.kubernetes.io/network-unavailable".to_string()));
}

#[test]
fn long_names_use_the_bare_name_as_prefix() {
    let mut ds = ds();
    ds.metadata.name = Some("a".repeat(253));
    let pod = pod_for_node(&ds, &ds_template(&ds), "n1", "h", None);
    assert_eq!(pod.metadata.generate_name, Some("a".repeat(253)));
}

#[test]
fn slow_start_batch_table() {
    let cases: [(usize, &[usize]); 8] = [
        (0, &[]),
        (1, &[1]),
        (2, &[1, 1]),
        (3, &[1, 2]),
        (4, &[1, 2, 1]),
        (7, &[1, 2, 4]),
        (10, &[1, 2, 4, 3]),
        (250, &[1, 2, 4, 8, 16, 32, 64, 123]),
    ];
    for (count, want) in cases {
        assert_eq!(slow_start_batches(count), want.to_vec(), "{count}");
        assert_eq!(slow_start_batches(count).iter().sum::<usize>(), count);
    }
}

#[test]
fn actions_come_in_execution_order() {
    // Revision first, then ownership, then failed-pod handling, creates, deletes.
    let ds = ds();
    let mut w = world(
        ds.clone(),
        nodes(3),
        vec![
            pod_on(&ds, "n1").orphan(),
            pod_on(&ds, "n2").phase("Failed"),
        ],
    );
    w.revisions.clear();
    let plan = w.plan();
    let kinds: Vec<&str> = plan
        .actions
        .iter()
        .map(|a| match a {
            Action::CreateRevision(_) => "create-revision",
            Action::AdoptPod { .. } => "adopt",
            Action::AdvanceFailedPodBackoff { .. } => "backoff",
            Action::Event { .. } => "event",
            Action::CreatePods { .. } => "create",
            Action::DeletePods { .. } => "delete",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "create-revision",
            "adopt",
            "backoff",
            "event",
            "create",
            "delete"
        ]
    );
}

#[test]
fn status_patch_clears_counters_that_drop_to_zero() {
    // Mid-rollout one node was unavailable; after it the plan's status leaves
    // numberUnavailable out (zero). A merge patch must say null, or the stale 1 stays.
    let v2 = v2();
    let mut w = updated_world(v2.clone(), 2);
    w.pods = vec![pod_on(&v2, "n1"), pod_on(&v2, "n2")];
    w.ds.status = Some(DaemonSetStatus {
        desired_number_scheduled: 2,
        current_number_scheduled: 2,
        number_ready: 1,
        number_available: Some(1),
        number_unavailable: Some(1),
        updated_number_scheduled: Some(2),
        observed_generation: Some(2),
        ..DaemonSetStatus::default()
    });
    let plan = w.plan();
    let status = plan.status.expect("the status changed");
    assert_eq!(status.number_unavailable, None);
    let patch = status_patch(&status, Some("42"));
    assert_eq!(patch["metadata"]["resourceVersion"], "42");
    assert_eq!(
        patch["status"]["numberUnavailable"],
        serde_json::Value::Null
    );
    assert!(
        patch["status"]
            .as_object()
            .is_some_and(|m| m.contains_key("numberUnavailable") && m.contains_key("conditions"))
    );
    assert_eq!(patch["status"]["numberAvailable"], 2);
    assert_eq!(patch["status"]["desiredNumberScheduled"], 2);
}

// ---------------------------------------------------------------------------------------
// everynode extensions: pause, canary selector, progress deadline
// ---------------------------------------------------------------------------------------

trait AnnotateExt {
    fn annotate(self, k: &str, v: &str) -> Self;
}

impl AnnotateExt for DaemonSet {
    fn annotate(mut self, k: &str, v: &str) -> Self {
        self.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(k.to_string(), v.to_string());
        self
    }
}

/// The pods each `CreatePods` action would create: `(node, hash, image)`.
fn created_pods(plan: &Plan) -> Vec<(String, String, String)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePods {
                node_names,
                template,
                hash,
                ..
            } => {
                let image = template
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                Some(
                    node_names
                        .iter()
                        .map(|n| (n.clone(), hash.clone(), image.clone()))
                        .collect::<Vec<_>>(),
                )
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn progressing_condition(plan: &Plan) -> Option<DaemonSetCondition> {
    plan.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == PROGRESSING)
        .cloned()
}

/// `(status, reason)` of the plan's Progressing condition.
fn progress(plan: &Plan) -> Option<(String, String)> {
    progressing_condition(plan).map(|c| (c.status, c.reason.unwrap_or_default()))
}

#[test]
fn paused_rollout_replaces_nothing_and_new_nodes_get_the_running_revision() {
    struct Case {
        name: &'static str,
        ds: DaemonSet,
        mutate: fn(&mut World),
        deletes: usize,
        /// Nodes created and the image they get.
        created: Vec<(&'static str, &'static str)>,
    }
    let paused = || v2().annotate(PAUSED_ANNOTATION, "true");
    let cases = [
        Case {
            name: "paused: nothing replaced",
            ds: paused(),
            mutate: |_| {},
            deletes: 0,
            created: vec![],
        },
        Case {
            name: "paused, maxSurge 1: nothing surged",
            ds: paused().rolling(IntOrString::Int(0), IntOrString::Int(1)),
            mutate: |_| {},
            deletes: 0,
            created: vec![],
        },
        Case {
            name: "paused: a new node gets the revision the fleet runs",
            ds: paused(),
            mutate: |w| w.nodes.push(node("n4")),
            deletes: 0,
            created: vec![("n4", "fluentd:v1")],
        },
        Case {
            name: "paused: a deleted pod comes back at the running revision",
            ds: paused(),
            mutate: |w| {
                w.pods.remove(1);
            },
            deletes: 0,
            created: vec![("n2", "fluentd:v1")],
        },
        Case {
            name: "paused before any pod ran an older revision: the current template",
            ds: paused(),
            mutate: |w| {
                let v2 = v2();
                w.pods = vec![pod_on(&v2, "n1"), pod_on(&v2, "n2")];
            },
            deletes: 0,
            created: vec![("n3", "fluentd:v2")],
        },
        Case {
            name: "paused: an unavailable old pod stays too",
            ds: paused(),
            mutate: |w| {
                let pod = w.pods[0].clone().not_ready();
                w.pods[0] = pod;
            },
            deletes: 0,
            created: vec![],
        },
        Case {
            name: "paused \"false\" is not paused",
            ds: v2().annotate(PAUSED_ANNOTATION, "false"),
            mutate: |_| {},
            deletes: 1,
            created: vec![],
        },
        Case {
            name: "OnDelete ignores the annotation (a deleted pod gets the new template)",
            ds: paused().on_delete(),
            mutate: |w| {
                w.pods.remove(1);
            },
            deletes: 0,
            created: vec![("n2", "fluentd:v2")],
        },
    ];
    for case in cases {
        let mut w = updated_world(case.ds, 3);
        (case.mutate)(&mut w);
        let plan = w.plan();
        assert_eq!(deletes(&plan).len(), case.deletes, "{}", case.name);
        let got: Vec<(String, String)> = created_pods(&plan)
            .into_iter()
            .map(|(n, _, image)| (n, image))
            .collect();
        let want: Vec<(String, String)> = case
            .created
            .iter()
            .map(|(n, i)| (n.to_string(), i.to_string()))
            .collect();
        assert_eq!(got, want, "{}", case.name);
    }
}

#[test]
fn stable_pods_carry_the_old_hash_and_generation() {
    let ds = v2().annotate(PAUSED_ANNOTATION, "true");
    let mut w = updated_world(ds, 2);
    w.nodes.push(node("n3"));
    let plan = w.plan();
    let create = plan.actions.iter().find_map(|a| match a {
        Action::CreatePods {
            hash,
            template_generation,
            node_names,
            ..
        } => Some((node_names.clone(), hash.clone(), *template_generation)),
        _ => None,
    });
    assert_eq!(
        create,
        Some((names(&["n3"]), hash_of(&ds_with_v1()), Some(1)))
    );
    // Status stays honest: 2 of 3 pods updated? None: the old ones are not.
    assert_eq!(status_counts(&plan), (3, 2, 2, 2, 0, 0, 1));
}

#[test]
fn canary_selector_updates_only_the_nodes_it_picks() {
    struct Case {
        name: &'static str,
        selector: &'static str,
        max_unavailable: i32,
        mutate: fn(&mut World),
        deletes: Vec<&'static str>,
        created: Vec<(&'static str, &'static str)>,
    }
    let cases = [
        Case {
            name: "one canary node",
            selector: "canary=true",
            max_unavailable: 2,
            mutate: |_| {},
            deletes: vec!["fluentd-n2"],
            created: vec![],
        },
        Case {
            name: "set-based selector picks two",
            selector: "zone in (b, c)",
            max_unavailable: 5,
            mutate: |_| {},
            deletes: vec!["fluentd-n2", "fluentd-n3"],
            created: vec![],
        },
        Case {
            name: "an unavailable pod outside the canary still uses the budget",
            selector: "canary=true",
            max_unavailable: 1,
            mutate: |w| {
                let pod = w.pods[0].clone().not_ready();
                w.pods[0] = pod;
            },
            deletes: vec![],
            created: vec![],
        },
        Case {
            name: "a missing pod outside the canary comes back at the old revision",
            selector: "canary=true",
            max_unavailable: 1,
            mutate: |w| {
                w.pods.remove(0);
            },
            deletes: vec![],
            created: vec![("n1", "fluentd:v1")],
        },
        Case {
            name: "a missing pod on a canary node gets the new template",
            selector: "canary=true",
            max_unavailable: 1,
            mutate: |w| {
                w.pods.remove(1);
            },
            deletes: vec![],
            created: vec![("n2", "fluentd:v2")],
        },
        Case {
            name: "a selector that does not parse updates nothing",
            selector: "zone in (b",
            max_unavailable: 5,
            mutate: |_| {},
            deletes: vec![],
            created: vec![],
        },
    ];
    for case in cases {
        let ds = v2()
            .annotate(CANARY_SELECTOR_ANNOTATION, case.selector)
            .rolling(IntOrString::Int(case.max_unavailable), IntOrString::Int(0));
        let mut w = updated_world(ds, 4);
        w.nodes = vec![
            node("n1").label("zone", "a"),
            node("n2").label("zone", "b").label("canary", "true"),
            node("n3").label("zone", "c"),
            node("n4").label("zone", "d"),
        ];
        (case.mutate)(&mut w);
        let plan = w.plan();
        assert_eq!(deletes(&plan), names(&case.deletes), "{}", case.name);
        let got: Vec<(String, String)> = created_pods(&plan)
            .into_iter()
            .map(|(n, _, image)| (n, image))
            .collect();
        let want: Vec<(String, String)> = case
            .created
            .iter()
            .map(|(n, i)| (n.to_string(), i.to_string()))
            .collect();
        assert_eq!(got, want, "{}", case.name);
    }
}

#[test]
fn canary_with_surge_surges_only_canary_nodes() {
    let ds = v2()
        .annotate(CANARY_SELECTOR_ANNOTATION, "canary=true")
        .rolling(IntOrString::Int(0), IntOrString::Int(2));
    let mut w = updated_world(ds, 3);
    w.nodes[2] = node("n3").label("canary", "true");
    // n1 outside the canary is not ready: not replaced (no "allowed" surge there).
    w.pods[0] = w.pods[0].clone().not_ready();
    let plan = w.plan();
    assert_eq!(creates(&plan), names(&["n3"]));
    assert!(deletes(&plan).is_empty());
}

#[test]
fn canary_done_reports_progressed_on_the_picked_nodes() {
    let ds = v2().annotate(CANARY_SELECTOR_ANNOTATION, "canary=true");
    let v2 = ds.clone();
    let mut w = updated_world(ds, 3);
    w.nodes[1] = node("n2").label("canary", "true");
    w.pods[1] = pod_on(&v2, "n2");
    let plan = w.plan();
    assert!(deletes(&plan).is_empty());
    assert_eq!(
        progress(&plan),
        Some(("True".to_string(), "NewRevisionAvailable".to_string()))
    );
    let message = progressing_condition(&plan)
        .and_then(|c| c.message)
        .unwrap_or_default();
    assert!(
        message.contains("every node the canary selector picks"),
        "{message}"
    );
    assert_eq!(
        status_counts(&plan).5,
        1,
        "status still counts 1 updated of 3"
    );
}

/// A stored `Progressing` condition.
fn stored_progress(status: &str, reason: &str, message: &str, since: i64) -> DaemonSetCondition {
    DaemonSetCondition {
        type_: PROGRESSING.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_transition_time: Some(Time(at(since))),
    }
}

#[test]
fn progress_deadline_table() {
    let rev2 = format!("revision \"fluentd-{}\"", hash_of(&v2()));
    let rolling_msg = format!("DaemonSet \"fluentd\" is rolling out {rev2}");
    struct Case {
        name: &'static str,
        deadline: Option<&'static str>,
        /// Stored condition: (status, reason, since) with the v2 rolling message.
        stored: Option<(&'static str, &'static str, i64)>,
        /// Stored counters: updated.
        stored_updated: i32,
        mutate: fn(&mut World),
        want: Option<(&'static str, &'static str)>,
        /// Expected lastTransitionTime (seconds after the epoch of `at`).
        since: Option<i64>,
        requeue: Option<u64>,
    }
    // The world: 3 nodes, n1 already on v2 but not ready (the rollout waits on it).
    fn stalled(w: &mut World) {
        let v2 = v2();
        w.pods[0] = pod_on(&v2, "n1").not_ready();
    }
    let cases = [
        Case {
            name: "no annotation: no condition",
            deadline: None,
            stored: None,
            stored_updated: 1,
            mutate: stalled,
            want: None,
            since: None,
            requeue: None,
        },
        Case {
            name: "first sight of the rollout: True, clock starts now",
            deadline: Some("60"),
            stored: None,
            stored_updated: 1,
            mutate: stalled,
            want: Some(("True", "RollingUpdate")),
            since: Some(NOW),
            requeue: Some(61),
        },
        Case {
            name: "no progress, deadline not reached: unchanged, look again when due",
            deadline: Some("60"),
            stored: Some(("True", "RollingUpdate", NOW - 20)),
            stored_updated: 1,
            mutate: stalled,
            want: Some(("True", "RollingUpdate")),
            since: Some(NOW - 20),
            requeue: Some(41),
        },
        Case {
            name: "no progress past the deadline: ProgressDeadlineExceeded",
            deadline: Some("60"),
            stored: Some(("True", "RollingUpdate", NOW - 61)),
            stored_updated: 1,
            mutate: stalled,
            want: Some(("False", "ProgressDeadlineExceeded")),
            since: Some(NOW),
            requeue: None,
        },
        Case {
            name: "exceeded stays exceeded without progress",
            deadline: Some("60"),
            stored: Some(("False", "ProgressDeadlineExceeded", NOW - 500)),
            stored_updated: 1,
            mutate: stalled,
            want: Some(("False", "ProgressDeadlineExceeded")),
            since: Some(NOW - 500),
            requeue: None,
        },
        Case {
            name: "more pods updated is progress: the clock restarts",
            deadline: Some("60"),
            stored: Some(("True", "RollingUpdate", NOW - 59)),
            stored_updated: 0,
            mutate: stalled,
            want: Some(("True", "RollingUpdate")),
            since: Some(NOW),
            requeue: Some(61),
        },
        Case {
            name: "progress after the deadline: back to True",
            deadline: Some("60"),
            stored: Some(("False", "ProgressDeadlineExceeded", NOW - 100)),
            stored_updated: 0,
            mutate: stalled,
            want: Some(("True", "RollingUpdate")),
            since: Some(NOW),
            requeue: Some(61),
        },
        Case {
            name: "done: NewRevisionAvailable",
            deadline: Some("60"),
            stored: Some(("True", "RollingUpdate", NOW - 10)),
            stored_updated: 2,
            mutate: |w| {
                let v2 = v2();
                w.pods = (1..=3).map(|i| pod_on(&v2, &format!("n{i}"))).collect();
            },
            want: Some(("True", "NewRevisionAvailable")),
            since: Some(NOW),
            requeue: None,
        },
        Case {
            name: "paused: Unknown, no deadline",
            deadline: Some("60"),
            stored: Some(("True", "RollingUpdate", NOW - 500)),
            stored_updated: 1,
            mutate: |w| {
                stalled(w);
                w.ds = w.ds.clone().annotate(PAUSED_ANNOTATION, "true");
            },
            want: Some(("Unknown", "RolloutPaused")),
            since: Some(NOW),
            requeue: None,
        },
        Case {
            name: "invalid canary selector: False",
            deadline: None,
            stored: None,
            stored_updated: 1,
            mutate: |w| {
                w.ds = w.ds.clone().annotate(CANARY_SELECTOR_ANNOTATION, "a in (");
            },
            want: Some(("False", "InvalidCanarySelector")),
            since: Some(NOW),
            requeue: None,
        },
        Case {
            name: "annotation removed: the condition goes",
            deadline: None,
            stored: Some(("False", "ProgressDeadlineExceeded", NOW - 500)),
            stored_updated: 1,
            mutate: stalled,
            want: None,
            since: None,
            requeue: None,
        },
    ];
    for case in cases {
        let mut ds = v2();
        if let Some(d) = case.deadline {
            ds = ds.annotate(PROGRESS_DEADLINE_ANNOTATION, d);
        }
        let mut w = updated_world(ds, 3);
        (case.mutate)(&mut w);
        w.ds.status = Some(DaemonSetStatus {
            desired_number_scheduled: 3,
            current_number_scheduled: 3,
            number_ready: 2,
            number_available: Some(2),
            number_unavailable: Some(1),
            updated_number_scheduled: Some(case.stored_updated),
            observed_generation: Some(2),
            conditions: case
                .stored
                .map(|(st, reason, since)| vec![stored_progress(st, reason, &rolling_msg, since)]),
            ..DaemonSetStatus::default()
        });
        let plan = w.plan();
        // The status may be unchanged (None): then the stored condition stands.
        let cond = match &plan.status {
            Some(_) => progressing_condition(&plan),
            None => {
                w.ds.status
                    .as_ref()
                    .and_then(|s| s.conditions.clone())
                    .and_then(|cs| cs.into_iter().find(|c| c.type_ == PROGRESSING))
            }
        };
        let got = cond
            .as_ref()
            .map(|c| (c.status.as_str(), c.reason.as_deref().unwrap_or("")));
        assert_eq!(got, case.want, "{}", case.name);
        let since = cond
            .as_ref()
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0);
        assert_eq!(since, case.since.map(at), "{}", case.name);
        assert_eq!(
            plan.requeue_after,
            case.requeue.map(Duration::from_secs),
            "{}",
            case.name
        );
    }
}

#[test]
fn unchanged_progress_condition_writes_nothing() {
    let rev2 = format!("revision \"fluentd-{}\"", hash_of(&v2()));
    let ds = v2().annotate(PROGRESS_DEADLINE_ANNOTATION, "60");
    let mut w = updated_world(ds, 1);
    let v2 = v2();
    w.pods = vec![pod_on(&v2, "n1")];
    let message = format!(
        "DaemonSet \"fluentd\" has successfully progressed: {rev2} is available on every node"
    );
    w.ds.status = Some(DaemonSetStatus {
        desired_number_scheduled: 1,
        current_number_scheduled: 1,
        number_ready: 1,
        number_available: Some(1),
        updated_number_scheduled: Some(1),
        observed_generation: Some(2),
        conditions: Some(vec![stored_progress(
            "True",
            "NewRevisionAvailable",
            &message,
            NOW - 100,
        )]),
        ..DaemonSetStatus::default()
    });
    assert_eq!(w.plan().status, None);
}

fn with_ready(mut n: Node, status: &str) -> Node {
    n.status = Some(k8s_openapi::api::core::v1::NodeStatus {
        conditions: Some(vec![k8s_openapi::api::core::v1::NodeCondition {
            type_: "Ready".to_string(),
            status: status.to_string(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    n
}

#[test]
fn unready_nodes_neither_block_nor_join_the_rolling_update() {
    // everynode, not Kubernetes (README, "Beyond Kubernetes"): a node whose Ready is
    // Unknown or False is left out of the rolling update.
    struct Case {
        name: &'static str,
        n3_ready: &'static str,
        /// n3's old pod: (terminating, pod Ready).
        n3_pod: (bool, bool),
        surge: i32,
        deletes: Vec<&'static str>,
        creates: Vec<&'static str>,
    }
    let cases = [
        Case {
            name: "silent node with a terminating pod does not use the budget",
            n3_ready: "Unknown",
            n3_pod: (true, true),
            surge: 0,
            deletes: vec!["fluentd-n1"],
            creates: vec![],
        },
        Case {
            name: "silent node's stale Ready pod is not a candidate",
            n3_ready: "Unknown",
            n3_pod: (false, true),
            surge: 0,
            deletes: vec!["fluentd-n1"],
            creates: vec![],
        },
        Case {
            name: "NotReady node's unready pod is not deleted either",
            n3_ready: "False",
            n3_pod: (false, false),
            surge: 0,
            deletes: vec!["fluentd-n1"],
            creates: vec![],
        },
        Case {
            name: "Ready node: as Kubernetes (terminating pod uses the budget)",
            n3_ready: "True",
            n3_pod: (true, true),
            surge: 0,
            deletes: vec![],
            creates: vec![],
        },
        Case {
            name: "surge: no new pod next to the silent node's",
            n3_ready: "Unknown",
            n3_pod: (false, false),
            surge: 1,
            deletes: vec![],
            creates: vec!["n1"],
        },
    ];
    for case in cases {
        let ds = v2()
            .toleration("node.kubernetes.io/unreachable", "NoSchedule")
            .toleration("node.kubernetes.io/not-ready", "NoSchedule")
            .rolling(IntOrString::Int(1), IntOrString::Int(case.surge));
        let ds = if case.surge > 0 {
            ds.rolling(IntOrString::Int(0), IntOrString::Int(case.surge))
        } else {
            ds
        };
        let v1 = ds.clone().image("fluentd:v1").generation(1, 1);
        let mut w = world(ds.clone(), nodes(3), vec![]);
        w.revisions = vec![current_revision(&v1, 1), current_revision(&ds, 2)];
        w.nodes[2] = with_ready(node("n3"), case.n3_ready);
        let mut n3 = pod_on(&v1, "n3");
        if case.n3_pod.0 {
            n3 = n3.deleting();
        }
        if !case.n3_pod.1 {
            n3 = n3.not_ready();
        }
        w.pods = vec![pod_on(&v1, "n1"), pod_on(&v1, "n2"), n3];
        let plan = w.plan();
        assert_eq!(deletes(&plan), names(&case.deletes), "{}", case.name);
        assert_eq!(creates(&plan), names(&case.creates), "{}", case.name);
    }
}

// ---------------------------------------------------------------------------------------
// Rolling update budgets, and whole rollouts pass by pass (update_test.go:
// TestGetUnavailableNumbers, TestDaemonSetUpdatesPods, ...WithMaxSurge,
// ...WhenNewPosIsNotReady, ...AllOldPodsNotReadyMaxSurge)
// ---------------------------------------------------------------------------------------

#[test]
fn budgets_table() {
    let pct = |s: &str| Some(IntOrString::String(s.to_string()));
    let int = |i: i32| Some(IntOrString::Int(i));
    struct Case {
        name: &'static str,
        /// `None`: no `rollingUpdate` at all.
        rolling: Option<(Option<IntOrString>, Option<IntOrString>)>,
        desired: i64,
        /// `(maxSurge, maxUnavailable)`.
        want: (i64, i64),
    }
    let cases = [
        Case {
            name: "no nodes",
            rolling: Some((int(0), int(0))),
            desired: 0,
            want: (0, 0),
        },
        Case {
            name: "two nodes, maxUnavailable 1",
            rolling: Some((int(1), int(0))),
            desired: 2,
            want: (0, 1),
        },
        Case {
            name: "maxUnavailable 50% of 2",
            rolling: Some((pct("50%"), int(0))),
            desired: 2,
            want: (0, 1),
        },
        Case {
            name: "maxSurge 50% of 2",
            rolling: Some((int(0), pct("50%"))),
            desired: 2,
            want: (1, 0),
        },
        Case {
            name: "maxSurge 100% of 2",
            rolling: Some((int(0), pct("100%"))),
            desired: 2,
            want: (2, 0),
        },
        Case {
            name: "10% of 5,000 nodes",
            rolling: Some((pct("10%"), int(0))),
            desired: 5000,
            want: (0, 500),
        },
        Case {
            name: "percentages round up: 10% of 5,001",
            rolling: Some((pct("10%"), int(0))),
            desired: 5001,
            want: (0, 501),
        },
        Case {
            name: "percentages round up: 33% of 10",
            rolling: Some((pct("33%"), int(0))),
            desired: 10,
            want: (0, 4),
        },
        Case {
            name: "percentages round up: 1% of 5",
            rolling: Some((pct("1%"), int(0))),
            desired: 5,
            want: (0, 1),
        },
        Case {
            name: "both zero: one unavailable after all",
            rolling: Some((int(0), int(0))),
            desired: 3,
            want: (0, 1),
        },
        Case {
            name: "0% of a small fleet is zero: one unavailable",
            rolling: Some((pct("0%"), pct("0%"))),
            desired: 3,
            want: (0, 1),
        },
        Case {
            name: "no rollingUpdate: Kubernetes' defaults",
            rolling: None,
            desired: 3,
            want: (0, 1),
        },
        Case {
            name: "maxUnavailable absent: 1",
            rolling: Some((None, int(0))),
            desired: 3,
            want: (0, 1),
        },
        Case {
            name: "maxUnavailable and maxSurge both set",
            rolling: Some((int(2), int(1))),
            desired: 5,
            want: (1, 2),
        },
        Case {
            name: "a malformed percentage counts as zero",
            rolling: Some((pct("x%"), int(1))),
            desired: 5,
            want: (1, 0),
        },
    ];
    for case in cases {
        let mut spec = ds().spec.unwrap_or_default();
        let strategy = spec
            .update_strategy
            .get_or_insert_with(DaemonSetUpdateStrategy::default);
        strategy.rolling_update =
            case.rolling
                .map(|(max_unavailable, max_surge)| RollingUpdateDaemonSet {
                    max_unavailable,
                    max_surge,
                });
        assert_eq!(budgets(&spec, case.desired), case.want, "{}", case.name);
    }
}

#[test]
fn percentages_are_of_the_nodes_that_should_run() {
    // 50% of 4 qualifying nodes is 2, whatever the two nodes that do not qualify hold.
    let ds = v2()
        .node_selector("disk", "ssd")
        .rolling(IntOrString::String("50%".to_string()), IntOrString::Int(0));
    let mut w = updated_world(ds, 4);
    for n in w.nodes.iter_mut() {
        *n = n.clone().label("disk", "ssd");
    }
    w.nodes.push(node("n5"));
    w.nodes.push(node("n6"));
    let plan = w.plan();
    assert_eq!(deletes(&plan), names(&["fluentd-n1", "fluentd-n2"]));
    assert_eq!(status_counts(&plan).0, 4);
}

#[test]
fn min_ready_seconds_decides_availability_in_the_rolling_update() {
    struct Case {
        name: &'static str,
        surge: i32,
        /// n1's new pod has been Ready since this many seconds before now.
        ready_for: i64,
        deletes: Vec<&'static str>,
        creates: Vec<&'static str>,
    }
    let cases = [
        Case {
            name: "new pod Ready 5 s of 10: still unavailable, it uses the budget",
            surge: 0,
            ready_for: 5,
            deletes: vec![],
            creates: vec![],
        },
        Case {
            name: "new pod Ready exactly 10 s: not yet (strictly after)",
            surge: 0,
            ready_for: 10,
            deletes: vec![],
            creates: vec![],
        },
        Case {
            name: "new pod Ready 11 s: available, the next node goes",
            surge: 0,
            ready_for: 11,
            deletes: vec!["fluentd-n2"],
            creates: vec![],
        },
        Case {
            name: "surge: the old pod stays beside a new one that is not available",
            surge: 1,
            ready_for: 5,
            deletes: vec![],
            creates: vec![],
        },
        Case {
            name: "surge: the new pod is available, the old one goes",
            surge: 1,
            ready_for: 11,
            deletes: vec!["fluentd-n1"],
            creates: vec![],
        },
    ];
    for case in cases {
        let ds = v2().min_ready(10).rolling(
            IntOrString::Int(i32::from(case.surge == 0)),
            IntOrString::Int(case.surge),
        );
        let mut w = updated_world(ds.clone(), 3);
        let new_n1 = pod_on(&ds, "n1")
            .named("new-n1")
            .created(NOW - 20)
            .ready_since(NOW - case.ready_for);
        if case.surge == 0 {
            w.pods[0] = new_n1;
        } else {
            w.pods.push(new_n1);
        }
        let plan = w.plan();
        assert_eq!(deletes(&plan), names(&case.deletes), "{}", case.name);
        assert_eq!(creates(&plan), names(&case.creates), "{}", case.name);
        // A pod waiting for minReadySeconds is Ready but not available in the status.
        let (_, _, ready, available, ..) = status_counts(&plan);
        // (With surge the status counts n1's oldest pod, the available old one.)
        let waiting = i32::from(case.surge == 0 && case.ready_for <= 10);
        assert_eq!(ready - available, waiting, "{}", case.name);
    }
}

/// A change to the world before a given pass: `(pass, change)`.
type Change = (i64, fn(&mut World));

/// A rollout played pass by pass, one second apart, the way the cluster answers the
/// plan: a deleted pod is terminating until the next pass and gone at it (its kubelet
/// confirms), a created pod is bound at once and not Ready until the next pass.
struct Rollout {
    w: World,
    pass: i64,
    created: usize,
    /// Per pass, after the plan was carried out: nodes that should run a pod but have
    /// no available one that is not terminating, and the most pods on one node.
    unavailable: Vec<usize>,
    most_per_node: Vec<usize>,
    surging: Vec<usize>,
}

impl Rollout {
    fn new(w: World) -> Rollout {
        Rollout {
            w,
            pass: 0,
            created: 0,
            unavailable: Vec::new(),
            most_per_node: Vec::new(),
            surging: Vec::new(),
        }
    }

    fn min_ready(&self) -> i32 {
        self.w
            .ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn should_run(&self, node: &Node) -> bool {
        node_should_run_daemon_pod(node, &self.w.ds).should_run
    }

    fn on(&self, node: &str) -> Vec<&Pod> {
        self.w
            .pods
            .iter()
            .filter(|p| daemon_pod_target_node(p).as_deref() == Some(node))
            .collect()
    }

    /// One pass: the cluster's answers to the previous pass, the plan, its actions.
    fn step(&mut self) {
        self.pass += 1;
        let now = NOW + self.pass;
        self.w.now = at(now);
        self.w.pods.retain(|p| !is_deleting(&p.metadata));
        for p in self.w.pods.iter_mut() {
            if !is_pod_ready(p) {
                *p = p.clone().ready_since(now);
            }
        }
        let plan = self.w.plan();
        for name in deletes(&plan) {
            if let Some(p) = self
                .w
                .pods
                .iter_mut()
                .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
            {
                *p = p.clone().deleting();
            }
        }
        for node in creates(&plan) {
            self.created += 1;
            let pod = pod_on(&self.w.ds, &node)
                .named(&format!("new-{node}-{}", self.created))
                .created(now)
                .not_ready();
            self.w.pods.push(pod);
        }
        let min_ready = self.min_ready();
        let (mut unavailable, mut most, mut surging) = (0, 0, 0);
        for node in &self.w.nodes {
            let name = opt_str(&node.metadata.name);
            let pods = self.on(name);
            let available = pods
                .iter()
                .any(|p| !is_deleting(&p.metadata) && is_pod_available(p, min_ready, self.w.now));
            if self.should_run(node) && !available {
                unavailable += 1;
            }
            most = most.max(pods.len());
            surging += usize::from(pods.len() > 1);
        }
        self.unavailable.push(unavailable);
        self.most_per_node.push(most);
        self.surging.push(surging);
    }

    /// Every node that should run a pod runs exactly one, of the current revision and
    /// available; the others run none.
    fn done(&self) -> bool {
        let hash = hash_of(&self.w.ds);
        let min_ready = self.min_ready();
        self.w.nodes.iter().all(|node| {
            let pods = self.on(opt_str(&node.metadata.name));
            if !self.should_run(node) {
                return pods.is_empty();
            }
            pods.len() == 1
                && hash_label(&pods[0].metadata) == Some(hash.as_str())
                && !is_deleting(&pods[0].metadata)
                && is_pod_available(pods[0], min_ready, self.w.now)
        })
    }

    /// Passes until done (at most 100), with `change` applied to the world before the
    /// pass of that number.
    fn run(mut self, change: Option<Change>) -> Rollout {
        while !self.done() {
            assert!(
                self.pass < 100,
                "no end after 100 passes: {:#?}",
                self.w.pods
            );
            if let Some((at_pass, change)) = change
                && at_pass == self.pass + 1
            {
                change(&mut self.w);
            }
            self.step();
        }
        self
    }

    fn max(series: &[usize]) -> usize {
        series.iter().copied().max().unwrap_or(0)
    }
}

#[test]
fn whole_rollouts_pass_by_pass() {
    let pct = |s: &str| IntOrString::String(s.to_string());
    struct Case {
        name: &'static str,
        nodes: usize,
        max_unavailable: IntOrString,
        max_surge: IntOrString,
        min_ready: i32,
        /// (most nodes unavailable, most pods on a node, most nodes surging, passes).
        want: (usize, usize, usize, i64),
    }
    let cases = [
        Case {
            // Delete, (gone) create, (Ready) next delete: two passes per node.
            name: "maxUnavailable 1 on 5 nodes: one node at a time",
            nodes: 5,
            max_unavailable: IntOrString::Int(1),
            max_surge: IntOrString::Int(0),
            min_ready: 0,
            want: (1, 1, 0, 11),
        },
        Case {
            name: "maxUnavailable 2 on 5 nodes: 2, 2, 1",
            nodes: 5,
            max_unavailable: IntOrString::Int(2),
            max_surge: IntOrString::Int(0),
            min_ready: 0,
            want: (2, 1, 0, 7),
        },
        Case {
            name: "maxUnavailable 40% of 5 rounds up to 2",
            nodes: 5,
            max_unavailable: pct("40%"),
            max_surge: IntOrString::Int(0),
            min_ready: 0,
            want: (2, 1, 0, 7),
        },
        Case {
            name: "maxUnavailable 10% of 20: two at a time",
            nodes: 20,
            max_unavailable: pct("10%"),
            max_surge: IntOrString::Int(0),
            min_ready: 0,
            want: (2, 1, 0, 21),
        },
        Case {
            name: "maxUnavailable 100%: every node at once",
            nodes: 5,
            max_unavailable: pct("100%"),
            max_surge: IntOrString::Int(0),
            min_ready: 0,
            want: (5, 1, 0, 3),
        },
        Case {
            // Surge, (Ready) delete the old one, (gone) surge the next: two passes per
            // node, as manage's delete holds the rolling update back for a pass.
            name: "maxSurge 1: no node unavailable, one extra pod at a time",
            nodes: 5,
            max_unavailable: IntOrString::Int(0),
            max_surge: IntOrString::Int(1),
            min_ready: 0,
            want: (0, 2, 1, 11),
        },
        Case {
            name: "maxSurge 40% of 5: two extra pods at a time",
            nodes: 5,
            max_unavailable: IntOrString::Int(0),
            max_surge: pct("40%"),
            min_ready: 0,
            want: (0, 2, 2, 7),
        },
        Case {
            // Each new pod must have been Ready for more than 3 s before the next node
            // goes: six passes per node instead of two.
            name: "minReadySeconds 3 holds each node back",
            nodes: 3,
            max_unavailable: IntOrString::Int(1),
            max_surge: IntOrString::Int(0),
            min_ready: 3,
            want: (1, 1, 0, 19),
        },
    ];
    for case in cases {
        let ds = v2()
            .min_ready(case.min_ready)
            .rolling(case.max_unavailable, case.max_surge);
        let r = Rollout::new(updated_world(ds, case.nodes)).run(None);
        let got = (
            Rollout::max(&r.unavailable),
            Rollout::max(&r.most_per_node),
            Rollout::max(&r.surging),
            r.pass,
        );
        assert_eq!(got, case.want, "{}", case.name);
        assert_eq!(r.created, case.nodes, "{}: one new pod per node", case.name);
    }
}

fn ssd(name: &str) -> Node {
    node(name).label("disk", "ssd")
}

#[test]
fn nodes_that_stop_qualifying_mid_rollout() {
    struct Case {
        name: &'static str,
        change: fn(&mut World),
        /// Where n5 ends: `Some(true)` a new pod, `Some(false)` no pod.
        n5_runs: bool,
        want_passes: i64,
    }
    let cases = [
        Case {
            name: "n5 tainted NoExecute: manage deletes its pod at once, nothing replaces it",
            change: |w| w.nodes[4] = ssd("n5").taint("dedicated", "NoExecute"),
            n5_runs: false,
            want_passes: 10,
        },
        Case {
            name: "n5 no longer matches the node selector: likewise",
            change: |w| w.nodes[4] = node("n5").label("disk", "hdd"),
            n5_runs: false,
            want_passes: 10,
        },
        Case {
            // Kubernetes' rolling update visits every node with pods: the old pod of a
            // node that may keep it (NoSchedule) is deleted within the budget like the
            // others, and not replaced.
            name: "n5 tainted NoSchedule: its old pod goes in its turn, nothing replaces it",
            change: |w| w.nodes[4] = ssd("n5").taint("dedicated", "NoSchedule"),
            n5_runs: false,
            want_passes: 10,
        },
        Case {
            name: "n5 cordoned: daemon pods ignore unschedulable, it is updated",
            change: |w| w.nodes[4] = ssd("n5").unschedulable(),
            n5_runs: true,
            want_passes: 11,
        },
        Case {
            name: "n5 deleted (its pod with it): the rollout ends on the other four",
            change: |w| {
                w.nodes.truncate(4);
                w.pods
                    .retain(|p| daemon_pod_target_node(p).as_deref() != Some("n5"));
            },
            n5_runs: false,
            want_passes: 9,
        },
    ];
    for case in cases {
        // maxUnavailable 1 over 5 nodes labelled disk=ssd, which the DaemonSet selects;
        // the change lands after the first node is done.
        let ds = v2()
            .node_selector("disk", "ssd")
            .rolling(IntOrString::Int(1), IntOrString::Int(0));
        let mut w = updated_world(ds, 5);
        for (i, n) in w.nodes.iter_mut().enumerate() {
            *n = ssd(&format!("n{}", i + 1));
        }
        let r = Rollout::new(w).run(Some((3, case.change)));
        assert_eq!(Rollout::max(&r.unavailable), 1, "{}", case.name);
        assert_eq!(Rollout::max(&r.most_per_node), 1, "{}", case.name);
        let n5 = r.on("n5");
        assert_eq!(!n5.is_empty(), case.n5_runs, "{}: {n5:#?}", case.name);
        assert_eq!(r.pass, case.want_passes, "{}", case.name);
        let status = r.w.plan().status.unwrap_or_default();
        let desired = if case.n5_runs { 5 } else { 4 };
        assert_eq!(status.desired_number_scheduled, desired, "{}", case.name);
        assert_eq!(
            status.updated_number_scheduled,
            Some(desired),
            "{}",
            case.name
        );
    }
}

#[test]
fn a_node_that_goes_silent_mid_rollout_is_left_out_until_it_is_back() {
    // everynode, not Kubernetes: once n5's Ready turns Unknown the rollout neither
    // deletes its pod nor counts it, and finishes the other four; n5 is updated when it
    // is Ready again.
    let ds = v2()
        .toleration("node.kubernetes.io/unreachable", "NoSchedule")
        .rolling(IntOrString::Int(1), IntOrString::Int(0));
    let mut r = Rollout::new(updated_world(ds, 5));
    r.w.nodes[4] = with_ready(node("n5"), "Unknown");
    let old_n5 = r.on("n5")[0].metadata.name.clone();
    for _ in 0..20 {
        r.step();
    }
    let on_n5: Vec<_> = r.on("n5").iter().map(|p| p.metadata.name.clone()).collect();
    assert_eq!(on_n5, vec![old_n5], "n5 keeps its old pod");
    assert!(!is_deleting(&r.on("n5")[0].metadata));
    let hash = hash_of(&r.w.ds);
    for n in ["n1", "n2", "n3", "n4"] {
        let pods = r.on(n);
        assert_eq!(pods.len(), 1, "{n}");
        assert_eq!(hash_label(&pods[0].metadata), Some(hash.as_str()), "{n}");
    }
    assert!(!r.done());
    r.w.nodes[4] = with_ready(node("n5"), "True");
    let r = r.run(None);
    assert!(r.done());
    assert_eq!(Rollout::max(&r.unavailable), 1);
}

#[test]
fn surge_replaces_every_unready_old_pod_at_once() {
    // Old pods that are not available are replaced outside the surge budget; once the
    // new pods exist, manage deletes the unready old ones without waiting.
    let ds = v2().rolling(IntOrString::Int(0), IntOrString::Int(3));
    let mut w = updated_world(ds.clone(), 5);
    for p in w.pods.iter_mut() {
        *p = p.clone().not_ready();
    }
    let plan = w.plan();
    assert_eq!(creates(&plan), names(&["n1", "n2", "n3", "n4", "n5"]));
    assert!(deletes(&plan).is_empty());

    for i in 1..=5 {
        let node = format!("n{i}");
        w.pods.push(
            pod_on(&ds, &node)
                .named(&format!("new-{node}"))
                .created(NOW)
                .not_ready(),
        );
    }
    let plan = w.plan();
    assert!(creates(&plan).is_empty());
    assert_eq!(deletes(&plan).len(), 5);
    assert!(deletes(&plan).iter().all(|p| p.starts_with("fluentd-")));
}
