//! Simulated nodes (runtime `sim`).
//!
//! A simulated node is a Node object annotated `everynode.io/runtime: sim`. Whoever runs a
//! [`Fleet`] (`everynode up` does) adopts every such node it sees: it renews the node's
//! Lease, keeps its Ready condition true, and plays the kubelet for the pods bound to it:
//! Pending (ContainerCreating) → Running and Ready after [`SimOptions::ready_delay`]
//! (a zero delay skips the ContainerCreating write: one status write per pod);
//! images whose tag is [`SimOptions::failing_image_tag`] stay Waiting with `ErrImagePull`
//! then `ImagePullBackOff`; a container whose image is changed in place
//! (`kubectl set image pod/...`) is restarted with the new one, as a kubelet does (one
//! restart more, a new `containerID`, or the pull failure); a pod being deleted is
//! confirmed gone at once (a simulated container stops immediately, well within any
//! grace period).
//!
//! Adding a node is creating such a Node ([`register`]); removing one is deleting it.
//! Annotating it `everynode.io/sim-stopped: "true"` ([`set_stopped`]) silences it: no
//! Lease renewals, no status, no pod started or confirmed deleted, until the annotation
//! goes and the node catches up on what it missed.
//! Thousands of nodes cost one pod watch, one node watch and one lease loop, and a few
//! bytes of state per node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use everynode_controllers::write;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::{KUBELET_VERSION, RUNTIME_ANNOTATION, SIM_INDEX_ANNOTATION, SIM_STOPPED_ANNOTATION};

/// How simulated nodes behave.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Time from a pod's binding to its containers running and ready.
    pub ready_delay: Duration,
    /// Images whose tag equals this never pull (`ErrImagePull`, then `ImagePullBackOff`).
    pub failing_image_tag: String,
    /// The Lease's `leaseDurationSeconds` (the node lifecycle's grace period is based on it).
    pub lease_duration_seconds: i32,
    /// How often each node's Lease is renewed.
    pub renew_interval: Duration,
    /// How often a node posts its status when nothing changed (the kubelet's
    /// `--node-status-report-frequency`): its conditions' `lastHeartbeatTime` moves on.
    pub status_report_interval: Duration,
    /// Concurrent API writes the fleet keeps in flight.
    pub concurrency: usize,
    /// Drive only this node (an `everynode agent` process with the node's own
    /// credential: it watches only its Node and the pods bound to it). Without it, the
    /// fleet drives every simulated node except those run by their own agent
    /// ([`crate::AGENT_ANNOTATION`]).
    pub only_node: Option<String>,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            ready_delay: Duration::from_secs(1),
            failing_image_tag: "non-existent".into(),
            lease_duration_seconds: 40,
            renew_interval: Duration::from_secs(10),
            status_report_interval: Duration::from_secs(300),
            concurrency: 32,
            only_node: None,
        }
    }
}

/// What a simulated node looks like when it registers.
#[derive(Clone, Debug)]
pub struct SimNodeSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    /// Extra annotations on the Node.
    pub annotations: BTreeMap<String, String>,
}

impl SimNodeSpec {
    /// A worker node: 4 CPUs, 8 GiB, 110 pods.
    pub fn worker(name: &str) -> SimNodeSpec {
        SimNodeSpec {
            name: name.to_string(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: "110".into(),
            annotations: BTreeMap::new(),
        }
    }

    /// A control-plane node as kubeadm makes them: the control-plane role label and the
    /// `node-role.kubernetes.io/master:NoSchedule` taint the seeds' clusters carry.
    pub fn control_plane(name: &str) -> SimNodeSpec {
        let mut spec = SimNodeSpec::worker(name);
        spec.labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            String::new(),
        );
        spec.labels
            .insert("node-role.kubernetes.io/master".into(), String::new());
        spec.taints.push(Taint {
            key: "node-role.kubernetes.io/master".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        });
        spec
    }
}

/// A simulated node's InternalIP, from its index: 172.16.0.0/12 holds a million nodes.
pub fn node_ip(index: u32) -> String {
    format!(
        "172.{}.{}.{}",
        16 + (index >> 16 & 0x0f),
        index >> 8 & 0xff,
        index & 0xff
    )
}

/// The node's pod CIDR: 10.X.Y.0/24, one per index below 65,536.
pub fn pod_cidr(index: u32) -> String {
    format!("10.{}.{}.0/24", index >> 8 & 0xff, index & 0xff)
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The Node object a simulated node registers with.
pub fn node_object(spec: &SimNodeSpec, index: u32) -> Value {
    let t = now();
    let mut labels = json!({
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    });
    for (k, v) in &spec.labels {
        labels[k] = json!(v);
    }
    let resources = json!({
        "cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods, "ephemeral-storage": "100Gi",
    });
    let cidr = pod_cidr(index);
    let mut annotations = json!({
        RUNTIME_ANNOTATION: "sim",
        SIM_INDEX_ANNOTATION: index.to_string(),
        "node.alpha.kubernetes.io/ttl": "0",
    });
    for (k, v) in &spec.annotations {
        annotations[k] = json!(v);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": { "podCIDR": cidr, "podCIDRs": [cidr], "taints": spec.taints },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                { "type": "InternalIP", "address": node_ip(index) },
                { "type": "Hostname", "address": spec.name },
            ],
            "conditions": node_conditions(&t, &t),
            "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "simulated", "osImage": "everynode simulated node",
                "containerRuntimeVersion": "sim://0.1.0",
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    })
}

/// Only the heartbeat of the kubelet's four node conditions (a strategic merge patch's
/// list, merged by `type`).
pub(crate) fn heartbeat(at: &str) -> Value {
    let types = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];
    Value::Array(
        types
            .iter()
            .map(|t| json!({ "type": t, "lastHeartbeatTime": at }))
            .collect(),
    )
}

