//! The DaemonSet controller's loop: caches of DaemonSets, nodes, pods and
//! ControllerRevisions; a queue of DaemonSets to sync; [`super::plan::plan`] to decide;
//! kube-rs calls to act. Expectations (pods created or deleted but not yet seen by the
//! cache) hold a DaemonSet's next sync back, as in Kubernetes, so a lagging cache never
//! makes it create a pod twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;

use super::FailedPodBackoff;
use super::plan::{self, Action, Observed};
use crate::events::Recorder;
use crate::runtime::{Cache, Change, Informers, WorkQueue};

/// How long unmet expectations may hold a DaemonSet back (Kubernetes: 5 minutes).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(60);
/// Concurrent syncs of different DaemonSets.
const WORKERS: usize = 4;
/// Concurrent API calls within one batch of creates or deletes.
const BURST: usize = 64;
/// The most creates (or deletes) one pass may issue, however well earlier passes went.
const MAX_BURST: usize = 16_384;
/// After a pass, a DaemonSet rests this many times as long as its plan took before the
/// next pass (changes meanwhile fold into that one). A pass over 5,000 nodes costs
/// milliseconds and every pod status change asks for one; this keeps the controller
/// to a fraction of a core without delaying small clusters noticeably.
const REST_FACTOR: u32 = 2;
/// The longest rest.
const MAX_REST: Duration = Duration::from_millis(250);

type Key = ObjectRef<DaemonSet>;

#[derive(Default)]
struct Expectation {
    /// Pod names created and not yet in the cache.
    creates: HashSet<String>,
    /// Pods (name, uid) deleted and still in the cache without a deletionTimestamp.
    deletes: HashSet<(String, String)>,
    since: Option<Instant>,
}

struct Ctl {
    client: kube::Client,
    daemonsets: Cache<DaemonSet>,
    nodes: Cache<Node>,
    pods: Cache<Pod>,
    revisions: Cache<ControllerRevision>,
    expectations: Mutex<HashMap<Key, Expectation>>,
    /// Failed-pod back-off per (DaemonSet, node): next delay.
    backoff: Mutex<FailedPodBackoff>,
    /// Per DaemonSet, the creates and deletes the next pass may issue: Kubernetes'
    /// 250 at first, doubled after each pass that used all of it without a failure,
    /// back to 250 after a failure.
    bursts: Mutex<HashMap<Key, usize>>,
    /// DaemonSets whose last pass with creates or deletes had no failure: their creates
    /// skip slow start.
    trusted: Mutex<HashSet<Key>>,
    /// Per DaemonSet, how many passes in a row had a failed create or delete: the
    /// next retry waits [`retry_delay`] of it.
    failures: Mutex<HashMap<Key, u32>>,
    events: Recorder,
}

/// How long a DaemonSet waits before its next pass after `failures` passes in a row
/// with a failed create or delete: 1 s, doubling, at most 30 s. (Kubernetes' queue
/// backs off up to 1,000 s; a refusal the user fixes — a missing ServiceAccount, a
/// quota — is retried sooner here.)
fn retry_delay(failures: u32) -> Duration {
    const MAX: Duration = Duration::from_secs(30);
    let doublings = failures.saturating_sub(1).min(5);
    (Duration::from_secs(1) * (1u32 << doublings)).min(MAX)
}

fn controller_of(pod: &Pod) -> Option<(String, String)> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| (r.kind.clone(), r.name.clone()))
}

