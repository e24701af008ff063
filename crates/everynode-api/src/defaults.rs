//! Defaulting for the kinds everynode serves: what kube-apiserver 1.33 fills in before it
//! validates and stores an object (`SetDefaults_*` of apps/v1 and core/v1, plus the few
//! create-time normalisations a real cluster shows in `kubectl get -o yaml`).
//!
//! Every function mutates in place and is idempotent: applying it twice gives the same
//! object as applying it once. The reference is daemonset-semantics.md §2.
//!
//! Quantities in resource lists are rewritten to Kubernetes' canonical form and rounded
//! up to milli precision (`0.5` → `500m`, `0.0001` → `1m`, `2048Mi` → `2Gi`), because the
//! real server stores and returns them that way.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{
    Container, EphemeralContainer, HTTPGetAction, Lifecycle, LifecycleHandler, Namespace,
    NamespaceSpec, Node, ObjectFieldSelector, Pod, PodSecurityContext, PodSpec, Probe,
    ResourceRequirements, Service, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The finalizer the namespace controller removes once a namespace's content is gone.
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

/// A `ResourceList` as k8s-openapi models it.
type ResourceList = BTreeMap<String, Quantity>;

/// apps/v1 `SetDefaults_DaemonSet` plus the pod-template defaults (§2.1, §2.2).
pub fn default_daemonset(ds: &mut DaemonSet) {
    let spec = ds.spec.get_or_insert_with(Default::default);
    let strategy = spec
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    if strategy.type_.as_deref().unwrap_or("").is_empty() {
        strategy.type_ = Some("RollingUpdate".into());
    }
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        rolling.max_unavailable.get_or_insert(IntOrString::Int(1));
        rolling.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    default_pod_spec(spec.template.spec.get_or_insert_with(Default::default));
}

/// core/v1 `SetDefaults_Pod` followed by the pod-spec defaults.
///
/// Pod-only rules (not applied to templates): requests default to limits, service links
/// are enabled, and with `hostNetwork` every container port is also a host port.
pub fn default_pod(p: &mut Pod) {
    let spec = p.spec.get_or_insert_with(Default::default);
    for c in spec.containers.iter_mut() {
        requests_from_limits(c);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        requests_from_limits(c);
    }
    spec.enable_service_links.get_or_insert(true);
    if spec.host_network == Some(true) {
        host_ports_from_container_ports(&mut spec.containers);
        if let Some(init) = spec.init_containers.as_mut() {
            host_ports_from_container_ports(init);
        }
    }
    default_pod_spec(spec);
}

/// core/v1 `SetDefaults_NodeStatus`: allocatable defaults to capacity; quantities are
/// canonicalised.
pub fn default_node(n: &mut Node) {
    if let Some(status) = n.status.as_mut() {
        if status.allocatable.is_none() {
            status.allocatable = status.capacity.clone();
        }
        default_resource_list(status.capacity.as_mut());
        default_resource_list(status.allocatable.as_mut());
    }
}

/// core/v1 `SetDefaults_Namespace` and the namespace strategy's create-time finalizer.
///
/// The `kubernetes` finalizer is only added while the object has no creation timestamp
/// (i.e. on create): the namespace controller removes it during deletion and it must not
/// come back on later writes.
pub fn default_namespace(n: &mut Namespace) {
    if let Some(name) = n.metadata.name.clone().filter(|s| !s.is_empty()) {
        n.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(NAMESPACE_NAME_LABEL.into(), name);
    }
    if n.metadata.creation_timestamp.is_none() {
        let finalizers = n
            .spec
            .get_or_insert_with(NamespaceSpec::default)
            .finalizers
            .get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == NAMESPACE_FINALIZER) {
            finalizers.push(NAMESPACE_FINALIZER.into());
        }
    }
    if let Some(status) = n.status.as_mut() {
        status.phase.get_or_insert_with(|| "Active".into());
    }
}

/// core/v1 `SetDefaults_Service`, plus the cluster-IP/IP-family normalisation the service
/// registry performs (everynode allocates no cluster IPs, so this keeps the fields consistent
/// with what validation expects).
pub fn default_service(s: &mut Service) {
    let spec = s.spec.get_or_insert_with(Default::default);
    if spec.session_affinity.as_deref().unwrap_or("").is_empty() {
        spec.session_affinity = Some("None".into());
    }
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let config = spec
                .session_affinity_config
                .get_or_insert_with(Default::default);
            let client_ip = config.client_ip.get_or_insert_with(Default::default);
            client_ip.timeout_seconds.get_or_insert(10800);
        }
        _ => {}
    }
    if spec.type_.as_deref().unwrap_or("").is_empty() {
        spec.type_ = Some("ClusterIP".into());
    }
    let type_ = spec.type_.clone().unwrap_or_default();
    for port in spec.ports.iter_mut().flatten() {
        if port.protocol.as_deref().unwrap_or("").is_empty() {
            port.protocol = Some("TCP".into());
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    let externally_accessible = type_ == "LoadBalancer"
        || type_ == "NodePort"
        || (type_ == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|v| !v.is_empty()));
    if externally_accessible
        && spec
            .external_traffic_policy
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    if spec.internal_traffic_policy.is_none()
        && matches!(type_.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP")
    {
        spec.internal_traffic_policy = Some("Cluster".into());
    }
    if type_ == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
    }
    if type_ != "ExternalName" {
        sync_cluster_ips(spec);
    }
}

