//! The data directory's credentials: a CA (created once), a serving certificate
//! (re-issued at every start for the current addresses), the admin bearer token, and
//! the kubeconfig kubectl uses as is.
//!
//! Files in DIR: `ca.crt`, `ca.key`, `server.crt`, `server.key`, `admin.token`,
//! `sa.key`/`sa.pub` (the ServiceAccount token key),
//! `kubeconfig` (0600), and `apiserver-kubelet-client.crt`/`.key`: the client
//! certificate the API server presents to node agents when it fetches container logs
//! (re-issued at every start, like the serving certificate). Keys and tokens are
//! written 0600.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use everynode_api::satoken::{Keys, pem, pem_der};
use everynode_controllers::csr::Profile;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub admin_token: String,
    /// The API server's client certificate towards node agents (signed by the CA).
    pub kubelet_client_cert_pem: String,
    pub kubelet_client_key_pem: String,
}

fn write_private(path: &Path, content: &[u8]) -> Result<(), String> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    f.write_all(content)
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn ca_params() -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "everynode-ca");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(p)
}

/// A fresh random token (256 bits, URL-safe base64).
pub fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Loads or creates the CA and the admin token in `dir`, and issues a serving
/// certificate for `hosts` (DNS names or IP addresses).
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<Pki, String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let ca_key_path = dir.join("ca.key");
    let ca_crt_path = dir.join("ca.crt");
    let (ca_key, ca_pem) = if ca_key_path.exists() && ca_crt_path.exists() {
        let key_pem = fs::read_to_string(&ca_key_path)
            .map_err(|e| format!("reading {}: {e}", ca_key_path.display()))?;
        let key =
            KeyPair::from_pem(&key_pem).map_err(|e| format!("{}: {e}", ca_key_path.display()))?;
        let pem = fs::read_to_string(&ca_crt_path)
            .map_err(|e| format!("reading {}: {e}", ca_crt_path.display()))?;
        (key, pem)
    } else {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = ca_params()?.self_signed(&key).map_err(|e| e.to_string())?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        fs::write(&ca_crt_path, cert.pem())
            .map_err(|e| format!("writing {}: {e}", ca_crt_path.display()))?;
        (key, cert.pem())
    };
    // The issuer needs only the CA's name, key usages and key, which are rebuilt here.
    let issuer = Issuer::new(ca_params()?, ca_key);

    let mut sp = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "everynode-apiserver");
    sp.distinguished_name = dn;
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    sp.not_before = rcgen::date_time_ymd(2024, 1, 1);
    sp.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let mut sans = vec![
        "localhost".to_string(),
        "127.0.0.1".into(),
        "::1".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
    ];
    for h in hosts {
        if !sans.contains(h) {
            sans.push(h.clone());
        }
    }
    for h in sans {
        let san = match h.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                h.clone()
                    .try_into()
                    .map_err(|e| format!("bad host name {h}: {e}"))?,
            ),
        };
        sp.subject_alt_names.push(san);
    }
    let server_key = KeyPair::generate().map_err(|e| e.to_string())?;
    let server_cert = sp
        .signed_by(&server_key, &issuer)
        .map_err(|e| e.to_string())?;
    let server_key_pem = server_key.serialize_pem();
    write_private(&dir.join("server.key"), server_key_pem.as_bytes())?;
    fs::write(dir.join("server.crt"), server_cert.pem())
        .map_err(|e| format!("writing server.crt: {e}"))?;

    // The API server's client certificate for node agents (kubeadm calls it
    // apiserver-kubelet-client): agents accept only this identity (or administrators)
    // from the CA, which also signs the node certificates.
    let mut cp = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kube-apiserver-kubelet-client");
    dn.push(DnType::OrganizationName, "kubeadm:cluster-admins");
    cp.distinguished_name = dn;
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    cp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    cp.not_before = rcgen::date_time_ymd(2024, 1, 1);
    cp.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let client_key = KeyPair::generate().map_err(|e| e.to_string())?;
    let client_cert = cp
        .signed_by(&client_key, &issuer)
        .map_err(|e| e.to_string())?;
    let kubelet_client_key_pem = client_key.serialize_pem();
    write_private(
        &dir.join("apiserver-kubelet-client.key"),
        kubelet_client_key_pem.as_bytes(),
    )?;
    fs::write(dir.join("apiserver-kubelet-client.crt"), client_cert.pem())
        .map_err(|e| format!("writing apiserver-kubelet-client.crt: {e}"))?;

    let token_path = dir.join("admin.token");
    let admin_token = match fs::read_to_string(&token_path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let t = random_token();
            write_private(&token_path, t.as_bytes())?;
            t
        }
    };
    Ok(Pki {
        ca_pem,
        server_cert_pem: server_cert.pem(),
        server_key_pem,
        admin_token,
        kubelet_client_cert_pem: client_cert.pem(),
        kubelet_client_key_pem,
    })
}

