//! Reaching daemon pods (the seeds' last section): Services with cluster IPs, the
//! EndpointSlices and Endpoints kept for them, cluster DNS answering `dig`, and host
//! ports on the scheduler, all driven through the real kubectl and `dig` (Debian's
//! `dnsutils`, installed by `.ci/run`).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{Server, rows, wait_for};

/// A DaemonSet on every node (the master's taint tolerated) serving a named port, a
/// headless Service and a ClusterIP Service with the same selector.
const AGENTS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/master, operator: Exists, effect: NoSchedule}]
      containers:
      - name: agent
        image: registry.k8s.io/agent:1.0
        ports: [{name: metrics, containerPort: 9100}]
---
apiVersion: v1
kind: Service
metadata: {name: agents, namespace: default}
spec:
  clusterIP: None
  selector: {app: agent}
  ports: [{name: metrics, port: 9100, targetPort: metrics}]
---
apiVersion: v1
kind: Service
metadata: {name: agent-any, namespace: default}
spec:
  selector: {app: agent}
  ports: [{name: metrics, port: 80, targetPort: metrics}]
"#;

/// The cluster DNS address `everynode up` wrote to DATA_DIR/cluster-dns.
fn dns_addr(s: &Server) -> (String, String) {
    let file = s.data_dir().join("cluster-dns");
    let text = wait_for(Duration::from_secs(30), "DATA_DIR/cluster-dns", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    let (host, port) = text.trim().rsplit_once(':').expect("host:port");
    (host.to_string(), port.to_string())
}

/// Runs `dig @host -p port ARGS` and returns its stdout.
fn dig(s: &Server, args: &[&str]) -> String {
    let (host, port) = dns_addr(s);
    let out = Command::new("dig")
        .arg(format!("@{host}"))
        .args(["-p", &port, "+time=2", "+tries=2"])
        .args(args)
        .output()
        .expect("dig (Debian package dnsutils) must be installed; .ci/run installs it");
    assert!(
        out.status.success(),
        "dig {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dig NAME +short` as a set of lines, polled until `want` holds.
fn dig_until(
    s: &Server,
    what: &str,
    args: &[&str],
    want: impl Fn(&BTreeSet<String>) -> bool,
) -> BTreeSet<String> {
    wait_for(Duration::from_secs(60), what, || {
        let mut a = args.to_vec();
        a.push("+short");
        let got: BTreeSet<String> = dig(s, &a)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        want(&got).then_some(got)
    })
}

/// Pod name → (IP, node) of the agent pods that are Running with an IP.
fn agent_pods(s: &Server) -> Vec<(String, String, String)> {
    let v = s.json(&["get", "pods", "-l", "app=agent"]);
    let mut out: Vec<(String, String, String)> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                p["status"]["podIP"].as_str()?.to_string(),
                p["spec"]["nodeName"].as_str()?.to_string(),
            ))
        })
        .collect();
    out.sort();
    out
}

