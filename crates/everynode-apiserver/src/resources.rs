//! The registry table: every resource the server hosts is one [`ResourceInfo`] row.
//! Routing, discovery, OpenAPI, storage keys, Tables and admission all read this table;
//! adding a resource is adding a row (plus, if it needs one, a strategy in `strategy.rs`).

/// Per-kind behaviour hooks (defaulting, validation, status/spec reset) live in
/// `strategy.rs`, selected by this tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    DaemonSet,
    ControllerRevision,
    Pod,
    Node,
    Namespace,
    Event,
    EventV1,
    Lease,
    Service,
    /// certificates.k8s.io CertificateSigningRequest: requestor set by the server,
    /// spec immutable, `/approval` for conditions, `/status` for the certificate.
    CertificateSigningRequest,
    /// rbac.authorization.k8s.io Role, ClusterRole, RoleBinding, ClusterRoleBinding
    /// (path-segment names, rules, immutable roleRef).
    Rbac,
    /// scheduling.k8s.io PriorityClass: value immutable, `system-` names reserved, one
    /// global default, the system classes not deletable.
    PriorityClass,
    /// Objects validated only by their metadata (ConfigMap, Secret, EndpointSlice, ...).
    Generic,
}

#[derive(Debug)]
pub struct ResourceInfo {
    /// API group; "" is the core (legacy) group served under `/api`.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources beyond the object itself: "status", "binding", "eviction", "log",
    /// "finalize", "approval".
    pub subresources: &'static [&'static str],
    /// Whether the kind tracks `metadata.generation` (bumped on spec changes).
    pub has_generation: bool,
    /// Whether `deletecollection` is offered (namespaces do not offer it).
    pub deletecollection: bool,
    pub strategy: Strategy,
    /// Storage prefix segment: several API views may share one (`events`).
    pub storage: &'static str,
    /// OpenAPI definition name of the kind (k8s-openapi's schemars name).
    pub schema: &'static str,
}

impl ResourceInfo {
    /// `pods`, `daemonsets.apps`: how Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn group_version(&self) -> (&'static str, &'static str) {
        (self.group, self.version)
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        let mut v = vec!["create", "delete"];
        if self.deletecollection {
            v.push("deletecollection");
        }
        v.extend(["get", "list", "patch", "update", "watch"]);
        v
    }

    /// Storage key prefix of this resource in one namespace (or all, with `None`).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("/registry/{}/{}/", self.storage, ns),
            _ => format!("/registry/{}/", self.storage),
        }
    }

    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("/registry/{}/{}/{}", self.storage, ns, name),
            _ => format!("/registry/{}/{}", self.storage, name),
        }
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, namespaced: $ns:expr,
     short: [$($short:expr),*], categories: [$($cat:expr),*], sub: [$($sub:expr),*],
     generation: $gen:expr, strategy: $strategy:expr, storage: $storage:expr, schema: $schema:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            list_kind: concat!($kind, "List"),
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$($sub),*],
            has_generation: $gen,
            deletecollection: true,
            strategy: $strategy,
            storage: $storage,
            schema: $schema,
        }
    };
}