/// Keeps `clusterIP` and `clusterIPs[0]` in step and fills the single-stack IP family
/// fields, as the service registry does on a single-stack cluster.
fn sync_cluster_ips(spec: &mut k8s_openapi::api::core::v1::ServiceSpec) {
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let ips_empty = spec.cluster_ips.as_ref().is_none_or(|v| v.is_empty());
    if !ip.is_empty() && ips_empty {
        spec.cluster_ips = Some(vec![ip]);
    } else if ip.is_empty() && !ips_empty {
        spec.cluster_ip = spec.cluster_ips.as_ref().and_then(|v| v.first().cloned());
    }
    spec.ip_family_policy
        .get_or_insert_with(|| "SingleStack".into());
    if spec.ip_families.as_ref().is_none_or(|v| v.is_empty()) {
        let first = spec
            .cluster_ips
            .as_ref()
            .and_then(|v| v.first().cloned())
            .unwrap_or_default();
        let family = if first.parse::<std::net::Ipv6Addr>().is_ok() {
            "IPv6"
        } else {
            "IPv4"
        };
        spec.ip_families = Some(vec![family.into()]);
    }
}

/// Kubernetes' pod QoS class (`qos.ComputePodQOS`, container-level resources).
///
/// Only cpu and memory count. Requests and limits are summed per resource over regular
/// and init containers (zero values ignored). No requests and no limits at all is
/// `BestEffort`; every container limiting both cpu and memory with sums of requests equal
/// to sums of limits is `Guaranteed`; anything else is `Burstable`.
pub fn pod_qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<&str, qty::Parsed> = BTreeMap::new();
    let mut limits: BTreeMap<&str, qty::Parsed> = BTreeMap::new();
    let mut guaranteed = true;
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in all {
        let res = c.resources.as_ref();
        for (name, q) in qos_quantities(res.and_then(|r| r.requests.as_ref())) {
            add_into(&mut requests, name, q);
        }
        let mut found = (false, false);
        for (name, q) in qos_quantities(res.and_then(|r| r.limits.as_ref())) {
            found.0 |= name == "cpu";
            found.1 |= name == "memory";
            add_into(&mut limits, name, q);
        }
        if found != (true, true) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    let equal = requests.iter().all(|(name, req)| {
        limits
            .get(name)
            .is_some_and(|lim| lim.cmp_value(req).is_eq())
    });
    if guaranteed && equal && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The positive cpu/memory quantities of a resource list.
fn qos_quantities(list: Option<&ResourceList>) -> impl Iterator<Item = (&str, qty::Parsed)> {
    list.into_iter().flatten().filter_map(|(name, q)| {
        let parsed = qty::parse(&q.0)?;
        let counted = matches!(name.as_str(), "cpu" | "memory") && parsed.is_positive();
        counted.then_some((name.as_str(), parsed))
    })
}

fn add_into<'a>(sums: &mut BTreeMap<&'a str, qty::Parsed>, name: &'a str, q: qty::Parsed) {
    let sum = match sums.get(name) {
        Some(prev) => prev.checked_add(&q).unwrap_or(q),
        None => q,
    };
    sums.insert(name, sum);
}

// ---------------------------------------------------------------------------------------
// Pod spec (SetDefaults_PodSpec and everything nested in it)

/// The defaults every pod spec gets, in pods and in templates alike.
fn default_pod_spec(spec: &mut PodSpec) {
    fill(&mut spec.dns_policy, "ClusterFirst");
    fill(&mut spec.restart_policy, "Always");
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    fill(&mut spec.scheduler_name, "default-scheduler");
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
    for c in spec.containers.iter_mut() {
        default_container(c);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        default_container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        default_ephemeral_container(c);
    }
    default_resource_list(spec.overhead.as_mut());
    if let Some(r) = spec.resources.as_mut() {
        default_resource_list(r.limits.as_mut());
        default_resource_list(r.requests.as_mut());
    }
}

/// Sets an optional string to `value` when it is missing or empty.
fn fill(field: &mut Option<String>, value: &str) {
    if field.as_deref().unwrap_or("").is_empty() {
        *field = Some(value.to_string());
    }
}

