//! Runtime `process`: one real node whose pods' containers run as host processes.
//!
//! [`run_node`] is the whole node agent: it kills what an earlier agent on the same root
//! directory left running, serves container logs over mTLS, registers the Node with the
//! host's capacity (or refreshes its status), renews its Lease, and watches the pods bound
//! to it (a `spec.nodeName` field selector), giving each to a [`pod::Worker`].
//!
//! - [`env`]: environment and command line (`$(VAR)`, downward API), pure.
//! - [`identity`]: the user, group and supplemental groups a container runs as
//!   (`securityContext`, `runAsNonRoot`), pure.
//! - [`backoff`], [`probe`], [`status`]: restart back-off, probe thresholds and pod status,
//!   pure with table tests; [`probe`] also runs one probe attempt.
//! - [`procs`]: process groups, signals, `/proc`, the ledger of started processes.
//! - [`logs`]: log files (CRI format, rotated) and reading them; [`server`]: the
//!   kubelet-style HTTPS endpoint `GET /containerLogs/{ns}/{pod}/{container}` and
//!   `GET /exec/{ns}/{pod}/{container}` (a WebSocket); [`exec`]: running a command in a
//!   container's context for the latter, speaking [`remotecommand`]'s channel protocol.
//! - [`host`]: capacity, node info, cgroup v2 limits.
//! - [`proxy`]: the host's user-space Service proxy (ClusterIP:port to ready endpoints)
//!   and the pods' hostPort forwards.

pub mod backoff;
pub mod env;
pub mod exec;
pub mod host;
pub mod identity;
pub mod logs;
pub mod pod;
pub mod probe;
pub mod procs;
pub mod proxy;
pub mod remotecommand;
pub mod server;
pub mod status;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::RUNTIME_ANNOTATION;

/// How one process node is set up.
#[derive(Clone, Debug)]
pub struct ProcessNodeConfig {
    /// The Node's name.
    pub name: String,
    /// The node's InternalIP: the log server listens there, probes and pods use it as
    /// their IP (there is no pod network).
    pub node_ip: IpAddr,
    /// Where the node keeps its state: logs (`pods/`), the process ledger (`processes`).
    pub root_dir: PathBuf,
    /// Labels and taints the Node is created with (an existing Node keeps its own).
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// The log server's port, advertised in `status.daemonEndpoints`; 0 picks a free one.
    pub kubelet_port: u16,
    /// PEM bundle of the CA whose client certificates may read logs (the cluster CA:
    /// the API server presents a certificate it signed).
    pub client_ca_pem: String,
    pub lease_duration_seconds: i32,
    pub renew_interval: Duration,
    /// Size limit of one container log file before it is rotated.
    pub log_max_bytes: u64,
    /// Longest graceful stop of a pod when the agent itself stops.
    pub shutdown_grace: Duration,
}

impl ProcessNodeConfig {
    pub fn new(name: &str, node_ip: IpAddr, root_dir: PathBuf, client_ca_pem: &str) -> Self {
        ProcessNodeConfig {
            name: name.to_string(),
            node_ip,
            root_dir,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            kubelet_port: 0,
            client_ca_pem: client_ca_pem.to_string(),
            lease_duration_seconds: 40,
            renew_interval: Duration::from_secs(10),
            log_max_bytes: logs::DEFAULT_MAX_BYTES,
            shutdown_grace: Duration::from_secs(5),
        }
    }

    /// Makes it a control-plane node: role labels and the master NoSchedule taint.
    pub fn control_plane(mut self) -> Self {
        self.labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            String::new(),
        );
        self.labels
            .insert("node-role.kubernetes.io/master".into(), String::new());
        self.taints.push(Taint {
            key: "node-role.kubernetes.io/master".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        });
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(String),
}

/// A pod as the node's server needs it: which pod of that name is here, its containers
/// (for logs), and how to run commands in those that run (for exec).
#[derive(Clone, Debug)]
pub struct SharedPod {
    pub uid: String,
    pub containers: Vec<status::ContainerView>,
    /// The running containers, by name.
    pub running: HashMap<String, ContainerExec>,
}

