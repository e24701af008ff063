//! Service cluster IPs and node ports: the ranges they come from, and an allocator that
//! hands each value out once.
//!
//! Pure: the API server keeps one [`ServiceRanges`] behind a lock and rebuilds it at
//! start from the stored Services ([`ServiceRanges::restore`]). The Services are the one
//! record of what is in use, so a crash between taking a value and storing the Service
//! leaks nothing, and no second table can drift from them.
//!
//! Each write that takes or gives up values gets an [`Allocation`]: the caller stores the
//! Service, then [`ServiceRanges::commit`]s it (values the update gave up become free) or,
//! when the write failed, [`ServiceRanges::rollback`]s it (values it took become free).
//! Every value remembers its owner (the Service's uid), so a late release can never free
//! a value that has since gone to another Service.
//!
//! Dynamic values come from the upper part of a range first, leaving the lower band to
//! Services that ask for a particular value (kube-apiserver does the same since 1.27).

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};

use crate::field::FieldError;

/// kubeadm's default `--service-cluster-ip-range`.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// kube-apiserver's default `--service-node-port-range`.
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";

/// An IPv4 service range: the network address and the broadcast address are never handed
/// out, the first address after the network is the `kubernetes` Service's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceCidr {
    network: u32,
    prefix: u8,
}

impl ServiceCidr {
    /// Parses `a.b.c.d/n`. Like kube-apiserver, a range may hold at most 2^20 addresses
    /// (`/12`); it must hold at least two usable ones (`/30`). IPv6 ranges are not
    /// supported (everynode's Services are single-stack IPv4).
    pub fn parse(s: &str) -> Result<ServiceCidr, String> {
        let (ip, bits) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid service range {s:?}: want a CIDR like 10.96.0.0/12"))?;
        if ip.parse::<std::net::Ipv6Addr>().is_ok() {
            return Err(format!(
                "invalid service range {s:?}: only IPv4 service ranges are supported"
            ));
        }
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid service range {s:?}: {ip:?} is not an IPv4 address"))?;
        let prefix: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b <= 32)
            .ok_or_else(|| format!("invalid service range {s:?}: bad prefix length"))?;
        if prefix < 12 {
            return Err(format!(
                "specified --service-cluster-ip-range {s} is too large; for 32-bit addresses, the mask must be >= 12"
            ));
        }
        if prefix > 30 {
            return Err(format!(
                "specified --service-cluster-ip-range {s} is too small; the mask must be <= 30"
            ));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(ServiceCidr {
            network: u32::from(ip) & mask,
            prefix,
        })
    }

    /// How many addresses can be handed out.
    pub fn size(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }

    /// The offset of `ip` among the usable addresses, if it is one.
    pub fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let n = u32::from(ip);
        let first = self.network + 1;
        (n >= first && n - first < self.size()).then(|| n - first)
    }

    pub fn ip(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1 + offset)
    }

    /// The `kubernetes` Service's address: the first usable one (10.96.0.1).
    pub fn kubernetes_ip(&self) -> Ipv4Addr {
        self.ip(0)
    }
}

impl Default for ServiceCidr {
    /// 10.96.0.0/12, kubeadm's default.
    fn default() -> ServiceCidr {
        ServiceCidr {
            network: u32::from(Ipv4Addr::new(10, 96, 0, 0)),
            prefix: 12,
        }
    }
}

impl std::fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// A node-port range, `lo-hi` inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub base: u16,
    pub size: u32,
}

impl PortRange {
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let bad = || format!("invalid port range {s:?}: want lo-hi, e.g. 30000-32767");
        let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
        let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
        if lo == 0 || hi < lo {
            return Err(bad());
        }
        Ok(PortRange {
            base: lo,
            size: u32::from(hi - lo) + 1,
        })
    }

    pub fn offset(&self, port: i32) -> Option<u32> {
        let p = i64::from(port) - i64::from(self.base);
        (p >= 0 && p < i64::from(self.size)).then_some(p as u32)
    }

    pub fn port(&self, offset: u32) -> i32 {
        i32::from(self.base) + offset as i32
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.base, u32::from(self.base) + self.size - 1)
    }
}

/// Hands out the offsets `0..size`, each to one owner at a time.
#[derive(Clone, Debug)]
pub struct Allocator {
    size: u32,
    /// Offsets below this are handed out dynamically only when the rest is full.
    static_band: u32,
    used: HashMap<u32, String>,
}

