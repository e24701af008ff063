//! What to do with a CertificateSigningRequest, decided from the request alone.
//!
//! Two controllers, as in kube-controller-manager:
//! - the approver ([`approval`], like `csrapproving`) approves kubelet client
//!   certificates (signer `kubernetes.io/kube-apiserver-client-kubelet`) asked for by a
//!   bootstrap identity (`system:bootstrappers`: a machine joining) or by the node itself
//!   (renewal), when the request is exactly a node client certificate: CN
//!   `system:node:<name>`, O `system:nodes`, no subject alternative names, client-auth
//!   usages only. Anything else is left for a human (`kubectl certificate approve`).
//!   It also approves kubelet *serving* certificates (signer `kubernetes.io/kubelet-serving`,
//!   which kube-controller-manager leaves to a human) when a node asks for itself and every
//!   name in the request is one of the addresses its Node reports, so that agents can
//!   serve over TLS the API server verifies.
//! - the signer ([`signing`], like `csrsigning`) issues approved requests for those
//!   signers from the cluster CA, or marks them `Failed` when they do not fit the profile.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

/// The signer of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The signer of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// What kind of certificate the signer issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Client auth, no alternative names (the node's identity toward the API server).
    KubeletClient,
    /// Server auth, for the DNS names and IP addresses in the request.
    KubeletServing,
}
pub const NODE_USER_PREFIX: &str = "system:node:";
pub const NODES_GROUP: &str = "system:nodes";
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

/// What the PKCS#10 request inside a CSR asks for (parsed by the caller).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub common_name: String,
    pub organizations: Vec<String>,
    /// Any DNS, IP, e-mail or URI subject alternative name.
    pub has_sans: bool,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    /// An e-mail or URI alternative name.
    pub other_sans: bool,
}

fn conditions(csr: &CertificateSigningRequest) -> impl Iterator<Item = &str> {
    csr.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .map(|c| c.type_.as_str())
}

fn decided(csr: &CertificateSigningRequest) -> bool {
    conditions(csr).any(|t| t == "Approved" || t == "Denied")
}

/// The node a `system:node:<name>` subject names.
pub fn subject_node(info: &RequestInfo) -> Option<&str> {
    info.common_name
        .strip_prefix(NODE_USER_PREFIX)
        .filter(|n| !n.is_empty())
}

/// Why `csr` is not a kubelet serving certificate request of a node for itself, if it is
/// not one. With `addresses` (the node's own: its name and `status.addresses`), every
/// requested name must be among them.
pub fn node_serving_problem(
    csr: &CertificateSigningRequest,
    info: &RequestInfo,
    addresses: Option<&[String]>,
) -> Option<String> {
    if csr.spec.signer_name != KUBELET_SERVING_SIGNER {
        return Some(format!("signer is not {KUBELET_SERVING_SIGNER}"));
    }
    if info.organizations != [NODES_GROUP] {
        return Some(format!("subject organization is not {NODES_GROUP}"));
    }
    let Some(node) = subject_node(info) else {
        return Some(format!(
            "subject common name does not begin with {NODE_USER_PREFIX}"
        ));
    };
    if info.other_sans {
        return Some("only DNS and IP subject alternative names are allowed".into());
    }
    if info.dns_names.is_empty() && info.ip_addresses.is_empty() {
        return Some("at least one DNS or IP subject alternative name is required".into());
    }
    let usages = csr.spec.usages.clone().unwrap_or_default();
    let allowed = ["digital signature", "key encipherment", "server auth"];
    if !usages.iter().any(|u| u == "server auth")
        || usages.iter().any(|u| !allowed.contains(&u.as_str()))
    {
        return Some(
            "usages must be server auth, optionally with digital signature and key encipherment"
                .into(),
        );
    }
    if let Some(addresses) = addresses
        && let Some(stray) = info
            .dns_names
            .iter()
            .chain(&info.ip_addresses)
            .find(|n| !addresses.contains(n))
    {
        return Some(format!("{stray} is not an address of node {node}"));
    }
    None
}

