//! Namespace deletion: a terminating namespace has everything in it deleted, then its
//! `kubernetes` finalizer removed, which removes the namespace (kube-controller-manager's
//! namespace controller, run inside the API server because it touches every resource).

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
    let mut remaining = 0usize;
    for res in RESOURCES
        .iter()
        .filter(|r| r.namespaced && r.strategy != Strategy::EventV1)
    {
        let page = reg
            .store
            .list(&res.prefix(Some(ns)), None, None, None)
            .map_err(|e| crate::error::ApiError::internal(e.to_string()))?;
        for kv in &page.items {
            remaining += 1;
            let obj = crate::registry::decode(res, kv)?;
            if obj
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
            {
                // Already terminating; a pod whose node is gone will never be confirmed
                // by a kubelet, so it is removed here (what pod GC does).
                if res.strategy == Strategy::Pod && !node_exists(st, nodes, &obj) {
                    let opts = DeleteOptions {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    };
                    let _ = reg.delete(res, Some(ns), name_of(&obj), &opts).await;
                }
                continue;
            }
            let mut opts = DeleteOptions::default();
            if res.strategy == Strategy::Pod && !node_exists(st, nodes, &obj) {
                opts.grace_period_seconds = Some(0);
            }
            match reg.delete(res, Some(ns), name_of(&obj), &opts).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
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
