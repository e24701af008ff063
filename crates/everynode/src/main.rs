//! The `everynode` binary: one executable, several roles.
//!
//! - `everynode up`: a local cluster in one process (API server with an embedded store,
//!   controllers and simulated nodes as they land), printing the KUBECONFIG to use.
//! - `everynode server`: the API server alone, in the foreground.
//! - `everynode agent`: join a machine to a cluster over the network and run its node.
//! - `everynode token create|list`: bootstrap tokens for joining machines.
//! - `everynode bench ...`: system benchmarks that print figures (and `--json`).

mod addons;
mod bench;
mod cluster;
mod join;
mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use everynode_apiserver::{ApiServer, Authenticator, User, WatchConfig};
use everynode_store::{Store, StoreOptions};

/// jemalloc instead of glibc's malloc: the API server, controllers and thousands of sim
/// nodes allocate and free small objects across many tokio worker threads. Measured with
/// `everynode bench converge --nodes 5000` (BENCHMARKS.md): 6.1 s -> 3.5 s wall, 10.7 ->
/// 6.6 CPU-seconds, same peak RSS. (mimalloc measured in between: 4.0 s, +8% RSS.)
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "everynode",
    version,
    about = "A Kubernetes-compatible control plane for node daemons"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the API server in the foreground.
    Server(ServerArgs),
    /// Start a local everynode cluster (API server, controllers, simulated nodes) and
    /// print how to reach it with kubectl.
    Up(UpArgs),
    /// Run everynode's DaemonSet and EndpointSlice/Endpoints controllers against any
    /// cluster (e.g. a real Kubernetes whose own controllers for them are disabled),
    /// through its kubeconfig.
    Controller {
        /// The cluster's kubeconfig (default: $KUBECONFIG, else ~/.kube/config).
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
    },
    /// Add or remove simulated nodes of a running cluster.
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
        /// The cluster's kubeconfig (default: $KUBECONFIG, else DATA_DIR/kubeconfig).
        #[arg(long, global = true, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        #[arg(long, global = true, env = "EVERYNODE_DATA_DIR", default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
    },
    /// Join this machine to a cluster over the network and run its node.
    Agent(AgentArgs),
    /// Bootstrap tokens for joining machines (Secrets of type bootstrap.kubernetes.io/token).
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
        /// The cluster's kubeconfig (default: $KUBECONFIG, else DATA_DIR/kubeconfig).
        #[arg(long, global = true, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        #[arg(long, global = true, env = "EVERYNODE_DATA_DIR", default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
    },
    /// Run a benchmark and print its figures.
    Bench {
        #[command(subcommand)]
        which: bench::BenchCmd,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// Simulated nodes (like kwok): pods report Running, nothing runs.
    Sim,
    /// Real nodes: each container's command runs as a host process.
    Process,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StoreKind {
    /// One redb file in the data directory (durable, the default).
    Redb,
    /// In memory only: everything is lost at exit.
    Memory,
}

#[derive(clap::Args, Clone, Debug)]
pub struct ServerArgs {
    /// Where the store, certificates, token and kubeconfig live.
    #[arg(long, env = "EVERYNODE_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Storage backend.
    #[arg(long, value_enum, default_value = "redb")]
    pub store: StoreKind,
    /// Seconds between watch bookmarks (for clients that ask for them).
    #[arg(long, default_value_t = 60)]
    pub bookmark_interval: u64,
    /// The IPv4 range Service cluster IPs come from (kubeadm's default).
    #[arg(long, default_value = everynode_api::service_alloc::DEFAULT_SERVICE_CIDR,
          value_parser = everynode_api::service_alloc::ServiceCidr::parse)]
    pub service_cluster_ip_range: everynode_api::service_alloc::ServiceCidr,
    /// More names or addresses for the serving certificate, comma-separated: those
    /// joining machines use to reach the server. Listening on all addresses adds the
    /// host name and the main outbound address by itself.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Cluster DNS, served beside the API server.
