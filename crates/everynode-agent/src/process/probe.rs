//! Readiness, liveness and startup probes: the pure part (a probe's settings with
//! Kubernetes' defaults, and the threshold state machine) and the thin part that runs one
//! probe attempt (exec, httpGet, tcpSocket) with its timeout.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Readiness,
    Liveness,
    Startup,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Readiness => "Readiness",
            Kind::Liveness => "Liveness",
            Kind::Startup => "Startup",
        }
    }
}

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Exec(Vec<String>),
    Http {
        https: bool,
        host: Option<String>,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        host: Option<String>,
        port: u16,
    },
}

/// A probe with Kubernetes' defaults filled in (period 10 s, timeout 1 s, thresholds 1
/// and 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    pub grace_override: Option<i64>,
}

fn secs(v: Option<i32>, default: u64, min: u64) -> Duration {
    Duration::from_secs(v.map_or(default, |v| (v.max(0) as u64).max(min)))
}

fn port(p: &IntOrString, c: &Container) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("port {name:?} is not a named port of the container"))
        }
    }
}

/// The probe's settings; an error names what cannot be run (e.g. a gRPC probe).
pub fn spec(kind: Kind, p: &Probe, c: &Container) -> Result<Spec, String> {
    let action = if let Some(e) = &p.exec {
        Action::Exec(e.command.clone().unwrap_or_default())
    } else if let Some(h) = &p.http_get {
        Action::Http {
            https: h.scheme.as_deref() == Some("HTTPS"),
            host: h.host.clone().filter(|h| !h.is_empty()),
            port: port(&h.port, c)?,
            path: match h.path.as_deref() {
                Some(p) if p.starts_with('/') => p.to_string(),
                Some(p) => format!("/{p}"),
                None => "/".into(),
            },
            headers: h
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        }
    } else if let Some(t) = &p.tcp_socket {
        Action::Tcp {
            host: t.host.clone().filter(|h| !h.is_empty()),
            port: port(&t.port, c)?,
        }
    } else if p.grpc.is_some() {
        return Err("gRPC probes are not supported by the process runtime".into());
    } else {
        return Err("the probe has no handler".into());
    };
    let liveness_like = kind != Kind::Readiness;
    Ok(Spec {
        kind,
        action,
        initial_delay: secs(p.initial_delay_seconds, 0, 0),
        period: secs(p.period_seconds, 10, 1),
        timeout: secs(p.timeout_seconds, 1, 1),
        // Liveness and startup probes must use 1 (validation enforces it).
        success_threshold: if liveness_like {
            1
        } else {
            p.success_threshold.unwrap_or(1).max(1) as u32
        },
        failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
        grace_override: p.termination_grace_period_seconds,
    })
}

/// A probe's result over consecutive attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracker {
    /// The current result: readiness and startup start as failing, liveness as passing.
    pub ok: bool,
    successes: u32,
    failures: u32,
}

impl Tracker {
    pub fn new(kind: Kind) -> Tracker {
        Tracker {
            ok: kind == Kind::Liveness,
            successes: 0,
            failures: 0,
        }
    }

    /// Records one attempt; returns the new result when it flipped.
    pub fn observe(&mut self, passed: bool, spec: &Spec) -> Option<bool> {
        if passed {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.ok && self.successes >= spec.success_threshold {
                self.ok = true;
                return Some(true);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.ok && self.failures >= spec.failure_threshold {
                self.ok = false;
                return Some(false);
            }
            // A startup probe that never passed fails for good at the threshold too.
            if !self.ok && spec.kind == Kind::Startup && self.failures == spec.failure_threshold {
                return Some(false);
            }
        }
        None
    }
}

/// Where a probe without a host goes: the pod's IP (the node's, for the process
/// runtime).
pub struct Target<'a> {
    pub default_host: &'a str,
    pub env: &'a [(String, String)],
    pub working_dir: Option<&'a str>,
    /// Who an exec probe runs as: the container's user (None: the agent's).
    pub identity: Option<&'a super::identity::Identity>,
}

/// Runs one attempt; Ok(()) when it passed, Err(message) when it failed.
pub async fn attempt(spec: &Spec, target: &Target<'_>) -> Result<(), String> {
    match tokio::time::timeout(spec.timeout, run(spec, target)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timeout: failed to connect or run within {}s",
            spec.timeout.as_secs()
        )),
    }
}

