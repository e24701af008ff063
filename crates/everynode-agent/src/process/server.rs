//! The node's log endpoint, as the kubelet serves it: HTTPS on the node's IP and the port
//! the Node advertises (`status.daemonEndpoints.kubeletEndpoint.Port`), with
//! `GET /containerLogs/{namespace}/{pod}/{container}` and the kubelet's query
//! parameters (`follow`, `previous`, `tailLines`, `timestamps`, `sinceSeconds`,
//! `sinceTime`, `limitBytes`).
//!
//! The certificate is self-signed, made at every start (kube-apiserver does not verify
//! kubelet serving certificates by default either). Clients must present a certificate
//! signed by the CA the node was given (mutual TLS), and be the API server
//! ([`authorized_client`]): the same CA signs every node's certificate, and a node must
//! not read another node's logs. Anyone else gets 403, as the kubelet answers a client
//! its authorizer refuses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, RawQuery, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::PodIndex;
use super::logs::{self, Query as LogQuery};
use super::procs;
use super::remotecommand as rc;
use super::status::State as CState;

/// A TLS config with a fresh self-signed certificate for `name` and `ip`, requiring
/// client certificates signed by `client_ca_pem`.
pub fn tls_config(
    name: &str,
    ip: IpAddr,
    client_ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])
        .map_err(|e| format!("certificate for {name}: {e}"))?;
    params.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, format!("{name}@everynode-agent"));
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let key_der =
        PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).map_err(|e| e.to_string())?;

    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| format!("reading the client CA: {e}"))?;
        roots
            .add(ca)
            .map_err(|e| format!("adding the client CA: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("client certificate verifier: {e}"))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], key_der)
        .map_err(|e| e.to_string())?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The common name of the API server's client certificate for node agents.
pub const APISERVER_CLIENT_CN: &str = "kube-apiserver-kubelet-client";
/// Groups (certificate O) whose members may read logs: cluster administrators.
pub const ADMIN_GROUPS: &[&str] = &["system:masters", "kubeadm:cluster-admins"];

/// Whether the client certificate `der` (already verified against the client CA) may use
/// the endpoint: the API server's own identity, or a cluster administrator. Node
/// identities (`system:node:*` in `system:nodes`) may not. The error names who was
/// refused.
pub fn authorized_client(der: &[u8]) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| format!("unreadable client certificate: {e}"))?;
    let subject = cert.subject();
    let cn: Vec<&str> = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .collect();
    let groups: Vec<&str> = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .collect();
    if cn == [APISERVER_CLIENT_CN] || groups.iter().any(|g| ADMIN_GROUPS.contains(g)) {
        return Ok(());
    }
    Err(format!(
        "Forbidden (user={}, groups={:?}): only the API server may use this endpoint",
        cn.first().copied().unwrap_or(""),
        groups
    ))
}

/// What the node's server reads and uses.
#[derive(Clone)]
pub struct LogState {
    /// The node's root directory (logs live under `pods/`).
    pub root: PathBuf,
    /// The pods on this node, as their workers last published them.
    pub pods: PodIndex,
    /// Starts exec'd commands (the node's spawner thread: parent-death signal).
    pub spawner: procs::Spawner,
    /// Records exec'd commands while they run, as containers' processes.
    pub ledger: procs::Ledger,
}

pub fn router(state: LogState) -> axum::Router {
    axum::Router::new()
        .route(
            "/containerLogs/{ns}/{pod}/{container}",
            axum::routing::get(container_logs),
        )
        .route(
            "/exec/{ns}/{pod}/{container}",
            axum::routing::get(exec).post(exec),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(state)
}

/// Accepts TLS connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: LogState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let app = router(state);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Ok((tcp, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let allowed = match tls.get_ref().1.peer_certificates() {
                Some([leaf, ..]) => authorized_client(leaf),
                _ => Err("Forbidden: no client certificate".into()),
            };
            let app = match allowed {
                Ok(()) => app,
                Err(msg) => {
                    tracing::debug!(%msg, "log endpoint: client refused");
                    axum::Router::new()
                        .fallback(move || async move { text(StatusCode::FORBIDDEN, msg.clone()) })
                }
            };
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(app))
                .await;
        });
    }
}

