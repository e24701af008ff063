//! The scheduler: binds pending pods to nodes (`pods/binding`), or records why it cannot
//! (`PodScheduled=False`, reason `Unschedulable`, and a `FailedScheduling` event).
//!
//! [`plan`] decides; this loop keeps the caches, remembers pods it has bound but not yet
//! seen bound (so two pods are not both given the last free memory of a node), and
//! retries unschedulable pods when nodes or pods change.

pub mod plan;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod, PodSpec};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;

use crate::events::Recorder;
use crate::runtime::{Cache, Change, Informers, WorkQueue};
use plan::{Decision, NodeUsage};

/// Pods being placed (and bound) at once.
const BINDERS: usize = 64;

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
pub async fn run(informers: Informers) {
    let client = informers.client().clone();
    let (nodes, node_changes) = informers.all::<Node>(watcher::Config::default());
    let (pods, pod_changes) = informers.all::<Pod>(watcher::Config::default());
    let queue: Arc<WorkQueue<ObjectRef<Pod>>> = WorkQueue::new();
    let sched = Arc::new(Scheduler {
        client: client.clone(),
        nodes,
        pods,
        node_names: Mutex::default(),
        usage: Mutex::default(),
        waiting: Mutex::new(HashMap::new()),
        events: Recorder::new(client, "default-scheduler"),
    });

    let feed_nodes = {
        let (sched, queue) = (sched.clone(), queue.clone());
        node_changes.for_each(move |change| {
            {
                let mut names = lock(&sched.node_names);
                match &change {
                    Change::Applied(n) => {
                        names.insert(n.metadata.name.clone().unwrap_or_default());
                    }
                    Change::Deleted(n) => {
                        names.remove(n.metadata.name.as_deref().unwrap_or(""));
                    }
                    Change::Synced => {
                        *names = sched
                            .nodes
                            .state()
                            .iter()
                            .filter_map(|n| n.metadata.name.clone())
                            .collect();
                    }
                }
            }
            // A node that came or changed may have room for the pods that are waiting.
            sched.retry_waiting(&queue);
            futures::future::ready(())
        })
    };
    let feed_pods = {
        let (sched, queue) = (sched.clone(), queue.clone());
        pod_changes.for_each(move |change| {
            match change {
                Change::Applied(p) => {
                    let freed = sched.account(&p);
                    if wants_us(&p) {
                        queue.add(ObjectRef::from_obj(&*p));
                    } else {
                        lock(&sched.waiting).remove(p.metadata.uid.as_deref().unwrap_or(""));
                    }
                    if freed {
                        sched.retry_waiting(&queue);
                    }
                }
                Change::Deleted(p) => {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    lock(&sched.waiting).remove(&uid);
                    if sched.unaccount(&uid) {
                        // A pod that went away freed room.
                        sched.retry_waiting(&queue);
                    }
                }
                Change::Synced => {
                    sched.recount();
                    for p in sched.pods.state() {
                        if wants_us(&p) {
                            queue.add(ObjectRef::from_obj(&*p));
                        }
                    }
                }
            }
            futures::future::ready(())
        })
    };
    // Deciding is quick; binding waits for a durable write. Like kube-scheduler, which
    // binds asynchronously, keep many bindings in flight.
    // Wait for the caches once, before the workers start. (kube-runtime's own store
    // readiness wakes only the last of several waiters; `Cache` wakes them all, but one
    // wait is all the workers need.)
    let ready = {
        let sched = sched.clone();
        async move {
            // Placing pods before both caches have listed would ignore what nodes hold.
            let _ = tokio::join!(
                sched.nodes.wait_until_ready(),
                sched.pods.wait_until_ready()
            );
        }
    };
    let workers = futures::future::join_all((0..BINDERS).map(|_| {
        let (sched, queue) = (sched.clone(), queue.clone());
        async move {
            loop {
                let key = queue.next().await;
                if let Some(retry) = sched.schedule_one(&key).await {
                    queue.add_after(key.clone(), retry);
                }
                queue.done(&key);
            }
        }
    }));
    let workers = async move {
        ready.await;
        workers.await;
    };
    tokio::join!(feed_nodes, feed_pods, workers);
}

