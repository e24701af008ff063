//! `everynode up` beyond the API server: the controllers and the simulated nodes, all
//! as ordinary API clients of the server (through its kubeconfig), and `everynode node
//! add|remove|stop|start`, which add, remove, silence and revive simulated nodes of a
//! running cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use everynode_agent::sim::{self, Fleet, SimNodeSpec, SimOptions};
use everynode_controllers::runtime::Informers;
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Api, DeleteParams};

/// A kube client from a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> Result<kube::Client, String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| format!("reading {}: {e}", kubeconfig.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| format!("kubeconfig {}: {e}", kubeconfig.display()))?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

/// A kube client wired straight to the API server's router: the same handlers,
/// authentication and admission as over HTTPS, without a socket, TLS or HTTP framing.
/// `everynode up` gives it to its controllers; their writes are managed fields of
/// `kube-controller-manager`, as in Kubernetes ([`in_process_client_as`] for others).
pub fn in_process_client(
    server: &everynode_apiserver::ApiServer,
    token: &str,
) -> Result<kube::Client, String> {
    in_process_client_as(server, token, "kube-controller-manager")
}

/// [`in_process_client`] for the component `agent` (`kubelet` for the simulated nodes):
/// its User-Agent, from which the server names the field manager of its writes.
pub fn in_process_client_as(
    server: &everynode_apiserver::ApiServer,
    token: &str,
    agent: &str,
) -> Result<kube::Client, String> {
    let bearer =
        http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    let user_agent = http::HeaderValue::from_str(&format!(
        "{agent}/{} (linux/amd64) everynode",
        everynode_apiserver::openapi::GIT_VERSION
    ))
    .map_err(|e| e.to_string())?;
    let service = tower::ServiceBuilder::new()
        .map_request(move |mut req: http::Request<kube::client::Body>| {
            let headers = req.headers_mut();
            headers.insert(http::header::AUTHORIZATION, bearer.clone());
            headers
                .entry(http::header::USER_AGENT)
                .or_insert_with(|| user_agent.clone());
            req
        })
        .service(server.router());
    Ok(kube::Client::new(service, "default"))
}

/// The nodes of a fresh `up` cluster: one control-plane node (`master`, tainted
/// NoSchedule as in the seeds' clusters) and `count - 1` workers `node1`, `node2`, ...
pub fn initial_nodes(count: usize) -> Vec<SimNodeSpec> {
    let mut nodes = Vec::with_capacity(count);
    if count > 0 {
        nodes.push(SimNodeSpec::control_plane("master"));
    }
    for i in 1..count {
        nodes.push(SimNodeSpec::worker(&format!("node{i}")));
    }
    nodes
}

/// Starts the controllers and the simulated-node fleet; they run until the runtime stops.
pub async fn start(
    client: kube::Client,
    kubelet: kube::Client,
    nodes: usize,
    sim_opts: SimOptions,
    grace: Duration,
) -> Result<(), String> {
    // Renew Leases well within the grace period (a kubelet renews every quarter of its
    // Lease's duration), so that a short grace does not make healthy nodes flap.
    let sim_opts = SimOptions {
        renew_interval: sim_opts.renew_interval.min(grace / 4),
        ..sim_opts
    };
    sim::register_many(&kubelet, &initial_nodes(nodes), sim_opts.concurrency)
        .await
        .map_err(|e| format!("registering nodes: {e}"))?;
    tokio::spawn(Fleet::new(kubelet, sim_opts).run());
    // One watch and one copy of each pod and node for all the controllers.
    let informers = Informers::new(client.clone());
    tokio::spawn(everynode_controllers::scheduler::run(informers.clone()));
    tokio::spawn(everynode_controllers::daemonset::controller::run(
        informers.clone(),
    ));
    tokio::spawn(everynode_controllers::nodelifecycle::run(
        informers.clone(),
        grace,
    ));
    tokio::spawn(everynode_controllers::endpointslice::run(informers));
    tokio::spawn(everynode_controllers::gc::run(client));
    Ok(())
}

/// Starts the certificate-request approver and, given the CA's signer, the signer
/// (node join). Runs until the runtime stops.
pub fn start_csr(client: kube::Client, signer: Option<everynode_controllers::csr::Signer>) {
    tokio::spawn(everynode_controllers::csr::run(client, signer));
}

/// Starts the root CA publisher (`kube-root-ca.crt` in every namespace). Runs until the
/// runtime stops.
pub fn start_root_ca(client: kube::Client, ca_pem: &str) {
    tokio::spawn(everynode_controllers::rootca::run(
        client,
        ca_pem.to_string(),
    ));
}

/// Starts the tokens controller (long-lived tokens in ServiceAccount token Secrets,
/// signed with the API server's ServiceAccount key). Runs until the runtime stops.
pub fn start_tokens(
    client: kube::Client,
    keys: std::sync::Arc<everynode_api::satoken::Keys>,
    ca_pem: &str,
) {
    tokio::spawn(everynode_controllers::satokens::run(
        client,
        keys,
        ca_pem.to_string(),
    ));
}

