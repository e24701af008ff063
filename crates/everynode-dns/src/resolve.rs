//! The answers, decided from a [`ServiceTable`]: pure, no I/O.
//!
//! Names, as the Kubernetes DNS specification and CoreDNS's `kubernetes` plugin have them
//! (`<zone>` is `cluster.local` by default):
//! * `<svc>.<ns>.svc.<zone>`: `A` with the cluster IP, or for a headless Service one `A`
//!   per ready endpoint; an ExternalName Service answers with a `CNAME`.
//! * `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: `SRV` for a named port, pointing at the
//!   Service name (or, headless, at each ready endpoint's name) with the address in the
//!   additional section. `SRV` on the Service name lists every named port.
//! * `<hostname or a-b-c-d>.<svc>.<ns>.svc.<zone>`: `A` for one ready endpoint of a
//!   headless Service (its `hostname`, else its IP with dashes).
//! * `a-b-c-d.<ns>.pod.<zone>`: `A` a-b-c-d (CoreDNS's `pods insecure`, kubeadm's default).
//! * A name under the zone that does not exist: `NXDOMAIN`; one that exists without
//!   records of the asked type: no answers (`NODATA`). Both carry the zone's `SOA` in the
//!   authority section, so resolvers cache them for the SOA's minimum (5 s).
//! * Names outside the zone: `REFUSED` (this server answers for the cluster zone only;
//!   it forwards nothing).
//!
//! Every record has a TTL of 5 s, as CoreDNS's default.

use std::net::Ipv4Addr;

use everynode_api::service_table::{Addressing, EndpointEntry, ServiceEntry, ServiceTable};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, CNAME, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// CoreDNS's default TTL for the records it serves.
pub const TTL: u32 = 5;

/// The zone served.
#[derive(Clone, Debug)]
pub struct Zone {
    /// `cluster.local.`, lower case, fully qualified.
    pub origin: Name,
    /// The SOA serial: changes when the data does.
    pub serial: u32,
}

impl Zone {
    pub fn new(domain: &str, serial: u32) -> Result<Zone, String> {
        let mut origin = Name::from_ascii(domain.trim_end_matches('.'))
            .map_err(|e| format!("cluster domain {domain:?}: {e}"))?;
        origin.set_fqdn(true);
        Ok(Zone {
            origin: origin.to_lowercase(),
            serial,
        })
    }

    /// The zone's SOA record (CoreDNS's shape: `ns.dns.<zone>`, `hostmaster.<zone>`).
    pub fn soa(&self) -> Record {
        let mname = self.child(&["ns", "dns"]);
        let rname = self.child(&["hostmaster"]);
        Record::from_rdata(
            self.origin.clone(),
            TTL,
            RData::SOA(SOA::new(mname, rname, self.serial, 7200, 1800, 86400, TTL)),
        )
    }

    /// `labels` (leftmost first) prepended to the zone.
    fn child(&self, labels: &[&str]) -> Name {
        let mut name = self.origin.clone();
        for l in labels.iter().rev() {
            name = name
                .prepend_label(*l)
                .unwrap_or_else(|_| self.origin.clone());
        }
        name
    }
}

