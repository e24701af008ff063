//! The scheduler: binds pending pods to nodes (`pods/binding`), or records why it cannot
//! (`PodScheduled=False`, reason `Unschedulable`, and a `FailedScheduling` event).
//!
//! [`plan`] decides; this loop keeps the caches, remembers pods it has bound but not yet
//! seen bound (so two pods are not both given the last free memory of a node), and
//! retries unschedulable pods when nodes or pods change.

pub mod plan;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod, PodSpec};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;

use crate::events::Recorder;
use crate::runtime::{Change, WorkQueue, cache};
use plan::{Decision, NodeUsage};

/// The scheduler name pods ask for by default.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

fn wants_us(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.node_name.as_deref().is_none_or(str::is_empty)
        && spec
            .scheduler_name
            .as_deref()
            .is_none_or(|s| s == DEFAULT_SCHEDULER)
        && pod.metadata.deletion_timestamp.is_none()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Runs the scheduler until the task is dropped.
pub async fn run(client: kube::Client) {
    let (nodes, node_changes) = cache(Api::<Node>::all(client.clone()), watcher::Config::default());
    let (pods, pod_changes) = cache(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let queue: Arc<WorkQueue<ObjectRef<Pod>>> = WorkQueue::new();
    let sched = Arc::new(Scheduler {
        client: client.clone(),
        nodes,
        pods,
        assumed: Mutex::new(HashMap::new()),
        last_message: Mutex::new(HashMap::new()),
        events: Recorder::new(client, "default-scheduler"),
    });

    let feed_nodes = {
        let (sched, queue) = (sched.clone(), queue.clone());
        node_changes.for_each(move |change| {
            // Any node change may make room: retry every pending pod.
            if !matches!(
                change,
                Change::Applied(_) | Change::Deleted(_) | Change::Synced
            ) {
                return futures::future::ready(());
            }
            for p in sched.pods.state() {
                if wants_us(&p) {
                    queue.add(ObjectRef::from_obj(&*p));
                }
            }
            futures::future::ready(())
        })
    };
    let feed_pods = {
        let (sched, queue) = (sched.clone(), queue.clone());
        pod_changes.for_each(move |change| {
            match change {
                Change::Applied(p) if wants_us(&p) => queue.add(ObjectRef::from_obj(&*p)),
                Change::Applied(p) => {
                    // Bound (or finished): it is in the cache now, so it no longer needs assuming.
                    sched.forget_assumed(&p);
                    if is_terminal(&p) {
                        sched.retry_pending(&queue);
                    }
                }
                Change::Deleted(p) => {
                    sched.forget_assumed(&p);
                    // A pod that went away freed room.
                    sched.retry_pending(&queue);
                }
                Change::Synced => sched.retry_pending(&queue),
            }
            futures::future::ready(())
        })
    };
    let workers = futures::future::join_all((0..4).map(|_| {
        let (sched, queue) = (sched.clone(), queue.clone());
        async move {
            // Placing pods before both caches have listed would ignore what nodes hold.
            let _ = tokio::join!(
                sched.nodes.wait_until_ready(),
                sched.pods.wait_until_ready()
            );
            loop {
                let key = queue.next().await;
                if let Some(retry) = sched.schedule_one(&key).await {
                    queue.add_after(key.clone(), retry);
                }
                queue.done(&key);
            }
        }
    }));
    tokio::join!(feed_nodes, feed_pods, workers);
}

struct Scheduler {
    client: kube::Client,
    nodes: Store<Node>,
    pods: Store<Pod>,
    /// Pods bound by us that the cache has not shown bound yet: uid → (node, spec).
    assumed: Mutex<HashMap<String, (String, PodSpec)>>,
    /// The last unschedulable message per pod uid, to report each new reason once.
    last_message: Mutex<HashMap<String, String>>,
    events: Recorder,
}

impl Scheduler {
    fn forget_assumed(&self, pod: &Pod) {
        if let Some(uid) = pod.metadata.uid.as_deref() {
            self.assumed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(uid);
            if pod.metadata.deletion_timestamp.is_some() || !wants_us(pod) {
                self.last_message
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(uid);
            }
        }
    }

    fn retry_pending(&self, queue: &WorkQueue<ObjectRef<Pod>>) {
        let waiting: Vec<String> = self
            .last_message
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        if waiting.is_empty() {
            return;
        }
        for p in self.pods.state() {
            if wants_us(&p) && p.metadata.uid.as_ref().is_some_and(|u| waiting.contains(u)) {
                queue.add(ObjectRef::from_obj(&*p));
            }
        }
    }

    fn usage(&self) -> HashMap<String, NodeUsage> {
        let mut usage: HashMap<String, NodeUsage> = HashMap::new();
        let assumed = self
            .assumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for p in self.pods.state() {
            let Some(spec) = p.spec.as_ref() else {
                continue;
            };
            let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            if is_terminal(&p) {
                continue;
            }
            if p.metadata
                .uid
                .as_ref()
                .is_some_and(|u| assumed.contains_key(u))
            {
                continue;
            }
            usage.entry(node.to_string()).or_default().add(spec);
        }
        for (node, spec) in assumed.values() {
            usage.entry(node.clone()).or_default().add(spec);
        }
        usage
    }

    /// Tries to place one pod; returns a retry delay when it should be tried again later.
    async fn schedule_one(&self, key: &ObjectRef<Pod>) -> Option<Duration> {
        let pod = self.pods.get(key)?;
        if !wants_us(&pod) {
            return None;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self
            .assumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&uid)
        {
            return None;
        }
        let nodes = self.nodes.state();
        let refs: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
        let decision = plan::schedule(&pod, &refs, &self.usage());
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match decision {
            Decision::Bind(node) => {
                let spec = pod.spec.clone().unwrap_or_default();
                self.assumed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(uid.clone(), (node.clone(), spec));
                let binding = Binding {
                    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(ns.clone()),
                        uid: Some(uid.clone()),
                        ..Default::default()
                    },
                    target: ObjectReference {
                        kind: Some("Node".into()),
                        name: Some(node.clone()),
                        api_version: Some("v1".into()),
                        ..Default::default()
                    },
                };
                let result: Result<serde_json::Value, kube::Error> = api
                    .create_subresource("binding", &name, &PostParams::default(), &binding)
                    .await;
                match result {
                    Ok(_) => {
                        self.last_message
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&uid);
                        self.events
                            .pod(
                                &pod,
                                "Normal",
                                "Scheduled",
                                &format!("Successfully assigned {ns}/{name} to {node}"),
                            )
                            .await;
                        None
                    }
                    Err(e) => {
                        self.assumed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&uid);
                        tracing::debug!(pod = %name, error = %e, "binding failed");
                        Some(Duration::from_secs(1))
                    }
                }
            }
            Decision::Unschedulable(message) => {
                let changed = self
                    .last_message
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(uid, message.clone())
                    .as_ref()
                    != Some(&message);
                if changed {
                    let now = jiff::Timestamp::now()
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string();
                    let status = json!({ "status": { "conditions": [{
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": message, "lastProbeTime": null, "lastTransitionTime": now,
                    }] } });
                    if let Err(e) = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(status))
                        .await
                    {
                        tracing::debug!(pod = %name, error = %e, "recording PodScheduled=False");
                    }
                    self.events
                        .pod(&pod, "Warning", "FailedScheduling", &message)
                        .await;
                }
                // Node and pod changes retry it; this is the slow safety net.
                Some(Duration::from_secs(30))
            }
        }
    }
}