fn text(code: StatusCode, msg: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// A boolean parameter as Go's `strconv.ParseBool` reads it (`True` from Python's
/// client, passed on by the API server, included).
fn flag(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| everynode_api::query_bool(v))
}

/// The kubelet's options from the query string; an error names the bad parameter.
pub fn parse_query(q: &HashMap<String, String>) -> Result<LogQuery, String> {
    let num = |k: &str| -> Result<Option<i64>, String> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("invalid {k} {v:?}: want an integer")),
        }
    };
    let mut out = LogQuery {
        timestamps: flag(q, "timestamps"),
        ..LogQuery::default()
    };
    if let Some(n) = num("tailLines")? {
        out.tail_lines = (n >= 0).then_some(n as usize);
    }
    if let Some(n) = num("limitBytes")? {
        if n < 1 {
            return Err("limitBytes must be greater than zero".into());
        }
        out.limit_bytes = Some(n as usize);
    }
    if let Some(n) = num("sinceSeconds")? {
        if n < 1 {
            return Err("sinceSeconds must be greater than zero".into());
        }
        out.since = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(n))
            .ok();
    }
    if let Some(t) = q.get("sinceTime").filter(|v| !v.is_empty()) {
        out.since = Some(
            t.parse::<jiff::Timestamp>()
                .map_err(|e| format!("invalid sinceTime {t:?}: {e}"))?,
        );
    }
    Ok(out)
}

