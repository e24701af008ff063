//! The Service proxy of the process runtime, and the hostPort forwards of its pods.
//!
//! A user-space TCP proxy: for every TCP port of every Service with a cluster IP it
//! listens on ClusterIP:port and hands each accepted connection to the next ready
//! endpoint (round robin, skipping endpoints that refuse), copying bytes both ways.
//! It is driven by a watch of Services and EndpointSlices, read through
//! [`ServiceTable`], so an endpoint that turns unready gets no new connections
//! (connections already open stay open).
//!
//! How it differs from kube-proxy:
//! - it is a process copying bytes, not kernel NAT rules: backends see connections from
//!   the proxy (the node IP), not from the client, and every byte passes through it;
//! - only TCP (UDP and SCTP ports of a Service are not proxied), no session affinity,
//!   no `internalTrafficPolicy`, NodePorts or load balancers;
//! - cluster IPs are not local addresses on a plain host: the proxy adds each one it
//!   serves to the loopback device (`ip addr add IP/32 dev lo label lo:everynode`,
//!   root and iproute2 needed) and removes it again when the Service goes or the proxy
//!   stops; one left behind by a killed proxy is removed by the next. Without that permission it
//!   says so once (log line and a Warning event on its Node) and the cluster IPs stay
//!   unreachable; DNS and NodeIP + hostPort still work.
//! - one proxy serves a whole host: the nodes `everynode up --runtime process` runs share
//!   one machine, so they share one proxy rather than fight over the same listeners.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use everynode_api::service_table::{Addressing, ServiceTable};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long a connection to one backend may take before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often listeners that could not be set up are tried again.
const RETRY: Duration = Duration::from_secs(30);

/// What the proxy should listen on: each TCP ClusterIP:port of the table with the
/// ready backends behind it (possibly none: connections are then closed at once, as
/// kube-proxy rejects them).
pub fn tcp_listeners(table: &ServiceTable) -> BTreeMap<SocketAddrV4, Vec<SocketAddrV4>> {
    let mut out = BTreeMap::new();
    for svc in table.services() {
        let Addressing::ClusterIp(ip) = svc.addressing else {
            continue;
        };
        for p in svc.ports.iter().filter(|p| p.protocol == "TCP") {
            out.insert(
                SocketAddrV4::new(ip, p.port),
                svc.backends(&p.name, &p.protocol),
            );
        }
    }
    out
}

/// The hostPort forwards a pod needs in the process runtime, as (hostPort,
/// containerPort) pairs. The pod's IP is the node IP, so a container port whose
/// hostPort equals it is bound by the process itself, and hostNetwork pods bind
/// whatever they bind; only a non-hostNetwork TCP port with a different hostPort
/// needs NodeIP:hostPort forwarded to NodeIP:containerPort.
pub fn host_port_forwards(pod: &Pod) -> Vec<(u16, u16)> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    if spec.host_network == Some(true) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let (Some(host), Ok(container)) = (p.host_port, u16::try_from(p.container_port)) else {
                continue;
            };
            let Ok(host) = u16::try_from(host) else {
                continue;
            };
            if proto == "TCP" && host != 0 && container != 0 && host != container {
                out.push((host, container));
            }
        }
    }
    out
}

type Backends = Arc<RwLock<Vec<SocketAddrV4>>>;

/// One listening address and the task serving it; dropping it stops listening.
pub struct Listener {
    backends: Backends,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Serves `listener`, spreading connections over `backends`.
    pub fn serve(listener: TcpListener, backends: Vec<SocketAddrV4>) -> Listener {
        let backends: Backends = Arc::new(RwLock::new(backends));
        let task = tokio::spawn(accept_loop(listener, backends.clone()));
        Listener { backends, task }
    }

    pub fn set_backends(&self, list: Vec<SocketAddrV4>) {
        *self.backends.write().unwrap_or_else(|p| p.into_inner()) = list;
    }
}

async fn accept_loop(listener: TcpListener, backends: Backends) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (conn, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "proxy accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let list = backends.read().unwrap_or_else(|p| p.into_inner()).clone();
        let start = next.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(relay(conn, list, start));
    }
}

/// Connects to the first backend from `start` on (round robin) that answers, then
/// copies both ways until either side closes.
async fn relay(mut conn: TcpStream, list: Vec<SocketAddrV4>, start: usize) {
    let _ = conn.set_nodelay(true);
    for i in 0..list.len() {
        let addr = list[(start + i) % list.len()];
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                return;
            }
            Ok(Err(e)) => tracing::debug!(backend = %addr, error = %e, "proxy connect"),
            Err(_) => tracing::debug!(backend = %addr, "proxy connect timed out"),
        }
    }
}

