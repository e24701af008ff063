//! The node lifecycle controller: notices nodes whose kubelet (agent) went silent, marks
//! them `Unknown`, taints them, and evicts the pods that may not stay (see [`plan`]).
//! It re-plans on every change of a node (debounced), on pod changes while some node
//! has a NoExecute taint (only then can a pod change call for an eviction), and at the
//! next deadline the plan names (a grace period or a toleration running out). Lease
//! renewals only push deadlines later, so they wake nothing: with 5,000 nodes they
//! come 500 times a second.

pub mod plan;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::Notify;

use everynode_api::scheduling::TAINT_EFFECT_NO_EXECUTE;

use crate::events::Recorder;
use crate::runtime::Informers;
use plan::{Action, KUBELET_CONDITIONS};

/// Kubernetes' default `--node-monitor-grace-period`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(40);

/// Runs the controller until the task is dropped.
pub async fn run(informers: Informers, grace: Duration) {
    let client = informers.client().clone();
    let (nodes, node_changes) = informers.all::<Node>(watcher::Config::default());
    let (leases, lease_changes) = informers.cache(
        Api::<Lease>::namespaced(client.clone(), "kube-node-lease"),
        watcher::Config::default(),
    );
    let (pods, pod_changes) = informers.all::<Pod>(watcher::Config::default());
    let changed = Arc::new(Notify::new());
    // Set by the worker: some node has a NoExecute taint, so pod changes matter.
    let pods_matter = Arc::new(AtomicBool::new(true));
    let (c1, c3) = (changed.clone(), changed.clone());
    let matter = pods_matter.clone();
    let feeds = async move {
        tokio::join!(
            node_changes.for_each(move |_| {
                c1.notify_one();
                futures::future::ready(())
            }),
            // Polled only to keep the cache current.
            lease_changes.for_each(|_| futures::future::ready(())),
            pod_changes.for_each(move |_| {
                if matter.load(Ordering::Relaxed) {
                    c3.notify_one();
                }
                futures::future::ready(())
            }),
        )
    };
    let events = Recorder::new(client.clone(), "node-controller");
    let worker = async {
        let _ = tokio::join!(
            nodes.wait_until_ready(),
            leases.wait_until_ready(),
            pods.wait_until_ready()
        );
        let mut wait = Duration::from_secs(5);
        loop {
            tokio::select! {
                _ = changed.notified() => tokio::time::sleep(Duration::from_millis(200)).await,
                _ = tokio::time::sleep(wait) => {}
            }
            let node_list = nodes.state();
            pods_matter.store(
                node_list.iter().any(|n| has_no_execute(n)),
                Ordering::Relaxed,
            );
            let renewals: HashMap<String, jiff::Timestamp> = leases
                .state()
                .iter()
                .filter_map(|l| {
                    Some((
                        l.metadata.name.clone()?,
                        l.spec.as_ref()?.renew_time.as_ref()?.0,
                    ))
                })
                .collect();
            let pod_list: Vec<Arc<Pod>> = pods
                .state()
                .into_iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
                .collect();
            let (actions, next) = plan::plan(
                &node_list,
                &renewals,
                &pod_list,
                jiff::Timestamp::now(),
                grace,
            );
            wait = next
                .unwrap_or(Duration::from_secs(5))
                .clamp(Duration::from_millis(200), Duration::from_secs(5));
            for action in actions {
                act(&client, &events, &node_list, action).await;
            }
        }
    };
    tokio::join!(feeds, worker);
}

/// The time now as the API writes it (`2026-11-25T07:30:00Z`).
fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn has_no_execute(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.effect == TAINT_EFFECT_NO_EXECUTE))
}

async fn act(client: &kube::Client, events: &Recorder, nodes: &[Arc<Node>], action: Action) {
    let node_api: Api<Node> = Api::all(client.clone());
    let find = |name: &str| {
        nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
    };
    let result = match action {
        Action::MarkUnknown { node } => {
            let now = now();
            let mut conditions: Vec<serde_json::Value> = find(&node)
                .and_then(|n| n.status.as_ref()?.conditions.clone())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect();
            for c in conditions.iter_mut() {
                if KUBELET_CONDITIONS.contains(&c["type"].as_str().unwrap_or("")) {
                    c["status"] = json!("Unknown");
                    c["reason"] = json!("NodeStatusUnknown");
                    c["message"] = json!("Kubelet stopped posting node status.");
                    c["lastTransitionTime"] = json!(now);
                }
            }
            if !conditions.iter().any(|c| c["type"] == "Ready") {
                conditions.push(json!({
                    "type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.", "lastHeartbeatTime": now, "lastTransitionTime": now,
                }));
            }
            if let Some(n) = find(&node) {
                events.record(
                    &**n,
                    "Normal",
                    "NodeNotReady",
                    &format!("Node {node} status is now: NodeNotReady"),
                );
            }
            let patch = json!({ "status": { "conditions": conditions } });
            node_api
                .patch_status(&node, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| ())
        }
        Action::SetTaints { node, taints } => {
            let rv = find(&node).and_then(|n| n.metadata.resource_version.clone());
            let patch =
                json!({ "metadata": { "resourceVersion": rv }, "spec": { "taints": taints } });
            node_api
                .patch(&node, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| ())
        }
        Action::MarkPodNotReady {
            namespace,
            name,
            uid,
            node,
        } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let now = now();
            // The uid makes the patch fail on a pod of that name created since.
            let patch = json!({
                "metadata": { "uid": uid },
                "status": { "conditions": [
                    { "type": "Ready", "status": "False", "lastTransitionTime": now },
                ] },
            });
            tracing::debug!(pod = %name, %namespace, %node, "marking a pod on a not-ready node not ready");
            let r = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await;
            if let Ok(pod) = &r {
                events.record(pod, "Warning", "NodeNotReady", "Node is not ready");
            }
            r.map(|_| ())
        }
        Action::Evict {
            namespace,
            name,
            uid,
            node,
        } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            tracing::info!(pod = %name, %namespace, %node, "evicting a pod from a NoExecute-tainted node");
            let r = api.delete(&name, &dp).await.map(|_| ());
            if r.is_ok()
                && let Ok(Some(pod)) = api.get_opt(&name).await
            {
                events.record(
                    &pod,
                    "Normal",
                    "TaintManagerEviction",
                    &format!("Marking for deletion Pod {namespace}/{name}"),
                );
            }
            r
        }
    };
    match result {
        Ok(()) => {}
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(error = %e, "node lifecycle action"),
    }
}
