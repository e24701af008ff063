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
}

pub async fn run(cmd: BenchCmd) -> Result<(), String> {
    match cmd {
        BenchCmd::Api {
            creates,
            clients,
            json,
        } => api(creates, clients.max(1), json).await,
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
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
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
