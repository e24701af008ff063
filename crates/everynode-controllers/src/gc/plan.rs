//! What the garbage collector does, decided from a snapshot of the objects it watches.
//!
//! * A dependent all of whose owners are gone (uid no longer present) is deleted in the
//!   background; references to gone owners are removed when other owners remain.
//! * An owner being deleted with the `orphan` finalizer: its references are removed from
//!   every dependent, then the finalizer (so the owner goes and the dependents stay).
//! * An owner being deleted with `foregroundDeletion`: its dependents are deleted; once
//!   none that blocks owner deletion is left, the finalizer is removed.
//!
//! Only references to kinds the collector watches are judged: an owner of a kind it
//! cannot see is assumed to exist, so nothing is deleted by mistake.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};

/// Finalizer Kubernetes uses for orphaning deletes.
pub const ORPHAN: &str = "orphan";
/// Finalizer Kubernetes uses for foreground deletes.
pub const FOREGROUND: &str = "foregroundDeletion";

/// Identifies one object the collector can act on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

/// An owner reference as the collector needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub block_owner_deletion: bool,
}

/// One watched object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub id: ObjectId,
    pub owners: Vec<OwnerRef>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
    /// For pods: the node they are bound to.
    pub node_name: Option<String>,
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Delete in the background (precondition: this uid).
    Delete(ObjectId),
    /// Delete a dependent of a foreground-deleted owner, itself in the foreground.
    DeleteForeground(ObjectId),
    /// Remove the owner references with these uids.
    RemoveOwners(ObjectId, Vec<String>),
    /// Remove a finalizer from an owner.
    RemoveFinalizer(ObjectId, &'static str),
    /// Delete at once (grace period 0): a pod bound to a node that no longer exists,
    /// which no kubelet will ever confirm (Kubernetes' pod GC does the same).
    ForceDelete(ObjectId),
}

