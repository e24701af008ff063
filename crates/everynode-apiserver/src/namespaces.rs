//! Namespace deletion: a terminating namespace has everything in it deleted, then its
//! `kubernetes` finalizer removed, which removes the namespace (kube-controller-manager's
//! namespace controller, run inside the API server because it touches every resource).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::ServerState;
use crate::registry::{DeleteOptions, Part, WriteOptions, name_of};
use crate::resources::{self, RESOURCES, Strategy};

/// Deletes the contents of namespace `ns`, then the namespace itself. Runs until done
/// or the server shuts down.
pub fn spawn_finalizer(st: Arc<ServerState>, ns: String) {
    tokio::spawn(async move {
        let mut shutdown = st.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            match finalize_once(&st, &ns).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(namespace = %ns, error = %e.message, "namespace cleanup"),
            }
            // Pods on live nodes terminate gracefully; look again shortly.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// One pass: delete what is left; when nothing is, finish the namespace. Ok(true) = done.
async fn finalize_once(st: &ServerState, ns: &str) -> Result<bool, crate::error::ApiError> {
    let reg = &st.registry;
    let nsres = resources::namespaces();
    let Some(_) = reg.store.get(&nsres.key(None, ns)) else {
        return Ok(true);
    };
    let nodes = resources::lookup("", "v1", "nodes");
    let mut left = Remaining::default();
    for res in RESOURCES
        .iter()
        .filter(|r| r.namespaced && r.strategy != Strategy::EventV1)
    {
        let page = reg
            .store
            .list(&res.prefix(Some(ns)), None, None, None)
            .map_err(|e| crate::error::ApiError::internal(e.to_string()))?;
        for kv in &page.items {
            let obj = crate::registry::decode(res, kv)?;
            if obj
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
            {
                // Already terminating; a pod whose node is gone will never be confirmed
                // by a kubelet, so it is removed here (what pod GC does).
                let gone = if res.strategy == Strategy::Pod && !node_exists(st, nodes, &obj) {
                    let opts = DeleteOptions {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    };
                    reg.delete(res, Some(ns), name_of(&obj), &opts)
                        .await
                        .is_ok_and(|d| d.gone)
                } else {
                    false
                };
                if !gone {
                    left.add(res, &obj);
                }
                continue;
            }
            let mut opts = DeleteOptions::default();
            if res.strategy == Strategy::Pod && !node_exists(st, nodes, &obj) {
                opts.grace_period_seconds = Some(0);
            }
            match reg.delete(res, Some(ns), name_of(&obj), &opts).await {
                Ok(d) if d.gone => {}
                Ok(d) => left.add(res, &d.object),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    write_conditions(st, ns, &left).await;
    if !left.resources.is_empty() {
        return Ok(false);
    }
    // Empty: drop the `kubernetes` finalizer, which completes the deletion.
    match reg
        .update(
            nsres,
            None,
            ns,
            Part::System,
            &WriteOptions::default(),
            |old| {
                let mut new = old.clone();
                new["spec"]["finalizers"] = Value::Array(vec![]);
                Ok(new)
            },
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code == 404 => Ok(true),
        Err(e) => Err(e),
    }
}

/// What a pass left in a terminating namespace: instances per resource
/// (`configmaps.`, `leases.coordination.k8s.io`) and per finalizer.
#[derive(Default)]
struct Remaining {
    resources: BTreeMap<String, usize>,
    finalizers: BTreeMap<String, usize>,
}

impl Remaining {
    fn add(&mut self, res: &resources::ResourceInfo, obj: &Value) {
        *self
            .resources
            .entry(format!("{}.{}", res.plural, res.group))
            .or_default() += 1;
        let fins = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for f in fins {
            *self.finalizers.entry(f.to_string()).or_default() += 1;
        }
    }
}

/// The namespace controller's account of a deletion in the namespace's status: what
/// content is left, and which finalizers hold it (kube-controller-manager's five
/// conditions, the first three of which always say all went well here).
fn conditions(left: &Remaining) -> [(&'static str, &'static str, &'static str, String); 5] {
    // What is left, as `name N` phrases joined, or None when nothing is.
    let tally = |counts: &BTreeMap<String, usize>, phrase: &str| {
        (!counts.is_empty()).then(|| {
            let each: Vec<String> = counts
                .iter()
                .map(|(what, n)| format!("{what} {phrase} {n} resource instances"))
                .collect();
            each.join(", ")
        })
    };
    let content = match tally(&left.resources, "has") {
        None => (
            "False",
            "ContentRemoved",
            "All content successfully removed".to_string(),
        ),
        Some(list) => (
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {list}"),
        ),
    };
    let finalizers = match tally(&left.finalizers, "in") {
        None => (
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".to_string(),
        ),
        Some(list) => (
            "True",
            "SomeFinalizersRemain",
            format!("Some content in the namespace has finalizers remaining: {list}"),
        ),
    };
    [
        (
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered".to_string(),
        ),
        (
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".to_string(),
        ),
        (
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".to_string(),
        ),
        ("NamespaceContentRemaining", content.0, content.1, content.2),
        (
            "NamespaceFinalizersRemaining",
            finalizers.0,
            finalizers.1,
            finalizers.2,
        ),
    ]
}

/// Writes [`conditions`] into the namespace's status when they changed (a condition's
/// transition time moves only with its status).
async fn write_conditions(st: &ServerState, ns: &str, left: &Remaining) {
    let wanted = conditions(left);
    let now = crate::registry::format_time(jiff::Timestamp::now());
    let result = st
        .registry
        .update(
            resources::namespaces(),
            None,
            ns,
            Part::System,
            &WriteOptions::default(),
            |old| {
                let mut new = old.clone();
                let stored = old
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let list: Vec<Value> = wanted
                    .iter()
                    .map(|(type_, status, reason, message)| {
                        let prev = stored
                            .iter()
                            .find(|c| c.get("type").and_then(Value::as_str) == Some(type_));
                        let since = prev
                            .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
                            .and_then(|c| c.get("lastTransitionTime").cloned())
                            .unwrap_or_else(|| Value::String(now.clone()));
                        serde_json::json!({
                            "type": type_, "status": status, "reason": reason,
                            "message": message, "lastTransitionTime": since,
                        })
                    })
                    .collect();
                new["status"]["conditions"] = Value::Array(list);
                Ok(new)
            },
        )
        .await;
    if let Err(e) = result
        && e.code != 404
    {
        tracing::debug!(namespace = ns, error = %e.message, "namespace conditions");
    }
}

fn node_exists(
    st: &ServerState,
    nodes: Option<&'static resources::ResourceInfo>,
    pod: &Value,
) -> bool {
    let Some(node) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return false;
    };
    nodes.is_some_and(|r| st.registry.store.get(&r.key(None, node)).is_some())
}

/// Resumes the cleanup of namespaces that were terminating when the server stopped.
pub fn resume(st: &Arc<ServerState>) {
    let nsres = resources::namespaces();
    if let Ok(page) = st
        .registry
        .store
        .list(&nsres.prefix(None), None, None, None)
    {
        for kv in &page.items {
            if let Ok(obj) = crate::registry::decode(nsres, kv)
                && obj
                    .pointer("/metadata/deletionTimestamp")
                    .is_some_and(|t| !t.is_null())
            {
                spawn_finalizer(st.clone(), name_of(&obj).to_string());
            }
        }
    }
}
