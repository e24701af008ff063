//! What the EndpointSlice and Endpoints controllers write for one Service, decided from
//! the Service, the pods in its namespace and the objects they wrote before.
//!
//! The facts, as Kubernetes' `pkg/controller/endpointslice` and `pkg/controller/endpoint`
//! have them:
//! * Only Services with a (non-empty) selector get endpoints from the controllers;
//!   ExternalName Services get none (their old slices are removed).
//! * A pod is an endpoint when it matches the selector, has an IP and is not terminal
//!   (Succeeded/Failed). A hostNetwork pod's IP is its node's.
//! * Slice conditions: `serving` = the pod is Ready; `terminating` = it is being
//!   deleted; `ready` = serving and not terminating, or always with
//!   `publishNotReadyAddresses`. Terminating pods stay in slices (with their conditions)
//!   but leave the legacy Endpoints unless `publishNotReadyAddresses`.
//! * Ports: one per Service port, named like it; a named `targetPort` is looked up among
//!   the pod's container ports (same name and protocol); a pod without it is left out
//!   of that port. Endpoints with different port sets go to different slices.
//! * Slices: `generateName: <service>-`, the Service's labels plus
//!   `kubernetes.io/service-name`, `endpointslice.kubernetes.io/managed-by` and, for
//!   headless Services, `service.kubernetes.io/headless`; a controller owner reference
//!   to the Service; at most 100 endpoints each; a Service without endpoints keeps one
//!   empty placeholder slice.
//! * Endpoints (core/v1): named like the Service, ready addresses in `addresses`, others
//!   in `notReadyAddresses`, subsets grouped by the ports their addresses share.
//! * A pod's `hostname` is published for a headless Service when the pod's `subdomain`
//!   names the Service.
//!
//! Slices are updated in place where possible (an endpoint stays in the slice that has it)
//! so that watchers see few changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, Endpoints, ObjectReference, Pod,
    Service,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The slices' `endpointslice.kubernetes.io/managed-by` value.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// Kubernetes' default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// What to write for one Service.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// New slices (named by `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Changed slices, each carrying the name and resourceVersion it was read with.
    pub update: Vec<EndpointSlice>,
    /// Slices to delete: (name, uid).
    pub delete: Vec<(String, String)>,
    /// The legacy Endpoints object.
    pub endpoints: EndpointsAction,
}

#[derive(Debug, Default, PartialEq)]
pub enum EndpointsAction {
    #[default]
    Nothing,
    Create(Endpoints),
    /// Replaces the stored object (name and resourceVersion carried).
    Update(Endpoints),
    Delete,
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// The selector of a Service the controllers manage endpoints for.
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if text(&spec.type_) == "ExternalName" {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

pub fn selects(svc: &Service, pod: &Pod) -> bool {
    let Some(sel) = selector(svc) else {
        return false;
    };
    if pod.metadata.namespace != svc.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .is_some_and(|s| text(&s.cluster_ip) == "None")
}

fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn pod_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's IPv4 address, if it has one.
pub fn pod_ipv4(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let from_list = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok());
    from_list
        .or_else(|| {
            status
                .pod_ip
                .as_deref()
                .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        })
        .map(str::to_string)
}

/// `podutil.FindPort`: a Service port's target on this pod.
fn find_port(pod: &Pod, target: Option<&IntOrString>, port: i32, protocol: &str) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// One endpoint as both objects need it.
#[derive(Clone, Debug, PartialEq)]
struct Member {
    pod_name: String,
    pod_uid: String,
    ip: String,
    node_name: Option<String>,
    hostname: Option<String>,
    serving: bool,
    terminating: bool,
    ports: Vec<EndpointPort>,
}

impl Member {
    fn ready(&self, publish_not_ready: bool) -> bool {
        publish_not_ready || (self.serving && !self.terminating)
    }

    fn target_ref(&self, ns: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(ns.to_string()),
            name: Some(self.pod_name.clone()),
            uid: Some(self.pod_uid.clone()),
            ..ObjectReference::default()
        }
    }

