//! `pods/<name>/log`. Container output lives with the node agent that runs the pod: the
//! API server checks the pod and container, then proxies the request to the agent's
//! kubelet-style endpoint (`https://NODE_IP:PORT/containerLogs/NS/POD/CONTAINER`, the
//! port from the Node's `status.daemonEndpoints.kubeletEndpoint.Port`), streaming the
//! answer (`follow=true` streams for as long as the container writes).
//!
//! The server authenticates with its own client certificate, which the cluster CA signed
//! ([`kubelet_client_config`]); like kube-apiserver's default, it does not verify the
//! agent's serving certificate. It answers itself for pods not yet bound to a node and
//! for pods on simulated nodes, whose agent serves no logs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::ServerState;
use crate::error::{ApiError, ApiResult};
use crate::resources;

/// The query parameters a log request passes on to the agent.
const PASSED_ON: &[&str] = &[
    "follow",
    "previous",
    "tailLines",
    "timestamps",
    "sinceSeconds",
    "sinceTime",
    "limitBytes",
];

pub async fn pod_logs(
    st: &Arc<ServerState>,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let res = resources::lookup("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
    let pod = st.registry.get(res, Some(ns), name)?;
    let containers: Vec<String> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let regular = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let container = match q.get("container").filter(|c| !c.is_empty()) {
        Some(c) => {
            if !containers.contains(c) {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            c.clone()
        }
        None if regular == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers[..regular].join(" ")
            )));
        }
    };
    let waiting = ["/status/containerStatuses", "/status/initContainerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .find(|s| s["name"] == container.as_str())
        .and_then(|s| {
            s.pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let waiting_error = |reason: Option<String>| {
        let reason = reason.unwrap_or_else(|| "ContainerCreating".into());
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        ))
    };
    if node_name.is_empty() {
        return Err(waiting_error(waiting));
    }
    let nodes = resources::lookup("", "v1", "nodes").ok_or_else(ApiError::path_not_found)?;
    let node = st.registry.get(nodes, None, node_name).ok();
    let runtime = node
        .as_ref()
        .and_then(|n| n.pointer("/metadata/annotations/everynode.io~1runtime"))
        .and_then(Value::as_str);
    let client = st.kubelet_client.get();
    let endpoint = node.as_ref().and_then(node_endpoint);
    let (Some(client), Some((ip, port)), false) = (client, endpoint, runtime == Some("sim")) else {
        if waiting.is_some() {
            return Err(waiting_error(waiting));
        }
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" runs on node \"{node_name}\", whose agent serves no logs"
        )));
    };
    let query = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for k in PASSED_ON {
            if let Some(v) = q.get(*k).filter(|v| !v.is_empty()) {
                query.append_pair(k, v);
            }
        }
        query.finish()
    };
    let path = format!(
        "/containerLogs/{}/{}/{}?{}",
        urlencoding::encode(ns),
        urlencoding::encode(name),
        urlencoding::encode(&container),
        query
    );
    proxy(client.clone(), &ip, port, &path).await
}

/// The node's InternalIP and its agent's port.
pub(crate) fn node_endpoint(node: &Value) -> Option<(String, u16)> {
    let ip = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)?
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())?
        .to_string();
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)?;
    Some((ip, port))
}

/// The rustls client config the server uses towards node agents: its client
/// certificate, and no verification of the agent's (self-signed) serving certificate.
pub fn kubelet_client_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading the kubelet client certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("reading the kubelet client key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("kubelet client certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts any serving certificate (signatures are still checked for the handshake).
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// GETs `path` from the agent at `ip:port` and streams its answer back; an error answer
/// becomes a Status with the agent's message.
async fn proxy(
    cfg: Arc<rustls::ClientConfig>,
    ip: &str,
    port: u16,
    path: &str,
) -> ApiResult<Response> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!("the node's agent at {ip}:{port}: {e}"))
    };
    let tls = connect(cfg, ip, port).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header(http::header::HOST, format!("{ip}:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| unreachable(&e))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = resp.status();
    if status.is_success() {
        return Response::builder()
            .status(http::StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "text/plain")
            .body(axum::body::Body::new(resp.into_body()))
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    Err(agent_refusal(resp).await)
}

/// An agent's refusal as an error: its Status's message when it sent one (exec), else
/// its text (logs), with the agent's code where the API has one.
pub(crate) async fn agent_refusal(resp: http::Response<hyper::body::Incoming>) -> ApiError {
    let code = resp.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = &body[..body.len().min(64 * 1024)];
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|s| s["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    match code {
        400 => ApiError::bad_request(message),
        403 => ApiError::forbidden(message),
        404 => ApiError::not_found_message(message),
        _ => ApiError::internal(message),
    }
}

/// A TLS connection to the agent at `ip:port`, presenting the server's client
/// certificate.
pub(crate) async fn connect(
    cfg: Arc<rustls::ClientConfig>,
    ip: &str,
    port: u16,
) -> ApiResult<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!("the node's agent at {ip}:{port}: {e}"))
    };
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((ip, port)),
    )
    .await
    .map_err(|_| unreachable(&"connection timed out"))?
    .map_err(|e| unreachable(&e))?;
    let server_name =
        rustls::pki_types::ServerName::try_from(ip.to_string()).map_err(|e| unreachable(&e))?;
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(cfg).connect(server_name, tcp),
    )
    .await
    .map_err(|_| unreachable(&"TLS handshake timed out"))?
    .map_err(|e| unreachable(&e))
}
