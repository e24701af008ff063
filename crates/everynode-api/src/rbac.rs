//! rbac.authorization.k8s.io/v1: defaulting and validation of Roles, ClusterRoles and
//! their bindings (Kubernetes' `pkg/apis/rbac/v1/defaults.go` and
//! `pkg/apis/rbac/validation`), and the default ClusterRoles and ClusterRoleBinding every
//! cluster starts with (`cluster-admin`, `admin`, `edit`, `view`).
//!
//! Names of RBAC objects follow the path-segment rule (`system:controller:x` is fine), and
//! a binding's `roleRef` can never change: to point a binding elsewhere, replace it.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::field::{FieldError, quote};
use crate::validation::{NameRule, fmt, go, validate_object_meta, validate_object_meta_update};

type Errs = Vec<FieldError>;

/// The API group of roles and bindings (and of `User`/`Group` subjects).
pub const GROUP: &str = "rbac.authorization.k8s.io";

// ---------------------------------------------------------------------------------------
// Evaluation (what Kubernetes' RBAC authorizer decides)

/// Whether a binding's `subject` names the user `name` in `groups`; a ServiceAccount
/// subject without a namespace is in the binding's own (`binding_ns`).
pub fn applies_to(subject: &Subject, name: &str, groups: &[String], binding_ns: &str) -> bool {
    match subject.kind.as_str() {
        "User" => subject.name == name,
        "Group" => groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = match subject.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => ns,
                _ => binding_ns,
            };
            !ns.is_empty() && name == format!("system:serviceaccount:{ns}:{}", subject.name)
        }
        _ => false,
    }
}

/// A request as RBAC sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Whether `rule` allows `r`: its verbs, API groups and resources (`*` for any;
/// `pods/log` for a subresource, `pods/*` for all of them, `*/scale` for one of every
/// resource) and, when it names any, the object's name.
pub fn rule_allows(rule: &PolicyRule, r: &Request<'_>) -> bool {
    let has = |list: &Option<Vec<String>>, want: &str| {
        list.iter().flatten().any(|x| x == "*" || x == want)
    };
    let resource_ok = rule
        .resources
        .iter()
        .flatten()
        .any(|x| match r.subresource {
            None => x == "*" || x == r.resource,
            Some(sub) => {
                x == "*"
                    || *x == format!("{}/{sub}", r.resource)
                    || *x == format!("{}/*", r.resource)
                    || *x == format!("*/{sub}")
            }
        });
    let names = rule.resource_names.as_deref().unwrap_or(&[]);
    let name_ok = names.is_empty() || r.name.is_some_and(|n| names.iter().any(|x| x == n));
    rule.verbs.iter().any(|v| v == "*" || v == r.verb)
        && has(&rule.api_groups, r.group)
        && resource_ok
        && name_ok
}

/// Whether `rule` allows `verb` on the non-resource path `path`: a URL equal to it, or
/// ending in `*` and prefixing it.
pub fn non_resource_allows(rule: &PolicyRule, verb: &str, path: &str) -> bool {
    let url_ok =
        rule.non_resource_urls.iter().flatten().any(|u| {
            u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
        });
    url_ok && rule.verbs.iter().any(|v| v == "*" || v == verb)
}

// ---------------------------------------------------------------------------------------
// Defaulting

/// A subject's API group: `rbac.authorization.k8s.io` for users and groups, none for
/// service accounts.
fn default_subject(s: &mut Subject) {
    if s.api_group.as_deref().unwrap_or("").is_empty() {
        match s.kind.as_str() {
            "User" | "Group" => s.api_group = Some(GROUP.to_string()),
            "ServiceAccount" => s.api_group = None,
            _ => {}
        }
    }
}

fn default_role_ref(r: &mut RoleRef) {
    if r.api_group.is_empty() {
        r.api_group = GROUP.to_string();
    }
}

pub fn default_role_binding(b: &mut RoleBinding) {
    default_role_ref(&mut b.role_ref);
    b.subjects.iter_mut().flatten().for_each(default_subject);
}

pub fn default_cluster_role_binding(b: &mut ClusterRoleBinding) {
    default_role_ref(&mut b.role_ref);
    b.subjects.iter_mut().flatten().for_each(default_subject);
}

