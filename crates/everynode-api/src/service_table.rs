//! Services and their endpoints as the data plane sees them: for each Service its
//! cluster IP (or that it is headless or an ExternalName), its ports, and the endpoints
//! of its EndpointSlices with their conditions and resolved ports.
//!
//! Built from Services and EndpointSlices alone (the objects cluster DNS and kube-proxy
//! read), so it works the same against any cluster. Cluster DNS (`everynode-dns`) answers
//! from it; a Service proxy picks its backends from [`ServiceEntry::backends`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label tying an EndpointSlice to its Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// How a Service is addressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// A virtual IP.
    ClusterIp(Ipv4Addr),
    /// `clusterIP: None`: clients get the endpoints themselves.
    Headless,
    /// An alias for another DNS name.
    ExternalName(String),
    /// No usable IPv4 cluster IP (not allocated, or another family).
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortEntry {
    /// The port's name ("" when unnamed).
    pub name: String,
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointEntry {
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
    pub node_name: Option<String>,
    /// An unset condition counts as ready/serving, as the EndpointSlice API says.
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// The endpoint's ports, named like the Service's.
    pub ports: Vec<PortEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub namespace: String,
    pub name: String,
    pub addressing: Addressing,
    pub ports: Vec<PortEntry>,
    /// Every endpoint of the Service's IPv4 slices, ordered by IP, each IP once.
    pub endpoints: Vec<EndpointEntry>,
}

impl ServiceEntry {
    pub fn ready_endpoints(&self) -> impl Iterator<Item = &EndpointEntry> {
        self.endpoints.iter().filter(|e| e.ready)
    }

    /// Where connections to the Service port named `port_name` (with `protocol`) may go:
    /// the ready endpoints, each at its own port of that name.
    pub fn backends(&self, port_name: &str, protocol: &str) -> Vec<SocketAddrV4> {
        self.ready_endpoints()
            .filter_map(|e| {
                e.ports
                    .iter()
                    .find(|p| p.name == port_name && p.protocol == protocol)
                    .map(|p| SocketAddrV4::new(e.ip, p.port))
            })
            .collect()
    }
}

/// All Services of a cluster, by namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceTable {
    services: BTreeMap<(String, String), ServiceEntry>,
    namespaces: BTreeSet<String>,
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn port(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

impl ServiceTable {
    pub fn build<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> ServiceTable {
        let mut table = ServiceTable::default();
        for svc in services {
            let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
                continue;
            };
            let spec = svc.spec.clone().unwrap_or_default();
            let addressing = match (text(&spec.type_), text(&spec.cluster_ip)) {
                ("ExternalName", _) => {
                    Addressing::ExternalName(text(&spec.external_name).to_string())
                }
                (_, "None") => Addressing::Headless,
                (_, ip) => ip
                    .parse()
                    .map(Addressing::ClusterIp)
                    .unwrap_or(Addressing::None),
            };
            let ports = spec
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some(PortEntry {
                        name: p.name.clone().unwrap_or_default(),
                        port: port(p.port)?,
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    })
                })
                .collect();
            table.namespaces.insert(ns.clone());
            table.services.insert(
                (ns.clone(), name.clone()),
                ServiceEntry {
                    namespace: ns.clone(),
                    name: name.clone(),
                    addressing,
                    ports,
                    endpoints: Vec::new(),
                },
            );
        }
        let mut found: BTreeMap<(String, String), BTreeMap<Ipv4Addr, EndpointEntry>> =
            BTreeMap::new();
        for slice in slices {
            if slice.address_type != "IPv4" {
                continue;
            }
            let (Some(ns), Some(svc)) = (
                &slice.metadata.namespace,
                slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_SERVICE_NAME)),
            ) else {
                continue;
            };
            let key = (ns.clone(), svc.clone());
            if !table.services.contains_key(&key) {
                continue;
            }
            let ports: Vec<PortEntry> = slice
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some(PortEntry {
                        name: p.name.clone().unwrap_or_default(),
                        port: port(p.port?)?,
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    })
                })
                .collect();
            for e in &slice.endpoints {
                let c = e.conditions.clone().unwrap_or_default();
                let entry = EndpointEntry {
                    ip: Ipv4Addr::UNSPECIFIED,
                    hostname: e.hostname.clone().filter(|h| !h.is_empty()),
                    node_name: e.node_name.clone(),
                    ready: c.ready.unwrap_or(true),
                    serving: c.serving.unwrap_or(c.ready.unwrap_or(true)),
                    terminating: c.terminating.unwrap_or(false),
                    ports: ports.clone(),
                };
                // An address may sit in two slices while it moves: ready wins.
                let ips = e
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse::<Ipv4Addr>().ok());
                for ip in ips.take(1) {
                    let slot = found.entry(key.clone()).or_default();
                    let keep = slot.get(&ip).is_some_and(|old| old.ready && !entry.ready);
                    if !keep {
                        slot.insert(
                            ip,
                            EndpointEntry {
                                ip,
                                ..entry.clone()
                            },
                        );
                    }
                }
            }
        }
        for (key, eps) in found {
            if let Some(s) = table.services.get_mut(&key) {
                s.endpoints = eps.into_values().collect();
            }
        }
        table
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&ServiceEntry> {
        self.services
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Whether any Service lives in `namespace`.
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    pub fn services(&self) -> impl Iterator<Item = &ServiceEntry> {
        self.services.values()
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).expect("slice")
    }

    fn ep(ip: &str, ready: Option<bool>) -> serde_json::Value {
        let mut e = json!({"addresses": [ip]});
        if let Some(r) = ready {
            e["conditions"] = json!({"ready": r, "serving": r, "terminating": false});
        }
        e
    }

    #[test]
    fn services_with_their_endpoints() {
        let services = [
            svc(json!({"metadata": {"name": "web", "namespace": "a"},
                "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})),
            svc(
                json!({"metadata": {"name": "hl", "namespace": "a"}, "spec": {"clusterIP": "None"}}),
            ),
            svc(json!({"metadata": {"name": "ext", "namespace": "b"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}})),
            svc(
                json!({"metadata": {"name": "v6", "namespace": "b"}, "spec": {"clusterIP": "fd00::1"}}),
            ),
        ];
        let slices = [
            slice(
                json!({"metadata": {"name": "web-1", "namespace": "a", "labels": {LABEL_SERVICE_NAME: "web"}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [ep("10.0.0.3", Some(true)), ep("10.0.0.2", Some(false)), ep("10.0.0.4", None)]}),
            ),
            // The same address in a second slice, not ready there: the ready copy stays.
            slice(
                json!({"metadata": {"name": "web-2", "namespace": "a", "labels": {LABEL_SERVICE_NAME: "web"}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [ep("10.0.0.3", Some(false))]}),
            ),
            slice(
                json!({"metadata": {"name": "hl-1", "namespace": "a", "labels": {LABEL_SERVICE_NAME: "hl"}},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.1.2"], "hostname": "h0"}]}),
            ),
            slice(
                json!({"metadata": {"name": "x", "namespace": "a", "labels": {LABEL_SERVICE_NAME: "gone"}},
                "addressType": "IPv4", "endpoints": [ep("10.0.9.9", Some(true))]}),
            ),
            slice(
                json!({"metadata": {"name": "web-v6", "namespace": "a", "labels": {LABEL_SERVICE_NAME: "web"}},
                "addressType": "IPv6", "endpoints": [ep("fd00::9", Some(true))]}),
            ),
        ];
        let t = ServiceTable::build(&services, &slices);
        assert_eq!(t.len(), 4);
        let web = t.get("a", "web").expect("web");
        assert_eq!(
            web.addressing,
            Addressing::ClusterIp(Ipv4Addr::new(10, 96, 0, 20))
        );
        let ips: Vec<(String, bool)> = web
            .endpoints
            .iter()
            .map(|e| (e.ip.to_string(), e.ready))
            .collect();
        assert_eq!(
            ips,
            [
                ("10.0.0.2".into(), false),
                ("10.0.0.3".into(), true),
                ("10.0.0.4".into(), true)
            ]
        );
        assert_eq!(
            web.backends("http", "TCP"),
            [
                "10.0.0.3:8080".parse().expect("addr"),
                "10.0.0.4:8080".parse().expect("addr")
            ]
        );
        assert!(web.backends("http", "UDP").is_empty());
        let hl = t.get("a", "hl").expect("hl");
        assert_eq!(hl.addressing, Addressing::Headless);
        assert_eq!(hl.endpoints[0].hostname.as_deref(), Some("h0"));
        assert_eq!(
            t.get("b", "ext").map(|s| &s.addressing),
            Some(&Addressing::ExternalName("example.com".into()))
        );
        assert_eq!(
            t.get("b", "v6").map(|s| &s.addressing),
            Some(&Addressing::None)
        );
        assert!(t.get("a", "gone").is_none());
        assert!(t.has_namespace("b") && !t.has_namespace("c"));
    }
}