/// Sets a pod's Ready condition the way a kubelet does when a readiness probe fails or
/// passes again (simulated nodes run no probes).
fn set_ready(s: &Server, pod: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    s.ok(&[
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "-p",
        &format!(r#"{{"status":{{"conditions":[{{"type":"Ready","status":"{status}"}}]}}}}"#),
    ]);
}

/// (address, ready) of every endpoint in the slices of `service`.
fn slice_endpoints(s: &Server, service: &str) -> BTreeSet<(String, bool)> {
    let v = s.json(&[
        "get",
        "endpointslices",
        "-l",
        &format!("kubernetes.io/service-name={service}"),
    ]);
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .flat_map(|sl| sl["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["addresses"][0].as_str().unwrap_or("").to_string(),
                e["conditions"]["ready"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn in_service_range(ip: &str) -> bool {
    let Ok(ip) = ip.parse::<std::net::Ipv4Addr>() else {
        return false;
    };
    let o = ip.octets();
    o[0] == 10 && (96..112).contains(&o[1])
}

#[test]
fn daemon_pods_are_reached_through_services_and_dns() {
    let s = Server::up(3);
    let o = s.apply_yaml(AGENTS);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pods = wait_for(Duration::from_secs(60), "three agent pods with IPs", || {
        let p = agent_pods(&s);
        (p.len() == 3).then_some(p)
    });
    let ips: BTreeSet<String> = pods.iter().map(|(_, ip, _)| ip.clone()).collect();

    // Headless Service: one A record per daemon pod.
    let name = "agents.default.svc.cluster.local";
    dig_until(&s, "three A records", &[name], |got| *got == ips);

    // ClusterIP Service: an address from 10.96.0.0/12, and DNS answers with it.
    let cip = s.ok(&[
        "get",
        "svc",
        "agent-any",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert!(in_service_range(&cip), "{cip}");
    dig_until(
        &s,
        "the cluster IP",
        &["agent-any.default.svc.cluster.local"],
        |got| got.len() == 1 && got.contains(&cip),
    );

    // SRV for the named port: the endpoints' port for the headless Service, the
    // Service port (and name) for the ClusterIP one.
    let srv = dig_until(
        &s,
        "three SRV records",
        &[&format!("_metrics._tcp.{name}"), "SRV"],
        |got| got.len() == 3,
    );
    for line in &srv {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&f[..3], ["0", "33", "9100"], "{line}");
        assert!(
            f[3].ends_with(".agents.default.svc.cluster.local."),
            "{line}"
        );
    }
    let srv = dig_until(
        &s,
        "one SRV record",
        &["_metrics._tcp.agent-any.default.svc.cluster.local", "SRV"],
        |got| got.len() == 1,
    );
    assert_eq!(
        srv.into_iter().next().as_deref(),
        Some("0 100 80 agent-any.default.svc.cluster.local.")
    );
    // Per-pod names of the headless Service.
    let first_ip = ips.iter().next().expect("an ip").clone();
    let dashed = format!("{}.{name}", first_ip.replace('.', "-"));
    dig_until(&s, "the per-pod record", &[&dashed], |got| {
        got.len() == 1 && got.contains(&first_ip)
    });

    // A name that does not exist: NXDOMAIN with the zone's SOA.
    let full = dig(&s, &["missing.default.svc.cluster.local"]);
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    assert!(full.contains("flags: qr aa"), "{full}");
    assert!(
        full.contains(
            "cluster.local.\t\t5\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local."
        ),
        "{full}"
    );
    let other = dig(&s, &["example.com"]);
    assert!(other.contains("status: REFUSED"), "{other}");
    // TCP answers the same.
    let tcp = dig(&s, &["+tcp", "+short", name]);
    assert_eq!(tcp.lines().count(), 3, "{tcp}");

    // kubectl's views.
    let svc = s.ok(&["get", "svc", "-o", "wide"]);
    let r = rows(&svc);
    assert_eq!(
        r[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let row = |n: &str| r.iter().find(|c| c[0] == n).cloned().expect(n);
    assert_eq!(
        row("agents")[..5],
        ["agents", "ClusterIP", "None", "<none>", "9100/TCP"]
    );
    assert_eq!(row("agents")[6], "app=agent");
    assert_eq!(
        row("agent-any")[..5],
        ["agent-any", "ClusterIP", cip.as_str(), "<none>", "80/TCP"]
    );
    assert_eq!(
        row("kubernetes")[..5],
        ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    );
    let slices = s.eventually(
        "the slice table",
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=agents",
        ],
        |out| rows(out).len() == 2,
    );
    let r = rows(&slices);
    assert_eq!(r[0], ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]);
    assert!(r[1][0].starts_with("agents-"), "{slices}");
    assert_eq!(r[1][1..3], ["IPv4", "9100"]);
    let listed: BTreeSet<String> = r[1][3].split(',').map(String::from).collect();
    assert_eq!(listed, ips);
    let o = s.kubectl(&["get", "endpoints", "agents"]);
    let eps = String::from_utf8_lossy(&o.stdout).into_owned();
    // As Kubernetes 1.33 warns of the deprecated API.
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
        ),
        "{o:?}"
    );
    let r = rows(&eps);
    assert_eq!(r[0], ["NAME", "ENDPOINTS", "AGE"]);
    let listed: BTreeSet<String> = r[1][1].split(',').map(String::from).collect();
    let with_port: BTreeSet<String> = ips.iter().map(|ip| format!("{ip}:9100")).collect();
    assert_eq!(listed, with_port);
    let describe = s.ok(&["describe", "svc", "agent-any"]);
    let field = |name: &str| -> String {
        describe
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} in:\n{describe}"))
    };
    assert_eq!(field("Name"), "agent-any");
    assert_eq!(field("Selector"), "app=agent");
    assert_eq!(field("Type"), "ClusterIP");
    assert_eq!(field("IP"), cip);
    assert_eq!(field("Port"), "metrics  80/TCP");
    assert_eq!(field("TargetPort"), "metrics/TCP");
    let listed: BTreeSet<String> = field("Endpoints").split(',').map(String::from).collect();
    assert_eq!(listed, with_port);
    assert_eq!(field("Events"), "<none>");

    // An unready pod leaves DNS and the ready endpoints, and comes back.
    let (pod, pod_ip, _) = pods[0].clone();
    set_ready(&s, &pod, false);
    let rest: BTreeSet<String> = ips.iter().filter(|ip| **ip != pod_ip).cloned().collect();
    dig_until(&s, "the unready pod to leave DNS", &[name], |got| {
        *got == rest
    });
    wait_for(Duration::from_secs(30), "ready=false in the slice", || {
        slice_endpoints(&s, "agents")
            .contains(&(pod_ip.clone(), false))
            .then_some(())
    });
    let ep = s.json(&["get", "endpoints", "agents"]);
    assert_eq!(
        ep["subsets"][0]["notReadyAddresses"][0]["ip"].as_str(),
        Some(pod_ip.as_str()),
        "{ep}"
    );
    set_ready(&s, &pod, true);
    dig_until(&s, "the pod back in DNS", &[name], |got| *got == ips);
    wait_for(Duration::from_secs(30), "ready=true again", || {
        let all = slice_endpoints(&s, "agents");
        (all.len() == 3 && all.iter().all(|(_, r)| *r)).then_some(())
    });

    // A node leaves: its daemon pod goes, and so does its address.
    let (_, gone_ip, node) = pods
        .iter()
        .find(|(_, _, n)| n != "master")
        .cloned()
        .expect("a worker's pod");
    let out = s.everynode(&["node", "remove", &node]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: BTreeSet<String> = ips.iter().filter(|ip| **ip != gone_ip).cloned().collect();
    dig_until(&s, "two A records", &[name], |got| *got == left);
}

#[test]
fn services_get_cluster_ips_that_survive_restarts() {
    let mut s = Server::start();
    // The default kubernetes Service points at the API server.
    let k = s.json(&["get", "svc", "kubernetes"]);
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(k["spec"]["ports"][0]["port"], 443);
    let ep = s.json(&["get", "endpoints", "kubernetes"]);
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    // A type patched down drops what only the old type allowed (node ports, the
    // load balancer's switches, the external traffic policy).
    s.ok(&["create", "service", "loadbalancer", "lb", "--tcp=80:8080"]);
    s.ok(&[
        "patch",
        "svc",
        "lb",
        "-p",
        r#"{"spec":{"type":"NodePort"}}"#,
    ]);
    let np = s.json(&["get", "svc", "lb"]);
    assert!(
        np["spec"].get("allocateLoadBalancerNodePorts").is_none(),
        "{np}"
    );
    assert!(
        np["spec"]["ports"][0]["nodePort"].as_i64().is_some(),
        "{np}"
    );
    s.ok(&[
        "patch",
        "svc",
        "lb",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    let cip = s.json(&["get", "svc", "lb"]);
    assert!(cip["spec"].get("externalTrafficPolicy").is_none(), "{cip}");
    assert!(cip["spec"]["ports"][0].get("nodePort").is_none(), "{cip}");
    s.ok(&["delete", "svc", "lb"]);
    s.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let web = s.json(&["get", "svc", "web"]);
    let ip = web["spec"]["clusterIP"].as_str().expect("ip").to_string();
    assert!(in_service_range(&ip), "{ip}");
    assert_eq!(web["spec"]["clusterIPs"], serde_json::json!([ip]));
    assert_eq!(web["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(web["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(web["spec"]["sessionAffinity"], "None");
    assert_eq!(web["spec"]["internalTrafficPolicy"], "Cluster");
    assert_eq!(
        web["spec"]["ports"][0],
        serde_json::json!({"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080})
    );
    // A requested free IP is honoured; a taken or out-of-range one is refused.
    s.ok(&[
        "create",
        "service",
        "clusterip",
        "dns",
        "--tcp=53",
        "--clusterip=10.96.0.10",
    ]);
    let err = s.fails(&[
        "create",
        "service",
        "clusterip",
        "dns2",
        "--tcp=53",
        "--clusterip=10.96.0.10",
    ]);
    assert!(
        err.contains(r#"Service "dns2" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"#),
        "{err}"
    );
    let err = s.fails(&[
        "create",
        "service",
        "clusterip",
        "far",
        "--tcp=53",
        "--clusterip=192.168.0.1",
    ]);
    assert!(
        err.contains("provided IP 192.168.0.1 is not in the valid range"),
        "{err}"
    );
    // Headless: no address.
    s.ok(&["create", "service", "clusterip", "hl", "--clusterip=None"]);
    let hl = s.json(&["get", "svc", "hl"]);
    assert_eq!(hl["spec"]["clusterIPs"], serde_json::json!(["None"]));
    // The address is immutable, and an update without it keeps it.
    let err = s.fails(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"clusterIP":"10.96.0.99"}}"#,
    ]);
    assert!(
        err.contains(r#"spec.clusterIP: Invalid value: "10.96.0.99": field is immutable"#),
        "{err}"
    );
    let mut replaced = web.clone();
    if let Some(m) = replaced["spec"].as_object_mut() {
        m.remove("clusterIP");
        m.remove("clusterIPs");
    }
    let o = s.with_stdin(&["replace", "-f", "-"], &replaced.to_string());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        s.json(&["get", "svc", "web"])["spec"]["clusterIP"],
        ip.as_str()
    );
    // NodePort Services get a node port from 30000-32767.
    s.ok(&["create", "service", "nodeport", "np", "--tcp=80:8080"]);
    let np = s.json(&["get", "svc", "np"])["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort");
    assert!((30000..=32767).contains(&np), "{np}");
    // Multiple ports need names.
    let err = s
        .with_stdin(
            &["apply", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"two"},"spec":{"ports":[{"port":80},{"port":81}]}}"#,
        )
        .stderr;
    assert!(
        String::from_utf8_lossy(&err).contains("spec.ports[0].name: Required value"),
        "{}",
        String::from_utf8_lossy(&err)
    );

    // After a crash the allocations are still known: the IP is not handed out again.
    s.crash_and_restart();
    let err = s.fails(&[
        "create",
        "service",
        "clusterip",
        "again",
        "--tcp=80",
        &format!("--clusterip={ip}"),
    ]);
    assert!(err.contains("provided IP is already allocated"), "{err}");
    // Deleting the Service frees its IP.
    s.ok(&["delete", "svc", "web"]);
    s.ok(&[
        "create",
        "service",
        "clusterip",
        "again",
        "--tcp=80",
        &format!("--clusterip={ip}"),
    ]);
    let table = s.ok(&["get", "svc"]);
    let r = rows(&table);
    assert_eq!(
        r[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let np_row = r.iter().find(|c| c[0] == "np").expect("np row");
    assert_eq!(np_row[1], "NodePort");
    assert_eq!(np_row[4], format!("80:{np}/TCP"));
}

#[test]
fn two_pods_with_one_host_port_do_not_share_a_node() {
    // master is tainted NoSchedule, so node1 is the only place for plain pods.
    let s = Server::up(2);
    let pod = |name: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"i","ports":[{{"containerPort":80,"hostPort":8080}}]}}]}}}}"#
        )
    };
    let o = s.apply_yaml(&pod("first"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.eventually(
        "first running on node1",
        &["get", "pod", "first", "-o", "wide"],
        |out| {
            rows(out)
                .get(1)
                .is_some_and(|r| r[2] == "Running" && r[6] == "node1")
        },
    );
    let o = s.apply_yaml(&pod("second"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = s.eventually(
        "FailedScheduling for the port",
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=second,reason=FailedScheduling",
        ],
        |out| out.contains("node(s) didn't have free ports for the requested pod ports"),
    );
    assert!(events.contains("0/2 nodes are available"), "{events}");
    let second = s.json(&["get", "pod", "second"]);
    assert_eq!(second["status"]["phase"], "Pending");
    assert!(second["spec"]["nodeName"].is_null(), "{second}");
    // The port frees up when the first pod goes.
    s.ok(&["delete", "pod", "first"]);
    s.eventually(
        "second scheduled",
        &["get", "pod", "second", "-o", "wide"],
        |out| rows(out).get(1).is_some_and(|r| r[6] == "node1"),
    );
}
