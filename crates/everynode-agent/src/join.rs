//! Joining a cluster over the network, the way kubeadm and the kubelet do it.
//!
//! 1. **Trust the server** ([`discover_ca`]): fetch the ConfigMap `kube-public/cluster-info`
//!    over TLS *without* verifying the server (nothing is trusted yet, and no secret is
//!    sent), and accept the CA it publishes only if the SHA-256 hash of its public key
//!    matches the `sha256:<hex>` the administrator gave (`--ca-cert-hash`). Or take the CA
//!    from a file. From then on every connection verifies the server against that CA.
//! 2. **Ask for an identity** ([`join`]): with the bootstrap token (user
//!    `system:bootstrap:<id>`), generate a key locally and create a
//!    CertificateSigningRequest for CN `system:node:<name>`, O `system:nodes`, signer
//!    `kubernetes.io/kube-apiserver-client-kubelet`. The cluster's approver and signer
//!    answer with a certificate.
//! 3. **Keep it** in the state directory (`node.key`, `node.crt`, `ca.crt`, `kubeconfig`,
//!    keys 0600) and reuse it on the next start: no new request. Certificates last a year;
//!    renewing them before they expire is not done yet (a restart after expiry joins again
//!    with a token).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

/// The signer of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// Errors of joining, each saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{0}")]
    Refused(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Kube {
        context: String,
        source: kube::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> JoinError {
    let context = context.into();
    move |source| JoinError::Io { context, source }
}

fn kube_err(context: impl Into<String>) -> impl FnOnce(kube::Error) -> JoinError {
    let context = context.into();
    move |source| JoinError::Kube { context, source }
}

fn refused(msg: impl Into<String>) -> JoinError {
    JoinError::Refused(msg.into())
}

/// How the agent decides to trust the API server.
#[derive(Clone, Debug)]
pub enum CaTrust {
    /// `sha256:<hex>` of the CA's SubjectPublicKeyInfo (kubeadm's `--discovery-token-ca-cert-hash`).
    Hash(String),
    /// The CA certificate itself, PEM.
    Pem(String),
}

/// What `everynode agent` needs to join.
#[derive(Clone, Debug)]
pub struct JoinConfig {
    /// `https://host:port` of the API server.
    pub server: String,
    /// The bootstrap token `<id>.<secret>`; needed only when no credential is stored yet.
    pub token: Option<String>,
    pub node_name: String,
    pub trust: Option<CaTrust>,
    pub state_dir: PathBuf,
    /// How long to wait for the request to be approved and signed.
    pub approval_timeout: Duration,
}

/// The result: a kubeconfig with the node's own client certificate, and the CA.
#[derive(Clone, Debug)]
pub struct NodeCredential {
    pub kubeconfig: PathBuf,
    pub ca_pem: String,
    /// Whether this start requested a new certificate (false: reused from the state dir).
    pub fresh: bool,
}

/// `sha256:<hex>` of the PEM certificate's SubjectPublicKeyInfo, as kubeadm prints it.
pub fn ca_cert_hash(ca_pem: &str) -> Result<String, JoinError> {
    let der = first_certificate_der(ca_pem)?;
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der)
        .map_err(|e| refused(format!("the CA certificate does not parse: {e}")))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

fn first_certificate_der(pem: &str) -> Result<Vec<u8>, JoinError> {
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| refused(format!("reading a PEM certificate: {e}")))?;
        if block.label == "CERTIFICATE" {
            return Ok(block.contents);
        }
    }
    Err(refused("no PEM CERTIFICATE block"))
}

/// Normalises a `--ca-cert-hash` value: `sha256:` followed by 64 hex digits.
pub fn parse_hash(h: &str) -> Result<String, JoinError> {
    let h = h.trim().to_ascii_lowercase();
    let hex = h.strip_prefix("sha256:").unwrap_or(&h);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused(format!(
            "--ca-cert-hash {h:?} is not of the form sha256:<64 hex digits>"
        )));
    }
    Ok(format!("sha256:{hex}"))
}

/// The CA inside a kubeconfig's first cluster (`certificate-authority-data`).
fn kubeconfig_ca(kubeconfig_yaml: &str) -> Result<String, JoinError> {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig_yaml)
        .map_err(|e| refused(format!("cluster-info holds no kubeconfig: {e}")))?;
    let data = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .ok_or_else(|| refused("cluster-info's kubeconfig names no certificate-authority-data"))?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| refused(format!("cluster-info's CA is not base64: {e}")))?;
    String::from_utf8(pem).map_err(|_| refused("cluster-info's CA is not PEM"))
}

