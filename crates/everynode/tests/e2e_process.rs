//! e2e: `everynode up --runtime process --nodes 3` with the real kubectl. DaemonSet pods
//! run as real host processes: the tests look at the files they write, at /proc, and at
//! what `kubectl logs` shows.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Proc, Server, processes_with, rows, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

/// Session leaders among them: one per container instance.
fn leaders(marker: &str) -> Vec<Proc> {
    processes_with(marker)
        .into_iter()
        .filter(|p| p.pid == p.session)
        .collect()
}

fn environ(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"))
        .unwrap_or_default()
}

/// A DaemonSet whose container writes `NODE COUNTER` to HOST/NODE.count, and the same
/// with the marker to stdout, every 200 ms. Its readiness probe wants HOST/ready-NODE or
/// HOST/ready-NODE-VERSION.
fn counter_ds(name: &str, marker: &str, host: &Path, version: &str, extra_script: &str) -> String {
    let host = host.display();
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 1}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: loop
        image: busybox
        command: ["sh", "-c", "{extra_script}i=0; while true; do i=$((i+1)); echo \"$NODE $i {marker}\"; echo \"$NODE $i\" > {host}/$NODE.count; sleep 0.2; done"]
        env:
        - name: NODE
          valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
        - name: VERSION
          value: "{version}"
        readinessProbe:
          exec: {{command: ["sh", "-c", "test -f {host}/ready-$NODE || test -f {host}/ready-$NODE-$VERSION"]}}
          periodSeconds: 1
        volumeMounts: [{{name: host, mountPath: {host}}}]
      volumes:
      - name: host
        hostPath: {{path: {host}, type: DirectoryOrCreate}}
"#
    )
}

fn start() -> Server {
    let s = Server::up_process(3);
    s.eventually("three Ready process nodes", &["get", "nodes"], |out| {
        let r = rows(out);
        r.len() == 4 && r[1..].iter().all(|row| row[1] == "Ready")
    });
    s
}

