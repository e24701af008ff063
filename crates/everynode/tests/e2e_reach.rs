//! e2e: reaching real daemon pods of `everynode up --runtime process --nodes 3` the ways
//! the seeds show: a headless Service through cluster DNS (`dig`), a ClusterIP Service
//! through the host's Service proxy, and NodeIP + hostPort; an unready pod leaves DNS
//! and the proxied backends until it is ready again. Needs root and iproute2 (the proxy
//! adds cluster IPs to lo) and `dig`; `.ci/run` installs both packages.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{Server, rows, wait_for};

const LIMIT: Duration = Duration::from_secs(90);
/// Ports no other e2e test uses: the pods' processes share the hosts 127.0.0.x.
const CONTAINER_PORT: u16 = 18431;
const HOST_PORT: u16 = 18432;
const NODES: [(&str, &str); 3] = [
    ("master", "127.0.0.1"),
    ("node1", "127.0.0.2"),
    ("node2", "127.0.0.3"),
];

/// A DaemonSet of small HTTP servers answering with their node's name, on every node
/// (the master's taint tolerated) not labelled `reach=off`, ready while
/// DIR/ready-NODE exists; a headless and a ClusterIP Service with its selector.
fn manifests(dir: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: whoami, namespace: default}}
spec:
  selector: {{matchLabels: {{app: whoami}}}}
  template:
    metadata: {{labels: {{app: whoami}}}}
    spec:
      tolerations: [{{key: node-role.kubernetes.io/master, operator: Exists, effect: NoSchedule}}]
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{{key: reach, operator: NotIn, values: ["off"]}}]
      containers:
      - name: whoami
        image: python3
        command: [python3, -c]
        args:
        - |
          import http.server, os
          name = os.environ["NODE_NAME"].encode()
          class H(http.server.BaseHTTPRequestHandler):
              def do_GET(self):
                  self.send_response(200)
                  self.send_header("Content-Length", str(len(name)))
                  self.end_headers()
                  self.wfile.write(name)
              def log_message(self, *a):
                  pass
          http.server.HTTPServer((os.environ["POD_IP"], {CONTAINER_PORT}), H).serve_forever()
        env:
        - name: NODE_NAME
          valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        ports: [{{name: http, containerPort: {CONTAINER_PORT}, hostPort: {HOST_PORT}}}]
        readinessProbe:
          exec: {{command: [sh, -c, 'test -f {dir}/ready-$NODE_NAME']}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: whoami-all, namespace: default}}
spec:
  clusterIP: None
  selector: {{app: whoami}}
  ports: [{{name: http, port: {CONTAINER_PORT}, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: whoami, namespace: default}}
spec:
  selector: {{app: whoami}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"#
    )
}

/// GETs http://ADDR/; the body of a 200 answer.
fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let sa: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

/// The node names answering `n` requests to `addr` (a failed request is an error).
fn answers(addr: &str, n: usize) -> Option<Vec<String>> {
    (0..n).map(|_| http_get(addr)).collect()
}