/// Fetches `kube-public/cluster-info` without verifying the server, and returns the CA
/// it publishes if its public key hashes to `expected`.
pub async fn discover_ca(server: &str, expected: &str) -> Result<String, JoinError> {
    let expected = parse_hash(expected)?;
    let url: http::Uri = server
        .parse()
        .map_err(|e| refused(format!("--server {server:?}: {e}")))?;
    let mut cfg = kube::Config::new(url);
    // Nothing is trusted yet; what comes back is checked against the hash below, and
    // no credential is sent on this connection.
    cfg.accept_invalid_certs = true;
    cfg.connect_timeout = Some(Duration::from_secs(10));
    cfg.read_timeout = Some(Duration::from_secs(10));
    let client = kube::Client::try_from(cfg).map_err(kube_err("building a discovery client"))?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "kube-public");
    let cm = cms.get("cluster-info").await.map_err(kube_err(format!(
        "reading kube-public/cluster-info from {server}"
    )))?;
    let kubeconfig = cm
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .ok_or_else(|| refused("kube-public/cluster-info has no kubeconfig entry"))?;
    let ca = kubeconfig_ca(kubeconfig)?;
    let got = ca_cert_hash(&ca)?;
    if got != expected {
        return Err(refused(format!(
            "the cluster CA at {server} has public key hash {got}, not {expected} (--ca-cert-hash): refusing to join"
        )));
    }
    Ok(ca)
}

pub fn write_private(path: &Path, content: &[u8]) -> Result<(), JoinError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("writing {}", path.display())))?;
    f.write_all(content)
        .map_err(io(format!("writing {}", path.display())))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// A kubeconfig for `server` trusting `ca_pem`, authenticating with `user` (YAML of
/// the `user:` entry's fields).
fn kubeconfig_text(server: &str, ca_pem: &str, user_name: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  name: everynode\ncontexts:\n- context:\n    cluster: everynode\n    user: {user_name}\n  name: everynode\ncurrent-context: everynode\npreferences: {{}}\nusers:\n- name: {user_name}\n  user:\n{user}",
        b64(ca_pem)
    )
}

/// A kube client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, JoinError> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| refused(format!("reading {}: {e}", path.display())))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| refused(format!("kubeconfig {}: {e}", path.display())))?;
    kube::Client::try_from(cfg).map_err(kube_err("building a client"))
}

/// The subject CN and the end of validity of a PEM certificate.
fn cert_subject_and_expiry(pem: &str) -> Result<(String, i64), JoinError> {
    use x509_parser::prelude::FromDer;
    let der = first_certificate_der(pem)?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der)
        .map_err(|e| refused(format!("the node certificate does not parse: {e}")))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("")
        .to_string();
    Ok((cn, cert.validity().not_after.timestamp()))
}

/// The credential stored by an earlier join, if it is for this node and still valid.
fn stored_credential(cfg: &JoinConfig) -> Result<Option<NodeCredential>, JoinError> {
    let dir = &cfg.state_dir;
    let (crt, kc, ca) = (
        dir.join("node.crt"),
        dir.join("kubeconfig"),
        dir.join("ca.crt"),
    );
    if !(crt.exists() && kc.exists() && ca.exists()) {
        return Ok(None);
    }
    let pem = std::fs::read_to_string(&crt).map_err(io(format!("reading {}", crt.display())))?;
    let (cn, not_after) = cert_subject_and_expiry(&pem)?;
    let want = format!("system:node:{}", cfg.node_name);
    if cn != want {
        return Err(refused(format!(
            "the state directory {} holds the credential of {cn:?}, not {want:?}: use another --state-dir",
            dir.display()
        )));
    }
    if not_after <= jiff::Timestamp::now().as_second() + 60 {
        tracing::warn!("the stored node certificate has expired; joining again");
        return Ok(None);
    }
    let ca_pem = std::fs::read_to_string(&ca).map_err(io(format!("reading {}", ca.display())))?;
    Ok(Some(NodeCredential {
        kubeconfig: kc,
        ca_pem,
        fresh: false,
    }))
}