/// The kubelet's four node conditions, all healthy.
pub(crate) fn node_conditions(heartbeat: &str, transition: &str) -> Value {
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": heartbeat, "lastTransitionTime": transition,
        })
    };
    json!([
        cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        cond(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// Errors of the fleet's API calls.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("node {0:?} is not a simulated node")]
    NotSimulated(String),
}

/// When a node is heard from again, how long after the first look at its pods the
/// fleet looks once more (past the node lifecycle's next pass).
const RESYNC_AGAIN: Duration = Duration::from_secs(2);

/// Whether the node carries `everynode.io/sim-stopped: "true"`.
fn sim_stopped(node: &Node) -> bool {
    node.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SIM_STOPPED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Stops (`true`) or restarts (`false`) a simulated node: sets or removes its
/// `everynode.io/sim-stopped` annotation, which the fleet follows. Fails for a node that
/// does not exist or is not simulated.
pub async fn set_stopped(client: &kube::Client, name: &str, stopped: bool) -> Result<(), SimError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get(name).await?;
    if sim_index(&node).is_none() {
        return Err(SimError::NotSimulated(name.to_string()));
    }
    let value = if stopped { json!("true") } else { Value::Null };
    let patch = json!({ "metadata": { "annotations": { SIM_STOPPED_ANNOTATION: value } } });
    nodes
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// Patch parameters for the fleet's heartbeats and pod status writes: their fields are
/// the fleet's own and known to be valid, so the server need not look for unknown ones.
fn own_write() -> PatchParams {
    PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Ignore),
        ..PatchParams::default()
    }
}

fn sim_index(node: &Node) -> Option<u32> {
    let ann = node.metadata.annotations.as_ref()?;
    if ann.get(RUNTIME_ANNOTATION).map(String::as_str) != Some("sim") {
        return None;
    }
    ann.get(SIM_INDEX_ANNOTATION)?.parse().ok()
}

/// Slices of the renewal interval over which Lease renewals are spread.
const LEASE_SLICES: u32 = 20;
/// Lease renewals of one slice in flight at once.
const LEASE_CONCURRENCY: usize = 512;

/// The slice of the renewal interval in which `node` renews its Lease.
fn lease_slice(node: &str) -> u32 {
    // FNV-1a: stable across runs and platforms, and enough to spread names evenly.
    let h = node.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    u32::try_from(h % u64::from(LEASE_SLICES)).unwrap_or(0)
}

/// Registers a simulated node: creates its Node (with the lowest free index) and Lease.
/// An existing node of that name is left as it is. Returns the node's index.
pub async fn register(client: &kube::Client, spec: &SimNodeSpec) -> Result<u32, SimError> {
    let nodes: Api<Node> = Api::all(client.clone());
    if let Some(existing) = nodes.get_opt(&spec.name).await? {
        return Ok(sim_index(&existing).unwrap_or(0));
    }
    let used: HashSet<u32> = nodes
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(sim_index)
        .collect();
    let index = (1..).find(|i| !used.contains(i)).unwrap_or(1);
    let node: Node = serde_json::from_value(node_object(spec, index))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(index)
}

/// Registers several nodes at once (indexes assigned in one pass), `concurrency` at a time.
pub async fn register_many(
    client: &kube::Client,
    specs: &[SimNodeSpec],
    concurrency: usize,
) -> Result<(), SimError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let existing = nodes.list(&ListParams::default()).await?.items;
    let names: HashSet<String> = existing
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    let mut used: HashSet<u32> = existing.iter().filter_map(sim_index).collect();
    let mut next = 1;
    let mut todo = Vec::new();
    for spec in specs.iter().filter(|s| !names.contains(&s.name)) {
        while used.contains(&next) {
            next += 1;
        }
        used.insert(next);
        todo.push(serde_json::from_value::<Node>(node_object(spec, next))?);
    }
    futures::stream::iter(todo)
        .map(|node| {
            let nodes = nodes.clone();
            async move {
                match nodes.create(&PostParams::default(), &node).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(SimError::from(e)),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// How far the fleet has taken a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Creating its containers (or failing to pull their images), or restarting those
    /// whose image changed.
    Starting,
    /// Its status shows its spec (running, or stuck pulling an image); a changed image
    /// starts it again.
    Running,
    /// Being deleted; the final delete is issued.
    Terminating,
}

struct SimNode {
    ip: String,
    uid: String,
    index: u32,
    pods_started: u32,
    /// Stopped with `everynode.io/sim-stopped`: silent until the annotation goes.
    stopped: bool,
    /// Its Ready condition is True, as last seen.
    ready: bool,
    /// It was Ready, then not: its pods may have been marked not Ready meanwhile.
    lapsed: bool,
    /// When its status was last posted (registered, made Ready, or a heartbeat).
    reported: std::time::Instant,
}

#[derive(Default)]
struct FleetState {
    nodes: HashMap<String, SimNode>,
    pods: HashMap<String, Stage>,
    /// Pods that changed while [`Stage::Starting`]: looked at again once started.
    touched: HashSet<String>,
    /// Node names seen during a (re)list, to forget nodes deleted while disconnected.
    relisting: Option<HashSet<String>>,
}

/// Drives every simulated node in the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    client: kube::Client,
    opts: SimOptions,
    state: Arc<Mutex<FleetState>>,
    /// Events from every node's simulated kubelet: repeats counted, as client-go's.
    recorder: everynode_controllers::events::Recorder,
}

fn micro_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl Fleet {
    /// Must be called within a Tokio runtime (events are written by background tasks).
    pub fn new(client: kube::Client, opts: SimOptions) -> Fleet {
        Fleet {
            recorder: everynode_controllers::events::Recorder::new(client.clone(), "kubelet"),
            client,
            opts,
            state: Arc::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, FleetState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than stopping would, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many simulated nodes the fleet currently drives.
    pub fn node_count(&self) -> usize {
        self.state().nodes.len()
    }

    /// Runs the fleet until an unrecoverable error (the watches retry on their own).
    pub async fn run(self) {
        tokio::join!(self.watch_nodes(), self.renew_leases(), self.watch_pods());
    }

    async fn watch_nodes(&self) {
        use kube::runtime::WatchStreamExt;
        let api: Api<Node> = Api::all(self.client.clone());
        let mut cfg = watcher::Config::default();
        if let Some(only) = &self.opts.only_node {
            cfg = cfg.fields(&format!("metadata.name={only}"));
        }
        let mut events = watcher(api, cfg).default_backoff().boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => self.state().relisting = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(node)) => {
                    if let (Some(seen), Some(name)) =
                        (self.state().relisting.as_mut(), node.metadata.name.clone())
                    {
                        seen.insert(name);
                    }
                    self.observe_node(node);
                }
                Ok(watcher::Event::InitDone) => {
                    let mut st = self.state();
                    if let Some(seen) = st.relisting.take() {
                        st.nodes.retain(|name, _| seen.contains(name));
                    }
                }
                Ok(watcher::Event::Apply(node)) => self.observe_node(node),
                Ok(watcher::Event::Delete(node)) => {
                    if let Some(name) = node.metadata.name {
                        self.state().nodes.remove(&name);
                    }
                }
                Err(e) => self.watch_error("node", &e),
            }
        }
    }

    fn observe_node(&self, node: Node) {
        let Some(index) = sim_index(&node) else {
            return;
        };
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let own_agent = node
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(crate::AGENT_ANNOTATION));
        let ours = match &self.opts.only_node {
            Some(only) => *only == name,
            None => !own_agent,
        };
        if !ours {
            return;
        }
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        let stopped = sim_stopped(&node);
        let uid = node.metadata.uid.clone().unwrap_or_default();
        let resumed = {
            let mut st = self.state();
            let entry = st.nodes.entry(name.clone()).or_insert_with(|| SimNode {
                ip: node_ip(index),
                uid: String::new(),
                index,
                pods_started: 0,
                stopped,
                ready,
                lapsed: false,
                reported: std::time::Instant::now(),
            });
            entry.uid = uid.clone();
            entry.index = index;
            let was_ready = std::mem::replace(&mut entry.ready, ready);
            entry.lapsed |= was_ready && !ready;
            // Ready again after a lapse (a first Ready is no news to its pods).
            let back = ready && std::mem::take(&mut entry.lapsed);
            (
                std::mem::replace(&mut entry.stopped, stopped) && !stopped,
                back,
            )
        };
        let (resumed, back) = resumed;
        if stopped || (ready && !resumed && !back) {
            return;
        }
        // Back from a stop, or marked Unknown while its lease lapsed (say, everynode was
        // stopped): a kubelet renews its lease and posts Ready again, and so does the
        // fleet; after a stop it also catches up on the pods bound to it meanwhile.
        let fleet = self.clone();
        tokio::spawn(async move {
            if resumed && let Err(e) = fleet.renew_lease(&name, &uid).await {
                tracing::debug!(node = %name, error = %e, "sim fleet: lease renewal");
            }
            if !ready {
                let api: Api<Node> = Api::all(fleet.client.clone());
                let t = now();
                let patch = json!({ "status": { "conditions": node_conditions(&t, &t) } });
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    tracing::debug!(node = %name, error = %e, "sim fleet: posting Ready");
                }
            }
            // Its pods too: those bound to it meanwhile start, and those the node
            // lifecycle marked not Ready while the node was not are Ready again.
            if resumed || back {
                let pods: Api<Pod> = Api::all(fleet.client.clone());
                let lp = ListParams::default().fields(&format!("spec.nodeName={name}"));
                // Twice: the node lifecycle may still mark a pod or two on the strength
                // of the node's old state; a kubelet's next status sync undoes that.
                for pass in 0..2 {
                    if pass > 0 {
                        tokio::time::sleep(RESYNC_AGAIN).await;
                    }
                    match pods.list(&lp).await {
                        Ok(list) => list.items.into_iter().for_each(|p| fleet.resync_pod(p)),
                        Err(e) => {
                            tracing::warn!(node = %name, error = %e, "sim fleet: listing pods")
                        }
                    }
                }
            }
        });
    }

    /// A watch error (the watcher retries with back-off). An agent running one node
    /// reports lost and regained contact itself, once, so each retry is only a debug line.
    fn watch_error(&self, what: &str, e: &watcher::Error) {
        if self.opts.only_node.is_some() {
            tracing::debug!(error = %e, "sim node: {what} watch");
        } else if everynode_controllers::runtime::server_gone(e) {
            tracing::debug!(error = %e, "sim fleet: {what} watch");
        } else {
            tracing::warn!(error = %e, "sim fleet: {what} watch");
        }
    }

    /// Renews every node's Lease once per interval, spread evenly over it: the interval
    /// is cut into [`LEASE_SLICES`] slices and each node renews in the slice its name
    /// hashes to, so 5,000 nodes write 250 Leases every half second instead of 5,000 at
    /// once every 10 s (a burst that stalls everything else writing meanwhile).
    async fn renew_leases(&self) {
        let slice = (self.opts.renew_interval / LEASE_SLICES).max(Duration::from_millis(1));
        let mut tick = tokio::time::interval(slice);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut turn: u32 = 0;
        loop {
            tick.tick().await;
            let this = turn;
            turn = (turn + 1) % LEASE_SLICES;
            let every = self.opts.status_report_interval;
            let nodes: Vec<(String, String, bool)> = self
                .state()
                .nodes
                .iter_mut()
                .filter(|(name, n)| !n.stopped && lease_slice(name) == this)
                .map(|(name, n)| {
                    let due = n.reported.elapsed() >= every;
                    if due {
                        n.reported = std::time::Instant::now();
                    }
                    (name.clone(), n.uid.clone(), due)
                })
                .collect();
            futures::stream::iter(nodes)
                .map(|(name, uid, due)| async move {
                    if let Err(e) = self.renew_lease(&name, &uid).await {
                        tracing::debug!(node = %name, error = %e, "sim fleet: lease renewal");
                    }
                    if due {
                        self.post_heartbeat(&name).await;
                    }
                })
                // A slice's renewals all at once (up to a bound): the store commits them
                // in a few group commits instead of one per handful.
                .buffer_unordered(self.opts.concurrency.max(LEASE_CONCURRENCY))
                .collect::<()>()
                .await;
        }
    }

    /// A kubelet's periodic status report with nothing changed: every condition's
    /// `lastHeartbeatTime` is now (conditions merge by type; the rest stays).
    async fn post_heartbeat(&self, name: &str) {
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({ "status": { "conditions": heartbeat(&now()) } });
        if let Err(e) = api
            .patch_status(name, &own_write(), &Patch::Strategic(patch))
            .await
        {
            tracing::debug!(node = %name, error = %e, "sim fleet: status heartbeat");
        }
    }

    async fn renew_lease(&self, name: &str, node_uid: &str) -> Result<(), SimError> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let patch = json!({ "spec": { "renewTime": micro_now() } });
        let patch = Patch::Merge(patch);
        match write::patch(&leases, name, false, &own_write(), &patch).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => {
                let lease: Lease = serde_json::from_value(json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": name,
                        "namespace": "kube-node-lease",
                        "ownerReferences": [{
                            "apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid,
                        }],
                    },
                    "spec": {
                        "holderIdentity": name,
                        "leaseDurationSeconds": self.opts.lease_duration_seconds,
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

    async fn watch_pods(&self) {
        use kube::runtime::WatchStreamExt;
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut cfg = watcher::Config::default();
        if let Some(only) = &self.opts.only_node {
            cfg = cfg.fields(&format!("spec.nodeName={only}"));
        }
        let mut events = watcher(api, cfg).default_backoff().boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    self.observe_pod(pod)
                }
                Ok(watcher::Event::Delete(pod)) => {
                    if let Some(uid) = pod.metadata.uid {
                        let mut st = self.state();
                        st.pods.remove(&uid);
                        st.touched.remove(&uid);
                    }
                }
                Ok(_) => {}
                Err(e) => self.watch_error("pod", &e),
            }
        }
    }

    fn observe_pod(&self, pod: Pod) {
        self.take_pod(pod, false)
    }

    /// [`Self::observe_pod`] for a pod listed when its node is heard from again: a
    /// running pod that was marked not Ready meanwhile (the node lifecycle does that
    /// while the node is not Ready) is reported Ready again, as a kubelet back in touch
    /// would. (Between lapses the fleet leaves a pod's Ready condition to whoever sets
    /// it, as kwok does: tests flip it by hand.)
    fn resync_pod(&self, pod: Pod) {
        self.take_pod(pod, true)
    }

    fn take_pod(&self, pod: Pod, resync: bool) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            return;
        };
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let mut guard = self.state();
        let st = &mut *guard;
        let Some(sim) = st.nodes.get_mut(&node) else {
            return;
        };
        if sim.stopped {
            // A silent node's kubelet neither starts pods nor confirms their deletion; the
            // node catches up when it comes back.
            return;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            if st.pods.insert(uid, Stage::Terminating) != Some(Stage::Terminating) {
                tokio::spawn(self.clone().finish_delete(pod));
            }
            return;
        }
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if let Some(stage) = st.pods.get(&uid).copied() {
            if stage == Stage::Starting {
                st.touched.insert(uid);
                return;
            }
            if stage != Stage::Running {
                return;
            }
            if !changed_images(&pod).is_empty() {
                if phase == "Pending" {
                    // Never ran (its image would not pull): start it afresh below.
                    st.pods.remove(&uid);
                } else {
                    st.pods.insert(uid, Stage::Starting);
                    drop(guard);
                    tokio::spawn(self.clone().update_images(pod, node));
                    return;
                }
            } else {
                if resync
                    && everynode_api::scheduling::pod_condition_status(&pod, "Ready")
                        == Some("False")
                {
                    drop(guard);
                    tokio::spawn(self.clone().ready_again(pod));
                }
                return;
            }
        }
        let started = status
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                !cs.is_empty()
                    && cs
                        .iter()
                        .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
            });
        if phase != "Pending" || started {
            // Already reported (the fleet restarted) or finished: nothing to play.
            st.pods.insert(uid, Stage::Running);
            return;
        }
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        sim.pods_started = sim.pods_started.wrapping_add(1);
        let pod_ip = if host_network {
            sim.ip.clone()
        } else {
            format!(
                "10.{}.{}.{}",
                sim.index >> 8 & 0xff,
                sim.index & 0xff,
                2 + sim.pods_started % 250
            )
        };
        let host_ip = sim.ip.clone();
        st.pods.insert(uid, Stage::Starting);
        drop(guard);
        tokio::spawn(self.clone().start_pod(pod, node, host_ip, pod_ip));
    }

    /// A pod's namespace, name, and the API of pods there.
    fn pod_api(&self, pod: &Pod) -> (String, String, Api<Pod>) {
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api = Api::namespaced(self.client.clone(), &ns);
        (ns, name, api)
    }

    async fn start_pod(self, pod: Pod, node: String, host_ip: String, pod_ip: String) {
        let (ns, name, api) = self.pod_api(&pod);
        let containers = pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        let inits = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.clone())
            .unwrap_or_default();
        // Init containers as a kubelet reports them: waiting while the pod starts
        // (`Init:0/N`), then each run to completion (or, a sidecar with restartPolicy
        // Always, running beside the containers).
        let init_statuses = |started_at: Option<&str>| -> Vec<Value> {
            let uid = pod.metadata.uid.as_deref().unwrap_or("");
            inits
                .iter()
                .map(|c| {
                    let image = c.image.clone().unwrap_or_default();
                    let sidecar = c.restart_policy.as_deref() == Some("Always");
                    let mut st = json!({
                        "name": c.name, "image": image, "imageID": "", "ready": false,
                        "restartCount": 0, "started": false,
                        "state": { "waiting": { "reason": "PodInitializing" } },
                    });
                    if let Some(t) = started_at {
                        st["imageID"] = json!(format!("sim://{image}"));
                        st["containerID"] = json!(format!("sim://{uid}-{}", c.name));
                        st["state"] = if sidecar {
                            st["ready"] = json!(true);
                            st["started"] = json!(true);
                            json!({ "running": { "startedAt": t } })
                        } else {
                            st["ready"] = json!(true);
                            json!({ "terminated": { "exitCode": 0, "reason": "Completed",
                                                    "startedAt": t, "finishedAt": t,
                                                    "containerID": format!("sim://{uid}-{}", c.name) } })
                        };
                    }
                    st
                })
                .collect()
        };
        let start_time = now();
        let failing: Vec<&str> = containers
            .iter()
            .filter_map(|c| c.image.as_deref())
            .filter(|image| image_tag(image) == Some(self.opts.failing_image_tag.as_str()))
            .collect();
        let waiting = |reason: &str, message: Option<String>| {
            containers
                .iter()
                .map(|c| {
                    let image = c.image.clone().unwrap_or_default();
                    let mut state = json!({ "reason": reason });
                    if let Some(m) = &message {
                        state["message"] = json!(m.replace("{image}", &image));
                    }
                    json!({
                        "name": c.name, "image": image, "imageID": "", "ready": false,
                        "restartCount": 0, "started": false, "state": { "waiting": state },
                    })
                })
                .collect::<Vec<_>>()
        };
        let pending = |statuses: Vec<Value>, t: &str, initialized: bool| {
            let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
            let unready = format!("containers with unready status: [{}]", names.join(" "));
            let init_names: Vec<&str> = inits.iter().map(|c| c.name.as_str()).collect();
            let incomplete = format!(
                "containers with incomplete status: [{}]",
                init_names.join(" ")
            );
            let initialized_cond = if initialized || inits.is_empty() {
                cond("Initialized", "True", t, None)
            } else {
                cond(
                    "Initialized",
                    "False",
                    t,
                    Some(("ContainersNotInitialized", incomplete.as_str())),
                )
            };
            let mut status = json!({ "status": {
                "phase": "Pending",
                "hostIP": host_ip, "hostIPs": [{ "ip": host_ip }],
                "startTime": start_time,
                "conditions": [
                    cond("PodReadyToStartContainers", "False", t, None),
                    initialized_cond,
                    cond("Ready", "False", t, Some(("ContainersNotReady", unready.as_str()))),
                    cond("ContainersReady", "False", t, Some(("ContainersNotReady", unready.as_str()))),
                    cond("PodScheduled", "True", t, None),
                ],
                "containerStatuses": statuses,
            }});
            if !inits.is_empty() {
                status["status"]["initContainerStatuses"] =
                    json!(init_statuses(initialized.then_some(t)));
            }
            status
        };
        let t = now();
        // With no start delay and nothing to pull in vain, the containers are running
        // before a kubelet's first status sync would go out: one write says it all.
        let unmounted = self.missing_volume(&ns, &pod).await;
        let instant = self.opts.ready_delay.is_zero() && failing.is_empty() && unmounted.is_none();
        if !instant
            && !self
                .patch_status(
                    &api,
                    &name,
                    pending(waiting("ContainerCreating", None), &t, false),
                )
                .await
        {
            return;
        }
        // A volume whose ConfigMap or Secret is missing keeps the pod ContainerCreating,
        // a FailedMount event each try, until the object appears (or the pod goes).
        if let Some(mut why) = unmounted {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let mut wait = Duration::from_secs(1);
            loop {
                self.recorder
                    .pod_on_node(&pod, &node, None, "Warning", "FailedMount", &why);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
                if !matches!(self.state().pods.get(&uid), Some(Stage::Starting)) {
                    return;
                }
                match self.missing_volume(&ns, &pod).await {
                    Some(again) => why = again,
                    None => break,
                }
            }
        }
        tokio::time::sleep(self.opts.ready_delay).await;
        if let Some(image) = failing.first() {
            let pull = pull_error(image);
            let msg = Some(pull.clone());
            if !self
                .patch_status(&api, &name, pending(waiting("ErrImagePull", msg), &t, true))
                .await
            {
                return;
            }
            self.event(&pod, &node, "Failed", &pull);
            self.event(&pod, &node, "Failed", "Error: ErrImagePull");
            tokio::time::sleep(self.opts.ready_delay.max(Duration::from_secs(1))).await;
            let backoff = Some("Back-off pulling image \"{image}\"".to_string());
            if self
                .patch_status(
                    &api,
                    &name,
                    pending(waiting("ImagePullBackOff", backoff), &t, true),
                )
                .await
            {
                self.event(
                    &pod,
                    &node,
                    "BackOff",
                    &format!("Back-off pulling image \"{image}\""),
                );
                self.played(&api, &name, pod.metadata.uid.as_deref().unwrap_or(""))
                    .await;
            }
            return;
        }
        let t = now();
        let running: Vec<Value> = containers
            .iter()
            .map(|c| {
                let image = c.image.clone().unwrap_or_default();
                json!({
                    "name": c.name, "image": image, "imageID": format!("sim://{image}"),
                    "containerID": format!("sim://{}-{}", pod.metadata.uid.as_deref().unwrap_or(""), c.name),
                    "ready": true, "restartCount": 0, "started": true,
                    "state": { "running": { "startedAt": t } },
                })
            })
            .collect();
        let status = json!({ "status": {
            "phase": "Running",
            "hostIP": host_ip, "hostIPs": [{ "ip": host_ip }],
            "podIP": pod_ip, "podIPs": [{ "ip": pod_ip }],
            "startTime": start_time,
            "conditions": [
                cond("PodReadyToStartContainers", "True", &t, None),
                cond("Initialized", "True", &t, None),
                cond("Ready", "True", &t, None),
                cond("ContainersReady", "True", &t, None),
                cond("PodScheduled", "True", &t, None),
            ],
            "containerStatuses": running,
        }});
        let mut status = status;
        if !inits.is_empty() {
            status["status"]["initContainerStatuses"] = json!(init_statuses(Some(&t)));
        }
        if self.patch_status(&api, &name, status).await {
            self.played(&api, &name, pod.metadata.uid.as_deref().unwrap_or(""))
                .await;
        }
    }

    /// A pod's status is written as its spec asks: it is [`Stage::Running`], and looked
    /// at again if it changed meanwhile (a watch event seen while starting is not
    /// acted on).
    async fn played(&self, api: &Api<Pod>, name: &str, uid: &str) {
        let again = {
            let mut st = self.state();
            match st.pods.get_mut(uid) {
                Some(stage) if *stage == Stage::Starting => *stage = Stage::Running,
                _ => return,
            }
            st.touched.remove(uid)
        };
        if again {
            match api.get(name).await {
                Ok(pod) if pod.metadata.uid.as_deref() == Some(uid) => self.take_pod(pod, false),
                Ok(_) => {}
                Err(e) => tracing::debug!(pod = %name, error = %e, "sim fleet: pod"),
            }
        }
    }

    /// Plays a kubelet's answer to containers whose image changed in place: each is
    /// killed and started again with its new image (one restart more, a new container
    /// ID), or stays Waiting with `ErrImagePull`, then `ImagePullBackOff`, when the
    /// image is one that does not pull.
    async fn update_images(self, pod: Pod, node: String) {
        let (_, name, api) = self.pod_api(&pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let status = serde_json::to_value(&pod.status).unwrap_or_default();
        let mut statuses = status["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
        let changed = changed_images(&pod);
        for (i, _) in &changed {
            if statuses[*i]["state"]["running"].is_object() {
                let c = statuses[*i]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let msg = format!("Container {c} definition changed, will be restarted");
                self.event(&pod, &node, "Killing", &msg);
            }
        }
        tokio::time::sleep(self.opts.ready_delay).await;
        let failing = |image: &str| image_tag(image) == Some(self.opts.failing_image_tag.as_str());
        let t = now();
        for (i, image) in &changed {
            let how = if failing(image) {
                Restart::Waiting {
                    reason: "ErrImagePull",
                    message: pull_error(image),
                }
            } else {
                let c = statuses[*i]["name"].as_str().unwrap_or_default();
                let restarts = statuses[*i]["restartCount"].as_i64().unwrap_or(0);
                Restart::Started {
                    container_id: format!("sim://{uid}-{c}-{}", restarts + 1),
                }
            };
            statuses[*i] = restarted_status(&statuses[*i], image, &t, how);
        }
        let write = |statuses: &[Value], t: &str| {
            json!({ "status": {
                "conditions": with_readiness(&conditions, statuses, t),
                "containerStatuses": statuses,
            }})
        };
        if !self.patch_status(&api, &name, write(&statuses, &t)).await {
            return;
        }
        let pulls: Vec<(usize, String)> = changed
            .into_iter()
            .filter(|(_, image)| failing(image))
            .collect();
        for (_, image) in &pulls {
            self.event(&pod, &node, "Failed", &pull_error(image));
            self.event(&pod, &node, "Failed", "Error: ErrImagePull");
        }
        if !pulls.is_empty() {
            tokio::time::sleep(self.opts.ready_delay.max(Duration::from_secs(1))).await;
            let t = now();
            for (i, image) in &pulls {
                let how = Restart::Waiting {
                    reason: "ImagePullBackOff",
                    message: format!("Back-off pulling image \"{image}\""),
                };
                statuses[*i] = restarted_status(&statuses[*i], image, &t, how);
            }
            if !self.patch_status(&api, &name, write(&statuses, &t)).await {
                return;
            }
            for (_, image) in &pulls {
                let msg = format!("Back-off pulling image \"{image}\"");
                self.event(&pod, &node, "BackOff", &msg);
            }
        }
        self.played(&api, &name, &uid).await;
    }

    /// Sets a running pod's Ready condition back to True.
    async fn ready_again(self, pod: Pod) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let patch = json!({ "metadata": { "uid": pod.metadata.uid }, "status": { "conditions": [
            { "type": "Ready", "status": "True", "lastTransitionTime": now() } ] } });
        if let Err(e) =
            write::patch(&api, &name, true, &own_write(), &Patch::Strategic(patch)).await
            && !is_not_found(&e)
        {
            tracing::debug!(pod = %name, error = %e, "sim fleet: pod Ready again");
        }
    }

    /// Writes a pod's status; false when the pod is gone (or the write failed).
    async fn patch_status(&self, api: &Api<Pod>, name: &str, status: Value) -> bool {
        match write::patch(api, name, true, &own_write(), &Patch::Merge(status)).await {
            Ok(_) => true,
            Err(e) => {
                if !is_not_found(&e) {
                    tracing::debug!(pod = %name, error = %e, "sim fleet: pod status");
                }
                false
            }
        }
    }

    /// Records an event about a pod from its node's simulated kubelet (counted and
    /// rate-limited by the fleet's recorder, written in the background).
    /// The kubelet's complaint about the first volume it could not set up: a ConfigMap
    /// or Secret (not marked optional) that does not exist in the pod's namespace.
    async fn missing_volume(&self, ns: &str, pod: &Pod) -> Option<String> {
        use k8s_openapi::api::core::v1::{ConfigMap, Secret};
        let volumes = pod.spec.as_ref()?.volumes.as_ref()?;
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        for v in volumes {
            let (kind, name, exists) =
                if let Some(cm) = v.config_map.as_ref().filter(|c| c.optional != Some(true)) {
                    let name = cm.name.clone();
                    let found = config_maps
                        .get_metadata_opt(&name)
                        .await
                        .map(|o| o.is_some());
                    ("configmap", name, found)
                } else if let Some(sec) = v.secret.as_ref().filter(|s| s.optional != Some(true)) {
                    let name = sec.secret_name.clone().unwrap_or_default();
                    let found = secrets.get_metadata_opt(&name).await.map(|o| o.is_some());
                    ("secret", name, found)
                } else {
                    continue;
                };
            // (An error reading is no proof of absence: the pod goes on.)
            if let Ok(false) = exists {
                return Some(format!(
                    "MountVolume.SetUp failed for volume \"{}\" : {kind} \"{name}\" not found",
                    v.name
                ));
            }
        }
        None
    }

    fn event(&self, pod: &Pod, node: &str, reason: &str, message: &str) {
        let type_ = if reason == "Failed" || reason == "BackOff" {
            "Warning"
        } else {
            "Normal"
        };
        self.recorder
            .pod_on_node(pod, node, Some("spec.containers"), type_, reason, message);
    }

    /// A simulated container stops at once: confirm the deletion (grace 0, this very pod).
    async fn finish_delete(self, pod: Pod) {
        let (_, name, api) = self.pod_api(&pod);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = api.delete(&name, &dp).await
            && !is_not_found(&e)
        {
            tracing::debug!(pod = %name, error = %e, "sim fleet: final delete");
            // Let a later event retry.
            if let Some(uid) = pod.metadata.uid {
                self.state().pods.remove(&uid);
            }
        }
    }
}

