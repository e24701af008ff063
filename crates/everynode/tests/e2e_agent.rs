//! Machines joining over the network (issue 5, parts 2 and 4), with the real binary and
//! the real kubectl: `everynode agent` joins with a bootstrap token and the CA hash, gets
//! its own certificate through a CertificateSigningRequest, runs its node (runtime sim)
//! across API server restarts and its own, and its credential is confined by
//! NodeRestriction. With `--runtime process` the joined machine runs its pods' containers
//! as real processes and serves their logs to the API server.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, processes_with, rows, wait_for};

/// How long a process node may take to start or stop a container.
const LIMIT: Duration = Duration::from_secs(60);

/// An `everynode agent` process, killed on drop; its stderr goes to a file.
struct Agent {
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    fn start(args: &[&str], log: &Path) -> Agent {
        let err = std::fs::File::create(log).expect("agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_everynode"))
            .arg("agent")
            .args(args)
            .args(["--ready-delay-ms", "100"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start the agent");
        Agent {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGTERM, then waits for the agent to exit.
    fn terminate(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let o = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .output()
            .expect("kill");
        assert!(o.status.success());
        wait_for(Duration::from_secs(30), "the agent to exit", || {
            c.try_wait().ok().flatten()
        });
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server URL in a kubeconfig.
fn server_url(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server line")
        .to_string()
}

/// `everynode token create` → (token, ca-cert-hash), both read from what it prints.
fn create_token(s: &Server, ttl: &str) -> (String, String) {
    let o = s.everynode(&["token", "create", "--ttl", ttl]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "token create: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let token = out.lines().next().expect("token line").trim().to_string();
    assert_eq!(token.len(), 23, "{out}");
    assert!(
        out.contains(&format!("echo {token} > token")),
        "the join command names the token: {out}"
    );
    let hash = out
        .split_whitespace()
        .skip_while(|w| *w != "--ca-cert-hash")
        .nth(1)
        .expect("--ca-cert-hash in the join command")
        .to_string();
    assert!(
        out.contains(&format!("--server {}", server_url(&s.kubeconfig))),
        "{out}"
    );
    (token, hash)
}

/// Joins `name` with a fresh token; returns the agent and its state dir.
fn join(s: &Server, name: &str, work: &Path) -> (Agent, PathBuf) {
    join_with(s, name, work, &[])
}

/// [`join`] with more agent flags.
fn join_with(s: &Server, name: &str, work: &Path, extra: &[&str]) -> (Agent, PathBuf) {
    let (token, hash) = create_token(s, "1h");
    let token_file = work.join(format!("{name}.token"));
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    let state = work.join(name);
    let url = server_url(&s.kubeconfig);
    let mut args = vec![
        "--server",
        &url,
        "--token-file",
        token_file.to_str().expect("utf-8 path"),
        "--ca-cert-hash",
        &hash,
        "--node-name",
        name,
        "--state-dir",
        state.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let agent = Agent::start(&args, &work.join(format!("{name}.log")));
    wait_ready(s, name);
    (agent, state)
}

fn wait_ready(s: &Server, name: &str) {
    s.eventually(
        &format!("node {name} Ready"),
        &[
            "get",
            "node",
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        |out| out.trim() == "True",
    );
}

/// Kills the API server (SIGKILL); returns its address.
fn kill_server(s: &mut Server) -> String {
    let url = server_url(&s.kubeconfig);
    if let Some(mut c) = s.child.take() {
        c.kill().expect("kill");
        let _ = c.wait();
    }
    url.trim_start_matches("https://").to_string()
}

/// Starts the API server again on the same address (agents keep the URL).
fn start_server_at(s: &mut Server, addr: &str) {
    let _ = std::fs::remove_file(&s.kubeconfig);
    let child = Command::new(env!("CARGO_BIN_EXE_everynode"))
        .args(&s.args)
        .args(["--listen", addr, "--data-dir"])
        .arg(s.dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("restart everynode");
    s.child = Some(child);
    let kc = s.kubeconfig.clone();
    wait_for(Duration::from_secs(60), "the restarted server", || {
        (kc.exists() && s.kubectl(&["get", "--raw", "/readyz"]).status.success()).then_some(())
    });
}

/// The node's Lease renewTime, once the Lease exists.
fn lease_renew_time(s: &Server, name: &str) -> String {
    s.eventually(
        &format!("the lease of {name}"),
        &[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            name,
            "-o",
            "jsonpath={.spec.renewTime}",
        ],
        |out| !out.trim().is_empty(),
    )
}

fn csr_rows(s: &Server) -> Vec<Vec<String>> {
    rows(&s.ok(&["get", "csr"])).into_iter().skip(1).collect()
}

const DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agentd, namespace: default }
spec:
  selector: { matchLabels: { app: agentd } }
  template:
    metadata: { labels: { app: agentd } }
    spec:
      containers: [{ name: c, image: "busybox:1.36" }]
"#;

/// The node each `app=agentd` pod runs on, for Running pods.
fn running_pod_nodes(s: &Server) -> Vec<(String, String)> {
    let v = s.json(&["get", "pods", "-l", "app=agentd"]);
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .map(|p| {
                    (
                        p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_machine_joins_runs_its_pods_and_survives_restarts() {
    let mut s = Server::up(1);
    let work = tempfile::tempdir().expect("tempdir");
    let (mut agent, state) = join(&s, "edge1", work.path());

    // Its request was approved and signed, asked for by the bootstrap identity.
    let csrs = csr_rows(&s);
    assert_eq!(csrs.len(), 1, "{csrs:?}");
    assert_eq!(csrs[0][2], "kubernetes.io/kube-apiserver-client-kubelet");
    assert!(csrs[0][3].starts_with("system:bootstrap:"), "{csrs:?}");
    assert_eq!(csrs[0][5], "Approved,Issued");
    for f in ["node.key", "node.crt", "ca.crt", "kubeconfig"] {
        assert!(state.join(f).exists(), "{f} in the state dir");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join("node.key"))
        .expect("node.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the node key is private");

    // A DaemonSet gets a pod there (not on the tainted master), Running.
    let o = s.apply_yaml(DS);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for(Duration::from_secs(60), "agentd Running on edge1", || {
        let on = running_pod_nodes(&s);
        (on.len() == 1 && on[0].1 == "edge1").then_some(())
    });

    // The API server dies (SIGKILL); the agent notices, says so once, and keeps trying.
    let before = lease_renew_time(&s, "edge1");
    let addr = kill_server(&mut s);
    wait_for(Duration::from_secs(30), "the agent to notice", || {
        agent
            .log()
            .contains("lost contact with the API server")
            .then_some(())
    });
    // It comes back on the same address; the same agent process reconnects, reports
    // it, and renews its lease again.
    start_server_at(&mut s, &addr);
    wait_for(
        Duration::from_secs(30),
        "the agent to report the reconnect",
        || {
            agent
                .log()
                .contains("reconnected to the API server")
                .then_some(())
        },
    );
    wait_for(
        Duration::from_secs(60),
        "a lease renewal after the restart",
        || (lease_renew_time(&s, "edge1") != before).then_some(()),
    );
    assert!(agent.running(), "the agent kept running: {}", agent.log());
    assert_eq!(
        agent.log().matches("lost contact").count(),
        1,
        "said once: {}",
        agent.log()
    );
    wait_ready(&s, "edge1");

    // Its Node deleted behind its back: like the kubelet, it registers again, and the
    // DaemonSet puts a pod there again.
    s.ok(&["delete", "node", "edge1"]);
    wait_ready(&s, "edge1");
    wait_for(
        Duration::from_secs(60),
        "agentd Running on edge1 again",
        || {
            let on = running_pod_nodes(&s);
            (on.len() == 1 && on[0].1 == "edge1").then_some(())
        },
    );

    // The agent restarts with the same state dir and no token: it reuses its credential.
    agent.stop();
    let url = server_url(&s.kubeconfig);
    let mut again = Agent::start(
        &[
            "--server",
            &url,
            "--node-name",
            "edge1",
            "--state-dir",
            state.to_str().expect("utf-8 path"),
        ],
        &work.path().join("edge1-again.log"),
    );
    let before = lease_renew_time(&s, "edge1");
    wait_for(
        Duration::from_secs(60),
        "a lease renewal by the new agent",
        || (lease_renew_time(&s, "edge1") != before).then_some(()),
    );
    assert!(again.running(), "{}", again.log());
    assert!(
        again.log().contains("using the stored credential"),
        "{}",
        again.log()
    );
    assert_eq!(csr_rows(&s).len(), 1, "no new certificate request");
}

#[test]
fn node_credentials_touch_only_their_own_node() {
    let s = Server::up(1);
    let work = tempfile::tempdir().expect("tempdir");
    let (_agent, state) = join(&s, "edge1", work.path());
    let node_kc = state.join("kubeconfig");
    let as_node = |args: &[&str]| {
        Command::new(common::kubectl_bin())
            .arg("--kubeconfig")
            .arg(&node_kc)
            .arg("--cache-dir")
            .arg(work.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl")
    };
    let denied = |args: &[&str], message: &str| {
        let o = as_node(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains("(Forbidden)"), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    };
    let allowed = |args: &[&str]| {
        let o = as_node(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    // Reading what a kubelet reads works.
    assert!(allowed(&["get", "nodes"]).contains("master"));
    // Secrets only when its pods use them: not the join tokens, no listing.
    let token_id = std::fs::read_to_string(s.data_dir().join("join-token")).expect("join-token");
    let token_secret = format!("bootstrap-token-{}", &token_id[..6]);
    denied(
        &["get", "secret", "-n", "kube-system", &token_secret],
        "no relationship found between node 'edge1' and this object",
    );
    denied(
        &["get", "secrets", "-A"],
        r#"User "system:node:edge1" cannot list resource "secrets" in API group "" at the cluster scope"#,
    );
    // Another node: 403 with NodeRestriction's words.
    denied(
        &["label", "node", "master", "x=y"],
        r#"nodes "master" is forbidden: node "edge1" is not allowed to modify node "master""#,
    );
    denied(
        &["delete", "node", "master"],
        r#"node "edge1" is not allowed to modify node "master""#,
    );
    // Its own node: ordinary labels yes; reserved labels and taints no.
    allowed(&["label", "node", "edge1", "team=a"]);
    denied(
        &[
            "label",
            "node",
            "edge1",
            "node-restriction.kubernetes.io/pci=true",
        ],
        "is not allowed to modify labels: node-restriction.kubernetes.io/pci",
    );
    denied(
        &[
            "label",
            "node",
            "edge1",
            "node-role.kubernetes.io/control-plane=",
        ],
        "is not allowed to modify labels: node-role.kubernetes.io/control-plane",
    );
    denied(
        &["taint", "node", "edge1", "k=v:NoSchedule"],
        r#"node "edge1" is not allowed to modify taints"#,
    );
    // Another node's lease.
    denied(
        &[
            "annotate",
            "lease",
            "-n",
            "kube-node-lease",
            "master",
            "x=y",
        ],
        "can only access node lease with the same name as the requesting node",
    );
    // Pods on other nodes, workloads, and pods' spec are not its business.
    let tolerating = DS.replace(
        "containers:",
        "tolerations: [{ operator: Exists }]\n      containers:",
    );
    let o = s.apply_yaml(&tolerating);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let on = wait_for(Duration::from_secs(60), "agentd on both nodes", || {
        let on = running_pod_nodes(&s);
        (on.len() == 2).then_some(on)
    });
    let (on_master, _) = on
        .iter()
        .find(|(_, n)| n == "master")
        .expect("pod on master");
    let (on_edge, _) = on.iter().find(|(_, n)| n == "edge1").expect("pod on edge1");
    denied(
        &["delete", "pod", on_master],
        r#"node "edge1" can only delete pods with spec.nodeName set to itself"#,
    );
    denied(
        &["label", "pod", on_edge, "x=y"],
        r#"User "system:node:edge1" cannot patch resource "pods" in API group "" in the namespace "default""#,
    );
    let o = Command::new(common::kubectl_bin())
        .arg("--kubeconfig")
        .arg(&node_kc)
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .args(["create", "-f", "-"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(DS.replace("agentd", "other").as_bytes())?;
            c.wait_with_output()
        })
        .expect("kubectl create");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(r#"User "system:node:edge1" cannot create resource "daemonsets" in API group "apps" in the namespace "default""#),
        "{err}"
    );
    // The status of its own pod: allowed (that is how it reports).
    allowed(&[
        "patch",
        "pod",
        on_edge,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"message":"hello"}}"#,
    ]);
    denied(
        &[
            "patch",
            "pod",
            on_master,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"message":"hello"}}"#,
        ],
        r#"node "edge1" can only update pod status for pods with spec.nodeName set to itself"#,
    );
}

#[test]
fn bad_tokens_and_wrong_hashes_are_refused() {
    let s = Server::up(1);
    let work = tempfile::tempdir().expect("tempdir");
    let url = server_url(&s.kubeconfig);
    let (token, hash) = create_token(&s, "1h");

    // A bootstrap token may only ask for certificates.
    let o = s.kubectl(&["--token", &token, "get", "nodes"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!(
            r#"User "system:bootstrap:{}" cannot list resource "nodes""#,
            &token[..6]
        )),
        "{err}"
    );
    assert!(
        s.kubectl(&["--token", &token, "get", "csr"])
            .status
            .success()
    );

    // A wrong secret, an unknown id and an expired token: 401.
    let wrong = format!("{}.0000000000000000", &token[..6]);
    for t in [wrong.as_str(), "zzzzzz.0123456789abcdef"] {
        let o = s.kubectl(&["--token", t, "get", "csr"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("Unauthorized"), "{t}: {err}");
    }
    let (short, _) = create_token(&s, "1s");
    wait_for(Duration::from_secs(30), "the short token to expire", || {
        let o = s.everynode(&["token", "list"]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.lines()
            .any(|l| l.starts_with(&short) && l.contains("expired"))
            .then_some(())
    });
    let o = s.kubectl(&["--token", &short, "get", "csr"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Unauthorized"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let expired_file = work.path().join("expired.token");
    std::fs::write(&expired_file, &short).expect("token file");
    let o = Command::new(env!("CARGO_BIN_EXE_everynode"))
        .args(["agent", "--server", &url, "--token-file"])
        .arg(&expired_file)
        .args([
            "--ca-cert-hash",
            &hash,
            "--node-name",
            "late",
            "--state-dir",
        ])
        .arg(work.path().join("late"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("agent");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("refused the join token (401 Unauthorized)"),
        "{err}"
    );

    // A CA hash that is not the cluster's: the agent refuses before sending the token.
    let good_file = work.path().join("good.token");
    std::fs::write(&good_file, &token).expect("token file");
    let bogus = format!("sha256:{}", "ab".repeat(32));
    let o = Command::new(env!("CARGO_BIN_EXE_everynode"))
        .args(["agent", "--server", &url, "--token-file"])
        .arg(&good_file)
        .args([
            "--ca-cert-hash",
            &bogus,
            "--node-name",
            "mitm",
            "--state-dir",
        ])
        .arg(work.path().join("mitm"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("agent");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!("not {bogus} (--ca-cert-hash): refusing to join")),
        "{err}"
    );
    assert!(csr_rows(&s).is_empty(), "no request was made");
    let o = s.kubectl(&["get", "node", "mitm"]);
    assert!(!o.status.success());

    // `token list` shows the tokens made here, the start-up one included.
    let list = String::from_utf8_lossy(&s.everynode(&["token", "list"]).stdout).into_owned();
    assert!(list.contains(&token), "{list}");
    let start_token = std::fs::read_to_string(s.data_dir().join("join-token")).expect("join-token");
    assert!(list.contains(start_token.trim()), "{list}");
}

/// A PEM certificate request for `cn` in organization `o`, base64 as `spec.request` wants.
fn request_b64(cn: &str, o: &str) -> String {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, o);
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let pem = p
        .serialize_request(&key)
        .expect("request")
        .pem()
        .expect("pem");
    base64::engine::general_purpose::STANDARD.encode(pem)
}

fn csr_yaml(name: &str, request: &str) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{ name: {name} }}\nspec:\n  request: {request}\n  signerName: kubernetes.io/kube-apiserver-client-kubelet\n  usages: [digital signature, client auth]\n"
    )
}

fn condition_of(s: &Server, name: &str) -> String {
    csr_rows(s)
        .into_iter()
        .find(|r| r[0] == name)
        .map(|r| r[5].clone())
        .unwrap_or_default()
}

#[test]
fn requests_from_others_wait_for_kubectl_certificate_approve() {
    let s = Server::up(1);
    let work = tempfile::tempdir().expect("tempdir");
    // The admin asks for a node certificate: not a bootstrapper nor that node, so the
    // approver leaves it to a human.
    let o = s.apply_yaml(&csr_yaml(
        "by-hand",
        &request_b64("system:node:manual", "system:nodes"),
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = s.apply_yaml(&csr_yaml(
        "refused",
        &request_b64("system:node:other", "system:nodes"),
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let row = rows(&s.ok(&["get", "csr", "by-hand"]));
    assert_eq!(row[1][3], "admin", "{row:?}");
    // A join afterwards is approved: the approver has seen the earlier requests.
    let (_agent, _) = join(&s, "edge1", work.path());
    assert_eq!(condition_of(&s, "by-hand"), "Pending");
    s.ok(&["certificate", "approve", "by-hand"]);
    s.ok(&["certificate", "deny", "refused"]);
    wait_for(
        Duration::from_secs(30),
        "the approved request issued",
        || (condition_of(&s, "by-hand") == "Approved,Issued").then_some(()),
    );
    assert_eq!(condition_of(&s, "refused"), "Denied");
    let cert = s.ok(&[
        "get",
        "csr",
        "by-hand",
        "-o",
        "jsonpath={.status.certificate}",
    ]);
    assert!(!cert.trim().is_empty());
    // Requests filter on their signer, as on Kubernetes.
    let kubelet = s.ok(&[
        "get",
        "csr",
        "--field-selector",
        "spec.signerName=kubernetes.io/kube-apiserver-client-kubelet",
        "-o",
        "name",
    ]);
    assert_eq!(kubelet.lines().count(), 3, "{kubelet}");
    let none = s.ok(&[
        "get",
        "csr",
        "--field-selector",
        "spec.signerName=example.com/other",
        "-o",
        "name",
    ]);
    assert!(none.trim().is_empty(), "{none}");
    // What is not a certificate request is refused with the field named.
    let o = s.apply_yaml(&csr_yaml("garbage", "bm90IGEgcmVxdWVzdA=="));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("spec.request: Invalid value") && err.contains("CERTIFICATE REQUEST"),
        "{err}"
    );
}

#[test]
fn a_node_gets_a_serving_certificate_for_its_own_addresses() {
    let s = Server::up(1);
    let work = tempfile::tempdir().expect("tempdir");
    let (_agent, state) = join(&s, "edge1", work.path());
    let ip = s.ok(&[
        "get",
        "node",
        "edge1",
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
    ]);
    assert!(!ip.trim().is_empty());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let names = vec![ip.trim().to_string(), "edge1".to_string()];
    let (cert, issued_again) = rt.block_on(async {
        let client = everynode_agent::join::client_from_kubeconfig(&state.join("kubeconfig"))
            .await
            .expect("node client");
        // A request for an address that is not the node's waits for a human ...
        let stray_dir = work.path().join("stray");
        std::fs::create_dir_all(&stray_dir).expect("dir");
        let stray_client = client.clone();
        let stray = tokio::spawn(async move {
            everynode_agent::join::serving_certificate(
                &stray_client,
                &stray_dir,
                "edge1",
                &["10.9.9.9".to_string()],
                Duration::from_secs(120),
            )
            .await
        });
        wait_for(Duration::from_secs(30), "the stray request", || {
            csr_rows(&s)
                .iter()
                .any(|r| r[2] == "kubernetes.io/kubelet-serving")
                .then_some(())
        });
        // ... while one for its own addresses, asked after it, is approved and issued
        // (so the approver has seen the stray one).
        let (cert, key) = everynode_agent::join::serving_certificate(
            &client,
            &state,
            "edge1",
            &names,
            Duration::from_secs(60),
        )
        .await
        .expect("serving certificate");
        assert!(key.contains("PRIVATE KEY"));
        let (again, _) = everynode_agent::join::serving_certificate(
            &client,
            &state,
            "edge1",
            &names,
            Duration::from_secs(60),
        )
        .await
        .expect("reused");
        stray.abort();
        (cert, again)
    });
    assert_eq!(cert, issued_again, "the stored certificate is reused");
    let rows = csr_rows(&s);
    let serving: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[2] == "kubernetes.io/kubelet-serving")
        .collect();
    assert_eq!(serving.len(), 2, "{rows:?}");
    let mut conditions: Vec<&str> = serving.iter().map(|r| r[5].as_str()).collect();
    conditions.sort();
    assert_eq!(conditions, ["Approved,Issued", "Pending"], "{rows:?}");
    assert!(serving.iter().all(|r| r[3] == "system:node:edge1"));
    // The certificate names the node's addresses and chains to the cluster CA.
    use x509_parser::prelude::FromDer;
    let (_, block) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).expect("pem");
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(&block.contents).expect("der");
    let ca_pem = std::fs::read_to_string(s.data_dir().join("ca.crt")).expect("ca.crt");
    let (_, ca_block) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).expect("ca pem");
    let (_, ca) =
        x509_parser::certificate::X509Certificate::from_der(&ca_block.contents).expect("ca der");
    c.verify_signature(Some(ca.public_key()))
        .expect("signed by the cluster CA");
    let sans = format!(
        "{:?}",
        c.subject_alternative_name().ok().flatten().map(|e| e.value)
    );
    assert!(sans.contains("edge1"), "{sans}");
}

/// A DaemonSet whose container writes its node's name to HOST/NODE.name and prints it
/// with `marker`, every 200 ms.
fn name_writer_ds(name: &str, marker: &str, host: &Path) -> String {
    let host = host.display();
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: writer
        image: busybox
        command: ["sh", "-c", "while [ -d {host} ]; do echo \"$NODE {marker}\"; echo \"$NODE\" > {host}/$NODE.name; sleep 0.2; done"]
        env:
        - name: NODE
          valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
        volumeMounts: [{{name: host, mountPath: {host}}}]
      volumes:
      - name: host
        hostPath: {{path: {host}, type: DirectoryOrCreate}}
"#
    )
}

/// The name of the pod of DaemonSet `app` on `node`, once there is one.
fn pod_on(s: &Server, app: &str, node: &str) -> String {
    let out = s.eventually(
        &format!("a {app} pod on {node}"),
        &[
            "get",
            "pods",
            "-l",
            &format!("app={app}"),
            "--field-selector",
            &format!("spec.nodeName={node}"),
            "-o",
            "name",
        ],
        |out| !out.trim().is_empty(),
    );
    out.trim().to_string()
}

#[test]
fn a_joined_machine_runs_real_processes_and_serves_their_logs() {
    let mut s = Server::up(1);
    let work = tempfile::tempdir().expect("tempdir");
    let host = tempfile::tempdir().expect("tempdir");
    let name = "proc-joined";
    let (mut agent, state) = join_with(
        &s,
        name,
        work.path(),
        &["--runtime", "process", "--node-ip", "127.0.0.7"],
    );
    // Registered by itself under NodeRestriction: its address, no role labels.
    let node = s.json(&["get", "node", name]);
    assert_eq!(
        node["status"]["addresses"][0]["address"], "127.0.0.7",
        "{node}"
    );
    assert_eq!(
        node["metadata"]["annotations"]["everynode.io/runtime"],
        "process"
    );
    let labels = node["metadata"]["labels"].as_object().expect("labels");
    assert!(
        labels
            .keys()
            .all(|k| !k.starts_with("node-role.kubernetes.io/")),
        "{labels:?}"
    );
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .expect("kubelet port");
    assert!(port > 0);

    let marker = format!("mk-joined-{}", std::process::id());
    let applied = s.apply_yaml(&name_writer_ds("writer", &marker, host.path()));
    assert!(applied.status.success(), "{applied:?}");
    let file = host.path().join(format!("{name}.name"));
    wait_for(LIMIT, "the joined node's process to write its file", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.trim() == name)
    });
    assert!(
        !processes_with(&marker).is_empty(),
        "a real process carries the marker"
    );
    let pod = pod_on(&s, "writer", name);
    s.eventually(
        "the pod Running (its status patched by the joined node)",
        &["get", &pod, "-o", "jsonpath={.status.phase}"],
        |out| out.trim() == "Running",
    );
    // Logs through the API server, which proxies to the agent's mTLS endpoint.
    s.eventually(
        "kubectl logs through the API server",
        &["logs", &pod, "--tail", "2"],
        |out| out.contains(&format!("{name} {marker}")),
    );

    // Deleting the DaemonSet stops the process and the node deletes its pod.
    s.ok(&["delete", "ds", "writer"]);
    wait_for(LIMIT, "the joined node's process to be gone", || {
        processes_with(&marker).is_empty().then_some(())
    });
    s.eventually(
        "the pods to be gone",
        &[
            "get",
            "pods",
            "-o",
            "name",
            "--field-selector",
            &format!("spec.nodeName={name}"),
        ],
        |out| out.trim().is_empty(),
    );

    // A clean stop (SIGTERM) stops the processes the agent runs.
    let marker2 = format!("mk-joined-stop-{}", std::process::id());
    let applied = s.apply_yaml(&name_writer_ds("writer2", &marker2, host.path()));
    assert!(applied.status.success(), "{applied:?}");
    wait_for(LIMIT, "the second DaemonSet's process", || {
        (!processes_with(&marker2).is_empty()).then_some(())
    });
    // The API server dies and comes back: the node reports both, its process runs on.
    let addr = kill_server(&mut s);
    let noticed = |agent: &Agent, what: &str| {
        wait_for(LIMIT, what, || agent.log().contains(what).then_some(()));
    };
    noticed(&agent, "lost contact with the API server");
    start_server_at(&mut s, &addr);
    noticed(&agent, "reconnected to the API server");
    assert!(!processes_with(&marker2).is_empty(), "the process ran on");

    agent.terminate();
    wait_for(LIMIT, "every process to stop with the agent", || {
        processes_with(&marker2).is_empty().then_some(())
    });
    let log = agent.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "NodeRestriction refused the process node something:\n{log}"
    );
    assert!(
        state.join("node").is_dir(),
        "the node's root under --state-dir"
    );

    // Started while the server is down (stored credential, no token): it retries the
    // registration, then runs its pod again once the server is back.
    let addr = kill_server(&mut s);
    let mut agent = Agent::start(
        &[
            "--server",
            &format!("https://{addr}"),
            "--node-name",
            name,
            "--state-dir",
            state.to_str().expect("utf-8 path"),
            "--runtime",
            "process",
            "--node-ip",
            "127.0.0.7",
        ],
        &work.path().join(format!("{name}-2.log")),
    );
    noticed(&agent, "registering the node; retrying");
    assert!(agent.running(), "the agent waits for the server");
    start_server_at(&mut s, &addr);
    wait_ready(&s, name);
    wait_for(LIMIT, "the pod's process to run again", || {
        (!processes_with(&marker2).is_empty()).then_some(())
    });
    agent.terminate();
    wait_for(LIMIT, "every process to stop with the agent", || {
        processes_with(&marker2).is_empty().then_some(())
    });
}