fn apply(s: &Server, yaml: &str) {
    let o = s.apply_yaml(yaml);
    assert!(
        o.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn pods(s: &Server, app: &str) -> Vec<Value> {
    s.json(&["get", "pods", "-l", &format!("app={app}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn pod_on(s: &Server, app: &str, node: &str) -> Option<Value> {
    pods(s, app)
        .into_iter()
        .find(|p| p["spec"]["nodeName"] == node && p["metadata"]["deletionTimestamp"].is_null())
}

fn container_pid(pod: &Value) -> Option<i32> {
    pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()?
        .strip_prefix("process://")?
        .parse()
        .ok()
}

fn counter(host: &Path, node: &str) -> Option<u64> {
    let text = std::fs::read_to_string(host.join(format!("{node}.count"))).ok()?;
    let (n, i) = text.trim().split_once(' ')?;
    (n == node).then_some(())?;
    i.parse().ok()
}

/// Waits for both workers' processes to run and count.
fn wait_running(s: &Server, app: &str, host: &Path, marker: &str) {
    for node in ["node1", "node2"] {
        let first = wait_for(LIMIT, &format!("{node}'s counter file"), || {
            counter(host, node)
        });
        wait_for(LIMIT, &format!("{node}'s counter to advance"), || {
            counter(host, node).filter(|n| *n > first)
        });
    }
    wait_for(LIMIT, "one process per worker", || {
        (leaders(marker).len() == 2).then_some(())
    });
    wait_for(LIMIT, "both pods to report a running process", || {
        let p = pods(s, app);
        (p.len() == 2 && p.iter().all(|p| container_pid(p).is_some())).then_some(())
    });
}

#[test]
fn daemonset_runs_one_real_process_per_node_with_logs_and_readiness() {
    let s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let marker = format!("mk-basic-{}", std::process::id());
    apply(&s, &counter_ds("counter", &marker, host.path(), "v1", ""));
    wait_running(&s, "counter", host.path(), &marker);

    // One process per eligible node (the master is tainted), each the pod's process.
    let procs = leaders(&marker);
    assert_eq!(procs.len(), 2, "{procs:?}");
    assert!(
        !host.path().join("master.count").exists(),
        "the tainted master runs nothing"
    );
    for node in ["node1", "node2"] {
        let pod = pod_on(&s, "counter", node).expect("pod");
        let pid = container_pid(&pod).expect("pid");
        let p = procs
            .iter()
            .find(|p| p.pid == pid)
            .expect("the pod's process runs");
        assert!(p.cmdline.starts_with("sh -c "), "{}", p.cmdline);
        assert!(environ(pid).contains(&format!("NODE={node}\n")));
        let ip = if node == "node1" {
            "127.0.0.2"
        } else {
            "127.0.0.3"
        };
        assert_eq!(pod["status"]["podIP"], ip);
        assert_eq!(pod["status"]["hostIP"], ip);
    }

    // Readiness: nobody is ready until the probe's file exists.
    let ready_of = |s: &Server| {
        let out = s.ok(&["get", "pods", "-l", "app=counter", "-o", "wide"]);
        rows(&out)[1..]
            .iter()
            .map(|r| (r[6].clone(), r[1].clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = ready_of(&s);
    assert!(before.values().all(|r| r == "0/1"), "{before:?}");
    std::fs::write(host.path().join("ready-node1"), "").expect("ready file");
    s.eventually(
        "node1's pod READY 1/1",
        &["get", "pods", "-o", "wide"],
        |out| {
            rows(out)
                .iter()
                .any(|r| r.get(6).map(String::as_str) == Some("node1") && r[1] == "1/1")
        },
    );
    assert_eq!(
        ready_of(&s).get("node2").map(String::as_str),
        Some("0/1"),
        "node2 has no ready file"
    );
    std::fs::remove_file(host.path().join("ready-node1")).expect("rm");
    s.eventually(
        "node1's pod unready again",
        &["get", "pods", "-o", "wide"],
        |out| {
            rows(out)
                .iter()
                .any(|r| r.get(6).map(String::as_str) == Some("node1") && r[1] == "0/1")
        },
    );

    // Logs: what the process printed, --tail, ds/NAME, and -f.
    let pod = pod_on(&s, "counter", "node1").expect("pod");
    let name = pod["metadata"]["name"].as_str().expect("name").to_string();
    let logs = s.ok(&["logs", &name]);
    assert!(logs.lines().count() >= 2, "{logs}");
    assert!(
        logs.lines()
            .all(|l| l.starts_with("node1 ") && l.ends_with(&marker)),
        "{logs}"
    );
    let tail = s.ok(&["logs", &name, "--tail", "1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let stamped = s.ok(&["logs", &name, "-c", "loop", "--tail", "2", "--timestamps"]);
    for line in stamped.lines() {
        let (ts, rest) = line.split_once(' ').expect("timestamp first");
        assert!(ts.ends_with('Z') && ts.contains('T'), "{line}");
        assert!(rest.starts_with("node1 "), "{line}");
    }
    let via_ds = s.ok(&["logs", "ds/counter", "--tail", "1"]);
    assert!(via_ds.contains(&marker), "{via_ds}");
    let last = |text: &str| -> u64 {
        text.lines()
            .rev()
            .find_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    let seen = last(&s.ok(&["logs", &name]));
    let mut follow = s
        .command()
        .args(["logs", "-f", &name, "--tail", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl logs -f");
    let mut out = BufReader::new(follow.stdout.take().expect("stdout"));
    let deadline = Instant::now() + LIMIT;
    let mut newer = 0;
    let mut line = String::new();
    while Instant::now() < deadline && newer < 3 {
        line.clear();
        if out.read_line(&mut line).expect("read") == 0 {
            break;
        }
        if last(&line) > seen {
            newer += 1;
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        newer, 3,
        "kubectl logs -f delivers lines written after it started"
    );
    // A container that never existed.
    let err = s.fails(&["logs", &name, "-c", "nope"]);
    assert!(err.contains("is not valid for pod"), "{err}");
}

#[test]
fn killed_processes_restart_with_back_off_and_crash_loops_show() {
    let s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let marker = format!("mk-restart-{}", std::process::id());
    apply(&s, &counter_ds("counter", &marker, host.path(), "v1", ""));
    wait_running(&s, "counter", host.path(), &marker);
    let pod = pod_on(&s, "counter", "node1").expect("pod");
    let name = pod["metadata"]["name"].as_str().expect("name").to_string();
    let old = container_pid(&pod).expect("pid");
    let before = s.ok(&["logs", &name]);
    let o = std::process::Command::new("kill")
        .args(["-9", &old.to_string()])
        .output()
        .expect("kill");
    assert!(o.status.success());
    let restarted = wait_for(LIMIT, "the container to run again", || {
        let p = pod_on(&s, "counter", "node1")?;
        let st = &p["status"]["containerStatuses"][0];
        (st["restartCount"] == 1 && container_pid(&p).is_some_and(|p| p != old)).then_some(p)
    });
    let st = &restarted["status"]["containerStatuses"][0];
    assert_eq!(st["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(st["lastState"]["terminated"]["reason"], "Error");
    assert!(st["lastState"]["terminated"]["finishedAt"].is_string());
    assert_eq!(
        st["lastState"]["terminated"]["containerID"],
        format!("process://{old}")
    );
    let new = container_pid(&restarted).expect("pid");
    assert!(leaders(&marker).iter().any(|p| p.pid == new));
    assert!(!leaders(&marker).iter().any(|p| p.pid == old));
    let previous = s.ok(&["logs", &name, "--previous"]);
    let first_line = before.lines().next().expect("a line");
    assert!(previous.contains(first_line), "{previous}");
    s.eventually("the new instance's log", &["logs", &name], |out| {
        out.lines()
            .next()
            .is_some_and(|l| l.starts_with("node1 1 "))
    });

    // A container that keeps failing: restarted at once, then after 10 s, in
    // CrashLoopBackOff meanwhile.
    let crash = r#"apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  nodeName: node2
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo about to fail; exit 3"]
"#;
    apply(&s, crash);
    let looping = wait_for(LIMIT, "CrashLoopBackOff", || {
        let p = s.json(&["get", "pod", "crasher"]);
        let st = &p["status"]["containerStatuses"][0];
        (st["state"]["waiting"]["reason"] == "CrashLoopBackOff").then(|| st.clone())
    });
    assert_eq!(looping["lastState"]["terminated"]["exitCode"], 3);
    assert_eq!(looping["restartCount"], 1, "the first restart is immediate");
    let msg = looping["state"]["waiting"]["message"]
        .as_str()
        .expect("msg");
    assert!(
        msg.starts_with("back-off 10s restarting failed container=c pod=crasher_default("),
        "{msg}"
    );
    let table = s.ok(&["get", "pod", "crasher"]);
    assert!(table.contains("CrashLoopBackOff"), "{table}");
    let logs = s.ok(&["logs", "crasher"]);
    assert_eq!(logs, "about to fail\n");
    // The second restart comes 10 s after the second exit (timestamps have seconds).
    let second_exit: jiff::Timestamp = looping["lastState"]["terminated"]["finishedAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("finishedAt");
    wait_for(LIMIT, "the second restart", || {
        let p = s.json(&["get", "pod", "crasher"]);
        (p["status"]["containerStatuses"][0]["restartCount"] == 2).then_some(())
    });
    let waited = jiff::Timestamp::now().duration_since(second_exit);
    assert!(
        waited >= jiff::SignedDuration::from_secs(9),
        "the second restart waits for the back-off ({waited:?})"
    );
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crasher",
    ]);
    assert!(events.contains("BackOff"), "{events}");
    // Each start is a Created and a Started event, as a kubelet records them.
    for want in ["Created container: ", "Started container "] {
        assert!(events.contains(want), "{want}: {events}");
    }
}

#[test]
fn rolling_update_replaces_the_processes_one_node_at_a_time() {
    let s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let marker = format!("mk-roll-{}", std::process::id());
    for node in ["node1", "node2"] {
        std::fs::write(host.path().join(format!("ready-{node}-v1")), "").expect("ready");
    }
    apply(&s, &counter_ds("counter", &marker, host.path(), "v1", ""));
    wait_running(&s, "counter", host.path(), &marker);
    s.ok(&["rollout", "status", "ds/counter", "--timeout=90s"]);
    let old: Vec<i32> = leaders(&marker).iter().map(|p| p.pid).collect();
    for pid in &old {
        assert!(environ(*pid).contains("VERSION=v1\n"));
    }
    // v2's pods stay unready until their files exist, so the rollout must hold with
    // one node on each version (maxUnavailable 1) until the test lets it go on.
    apply(&s, &counter_ds("counter", &marker, host.path(), "v2", ""));
    let mut min_running = usize::MAX;
    let mut sample = || {
        let now = leaders(&marker);
        min_running = min_running.min(now.len());
        let new = now
            .iter()
            .filter(|p| environ(p.pid).contains("VERSION=v2\n"))
            .count();
        let old_left = now.iter().filter(|p| old.contains(&p.pid)).count();
        (new, old_left, now)
    };
    wait_for(LIMIT, "one node on v2 while the other runs v1", || {
        let (new, old_left, _) = sample();
        (new == 1 && old_left == 1).then_some(())
    });
    // The controller has seen the unready v2 pod, and still keeps the v1 one.
    s.eventually(
        "the status to show one updated, unavailable pod",
        &["get", "ds", "counter", "-o", "json"],
        |out| {
            let ds: Value = serde_json::from_str(out).unwrap_or_default();
            let st = &ds["status"];
            st["observedGeneration"] == 2
                && st["updatedNumberScheduled"] == 1
                && st["numberUnavailable"] == 1
        },
    );
    let (new, old_left, now) = sample();
    assert_eq!((new, old_left), (1, 1), "the rollout holds: {now:?}");
    for node in ["node1", "node2"] {
        std::fs::write(host.path().join(format!("ready-{node}-v2")), "").expect("ready");
    }
    wait_for(LIMIT, "both nodes on v2", || {
        let (new, _, now) = sample();
        (new == 2 && now.len() == 2).then_some(())
    });
    assert!(min_running >= 1, "a node always keeps its daemon");
    s.ok(&["rollout", "status", "ds/counter", "--timeout=90s"]);
    let now: Vec<i32> = leaders(&marker).iter().map(|p| p.pid).collect();
    for pid in &old {
        assert!(!now.contains(pid), "old process {pid} is gone");
    }
    let p = pods(&s, "counter");
    assert_eq!(p.len(), 2);
    for pod in &p {
        assert_eq!(pod["spec"]["containers"][0]["env"][1]["value"], "v2");
    }
}

#[test]
fn deleting_the_daemonset_leaves_no_process_behind() {
    let s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let marker = format!("mk-delete-{}", std::process::id());
    // A background subshell too (same command line, same session).
    apply(
        &s,
        &counter_ds(
            "counter",
            &marker,
            host.path(),
            "v1",
            // Ends by itself once the test's directory is gone, should the test fail.
            &format!(
                "(while [ -d {} ]; do sleep 1; done) & ",
                host.path().display()
            ),
        ),
    );
    wait_running(&s, "counter", host.path(), &marker);
    wait_for(LIMIT, "the background subshells", || {
        (processes_with(&marker).len() >= 4).then_some(())
    });
    s.ok(&["delete", "ds", "counter"]);
    wait_for(LIMIT, "every process to be gone", || {
        processes_with(&marker).is_empty().then_some(())
    });
    s.eventually(
        "the pods to be gone",
        &["get", "pods", "-o", "name"],
        |out| out.trim().is_empty(),
    );
}

#[test]
fn an_agent_restart_leaves_no_orphans_and_runs_the_pods_again() {
    let mut s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let marker = format!("mk-agent-{}", std::process::id());
    apply(
        &s,
        &counter_ds(
            "counter",
            &marker,
            host.path(),
            "v1",
            // Ends by itself once the test's directory is gone, should the test fail.
            &format!(
                "(while [ -d {} ]; do sleep 1; done) & ",
                host.path().display()
            ),
        ),
    );
    wait_running(&s, "counter", host.path(), &marker);
    wait_for(LIMIT, "the background subshells", || {
        (processes_with(&marker).len() >= 4).then_some(())
    });
    let before: Vec<i32> = processes_with(&marker).iter().map(|p| p.pid).collect();
    let restarts = |s: &Server| -> Vec<i64> {
        pods(s, "counter")
            .iter()
            .map(|p| {
                p["status"]["containerStatuses"][0]["restartCount"]
                    .as_i64()
                    .unwrap_or(-1)
            })
            .collect()
    };
    assert_eq!(restarts(&s), [0, 0]);
    // SIGKILL: no clean shutdown. The background subshells outlive it (they do not get
    // the parent-death signal); the restarted agent must find and kill them.
    s.crash_and_restart();
    let server = s.pid() as i32;
    wait_for(LIMIT, "the pods to run again under the new agent", || {
        let now = leaders(&marker);
        (now.len() == 2 && now.iter().all(|p| p.ppid == server)).then_some(())
    });
    wait_for(LIMIT, "no process of the old agent left", || {
        let now: Vec<i32> = processes_with(&marker).iter().map(|p| p.pid).collect();
        before.iter().all(|p| !now.contains(p)).then_some(())
    });
    // Everything left belongs to a session the new agent started.
    let sessions: Vec<i32> = leaders(&marker).iter().map(|p| p.pid).collect();
    for p in processes_with(&marker) {
        assert!(sessions.contains(&p.session), "orphan {p:?}");
    }
    wait_for(LIMIT, "restart counts to go up by one", || {
        (restarts(&s) == [1, 1]).then_some(())
    });
    // A clean stop (SIGTERM) stops every process it started.
    let pid = s.pid().to_string();
    let o = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .output()
        .expect("kill");
    assert!(o.status.success());
    wait_for(LIMIT, "every process to stop with the agent", || {
        processes_with(&marker).is_empty().then_some(())
    });
}

/// GETs http://ADDR/PATH; the body when the answer is 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

#[test]
fn the_process_node_exporter_example_serves_each_nodes_metrics() {
    let s = start();
    s.ok(&[
        "apply",
        "-f",
        &common::example("process-node-exporter.yaml"),
    ]);
    s.eventually(
        "three ready exporters",
        &["get", "pods", "-l", "app=process-node-exporter"],
        |out| {
            let r = rows(out);
            r.len() == 4 && r[1..].iter().all(|row| row[1] == "1/1")
        },
    );
    for (node, ip) in [
        ("master", "127.0.0.1"),
        ("node1", "127.0.0.2"),
        ("node2", "127.0.0.3"),
    ] {
        let body = wait_for(LIMIT, &format!("{node}'s metrics"), || {
            http_get(&format!("{ip}:9100"), "/metrics")
        });
        assert!(
            body.contains(&format!("node_load1{{node=\"{node}\"}} ")),
            "{body}"
        );
        assert!(body.contains("node_memory_MemTotal_bytes"), "{body}");
        let pod = pod_on(&s, "process-node-exporter", node).expect("pod");
        let name = pod["metadata"]["name"].as_str().expect("name").to_string();
        s.eventually(&format!("{node}'s exporter log"), &["logs", &name], |out| {
            out.contains(&format!(
                "serving the metrics of {node} on http://{ip}:9100/metrics"
            )) && out.contains("GET /metrics")
        });
    }
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=LimitsNotEnforced",
    ]);
    let cgroup_v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.contains("memory") && c.contains("cpu"));
    if !cgroup_v2 {
        assert!(events.contains("are not enforced on this node"), "{events}");
    }
    s.ok(&["delete", "ds", "process-node-exporter"]);
    wait_for(LIMIT, "the exporters to stop", || {
        http_get("127.0.0.2:9100", "/metrics")
            .is_none()
            .then_some(())
    });
}

fn container_status(s: &Server, pod: &str, init: bool) -> Value {
    let p = s.json(&["get", "pod", pod]);
    let key = if init {
        "initContainerStatuses"
    } else {
        "containerStatuses"
    };
    p["status"][key][0].clone()
}

#[test]
fn init_containers_liveness_completion_and_containers_that_cannot_run() {
    let s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let h = host.path().display();
    std::fs::write(host.path().join("alive"), "").expect("alive");
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: with-init}}
spec:
  nodeName: node1
  initContainers:
  - name: first
    image: busybox
    command: ["sh", "-c", "echo from-init > {h}/init.txt"]
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "cat {h}/init.txt; exec sleep 600"]
    livenessProbe:
      exec: {{command: ["test", "-f", "{h}/alive"]}}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: one-shot}}
spec:
  nodeName: node1
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo finished"]
---
apiVersion: v1
kind: Pod
metadata: {{name: no-command}}
spec:
  nodeName: node2
  containers:
  - name: c
    image: nginx
---
apiVersion: v1
kind: Pod
metadata: {{name: from-secret}}
spec:
  nodeName: node2
  containers:
  - name: c
    image: busybox
    command: ["true"]
    env:
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: s, key: k}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: not-found}}
spec:
  nodeName: node2
  containers:
  - name: c
    image: busybox
    command: ["no-such-program-anywhere"]
"#
    );
    apply(&s, &yaml);

    // Init first, then the main container, which sees what init wrote.
    wait_for(LIMIT, "with-init running", || {
        let st = container_status(&s, "with-init", false);
        st["state"]["running"].is_object().then_some(())
    });
    let init = container_status(&s, "with-init", true);
    assert_eq!(init["state"]["terminated"]["reason"], "Completed");
    assert_eq!(init["state"]["terminated"]["exitCode"], 0);
    s.eventually("main's output", &["logs", "with-init"], |o| {
        o == "from-init\n"
    });
    assert_eq!(s.ok(&["logs", "with-init", "-c", "first"]), "");
    // Liveness: removing the file gets the container restarted.
    let pid = container_pid(&s.json(&["get", "pod", "with-init"])).expect("pid");
    std::fs::remove_file(host.path().join("alive")).expect("rm");
    let st = wait_for(LIMIT, "a liveness restart", || {
        let st = container_status(&s, "with-init", false);
        (st["restartCount"].as_i64() >= Some(1)).then_some(st)
    });
    assert!(
        st["lastState"]["terminated"]["exitCode"].as_i64() >= Some(128),
        "{st}"
    );
    assert!(
        std::fs::metadata(format!("/proc/{pid}")).is_err(),
        "the killed process is gone"
    );
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=with-init",
    ]);
    assert!(
        events.contains("failed liveness probe, will be restarted"),
        "{events}"
    );
    std::fs::write(host.path().join("alive"), "").expect("alive");

    // restartPolicy Never: the pod completes.
    s.eventually("one-shot Completed", &["get", "pod", "one-shot"], |o| {
        o.contains("Completed")
    });
    let p = s.json(&["get", "pod", "one-shot"]);
    assert_eq!(p["status"]["phase"], "Succeeded");
    assert_eq!(s.ok(&["logs", "one-shot"]), "finished\n");

    // Containers that cannot run say why.
    for (pod, needle) in [
        ("no-command", "does not run images"),
        ("from-secret", "secretKeyRef"),
    ] {
        let st = wait_for(LIMIT, &format!("{pod} waiting"), || {
            let st = container_status(&s, pod, false);
            st["state"]["waiting"]["message"].is_string().then_some(st)
        });
        assert_eq!(
            st["state"]["waiting"]["reason"], "CreateContainerConfigError",
            "{st}"
        );
        let msg = st["state"]["waiting"]["message"].as_str().expect("message");
        assert!(msg.contains(needle), "{msg}");
        let err = s.fails(&["logs", pod]);
        assert!(
            err.contains("is waiting to start: CreateContainerConfigError"),
            "{err}"
        );
    }
    let st = wait_for(LIMIT, "not-found to fail to start", || {
        let st = container_status(&s, "not-found", false);
        st["lastState"]["terminated"].is_object().then_some(st)
    });
    assert_eq!(st["lastState"]["terminated"]["reason"], "StartError");
    assert_eq!(st["lastState"]["terminated"]["exitCode"], 128);
    let msg = st["lastState"]["terminated"]["message"]
        .as_str()
        .expect("msg");
    assert!(msg.contains("executable file not found in $PATH"), "{msg}");
}

#[test]
fn deletion_runs_pre_stop_then_sigterm_and_sigkill_after_the_grace_period() {
    let s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let h = host.path().display();
    let marker = format!("mk-term-{}", std::process::id());
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: polite}}
spec:
  nodeName: node1
  terminationGracePeriodSeconds: 30
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "trap 'echo term > {h}/polite.term; exit 0' TERM; while true; do sleep 0.1; done; : {marker}-polite"]
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo stop > {h}/polite.prestop"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: stubborn}}
spec:
  nodeName: node2
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done; : {marker}-stubborn"]
"#
    );
    apply(&s, &yaml);
    wait_for(LIMIT, "both processes", || {
        (leaders(&marker).len() == 2).then_some(())
    });
    for pod in ["polite", "stubborn"] {
        wait_for(LIMIT, &format!("{pod} running"), || {
            container_status(&s, pod, false)["state"]["running"]
                .is_object()
                .then_some(())
        });
    }
    let t0 = Instant::now();
    s.ok(&["delete", "pod", "polite", "--wait=true"]);
    let polite = t0.elapsed();
    assert_eq!(
        std::fs::read_to_string(host.path().join("polite.prestop")).expect("preStop ran"),
        "stop\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("polite.term")).expect("SIGTERM handled"),
        "term\n"
    );
    assert!(
        polite < Duration::from_secs(20),
        "it left on SIGTERM: {polite:?}"
    );
    let t0 = Instant::now();
    s.ok(&["delete", "pod", "stubborn", "--wait=true"]);
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "SIGTERM ignored: SIGKILL after the 2 s grace period ({:?})",
        t0.elapsed()
    );
    wait_for(LIMIT, "no process left", || {
        processes_with(&marker).is_empty().then_some(())
    });
}