/// How a command runs "in" a running container (`kubectl exec`): as its process does,
/// with its environment, working directory and user. An exec lasts no longer than the
/// container's process `pid`.
#[derive(Clone, Debug)]
pub struct ContainerExec {
    pub pid: i32,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    /// Who it runs as (None: as the agent).
    pub identity: Option<identity::Identity>,
}

pub type PodIndex = Arc<Mutex<HashMap<(String, String), SharedPod>>>;

/// What every pod worker of a node shares.
pub struct NodeCtx {
    pub client: kube::Client,
    pub node_name: String,
    pub node_ip: String,
    pub root: PathBuf,
    pub spawner: procs::Spawner,
    pub ledger: procs::Ledger,
    pub log_max_bytes: u64,
    pub agent_path: String,
    pub cgroup: Result<PathBuf, String>,
    pub limits_warned: AtomicBool,
    pub pods: PodIndex,
    pub shutdown_grace: Duration,
    /// The node's event recorder (`kubelet`): repeats counted, as client-go's.
    pub recorder: everynode_controllers::events::Recorder,
}

fn micro_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The Node's status for this host.
pub fn node_status(cfg: &ProcessNodeConfig, port: u16) -> Value {
    let t = now();
    let capacity = host::capacity(&cfg.root_dir);
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "addresses": [
            { "type": "InternalIP", "address": cfg.node_ip.to_string() },
            { "type": "Hostname", "address": cfg.name },
        ],
        "conditions": crate::sim::node_conditions(&t, &t),
        "daemonEndpoints": { "kubeletEndpoint": { "Port": port } },
        "nodeInfo": host::node_info(),
    })
}

/// The Node object to create.
pub fn node_object(cfg: &ProcessNodeConfig, port: u16) -> Value {
    let arch = host::go_arch(std::env::consts::ARCH);
    let mut labels = json!({
        "kubernetes.io/hostname": cfg.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    });
    for (k, v) in &cfg.labels {
        labels[k] = json!(v);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": cfg.name,
            "labels": labels,
            "annotations": {
                RUNTIME_ANNOTATION: "process",
                "node.alpha.kubernetes.io/ttl": "0",
            },
        },
        "spec": { "taints": cfg.taints },
        "status": node_status(cfg, port),
    })
}

/// Creates the Node, or refreshes the status of an existing one (the log port changes
/// with every start). Returns the Node's uid.
pub async fn register(
    client: &kube::Client,
    cfg: &ProcessNodeConfig,
    port: u16,
) -> Result<String, ProcessError> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(&cfg.name).await?.is_none() {
        let node: Node = serde_json::from_value(node_object(cfg, port))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let patched = nodes
        .patch_status(
            &cfg.name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": node_status(cfg, port) })),
        )
        .await?;
    Ok(patched.metadata.uid.unwrap_or_default())
}

async fn renew_lease(
    client: &kube::Client,
    cfg: &ProcessNodeConfig,
    node_uid: &str,
) -> Result<(), ProcessError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let patch = json!({ "spec": { "renewTime": micro_now(), "holderIdentity": cfg.name } });
    match leases
        .patch(&cfg.name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease: Lease = serde_json::from_value(json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": cfg.name,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [{
                        "apiVersion": "v1", "kind": "Node", "name": cfg.name, "uid": node_uid,
                    }],
                },
                "spec": {
                    "holderIdentity": cfg.name,
                    "leaseDurationSeconds": cfg.lease_duration_seconds,
                    "renewTime": micro_now(),
                },
            }))?;
            match leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps the Lease fresh and the Node Ready (the node lifecycle controller marks a
/// silent node Unknown; the agent says Ready again once it is back).
async fn heartbeat(client: kube::Client, cfg: ProcessNodeConfig, port: u16, mut node_uid: String) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut tick = tokio::time::interval(cfg.renew_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match nodes.get_opt(&cfg.name).await {
            Ok(Some(node)) => {
                node_uid = node.metadata.uid.clone().unwrap_or(node_uid);
                let ready = node
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                    .is_some_and(|c| c.status == "True");
                if !ready {
                    let t = now();
                    let patch = json!({ "status": {
                        "conditions": crate::sim::node_conditions(&t, &t),
                        "daemonEndpoints": { "kubeletEndpoint": { "Port": port } },
                    }});
                    if let Err(e) = nodes
                        .patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                    {
                        tracing::debug!(node = %cfg.name, error = %e, "node status");
                    }
                }
            }
            // Deleted: register again, as a kubelet does.
            Ok(None) => match register(&client, &cfg, port).await {
                Ok(uid) => node_uid = uid,
                Err(e) => tracing::debug!(node = %cfg.name, error = %e, "re-registering"),
            },
            Err(e) => tracing::debug!(node = %cfg.name, error = %e, "node heartbeat"),
        }
        if let Err(e) = renew_lease(&client, &cfg, &node_uid).await {
            tracing::debug!(node = %cfg.name, error = %e, "lease renewal");
        }
    }
}