    fn slice_endpoint(&self, ns: &str, publish_not_ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec![self.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(self.ready(publish_not_ready)),
                serving: Some(self.serving),
                terminating: Some(self.terminating),
            }),
            hostname: self.hostname.clone(),
            node_name: self.node_name.clone(),
            target_ref: Some(self.target_ref(ns)),
            ..Endpoint::default()
        }
    }
}

fn members(svc: &Service, pods: &[&Pod]) -> Vec<Member> {
    let spec = svc.spec.clone().unwrap_or_default();
    let headless = is_headless(svc);
    let mut out: Vec<Member> = pods
        .iter()
        .filter(|p| selects(svc, p) && !pod_terminal(p))
        .filter_map(|p| {
            let ip = pod_ipv4(p)?;
            let pod_spec = p.spec.as_ref();
            let hostname = pod_spec
                .filter(|s| headless && text(&s.subdomain) == text(&svc.metadata.name))
                .and_then(|s| s.hostname.clone())
                .filter(|h| !h.is_empty());
            let ports = spec
                .ports
                .iter()
                .flatten()
                .filter_map(|sp| {
                    let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
                    let port = find_port(p, sp.target_port.as_ref(), sp.port, &protocol)?;
                    Some(EndpointPort {
                        name: Some(sp.name.clone().unwrap_or_default()),
                        port: Some(port),
                        protocol: Some(protocol),
                        app_protocol: sp.app_protocol.clone(),
                    })
                })
                .collect();
            Some(Member {
                pod_name: p.metadata.name.clone().unwrap_or_default(),
                pod_uid: p.metadata.uid.clone().unwrap_or_default(),
                ip,
                node_name: pod_spec.and_then(|s| s.node_name.clone()),
                hostname,
                serving: pod_ready(p),
                terminating: p.metadata.deletion_timestamp.is_some(),
                ports,
            })
        })
        .collect();
    out.sort_by(|a, b| a.pod_name.cmp(&b.pod_name));
    out
}

/// The labels every slice of `svc` carries.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.remove(LABEL_HEADLESS);
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    if is_headless(svc) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    labels
}

fn owner_ref(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `<service>-`, shortened so that the generated name stays a valid DNS subdomain.
fn generate_name(svc: &Service) -> String {
    let name = text(&svc.metadata.name);
    let keep: String = name.chars().take(253 - 6).collect();
    format!("{keep}-")
}

/// The port set of a slice; `None` for a placeholder.
type PortKey = Option<Vec<EndpointPort>>;

fn uid_of(e: &Endpoint) -> Option<&str> {
    e.target_ref.as_ref().and_then(|r| r.uid.as_deref())
}

/// Decides the slices and the Endpoints object of `svc`. `pods` are the pods of its
/// namespace (others are ignored), `slices` the slices labelled as managed by this
/// controller for it, `endpoints` the stored Endpoints of the same name.
pub fn plan(
    svc: &Service,
    pods: &[&Pod],
    slices: &[&EndpointSlice],
    stored_endpoints: Option<&Endpoints>,
) -> Plan {
    let mut plan = Plan::default();
    let ns = text(&svc.metadata.namespace).to_string();
    let uid = text(&svc.metadata.uid);
    // Slices of an older Service of the same name are not ours to reuse.
    let (ours, stale): (Vec<&EndpointSlice>, Vec<&EndpointSlice>) = slices.iter().partition(|s| {
        s.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.controller == Some(true) && r.uid == uid)
    });
    for s in stale {
        plan.delete.push(slice_id(s));
    }
    if selector(svc).is_none() {
        for s in ours {
            plan.delete.push(slice_id(s));
        }
        // Endpoints of a selector-less Service are the user's to write.
        return plan;
    }
    let publish = publish_not_ready(svc);
    let members = members(svc, pods);
    plan_slices(svc, &ns, &members, publish, &ours, &mut plan);
    plan.endpoints = plan_endpoints(svc, &ns, &members, publish, stored_endpoints);
    plan
}

fn slice_id(s: &EndpointSlice) -> (String, String) {
    (
        s.metadata.name.clone().unwrap_or_default(),
        s.metadata.uid.clone().unwrap_or_default(),
    )
}