#[test]
fn containers_run_as_their_security_contexts_user_in_a_working_directory_made_for_them() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        eprintln!("skipped: switching users needs the agent to run as root");
        return;
    }
    let s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let h = host.path().display();
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: as-nobody}}
spec:
  nodeName: node1
  securityContext: {{runAsUser: 1234, runAsGroup: 65533, supplementalGroups: [4242]}}
  containers:
  - name: c
    image: busybox
    workingDir: {h}/work/deeper
    securityContext: {{runAsUser: 65534, runAsNonRoot: true}}
    command: ['sh', '-c', 'echo "$(id -u) $(id -g) $(id -G) $(pwd)"; exec sleep 600']
    readinessProbe:
      exec: {{command: ['sh', '-c', 'test "$(id -u):$(id -g)" = 65534:65533']}}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: non-root}}
spec:
  nodeName: node2
  securityContext: {{runAsNonRoot: true}}
  containers:
  - name: c
    image: busybox
    command: ["sleep", "600"]
"#
    );
    apply(&s, &yaml);
    // The container's user over the pod's, the pod's group and supplemental groups, in
    // the working directory the agent made for it; its probe runs as the same user.
    s.eventually("as-nobody's identity", &["logs", "as-nobody"], |o| {
        o == format!("65534 65533 65533 4242 {h}/work/deeper\n")
    });
    s.eventually(
        "as-nobody Ready (its exec probe ran as its user)",
        &["get", "pod", "as-nobody"],
        |o| rows(o).get(1).is_some_and(|r| r[1] == "1/1"),
    );
    for dir in ["work", "work/deeper"] {
        let meta = std::fs::metadata(host.path().join(dir)).expect("made");
        assert_eq!((meta.uid(), meta.gid()), (65534, 65533), "{dir}");
    }
    // runAsNonRoot with root as the user: the kubelet's refusal, word for word.
    let st = wait_for(LIMIT, "non-root refused", || {
        let st = container_status(&s, "non-root", false);
        st["state"]["waiting"]["message"].is_string().then_some(st)
    });
    let uid = s.json(&["get", "pod", "non-root"])["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    assert_eq!(
        st["state"]["waiting"]["reason"],
        "CreateContainerConfigError"
    );
    assert_eq!(
        st["state"]["waiting"]["message"],
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"non-root_default({uid})\", container: c)"
        )
    );
}

