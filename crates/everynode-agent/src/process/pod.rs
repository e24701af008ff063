//! One pod on a process node: a task that owns the pod's processes from binding to
//! deletion. It prepares hostPath volumes, runs the init containers one after another to
//! completion, then every container, restarts them by restartPolicy with the crash-loop
//! back-off, runs their probes, writes the pod's status when it changes, and on deletion
//! stops the processes (preStop, SIGTERM to the process group, SIGKILL after the grace
//! period) before confirming the deletion. Decisions come from the pure modules
//! ([`super::backoff`], [`super::probe`], [`super::status`]); this file is the plumbing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use rustix::process::Signal;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::backoff::{self, Backoff};
use super::env::{self, PodFacts};
use super::identity::{self, Identity};
use super::logs::{self, LogWriter};
use super::probe::{self, Kind, Tracker};
use super::procs::{self, Record};
use super::status::{self, ContainerView, State, Terminated};
use super::{NodeCtx, SharedPod};

/// What a pod's worker reacts to.
pub enum PodEvent {
    /// The pod object changed (deletion requested, status written, ...).
    Update(Box<Pod>),
    /// The pod is gone from the API: stop everything and forget it.
    Gone,
    /// The agent is stopping: stop the processes, keep the pod.
    Stop,
    Exited {
        idx: usize,
        seq: u64,
        code: i32,
    },
    Probe {
        idx: usize,
        seq: u64,
        kind: Kind,
        result: Result<(), String>,
    },
}

pub type PodTx = mpsc::UnboundedSender<PodEvent>;

fn now_ts() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A running instance of a container.
struct Run {
    pid: i32,
    seq: u64,
    started: Instant,
    started_at: String,
    /// How its exec probes and hooks run: as the process itself.
    exec: Exec,
    tasks: Vec<JoinHandle<()>>,
    cgroup: Option<PathBuf>,
    killing: bool,
}

/// How a container's commands run: its process, exec probes and hooks.
#[derive(Clone)]
struct Exec {
    env: Vec<(String, String)>,
    working_dir: String,
    /// Who they run as (None: as the agent).
    identity: Option<Identity>,
}

struct Ctr {
    spec: Container,
    init: bool,
    view: ContainerView,
    backoff: Backoff,
    /// When to start the next instance; None: not (done for good, or cannot run).
    next_start: Option<Instant>,
    ran_before: bool,
    run: Option<Run>,
    probes: Vec<(probe::Spec, Tracker)>,
    seq: u64,
}

pub struct Worker {
    ctx: Arc<NodeCtx>,
    pod: Pod,
    uid: String,
    ns: String,
    name: String,
    tx: PodTx,
    ctrs: Vec<Ctr>,
    start_time: String,
    last_written: Option<Value>,
    write_retry: bool,
    /// When to write the status again because the stored Ready differs from what this
    /// agent wrote (at most once per [`STATUS_RESYNC`], as a kubelet's status sync).
    status_resync: Option<Instant>,
    volumes_ready: bool,
    volume_retry: Option<Instant>,
    stopping: bool,
    /// Whether the pod was told that its limits are not enforced (once per pod).
    limits_noted: bool,
    /// NodeIP:hostPort forwards to the pod's container ports; dropped with the worker.
    host_ports: Vec<super::proxy::Listener>,
}

fn restart_policy(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into())
}

/// How soon an agent writes its view of a pod's status again after someone else changed
/// it (the node lifecycle marks pods not Ready while their node is not).
const STATUS_RESYNC: Duration = Duration::from_secs(5);