fn plan_slices(
    svc: &Service,
    ns: &str,
    members: &[Member],
    publish: bool,
    existing: &[&EndpointSlice],
    plan: &mut Plan,
) {
    // Desired endpoints by port set, each keyed by pod uid.
    let mut desired: BTreeMap<String, (PortKey, Vec<(String, Endpoint)>)> = BTreeMap::new();
    for m in members {
        let key: PortKey = Some(m.ports.clone());
        let k = serde_json::to_string(&key).unwrap_or_default();
        desired
            .entry(k)
            .or_insert_with(|| (key, Vec::new()))
            .1
            .push((m.pod_uid.clone(), m.slice_endpoint(ns, publish)));
    }
    if desired.is_empty() {
        desired.insert("placeholder".into(), (None, Vec::new()));
    }
    let labels = slice_labels(svc);
    let owner = owner_ref(svc);
    let key_of = |s: &EndpointSlice| -> String {
        let key: PortKey = s.ports.clone().filter(|p| !p.is_empty()).or_else(|| {
            // An empty port list and a placeholder look alike; only a slice with
            // endpoints can have an empty port set (headless Services without ports).
            (!s.endpoints.is_empty()).then(Vec::new)
        });
        match key {
            None => "placeholder".into(),
            Some(k) => serde_json::to_string(&Some(k)).unwrap_or_default(),
        }
    };
    // Work copies of the existing slices, and whether each was touched.
    let mut work: Vec<(EndpointSlice, bool)> =
        existing.iter().map(|s| ((*s).clone(), false)).collect();
    let mut used = vec![false; work.len()];
    let mut leftovers: Vec<(PortKey, Vec<Endpoint>)> = Vec::new();
    let mut placeholder_missing = false;
    for (k, (ports, eps)) in &desired {
        let want: HashMap<&str, &Endpoint> = eps.iter().map(|(u, e)| (u.as_str(), e)).collect();
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        let mut same: Vec<usize> = Vec::new();
        for (i, (s, _)) in work.iter().enumerate() {
            if key_of(s) == *k && s.address_type == "IPv4" {
                same.push(i);
            }
        }
        // Endpoints stay in the slice that has them, refreshed; the rest leave.
        for &i in &same {
            let (s, changed) = &mut work[i];
            let mut kept = Vec::new();
            for e in &s.endpoints {
                match uid_of(e).and_then(|u| want.get_key_value(u)) {
                    Some((u, fresh)) if !placed.contains(u) => {
                        placed.insert(u);
                        if e != *fresh {
                            *changed = true;
                        }
                        kept.push((*fresh).clone());
                    }
                    _ => *changed = true,
                }
            }
            s.endpoints = kept;
        }
        let mut rest: Vec<Endpoint> = eps
            .iter()
            .filter(|(u, _)| !placed.contains(u.as_str()))
            .map(|(_, e)| e.clone())
            .collect();
        // Fill slices with room, fullest first (fewer, fuller slices).
        same.sort_by_key(|&i| std::cmp::Reverse(work[i].0.endpoints.len()));
        for &i in &same {
            let (s, changed) = &mut work[i];
            let room = MAX_ENDPOINTS_PER_SLICE.saturating_sub(s.endpoints.len());
            if room > 0 && !rest.is_empty() {
                let n = room.min(rest.len());
                s.endpoints.extend(rest.drain(..n));
                *changed = true;
            }
        }
        // Slices of this port set left empty go, unless one is all there is.
        let mut keep_one = eps.is_empty();
        for &i in &same {
            if work[i].0.endpoints.is_empty() && !keep_one {
                continue;
            }
            keep_one = false;
            used[i] = true;
        }
        if !rest.is_empty() {
            leftovers.push((ports.clone(), rest));
        }
        placeholder_missing = ports.is_none() && same.is_empty();
    }
    if placeholder_missing {
        leftovers.push((None, Vec::new()));
    }
    // Leftover endpoints reuse slices nobody wants any more, then new slices.
    let mut spare: Vec<usize> = (0..work.len()).filter(|&i| !used[i]).collect();
    for (ports, eps) in leftovers {
        let chunks: Vec<&[Endpoint]> = if eps.is_empty() {
            vec![&[]]
        } else {
            eps.chunks(MAX_ENDPOINTS_PER_SLICE).collect()
        };
        for chunk in chunks {
            if let Some(i) = spare.pop() {
                let (s, changed) = &mut work[i];
                s.ports = ports.clone();
                s.endpoints = chunk.to_vec();
                s.address_type = "IPv4".into();
                *changed = true;
                used[i] = true;
            } else {
                plan.create.push(EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(generate_name(svc)),
                        namespace: Some(ns.to_string()),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..ObjectMeta::default()
                    },
                    address_type: "IPv4".into(),
                    endpoints: chunk.to_vec(),
                    ports: ports.clone(),
                });
            }
        }
    }
    for (i, (mut s, mut changed)) in work.into_iter().enumerate() {
        if !used[i] {
            plan.delete.push(slice_id(&s));
            continue;
        }
        if s.metadata.labels.as_ref() != Some(&labels) {
            s.metadata.labels = Some(labels.clone());
            changed = true;
        }
        if s.metadata.owner_references.as_deref() != Some(std::slice::from_ref(&owner)) {
            s.metadata.owner_references = Some(vec![owner.clone()]);
            changed = true;
        }
        if changed {
            plan.update.push(s);
        }
    }
}