/// Container defaults (`SetDefaults_Container` and its nested structs). Written as a macro
/// because regular and ephemeral containers are distinct types with the same fields.
macro_rules! default_container_fields {
    ($c:expr) => {{
        let c = $c;
        if c.image_pull_policy.as_deref().unwrap_or("").is_empty() {
            let image = c.image.as_deref().unwrap_or("");
            let policy = if image_means_latest(image) {
                "Always"
            } else {
                "IfNotPresent"
            };
            c.image_pull_policy = Some(policy.into());
        }
        fill(&mut c.termination_message_path, "/dev/termination-log");
        fill(&mut c.termination_message_policy, "File");
        for port in c.ports.iter_mut().flatten() {
            fill(&mut port.protocol, "TCP");
        }
        for env in c.env.iter_mut().flatten() {
            if let Some(field_ref) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
                default_field_ref(field_ref);
            }
        }
        let resources = c
            .resources
            .get_or_insert_with(ResourceRequirements::default);
        default_resource_list(resources.limits.as_mut());
        default_resource_list(resources.requests.as_mut());
        for probe in [
            &mut c.liveness_probe,
            &mut c.readiness_probe,
            &mut c.startup_probe,
        ] {
            if let Some(p) = probe.as_mut() {
                default_probe(p);
            }
        }
        if let Some(l) = c.lifecycle.as_mut() {
            default_lifecycle(l);
        }
    }};
}

fn default_container(c: &mut Container) {
    default_container_fields!(c);
}

fn default_ephemeral_container(c: &mut EphemeralContainer) {
    default_container_fields!(c);
}

fn default_probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    }
    if let Some(h) = p.http_get.as_mut() {
        default_http_get(h);
    }
}

fn default_lifecycle(l: &mut Lifecycle) {
    let handlers: [&mut Option<LifecycleHandler>; 2] = [&mut l.post_start, &mut l.pre_stop];
    for h in handlers.into_iter().flatten() {
        if let Some(get) = h.http_get.as_mut() {
            default_http_get(get);
        }
    }
}

fn default_http_get(h: &mut HTTPGetAction) {
    fill(&mut h.path, "/");
    fill(&mut h.scheme, "HTTP");
}

fn default_field_ref(f: &mut ObjectFieldSelector) {
    fill(&mut f.api_version, "v1");
}

/// Volume defaults: a volume without a source is an emptyDir; file modes default to 0644.
fn default_volume(v: &mut Volume) {
    if volume_has_no_source(v) {
        v.empty_dir = Some(Default::default());
    }
    if let Some(h) = v.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(0o644);
    }
    if let Some(c) = v.config_map.as_mut() {
        c.default_mode.get_or_insert(0o644);
    }
    if let Some(d) = v.downward_api.as_mut() {
        d.default_mode.get_or_insert(0o644);
        for item in d.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                default_field_ref(f);
            }
        }
    }
    if let Some(p) = v.projected.as_mut() {
        p.default_mode.get_or_insert(0o644);
        for source in p.sources.iter_mut().flatten() {
            let items = source.downward_api.as_mut().and_then(|d| d.items.as_mut());
            for item in items.into_iter().flatten() {
                if let Some(f) = item.field_ref.as_mut() {
                    default_field_ref(f);
                }
            }
            if let Some(t) = source.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(3600);
            }
        }
    }
    if let Some(i) = v.iscsi.as_mut() {
        fill(&mut i.iscsi_interface, "default");
    }
    if let Some(r) = v.rbd.as_mut() {
        fill(&mut r.pool, "rbd");
        fill(&mut r.user, "admin");
        fill(&mut r.keyring, "/etc/ceph/keyring");
    }
    if let Some(img) = v.image.as_mut()
        && img.pull_policy.as_deref().unwrap_or("").is_empty()
    {
        let reference = img.reference.as_deref().unwrap_or("");
        let policy = if image_means_latest(reference) {
            "Always"
        } else {
            "IfNotPresent"
        };
        img.pull_policy = Some(policy.into());
    }
}

fn volume_has_no_source(v: &Volume) -> bool {
    v.aws_elastic_block_store.is_none()
        && v.azure_disk.is_none()
        && v.azure_file.is_none()
        && v.cephfs.is_none()
        && v.cinder.is_none()
        && v.config_map.is_none()
        && v.csi.is_none()
        && v.downward_api.is_none()
        && v.empty_dir.is_none()
        && v.ephemeral.is_none()
        && v.fc.is_none()
        && v.flex_volume.is_none()
        && v.flocker.is_none()
        && v.gce_persistent_disk.is_none()
        && v.git_repo.is_none()
        && v.glusterfs.is_none()
        && v.host_path.is_none()
        && v.image.is_none()
        && v.iscsi.is_none()
        && v.nfs.is_none()
        && v.persistent_volume_claim.is_none()
        && v.photon_persistent_disk.is_none()
        && v.portworx_volume.is_none()
        && v.projected.is_none()
        && v.quobyte.is_none()
        && v.rbd.is_none()
        && v.scale_io.is_none()
        && v.secret.is_none()
        && v.storageos.is_none()
        && v.vsphere_volume.is_none()
}