/// Loads or creates the ServiceAccount token key: `sa.key` (PKCS#8, 0600) and, beside
/// it, its public half `sa.pub` (for whoever checks tokens elsewhere), as kubeadm keeps
/// them. Tokens signed with it keep working across restarts.
pub fn service_account_keys(dir: &Path) -> Result<Keys, String> {
    let path = dir.join("sa.key");
    match fs::read_to_string(&path) {
        Ok(text) => {
            let der = pem_der(&text, "PRIVATE KEY")
                .ok_or_else(|| format!("{}: no PRIVATE KEY block", path.display()))?;
            Keys::from_pkcs8_der(&der).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = Keys::generate()?;
            write_private(&path, pem("PRIVATE KEY", keys.pkcs8_der()).as_bytes())?;
            fs::write(
                dir.join("sa.pub"),
                pem("PUBLIC KEY", &keys.public_key_der()),
            )
            .map_err(|e| format!("writing sa.pub: {e}"))?;
            Ok(keys)
        }
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// The address clients should use for a listen address (loopback for wildcards).
pub fn client_address(bound: SocketAddr) -> String {
    let ip = match bound.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    match ip {
        IpAddr::V6(v) => format!("[{v}]:{}", bound.port()),
        IpAddr::V4(v) => format!("{v}:{}", bound.port()),
    }
}

/// Writes `DIR/kubeconfig` (0600) for the admin user and returns its path.
pub fn write_kubeconfig(dir: &Path, pki: &Pki, server: &str) -> Result<PathBuf, String> {
    let ca = base64::engine::general_purpose::STANDARD.encode(pki.ca_pem.as_bytes());
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://{server}\n  name: everynode\ncontexts:\n- context:\n    cluster: everynode\n    user: admin\n  name: everynode\ncurrent-context: everynode\npreferences: {{}}\nusers:\n- name: admin\n  user:\n    token: {}\n",
        pki.admin_token
    );
    let path = dir.join("kubeconfig");
    write_private(&path, text.as_bytes())?;
    Ok(path)
}

/// The signer the CSR controller uses for kubelet certificates, signed by the CA in
/// `dir`, valid from a minute ago for `seconds`, with the request's subject and key:
/// client certificates with client-auth usage and no alternative names; serving
/// certificates with server-auth usage and the request's DNS and IP names.
pub fn kubelet_signer(dir: &Path) -> Result<everynode_controllers::csr::Signer, String> {
    let key_path = dir.join("ca.key");
    let key_pem = fs::read_to_string(&key_path)
        .map_err(|e| format!("reading {}: {e}", key_path.display()))?;
    let ca_key = KeyPair::from_pem(&key_pem).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let issuer = std::sync::Arc::new(Issuer::new(ca_params()?, ca_key));
    Ok(std::sync::Arc::new(
        move |request: &[u8], seconds: i64, profile: Profile| {
            let pem =
                std::str::from_utf8(request).map_err(|_| "the request is not PEM".to_string())?;
            let mut csr = rcgen::CertificateSigningRequestParams::from_pem(pem)
                .map_err(|e| format!("the request does not parse: {e}"))?;
            let now = time::OffsetDateTime::now_utc();
            let p = &mut csr.params;
            p.not_before = now - time::Duration::minutes(1);
            p.not_after = now + time::Duration::seconds(seconds.max(600));
            p.is_ca = IsCa::NoCa;
            match profile {
                Profile::KubeletClient => {
                    p.subject_alt_names.clear();
                    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                }
                Profile::KubeletServing => {
                    p.subject_alt_names
                        .retain(|n| matches!(n, SanType::DnsName(_) | SanType::IpAddress(_)));
                    p.key_usages = vec![
                        KeyUsagePurpose::DigitalSignature,
                        KeyUsagePurpose::KeyEncipherment,
                    ];
                    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                }
            }
            p.use_authority_key_identifier_extension = true;
            let serial: [u8; 16] = rand::random();
            p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
            csr.signed_by(&issuer)
                .map(|c| c.pem())
                .map_err(|e| format!("signing: {e}"))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signer_issues_client_certificates_the_ca_verifies() {
        use x509_parser::prelude::FromDer;
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &[]).unwrap();
        let sign = kubelet_signer(dir.path()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::OrganizationName, "system:nodes");
        p.distinguished_name
            .push(DnType::CommonName, "system:node:n1");
        let req = p.serialize_request(&key).unwrap().pem().unwrap();
        let cert_pem = sign(req.as_bytes(), 3600, Profile::KubeletClient).unwrap();
        let (_, block) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
        let (_, cert) =
            x509_parser::certificate::X509Certificate::from_der(&block.contents).unwrap();
        let (_, ca_block) = x509_parser::pem::parse_x509_pem(pki.ca_pem.as_bytes()).unwrap();
        let (_, ca) =
            x509_parser::certificate::X509Certificate::from_der(&ca_block.contents).unwrap();
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed by the CA");
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(cn, "system:node:n1");
        let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert_eq!(life, 3600 + 60);
        assert!(sign(b"not a request", 3600, Profile::KubeletClient).is_err());
    }
}
