//! The garbage collector: acts on owner references and the `orphan` /
//! `foregroundDeletion` finalizers (see [`plan`]). It watches a fixed set of kinds,
//! keeps a snapshot of their metadata, and re-plans (debounced) whenever one changes.

pub mod plan;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    Preconditions, PropagationPolicy,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::Notify;

use plan::{Action, Object, ObjectId, OwnerRef};

/// A kind the collector watches.
#[derive(Clone, Copy, Debug)]
pub struct WatchedKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// Whether its objects live in namespaces (an owner reference carries no namespace:
    /// a namespaced owner is in its dependent's namespace, a cluster-scoped one in none).
    pub namespaced: bool,
}

const fn watched(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> WatchedKind {
    WatchedKind {
        group,
        version: "v1",
        kind,
        plural,
        namespaced,
    }
}

/// The kinds the collector watches.
pub const WATCHED: &[WatchedKind] = &[
    watched("apps", "DaemonSet", "daemonsets", true),
    watched("apps", "ControllerRevision", "controllerrevisions", true),
    watched("", "Pod", "pods", true),
    watched("", "Node", "nodes", false),
    watched("coordination.k8s.io", "Lease", "leases", true),
];

impl WatchedKind {
    fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// The watched kind of this `apiVersion` and kind, if the collector watches it.
    fn of(api_version: &str, kind: &str) -> Option<&'static WatchedKind> {
        WATCHED.iter().find(|w| {
            w.kind == kind
                && match api_version.split_once('/') {
                    Some((g, v)) => w.group == g && w.version == v,
                    None => w.group.is_empty() && w.version == api_version,
                }
        })
    }
}

/// What the collector reads of a watched object: its metadata and, for pods, the node.
/// Decoding only these (serde skips the rest without building it) keeps the cost of a
/// watch event low where it matters most: Lease renewals and pod status updates, which
/// the collector sees and ignores by the thousand.
#[derive(Clone, Debug, serde::Deserialize)]
struct Watched {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<WatchedSpec>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
struct WatchedSpec {
    #[serde(default, rename = "nodeName")]
    node_name: Option<String>,
}

impl kube::Resource for Watched {
    type DynamicType = ApiResource;
    type Scope = kube::core::DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

fn to_object(api_version: &str, kind: &str, o: &Watched) -> Option<Object> {
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
                name: r.name.clone(),
                uid: r.uid.clone(),
                block_owner_deletion: r.block_owner_deletion.unwrap_or(false),
            })
            .collect(),
        deleting: m.deletion_timestamp.is_some(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
        node_name: (kind == "Pod")
            .then(|| o.spec.as_ref().and_then(|s| s.node_name.clone()))
            .flatten(),
    })
}

/// Every watched object by uid, and the names of the nodes among them.
#[derive(Default)]
struct Objects {
    by_uid: BTreeMap<String, Arc<Object>>,
    nodes: HashSet<String>,
}

impl Objects {
    fn insert(&mut self, obj: Object) {
        if obj.id.kind == "Node" {
            self.nodes.insert(obj.id.name.clone());
        }
        self.by_uid.insert(obj.id.uid.clone(), Arc::new(obj));
    }

    fn remove(&mut self, uid: &str) {
        if let Some(o) = self.by_uid.remove(uid)
            && o.id.kind == "Node"
        {
            self.nodes.remove(&o.id.name);
        }
    }

    /// Whether this object, just stored, may call for an action: it is being deleted,
    /// it names an owner the collector does not hold, or it is a pod bound to a node
    /// that is not there. Other changes (a new pod of an existing DaemonSet, a status
    /// update) leave every verdict of the last pass as it was, so they cost no pass.
    fn calls_for_a_pass(&self, obj: &Object) -> bool {
        obj.deleting
            || obj.owners.iter().any(|r| {
                !self.by_uid.contains_key(&r.uid)
                    && WATCHED
                        .iter()
                        .any(|w| w.kind == r.kind && w.group == plan::group(&r.api_version))
            })
            || (obj.id.kind == "Pod"
                && obj
                    .node_name
                    .as_deref()
                    .is_some_and(|n| !n.is_empty() && !self.nodes.contains(n)))
    }

    /// Whether `now` no longer names an owner that `before` named and that is being
    /// deleted: an orphaning owner whose finalizer may go once its last dependent has
    /// let go of it (the references were removed by the collector's previous pass).
    fn let_go_of_a_deleting_owner(&self, before: &Object, now: &Object) -> bool {
        before.owners.iter().any(|r| {
            !now.owners.iter().any(|n| n.uid == r.uid)
                && self.by_uid.get(&r.uid).is_some_and(|o| o.deleting)
        })
    }
}

type Snapshot = Arc<Mutex<Objects>>;

/// Runs the collector until the task is dropped.
/// How often the collector looks again without a change.
const RESYNC: Duration = Duration::from_secs(30);

