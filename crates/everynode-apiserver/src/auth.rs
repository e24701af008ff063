//! Authentication and authorization.
//!
//! Who a request is (in the order tried):
//! - a TLS client certificate signed by the cluster CA (set by [`crate::serve`] as a
//!   [`PeerIdentity`] extension): CN is the user, each O a group, as in Kubernetes;
//! - a static bearer token (the admin's), compared in constant time;
//! - a bootstrap token `<id>.<secret>` backed by the Secret `kube-system/bootstrap-token-<id>`
//!   of type `bootstrap.kubernetes.io/token` ([`bootstrap_user`]): user
//!   `system:bootstrap:<id>`, group `system:bootstrappers` plus the Secret's
//!   `auth-extra-groups`; expired, malformed or unknown tokens are refused (401);
//! - nobody (`system:anonymous`), which may only read `kube-public/cluster-info`.
//!
//! What they may do ([`authorize`], a pure function): the admin (`system:masters`)
//! anything; node identities (`system:node:<name>` in `system:nodes`) what a kubelet
//! needs, with NodeRestriction's limits on writes ([`admit_node_create`],
//! [`admit_node_update`]); bootstrap identities only certificate signing requests.

use std::collections::BTreeMap;
use std::sync::RwLock;

use base64::Engine;
use http::HeaderMap;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

pub const GROUP_MASTERS: &str = "system:masters";
pub const GROUP_NODES: &str = "system:nodes";
pub const GROUP_BOOTSTRAPPERS: &str = "system:bootstrappers";
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
pub const BOOTSTRAP_SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const BOOTSTRAP_SECRET_PREFIX: &str = "bootstrap-token-";
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    /// Set for ServiceAccounts (the ServiceAccount's uid).
    pub uid: Option<String>,
    /// What else the authenticator knows (a token's pod, node and credential id).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The identity a verified TLS client certificate carries; the TLS layer puts it in the
/// request's extensions.
#[derive(Clone, Debug)]
pub struct PeerIdentity(pub User);

impl User {
    pub fn admin() -> Self {
        User {
            name: "admin".into(),
            groups: vec![GROUP_MASTERS.into(), GROUP_AUTHENTICATED.into()],
            ..User::default()
        }
    }

    pub fn node(name: &str) -> Self {
        User {
            name: format!("system:node:{name}"),
            groups: vec![GROUP_NODES.into(), GROUP_AUTHENTICATED.into()],
            ..User::default()
        }
    }

    /// The user of bootstrap token `id`.
    pub fn bootstrap(id: &str, extra_groups: &[String]) -> Self {
        let mut groups = vec![GROUP_BOOTSTRAPPERS.to_string()];
        for g in extra_groups {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        groups.push(GROUP_AUTHENTICATED.into());
        User {
            name: format!("system:bootstrap:{id}"),
            groups,
            ..User::default()
        }
    }

    pub fn anonymous() -> Self {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..User::default()
        }
    }

    /// A client certificate's subject: CN is the user name, each O a group.
    pub fn from_certificate(common_name: &str, organizations: &[String]) -> Self {
        let mut groups: Vec<String> = organizations.to_vec();
        groups.push(GROUP_AUTHENTICATED.into());
        User {
            name: common_name.to_string(),
            groups,
            ..User::default()
        }
    }

    fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }

    pub fn is_admin(&self) -> bool {
        self.in_group(GROUP_MASTERS)
    }

    pub fn is_bootstrap(&self) -> bool {
        self.in_group(GROUP_BOOTSTRAPPERS)
    }

    /// The node name of a node identity.
    pub fn node_name(&self) -> Option<&str> {
        if self.in_group(GROUP_NODES) {
            self.name.strip_prefix("system:node:")
        } else {
            None
        }
    }
}

/// A bootstrap token, `<id>.<secret>`: 6 and 16 characters of `[a-z0-9]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

fn token_chars(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl BootstrapToken {
    pub fn parse(s: &str) -> Option<BootstrapToken> {
        let (id, secret) = s.trim().split_once('.')?;
        (token_chars(id, 6) && token_chars(secret, 16)).then(|| BootstrapToken {
            id: id.into(),
            secret: secret.into(),
        })
    }

    /// A fresh random token.
    pub fn generate() -> BootstrapToken {
        use rand::Rng;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        };
        BootstrapToken {
            id: pick(6),
            secret: pick(16),
        }
    }

    /// The name of the Secret that backs this token (in `kube-system`).
    pub fn secret_name(&self) -> String {
        format!("{BOOTSTRAP_SECRET_PREFIX}{}", self.id)
    }

    pub fn to_token_string(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

/// A Secret's `data` (base64) and `stringData` (plain), as strings.
fn secret_strings(secret: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(d) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in d {
            if let Some(s) = v.as_str()
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s)
                && let Ok(text) = String::from_utf8(bytes)
            {
                out.insert(k.clone(), text);
            }
        }
    }
    if let Some(d) = secret.get("stringData").and_then(Value::as_object) {
        for (k, v) in d {
            if let Some(s) = v.as_str() {
                out.insert(k.clone(), s.to_string());
            }
        }
    }
    out
}