/// Starts `count` process nodes in this process (`master`, tainted like the simulated
/// one, then `node1`, `node2`, ...), node i on 127.0.0.(i+1) with its root directory in
/// DATA_DIR/nodes/NAME, and the host's Service proxy. They run until `shutdown` turns true, then stop their processes.
pub fn start_process_nodes(
    client: kube::Client,
    count: usize,
    data_dir: &Path,
    ca_pem: &str,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    use everynode_agent::process::{ProcessNodeConfig, run_node};
    if count > 254 {
        return Err(format!(
            "--nodes {count}: process nodes take 127.0.0.1 to 127.0.0.254, at most 254 nodes"
        ));
    }
    let mut handles = Vec::new();
    // One Service proxy for the host: the nodes share its addresses and ports.
    if count > 0 {
        handles.push(tokio::spawn(everynode_agent::process::proxy::run(
            client.clone(),
            Some("master".to_string()),
            shutdown.clone(),
        )));
    }
    for (i, spec) in initial_nodes(count).into_iter().enumerate() {
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, i as u8 + 1));
        let root = data_dir.join("nodes").join(&spec.name);
        let mut cfg = ProcessNodeConfig::new(&spec.name, ip, root, ca_pem);
        if i == 0 {
            cfg = cfg.control_plane();
        }
        let client = client.clone();
        let shutdown = shutdown.clone();
        handles.push(tokio::spawn(async move {
            let name = cfg.name.clone();
            if let Err(e) = run_node(client, cfg, shutdown).await {
                tracing::error!(node = %name, error = %e, "process node stopped");
            }
        }));
    }
    Ok(handles)
}

/// Parses `k=v,k2=v2` (a value may be empty: `k=` or `k`).
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if k.is_empty() {
            return Err(format!("invalid label {part:?}: want key=value"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Parses taints as kubectl writes them: `key=value:Effect` or `key:Effect`, comma-separated.
pub fn parse_taints(s: &str) -> Result<Vec<Taint>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kv, effect) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid taint {part:?}: want key[=value]:Effect"))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!(
                "invalid taint effect {effect:?}: want NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(format!("invalid taint {part:?}: empty key"));
        }
        out.push(Taint {
            key: key.to_string(),
            value,
            effect: effect.to_string(),
            time_added: None,
        });
    }
    Ok(out)
}

/// `everynode node add`: registers a simulated node with the running cluster.
pub async fn add_node(client: &kube::Client, spec: &SimNodeSpec) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes
        .get_opt(&spec.name)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err(format!("node {:?} already exists", spec.name));
    }
    sim::register(client, spec)
        .await
        .map_err(|e| e.to_string())?;
    println!("node/{} added", spec.name);
    Ok(())
}

/// `everynode node remove`: deletes a node (its daemon pods go with it).
pub async fn remove_node(client: &kube::Client, name: &str) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            println!("node/{name} removed");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Err(format!("node {name:?} not found")),
        Err(e) => Err(e.to_string()),
    }
}

/// `everynode node stop|start`: silences a simulated node or brings it back.
pub async fn stop_node(client: &kube::Client, name: &str, stop: bool) -> Result<(), String> {
    match sim::set_stopped(client, name, stop).await {
        Ok(()) => {
            println!("node/{name} {}", if stop { "stopped" } else { "started" });
            Ok(())
        }
        Err(sim::SimError::Kube(kube::Error::Api(e))) if e.code == 404 => {
            Err(format!("node {name:?} not found"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Simulated-node options from the command line.
pub fn sim_options(ready_delay_ms: u64, failing_tag: &str) -> SimOptions {
    SimOptions {
        ready_delay: Duration::from_millis(ready_delay_ms),
        failing_image_tag: failing_tag.to_string(),
        ..SimOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_like_kubectl_writes_them() {
        let t = parse_taints("dedicated=gpu:NoSchedule,node-role.kubernetes.io/master:NoSchedule")
            .expect("taints");
        assert_eq!(
            (
                t[0].key.as_str(),
                t[0].value.as_deref(),
                t[0].effect.as_str()
            ),
            ("dedicated", Some("gpu"), "NoSchedule")
        );
        assert_eq!(
            (t[1].key.as_str(), t[1].value.as_deref()),
            ("node-role.kubernetes.io/master", None)
        );
        assert!(parse_taints("k=v:Sometimes").is_err());
        assert!(parse_taints("novalue").is_err());
    }

    #[test]
    fn labels_and_initial_nodes() {
        let l = parse_labels("disk=ssd, zone=a,edge").expect("labels");
        assert_eq!(l.get("disk").map(String::as_str), Some("ssd"));
        assert_eq!(l.get("edge").map(String::as_str), Some(""));
        let names: Vec<String> = initial_nodes(3).into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["master", "node1", "node2"]);
        assert!(initial_nodes(0).is_empty());
    }
}