fn cond(type_: &str, status: &str, t: &str, reason: Option<(&str, &str)>) -> Value {
    let mut c =
        json!({ "type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": t });
    if let Some((reason, message)) = reason {
        c["reason"] = json!(reason);
        c["message"] = json!(message);
    }
    c
}

/// The kubelet's message for an image that is not found.
fn pull_error(image: &str) -> String {
    format!(
        "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
    )
}

/// Containers (index in `status.containerStatuses`, new image) whose spec names another
/// image than their status reports: changed in place, to be restarted.
fn changed_images(pod: &Pod) -> Vec<(usize, String)> {
    let Some(statuses) = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
    else {
        return Vec::new();
    };
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    statuses
        .iter()
        .enumerate()
        .filter_map(|(i, st)| {
            let image = containers
                .iter()
                .find(|c| c.name == st.name)?
                .image
                .clone()?;
            (image != st.image).then_some((i, image))
        })
        .collect()
}

/// How a restarted container came out.
enum Restart {
    /// Its new instance runs.
    Started { container_id: String },
    /// Its new image did not pull.
    Waiting {
        reason: &'static str,
        message: String,
    },
}

/// A container's status (as JSON) after the kubelet restarted it with `image`: the
/// instance it replaced, if one ran, in `lastState`; a new instance counts one restart
/// more (none if it never ran: a first start).
fn restarted_status(old: &Value, image: &str, now: &str, how: Restart) -> Value {
    let mut s = old.clone();
    s["image"] = json!(image);
    let ran = old["containerID"].is_string() || old["lastState"]["terminated"].is_object();
    if old["state"]["running"].is_object() {
        s["lastState"] = json!({ "terminated": {
            "exitCode": 0, "reason": "Completed",
            "startedAt": old["state"]["running"]["startedAt"], "finishedAt": now,
            "containerID": old["containerID"],
        }});
    }
    let fields = s.as_object_mut();
    match how {
        Restart::Started { container_id } => {
            let restarts = old["restartCount"].as_i64().unwrap_or(0) + i64::from(ran);
            if let Some(f) = fields {
                f.insert("containerID".into(), json!(container_id));
                f.insert("imageID".into(), json!(format!("sim://{image}")));
                f.insert("restartCount".into(), json!(restarts));
                f.insert("ready".into(), json!(true));
                f.insert("started".into(), json!(true));
                f.insert("state".into(), json!({ "running": { "startedAt": now } }));
            }
        }
        Restart::Waiting { reason, message } => {
            if let Some(f) = fields {
                f.remove("containerID");
                f.insert("imageID".into(), json!(""));
                f.insert("ready".into(), json!(false));
                f.insert("started".into(), json!(false));
                f.insert(
                    "state".into(),
                    json!({ "waiting": { "reason": reason, "message": message } }),
                );
            }
        }
    }
    s
}