/// Why a bootstrap token was refused (logged, never sent: the client sees 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    WrongType,
    NotForAuthentication,
    WrongSecret,
    Expired,
    BadExpiration,
    BeingDeleted,
}

/// Checks a presented bootstrap token against its Secret at time `now`, the way
/// kube-apiserver's bootstrap token authenticator does.
pub fn bootstrap_user(
    secret: &Value,
    token: &BootstrapToken,
    now: jiff::Timestamp,
) -> Result<User, TokenRefusal> {
    if secret.get("type").and_then(Value::as_str) != Some(BOOTSTRAP_SECRET_TYPE) {
        return Err(TokenRefusal::WrongType);
    }
    if secret
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return Err(TokenRefusal::BeingDeleted);
    }
    let data = secret_strings(secret);
    let stored_secret = data.get("token-secret").map(String::as_str).unwrap_or("");
    let id_matches = data.get("token-id").map(String::as_str) == Some(token.id.as_str());
    let secret_matches = stored_secret.len() == token.secret.len()
        && bool::from(stored_secret.as_bytes().ct_eq(token.secret.as_bytes()));
    if !(id_matches && secret_matches) {
        return Err(TokenRefusal::WrongSecret);
    }
    if data
        .get("usage-bootstrap-authentication")
        .map(String::as_str)
        != Some("true")
    {
        return Err(TokenRefusal::NotForAuthentication);
    }
    if let Some(exp) = data.get("expiration") {
        let t: jiff::Timestamp = exp.parse().map_err(|_| TokenRefusal::BadExpiration)?;
        if t <= now {
            return Err(TokenRefusal::Expired);
        }
    }
    let extra: Vec<String> = data
        .get("auth-extra-groups")
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| g.starts_with("system:bootstrappers:"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(User::bootstrap(&token.id, &extra))
}

/// The token table. Tokens can be added while the server runs.
#[derive(Default)]
pub struct Authenticator {
    tokens: RwLock<Vec<(Vec<u8>, User)>>,
}

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_token(&self, token: &str, user: User) {
        if let Ok(mut t) = self.tokens.write() {
            t.push((token.as_bytes().to_vec(), user));
        }
    }

    /// Checks every known token (no early exit on a match position), so response time
    /// does not reveal which token prefix was right.
    pub fn authenticate_token(&self, presented: &[u8]) -> Option<User> {
        let tokens = self.tokens.read().ok()?;
        let mut found = None;
        for (t, u) in tokens.iter() {
            let eq: bool = t.len() == presented.len() && bool::from(t.as_slice().ct_eq(presented));
            if eq && found.is_none() {
                found = Some(u.clone());
            }
        }
        found
    }

    /// The bearer token of a request, if it sends one.
    pub fn bearer(headers: &HeaderMap) -> Option<&str> {
        // As kube-apiserver reads it: the header trimmed, split at single spaces, the
        // word after `Bearer` (anything after that is ignored; two spaces leave none).
        let h = headers
            .get(http::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .trim();
        let mut words = h.splitn(3, ' ');
        let (scheme, token) = (words.next()?, words.next()?);
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// Static tokens only.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<User> {
        self.authenticate_token(Self::bearer(headers)?.as_bytes())
    }

    /// Static tokens, then bootstrap tokens, whose Secret `secret_of(name)` reads from
    /// `kube-system`. (The store keeps its current state in memory, so the lookup is a
    /// map read: there is nothing to cache, and a deleted Secret stops working at once.)
    pub fn authenticate_with(
        &self,
        headers: &HeaderMap,
        secret_of: impl FnOnce(&str) -> Option<Value>,
    ) -> Option<User> {
        let token = Self::bearer(headers)?;
        if let Some(u) = self.authenticate_token(token.as_bytes()) {
            return Some(u);
        }
        let bt = BootstrapToken::parse(token)?;
        let secret = secret_of(&bt.secret_name())?;
        match bootstrap_user(&secret, &bt, jiff::Timestamp::now()) {
            Ok(u) => Some(u),
            Err(why) => {
                tracing::info!(token_id = %bt.id, reason = ?why, "bootstrap token refused");
                None
            }
        }
    }
}

/// A request, as authorization sees it.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'a str,
    pub group: &'a str,
    /// The resource's plural name.
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl Attributes<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `pods "x"` or `daemonsets.apps`: the object a Forbidden message names.
    fn what(&self) -> String {
        match self.name {
            Some(n) => format!("{} \"{n}\"", self.qualified()),
            None => self.qualified(),
        }
    }

    /// RBAC's denial: `... is forbidden: User "u" cannot VERB resource "R" in API group
    /// "G" at the cluster scope` (or `in the namespace "ns"`).
    pub fn rbac_denial(&self, user: &User) -> String {
        let res = match self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.to_string(),
        };
        let scope = match self.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        format!(
            "{} is forbidden: User \"{}\" cannot {} resource \"{res}\" in API group \"{}\" {scope}",
            self.what(),
            user.name,
            self.verb,
            self.group
        )
    }

    /// NodeRestriction's denial: `... is forbidden: REASON`.
    fn restriction(&self, reason: &str) -> String {
        format!("{} is forbidden: {reason}", self.what())
    }

    fn reads(&self) -> bool {
        matches!(self.verb, "get" | "list" | "watch")
    }
}