async fn run(spec: &Spec, target: &Target<'_>) -> Result<(), String> {
    match &spec.action {
        Action::Exec(cmd) => {
            let Some(program) = cmd.first() else {
                return Err("exec probe without a command".into());
            };
            let program = super::env::resolve_program(program, target.env)?;
            let mut command = tokio::process::Command::new(program);
            command
                .args(&cmd[1..])
                .env_clear()
                .envs(target.env.iter().map(|(k, v)| (k, v)))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true);
            if let Some(dir) = target.working_dir {
                command.current_dir(dir);
            }
            if let Some(id) = target.identity {
                super::procs::run_as(&mut command, id);
            }
            let out = command.output().await.map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                Err(if text.trim().is_empty() {
                    format!(
                        "command {cmd:?} exited with {}",
                        out.status.code().unwrap_or(-1)
                    )
                } else {
                    text.trim().to_string()
                })
            }
        }
        Action::Tcp { host, port } => {
            let host = host.as_deref().unwrap_or(target.default_host);
            tokio::net::TcpStream::connect((host, *port))
                .await
                .map(|_| ())
                .map_err(|e| format!("dial tcp {host}:{port}: {e}"))
        }
        Action::Http {
            https,
            host,
            port,
            path,
            headers,
        } => {
            let host = host.as_deref().unwrap_or(target.default_host);
            http_get(*https, host, *port, path, headers).await
        }
    }
}

