//! Services on the server: their cluster IPs and node ports, and the `kubernetes`
//! Service in `default` that points at the API server itself.
//!
//! The ranges ([`everynode_api::service_alloc::ServiceRanges`]) are rebuilt from the
//! stored Services at start: the Services are the one record of what is in use, so an
//! address is never handed out twice, across restarts and crashes included, and nothing
//! leaks when the server stops between taking an address and storing the Service. One
//! API server owns the ranges; several servers over one store (etcd) would need the
//! allocations in the store instead (kube-apiserver's IPAddress objects).
//!
//! The lock is a `std::sync::Mutex`: it guards in-memory bookkeeping only and is never
//! held across an `.await`.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use everynode_api::service_alloc::{
    Allocation, DEFAULT_NODE_PORT_RANGE, PortRange, ServiceCidr, ServiceRanges,
};
use everynode_store::Store;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::registry::{Part, Registry, WriteOptions};
use crate::resources::{self, ResourceInfo};

/// The Service ranges an API server hands addresses and ports out of.
#[derive(Clone, Copy, Debug)]
pub struct ServiceConfig {
    /// `--service-cluster-ip-range`.
    pub cidr: ServiceCidr,
    /// Node ports for `NodePort` and `LoadBalancer` Services.
    pub node_ports: PortRange,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            cidr: ServiceCidr::default(),
            node_ports: PortRange::parse(DEFAULT_NODE_PORT_RANGE)
                .unwrap_or_else(|_| unreachable!()),
        }
    }
}

/// The ranges of one API server, shared by all requests.
pub struct ServiceAllocator {
    ranges: Mutex<ServiceRanges>,
}

fn typed(v: &Value) -> ApiResult<Service> {
    serde_json::from_value(v.clone()).map_err(|e| ApiError::internal(e.to_string()))
}

fn seed() -> u64 {
    rand::random()
}

impl ServiceAllocator {
    /// Builds the ranges from the Services in `store`.
    pub fn load(store: &Store, config: ServiceConfig) -> ServiceAllocator {
        let mut ranges = ServiceRanges::new(config.cidr, config.node_ports);
        let res = services();
        if let Ok(list) = store.list(&res.prefix(None), None, None, None) {
            for kv in &list.items {
                let Ok(svc) = serde_json::from_slice::<Service>(&kv.value) else {
                    continue;
                };
                for clash in ranges.restore(&svc) {
                    tracing::warn!(service = %kv.key, "{clash}");
                }
            }
        }
        ServiceAllocator {
            ranges: Mutex::new(ranges),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ServiceRanges> {
        self.ranges.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn cidr(&self) -> ServiceCidr {
        self.lock().cidr
    }

    /// Takes the values a new Service (uid set) needs and writes them into `obj`.
    pub fn create(&self, obj: &mut Value) -> ApiResult<Allocation> {
        let mut svc = typed(obj)?;
        let result = self.lock().allocate_create(&mut svc, seed());
        let alloc = self.finish(obj, &svc, result)?;
        Ok(alloc)
    }

    /// The same for an update of `old` to `new`.
    pub fn update(&self, new: &mut Value, old: &Value) -> ApiResult<Allocation> {
        let mut svc = typed(new)?;
        let old = typed(old)?;
        let result = self.lock().allocate_update(&mut svc, &old, seed());
        self.finish(new, &svc, result)
    }

    fn finish(
        &self,
        obj: &mut Value,
        svc: &Service,
        result: Result<Allocation, Vec<everynode_api::field::FieldError>>,
    ) -> ApiResult<Allocation> {
        match result {
            Ok(alloc) => {
                if !alloc.is_empty() {
                    match serde_json::to_value(&svc.spec) {
                        Ok(spec) => obj["spec"] = spec,
                        Err(e) => {
                            self.rollback(alloc);
                            return Err(ApiError::internal(e.to_string()));
                        }
                    }
                }
                Ok(alloc)
            }
            Err(errs) => Err(ApiError::invalid(
                services(),
                svc.metadata.name.as_deref().unwrap_or(""),
                &errs,
            )),
        }
    }

    /// The write went through: values an update gave up are free now.
    pub fn commit(&self, alloc: Allocation) {
        self.lock().commit(alloc);
    }

    /// The write failed: values it took are free again.
    pub fn rollback(&self, alloc: Allocation) {
        self.lock().rollback(alloc);
    }

    /// A Service left the store: what it held is free.
    pub fn release(&self, obj: &Value) {
        if let Ok(svc) = typed(obj) {
            self.lock().release(&svc);
        }
    }
}

fn services() -> &'static ResourceInfo {
    resources::by_kind("", "Service").unwrap_or_else(|| unreachable!())
}

/// Creates or refreshes the `kubernetes` Service in `default` with its Endpoints and
/// EndpointSlice, pointing at the API server's address (kube-apiserver's endpoint
/// reconciler does this on every start). An unspecified listen address is published as
/// the loopback address.
pub async fn publish_kubernetes_service(reg: &Registry, addr: SocketAddr) -> ApiResult<()> {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    };
    let port = addr.port();
    let cluster_ip = reg.services.cidr().kubernetes_ip().to_string();
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "kubernetes", "namespace": "default",
                      "labels": { "component": "apiserver", "provider": "kubernetes" } },
        "spec": {
            "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "type": "ClusterIP",
            "sessionAffinity": "None",
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": port }],
        },
    });
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": { "name": "kubernetes", "namespace": "default",
                      "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" } },
        "subsets": [{ "addresses": [{ "ip": ip }],
                      "ports": [{ "name": "https", "port": port, "protocol": "TCP" }] }],
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": { "name": "kubernetes", "namespace": "default",
                      "labels": { "kubernetes.io/service-name": "kubernetes" } },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": [ip], "conditions": { "ready": true } }],
        "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
    });
    ensure(reg, services(), svc, &["spec"]).await?;
    if let Some(res) = resources::by_kind("", "Endpoints") {
        ensure(reg, res, endpoints, &["subsets"]).await?;
    }
    if let Some(res) = resources::by_kind("discovery.k8s.io", "EndpointSlice") {
        ensure(reg, res, slice, &["addressType", "endpoints", "ports"]).await?;
    }
    Ok(())
}

/// Creates `desired`, or sets `fields` of the stored object to its values (the cluster IP
/// of an existing `kubernetes` Service is kept: it is immutable).
async fn ensure(
    reg: &Registry,
    res: &'static ResourceInfo,
    desired: Value,
    fields: &[&str],
) -> ApiResult<()> {
    let name = desired["metadata"]["name"].as_str().unwrap_or_default();
    let ns = Some("default");
    let opts = WriteOptions::default();
    match reg.get(res, ns, name) {
        Err(e) if e.code == 404 => match reg.create(res, ns, desired.clone(), &opts).await {
            Ok(_) => Ok(()),
            Err(e) if e.reason == "AlreadyExists" => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
        Ok(_) => reg
            .update(res, ns, name, Part::Main, &opts, |cur| {
                let mut next = cur.clone();
                for f in fields {
                    let mut v = desired[*f].clone();
                    if *f == "spec" {
                        v["clusterIP"] = cur["spec"]["clusterIP"].clone();
                        v["clusterIPs"] = cur["spec"]["clusterIPs"].clone();
                    }
                    next[*f] = v;
                }
                if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                Ok(next)
            })
            .await
            .map(|_| ()),
    }
}