/// The verb of a request: the method, whether it names an object, and `?watch`.
pub fn verb(method: &http::Method, named: bool, watch: bool) -> &'static str {
    match (method.as_str(), named) {
        ("GET" | "HEAD", _) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "access",
    }
}

/// Where the pod a request names is bound, as NodeRestriction sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodBinding {
    /// No such pod: the request goes on and gets its 404.
    Missing,
    /// `spec.nodeName` (empty when unscheduled).
    Node(String),
}

/// What some node rules need to know from the store, asked only when they matter.
pub trait Facts {
    /// Where the pod the request names is bound.
    fn pod_binding(&self) -> PodBinding;
    /// Whether a pod bound to `node` uses the Secret the request names (same namespace).
    fn secret_used_by(&self, node: &str) -> bool;
    /// The RBAC rules granted to `user`: those of the ClusterRoles its
    /// ClusterRoleBindings name, and, in `namespace`, of the roles its RoleBindings there
    /// name.
    fn rbac_rules(&self, _user: &User, _namespace: Option<&str>) -> Vec<PolicyRule> {
        Vec::new()
    }
}

/// The user a request acts as: `user`, or whom it impersonates (`Impersonate-User`,
/// `Impersonate-Group`, as `kubectl --as/--as-group` send them). Impersonating needs the
/// `impersonate` verb on `users` (a ServiceAccount's name: on that `serviceaccounts`
/// object in its namespace) and on each of `groups`, which the administrator has and RBAC
/// may grant; the impersonated user is signed in (`system:authenticated`) unless it is
/// `system:anonymous`.
pub fn impersonated(
    user: User,
    headers: &http::HeaderMap,
    facts: &dyn Facts,
) -> Result<User, ApiError> {
    let name = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let Some(name) = name else {
        if groups.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::bad_request(format!(
            "requested {groups:?} without impersonating a user"
        )));
    };
    let service_account = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    let (resource, namespace, object) = match service_account {
        Some((ns, sa)) => ("serviceaccounts", Some(ns), sa),
        None => ("users", None, name.as_str()),
    };
    let may = |resource: &str, namespace: Option<&str>, object: &str| {
        let a = Attributes {
            verb: "impersonate",
            group: "",
            resource,
            subresource: None,
            namespace,
            name: Some(object),
        };
        authorize(&user, &a, facts).map_err(ApiError::forbidden)
    };
    may(resource, namespace, object)?;
    for g in &groups {
        may("groups", None, g)?;
    }
    let mut groups = groups;
    // A ServiceAccount impersonated without groups is in its ServiceAccount groups, as
    // its tokens would put it.
    if groups.is_empty()
        && let Some((ns, _)) = service_account
    {
        groups = everynode_api::satoken::groups(ns);
    }
    let signed_in = if name == "system:anonymous" {
        "system:unauthenticated"
    } else {
        GROUP_AUTHENTICATED
    };
    if !groups.iter().any(|g| g == signed_in) {
        groups.push(signed_in.to_string());
    }
    Ok(User {
        name,
        groups,
        ..User::default()
    })
}

/// Whether `user` may `verb` the non-resource `path`: the administrator anything, any
/// other user what Kubernetes' default roles give every authenticated user (discovery,
/// OpenAPI, version and health, read only).
/// The non-resource paths (and everything below them) every signed-in user may `get`:
/// discovery, OpenAPI, the version and the health checks.
pub const OPEN_PATHS: [&str; 7] = [
    "/api", "/apis", "/openapi", "/version", "/healthz", "/livez", "/readyz",
];

/// The service-account issuer's discovery documents (the bootstrap
/// `system:service-account-issuer-discovery` binding opens them to every
/// ServiceAccount).
pub const ISSUER_DISCOVERY_PATHS: [&str; 2] =
    ["/.well-known/openid-configuration", "/openid/v1/jwks"];

/// Whether `user` may `verb` the non-resource `path`: the administrator anything,
/// everyone the discovery, version and health paths, and whatever the user's RBAC
/// `rules` grant (`nonResourceURLs`; the bootstrap bindings open the issuer's documents
/// to ServiceAccounts).
pub fn authorize_non_resource(
    user: &User,
    verb: &str,
    path: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    if user.is_admin() {
        return Ok(());
    }
    let open = OPEN_PATHS;
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if verb == "get" && open.iter().any(|p| under(p)) {
        return Ok(());
    }
    if rules
        .iter()
        .any(|r| everynode_api::rbac::non_resource_allows(r, verb, path))
    {
        return Ok(());
    }
    Err(format!(
        "User \"{}\" cannot {verb} path \"{path}\"",
        user.name
    ))
}