/// The API group of an `apiVersion` (`""` for the core group).
pub fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// Decides every action for the snapshot. `watched_kinds` are (group, kind) pairs whose
/// objects are all in `objects`.
pub fn plan<O: Borrow<Object>>(
    objects: &[O],
    watched_kinds: &HashSet<(String, String)>,
) -> Vec<Action> {
    let objects: Vec<&Object> = objects.iter().map(Borrow::borrow).collect();
    let by_uid: HashMap<&str, &Object> = objects.iter().map(|o| (o.id.uid.as_str(), *o)).collect();
    let watched: HashSet<(&str, &str)> = watched_kinds
        .iter()
        .map(|(g, k)| (g.as_str(), k.as_str()))
        .collect();
    let judged = |r: &OwnerRef| watched.contains(&(group(&r.api_version), r.kind.as_str()));
    let mut actions = Vec::new();
    // Dependents of owners being deleted (the only ones whose dependents matter), by
    // owner uid.
    let deleting: HashSet<&str> = objects
        .iter()
        .filter(|o| o.deleting)
        .map(|o| o.id.uid.as_str())
        .collect();
    let mut dependents: HashMap<&str, Vec<&Object>> = HashMap::new();
    if !deleting.is_empty() {
        for &o in &objects {
            for r in &o.owners {
                if deleting.contains(r.uid.as_str()) {
                    dependents.entry(r.uid.as_str()).or_default().push(o);
                }
            }
        }
    }
    let nodes: HashSet<&str> = objects
        .iter()
        .filter(|o| o.id.kind == "Node")
        .map(|o| o.id.name.as_str())
        .collect();
    for &o in &objects {
        // 0. Pods on nodes that are gone.
        if o.id.kind == "Pod"
            && o.node_name
                .as_deref()
                .is_some_and(|n| !n.is_empty() && !nodes.contains(n))
        {
            actions.push(Action::ForceDelete(o.id.clone()));
            continue;
        }
        // 1. References to owners that are gone.
        let gone: Vec<&OwnerRef> = o
            .owners
            .iter()
            .filter(|r| !by_uid.contains_key(r.uid.as_str()) && judged(r))
            .collect();
        if !gone.is_empty() && !o.deleting {
            if gone.len() == o.owners.len() {
                actions.push(Action::Delete(o.id.clone()));
            } else {
                actions.push(Action::RemoveOwners(
                    o.id.clone(),
                    gone.iter().map(|r| r.uid.clone()).collect(),
                ));
            }
        }
        if !o.deleting {
            continue;
        }
        let deps = dependents
            .get(o.id.uid.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // 2. Orphaning owner: strip its references, then its finalizer.
        if o.finalizers.iter().any(|f| f == ORPHAN) {
            for d in deps {
                actions.push(Action::RemoveOwners(d.id.clone(), vec![o.id.uid.clone()]));
            }
            if deps.is_empty() {
                actions.push(Action::RemoveFinalizer(o.id.clone(), ORPHAN));
            }
        }
        // 3. Foreground owner: delete dependents; finish when none blocks.
        if o.finalizers.iter().any(|f| f == FOREGROUND) {
            let mut blocking = false;
            for d in deps {
                let blocks = d
                    .owners
                    .iter()
                    .any(|r| r.uid == o.id.uid && r.block_owner_deletion);
                blocking |= blocks;
                if !d.deleting {
                    actions.push(Action::DeleteForeground(d.id.clone()));
                }
            }
            if !blocking {
                actions.push(Action::RemoveFinalizer(o.id.clone(), FOREGROUND));
            }
        }
    }
    actions.sort();
    actions.dedup();
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str, uid: &str, owners: &[(&str, &str, bool)]) -> Object {
        let api_version = if kind == "DaemonSet" { "apps/v1" } else { "v1" };
        Object {
            id: ObjectId {
                api_version: api_version.into(),
                kind: kind.into(),
                namespace: Some("default".into()),
                name: name.into(),
                uid: uid.into(),
            },
            owners: owners
                .iter()
                .map(|(kind, uid, block)| OwnerRef {
                    api_version: if *kind == "DaemonSet" {
                        "apps/v1".into()
                    } else {
                        "v1".into()
                    },
                    kind: kind.to_string(),
                    name: format!("owner-{uid}"),
                    uid: uid.to_string(),
                    block_owner_deletion: *block,
                })
                .collect(),
            deleting: false,
            finalizers: vec![],
            node_name: None,
        }
    }

    fn watched() -> HashSet<(String, String)> {
        [("apps", "DaemonSet"), ("", "Pod")]
            .iter()
            .map(|(g, k)| (g.to_string(), k.to_string()))
            .collect()
    }

    #[test]
    fn pods_on_missing_nodes_are_force_deleted() {
        let mut node = obj("Node", "n1", "n1-uid", &[]);
        node.id.namespace = None;
        let mut here = obj("Pod", "p", "p1", &[]);
        here.node_name = Some("n1".into());
        let mut gone = obj("Pod", "q", "p2", &[]);
        gone.node_name = Some("n2".into());
        gone.deleting = true;
        let unbound = obj("Pod", "r", "p3", &[]);
        assert_eq!(
            plan(&[node, here, gone.clone(), unbound], &watched()),
            vec![Action::ForceDelete(gone.id)]
        );
    }

    #[test]
    fn dependents_of_a_deleted_owner_are_deleted() {
        let pod = obj("Pod", "p", "p1", &[("DaemonSet", "ds1", true)]);
        assert_eq!(
            plan(std::slice::from_ref(&pod), &watched()),
            vec![Action::Delete(pod.id)]
        );
    }

    #[test]
    fn live_owner_keeps_dependents_and_unknown_kinds_are_not_judged() {
        let ds = obj("DaemonSet", "d", "ds1", &[]);
        let pod = obj("Pod", "p", "p1", &[("DaemonSet", "ds1", true)]);
        let foreign = obj("Pod", "q", "p2", &[("ReplicaSet", "rs-gone", true)]);
        assert!(plan(&[ds, pod, foreign], &watched()).is_empty());
    }

    #[test]
    fn one_gone_owner_of_two_is_unlinked_not_deleted() {
        let ds = obj("DaemonSet", "d", "ds1", &[]);
        let pod = obj(
            "Pod",
            "p",
            "p1",
            &[("DaemonSet", "ds1", true), ("DaemonSet", "ds-gone", false)],
        );
        assert_eq!(
            plan(&[ds, pod.clone()], &watched()),
            vec![Action::RemoveOwners(pod.id, vec!["ds-gone".into()])]
        );
    }

    #[test]
    fn orphaning_strips_references_then_the_finalizer() {
        let mut ds = obj("DaemonSet", "d", "ds1", &[]);
        ds.deleting = true;
        ds.finalizers = vec![ORPHAN.into()];
        let pod = obj("Pod", "p", "p1", &[("DaemonSet", "ds1", true)]);
        assert_eq!(
            plan(&[ds.clone(), pod.clone()], &watched()),
            vec![Action::RemoveOwners(pod.id, vec!["ds1".into()])]
        );
        let unlinked = obj("Pod", "p", "p1", &[]);
        assert_eq!(
            plan(&[ds.clone(), unlinked], &watched()),
            vec![Action::RemoveFinalizer(ds.id, ORPHAN)]
        );
    }

    #[test]
    fn foreground_deletes_dependents_and_waits_for_blocking_ones() {
        let mut ds = obj("DaemonSet", "d", "ds1", &[]);
        ds.deleting = true;
        ds.finalizers = vec![FOREGROUND.into()];
        let pod = obj("Pod", "p", "p1", &[("DaemonSet", "ds1", true)]);
        assert_eq!(
            plan(&[ds.clone(), pod.clone()], &watched()),
            vec![Action::DeleteForeground(pod.id.clone())]
        );
        let mut going = pod.clone();
        going.deleting = true;
        assert!(
            plan(&[ds.clone(), going], &watched()).is_empty(),
            "waits while a blocking dependent exists"
        );
        assert_eq!(
            plan(&[ds.clone()], &watched()),
            vec![Action::RemoveFinalizer(ds.id, FOREGROUND)]
        );
    }
}
