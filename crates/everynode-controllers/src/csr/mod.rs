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

use plan::{RequestInfo, Signing};

/// Issues a certificate for a PEM PKCS#10 request, valid for the given seconds; returns
/// the certificate PEM.
pub type Signer = Arc<dyn Fn(&[u8], i64) -> Result<String, String> + Send + Sync>;

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
    let has_sans = req.requested_extensions().into_iter().flatten().any(|e| {
        matches!(e, ParsedExtension::SubjectAlternativeName(san)
            if san.general_names.iter().any(|n| matches!(n,
                GeneralName::DNSName(_) | GeneralName::IPAddress(_) | GeneralName::RFC822Name(_) | GeneralName::URI(_))))
    });
    Some(RequestInfo {
        common_name,
        organizations,
        has_sans,
    })
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
    api: &Api<CertificateSigningRequest>,
    signer: Option<&Signer>,
    csr: CertificateSigningRequest,
) {
    let Some(name) = csr.metadata.name.clone() else {
        return;
    };
    let info = request_info(&csr.spec.request.0);
    let pp = PatchParams::default();
    if let Some((reason, message)) = plan::approval(&csr, info.as_ref()) {
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
        Signing::Sign { seconds } => match signer(&csr.spec.request.0, seconds) {
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
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(csr) | watcher::Event::InitApply(csr)) => {
                handle(&api, signer.as_ref(), csr).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "certificate request watch"),
        }
    }
}