/// The pod's conditions with Ready and ContainersReady following its containers'
/// readiness (the transition time moves only when the status does).
fn with_readiness(conditions: &[Value], statuses: &[Value], now: &str) -> Vec<Value> {
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| s["ready"] != true)
        .filter_map(|s| s["name"].as_str())
        .collect();
    let message = format!("containers with unready status: [{}]", unready.join(" "));
    let want = if unready.is_empty() { "True" } else { "False" };
    conditions
        .iter()
        .map(|c| {
            if c["type"] != "Ready" && c["type"] != "ContainersReady" {
                return c.clone();
            }
            let t = if c["status"] == want {
                c["lastTransitionTime"].as_str().unwrap_or(now)
            } else {
                now
            };
            let reason = (!unready.is_empty()).then_some(("ContainersNotReady", message.as_str()));
            cond(c["type"].as_str().unwrap_or_default(), want, t, reason)
        })
        .collect()
}

/// The tag of an image reference (`repo/name:tag`, `name:tag@sha256:…`), if any.
pub fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_changed_in_place_restarts_its_container() {
        let pod: Pod = serde_json::from_value(json!({
            "spec": { "containers": [
                { "name": "a", "image": "nginx:edited" },
                { "name": "b", "image": "busybox" },
            ] },
            "status": { "containerStatuses": [
                { "name": "b", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0 },
                { "name": "a", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0 },
            ] },
        }))
        .expect("pod");
        assert_eq!(changed_images(&pod), [(1, "nginx:edited".to_string())]);

        let running = json!({
            "name": "a", "image": "nginx", "imageID": "sim://nginx", "containerID": "sim://u-a",
            "ready": true, "started": true, "restartCount": 2,
            "state": { "running": { "startedAt": "T0" } },
        });
        let started = Restart::Started {
            container_id: "sim://u-a-3".into(),
        };
        assert_eq!(
            restarted_status(&running, "nginx:edited", "T1", started),
            json!({
                "name": "a", "image": "nginx:edited", "imageID": "sim://nginx:edited",
                "containerID": "sim://u-a-3", "ready": true, "started": true, "restartCount": 3,
                "state": { "running": { "startedAt": "T1" } },
                "lastState": { "terminated": {
                    "exitCode": 0, "reason": "Completed", "startedAt": "T0", "finishedAt": "T1",
                    "containerID": "sim://u-a",
                } },
            })
        );
        // An image that does not pull: Waiting, the old instance in lastState, no restart
        // counted until one starts.
        let pull = |reason| Restart::Waiting {
            reason,
            message: "m".into(),
        };
        let failed = restarted_status(&running, "nginx:bad", "T1", pull("ErrImagePull"));
        let backoff = restarted_status(&failed, "nginx:bad", "T2", pull("ImagePullBackOff"));
        for (st, reason) in [(&failed, "ErrImagePull"), (&backoff, "ImagePullBackOff")] {
            assert_eq!(
                st["state"],
                json!({ "waiting": { "reason": reason, "message": "m" } })
            );
            assert_eq!(st["restartCount"], 2);
            assert_eq!(st["ready"], false);
            assert_eq!(st["image"], "nginx:bad");
            assert!(st.get("containerID").is_none(), "{st}");
            assert_eq!(st["lastState"]["terminated"]["containerID"], "sim://u-a");
        }
        // Fixed again: the new instance is one restart more.
        let fixed = Restart::Started {
            container_id: "sim://u-a-3".into(),
        };
        let st = restarted_status(&backoff, "nginx:ok", "T3", fixed);
        assert_eq!(st["restartCount"], 3);
        assert_eq!(st["lastState"]["terminated"]["finishedAt"], "T1");
    }

    #[test]
    fn pod_readiness_follows_the_containers() {
        let conditions = [
            cond("PodScheduled", "True", "T0", None),
            cond("Ready", "True", "T0", None),
            cond("ContainersReady", "True", "T0", None),
        ];
        let ready = json!({ "name": "a", "ready": true });
        let unready = json!({ "name": "b", "ready": false });
        assert_eq!(
            with_readiness(&conditions, std::slice::from_ref(&ready), "T1"),
            conditions,
            "unchanged, transition times kept"
        );
        let got = with_readiness(&conditions, &[ready, unready], "T1");
        assert_eq!(got[0], conditions[0]);
        for c in &got[1..] {
            assert_eq!(c["status"], "False");
            assert_eq!(c["lastTransitionTime"], "T1");
            assert_eq!(c["reason"], "ContainersNotReady");
            assert_eq!(c["message"], "containers with unready status: [b]");
        }
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx"), None);
        assert_eq!(image_tag("nginx:1.25"), Some("1.25"));
        assert_eq!(image_tag("localhost:5000/app"), None);
        assert_eq!(
            image_tag("localhost:5000/app:non-existent"),
            Some("non-existent")
        );
        assert_eq!(image_tag("app:v1@sha256:abc"), Some("v1"));
    }

    #[test]
    fn lease_renewals_spread_evenly_over_the_slices() {
        let mut per_slice = vec![0usize; LEASE_SLICES as usize];
        for i in 1..=5000 {
            per_slice[lease_slice(&format!("node{i:05}")) as usize] += 1;
        }
        let even = 5000 / LEASE_SLICES as usize;
        for (slice, n) in per_slice.iter().enumerate() {
            assert!(
                n.abs_diff(even) <= even / 4,
                "slice {slice} has {n} of 5000 nodes: {per_slice:?}"
            );
        }
    }

    #[test]
    fn addresses_are_distinct_per_index() {
        let ips: HashSet<String> = (0..70_000).map(node_ip).collect();
        assert_eq!(ips.len(), 70_000);
        assert_eq!(node_ip(1), "172.16.0.1");
        assert_eq!(pod_cidr(258), "10.1.2.0/24");
    }

    #[test]
    fn control_plane_node_carries_the_master_taint_and_role() {
        let node: Node = serde_json::from_value(node_object(&SimNodeSpec::control_plane("cp"), 1))
            .expect("node");
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        assert_eq!(taints.len(), 1);
        assert_eq!(
            (taints[0].key.as_str(), taints[0].effect.as_str()),
            ("node-role.kubernetes.io/master", "NoSchedule")
        );
        let labels = node.metadata.labels.unwrap_or_default();
        assert!(labels.contains_key("node-role.kubernetes.io/control-plane"));
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some("cp")
        );
    }
}