impl Allocator {
    pub fn new(size: u32, static_band: u32) -> Allocator {
        Allocator {
            size,
            static_band: static_band.min(size),
            used: HashMap::new(),
        }
    }

    /// Takes `offset` for `owner`; false when someone holds it (the same owner included).
    pub fn allocate(&mut self, offset: u32, owner: &str) -> bool {
        if offset >= self.size {
            return false;
        }
        match self.used.entry(offset) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(owner.to_string());
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        }
    }

    /// Takes a free offset, searching from `seed` within the upper band, then the lower
    /// band. `None` when the range is full.
    pub fn allocate_next(&mut self, owner: &str, seed: u64) -> Option<u32> {
        let bands = [(self.static_band, self.size), (0, self.static_band)];
        for (lo, hi) in bands {
            let width = hi - lo;
            if width == 0 {
                continue;
            }
            let start = (seed % u64::from(width)) as u32;
            for i in 0..width {
                let offset = lo + (start + i) % width;
                if let std::collections::hash_map::Entry::Vacant(slot) = self.used.entry(offset) {
                    slot.insert(owner.to_string());
                    return Some(offset);
                }
            }
        }
        None
    }

    /// Frees `offset` if `owner` holds it.
    pub fn release(&mut self, offset: u32, owner: &str) -> bool {
        if self.used.get(&offset).is_some_and(|o| o == owner) {
            self.used.remove(&offset);
            true
        } else {
            false
        }
    }

    pub fn owner(&self, offset: u32) -> Option<&str> {
        self.used.get(&offset).map(String::as_str)
    }

    pub fn used(&self) -> usize {
        self.used.len()
    }
}

/// One value a Service holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Held {
    ClusterIp(u32),
    NodePort(u32),
}

/// What one write took and gave up; see the module docs.
#[derive(Debug, Default)]
#[must_use = "commit or roll back an allocation"]
pub struct Allocation {
    owner: String,
    taken: Vec<Held>,
    given_up: Vec<Held>,
}

impl Allocation {
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.given_up.is_empty()
    }
}

/// The cluster-IP and node-port ranges of one API server.
#[derive(Clone, Debug)]
pub struct ServiceRanges {
    pub cidr: ServiceCidr,
    pub node_ports: PortRange,
    ips: Allocator,
    ports: Allocator,
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// Types that get a cluster IP (unless headless).
fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    text(&spec.type_) != "ExternalName" && text(&spec.cluster_ip) != "None"
}

fn needs_node_ports(spec: &ServiceSpec) -> bool {
    match text(&spec.type_) {
        "NodePort" => true,
        "LoadBalancer" => spec.allocate_load_balancer_node_ports.unwrap_or(true),
        _ => false,
    }
}

fn needs_health_check_port(spec: &ServiceSpec) -> bool {
    text(&spec.type_) == "LoadBalancer" && text(&spec.external_traffic_policy) == "Local"
}

/// kube-apiserver's lower band: `min(max(16, size/16), 256)` addresses.
fn ip_static_band(size: u32) -> u32 {
    (size / 16).clamp(16, 256)
}

/// The node-port lower band: `min(max(16, size/32), 128)` ports.
fn port_static_band(size: u32) -> u32 {
    (size / 32).clamp(16, 128)
}

impl ServiceRanges {
    pub fn new(cidr: ServiceCidr, node_ports: PortRange) -> ServiceRanges {
        ServiceRanges {
            ips: Allocator::new(cidr.size(), ip_static_band(cidr.size())),
            ports: Allocator::new(node_ports.size, port_static_band(node_ports.size)),
            cidr,
            node_ports,
        }
    }

    fn owner(svc: &Service) -> String {
        svc.metadata.uid.clone().unwrap_or_default()
    }

    fn ip_offset(&self, ip: &str) -> Option<u32> {
        self.cidr.offset(ip.parse().ok()?)
    }

    /// Everything `svc` holds inside the ranges.
    fn held(&self, svc: &Service) -> BTreeSet<Held> {
        let mut out = BTreeSet::new();
        let Some(spec) = &svc.spec else { return out };
        if needs_cluster_ip(spec)
            && let Some(o) = self.ip_offset(text(&spec.cluster_ip))
        {
            out.insert(Held::ClusterIp(o));
        }
        for p in spec.ports.iter().flatten() {
            if let Some(o) = p.node_port.and_then(|n| self.node_ports.offset(n)) {
                out.insert(Held::NodePort(o));
            }
        }
        if let Some(o) = spec
            .health_check_node_port
            .and_then(|n| self.node_ports.offset(n))
        {
            out.insert(Held::NodePort(o));
        }
        out
    }

