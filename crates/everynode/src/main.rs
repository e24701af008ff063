//! The `everynode` binary: one executable, several roles.
//!
//! - `everynode up`: a local cluster in one process (API server with an embedded store,
//!   controllers and simulated nodes as they land), printing the KUBECONFIG to use.
//! - `everynode server`: the API server alone, in the foreground.
//! - `everynode bench ...`: system benchmarks that print figures (and `--json`).

mod bench;
mod cluster;
mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use everynode_apiserver::{ApiServer, Authenticator, User, WatchConfig};
use everynode_store::{Store, StoreOptions};

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
    /// Run everynode's DaemonSet controller against any cluster (e.g. a real Kubernetes
    /// whose own daemonset controller is disabled), through its kubeconfig.
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
    /// Run a benchmark and print its figures.
    Bench {
        #[command(subcommand)]
        which: bench::BenchCmd,
    },
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
}

#[derive(clap::Args, Clone, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Simulated nodes on first start: one control-plane node and N-1 workers.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A running API server: its address, kubeconfig and handle.
pub struct Running {
    pub server: ApiServer,
    pub admin_token: String,
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub serve: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the API server described by `args` and returns once it is listening.
pub async fn start_server(args: &ServerArgs) -> Result<Running, String> {
    let hosts = if args.listen.ip().is_unspecified() {
        vec![]
    } else {
        vec![args.listen.ip().to_string()]
    };
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
    let server = ApiServer::new(store, auth, watch)
        .await
        .map_err(|e| e.message)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let kubeconfig = pki::write_kubeconfig(&args.data_dir, &pki, &pki::client_address(addr))?;
    let tls = everynode_apiserver::serve::tls_config(
        pki.server_cert_pem.as_bytes(),
        pki.server_key_pem.as_bytes(),
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

async fn run(args: ServerArgs, up: Option<UpArgs>) -> Result<(), String> {
    let running = start_server(&args).await?;
    let kc = running.kubeconfig.display();
    if let Some(up) = &up {
        let client = cluster::in_process_client(&running.server, &running.admin_token)?;
        let sim = cluster::sim_options(up.ready_delay_ms, &up.failing_image_tag);
        let grace = std::time::Duration::from_secs(up.node_monitor_grace_seconds.max(1));
        cluster::start(client, up.nodes, sim, grace).await?;
        println!(
            "everynode is up: API server on https://{}",
            pki::client_address(running.addr)
        );
        println!();
        println!("  export KUBECONFIG={kc}");
        println!("  kubectl get nodes");
        println!("  everynode node add node9 --labels disk=ssd   # another simulated node");
        println!("  kubectl apply -f examples/nginx-ds.yaml");
        println!("  kubectl get ds -o wide");
        println!();
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
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.server.begin_shutdown();
    match running.serve.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "server ended with an error"),
        Err(e) => tracing::warn!(error = %e, "server task failed"),
        Ok(Ok(())) => {}
    }
    running.server.store().close().await;
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    init_tracing();
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
                    "everynode DaemonSet controller running against {}",
                    kc.display()
                );
                tokio::select! {
                    _ = everynode_controllers::daemonset::controller::run(client) => Ok(()),
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
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