/// What to send back for one question.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub code: ResponseCode,
    /// Whether the answer is authoritative (in the zone).
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl Reply {
    fn refused() -> Reply {
        Reply {
            code: ResponseCode::Refused,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    fn negative(zone: &Zone, code: ResponseCode) -> Reply {
        Reply {
            code,
            authoritative: true,
            answers: Vec::new(),
            authority: vec![zone.soa()],
            additional: Vec::new(),
        }
    }

    fn answers(zone: &Zone, answers: Vec<Record>, additional: Vec<Record>) -> Reply {
        if answers.is_empty() {
            return Reply::negative(zone, ResponseCode::NoError);
        }
        Reply {
            code: ResponseCode::NoError,
            authoritative: true,
            answers,
            authority: Vec::new(),
            additional,
        }
    }
}

fn a(name: &Name, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name.clone(), TTL, RData::A(A(ip)))
}

/// An endpoint's name under its Service: its hostname, else its IP with dashes.
pub fn endpoint_label(e: &EndpointEntry) -> String {
    match &e.hostname {
        Some(h) => h.to_ascii_lowercase(),
        None => e.ip.to_string().replace('.', "-"),
    }
}

/// Answers `qname`/`qtype` from `table`.
pub fn resolve(table: &ServiceTable, zone: &Zone, qname: &Name, qtype: RecordType) -> Reply {
    let qname_lc = qname.to_lowercase();
    if !zone.origin.zone_of(&qname_lc) {
        return Reply::refused();
    }
    let depth = usize::from(qname_lc.num_labels() - zone.origin.num_labels());
    let labels: Vec<String> = qname_lc
        .iter()
        .take(depth)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let l: Vec<&str> = labels.iter().map(String::as_str).collect();
    let nx = || Reply::negative(zone, ResponseCode::NXDomain);
    let nodata = || Reply::negative(zone, ResponseCode::NoError);
    match l.as_slice() {
        [] => match qtype {
            RecordType::SOA => Reply::answers(zone, vec![zone.soa()], Vec::new()),
            _ => nodata(),
        },
        ["svc"] | ["pod"] => nodata(),
        [ns, "svc"] => {
            if table.has_namespace(ns) {
                nodata()
            } else {
                nx()
            }
        }
        [svc, ns, "svc"] => match table.get(ns, svc) {
            None => nx(),
            Some(s) => service(zone, s, qname, qtype),
        },
        [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
            let Some(s) = table.get(ns, svc) else {
                return nx();
            };
            let (port, proto) = (&port[1..], &proto[1..]);
            let matching = |p: &&everynode_api::service_table::PortEntry| {
                !p.name.is_empty()
                    && p.name.eq_ignore_ascii_case(port)
                    && p.protocol.eq_ignore_ascii_case(proto)
            };
            if !s.ports.iter().any(|p| matching(&p)) {
                return nx();
            }
            if qtype != RecordType::SRV {
                return nodata();
            }
            let (answers, additional) = srv(zone, s, qname, Some(port), Some(proto));
            Reply::answers(zone, answers, additional)
        }
        [endpoint, svc, ns, "svc"] => {
            let Some(s) = table.get(ns, svc) else {
                return nx();
            };
            if s.addressing != Addressing::Headless {
                return nx();
            }
            let found: Vec<&EndpointEntry> = s
                .ready_endpoints()
                .filter(|e| endpoint_label(e) == *endpoint)
                .collect();
            if found.is_empty() {
                return nx();
            }
            match qtype {
                RecordType::A => Reply::answers(
                    zone,
                    found.iter().map(|e| a(qname, e.ip)).collect(),
                    Vec::new(),
                ),
                _ => nodata(),
            }
        }
        [dashed, _ns, "pod"] => match dashed.replace('-', ".").parse::<Ipv4Addr>() {
            Ok(ip) if dashed.matches('-').count() == 3 => match qtype {
                RecordType::A => Reply::answers(zone, vec![a(qname, ip)], Vec::new()),
                _ => nodata(),
            },
            _ => nx(),
        },
        _ => nx(),
    }
}

fn service(zone: &Zone, s: &ServiceEntry, qname: &Name, qtype: RecordType) -> Reply {
    if let Addressing::ExternalName(target) = &s.addressing {
        // The alias answers every type; the client follows it.
        return match Name::from_ascii(target.trim_end_matches('.')) {
            Ok(mut t) => {
                t.set_fqdn(true);
                let cname = Record::from_rdata(qname.clone(), TTL, RData::CNAME(CNAME(t)));
                Reply::answers(zone, vec![cname], Vec::new())
            }
            Err(_) => Reply::negative(zone, ResponseCode::NoError),
        };
    }
    match qtype {
        RecordType::A => {
            let answers = match &s.addressing {
                Addressing::ClusterIp(ip) => vec![a(qname, *ip)],
                Addressing::Headless => s.ready_endpoints().map(|e| a(qname, e.ip)).collect(),
                _ => Vec::new(),
            };
            Reply::answers(zone, answers, Vec::new())
        }
        RecordType::SRV => {
            let (answers, additional) = srv(zone, s, qname, None, None);
            Reply::answers(zone, answers, additional)
        }
        _ => Reply::negative(zone, ResponseCode::NoError),
    }
}

/// SRV records for the named ports of `s` (only `port`/`proto` when given). Weights
/// share 100 among the records of one answer, as CoreDNS does.
fn srv(
    zone: &Zone,
    s: &ServiceEntry,
    qname: &Name,
    port: Option<&str>,
    proto: Option<&str>,
) -> (Vec<Record>, Vec<Record>) {
    let svc_name = zone.child(&[&s.name, &s.namespace, "svc"]);
    let ports = s.ports.iter().filter(|p| {
        !p.name.is_empty()
            && port.is_none_or(|n| p.name.eq_ignore_ascii_case(n))
            && proto.is_none_or(|n| p.protocol.eq_ignore_ascii_case(n))
    });
    // (port, target, address)
    let mut targets: Vec<(u16, Name, Ipv4Addr)> = Vec::new();
    for p in ports {
        match &s.addressing {
            Addressing::ClusterIp(ip) => targets.push((p.port, svc_name.clone(), *ip)),
            Addressing::Headless => {
                for e in s.ready_endpoints() {
                    let Some(ep) = e
                        .ports
                        .iter()
                        .find(|q| q.name == p.name && q.protocol == p.protocol)
                    else {
                        continue;
                    };
                    let label = endpoint_label(e);
                    let target = zone.child(&[&label, &s.name, &s.namespace, "svc"]);
                    targets.push((ep.port, target, e.ip));
                }
            }
            _ => {}
        }
    }
    let weight = if targets.is_empty() {
        0
    } else {
        (100 / targets.len()) as u16
    };
    let mut answers = Vec::new();
    let mut additional: Vec<Record> = Vec::new();
    for (port, target, ip) in targets {
        answers.push(Record::from_rdata(
            qname.clone(),
            TTL,
            RData::SRV(SRV::new(0, weight, port, target.clone())),
        ));
        let extra = a(&target, ip);
        if !additional.contains(&extra) {
            additional.push(extra);
        }
    }
    (answers, additional)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    fn table() -> ServiceTable {
        let services: Vec<Service> = [
            json!({"metadata": {"name": "web", "namespace": "prod"},
                   "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81}]}}),
            json!({"metadata": {"name": "agents", "namespace": "prod"},
                   "spec": {"clusterIP": "None", "ports": [{"name": "metrics", "port": 9100, "protocol": "TCP"}]}}),
            json!({"metadata": {"name": "empty", "namespace": "prod"}, "spec": {"clusterIP": "None"}}),
            json!({"metadata": {"name": "db", "namespace": "prod"},
                   "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("service"))
        .collect();
        let slices: Vec<EndpointSlice> = [json!({
            "metadata": {"name": "agents-x", "namespace": "prod", "labels": {"kubernetes.io/service-name": "agents"}},
            "addressType": "IPv4", "ports": [{"name": "metrics", "port": 9101, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.0.1.2"], "conditions": {"ready": true}},
                {"addresses": ["10.0.2.2"], "conditions": {"ready": true}, "hostname": "node-b"},
                {"addresses": ["10.0.3.2"], "conditions": {"ready": false}},
            ]})]
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("slice"))
        .collect();
        ServiceTable::build(&services, &slices)
    }

    fn ask(name: &str, qtype: RecordType) -> (ResponseCode, Vec<String>, Vec<String>, Vec<String>) {
        let zone = Zone::new("cluster.local", 42).expect("zone");
        let r = resolve(
            &table(),
            &zone,
            &Name::from_ascii(name).expect("name"),
            qtype,
        );
        let show = |rs: &[Record]| rs.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        (
            r.code,
            show(&r.answers),
            show(&r.authority),
            show(&r.additional),
        )
    }

    const SOA: &str = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5";

    #[test]
    fn service_names() {
        let cases: Vec<(&str, RecordType, ResponseCode, Vec<&str>)> = vec![
            (
                "web.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["web.prod.svc.cluster.local. 5 IN A 10.96.0.20"],
            ),
            // Case does not matter; the answer keeps the question's spelling.
            (
                "Web.Prod.svc.Cluster.Local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["Web.Prod.svc.Cluster.Local. 5 IN A 10.96.0.20"],
            ),
            // Headless: the ready endpoints only.
            (
                "agents.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec![
                    "agents.prod.svc.cluster.local. 5 IN A 10.0.1.2",
                    "agents.prod.svc.cluster.local. 5 IN A 10.0.2.2",
                ],
            ),
            (
                "db.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["db.prod.svc.cluster.local. 5 IN CNAME db.example.com."],
            ),
            // Per-endpoint names of a headless Service.
            (
                "node-b.agents.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["node-b.agents.prod.svc.cluster.local. 5 IN A 10.0.2.2"],
            ),
            (
                "10-0-1-2.agents.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["10-0-1-2.agents.prod.svc.cluster.local. 5 IN A 10.0.1.2"],
            ),
            (
                "10-0-3-2.agents.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
                vec![],
            ),
            (
                "10-0-1-2.web.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
                vec![],
            ),
            (
                "10-0-1-9.prod.pod.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["10-0-1-9.prod.pod.cluster.local. 5 IN A 10.0.1.9"],
            ),
        ];
        for (name, qtype, code, want) in cases {
            let (got_code, answers, _, _) = ask(name, qtype);
            assert_eq!(
                (got_code, answers),
                (code, want.iter().map(|s| s.to_string()).collect()),
                "{name}"
            );
        }
    }

    #[test]
    fn srv_records() {
        let (code, answers, _, additional) =
            ask("_http._tcp.web.prod.svc.cluster.local.", RecordType::SRV);
        assert_eq!(code, ResponseCode::NoError);
        assert_eq!(
            answers,
            [
                "_http._tcp.web.prod.svc.cluster.local. 5 IN SRV 0 100 80 web.prod.svc.cluster.local."
            ]
        );
        assert_eq!(
            additional,
            ["web.prod.svc.cluster.local. 5 IN A 10.96.0.20"]
        );
        // Headless: one per ready endpoint, at the endpoint's port, named per endpoint.
        let (_, answers, _, additional) = ask(
            "_metrics._tcp.agents.prod.svc.cluster.local.",
            RecordType::SRV,
        );
        assert_eq!(
            answers,
            [
                "_metrics._tcp.agents.prod.svc.cluster.local. 5 IN SRV 0 50 9101 10-0-1-2.agents.prod.svc.cluster.local.",
                "_metrics._tcp.agents.prod.svc.cluster.local. 5 IN SRV 0 50 9101 node-b.agents.prod.svc.cluster.local.",
            ]
        );
        assert_eq!(additional.len(), 2);
        // Unnamed ports have no SRV name; wrong protocol or port: NXDOMAIN.
        for name in [
            "_81._tcp.web.prod.svc.cluster.local.",
            "_http._udp.web.prod.svc.cluster.local.",
            "_x._tcp.web.prod.svc.cluster.local.",
        ] {
            assert_eq!(
                ask(name, RecordType::SRV).0,
                ResponseCode::NXDomain,
                "{name}"
            );
        }
        // SRV on the Service name: every named port.
        let (_, answers, _, _) = ask("web.prod.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            answers,
            ["web.prod.svc.cluster.local. 5 IN SRV 0 100 80 web.prod.svc.cluster.local."]
        );
    }

    #[test]
    fn negative_answers_carry_the_soa() {
        let cases: Vec<(&str, RecordType, ResponseCode)> = vec![
            (
                "missing.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
            ),
            (
                "web.nowhere.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
            ),
            (
                "nowhere.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
            ),
            (
                "a.b.c.d.e.f.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
            ),
            (
                "10-0-1.prod.pod.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
            ),
            // Names that exist but hold nothing of the type asked: NODATA.
            (
                "web.prod.svc.cluster.local.",
                RecordType::AAAA,
                ResponseCode::NoError,
            ),
            (
                "empty.prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
            ),
            (
                "prod.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
            ),
            ("svc.cluster.local.", RecordType::A, ResponseCode::NoError),
            ("cluster.local.", RecordType::A, ResponseCode::NoError),
        ];
        for (name, qtype, code) in cases {
            let (got, answers, authority, _) = ask(name, qtype);
            assert_eq!(got, code, "{name}");
            assert!(answers.is_empty(), "{name}: {answers:?}");
            assert_eq!(authority, [SOA], "{name}");
        }
        let (code, answers, _, _) = ask("cluster.local.", RecordType::SOA);
        assert_eq!(
            (code, answers),
            (ResponseCode::NoError, vec![SOA.to_string()])
        );
    }

    #[test]
    fn other_zones_are_refused() {
        for name in ["example.com.", "local.", "cluster.local.example.com."] {
            let (code, answers, authority, _) = ask(name, RecordType::A);
            assert_eq!(code, ResponseCode::Refused, "{name}");
            assert!(answers.is_empty() && authority.is_empty());
        }
    }
}
