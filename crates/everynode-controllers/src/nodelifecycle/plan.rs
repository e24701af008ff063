//! The node lifecycle decisions, from nodes, their Leases and the pods bound to them.
//!
//! * A node whose last heartbeat (Lease renewal, else Ready's `lastHeartbeatTime`, else
//!   its creation) is older than the grace period gets its conditions set to `Unknown`
//!   ("Kubelet stopped posting node status.").
//! * Ready `Unknown` → taints `node.kubernetes.io/unreachable` NoSchedule and NoExecute;
//!   Ready `False` → `node.kubernetes.io/not-ready` likewise; Ready `True` → neither.
//! * A pod on a node with NoExecute taints is evicted when it does not tolerate one of
//!   them, or when its `tolerationSeconds` since the taint was added have passed. Daemon
//!   pods tolerate unreachable/not-ready without a limit, so they stay.
//! * A pod on a node whose Ready is not True is marked not Ready (its `Ready` condition
//!   set to False): nobody vouches for it any more. Its node's agent sets it back when
//!   the node is heard from again.
//! * A cordoned node (`spec.unschedulable`) carries `node.kubernetes.io/unschedulable`
//!   NoSchedule, and loses it when uncordoned.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use everynode_api::scheduling::{
    TAINT_EFFECT_NO_EXECUTE, TAINT_EFFECT_NO_SCHEDULE, TAINT_NODE_NOT_READY,
    TAINT_NODE_UNREACHABLE, TAINT_NODE_UNSCHEDULABLE, is_pod_ready, toleration_tolerates_taint,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Conditions the controller sets to Unknown when a node goes silent.
pub const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Set the node's kubelet conditions to Unknown.
    MarkUnknown { node: String },
    /// Replace the node's taints with these (lifecycle taints added or removed).
    SetTaints { node: String, taints: Vec<Taint> },
    /// Set a pod's Ready condition to False: its node is not Ready.
    MarkPodNotReady {
        namespace: String,
        name: String,
        uid: String,
        node: String,
    },
    /// Delete a pod that may not stay on its NoExecute-tainted node.
    Evict {
        namespace: String,
        name: String,
        uid: String,
        node: String,
    },
}

fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