fn dig_short(s: &Server, name: &str) -> BTreeSet<String> {
    let file = s.data_dir().join("cluster-dns");
    let text = wait_for(LIMIT, "DATA_DIR/cluster-dns", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    let (host, port) = text.trim().rsplit_once(':').expect("host:port");
    let out = Command::new("dig")
        .arg(format!("@{host}"))
        .args(["-p", port, "+time=2", "+tries=2", "+short", name])
        .output()
        .expect("dig (Debian package dnsutils) must be installed; .ci/run installs it");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn dig_until(s: &Server, what: &str, name: &str, want: &[&str]) {
    let want: BTreeSet<String> = want.iter().map(|w| w.to_string()).collect();
    wait_for(LIMIT, what, || (dig_short(s, name) == want).then_some(()));
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Whether `ip` is an address of the loopback device.
fn on_lo(ip: &str) -> bool {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", "lo"])
        .output()
        .expect("ip (Debian package iproute2)");
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {ip}/32 "))
}

#[test]
fn daemon_pods_are_reached_by_dns_cluster_ip_and_host_port() {
    // A service range of its own, so parallel clusters on this host do not share
    // cluster IPs (the proxy adds them to lo).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let cidr = format!(
        "10.{}.{}.0/24",
        200 + std::process::id() % 50,
        (nanos >> 8) % 256
    );
    let s = Server::start_with(&[
        "up",
        "--runtime",
        "process",
        "--nodes",
        "3",
        "--service-cluster-ip-range",
        &cidr,
    ]);
    let ready = tempfile::tempdir().expect("tempdir");
    let dir = ready.path().to_str().expect("utf-8 path").to_string();
    for (node, _) in NODES {
        std::fs::write(ready.path().join(format!("ready-{node}")), "").expect("ready file");
    }
    let out = s.apply_yaml(&manifests(&dir));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.eventually(
        "three ready whoami pods",
        &["get", "pods", "-l", "app=whoami"],
        |out| {
            let r = rows(out);
            r.len() == 4 && r[1..].iter().all(|row| row[1] == "1/1")
        },
    );

    // Headless: one address per pod (a pod's IP is its node's IP here).
    let headless = "whoami-all.default.svc.cluster.local";
    dig_until(
        &s,
        "three A records",
        headless,
        &["127.0.0.1", "127.0.0.2", "127.0.0.3"],
    );

    // ClusterIP: the name resolves to the cluster IP, and 30 requests reach all nodes.
    let svc = s.json(&["get", "svc", "whoami"]);
    let cip = svc["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    dig_until(
        &s,
        "the cluster IP",
        "whoami.default.svc.cluster.local",
        &[&cip],
    );
    let front = format!("{cip}:80");
    wait_for(LIMIT, "the proxy to answer", || http_get(&front));
    assert!(on_lo(&cip), "{cip} is not on lo");
    let all = set(&["master", "node1", "node2"]);
    // The proxy follows the EndpointSlice through its own watch, which may still hold
    // the slice from before the last pods became ready: 30 answers in a row must reach
    // every node once it has caught up.
    wait_for(
        LIMIT,
        "30 answers through the cluster IP to reach every node",
        || {
            let got = answers(&front, 30)?;
            (got.into_iter().collect::<BTreeSet<String>>() == all).then_some(())
        },
    );

    // NodeIP + hostPort reaches that node's own pod (forwarded to the container port).
    for (node, ip) in NODES {
        let body = wait_for(LIMIT, &format!("{node}'s hostPort"), || {
            http_get(&format!("{ip}:{HOST_PORT}"))
        });
        assert_eq!(body, node);
        assert_eq!(
            http_get(&format!("{ip}:{CONTAINER_PORT}")).as_deref(),
            Some(node)
        );
    }

    // node1's pod turns unready: out of DNS and of the proxied backends, then back.
    std::fs::remove_file(ready.path().join("ready-node1")).expect("rm");
    dig_until(
        &s,
        "the unready pod to leave DNS",
        headless,
        &["127.0.0.1", "127.0.0.3"],
    );
    wait_for(LIMIT, "node1 to leave the proxied backends", || {
        answers(&front, 4)
            .filter(|a| !a.iter().any(|n| n == "node1"))
            .map(|_| ())
    });
    let got = answers(&front, 30).expect("30 answers");
    let reached: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(reached, set(&["master", "node2"]), "{got:?}");
    std::fs::write(ready.path().join("ready-node1"), "").expect("ready file");
    dig_until(
        &s,
        "the pod back in DNS",
        headless,
        &["127.0.0.1", "127.0.0.2", "127.0.0.3"],
    );
    wait_for(LIMIT, "node1 back behind the cluster IP", || {
        let got = answers(&front, 6)?;
        got.iter().any(|n| n == "node1").then_some(())
    });

    // node2 leaves the DaemonSet's nodes (labelled off): one address fewer.
    s.ok(&["label", "node", "node2", "reach=off"]);
    dig_until(&s, "two A records", headless, &["127.0.0.1", "127.0.0.2"]);
    wait_for(LIMIT, "node2 to leave the proxied backends", || {
        answers(&front, 4)
            .filter(|a| !a.iter().any(|n| n == "node2"))
            .map(|_| ())
    });

    // A clean stop takes the cluster IPs off lo again.
    let pid = s.pid().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for(LIMIT, "the cluster IP to leave lo", || {
        (!on_lo(&cip)).then_some(())
    });
    wait_for(LIMIT, "everynode to stop", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|st| st.contains(") Z ")))
        .then_some(())
    });
}
