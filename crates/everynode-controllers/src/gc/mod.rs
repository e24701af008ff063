//! The garbage collector: acts on owner references and the `orphan` /
//! `foregroundDeletion` finalizers (see [`plan`]). It watches a fixed set of kinds,
//! keeps a snapshot of their metadata, and re-plans (debounced) whenever one changes.

pub mod plan;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    Preconditions, PropagationPolicy,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::Notify;

use plan::{Action, Object, ObjectId, OwnerRef};

/// The kinds the collector watches: (group, version, kind, plural).
pub const WATCHED: &[(&str, &str, &str, &str)] = &[
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("apps", "v1", "ControllerRevision", "controllerrevisions"),
    ("", "v1", "Pod", "pods"),
    ("", "v1", "Node", "nodes"),
    ("coordination.k8s.io", "v1", "Lease", "leases"),
];

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn to_object(api_version: &str, kind: &str, o: &DynamicObject) -> Option<Object> {
    let m = &o.metadata;
    Some(Object {
        id: ObjectId {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: m.namespace.clone(),
            name: m.name.clone()?,
            uid: m.uid.clone()?,
        },
        owners: m
            .owner_references
            .iter()
            .flatten()
            .map(|r| OwnerRef {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                uid: r.uid.clone(),
                block_owner_deletion: r.block_owner_deletion.unwrap_or(false),
            })
            .collect(),
        deleting: m.deletion_timestamp.is_some(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
        node_name: (kind == "Pod")
            .then(|| {
                o.data
                    .pointer("/spec/nodeName")
                    .and_then(|v| v.as_str())
                    .map(String::from)
            })
            .flatten(),
    })
}

/// uid → object, for every watched kind.
type Snapshot = Arc<Mutex<BTreeMap<String, Arc<Object>>>>;

/// Runs the collector until the task is dropped.
/// How often the collector looks again without a change.
const RESYNC: Duration = Duration::from_secs(30);

pub async fn run(client: kube::Client) {
    let snapshot: Snapshot = Arc::default();
    let changed = Arc::new(Notify::new());
    let watched: HashSet<(String, String)> = WATCHED
        .iter()
        .map(|(g, _, k, _)| (g.to_string(), k.to_string()))
        .collect();
    let mut synced = Vec::new();
    let feeds = WATCHED.iter().map(|&(group, version, kind, plural)| {
        let (snapshot, changed, client) = (snapshot.clone(), changed.clone(), client.clone());
        let ready = Arc::new(Notify::new());
        synced.push(ready.clone());
        async move {
            let ar = resource(group, version, kind, plural);
            let api_version = ar.api_version.clone();
            let api: Api<DynamicObject> = Api::all_with(client, &ar);
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            // uids seen in the current relist, to drop objects deleted while disconnected.
            let mut relist: Option<HashSet<String>> = None;
            while let Some(event) = events.next().await {
                let mut snap = snapshot.lock().unwrap_or_else(|p| p.into_inner());
                match event {
                    Ok(watcher::Event::Init) => relist = Some(HashSet::new()),
                    Ok(watcher::Event::InitApply(o)) => {
                        if let Some(obj) = to_object(&api_version, kind, &o) {
                            if let Some(seen) = relist.as_mut() {
                                seen.insert(obj.id.uid.clone());
                            }
                            snap.insert(obj.id.uid.clone(), Arc::new(obj));
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(seen) = relist.take() {
                            snap.retain(|uid, o| {
                                o.id.kind != kind
                                    || o.id.api_version != api_version
                                    || seen.contains(uid)
                            });
                        }
                        ready.notify_one();
                        changed.notify_one();
                    }
                    Ok(watcher::Event::Apply(o)) => {
                        if let Some(obj) = to_object(&api_version, kind, &o) {
                            // Lease renewals and status updates leave what the collector
                            // judges (owners, deletion, finalizers, node) as it was: no pass.
                            let relevant = snap.get(&obj.id.uid).is_none_or(|o| **o != obj);
                            if relevant {
                                snap.insert(obj.id.uid.clone(), Arc::new(obj));
                                changed.notify_one();
                            }
                        }
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        if let Some(uid) = o.metadata.uid.as_deref() {
                            snap.remove(uid);
                            changed.notify_one();
                        }
                    }
                    Err(e) => tracing::warn!(%kind, error = %e, "garbage collector watch"),
                }
            }
        }
    });
    let feeds: Vec<_> = feeds.collect();
    let worker = async move {
        // Judging owners before every kind has listed would delete dependents whose
        // owners are simply not loaded yet.
        for ready in &synced {
            ready.notified().await;
        }
        loop {
            // A pass on every relevant change, and a periodic one that retries what
            // failed before (a delete refused by a busy server) without waiting for one.
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(RESYNC) => {}
            }
            // Debounce: let a burst of changes (a DaemonSet's pods going) settle into one pass.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let objects: Vec<Arc<Object>> = snapshot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            let started = std::time::Instant::now();
            let actions = plan::plan(&objects, &watched);
            drop(objects);
            // Rest in proportion to the pass's cost, so that a stream of changes at
            // scale (pods being bound on 5,000 nodes) costs a bounded share of a core.
            let rest = (started.elapsed() * 2).min(Duration::from_millis(500));
            if actions.is_empty() {
                tokio::time::sleep(rest).await;
                continue;
            }
            futures::stream::iter(actions)
                .for_each_concurrent(16, |a| {
                    let client = client.clone();
                    async move { act(client, a).await }
                })
                .await;
            tokio::time::sleep(rest).await;
        }
    };
    tokio::join!(futures::future::join_all(feeds), worker);
}

fn api_for(client: kube::Client, id: &ObjectId) -> Option<Api<DynamicObject>> {
    let &(group, version, kind, plural) = WATCHED.iter().find(|(g, v, k, _)| {
        *k == id.kind
            && (if g.is_empty() {
                v.to_string()
            } else {
                format!("{g}/{v}")
            }) == id.api_version
    })?;
    let ar = resource(group, version, kind, plural);
    Some(match &id.namespace {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    })
}

async fn act(client: kube::Client, action: Action) {
    let id = match &action {
        Action::Delete(id)
        | Action::DeleteForeground(id)
        | Action::ForceDelete(id)
        | Action::RemoveOwners(id, _)
        | Action::RemoveFinalizer(id, _) => id.clone(),
    };
    let Some(api) = api_for(client, &id) else {
        return;
    };
    let pre = Preconditions {
        uid: Some(id.uid.clone()),
        resource_version: None,
    };
    let result = match action {
        Action::ForceDelete(_) => {
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(pre),
                ..DeleteParams::default()
            };
            api.delete(&id.name, &dp).await.map(|_| ())
        }
        Action::Delete(_) | Action::DeleteForeground(_) => {
            let foreground = matches!(action, Action::DeleteForeground(_));
            let dp = DeleteParams {
                propagation_policy: Some(if foreground {
                    PropagationPolicy::Foreground
                } else {
                    PropagationPolicy::Background
                }),
                preconditions: Some(pre),
                ..DeleteParams::default()
            };
            api.delete(&id.name, &dp).await.map(|_| ())
        }
        Action::RemoveOwners(_, uids) => match api.get(&id.name).await {
            Ok(current) if current.metadata.uid.as_deref() == Some(id.uid.as_str()) => {
                let kept: Vec<_> = current
                    .metadata
                    .owner_references
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| !uids.contains(&r.uid))
                    .collect();
                // A JSON merge patch with the uid and resourceVersion guards the edit.
                let patch = json!({ "metadata": {
                    "uid": id.uid, "resourceVersion": current.metadata.resource_version, "ownerReferences": kept,
                } });
                api.patch(&id.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(|_| ())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
        Action::RemoveFinalizer(_, finalizer) => match api.get(&id.name).await {
            Ok(current) if current.metadata.uid.as_deref() == Some(id.uid.as_str()) => {
                let kept: Vec<String> = current
                    .metadata
                    .finalizers
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f != finalizer)
                    .collect();
                let patch = json!({ "metadata": {
                    "uid": id.uid, "resourceVersion": current.metadata.resource_version, "finalizers": kept,
                } });
                api.patch(&id.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(|_| ())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => {}
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => {
            tracing::warn!(kind = %id.kind, name = %id.name, error = %e, "garbage collector action")
        }
    }
}
