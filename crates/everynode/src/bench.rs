//! `everynode bench ...`: whole-system benchmarks. Each prints human-readable figures,
//! or with `--json` one JSON object on stdout holding the workload size, the measured
//! time or rate, the same-run machine floor and the server's peak RSS.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Subcommand;
use k8s_openapi::api::core::v1::Pod;
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
}

pub async fn run(cmd: BenchCmd) -> Result<(), String> {
    match cmd {
        BenchCmd::Api {
            creates,
            clients,
            json,
        } => api(creates, clients.max(1), json).await,
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
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
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

pub async fn client(kubeconfig: &Path) -> Result<kube::Client, String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

async fn api(creates: usize, clients: usize, json_out: bool) -> Result<(), String> {
    // The floor: the same objects written straight into a redb file, group-committed in
    // batches as large as the number of concurrent clients.
    let floor_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let values: Vec<(String, everynode_store::Bytes)> = (0..creates)
        .map(|i| {
            let v = serde_json::to_vec(&pod(i)).unwrap_or_default();
            (
                format!("/registry/pods/default/bench-{i:06}"),
                everynode_store::Bytes::from(v),
            )
        })
        .collect();
    let floor =
        everynode_store::raw_redb_floor(&floor_dir.path().join("floor.redb"), values, clients)
            .await
            .map_err(|e| format!("floor: {e}"))?;

    let mut server = ChildServer::start().await?;
    let pid = server.pid().ok_or("the server exited early")?;
    let c = client(&server.kubeconfig).await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..clients {
        let api: Api<Pod> = Api::namespaced(c.clone(), "default");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w;
            while i < creates {
                let p: Pod = serde_json::from_value(pod(i)).map_err(|e| e.to_string())?;
                let t = Instant::now();
                api.create(&PostParams::default(), &p)
                    .await
                    .map_err(|e| format!("create {i}: {e}"))?;
                lat.push(t.elapsed());
                i += clients;
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut lat = Vec::with_capacity(creates);
    for t in tasks {
        lat.extend(t.await.map_err(|e| e.to_string())??);
    }
    let elapsed = start.elapsed();
    let rss = peak_rss(pid).unwrap_or(0);
    let _ = server.child.kill().await;
    lat.sort();
    let rate = creates as f64 / elapsed.as_secs_f64();
    let floor_rate = creates as f64 / floor.as_secs_f64();
    let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
    if json_out {
        println!(
            "{}",
            json!({
                "benchmark": "api", "creates": creates, "clients": clients,
                "seconds": elapsed.as_secs_f64(), "creates_per_second": rate,
                "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3,
                "peak_rss_bytes": rss, "floor_seconds": floor.as_secs_f64(), "floor_rate": floor_rate,
                "ratio_to_floor": elapsed.as_secs_f64() / floor.as_secs_f64(),
            })
        );
    } else {
        println!(
            "api: {creates} pod creates from {clients} clients over TLS in {:.2} s",
            elapsed.as_secs_f64()
        );
        println!(
            "  {rate:.0} creates/s, p50 {:.2} ms, p99 {:.2} ms, server peak RSS {} MiB",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            rss / (1 << 20)
        );
        println!(
            "  floor (raw redb, batches of {clients}): {:.2} s = {floor_rate:.0} writes/s; ratio {:.2}x",
            floor.as_secs_f64(),
            elapsed.as_secs_f64() / floor.as_secs_f64()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// `bench converge`
// ---------------------------------------------------------------------------------------

/// How many times `bench converge` measures its floor (the median is reported).
const FLOOR_RUNS: usize = 3;

/// The batch of the reference floor: the DaemonSet controller's create burst, the most
/// writes any one component of this workload keeps in flight.
const REFERENCE_BATCH: usize = 64;

/// The DaemonSet `bench converge` rolls out: one nginx container, nothing to tolerate.
const CONVERGE_DS: &str = "bench-nginx";

fn converge_daemonset() -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": { "name": CONVERGE_DS, "namespace": "default", "labels": { "app": CONVERGE_DS } },
        "spec": {
            "selector": { "matchLabels": { "app": CONVERGE_DS } },
            "template": {
                "metadata": { "labels": { "app": CONVERGE_DS } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx:1.27",
                                           "ports": [{ "name": "http", "containerPort": 80 }] }] },
            },
        },
    })
}

/// CPU time (user + system, all threads) this process has used so far. `/proc` counts it
/// in USER_HZ ticks, which Linux fixes at 100 per second in its userspace ABI.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
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

/// When the last of the N daemon pods was created, bound and reported Running, from the
/// store's own event stream (so measuring it costs no API call). A stage never reached
/// stays `None`.
#[derive(Clone, Copy, Debug, Default)]
struct PodTimeline {
    created: Option<Duration>,
    bound: Option<Duration>,
    running: Option<Duration>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Follows the pod writes after `after` until `n` pods have been created, bound and
/// reported Running. The stored objects are compact JSON, so a byte search tells a
/// binding (`"nodeName":` appears) and a start (`"phase":"Running"` appears) apart
/// without decoding the pod.
async fn pod_timeline(
    store: everynode_store::Store,
    after: everynode_store::Revision,
    start: Instant,
    n: usize,
) -> PodTimeline {
    use futures::StreamExt;
    let mut t = PodTimeline::default();
    let Ok(mut events) = store.watch("/registry/pods/default/", after) else {
        return t;
    };
    let (mut created, mut bound, mut running) = (0usize, 0usize, 0usize);
    let newly = |e: &everynode_store::Event, needle: &[u8]| {
        contains(&e.kv.value, needle)
            && !e.prev.as_ref().is_some_and(|p| contains(&p.value, needle))
    };
    while let Some(Ok(e)) = events.next().await {
        if e.kind != everynode_store::EventKind::Put {
            continue;
        }
        if e.prev.is_none() {
            created += 1;
        }
        if newly(&e, b"\"nodeName\":") {
            bound += 1;
        }
        if newly(&e, b"\"phase\":\"Running\"") {
            running += 1;
        }
        for (count, at) in [
            (created, &mut t.created),
            (bound, &mut t.bound),
            (running, &mut t.running),
        ] {
            if count >= n && at.is_none() {
                *at = Some(start.elapsed());
            }
        }
        if t.running.is_some() && t.bound.is_some() && t.created.is_some() {
            break;
        }
    }
    t
}

/// What the measured part of `bench converge` found.
struct Converged {
    register: Duration,
    timeline: PodTimeline,
    elapsed: Duration,
    /// CPU time the whole process used while converging.
    cpu: Option<Duration>,
    api_writes: u64,
    commits: u64,
    peak_rss: u64,
    /// Resident memory with the nodes registered, just before the DaemonSet.
    rss_before: u64,
    writes_by_resource: std::collections::BTreeMap<String, u64>,
    /// The keys and values the window wrote, as far as the store's history still held
    /// them (`window_complete`).
    written: Vec<(String, everynode_store::Bytes)>,
    window_complete: bool,
    idle_cpu_percent: f64,
    idle_writes_per_second: f64,
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

/// `bench converge`: the cluster lives in a runtime of its own, so that once it has been
/// measured it can be stopped (fleet, controllers and all) before the floor runs in a
/// quiet process.
async fn converge(
    nodes: usize,
    timeout: Duration,
    idle: Duration,
    json_out: bool,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
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
    let data_dir = dir.path().join("cluster");
    let measured = rt
        .spawn(measure_converge(data_dir, nodes, timeout, idle, json_out))
        .await
        .map_err(|e| format!("the measurement task failed: {e}"))?;
    CLUSTER_STOPPING.store(true, std::sync::atomic::Ordering::Relaxed);
    rt.shutdown_background();
    let m = measured?;

    // The floor: the window's writes again (same keys, same bytes), straight into a
    // fresh redb file in durable transactions as large as the store's mean group commit
    // in the window, so it pays for as many fsyncs as the store did.
    let commits = m.commits.max(1);
    let batch = usize::try_from((m.api_writes + commits / 2) / commits)
        .unwrap_or(1)
        .max(1);
    // The disk's fsync latency wanders a lot on a shared VM: take the median of three.
    // A second floor, in batches of REFERENCE_BATCH, shows what fewer, larger commits
    // of the same writes would cost.
    let values = floor_values(&m.written, m.api_writes);
    let mut floors = Vec::new();
    let mut reference = Vec::new();
    for i in 0..FLOOR_RUNS {
        for (b, out) in [(batch, &mut floors), (REFERENCE_BATCH, &mut reference)] {
            let path = dir.path().join(format!("floor-{i}-{b}.redb"));
            let f = everynode_store::raw_redb_floor(&path, values.clone(), b)
                .await
                .map_err(|e| format!("floor: {e}"))?;
            out.push(f);
            let _ = std::fs::remove_file(&path);
        }
    }
    drop(values);
    floors.sort();
    reference.sort();
    let floor = percentile(&floors, 0.5);
    let reference = percentile(&reference, 0.5);
    let (secs, floor_secs) = (m.elapsed.as_secs_f64(), floor.as_secs_f64());
    let cpu_secs = m.cpu.map(|c| c.as_secs_f64());
    let opt_secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let ratio = secs / floor_secs.max(1e-9);
    let floor_rate = m.api_writes as f64 / floor_secs.max(1e-9);
    if json_out {
        println!(
            "{}",
            json!({
                "benchmark": "converge", "nodes": nodes, "pods": nodes,
                "seconds": secs,
                "register_seconds": m.register.as_secs_f64(),
                "pods_created_seconds": opt_secs(m.timeline.created),
                "pods_bound_seconds": opt_secs(m.timeline.bound),
                "pods_running_seconds": opt_secs(m.timeline.running),
                "cpu_seconds": cpu_secs,
                "api_writes": m.api_writes, "commits": m.commits,
                "writes_per_second": m.api_writes as f64 / secs.max(1e-9),
                "writes_by_resource": m.writes_by_resource,
                "writes_by_resource_complete": m.window_complete,
                "peak_rss_bytes": m.peak_rss,
                "rss_before_bytes": m.rss_before,
                "floor_seconds": floor_secs, "floor_rate": floor_rate, "floor_batch": batch,
                "floor_runs_seconds": floors.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
                "reference_batch": REFERENCE_BATCH,
                "reference_floor_seconds": reference.as_secs_f64(),
                "ratio_to_floor": ratio,
                "idle_seconds": idle.as_secs_f64(),
                "idle_cpu_percent_of_one_core": m.idle_cpu_percent,
                "idle_writes_per_second": m.idle_writes_per_second,
            })
        );
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
            m.api_writes,
            m.api_writes as f64 / secs.max(1e-9),
            m.commits,
            m.peak_rss / (1 << 20),
            m.rss_before / (1 << 20),
            m.register.as_secs_f64()
        );
        let by: Vec<String> = m
            .writes_by_resource
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        println!(
            "  writes by resource{}: {}",
            if m.window_complete {
                ""
            } else {
                " (the part still in the history)"
            },
            by.join(", ")
        );
        println!(
            "  floor (raw redb, same writes, batches of {batch}, median of {FLOOR_RUNS}): {floor_secs:.2} s = {floor_rate:.0} writes/s; ratio {ratio:.2}x"
        );
        println!(
            "  the same writes in batches of {REFERENCE_BATCH}: {:.2} s",
            reference.as_secs_f64()
        );
        println!(
            "  idle: {:.1}% of one core, {:.0} writes/s over {} s of heartbeats",
            m.idle_cpu_percent,
            m.idle_writes_per_second,
            idle.as_secs()
        );
    }
    Ok(())
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

async fn measure_converge(
    data_dir: PathBuf,
    nodes: usize,
    timeout: Duration,
    idle: Duration,
    json_out: bool,
) -> Result<Converged, String> {
    use everynode_agent::sim::{self, SimNodeSpec, SimOptions};
    use futures::StreamExt;
    use k8s_openapi::api::apps::v1::DaemonSet;
    use kube::runtime::{WatchStreamExt, watcher};

    let progress = |msg: &str| {
        if !json_out {
            eprintln!("{msg}");
        }
    };
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
    crate::cluster::start(
        client.clone(),
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

    progress("creating the DaemonSet ...");
    let ds: DaemonSet = serde_json::from_value(converge_daemonset()).map_err(|e| e.to_string())?;
    let ds_api: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let rss_before = current_rss().unwrap_or(0);
    let (rev0, stats0) = (store.current_revision(), store.stats());
    let (start, cpu_start) = (Instant::now(), process_cpu_time());
    let timeline = tokio::spawn(pod_timeline(store.clone(), rev0, start, nodes));
    ds_api
        .create(&PostParams::default(), &ds)
        .await
        .map_err(|e| format!("creating the DaemonSet: {e}"))?;
    let cfg = watcher::Config::default().fields(&format!("metadata.name={CONVERGE_DS}"));
    let mut events = watcher(ds_api.clone(), cfg)
        .default_backoff()
        .applied_objects()
        .boxed();
    let wait = async {
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ds) if converged(&ds, nodes) => return Ok(()),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "bench: watching the DaemonSet"),
            }
        }
        Err("the DaemonSet watch ended".to_string())
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r?,
        Err(_) => {
            let status = ds_api
                .get_status(CONVERGE_DS)
                .await
                .ok()
                .and_then(|d| d.status)
                .map(|s| serde_json::to_string(&s).unwrap_or_default())
                .unwrap_or_default();
            return Err(format!(
                "the DaemonSet did not converge within {} s; last status {status}",
                timeout.as_secs()
            ));
        }
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_start)
        .map(|(b, a)| b.saturating_sub(a));
    let (rev1, stats1) = (store.current_revision(), store.stats());
    let peak_rss = peak_rss(std::process::id()).unwrap_or(0);
    drop(events);
    // Every pod is Running by now, so the timeline has (or is about to have) them all.
    let timeline = tokio::time::timeout(Duration::from_secs(5), timeline)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();

    // Check what the status claims against the pods themselves.
    let pods = store
        .list("/registry/pods/default/", None, None, None)
        .map_err(|e| format!("listing pods: {e}"))?;
    let mut ready_nodes = std::collections::HashSet::new();
    for kv in &pods.items {
        let pod: Pod =
            serde_json::from_slice(&kv.value).map_err(|e| format!("decoding {}: {e}", kv.key))?;
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
    if ready_nodes.len() != nodes || pods.items.len() != nodes {
        return Err(format!(
            "the DaemonSet reports convergence, but {} pods exist and {} nodes have a Running, Ready one (want {nodes})",
            pods.items.len(),
            ready_nodes.len()
        ));
    }
    drop(pods);

    // The window's writes, from the store's history (which keeps the last 100,000).
    let mut window = Vec::new();
    let mut window_complete = false;
    for _ in 0..5 {
        let oldest = store.oldest_watchable_revision();
        let from = if oldest <= rev0 + 1 {
            rev0
        } else {
            oldest + 1_000
        };
        if let Ok(events) = store.events_since("", from) {
            window_complete = from == rev0;
            window = events;
            break;
        }
    }
    let mut writes_by_resource = std::collections::BTreeMap::new();
    let mut written = Vec::new();
    for e in window.iter().filter(|e| e.revision <= rev1) {
        let resource = e.kv.key.split('/').nth(2).unwrap_or("?").to_string();
        *writes_by_resource.entry(resource).or_insert(0u64) += 1;
        written.push((e.kv.key.clone(), e.kv.value.clone()));
    }
    drop(window);

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
        register,
        timeline,
        elapsed,
        cpu,
        api_writes: rev1 - rev0,
        commits: stats1.commits.saturating_sub(stats0.commits),
        peak_rss,
        rss_before,
        writes_by_resource,
        written,
        window_complete,
        idle_cpu_percent,
        idle_writes_per_second,
    })
}