#[derive(clap::Args, Clone, Debug)]
pub struct DnsArgs {
    /// Where cluster DNS listens (UDP and TCP); port 0 picks a free port. The address is
    /// printed and written to DATA_DIR/cluster-dns.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub dns_listen: SocketAddr,
    /// The DNS domain of the cluster.
    #[arg(long, default_value = everynode_dns::DEFAULT_DOMAIN)]
    pub cluster_domain: String,
}

impl Default for DnsArgs {
    fn default() -> Self {
        DnsArgs {
            dns_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cluster_domain: everynode_dns::DEFAULT_DOMAIN.to_string(),
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Nodes: one control-plane node and N-1 workers (simulated nodes are created on
    /// first start; process nodes run while `up` runs).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// What the nodes are: `sim` (simulated, nothing runs) or `process` (containers'
    /// commands run as host processes, each node on its own loopback address).
    #[arg(long, value_enum, default_value = "sim")]
    pub runtime: Runtime,
    /// Milliseconds from a pod's binding to its containers running on a simulated node.
    #[arg(long, default_value_t = 1000)]
    pub ready_delay_ms: u64,
    /// Simulated nodes fail to pull images with this tag (ErrImagePull, ImagePullBackOff).
    #[arg(long, default_value = "non-existent")]
    pub failing_image_tag: String,
    /// Seconds a node may go without a heartbeat before it is marked Unknown and tainted
    /// unreachable (Kubernetes' --node-monitor-grace-period).
    #[arg(long, default_value_t = 40)]
    pub node_monitor_grace_seconds: u64,
    /// Seconds between a simulated node's status reports when nothing changed: its
    /// conditions' lastHeartbeatTime (the kubelet's --node-status-report-frequency).
    #[arg(long, default_value_t = 300)]
    pub node_status_report_seconds: u64,
}

#[derive(Subcommand, Clone, Debug)]
pub enum TokenCmd {
    /// Create a token and print it with the join command.
    Create {
        /// How long the token works: e.g. 24h, 90m, 7d; 0 never expires.
        #[arg(long, default_value = "24h")]
        ttl: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the tokens.
    List,
}

#[derive(clap::Args, Clone, Debug)]
pub struct AgentArgs {
    /// The API server, `https://HOST:PORT`.
    #[arg(long)]
    pub server: String,
    /// A file holding the bootstrap token (needed for the first join only).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Trust the server whose CA public key has this hash (`sha256:<hex>`, printed
    /// with the join command).
    #[arg(long, conflicts_with = "ca_file")]
    pub ca_cert_hash: Option<String>,
    /// Trust the server through this CA certificate (PEM).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "sim")]
    pub runtime: Runtime,
    /// Where the node's key, certificate and kubeconfig live (default:
    /// ~/.everynode/agent/NODE_NAME).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Node labels, `k=v,k2=v2` (NodeRestriction applies: no `node-role.kubernetes.io/`
    /// or `node-restriction.kubernetes.io/` labels).
    #[arg(long, default_value = "")]
    pub labels: String,
    /// Taints, `key=value:Effect,key:Effect`, set when the node registers.
    #[arg(long, default_value = "")]
    pub taints: String,
    /// Capacity of a simulated node.
    #[arg(long, default_value = "4")]
    pub cpu: String,
    #[arg(long, default_value = "8Gi")]
    pub memory: String,
    #[arg(long, default_value = "110")]
    pub pods: String,
    /// Milliseconds from a pod's binding to its containers running (runtime sim).
    #[arg(long, default_value_t = 1000)]
    pub ready_delay_ms: u64,
    /// How long to wait for the certificate request to be approved and signed.
    #[arg(long, default_value_t = 300)]
    pub approval_timeout_seconds: u64,
    /// The node's IP (runtime process): the log endpoint listens there and the Node
    /// reports it as InternalIP (default: the address of the host's outbound route).
    #[arg(long)]
    pub node_ip: Option<std::net::IpAddr>,
}

/// The IPv4 address this host sends from by default: the source address the kernel
/// picks for a UDP socket "connected" to a public address (no packet is sent).
fn outbound_ipv4() -> Result<std::net::IpAddr, String> {
    let probe = || -> std::io::Result<std::net::IpAddr> {
        let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
        sock.connect("192.0.2.1:9")?;
        Ok(sock.local_addr()?.ip())
    };
    match probe() {
        Ok(ip) if !ip.is_unspecified() => Ok(ip),
        Ok(_) => Err("the host has no IPv4 route to pick a node IP from: pass --node-ip".into()),
        Err(e) => Err(format!(
            "finding the host's IPv4 address ({e}): pass --node-ip"
        )),
    }
}

#[derive(Subcommand, Clone, Debug)]
pub enum NodeCmd {
    /// Add a simulated node.
    Add {
        name: String,
        /// Labels, `k=v,k2=v2`.
        #[arg(long, default_value = "")]
        labels: String,
        /// Taints, `key=value:Effect,key:Effect`.
        #[arg(long, default_value = "")]
        taints: String,
        #[arg(long, default_value = "4")]
        cpu: String,
        #[arg(long, default_value = "8Gi")]
        memory: String,
        #[arg(long, default_value = "110")]
        pods: String,
        /// Make it a control-plane node (role labels and the master NoSchedule taint).
        #[arg(long)]
        control_plane: bool,
    },
    /// Remove a node; the DaemonSet controller deletes its daemon pods.
    Remove { name: String },
    /// Stop a simulated node as if its machine went silent: no more Lease renewals, node
    /// status or pod updates (it turns NotReady after --node-monitor-grace-seconds).
    Stop { name: String },
    /// Start a stopped simulated node again: it renews its Lease, posts Ready and catches
    /// up on the pods bound or deleted meanwhile.
    Start { name: String },
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".everynode"),
        None => PathBuf::from(".everynode"),
    }
}

fn init_tracing(agent: bool) {
    // The agent says once when it loses and regains the API server; kube's client would
    // log an error for every retry.
    let default = if agent {
        "info,kube_client::client::builder=off"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A running API server: its address, kubeconfig and handle.
pub struct Running {
    pub server: ApiServer,
    pub admin_token: String,
    pub ca_pem: String,
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub serve: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the API server described by `args` and returns once it is listening.
pub async fn start_server(args: &ServerArgs) -> Result<Running, String> {
    let mut hosts = if args.listen.ip().is_unspecified() {
        let mut h = vec![host_name()];
        h.extend(join::primary_ip().map(|ip| ip.to_string()));
        h.retain(|h| !h.is_empty());
        h
    } else {
        vec![args.listen.ip().to_string()]
    };
    hosts.extend(args.tls_san.iter().map(|h| h.trim().to_string()));
    let pki = pki::ensure(&args.data_dir, &hosts)?;
    let store = match args.store {
        StoreKind::Redb => Store::open(
            &args.data_dir.join("everynode.redb"),
            StoreOptions::default(),
        )
        .map_err(|e| format!("opening the store in {}: {e}", args.data_dir.display()))?,
        StoreKind::Memory => Store::memory(),
    };
    let auth = Authenticator::new();
    auth.add_token(&pki.admin_token, User::admin());
    let watch = WatchConfig {
        bookmark_interval: std::time::Duration::from_secs(args.bookmark_interval.max(1)),
        ..WatchConfig::default()
    };
    let services = everynode_apiserver::services::ServiceConfig {
        cidr: args.service_cluster_ip_range,
        ..Default::default()
    };
    let server = ApiServer::with_services(store, auth, watch, services)
        .await
        .map_err(|e| e.message)?;
    server.set_kubelet_client(
        pki.kubelet_client_cert_pem.as_bytes(),
        pki.kubelet_client_key_pem.as_bytes(),
    )?;
    server.set_service_account_keys(pki::service_account_keys(&args.data_dir)?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if let Err(e) = server.publish_kubernetes_service(addr).await {
        tracing::warn!(error = %e.message, "publishing the kubernetes Service");
    }
    let kubeconfig = pki::write_kubeconfig(&args.data_dir, &pki, &pki::client_address(addr))?;
    let tls = everynode_apiserver::serve::tls_config_with_client_ca(
        pki.server_cert_pem.as_bytes(),
        pki.server_key_pem.as_bytes(),
        pki.ca_pem.as_bytes(),
    )?;
    let serve = tokio::spawn(everynode_apiserver::serve::serve_tls(
        listener,
        tls,
        server.router(),
        server.shutdown_signal(),
    ));
    Ok(Running {
        server,
        admin_token: pki.admin_token.clone(),
        ca_pem: pki.ca_pem.clone(),
        addr,
        kubeconfig,
        serve,
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Starts cluster DNS against the server and records its address in DATA_DIR/cluster-dns.
async fn start_dns(running: &Running, args: &ServerArgs) -> Result<everynode_dns::Dns, String> {
    let client = cluster::in_process_client(&running.server, &running.admin_token)?;
    let dns = everynode_dns::start(client, args.dns.dns_listen, &args.dns.cluster_domain).await?;
    let file = args.data_dir.join("cluster-dns");
    std::fs::write(&file, format!("{}\n", dns.addr))
        .map_err(|e| format!("writing {}: {e}", file.display()))?;
    Ok(dns)
}

async fn run(args: ServerArgs, up: Option<UpArgs>) -> Result<(), String> {
    let running = start_server(&args).await?;
    let kc = running.kubeconfig.display();
    let dns = start_dns(&running, &args).await?;
    let dig = format!(
        "dig @{} -p {} kubernetes.default.svc.{} +short",
        dns.addr.ip(),
        dns.addr.port(),
        args.dns.cluster_domain
    );
    // Joining machines: the CA they discover, a token, and the CSR approver and signer.
    let admin = cluster::in_process_client(&running.server, &running.admin_token)?;
    let server_url = join::advertised_url(running.addr);
    join::publish_cluster_info(&admin, &server_url, &running.ca_pem).await?;
    let token = join::ensure_start_token(&admin, &args.data_dir).await?;
    cluster::start_root_ca(admin.clone(), &running.ca_pem);
    cluster::start_tokens(
        admin.clone(),
        running.server.state.service_account_keys(),
        &running.ca_pem,
    );
    cluster::start_csr(admin, Some(pki::kubelet_signer(&args.data_dir)?));
    let (stop_nodes, nodes_stopped) = tokio::sync::watch::channel(false);
    let mut process_nodes = Vec::new();
    if let Some(up) = &up {
        let client = cluster::in_process_client(&running.server, &running.admin_token)?;
        let sim = everynode_agent::sim::SimOptions {
            status_report_interval: std::time::Duration::from_secs(
                up.node_status_report_seconds.max(1),
            ),
            ..cluster::sim_options(up.ready_delay_ms, &up.failing_image_tag)
        };
        let grace = std::time::Duration::from_secs(up.node_monitor_grace_seconds.max(1));
        let sim_nodes = if up.runtime == Runtime::Sim {
            up.nodes
        } else {
            0
        };
        let kubelet =
            cluster::in_process_client_as(&running.server, &running.admin_token, "kubelet")?;
        cluster::start(client.clone(), kubelet.clone(), sim_nodes, sim, grace).await?;
        if up.runtime == Runtime::Sim {
            addons::install(&client, &args.data_dir).await?;
        }
        if up.runtime == Runtime::Process {
            process_nodes = cluster::start_process_nodes(
                kubelet,
                up.nodes,
                &args.data_dir,
                &running.ca_pem,
                nodes_stopped,
            )?;
        }
        println!(
            "everynode is up: API server on https://{}, cluster DNS on {} (UDP and TCP)",
            pki::client_address(running.addr),
            dns.addr
        );
        println!();
        println!("  export KUBECONFIG={kc}");
        println!("  kubectl get nodes");
        if up.runtime == Runtime::Process {
            println!("  kubectl apply -f examples/process-node-exporter.yaml");
            println!("  curl http://127.0.0.2:9100/metrics   # node1's exporter");
        } else {
            println!("  everynode node add node9 --labels disk=ssd   # another simulated node");
            println!("  kubectl apply -f examples/nginx-ds.yaml");
        }
        println!("  kubectl get ds -o wide");
        println!("  {dig}");
        println!();
        join::print_join(&token, &server_url, &running.ca_pem)?;
        println!(
            "Data in {} (a restart resumes this cluster). Ctrl-C stops it.",
            args.data_dir.display()
        );
    } else {
        println!(
            "everynode API server listening on https://{}",
            pki::client_address(running.addr)
        );
        println!("export KUBECONFIG={kc}");
        println!("cluster DNS on {} (UDP and TCP): {dig}", dns.addr);
        println!();
        join::print_join(&token, &server_url, &running.ca_pem)?;
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    // Process nodes stop their processes first, while the API still answers.
    let _ = stop_nodes.send(true);
    for node in process_nodes {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), node).await;
    }
    running.server.begin_shutdown();
    match running.serve.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "server ended with an error"),
        Err(e) => tracing::warn!(error = %e, "server task failed"),
        Ok(Ok(())) => {}
    }
    drop(dns);
    running.server.store().close().await;
    Ok(())
}

/// The server URL and CA of a kubeconfig's current cluster.
fn kubeconfig_cluster(path: &std::path::Path) -> Result<(String, String), String> {
    use base64::Engine;
    let kc = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let ctx_cluster = kc
        .current_context
        .as_ref()
        .and_then(|c| kc.contexts.iter().find(|x| &x.name == c))
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| ctx_cluster.as_ref().is_none_or(|n| &c.name == n))
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| format!("{}: no cluster", path.display()))?;
    let server = cluster.server.clone().unwrap_or_default();
    let ca = cluster
        .certificate_authority_data
        .as_ref()
        .ok_or_else(|| format!("{}: no certificate-authority-data", path.display()))?;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca.trim())
        .map_err(|e| format!("{}: certificate-authority-data: {e}", path.display()))?;
    Ok((server, String::from_utf8_lossy(&ca).into_owned()))
}

/// The host's name, lowercased (a node name must be a DNS subdomain).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// `everynode agent`: join (or reuse the stored credential), then run the node.
async fn agent(a: AgentArgs) -> Result<(), String> {
    let node_ip = match (&a.runtime, a.node_ip) {
        (Runtime::Process, None) => Some(outbound_ipv4()?),
        (_, ip) => ip,
    };
    let name = a.node_name.clone().unwrap_or_else(host_name);
    if name.is_empty() {
        return Err("no node name: pass --node-name".into());
    }
    let token = match &a.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("reading {}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let trust = match (&a.ca_file, &a.ca_cert_hash) {
        (Some(f), _) => Some(everynode_agent::join::CaTrust::Pem(
            std::fs::read_to_string(f).map_err(|e| format!("reading {}: {e}", f.display()))?,
        )),
        (None, Some(h)) => Some(everynode_agent::join::CaTrust::Hash(h.clone())),
        (None, None) => None,
    };
    let state_dir = a
        .state_dir
        .clone()
        .unwrap_or_else(|| default_data_dir().join("agent").join(&name));
    let cfg = everynode_agent::join::JoinConfig {
        server: a.server.trim_end_matches('/').to_string(),
        token,
        node_name: name.clone(),
        trust,
        state_dir: state_dir.clone(),
        approval_timeout: std::time::Duration::from_secs(a.approval_timeout_seconds.max(1)),
    };
    let cred = everynode_agent::join::join(&cfg)
        .await
        .map_err(|e| format!("joining {}: {e}", a.server))?;
    if cred.fresh {
        eprintln!(
            "joined {} as system:node:{name}; credential stored in {}",
            a.server,
            state_dir.display()
        );
    } else {
        eprintln!(
            "using the stored credential of system:node:{name} from {}",
            state_dir.display()
        );
    }
    let client = everynode_agent::join::client_from_kubeconfig(&cred.kubeconfig)
        .await
        .map_err(|e| e.to_string())?;
    if let (Runtime::Process, Some(ip)) = (&a.runtime, node_ip) {
        let mut cfg = everynode_agent::process::ProcessNodeConfig::new(
            &name,
            ip,
            state_dir.join("node"),
            &cred.ca_pem,
        );
        cfg.labels.extend(cluster::parse_labels(&a.labels)?);
        cfg.taints.extend(cluster::parse_taints(&a.taints)?);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let run = everynode_agent::node::run_process_node(client, cfg, stopped);
        tokio::pin!(run);
        let r = tokio::select! {
            r = &mut run => r,
            _ = wait_for_signal() => {
                // Stop the node's processes before exiting.
                let _ = stop.send(true);
                run.await
            }
        };
        return r.map_err(|e| format!("node {name}: {e}"));
    }
    let mut spec = everynode_agent::sim::SimNodeSpec::worker(&name);
    spec.labels.extend(cluster::parse_labels(&a.labels)?);
    spec.taints.extend(cluster::parse_taints(&a.taints)?);
    (spec.cpu, spec.memory, spec.pods) = (a.cpu.clone(), a.memory.clone(), a.pods.clone());
    let opts = cluster::sim_options(a.ready_delay_ms, "non-existent");
    tokio::select! {
        r = everynode_agent::node::run_sim_node(client, spec, opts) => r.map_err(|e| format!("node {name}: {e}")),
        _ = wait_for_signal() => Ok(()),
    }
}

fn main() {
    let cli = Cli::parse();
    init_tracing(matches!(cli.cmd, Cmd::Agent(_)));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Server(a) => run(a, None).await,
            Cmd::Up(a) => run(a.server.clone(), Some(a)).await,
            Cmd::Controller { kubeconfig } => {
                let kc = kubeconfig.unwrap_or_else(|| match std::env::var_os("HOME") {
                    Some(h) => PathBuf::from(h).join(".kube").join("config"),
                    None => PathBuf::from(".kube/config"),
                });
                let client = cluster::client(&kc).await?;
                eprintln!(
                    "everynode DaemonSet and EndpointSlice controllers running against {}",
                    kc.display()
                );
                let informers = everynode_controllers::runtime::Informers::new(client);
                let controllers = futures::future::join(
                    everynode_controllers::daemonset::controller::run(informers.clone()),
                    everynode_controllers::endpointslice::run(informers),
                );
                tokio::select! {
                    _ = controllers => Ok(()),
                    _ = wait_for_signal() => Ok(()),
                }
            }
            Cmd::Node {
                cmd,
                kubeconfig,
                data_dir,
            } => {
                let kc = kubeconfig.unwrap_or_else(|| data_dir.join("kubeconfig"));
                let client = cluster::client(&kc).await?;
                match cmd {
                    NodeCmd::Add {
                        name,
                        labels,
                        taints,
                        cpu,
                        memory,
                        pods,
                        control_plane,
                    } => {
                        let mut spec = if control_plane {
                            everynode_agent::sim::SimNodeSpec::control_plane(&name)
                        } else {
                            everynode_agent::sim::SimNodeSpec::worker(&name)
                        };
                        spec.labels.extend(cluster::parse_labels(&labels)?);
                        spec.taints.extend(cluster::parse_taints(&taints)?);
                        (spec.cpu, spec.memory, spec.pods) = (cpu, memory, pods);
                        cluster::add_node(&client, &spec).await
                    }
                    NodeCmd::Remove { name } => cluster::remove_node(&client, &name).await,
                    NodeCmd::Stop { name } => cluster::stop_node(&client, &name, true).await,
                    NodeCmd::Start { name } => cluster::stop_node(&client, &name, false).await,
                }
            }
            Cmd::Bench { which } => bench::run(which).await,
            Cmd::Agent(a) => agent(a).await,
            Cmd::Token {
                cmd,
                kubeconfig,
                data_dir,
            } => {
                let kc = kubeconfig.unwrap_or_else(|| data_dir.join("kubeconfig"));
                let client = cluster::client(&kc).await?;
                match cmd {
                    TokenCmd::Create { ttl, description } => {
                        let ttl = join::parse_ttl(&ttl)?;
                        let token = join::create_token(&client, ttl, &description).await?;
                        let (server, ca) = kubeconfig_cluster(&kc)?;
                        println!("{}", token.to_token_string());
                        println!();
                        join::print_join(&token, &server, &ca)
                    }
                    TokenCmd::List => {
                        print!("{}", join::list_tokens(&client).await?);
                        Ok(())
                    }
                }
            }
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
