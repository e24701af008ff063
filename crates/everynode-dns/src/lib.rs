//! Cluster DNS: the names of Services and their endpoints, answered over UDP and TCP.
//!
//! Like CoreDNS's `kubernetes` plugin it is a plain API client: it watches Services and
//! EndpointSlices through the Kubernetes API, so it runs against everynode (where
//! `everynode up` and `server` start it) or against any cluster.
//!
//! Layout:
//! - [`resolve`]: the answers, a pure function of the [`ServiceTable`] and the question.
//! - [`server`]: the UDP and TCP listeners and the wire format (hickory-proto).
//! - this module: the watch that keeps the table current, and [`start`].

pub mod resolve;
pub mod server;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use everynode_api::service_table::ServiceTable;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

/// Kubernetes' default cluster domain.
pub const DEFAULT_DOMAIN: &str = "cluster.local";

/// What the server answers from: the table and the zone (whose SOA serial follows the
/// table). `None` until both watches have listed, so an empty table is never mistaken
/// for a cluster without Services (the server answers SERVFAIL meanwhile).
pub type Shared = Arc<RwLock<Option<Arc<Snapshot>>>>;

#[derive(Debug)]
pub struct Snapshot {
    pub table: ServiceTable,
    pub zone: resolve::Zone,
}

/// A running DNS server.
pub struct Dns {
    /// Where it listens (UDP and TCP on the same port).
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Dns {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds `listen` (UDP and TCP; port 0 picks a port free for both), starts watching the
/// cluster through `client`, and serves `domain` until the returned [`Dns`] is dropped.
pub async fn start(client: kube::Client, listen: SocketAddr, domain: &str) -> Result<Dns, String> {
    resolve::Zone::new(domain, 0)?;
    let (udp, tcp) = server::bind(listen).await?;
    let addr = udp.local_addr().map_err(|e| e.to_string())?;
    let shared: Shared = Arc::default();
    let tasks = vec![
        tokio::spawn(keep_table(client, domain.to_string(), shared.clone())),
        tokio::spawn(server::serve_udp(udp, shared.clone())),
        tokio::spawn(server::serve_tcp(tcp, shared)),
    ];
    Ok(Dns { addr, tasks })
}

/// Watches Services and EndpointSlices and rebuilds the snapshot after each burst of
/// changes.
pub async fn keep_table(client: kube::Client, domain: String, shared: Shared) {
    let changed = Arc::new(Notify::new());
    let (services, svc_feed) = watch(Api::<Service>::all(client.clone()), changed.clone());
    let (slices, slice_feed) = watch(Api::<EndpointSlice>::all(client), changed.clone());
    let rebuild = async {
        let _ = tokio::join!(services.wait_until_ready(), slices.wait_until_ready());
        let mut serial: u32 = 0;
        loop {
            let svcs = services.state();
            let eps = slices.state();
            let table = ServiceTable::build(svcs.iter().map(|s| &**s), eps.iter().map(|s| &**s));
            serial = unix_seconds().max(serial.wrapping_add(1));
            match resolve::Zone::new(&domain, serial) {
                Ok(zone) => {
                    let snap = Arc::new(Snapshot { table, zone });
                    *shared.write().unwrap_or_else(|p| p.into_inner()) = Some(snap);
                }
                Err(e) => tracing::warn!(error = %e, "cluster DNS zone"),
            }
            changed.notified().await;
            // Let a burst (a DaemonSet's pods turning ready) settle into one rebuild.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::join!(svc_feed, slice_feed, rebuild);
}

/// SOA serials are seconds since the epoch (bumped by one when two rebuilds share a
/// second), so they grow across restarts too.
fn unix_seconds() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
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
            Err(err) => tracing::warn!(error = %err, "cluster DNS watch; retrying"),
        }
        futures::future::ready(())
    });
    (reader, feed)
}
