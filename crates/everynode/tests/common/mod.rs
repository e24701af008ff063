//! Shared e2e harness: starts the real `everynode` binary on a free port with its own
//! data directory and drives it with the real kubectl (the versioned `kubectl.1.33`
//! that sits beside the target of the `kubectl` dispatcher on PATH).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

/// The versioned kubectl binary (1.33), or `KUBECTL` from the environment.
pub fn kubectl_bin() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return PathBuf::from(k);
    }
    let dispatcher = which("kubectl").expect("kubectl on PATH");
    let target = std::fs::canonicalize(&dispatcher).unwrap_or(dispatcher);
    let versioned = target.parent().map(|d| d.join("kubectl.1.33"));
    match versioned {
        Some(v) if v.exists() => v,
        _ => target,
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.exists())
}

/// Polls `f` until it returns Some, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub struct Server {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub args: Vec<String>,
}

impl Server {
    /// `everynode server` on 127.0.0.1:0 with a fresh data directory.
    pub fn start() -> Server {
        Self::start_with(&["server"])
    }

    /// `everynode up` with `nodes` simulated nodes that start pods after 100 ms.
    pub fn up(nodes: usize) -> Server {
        let n = nodes.to_string();
        Self::start_with(&["up", "--nodes", &n, "--ready-delay-ms", "100"])
    }

    /// `everynode up --runtime process` with `nodes` process nodes (`master` on
    /// 127.0.0.1, `node1` on 127.0.0.2, ...) whose containers run as real processes.
    pub fn up_process(nodes: usize) -> Server {
        let n = nodes.to_string();
        Self::start_with(&["up", "--runtime", "process", "--nodes", &n])
    }

    /// Runs the `everynode` binary itself (e.g. `node add`) against this cluster.
    pub fn everynode(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_everynode"))
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run everynode")
    }

    /// Polls a kubectl command until `check` accepts its stdout.
    pub fn eventually(&self, what: &str, args: &[&str], check: impl Fn(&str) -> bool) -> String {
        wait_for(Duration::from_secs(60), what, || {
            let o = self.kubectl(args);
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            (o.status.success() && check(&out)).then_some(out)
        })
    }

    pub fn start_with(cmd: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let args: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        let mut s = Server {
            child: None,
            dir,
            cache,
            kubeconfig,
            args,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
        let child = Command::new(env!("CARGO_BIN_EXE_everynode"))
            .args(&self.args)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(self.dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start everynode");
        self.child = Some(child);
        let kc = self.kubeconfig.clone();
        wait_for(Duration::from_secs(60), "the server's kubeconfig", || {
            kc.exists().then_some(())
        });
        wait_for(
            Duration::from_secs(60),
            "the server to answer /readyz",
            || {
                let o = self.kubectl(&["get", "--raw", "/readyz"]);
                (o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "ok")
                    .then_some(())
            },
        );
    }

    /// Kills the server with SIGKILL (no clean shutdown) and starts it again on the same data.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill");
            let _ = c.wait();
        }
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(kubectl_bin());
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path());
        c.env_remove("KUBECONFIG");
        c
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run kubectl")
    }

    /// Runs kubectl and returns stdout; panics with stderr if it failed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args);
        assert!(
            o.status.success(),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs kubectl, expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.kubectl(args);
        assert!(
            !o.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// Runs kubectl with `input` on stdin (`-f -`).
    pub fn with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    pub fn apply_yaml(&self, yaml: &str) -> Output {
        self.with_stdin(&["apply", "-f", "-"], yaml)
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl printed JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn example(name: &str) -> String {
    format!("{EXAMPLES}/{name}")
}

/// Splits a kubectl table into rows of whitespace-separated cells (header first).
pub fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// A process on the host, as /proc shows it.
#[derive(Clone, Debug)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub session: i32,
    pub cmdline: String,
}

fn stat_fields(pid: i32) -> Option<(i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    // rest[0] is the state; a zombie has exited already.
    if rest.first() == Some(&"Z") {
        return None;
    }
    Some((rest.get(1)?.parse().ok()?, rest.get(3)?.parse().ok()?))
}

/// Live processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<Proc> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if !cmdline.contains(marker) {
            continue;
        }
        if let Some((ppid, session)) = stat_fields(pid) {
            out.push(Proc {
                pid,
                ppid,
                session,
                cmdline,
            });
        }
    }
    out
}