fn plan_endpoints(
    svc: &Service,
    ns: &str,
    members: &[Member],
    publish: bool,
    stored: Option<&Endpoints>,
) -> EndpointsAction {
    let subsets = subsets(ns, members, publish, svc);
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.remove(LABEL_HEADLESS);
    if is_headless(svc) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    let labels = (!labels.is_empty()).then_some(labels);
    let subsets = (!subsets.is_empty()).then_some(subsets);
    match stored {
        None => EndpointsAction::Create(Endpoints {
            metadata: ObjectMeta {
                name: svc.metadata.name.clone(),
                namespace: Some(ns.to_string()),
                labels,
                ..ObjectMeta::default()
            },
            subsets,
        }),
        Some(cur) => {
            let cur_labels = cur.metadata.labels.clone().filter(|l| !l.is_empty());
            let cur_subsets = cur.subsets.clone().filter(|s| !s.is_empty());
            if cur_labels == labels && cur_subsets == subsets {
                return EndpointsAction::Nothing;
            }
            let mut next = cur.clone();
            next.metadata.labels = labels;
            next.subsets = subsets;
            EndpointsAction::Update(next)
        }
    }
}

/// Groups addresses into subsets by the ports they share (`endpoints.RepackSubsets`).
fn subsets(ns: &str, members: &[Member], publish: bool, svc: &Service) -> Vec<EndpointSubset> {
    let address = |m: &Member| EndpointAddress {
        ip: m.ip.clone(),
        hostname: m.hostname.clone(),
        node_name: m.node_name.clone(),
        target_ref: Some(m.target_ref(ns)),
    };
    // Terminating pods leave Endpoints unless not-ready addresses are published.
    let included: Vec<&Member> = members
        .iter()
        .filter(|m| publish || !m.terminating)
        .collect();
    let no_ports = svc
        .spec
        .as_ref()
        .is_none_or(|s| s.ports.as_ref().is_none_or(Vec::is_empty));
    if no_ports {
        if !is_headless(svc) || included.is_empty() {
            return Vec::new();
        }
        let (ready, not_ready): (Vec<&&Member>, Vec<&&Member>) =
            included.iter().partition(|m| m.ready(publish));
        return vec![subset(
            ready.into_iter().map(|m| address(m)).collect(),
            not_ready.into_iter().map(|m| address(m)).collect(),
            Vec::new(),
        )];
    }
    // port -> (pod uid -> ready)
    let mut by_port: Vec<(CorePort, BTreeMap<String, bool>)> = Vec::new();
    for m in &included {
        for p in &m.ports {
            let core = CorePort {
                name: p.name.clone().filter(|n| !n.is_empty()),
                port: p.port.unwrap_or(0),
                protocol: p.protocol.clone(),
                app_protocol: p.app_protocol.clone(),
            };
            match by_port.iter_mut().find(|(c, _)| *c == core) {
                Some((_, addrs)) => {
                    addrs.insert(m.pod_uid.clone(), m.ready(publish));
                }
                None => by_port.push((core, [(m.pod_uid.clone(), m.ready(publish))].into())),
            }
        }
    }
    // Ports whose address sets are equal share a subset.
    let mut groups: Vec<(BTreeMap<String, bool>, Vec<CorePort>)> = Vec::new();
    for (port, addrs) in by_port {
        match groups.iter_mut().find(|(a, _)| *a == addrs) {
            Some((_, ports)) => ports.push(port),
            None => groups.push((addrs, vec![port])),
        }
    }
    let by_uid: HashMap<&str, &Member> =
        included.iter().map(|m| (m.pod_uid.as_str(), *m)).collect();
    groups
        .into_iter()
        .map(|(addrs, ports)| {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (uid, r) in addrs {
                if let Some(m) = by_uid.get(uid.as_str()) {
                    if r {
                        ready.push(address(m));
                    } else {
                        not_ready.push(address(m));
                    }
                }
            }
            subset(ready, not_ready, ports)
        })
        .collect()
}