/// Runs kubectl with `input` on stdin and a deadline; returns (exit code, stdout, stderr).
fn kubectl_in(s: &Server, args: &[&str], input: &str) -> (Option<i32>, String, String) {
    use std::io::Write;
    let mut child = s
        .command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kubectl {args:?} did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().expect("kubectl output");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `kubectl exec` runs a command in a running container's context on a process node:
/// its environment and working directory, stdout and stderr apart, stdin, the exit code,
/// `-c` to pick a container and kube-apiserver's refusal of an unknown one; a command
/// outlives neither the client nor its container.
#[test]
fn kubectl_exec_runs_commands_in_the_containers_context() {
    let s = start();
    let host = tempfile::tempdir().expect("tempdir");
    let work = host.path().join("work");
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: ex}}
spec:
  nodeName: node1
  containers:
  - name: c
    image: busybox
    workingDir: {}
    env: [{{name: X, value: "hello x"}}]
    command: ["sleep", "600"]
  - name: side
    image: busybox
    env: [{{name: WHO, value: side}}]
    command: ["sleep", "600"]
"#,
        work.display()
    );
    apply(&s, &yaml);
    s.eventually("ex running", &["get", "pod", "ex"], |o| {
        rows(o).get(1).is_some_and(|r| r[1] == "2/2")
    });
    let exec = |args: &[&str], input: &str| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        kubectl_in(&s, &a, input)
    };

    let (code, out, err) = exec(
        &["ex", "-c", "c", "--", "sh", "-c", "echo out; echo err >&2"],
        "",
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Some(0), "out\n", "err\n")
    );
    let (code, out, _) = exec(&["ex", "-c", "c", "--", "printenv", "X"], "");
    assert_eq!((code, out.as_str()), (Some(0), "hello x\n"));
    let (code, out, _) = exec(&["ex", "-c", "c", "--", "pwd"], "");
    assert_eq!((code, out), (Some(0), format!("{}\n", work.display())));
    // The exit code comes back as kubectl's own.
    let (code, _, err) = exec(&["ex", "-c", "c", "--", "sh", "-c", "exit 3"], "");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("command terminated with exit code 3"), "{err}");
    // stdin, to its end.
    let (code, out, err) = exec(&["-i", "ex", "-c", "c", "--", "cat"], "hello\nworld\n");
    assert_eq!((code, out.as_str()), (Some(0), "hello\nworld\n"), "{err}");
    // -c picks the container; without it kubectl picks the first.
    let (code, out, _) = exec(&["ex", "-c", "side", "--", "printenv", "WHO"], "");
    assert_eq!((code, out.as_str()), (Some(0), "side\n"));
    let (code, _, err) = exec(&["ex", "--", "printenv", "WHO"], "");
    assert_eq!(code, Some(1), "{err}");
    // What cannot run: an unknown container, a missing program.
    let (code, _, err) = exec(&["ex", "-c", "nope", "--", "true"], "");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("Error from server (BadRequest): container nope is not valid for pod ex"),
        "{err}"
    );
    let (code, _, err) = exec(&["ex", "-c", "c", "--", "no-such-program"], "");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("error executing command in container: exec: \"no-such-program\": executable file not found in $PATH"),
        "{err}"
    );

    // A client that goes away takes its command along.
    let mut gone = s
        .command()
        .args(["exec", "ex", "-c", "c", "--", "sleep", "3017"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run kubectl");
    // The exec'd process itself, not the kubectl whose arguments name it.
    let running = |marker: &str| {
        processes_with(marker)
            .iter()
            .any(|p| p.cmdline.starts_with(marker))
    };
    wait_for(LIMIT, "the exec'd sleep", || {
        running("sleep 3017").then_some(())
    });
    let _ = gone.kill();
    let _ = gone.wait();
    wait_for(LIMIT, "the exec'd sleep gone with its client", || {
        (!running("sleep 3017")).then_some(())
    });
    // A container that stops takes its commands along (exit code 137: SIGKILL).
    let pod = s.json(&["get", "pod", "ex"]);
    let pid = container_pid(&pod).expect("c's pid");
    let waiting = std::thread::spawn({
        let mut cmd = s.command();
        cmd.args(["exec", "ex", "-c", "c", "--", "sleep", "3027"]);
        move || cmd.output().expect("run kubectl")
    });
    wait_for(LIMIT, "the second exec'd sleep", || {
        running("sleep 3027").then_some(())
    });
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    let o = waiting.join().expect("exec thread");
    assert_eq!(o.status.code(), Some(137), "{o:?}");
    assert!(!running("sleep 3027"));
}

/// `kubectl exec -t`: the command gets a terminal of the client's size.
#[test]
fn kubectl_exec_with_a_terminal() {
    if common::which("script").is_none() {
        eprintln!("skipped: needs script(1) to give kubectl a terminal");
        return;
    }
    let s = start();
    apply(
        &s,
        r#"apiVersion: v1
kind: Pod
metadata: {name: tty}
spec:
  nodeName: node2
  containers:
  - name: c
    image: busybox
    command: ["sleep", "600"]
"#,
    );
    s.eventually("tty running", &["get", "pod", "tty"], |o| {
        rows(o).get(1).is_some_and(|r| r[1] == "1/1")
    });
    let kubectl = format!(
        "{} --kubeconfig {} exec -it tty -- sh -c 'tty; stty size; echo $TERM; exit 5'",
        common::kubectl_bin().display(),
        s.kubeconfig.display()
    );
    let o = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("stty cols 101 rows 33; {kubectl}"),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(5), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("33 101"), "{out}");
    assert!(out.contains("xterm"), "{out}");
}
