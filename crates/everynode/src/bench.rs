//! `everynode bench ...`: whole-system benchmarks. Each prints human-readable figures,
//! or with `--json` one JSON object on stdout holding the workload size, the measured
//! time or rate, the same-run machine floor and the server's peak RSS.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Subcommand;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Pod creates over TLS against a real `everynode server` child process with durable commits.
    Api {
        /// Number of pods to create.
        #[arg(long, default_value_t = 10_000)]
        creates: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// What the clients are.
        #[arg(long, value_enum, default_value_t = ApiClient::Raw)]
        client: ApiClient,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Durable redb commits of pod-sized values, on the store's file backend (fresh space
    /// zero-filled before use) against redb's own (sparse growth) as the floor, in
    /// alternating rounds: wall time and CPU (the kernel's share included) per commit.
    Commit {
        /// Commits per round.
        #[arg(long, default_value_t = 3_000)]
        commits: usize,
        /// Values per commit (the server's batches under `bench api` carry 4-6).
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Rounds per backend (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One DaemonSet rolled out over N simulated nodes in this process, until every pod
    /// is Running and Ready and the DaemonSet's status says so; then idle CPU.
    Converge {
        /// Number of simulated worker nodes (and so of daemon pods).
        #[arg(long, default_value_t = 1_000)]
        nodes: usize,
        /// Give up when the DaemonSet has not converged after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Seconds of idle heartbeating over which CPU is sampled after convergence
        /// (a whole lease renewal period, 10 s, samples every renewal once).
        #[arg(long, default_value_t = 10)]
        idle_seconds: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One DaemonSet on N simulated nodes in this process, converged first (not timed);
    /// then its image changes and the rolling update is timed until every pod runs the
    /// new revision, Running and Ready, and the DaemonSet's status says so.
    Rollout {
        /// Number of simulated worker nodes (and so of daemon pods).
        #[arg(long, default_value_t = 1_000)]
        nodes: usize,
        /// The DaemonSet's `rollingUpdate.maxUnavailable`: a number of nodes or a
        /// percentage (`10%`).
        #[arg(long, default_value = "10%", value_parser = parse_max_unavailable)]
        max_unavailable: IntOrString,
        /// Give up when the DaemonSet has not converged, or the rollout not completed,
        /// after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: BenchCmd) -> Result<(), String> {
    match cmd {
        BenchCmd::Api {
            creates,
            clients,
            client,
            json,
        } => api(creates, clients.max(1), client, json).await,
        BenchCmd::Commit {
            commits,
            batch,
            rounds,
            json,
        } => commit(commits.max(1), batch.max(1), rounds.max(1), json).await,
        BenchCmd::Converge {
            nodes,
            timeout,
            idle_seconds,
            json,
        } => {
            converge(
                nodes.max(1),
                Duration::from_secs(timeout),
                Duration::from_secs(idle_seconds),
                json,
            )
            .await
        }
        BenchCmd::Rollout {
            nodes,
            max_unavailable,
            timeout,
            json,
        } => {
            rollout(
                nodes.max(1),
                max_unavailable,
                Duration::from_secs(timeout),
                json,
            )
            .await
        }
    }
}

fn pod(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": format!("bench-{i:06}"), "namespace": "default", "labels": { "app": "bench", "shard": (i % 16).to_string() } },
        "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1.0",
                                    "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } } }] }
    })
}

/// Peak resident set size of a process (VmHWM), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    status_kb(&format!("/proc/{pid}/status"), "VmHWM:")
}

/// This process's resident set size now (VmRSS), in bytes.
fn current_rss() -> Option<u64> {
    status_kb("/proc/self/status", "VmRSS:")
}

fn status_kb(path: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A child `everynode server` on a free port with its own data directory.
pub struct ChildServer {
    pub child: tokio::process::Child,
    pub kubeconfig: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl ChildServer {
    pub async fn start() -> Result<ChildServer, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // `EVERYNODE_BENCH_SERVER` runs another build as the server (A/B comparisons
        // of servers with the same client).
        let exe = match std::env::var_os("EVERYNODE_BENCH_SERVER") {
            Some(path) => PathBuf::from(path),
            None => std::env::current_exe().map_err(|e| e.to_string())?,
        };
        let child = tokio::process::Command::new(exe)
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let kubeconfig = dir.path().join("kubeconfig");
        let s = ChildServer {
            child,
            kubeconfig,
            _dir: dir,
        };
        s.wait_ready(Duration::from_secs(60)).await?;
        Ok(s)
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if self.kubeconfig.exists()
                && let Ok(c) = client(&self.kubeconfig).await
                && c.apiserver_version().await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the server did not become ready within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

async fn commit(commits: usize, batch: usize, rounds: usize, json_out: bool) -> Result<(), String> {
    use everynode_store::{CommitCost, RedbFile, redb_commit_cost};
    // The pod `bench api` creates, as the server stores it: admitted (defaulted,
    // validated, with status), given a uid and a creation time, encoded.
    let pods = everynode_apiserver::resources::lookup("", "v1", "pods").ok_or("no pods")?;
    let value = |i: usize| -> Result<Vec<u8>, String> {
        let (mut admitted, errs) = everynode_apiserver::strategy::admit_create(pods, pod(i))
            .map_err(|e| format!("admitting the bench pod: {e:?}"))?;
        if !errs.is_empty() {
            return Err(format!("the bench pod is invalid: {errs:?}"));
        }
        admitted.set_created(
            everynode_apiserver::registry::new_uid(),
            everynode_apiserver::registry::now(),
        );
        let v = admitted.into_value().map_err(|e| format!("{e:?}"))?;
        serde_json::to_vec(&v).map_err(|e| e.to_string())
    };
    let values = (0..commits * batch)
        .map(|i| {
            Ok((
                format!("/registry/pods/default/bench-{i:06}"),
                value(i)?.into(),
            ))
        })
        .collect::<Result<Vec<(String, everynode_store::Bytes)>, String>>()?;
    let value_bytes = values.iter().map(|(_, v)| v.len()).sum::<usize>() / values.len().max(1);
    let mut store_runs: Vec<CommitCost> = Vec::new();
    let mut floor_runs: Vec<CommitCost> = Vec::new();
    for _ in 0..rounds {
        for (file, runs) in [
            (RedbFile::AsShipped, &mut floor_runs),
            (RedbFile::Store, &mut store_runs),
        ] {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let cost =
                redb_commit_cost(&dir.path().join("commit.redb"), values.clone(), batch, file)
                    .await
                    .map_err(|e| e.to_string())?;
            runs.push(cost);
        }
    }
    let median = |runs: &[CommitCost], of: fn(&CommitCost) -> Duration| {
        let mut times: Vec<Duration> = runs.iter().map(of).collect();
        times.sort();
        percentile(&times, 0.5)
    };
    let (wall, cpu) = (
        median(&store_runs, |c| c.wall),
        median(&store_runs, |c| c.cpu),
    );
    let (floor_wall, floor_cpu) = (
        median(&floor_runs, |c| c.wall),
        median(&floor_runs, |c| c.cpu),
    );
    let per = |d: Duration| d.as_secs_f64() * 1e6 / commits as f64;
    let rss = peak_rss(std::process::id()).unwrap_or(0);
    if json_out {
        println!(
            "{}",
            json!({
                "benchmark": "commit", "commits": commits, "batch": batch, "rounds": rounds,
                "value_bytes": value_bytes,
                "seconds": wall.as_secs_f64(), "floor_seconds": floor_wall.as_secs_f64(),
                "ratio_to_floor": wall.as_secs_f64() / floor_wall.as_secs_f64(),
                "us_per_commit": per(wall), "floor_us_per_commit": per(floor_wall),
                "cpu_us_per_commit": per(cpu), "floor_cpu_us_per_commit": per(floor_cpu),
                "peak_rss_bytes": rss,
            })
        );
    } else {
        println!(
            "commit: {commits} durable commits of {batch} values (~{value_bytes} bytes each), median of {rounds} rounds"
        );
        println!(
            "  store's file backend: {:.0} us/commit, {:.0} us CPU/commit",
            per(wall),
            per(cpu)
        );
        println!(
            "  redb's own (floor):   {:.0} us/commit, {:.0} us CPU/commit; ratio {:.2}",
            per(floor_wall),
            per(floor_cpu),
            wall.as_secs_f64() / floor_wall.as_secs_f64()
        );
    }
    Ok(())
}

/// Every pod the server holds, as (storage key, its JSON as served, one compact line).
async fn stored_pods(c: &kube::Client) -> Result<Vec<(String, everynode_store::Bytes)>, String> {
    let req = http::Request::get("/api/v1/namespaces/default/pods")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let list: serde_json::Value = c.request(req).await.map_err(|e| format!("list: {e}"))?;
    let items = list["items"]
        .as_array()
        .ok_or("the pod list has no items")?;
    items
        .iter()
        .map(|pod| {
            let name = pod["metadata"]["name"]
                .as_str()
                .ok_or("a pod without a name")?;
            let bytes = serde_json::to_vec(pod).map_err(|e| e.to_string())?;
            Ok((
                format!("/registry/pods/default/{name}"),
                everynode_store::Bytes::from(bytes),
            ))
        })
        .collect()
}

/// The server's (durable commits, writes they carried) from `/metrics`.
async fn store_commits(c: &kube::Client) -> Option<(u64, u64)> {
    let req = http::Request::get("/metrics").body(Vec::new()).ok()?;
    let text = c.request_text(req).await.ok()?;
    let counter = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?
            .trim()
            .parse()
            .ok()
    };
    Some((
        counter("everynode_store_commits_total")?,
        counter("everynode_store_committed_writes_total")?,
    ))
}

pub async fn client(kubeconfig: &Path) -> Result<kube::Client, String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

/// How `bench api`'s clients talk to the server.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiClient {
    /// One HTTP/1.1 connection over TLS per client (hyper and rustls, nothing else): a
    /// load generator that leaves the server most of the two cores it shares with it.
    Raw,
    /// kube-rs clients sharing one `kube::Client` (its connection pool and its tower
    /// stack), as the controllers talk to the server.
    Kube,
}

impl ApiClient {
    fn name(self) -> &'static str {
        match self {
            ApiClient::Raw => "raw",
            ApiClient::Kube => "kube",
        }
    }
}

type RawSender = hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>;

/// One of `bench api`'s clients.
enum Creator {
    Raw {
        sender: RawSender,
        authorization: http::HeaderValue,
    },
    Kube {
        client: kube::Client,
        pods: kube::core::Request,
    },
}

const BENCH_PODS: &str = "/api/v1/namespaces/default/pods";

impl Creator {
    /// A client of the server whose data dir is `dir` (`kube` is the bench's own
    /// kube-rs client for it).
    async fn connect(kind: ApiClient, kube: &kube::Client, dir: &Path) -> Result<Creator, String> {
        match kind {
            ApiClient::Kube => Ok(Creator::Kube {
                client: kube.clone(),
                pods: kube::core::Request::new(BENCH_PODS),
            }),
            ApiClient::Raw => {
                let (sender, authorization) = raw_connection(dir).await?;
                Ok(Creator::Raw {
                    sender,
                    authorization,
                })
            }
        }
    }

    /// POSTs one pre-encoded pod and checks the answer for 201 Created and a
    /// resourceVersion, without decoding it.
    async fn create(&mut self, body: Vec<u8>) -> Result<(), String> {
        match self {
            Creator::Kube { client, pods } => {
                let req = pods
                    .create(&PostParams::default(), body)
                    .map_err(|e| e.to_string())?;
                let answer = client.request_text(req).await.map_err(|e| e.to_string())?;
                if !answer.contains("\"resourceVersion\"") {
                    return Err(format!("the answer is not an object: {answer}"));
                }
            }
            Creator::Raw {
                sender,
                authorization,
            } => {
                let req = http::Request::post(BENCH_PODS)
                    .header(http::header::HOST, "everynode")
                    .header(http::header::AUTHORIZATION, authorization.clone())
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(http::header::ACCEPT, "application/json")
                    .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                sender.ready().await.map_err(|e| e.to_string())?;
                let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let answer = http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                if status != http::StatusCode::CREATED || !contains(&answer, b"\"resourceVersion\"")
                {
                    return Err(format!("{status}: {}", String::from_utf8_lossy(&answer)));
                }
            }
        }
        Ok(())
    }
}

/// An HTTP/1.1 connection over TLS to the server whose data dir is `dir` (its CA, admin
/// token and kubeconfig's address), and the Authorization header to send on it.
async fn raw_connection(dir: &Path) -> Result<(RawSender, http::HeaderValue), String> {
    use rustls::pki_types::pem::PemObject;
    let ca = rustls::pki_types::CertificateDer::from_pem_file(dir.join("ca.crt"))
        .map_err(|e| format!("the server's CA: {e}"))?;
    let token = std::fs::read_to_string(dir.join("admin.token"))
        .map_err(|e| format!("the admin token: {e}"))?;
    let authorization = http::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .map_err(|e| e.to_string())?;
    let kc =
        kube::config::Kubeconfig::read_from(dir.join("kubeconfig")).map_err(|e| e.to_string())?;
    let server = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or("the kubeconfig names no server")?;
    let addr = server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).map_err(|e| e.to_string())?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {addr}: {e}"))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok((sender, authorization))
}