    fn take(&mut self, h: Held, owner: &str) -> bool {
        match h {
            Held::ClusterIp(o) => self.ips.allocate(o, owner),
            Held::NodePort(o) => self.ports.allocate(o, owner),
        }
    }

    fn free(&mut self, h: Held, owner: &str) {
        match h {
            Held::ClusterIp(o) => self.ips.release(o, owner),
            Held::NodePort(o) => self.ports.release(o, owner),
        };
    }

    /// Records what a stored Service holds. Returns a description of each value another
    /// Service already held (kube-apiserver's repair loop reports the same).
    pub fn restore(&mut self, svc: &Service) -> Vec<String> {
        let owner = Self::owner(svc);
        let mut clashes = Vec::new();
        for h in self.held(svc) {
            if !self.take(h, &owner) {
                clashes.push(match h {
                    Held::ClusterIp(o) => format!("cluster IP {} held twice", self.cidr.ip(o)),
                    Held::NodePort(o) => {
                        format!("node port {} held twice", self.node_ports.port(o))
                    }
                });
            }
        }
        clashes
    }

    /// Frees everything a deleted Service held.
    pub fn release(&mut self, svc: &Service) {
        let owner = Self::owner(svc);
        for h in self.held(svc) {
            self.free(h, &owner);
        }
    }

    pub fn commit(&mut self, a: Allocation) {
        for h in a.given_up {
            self.free(h, &a.owner);
        }
    }

    pub fn rollback(&mut self, a: Allocation) {
        for h in a.taken {
            self.free(h, &a.owner);
        }
    }

    /// Fills in and takes the cluster IP and node ports of a new Service (its uid set).
    /// A requested value is honoured when it is in range and free; otherwise the errors
    /// kube-apiserver gives. `seed` picks where the search for a free value starts.
    pub fn allocate_create(
        &mut self,
        svc: &mut Service,
        seed: u64,
    ) -> Result<Allocation, Vec<FieldError>> {
        self.allocate(svc, &BTreeSet::new(), seed)
    }

    /// The same for an update of `old` to `new`: values `old` holds stay with it, new
    /// ones are taken, and the ones `new` no longer holds are given up on commit.
    pub fn allocate_update(
        &mut self,
        new: &mut Service,
        old: &Service,
        seed: u64,
    ) -> Result<Allocation, Vec<FieldError>> {
        let kept = self.held(old);
        let mut a = self.allocate(new, &kept, seed)?;
        let now = self.held(new);
        a.given_up = kept.difference(&now).copied().collect();
        Ok(a)
    }

    fn allocate(
        &mut self,
        svc: &mut Service,
        kept: &BTreeSet<Held>,
        seed: u64,
    ) -> Result<Allocation, Vec<FieldError>> {
        let owner = Self::owner(svc);
        let mut a = Allocation {
            owner: owner.clone(),
            ..Allocation::default()
        };
        let Some(spec) = svc.spec.as_mut() else {
            return Ok(a);
        };
        let mut errs = Vec::new();
        if needs_cluster_ip(spec) {
            errs.extend(single_stack(spec));
            if errs.is_empty() {
                match self.cluster_ip(spec, kept, &owner, seed) {
                    Ok(Some(h)) => a.taken.push(h),
                    Ok(None) => {}
                    Err(e) => errs.push(e),
                }
            }
        }
        if errs.is_empty() && needs_node_ports(spec) {
            let mut mine: HashMap<i32, ()> = HashMap::new();
            let n = spec.ports.as_ref().map_or(0, Vec::len);
            for i in 0..n {
                let Some(port) = spec.ports.as_mut().and_then(|p| p.get_mut(i)) else {
                    break;
                };
                let path = format!("spec.ports[{i}].nodePort");
                match self.node_port(port.node_port.unwrap_or(0), kept, &mine, &owner, seed) {
                    Ok((value, taken)) => {
                        port.node_port = Some(value);
                        mine.insert(value, ());
                        a.taken.extend(taken);
                    }
                    Err(detail) => errs.push(FieldError::invalid_rendered(
                        path,
                        port.node_port.unwrap_or(0).to_string(),
                        detail,
                    )),
                }
            }
        }
        if errs.is_empty() && needs_health_check_port(spec) {
            let requested = spec.health_check_node_port.unwrap_or(0);
            match self.node_port(requested, kept, &HashMap::new(), &owner, seed) {
                Ok((value, taken)) => {
                    spec.health_check_node_port = Some(value);
                    a.taken.extend(taken);
                }
                Err(detail) => errs.push(FieldError::invalid_rendered(
                    "spec.healthCheckNodePort",
                    requested.to_string(),
                    detail,
                )),
            }
        }
        if errs.is_empty() {
            Ok(a)
        } else {
            self.rollback(a);
            Err(errs)
        }
    }