impl Worker {
    pub fn new(ctx: Arc<NodeCtx>, pod: Pod, tx: PodTx) -> Worker {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let now = Instant::now();
        let mut ctrs = Vec::new();
        let previous = |init: bool, name: &str| {
            let list = if init {
                &status.init_container_statuses
            } else {
                &status.container_statuses
            };
            list.iter().flatten().find(|s| s.name == name).cloned()
        };
        for (init, c) in spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| (true, c))
            .chain(spec.containers.iter().map(|c| (false, c)))
        {
            let image = c.image.clone().unwrap_or_default();
            let mut view = ContainerView::waiting(&c.name, &image, "ContainerCreating");
            let mut next_start = Some(now);
            let mut ran_before = false;
            // An earlier agent ran this pod: continue its counts. Its processes were
            // killed when this agent started (see procs::Ledger).
            if let Some(prev) = previous(init, &c.name) {
                let st = prev.state.clone().unwrap_or_default();
                let had_run = st.running.is_some()
                    || st.terminated.is_some()
                    || prev
                        .last_state
                        .as_ref()
                        .is_some_and(|l| l.terminated.is_some());
                let policy = restart_policy(&pod);
                if let Some(t) = st.terminated.as_ref().filter(|t| {
                    if init {
                        t.exit_code == 0
                    } else {
                        !backoff::should_restart(&policy, t.exit_code)
                    }
                }) {
                    // Finished for good under an earlier agent.
                    view.state = State::Terminated(Terminated {
                        exit_code: t.exit_code,
                        reason: t.reason.clone().unwrap_or_default(),
                        message: t.message.clone(),
                        started_at: t.started_at.as_ref().map(|s| s.0.to_string()),
                        finished_at: t
                            .finished_at
                            .as_ref()
                            .map_or_else(now_ts, |s| s.0.to_string()),
                        container_id: t.container_id.clone(),
                    });
                    view.restart_count = prev.restart_count;
                    next_start = None;
                } else if had_run {
                    ran_before = true;
                    view.restart_count = prev.restart_count;
                    view.last = Some(Terminated {
                        exit_code: 137,
                        reason: "ContainerStatusUnknown".into(),
                        message: Some(
                            "The node agent restarted and stopped the container's process".into(),
                        ),
                        started_at: st
                            .running
                            .and_then(|r| r.started_at)
                            .map(|t| t.0.to_string()),
                        finished_at: now_ts(),
                        container_id: prev.container_id.clone(),
                    });
                }
            }
            ctrs.push(Ctr {
                spec: c.clone(),
                init,
                view,
                backoff: Backoff::default(),
                next_start,
                ran_before,
                run: None,
                probes: Vec::new(),
                seq: 0,
            });
        }
        let start_time = status
            .start_time
            .as_ref()
            .map_or_else(now_ts, |t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        Worker {
            ctx,
            pod,
            uid,
            ns,
            name,
            tx,
            ctrs,
            start_time,
            last_written: None,
            write_retry: false,
            status_resync: None,
            volumes_ready: false,
            volume_retry: None,
            stopping: false,
            limits_noted: false,
            host_ports: Vec::new(),
        }
    }