/// Connects one creator per entry of `bodies` and has each create its pods in order,
/// all at once; returns the time from the first create to the last answer and every
/// create's latency.
async fn drive_creators(
    kind: ApiClient,
    kube: &kube::Client,
    dir: &Path,
    bodies: Vec<Vec<(usize, Vec<u8>)>>,
) -> Result<(Duration, Vec<Duration>), String> {
    let mut creators = Vec::with_capacity(bodies.len());
    for _ in 0..bodies.len() {
        creators.push(Creator::connect(kind, kube, dir).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (mine, mut creator) in bodies.into_iter().zip(creators) {
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len());
            for (i, body) in mine {
                let t = Instant::now();
                creator
                    .create(body)
                    .await
                    .map_err(|e| format!("create {i}: {e}"))?;
                lat.push(t.elapsed());
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok((start.elapsed(), lat))
}

async fn api(
    creates: usize,
    clients: usize,
    client_kind: ApiClient,
    json_out: bool,
) -> Result<(), String> {
    let mut server = ChildServer::start().await?;
    let pid = server.pid().ok_or("the server exited early")?;
    let c = client(&server.kubeconfig).await?;
    let commits0 = store_commits(&c).await;
    let server_stat = format!("/proc/{pid}/stat");
    let (server_cpu0, bench_cpu0) = (cpu_time_of(&server_stat), process_cpu_time());
    // The clients send pre-encoded bodies and check each answer for its status (201)
    // and a resourceVersion, without decoding it: the bench measures the server, and the
    // clients share its two cores.
    let mut bodies: Vec<Vec<(usize, Vec<u8>)>> = vec![Vec::new(); clients];
    for i in 0..creates {
        let body = serde_json::to_vec(&pod(i)).map_err(|e| e.to_string())?;
        bodies[i % clients].push((i, body));
    }
    let (elapsed, mut lat) = match client_kind {
        // The raw clients run on a single-threaded runtime of their own: one thread
        // polls all sixteen connections, with none of the cross-thread wake-ups a
        // work-stealing pool adds to every answer.
        ApiClient::Raw => {
            let dir = server._dir.path().to_path_buf();
            let c = c.clone();
            tokio::task::spawn_blocking(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?
                    .block_on(drive_creators(client_kind, &c, &dir, bodies))
            })
            .await
            .map_err(|e| e.to_string())??
        }
        ApiClient::Kube => drive_creators(client_kind, &c, server._dir.path(), bodies).await?,
    };
    let cpu_secs = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
        (Some(b), Some(a)) => a.saturating_sub(b).as_secs_f64(),
        _ => 0.0,
    };
    let server_cpu = cpu_secs(server_cpu0, cpu_time_of(&server_stat));
    // Mean writes per durable commit during the creates (the floor commits 16 at a time).
    let mean_batch = match (commits0, store_commits(&c).await) {
        (Some((c0, w0)), Some((c1, w1))) if c1 > c0 => (w1 - w0) as f64 / (c1 - c0) as f64,
        _ => 0.0,
    };
    let client_cpu = cpu_secs(bench_cpu0, process_cpu_time());
    let rss = peak_rss(pid).unwrap_or(0);
    let stored = stored_pods(&c).await?;
    let _ = server.child.kill().await;
    if stored.len() != creates {
        return Err(format!("{} pods stored, {creates} created", stored.len()));
    }
    // The floor: the same objects, as the server stored them (defaulted, with uid and
    // status), written straight into a fresh redb file, group-committed in batches as
    // large as the number of concurrent clients. The disk's speed wanders on a shared
    // VM: the median of FLOOR_RUNS runs.
    // Beside it, for reference, redb as shipped: its own file backend, whose file grows
    // sparse (the store zero-fills ahead, `everynode-store/src/file.rs`), the two
    // alternating.
    let floor_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut floor_runs = Vec::with_capacity(FLOOR_RUNS);
    let mut shipped_runs = Vec::with_capacity(FLOOR_RUNS);
    for i in 0..FLOOR_RUNS {
        floor_runs.push(floor_run(floor_dir.path(), i, &stored, clients).await?);
        let shipped = everynode_store::RedbFile::AsShipped;
        shipped_runs.push(floor_run_on(floor_dir.path(), i, &stored, clients, shipped).await?);
    }
    floor_runs.sort();
    shipped_runs.sort();
    let floor = percentile(&floor_runs, 0.5);
    let shipped = percentile(&shipped_runs, 0.5);
    lat.sort();
    let rate = creates as f64 / elapsed.as_secs_f64();
    let floor_rate = creates as f64 / floor.as_secs_f64();
    let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
    if json_out {
        println!(
            "{}",
            json!({
                "benchmark": "api", "creates": creates, "clients": clients,
                "client": client_kind.name(),
                "seconds": elapsed.as_secs_f64(), "creates_per_second": rate,
                "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3,
                "peak_rss_bytes": rss, "floor_seconds": floor.as_secs_f64(), "floor_rate": floor_rate,
                "floor_runs_seconds": floor_runs.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
                "ratio_to_floor": elapsed.as_secs_f64() / floor.as_secs_f64(),
                "as_shipped_floor_seconds": shipped.as_secs_f64(),
                "as_shipped_floor_rate": creates as f64 / shipped.as_secs_f64(),
                "ratio_to_as_shipped_floor": elapsed.as_secs_f64() / shipped.as_secs_f64(),
                "server_cpu_seconds": server_cpu, "client_cpu_seconds": client_cpu,
                "mean_commit_batch": mean_batch,
            })
        );
    } else {
        println!(
            "api: {creates} pod creates from {clients} {} clients over TLS in {:.2} s",
            client_kind.name(),
            elapsed.as_secs_f64()
        );
        println!(
            "  {rate:.0} creates/s, p50 {:.2} ms, p99 {:.2} ms, server peak RSS {} MiB",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            rss / (1 << 20)
        );
        println!(
            "  CPU during the creates: server {server_cpu:.2} s, clients (this process) {client_cpu:.2} s; {mean_batch:.1} writes per commit"
        );
        println!(
            "  floor (raw redb writes on the store's zero-filled file, batches of {clients}, median of {FLOOR_RUNS}): {:.2} s = {floor_rate:.0} writes/s; ratio {:.2}x",
            floor.as_secs_f64(),
            elapsed.as_secs_f64() / floor.as_secs_f64()
        );
        println!(
            "  redb as shipped (sparse file), same batches: {:.2} s = {:.0} writes/s; ratio {:.2}x",
            shipped.as_secs_f64(),
            creates as f64 / shipped.as_secs_f64(),
            elapsed.as_secs_f64() / shipped.as_secs_f64()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------
// In-process cluster benchmarks: `bench converge` and `bench rollout`
// ---------------------------------------------------------------------------------------

/// How many times the in-process benchmarks measure their floor (the median is reported).
const FLOOR_RUNS: usize = 3;

/// The batch of the reference floor: the DaemonSet controller's create burst, the most
/// writes any one component of this workload keeps in flight.
const REFERENCE_BATCH: usize = 64;

/// The DaemonSet the in-process benchmarks roll out: one nginx container, nothing to
/// tolerate.
const BENCH_DS: &str = "bench-nginx";
/// Its image, and the one `bench rollout` changes it to.
const BENCH_IMAGE: &str = "nginx:1.27";
const ROLLOUT_IMAGE: &str = "nginx:1.28";

/// The benchmark DaemonSet, with `updateStrategy` when one is given (else the API's
/// default: RollingUpdate, maxUnavailable 1).
fn bench_daemonset(update_strategy: Option<serde_json::Value>) -> serde_json::Value {
    let mut ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": { "name": BENCH_DS, "namespace": "default", "labels": { "app": BENCH_DS } },
        "spec": {
            "selector": { "matchLabels": { "app": BENCH_DS } },
            "template": {
                "metadata": { "labels": { "app": BENCH_DS } },
                "spec": { "containers": [{ "name": "nginx", "image": BENCH_IMAGE,
                                           "ports": [{ "name": "http", "containerPort": 80 }] }] },
            },
        },
    });
    if let Some(strategy) = update_strategy {
        ds["spec"]["updateStrategy"] = strategy;
    }
    ds
}

/// CPU time (user + system, all threads) this process has used so far. `/proc` counts it
/// in USER_HZ ticks, which Linux fixes at 100 per second in its userspace ABI.
fn process_cpu_time() -> Option<Duration> {
    cpu_time_of("/proc/self/stat")
}

/// CPU time (user + system, all threads) of the process whose `/proc/PID/stat` is `path`.
fn cpu_time_of(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Field 2, the command name, may hold spaces and parentheses: skip past its last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The DaemonSet's status says every one of `n` pods is scheduled, up to date, ready and
/// available, for the current generation of its spec.
fn converged(ds: &k8s_openapi::api::apps::v1::DaemonSet, n: usize) -> bool {
    let Ok(n) = i32::try_from(n) else {
        return false;
    };
    let Some(st) = ds.status.as_ref() else {
        return false;
    };
    st.observed_generation.is_some()
        && st.observed_generation == ds.metadata.generation
        && st.desired_number_scheduled == n
        && st.current_number_scheduled == n
        && st.updated_number_scheduled == Some(n)
        && st.number_ready == n
        && st.number_available == Some(n)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The node a stored pod is bound to (`"nodeName":"…"` in its compact JSON).
fn node_name_in(value: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"nodeName\":\"";
    let at = value.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = value.get(at..)?.iter().position(|&b| b == b'"')?;
    String::from_utf8(value.get(at..at + len)?.to_vec()).ok()
}

/// What happened to the pods of the default namespace during a measured window, from the
/// store's own event stream (so recording it costs no API call), as times since the window
/// opened, in the order the store wrote them. Where it matters, the node the pod is bound
/// to is kept too. The stored objects are compact JSON, so a byte search tells a binding
/// (`"nodeName":` appears), a start (`"phase":"Running"` appears) and a graceful deletion
/// (`"deletionTimestamp":` appears) apart without decoding the pod. The writes of every
/// other resource are only timed (`other`, by resource).
#[derive(Clone, Debug, Default)]
struct PodLog {
    created: Vec<Duration>,
    bound: Vec<Duration>,
    running: Vec<(Duration, String)>,
    deleting: Vec<(Duration, String)>,
    removed: Vec<Duration>,
    other: std::collections::BTreeMap<String, Vec<Duration>>,
}

fn nth(times: &[Duration], n: usize) -> Option<Duration> {
    n.checked_sub(1).and_then(|i| times.get(i)).copied()
}

fn nth_of(events: &[(Duration, String)], n: usize) -> Option<Duration> {
    n.checked_sub(1).and_then(|i| events.get(i)).map(|e| e.0)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts recording the writes after revision `after` into a [`PodLog`]; stop it with
/// [`finish_recording`].
fn record_pods(
    store: everynode_store::Store,
    after: everynode_store::Revision,
    start: Instant,
) -> (
    std::sync::Arc<std::sync::Mutex<PodLog>>,
    tokio::task::JoinHandle<()>,
) {
    use futures::StreamExt;
    let log = std::sync::Arc::new(std::sync::Mutex::new(PodLog::default()));
    let task = {
        let log = log.clone();
        tokio::spawn(async move {
            let Ok(mut events) = store.watch("/registry/", after) else {
                return;
            };
            while let Some(Ok(e)) = events.next().await {
                let at = start.elapsed();
                let mut log = lock(&log);
                if !e.kv.key.starts_with("/registry/pods/default/") {
                    let resource = e.kv.key.split('/').nth(2).unwrap_or("?");
                    match log.other.get_mut(resource) {
                        Some(times) => times.push(at),
                        None => {
                            log.other.insert(resource.to_string(), vec![at]);
                        }
                    }
                    continue;
                }
                if e.kind == everynode_store::EventKind::Delete {
                    log.removed.push(at);
                    continue;
                }
                let prev = e.prev.as_ref().map(|p| &p.value[..]);
                let newly = |needle: &[u8]| {
                    contains(&e.kv.value, needle) && !prev.is_some_and(|p| contains(p, needle))
                };
                let node = || node_name_in(&e.kv.value).unwrap_or_default();
                if prev.is_none() {
                    log.created.push(at);
                }
                if newly(b"\"nodeName\":") {
                    log.bound.push(at);
                }
                if newly(b"\"phase\":\"Running\"") {
                    log.running.push((at, node()));
                }
                if newly(b"\"deletionTimestamp\":") {
                    log.deleting.push((at, node()));
                }
            }
        })
    };
    (log, task)
}

/// Waits (at most 5 s) until the log holds what `done` wants — the store's event stream
/// may trail the moment the status was seen complete — then stops recording.
async fn finish_recording(
    log: std::sync::Arc<std::sync::Mutex<PodLog>>,
    task: tokio::task::JoinHandle<()>,
    done: impl Fn(&PodLog) -> bool,
) -> PodLog {
    let _ = wait_for(Duration::from_secs(5), "the pod log", || done(&lock(&log))).await;
    task.abort();
    std::mem::take(&mut *lock(&log))
}

/// When the last of the N daemon pods was created, bound and reported Running. A stage
/// never reached stays `None`.
#[derive(Clone, Copy, Debug, Default)]
struct PodTimeline {
    created: Option<Duration>,
    bound: Option<Duration>,
    running: Option<Duration>,
}

impl PodTimeline {
    fn of(log: &PodLog, n: usize) -> PodTimeline {
        PodTimeline {
            created: nth(&log.created, n),
            bound: nth(&log.bound, n),
            running: nth_of(&log.running, n),
        }
    }
}

/// Set when the cluster's runtime is being torn down: its tasks then see the API server
/// vanish under them, and their complaints about it are noise.
static CLUSTER_STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The log subscriber of the cluster's threads: `main`'s (RUST_LOG, default `info`, on
/// stderr), silenced once [`CLUSTER_STOPPING`] is set.
fn cluster_dispatch() -> tracing::Dispatch {
    use tracing_subscriber::layer::SubscriberExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .finish()
        .with(tracing_subscriber::filter::FilterFn::new(|_| {
            !CLUSTER_STOPPING.load(std::sync::atomic::Ordering::Relaxed)
        }));
    tracing::Dispatch::new(subscriber)
}

/// Runs `measure` — which starts a cluster and measures it — in a runtime of its own, so
/// that once measured the cluster can be stopped (fleet, controllers and all) before the
/// floor runs in a quiet process.
async fn in_cluster_runtime<T: Send + 'static>(
    measure: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let dispatch = cluster_dispatch();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-cluster")
        .on_thread_start(move || {
            // The guard would restore the global subscriber; the thread keeps this one
            // for as long as it lives.
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .build()
        .map_err(|e| format!("starting the cluster runtime: {e}"))?;
    let measured = rt
        .spawn(measure)
        .await
        .map_err(|e| format!("the measurement task failed: {e}"));
    CLUSTER_STOPPING.store(true, std::sync::atomic::Ordering::Relaxed);
    rt.shutdown_background();
    measured?
}

/// A cluster as `everynode up` runs it — API server (redb store in `data_dir`, durable
/// group commit), controllers and the sim fleet, all on the in-process client path — with
/// `nodes` worker nodes that start pods at once, registered and heartbeating.
struct BenchCluster {
    /// Keeps the API server alive.
    _running: crate::Running,
    store: everynode_store::Store,
    client: kube::Client,
    /// How long registering the nodes took (never part of a measured window).
    register: Duration,
}

async fn start_cluster(
    data_dir: PathBuf,
    nodes: usize,
    progress: &impl Fn(&str),
) -> Result<BenchCluster, String> {
    use everynode_agent::sim::{self, SimNodeSpec, SimOptions};
    let args = crate::ServerArgs {
        data_dir,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        store: crate::StoreKind::Redb,
        bookmark_interval: 60,
        service_cluster_ip_range: Default::default(),
        dns: Default::default(),
        tls_san: Vec::new(),
    };
    let running = crate::start_server(&args).await?;
    let store = running.server.store().clone();
    let client = crate::cluster::in_process_client(&running.server, &running.admin_token)?;
    // Everything `everynode up` runs beside the server, started with no nodes; the nodes
    // are all workers, so the DaemonSet needs no toleration.
    let opts = SimOptions {
        ready_delay: Duration::ZERO,
        ..SimOptions::default()
    };
    let renew = opts.renew_interval;
    let kubelet =
        crate::cluster::in_process_client_as(&running.server, &running.admin_token, "kubelet")?;
    crate::cluster::start(
        client.clone(),
        kubelet,
        0,
        opts.clone(),
        everynode_controllers::nodelifecycle::DEFAULT_GRACE,
    )
    .await?;

    progress(&format!("registering {nodes} sim nodes ..."));
    let specs: Vec<SimNodeSpec> = (1..=nodes)
        .map(|i| SimNodeSpec::worker(&format!("node{i:05}")))
        .collect();
    let t = Instant::now();
    sim::register_many(&client, &specs, opts.concurrency)
        .await
        .map_err(|e| format!("registering nodes: {e}"))?;
    let register = t.elapsed();
    // The fleet creates each node's Lease on its first renewal round after seeing the
    // node; wait for that round so that it does not land in the measured window.
    let lease_wait = renew * 3 + Duration::from_millis(nodes as u64);
    wait_for(lease_wait, "waiting for the sim nodes' Leases", || {
        store.count("/registry/leases/kube-node-lease/") >= nodes
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(BenchCluster {
        _running: running,
        store,
        client,
        register,
    })
}

/// A measured window: the store revision, commit count, time and CPU time at its start.
struct Window {
    rev0: everynode_store::Revision,
    commits0: u64,
    start: Instant,
    cpu0: Option<Duration>,
}

/// A window as measured at its end.
struct Closed {
    elapsed: Duration,
    /// CPU time the whole process used in the window.
    cpu: Option<Duration>,
    rev0: everynode_store::Revision,
    rev1: everynode_store::Revision,
    /// The store revision delta: every API write of the window.
    api_writes: u64,
    /// Durable group commits that carried them.
    commits: u64,
    /// The process's peak RSS (VmHWM) so far.
    peak_rss: u64,
}

impl Window {
    fn open(store: &everynode_store::Store) -> Window {
        Window {
            rev0: store.current_revision(),
            commits0: store.stats().commits,
            start: Instant::now(),
            cpu0: process_cpu_time(),
        }
    }

    fn close(&self, store: &everynode_store::Store) -> Closed {
        let elapsed = self.start.elapsed();
        let cpu = process_cpu_time()
            .zip(self.cpu0)
            .map(|(b, a)| b.saturating_sub(a));
        let (rev1, stats1) = (store.current_revision(), store.stats());
        Closed {
            elapsed,
            cpu,
            rev0: self.rev0,
            rev1,
            api_writes: rev1 - self.rev0,
            commits: stats1.commits.saturating_sub(self.commits0),
            peak_rss: peak_rss(std::process::id()).unwrap_or(0),
        }
    }
}

/// The writes of a window, from the store's history (which keeps the last 100,000).
struct Writes {
    by_resource: std::collections::BTreeMap<String, u64>,
    /// The keys and values written, as far as the history still held them (`complete`).
    written: Vec<(String, everynode_store::Bytes)>,
    complete: bool,
}

fn window_writes(store: &everynode_store::Store, w: &Closed) -> Writes {
    let mut window = Vec::new();
    let mut complete = false;
    for _ in 0..5 {
        let oldest = store.oldest_watchable_revision();
        let from = if oldest <= w.rev0 + 1 {
            w.rev0
        } else {
            oldest + 1_000
        };
        if let Ok(events) = store.events_since("", from) {
            complete = from == w.rev0;
            window = events;
            break;
        }
    }
    let mut by_resource = std::collections::BTreeMap::new();
    let mut written = Vec::new();
    for e in window.iter().filter(|e| e.revision <= w.rev1) {
        let resource = e.kv.key.split('/').nth(2).unwrap_or("?").to_string();
        *by_resource.entry(resource).or_insert(0u64) += 1;
        written.push((e.kv.key.clone(), e.kv.value.clone()));
    }
    Writes {
        by_resource,
        written,
        complete,
    }
}

/// The same-run floor of a window: its writes again (same keys, same bytes), straight
/// into a fresh redb file in durable transactions as large as the store's mean group
/// commit in the window, so it pays for as many fsyncs as the store did.
struct Floor {
    batch: usize,
    /// Median of [`FLOOR_RUNS`].
    median: Duration,
    runs: Vec<Duration>,
    /// The same writes in batches of [`REFERENCE_BATCH`] (median).
    reference: Duration,
}

async fn same_run_floor(dir: &Path, writes: &Writes, w: &Closed) -> Result<Floor, String> {
    let commits = w.commits.max(1);
    let batch = usize::try_from((w.api_writes + commits / 2) / commits)
        .unwrap_or(1)
        .max(1);
    // The disk's fsync latency wanders a lot on a shared VM: take the median of three.
    // A second floor, in batches of REFERENCE_BATCH, shows what fewer, larger commits
    // of the same writes would cost.
    let values = floor_values(&writes.written, w.api_writes);
    let mut runs = Vec::new();
    let mut reference = Vec::new();
    for i in 0..FLOOR_RUNS {
        for (b, out) in [(batch, &mut runs), (REFERENCE_BATCH, &mut reference)] {
            out.push(floor_run(dir, i, &values, b).await?);
        }
    }
    runs.sort();
    reference.sort();
    Ok(Floor {
        batch,
        median: percentile(&runs, 0.5),
        runs,
        reference: percentile(&reference, 0.5),
    })
}

/// Run `i` of a floor: `values` into a fresh redb file under `dir`, `batch` per durable
/// commit (the file is removed afterwards).
async fn floor_run(
    dir: &Path,
    i: usize,
    values: &[(String, everynode_store::Bytes)],
    batch: usize,
) -> Result<Duration, String> {
    floor_run_on(dir, i, values, batch, everynode_store::RedbFile::Store).await
}

/// [`floor_run`] with redb on the given file backend.
async fn floor_run_on(
    dir: &Path,
    i: usize,
    values: &[(String, everynode_store::Bytes)],
    batch: usize,
    file: everynode_store::RedbFile,
) -> Result<Duration, String> {
    let path = dir.join(format!("floor-{i}-{batch}-{file:?}.redb"));
    let took = everynode_store::redb_commit_cost(&path, values.to_vec(), batch, file)
        .await
        .map_err(|e| format!("floor: {e}"))?;
    let _ = std::fs::remove_file(&path);
    Ok(took.wall)
}

impl Floor {
    /// The JSON fields of the floor for a window of `api_writes` writes in `secs`.
    fn json(&self, secs: f64, api_writes: u64) -> serde_json::Value {
        let floor_secs = self.median.as_secs_f64();
        json!({
            "floor_seconds": floor_secs,
            "floor_rate": api_writes as f64 / floor_secs.max(1e-9),
            "floor_batch": self.batch,
            "floor_runs_seconds": self.runs.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
            "reference_batch": REFERENCE_BATCH,
            "reference_floor_seconds": self.reference.as_secs_f64(),
            "ratio_to_floor": secs / floor_secs.max(1e-9),
        })
    }

    fn print(&self, secs: f64, api_writes: u64) {
        let floor_secs = self.median.as_secs_f64();
        println!(
            "  floor (raw redb, same writes, batches of {}, median of {FLOOR_RUNS}): {floor_secs:.2} s = {:.0} writes/s; ratio {:.2}x",
            self.batch,
            api_writes as f64 / floor_secs.max(1e-9),
            secs / floor_secs.max(1e-9)
        );
        println!(
            "  the same writes in batches of {REFERENCE_BATCH}: {:.2} s",
            self.reference.as_secs_f64()
        );
    }
}

/// `a` with the fields of `b` added (both JSON objects).
fn merged(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

fn print_writes(writes: &Writes) {
    let by: Vec<String> = writes
        .by_resource
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    println!(
        "  writes by resource{}: {}",
        if writes.complete {
            ""
        } else {
            " (the part still in the history)"
        },
        by.join(", ")
    );
}

/// `count` writes for the floor: the recorded ones in order, then (if the history had
/// already dropped part of the window) the recorded values again under fresh keys.
fn floor_values(
    written: &[(String, everynode_store::Bytes)],
    count: u64,
) -> Vec<(String, everynode_store::Bytes)> {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if written.is_empty() {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            let (key, value) = &written[i % written.len()];
            if i < written.len() {
                (key.clone(), value.clone())
            } else {
                (format!("{key}#{i}"), value.clone())
            }
        })
        .collect()
}

/// Waits until `done()` holds, checking every 50 ms, or fails with `what` after `limit`.
async fn wait_for(limit: Duration, what: &str, done: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!(
                "{what}: not done after {:.0} s",
                limit.as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Watches the benchmark DaemonSet until `done` accepts it, or fails after `timeout`
/// with the last status it had.
async fn wait_for_daemonset(
    api: &Api<k8s_openapi::api::apps::v1::DaemonSet>,
    timeout: Duration,
    what: &str,
    done: impl Fn(&k8s_openapi::api::apps::v1::DaemonSet) -> bool,
) -> Result<(), String> {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let cfg = watcher::Config::default().fields(&format!("metadata.name={BENCH_DS}"));
    let mut events = watcher(api.clone(), cfg)
        .default_backoff()
        .applied_objects()
        .boxed();
    let wait = async {
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ds) if done(&ds) => return Ok(()),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "bench: watching the DaemonSet"),
            }
        }
        Err("the DaemonSet watch ended".to_string())
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r,
        Err(_) => {
            let status = api
                .get_status(BENCH_DS)
                .await
                .ok()
                .and_then(|d| d.status)
                .map(|s| serde_json::to_string(&s).unwrap_or_default())
                .unwrap_or_default();
            Err(format!(
                "the DaemonSet did not {what} within {} s; last status {status}",
                timeout.as_secs()
            ))
        }
    }
}

/// Checks the pods themselves against what the status claims: `n` pods in all, on `n`
/// different nodes, each Running and Ready and (when `hash` is given) labelled with that
/// revision hash.
fn check_pods(store: &everynode_store::Store, n: usize, hash: Option<&str>) -> Result<(), String> {
    let pods = store
        .list("/registry/pods/default/", None, None, None)
        .map_err(|e| format!("listing pods: {e}"))?;
    let mut ready_nodes = std::collections::HashSet::new();
    let mut other_revision = 0usize;
    for kv in &pods.items {
        let pod: Pod =
            serde_json::from_slice(&kv.value).map_err(|e| format!("decoding {}: {e}", kv.key))?;
        let pod_hash = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CONTROLLER_REVISION_HASH));
        if hash.is_some_and(|h| pod_hash.map(String::as_str) != Some(h)) {
            other_revision += 1;
        }
        let status = pod.status.as_ref();
        let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if let (true, true, Some(node)) = (
            running,
            ready,
            pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ) {
            ready_nodes.insert(node);
        }
    }
    if ready_nodes.len() != n || pods.items.len() != n || other_revision > 0 {
        return Err(format!(
            "the DaemonSet's status says it is done, but {} pods exist ({other_revision} not of the current revision) and {} nodes have a Running, Ready one (want {n})",
            pods.items.len(),
            ready_nodes.len()
        ));
    }
    Ok(())
}

/// The pod label naming the revision a daemon pod was made from.
const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The hash of the benchmark DaemonSet's newest ControllerRevision.
fn newest_revision_hash(store: &everynode_store::Store) -> Result<String, String> {
    use k8s_openapi::api::apps::v1::ControllerRevision;
    let revisions = store
        .list("/registry/controllerrevisions/default/", None, None, None)
        .map_err(|e| format!("listing ControllerRevisions: {e}"))?;
    let mut newest: Option<ControllerRevision> = None;
    for kv in &revisions.items {
        let rev: ControllerRevision =
            serde_json::from_slice(&kv.value).map_err(|e| format!("decoding {}: {e}", kv.key))?;
        if newest.as_ref().is_none_or(|n| rev.revision > n.revision) {
            newest = Some(rev);
        }
    }
    newest
        .and_then(|r| r.metadata.labels?.get(CONTROLLER_REVISION_HASH).cloned())
        .ok_or_else(|| "the DaemonSet has no labelled ControllerRevision".to_string())
}

// ---------------------------------------------------------------------------------------
// `bench converge`
// ---------------------------------------------------------------------------------------

/// What the measured part of `bench converge` found.
struct Converged {
    register: Duration,
    timeline: PodTimeline,
    log: PodLog,
    window: Closed,
    /// Resident memory with the nodes registered, just before the DaemonSet.
    rss_before: u64,
    writes: Writes,
    idle_cpu_percent: f64,
    idle_writes_per_second: f64,
}

async fn converge(
    nodes: usize,
    timeout: Duration,
    idle: Duration,
    json_out: bool,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data_dir = dir.path().join("cluster");
    let m = in_cluster_runtime(measure_converge(data_dir, nodes, timeout, idle, json_out)).await?;
    let floor = same_run_floor(dir.path(), &m.writes, &m.window).await?;
    let w = &m.window;
    let secs = w.elapsed.as_secs_f64();
    let cpu_secs = w.cpu.map(|c| c.as_secs_f64());
    let opt_secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    if json_out {
        let out = json!({
            "benchmark": "converge", "nodes": nodes, "pods": nodes,
            "seconds": secs,
            "register_seconds": m.register.as_secs_f64(),
            "pods_created_seconds": opt_secs(m.timeline.created),
            "pods_bound_seconds": opt_secs(m.timeline.bound),
            "pods_running_seconds": opt_secs(m.timeline.running),
            "cpu_seconds": cpu_secs,
            "api_writes": w.api_writes, "commits": w.commits,
            "writes_per_second": w.api_writes as f64 / secs.max(1e-9),
            "writes_by_resource": m.writes.by_resource,
            "writes_by_resource_complete": m.writes.complete,
            "peak_rss_bytes": w.peak_rss,
            "rss_before_bytes": m.rss_before,
        });
        let out = merged(out, floor.json(secs, w.api_writes));
        let buckets = (w.elapsed.as_secs_f64() / TIMELINE_BUCKET.as_secs_f64()).ceil() as usize + 1;
        let writes_of = |resource: &str| {
            histogram(
                m.log.other.get(resource).into_iter().flatten().copied(),
                buckets,
            )
        };
        let out = merged(
            out,
            json!({ "timeline": {
                "bucket_ms": TIMELINE_BUCKET.as_millis() as u64,
                "created": histogram(m.log.created.iter().copied(), buckets),
                "bound": histogram(m.log.bound.iter().copied(), buckets),
                "running": histogram(m.log.running.iter().map(|e| e.0), buckets),
                "lease_writes": writes_of("leases"), "event_writes": writes_of("events"),
                "daemonset_writes": writes_of("daemonsets"),
            }}),
        );
        let out = merged(
            out,
            json!({
                "idle_seconds": idle.as_secs_f64(),
                "idle_cpu_percent_of_one_core": m.idle_cpu_percent,
                "idle_writes_per_second": m.idle_writes_per_second,
            }),
        );
        println!("{out}");
    } else {
        println!(
            "converge: {nodes} sim nodes, one DaemonSet: every pod Running and Ready in {secs:.2} s"
        );
        let at = |d: Option<Duration>| {
            d.map_or("-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
        };
        println!(
            "  last pod created at {}, bound at {}, Running at {}; {} CPU-seconds used",
            at(m.timeline.created),
            at(m.timeline.bound),
            at(m.timeline.running),
            cpu_secs.map_or("?".to_string(), |c| format!("{c:.1}"))
        );
        println!(
            "  {} API writes ({:.0}/s) in {} commits; peak RSS {} MiB ({} MiB before the DaemonSet); node registration {:.2} s (not counted)",
            w.api_writes,
            w.api_writes as f64 / secs.max(1e-9),
            w.commits,
            w.peak_rss / (1 << 20),
            m.rss_before / (1 << 20),
            m.register.as_secs_f64()
        );
        print_writes(&m.writes);
        floor.print(secs, w.api_writes);
        println!(
            "  idle: {:.1}% of one core, {:.0} writes/s over {} s of heartbeats",
            m.idle_cpu_percent,
            m.idle_writes_per_second,
            idle.as_secs()
        );
    }
    Ok(())
}

async fn measure_converge(
    data_dir: PathBuf,
    nodes: usize,
    timeout: Duration,
    idle: Duration,
    json_out: bool,
) -> Result<Converged, String> {
    use k8s_openapi::api::apps::v1::DaemonSet;

    let progress = |msg: &str| {
        if !json_out {
            eprintln!("{msg}");
        }
    };
    let cluster = start_cluster(data_dir, nodes, &progress).await?;
    let store = &cluster.store;

    progress("creating the DaemonSet ...");
    let ds: DaemonSet = serde_json::from_value(bench_daemonset(None)).map_err(|e| e.to_string())?;
    let ds_api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), "default");
    let rss_before = current_rss().unwrap_or(0);
    let window = Window::open(store);
    let (log, recorder) = record_pods(store.clone(), window.rev0, window.start);
    ds_api
        .create(&PostParams::default(), &ds)
        .await
        .map_err(|e| format!("creating the DaemonSet: {e}"))?;
    wait_for_daemonset(&ds_api, timeout, "converge", |ds| converged(ds, nodes)).await?;
    let closed = window.close(store);
    // Every pod is Running by now, so the log has (or is about to have) them all.
    let log = finish_recording(log, recorder, |l| {
        l.created.len() >= nodes && l.bound.len() >= nodes && l.running.len() >= nodes
    })
    .await;
    let timeline = PodTimeline::of(&log, nodes);
    check_pods(store, nodes, None)?;
    let writes = window_writes(store, &closed);

    // Idle: heartbeats only, over whole renewal periods.
    progress("converged; sampling idle CPU ...");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, idle_rev0, t0) = (process_cpu_time(), store.current_revision(), Instant::now());
    tokio::time::sleep(idle).await;
    let (cpu1, idle_rev1, idle_elapsed) =
        (process_cpu_time(), store.current_revision(), t0.elapsed());
    let idle_cpu_percent = match (cpu0, cpu1) {
        (Some(a), Some(b)) => {
            100.0 * b.saturating_sub(a).as_secs_f64() / idle_elapsed.as_secs_f64().max(1e-9)
        }
        _ => f64::NAN,
    };
    let idle_writes_per_second =
        (idle_rev1 - idle_rev0) as f64 / idle_elapsed.as_secs_f64().max(1e-9);

    Ok(Converged {
        register: cluster.register,
        timeline,
        log,
        window: closed,
        rss_before,
        writes,
        idle_cpu_percent,
        idle_writes_per_second,
    })
}

// ---------------------------------------------------------------------------------------
// `bench rollout`
// ---------------------------------------------------------------------------------------

/// Parses `--max-unavailable`: a whole number of nodes (`50`) or a percentage (`10%`).
pub fn parse_max_unavailable(s: &str) -> Result<IntOrString, String> {
    let s = s.trim();
    if let Some(pct) = s.strip_suffix('%') {
        return match pct.parse::<u8>() {
            Ok(p) if p <= 100 => Ok(IntOrString::String(format!("{p}%"))),
            _ => Err(format!("{s:?}: want a percentage from 0% to 100%")),
        };
    }
    s.parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .map(IntOrString::Int)
        .ok_or_else(|| {
            format!("{s:?}: want a number of nodes (e.g. 50) or a percentage (e.g. 10%)")
        })
}

/// `maxUnavailable` resolved against `desired` nodes as the DaemonSet controller does it
/// (percentages round up; with no surge, 0 means 1).
fn resolve_max_unavailable(value: &IntOrString, desired: usize) -> usize {
    let n = match value {
        IntOrString::Int(i) => usize::try_from(*i).unwrap_or(0),
        IntOrString::String(s) => {
            let pct: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (pct * desired).div_ceil(100)
        }
    };
    n.max(1)
}

/// Time buckets of the rollout's pod timeline.
const TIMELINE_BUCKET: Duration = Duration::from_millis(250);

/// What the measured part of `bench rollout` found.
struct RolledOut {
    register: Duration,
    /// Creating the DaemonSet until it had converged (not measured, for reference).
    initial: Duration,
    window: Closed,
    /// Resident memory with the DaemonSet converged, just before the image change.
    rss_before: u64,
    writes: Writes,
    log: PodLog,
}

/// Per-node time from the old pod being marked for deletion to the new one reporting
/// Running, sorted.
fn node_cycles(log: &PodLog) -> Vec<Duration> {
    let deleting: std::collections::HashMap<&str, Duration> = log
        .deleting
        .iter()
        .map(|(t, node)| (node.as_str(), *t))
        .collect();
    let mut cycles: Vec<Duration> = log
        .running
        .iter()
        .filter_map(|(t, node)| deleting.get(node.as_str()).map(|d| t.saturating_sub(*d)))
        .collect();
    cycles.sort();
    cycles
}

/// Counts per [`TIMELINE_BUCKET`] of `times`, over `buckets` buckets.
fn histogram(times: impl Iterator<Item = Duration>, buckets: usize) -> Vec<u32> {
    let mut out = vec![0u32; buckets];
    let width = TIMELINE_BUCKET.as_secs_f64();
    for t in times {
        let i = ((t.as_secs_f64() / width) as usize).min(buckets.saturating_sub(1));
        if let Some(slot) = out.get_mut(i) {
            *slot += 1;
        }
    }
    out
}

async fn rollout(
    nodes: usize,
    max_unavailable: IntOrString,
    timeout: Duration,
    json_out: bool,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data_dir = dir.path().join("cluster");
    let m = in_cluster_runtime(measure_rollout(
        data_dir,
        nodes,
        max_unavailable.clone(),
        timeout,
        json_out,
    ))
    .await?;
    let floor = same_run_floor(dir.path(), &m.writes, &m.window).await?;
    let w = &m.window;
    let secs = w.elapsed.as_secs_f64();
    let budget = resolve_max_unavailable(&max_unavailable, nodes);
    let rounds = nodes.div_ceil(budget);
    let cycles = node_cycles(&m.log);
    let cycle_ms = |p: f64| percentile(&cycles, p).as_secs_f64() * 1e3;
    let opt_secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let stages = [
        ("old_pods_deleting_seconds", nth_of(&m.log.deleting, nodes)),
        ("old_pods_removed_seconds", nth(&m.log.removed, nodes)),
        ("pods_created_seconds", nth(&m.log.created, nodes)),
        ("pods_bound_seconds", nth(&m.log.bound, nodes)),
        ("pods_running_seconds", nth_of(&m.log.running, nodes)),
    ];
    let buckets = (w.elapsed.as_secs_f64() / TIMELINE_BUCKET.as_secs_f64()).ceil() as usize + 1;
    let deleting = histogram(m.log.deleting.iter().map(|e| e.0), buckets);
    let created = histogram(m.log.created.iter().copied(), buckets);
    let running = histogram(m.log.running.iter().map(|e| e.0), buckets);
    let writes_of = |resource: &str| {
        histogram(
            m.log.other.get(resource).into_iter().flatten().copied(),
            buckets,
        )
    };
    let (lease_writes, event_writes, ds_status) = (
        writes_of("leases"),
        writes_of("events"),
        writes_of("daemonsets"),
    );
    let ds_writes = m.writes.by_resource.get("daemonsets").copied().unwrap_or(0);
    if json_out {
        let mut out = json!({
            "benchmark": "rollout", "nodes": nodes, "pods": nodes,
            "max_unavailable": max_unavailable,
            "max_unavailable_nodes": budget,
            "rounds_at_least": rounds,
            "seconds": secs,
            "seconds_per_round": secs / rounds.max(1) as f64,
            "register_seconds": m.register.as_secs_f64(),
            "initial_converge_seconds": m.initial.as_secs_f64(),
            "node_cycle_ms": { "p50": cycle_ms(0.5), "p90": cycle_ms(0.9), "max": cycle_ms(1.0) },
            "daemonset_status_writes": ds_writes,
            "cpu_seconds": w.cpu.map(|c| c.as_secs_f64()),
            "api_writes": w.api_writes, "commits": w.commits,
            "writes_per_second": w.api_writes as f64 / secs.max(1e-9),
            "writes_by_resource": m.writes.by_resource,
            "writes_by_resource_complete": m.writes.complete,
            "peak_rss_bytes": w.peak_rss,
            "rss_before_bytes": m.rss_before,
        });
        for (key, at) in stages {
            out[key] = json!(opt_secs(at));
        }
        let out = merged(out, floor.json(secs, w.api_writes));
        let out = merged(
            out,
            json!({ "timeline": {
                "bucket_ms": TIMELINE_BUCKET.as_millis() as u64,
                "deleting": deleting, "created": created, "running": running,
                "lease_writes": lease_writes, "event_writes": event_writes,
                "daemonset_writes": ds_status,
            }}),
        );
        println!("{out}");
    } else {
        let mu = match &max_unavailable {
            IntOrString::Int(i) => i.to_string(),
            IntOrString::String(s) => s.clone(),
        };
        println!(
            "rollout: {nodes} sim nodes, maxUnavailable {mu} ({budget} nodes, at least {rounds} rounds): every pod replaced, Running and Ready in {secs:.2} s ({:.2} s per round)",
            secs / rounds.max(1) as f64
        );
        let at = |d: Option<Duration>| {
            d.map_or("-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
        };
        println!(
            "  last old pod marked for deletion at {}, removed at {}; last new pod created at {}, bound at {}, Running at {}",
            at(stages[0].1),
            at(stages[1].1),
            at(stages[2].1),
            at(stages[3].1),
            at(stages[4].1)
        );
        println!(
            "  per node, old pod marked for deletion to new pod Running: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms; {ds_writes} DaemonSet status writes",
            cycle_ms(0.5),
            cycle_ms(0.9),
            cycle_ms(1.0)
        );
        println!(
            "  {} API writes ({:.0}/s) in {} commits; {} CPU-seconds; peak RSS {} MiB ({} MiB before the image change); node registration {:.2} s and the first convergence {:.2} s (not counted)",
            w.api_writes,
            w.api_writes as f64 / secs.max(1e-9),
            w.commits,
            w.cpu
                .map_or("?".to_string(), |c| format!("{:.1}", c.as_secs_f64())),
            w.peak_rss / (1 << 20),
            m.rss_before / (1 << 20),
            m.register.as_secs_f64(),
            m.initial.as_secs_f64()
        );
        print_writes(&m.writes);
        floor.print(secs, w.api_writes);
        let row = |v: &[u32]| {
            v.iter()
                .map(|n| format!("{n:>5}"))
                .collect::<Vec<_>>()
                .join("")
        };
        println!(
            "  per {} ms: pods marked for deletion / created / Running; Lease, Event and DaemonSet writes",
            TIMELINE_BUCKET.as_millis()
        );
        for r in [
            &deleting,
            &created,
            &running,
            &lease_writes,
            &event_writes,
            &ds_status,
        ] {
            println!("    {}", row(r));
        }
    }
    Ok(())
}

async fn measure_rollout(
    data_dir: PathBuf,
    nodes: usize,
    max_unavailable: IntOrString,
    timeout: Duration,
    json_out: bool,
) -> Result<RolledOut, String> {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use kube::api::{Patch, PatchParams};

    let progress = |msg: &str| {
        if !json_out {
            eprintln!("{msg}");
        }
    };
    let cluster = start_cluster(data_dir, nodes, &progress).await?;
    let store = &cluster.store;

    progress("creating the DaemonSet and waiting for it to converge (not timed) ...");
    let strategy =
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": max_unavailable } });
    let ds: DaemonSet =
        serde_json::from_value(bench_daemonset(Some(strategy))).map_err(|e| e.to_string())?;
    let ds_api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), "default");
    let t = Instant::now();
    ds_api
        .create(&PostParams::default(), &ds)
        .await
        .map_err(|e| format!("creating the DaemonSet: {e}"))?;
    wait_for_daemonset(&ds_api, timeout, "converge", |ds| converged(ds, nodes)).await?;
    let initial = t.elapsed();
    check_pods(store, nodes, None)?;
    let old_hash = newest_revision_hash(store)?;
    // Let the last writes of the convergence (events, the final status) land first.
    settle(store, Duration::from_millis(300), Duration::from_secs(5)).await;

    progress(&format!(
        "changing the image to {ROLLOUT_IMAGE} and timing the rollout ..."
    ));
    let rss_before = current_rss().unwrap_or(0);
    let window = Window::open(store);
    let (log, recorder) = record_pods(store.clone(), window.rev0, window.start);
    let patch = json!({ "spec": { "template": { "spec": {
        "containers": [{ "name": "nginx", "image": ROLLOUT_IMAGE }],
    }}}});
    let patched = ds_api
        .patch(BENCH_DS, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map_err(|e| format!("changing the image: {e}"))?;
    let generation = patched.metadata.generation;
    wait_for_daemonset(&ds_api, timeout, "roll out", |ds| {
        ds.metadata.generation >= generation && converged(ds, nodes)
    })
    .await?;
    let mut closed = window.close(store);
    let hash = newest_revision_hash(store)?;
    if hash == old_hash {
        return Err(format!(
            "the image change made no new revision (still {hash})"
        ));
    }
    if check_pods(store, nodes, Some(&hash)).is_err() {
        // The status ran ahead of the pods: the rollout is complete when they are.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match check_pods(store, nodes, Some(&hash)) {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        closed = window.close(store);
    }
    let log = finish_recording(log, recorder, |l| {
        l.deleting.len() >= nodes
            && l.removed.len() >= nodes
            && l.created.len() >= nodes
            && l.bound.len() >= nodes
            && l.running.len() >= nodes
    })
    .await;
    let writes = window_writes(store, &closed);
    Ok(RolledOut {
        register: cluster.register,
        initial,
        window: closed,
        rss_before,
        writes,
        log,
    })
}

/// Waits until the store has taken no write for `quiet`, or `limit` has passed (the sim
/// nodes' lease renewals never stop for long).
async fn settle(store: &everynode_store::Store, quiet: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = store.current_revision();
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = store.current_revision();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}