    fn cluster_ip(
        &mut self,
        spec: &mut ServiceSpec,
        kept: &BTreeSet<Held>,
        owner: &str,
        seed: u64,
    ) -> Result<Option<Held>, FieldError> {
        let requested = text(&spec.cluster_ip).to_string();
        if requested.is_empty() {
            let Some(o) = self.ips.allocate_next(owner, seed) else {
                return Err(FieldError::internal(
                    "spec.clusterIPs",
                    "failed to allocate a serviceIP: range is full",
                ));
            };
            let ip = self.cidr.ip(o).to_string();
            spec.cluster_ip = Some(ip.clone());
            spec.cluster_ips = Some(vec![ip]);
            return Ok(Some(Held::ClusterIp(o)));
        }
        let shown = crate::validation::go::string_slice(spec.cluster_ips.as_deref());
        let fail = |why: String| {
            FieldError::invalid_rendered(
                "spec.clusterIPs",
                shown.clone(),
                format!("failed to allocate IP {requested}: {why}"),
            )
        };
        let Some(o) = self.ip_offset(&requested) else {
            return Err(fail(format!(
                "provided IP {requested} is not in the valid range"
            )));
        };
        if kept.contains(&Held::ClusterIp(o)) {
            return Ok(None);
        }
        if self.ips.allocate(o, owner) {
            Ok(Some(Held::ClusterIp(o)))
        } else {
            Err(fail("provided IP is already allocated".into()))
        }
    }

    /// A node port: the requested one (0: any). Returns the value and what was taken.
    fn node_port(
        &mut self,
        requested: i32,
        kept: &BTreeSet<Held>,
        mine: &HashMap<i32, ()>,
        owner: &str,
        seed: u64,
    ) -> Result<(i32, Option<Held>), String> {
        if requested == 0 {
            return match self.ports.allocate_next(owner, seed) {
                Some(o) => Ok((self.node_ports.port(o), Some(Held::NodePort(o)))),
                None => Err("failed to allocate a nodePort: range is full".into()),
            };
        }
        let Some(o) = self.node_ports.offset(requested) else {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {}",
                self.node_ports
            ));
        };
        // One node port may serve several protocols of the same Service.
        if kept.contains(&Held::NodePort(o)) || mine.contains_key(&requested) {
            return Ok((requested, None));
        }
        if self.ports.allocate(o, owner) {
            Ok((requested, Some(Held::NodePort(o))))
        } else {
            Err("provided port is already allocated".into())
        }
    }

    pub fn ips_used(&self) -> usize {
        self.ips.used()
    }

    pub fn node_ports_used(&self) -> usize {
        self.ports.used()
    }
}

/// Only IPv4 single-stack Services fit an IPv4 range.
fn single_stack(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if text(&spec.ip_family_policy) == "RequireDualStack" {
        errs.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            "RequireDualStack",
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if f != "IPv4" {
            errs.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                f,
                "not configured on this cluster",
            ));
        }
    }
    errs
}