/// `SetDefaults_Pod`: a resource with a limit but no request is requested at its limit.
fn requests_from_limits(c: &mut Container) {
    let Some(res) = c.resources.as_mut() else {
        return;
    };
    let Some(limits) = res.limits.as_ref() else {
        return;
    };
    let requests = res.requests.get_or_insert_with(BTreeMap::new);
    for (name, value) in limits {
        requests
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
}

fn host_ports_from_container_ports(containers: &mut [Container]) {
    for port in containers
        .iter_mut()
        .flat_map(|c| c.ports.iter_mut().flatten())
    {
        if port.host_port.unwrap_or(0) == 0 {
            port.host_port = Some(port.container_port);
        }
    }
}

/// `SetDefaults_ResourceList`: quantities rounded up to milli precision, in canonical form.
/// Strings that are not quantities are left alone (validation reports them).
fn default_resource_list(list: Option<&mut ResourceList>) {
    for q in list.into_iter().flat_map(|l| l.values_mut()) {
        if let Some(parsed) = qty::parse(&q.0) {
            q.0 = parsed.round_up_to_milli().canonical();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Image references

/// Whether the image pull policy defaults to `Always`: the reference names the `latest`
/// tag explicitly, or names no tag and no digest (the runtime then pulls `latest`). A
/// reference that does not parse defaults to `IfNotPresent`, as in Kubernetes.
pub(crate) fn image_means_latest(image: &str) -> bool {
    let Some(parts) = ImageRef::parse(image) else {
        return false;
    };
    match parts.tag {
        Some(tag) => tag == "latest",
        None => parts.digest.is_none(),
    }
}

/// The pieces of a container image reference (`[registry/]path[:tag][@digest]`), checked
/// against the grammar the container runtime's reference parser accepts.
struct ImageRef<'a> {
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    fn parse(image: &'a str) -> Option<Self> {
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (image, None),
        };
        let last_segment_start = name.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match name[last_segment_start..].rfind(':') {
            Some(i) => {
                let at = last_segment_start + i;
                (&name[..at], Some(&name[at + 1..]))
            }
            None => (name, None),
        };
        let ok = repo_is_valid(repo)
            && tag.is_none_or(tag_is_valid)
            && digest.is_none_or(digest_is_valid);
        ok.then_some(ImageRef { tag, digest })
    }
}

fn repo_is_valid(repo: &str) -> bool {
    if repo.is_empty() || repo.len() > 255 {
        return false;
    }
    let (domain, path) = match repo.split_once('/') {
        Some((first, rest)) if is_registry_host(first) => (Some(first), rest),
        _ => (None, repo),
    };
    if domain.is_some_and(|d| !domain_is_valid(d)) {
        return false;
    }
    // A bare 64-hex-digit name would be mistaken for an image ID.
    if path.len() == 64
        && path
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return false;
    }
    path.split('/').all(path_component_is_valid)
}

/// The first path component names a registry when it looks like a host.
fn is_registry_host(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
}

fn domain_is_valid(domain: &str) -> bool {
    let (host, port) = match domain.find(']') {
        Some(i) => match &domain[i + 1..] {
            "" => (&domain[..=i], None),
            rest => match rest.strip_prefix(':') {
                Some(p) => (&domain[..=i], Some(p)),
                None => return false,
            },
        },
        None => match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        },
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if host.starts_with('[') {
        return host.ends_with(']')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component_is_valid(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let dashes = sep.bytes().all(|b| b == b'-');
        if !(sep == "." || sep == "_" || sep == "__" || dashes) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn tag_is_valid(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// `algorithm:hex` with a hex part of at least 32 digits.
fn digest_is_valid(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let alg_ok = algorithm.starts_with(|c: char| c.is_ascii_alphabetic())
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b));
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------------------
// Quantities

/// Exact resource-quantity arithmetic, just enough for defaulting and validation
/// (canonical form, milli rounding, comparison, sums). Values are `mantissa × 10^exp`.
pub(crate) mod qty {
    use std::cmp::Ordering;

    /// Which family of suffix a quantity was written with; it decides the canonical form.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Format {
        DecimalSi,
        BinarySi,
        DecimalExponent,
    }

    /// A parsed quantity: exactly `mantissa × 10^exp`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Parsed {
        pub mantissa: i128,
        pub exp: i32,
        pub format: Format,
    }

    /// The message Kubernetes gives for a string that is not a quantity.
    pub(crate) const SYNTAX_ERROR: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

    const DECIMAL_SUFFIXES: [(&str, i32); 10] = [
        ("n", -9),
        ("u", -6),
        ("m", -3),
        ("", 0),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("P", 15),
        ("E", 18),
    ];
    const BINARY_SUFFIXES: [(&str, u32); 7] = [
        ("", 0),
        ("Ki", 1),
        ("Mi", 2),
        ("Gi", 3),
        ("Ti", 4),
        ("Pi", 5),
        ("Ei", 6),
    ];
    /// Digits kept from the written number; more would overflow the arithmetic.
    const MAX_DIGITS: usize = 30;

    /// Parses `[+-]digits[.digits][suffix]`. Precision finer than nano is rounded up to
    /// nano, as Kubernetes does.
    pub(crate) fn parse(s: &str) -> Option<Parsed> {
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return None;
        }
        let fraction = fraction.trim_end_matches('0');
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DIGITS {
            return None;
        }
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let mut exp = -(fraction.len() as i32);
        let format = match parse_suffix(suffix)? {
            Suffix::Decimal(e) => {
                exp += e;
                Format::DecimalSi
            }
            Suffix::Exponent(e) => {
                exp = exp.checked_add(e)?;
                Format::DecimalExponent
            }
            Suffix::Binary(power) => {
                mantissa = mantissa.checked_mul(1i128.checked_shl(10 * power)?)?;
                Format::BinarySi
            }
        };
        if negative {
            mantissa = -mantissa;
        }
        let parsed = Parsed {
            mantissa,
            exp,
            format,
        };
        Some(if exp < -9 {
            parsed.round_up_to(-9)
        } else {
            parsed
        })
    }

    enum Suffix {
        Decimal(i32),
        Binary(u32),
        Exponent(i32),
    }

    fn parse_suffix(suffix: &str) -> Option<Suffix> {
        if let Some((_, e)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
            return Some(Suffix::Decimal(*e));
        }
        if let Some((_, p)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
            return Some(Suffix::Binary(*p));
        }
        let exponent = suffix.strip_prefix(['e', 'E'])?;
        let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 4 {
            return None;
        }
        Some(Suffix::Exponent(exponent.parse().ok()?))
    }

    fn pow10(n: u32) -> Option<i128> {
        10i128.checked_pow(n)
    }

    impl Parsed {
        pub(crate) fn is_positive(&self) -> bool {
            self.mantissa > 0
        }

        pub(crate) fn is_negative(&self) -> bool {
            self.mantissa < 0
        }

        /// Both values scaled to the smaller exponent, if that fits.
        fn aligned(&self, other: &Parsed) -> Option<(i128, i128, i32)> {
            let exp = self.exp.min(other.exp);
            let a = self.mantissa.checked_mul(pow10((self.exp - exp) as u32)?)?;
            let b = other
                .mantissa
                .checked_mul(pow10((other.exp - exp) as u32)?)?;
            Some((a, b, exp))
        }

        /// Compares the values (not the spelling).
        pub(crate) fn cmp_value(&self, other: &Parsed) -> Ordering {
            match self.aligned(other) {
                Some((a, b, _)) => a.cmp(&b),
                None => self.approx().total_cmp(&other.approx()),
            }
        }

        fn approx(&self) -> f64 {
            self.mantissa as f64 * 10f64.powi(self.exp)
        }

        pub(crate) fn checked_add(&self, other: &Parsed) -> Option<Parsed> {
            let (a, b, exp) = self.aligned(other)?;
            Some(Parsed {
                mantissa: a.checked_add(b)?,
                exp,
                format: self.format,
            })
        }

        /// Whether the value is a whole number.
        pub(crate) fn is_integer(&self) -> bool {
            self.exp >= 0 || pow10((-self.exp) as u32).is_some_and(|d| self.mantissa % d == 0)
        }

        /// Rounds away from zero to a multiple of `10^exp` (Kubernetes' `RoundUp`).
        fn round_up_to(&self, exp: i32) -> Parsed {
            if self.exp >= exp {
                return *self;
            }
            let Some(divisor) = pow10((exp - self.exp) as u32) else {
                let unit = self.mantissa.signum();
                return Parsed {
                    mantissa: unit,
                    exp,
                    format: self.format,
                };
            };
            let mut mantissa = self.mantissa / divisor;
            if self.mantissa % divisor != 0 {
                mantissa += self.mantissa.signum();
            }
            Parsed {
                mantissa,
                exp,
                format: self.format,
            }
        }

        pub(crate) fn round_up_to_milli(&self) -> Parsed {
            self.round_up_to(-3)
        }

        /// The value as a whole number, if it is one and fits.
        fn integer_value(&self) -> Option<i128> {
            if self.exp >= 0 {
                self.mantissa.checked_mul(pow10(self.exp as u32)?)
            } else {
                self.is_integer()
                    .then(|| pow10((-self.exp) as u32).map(|d| self.mantissa / d))?
            }
        }

        /// Kubernetes' canonical spelling (what `Quantity.String()` prints).
        pub(crate) fn canonical(&self) -> String {
            if self.format == Format::BinarySi
                && let Some(v) = self.integer_value().filter(|v| v.abs() >= 1024)
            {
                return binary_canonical(v);
            }
            self.decimal_canonical()
        }

        fn decimal_canonical(&self) -> String {
            let (mut m, mut e) = (self.mantissa, self.exp);
            if m != 0 {
                while m % 10 == 0 {
                    m /= 10;
                    e += 1;
                }
            }
            let scale = match e.rem_euclid(3) {
                1 => 10,
                2 => 100,
                _ => 1,
            };
            if let Some(scaled) = m.checked_mul(scale) {
                m = scaled;
                e -= e.rem_euclid(3);
            }
            let suffix = match self.format {
                Format::DecimalExponent if e == 0 => String::new(),
                Format::DecimalExponent => format!("e{e}"),
                _ => match DECIMAL_SUFFIXES.iter().find(|(_, x)| *x == e) {
                    Some((s, _)) => s.to_string(),
                    None => format!("e{e}"),
                },
            };
            format!("{m}{suffix}")
        }
    }

    fn binary_canonical(mut v: i128) -> String {
        let mut power = 0;
        while v % 1024 == 0 && power < 6 {
            v /= 1024;
            power += 1;
        }
        format!("{v}{}", BINARY_SUFFIXES[power].0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerPort, HostPathVolumeSource, ServicePort, ServiceSpec,
    };
    use serde_json::json;

    fn canonical(s: &str) -> String {
        qty::parse(s)
            .map(|q| q.round_up_to_milli().canonical())
            .unwrap_or_else(|| format!("<{s}>"))
    }

    #[test]
    fn quantities_canonicalise_like_kubernetes() {
        let cases = [
            ("100m", "100m"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("2000", "2k"),
            ("2", "2"),
            ("12345", "12345"),
            ("1500m", "1500m"),
            ("1000m", "1"),
            ("0.0001", "1m"),
            ("100.5555m", "101m"),
            ("200Mi", "200Mi"),
            ("2048Mi", "2Gi"),
            ("1.5Ki", "1536"),
            ("0.5Gi", "512Mi"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("10k", "10k"),
            ("1M", "1M"),
            ("0", "0"),
            ("-1", "-1"),
            ("+5", "5"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "1Xi", "m", "1e", "--1", "1 Gi"] {
            assert!(qty::parse(bad).is_none(), "{bad:?} should not parse");
        }
    }

    proptest::proptest! {
        /// Canonicalising is idempotent and keeps milli-exact values unchanged.
        #[test]
        fn canonical_form_is_stable(
            whole in 0u64..1_000_000,
            fraction in proptest::option::of(0u32..10_000),
            suffix in proptest::sample::select(vec!["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "e-2", "n", "u"]),
            negative in proptest::bool::ANY,
        ) {
            let sign = if negative { "-" } else { "" };
            let text = match fraction {
                Some(f) => format!("{sign}{whole}.{f}{suffix}"),
                None => format!("{sign}{whole}{suffix}"),
            };
            let parsed = qty::parse(&text).expect("generated quantities parse");
            let once = parsed.round_up_to_milli().canonical();
            let reparsed = qty::parse(&once).expect("canonical form parses");
            proptest::prop_assert_eq!(reparsed.round_up_to_milli().canonical(), once.clone());
            let rounded = parsed.round_up_to_milli();
            proptest::prop_assert!(reparsed.cmp_value(&rounded).is_eq(), "{} -> {}", text, once);
            if rounded.cmp_value(&parsed).is_eq() {
                proptest::prop_assert!(reparsed.cmp_value(&parsed).is_eq());
            }
        }
    }

    #[test]
    fn quantities_compare_and_add_by_value() {
        let p = |s: &str| qty::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert!(p("0.1").cmp_value(&p("100m")).is_eq());
        assert!(p("1Gi").cmp_value(&p("1G")).is_gt());
        assert!(p("200m").cmp_value(&p("1")).is_lt());
        let sum = p("100m").checked_add(&p("0.9")).map(|q| q.canonical());
        assert_eq!(sum.as_deref(), Some("1"));
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        let cases = [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.25", false),
            ("fluent/fluentd:v1.14.2", false),
            ("quay.io/fluentd_elasticsearch/fluentd:v2.5.2", false),
            ("localhost:5000/foo", true),
            ("localhost:5000/foo:v1", false),
            (
                "prom/node-exporter@sha256:ffc3e0adf58771cb2097aa0b074a6fe68b4925ba75c2e1c41f41ae656eebee11",
                false,
            ),
            (
                "img:latest@sha256:ffc3e0adf58771cb2097aa0b074a6fe68b4925ba75c2e1c41f41ae656eebee11",
                true,
            ),
            ("Nginx", false),
            ("", false),
            ("nginx:", false),
        ];
        for (image, latest) in cases {
            assert_eq!(image_means_latest(image), latest, "{image:?}");
        }
    }

    fn minimal_ds() -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "fluentd"},
            "spec": {
                "selector": {"matchLabels": {"app": "fluentd"}},
                "template": {
                    "metadata": {"labels": {"app": "fluentd"}},
                    "spec": {"containers": [{"name": "fluentd", "image": "fluentd:v1"}]}
                }
            }
        }))
        .unwrap_or_default()
    }

    /// The readback of a minimal manifest in daemonset-semantics.md §2.3.
    #[test]
    fn daemonset_defaults_match_the_reference_readback() {
        let mut ds = minimal_ds();
        default_daemonset(&mut ds);
        let got = serde_json::to_value(&ds.spec).unwrap_or_default();
        let want = json!({
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "fluentd"}},
            "template": {
                "metadata": {"labels": {"app": "fluentd"}},
                "spec": {
                    "containers": [{
                        "image": "fluentd:v1",
                        "imagePullPolicy": "IfNotPresent",
                        "name": "fluentd",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            },
            "updateStrategy": {
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                "type": "RollingUpdate"
            }
        });
        assert_eq!(got, want);
    }

    #[test]
    fn on_delete_strategy_gets_no_rolling_update() {
        let mut ds = minimal_ds();
        if let Some(spec) = ds.spec.as_mut() {
            spec.update_strategy = Some(DaemonSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            });
        }
        default_daemonset(&mut ds);
        let strategy = ds.spec.and_then(|s| s.update_strategy).unwrap_or_default();
        assert_eq!(strategy.type_.as_deref(), Some("OnDelete"));
        assert!(strategy.rolling_update.is_none());
    }

    #[test]
    fn partial_rolling_update_is_completed() {
        let mut ds = minimal_ds();
        if let Some(spec) = ds.spec.as_mut() {
            spec.update_strategy = Some(DaemonSetUpdateStrategy {
                type_: None,
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_surge: Some(IntOrString::String("25%".into())),
                    max_unavailable: None,
                }),
            });
        }
        default_daemonset(&mut ds);
        let rolling = ds
            .spec
            .and_then(|s| s.update_strategy)
            .and_then(|u| u.rolling_update)
            .unwrap_or_default();
        assert_eq!(rolling.max_surge, Some(IntOrString::String("25%".into())));
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(1)));
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap_or_default()
    }

    #[test]
    fn pod_only_defaults() {
        let mut p = pod(json!({
            "hostNetwork": true,
            "containers": [{
                "name": "c", "image": "nginx",
                "ports": [{"containerPort": 9100}],
                "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}, "requests": {"memory": "64Mi"}}
            }]
        }));
        default_pod(&mut p);
        let spec = p.spec.unwrap_or_default();
        assert_eq!(spec.enable_service_links, Some(true));
        let c = &spec.containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        let port = c.ports.as_ref().map(|p| p[0].clone()).unwrap_or_default();
        assert_eq!(
            (port.host_port, port.protocol.as_deref()),
            (Some(9100), Some("TCP"))
        );
        let res = serde_json::to_value(&c.resources).unwrap_or_default();
        assert_eq!(
            res,
            json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "64Mi"}})
        );
    }

    #[test]
    fn templates_keep_host_port_unset() {
        let mut ds = minimal_ds();
        if let Some(spec) = ds.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
            spec.host_network = Some(true);
            spec.containers[0].ports = Some(vec![ContainerPort {
                container_port: 80,
                ..Default::default()
            }]);
        }
        default_daemonset(&mut ds);
        let spec = ds.spec.and_then(|s| s.template.spec).unwrap_or_default();
        let port = spec.containers[0]
            .ports
            .as_ref()
            .map(|p| p[0].clone())
            .unwrap_or_default();
        assert_eq!(port.host_port, None);
        assert_eq!(spec.enable_service_links, None);
    }

    #[test]
    fn nested_structures_are_defaulted() {
        let mut p = pod(json!({
            "containers": [{
                "name": "c", "image": "nginx:1",
                "livenessProbe": {"httpGet": {"port": 80}},
                "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
                "lifecycle": {"preStop": {"httpGet": {"port": "http"}}},
                "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
            }],
            "volumes": [
                {"name": "a"},
                {"name": "b", "hostPath": {"path": "/var/log"}},
                {"name": "c", "configMap": {"name": "cm"}},
                {"name": "d", "secret": {"secretName": "s"}},
                {"name": "e", "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "f", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
            ]
        }));
        default_pod(&mut p);
        let got = serde_json::to_value(&p.spec).unwrap_or_default();
        let c = &got["containers"][0];
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1,
                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["readinessProbe"]["periodSeconds"], json!(5));
        assert_eq!(
            c["lifecycle"]["preStop"]["httpGet"]["scheme"],
            json!("HTTP")
        );
        assert_eq!(
            c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
            json!("v1")
        );
        let v = &got["volumes"];
        assert_eq!(v[0], json!({"name": "a", "emptyDir": {}}));
        assert_eq!(v[1]["hostPath"], json!({"path": "/var/log", "type": ""}));
        assert_eq!(v[2]["configMap"]["defaultMode"], json!(420));
        assert_eq!(v[3]["secret"]["defaultMode"], json!(420));
        assert_eq!(v[4]["downwardAPI"]["defaultMode"], json!(420));
        assert_eq!(
            v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            json!("v1")
        );
        assert_eq!(v[5]["projected"]["defaultMode"], json!(420));
        assert_eq!(
            v[5]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            json!(3600)
        );
    }

    #[test]
    fn host_path_type_is_kept_when_given() {
        let mut v = Volume {
            name: "v".into(),
            host_path: Some(HostPathVolumeSource {
                path: "/x".into(),
                type_: Some("Directory".into()),
            }),
            ..Default::default()
        };
        default_volume(&mut v);
        assert_eq!(
            v.host_path.and_then(|h| h.type_).as_deref(),
            Some("Directory")
        );
    }

    #[test]
    fn node_allocatable_defaults_to_capacity() {
        let mut n: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "status": {"capacity": {"cpu": "2", "memory": "4096Mi", "pods": "110"}}
        }))
        .unwrap_or_default();
        default_node(&mut n);
        let status = serde_json::to_value(&n.status).unwrap_or_default();
        assert_eq!(
            status["allocatable"],
            json!({"cpu": "2", "memory": "4Gi", "pods": "110"})
        );
        assert_eq!(status["capacity"], status["allocatable"]);
    }

    #[test]
    fn namespace_gets_label_and_finalizer_on_create_only() {
        let mut n: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap_or_default();
        default_namespace(&mut n);
        let got = serde_json::to_value(&n).unwrap_or_default();
        assert_eq!(
            got["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "team-a"})
        );
        assert_eq!(got["spec"]["finalizers"], json!(["kubernetes"]));

        // Once created, a finalizer the controller removed stays removed.
        let mut stored: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "team-a", "creationTimestamp": "2024-01-01T00:00:00Z",
                         "labels": {"kubernetes.io/metadata.name": "wrong"}},
            "spec": {"finalizers": []}
        }))
        .unwrap_or_default();
        default_namespace(&mut stored);
        let got = serde_json::to_value(&stored).unwrap_or_default();
        assert_eq!(got["spec"]["finalizers"], json!([]));
        assert_eq!(
            got["metadata"]["labels"]["kubernetes.io/metadata.name"],
            json!("team-a")
        );
    }

    #[test]
    fn service_defaults() {
        let mut s = Service {
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "x".to_string())].into()),
                ports: Some(vec![
                    ServicePort {
                        port: 80,
                        ..Default::default()
                    },
                    ServicePort {
                        port: 443,
                        target_port: Some(IntOrString::String("https".into())),
                        protocol: Some("UDP".into()),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        default_service(&mut s);
        let got = serde_json::to_value(&s.spec).unwrap_or_default();
        assert_eq!(got["type"], json!("ClusterIP"));
        assert_eq!(got["sessionAffinity"], json!("None"));
        assert_eq!(got["internalTrafficPolicy"], json!("Cluster"));
        assert_eq!(got["ipFamilyPolicy"], json!("SingleStack"));
        assert_eq!(got["ipFamilies"], json!(["IPv4"]));
        assert_eq!(
            got["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(
            got["ports"][1],
            json!({"port": 443, "protocol": "UDP", "targetPort": "https"})
        );
        assert!(got.get("externalTrafficPolicy").is_none());

        let mut lb = Service {
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                cluster_ip: Some("10.0.0.10".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        default_service(&mut lb);
        let got = serde_json::to_value(&lb.spec).unwrap_or_default();
        assert_eq!(got["externalTrafficPolicy"], json!("Cluster"));
        assert_eq!(got["allocateLoadBalancerNodePorts"], json!(true));
        assert_eq!(got["clusterIPs"], json!(["10.0.0.10"]));
    }

    #[test]
    fn qos_classes() {
        let spec = |containers: serde_json::Value| -> PodSpec {
            serde_json::from_value(json!({"containers": containers})).unwrap_or_default()
        };
        let c = |res: serde_json::Value| json!({"name": "c", "image": "i", "resources": res});
        let cases = [
            (json!([c(json!({}))]), "BestEffort"),
            (json!([c(json!({"requests": {"cpu": "0"}}))]), "BestEffort"),
            (
                json!([c(
                    json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}})
                )]),
                "Guaranteed",
            ),
            (
                json!([c(
                    json!({"limits": {"cpu": "1000m", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1024Mi"}})
                )]),
                "Guaranteed",
            ),
            (
                json!([c(
                    json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}})
                )]),
                "Burstable",
            ),
            (
                json!([c(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}))]),
                "Burstable",
            ),
            (
                json!([c(json!({"requests": {"memory": "1Gi"}}))]),
                "Burstable",
            ),
            (
                json!([
                    c(
                        json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}})
                    ),
                    c(json!({}))
                ]),
                "Burstable",
            ),
        ];
        for (containers, want) in cases {
            let mut p = Pod {
                spec: Some(spec(containers.clone())),
                ..Default::default()
            };
            default_pod(&mut p);
            let s = p.spec.unwrap_or_default();
            assert_eq!(pod_qos_class(&s), want, "{containers}");
        }
    }

    #[test]
    fn defaulting_is_idempotent() {
        let mut ds = minimal_ds();
        default_daemonset(&mut ds);
        let once = ds.clone();
        default_daemonset(&mut ds);
        assert_eq!(ds, once);

        let mut p = pod(
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "x",
            "ports": [{"containerPort": 1}], "resources": {"limits": {"cpu": "0.25"}}}]}),
        );
        default_pod(&mut p);
        let once = p.clone();
        default_pod(&mut p);
        assert_eq!(p, once);
    }
}