/// Whether `user` may make the request `a`; the error is the Forbidden message.
pub fn authorize(user: &User, a: &Attributes<'_>, facts: &dyn Facts) -> Result<(), String> {
    if user.is_admin() {
        return Ok(());
    }
    let is_cluster_info = a.group.is_empty()
        && a.resource == "configmaps"
        && a.namespace == Some("kube-public")
        && a.name == Some("cluster-info")
        && a.verb == "get";
    if is_cluster_info {
        // The discovery object every joining machine reads before it trusts anything.
        return Ok(());
    }
    // system:basic-user: everyone signed in may ask who they are and what they may do.
    let review = matches!(
        (a.group, a.resource),
        ("authentication.k8s.io", "selfsubjectreviews")
            | (
                "authorization.k8s.io",
                "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
            )
    );
    if review && a.verb == "create" && user.groups.iter().any(|g| g == GROUP_AUTHENTICATED) {
        return Ok(());
    }
    let csr = a.group == "certificates.k8s.io" && a.resource == "certificatesigningrequests";
    let built_in = if let Some(node) = user.node_name() {
        authorize_node(user, node, a, csr, facts)
    } else if user.is_bootstrap()
        && csr
        && a.subresource.is_none()
        && matches!(a.verb, "create" | "get" | "list" | "watch")
    {
        // kubeadm's system:node-bootstrapper role: create CSRs and watch them.
        Ok(())
    } else {
        Err(a.rbac_denial(user))
    };
    // What the built-in rules refuse, the stored RBAC roles and bindings may allow.
    built_in.or_else(|denied| {
        let request = everynode_api::rbac::Request {
            verb: a.verb,
            group: a.group,
            resource: a.resource,
            subresource: a.subresource,
            name: a.name,
        };
        let rules = facts.rbac_rules(user, a.namespace);
        if rules
            .iter()
            .any(|r| everynode_api::rbac::rule_allows(r, &request))
        {
            Ok(())
        } else {
            Err(denied)
        }
    })
}

/// What a kubelet may do: read what it needs, write its own Node and Lease, its pods'
/// status, events and its own certificate requests. Which Secrets and ConfigMaps a node
/// may read is not narrowed to those its pods use (Kubernetes' node authorizer graph).
fn authorize_node(
    user: &User,
    node: &str,
    a: &Attributes<'_>,
    csr: bool,
    facts: &dyn Facts,
) -> Result<(), String> {
    let own = a.name == Some(node);
    match (a.group, a.resource) {
        ("", "nodes") => {
            if a.reads() {
                return Ok(());
            }
            if matches!(a.verb, "create") {
                // The object's name is checked at admission (admit_node_create).
                return Ok(());
            }
            if matches!(a.verb, "update" | "patch" | "delete") {
                if own {
                    return Ok(());
                }
                return Err(a.restriction(&format!(
                    "node \"{node}\" is not allowed to modify node \"{}\"",
                    a.name.unwrap_or("")
                )));
            }
        }
        ("coordination.k8s.io", "leases") => {
            if a.verb == "list" || a.verb == "watch" || a.verb == "deletecollection" {
                return Err(a.rbac_denial(user));
            }
            if a.namespace != Some(NODE_LEASE_NAMESPACE) {
                return Err(a.restriction(&format!(
                    "can only access leases in the \"{NODE_LEASE_NAMESPACE}\" system namespace"
                )));
            }
            if a.verb == "create" || own {
                return Ok(());
            }
            return Err(a.restriction(
                "can only access node lease with the same name as the requesting node",
            ));
        }
        ("", "pods") => {
            if a.reads() && matches!(a.subresource, None | Some("status")) {
                return Ok(());
            }
            match (a.verb, a.subresource) {
                ("update" | "patch", Some("status")) => {
                    return if bound_here(facts.pod_binding(), node) {
                        Ok(())
                    } else {
                        Err(a.restriction(&format!(
                            "node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"
                        )))
                    };
                }
                ("delete", None) => {
                    return if bound_here(facts.pod_binding(), node) {
                        Ok(())
                    } else {
                        Err(a.restriction(&format!(
                            "node \"{node}\" can only delete pods with spec.nodeName set to itself"
                        )))
                    };
                }
                _ => {}
            }
        }
        ("", "secrets") => {
            // Only the Secrets its pods use, one at a time (Kubernetes' node authorizer
            // allows the same): no listing, and never the bootstrap tokens.
            if a.verb == "get" && facts.secret_used_by(node) {
                return Ok(());
            }
            let mut msg = a.rbac_denial(user);
            if a.verb == "get" {
                msg.push_str(&format!(
                    ": no relationship found between node '{node}' and this object"
                ));
            }
            return Err(msg);
        }
        ("", "services" | "endpoints" | "configmaps" | "namespaces")
        | ("discovery.k8s.io", "endpointslices")
            if a.reads() =>
        {
            return Ok(());
        }
        ("", "events") | ("events.k8s.io", "events")
            if matches!(a.verb, "create" | "update" | "patch") =>
        {
            return Ok(());
        }
        _ if csr && a.subresource.is_none() => {
            if matches!(a.verb, "create" | "get" | "list" | "watch") {
                return Ok(());
            }
        }
        _ => {}
    }
    Err(a.rbac_denial(user))
}