/// On update, what the client left out of an allocated Service is kept from the stored
/// one (a `kubectl replace` of a manifest without `clusterIP` must not change it), and
/// values tied to the old type are dropped when the type changes (kube-apiserver's
/// `patchAllocatedValues` and `dropTypeDependentFields`).
pub fn carry_over_allocated(new: &mut Service, old: &Service) {
    let (Some(n), Some(o)) = (new.spec.as_mut(), old.spec.as_ref()) else {
        return;
    };
    if needs_cluster_ip(o) && needs_cluster_ip(n) {
        if text(&n.cluster_ip).is_empty() {
            n.cluster_ip = o.cluster_ip.clone();
        }
        if n.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
            n.cluster_ips = o.cluster_ips.clone();
        }
    }
    if needs_node_ports(o) && needs_node_ports(n) {
        let used_by_both: BTreeSet<i32> = {
            let ports = |s: &ServiceSpec| -> BTreeSet<i32> {
                s.ports
                    .iter()
                    .flatten()
                    .filter_map(|p| p.node_port)
                    .filter(|p| *p != 0)
                    .collect()
            };
            ports(o).intersection(&ports(n)).copied().collect()
        };
        let by_name: HashMap<&str, i32> = o
            .ports
            .iter()
            .flatten()
            .map(|p| (text(&p.name), p.node_port.unwrap_or(0)))
            .collect();
        for p in n.ports.iter_mut().flatten() {
            if p.node_port.unwrap_or(0) == 0
                && let Some(&old) = by_name.get(text(&p.name))
                && old != 0
                && !used_by_both.contains(&old)
            {
                p.node_port = Some(old);
            }
        }
    }
    if needs_health_check_port(o)
        && needs_health_check_port(n)
        && n.health_check_node_port.unwrap_or(0) == 0
    {
        n.health_check_node_port = o.health_check_node_port;
    }
    // A client that changed `clusterIP` alone meant `clusterIPs[0]` too
    // (kube-apiserver's `normalizeClusterIPs`); validation then names both.
    if n.cluster_ip != o.cluster_ip && n.cluster_ips == o.cluster_ips {
        match text(&n.cluster_ip) {
            "" => n.cluster_ips = None,
            ip => {
                if let Some(first) = n.cluster_ips.as_mut().and_then(|v| v.first_mut()) {
                    *first = ip.to_string();
                }
            }
        }
    }
    // Type changes: values the client did not touch go with the old type.
    let type_changed = text(&n.type_) != text(&o.type_);
    if type_changed && text(&n.type_) == "ExternalName" {
        if n.cluster_ip == o.cluster_ip {
            n.cluster_ip = None;
        }
        if n.cluster_ips == o.cluster_ips {
            n.cluster_ips = None;
        }
        if n.ip_families == o.ip_families {
            n.ip_families = None;
        }
        if n.ip_family_policy == o.ip_family_policy {
            n.ip_family_policy = None;
        }
    }
    if needs_node_ports(o) && !needs_node_ports(n) {
        let old_ports: HashMap<&str, i32> = o
            .ports
            .iter()
            .flatten()
            .map(|p| (text(&p.name), p.node_port.unwrap_or(0)))
            .collect();
        for p in n.ports.iter_mut().flatten() {
            if p.node_port.is_some() && old_ports.get(text(&p.name)) == p.node_port.as_ref() {
                p.node_port = None;
            }
        }
    }
    if needs_health_check_port(o)
        && !needs_health_check_port(n)
        && n.health_check_node_port == o.health_check_node_port
    {
        n.health_check_node_port = None;
    }
    // Leaving LoadBalancer: its node-port switch and class go, unless the client set them.
    if text(&o.type_) == "LoadBalancer" && text(&n.type_) != "LoadBalancer" {
        if n.allocate_load_balancer_node_ports.is_some()
            && n.allocate_load_balancer_node_ports == o.allocate_load_balancer_node_ports
        {
            n.allocate_load_balancer_node_ports = None;
        }
        if n.load_balancer_class == o.load_balancer_class {
            n.load_balancer_class = None;
        }
    }
    // No longer reachable from outside the cluster: the external traffic policy goes.
    let external = |s: &ServiceSpec| match text(&s.type_) {
        "LoadBalancer" | "NodePort" => true,
        "" | "ClusterIP" => s.external_ips.as_ref().is_some_and(|ips| !ips.is_empty()),
        _ => false,
    };
    if external(o) && !external(n) && n.external_traffic_policy == o.external_traffic_policy {
        n.external_traffic_policy = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ranges(cidr: &str) -> ServiceRanges {
        ServiceRanges::new(
            ServiceCidr::parse(cidr).expect("cidr"),
            PortRange::parse(DEFAULT_NODE_PORT_RANGE).expect("ports"),
        )
    }

    fn svc(uid: &str, spec: serde_json::Value) -> Service {
        let mut s: Service = serde_json::from_value(json!({
            "metadata": {"name": "s", "namespace": "default", "uid": uid},
            "spec": spec,
        }))
        .expect("service");
        crate::defaults::default_service(&mut s);
        s
    }

    fn create(r: &mut ServiceRanges, s: &mut Service, seed: u64, why: &str) {
        let a = r.allocate_create(s, seed).expect(why);
        r.commit(a);
    }

    fn spec(s: &Service) -> &ServiceSpec {
        s.spec.as_ref().expect("spec")
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    #[test]
    fn cidr_parsing_and_offsets() {
        let c = ServiceCidr::parse("10.96.0.0/12").expect("cidr");
        assert_eq!(c.to_string(), "10.96.0.0/12");
        assert_eq!(c.size(), (1 << 20) - 2);
        assert_eq!(ServiceCidr::default(), c);
        assert_eq!(c.kubernetes_ip(), Ipv4Addr::new(10, 96, 0, 1));
        assert_eq!(c.offset(Ipv4Addr::new(10, 96, 0, 10)), Some(9));
        assert_eq!(c.offset(Ipv4Addr::new(10, 96, 0, 0)), None, "network");
        assert_eq!(
            c.offset(Ipv4Addr::new(10, 111, 255, 255)),
            None,
            "broadcast"
        );
        assert_eq!(c.offset(Ipv4Addr::new(10, 112, 0, 1)), None, "outside");
        // Host bits are masked off, as net.ParseCIDR does.
        let c = ServiceCidr::parse("192.168.7.9/24").expect("cidr");
        assert_eq!(c.to_string(), "192.168.7.0/24");
        assert_eq!(c.size(), 254);
        for bad in [
            "10.0.0.0/8",
            "10.0.0.0/31",
            "fd00::/108",
            "10.0.0.0",
            "x/24",
            "10.0.0.0/33",
        ] {
            assert!(ServiceCidr::parse(bad).is_err(), "{bad}");
        }
        assert!(
            ServiceCidr::parse("10.0.0.0/8")
                .unwrap_err()
                .contains("the mask must be >= 12")
        );
        let p = PortRange::parse("30000-32767").expect("ports");
        assert_eq!(
            (p.offset(30000), p.offset(32767), p.offset(32768)),
            (Some(0), Some(2767), None)
        );
        assert_eq!(p.to_string(), "30000-32767");
        assert!(PortRange::parse("5-1").is_err());
    }

    #[test]
    fn allocator_hands_each_offset_out_once() {
        let mut a = Allocator::new(20, 16);
        // Dynamic values come from the upper band first.
        let first: Vec<u32> = (0..4)
            .map(|i| a.allocate_next("x", i).expect("free"))
            .collect();
        assert!(first.iter().all(|o| *o >= 16), "{first:?}");
        // Then the lower band; never a value twice.
        let mut all: BTreeSet<u32> = first.into_iter().collect();
        for i in 0..16 {
            assert!(all.insert(a.allocate_next("x", i * 7).expect("free")));
        }
        assert_eq!(a.allocate_next("x", 3), None, "full");
        // Only the owner frees a value.
        assert!(!a.release(5, "y"));
        assert!(a.release(5, "x"));
        assert!(!a.allocate(20, "y"), "out of range");
        assert!(a.allocate(5, "y"));
        assert!(!a.allocate(5, "z"));
        assert_eq!(a.owner(5), Some("y"));
    }

    #[test]
    fn cluster_ips_are_allocated_honoured_and_refused() {
        let mut r = ranges("10.96.0.0/24");
        // A Service without a clusterIP gets one from the range.
        let mut a = svc(
            "a",
            json!({"ports": [{"port": 80}], "selector": {"app": "x"}}),
        );
        let alloc = r.allocate_create(&mut a, 7).expect("allocated");
        r.commit(alloc);
        let ip = spec(&a).cluster_ip.clone().expect("ip");
        assert!(r.cidr.offset(ip.parse().expect("ip")).is_some(), "{ip}");
        assert_eq!(spec(&a).cluster_ips, Some(vec![ip.clone()]));
        // Headless and ExternalName Services take nothing.
        let mut h = svc("h", json!({"clusterIP": "None", "selector": {"app": "x"}}));
        assert!(r.allocate_create(&mut h, 1).expect("ok").is_empty());
        let mut e = svc(
            "e",
            json!({"type": "ExternalName", "externalName": "example.com"}),
        );
        assert!(r.allocate_create(&mut e, 1).expect("ok").is_empty());
        // A requested free IP is honoured.
        let mut b = svc(
            "b",
            json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}),
        );
        create(&mut r, &mut b, 1, "free");
        assert_eq!(spec(&b).cluster_ip.as_deref(), Some("10.96.0.10"));
        // The same IP again, or one outside the range, is refused as kube-apiserver does.
        let mut c = svc(
            "c",
            json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}),
        );
        assert_eq!(
            messages(&r.allocate_create(&mut c, 1).expect_err("taken")),
            [
                "spec.clusterIPs: Invalid value: []string{\"10.96.0.10\"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"
            ]
        );
        let mut d = svc(
            "d",
            json!({"clusterIP": "10.0.0.1", "ports": [{"port": 53}]}),
        );
        assert_eq!(
            messages(&r.allocate_create(&mut d, 1).expect_err("range")),
            [
                "spec.clusterIPs: Invalid value: []string{\"10.0.0.1\"}: failed to allocate IP 10.0.0.1: provided IP 10.0.0.1 is not in the valid range"
            ]
        );
        let mut v6 = svc(
            "v6",
            json!({"ipFamilies": ["IPv6"], "ports": [{"port": 53}]}),
        );
        assert_eq!(
            messages(&r.allocate_create(&mut v6, 1).expect_err("v6")),
            ["spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"]
        );
        // Deleting frees the IP for the next Service; a stale owner frees nothing.
        let mut stale = b.clone();
        stale.metadata.uid = Some("someone-else".into());
        r.release(&stale);
        assert!(r.allocate_create(&mut c.clone(), 1).is_err());
        r.release(&b);
        create(&mut r, &mut c, 1, "free again");
        assert_eq!(r.ips_used(), 2);
    }

    #[test]
    fn rollback_frees_what_a_failed_write_took() {
        let mut r = ranges("10.96.0.0/28");
        let mut a = svc("a", json!({"ports": [{"port": 80}]}));
        let alloc = r.allocate_create(&mut a, 0).expect("allocated");
        assert_eq!(r.ips_used(), 1);
        r.rollback(alloc);
        assert_eq!(r.ips_used(), 0);
        // A /28 has 14 addresses: the 15th Service finds the range full.
        for i in 0..14 {
            let mut s = svc(&format!("s{i}"), json!({"ports": [{"port": 80}]}));
            create(&mut r, &mut s, i, "room");
        }
        let mut full = svc("full", json!({"ports": [{"port": 80}]}));
        assert!(r.allocate_create(&mut full, 0).is_err());
    }

    #[test]
    fn restore_rebuilds_the_ranges_from_stored_services() {
        let mut r = ranges("10.96.0.0/24");
        let a = svc(
            "a",
            json!({"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "ports": [{"port": 80}]}),
        );
        let twin = svc(
            "twin",
            json!({"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "ports": [{"port": 80}]}),
        );
        let outside = svc(
            "o",
            json!({"clusterIP": "10.200.0.1", "clusterIPs": ["10.200.0.1"], "ports": [{"port": 80}]}),
        );
        assert!(r.restore(&a).is_empty());
        assert_eq!(r.restore(&twin), ["cluster IP 10.96.0.20 held twice"]);
        assert!(
            r.restore(&outside).is_empty(),
            "outside the range: not tracked"
        );
        let mut b = svc(
            "b",
            json!({"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}),
        );
        assert!(r.allocate_create(&mut b, 0).is_err());
    }

    #[test]
    fn node_ports() {
        let mut r = ranges("10.96.0.0/24");
        let mut a = svc(
            "a",
            json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30080}]}),
        );
        create(&mut r, &mut a, 3, "allocated");
        let ports: Vec<i32> = spec(&a)
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.node_port)
            .collect();
        assert_eq!(ports.len(), 2);
        assert!(ports[0] >= 30000 && ports[0] <= 32767 && ports[0] != 30080);
        assert_eq!(ports[1], 30080);
        assert_eq!(r.node_ports_used(), 2);
        let mut b = svc(
            "b",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
        );
        assert_eq!(
            messages(&r.allocate_create(&mut b, 0).expect_err("taken")),
            ["spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"]
        );
        assert_eq!(
            r.ips_used(),
            1,
            "the IP taken for the failed Service was given back"
        );
        let mut c = svc(
            "c",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]}),
        );
        assert_eq!(
            messages(&r.allocate_create(&mut c, 0).expect_err("range")),
            [
                "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"
            ]
        );
        // Same node port for TCP and UDP of one Service.
        let mut dns = svc(
            "dns",
            json!({"type": "NodePort", "ports": [{"name": "u", "port": 53, "protocol": "UDP", "nodePort": 30053}, {"name": "t", "port": 53, "nodePort": 30053}]}),
        );
        create(&mut r, &mut dns, 0, "shared");
    }

    #[test]
    fn updates_keep_take_and_give_up() {
        let mut r = ranges("10.96.0.0/24");
        let mut old = svc(
            "u",
            json!({"type": "NodePort", "ports": [{"name": "web", "port": 80}]}),
        );
        create(&mut r, &mut old, 0, "allocated");
        let old_ip = spec(&old).cluster_ip.clone();
        let old_np = spec(&old).ports.as_ref().expect("ports")[0].node_port;
        // A replace without clusterIP and nodePort keeps both.
        let mut new = svc(
            "u",
            json!({"type": "NodePort", "ports": [{"name": "web", "port": 8080}]}),
        );
        carry_over_allocated(&mut new, &old);
        let alloc = r.allocate_update(&mut new, &old, 5).expect("update");
        assert!(alloc.is_empty(), "{alloc:?}");
        r.commit(alloc);
        assert_eq!(spec(&new).cluster_ip, old_ip);
        assert_eq!(
            spec(&new).ports.as_ref().expect("ports")[0].node_port,
            old_np
        );
        // Changing clusterIP alone moves clusterIPs[0] with it.
        let mut moved = new.clone();
        if let Some(s) = moved.spec.as_mut() {
            s.cluster_ip = Some("10.96.0.99".into());
        }
        carry_over_allocated(&mut moved, &new);
        assert_eq!(
            spec(&moved).cluster_ips,
            Some(vec!["10.96.0.99".to_string()])
        );
        // NodePort -> ClusterIP drops the node port, freed on commit.
        let mut cip = svc(
            "u",
            json!({"type": "ClusterIP", "ports": [{"name": "web", "port": 8080}]}),
        );
        serde_json::to_value(&new).ok();
        if let (Some(n), Some(o)) = (cip.spec.as_mut(), new.spec.as_ref()) {
            n.ports = o.ports.clone();
        }
        carry_over_allocated(&mut cip, &new);
        assert_eq!(spec(&cip).ports.as_ref().expect("ports")[0].node_port, None);
        let alloc = r.allocate_update(&mut cip, &new, 0).expect("update");
        r.commit(alloc);
        assert_eq!(r.node_ports_used(), 0);
        assert_eq!(r.ips_used(), 1);
        // ClusterIP -> ExternalName gives the IP up.
        let mut ext = cip.clone();
        if let Some(s) = ext.spec.as_mut() {
            s.type_ = Some("ExternalName".into());
            s.external_name = Some("example.com".into());
        }
        carry_over_allocated(&mut ext, &cip);
        assert_eq!(spec(&ext).cluster_ip, None);
        let alloc = r.allocate_update(&mut ext, &cip, 0).expect("update");
        r.commit(alloc);
        assert_eq!(r.ips_used(), 0);
    }

    /// A patch of `type` alone (`kubectl patch svc x -p '{"spec":{"type":"ClusterIP"}}'`):
    /// what only the old type allowed goes with it, unless the client changed it.
    #[test]
    fn a_type_change_drops_what_only_the_old_type_allowed() {
        let lb = svc(
            "u",
            json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/lb",
                   "ports": [{"name": "web", "port": 80, "nodePort": 30080}]}),
        );
        assert_eq!(spec(&lb).allocate_load_balancer_node_ports, Some(true));
        assert_eq!(
            spec(&lb).external_traffic_policy.as_deref(),
            Some("Cluster")
        );
        let retyped = |from: &Service, to: &str| {
            let mut s = from.clone();
            if let Some(sp) = s.spec.as_mut() {
                sp.type_ = Some(to.into());
            }
            carry_over_allocated(&mut s, from);
            s
        };
        let np = retyped(&lb, "NodePort");
        assert_eq!(spec(&np).allocate_load_balancer_node_ports, None);
        assert_eq!(spec(&np).load_balancer_class, None);
        assert_eq!(
            spec(&np).external_traffic_policy.as_deref(),
            Some("Cluster")
        );
        assert_eq!(
            spec(&np).ports.as_ref().expect("ports")[0].node_port,
            Some(30080)
        );
        let cip = retyped(&np, "ClusterIP");
        assert_eq!(spec(&cip).external_traffic_policy, None);
        assert_eq!(spec(&cip).ports.as_ref().expect("ports")[0].node_port, None);
        // A value the client changed together with the type stays (validation judges it).
        let mut local = np.clone();
        if let Some(sp) = local.spec.as_mut() {
            sp.type_ = Some("ClusterIP".into());
            sp.external_traffic_policy = Some("Local".into());
        }
        carry_over_allocated(&mut local, &np);
        assert_eq!(
            spec(&local).external_traffic_policy.as_deref(),
            Some("Local")
        );
    }
}