/// One HTTP/1.1 GET (over TLS for HTTPS, without verifying the certificate, as the
/// kubelet does); 200–399 pass, as the kubelet counts them.
async fn http_get(
    https: bool,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let scheme = if https { "https" } else { "http" };
    let url = format!("{scheme}://{host}:{port}{path}");
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("Get {url:?}: dial tcp {host}:{port}: {e}"))?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let head = if https {
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(insecure_client()?)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        status_line(tls, &req).await
    } else {
        status_line(tcp, &req).await
    }
    .map_err(|e| format!("Get {url:?}: {e}"))?;
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("Get {url:?}: malformed HTTP response"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// Sends `req` and reads up to the end of the status line.
async fn status_line(
    mut s: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    req: &str,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.contains(&b'\n') && buf.len() < 4096 {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A TLS client that accepts any server certificate (HTTPS probes, like the kubelet's,
/// do not verify it).
pub fn insecure_client() -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts any certificate; handshake signatures are still checked.
#[derive(Debug)]
pub struct AnyCert(pub std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe_spec(kind: Kind, p: serde_json::Value) -> Spec {
        let c: Container = serde_json::from_value(json!({
            "name": "c", "ports": [{ "name": "http", "containerPort": 8080 }]
        }))
        .expect("container");
        let p: Probe = serde_json::from_value(p).expect("probe");
        spec(kind, &p, &c).expect("spec")
    }

    #[test]
    fn defaults_and_named_ports() {
        let s = probe_spec(
            Kind::Readiness,
            json!({ "httpGet": { "port": "http", "path": "healthz" } }),
        );
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!((s.success_threshold, s.failure_threshold), (1, 3));
        assert_eq!(
            s.action,
            Action::Http {
                https: false,
                host: None,
                port: 8080,
                path: "/healthz".into(),
                headers: vec![]
            }
        );
        let s = probe_spec(
            Kind::Liveness,
            json!({ "tcpSocket": { "port": 9 }, "successThreshold": 3, "periodSeconds": 2 }),
        );
        assert_eq!(s.success_threshold, 1, "liveness needs one success");
        assert_eq!(s.period, Duration::from_secs(2));
        let c = Container::default();
        let grpc: Probe = serde_json::from_value(json!({ "grpc": { "port": 1 } })).expect("p");
        assert!(spec(Kind::Readiness, &grpc, &c).is_err());
        let unnamed: Probe =
            serde_json::from_value(json!({ "tcpSocket": { "port": "nope" } })).expect("p");
        assert!(spec(Kind::Readiness, &unnamed, &c).is_err());
    }

    #[test]
    fn thresholds_flip_the_result() {
        let readiness = probe_spec(
            Kind::Readiness,
            json!({ "exec": { "command": ["true"] }, "successThreshold": 2, "failureThreshold": 2 }),
        );
        let liveness = probe_spec(
            Kind::Liveness,
            json!({ "exec": { "command": ["true"] }, "failureThreshold": 3 }),
        );
        let startup = probe_spec(
            Kind::Startup,
            json!({ "exec": { "command": ["true"] }, "failureThreshold": 2 }),
        );
        // (spec, attempts, result after each attempt: Some(flip) or None)
        type Case<'a> = (&'a Spec, Vec<bool>, Vec<Option<bool>>);
        let cases: Vec<Case<'_>> = vec![
            (
                &readiness,
                vec![true, true, true, false, false, true, false, true, true],
                vec![
                    None,
                    Some(true),
                    None,
                    None,
                    Some(false),
                    None,
                    None,
                    None,
                    Some(true),
                ],
            ),
            (
                &liveness,
                vec![false, false, true, false, false, false, false],
                vec![None, None, None, None, None, Some(false), None],
            ),
            (
                &startup,
                vec![false, false, false],
                vec![None, Some(false), None],
            ),
            (&startup, vec![false, true], vec![None, Some(true)]),
        ];
        for (spec, attempts, want) in cases {
            let mut t = Tracker::new(spec.kind);
            let got: Vec<Option<bool>> = attempts.iter().map(|a| t.observe(*a, spec)).collect();
            assert_eq!(got, want, "{:?} {attempts:?}", spec.kind);
        }
    }

    #[tokio::test]
    async fn attempts_run_exec_tcp_and_http() {
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let target = Target {
            default_host: "127.0.0.1",
            env: &env,
            working_dir: None,
            identity: None,
        };
        let ok = probe_spec(Kind::Readiness, json!({ "exec": { "command": ["true"] } }));
        assert_eq!(attempt(&ok, &target).await, Ok(()));
        let bad = probe_spec(
            Kind::Readiness,
            json!({ "exec": { "command": ["sh", "-c", "echo nope; exit 3"] } }),
        );
        assert_eq!(attempt(&bad, &target).await, Err("nope".into()));
        let slow = probe_spec(
            Kind::Readiness,
            json!({ "exec": { "command": ["sleep", "5"] }, "timeoutSeconds": 1 }),
        );
        assert!(
            attempt(&slow, &target)
                .await
                .expect_err("timeout")
                .contains("timeout")
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let code = if req.starts_with("GET /ok ") {
                    "204 No Content"
                } else {
                    "500 Internal Server Error"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let tcp = probe_spec(Kind::Liveness, json!({ "tcpSocket": { "port": port } }));
        assert_eq!(attempt(&tcp, &target).await, Ok(()));
        let http_ok = probe_spec(
            Kind::Liveness,
            json!({ "httpGet": { "port": port, "path": "/ok" } }),
        );
        assert_eq!(attempt(&http_ok, &target).await, Ok(()));
        let http_bad = probe_spec(
            Kind::Liveness,
            json!({ "httpGet": { "port": port, "path": "/bad" } }),
        );
        assert_eq!(
            attempt(&http_bad, &target).await,
            Err("HTTP probe failed with statuscode: 500".into())
        );
    }

    #[tokio::test]
    async fn https_probes_do_not_verify_the_certificate() {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        use std::sync::Arc;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["elsewhere".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key"),
        )
        .expect("config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /up ");
                let line = if ok {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {line}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
                let _ = s.shutdown().await;
            }
        });
        let env = vec![];
        let target = Target {
            default_host: "127.0.0.1",
            env: &env,
            working_dir: None,
            identity: None,
        };
        let up = probe_spec(
            Kind::Readiness,
            json!({ "httpGet": { "scheme": "HTTPS", "port": port, "path": "/up" } }),
        );
        assert_eq!(attempt(&up, &target).await, Ok(()));
        let down = probe_spec(
            Kind::Readiness,
            json!({ "httpGet": { "scheme": "HTTPS", "port": port, "path": "/down" } }),
        );
        assert_eq!(
            attempt(&down, &target).await,
            Err("HTTP probe failed with statuscode: 503".into())
        );
    }

    #[tokio::test]
    async fn exec_probes_run_as_the_containers_user() {
        let agent = super::super::identity::Agent::current();
        // Another user only when the agent may switch; else its own.
        let (uid, gid) = if agent.uid == 0 {
            (65534, 65533)
        } else {
            (agent.uid, agent.gid)
        };
        let id = super::super::identity::Identity {
            uid,
            gid,
            groups: if agent.uid == 0 {
                vec![4242]
            } else {
                Vec::new()
            },
            home: None,
        };
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let target = Target {
            default_host: "127.0.0.1",
            env: &env,
            working_dir: None,
            identity: if agent.uid == 0 { Some(&id) } else { None },
        };
        // `id -G`: the group, then the supplemental groups.
        let check = if agent.uid == 0 {
            format!(
                "test \"$(id -u):$(id -g):$(id -G)\" = '{uid}:{gid}:{gid} 4242' || {{ id; exit 1; }}"
            )
        } else {
            format!("test \"$(id -u):$(id -g)\" = '{uid}:{gid}' || {{ id; exit 1; }}")
        };
        let p = probe_spec(
            Kind::Readiness,
            json!({ "exec": { "command": ["sh", "-c", check] } }),
        );
        assert_eq!(attempt(&p, &target).await, Ok(()));
    }
}