    fn deleting(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    fn grace(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        Duration::from_secs(secs.max(0) as u64)
    }

    fn facts(&self) -> PodFacts {
        PodFacts {
            node_name: self.ctx.node_name.clone(),
            pod_ip: self.ctx.node_ip.clone(),
            host_ip: self.ctx.node_ip.clone(),
        }
    }

    fn log_dir(&self, c: &str) -> PathBuf {
        logs::pod_dir(&self.ctx.root, &self.ns, &self.name, &self.uid).join(c)
    }

    /// Runs the pod until it is gone or the agent stops.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<PodEvent>) {
        let terminal = matches!(
            self.pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        if terminal {
            for c in &mut self.ctrs {
                c.next_start = None;
            }
        } else {
            self.forward_host_ports().await;
        }
        loop {
            if self.deleting() {
                let grace = self.grace();
                self.stop_all(&mut rx, grace).await;
                self.confirm_deletion().await;
                self.forget();
                return;
            }
            self.step().await;
            if self.status_resync.is_some_and(|t| t <= Instant::now()) {
                self.status_resync = None;
                if self.written_ready() != self.stored_ready() {
                    self.last_written = None;
                }
            }
            self.publish().await;
            let wake = self.next_wake();
            let event = tokio::select! {
                ev = rx.recv() => ev,
                _ = sleep_until(wake) => continue,
            };
            match event {
                None | Some(PodEvent::Stop) => {
                    let grace = self.grace().min(self.ctx.shutdown_grace);
                    self.stop_all(&mut rx, grace).await;
                    return;
                }
                Some(PodEvent::Gone) => {
                    let grace = self.grace();
                    self.stop_all(&mut rx, grace).await;
                    self.forget();
                    return;
                }
                Some(PodEvent::Update(pod)) => {
                    if pod.metadata.uid.as_deref() == Some(self.uid.as_str()) {
                        self.pod = *pod;
                        // Someone else changed what this agent reported (the node
                        // lifecycle marks pods not Ready while their node is not): the
                        // agent writes its view again shortly, not at once, so a node
                        // still seen as not Ready does not trade writes with it.
                        if self.written_ready() != self.stored_ready()
                            && self.status_resync.is_none()
                        {
                            self.status_resync = Some(Instant::now() + STATUS_RESYNC);
                        }
                    }
                }
                Some(ev) => self.handle(ev).await,
            }
        }
    }

    /// The Ready condition's status in the last status this agent wrote.
    fn written_ready(&self) -> Option<&str> {
        self.last_written.as_ref()?["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?["status"]
            .as_str()
    }

    /// The Ready condition's status in the pod as the API server has it.
    fn stored_ready(&self) -> Option<&str> {
        everynode_api::scheduling::pod_condition_status(&self.pod, "Ready")
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut wake = self.volume_retry;
        let mut consider = |t: Instant| {
            wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
        };
        for c in &self.ctrs {
            if c.run.is_none()
                && let Some(t) = c.next_start
            {
                consider(t);
            }
        }
        if self.write_retry {
            consider(Instant::now() + Duration::from_secs(1));
        }
        if let Some(t) = self.status_resync {
            consider(t);
        }
        wake
    }

    async fn handle(&mut self, ev: PodEvent) {
        match ev {
            PodEvent::Exited { idx, seq, code } => self.on_exit(idx, seq, code).await,
            PodEvent::Probe {
                idx,
                seq,
                kind,
                result,
            } => self.on_probe(idx, seq, kind, result).await,
            _ => {}
        }
    }

    /// Starts whatever should run now.
    async fn step(&mut self) {
        if self.stopping {
            return;
        }
        if !self.volumes_ready {
            if self.volume_retry.is_some_and(|t| t > Instant::now()) {
                return;
            }
            match self.prepare_volumes() {
                Ok(()) => {
                    self.volumes_ready = true;
                    self.volume_retry = None;
                }
                Err(msg) => {
                    if self.volume_retry.is_none() {
                        self.event("Warning", "FailedMount", &msg);
                    }
                    self.volume_retry = Some(Instant::now() + Duration::from_secs(5));
                    return;
                }
            }
        }
        let now = Instant::now();
        let n_init = self.ctrs.iter().filter(|c| c.init).count();
        // Init containers: one at a time, in order, each to success.
        for i in 0..n_init {
            let c = &self.ctrs[i];
            if matches!(&c.view.state, State::Terminated(t) if t.exit_code == 0) {
                continue;
            }
            if c.run.is_none() && c.next_start.is_some_and(|t| t <= now) {
                self.start(i).await;
            }
            return;
        }
        for i in n_init..self.ctrs.len() {
            let c = &self.ctrs[i];
            if c.run.is_none() && c.next_start.is_some_and(|t| t <= now) {
                self.start(i).await;
            }
        }
    }

    fn prepare_volumes(&self) -> Result<(), String> {
        let spec = self.pod.spec.as_ref();
        for v in spec.and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
            let Some(hp) = &v.host_path else { continue };
            let path = std::path::Path::new(&hp.path);
            let fail = |why: &str| {
                format!(
                    "MountVolume.SetUp failed for volume {:?} : hostPath type check failed: {} {why}",
                    v.name, hp.path
                )
            };
            match hp.type_.as_deref().unwrap_or("") {
                "DirectoryOrCreate" => {
                    std::fs::create_dir_all(path).map_err(|e| fail(&e.to_string()))?
                }
                "FileOrCreate" => {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|e| fail(&e.to_string()))?;
                }
                "Directory" if !path.is_dir() => return Err(fail("is not a directory")),
                "File" if !path.is_file() => return Err(fail("is not a file")),
                "Socket" | "CharDevice" | "BlockDevice" if !path.exists() => {
                    return Err(fail("does not exist"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn set_waiting(&mut self, i: usize, reason: &str, message: String) {
        let c = &mut self.ctrs[i];
        c.view.state = State::Waiting {
            reason: reason.into(),
            message: Some(message),
        };
        c.view.ready = false;
        c.view.started = false;
        c.next_start = None;
    }

    /// The kubelet's `CreateContainerConfigError`: Waiting until the spec changes.
    fn config_error(&mut self, i: usize, msg: String) {
        self.event("Warning", "Failed", &format!("Error: {msg}"));
        self.set_waiting(i, "CreateContainerConfigError", msg);
    }

    async fn start(&mut self, i: usize) {
        let facts = self.facts();
        let mut base = env::base_env(&self.pod, &facts, &self.ctx.agent_path);
        let spec = self.ctrs[i].spec.clone();
        // The host's /etc/passwd plays the image's: a user's primary group and home.
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let identity =
            match identity::resolve(&self.pod, &spec, identity::Agent::current(), &passwd) {
                Ok(id) => id,
                Err(e) => return self.config_error(i, e.0),
            };
        if let Some(home) = identity.as_ref().and_then(|id| id.home.clone()) {
            for (k, v) in &mut base {
                if k == "HOME" {
                    *v = home.clone();
                }
            }
        }
        let env = match env::container_env(&self.pod, &spec, &facts, base) {
            Ok(e) => e,
            Err(e) => return self.config_error(i, e.0),
        };
        let Some(argv) = env::command_line(&spec, &env) else {
            let msg = format!(
                "container {:?} has no command: the process runtime runs a container's command on the host and does not run images",
                spec.name
            );
            return self.config_error(i, msg);
        };
        let mut probes = Vec::new();
        for (kind, p) in [
            (Kind::Startup, &spec.startup_probe),
            (Kind::Liveness, &spec.liveness_probe),
            (Kind::Readiness, &spec.readiness_probe),
        ] {
            let Some(p) = p else { continue };
            match probe::spec(kind, p, &spec) {
                Ok(s) => probes.push((s.clone(), Tracker::new(kind))),
                Err(msg) => {
                    self.set_waiting(i, "CreateContainerConfigError", msg);
                    return;
                }
            }
        }
        let working_dir = spec
            .working_dir
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/".into());
        {
            let c = &mut self.ctrs[i];
            if c.ran_before {
                c.view.restart_count += 1;
            }
            c.ran_before = true;
            c.seq += 1;
        }
        let instance = self.ctrs[i].view.restart_count;
        let seq = self.ctrs[i].seq;
        let started_at = now_ts();
        let writer =
            match LogWriter::open(&self.log_dir(&spec.name), instance, self.ctx.log_max_bytes) {
                Ok(w) => Arc::new(Mutex::new(w)),
                Err(e) => {
                    self.start_failed(i, format!("creating the log file: {e}"), &started_at)
                        .await;
                    return;
                }
            };
        let program = match env::resolve_program(&argv[0], &env) {
            Ok(p) => p,
            Err(msg) => {
                lock(&writer).finish();
                self.start_failed(i, msg, &started_at).await;
                return;
            }
        };
        if let Err(e) = make_working_dir(std::path::Path::new(&working_dir), identity.as_ref()) {
            lock(&writer).finish();
            let msg = format!(
                "failed to start container {:?}: creating its working directory {working_dir:?}: {e}",
                spec.name
            );
            self.start_failed(i, msg, &started_at).await;
            return;
        }
        let mut cmd = tokio::process::Command::new(&program);
        if let Some(id) = &identity {
            procs::run_as(&mut cmd, id);
        }
        cmd.arg0(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&working_dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = match self.ctx.spawner.spawn(cmd).await {
            Ok(c) => c,
            Err(e) => {
                lock(&writer).finish();
                let msg = format!(
                    "failed to start container {:?}: exec {program:?} in {working_dir:?}: {e}",
                    spec.name
                );
                self.start_failed(i, msg, &started_at).await;
                return;
            }
        };
        let pid = child.id().map_or(0, |p| p as i32);
        let start_ticks = procs::stat(pid).map_or(0, |s| s.start_ticks);
        self.ctx.ledger.add(Record {
            pid,
            start_ticks,
            owner: format!("{}/{}/{}", self.ns, self.name, spec.name),
        });
        let cgroup = self.apply_limits(&spec, pid).await;
        let mut tasks = Vec::new();
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(out, "stdout", writer.clone())));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(err, "stderr", writer.clone())));
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    status
                        .code()
                        .or_else(|| status.signal().map(|s| 128 + s))
                        .unwrap_or(255)
                }
                Err(_) => 255,
            };
            // The group is killed when the leader is gone; the pipes close then.
            procs::signal_group(pid, Signal::KILL);
            for p in pumps {
                let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
            }
            lock(&writer).finish();
            let _ = tx.send(PodEvent::Exited { idx: i, seq, code });
        });
        for (s, _) in &probes {
            tasks.push(tokio::spawn(probe_loop(
                self.tx.clone(),
                i,
                seq,
                s.clone(),
                self.ctx.node_ip.clone(),
                Exec {
                    env: env.clone(),
                    working_dir: working_dir.clone(),
                    identity: identity.clone(),
                },
            )));
        }
        let has_startup = probes.iter().any(|(s, _)| s.kind == Kind::Startup);
        let has_readiness = probes.iter().any(|(s, _)| s.kind == Kind::Readiness);
        let c = &mut self.ctrs[i];
        c.probes = probes;
        c.next_start = None;
        c.view.state = State::Running {
            started_at: started_at.clone(),
        };
        c.view.container_id = Some(format!("process://{pid}"));
        c.view.image_id = format!("process://{program}");
        c.view.started = !has_startup;
        c.view.ready = !has_startup && !has_readiness && !c.init;
        c.run = Some(Run {
            pid,
            seq,
            started: Instant::now(),
            started_at,
            exec: Exec {
                env,
                working_dir,
                identity,
            },
            tasks,
            cgroup,
            killing: false,
        });
        let name = spec.name.clone();
        // A kubelet's two events for a container it starts (1.33's wording).
        self.event("Normal", "Created", &format!("Created container: {name}"));
        self.event("Normal", "Started", &format!("Started container {name}"));
    }

    async fn apply_limits(&mut self, spec: &Container, pid: i32) -> Option<PathBuf> {
        let limits = spec.resources.as_ref().and_then(|r| r.limits.as_ref())?;
        let cpu = limits
            .get("cpu")
            .and_then(|q| everynode_api::quantity::parse_milli(&q.0).ok());
        let memory = limits
            .get("memory")
            .and_then(|q| everynode_api::quantity::parse_value(&q.0).ok());
        if cpu.is_none() && memory.is_none() {
            return None;
        }
        match &self.ctx.cgroup {
            Ok(parent) => {
                let name = format!("everynode-{}-{}-{pid}", self.ctx.node_name, spec.name);
                match super::host::apply_limits(parent, &name, pid as u32, cpu, memory) {
                    Ok(dir) => Some(dir),
                    Err(e) => {
                        tracing::warn!(pod = %self.name, error = %e, "applying resource limits");
                        None
                    }
                }
            }
            Err(why) => {
                if !self
                    .ctx
                    .limits_warned
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(node = %self.ctx.node_name, "resource limits are not enforced: {why}");
                }
                if !self.limits_noted {
                    self.limits_noted = true;
                    let msg = format!(
                        "resource limits of container {:?} are not enforced on this node: {why}",
                        spec.name
                    );
                    self.event("Warning", "LimitsNotEnforced", &msg);
                }
                None
            }
        }
    }

    /// The container could not start (exec failed): an instance that ended at once,
    /// exit code 128, reason StartError, restarted like any failure.
    async fn start_failed(&mut self, i: usize, message: String, started_at: &str) {
        self.event("Warning", "Failed", &format!("Error: {message}"));
        let t = Terminated {
            exit_code: 128,
            reason: "StartError".into(),
            message: Some(message),
            started_at: Some(started_at.to_string()),
            finished_at: now_ts(),
            container_id: None,
        };
        self.after_exit(i, t, Duration::ZERO).await;
    }

    async fn on_exit(&mut self, i: usize, seq: u64, code: i32) {
        let Some(c) = self.ctrs.get_mut(i) else {
            return;
        };
        if c.run.as_ref().map(|r| r.seq) != Some(seq) {
            return;
        }
        let Some(run) = c.run.take() else { return };
        for t in &run.tasks {
            t.abort();
        }
        self.ctx.ledger.remove(run.pid);
        if let Some(dir) = &run.cgroup {
            let _ = std::fs::remove_dir(dir);
        }
        let t = Terminated {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: Some(run.started_at.clone()),
            finished_at: now_ts(),
            container_id: c.view.container_id.clone(),
        };
        self.after_exit(i, t, run.started.elapsed()).await;
    }

    async fn after_exit(&mut self, i: usize, t: Terminated, ran_for: Duration) {
        let policy = restart_policy(&self.pod);
        let pod_label = format!("{}_{}({})", self.name, self.ns, self.uid);
        let stopping = self.stopping;
        let c = &mut self.ctrs[i];
        c.view.ready = false;
        c.probes.clear();
        let restart = !stopping
            && if c.init {
                backoff::should_restart_init(&policy, t.exit_code)
            } else {
                backoff::should_restart(&policy, t.exit_code)
            };
        if !restart {
            c.view.state = State::Terminated(t);
            c.next_start = None;
            return;
        }
        let (wait, next) = c.backoff.after_exit(ran_for);
        c.backoff = next;
        c.next_start = Some(Instant::now() + wait);
        c.view.last = Some(t.clone());
        if wait.is_zero() {
            c.view.state = State::Terminated(t);
            c.view.started = false;
            return;
        }
        let message = format!(
            "back-off {} restarting failed container={} pod={pod_label}",
            human(wait),
            c.spec.name
        );
        c.view.state = State::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: Some(message),
        };
        c.view.started = false;
        let name = c.spec.name.clone();
        let msg = format!("Back-off restarting failed container {name} in pod {pod_label}");
        self.event("Warning", "BackOff", &msg);
    }

    async fn on_probe(&mut self, i: usize, seq: u64, kind: Kind, result: Result<(), String>) {
        let Some(c) = self.ctrs.get_mut(i) else {
            return;
        };
        let Some(run) = c.run.as_mut() else { return };
        if run.seq != seq || run.killing {
            return;
        }
        // Liveness and readiness wait for the startup probe to pass.
        if kind != Kind::Startup && !c.view.started {
            return;
        }
        let Some((spec, tracker)) = c.probes.iter_mut().find(|(s, _)| s.kind == kind) else {
            return;
        };
        let flipped = tracker.observe(result.is_ok(), spec);
        let grace_override = spec.grace_override;
        let Some(ok) = flipped else { return };
        let name = c.spec.name.clone();
        let why = result.err().unwrap_or_default();
        match (kind, ok) {
            (Kind::Readiness, ok) => {
                c.view.ready = ok;
                if !ok {
                    self.event(
                        "Warning",
                        "Unhealthy",
                        &format!("Readiness probe failed: {why}"),
                    );
                }
            }
            (Kind::Startup, true) => {
                c.view.started = true;
                c.view.ready = !c.probes.iter().any(|(s, _)| s.kind == Kind::Readiness);
            }
            (Kind::Liveness | Kind::Startup, false) => {
                self.event(
                    "Warning",
                    "Unhealthy",
                    &format!("{} probe failed: {why}", kind.label()),
                );
                self.event(
                    "Normal",
                    "Killing",
                    &format!(
                        "Container {name} failed {} probe, will be restarted",
                        kind.label().to_lowercase()
                    ),
                );
                let grace = grace_override
                    .map(|g| Duration::from_secs(g.max(0) as u64))
                    .unwrap_or_else(|| {
                        let spec = self.pod.spec.as_ref();
                        Duration::from_secs(
                            spec.and_then(|s| s.termination_grace_period_seconds)
                                .unwrap_or(30)
                                .max(0) as u64,
                        )
                    });
                if let Some(run) = self.ctrs[i].run.as_mut() {
                    run.killing = true;
                    let pid = run.pid;
                    tokio::spawn(async move {
                        procs::signal_group(pid, Signal::TERM);
                        let deadline = Instant::now() + grace;
                        while procs::group_alive(pid) && Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        procs::signal_group(pid, Signal::KILL);
                    });
                }
            }
            (Kind::Liveness, true) => {}
        }
    }

    /// Stops every running container: preStop hooks, SIGTERM to each process group,
    /// SIGKILL to what is left when `grace` is over.
    async fn stop_all(&mut self, rx: &mut mpsc::UnboundedReceiver<PodEvent>, grace: Duration) {
        self.stopping = true;
        for c in &mut self.ctrs {
            c.next_start = None;
        }
        let deadline = Instant::now() + grace;
        let mut hooks = Vec::new();
        for c in &self.ctrs {
            let Some(run) = &c.run else { continue };
            let pre_stop = c
                .spec
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref())
                .and_then(|h| h.exec.as_ref())
                .and_then(|e| e.command.clone())
                .filter(|c| !c.is_empty());
            let pid = run.pid;
            let exec = run.exec.clone();
            hooks.push(tokio::spawn(async move {
                if let Some(cmd) = pre_stop {
                    let spec = probe::Spec {
                        kind: Kind::Liveness,
                        action: probe::Action::Exec(cmd),
                        initial_delay: Duration::ZERO,
                        period: Duration::from_secs(1),
                        timeout: grace.max(Duration::from_secs(1)),
                        success_threshold: 1,
                        failure_threshold: 1,
                        grace_override: None,
                    };
                    let target = probe::Target {
                        default_host: "127.0.0.1",
                        env: &exec.env,
                        working_dir: Some(&exec.working_dir),
                        identity: exec.identity.as_ref(),
                    };
                    let _ = probe::attempt(&spec, &target).await;
                }
                procs::signal_group(pid, Signal::TERM);
            }));
        }
        for h in hooks {
            let _ = tokio::time::timeout_at(deadline, h).await;
        }
        let mut killed = false;
        while self.ctrs.iter().any(|c| c.run.is_some()) {
            let limit = if killed {
                Instant::now() + Duration::from_secs(5)
            } else {
                deadline
            };
            match tokio::time::timeout_at(limit, rx.recv()).await {
                Ok(Some(PodEvent::Exited { idx, seq, code })) => self.on_exit(idx, seq, code).await,
                Ok(Some(PodEvent::Update(pod))) => self.pod = *pod,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    if killed {
                        break;
                    }
                    for c in &self.ctrs {
                        if let Some(run) = &c.run {
                            procs::signal_group(run.pid, Signal::KILL);
                        }
                    }
                    killed = true;
                }
            }
        }
        // Whatever still runs (an exit never reported): its group gets SIGKILL too.
        for c in &mut self.ctrs {
            if let Some(run) = c.run.take() {
                procs::signal_group(run.pid, Signal::KILL);
                for t in &run.tasks {
                    t.abort();
                }
                self.ctx.ledger.remove(run.pid);
            }
        }
    }

    /// The kubelet's final word: delete the pod with grace 0 (this very pod).
    async fn confirm_deletion(&self) {
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = api.delete(&self.name, &dp).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
        {
            tracing::warn!(pod = %self.name, error = %e, "confirming the pod's deletion");
        }
    }

    /// Drops the pod's logs and its entry in the log index.
    fn forget(&self) {
        let dir = logs::pod_dir(&self.ctx.root, &self.ns, &self.name, &self.uid);
        let _ = std::fs::remove_dir_all(dir);
        let mut shared = self.ctx.pods.lock().unwrap_or_else(|p| p.into_inner());
        if shared
            .get(&(self.ns.clone(), self.name.clone()))
            .is_some_and(|p| p.uid == self.uid)
        {
            shared.remove(&(self.ns.clone(), self.name.clone()));
        }
    }

    /// Writes the pod's status if it changed, and shares the containers with the log
    /// server.
    async fn publish(&mut self) {
        let init: Vec<ContainerView> = self
            .ctrs
            .iter()
            .filter(|c| c.init)
            .map(|c| c.view.clone())
            .collect();
        let main: Vec<ContainerView> = self
            .ctrs
            .iter()
            .filter(|c| !c.init)
            .map(|c| c.view.clone())
            .collect();
        {
            let mut shared = self.ctx.pods.lock().unwrap_or_else(|p| p.into_inner());
            shared.insert(
                (self.ns.clone(), self.name.clone()),
                SharedPod {
                    uid: self.uid.clone(),
                    containers: init.iter().chain(main.iter()).cloned().collect(),
                    running: self
                        .ctrs
                        .iter()
                        .filter(|c| matches!(c.view.state, State::Running { .. }))
                        .filter_map(|c| {
                            let run = c.run.as_ref().filter(|r| !r.killing)?;
                            Some((
                                c.spec.name.clone(),
                                super::ContainerExec {
                                    pid: run.pid,
                                    env: run.exec.env.clone(),
                                    working_dir: run.exec.working_dir.clone(),
                                    identity: run.exec.identity.clone(),
                                },
                            ))
                        })
                        .collect(),
                },
            );
        }
        let previous: Vec<Value> = self
            .last_written
            .as_ref()
            .and_then(|s| s["conditions"].as_array().cloned())
            .or_else(|| {
                let conds = self.pod.status.as_ref()?.conditions.clone()?;
                serde_json::to_value(conds).ok()?.as_array().cloned()
            })
            .unwrap_or_default();
        let now = now_ts();
        let frame = status::PodFrame {
            restart_policy: &restart_policy(&self.pod),
            host_ip: &self.ctx.node_ip,
            pod_ip: &self.ctx.node_ip,
            start_time: &self.start_time,
            previous_conditions: &previous,
            now: &now,
        };
        let status = status::pod_status(&frame, &init, &main);
        if self.last_written.as_ref() == Some(&status) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        match api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
        {
            Ok(_) => {
                self.last_written = Some(status);
                self.write_retry = false;
            }
            Err(e) => {
                let gone = matches!(&e, kube::Error::Api(s) if s.code == 404);
                if !gone {
                    tracing::debug!(pod = %self.name, error = %e, "writing pod status");
                }
                self.write_retry = !gone;
            }
        }
    }

    /// Forwards NodeIP:hostPort to NodeIP:containerPort where the two differ (see
    /// [`super::proxy::host_port_forwards`]); a port it cannot bind is reported.
    async fn forward_host_ports(&mut self) {
        let forwards = super::proxy::host_port_forwards(&self.pod);
        let Ok(ip) = self.ctx.node_ip.parse::<std::net::Ipv4Addr>() else {
            return;
        };
        if forwards.is_empty() {
            return;
        }
        let (listeners, errors) = super::proxy::forward_host_ports(ip, &forwards).await;
        self.host_ports = listeners;
        for e in errors {
            self.event("Warning", "HostPortUnavailable", &e);
        }
    }

    /// Records an event about the pod, as the kubelet (counted and rate-limited by the
    /// node's recorder, written in the background).
    fn event(&self, type_: &str, reason: &str, message: &str) {
        self.ctx
            .recorder
            .pod_on_node(&self.pod, &self.ctx.node_name, None, type_, reason, message);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// `10s`, `1m20s`, `5m0s`: Go's duration text, as the kubelet's back-off message has it.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

/// A missing working directory is created, as containerd and runc do; the directories
/// created are owned by the container's user and group when it has its own.
fn make_working_dir(dir: &std::path::Path, id: Option<&Identity>) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&std::path::Path> = dir.ancestors().take_while(|a| !a.exists()).collect();
    std::fs::create_dir_all(dir)?;
    if let Some(id) = id {
        for d in missing {
            std::os::unix::fs::chown(d, Some(id.uid), Some(id.gid))?;
        }
    }
    Ok(())
}