// ---------------------------------------------------------------------------------------
// Validation

fn meta(m: &ObjectMeta, namespaced: bool) -> Errs {
    validate_object_meta(m, namespaced, NameRule::PathSegment, "metadata")
}

fn rules(list: Option<&[PolicyRule]>, namespaced: bool) -> Errs {
    list.unwrap_or(&[])
        .iter()
        .enumerate()
        .flat_map(|(i, r)| policy_rule(r, namespaced, &format!("rules[{i}]")))
        .collect()
}

/// `ValidatePolicyRule`: verbs always; either non-resource URLs (cluster roles only) or
/// API groups and resources.
pub fn policy_rule(rule: &PolicyRule, namespaced: bool, path: &str) -> Errs {
    let mut errs = Vec::new();
    let len = |v: &Option<Vec<String>>| v.as_ref().map_or(0, Vec::len);
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if len(&rule.non_resource_urls) > 0 {
        let shown = go::string_slice(rule.non_resource_urls.as_deref());
        if namespaced {
            errs.push(FieldError::invalid_rendered(
                format!("{path}.nonResourceURLs"),
                shown.clone(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if len(&rule.api_groups) > 0 || len(&rule.resources) > 0 || len(&rule.resource_names) > 0 {
            errs.push(FieldError::invalid_rendered(
                format!("{path}.nonResourceURLs"),
                shown,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if len(&rule.api_groups) == 0 {
        errs.push(FieldError::required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if len(&rule.resources) == 0 {
        errs.push(FieldError::required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

pub fn validate_role(r: &Role) -> Errs {
    let mut errs = meta(&r.metadata, true);
    errs.extend(rules(r.rules.as_deref(), true));
    errs
}

pub fn validate_role_update(new: &Role, old: &Role) -> Errs {
    let mut errs = validate_role(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        "metadata",
    ));
    errs
}

pub fn validate_cluster_role(r: &ClusterRole) -> Errs {
    let mut errs = meta(&r.metadata, false);
    errs.extend(rules(r.rules.as_deref(), false));
    if let Some(agg) = &r.aggregation_rule {
        let selectors = agg.cluster_role_selectors.as_deref().unwrap_or(&[]);
        if selectors.is_empty() {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            errs.extend(crate::validation::validate_label_selector(
                sel,
                &format!("aggregationRule.clusterRoleSelectors[{i}]"),
            ));
        }
    }
    errs
}

pub fn validate_cluster_role_update(new: &ClusterRole, old: &ClusterRole) -> Errs {
    let mut errs = validate_cluster_role(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        "metadata",
    ));
    errs
}

/// The role a binding names: group, kind (`kinds`), name.
fn role_ref(r: &RoleRef, kinds: &[&str]) -> Errs {
    let mut errs = Vec::new();
    if r.api_group != GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            &r.api_group,
            &[GROUP],
        ));
    }
    if !kinds.contains(&r.kind.as_str()) {
        errs.push(FieldError::not_supported("roleRef.kind", &r.kind, kinds));
    }
    if r.name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in fmt::path_segment_name(&r.name, false) {
            errs.push(FieldError::invalid("roleRef.name", &r.name, msg));
        }
    }
    errs
}

/// `ValidateRoleBindingSubject`: a name; service accounts a DNS subdomain name without
/// an API group, and a namespace in cluster-wide bindings; users and groups the RBAC
/// group.
pub fn subject(s: &Subject, namespaced: bool, path: &str) -> Errs {
    let mut errs = Vec::new();
    if s.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    }
    let api_group = s.api_group.as_deref().unwrap_or("");
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                for msg in fmt::dns1123_subdomain(&s.name) {
                    errs.push(FieldError::invalid(format!("{path}.name"), &s.name, msg));
                }
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(
                    format!("{path}.apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && s.namespace.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                errs.push(FieldError::not_supported(
                    format!("{path}.apiGroup"),
                    api_group,
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{path}.kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

fn subjects(list: Option<&[Subject]>, namespaced: bool) -> Errs {
    list.unwrap_or(&[])
        .iter()
        .enumerate()
        .flat_map(|(i, s)| subject(s, namespaced, &format!("subjects[{i}]")))
        .collect()
}

/// Go's `%#v` of the internal `rbac.RoleRef`, as the "cannot change roleRef" error shows it.
fn role_ref_go(r: &RoleRef) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        quote(&r.api_group),
        quote(&r.kind),
        quote(&r.name)
    )
}

fn role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> Option<FieldError> {
    (new != old)
        .then(|| FieldError::invalid_rendered("roleRef", role_ref_go(new), "cannot change roleRef"))
}

pub fn validate_role_binding(b: &RoleBinding) -> Errs {
    let mut errs = meta(&b.metadata, true);
    errs.extend(role_ref(&b.role_ref, &["Role", "ClusterRole"]));
    errs.extend(subjects(b.subjects.as_deref(), true));
    errs
}

pub fn validate_role_binding_update(new: &RoleBinding, old: &RoleBinding) -> Errs {
    let mut errs = validate_role_binding(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        "metadata",
    ));
    errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
    errs
}

pub fn validate_cluster_role_binding(b: &ClusterRoleBinding) -> Errs {
    let mut errs = meta(&b.metadata, false);
    errs.extend(role_ref(&b.role_ref, &["ClusterRole"]));
    errs.extend(subjects(b.subjects.as_deref(), false));
    errs
}

pub fn validate_cluster_role_binding_update(
    new: &ClusterRoleBinding,
    old: &ClusterRoleBinding,
) -> Errs {
    let mut errs = validate_cluster_role_binding(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        "metadata",
    ));
    errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
    errs
}

// ---------------------------------------------------------------------------------------
// Table cells

/// `rbac.SubjectsStrings`: the users, groups and service accounts (`ns/name`) a binding
/// names, each joined with `, ` as the wide Table columns show them.
pub fn subjects_strings(subjects: &[Subject]) -> (String, String, String) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects {
        match s.kind.as_str() {
            "ServiceAccount" => sas.push(format!(
                "{}/{}",
                s.namespace.as_deref().unwrap_or(""),
                s.name
            )),
            "User" => users.push(s.name.clone()),
            "Group" => groups.push(s.name.clone()),
            _ => {}
        }
    }
    (users.join(", "), groups.join(", "), sas.join(", "))
}

// ---------------------------------------------------------------------------------------
// Bootstrap policy

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let own = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    PolicyRule {
        api_groups: own(groups),
        resources: own(resources),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// The metadata kube-apiserver gives its bootstrap policy objects.
fn bootstrap_meta(name: &str, extra_labels: &[(&str, &str)]) -> ObjectMeta {
    let mut labels = BTreeMap::from([(
        "kubernetes.io/bootstrapping".to_string(),
        "rbac-defaults".to_string(),
    )]);
    for (k, v) in extra_labels {
        labels.insert(k.to_string(), v.to_string());
    }
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(
            "rbac.authorization.kubernetes.io/autoupdate".to_string(),
            "true".to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// What `view` reads (Kubernetes' `system:aggregate-to-view`, for the kinds this server
/// and a usual cluster serve; no Secrets).
fn view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
            READ,
        ),
        rule(
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
            READ,
        ),
        rule(&[""], &["namespaces"], READ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            READ,
        ),
        rule(
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
            READ,
        ),
        rule(
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
            READ,
        ),
    ]
}

/// What `edit` adds to `view` (Kubernetes' `system:aggregate-to-edit`).
fn edit_rules() -> Vec<PolicyRule> {
    let mut rules = vec![
        rule(
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
            READ,
        ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
            &["create", "delete", "deletecollection", "patch", "update"],
        ),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            WRITE,
        ),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        rule(&["batch"], &["cronjobs", "jobs"], WRITE),
        rule(&["policy"], &["poddisruptionbudgets"], WRITE),
        rule(&["coordination.k8s.io"], &["leases"], ALL),
    ];
    rules.extend(view_rules());
    rules
}

/// What `admin` adds to `edit` (Kubernetes' `system:aggregate-to-admin`): roles and
/// bindings in the namespace, and local access reviews.
fn admin_rules() -> Vec<PolicyRule> {
    let mut rules = vec![
        rule(
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
            &["create"],
        ),
        rule(&[GROUP], &["rolebindings", "roles"], ALL),
    ];
    rules.extend(edit_rules());
    rules
}

/// The ClusterRoles every cluster starts with. Kubernetes builds `admin`, `edit` and
/// `view` by aggregation (a controller unions the rules of ClusterRoles labelled
/// `aggregate-to-*`); here they carry those rules directly and are not re-aggregated.
pub fn bootstrap_cluster_roles() -> Vec<ClusterRole> {
    let cluster_admin = ClusterRole {
        metadata: bootstrap_meta("cluster-admin", &[]),
        rules: Some(vec![
            rule(&["*"], &["*"], &["*"]),
            PolicyRule {
                non_resource_urls: Some(vec!["*".into()]),
                verbs: vec!["*".into()],
                ..PolicyRule::default()
            },
        ]),
        aggregation_rule: None,
    };
    let role = |name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>| ClusterRole {
        metadata: bootstrap_meta(name, labels),
        rules: Some(rules),
        aggregation_rule: None,
    };
    let paths = |urls: &[&str]| PolicyRule {
        non_resource_urls: Some(urls.iter().map(|u| u.to_string()).collect()),
        verbs: vec!["get".into()],
        ..PolicyRule::default()
    };
    vec![
        cluster_admin,
        role(
            "system:discovery",
            &[],
            vec![paths(&[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ])],
        ),
        role(
            "system:public-info-viewer",
            &[],
            vec![paths(&[
                "/healthz",
                "/livez",
                "/readyz",
                "/version",
                "/version/",
            ])],
        ),
        role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
            ],
        ),
        role(
            "system:service-account-issuer-discovery",
            &[],
            vec![paths(&[
                "/.well-known/openid-configuration",
                "/.well-known/openid-configuration/",
                "/openid/v1/jwks",
                "/openid/v1/jwks/",
            ])],
        ),
        role("admin", &[], admin_rules()),
        role(
            "edit",
            &[("rbac.authorization.k8s.io/aggregate-to-admin", "true")],
            edit_rules(),
        ),
        role(
            "view",
            &[("rbac.authorization.k8s.io/aggregate-to-edit", "true")],
            view_rules(),
        ),
    ]
}

/// `cluster-admin` for the group `system:masters`; discovery, the version and health
/// paths and the self-reviews for everyone signed in (the version and health paths for
/// the anonymous too); the issuer's documents for every ServiceAccount.
pub fn bootstrap_cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    let binding = |role: &str, groups: &[&str]| ClusterRoleBinding {
        metadata: bootstrap_meta(role, &[]),
        role_ref: RoleRef {
            api_group: GROUP.into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(
            groups
                .iter()
                .map(|g| Subject {
                    api_group: Some(GROUP.into()),
                    kind: "Group".into(),
                    name: g.to_string(),
                    namespace: None,
                })
                .collect(),
        ),
    };
    vec![
        binding("cluster-admin", &["system:masters"]),
        binding("system:discovery", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
        binding("system:basic-user", &["system:authenticated"]),
        binding(
            "system:service-account-issuer-discovery",
            &["system:serviceaccounts"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::aggregate_message;

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    fn named(name: &str, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(str::to_string),
            ..ObjectMeta::default()
        }
    }

    fn binding(kind: &str, name: &str, subjects: Vec<Subject>) -> RoleBinding {
        RoleBinding {
            metadata: named("b", Some("ns")),
            role_ref: RoleRef {
                api_group: GROUP.into(),
                kind: kind.into(),
                name: name.into(),
            },
            subjects: Some(subjects),
        }
    }

    fn sa(name: &str, ns: Option<&str>) -> Subject {
        Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: ns.map(str::to_string),
            api_group: None,
        }
    }

    #[test]
    fn non_resource_rules_match_paths_and_prefixes() {
        let rule = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: Some(vec!["/metrics".into(), "/logs/*".into()]),
            ..PolicyRule::default()
        };
        assert!(non_resource_allows(&rule, "get", "/metrics"));
        assert!(non_resource_allows(&rule, "get", "/logs/a/b"));
        assert!(!non_resource_allows(&rule, "post", "/metrics"));
        assert!(!non_resource_allows(&rule, "get", "/metricsx"));
        assert!(!non_resource_allows(
            &PolicyRule::default(),
            "get",
            "/metrics"
        ));
    }

    #[test]
    fn rbac_names_are_path_segments() {
        let r = ClusterRole {
            metadata: named("system:controller:flannel", None),
            ..ClusterRole::default()
        };
        assert!(validate_cluster_role(&r).is_empty());
        let r = ClusterRole {
            metadata: named("a/b", None),
            ..ClusterRole::default()
        };
        assert_eq!(
            msgs(&validate_cluster_role(&r)),
            ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]
        );
    }

    #[test]
    fn rules_need_verbs_groups_and_resources() {
        let r = Role {
            metadata: named("r", Some("ns")),
            rules: Some(vec![
                PolicyRule::default(),
                PolicyRule {
                    non_resource_urls: Some(vec!["/healthz".into()]),
                    resources: Some(vec!["pods".into()]),
                    verbs: vec!["get".into()],
                    ..PolicyRule::default()
                },
            ]),
        };
        assert_eq!(
            msgs(&validate_role(&r)),
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
                "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
                "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: rules cannot apply to both regular resources and non-resource URLs",
            ]
        );
        // Non-resource URLs alone are fine in a ClusterRole.
        let c = ClusterRole {
            metadata: named("c", None),
            rules: Some(vec![PolicyRule {
                non_resource_urls: Some(vec!["/healthz".into()]),
                verbs: vec!["get".into()],
                ..PolicyRule::default()
            }]),
            aggregation_rule: None,
        };
        assert!(validate_cluster_role(&c).is_empty());
    }

    #[test]
    fn role_refs_and_subjects() {
        let mut b = binding("Role", "r", vec![sa("flannel", None)]);
        default_role_binding(&mut b);
        assert!(
            validate_role_binding(&b).is_empty(),
            "{:?}",
            validate_role_binding(&b)
        );

        let mut b = RoleBinding {
            metadata: named("b", Some("ns")),
            ..RoleBinding::default()
        };
        default_role_binding(&mut b);
        assert_eq!(b.role_ref.api_group, GROUP, "defaulted");
        assert_eq!(
            msgs(&validate_role_binding(&b)),
            [
                "roleRef.kind: Unsupported value: \"\": supported values: \"Role\", \"ClusterRole\"",
                "roleRef.name: Required value",
            ]
        );

        let mut c = ClusterRoleBinding {
            metadata: named("c", None),
            role_ref: RoleRef {
                api_group: "example.com".into(),
                kind: "Role".into(),
                name: "r".into(),
            },
            subjects: Some(vec![
                sa("flannel", None),
                Subject {
                    kind: "User".into(),
                    name: "jane".into(),
                    ..Subject::default()
                },
                Subject {
                    kind: "Robot".into(),
                    name: "".into(),
                    ..Subject::default()
                },
                Subject {
                    api_group: Some("v1".into()),
                    ..sa("Bad_Name", Some("ns"))
                },
            ]),
        };
        default_cluster_role_binding(&mut c);
        assert_eq!(
            c.subjects
                .as_ref()
                .and_then(|s| s[1].api_group.clone())
                .as_deref(),
            Some(GROUP)
        );
        assert_eq!(
            msgs(&validate_cluster_role_binding(&c)),
            [
                "roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[0].namespace: Required value",
                "subjects[2].name: Required value",
                "subjects[2].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                "subjects[3].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "subjects[3].apiGroup: Unsupported value: \"v1\": supported values: \"\"",
            ]
        );
    }

    #[test]
    fn role_ref_is_immutable() {
        let old = binding("ClusterRole", "view", vec![]);
        let new = binding("ClusterRole", "edit", vec![]);
        assert_eq!(
            aggregate_message(&validate_role_binding_update(&new, &old)),
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
        );
        assert!(validate_role_binding_update(&old, &old).is_empty());
    }

    #[test]
    fn bootstrap_policy_is_valid() {
        let roles = bootstrap_cluster_roles();
        let names: Vec<_> = roles
            .iter()
            .filter_map(|r| r.metadata.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "cluster-admin",
                "system:discovery",
                "system:public-info-viewer",
                "system:basic-user",
                "system:service-account-issuer-discovery",
                "admin",
                "edit",
                "view"
            ]
        );
        for r in &roles {
            assert!(validate_cluster_role(r).is_empty(), "{:?}", r.metadata.name);
        }
        for b in bootstrap_cluster_role_bindings() {
            assert!(validate_cluster_role_binding(&b).is_empty());
        }
    }

    #[test]
    fn subjects_as_the_wide_columns_show_them() {
        let subjects = [
            sa("flannel", Some("kube-flannel")),
            Subject {
                kind: "User".into(),
                name: "jane".into(),
                ..Subject::default()
            },
            Subject {
                kind: "Group".into(),
                name: "system:masters".into(),
                ..Subject::default()
            },
            Subject {
                kind: "User".into(),
                name: "joe".into(),
                ..Subject::default()
            },
        ];
        assert_eq!(
            subjects_strings(&subjects),
            (
                "jane, joe".to_string(),
                "system:masters".to_string(),
                "kube-flannel/flannel".to_string()
            )
        );
    }

    #[test]
    fn rules_and_subjects_decide_as_rbac_does() {
        let r = |verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]| PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
            resources: Some(resources.iter().map(|s| s.to_string()).collect()),
            resource_names: (!names.is_empty())
                .then(|| names.iter().map(|s| s.to_string()).collect()),
            ..PolicyRule::default()
        };
        let req = |verb, group, resource, sub, name| Request {
            verb,
            group,
            resource,
            subresource: sub,
            name,
        };
        let read_pods = r(&["get", "list"], &[""], &["pods"], &[]);
        assert!(rule_allows(
            &read_pods,
            &req("list", "", "pods", None, None)
        ));
        assert!(!rule_allows(
            &read_pods,
            &req("delete", "", "pods", None, None)
        ));
        assert!(!rule_allows(
            &read_pods,
            &req("list", "apps", "pods", None, None)
        ));
        assert!(!rule_allows(
            &read_pods,
            &req("get", "", "pods", Some("log"), Some("p"))
        ));
        let logs = r(&["get"], &[""], &["pods/log"], &[]);
        assert!(rule_allows(
            &logs,
            &req("get", "", "pods", Some("log"), Some("p"))
        ));
        assert!(!rule_allows(
            &logs,
            &req("get", "", "pods", None, Some("p"))
        ));
        let every_sub = r(&["*"], &["*"], &["pods/*"], &[]);
        assert!(rule_allows(
            &every_sub,
            &req("create", "", "pods", Some("exec"), Some("p"))
        ));
        let one = r(&["get", "update"], &["apps"], &["daemonsets"], &["fluentd"]);
        assert!(rule_allows(
            &one,
            &req("update", "apps", "daemonsets", None, Some("fluentd"))
        ));
        assert!(!rule_allows(
            &one,
            &req("update", "apps", "daemonsets", None, Some("other"))
        ));
        assert!(!rule_allows(
            &one,
            &req("list", "apps", "daemonsets", None, None)
        ));
        let all = r(&["*"], &["*"], &["*"], &[]);
        assert!(rule_allows(
            &all,
            &req("deletecollection", "x.io", "things", Some("status"), None)
        ));

        let groups = vec!["devs".to_string(), "system:authenticated".to_string()];
        let sa = Subject {
            kind: "ServiceAccount".into(),
            name: "flannel".into(),
            ..Subject::default()
        };
        assert!(applies_to(
            &sa,
            "system:serviceaccount:kube-flannel:flannel",
            &[],
            "kube-flannel"
        ));
        assert!(!applies_to(
            &sa,
            "system:serviceaccount:default:flannel",
            &[],
            "kube-flannel"
        ));
        assert!(!applies_to(&sa, "system:serviceaccount::flannel", &[], ""));
        let user = Subject {
            kind: "User".into(),
            name: "bob".into(),
            ..Subject::default()
        };
        assert!(applies_to(&user, "bob", &groups, ""));
        assert!(!applies_to(&user, "alice", &groups, ""));
        let group = Subject {
            kind: "Group".into(),
            name: "devs".into(),
            ..Subject::default()
        };
        assert!(applies_to(&group, "alice", &groups, ""));
        assert!(!applies_to(&group, "alice", &[], ""));
    }
}
