//! One node run by its own `everynode agent` process, with the node's own credential.
//!
//! Runtime `sim` ([`run_sim_node`]): the simulated runtime's [`Fleet`] does the kubelet's
//! work, restricted to this node (`SimOptions::only_node`: watches only this Node and the
//! pods bound to it; its watches resume on their own after a break). Runtime `process`
//! ([`run_process_node`]): [`process::run_node`], started again with back-off while the
//! API server cannot be reached for the first registration. Beside either, a supervisor
//! checks the node every few seconds and, like the kubelet:
//! - registers the Node again if it was deleted while the agent runs;
//! - says once when it loses the API server and once when it is back, with what changed
//!   meanwhile (pods bound to or removed from the node), instead of an error per retry.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};

use crate::process::{self, ProcessError, ProcessNodeConfig};
use crate::sim::{self, Fleet, SimError, SimNodeSpec, SimOptions};

/// How often the supervisor looks at the node.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(3);

/// The pods bound to `node`, as `namespace/name`.
async fn bound_pods(client: &kube::Client, node: &str) -> Result<BTreeSet<String>, kube::Error> {
    let pods: Api<Pod> = Api::all(client.clone());
    let list = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?;
    Ok(list
        .items
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap_or(""),
                p.metadata.name.as_deref().unwrap_or("")
            )
        })
        .collect())
}

/// What changed between two views of the node's pods, for the log.
pub fn describe_changes(before: &BTreeSet<String>, after: &BTreeSet<String>) -> String {
    let added: Vec<&str> = after.difference(before).map(String::as_str).collect();
    let removed: Vec<&str> = before.difference(after).map(String::as_str).collect();
    match (added.is_empty(), removed.is_empty()) {
        (true, true) => format!("no pod changes ({} bound)", after.len()),
        _ => format!(
            "pods bound meanwhile: [{}]; pods gone meanwhile: [{}]; {} bound now",
            added.join(", "),
            removed.join(", "),
            after.len()
        ),
    }
}

/// Registers the node (retrying while the API server cannot be reached) and runs it
/// until the task is dropped.
pub async fn run_sim_node(
    client: kube::Client,
    mut spec: SimNodeSpec,
    mut opts: SimOptions,
) -> Result<(), SimError> {
    spec.annotations
        .insert(crate::AGENT_ANNOTATION.into(), "sim".into());
    let mut delay = Duration::from_millis(500);
    loop {
        match sim::register(&client, &spec).await {
            Ok(_) => break,
            // A refusal (403 from NodeRestriction, 422 from validation) will not change.
            Err(SimError::Kube(kube::Error::Api(e))) if (400..500).contains(&e.code) => {
                return Err(SimError::Kube(kube::Error::Api(e)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "registering the node; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    tracing::info!(node = %spec.name, "node registered");
    opts.only_node = Some(spec.name.clone());
    let fleet = Fleet::new(client.clone(), opts);
    let name = spec.name.clone();
    tokio::select! {
        _ = fleet.run() => Ok(()),
        r = supervise(client, name, Some(spec)) => r,
    }
}

/// Whether a failure to start a process node will not change by trying again: the API
/// server's refusal (403 from NodeRestriction, 422 from validation) or a local problem
/// (the node IP is not this host's, the root directory cannot be made).
fn is_permanent(e: &ProcessError) -> bool {
    match e {
        ProcessError::Kube(kube::Error::Api(e)) => (400..500).contains(&e.code),
        ProcessError::Kube(_) => false,
        ProcessError::Json(_) | ProcessError::Io(_) | ProcessError::Tls(_) => true,
    }
}

/// Runs a process node ([`process::run_node`]) until `shutdown` turns true; while the
/// first registration cannot reach the API server, starts it again with back-off.
pub async fn run_process_node(
    client: kube::Client,
    cfg: ProcessNodeConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ProcessError> {
    let name = cfg.name.clone();
    let run = async {
        let mut delay = Duration::from_millis(500);
        loop {
            match process::run_node(client.clone(), cfg.clone(), shutdown.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if is_permanent(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "registering the node; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait_for(|s| *s) => return Ok(()),
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    };
    // The node re-registers itself (its heartbeat); the supervisor only reports.
    tokio::select! {
        r = run => r,
        r = supervise(client.clone(), name, None) => r.map_err(|e| match e {
            SimError::Kube(e) => ProcessError::Kube(e),
            SimError::Json(e) => ProcessError::Json(e),
            e @ SimError::NotSimulated(_) => ProcessError::Io(std::io::Error::other(e.to_string())),
        }),
    }
}

/// Checks the node every [`CHECK_INTERVAL`]: reports losing and regaining the API
/// server, and registers a deleted Node again from `spec` (without one, the node does
/// that itself).
async fn supervise(
    client: kube::Client,
    name: String,
    spec: Option<SimNodeSpec>,
) -> Result<(), SimError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut lost_since: Option<Instant> = None;
    let mut pods = bound_pods(&client, &name).await.unwrap_or_default();
    loop {
        tokio::time::sleep(CHECK_INTERVAL).await;
        match nodes.get_opt(&name).await {
            Err(e) => {
                if lost_since.is_none() {
                    tracing::warn!(error = %e, "lost contact with the API server; the node keeps trying (watches and lease renewal retry with back-off)");
                    lost_since = Some(Instant::now());
                }
                continue;
            }
            Ok(None) => {
                tracing::warn!(node = %name, "the Node object is gone; registering it again");
                if let Some(spec) = &spec
                    && let Err(e) = sim::register(&client, spec).await
                {
                    tracing::warn!(error = %e, "registering the node again");
                    continue;
                }
            }
            Ok(Some(_)) => {}
        }
        if let Some(since) = lost_since.take() {
            let now = bound_pods(&client, &name).await.unwrap_or_default();
            tracing::warn!(
                "reconnected to the API server after {}s; {}",
                since.elapsed().as_secs(),
                describe_changes(&pods, &now)
            );
            pods = now;
        } else if let Ok(now) = bound_pods(&client, &name).await {
            pods = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_local_problems_are_permanent() {
        let api = |code: u16| {
            ProcessError::Kube(kube::Error::Api(
                kube::core::Status::failure("refused", "Forbidden")
                    .with_code(code)
                    .boxed(),
            ))
        };
        let cases = [
            (api(403), true),
            (api(422), true),
            (api(500), false),
            (api(503), false),
            (ProcessError::Io(std::io::Error::other("bind")), true),
            (ProcessError::Tls("bad CA".into()), true),
        ];
        for (e, want) in cases {
            assert_eq!(is_permanent(&e), want, "{e}");
        }
    }

    #[test]
    fn changes_are_described() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            describe_changes(&set(&["a/x"]), &set(&["a/x"])),
            "no pod changes (1 bound)"
        );
        assert_eq!(
            describe_changes(&set(&["a/x", "a/y"]), &set(&["a/x", "b/z"])),
            "pods bound meanwhile: [b/z]; pods gone meanwhile: [a/y]; 2 bound now"
        );
    }
}