/// Joins (or finds the credential of an earlier join) and returns the node's credential.
pub async fn join(cfg: &JoinConfig) -> Result<NodeCredential, JoinError> {
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(io(format!("creating {}", cfg.state_dir.display())))?;
    if let Some(c) = stored_credential(cfg)? {
        return Ok(c);
    }
    let token = cfg.token.as_deref().ok_or_else(|| {
        refused("no credential in the state directory yet: a join token (--token-file) is needed")
    })?;
    let ca_pem = match &cfg.trust {
        Some(CaTrust::Pem(p)) => {
            ca_cert_hash(p)?; // parses
            p.clone()
        }
        Some(CaTrust::Hash(h)) => discover_ca(&cfg.server, h).await?,
        None => {
            return Err(refused(
                "joining needs --ca-cert-hash sha256:<hex> (printed with the join command) or --ca-file",
            ));
        }
    };
    let dir = &cfg.state_dir;
    let boot_path = dir.join("bootstrap-kubeconfig");
    write_private(
        &boot_path,
        kubeconfig_text(
            &cfg.server,
            &ca_pem,
            "bootstrap",
            &format!("    token: {}\n", token.trim()),
        )
        .as_bytes(),
    )?;
    let client = client_from_kubeconfig(&boot_path).await?;

    let key = rcgen::KeyPair::generate().map_err(|e| refused(format!("generating a key: {e}")))?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| refused(e.to_string()))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::OrganizationName,
        crate::join::NODES_GROUP.to_string(),
    );
    dn.push(
        rcgen::DnType::CommonName,
        format!("system:node:{}", cfg.node_name),
    );
    params.distinguished_name = dn;
    let request = params
        .serialize_request(&key)
        .map_err(|e| refused(format!("building the certificate request: {e}")))?
        .pem()
        .map_err(|e| refused(format!("encoding the certificate request: {e}")))?;
    let key_pem = key.serialize_pem();
    write_private(&dir.join("node.key"), key_pem.as_bytes())?;

    let csrs: Api<CertificateSigningRequest> = Api::all(client);
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": { "generateName": "node-csr-" },
        "spec": {
            "request": b64(&request),
            "signerName": KUBELET_CLIENT_SIGNER,
            "usages": ["digital signature", "client auth"],
        },
    }))
    .map_err(|e| refused(e.to_string()))?;
    let created = csrs.create(&PostParams::default(), &csr).await.map_err(|e| {
        match &e {
            kube::Error::Api(s) if s.code == 401 => refused(
                "the API server refused the join token (401 Unauthorized): it is unknown, expired or mistyped; create one with `everynode token create`",
            ),
            _ => JoinError::Kube { context: "creating the certificate signing request".into(), source: e },
        }
    })?;
    let name = created.metadata.name.unwrap_or_default();
    tracing::info!(csr = %name, "certificate signing request created; waiting for approval");
    let cert_pem = wait_for_certificate(&csrs, &name, cfg.approval_timeout).await?;
    std::fs::write(dir.join("node.crt"), &cert_pem).map_err(io("writing node.crt"))?;
    std::fs::write(dir.join("ca.crt"), &ca_pem).map_err(io("writing ca.crt"))?;
    let kc = dir.join("kubeconfig");
    let user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&cert_pem),
        b64(&key_pem)
    );
    write_private(
        &kc,
        kubeconfig_text(
            &cfg.server,
            &ca_pem,
            &format!("system:node:{}", cfg.node_name),
            &user,
        )
        .as_bytes(),
    )?;
    let _ = std::fs::remove_file(&boot_path);
    Ok(NodeCredential {
        kubeconfig: kc,
        ca_pem,
        fresh: true,
    })
}