fn bound_here(b: PodBinding, node: &str) -> bool {
    match b {
        PodBinding::Missing => true,
        PodBinding::Node(n) => n == node,
    }
}

/// Whether `pod` uses the Secret `name`: as a volume (plain or projected), in `env` or
/// `envFrom` of any container, or as an image pull secret.
pub fn pod_uses_secret(pod: &Value, name: &str) -> bool {
    let is = |v: Option<&Value>| v.and_then(Value::as_str) == Some(name);
    let spec = &pod["spec"];
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    if list(&spec["imagePullSecrets"])
        .iter()
        .any(|s| is(s.get("name")))
    {
        return true;
    }
    for vol in list(&spec["volumes"]) {
        if is(vol.pointer("/secret/secretName")) {
            return true;
        }
        if list(&vol["projected"]["sources"])
            .iter()
            .any(|src| is(src.pointer("/secret/name")))
        {
            return true;
        }
    }
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| list(&spec[*k]))
        .any(|c| {
            list(&c["env"])
                .iter()
                .any(|e| is(e.pointer("/valueFrom/secretKeyRef/name")))
                || list(&c["envFrom"])
                    .iter()
                    .any(|e| is(e.pointer("/secretRef/name")))
        })
}

/// Label keys a kubelet may set on its own Node (Kubernetes' kubelet label set).
fn is_kubelet_label(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
    ];
    if KEYS.contains(&key) {
        return true;
    }
    let ns = label_namespace(key);
    ["kubelet.kubernetes.io", "node.kubernetes.io"]
        .iter()
        .any(|allowed| ns == *allowed || ns.ends_with(&format!(".{allowed}")))
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn under(ns: &str, domain: &str) -> bool {
    ns == domain || ns.ends_with(&format!(".{domain}"))
}