/// Removes the log directories (`pods/NS_NAME_UID`) of pods not in `live`.
fn remove_stale_logs(root: &std::path::Path, live: &HashSet<String>) {
    let Ok(dirs) = std::fs::read_dir(root.join("pods")) else {
        return;
    };
    for d in dirs.filter_map(Result::ok) {
        let name = d.file_name().to_string_lossy().into_owned();
        // Pod UIDs hold no underscore, so the UID is what follows the last one.
        if let Some((_, uid)) = name.rsplit_once('_')
            && !live.contains(uid)
        {
            let _ = std::fs::remove_dir_all(d.path());
        }
    }
}

/// Runs one process node until `shutdown` turns true, then stops every process it
/// started (gracefully, within [`ProcessNodeConfig::shutdown_grace`]) and returns.
/// The pods stay bound: a later `run_node` on the same root directory runs them again.
pub async fn run_node(
    client: kube::Client,
    cfg: ProcessNodeConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ProcessError> {
    std::fs::create_dir_all(&cfg.root_dir)?;
    let ledger = procs::Ledger::open(&cfg.root_dir);
    let killed = ledger.kill_leftovers();
    if killed > 0 {
        tracing::info!(node = %cfg.name, killed, "killed processes an earlier agent left running");
    }
    let cgroup = host::cgroup_v2_parent();
    match &cgroup {
        Ok(dir) => {
            tracing::info!(node = %cfg.name, cgroup = %dir.display(), "resource limits go to cgroup v2")
        }
        Err(why) => tracing::info!(node = %cfg.name, "resource limits are not enforced: {why}"),
    }
    let pods: PodIndex = Arc::default();
    let spawner = procs::Spawner::new(&cfg.name)?;
    let listener = tokio::net::TcpListener::bind((cfg.node_ip, cfg.kubelet_port)).await?;
    let port = listener.local_addr()?.port();
    let tls = server::tls_config(&cfg.name, cfg.node_ip, &cfg.client_ca_pem)
        .map_err(ProcessError::Tls)?;
    let log_server = tokio::spawn(server::serve(
        listener,
        tls,
        server::LogState {
            root: cfg.root_dir.clone(),
            pods: pods.clone(),
            spawner: spawner.clone(),
            ledger: ledger.clone(),
        },
        shutdown.clone(),
    ));
    let registered = async {
        let node_uid = register(&client, &cfg, port).await?;
        renew_lease(&client, &cfg, &node_uid).await?;
        Ok::<_, ProcessError>(node_uid)
    };
    let node_uid = match registered.await {
        Ok(uid) => uid,
        Err(e) => {
            log_server.abort();
            return Err(e);
        }
    };
    let beat = tokio::spawn(heartbeat(client.clone(), cfg.clone(), port, node_uid));
    let ctx = Arc::new(NodeCtx {
        client: client.clone(),
        node_name: cfg.name.clone(),
        node_ip: cfg.node_ip.to_string(),
        root: cfg.root_dir.clone(),
        spawner,
        ledger,
        log_max_bytes: cfg.log_max_bytes,
        agent_path: std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        }),
        cgroup,
        limits_warned: AtomicBool::new(false),
        pods,
        shutdown_grace: cfg.shutdown_grace,
        recorder: everynode_controllers::events::Recorder::new(client.clone(), "kubelet"),
    });
    tracing::info!(node = %cfg.name, ip = %cfg.node_ip, port, "process node running");

    let api: Api<Pod> = Api::all(client.clone());
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", cfg.name));
    let mut events = {
        use kube::runtime::WatchStreamExt;
        watcher(api, wc).default_backoff().boxed()
    };
    let mut workers: HashMap<String, (pod::PodTx, tokio::task::JoinHandle<()>)> = HashMap::new();
    let mut relisting: Option<HashSet<String>> = None;
    loop {
        let event = tokio::select! {
            ev = events.next() => ev,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let Some(event) = event else { break };
        workers.retain(|_, (tx, _)| !tx.is_closed());
        match event {
            Ok(watcher::Event::Init) => relisting = Some(HashSet::new()),
            Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod)) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                if let Some(seen) = relisting.as_mut() {
                    seen.insert(uid.clone());
                }
                if let Some((tx, _)) = workers.get(&uid) {
                    let _ = tx.send(pod::PodEvent::Update(Box::new(pod)));
                    continue;
                }
                let terminal = matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                );
                if terminal && pod.metadata.deletion_timestamp.is_none() {
                    continue;
                }
                let (tx, rx) = mpsc::unbounded_channel();
                let worker = pod::Worker::new(ctx.clone(), pod, tx.clone());
                workers.insert(uid, (tx, tokio::spawn(worker.run(rx))));
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(seen) = relisting.take() {
                    for (uid, (tx, _)) in &workers {
                        if !seen.contains(uid) {
                            let _ = tx.send(pod::PodEvent::Gone);
                        }
                    }
                    // Logs of pods deleted while no agent ran.
                    remove_stale_logs(&cfg.root_dir, &seen);
                }
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(uid) = pod.metadata.uid
                    && let Some((tx, _)) = workers.get(&uid)
                {
                    let _ = tx.send(pod::PodEvent::Gone);
                }
            }
            Err(e) => tracing::warn!(node = %cfg.name, error = %e, "pod watch"),
        }
    }
    beat.abort();
    for (tx, _) in workers.values() {
        let _ = tx.send(pod::PodEvent::Stop);
    }
    for (_, (_, handle)) in workers {
        let _ = handle.await;
    }
    log_server.abort();
    tracing::info!(node = %cfg.name, "process node stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_log_directories_go() {
        let root = tempfile::tempdir().expect("tempdir");
        for d in ["default_a_u-1", "kube_sys_b_u-2", "default_c_u-3"] {
            std::fs::create_dir_all(root.path().join("pods").join(d).join("c")).expect("mkdir");
        }
        let live: HashSet<String> = ["u-1", "u-2"].iter().map(|s| s.to_string()).collect();
        remove_stale_logs(root.path(), &live);
        let mut left: Vec<String> = std::fs::read_dir(root.path().join("pods"))
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["default_a_u-1", "kube_sys_b_u-2"]);
    }

    #[test]
    fn node_object_carries_the_host_and_the_role() {
        let cfg = ProcessNodeConfig::new(
            "cp",
            "127.0.0.1".parse().expect("ip"),
            std::env::temp_dir(),
            "",
        )
        .control_plane();
        let node: Node = serde_json::from_value(node_object(&cfg, 12345)).expect("node");
        let status = node.status.expect("status");
        let port = status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .map(|e| e.port);
        assert_eq!(port, Some(12345));
        let addresses = status.addresses.expect("addresses");
        assert_eq!(addresses[0].address, "127.0.0.1");
        let cap = status.capacity.expect("capacity");
        assert_eq!(cap.get("pods").map(|q| q.0.as_str()), Some("110"));
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        assert_eq!(taints[0].key, "node-role.kubernetes.io/master");
        let ann = node.metadata.annotations.unwrap_or_default();
        assert_eq!(
            ann.get(RUNTIME_ANNOTATION).map(String::as_str),
            Some("process")
        );
    }
}