/// Why `csr` is not a kubelet client certificate request, if it is not one.
pub fn node_client_problem(csr: &CertificateSigningRequest, info: &RequestInfo) -> Option<String> {
    if csr.spec.signer_name != KUBELET_CLIENT_SIGNER {
        return Some(format!("signer is not {KUBELET_CLIENT_SIGNER}"));
    }
    if info.organizations != [NODES_GROUP] {
        return Some(format!("subject organization is not {NODES_GROUP}"));
    }
    match info.common_name.strip_prefix(NODE_USER_PREFIX) {
        Some(n) if !n.is_empty() => {}
        _ => {
            return Some(format!(
                "subject common name does not begin with {NODE_USER_PREFIX}"
            ));
        }
    }
    if info.has_sans {
        return Some("subject alternative names are not allowed".into());
    }
    let usages = csr.spec.usages.clone().unwrap_or_default();
    let allowed = ["digital signature", "key encipherment", "client auth"];
    if !usages.iter().any(|u| u == "client auth")
        || usages.iter().any(|u| !allowed.contains(&u.as_str()))
    {
        return Some(
            "usages must be client auth, optionally with digital signature and key encipherment"
                .into(),
        );
    }
    None
}

/// The approver's decision: `Some((reason, message))` to approve. `node_addresses` are
/// the addresses of the node a serving request names (its name included), if it exists.
pub fn approval(
    csr: &CertificateSigningRequest,
    info: Option<&RequestInfo>,
    node_addresses: Option<&[String]>,
) -> Option<(&'static str, String)> {
    if decided(csr) {
        return None;
    }
    let info = info?;
    let groups = csr.spec.groups.clone().unwrap_or_default();
    let user = csr.spec.username.as_deref().unwrap_or("");
    if csr.spec.signer_name == KUBELET_SERVING_SIGNER {
        let itself = user == info.common_name && groups.iter().any(|g| g == NODES_GROUP);
        let addresses = node_addresses?;
        return (itself && node_serving_problem(csr, info, Some(addresses)).is_none()).then(|| {
            (
                "AutoApproved",
                "Auto approving kubelet serving certificate: the node asks for its own addresses."
                    .into(),
            )
        });
    }
    if node_client_problem(csr, info).is_some() {
        return None;
    }
    let bootstrap = groups.iter().any(|g| g == BOOTSTRAPPERS_GROUP);
    let renewal = user == info.common_name && groups.iter().any(|g| g == NODES_GROUP);
    if bootstrap {
        Some((
            "AutoApproved",
            "Auto approving kubelet client certificate after SubjectAccessReview.".into(),
        ))
    } else if renewal {
        Some((
            "AutoApproved",
            "Auto approving self kubelet client certificate after SubjectAccessReview.".into(),
        ))
    } else {
        None
    }
}

/// The signer's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signing {
    /// Not ours, not approved, already issued or already failed.
    Nothing,
    /// Issue a certificate of this profile for this long (seconds).
    Sign { seconds: i64, profile: Profile },
    /// Approved, but the request does not fit the signer's profile.
    Fail(String),
}

/// Longest and default lifetime of an issued kubelet client certificate (one year, as
/// kube-controller-manager's `--cluster-signing-duration`).
pub const MAX_SECONDS: i64 = 365 * 24 * 3600;