/// Label keys a node may not add, change or remove on itself: the
/// `node-restriction.kubernetes.io/` namespace (reserved for administrators to steer
/// workloads with) and any `kubernetes.io`/`k8s.io` label outside the kubelet's set.
fn forbidden_labels(modified: &[String]) -> Vec<String> {
    let mut out: Vec<String> = modified
        .iter()
        .filter(|k| {
            let ns = label_namespace(k);
            under(ns, "node-restriction.kubernetes.io")
                || ((under(ns, "kubernetes.io") || under(ns, "k8s.io")) && !is_kubelet_label(k))
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn modified_labels(new: &Value, old: Option<&Value>) -> Vec<String> {
    let n = labels(new);
    let o = old.map(labels).unwrap_or_default();
    let mut keys: Vec<String> = n
        .iter()
        .filter(|(k, v)| o.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(o.keys().filter(|k| !n.contains_key(*k)).cloned());
    keys
}

/// NodeRestriction on create: a node registers only itself, with labels it may set.
/// Leases: only its own. Returns the Forbidden message.
pub fn admit_node_create(user: &User, resource: &str, obj: &Value) -> Result<(), String> {
    let Some(node) = user.node_name() else {
        return Ok(());
    };
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match resource {
        "nodes" => {
            if name != node {
                return Err(format!(
                    "nodes \"{name}\" is forbidden: node \"{node}\" is not allowed to modify node \"{name}\""
                ));
            }
            let bad = forbidden_labels(&modified_labels(obj, None));
            if !bad.is_empty() {
                return Err(format!(
                    "nodes \"{name}\" is forbidden: node \"{node}\" is not allowed to set the following labels: {}",
                    bad.join(", ")
                ));
            }
            Ok(())
        }
        "leases" if name != node => Err(format!(
            "leases.coordination.k8s.io \"{name}\" is forbidden: can only access node lease with the same name as the requesting node"
        )),
        _ => Ok(()),
    }
}

/// NodeRestriction on update of a node's own Node: taints stay as they are, and
/// labels change only within the kubelet's set.
pub fn admit_node_update(user: &User, old: &Value, new: &Value) -> Result<(), String> {
    let Some(node) = user.node_name() else {
        return Ok(());
    };
    let name = old
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let taints = |v: &Value| {
        v.pointer("/spec/taints")
            .cloned()
            .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    };
    if taints(old) != taints(new) {
        return Err(format!(
            "nodes \"{name}\" is forbidden: node \"{node}\" is not allowed to modify taints"
        ));
    }
    let bad = forbidden_labels(&modified_labels(new, Some(old)));
    if !bad.is_empty() {
        return Err(format!(
            "nodes \"{name}\" is forbidden: is not allowed to modify labels: {}",
            bad.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_authenticate_their_user_only() {
        let a = Authenticator::new();
        a.add_token("secret-admin", User::admin());
        a.add_token("node-token", User::node("n1"));
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer secret-admin".parse().unwrap(),
        );
        assert!(a.authenticate(&h).unwrap().is_admin());
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer node-token".parse().unwrap(),
        );
        assert_eq!(a.authenticate(&h).unwrap().node_name(), Some("n1"));
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer secret-admiN".parse().unwrap(),
        );
        assert!(a.authenticate(&h).is_none());
        h.insert(
            http::header::AUTHORIZATION,
            "Basic secret-admin".parse().unwrap(),
        );
        assert!(a.authenticate(&h).is_none());
        assert!(a.authenticate(&HeaderMap::new()).is_none());
    }

    #[test]
    fn bootstrap_tokens_parse() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").expect("token");
        assert_eq!(t.id, "abcdef");
        assert_eq!(t.secret_name(), "bootstrap-token-abcdef");
        for bad in [
            "abcdef0123456789abcdef",
            "abcde.0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef.x",
            "",
        ] {
            assert!(BootstrapToken::parse(bad).is_none(), "{bad}");
        }
        let g = BootstrapToken::generate();
        assert_eq!(BootstrapToken::parse(&g.to_token_string()), Some(g));
    }

    fn secret(data: Value) -> Value {
        json!({ "type": BOOTSTRAP_SECRET_TYPE, "metadata": { "name": "bootstrap-token-abcdef" },
                "stringData": data })
    }

    #[test]
    fn bootstrap_secrets_are_checked_like_kubernetes() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let tok = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let good = json!({ "token-id": "abcdef", "token-secret": "0123456789abcdef",
                           "usage-bootstrap-authentication": "true",
                           "expiration": "2026-01-02T00:00:00Z",
                           "auth-extra-groups": "system:bootstrappers:everynode,evil:group" });
        let u = bootstrap_user(&secret(good.clone()), &tok, now).expect("valid");
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(
            u.groups,
            [
                "system:bootstrappers",
                "system:bootstrappers:everynode",
                "system:authenticated"
            ]
        );
        // The same data, base64 in `data`, as stored.
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let data: serde_json::Map<String, Value> = good
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json!(b64(v.as_str().unwrap()))))
            .collect();
        let stored = json!({ "type": BOOTSTRAP_SECRET_TYPE, "data": data });
        assert!(bootstrap_user(&stored, &tok, now).is_ok());

        let with = |k: &str, v: Value| {
            let mut d = good.clone();
            d[k] = v;
            secret(d)
        };
        let cases = [
            (
                with("expiration", json!("2025-12-31T23:59:59Z")),
                TokenRefusal::Expired,
            ),
            (
                with("expiration", json!("tomorrow")),
                TokenRefusal::BadExpiration,
            ),
            (
                with("token-secret", json!("0123456789abcdeX")),
                TokenRefusal::WrongSecret,
            ),
            (with("token-id", json!("zzzzzz")), TokenRefusal::WrongSecret),
            (
                with("usage-bootstrap-authentication", json!("false")),
                TokenRefusal::NotForAuthentication,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(bootstrap_user(&s, &tok, now), Err(want));
        }
        let mut opaque = secret(good.clone());
        opaque["type"] = json!("Opaque");
        assert_eq!(
            bootstrap_user(&opaque, &tok, now),
            Err(TokenRefusal::WrongType)
        );
        let mut no_expiry = good.clone();
        no_expiry
            .as_object_mut()
            .unwrap()
            .remove("expiration")
            .unwrap();
        assert!(bootstrap_user(&secret(no_expiry), &tok, now).is_ok());
    }

    /// The named pod's binding, and whether the named Secret is used by n1's pods.
    struct TestFacts(PodBinding, bool);

    impl Facts for TestFacts {
        fn pod_binding(&self) -> PodBinding {
            self.0.clone()
        }
        fn secret_used_by(&self, node: &str) -> bool {
            self.1 && node == "n1"
        }
    }

    #[test]
    fn secrets_used_by_pods() {
        let pod = json!({ "spec": {
            "imagePullSecrets": [{ "name": "pull" }],
            "volumes": [{ "name": "v", "secret": { "secretName": "vol" } },
                        { "name": "p", "projected": { "sources": [{ "secret": { "name": "proj" } }] } }],
            "initContainers": [{ "name": "i", "envFrom": [{ "secretRef": { "name": "from" } }] }],
            "containers": [{ "name": "c", "env": [{ "name": "E", "valueFrom": { "secretKeyRef": { "name": "env", "key": "k" } } }] }],
        }});
        for used in ["pull", "vol", "proj", "from", "env"] {
            assert!(pod_uses_secret(&pod, used), "{used}");
        }
        assert!(!pod_uses_secret(&pod, "other"));
        assert!(!pod_uses_secret(&json!({}), "x"));
    }

    fn attrs<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        sub: Option<&'a str>,
        ns: Option<&'a str>,
        name: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group,
            resource,
            subresource: sub,
            namespace: ns,
            name,
        }
    }

    /// Facts whose only RBAC rule lets group `ops` read DaemonSets in namespace `prod`.
    struct RbacFacts;

    impl Facts for RbacFacts {
        fn pod_binding(&self) -> PodBinding {
            PodBinding::Missing
        }
        fn secret_used_by(&self, _node: &str) -> bool {
            false
        }
        fn rbac_rules(&self, user: &User, namespace: Option<&str>) -> Vec<PolicyRule> {
            if namespace != Some("prod") || !user.groups.iter().any(|g| g == "ops") {
                return Vec::new();
            }
            vec![PolicyRule {
                verbs: vec!["get".into(), "list".into()],
                api_groups: Some(vec!["apps".into()]),
                resources: Some(vec!["daemonsets".into()]),
                ..PolicyRule::default()
            }]
        }
    }

    #[test]
    fn stored_rbac_rules_allow_what_the_built_in_rules_refuse() {
        let mut ops = User::node("n1");
        ops.groups.push("ops".into());
        let list_ds = attrs("list", "apps", "daemonsets", None, Some("prod"), None);
        assert_eq!(authorize(&ops, &list_ds, &RbacFacts), Ok(()));
        // Without the group, the node authorizer's refusal stands, in its own words.
        let n1 = User::node("n1");
        let refused = authorize(&n1, &list_ds, &RbacFacts).unwrap_err();
        assert_eq!(
            refused,
            authorize(&n1, &list_ds, &TestFacts(PodBinding::Missing, false)).unwrap_err()
        );
        // The rule reads; it does not write, nor reach other namespaces.
        let delete = attrs(
            "delete",
            "apps",
            "daemonsets",
            None,
            Some("prod"),
            Some("x"),
        );
        assert!(authorize(&ops, &delete, &RbacFacts).is_err());
        let elsewhere = attrs("list", "apps", "daemonsets", None, Some("dev"), None);
        assert!(authorize(&ops, &elsewhere, &RbacFacts).is_err());
    }

    #[test]
    fn authorization_decisions() {
        let n1 = User::node("n1");
        let boot = User::bootstrap("abcdef", &[]);
        let anon = User::anonymous();
        let admin = User::admin();
        let lease_ns = Some(NODE_LEASE_NAMESPACE);
        let def = Some("default");
        // (user, request, pod bound to, allowed)
        let cases: Vec<(&User, Attributes, Option<&str>, bool)> = vec![
            (
                &n1,
                attrs("delete", "", "pods", None, def, Some("p")),
                Some(""),
                false,
            ),
            (
                &admin,
                attrs("delete", "", "nodes", None, None, Some("x")),
                None,
                true,
            ),
            (
                &n1,
                attrs("get", "", "nodes", None, None, Some("n2")),
                None,
                true,
            ),
            (
                &n1,
                attrs("watch", "", "pods", None, None, None),
                None,
                true,
            ),
            (
                &n1,
                attrs("patch", "", "nodes", Some("status"), None, Some("n1")),
                None,
                true,
            ),
            (
                &n1,
                attrs("patch", "", "nodes", None, None, Some("n2")),
                None,
                false,
            ),
            (
                &n1,
                attrs("update", "", "nodes", Some("status"), None, Some("n2")),
                None,
                false,
            ),
            (
                &n1,
                attrs("delete", "", "nodes", None, None, Some("n2")),
                None,
                false,
            ),
            (
                &n1,
                attrs(
                    "create",
                    "coordination.k8s.io",
                    "leases",
                    None,
                    lease_ns,
                    None,
                ),
                None,
                true,
            ),
            (
                &n1,
                attrs(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    None,
                    lease_ns,
                    Some("n1"),
                ),
                None,
                true,
            ),
            (
                &n1,
                attrs(
                    "patch",
                    "coordination.k8s.io",
                    "leases",
                    None,
                    lease_ns,
                    Some("n2"),
                ),
                None,
                false,
            ),
            (
                &n1,
                attrs(
                    "get",
                    "coordination.k8s.io",
                    "leases",
                    None,
                    def,
                    Some("n1"),
                ),
                None,
                false,
            ),
            (
                &n1,
                attrs("patch", "", "pods", Some("status"), def, Some("p")),
                Some("n1"),
                true,
            ),
            (
                &n1,
                attrs("patch", "", "pods", Some("status"), def, Some("p")),
                Some("n2"),
                false,
            ),
            (
                &n1,
                attrs("delete", "", "pods", None, def, Some("p")),
                Some("n2"),
                false,
            ),
            (
                &n1,
                attrs("delete", "", "pods", None, def, Some("p")),
                Some("n1"),
                true,
            ),
            (
                &n1,
                attrs("update", "", "pods", None, def, Some("p")),
                Some("n1"),
                false,
            ),
            (
                &n1,
                attrs("create", "", "pods", None, def, None),
                None,
                false,
            ),
            (
                &n1,
                attrs("create", "apps", "daemonsets", None, def, None),
                None,
                false,
            ),
            (
                &n1,
                attrs("list", "apps", "daemonsets", None, None, None),
                None,
                false,
            ),
            (
                &n1,
                attrs("create", "", "events", None, def, None),
                None,
                true,
            ),
            (
                &n1,
                attrs("get", "", "secrets", None, def, Some("used")),
                None,
                true,
            ),
            (
                &n1,
                attrs("get", "", "secrets", None, def, Some("s")),
                None,
                false,
            ),
            (
                &n1,
                attrs("list", "", "secrets", None, Some("kube-system"), None),
                None,
                false,
            ),
            (
                &n1,
                attrs("update", "", "configmaps", None, def, Some("c")),
                None,
                false,
            ),
            (
                &n1,
                attrs(
                    "create",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                    None,
                    None,
                    None,
                ),
                None,
                true,
            ),
            (
                &boot,
                attrs(
                    "create",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                    None,
                    None,
                    None,
                ),
                None,
                true,
            ),
            (
                &boot,
                attrs(
                    "watch",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                    None,
                    None,
                    None,
                ),
                None,
                true,
            ),
            (
                &boot,
                attrs(
                    "update",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                    Some("approval"),
                    None,
                    Some("c"),
                ),
                None,
                false,
            ),
            (
                &boot,
                attrs("list", "", "nodes", None, None, None),
                None,
                false,
            ),
            (
                &boot,
                attrs(
                    "get",
                    "",
                    "configmaps",
                    None,
                    Some("kube-public"),
                    Some("cluster-info"),
                ),
                None,
                true,
            ),
            (
                &anon,
                attrs(
                    "get",
                    "",
                    "configmaps",
                    None,
                    Some("kube-public"),
                    Some("cluster-info"),
                ),
                None,
                true,
            ),
            (
                &anon,
                attrs(
                    "update",
                    "",
                    "configmaps",
                    None,
                    Some("kube-public"),
                    Some("cluster-info"),
                ),
                None,
                false,
            ),
            (
                &anon,
                attrs(
                    "get",
                    "",
                    "configmaps",
                    None,
                    Some("kube-public"),
                    Some("other"),
                ),
                None,
                false,
            ),
        ];
        for (user, a, bound, allowed) in cases {
            let facts = TestFacts(
                match bound {
                    Some(n) => PodBinding::Node(n.to_string()),
                    None => PodBinding::Missing,
                },
                a.name == Some("used"),
            );
            let got = authorize(user, &a, &facts);
            assert_eq!(got.is_ok(), allowed, "{} {a:?}: {got:?}", user.name);
        }
    }

    #[test]
    fn denials_read_like_kubernetes() {
        let n1 = User::node("n1");
        let e = authorize(
            &n1,
            &attrs("patch", "", "nodes", None, None, Some("n2")),
            &TestFacts(PodBinding::Missing, false),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
        );
        let e = authorize(
            &n1,
            &attrs("create", "apps", "daemonsets", None, Some("default"), None),
            &TestFacts(PodBinding::Missing, false),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "daemonsets.apps is forbidden: User \"system:node:n1\" cannot create resource \"daemonsets\" in API group \"apps\" in the namespace \"default\""
        );
        let e = authorize(
            &User::bootstrap("abcdef", &[]),
            &attrs("list", "", "nodes", None, None, None),
            &TestFacts(PodBinding::Missing, false),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "nodes is forbidden: User \"system:bootstrap:abcdef\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn node_restriction_on_own_node() {
        let n1 = User::node("n1");
        let old = json!({ "metadata": { "name": "n1", "labels": { "kubernetes.io/hostname": "n1", "team": "a" } },
                          "spec": { "taints": [{ "key": "k", "effect": "NoSchedule" }] } });
        let with_label = |k: &str, v: &str| {
            let mut n = old.clone();
            n["metadata"]["labels"][k] = json!(v);
            n
        };
        // Free-form labels and the kubelet's own set: allowed.
        assert!(admit_node_update(&n1, &old, &with_label("team", "b")).is_ok());
        assert!(
            admit_node_update(&n1, &old, &with_label("topology.kubernetes.io/zone", "z")).is_ok()
        );
        assert!(admit_node_update(&n1, &old, &with_label("node.kubernetes.io/x", "1")).is_ok());
        // Reserved and unknown kubernetes.io labels: forbidden.
        assert_eq!(
            admit_node_update(
                &n1,
                &old,
                &with_label("node-restriction.kubernetes.io/pci", "true")
            ),
            Err("nodes \"n1\" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pci".into())
        );
        assert!(
            admit_node_update(
                &n1,
                &old,
                &with_label("node-role.kubernetes.io/control-plane", "")
            )
            .is_err()
        );
        let mut untainted = old.clone();
        untainted["spec"]["taints"] = json!([]);
        assert_eq!(
            admit_node_update(&n1, &old, &untainted),
            Err("nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints".into())
        );
        // Creating: only itself, no reserved labels; the admin is not restricted.
        let other = json!({ "metadata": { "name": "n2" } });
        assert!(admit_node_create(&n1, "nodes", &other).is_err());
        assert!(admit_node_create(&User::admin(), "nodes", &other).is_ok());
        assert!(admit_node_create(&n1, "nodes", &json!({ "metadata": { "name": "n1" } })).is_ok());
        let reserved = json!({ "metadata": { "name": "n1", "labels": { "node-role.kubernetes.io/master": "" } } });
        assert!(admit_node_create(&n1, "nodes", &reserved).is_err());
        assert!(admit_node_create(&n1, "leases", &other).is_err());
    }
}