pub async fn run(client: kube::Client) {
    let snapshot: Snapshot = Arc::default();
    let changed = Arc::new(Notify::new());
    let watched: HashSet<(String, String)> = WATCHED
        .iter()
        .map(|w| (w.group.to_string(), w.kind.to_string()))
        .collect();
    let mut synced = Vec::new();
    let feeds = WATCHED.iter().map(|w| {
        let (snapshot, changed, client) = (snapshot.clone(), changed.clone(), client.clone());
        let ready = Arc::new(Notify::new());
        synced.push(ready.clone());
        async move {
            let ar = w.resource();
            let api_version = ar.api_version.clone();
            let api: Api<Watched> = Api::all_with(client, &ar);
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
                        if let Some(obj) = to_object(&api_version, w.kind, &o) {
                            if let Some(seen) = relist.as_mut() {
                                seen.insert(obj.id.uid.clone());
                            }
                            snap.insert(obj);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(seen) = relist.take() {
                            let gone: Vec<String> = snap
                                .by_uid
                                .iter()
                                .filter(|(uid, o)| {
                                    o.id.kind == w.kind
                                        && o.id.api_version == api_version
                                        && !seen.contains(*uid)
                                })
                                .map(|(uid, _)| uid.clone())
                                .collect();
                            for uid in gone {
                                snap.remove(&uid);
                            }
                        }
                        ready.notify_one();
                        changed.notify_one();
                    }
                    Ok(watcher::Event::Apply(o)) => {
                        if let Some(obj) = to_object(&api_version, w.kind, &o) {
                            // Lease renewals and status updates leave what the collector
                            // judges (owners, deletion, finalizers, node) as it was.
                            let before = snap.by_uid.get(&obj.id.uid).cloned();
                            if before.as_deref() != Some(&obj) {
                                let pass = snap.calls_for_a_pass(&obj)
                                    || before
                                        .is_some_and(|b| snap.let_go_of_a_deleting_owner(&b, &obj));
                                snap.insert(obj);
                                if pass {
                                    changed.notify_one();
                                }
                            }
                        }
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        if let Some(uid) = o.metadata.uid.as_deref() {
                            snap.remove(uid);
                            changed.notify_one();
                        }
                    }
                    Err(e) if crate::runtime::server_gone(&e) => {
                        tracing::debug!(kind = %w.kind, error = %e, "garbage collector watch")
                    }
                    Err(e) => tracing::warn!(kind = %w.kind, error = %e, "garbage collector watch"),
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
                .by_uid
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
    let ar = WatchedKind::of(&id.api_version, &id.kind)?.resource();
    Some(match &id.namespace {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    })
}

/// Whether the object `id` (as the server has it now) still has what the action found
/// missing: for a force delete, the node the pod is bound to; for a delete, an owner.
/// An object that is gone has nothing to keep it.
async fn still_anchored(
    client: &kube::Client,
    api: &Api<DynamicObject>,
    id: &ObjectId,
    by_node: bool,
) -> Result<bool, kube::Error> {
    let Some(current) = api.get_opt(&id.name).await? else {
        return Ok(false);
    };
    if current.metadata.uid.as_deref() != Some(id.uid.as_str()) {
        return Ok(false);
    }
    if by_node {
        let Some(node) = current
            .data
            .pointer("/spec/nodeName")
            .and_then(|v| v.as_str())
        else {
            return Ok(false);
        };
        let nodes: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::erase::<k8s_openapi::api::core::v1::Node>(&()),
        );
        return Ok(!node.is_empty() && nodes.get_opt(node).await?.is_some());
    }
    for r in current.metadata.owner_references.iter().flatten() {
        let owner = ObjectId {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: match WatchedKind::of(&r.api_version, &r.kind) {
                Some(w) if !w.namespaced => None,
                _ => id.namespace.clone(),
            },
            name: r.name.clone(),
            uid: r.uid.clone(),
        };
        // Kinds the collector does not watch are assumed to exist, as in the plan.
        let Some(owners) = api_for(client.clone(), &owner) else {
            return Ok(true);
        };
        if owners
            .get_opt(&r.name)
            .await?
            .is_some_and(|o| o.metadata.uid.as_deref() == Some(r.uid.as_str()))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn act(client: kube::Client, action: Action) {
    let id = match &action {
        Action::Delete(id)
        | Action::DeleteForeground(id)
        | Action::ForceDelete(id)
        | Action::RemoveOwners(id, _)
        | Action::RemoveFinalizer(id, _) => id.clone(),
    };
    let Some(api) = api_for(client.clone(), &id) else {
        return;
    };
    let pre = Preconditions {
        uid: Some(id.uid.clone()),
        resource_version: None,
    };
    // The snapshot is fed by one watch per kind, so a new owner may not have reached it
    // yet when its dependent has: look again at the server before deleting for an owner
    // or a node that seems gone (Kubernetes' collector also verifies that an owner is
    // really absent).
    if matches!(action, Action::Delete(_) | Action::ForceDelete(_)) {
        let by_node = matches!(action, Action::ForceDelete(_));
        match still_anchored(&client, &api, &id, by_node).await {
            Ok(false) => {}
            Ok(true) => {
                tracing::debug!(kind = %id.kind, name = %id.name, "owner or node exists after all");
                return;
            }
            Err(e) => {
                tracing::warn!(kind = %id.kind, name = %id.name, error = %e, "garbage collector check");
                return;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_kinds_are_found_by_api_version_and_kind_with_their_scope() {
        let node = WatchedKind::of("v1", "Node").expect("nodes are watched");
        assert!(!node.namespaced);
        assert_eq!(node.resource().plural, "nodes");
        let ds = WatchedKind::of("apps/v1", "DaemonSet").expect("daemonsets are watched");
        assert!(ds.namespaced);
        assert_eq!(ds.resource().api_version, "apps/v1");
        assert!(WatchedKind::of("coordination.k8s.io/v1", "Lease").is_some_and(|w| w.namespaced));
        // The group and version must both match; unknown kinds are not watched.
        assert!(WatchedKind::of("apps/v1beta2", "DaemonSet").is_none());
        assert!(WatchedKind::of("v1", "DaemonSet").is_none());
        assert!(WatchedKind::of("apps/v1", "ReplicaSet").is_none());
        assert!(WatchedKind::of("", "Node").is_none());
    }

    fn object(kind: &str, name: &str, uid: &str, owner: Option<(&str, &str)>) -> Object {
        Object {
            id: ObjectId {
                api_version: if kind == "DaemonSet" { "apps/v1" } else { "v1" }.into(),
                kind: kind.into(),
                namespace: (kind != "Node").then(|| "default".into()),
                name: name.into(),
                uid: uid.into(),
            },
            owners: owner
                .map(|(kind, uid)| OwnerRef {
                    api_version: if kind == "DaemonSet" { "apps/v1" } else { "v1" }.into(),
                    kind: kind.into(),
                    name: format!("owner-{uid}"),
                    uid: uid.into(),
                    block_owner_deletion: true,
                })
                .into_iter()
                .collect(),
            deleting: false,
            finalizers: vec![],
            node_name: None,
        }
    }

    #[test]
    fn only_changes_that_may_need_an_action_call_for_a_pass() {
        let mut objects = Objects::default();
        objects.insert(object("DaemonSet", "ds", "ds-1", None));
        objects.insert(object("Node", "n1", "node-1", None));
        // A new pod of a DaemonSet the collector holds, then bound to a node it holds.
        let mut pod = object("Pod", "p", "pod-1", Some(("DaemonSet", "ds-1")));
        assert!(!objects.calls_for_a_pass(&pod));
        pod.node_name = Some("n1".into());
        assert!(!objects.calls_for_a_pass(&pod));
        // Bound to a node that is not there.
        pod.node_name = Some("n2".into());
        assert!(objects.calls_for_a_pass(&pod));
        pod.node_name = Some("n1".into());
        // Owned by something the collector does not hold (gone, or not seen yet).
        let stray = object("Pod", "q", "pod-2", Some(("DaemonSet", "ds-0")));
        assert!(objects.calls_for_a_pass(&stray));
        // ... unless it is of a kind the collector does not watch.
        let foreign = object("Pod", "r", "pod-3", Some(("Job", "job-1")));
        assert!(!objects.calls_for_a_pass(&foreign));
        // Being deleted.
        pod.deleting = true;
        assert!(objects.calls_for_a_pass(&pod));
        // Removing a node forgets its name.
        objects.remove("node-1");
        pod.deleting = false;
        assert!(objects.calls_for_a_pass(&pod));
    }

    /// An orphaning delete takes two passes: the first removes the references, the
    /// second the owner's finalizer. The dependents' updates from the first must call
    /// for the second (it used to wait for the 30 s resync).
    #[test]
    fn a_dependent_letting_go_of_a_deleting_owner_calls_for_a_pass() {
        let mut objects = Objects::default();
        let mut ds = object("DaemonSet", "ds", "ds-1", None);
        objects.insert(ds.clone());
        let owned = object("Pod", "p", "pod-1", Some(("DaemonSet", "ds-1")));
        let released = object("Pod", "p", "pod-1", None);
        // Not while the owner is alive (a pod released by its DaemonSet stays alone).
        assert!(!objects.let_go_of_a_deleting_owner(&owned, &released));
        ds.deleting = true;
        ds.finalizers = vec![plan::ORPHAN.into()];
        objects.insert(ds);
        assert!(objects.let_go_of_a_deleting_owner(&owned, &released));
        assert!(
            !objects.calls_for_a_pass(&released),
            "only the release tells"
        );
        // Other changes of a dependent of a deleting owner do not.
        let mut relabelled = owned.clone();
        relabelled.finalizers = vec!["example.com/x".into()];
        assert!(!objects.let_go_of_a_deleting_owner(&owned, &relabelled));
    }
}