/// Binds NodeIP:hostPort for each forward and relays to NodeIP:containerPort. A
/// port that cannot be bound is reported in the returned errors.
pub async fn forward_host_ports(
    node_ip: Ipv4Addr,
    forwards: &[(u16, u16)],
) -> (Vec<Listener>, Vec<String>) {
    let mut listeners = Vec::new();
    let mut errors = Vec::new();
    for &(host, container) in forwards {
        match TcpListener::bind((node_ip, host)).await {
            Ok(l) => listeners.push(Listener::serve(
                l,
                vec![SocketAddrV4::new(node_ip, container)],
            )),
            Err(e) => errors.push(format!("hostPort {node_ip}:{host}: {e}")),
        }
    }
    (listeners, errors)
}

enum BindError {
    /// The address is not local and could not be made local.
    NotLocal(String),
    /// Anything else, mostly another process (cluster) serving the same address.
    Other(String),
}

/// The cluster IPs this proxy made local, so it can take them away again.
#[derive(Default)]
struct LocalAddrs {
    added: BTreeSet<Ipv4Addr>,
    /// After `ip addr add` failed: no new attempt before then.
    refused_until: Option<Instant>,
}

impl LocalAddrs {
    /// Binds `addr`, first adding its IP to the loopback device when it is not local.
    async fn bind(&mut self, addr: SocketAddrV4) -> Result<TcpListener, BindError> {
        let other = |e: std::io::Error| BindError::Other(format!("{addr}: {e}"));
        match TcpListener::bind(addr).await {
            Ok(l) => {
                // Left behind by a proxy that was killed: ours to remove now.
                if !addr.ip().is_loopback() && labelled().await.contains(addr.ip()) {
                    self.added.insert(*addr.ip());
                }
                return Ok(l);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {}
            Err(e) => return Err(other(e)),
        }
        if let Some(t) = self.refused_until
            && Instant::now() < t
        {
            return Err(BindError::NotLocal(format!("{addr}: not a local address")));
        }
        let ip = *addr.ip();
        if let Err(e) = ip_addr("add", ip).await {
            self.refused_until = Some(Instant::now() + RETRY);
            return Err(BindError::NotLocal(e));
        }
        self.added.insert(ip);
        TcpListener::bind(addr).await.map_err(other)
    }

    /// Removes the addresses it added that no listener uses any more.
    async fn release_unused(&mut self, used: &BTreeSet<Ipv4Addr>) {
        let gone: Vec<Ipv4Addr> = self.added.difference(used).copied().collect();
        for ip in gone {
            if let Err(e) = ip_addr("del", ip).await {
                tracing::debug!(error = %e, "removing a cluster IP from lo");
            }
            self.added.remove(&ip);
        }
    }
}

/// The label of the addresses the proxy adds to lo, so that a proxy can recognise (and
/// remove) what an earlier one left behind.
const LABEL: &str = "lo:everynode";

/// The addresses on lo labelled [`LABEL`].
async fn labelled() -> BTreeSet<Ipv4Addr> {
    let Ok(out) = tokio::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", "lo", "label", LABEL])
        .output()
        .await
    else {
        return BTreeSet::new();
    };
    parse_addrs(&String::from_utf8_lossy(&out.stdout))
}

/// The IPv4 addresses of `ip -4 -o addr show` output.
fn parse_addrs(text: &str) -> BTreeSet<Ipv4Addr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// `ip addr add|del IP/32 dev lo label lo:everynode`; an address some other process
/// already added counts as added.
async fn ip_addr(verb: &str, ip: Ipv4Addr) -> Result<(), String> {
    let out = tokio::process::Command::new("ip")
        .args([
            "addr",
            verb,
            &format!("{ip}/32"),
            "dev",
            "lo",
            "label",
            LABEL,
        ])
        .output()
        .await
        .map_err(|e| format!("running `ip addr {verb} {ip}/32 dev lo`: {e} (iproute2 needed)"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || (verb == "add" && stderr.contains("File exists")) {
        Ok(())
    } else {
        Err(format!(
            "`ip addr {verb} {ip}/32 dev lo`: {}",
            stderr.trim()
        ))
    }
}

/// Runs the host's Service proxy until `shutdown` turns true, then closes its listeners
/// and removes the cluster IPs it added. Problems it cannot fix (no permission to add
/// addresses) are reported once in the log and as a Warning event on `event_node`.
pub async fn run(
    client: kube::Client,
    event_node: Option<String>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let changed = Arc::new(Notify::new());
    let (services, svc_feed) = watch(Api::<Service>::all(client.clone()), changed.clone());
    let (slices, slice_feed) = watch(Api::<EndpointSlice>::all(client.clone()), changed.clone());
    let mut listeners: BTreeMap<SocketAddrV4, Listener> = BTreeMap::new();
    let mut local = LocalAddrs::default();
    let mut warned_not_local = false;
    let mut warned_taken: BTreeSet<SocketAddrV4> = BTreeSet::new();
    let sync = async {
        let _ = tokio::join!(services.wait_until_ready(), slices.wait_until_ready());
        loop {
            let svcs = services.state();
            let eps = slices.state();
            let table = ServiceTable::build(svcs.iter().map(|s| &**s), eps.iter().map(|s| &**s));
            let want = tcp_listeners(&table);
            listeners.retain(|addr, _| want.contains_key(addr));
            for (addr, backends) in want {
                if let Some(l) = listeners.get(&addr) {
                    l.set_backends(backends);
                    continue;
                }
                match local.bind(addr).await {
                    Ok(l) => {
                        tracing::info!(%addr, backends = backends.len(), "proxying a Service");
                        listeners.insert(addr, Listener::serve(l, backends));
                    }
                    Err(BindError::NotLocal(e)) if !warned_not_local => {
                        warned_not_local = true;
                        let msg = format!(
                            "cluster IPs are not reachable on this host: {e}; \
                             the Service proxy needs root and iproute2 to add them to lo"
                        );
                        tracing::warn!("{msg}");
                        if let Some(node) = &event_node {
                            node_event(&client, node, "ClusterIPUnreachable", &msg).await;
                        }
                    }
                    Err(BindError::Other(e)) if warned_taken.insert(addr) => {
                        let msg = format!(
                            "cannot serve a cluster IP: {e} (another cluster on this host \
                             with an overlapping --service-cluster-ip-range?)"
                        );
                        tracing::warn!("{msg}");
                        if let Some(node) = &event_node {
                            node_event(&client, node, "ClusterIPUnreachable", &msg).await;
                        }
                    }
                    Err(BindError::NotLocal(e) | BindError::Other(e)) => {
                        tracing::debug!(error = %e, "proxy listener")
                    }
                }
            }
            let used: BTreeSet<Ipv4Addr> = listeners.keys().map(|a| *a.ip()).collect();
            local.release_unused(&used).await;
            // Changes, or now and then a retry of what could not be bound.
            let _ = tokio::time::timeout(RETRY, changed.notified()).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = async { tokio::join!(svc_feed, slice_feed, sync) } => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
    listeners.clear();
    local.release_unused(&BTreeSet::new()).await;
}

async fn node_event(client: &kube::Client, node: &str, reason: &str, message: &str) {
    let uid = Api::<Node>::all(client.clone())
        .get_opt(node)
        .await
        .ok()
        .flatten()
        .and_then(|n| n.metadata.uid)
        .unwrap_or_default();
    let t = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "generateName": format!("{node}."), "namespace": "default" },
        "involvedObject": { "apiVersion": "v1", "kind": "Node", "name": node, "uid": uid },
        "reason": reason, "message": message, "type": "Warning",
        "source": { "component": "everynode-proxy", "host": node },
        "firstTimestamp": t, "lastTimestamp": t, "count": 1,
        "reportingComponent": "everynode-proxy", "reportingInstance": node,
    });
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    match serde_json::from_value::<Event>(event) {
        Ok(ev) => {
            if let Err(e) = api.create(&PostParams::default(), &ev).await {
                tracing::debug!(error = %e, "proxy event");
            }
        }
        Err(e) => tracing::debug!(error = %e, "proxy event"),
    }
}

fn watch<K>(api: Api<K>, changed: Arc<Notify>) -> (Store<K>, impl std::future::Future<Output = ()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let feed = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    )
    .for_each(move |e| {
        match e {
            Ok(_) => changed.notify_one(),
            Err(err) => tracing::warn!(error = %err, "Service proxy watch; retrying"),
        }
        futures::future::ready(())
    });
    (reader, feed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn table() -> ServiceTable {
        let svc = |name: &str, ip: &str, ports: serde_json::Value| -> Service {
            serde_json::from_value(json!({
                "metadata": { "name": name, "namespace": "default" },
                "spec": { "clusterIP": ip, "ports": ports },
            }))
            .expect("service")
        };
        let services = vec![
            svc(
                "web",
                "10.96.0.20",
                json!([
                    { "name": "http", "port": 80, "protocol": "TCP" },
                    { "name": "dns", "port": 53, "protocol": "UDP" },
                ]),
            ),
            svc(
                "headless",
                "None",
                json!([{ "port": 81, "protocol": "TCP" }]),
            ),
            svc(
                "empty",
                "10.96.0.21",
                json!([{ "port": 82, "protocol": "TCP" }]),
            ),
        ];
        let slice = |svc: &str, eps: serde_json::Value, ports: serde_json::Value| {
            serde_json::from_value::<EndpointSlice>(json!({
                "metadata": {
                    "name": format!("{svc}-x"), "namespace": "default",
                    "labels": { "kubernetes.io/service-name": svc },
                },
                "addressType": "IPv4",
                "endpoints": eps,
                "ports": ports,
            }))
            .expect("slice")
        };
        let slices = vec![
            slice(
                "web",
                json!([
                    { "addresses": ["127.0.0.2"], "conditions": { "ready": true } },
                    { "addresses": ["127.0.0.3"], "conditions": { "ready": false } },
                    { "addresses": ["127.0.0.4"] },
                ]),
                json!([
                    { "name": "http", "port": 8080, "protocol": "TCP" },
                    { "name": "dns", "port": 5353, "protocol": "UDP" },
                ]),
            ),
            slice(
                "headless",
                json!([{ "addresses": ["127.0.0.2"] }]),
                json!([{ "name": "", "port": 81, "protocol": "TCP" }]),
            ),
        ];
        ServiceTable::build(&services, &slices)
    }

    #[test]
    fn ip_output_parses() {
        let text = "1: lo    inet 10.96.0.1/32 scope global lo:everynode\\       valid_lft forever\n\
                    1: lo    inet 10.96.0.10/32 scope global lo:everynode\\       valid_lft forever\n";
        let want: BTreeSet<Ipv4Addr> = ["10.96.0.1", "10.96.0.10"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        assert_eq!(parse_addrs(text), want);
        assert!(parse_addrs("").is_empty());
    }

    #[test]
    fn listeners_are_the_tcp_cluster_ip_ports_with_their_ready_backends() {
        let got = tcp_listeners(&table());
        let a = |s: &str| s.parse::<SocketAddrV4>().expect("addr");
        let want: BTreeMap<SocketAddrV4, Vec<SocketAddrV4>> = [
            (
                a("10.96.0.20:80"),
                vec![a("127.0.0.2:8080"), a("127.0.0.4:8080")],
            ),
            (a("10.96.0.21:82"), vec![]),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn host_ports_need_a_forward_only_when_they_differ_off_the_host_network() {
        let pod = |host_network: bool, ports: serde_json::Value| -> Pod {
            serde_json::from_value(json!({
                "metadata": { "name": "p" },
                "spec": {
                    "hostNetwork": host_network,
                    "containers": [{ "name": "c", "image": "i", "ports": ports }],
                },
            }))
            .expect("pod")
        };
        let cases = [
            (
                false,
                json!([{ "containerPort": 8080, "hostPort": 80 }]),
                vec![(80, 8080)],
            ),
            (
                false,
                json!([{ "containerPort": 8080, "hostPort": 8080 }]),
                vec![],
            ),
            (false, json!([{ "containerPort": 8080 }]), vec![]),
            (
                false,
                json!([{ "containerPort": 53, "hostPort": 5353, "protocol": "UDP" }]),
                vec![],
            ),
            (
                true,
                json!([{ "containerPort": 8080, "hostPort": 8080 }]),
                vec![],
            ),
        ];
        for (host_network, ports, want) in cases {
            assert_eq!(
                host_port_forwards(&pod(host_network, ports.clone())),
                want,
                "{ports}"
            );
        }
    }

    #[tokio::test]
    async fn connections_go_round_robin_and_skip_dead_backends() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut backends = Vec::new();
        for name in ["a", "b"] {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let SocketAddr::V4(addr) = l.local_addr().expect("addr") else {
                panic!("v4");
            };
            backends.push(addr);
            tokio::spawn(async move {
                while let Ok((mut c, _)) = l.accept().await {
                    let _ = c.write_all(name.as_bytes()).await;
                }
            });
        }
        // A port nothing listens on: taken and released.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            match l.local_addr().expect("addr") {
                SocketAddr::V4(a) => a,
                SocketAddr::V6(_) => panic!("v4"),
            }
        };
        let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let front_addr = front.local_addr().expect("addr");
        let proxy = Listener::serve(front, vec![backends[0], dead, backends[1]]);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut c = TcpStream::connect(front_addr).await.expect("connect");
            let mut s = String::new();
            c.read_to_string(&mut s).await.expect("read");
            seen.push(s);
        }
        assert!(seen.contains(&"a".to_string()) && seen.contains(&"b".to_string()));
        // Without backends a connection is closed at once.
        proxy.set_backends(Vec::new());
        let mut c = TcpStream::connect(front_addr).await.expect("connect");
        let mut s = String::new();
        c.read_to_string(&mut s).await.expect("read");
        assert_eq!(s, "");
    }
}