async fn container_logs(
    State(st): State<LogState>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let query = match parse_query(&q) {
        Ok(q) => q,
        Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
    };
    let previous = flag(&q, "previous");
    let follow = flag(&q, "follow");
    let shared = st
        .pods
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(ns.clone(), pod.clone()))
        .cloned();
    let Some(shared) = shared else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod \"{pod}\" in namespace \"{ns}\" is not on this node"),
        );
    };
    let Some(view) = shared.containers.iter().find(|c| c.name == container) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("container \"{container}\" not found in pod \"{pod}\""),
        );
    };
    let dir = logs::pod_dir(&st.root, &ns, &pod, &shared.uid).join(&container);
    let instances = logs::instances(&dir);
    let latest = instances.last().map(|(n, _)| *n);
    // Which instance: the running or last-ended one, or the one before it.
    let chosen = match (&view.state, previous) {
        (CState::Waiting { .. }, _) if view.last.is_some() => latest,
        (CState::Waiting { reason, .. }, false) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}"),
            );
        }
        (_, false) => latest,
        (_, true) => latest.and_then(|l| instances.iter().rev().map(|(n, _)| *n).find(|n| *n < l)),
    };
    let Some((n, files)) = chosen.and_then(|n| instances.iter().find(|(k, _)| *k == n).cloned())
    else {
        let msg = if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" has no logs yet")
        };
        return text(StatusCode::BAD_REQUEST, msg);
    };
    // The current file's length is where following starts.
    let current = dir.join(format!("{n}.log"));
    let mut all = Vec::new();
    let mut offset = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        if *f == current {
            // Only whole lines: a line being written is picked up by the follower.
            let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            offset = end as u64;
            all.extend_from_slice(&bytes[..end]);
        } else {
            all.extend_from_slice(&bytes);
        }
    }
    let first = logs::render_all(&all, &query);
    let headers = [(header::CONTENT_TYPE, "text/plain")];
    if !follow || previous {
        return (StatusCode::OK, headers, first).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    let mut budget = query.limit_bytes.map(|l| l.saturating_sub(first.len()));
    let done_marker = dir.join(format!("{n}.done"));
    let pods = st.pods.clone();
    let key = (ns.clone(), pod.clone());
    let uid = shared.uid.clone();
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Ok(bytes::Bytes::from(first))).await.is_err() {
            return;
        }
        let mut offset = offset;
        loop {
            if budget == Some(0) {
                return;
            }
            let ended = done_marker.exists();
            let (new, next) = logs::read_new(&current, offset);
            offset = next;
            if !new.is_empty() {
                let mut out = logs::render_all(
                    &new,
                    &LogQuery {
                        timestamps: query.timestamps,
                        ..LogQuery::default()
                    },
                );
                if let Some(b) = budget.as_mut() {
                    out.truncate(*b);
                    *b -= out.len();
                }
                if tx.send(Ok(bytes::Bytes::from(out))).await.is_err() {
                    return;
                }
                continue;
            }
            let here = pods
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .is_some_and(|p| p.uid == uid);
            if ended || !here {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (StatusCode::OK, headers, body).into_response()
}

/// A Kubernetes Status for an exec refused before the upgrade (the API server passes
/// it on to the client).
fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /exec/{ns}/{pod}/{container}?command=..&stdin=..&stdout=..&stderr=..&tty=..`: a
/// WebSocket upgrade (`v5.channel.k8s.io` or `v4.channel.k8s.io`) to a command run in
/// the running container's context ([`super::exec`]). SPDY (`kubectl` before 1.30) is
/// refused with a Status saying so.
async fn exec(
    State(st): State<LogState>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let opts = match rc::parse_options(query.as_deref().unwrap_or("")) {
        Ok(o) => o,
        Err(msg) => return status(StatusCode::BAD_REQUEST, "BadRequest", msg),
    };
    let key = (ns.clone(), pod.clone());
    let target = {
        let pods = st.pods.lock().unwrap_or_else(|p| p.into_inner());
        let Some(shared) = pods.get(&key) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("pod \"{pod}\" in namespace \"{ns}\" is not on this node"),
            );
        };
        shared.running.get(&container).cloned()
    };
    // The kubelet's answer for a container that does not run (yet, or any more).
    let Some(target) = target else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("container not found ({container:?})"),
        );
    };
    let ws = match ws {
        Ok(ws) => ws.protocols(rc::PROTOCOLS),
        Err(_) => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "everynode's node agents run commands over WebSocket (v5.channel.k8s.io or v4.channel.k8s.io), not SPDY: use kubectl 1.30 or newer".into(),
            );
        }
    };
    if ws.selected_protocol().is_none() {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "the client offers none of the streaming protocols {}",
                rc::PROTOCOLS.join(", ")
            ),
        );
    }
    let pods = st.pods.clone();
    let pid = target.pid;
    let name = container.clone();
    let session = super::exec::Session {
        opts,
        target,
        spawner: st.spawner.clone(),
        ledger: st.ledger.clone(),
        owner: format!("{ns}/{pod}/{container} exec"),
        container_running: Box::new(move || {
            let here = pods
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .and_then(|p| p.running.get(&name))
                .is_some_and(|c| c.pid == pid);
            here && procs::group_alive(pid)
        }),
    };
    ws.on_upgrade(move |socket| super::exec::run(socket, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_parameters() {
        let ok = parse_query(&q(&[
            ("tailLines", "5"),
            ("timestamps", "true"),
            ("limitBytes", "100"),
        ]))
        .expect("ok");
        assert_eq!(ok.tail_lines, Some(5));
        assert!(ok.timestamps);
        assert_eq!(ok.limit_bytes, Some(100));
        let since = parse_query(&q(&[("sinceTime", "2026-01-01T00:00:00Z")])).expect("ok");
        assert_eq!(
            since.since,
            Some("2026-01-01T00:00:00Z".parse().expect("t"))
        );
        assert!(
            parse_query(&q(&[("sinceSeconds", "10")]))
                .expect("ok")
                .since
                .is_some()
        );
        for bad in [
            ("tailLines", "x"),
            ("limitBytes", "0"),
            ("sinceSeconds", "-1"),
            ("sinceTime", "yesterday"),
        ] {
            let err = parse_query(&q(&[bad])).expect_err("refused");
            assert!(err.contains(bad.0), "{err}");
        }
    }

    /// A client config that trusts any server, with an optional client certificate.
    fn client(cert: Option<(&rcgen::Certificate, &rcgen::KeyPair)>) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(super::super::probe::AnyCert(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))));
        let mut cfg = match cert {
            Some((c, k)) => builder
                .with_client_auth_cert(
                    vec![c.der().clone()],
                    rustls::pki_types::PrivateKeyDer::from_pem_slice(k.serialize_pem().as_bytes())
                        .expect("key"),
                )
                .expect("client cert"),
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    async fn get(port: u16, cfg: Arc<rustls::ClientConfig>, path: &str) -> Result<String, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut out = String::new();
        tls.read_to_string(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn ca(cn: &str) -> (rcgen::Certificate, rcgen::KeyPair, rcgen::CertificateParams) {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let k = rcgen::KeyPair::generate().expect("key");
        let c = p.self_signed(&k).expect("ca");
        (c, k, p)
    }

    fn client_cert(
        ca: &(rcgen::Certificate, rcgen::KeyPair, rcgen::CertificateParams),
    ) -> (rcgen::Certificate, rcgen::KeyPair) {
        subject_cert(ca, APISERVER_CLIENT_CN, &["kubeadm:cluster-admins"])
    }

    fn subject_cert(
        ca: &(rcgen::Certificate, rcgen::KeyPair, rcgen::CertificateParams),
        cn: &str,
        orgs: &[&str],
    ) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        for o in orgs {
            p.distinguished_name
                .push(rcgen::DnType::OrganizationName, *o);
        }
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let k = rcgen::KeyPair::generate().expect("key");
        let issuer = rcgen::Issuer::new(ca.2.clone(), &ca.1);
        (p.signed_by(&k, &issuer).expect("signed"), k)
    }

    #[tokio::test]
    async fn logs_need_a_client_certificate_from_the_cluster_ca() {
        let cluster = ca("cluster-ca");
        let other = ca("other-ca");
        let root = tempfile::tempdir().expect("tempdir");
        let tls =
            tls_config("n1", "127.0.0.1".parse().expect("ip"), &cluster.0.pem()).expect("tls");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let state = LogState {
            root: root.path().to_path_buf(),
            pods: PodIndex::default(),
            spawner: procs::Spawner::new("test").expect("spawner"),
            ledger: procs::Ledger::open(root.path()),
        };
        tokio::spawn(serve(listener, tls, state, stopped));

        let (c, k) = client_cert(&cluster);
        let ok = get(port, client(Some((&c, &k))), "/healthz")
            .await
            .expect("answer");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let missing = get(port, client(Some((&c, &k))), "/containerLogs/ns/p/c")
            .await
            .expect("answer");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        assert!(missing.contains("is not on this node"), "{missing}");
        // exec: options checked first, then the pod; refusals are Statuses.
        let bad = get(port, client(Some((&c, &k))), "/exec/ns/p/c?stdout=true")
            .await
            .expect("answer");
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
        assert!(bad.contains("\"reason\":\"BadRequest\""), "{bad}");
        let missing = get(
            port,
            client(Some((&c, &k))),
            "/exec/ns/p/c?command=ls&stdout=1",
        )
        .await
        .expect("answer");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        assert!(missing.contains("is not on this node"), "{missing}");

        assert!(
            get(port, client(None), "/healthz").await.is_err(),
            "no client certificate"
        );
        let (c, k) = client_cert(&other);
        assert!(
            get(port, client(Some((&c, &k))), "/healthz").await.is_err(),
            "a certificate from another CA"
        );

        // A node's certificate from the same CA: TLS succeeds, the endpoint refuses.
        let (c, k) = subject_cert(&cluster, "system:node:n2", &["system:nodes"]);
        for path in ["/containerLogs/ns/p/c", "/healthz"] {
            let refused = get(port, client(Some((&c, &k))), path)
                .await
                .expect("answer");
            assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
            assert!(refused.contains("system:node:n2"), "{refused}");
        }
        // An administrator's certificate is let in.
        let (c, k) = subject_cert(&cluster, "admin", &["system:masters"]);
        let ok = get(port, client(Some((&c, &k))), "/healthz")
            .await
            .expect("answer");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }

    #[test]
    fn only_the_api_server_and_admins_are_authorized() {
        let cluster = ca("cluster-ca");
        let cases: &[(&str, &[&str], bool)] = &[
            (APISERVER_CLIENT_CN, &["kubeadm:cluster-admins"], true),
            (APISERVER_CLIENT_CN, &[], true),
            ("someone", &["system:masters"], true),
            ("system:node:n2", &["system:nodes"], false),
            ("system:node:n2", &[], false),
            (
                "kube-apiserver-kubelet-client-not",
                &["system:nodes"],
                false,
            ),
            ("", &[], false),
        ];
        for (cn, orgs, want) in cases {
            let (c, _) = subject_cert(&cluster, cn, orgs);
            let got = authorized_client(c.der());
            assert_eq!(got.is_ok(), *want, "{cn} {orgs:?}: {got:?}");
        }
    }
}
