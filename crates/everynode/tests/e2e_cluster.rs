//! `everynode up` with simulated nodes, driven by the stock kubectl (issue 3): the seeds'
//! DaemonSets land one pod per eligible node; nodes come and go; labels and taints
//! decide; deleted pods come back; orphaned pods are adopted; a node too small for the
//! pod shows why.

mod common;

use std::collections::BTreeMap;

use common::{Server, example, rows};

/// `pod name -> node name` for the pods matching `selector` in `ns`.
fn pods_by_node(s: &Server, ns: &str, selector: &str) -> BTreeMap<String, String> {
    let v = s.json(&["get", "pods", "-n", ns, "-l", selector]);
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .map(|p| {
                    let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
                    (
                        node,
                        p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the running pods matching `selector` sit exactly on `nodes`.
fn wait_pods_on(s: &Server, ns: &str, selector: &str, nodes: &[&str]) -> BTreeMap<String, String> {
    let want: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    common::wait_for(
        std::time::Duration::from_secs(60),
        &format!("{selector} pods on {nodes:?}"),
        || {
            let v = s.json(&["get", "pods", "-n", ns, "-l", selector]);
            let items = v["items"].as_array().cloned().unwrap_or_default();
            let mut on: Vec<String> = items
                .iter()
                .filter(|p| {
                    p["metadata"]["deletionTimestamp"].is_null()
                        && p["status"]["phase"] == "Running"
                })
                .filter_map(|p| p["spec"]["nodeName"].as_str().map(String::from))
                .collect();
            on.sort();
            let all_gone_elsewhere = items.len() == want.len();
            (on == want && all_gone_elsewhere).then(|| pods_by_node(s, ns, selector))
        },
    )
}

#[test]
fn seed_daemonsets_land_one_pod_per_eligible_node() {
    let s = Server::up(3);
    let nodes = rows(&s.ok(&["get", "nodes"]));
    assert_eq!(nodes[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let names: Vec<&str> = nodes[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["master", "node1", "node2"]);
    assert_eq!(nodes[1][2], "control-plane,master");

    // Like a kubeadm cluster, kube-system runs kube-proxy on every node (seed 001's
    // `kubectl get daemonset --namespace=kube-system`), at system-node-critical priority.
    wait_pods_on(
        &s,
        "kube-system",
        "k8s-app=kube-proxy",
        &["master", "node1", "node2"],
    );
    let system = s.eventually(
        "kube-proxy ready everywhere",
        &["get", "daemonset", "--namespace=kube-system"],
        |out| {
            rows(out)
                .iter()
                .any(|r| r[0] == "kube-proxy" && r[1..6] == ["3", "3", "3", "3", "3"])
        },
    );
    assert_eq!(
        rows(&system)[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE"
        ]
    );
    let priority = s.ok(&[
        "get",
        "po",
        "-n",
        "kube-system",
        "-l",
        "k8s-app=kube-proxy",
        "-o",
        "jsonpath={.items[*].spec.priority}",
    ]);
    assert_eq!(priority, "2000001000 2000001000 2000001000");

    s.ok(&["apply", "-f", &example("fluentd-elasticsearch.yaml")]);
    s.ok(&["apply", "-f", &example("nginx-ds.yaml")]);
    s.ok(&["apply", "-f", &example("node-exporter.yaml")]);
    // Both tolerate the master's NoSchedule taint; node-exporter does not.
    wait_pods_on(
        &s,
        "kube-system",
        "name=fluentd-elasticsearch",
        &["master", "node1", "node2"],
    );
    wait_pods_on(&s, "default", "app=nginx", &["master", "node1", "node2"]);
    wait_pods_on(&s, "default", "name=node-exporter", &["node1", "node2"]);

    let wide = s.eventually(
        "nginx-ds status to settle",
        &["get", "ds", "nginx-ds", "-o", "wide"],
        |out| {
            rows(out)
                .get(1)
                .is_some_and(|r| r[1..6] == ["3", "3", "3", "3", "3"])
        },
    );
    let r = &rows(&wide)[1];
    assert_eq!(&r[6..7], ["<none>"]);
    assert_eq!(&r[8..], ["nginx", "nginx", "app=nginx"]);

    // `kubectl get po -o wide` as in the seeds: Running, an IP, the node.
    let po = rows(&s.ok(&["get", "po", "-l", "app=nginx", "-o", "wide"]));
    assert_eq!(
        po[0],
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    for row in &po[1..] {
        assert!(row[0].starts_with("nginx-ds-"), "{row:?}");
        assert_eq!(&row[1..4], ["1/1", "Running", "0"]);
        assert!(row[5].starts_with("10."), "pod IP {row:?}");
    }
    // host-network pods get the node's address.
    let exporter = s.json(&["get", "po", "-l", "name=node-exporter"]);
    for p in exporter["items"].as_array().expect("items") {
        assert_eq!(p["status"]["podIP"], p["status"]["hostIP"]);
    }

    // Daemon pods carry the owner, the revision hash, the generation and the node affinity.
    let pod = &s.json(&["get", "po", "-l", "app=nginx"])["items"][0];
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
    assert!(pod["metadata"]["labels"]["controller-revision-hash"].is_string());
    assert_eq!(pod["metadata"]["labels"]["pod-template-generation"], "1");
    let term = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0];
    assert_eq!(term["matchFields"][0]["key"], "metadata.name");
    assert_eq!(term["matchFields"][0]["values"][0], pod["spec"]["nodeName"]);
    let tolerations = pod["spec"]["tolerations"].to_string();
    for t in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    ] {
        assert!(
            tolerations.contains(t),
            "missing toleration {t}: {tolerations}"
        );
    }

    // Deleting the DaemonSet deletes its pods (background cascade by the garbage collector).
    s.ok(&["delete", "ds", "nginx-ds"]);
    wait_pods_on(&s, "default", "app=nginx", &[]);
}

#[test]
fn nodes_coming_and_going_and_labels_decide() {
    let s = Server::up(2);
    s.ok(&["apply", "-f", &example("nginx-ds.yaml")]);
    wait_pods_on(&s, "default", "app=nginx", &["master", "node1"]);

    let o = s.everynode(&["node", "add", "node7", "--labels", "disk=ssd"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_pods_on(&s, "default", "app=nginx", &["master", "node1", "node7"]);
    let o = s.everynode(&["node", "remove", "node7"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_pods_on(&s, "default", "app=nginx", &["master", "node1"]);

    // A nodeSelector: labelling a node in creates its pod, labelling it out deletes it.
    let ssd = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ssd-only
spec:
  selector:
    matchLabels: {app: ssd-only}
  template:
    metadata:
      labels: {app: ssd-only}
    spec:
      nodeSelector: {disk: ssd}
      containers:
      - name: c
        image: busybox:1.36
"#;
    let o = s.apply_yaml(ssd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.eventually(
        "ssd-only to want no node",
        &["get", "ds", "ssd-only"],
        |out| rows(out).get(1).is_some_and(|r| r[1] == "0"),
    );
    s.ok(&["label", "node", "node1", "disk=ssd"]);
    wait_pods_on(&s, "default", "app=ssd-only", &["node1"]);
    s.eventually("NODE SELECTOR column", &["get", "ds", "ssd-only"], |out| {
        rows(out)
            .get(1)
            .is_some_and(|r| r[1] == "1" && r[6] == "disk=ssd")
    });
    s.ok(&["label", "node", "node1", "disk-"]);
    wait_pods_on(&s, "default", "app=ssd-only", &[]);

    // A NoExecute taint the pods do not tolerate evicts them; removing it brings them back.
    s.ok(&["taint", "node", "node1", "dedicated=infra:NoExecute"]);
    wait_pods_on(&s, "default", "app=nginx", &["master"]);
    s.ok(&["taint", "node", "node1", "dedicated=infra:NoExecute-"]);
    wait_pods_on(&s, "default", "app=nginx", &["master", "node1"]);
}

#[test]
fn deleted_pods_come_back_and_orphans_are_adopted() {
    let s = Server::up(3);
    s.ok(&["apply", "-f", &example("nginx-ds.yaml")]);
    let before = wait_pods_on(&s, "default", "app=nginx", &["master", "node1", "node2"]);

    // Deleting a daemon pod: the controller creates a new one on that node.
    let victim = &before["node1"];
    s.ok(&["delete", "pod", victim]);
    let after = wait_pods_on(&s, "default", "app=nginx", &["master", "node1", "node2"]);
    assert_ne!(&after["node1"], victim);
    assert_eq!(after["node2"], before["node2"]);

    // A pod that fails is replaced (after the controller's back-off), with an event.
    let failing = after["node2"].clone();
    s.ok(&[
        "patch",
        "pod",
        &failing,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Failed"}}"#,
    ]);
    let replaced = s.eventually(
        "the failed pod to be replaced",
        &["get", "po", "-l", "app=nginx", "-o", "wide"],
        |out| {
            let r = rows(out);
            !r.iter().any(|row| row[0] == failing)
                && r.iter()
                    .filter(|row| {
                        row.get(6).map(String::as_str) == Some("node2") && row[2] == "Running"
                    })
                    .count()
                    == 1
        },
    );
    assert!(!replaced.contains(&failing));
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=FailedDaemonPod",
    ]);
    assert!(
        events.contains(&format!(
            "Found failed daemon pod default/{failing} on node node2, will try to kill it"
        )),
        "{events}"
    );

    // --cascade=orphan keeps the pods; a new DaemonSet with the same selector adopts them.
    let uids = |s: &Server| -> BTreeMap<String, String> {
        let v = s.json(&["get", "po", "-l", "app=nginx"]);
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    p["metadata"]["uid"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let pods_before = uids(&s);
    // kubectl waits for the DaemonSet to be gone; the collector's second pass (the
    // orphan finalizer's removal) follows the first at once, not at its 30 s resync.
    s.ok(&[
        "delete",
        "ds",
        "nginx-ds",
        "--cascade=orphan",
        "--timeout=20s",
    ]);
    s.eventually(
        "the pods to lose their owner",
        &["get", "po", "-l", "app=nginx", "-o", "json"],
        |out| {
            let v: serde_json::Value = serde_json::from_str(out).unwrap_or_default();
            v["items"].as_array().is_some_and(|items| {
                items.len() == 3
                    && items
                        .iter()
                        .all(|p| p["metadata"]["ownerReferences"].is_null())
            })
        },
    );
    s.ok(&["create", "-f", &example("nginx-ds.yaml")]);
    let ds_uid = s.json(&["get", "ds", "nginx-ds"])["metadata"]["uid"].clone();
    s.eventually(
        "the new DaemonSet to adopt the pods",
        &["get", "po", "-l", "app=nginx", "-o", "json"],
        |out| {
            let v: serde_json::Value = serde_json::from_str(out).unwrap_or_default();
            v["items"].as_array().is_some_and(|items| {
                items.len() == 3
                    && items
                        .iter()
                        .all(|p| p["metadata"]["ownerReferences"][0]["uid"] == ds_uid)
            })
        },
    );
    assert_eq!(uids(&s), pods_before, "the same pods, not new ones");
    let restarts = s.ok(&[
        "get",
        "po",
        "-l",
        "app=nginx",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].restartCount}",
    ]);
    assert!(restarts.split_whitespace().all(|r| r == "0"), "{restarts}");
    s.eventually(
        "status of the adopted pods",
        &["get", "ds", "nginx-ds"],
        |out| {
            rows(out)
                .get(1)
                .is_some_and(|r| r[1..6] == ["3", "3", "3", "3", "3"])
        },
    );

    // The old --cascade=false spelling orphans too.
    s.ok(&[
        "delete",
        "ds",
        "nginx-ds",
        "--cascade=false",
        "--timeout=20s",
    ]);
    s.eventually(
        "orphans after --cascade=false",
        &["get", "po", "-l", "app=nginx", "-o", "json"],
        |out| {
            let v: serde_json::Value = serde_json::from_str(out).unwrap_or_default();
            v["items"].as_array().is_some_and(|items| {
                items.len() == 3
                    && items
                        .iter()
                        .all(|p| p["metadata"]["ownerReferences"].is_null())
            })
        },
    );
}

#[test]
fn a_node_too_small_shows_a_pending_pod_with_the_reason() {
    let s = Server::up(2);
    let o = s.everynode(&["node", "add", "tiny", "--memory", "100Mi"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // fluentd-elasticsearch requests 200Mi of memory.
    s.ok(&["apply", "-f", &example("fluentd-elasticsearch.yaml")]);
    // The daemon pod meant for `tiny` (its required affinity names the node).
    let name = common::wait_for(
        std::time::Duration::from_secs(60),
        "the pod for tiny",
        || {
            let v = s.json(&[
                "get",
                "po",
                "-n",
                "kube-system",
                "-l",
                "name=fluentd-elasticsearch",
            ]);
            v["items"].as_array()?.iter().find_map(|p| {
            let term = &p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
            (term["matchFields"][0]["values"][0] == "tiny").then(|| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        })
        },
    );
    let pending = s.ok(&["get", "po", "-n", "kube-system", &name, "-o", "wide"]);
    let row = &rows(&pending)[1];
    assert_eq!(
        (row[2].as_str(), row[6].as_str()),
        ("Pending", "<none>"),
        "{pending}"
    );
    let describe = s.eventually(
        "FailedScheduling in describe",
        &["describe", "po", "-n", "kube-system", &name],
        |out| out.contains("FailedScheduling"),
    );
    assert!(
        describe.contains("0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector."),
        "{describe}"
    );
    let cond = s.ok(&[
        "get",
        "po",
        "-n",
        "kube-system",
        &name,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}",
    ]);
    assert_eq!(cond.trim(), "Unschedulable");
    s.eventually(
        "the DaemonSet counts the unready pod",
        &["get", "ds", "-n", "kube-system", "fluentd-elasticsearch"],
        |out| rows(out).get(1).is_some_and(|r| r[1..4] == ["3", "3", "2"]),
    );
}

#[test]
fn a_silent_node_turns_unknown_is_tainted_and_loses_non_daemon_pods() {
    let s = Server::start_with(&[
        "up",
        "--nodes",
        "2",
        "--ready-delay-ms",
        "100",
        "--node-monitor-grace-seconds",
        "2",
    ]);
    // A node with no agent behind it: nothing renews its Lease.
    let silent = r#"
apiVersion: v1
kind: Node
metadata:
  name: silent
  labels: {kubernetes.io/hostname: silent, kubernetes.io/os: linux}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
"#;
    let o = s.apply_yaml(silent);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.ok(&["apply", "-f", &example("nginx-ds.yaml")]);
    // A pod that tolerates an unreachable node for one second only.
    let short = r#"
apiVersion: v1
kind: Pod
metadata:
  name: short-lived
spec:
  nodeName: silent
  containers:
  - name: c
    image: busybox:1.36
  tolerations:
  - key: node.kubernetes.io/unreachable
    operator: Exists
    effect: NoExecute
    tolerationSeconds: 1
"#;
    let o = s.apply_yaml(short);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    s.eventually(
        "the silent node to become NotReady",
        &["get", "nodes", "silent"],
        |out| rows(out).get(1).is_some_and(|r| r[1] == "NotReady"),
    );
    let ready = s.ok(&[
        "get",
        "node",
        "silent",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(ready.trim(), "Unknown");
    s.eventually(
        "the unreachable taints",
        &[
            "get",
            "node",
            "silent",
            "-o",
            "jsonpath={.spec.taints[*].effect}",
        ],
        |out| out.contains("NoSchedule") && out.contains("NoExecute"),
    );
    let keys = s.ok(&[
        "get",
        "node",
        "silent",
        "-o",
        "jsonpath={.spec.taints[*].key}",
    ]);
    assert!(
        keys.split_whitespace()
            .all(|k| k == "node.kubernetes.io/unreachable"),
        "{keys}"
    );

    // The short-lived pod is evicted (marked for deletion; no kubelet will confirm it).
    s.eventually(
        "the short-lived pod to be evicted",
        &[
            "get",
            "pod",
            "short-lived",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ],
        |out| !out.trim().is_empty(),
    );
    // The daemon pod tolerates unreachable without a limit: it stays.
    let ds_pod = s.ok(&[
        "get",
        "po",
        "-l",
        "app=nginx",
        "--field-selector",
        "spec.nodeName=silent",
        "-o",
        "jsonpath={.items[*].metadata.deletionTimestamp}",
    ]);
    assert!(
        ds_pod.trim().is_empty(),
        "daemon pod marked for deletion: {ds_pod}"
    );
    // Every pod got the default 300 s tolerations unless it had its own.
    let defaults = s.ok(&[
        "get",
        "po",
        "-l",
        "app=nginx",
        "-o",
        "jsonpath={.items[0].spec.tolerations[*].tolerationSeconds}",
    ]);
    assert!(
        defaults.trim().is_empty(),
        "daemon pods tolerate forever: {defaults}"
    );
}

/// The controllers speak only the Kubernetes API: `everynode controller` drives a
/// cluster it does not host (here a bare `everynode server`, standing in for a real
/// Kubernetes whose own daemonset controller is off).
#[test]
fn the_daemonset_controller_runs_standalone_against_any_api_server() {
    let s = Server::start();
    for n in ["a", "b"] {
        let node = format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n  labels: {{kubernetes.io/hostname: {n}}}\n"
        );
        let o = s.apply_yaml(&node);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut controller = std::process::Command::new(env!("CARGO_BIN_EXE_everynode"))
        .args(["controller", "--kubeconfig"])
        .arg(&s.kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the controller");
    s.ok(&["apply", "-f", &example("nginx-ds.yaml")]);
    // No scheduler and no kubelets here: the pods are created, pinned to their nodes by
    // affinity, and wait to be scheduled, exactly as the controller leaves them.
    let out = s.eventually("two daemon pods, one per node", &["get", "po", "-l", "app=nginx", "-o", "json"], |out| {
        let v: serde_json::Value = serde_json::from_str(out).unwrap_or_default();
        let mut nodes: Vec<String> = v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|p| {
                        p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
                            ["matchFields"][0]["values"][0]
                            .as_str()
                            .map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default();
        nodes.sort();
        nodes == ["a", "b"]
    });
    assert!(out.contains("nginx-ds-"));
    s.eventually(
        "the status to count both nodes",
        &["get", "ds", "nginx-ds"],
        |out| rows(out).get(1).is_some_and(|r| r[1] == "2" && r[2] == "2"),
    );
    let _ = controller.kill();
    let _ = controller.wait();
}

/// A node that goes silent has its pods marked not Ready (the DaemonSet counts them
/// unready and unavailable); heard from again, it reports them Ready. A cordoned node
/// carries the unschedulable taint, which daemon pods tolerate.
#[test]
fn pods_of_a_silent_node_turn_unready_and_back_and_a_cordon_taints_the_node() {
    let s = Server::start_with(&[
        "up",
        "--nodes",
        "2",
        "--node-monitor-grace-seconds",
        "2",
        "--node-status-report-seconds",
        "1",
    ]);
    // A node that is fine keeps reporting so: its conditions' heartbeat moves on.
    let beats = |s: &Server| {
        s.ok(&[
            "get",
            "node",
            "node1",
            "-o",
            "jsonpath={.status.conditions[*].lastHeartbeatTime}",
        ])
    };
    s.eventually(
        "node1 Ready",
        &[
            "get",
            "node",
            "node1",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
        ],
        |o| o == "True",
    );
    let before = beats(&s);
    let after = common::wait_for(
        std::time::Duration::from_secs(30),
        "a newer heartbeat",
        || {
            let now = beats(&s);
            (now != before).then_some(now)
        },
    );
    let times: Vec<&str> = after.split_whitespace().collect();
    assert_eq!(times.len(), 4, "{after}");
    assert!(times.iter().all(|t| *t == times[0]), "{after}");
    let everywhere = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: everywhere
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      tolerations: [{operator: Exists}]
      containers: [{name: c, image: busybox:1.36}]
"#;
    let o = s.apply_yaml(everywhere);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE ...
    let counts = |want: [&'static str; 5]| {
        move |out: &str| rows(out).get(1).is_some_and(|r| r[1..6] == want)
    };
    s.eventually(
        "two ready daemon pods",
        &["get", "ds", "everywhere"],
        counts(["2", "2", "2", "2", "2"]),
    );
    // `kubectl get` of the daemon pod on node1, printing `jsonpath`.
    let on_node1 = |jsonpath: &str| -> Vec<String> {
        [
            "get",
            "po",
            "-l",
            "app=everywhere",
            "--field-selector",
            "spec.nodeName=node1",
            "-o",
            &format!("jsonpath={jsonpath}"),
        ]
        .map(String::from)
        .to_vec()
    };
    let ready = on_node1("{.items[*].status.conditions[?(@.type==\"Ready\")].status}");
    let ready_on_node1: Vec<&str> = ready.iter().map(String::as_str).collect();
    assert_eq!(s.ok(&ready_on_node1).trim(), "True");

    let o = s.everynode(&["node", "stop", "node1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.eventually("node1's pod marked not Ready", &ready_on_node1, |out| {
        out.trim() == "False"
    });
    s.eventually(
        "the DaemonSet to count it unready and unavailable",
        &["get", "ds", "everywhere"],
        counts(["2", "2", "1", "2", "1"]),
    );
    let name = on_node1("{.items[0].metadata.name}");
    let pod = s.ok(&name.iter().map(String::as_str).collect::<Vec<_>>());
    s.eventually(
        "a NodeNotReady event on the pod",
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={},reason=NodeNotReady", pod.trim()),
            "-o",
            "jsonpath={.items[*].message}",
        ],
        |out| out.contains("Node is not ready"),
    );

    let o = s.everynode(&["node", "start", "node1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.eventually("node1's pod Ready again", &ready_on_node1, |out| {
        out.trim() == "True"
    });
    s.eventually(
        "two ready daemon pods again",
        &["get", "ds", "everywhere"],
        counts(["2", "2", "2", "2", "2"]),
    );

    let taints = [
        "get",
        "node",
        "node1",
        "-o",
        "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
    ];
    s.ok(&["cordon", "node1"]);
    s.eventually("the unschedulable taint", &taints, |out| {
        out.split_whitespace()
            .any(|t| t == "node.kubernetes.io/unschedulable:NoSchedule")
    });
    // Daemon pods tolerate it: the pod stays, and the DaemonSet still wants it there.
    let ds = s.ok(&["get", "ds", "everywhere"]);
    assert!(counts(["2", "2", "2", "2", "2"])(&ds), "{ds}");
    s.ok(&["uncordon", "node1"]);
    s.eventually("the unschedulable taint gone", &taints, |out| {
        !out.contains("node.kubernetes.io/unschedulable")
    });
}

/// A pod runs as its namespace's default ServiceAccount (every namespace has one) or the
/// one it names, which must exist: the seed's fluentd DaemonSet, applied before its
/// ServiceAccount, reports FailedCreate with kube-apiserver's reason and lands once the
/// ServiceAccount is there. exec, attach and port-forward reach the server (discovery
/// lists the subresources) and say why they cannot work, instead of a bare NotFound.
#[test]
fn pods_run_as_the_default_service_account_and_exec_says_why_it_cannot() {
    let s = Server::up(2);
    s.ok(&["run", "p", "--image=nginx"]);
    s.eventually(
        "the pod running",
        &["get", "pod", "p", "-o", "jsonpath={.status.phase}"],
        |out| out == "Running",
    );
    let node = s.ok(&["get", "pod", "p", "-o", "jsonpath={.spec.nodeName}"]);
    for (args, what) in [
        (&["exec", "p", "--", "ls"][..], "run commands in"),
        (&["attach", "p"][..], "attach to"),
        (&["port-forward", "p", "18080:80"][..], "forward ports to"),
    ] {
        let err = s.fails(args);
        let want = format!(
            "pod \"p\" runs on node \"{node}\", and everynode's node agents do not {what} containers"
        );
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    // Like every pod, it runs as its namespace's default ServiceAccount.
    let described = s.ok(&["describe", "pod", "p"]);
    assert!(
        described
            .lines()
            .any(|l| l.starts_with("Service Account:") && l.trim_end().ends_with("default")),
        "{described}"
    );
    s.ok(&["create", "namespace", "team"]);
    assert_eq!(
        s.ok(&["get", "sa", "-n", "team", "-o", "name"]).trim(),
        "serviceaccount/default"
    );
    let err = s.fails(&[
        "run",
        "q",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"serviceAccountName":"missing"}}"#,
    ]);
    assert!(
        err.contains("pods \"q\" is forbidden: error looking up service account default/missing: serviceaccount \"missing\" not found"),
        "{err}"
    );
    s.ok(&["apply", "-f", &example("fluentd.yaml")]);
    s.eventually(
        "fluentd's FailedCreate",
        &["describe", "ds", "fluentd", "-n", "kube-system"],
        |out| {
            out.lines().any(|l| {
                l.contains("FailedCreate")
                    // Named by its generateName, as admission sees it.
                    && l.contains("Error creating: pods \"fluentd-\" is forbidden: error looking up service account kube-system/fluentd: serviceaccount \"fluentd\" not found")
            })
        },
    );
    s.ok(&["apply", "-f", &example("fluentd-serviceaccount.yaml")]);
    wait_pods_on(&s, "kube-system", "app=fluentd", &["master", "node1"]);

    // A pod whose ConfigMap volume is missing stays ContainerCreating, with the
    // kubelet's FailedMount, until the ConfigMap is there.
    let mounted = "apiVersion: v1\nkind: Pod\nmetadata: {name: cfg}\nspec:\n  containers: [{name: c, image: nginx}]\n  volumes: [{name: conf, configMap: {name: later}}]\n";
    let o = s.apply_yaml(mounted);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.eventually(
        "FailedMount",
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=cfg,reason=FailedMount",
            "-o",
            "jsonpath={.items[*].message}",
        ],
        |out| {
            out.contains(
                "MountVolume.SetUp failed for volume \"conf\" : configmap \"later\" not found",
            )
        },
    );
    let waiting = s.ok(&[
        "get",
        "pod",
        "cfg",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
    ]);
    assert_eq!(waiting, "ContainerCreating");
    s.ok(&["create", "configmap", "later", "--from-literal=a=b"]);
    s.eventually(
        "cfg running",
        &["get", "pod", "cfg", "-o", "jsonpath={.status.phase}"],
        |out| out == "Running",
    );

    let err = s.fails(&["exec", "nope", "--", "ls"]);
    assert!(err.contains("pods \"nope\" not found"), "{err}");
    let subs = s.ok(&["get", "--raw", "/api/v1"]);
    for sub in ["pods/exec", "pods/attach", "pods/portforward"] {
        assert!(
            subs.contains(&format!("\"name\":\"{sub}\"")),
            "{sub}: {subs}"
        );
    }
}

#[test]
fn an_image_set_in_place_restarts_the_simulated_container() {
    let s = Server::up(2);
    s.ok(&["run", "p", "--image=nginx"]);
    let status =
        |s: &Server| s.json(&["get", "pod", "p"])["status"]["containerStatuses"][0].clone();
    let first = common::wait_for(std::time::Duration::from_secs(60), "p running", || {
        let st = status(&s);
        st["state"]["running"].is_object().then_some(st)
    });
    assert_eq!(first["restartCount"], 0);

    // The kubelet restarts the container with the new image.
    s.ok(&["set", "image", "pod/p", "p=nginx:edited"]);
    let st = common::wait_for(std::time::Duration::from_secs(60), "p restarted", || {
        let st = status(&s);
        (st["image"] == "nginx:edited" && st["state"]["running"].is_object()).then_some(st)
    });
    assert_eq!(st["restartCount"], 1, "{st}");
    assert_ne!(st["containerID"], first["containerID"], "{st}");
    assert_eq!(
        st["lastState"]["terminated"]["containerID"],
        first["containerID"]
    );
    assert_eq!(st["ready"], true);
    s.eventually(
        "the Killing event",
        &["get", "events", "--field-selector", "involvedObject.name=p"],
        |o| o.contains("Container p definition changed, will be restarted"),
    );

    // An image that does not pull: ErrImagePull, then ImagePullBackOff, not Ready.
    s.ok(&["set", "image", "pod/p", "p=nginx:non-existent"]);
    s.eventually("p ImagePullBackOff", &["get", "pod", "p"], |o| {
        rows(o)
            .get(1)
            .is_some_and(|r| r[1] == "0/1" && r[2] == "ImagePullBackOff")
    });
    let st = status(&s);
    assert_eq!(st["image"], "nginx:non-existent");
    assert_eq!(st["restartCount"], 1, "{st}");
    let described = s.ok(&["describe", "pod", "p"]);
    assert!(
        described.contains("Failed to pull image \"nginx:non-existent\""),
        "{described}"
    );

    // Fixed: it runs again, one restart more.
    s.ok(&["set", "image", "pod/p", "p=nginx:fixed"]);
    let st = common::wait_for(std::time::Duration::from_secs(60), "p fixed", || {
        let st = status(&s);
        (st["image"] == "nginx:fixed" && st["state"]["running"].is_object()).then_some(st)
    });
    assert_eq!(st["restartCount"], 2, "{st}");

    // The same event again is counted on the first, as client-go's recorder does.
    s.ok(&["set", "image", "pod/p", "p=nginx:non-existent"]);
    s.eventually(
        "ErrImagePull counted twice",
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=p",
            "-o",
            "jsonpath={range .items[*]}{.message}={.count}/{.source.host}{\"\\n\"}{end}",
        ],
        |o| {
            o.lines()
                .filter_map(|l| l.strip_prefix("Error: ErrImagePull=2/"))
                .any(|host| !host.is_empty())
        },
    );
}