/// Runs the DaemonSet controller until the task is dropped.
pub async fn run(informers: Informers) {
    let client = informers.client().clone();
    let cfg = watcher::Config::default;
    let (daemonsets, ds_changes) = informers.all::<DaemonSet>(cfg());
    let (nodes, node_changes) = informers.all::<Node>(cfg());
    let (pods, pod_changes) = informers.all::<Pod>(cfg());
    let (revisions, rev_changes) = informers.all::<ControllerRevision>(cfg());
    let ctl = Arc::new(Ctl {
        client: client.clone(),
        daemonsets,
        nodes,
        pods,
        revisions,
        expectations: Mutex::default(),
        backoff: Mutex::new(FailedPodBackoff::default()),
        bursts: Mutex::default(),
        trusted: Mutex::default(),
        failures: Mutex::default(),
        events: Recorder::new(client, "daemonset-controller"),
    });
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();

    let all = {
        let (ctl, queue) = (ctl.clone(), queue.clone());
        move || {
            for ds in ctl.daemonsets.state() {
                queue.add(ObjectRef::from_obj(&*ds));
            }
        }
    };
    let feed_ds = {
        let queue = queue.clone();
        ds_changes.for_each(move |c| {
            if let Change::Applied(ds) | Change::Deleted(ds) = c {
                queue.add(ObjectRef::from_obj(&*ds));
            }
            futures::future::ready(())
        })
    };
    let feed_nodes = {
        let all = all.clone();
        node_changes.for_each(move |c| {
            if matches!(c, Change::Applied(_) | Change::Deleted(_) | Change::Synced) {
                all();
            }
            futures::future::ready(())
        })
    };
    let feed_pods = {
        let (ctl, queue) = (ctl.clone(), queue.clone());
        pod_changes.for_each(move |c| {
            match c {
                Change::Applied(p) | Change::Deleted(p) => ctl.pod_changed(&p, &queue),
                Change::Synced => {
                    for ds in ctl.daemonsets.state() {
                        queue.add(ObjectRef::from_obj(&*ds));
                    }
                }
            }
            futures::future::ready(())
        })
    };
    let feed_revs = {
        let queue = queue.clone();
        rev_changes.for_each(move |c| {
            if let Change::Applied(r) | Change::Deleted(r) = c {
                let ns = r.metadata.namespace.clone().unwrap_or_default();
                for o in r
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .filter(|o| o.kind == "DaemonSet")
                {
                    queue.add(ObjectRef::new(&o.name).within(&ns));
                }
            }
            futures::future::ready(())
        })
    };
    // Wait for the caches once, before the workers start. (kube-runtime's own store
    // readiness wakes only the last of several waiters; `Cache` wakes them all, but one
    // wait is all the workers need.)
    let ready = {
        let ctl = ctl.clone();
        async move {
            // Syncing before every cache has listed would see nodes without their pods
            // and create duplicates.
            let _ = tokio::join!(
                ctl.daemonsets.wait_until_ready(),
                ctl.nodes.wait_until_ready(),
                ctl.pods.wait_until_ready(),
                ctl.revisions.wait_until_ready()
            );
        }
    };
    let workers = futures::future::join_all((0..WORKERS).map(|_| {
        let (ctl, queue) = (ctl.clone(), queue.clone());
        async move {
            loop {
                let key = queue.next().await;
                let mut cost = Duration::ZERO;
                match ctl.sync(&key, &mut cost).await {
                    Ok(Some(after)) => queue.add_after(key.clone(), after),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(daemonset = %key, error = %e, "sync failed; retrying");
                        queue.add_after(key.clone(), Duration::from_secs(1));
                    }
                }
                let rest = (cost * REST_FACTOR).min(MAX_REST);
                if rest < Duration::from_millis(1) {
                    queue.done(&key);
                } else {
                    // The key stays busy while it rests: changes re-queue it once, after.
                    let queue = queue.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(rest).await;
                        queue.done(&key);
                    });
                }
            }
        }
    }));
    let workers = async move {
        ready.await;
        workers.await;
    };
    tokio::join!(feed_ds, feed_nodes, feed_pods, feed_revs, workers);
}