pub fn signing(csr: &CertificateSigningRequest, info: Option<&RequestInfo>) -> Signing {
    let profile = match csr.spec.signer_name.as_str() {
        KUBELET_CLIENT_SIGNER => Profile::KubeletClient,
        KUBELET_SERVING_SIGNER => Profile::KubeletServing,
        _ => return Signing::Nothing,
    };
    let approved = conditions(csr).any(|t| t == "Approved");
    let finished = conditions(csr).any(|t| t == "Denied" || t == "Failed")
        || csr
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some_and(|c| !c.0.is_empty());
    if !approved || finished {
        return Signing::Nothing;
    }
    let Some(info) = info else {
        return Signing::Fail("the request does not parse".into());
    };
    let problem = match profile {
        Profile::KubeletClient => node_client_problem(csr, info),
        Profile::KubeletServing => node_serving_problem(csr, info, None),
    };
    if let Some(problem) = problem {
        return Signing::Fail(problem);
    }
    let seconds = csr
        .spec
        .expiration_seconds
        .map(i64::from)
        .unwrap_or(MAX_SECONDS)
        .clamp(600, MAX_SECONDS);
    Signing::Sign { seconds, profile }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestSpec,
        CertificateSigningRequestStatus,
    };

    fn csr(user: &str, groups: &[&str], usages: &[&str]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                signer_name: KUBELET_CLIENT_SIGNER.into(),
                username: Some(user.into()),
                groups: Some(groups.iter().map(|g| g.to_string()).collect()),
                usages: Some(usages.iter().map(|u| u.to_string()).collect()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn node_info(name: &str) -> RequestInfo {
        RequestInfo {
            common_name: format!("system:node:{name}"),
            organizations: vec!["system:nodes".into()],
            ..RequestInfo::default()
        }
    }

    fn with_conditions(
        mut c: CertificateSigningRequest,
        types: &[&str],
    ) -> CertificateSigningRequest {
        c.status = Some(CertificateSigningRequestStatus {
            conditions: Some(
                types
                    .iter()
                    .map(|t| CertificateSigningRequestCondition {
                        type_: t.to_string(),
                        status: "True".into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        c
    }

    const BOOT: &[&str] = &["system:bootstrappers", "system:authenticated"];
    const USAGES: &[&str] = &["digital signature", "client auth"];

    #[test]
    fn approval_table() {
        let n1 = node_info("n1");
        let mut other_org = node_info("n1");
        other_org.organizations = vec!["system:masters".into()];
        let mut admin_cn = node_info("n1");
        admin_cn.common_name = "admin".into();
        let mut sans = node_info("n1");
        sans.has_sans = true;
        let mut other_signer = csr("system:bootstrap:abcdef", BOOT, USAGES);
        other_signer.spec.signer_name = "kubernetes.io/kube-apiserver-client".into();
        let nodes = &["system:nodes", "system:authenticated"];
        // (name, csr, parsed request, approved)
        let cases: Vec<(&str, CertificateSigningRequest, Option<RequestInfo>, bool)> = vec![
            (
                "bootstrap asks for a node cert",
                csr("system:bootstrap:abcdef", BOOT, USAGES),
                Some(n1.clone()),
                true,
            ),
            (
                "node renews its own",
                csr("system:node:n1", nodes, USAGES),
                Some(n1.clone()),
                true,
            ),
            (
                "node asks for another node",
                csr("system:node:n2", nodes, USAGES),
                Some(n1.clone()),
                false,
            ),
            (
                "someone else",
                csr("alice", &["devs"], USAGES),
                Some(n1.clone()),
                false,
            ),
            (
                "masters organization",
                csr("system:bootstrap:abcdef", BOOT, USAGES),
                Some(other_org),
                false,
            ),
            (
                "not a node name",
                csr("system:bootstrap:abcdef", BOOT, USAGES),
                Some(admin_cn),
                false,
            ),
            (
                "with SANs",
                csr("system:bootstrap:abcdef", BOOT, USAGES),
                Some(sans),
                false,
            ),
            (
                "server auth usage",
                csr(
                    "system:bootstrap:abcdef",
                    BOOT,
                    &["client auth", "server auth"],
                ),
                Some(n1.clone()),
                false,
            ),
            (
                "no client auth",
                csr("system:bootstrap:abcdef", BOOT, &["digital signature"]),
                Some(n1.clone()),
                false,
            ),
            ("other signer", other_signer, Some(n1.clone()), false),
            (
                "unparsable",
                csr("system:bootstrap:abcdef", BOOT, USAGES),
                None,
                false,
            ),
            (
                "already approved",
                with_conditions(csr("system:bootstrap:abcdef", BOOT, USAGES), &["Approved"]),
                Some(n1.clone()),
                false,
            ),
            (
                "denied by a human",
                with_conditions(csr("system:bootstrap:abcdef", BOOT, USAGES), &["Denied"]),
                Some(n1.clone()),
                false,
            ),
        ];
        for (name, c, info, want) in cases {
            assert_eq!(approval(&c, info.as_ref(), None).is_some(), want, "{name}");
        }
    }

    #[test]
    fn serving_certificates_for_a_nodes_own_addresses() {
        let serving = |user: &str, groups: &[&str], usages: &[&str]| {
            let mut c = csr(user, groups, usages);
            c.spec.signer_name = KUBELET_SERVING_SIGNER.into();
            c
        };
        let nodes = &["system:nodes", "system:authenticated"];
        let server = &["digital signature", "server auth"];
        let addrs: Vec<String> = vec!["n1".into(), "172.16.0.1".into()];
        let info = |dns: &[&str], ips: &[&str]| RequestInfo {
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ip_addresses: ips.iter().map(|s| s.to_string()).collect(),
            has_sans: true,
            ..node_info("n1")
        };
        let own = info(&["n1"], &["172.16.0.1"]);
        // (name, request, parsed request, the node's addresses, approved)
        type Case<'a> = (
            &'a str,
            CertificateSigningRequest,
            RequestInfo,
            Option<&'a [String]>,
            bool,
        );
        let cases: Vec<Case> = vec![
            (
                "its own addresses",
                serving("system:node:n1", nodes, server),
                own.clone(),
                Some(&addrs),
                true,
            ),
            (
                "a stray IP",
                serving("system:node:n1", nodes, server),
                info(&[], &["10.9.9.9"]),
                Some(&addrs),
                false,
            ),
            (
                "a stray name",
                serving("system:node:n1", nodes, server),
                info(&["evil.example"], &[]),
                Some(&addrs),
                false,
            ),
            (
                "no names",
                serving("system:node:n1", nodes, server),
                info(&[], &[]),
                Some(&addrs),
                false,
            ),
            (
                "another node asks",
                serving("system:node:n2", nodes, server),
                own.clone(),
                Some(&addrs),
                false,
            ),
            (
                "a bootstrap token asks",
                serving("system:bootstrap:abcdef", BOOT, server),
                own.clone(),
                Some(&addrs),
                false,
            ),
            (
                "client usage",
                serving("system:node:n1", nodes, USAGES),
                own.clone(),
                Some(&addrs),
                false,
            ),
            (
                "node unknown",
                serving("system:node:n1", nodes, server),
                own.clone(),
                None,
                false,
            ),
        ];
        for (name, c, i, a, want) in cases {
            assert_eq!(approval(&c, Some(&i), a).is_some(), want, "{name}");
        }
        let approved = with_conditions(serving("system:node:n1", nodes, server), &["Approved"]);
        assert_eq!(
            signing(&approved, Some(&own)),
            Signing::Sign {
                seconds: MAX_SECONDS,
                profile: Profile::KubeletServing
            }
        );
        // The signer checks the profile, not the addresses (the approval did).
        assert!(matches!(
            signing(&approved, Some(&info(&[], &[]))),
            Signing::Fail(_)
        ));
    }

    #[test]
    fn signing_table() {
        let n1 = node_info("n1");
        let pending = csr("system:bootstrap:abcdef", BOOT, USAGES);
        assert_eq!(signing(&pending, Some(&n1)), Signing::Nothing);
        let approved = with_conditions(pending.clone(), &["Approved"]);
        assert_eq!(
            signing(&approved, Some(&n1)),
            Signing::Sign {
                seconds: MAX_SECONDS,
                profile: Profile::KubeletClient
            }
        );
        let mut short = approved.clone();
        short.spec.expiration_seconds = Some(3600);
        assert_eq!(
            signing(&short, Some(&n1)),
            Signing::Sign {
                seconds: 3600,
                profile: Profile::KubeletClient
            }
        );
        let mut issued = approved.clone();
        if let Some(s) = issued.status.as_mut() {
            s.certificate = Some(ByteString(b"pem".to_vec()));
        }
        assert_eq!(signing(&issued, Some(&n1)), Signing::Nothing);
        assert_eq!(
            signing(
                &with_conditions(pending.clone(), &["Approved", "Failed"]),
                Some(&n1)
            ),
            Signing::Nothing
        );
        // Approved by a human, but not a node client certificate: the signer refuses.
        let mut masters = n1.clone();
        masters.organizations = vec!["system:masters".into()];
        assert!(matches!(
            signing(&approved, Some(&masters)),
            Signing::Fail(_)
        ));
        let mut other = approved.clone();
        other.spec.signer_name = "example.com/other".into();
        assert_eq!(signing(&other, Some(&n1)), Signing::Nothing);
    }
}