fn last_heartbeat(node: &Node, lease_renew: Option<Timestamp>) -> Option<Timestamp> {
    let ready_hb = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    [lease_renew, ready_hb, created].into_iter().flatten().max()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Decides every action at `now`; also returns when to look again (the next grace
/// expiry or toleration deadline), if any.
pub fn plan<N: Borrow<Node>, P: Borrow<Pod>>(
    nodes: &[N],
    leases: &HashMap<String, Timestamp>,
    pods: &[P],
    now: Timestamp,
    grace: Duration,
) -> (Vec<Action>, Option<Duration>) {
    let mut actions = Vec::new();
    let mut next: Option<Duration> = None;
    let mut soon = |d: Duration| next = Some(next.map_or(d, |n: Duration| n.min(d)));
    let mut tainted: HashMap<&str, Vec<Taint>> = HashMap::new();
    let mut unready: HashSet<&str> = HashSet::new();
    for node in nodes {
        let node: &Node = node.borrow();
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        let mut ready = ready_status(node).unwrap_or("Unknown").to_string();
        if let Some(hb) = last_heartbeat(node, leases.get(name).copied()) {
            let silent = now.as_second() - hb.as_second();
            if silent > secs(grace) {
                if ready != "Unknown"
                    || node
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_none()
                {
                    actions.push(Action::MarkUnknown {
                        node: name.to_string(),
                    });
                }
                ready = "Unknown".into();
            } else {
                soon(Duration::from_secs(
                    u64::try_from(secs(grace) - silent + 1).unwrap_or(1),
                ));
            }
        }
        if ready != "True" {
            unready.insert(name);
        }
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let cordoned = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        let want_key = match ready.as_str() {
            "True" => None,
            "False" => Some(TAINT_NODE_NOT_READY),
            _ => Some(TAINT_NODE_UNREACHABLE),
        };
        let lifecycle = |t: &Taint| {
            (t.key == TAINT_NODE_NOT_READY || t.key == TAINT_NODE_UNREACHABLE)
                && (t.effect == TAINT_EFFECT_NO_SCHEDULE || t.effect == TAINT_EFFECT_NO_EXECUTE)
        };
        let unschedulable =
            |t: &Taint| t.key == TAINT_NODE_UNSCHEDULABLE && t.effect == TAINT_EFFECT_NO_SCHEDULE;
        let mut desired: Vec<Taint> = current
            .iter()
            .filter(|t| !lifecycle(t) || Some(t.key.as_str()) == want_key)
            .filter(|t| cordoned || !unschedulable(t))
            .cloned()
            .collect();
        if cordoned && !desired.iter().any(unschedulable) {
            desired.push(Taint {
                key: TAINT_NODE_UNSCHEDULABLE.to_string(),
                effect: TAINT_EFFECT_NO_SCHEDULE.to_string(),
                value: None,
                time_added: None,
            });
        }
        if let Some(key) = want_key {
            for effect in [TAINT_EFFECT_NO_SCHEDULE, TAINT_EFFECT_NO_EXECUTE] {
                if !desired.iter().any(|t| t.key == key && t.effect == effect) {
                    desired.push(Taint {
                        key: key.to_string(),
                        effect: effect.to_string(),
                        value: None,
                        time_added: (effect == TAINT_EFFECT_NO_EXECUTE).then_some(Time(now)),
                    });
                }
            }
        }
        if desired != current {
            actions.push(Action::SetTaints {
                node: name.to_string(),
                taints: desired.clone(),
            });
        }
        let no_execute: Vec<Taint> = desired
            .into_iter()
            .filter(|t| t.effect == TAINT_EFFECT_NO_EXECUTE)
            .collect();
        if !no_execute.is_empty() {
            tainted.insert(name, no_execute);
        }
    }
    for pod in pods {
        let pod: &Pod = pod.borrow();
        let Some(spec) = pod.spec.as_ref() else {
            continue;
        };
        let Some(node) = spec.node_name.as_deref() else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if unready.contains(node) && is_pod_ready(pod) {
            actions.push(Action::MarkPodNotReady {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                node: node.to_string(),
            });
        }
        let Some(taints) = tainted.get(node) else {
            continue;
        };
        let tolerations = spec.tolerations.clone().unwrap_or_default();
        // The earliest moment any taint stops being tolerated; None = tolerated forever.
        let mut evict_at: Option<i64> = None;
        for taint in taints {
            let matching: Vec<_> = tolerations
                .iter()
                .filter(|t| toleration_tolerates_taint(t, taint))
                .collect();
            let deadline = if matching.is_empty() {
                Some(i64::MIN)
            } else if matching.iter().any(|t| t.toleration_seconds.is_none()) {
                None
            } else {
                let seconds = matching
                    .iter()
                    .filter_map(|t| t.toleration_seconds)
                    .min()
                    .unwrap_or(0)
                    .max(0);
                let added = taint
                    .time_added
                    .as_ref()
                    .map_or(now.as_second(), |t| t.0.as_second());
                Some(added.saturating_add(seconds))
            };
            if let Some(d) = deadline {
                evict_at = Some(evict_at.map_or(d, |e| e.min(d)));
            }
        }
        match evict_at {
            Some(at) if at <= now.as_second() => actions.push(Action::Evict {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                node: node.to_string(),
            }),
            Some(at) => soon(Duration::from_secs(
                u64::try_from(at - now.as_second()).unwrap_or(1),
            )),
            None => {}
        }
    }
    (actions, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn node(name: &str, ready: &str, heartbeat: i64, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": { "name": name, "creationTimestamp": at(0).to_string() },
            "spec": { "taints": taints },
            "status": { "conditions": [{ "type": "Ready", "status": ready, "lastHeartbeatTime": at(heartbeat).to_string() }] },
        }))
        .expect("node")
    }

    fn pod(name: &str, node: &str, tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": "default", "uid": format!("{name}-uid") },
            "spec": { "nodeName": node, "containers": [{ "name": "c", "image": "i" }], "tolerations": tolerations },
        }))
        .expect("pod")
    }

    const GRACE: Duration = Duration::from_secs(40);

    #[test]
    fn a_fresh_node_is_left_alone_and_rechecked_when_its_grace_ends() {
        let leases = HashMap::from([("n".to_string(), at(100))]);
        let (actions, next) = plan(
            &[node("n", "True", 0, json!([]))],
            &leases,
            &[] as &[Pod],
            at(110),
            GRACE,
        );
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(next, Some(Duration::from_secs(31)));
    }

    #[test]
    fn a_silent_node_turns_unknown_and_unreachable() {
        let (actions, _) = plan(
            &[node("n", "True", 0, json!([]))],
            &HashMap::new(),
            &[] as &[Pod],
            at(41),
            GRACE,
        );
        assert_eq!(actions[0], Action::MarkUnknown { node: "n".into() });
        let Action::SetTaints { taints, .. } = &actions[1] else {
            panic!("{actions:?}")
        };
        let keys: Vec<(&str, &str)> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (TAINT_NODE_UNREACHABLE, "NoSchedule"),
                (TAINT_NODE_UNREACHABLE, "NoExecute")
            ]
        );
    }

    #[test]
    fn pods_are_evicted_unless_they_tolerate_and_daemon_pods_stay() {
        let taints = json!([
            { "key": TAINT_NODE_UNREACHABLE, "effect": "NoSchedule" },
            { "key": TAINT_NODE_UNREACHABLE, "effect": "NoExecute", "timeAdded": at(50).to_string() },
        ]);
        let n = node("n", "Unknown", 0, taints);
        let plain = pod("plain", "n", json!([]));
        let daemon = pod(
            "daemon",
            "n",
            json!([{ "key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoExecute" }]),
        );
        let patient = pod(
            "patient",
            "n",
            json!([{ "key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 }]),
        );
        let (actions, next) = plan(
            std::slice::from_ref(&n),
            &HashMap::new(),
            &[plain, daemon, patient.clone()],
            at(60),
            GRACE,
        );
        let evicted: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Evict { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(evicted, ["plain"]);
        assert_eq!(next, Some(Duration::from_secs(290)));
        let (later, _) = plan(&[n], &HashMap::new(), &[patient], at(351), GRACE);
        assert!(
            later
                .iter()
                .any(|a| matches!(a, Action::Evict { name, .. } if name == "patient"))
        );
    }

    /// A pod with the Ready condition of the given status.
    fn with_ready(mut p: Pod, status: &str) -> Pod {
        p.status = serde_json::from_value(json!({ "conditions": [
            { "type": "Initialized", "status": "True" }, { "type": "Ready", "status": status } ] }))
        .expect("status");
        p
    }

    #[test]
    fn pods_on_a_node_that_is_not_ready_are_marked_not_ready() {
        let leases = HashMap::from([("up".to_string(), at(100))]);
        let tolerate_all = json!([{ "operator": "Exists" }]);
        let nodes = [
            node("up", "True", 100, json!([])),
            node("silent", "True", 0, json!([])),
            node("sick", "False", 100, json!([])),
        ];
        let mut leaving = with_ready(pod("leaving", "silent", tolerate_all.clone()), "True");
        leaving.metadata.deletion_timestamp = Some(Time(at(90)));
        let pods = [
            with_ready(pod("fine", "up", tolerate_all.clone()), "True"),
            with_ready(pod("lost", "silent", tolerate_all.clone()), "True"),
            with_ready(pod("ill", "sick", tolerate_all.clone()), "True"),
            with_ready(pod("marked", "silent", tolerate_all.clone()), "False"),
            leaving,
        ];
        let (actions, _) = plan(&nodes, &leases, &pods, at(110), GRACE);
        let marked: Vec<(&str, &str)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::MarkPodNotReady {
                    name, node, uid, ..
                } => {
                    assert_eq!(*uid, format!("{name}-uid"));
                    Some((name.as_str(), node.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(marked, [("lost", "silent"), ("ill", "sick")]);
        // Tolerating everything, none of them is evicted.
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Evict { .. })),
            "{actions:?}"
        );
    }

    #[test]
    fn a_cordoned_node_carries_the_unschedulable_taint_until_uncordoned() {
        let leases = HashMap::from([("n".to_string(), at(100))]);
        let mut cordoned = node(
            "n",
            "True",
            100,
            json!([{ "key": "dedicated", "effect": "NoSchedule" }]),
        );
        cordoned
            .spec
            .get_or_insert_with(Default::default)
            .unschedulable = Some(true);
        let (actions, _) = plan(
            std::slice::from_ref(&cordoned),
            &leases,
            &[] as &[Pod],
            at(110),
            GRACE,
        );
        let Some(Action::SetTaints { taints, .. }) = actions.first() else {
            panic!("{actions:?}")
        };
        let keys: Vec<(&str, &str, bool)> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str(), t.time_added.is_some()))
            .collect();
        assert_eq!(
            keys,
            [
                ("dedicated", "NoSchedule", false),
                (TAINT_NODE_UNSCHEDULABLE, "NoSchedule", false)
            ]
        );
        // Once it has the taint, nothing more; uncordoned, it loses it (and only it).
        cordoned.spec.get_or_insert_with(Default::default).taints = Some(taints.clone());
        let (again, _) = plan(
            std::slice::from_ref(&cordoned),
            &leases,
            &[] as &[Pod],
            at(111),
            GRACE,
        );
        assert!(again.is_empty(), "{again:?}");
        cordoned
            .spec
            .get_or_insert_with(Default::default)
            .unschedulable = None;
        let (uncordoned, _) = plan(&[cordoned], &leases, &[] as &[Pod], at(112), GRACE);
        let Some(Action::SetTaints { taints, .. }) = uncordoned.first() else {
            panic!("{uncordoned:?}")
        };
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "dedicated");
    }

    #[test]
    fn a_node_back_to_ready_loses_the_lifecycle_taints_only() {
        let taints = json!([
            { "key": "dedicated", "value": "infra", "effect": "NoSchedule" },
            { "key": TAINT_NODE_UNREACHABLE, "effect": "NoSchedule" },
            { "key": TAINT_NODE_UNREACHABLE, "effect": "NoExecute" },
        ]);
        let leases = HashMap::from([("n".to_string(), at(100))]);
        let (actions, _) = plan(
            &[node("n", "True", 100, taints)],
            &leases,
            &[] as &[Pod],
            at(101),
            GRACE,
        );
        let Some(Action::SetTaints { taints, .. }) = actions.first() else {
            panic!("{actions:?}")
        };
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "dedicated");
    }

    #[test]
    fn a_not_ready_node_gets_the_not_ready_taints() {
        let leases = HashMap::from([("n".to_string(), at(100))]);
        let (actions, _) = plan(
            &[node("n", "False", 100, json!([]))],
            &leases,
            &[] as &[Pod],
            at(101),
            GRACE,
        );
        let Some(Action::SetTaints { taints, .. }) = actions.first() else {
            panic!("{actions:?}")
        };
        assert!(taints.iter().all(|t| t.key == TAINT_NODE_NOT_READY));
        assert_eq!(taints.len(), 2);
    }
}