impl Ctl {
    fn expectations(&self) -> MutexGuard<'_, HashMap<Key, Expectation>> {
        self.expectations.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pod_changed(&self, pod: &Pod, queue: &WorkQueue<Key>) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        if let Some((kind, name)) = controller_of(pod) {
            if kind == "DaemonSet" {
                queue.add(ObjectRef::new(&name).within(&ns));
            }
            return;
        }
        // An orphan: every DaemonSet of the namespace whose selector matches may adopt it.
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        for ds in self.daemonsets.state() {
            if ds.metadata.namespace.as_deref() != Some(ns.as_str()) {
                continue;
            }
            let Some(spec) = ds.spec.as_ref() else {
                continue;
            };
            let matches = everynode_api::selector::Selector::from_label_selector(&spec.selector)
                .is_ok_and(|s| !s.is_empty() && s.matches(&labels));
            if matches {
                queue.add(ObjectRef::from_obj(&*ds));
            }
        }
    }

    /// True when every create and delete issued for `key` has shown up in the cache (or
    /// the wait has timed out).
    fn satisfied(&self, key: &Key) -> bool {
        let mut exps = self.expectations();
        let Some(exp) = exps.get_mut(key) else {
            return true;
        };
        let ns = key.namespace.clone().unwrap_or_default();
        exp.creates
            .retain(|name| self.pods.get(&ObjectRef::new(name).within(&ns)).is_none());
        let pods = &self.pods;
        exp.deletes.retain(|(name, uid)| {
            pods.get(&ObjectRef::new(name).within(&ns))
                .is_some_and(|p| {
                    p.metadata.uid.as_deref() == Some(uid)
                        && p.metadata.deletion_timestamp.is_none()
                })
        });
        let done = (exp.creates.is_empty() && exp.deletes.is_empty())
            || exp
                .since
                .is_some_and(|t| t.elapsed() > EXPECTATIONS_TIMEOUT);
        if done {
            exps.remove(key);
        }
        done
    }

    /// One pass for `key`; `cost` is set to the time spent deciding (not acting).
    async fn sync(&self, key: &Key, cost: &mut Duration) -> Result<Option<Duration>, kube::Error> {
        let Some(ds) = self.daemonsets.get(key) else {
            self.expectations().remove(key);
            lock(&self.bursts).remove(key);
            lock(&self.trusted).remove(key);
            lock(&self.failures).remove(key);
            return Ok(None);
        };
        let burst = lock(&self.bursts)
            .get(key)
            .copied()
            .unwrap_or(plan::BURST_REPLICAS);
        let trusted = lock(&self.trusted).contains(key);
        let decide_start = Instant::now();
        let satisfied = self.satisfied(key);
        let ns = key.namespace.clone().unwrap_or_default();
        let nodes = self.nodes.state();
        let in_ns = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            m.namespace.as_deref() == Some(ns.as_str())
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| in_ns(&p.metadata))
            .collect();
        let revisions: Vec<Arc<ControllerRevision>> = self
            .revisions
            .state()
            .into_iter()
            .filter(|r| in_ns(&r.metadata))
            .collect();
        let now = jiff::Timestamp::now();
        let plan = {
            let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
            plan::plan(&Observed {
                ds: &ds,
                nodes: &nodes,
                pods: &pods,
                revisions: &revisions,
                now,
                expectations_satisfied: satisfied,
                failed_pod_backoff: &backoff,
                // As in Kubernetes, the garbage collector force-deletes pods bound to
                // nodes that are gone.
                delete_pods_on_missing_nodes: false,
                burst,
            })
        };
        *cost = decide_start.elapsed();
        let acted = plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::CreatePods { .. } | Action::DeletePods { .. }));
        // Whether this pass used its whole burst (the next may do more).
        let used_burst = plan.actions.iter().any(|a| match a {
            Action::CreatePods { node_names, .. } => node_names.len() >= burst,
            Action::DeletePods { pods } => pods.len() >= burst,
            _ => false,
        });
        let ds_api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &ns);
        let pod_api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let rev_api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        let pp = PatchParams::default();
        let mut requeue = plan.requeue_after;
        let mut retry_soon = false;
        for action in plan.actions {
            match action {
                Action::CreateRevision(rev) => ignore_gone(
                    rev_api
                        .create(&PostParams::default(), &rev)
                        .await
                        .map(|_| ()),
                )?,
                Action::UpdateRevision { name, revision } => ignore_gone(
                    rev_api
                        .patch(&name, &pp, &Patch::Merge(json!({ "revision": revision })))
                        .await
                        .map(|_| ()),
                )?,
                Action::LabelRevision { name, hash } => {
                    let patch = json!({ "metadata": { "labels": { plan::CONTROLLER_REVISION_HASH_LABEL: hash } } });
                    ignore_gone(
                        rev_api
                            .patch(&name, &pp, &Patch::Merge(patch))
                            .await
                            .map(|_| ()),
                    )?
                }
                Action::DeleteRevision { name } => ignore_gone(
                    rev_api
                        .delete(&name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                )?,
                Action::AdoptRevision { name, uid } => {
                    let patch = json!({ "metadata": { "uid": uid, "ownerReferences": [plan::controller_ref(&ds)] } });
                    ignore_gone(
                        rev_api
                            .patch(&name, &pp, &Patch::Strategic(patch))
                            .await
                            .map(|_| ()),
                    )?
                }
                Action::ReleaseRevision { name, uid } => {
                    let patch = release_patch(&uid, ds.metadata.uid.as_deref().unwrap_or(""));
                    ignore_gone(
                        rev_api
                            .patch(&name, &pp, &Patch::Strategic(patch))
                            .await
                            .map(|_| ()),
                    )?
                }
                Action::AdoptPod { name, uid } => {
                    let patch = json!({ "metadata": { "uid": uid, "ownerReferences": [plan::controller_ref(&ds)] } });
                    ignore_gone(
                        pod_api
                            .patch(&name, &pp, &Patch::Strategic(patch))
                            .await
                            .map(|_| ()),
                    )?
                }
                Action::ReleasePod { name, uid } => {
                    let patch = release_patch(&uid, ds.metadata.uid.as_deref().unwrap_or(""));
                    ignore_gone(
                        pod_api
                            .patch(&name, &pp, &Patch::Strategic(patch))
                            .await
                            .map(|_| ()),
                    )?
                }
                Action::RelabelPod { name, uid, hash } => {
                    let patch = json!({ "metadata": { "uid": uid, "labels": { plan::CONTROLLER_REVISION_HASH_LABEL: hash } } });
                    ignore_gone(
                        pod_api
                            .patch(&name, &pp, &Patch::Merge(patch))
                            .await
                            .map(|_| ()),
                    )?
                }
                Action::AdvanceFailedPodBackoff { key: bkey } => {
                    self.backoff
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .next(&bkey, now);
                }
                Action::CreatePods {
                    node_names,
                    template,
                    hash,
                    template_generation,
                } => {
                    let ctx = CreateContext {
                        ds: &ds,
                        api: &pod_api,
                        template: &template,
                        hash: &hash,
                        generation: template_generation,
                    };
                    retry_soon |= self.create_pods(key, &ctx, &node_names, trusted).await;
                }
                Action::DeletePods { pods } => {
                    retry_soon |= self.delete_pods(key, &ds, &pod_api, &pods).await
                }
                Action::Event {
                    type_,
                    reason,
                    message,
                } => self.events.record(&*ds, type_, reason, &message),
            }
        }
        if let Some(status) = plan.status {
            // A 409 (another client wrote the DaemonSet since the cache's copy) is
            // left to the pass that write's watch event brings.
            let patch = plan::status_patch(&status, ds.metadata.resource_version.as_deref());
            ignore_gone(
                crate::write::patch(&ds_api, key.name.as_str(), true, &pp, &Patch::Merge(patch))
                    .await,
            )?;
        }
        {
            let mut bursts = lock(&self.bursts);
            let mut trusted = lock(&self.trusted);
            if retry_soon {
                bursts.remove(key);
                trusted.remove(key);
            } else {
                if acted {
                    trusted.insert(key.clone());
                }
                if used_burst {
                    bursts.insert(key.clone(), burst.saturating_mul(2).min(MAX_BURST));
                }
            }
        }
        let mut failures = lock(&self.failures);
        if retry_soon {
            let n = failures.entry(key.clone()).or_default();
            *n = n.saturating_add(1);
            let delay = retry_delay(*n);
            requeue = Some(requeue.map_or(delay, |r| r.min(delay)));
        } else {
            failures.remove(key);
        }
        Ok(requeue)
    }

    /// Creates pods in slow-start batches (1, 2, 4, ...), stopping at a failing batch.
    /// A DaemonSet whose last pass went through without a failure (`trusted`) skips the
    /// batches: its creates stream out [`BURST`] at a time, and none is issued after the
    /// first failure. Returns true when something failed (retry soon).
    async fn create_pods(
        &self,
        key: &Key,
        ctx: &CreateContext<'_>,
        nodes: &[String],
        trusted: bool,
    ) -> bool {
        self.expectations().entry(key.clone()).or_default().since = Some(Instant::now());
        let batches = if trusted {
            vec![nodes.len()]
        } else {
            plan::slow_start_batches(nodes.len())
        };
        let failed = std::sync::atomic::AtomicBool::new(false);
        let mut start = 0;
        for batch in batches {
            let chunk = &nodes[start.min(nodes.len())..(start + batch).min(nodes.len())];
            start += batch;
            futures::stream::iter(chunk.iter().cloned())
                .map(|node| {
                    let failed = &failed;
                    async move {
                        if failed.load(std::sync::atomic::Ordering::Relaxed) {
                            return None;
                        }
                        let pod = plan::pod_for_node(
                            ctx.ds,
                            ctx.template,
                            &node,
                            ctx.hash,
                            ctx.generation,
                        );
                        let r = crate::write::create(ctx.api, &PostParams::default(), &pod).await;
                        if r.is_err() {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        Some(r.map_err(|e| (node, e)))
                    }
                })
                .buffer_unordered(BURST)
                .for_each(|r| {
                    self.created(key, ctx.ds, r);
                    futures::future::ready(())
                })
                .await;
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                return true;
            }
            if start >= nodes.len() {
                break;
            }
        }
        false
    }

    /// Notes the outcome of one create (expectation and event).
    fn created(&self, key: &Key, ds: &DaemonSet, r: Option<Result<String, (String, kube::Error)>>) {
        match r {
            None => {}
            Some(Ok(name)) => {
                self.expectations()
                    .entry(key.clone())
                    .or_default()
                    .creates
                    .insert(name.clone());
                self.events.record(
                    ds,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                );
            }
            Some(Err((node, e))) => {
                tracing::debug!(%node, error = %e, "creating a daemon pod");
                let msg = match &e {
                    kube::Error::Api(s) => s.message.clone(),
                    other => other.to_string(),
                };
                self.events.record(
                    ds,
                    "Warning",
                    "FailedCreate",
                    &format!("Error creating: {msg}"),
                );
            }
        }
    }

    /// Deletes pods; returns true when a delete failed.
    async fn delete_pods(
        &self,
        key: &Key,
        ds: &DaemonSet,
        api: &Api<Pod>,
        pods: &[(String, String)],
    ) -> bool {
        self.expectations().entry(key.clone()).or_default().since = Some(Instant::now());
        let results: Vec<(String, String, Result<(), kube::Error>)> =
            futures::stream::iter(pods.iter().cloned())
                .map(|(name, uid)| async move {
                    let dp = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: Some(uid.clone()),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    let r = ignore_gone(api.delete(&name, &dp).await.map(|_| ()));
                    (name, uid, r)
                })
                .buffer_unordered(BURST)
                .collect()
                .await;
        let mut failed = false;
        for (name, uid, r) in results {
            match r {
                Ok(()) => {
                    self.expectations()
                        .entry(key.clone())
                        .or_default()
                        .deletes
                        .insert((name.clone(), uid));
                    self.events.record(
                        ds,
                        "Normal",
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name}"),
                    );
                }
                Err(e) => {
                    failed = true;
                    self.events.record(
                        ds,
                        "Warning",
                        "FailedDelete",
                        &format!("Error deleting: {e}"),
                    );
                }
            }
        }
        failed
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What every create of one `CreatePods` action shares.
struct CreateContext<'a> {
    ds: &'a DaemonSet,
    api: &'a Api<Pod>,
    template: &'a k8s_openapi::api::core::v1::PodTemplateSpec,
    hash: &'a str,
    generation: Option<i64>,
}

/// A strategic merge patch removing our owner reference (by uid), guarded by the
/// object's own uid.
fn release_patch(object_uid: &str, owner_uid: &str) -> serde_json::Value {
    json!({ "metadata": { "uid": object_uid, "ownerReferences": [{ "$patch": "delete", "uid": owner_uid }] } })
}

/// 404 (gone already) and 409 (changed meanwhile; the next sync sees it) are not errors here.
fn ignore_gone(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_passes_back_off_from_one_second_to_thirty() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(30));
    }
}