/// Waits until CSR `name` carries a certificate; Denied or Failed end the wait.
async fn wait_for_certificate(
    csrs: &Api<CertificateSigningRequest>,
    name: &str,
    timeout: Duration,
) -> Result<String, JoinError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match csrs.get(name).await {
            Ok(c) => {
                let status = c.status.unwrap_or_default();
                if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
                    return String::from_utf8(cert.0)
                        .map_err(|_| refused("the issued certificate is not PEM"));
                }
                for cond in status.conditions.unwrap_or_default() {
                    if cond.type_ == "Denied" || cond.type_ == "Failed" {
                        return Err(refused(format!(
                            "certificate signing request {name} {}: {}",
                            cond.type_.to_lowercase(),
                            cond.message.unwrap_or_default()
                        )));
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading the certificate signing request"),
        }
        if tokio::time::Instant::now() > deadline {
            return Err(refused(format!(
                "certificate signing request {name} was not approved and signed within {timeout:?} (approve it with `kubectl certificate approve {name}`)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The signer of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// A serving certificate for this node (for an agent's own TLS endpoint, e.g. logs),
/// signed by the cluster CA for `names` (IP addresses and DNS names, which must be the
/// node's name or addresses its Node reports, or the approver leaves the request to a
/// human). Returns `(certificate PEM, key PEM)`, kept in `state_dir` as `serving.crt` and
/// `serving.key` and reused while valid for more than a day and for the same names.
/// `client` is the node's own (from [`join`]).
pub async fn serving_certificate(
    client: &kube::Client,
    state_dir: &Path,
    node_name: &str,
    names: &[String],
    timeout: Duration,
) -> Result<(String, String), JoinError> {
    let (crt, key) = (state_dir.join("serving.crt"), state_dir.join("serving.key"));
    if let (Ok(c), Ok(k)) = (std::fs::read_to_string(&crt), std::fs::read_to_string(&key))
        && let Ok((_, not_after, sans)) = cert_facts(&c)
        && not_after > jiff::Timestamp::now().as_second() + 86400
        && same_set(&sans, names)
    {
        return Ok((c, k));
    }
    let key_pair =
        rcgen::KeyPair::generate().map_err(|e| refused(format!("generating a key: {e}")))?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| refused(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, NODES_GROUP);
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("system:node:{node_name}"),
    );
    for n in names {
        params
            .subject_alt_names
            .push(match n.parse::<std::net::IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName(
                    n.clone()
                        .try_into()
                        .map_err(|e| refused(format!("{n:?} is not a DNS name: {e}")))?,
                ),
            });
    }
    let request = params
        .serialize_request(&key_pair)
        .and_then(|r| r.pem())
        .map_err(|e| refused(format!("building the certificate request: {e}")))?;
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": { "generateName": "csr-" },
        "spec": {
            "request": b64(&request),
            "signerName": KUBELET_SERVING_SIGNER,
            "usages": ["digital signature", "server auth"],
        },
    }))
    .map_err(|e| refused(e.to_string()))?;
    let created = csrs
        .create(&PostParams::default(), &csr)
        .await
        .map_err(kube_err("creating the serving certificate request"))?;
    let name = created.metadata.name.unwrap_or_default();
    let cert_pem = wait_for_certificate(&csrs, &name, timeout).await?;
    let key_pem = key_pair.serialize_pem();
    write_private(&key, key_pem.as_bytes())?;
    std::fs::write(&crt, &cert_pem).map_err(io(format!("writing {}", crt.display())))?;
    Ok((cert_pem, key_pem))
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// The subject CN, end of validity and DNS/IP names of a PEM certificate.
fn cert_facts(pem: &str) -> Result<(String, i64, Vec<String>), JoinError> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::FromDer;
    let der = first_certificate_der(pem)?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der)
        .map_err(|e| refused(format!("the certificate does not parse: {e}")))?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => sans.push(d.to_string()),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    sans.extend(ip.map(|i| i.to_string()));
                }
                _ => {}
            }
        }
    }
    let (cn, not_after) = cert_subject_and_expiry(pem)?;
    Ok((cn, not_after, sans))
}

/// The group node identities belong to.
pub const NODES_GROUP: &str = "system:nodes";

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn hashes_are_of_the_public_key_and_parse_back() {
        let a = ca();
        let h = ca_cert_hash(&a).unwrap();
        assert!(h.starts_with("sha256:") && h.len() == 7 + 64, "{h}");
        assert_eq!(ca_cert_hash(&a).unwrap(), h);
        assert_ne!(ca_cert_hash(&ca()).unwrap(), h);
        assert_eq!(
            parse_hash(&h.to_uppercase().replace("SHA256", "sha256")).unwrap(),
            h
        );
        assert_eq!(parse_hash(h.trim_start_matches("sha256:")).unwrap(), h);
        assert!(parse_hash("sha256:abc").is_err());
        assert!(parse_hash(&format!("{}zz", &h[..h.len() - 2])).is_err());
    }

    #[test]
    fn cluster_info_kubeconfig_yields_its_ca() {
        let a = ca();
        let kc = kubeconfig_text("https://127.0.0.1:6443", &a, "x", "    token: t\n");
        assert_eq!(kubeconfig_ca(&kc).unwrap(), a);
        assert!(kubeconfig_ca("apiVersion: v1\nkind: Config\nclusters: []\n").is_err());
    }

    #[test]
    fn a_state_dir_of_another_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:other");
        p.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let cert = p.self_signed(&key).unwrap().pem();
        std::fs::write(dir.path().join("node.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("ca.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("kubeconfig"), "x").unwrap();
        let cfg = JoinConfig {
            server: "https://127.0.0.1:1".into(),
            token: None,
            node_name: "mine".into(),
            trust: None,
            state_dir: dir.path().to_path_buf(),
            approval_timeout: Duration::from_secs(1),
        };
        let e = stored_credential(&cfg).unwrap_err().to_string();
        assert!(e.contains("system:node:other"), "{e}");
        let cfg = JoinConfig {
            node_name: "other".into(),
            ..cfg
        };
        assert!(stored_credential(&cfg).unwrap().is_some());
    }
}