/// Copies one output stream of a process into its log, line by line.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    stream: &'static str,
    writer: Arc<Mutex<LogWriter>>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = jiff::Timestamp::now();
        let mut rest = &buf[..n];
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&rest[..pos]);
            lock(&writer).write_line(stream, &line, true, now);
            line.clear();
            rest = &rest[pos + 1..];
        }
        line.extend_from_slice(rest);
        if line.len() >= logs::MAX_LINE {
            lock(&writer).write_line(stream, &line, false, now);
            line.clear();
        }
    }
    if !line.is_empty() {
        lock(&writer).write_line(stream, &line, true, jiff::Timestamp::now());
    }
}

async fn probe_loop(tx: PodTx, idx: usize, seq: u64, spec: probe::Spec, host: String, exec: Exec) {
    tokio::time::sleep(spec.initial_delay).await;
    let mut tick = tokio::time::interval(spec.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let target = probe::Target {
            default_host: &host,
            env: &exec.env,
            working_dir: Some(&exec.working_dir),
            identity: exec.identity.as_ref(),
        };
        let result = probe::attempt(&spec, &target).await;
        if tx
            .send(PodEvent::Probe {
                idx,
                seq,
                kind: spec.kind,
                result,
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_working_directories_are_made_for_the_containers_user() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b/c");
        make_working_dir(&dir, None).expect("created");
        assert!(dir.is_dir());
        make_working_dir(&dir, None).expect("an existing one is fine");
        // Owned by the container's user: another user when the test may chown.
        let agent = identity::Agent::current();
        let (uid, gid) = if agent.uid == 0 {
            (65534, 65533)
        } else {
            (agent.uid, agent.gid)
        };
        let id = Identity {
            uid,
            gid,
            groups: Vec::new(),
            home: None,
        };
        let dir = root.path().join("x/y");
        make_working_dir(&dir, Some(&id)).expect("created");
        for d in [root.path().join("x"), dir] {
            let meta = std::fs::metadata(&d).expect("meta");
            assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{}", d.display());
        }
        assert_eq!(
            std::fs::metadata(root.path()).expect("meta").uid(),
            agent.uid,
            "what existed is left alone"
        );
        // What cannot be made says why.
        let file = root.path().join("file");
        std::fs::write(&file, "").expect("file");
        assert!(make_working_dir(&file.join("sub"), None).is_err());
    }

    #[test]
    fn durations_read_like_the_kubelet_writes_them() {
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_secs(80)), "1m20s");
        assert_eq!(human(Duration::from_secs(300)), "5m0s");
    }
}