fn subset(
    mut ready: Vec<EndpointAddress>,
    mut not_ready: Vec<EndpointAddress>,
    ports: Vec<CorePort>,
) -> EndpointSubset {
    let by_ip = |a: &EndpointAddress, b: &EndpointAddress| {
        let ip = |x: &EndpointAddress| x.ip.parse::<std::net::Ipv4Addr>().ok();
        ip(a).cmp(&ip(b)).then_with(|| a.ip.cmp(&b.ip))
    };
    ready.sort_by(by_ip);
    not_ready.sort_by(by_ip);
    EndpointSubset {
        addresses: (!ready.is_empty()).then_some(ready),
        not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
        ports: (!ports.is_empty()).then_some(ports),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn service(spec: Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": spec,
        }))
        .expect("service")
    }

    /// A running pod `name` on `node` with `ip`, Ready or not.
    fn pod(name: &str, ip: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": format!("node-{name}"), "containers": [{"name": "c", "image": "i",
                      "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .expect("pod")
    }

    fn with(mut p: Pod, f: impl FnOnce(&mut Value)) -> Pod {
        let mut v = serde_json::to_value(&p).expect("json");
        f(&mut v);
        p = serde_json::from_value(v).expect("pod");
        p
    }

    fn web() -> Service {
        service(
            json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.20",
                       "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]}),
        )
    }

    /// (ip, ready, serving, terminating) of an endpoint.
    type Conditions = (String, bool, bool, bool);

    /// The [`Conditions`] of every endpoint in the plan's new slices.
    fn created(plan: &Plan) -> Vec<Conditions> {
        plan.create
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .map(|e| {
                let c = e.conditions.clone().unwrap_or_default();
                (
                    e.addresses[0].clone(),
                    c.ready == Some(true),
                    c.serving == Some(true),
                    c.terminating == Some(true),
                )
            })
            .collect()
    }

    fn endpoints_of(plan: &Plan) -> Value {
        match &plan.endpoints {
            EndpointsAction::Create(e) | EndpointsAction::Update(e) => {
                serde_json::to_value(e).expect("json")
            }
            other => panic!("no Endpoints written: {other:?}"),
        }
    }

    #[test]
    fn a_new_service_gets_a_slice_and_endpoints() {
        let svc = web();
        let (a, b) = (pod("a", "10.0.0.2", true), pod("b", "10.0.0.3", false));
        let plan = plan(&svc, &[&a, &b], &[], None);
        assert_eq!(plan.create.len(), 1);
        let s = &plan.create[0];
        assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(s.address_type, "IPv4");
        let labels = s.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(LABEL_SERVICE_NAME).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            labels.get(LABEL_MANAGED_BY).map(String::as_str),
            Some(MANAGED_BY)
        );
        assert_eq!(
            labels.get("team").map(String::as_str),
            Some("a"),
            "service labels copied"
        );
        assert!(!labels.contains_key(LABEL_HEADLESS));
        let owner = &s.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", "svc-uid", Some(true))
        );
        // The named target port resolves to the container port.
        assert_eq!(
            serde_json::to_value(&s.ports).expect("json"),
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );
        assert_eq!(
            created(&plan),
            [
                ("10.0.0.2".into(), true, true, false),
                ("10.0.0.3".into(), false, false, false)
            ]
        );
        let e = &s.endpoints[0];
        assert_eq!(e.node_name.as_deref(), Some("node-a"));
        assert_eq!(
            serde_json::to_value(&e.target_ref).expect("json"),
            json!({"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"})
        );
        assert_eq!(
            endpoints_of(&plan),
            json!({"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": {"name": "web", "namespace": "default", "labels": {"team": "a"}},
                   "subsets": [{
                       "addresses": [{"ip": "10.0.0.2", "nodeName": "node-a", "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}}],
                       "notReadyAddresses": [{"ip": "10.0.0.3", "nodeName": "node-b", "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}}],
                       "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]})
        );
    }

    #[test]
    fn which_pods_are_endpoints() {
        let svc = web();
        let cases: Vec<(&str, Pod, Vec<Conditions>)> = vec![
            (
                "no IP yet",
                with(pod("a", "10.0.0.2", true), |v| {
                    if let Some(s) = v["status"].as_object_mut() {
                        s.remove("podIP");
                        s.remove("podIPs");
                    }
                }),
                vec![],
            ),
            (
                "succeeded",
                with(pod("a", "10.0.0.2", true), |v| {
                    v["status"]["phase"] = json!("Succeeded")
                }),
                vec![],
            ),
            (
                "failed",
                with(pod("a", "10.0.0.2", true), |v| {
                    v["status"]["phase"] = json!("Failed")
                }),
                vec![],
            ),
            (
                "other labels",
                with(pod("a", "10.0.0.2", true), |v| {
                    v["metadata"]["labels"] = json!({"app": "db"})
                }),
                vec![],
            ),
            (
                "other namespace",
                with(pod("a", "10.0.0.2", true), |v| {
                    v["metadata"]["namespace"] = json!("x")
                }),
                vec![],
            ),
            (
                "terminating: serving but not ready",
                with(pod("a", "10.0.0.2", true), |v| {
                    v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                }),
                vec![("10.0.0.2".into(), false, true, true)],
            ),
            ("IPv6 only", pod("a", "fd00::2", true), vec![]),
        ];
        for (what, p, want) in cases {
            let got = plan(&svc, &[&p], &[], None);
            if want.is_empty() {
                // Nothing to list: one empty placeholder slice.
                assert_eq!(got.create.len(), 1, "{what}");
                assert!(
                    got.create[0].endpoints.is_empty() && got.create[0].ports.is_none(),
                    "{what}"
                );
            } else {
                assert_eq!(created(&got), want, "{what}");
            }
        }
        // A terminating pod leaves the legacy Endpoints.
        let t = with(pod("a", "10.0.0.2", true), |v| {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        });
        assert_eq!(
            endpoints_of(&plan(&svc, &[&t], &[], None))["subsets"],
            Value::Null
        );
        // publishNotReadyAddresses: everything is ready, terminating pods included.
        let publish = service(
            json!({"selector": {"app": "web"}, "publishNotReadyAddresses": true,
                                      "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}),
        );
        let u = pod("b", "10.0.0.3", false);
        let got = plan(&publish, &[&t, &u], &[], None);
        assert_eq!(
            created(&got),
            [
                ("10.0.0.2".into(), true, true, true),
                ("10.0.0.3".into(), true, false, false)
            ]
        );
        let e = endpoints_of(&got);
        let addrs: Vec<&str> = e["subsets"][0]["addresses"]
            .as_array()
            .expect("addresses")
            .iter()
            .filter_map(|a| a["ip"].as_str())
            .collect();
        assert_eq!(addrs, ["10.0.0.2", "10.0.0.3"]);
    }

    #[test]
    fn services_without_a_selector_or_of_type_external_name_get_nothing() {
        let bare = service(json!({"ports": [{"port": 80}]}));
        let p = pod("a", "10.0.0.2", true);
        assert_eq!(plan(&bare, &[&p], &[], None), Plan::default());
        let empty = service(json!({"selector": {}, "ports": [{"port": 80}]}));
        assert_eq!(plan(&empty, &[&p], &[], None), Plan::default());
        // An ExternalName Service's old slices are removed.
        let first = plan(&web(), &[&p], &[], None);
        let mut slice = first.create[0].clone();
        slice.metadata.name = Some("web-abcde".into());
        slice.metadata.uid = Some("slice-uid".into());
        let ext = service(
            json!({"type": "ExternalName", "externalName": "example.com", "selector": {"app": "web"}}),
        );
        let got = plan(&ext, &[&p], &[&slice], None);
        assert_eq!(
            got.delete,
            [("web-abcde".to_string(), "slice-uid".to_string())]
        );
        assert!(got.create.is_empty() && got.endpoints == EndpointsAction::Nothing);
    }

    /// Applies a plan to a list of stored slices, as the API would.
    fn apply(stored: &mut Vec<EndpointSlice>, plan: &Plan, next: &mut u32) {
        stored.retain(|s| {
            !plan
                .delete
                .iter()
                .any(|(n, _)| Some(n) == s.metadata.name.as_ref())
        });
        for u in &plan.update {
            if let Some(s) = stored
                .iter_mut()
                .find(|s| s.metadata.name == u.metadata.name)
            {
                *s = u.clone();
            }
        }
        for c in &plan.create {
            let mut s = c.clone();
            *next += 1;
            s.metadata.name = Some(format!("web-{next}"));
            s.metadata.uid = Some(format!("slice-{next}"));
            stored.push(s);
        }
    }

    fn run(svc: &Service, pods: &[Pod], stored: &mut Vec<EndpointSlice>, next: &mut u32) -> Plan {
        let refs: Vec<&Pod> = pods.iter().collect();
        let slices: Vec<&EndpointSlice> = stored.iter().collect();
        let p = plan(svc, &refs, &slices, None);
        apply(stored, &p, next);
        p
    }

    #[test]
    fn slices_follow_pods_with_few_writes() {
        let svc = web();
        let mut stored = Vec::new();
        let mut next = 0;
        // No pods: one placeholder.
        run(&svc, &[], &mut stored, &mut next);
        assert_eq!(stored.len(), 1);
        // A steady state writes no slice.
        let p = run(&svc, &[], &mut stored, &mut next);
        assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty());
        // Pods arrive: the placeholder is reused rather than replaced.
        let mut pods: Vec<Pod> = (0..3)
            .map(|i| pod(&format!("p{i}"), &format!("10.0.0.{}", i + 2), true))
            .collect();
        let p = run(&svc, &pods, &mut stored, &mut next);
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
        assert_eq!(stored[0].endpoints.len(), 3);
        // One turns unready: one update, the endpoint stays in place with ready=false.
        pods[1] = pod("p1", "10.0.0.3", false);
        let p = run(&svc, &pods, &mut stored, &mut next);
        assert_eq!(p.update.len(), 1);
        let ready: Vec<bool> = stored[0]
            .endpoints
            .iter()
            .map(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .collect();
        assert_eq!(ready, [true, false, true]);
        // Nothing changed: nothing written.
        let p = run(&svc, &pods, &mut stored, &mut next);
        assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty());
        // 250 pods: three slices of at most 100.
        pods = (0..250)
            .map(|i| {
                pod(
                    &format!("p{i:03}"),
                    &format!("10.0.{}.{}", i / 200, i % 200 + 2),
                    true,
                )
            })
            .collect();
        run(&svc, &pods, &mut stored, &mut next);
        let mut sizes: Vec<usize> = stored.iter().map(|s| s.endpoints.len()).collect();
        sizes.sort();
        assert_eq!(sizes, [50, 100, 100]);
        assert_eq!(stored.iter().map(|s| s.endpoints.len()).sum::<usize>(), 250);
        // All gone: back to one placeholder.
        run(&svc, &[], &mut stored, &mut next);
        assert_eq!(stored.len(), 1);
        assert!(stored[0].endpoints.is_empty());
    }

    #[test]
    fn pods_with_different_ports_go_to_different_slices() {
        let svc = web();
        let a = pod("a", "10.0.0.2", true);
        let b = with(pod("b", "10.0.0.3", true), |v| {
            v["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(9090);
        });
        let c = with(pod("c", "10.0.0.4", true), |v| {
            v["spec"]["containers"][0]["ports"] = json!([]);
        });
        let got = plan(&svc, &[&a, &b, &c], &[], None);
        let mut ports: Vec<Value> = got
            .create
            .iter()
            .map(|s| serde_json::to_value(&s.ports).expect("json"))
            .collect();
        ports.sort_by_key(|v| v.to_string());
        // c has no port named http: it is listed with no ports.
        assert_eq!(
            ports,
            [
                json!([]),
                json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
                json!([{"name": "http", "port": 9090, "protocol": "TCP"}])
            ]
        );
        let subsets = endpoints_of(&got)["subsets"].clone();
        assert_eq!(subsets.as_array().map(Vec::len), Some(2), "{subsets}");
    }

    #[test]
    fn headless_services_publish_hostnames() {
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
        let a = with(pod("a", "10.0.0.2", true), |v| {
            v["spec"]["hostname"] = json!("alpha");
            v["spec"]["subdomain"] = json!("web");
        });
        let b = with(pod("b", "10.0.0.3", true), |v| {
            v["spec"]["hostname"] = json!("beta")
        });
        let got = plan(&svc, &[&a, &b], &[], None);
        let s = &got.create[0];
        assert_eq!(
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_HEADLESS))
                .map(String::as_str),
            Some("")
        );
        let hosts: Vec<Option<&str>> = s.endpoints.iter().map(|e| e.hostname.as_deref()).collect();
        assert_eq!(
            hosts,
            [Some("alpha"), None],
            "only a pod whose subdomain names the Service"
        );
        assert_eq!(serde_json::to_value(&s.ports).expect("json"), json!([]));
        let e = endpoints_of(&got);
        assert_eq!(e["metadata"]["labels"][LABEL_HEADLESS], json!(""));
        assert_eq!(e["subsets"][0]["addresses"][0]["hostname"], json!("alpha"));
        assert_eq!(e["subsets"][0].get("ports"), None);
    }

    #[test]
    fn slices_of_a_replaced_service_are_deleted() {
        let p = pod("a", "10.0.0.2", true);
        let mut stored = Vec::new();
        let mut next = 0;
        run(&web(), std::slice::from_ref(&p), &mut stored, &mut next);
        let mut again = web();
        again.metadata.uid = Some("new-uid".into());
        let got = run(&again, std::slice::from_ref(&p), &mut stored, &mut next);
        assert_eq!(got.delete.len(), 1);
        assert_eq!(got.create.len(), 1);
        assert_eq!(stored.len(), 1);
        assert_eq!(
            stored[0].metadata.owner_references.as_ref().expect("owner")[0].uid,
            "new-uid"
        );
    }

    #[test]
    fn endpoints_are_updated_only_when_they_change() {
        let svc = web();
        let a = pod("a", "10.0.0.2", true);
        let EndpointsAction::Create(mut stored) = plan(&svc, &[&a], &[], None).endpoints else {
            panic!("create expected");
        };
        stored.metadata.resource_version = Some("5".into());
        assert_eq!(
            plan(&svc, &[&a], &[], Some(&stored)).endpoints,
            EndpointsAction::Nothing
        );
        let b = pod("b", "10.0.0.1", true);
        let EndpointsAction::Update(next) = plan(&svc, &[&a, &b], &[], Some(&stored)).endpoints
        else {
            panic!("update expected");
        };
        assert_eq!(next.metadata.resource_version.as_deref(), Some("5"));
        let ips: Vec<String> = next.subsets.unwrap_or_default()[0]
            .addresses
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.ip)
            .collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"], "sorted by IP");
    }
}
