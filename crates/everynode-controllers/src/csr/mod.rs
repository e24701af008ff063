//! Certificate signing requests: the approver and the signer for kubelet client
//! certificates (see [`plan`]). One watch over CertificateSigningRequests; each change is
//! planned on its own and acted on through `/approval` and `/status`.
//!
//! The signer needs the cluster CA's key, so it is handed a [`Signer`] at construction:
//! `everynode up` and `everynode server` pass one; the standalone `everynode controller`
//! against another cluster does not sign (that cluster's own signer does).

pub mod plan;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

pub use plan::Profile;
use plan::{RequestInfo, Signing};

/// Issues a certificate of a profile for a PEM PKCS#10 request, valid for the given
/// seconds; returns the certificate PEM.
pub type Signer = Arc<dyn Fn(&[u8], i64, Profile) -> Result<String, String> + Send + Sync>;

/// The subject and alternative names of a PEM certificate request.
pub fn request_info(pem: &[u8]) -> Option<RequestInfo> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::FromDer;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    if block.label != "CERTIFICATE REQUEST" {
        return None;
    }
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .ok()?;
    req.verify_signature().ok()?;
    let subject = &req.certification_request_info.subject;
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("")
        .to_string();
    let organizations = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    let mut info = RequestInfo {
        common_name,
        organizations,
        ..RequestInfo::default()
    };
    for ext in req.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(san) = ext else {
            continue;
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(d) => info.dns_names.push(d.to_string()),
                GeneralName::IPAddress(b) => match ip_string(b) {
                    Some(ip) => info.ip_addresses.push(ip),
                    None => info.other_sans = true,
                },
                _ => info.other_sans = true,
            }
        }
    }
    info.has_sans = info.other_sans || !info.dns_names.is_empty() || !info.ip_addresses.is_empty();
    Some(info)
}

fn ip_string(b: &[u8]) -> Option<String> {
    let ip = match b.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(b).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(b).ok()?),
        _ => return None,
    };
    Some(ip.to_string())
}

/// The node's name and the addresses in its status, if the node exists.
async fn node_addresses(client: &kube::Client, node: &str) -> Option<Vec<String>> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let n = nodes.get_opt(node).await.ok()??;
    let mut out = vec![node.to_string()];
    out.extend(
        n.status
            .and_then(|s| s.addresses)
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.address),
    );
    Some(out)
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn with_condition(
    csr: &CertificateSigningRequest,
    type_: &str,
    reason: &str,
    message: &str,
) -> serde_json::Value {
    let mut conds: Vec<serde_json::Value> = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect()
        })
        .unwrap_or_default();
    let t = now();
    conds.push(
        json!({ "type": type_, "status": "True", "reason": reason, "message": message,
                       "lastUpdateTime": t, "lastTransitionTime": t }),
    );
    json!({ "status": { "conditions": conds } })
}

async fn handle(
    client: &kube::Client,
    api: &Api<CertificateSigningRequest>,
    signer: Option<&Signer>,
    csr: CertificateSigningRequest,
) {
    let Some(name) = csr.metadata.name.clone() else {
        return;
    };
    let info = request_info(&csr.spec.request.0);
    let pp = PatchParams::default();
    let addresses = match (&info, csr.spec.signer_name.as_str()) {
        (Some(i), plan::KUBELET_SERVING_SIGNER) => match plan::subject_node(i) {
            Some(node) => node_addresses(client, node).await,
            None => None,
        },
        _ => None,
    };
    if let Some((reason, message)) = plan::approval(&csr, info.as_ref(), addresses.as_deref()) {
        let patch = with_condition(&csr, "Approved", reason, &message);
        match api
            .patch_subresource("approval", &name, &pp, &Patch::Merge(patch))
            .await
        {
            Ok(_) => tracing::info!(csr = %name, "approved kubelet client certificate request"),
            Err(e) => tracing::warn!(csr = %name, error = %e, "approving certificate request"),
        }
        // The approval comes back through the watch; the signer acts on that.
        return;
    }
    let Some(signer) = signer else {
        return;
    };
    let patch = match plan::signing(&csr, info.as_ref()) {
        Signing::Nothing => return,
        Signing::Sign { seconds, profile } => match signer(&csr.spec.request.0, seconds, profile) {
            Ok(pem) => {
                use base64::Engine;
                json!({ "status": { "certificate": base64::engine::general_purpose::STANDARD.encode(pem) } })
            }
            Err(e) => with_condition(&csr, "Failed", "SignerValidationFailure", &e),
        },
        Signing::Fail(why) => with_condition(&csr, "Failed", "SignerValidationFailure", &why),
    };
    match api
        .patch_subresource("status", &name, &pp, &Patch::Merge(patch))
        .await
    {
        Ok(_) => tracing::info!(csr = %name, "certificate request signed or failed"),
        Err(e) => tracing::warn!(csr = %name, error = %e, "writing certificate"),
    }
}

/// Runs the approver (and, with a `signer`, the signer) until the task is dropped.
pub async fn run(client: kube::Client, signer: Option<Signer>) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(csr) | watcher::Event::InitApply(csr)) => {
                handle(&client, &api, signer.as_ref(), csr).await;
            }
            Ok(_) => {}
            Err(e) if crate::runtime::server_gone(&e) => {
                tracing::debug!(error = %e, "certificate request watch")
            }
            Err(e) => tracing::warn!(error = %e, "certificate request watch"),
        }
    }
}