/// Every resource served, in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        deletecollection: false,
        ..res!("", "v1", "Namespace", "namespaces", "namespace", namespaced: false, short: ["ns"], categories: [],
               sub: ["status", "finalize"], generation: false, strategy: Strategy::Namespace, storage: "namespaces",
               schema: "io.k8s.api.core.v1.Namespace")
    },
    res!("", "v1", "Node", "nodes", "node", namespaced: false, short: ["no"], categories: [], sub: ["status"],
         generation: false, strategy: Strategy::Node, storage: "minions", schema: "io.k8s.api.core.v1.Node"),
    res!("", "v1", "Pod", "pods", "pod", namespaced: true, short: ["po"], categories: ["all"],
         sub: ["status", "binding", "eviction", "log", "exec", "attach", "portforward"], generation: false, strategy: Strategy::Pod, storage: "pods",
         schema: "io.k8s.api.core.v1.Pod"),
    res!("", "v1", "Event", "events", "event", namespaced: true, short: ["ev"], categories: [], sub: [],
         generation: false, strategy: Strategy::Event, storage: "events", schema: "io.k8s.api.core.v1.Event"),
    res!("", "v1", "Service", "services", "service", namespaced: true, short: ["svc"], categories: ["all"],
         sub: ["status"], generation: false, strategy: Strategy::Service, storage: "services/specs",
         schema: "io.k8s.api.core.v1.Service"),
    res!("", "v1", "Endpoints", "endpoints", "endpoints", namespaced: true, short: ["ep"], categories: [], sub: [],
         generation: false, strategy: Strategy::Generic, storage: "services/endpoints",
         schema: "io.k8s.api.core.v1.Endpoints"),
    res!("", "v1", "ConfigMap", "configmaps", "configmap", namespaced: true, short: ["cm"], categories: [], sub: [],
         generation: false, strategy: Strategy::Generic, storage: "configmaps", schema: "io.k8s.api.core.v1.ConfigMap"),
    res!("", "v1", "Secret", "secrets", "secret", namespaced: true, short: [], categories: [], sub: [],
         generation: false, strategy: Strategy::Generic, storage: "secrets", schema: "io.k8s.api.core.v1.Secret"),
    res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", namespaced: true, short: ["sa"],
         categories: [], sub: ["token"], generation: false, strategy: Strategy::Generic, storage: "serviceaccounts",
         schema: "io.k8s.api.core.v1.ServiceAccount"),
    res!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", namespaced: true, short: ["ds"], categories: ["all"],
         sub: ["status"], generation: true, strategy: Strategy::DaemonSet, storage: "daemonsets",
         schema: "io.k8s.api.apps.v1.DaemonSet"),
    res!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", namespaced: true,
         short: [], categories: [], sub: [], generation: false, strategy: Strategy::ControllerRevision,
         storage: "controllerrevisions", schema: "io.k8s.api.apps.v1.ControllerRevision"),
    res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", namespaced: true, short: [], categories: [], sub: [],
         generation: false, strategy: Strategy::Lease, storage: "leases", schema: "io.k8s.api.coordination.v1.Lease"),
    res!("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
         "certificatesigningrequest", namespaced: false, short: ["csr"], categories: [], sub: ["status", "approval"],
         generation: false, strategy: Strategy::CertificateSigningRequest, storage: "certificatesigningrequests",
         schema: "io.k8s.api.certificates.v1.CertificateSigningRequest"),
    res!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", namespaced: true, short: [],
         categories: [], sub: [], generation: true, strategy: Strategy::Generic, storage: "endpointslices",
         schema: "io.k8s.api.discovery.v1.EndpointSlice"),
    res!("events.k8s.io", "v1", "Event", "events", "event", namespaced: true, short: ["ev"], categories: [], sub: [],
         generation: false, strategy: Strategy::EventV1, storage: "events", schema: "io.k8s.api.events.v1.Event"),
    res!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding",
         namespaced: false, short: [], categories: [], sub: [], generation: false, strategy: Strategy::Rbac,
         storage: "clusterrolebindings", schema: "io.k8s.api.rbac.v1.ClusterRoleBinding"),
    res!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", namespaced: false,
         short: [], categories: [], sub: [], generation: false, strategy: Strategy::Rbac, storage: "clusterroles",
         schema: "io.k8s.api.rbac.v1.ClusterRole"),
    res!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", namespaced: true,
         short: [], categories: [], sub: [], generation: false, strategy: Strategy::Rbac, storage: "rolebindings",
         schema: "io.k8s.api.rbac.v1.RoleBinding"),
    res!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", namespaced: true, short: [], categories: [],
         sub: [], generation: false, strategy: Strategy::Rbac, storage: "roles", schema: "io.k8s.api.rbac.v1.Role"),
    res!("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", namespaced: false,
         short: ["pc"], categories: [], sub: [], generation: false, strategy: Strategy::PriorityClass,
         storage: "priorityclasses", schema: "io.k8s.api.scheduling.v1.PriorityClass"),
];

/// The API groups in discovery order (core first), each with its one version.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

pub fn namespaces() -> &'static ResourceInfo {
    &RESOURCES[0]
}