/// Counts a pod on the node it is about to be bound to, so the next pod sees its
/// requests at once.
fn assume(usage: &mut Usage, decision: &Decision, uid: &str, spec: &PodSpec) {
    if let Decision::Bind(node) = decision {
        usage.add(uid.to_string(), node.clone(), spec.clone());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What every node holds, kept up to date from pod events (never recomputed per pod).
#[derive(Default)]
struct Usage {
    by_node: HashMap<String, NodeUsage>,
    /// uid → (node, spec) of every pod counted, bound or assumed.
    counted: HashMap<String, (String, PodSpec)>,
}

impl Usage {
    fn add(&mut self, uid: String, node: String, spec: PodSpec) {
        self.remove(&uid);
        self.by_node.entry(node.clone()).or_default().add(&spec);
        self.counted.insert(uid, (node, spec));
    }

    fn remove(&mut self, uid: &str) -> bool {
        let Some((node, spec)) = self.counted.remove(uid) else {
            return false;
        };
        if let Some(u) = self.by_node.get_mut(&node) {
            u.remove(&spec);
        }
        true
    }
}

struct Scheduler {
    client: kube::Client,
    nodes: Cache<Node>,
    pods: Cache<Pod>,
    node_names: Mutex<HashSet<String>>,
    usage: Mutex<Usage>,
    /// Pods that did not fit, with the last reason reported (each new reason is
    /// reported once): uid → (pod, message).
    waiting: Mutex<HashMap<String, (ObjectRef<Pod>, String)>>,
    events: Recorder,
}

impl Scheduler {
    /// Counts a bound, unfinished pod (or stops counting a finished one); true when this
    /// freed room on a node.
    fn account(&self, pod: &Pod) -> bool {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let mut usage = lock(&self.usage);
        match (bound, is_terminal(pod)) {
            (Some(node), false) => {
                if usage.counted.get(&uid).is_none_or(|(n, _)| *n != node) {
                    usage.add(uid, node, pod.spec.clone().unwrap_or_default());
                }
                false
            }
            (Some(_), true) => usage.remove(&uid),
            (None, _) => false,
        }
    }

    fn unaccount(&self, uid: &str) -> bool {
        lock(&self.usage).remove(uid)
    }

    /// Rebuilds the counts from the cache (after a relist).
    fn recount(&self) {
        let mut fresh = Usage::default();
        for p in self.pods.state() {
            let Some(spec) = p.spec.as_ref() else {
                continue;
            };
            if let Some(node) = spec.node_name.clone().filter(|n| !n.is_empty())
                && !is_terminal(&p)
            {
                fresh.add(
                    p.metadata.uid.clone().unwrap_or_default(),
                    node,
                    spec.clone(),
                );
            }
        }
        *lock(&self.usage) = fresh;
    }

    fn retry_waiting(&self, queue: &WorkQueue<ObjectRef<Pod>>) {
        let waiting: Vec<ObjectRef<Pod>> = lock(&self.waiting)
            .values()
            .map(|(r, _)| r.clone())
            .collect();
        for r in waiting {
            queue.add(r);
        }
    }

    /// Decides where `pod` goes and, when it fits somewhere, assumes it there at once
    /// (under the same lock, so concurrent placements never share the last room).
    fn decide(&self, pod: &Pod, spec: &PodSpec, uid: &str) -> Decision {
        let total = lock(&self.node_names).len();
        match plan::pinned_nodes(spec) {
            Some(names) => {
                let candidates: Vec<Arc<Node>> = names
                    .iter()
                    .filter_map(|n| self.nodes.get(&ObjectRef::new(n)))
                    .collect();
                let refs: Vec<&Node> = candidates.iter().map(|n| n.as_ref()).collect();
                let mut usage = lock(&self.usage);
                let d = plan::schedule_among(pod, &refs, total.max(refs.len()), &usage.by_node);
                assume(&mut usage, &d, uid, spec);
                d
            }
            None => {
                let nodes = self.nodes.state();
                let refs: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
                let mut usage = lock(&self.usage);
                let d = plan::schedule(pod, &refs, &usage.by_node);
                assume(&mut usage, &d, uid, spec);
                d
            }
        }
    }

    /// Tries to place one pod; returns a retry delay when it should be tried again later.
    async fn schedule_one(&self, key: &ObjectRef<Pod>) -> Option<Duration> {
        let pod = self.pods.get(key)?;
        if !wants_us(&pod) {
            return None;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if lock(&self.usage).counted.contains_key(&uid) {
            // Bound by us already; the cache has not caught up.
            return None;
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let decision = self.decide(&pod, &spec, &uid);
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match decision {
            Decision::Bind(node) => {
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
                let result = crate::write::create_subresource(
                    &api,
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await;
                match result {
                    Ok(_) => {
                        lock(&self.waiting).remove(&uid);
                        let msg = format!("Successfully assigned {ns}/{name} to {node}");
                        self.events.pod(&pod, "Normal", "Scheduled", &msg);
                        None
                    }
                    Err(e) => {
                        lock(&self.usage).remove(&uid);
                        tracing::debug!(pod = %name, error = %e, "binding failed");
                        Some(Duration::from_secs(1))
                    }
                }
            }
            Decision::Unschedulable(message) => {
                let changed = lock(&self.waiting)
                    .insert(uid, (key.clone(), message.clone()))
                    .is_none_or(|(_, previous)| previous != message);
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
                        .pod(&pod, "Warning", "FailedScheduling", &message);
                }
                // Node and pod changes retry it; this is the slow safety net.
                Some(Duration::from_secs(30))
            }
        }
    }
}
