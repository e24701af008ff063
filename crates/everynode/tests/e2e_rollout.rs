//! DaemonSet updates and history with the stock kubectl against `everynode up` (issue 4):
//! rolling updates sampled by a pod watch (never more nodes down than `maxUnavailable`,
//! never more than `maxSurge` extra pods), OnDelete, `kubectl rollout
//! status/history/undo/restart`, history pruning, and a broken image that stalls the
//! rollout until a fixed template moves it on.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Server, rows, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

/// A DaemonSet `name` (label `app: <name>`) running `image` in container `c`, tolerating
/// every taint (so it runs on the master too), with `strategy` as the YAML of
/// `spec.updateStrategy` (indented for that place) and `extra` extra spec lines.
fn daemonset(name: &str, image: &str, strategy: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  updateStrategy:
{strategy}
{extra}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      tolerations:
      - operator: Exists
      containers:
      - name: c
        image: {image}
"#
    )
}

fn rolling(max_unavailable: &str, max_surge: &str) -> String {
    format!(
        "    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: {max_unavailable}\n      maxSurge: {max_surge}"
    )
}

const ON_DELETE: &str = "    type: OnDelete";

/// A kubectl write (`set image`, `annotate`, `label`, `patch`, `rollout undo/restart`).
/// These race the controller's status writes; the server retries a patch whose object
/// changed underneath, as kube-apiserver does, so a plain call must succeed.
fn write(s: &Server, args: &[&str]) -> String {
    s.ok(args)
}

fn apply(s: &Server, yaml: &str) {
    let o = s.apply_yaml(yaml);
    assert!(
        o.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `kubectl rollout status` until it reports success (it exits when done).
fn rollout_done(s: &Server, name: &str) -> String {
    let target = format!("ds/{name}");
    let out = s.ok(&["rollout", "status", &target, "--timeout=90s"]);
    assert!(
        out.contains(&format!("daemon set \"{name}\" successfully rolled out")),
        "{out}"
    );
    out
}

/// Node names of the cluster.
fn node_names(s: &Server) -> BTreeSet<String> {
    rows(&s.ok(&["get", "nodes", "--no-headers"]))
        .into_iter()
        .filter_map(|r| r.first().cloned())
        .collect()
}

/// The DaemonSet's ControllerRevisions as `(revision, hash label, name)`, by revision.
fn revisions(s: &Server, name: &str) -> Vec<(i64, String, String)> {
    let selector = format!("app={name}");
    let v = s.json(&["get", "controllerrevisions", "-l", &selector]);
    let mut revs: Vec<(i64, String, String)> = v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|r| {
                    (
                        r["revision"].as_i64().unwrap_or(0),
                        r["metadata"]["labels"]["controller-revision-hash"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        r["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    revs.sort();
    revs
}

/// Waits for a revision numbered `number` and returns its hash.
fn revision_hash(s: &Server, name: &str, number: i64) -> String {
    wait_for(LIMIT, &format!("revision {number} of {name}"), || {
        revisions(s, name)
            .into_iter()
            .find(|(n, _, _)| *n == number)
            .map(|(_, hash, _)| hash)
    })
}

/// The live (not terminating) pods of the DaemonSet: node → (pod name, hash, image).
fn pods(s: &Server, name: &str) -> BTreeMap<String, (String, String, String)> {
    let selector = format!("app={name}");
    let v = s.json(&["get", "pods", "-l", &selector]);
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .map(|p| {
                    (
                        p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                        (
                            p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                            p["metadata"]["labels"]["controller-revision-hash"]
                                .as_str()
                                .unwrap_or("")
                                .to_string(),
                            p["spec"]["containers"][0]["image"]
                                .as_str()
                                .unwrap_or("")
                                .to_string(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The DaemonSet's status, once `check` accepts it.
fn status_until(s: &Server, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(LIMIT, what, || {
        let ds = s.json(&["get", "ds", name]);
        check(&ds["status"]).then(|| ds["status"].clone())
    })
}

fn num(v: &Value, field: &str) -> i64 {
    v[field].as_i64().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// A pod watch that replays the fleet's state event by event
// ---------------------------------------------------------------------------------------

/// One daemon pod as the watch last showed it.
#[derive(Clone, Debug)]
struct PodState {
    node: String,
    hash: String,
    ready: bool,
    deleting: bool,
    reason: String,
}

/// `kubectl get pods -l SELECTOR -w -o json --output-watch-events`, folded into the
/// state of every pod after each event, with the worst moments remembered.
struct PodWatch {
    child: Child,
    events: mpsc::Receiver<(Instant, Value)>,
    nodes: BTreeSet<String>,
    pods: BTreeMap<String, PodState>,
    /// Most nodes without a Ready, non-terminating pod at any one moment.
    max_unavailable: usize,
    /// Most non-terminating pods on one node at any one moment.
    max_pods_per_node: usize,
    /// Most nodes with more than one non-terminating pod at any one moment.
    max_surging: usize,
    /// Every pod the watch showed, by name, even once deleted: when it was first seen
    /// Ready and first seen terminating (as the watch delivered it).
    seen: BTreeMap<String, Seen>,
}

/// When the watch first showed a pod Ready and terminating.
#[derive(Clone, Debug)]
struct Seen {
    hash: String,
    node: String,
    ready_at: Option<Instant>,
    deleting_at: Option<Instant>,
}

/// The node a daemon pod is for: its `nodeName`, or before it is bound the node its
/// pinned node affinity names.
fn target_node(pod: &Value) -> String {
    let bound = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if !bound.is_empty() {
        return bound.to_string();
    }
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]
        .as_str()
        .unwrap_or("")
        .to_string()
}

impl PodWatch {
    fn start(s: &Server, app: &str, nodes: BTreeSet<String>) -> PodWatch {
        let selector = format!("app={app}");
        let mut child = s
            .command()
            .args([
                "get",
                "pods",
                "-l",
                &selector,
                "-w",
                "-o",
                "json",
                "--output-watch-events",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl get -w");
        let stdout = child.stdout.take().expect("watch stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            let stream =
                serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>();
            for event in stream {
                let Ok(event) = event else { break };
                // Stamped on arrival: the test thread may be busy with kubectl.
                if tx.send((Instant::now(), event)).is_err() {
                    break;
                }
            }
        });
        PodWatch {
            child,
            events,
            nodes,
            pods: BTreeMap::new(),
            max_unavailable: 0,
            max_pods_per_node: 0,
            max_surging: 0,
            seen: BTreeMap::new(),
        }
    }

    fn apply(&mut self, at: Instant, event: &Value) {
        let pod = &event["object"];
        let Some(name) = pod["metadata"]["name"].as_str() else {
            return;
        };
        if event["type"] == "DELETED" {
            self.pods.remove(name);
        } else {
            let ready = pod["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            let reason = pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let state = PodState {
                node: target_node(pod),
                hash: pod["metadata"]["labels"]["controller-revision-hash"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                ready,
                deleting: !pod["metadata"]["deletionTimestamp"].is_null(),
                reason,
            };
            let now = at;
            let seen = self.seen.entry(name.to_string()).or_insert_with(|| Seen {
                hash: state.hash.clone(),
                node: state.node.clone(),
                ready_at: None,
                deleting_at: None,
            });
            seen.node.clone_from(&state.node);
            if state.ready && !state.deleting {
                seen.ready_at.get_or_insert(now);
            }
            if state.deleting {
                seen.deleting_at.get_or_insert(now);
            }
            self.pods.insert(name.to_string(), state);
        }
    }

    fn live(&self) -> impl Iterator<Item = &PodState> {
        self.pods.values().filter(|p| !p.deleting)
    }

    fn unavailable(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| !self.live().any(|p| &p.node == *n && p.ready))
            .count()
    }

    fn per_node(&self) -> BTreeMap<&str, usize> {
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for p in self.live() {
            *per.entry(p.node.as_str()).or_default() += 1;
        }
        per
    }

    /// Every node runs exactly one pod, Ready, with `hash`, and nothing else is left.
    fn settled_on(&self, hash: &str) -> bool {
        self.pods.len() == self.nodes.len()
            && self.nodes.iter().all(|n| {
                self.pods
                    .values()
                    .any(|p| &p.node == n && p.hash == hash && p.ready && !p.deleting)
            })
    }

    fn record(&mut self) {
        self.max_unavailable = self.max_unavailable.max(self.unavailable());
        let per = self.per_node();
        let most = per.values().copied().max().unwrap_or(0);
        let surging = per.values().filter(|&&c| c > 1).count();
        self.max_pods_per_node = self.max_pods_per_node.max(most);
        self.max_surging = self.max_surging.max(surging);
    }

    /// Forgets the worst moments seen so far.
    fn reset(&mut self) {
        self.max_unavailable = 0;
        self.max_pods_per_node = 0;
        self.max_surging = 0;
    }

    /// Folds events in until `done` holds after one of them (panics after [`LIMIT`]).
    fn until(&mut self, what: &str, done: impl Fn(&PodWatch) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((at, event)) => {
                    self.apply(at, &event);
                    self.record();
                }
                Err(_) => panic!(
                    "watch: timed out waiting for {what}; pods: {:#?}",
                    self.pods
                ),
            }
        }
    }

    /// Folds in every event of the next `period`: for "nothing more happens" checks.
    fn observe_for(&mut self, period: Duration) {
        let deadline = Instant::now() + period;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            if let Ok((at, event)) = self.events.recv_timeout(left) {
                self.apply(at, &event);
                self.record();
            }
        }
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a watch on `app`'s pods and waits until it shows them settled on revision
/// `number`'s hash; the worst moments start counting from there.
fn watch_settled(s: &Server, app: &str, number: i64) -> PodWatch {
    let hash = revision_hash(s, app, number);
    let mut w = PodWatch::start(s, app, node_names(s));
    w.until("the initial pods", |w| w.settled_on(&hash));
    w.reset();
    w
}

// ---------------------------------------------------------------------------------------
// Rolling updates
// ---------------------------------------------------------------------------------------

#[test]
fn image_update_with_max_unavailable_one_takes_one_node_at_a_time() {
    let s = Server::up(5);
    apply(&s, &daemonset("roll", "busybox:v1", &rolling("1", "0"), ""));
    rollout_done(&s, "roll");
    let mut w = watch_settled(&s, "roll", 1);
    assert_eq!(w.nodes.len(), 5);

    write(&s, &["set", "image", "ds/roll", "c=busybox:v2"]);
    let new_hash = revision_hash(&s, "roll", 2);
    w.until("every pod on revision 2", |w| w.settled_on(&new_hash));
    assert_eq!(w.max_unavailable, 1, "at most one node down, and one was");
    assert_eq!(w.max_pods_per_node, 1, "maxSurge 0: one pod per node");
    rollout_done(&s, "roll");

    // The newest revision is the one every pod carries, with the new image.
    let revs = revisions(&s, "roll");
    assert_eq!(revs.len(), 2, "{revs:?}");
    assert_eq!(revs[1].1, new_hash);
    let pods = pods(&s, "roll");
    assert_eq!(pods.len(), 5);
    for (node, (_, hash, image)) in &pods {
        assert_eq!(hash, &new_hash, "{node}");
        assert_eq!(image, "busybox:v2", "{node}");
    }
    let st = status_until(&s, "roll", "status to count the update", |st| {
        num(st, "updatedNumberScheduled") == 5 && num(st, "numberAvailable") == 5
    });
    assert_eq!(num(&st, "observedGeneration"), 2);
    assert!(st["numberUnavailable"].is_null(), "{st}");
}

#[test]
fn percentage_budget_and_surge_behave_as_kubernetes() {
    let s = Server::up(5);
    // 40% of 5 nodes rounds up to 2.
    apply(
        &s,
        &daemonset("pct", "busybox:v1", &rolling("40%", "0"), ""),
    );
    rollout_done(&s, "pct");
    let mut w = watch_settled(&s, "pct", 1);
    write(&s, &["set", "image", "ds/pct", "c=busybox:v2"]);
    let hash = revision_hash(&s, "pct", 2);
    w.until("every pod on revision 2", |w| w.settled_on(&hash));
    assert_eq!(w.max_unavailable, 2, "40% of 5 is 2 nodes at a time");
    assert_eq!(w.max_pods_per_node, 1);
    rollout_done(&s, "pct");

    // maxSurge 1, maxUnavailable 0: the new pod starts next to the old one, which goes
    // once the new one is available; no node is ever without an available pod.
    write(
        &s,
        &[
            "patch",
            "ds",
            "pct",
            "--type=merge",
            "-p",
            r#"{"spec":{"updateStrategy":{"rollingUpdate":{"maxUnavailable":0,"maxSurge":1}}}}"#,
        ],
    );
    write(&s, &["set", "image", "ds/pct", "c=busybox:v3"]);
    let hash = revision_hash(&s, "pct", 3);
    w.reset();
    w.until("every pod on revision 3", |w| w.settled_on(&hash));
    assert_eq!(w.max_unavailable, 0, "surge keeps every node available");
    assert_eq!(
        w.max_pods_per_node, 2,
        "the new pod runs beside the old one"
    );
    assert_eq!(w.max_surging, 1, "one node surging at a time");
    rollout_done(&s, "pct");
}

#[test]
fn on_delete_replaces_a_pod_only_when_it_is_deleted() {
    let s = Server::up(5);
    apply(&s, &daemonset("ondel", "busybox:v1", ON_DELETE, ""));
    status_until(&s, "ondel", "5 available pods", |st| {
        num(st, "numberAvailable") == 5 && num(st, "updatedNumberScheduled") == 5
    });
    let before = pods(&s, "ondel");
    let old_hash = revision_hash(&s, "ondel", 1);

    write(&s, &["set", "image", "ds/ondel", "c=busybox:v2"]);
    let new_hash = revision_hash(&s, "ondel", 2);
    status_until(&s, "ondel", "the controller to see generation 2", |st| {
        num(st, "observedGeneration") == 2 && st["updatedNumberScheduled"].is_null()
    });
    // Nothing is replaced: the same pods, still the old template, for a while.
    let mut w = PodWatch::start(&s, "ondel", node_names(&s));
    w.until("the current pods", |w| w.settled_on(&old_hash));
    w.observe_for(Duration::from_secs(2));
    assert!(w.settled_on(&old_hash), "{:#?}", w.pods);
    assert_eq!(pods(&s, "ondel"), before);

    // Deleting one pod brings it back from the new template, on that node only.
    let (victim, _, _) = before["node2"].clone();
    s.ok(&["delete", "pod", &victim]);
    let after = wait_for(LIMIT, "the replacement on node2", || {
        let now = pods(&s, "ondel");
        now.get("node2")
            .is_some_and(|(name, hash, _)| *name != victim && *hash == new_hash)
            .then_some(now)
    });
    assert_eq!(after["node2"].2, "busybox:v2");
    for (node, pod) in &before {
        if node != "node2" {
            assert_eq!(&after[node], pod, "{node} untouched");
        }
    }
    status_until(&s, "ondel", "one updated pod", |st| {
        num(st, "updatedNumberScheduled") == 1 && num(st, "numberAvailable") == 5
    });

    // Undo: the template is the old one again, so the four old pods count as updated
    // at once and nothing restarts.
    write(&s, &["rollout", "undo", "ds/ondel"]);
    status_until(&s, "ondel", "four pods updated after the undo", |st| {
        num(st, "observedGeneration") == 3 && num(st, "updatedNumberScheduled") == 4
    });
    let revs = revisions(&s, "ondel");
    assert_eq!(
        revs.iter().map(|r| r.0).collect::<Vec<_>>(),
        [2, 3],
        "revision 1 renumbered to 3: {revs:?}"
    );
    assert_eq!(revs[1].1, old_hash);
    let now = pods(&s, "ondel");
    for (node, pod) in &before {
        if node != "node2" {
            assert_eq!(&now[node], pod, "{node} not restarted by the undo");
        }
    }
}

// ---------------------------------------------------------------------------------------
// kubectl rollout history / undo / restart
// ---------------------------------------------------------------------------------------

/// The `REVISION  CHANGE-CAUSE` rows of `kubectl rollout history`.
fn history(s: &Server, name: &str) -> Vec<Vec<String>> {
    let target = format!("ds/{name}");
    let out = s.ok(&["rollout", "history", &target]);
    let all = rows(&out);
    let header = all
        .iter()
        .position(|r| r.first().map(String::as_str) == Some("REVISION"))
        .unwrap_or_else(|| panic!("no REVISION header in {out}"));
    all[header + 1..].to_vec()
}

fn with_cause(yaml: &str, cause: &str) -> String {
    yaml.replacen(
        "metadata:\n",
        &format!("metadata:\n  annotations:\n    kubernetes.io/change-cause: {cause}\n"),
        1,
    )
}

#[test]
fn rollout_history_and_undo() {
    let s = Server::up(3);
    let yaml = |image: &str| daemonset("hist", image, &rolling("1", "0"), "");
    apply(&s, &with_cause(&yaml("busybox:v1"), "v1"));
    rollout_done(&s, "hist");
    apply(&s, &with_cause(&yaml("busybox:v2"), "v2"));
    rollout_done(&s, "hist");
    assert_eq!(history(&s, "hist"), [["1", "v1"], ["2", "v2"]]);
    let detail = s.ok(&["rollout", "history", "ds/hist", "--revision", "1"]);
    assert!(detail.contains("busybox:v1"), "{detail}");
    assert!(!detail.contains("busybox:v2"), "{detail}");

    let before = revisions(&s, "hist");
    let out = write(&s, &["rollout", "undo", "ds/hist"]);
    assert!(out.contains("rolled back"), "{out}");
    rollout_done(&s, "hist");
    // Revision 1 came back as revision 3 (same object, renumbered), as in Kubernetes.
    let after = revisions(&s, "hist");
    assert_eq!(
        after.iter().map(|r| r.0).collect::<Vec<_>>(),
        [2, 3],
        "{after:?}"
    );
    assert_eq!(after[1].2, before[0].2, "the same ControllerRevision");
    assert_eq!(history(&s, "hist"), [["2", "v2"], ["3", "v1"]]);
    let v1_hash = after[1].1.clone();
    wait_for(LIMIT, "every pod back on v1", || {
        let p = pods(&s, "hist");
        (p.len() == 3
            && p.values()
                .all(|(_, hash, image)| *hash == v1_hash && image == "busybox:v1"))
        .then_some(())
    });

    // --to-revision picks any revision; it is renumbered to the next one.
    write(&s, &["rollout", "undo", "ds/hist", "--to-revision", "2"]);
    rollout_done(&s, "hist");
    let revs = revisions(&s, "hist");
    assert_eq!(
        revs.iter().map(|r| r.0).collect::<Vec<_>>(),
        [3, 4],
        "{revs:?}"
    );
    let p = pods(&s, "hist");
    assert!(
        p.values()
            .all(|(_, hash, image)| *hash == revs[1].1 && image == "busybox:v2"),
        "{p:?}"
    );
    let image = s.ok(&[
        "get",
        "ds",
        "hist",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "busybox:v2");

    // A revision that does not exist is an error, and changes nothing.
    let err = s.fails(&["rollout", "undo", "ds/hist", "--to-revision", "9"]);
    assert!(err.contains("unable to find specified revision 9"), "{err}");
}

#[test]
fn rollout_restart_replaces_every_pod() {
    let s = Server::up(3);
    apply(
        &s,
        &daemonset("restart", "busybox:v1", &rolling("1", "0"), ""),
    );
    rollout_done(&s, "restart");
    let before = pods(&s, "restart");
    let out = write(&s, &["rollout", "restart", "ds/restart"]);
    assert!(out.contains("restarted"), "{out}");
    let hash = revision_hash(&s, "restart", 2);
    rollout_done(&s, "restart");
    let after = wait_for(LIMIT, "every pod restarted", || {
        let p = pods(&s, "restart");
        (p.len() == 3 && p.values().all(|(_, h, _)| *h == hash)).then_some(p)
    });
    for (node, (name, _, image)) in &after {
        assert_ne!(name, &before[node].0, "{node} got a new pod");
        assert_eq!(image, "busybox:v1");
    }
    let restarted = s.ok(&[
        "get",
        "ds",
        "restart",
        "-o",
        "jsonpath={.spec.template.metadata.annotations}",
    ]);
    assert!(
        restarted.contains("kubectl.kubernetes.io/restartedAt"),
        "{restarted}"
    );
}

#[test]
fn revision_history_limit_prunes_old_revisions_but_not_those_in_use() {
    let s = Server::up(2);
    // RollingUpdate, limit 2: after five templates, the current one and two old ones.
    let extra = "  revisionHistoryLimit: 2";
    apply(
        &s,
        &daemonset("prune", "busybox:v1", &rolling("1", "0"), extra),
    );
    rollout_done(&s, "prune");
    for v in 2..=5 {
        write(
            &s,
            &["set", "image", "ds/prune", &format!("c=busybox:v{v}")],
        );
        rollout_done(&s, "prune");
    }
    let revs = wait_for(LIMIT, "history pruned to 2 old revisions", || {
        let revs = revisions(&s, "prune");
        (revs.len() == 3).then_some(revs)
    });
    assert_eq!(revs.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(history(&s, "prune").len(), 3);

    // OnDelete, limit 1: the pods still run revision 1, so it survives the pruning that
    // removes 2 and 3.
    apply(
        &s,
        &daemonset("keep", "busybox:v1", ON_DELETE, "  revisionHistoryLimit: 1"),
    );
    status_until(&s, "keep", "keep's pods", |st| {
        num(st, "numberAvailable") == 2
    });
    for v in 2..=4 {
        write(&s, &["set", "image", "ds/keep", &format!("c=busybox:v{v}")]);
        revision_hash(&s, "keep", v);
    }
    let revs = wait_for(LIMIT, "keep's history pruned", || {
        let revs = revisions(&s, "keep");
        (revs.iter().map(|r| r.0).collect::<Vec<_>>() == [1, 4]).then_some(revs)
    });
    let in_use: BTreeSet<String> = pods(&s, "keep").values().map(|p| p.1.clone()).collect();
    assert_eq!(in_use, BTreeSet::from([revs[0].1.clone()]));
}

// ---------------------------------------------------------------------------------------
// Stuck rollouts
// ---------------------------------------------------------------------------------------

#[test]
fn broken_image_stalls_within_max_unavailable_and_a_fix_moves_on() {
    let s = Server::up(5);
    apply(
        &s,
        &daemonset("stuck", "busybox:v1", &rolling("2", "0"), ""),
    );
    rollout_done(&s, "stuck");
    let mut w = watch_settled(&s, "stuck", 1);

    write(&s, &["set", "image", "ds/stuck", "c=busybox:non-existent"]);
    let broken = revision_hash(&s, "stuck", 2);
    let backing_off = |w: &PodWatch| {
        w.live()
            .filter(|p| p.hash == broken && p.reason == "ImagePullBackOff")
            .count()
    };
    w.until("two pods in ImagePullBackOff", |w| backing_off(w) == 2);
    // It stays there: no third node is taken down.
    w.observe_for(Duration::from_secs(3));
    assert_eq!(w.max_unavailable, 2, "{:#?}", w.pods);
    assert_eq!(w.live().filter(|p| p.hash == broken).count(), 2);
    let st = status_until(&s, "stuck", "status of the stalled rollout", |st| {
        num(st, "updatedNumberScheduled") == 2 && num(st, "numberUnavailable") == 2
    });
    assert_eq!(num(&st, "numberAvailable"), 3);
    let o = s.kubectl(&["rollout", "status", "ds/stuck", "--timeout=2s"]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Waiting for daemon set \"stuck\" rollout to finish: 2 out of 5 new pods have been updated"),
        "{out}"
    );
    let po = s.ok(&["get", "pods", "-l", "app=stuck"]);
    assert_eq!(po.matches("ImagePullBackOff").count(), 2, "{po}");

    // A fixed template: the broken pods are replaced at once, then the rest.
    write(&s, &["set", "image", "ds/stuck", "c=busybox:v3"]);
    let fixed = revision_hash(&s, "stuck", 3);
    w.until("every pod on the fixed revision", |w| w.settled_on(&fixed));
    assert_eq!(w.max_unavailable, 2, "never more than maxUnavailable down");
    rollout_done(&s, "stuck");
}

#[test]
fn undo_of_a_broken_rollout_replaces_only_the_broken_pods() {
    let s = Server::up(5);
    apply(&s, &daemonset("back", "busybox:v1", &rolling("1", "0"), ""));
    rollout_done(&s, "back");
    let before = pods(&s, "back");
    let mut w = watch_settled(&s, "back", 1);

    write(&s, &["set", "image", "ds/back", "c=busybox:non-existent"]);
    let broken = revision_hash(&s, "back", 2);
    w.until("one pod in ImagePullBackOff", |w| {
        w.live()
            .any(|p| p.hash == broken && p.reason == "ImagePullBackOff")
    });
    let broken_node = w
        .live()
        .find(|p| p.hash == broken)
        .map(|p| p.node.clone())
        .expect("a broken pod");

    write(&s, &["rollout", "undo", "ds/back"]);
    let v1 = revision_hash(&s, "back", 3);
    w.until("every pod back on v1", |w| w.settled_on(&v1));
    assert_eq!(w.max_unavailable, 1);
    rollout_done(&s, "back");
    let after = pods(&s, "back");
    for (node, pod) in &before {
        if *node == broken_node {
            assert_ne!(after[node].0, pod.0, "{node}: the broken pod was replaced");
            assert_eq!(after[node].2, "busybox:v1");
        } else {
            assert_eq!(&after[node], pod, "{node} kept its pod");
        }
    }
}

// ---------------------------------------------------------------------------------------
// everynode extensions: pause, canary selector, progress deadline (README "Beyond
// Kubernetes")
// ---------------------------------------------------------------------------------------

/// The DaemonSet's `Progressing` condition as `(status, reason, message)`.
fn progressing(s: &Server, name: &str) -> Option<(String, String, String)> {
    let ds = s.json(&["get", "ds", name]);
    ds["status"]["conditions"].as_array().and_then(|cs| {
        cs.iter().find(|c| c["type"] == "Progressing").map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (field("status"), field("reason"), field("message"))
        })
    })
}

fn progressing_until(s: &Server, name: &str, status: &str, reason: &str) -> String {
    wait_for(
        LIMIT,
        &format!("{name}: Progressing={status} {reason}"),
        || {
            progressing(s, name)
                .filter(|(st, r, _)| st == status && r == reason)
                .map(|(_, _, message)| message)
        },
    )
}

#[test]
fn paused_rollout_holds_and_new_nodes_get_the_running_revision() {
    let s = Server::up(3);
    apply(
        &s,
        &daemonset("pause", "busybox:v1", &rolling("1", "0"), ""),
    );
    rollout_done(&s, "pause");
    let v1 = revision_hash(&s, "pause", 1);
    write(&s, &["annotate", "ds", "pause", "everynode.io/paused=true"]);
    write(&s, &["set", "image", "ds/pause", "c=busybox:v2"]);
    let v2 = revision_hash(&s, "pause", 2);
    let message = progressing_until(&s, "pause", "Unknown", "RolloutPaused");
    assert!(message.contains(&format!("pause-{v2}")), "{message}");
    status_until(&s, "pause", "generation 2 observed", |st| {
        num(st, "observedGeneration") == 2
    });

    // Nothing is replaced while paused.
    let mut w = PodWatch::start(&s, "pause", node_names(&s));
    w.until("the running pods", |w| w.settled_on(&v1));
    w.observe_for(Duration::from_secs(2));
    assert!(w.settled_on(&v1), "{:#?}", w.pods);

    // A node that joins gets the revision the fleet runs, not the paused one.
    let o = s.everynode(&["node", "add", "node7"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let on_new = wait_for(LIMIT, "a pod on node7", || {
        pods(&s, "pause").remove("node7")
    });
    assert_eq!(
        (on_new.1.as_str(), on_new.2.as_str()),
        (v1.as_str(), "busybox:v1")
    );

    // Resuming rolls everything, the new node included.
    write(&s, &["annotate", "ds", "pause", "everynode.io/paused-"]);
    rollout_done(&s, "pause");
    let all = pods(&s, "pause");
    assert_eq!(all.len(), 4);
    assert!(
        all.values().all(|p| p.1 == v2 && p.2 == "busybox:v2"),
        "{all:?}"
    );
    // Without an everynode annotation the status is Kubernetes' again: no condition.
    wait_for(LIMIT, "the Progressing condition to go", || {
        progressing(&s, "pause").is_none().then_some(())
    });
}

#[test]
fn canary_selector_updates_only_the_picked_nodes() {
    let s = Server::up(4);
    write(&s, &["label", "node", "node1", "canary=true"]);
    let yaml = daemonset("canary", "busybox:v1", &rolling("1", "0"), "").replacen(
        "metadata:\n",
        "metadata:\n  annotations:\n    everynode.io/canary-selector: canary=true\n",
        1,
    );
    apply(&s, &yaml);
    rollout_done(&s, "canary");
    let v1 = revision_hash(&s, "canary", 1);
    let before = pods(&s, "canary");

    write(&s, &["set", "image", "ds/canary", "c=busybox:v2"]);
    let v2 = revision_hash(&s, "canary", 2);
    let message = progressing_until(&s, "canary", "True", "NewRevisionAvailable");
    assert!(message.contains("canary selector"), "{message}");
    let mut w = PodWatch::start(&s, "canary", node_names(&s));
    w.until("node1 on v2, the rest on v1", |w| {
        w.live().count() == 4
            && w.live().all(|p| {
                p.ready
                    && p.hash
                        == if p.node == "node1" {
                            v2.as_str()
                        } else {
                            v1.as_str()
                        }
            })
    });
    w.observe_for(Duration::from_secs(2));
    let now = pods(&s, "canary");
    for (node, pod) in &before {
        if node == "node1" {
            assert_eq!(now[node].2, "busybox:v2");
        } else {
            assert_eq!(&now[node], pod, "{node} outside the canary");
        }
    }
    // kubectl sees a rollout that is not finished.
    let o = s.kubectl(&["rollout", "status", "ds/canary", "--timeout=1s"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 out of 4 new pods have been updated"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Widening the canary by labelling a node updates it next.
    write(&s, &["label", "node", "node2", "canary=true"]);
    wait_for(LIMIT, "node2 updated", || {
        pods(&s, "canary")
            .get("node2")
            .is_some_and(|p| p.1 == v2)
            .then_some(())
    });
    assert_eq!(pods(&s, "canary")["node3"], before["node3"]);

    // Dropping the annotation finishes the rollout everywhere.
    write(
        &s,
        &["annotate", "ds", "canary", "everynode.io/canary-selector-"],
    );
    rollout_done(&s, "canary");
    assert!(pods(&s, "canary").values().all(|p| p.1 == v2));
    wait_for(LIMIT, "the Progressing condition to go", || {
        progressing(&s, "canary").is_none().then_some(())
    });
}

#[test]
fn progress_deadline_marks_a_stalled_rollout() {
    let s = Server::up(3);
    apply(
        &s,
        &daemonset("deadline", "busybox:v1", &rolling("1", "0"), ""),
    );
    rollout_done(&s, "deadline");
    write(
        &s,
        &[
            "annotate",
            "ds",
            "deadline",
            "everynode.io/progress-deadline-seconds=3",
        ],
    );
    progressing_until(&s, "deadline", "True", "NewRevisionAvailable");

    write(
        &s,
        &["set", "image", "ds/deadline", "c=busybox:non-existent"],
    );
    let started = Instant::now();
    let broken = revision_hash(&s, "deadline", 2);
    let message = progressing_until(&s, "deadline", "False", "ProgressDeadlineExceeded");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "not before the deadline"
    );
    assert!(message.contains(&format!("deadline-{broken}")), "{message}");
    // The stalled rollout is as before: one node down, in ImagePullBackOff.
    let st = s.json(&["get", "ds", "deadline"])["status"].clone();
    assert_eq!(num(&st, "numberUnavailable"), 1, "{st}");

    // A fixed template progresses again and completes.
    write(&s, &["set", "image", "ds/deadline", "c=busybox:v3"]);
    rollout_done(&s, "deadline");
    progressing_until(&s, "deadline", "True", "NewRevisionAvailable");
}

/// A node without room for the new template: its pod stays Pending with the scheduler's
/// reason, and `kubectl rollout status` keeps waiting (the seeds' troubleshooting case).
#[test]
fn a_node_without_room_leaves_the_rollout_waiting_with_failed_scheduling() {
    let s = Server::up(2);
    let o = s.everynode(&["node", "add", "small", "--memory", "300Mi"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let with_request = |memory: &str| {
        daemonset("room", "busybox:1.36", &rolling("100%", "0"), "").replace(
            "        image: busybox:1.36\n",
            &format!("        image: busybox:1.36\n        resources:\n          requests:\n            memory: {memory}\n"),
        )
    };
    apply(&s, &with_request("100Mi"));
    rollout_done(&s, "room");
    apply(&s, &with_request("500Mi"));
    let pending = wait_for(LIMIT, "the new pod for `small` to be unschedulable", || {
        let v = s.json(&["get", "po", "-l", "app=room"]);
        v["items"].as_array()?.iter().find_map(|p| {
            let unschedulable = p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
            });
            (target_node(p) == "small" && unschedulable)
                .then(|| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        })
    });
    let describe = s.ok(&["describe", "po", &pending]);
    assert!(
        describe.contains("FailedScheduling") && describe.contains("Insufficient memory"),
        "{describe}"
    );
    let o = s.kubectl(&["rollout", "status", "ds/room", "--timeout=3s"]);
    assert!(!o.status.success(), "the rollout cannot finish");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Waiting for daemon set \"room\" rollout to finish"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// minReadySeconds
// ---------------------------------------------------------------------------------------

/// The DaemonSet's `(numberReady, numberAvailable, updatedNumberScheduled)`, and how many
/// of its live pods had, when the status was read, been Ready for more than `min_ready`
/// seconds by their Ready condition's time. The server runs on this host, so its clock is
/// this one: the status may never count more pods available than that.
fn availability(s: &Server, name: &str, min_ready: i64) -> (i64, i64, i64, usize) {
    let st = s.json(&["get", "ds", name])["status"].clone();
    let now = jiff::Timestamp::now();
    let v = s.json(&["get", "pods", "-l", &format!("app={name}")]);
    let long_ready = v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .filter_map(|p| {
                    p["status"]["conditions"]
                        .as_array()?
                        .iter()
                        .find(|c| c["type"] == "Ready" && c["status"] == "True")?
                        ["lastTransitionTime"]
                        .as_str()?
                        .parse::<jiff::Timestamp>()
                        .ok()
                })
                .filter(|since| since.as_millisecond() + min_ready * 1000 < now.as_millisecond())
                .count()
        })
        .unwrap_or(0);
    (
        num(&st, "numberReady"),
        num(&st, "numberAvailable"),
        num(&st, "updatedNumberScheduled"),
        long_ready,
    )
}

/// `kubectl rollout status --watch=false`: the one-line verdict, without waiting.
fn rollout_verdict(s: &Server, name: &str) -> String {
    s.ok(&["rollout", "status", &format!("ds/{name}"), "--watch=false"])
}

/// Polls until all 3 pods of `name` are updated and available, checking on the way that
/// none counted as available before it had been Ready for `min_ready` seconds, and
/// returns `kubectl rollout status`'s verdict from a moment when all were updated and
/// Ready but not all available yet.
fn await_availability(s: &Server, name: &str, min_ready: i64) -> String {
    let mut lagging = None;
    wait_for(LIMIT, "every pod updated and available", || {
        let (ready, available, updated, long_ready) = availability(s, name, min_ready);
        assert!(
            usize::try_from(available).unwrap_or(0) <= long_ready,
            "{available} pods counted available, but only {long_ready} have been Ready for {min_ready}s"
        );
        if (ready, updated) == (3, 3) && available < 3 && lagging.is_none() {
            let verdict = rollout_verdict(s, name);
            if verdict.contains("updated pods are available") {
                lagging = Some(verdict);
            }
        }
        (available == 3 && updated == 3).then_some(())
    });
    lagging.expect("a moment with every pod Ready but not every pod available")
}

#[test]
fn min_ready_seconds_delays_availability_and_holds_the_next_node() {
    const MIN_READY: i64 = 5;
    let s = Server::up(3);
    apply(
        &s,
        &daemonset(
            "mr",
            "busybox:v1",
            &rolling("1", "0"),
            &format!("  minReadySeconds: {MIN_READY}"),
        ),
    );
    // Every pod is Ready, but none counts as available until it has been Ready for
    // minReadySeconds; `kubectl rollout status` waits on availability meanwhile.
    let verdict = await_availability(&s, "mr", MIN_READY);
    assert!(
        verdict.contains("Waiting for daemon set \"mr\" rollout to finish:")
            && verdict.contains("of 3 updated pods are available"),
        "{verdict}"
    );
    rollout_done(&s, "mr");

    // The rolling update (maxUnavailable 1) moves to the next node only once the
    // previous node's new pod is available, i.e. Ready for minReadySeconds.
    let mut w = watch_settled(&s, "mr", 1);
    let old_hash = revision_hash(&s, "mr", 1);
    write(&s, &["set", "image", "ds/mr", "c=busybox:v2"]);
    let new_hash = revision_hash(&s, "mr", 2);
    w.until("every pod on revision 2", |w| w.settled_on(&new_hash));
    assert_eq!(w.max_unavailable, 1, "one node at a time");
    assert_eq!(w.max_pods_per_node, 1);
    let mut ready: Vec<Instant> = w
        .seen
        .values()
        .filter(|p| p.hash == new_hash)
        .filter_map(|p| p.ready_at)
        .collect();
    let mut deleted: Vec<Instant> = w
        .seen
        .values()
        .filter(|p| p.hash == old_hash)
        .filter_map(|p| p.deleting_at)
        .collect();
    ready.sort();
    deleted.sort();
    assert_eq!((ready.len(), deleted.len()), (3, 3), "{:#?}", w.seen);
    // Availability may come up to a second early (the Ready time has whole seconds);
    // another second of slack covers the watch's delivery.
    let min_gap = Duration::from_secs(MIN_READY.unsigned_abs() - 2);
    for k in 1..3 {
        let gap = deleted[k].saturating_duration_since(ready[k - 1]);
        assert!(
            gap >= min_gap,
            "old pod {k} was deleted {gap:?} after the previous new pod was Ready"
        );
    }
    // The last new pod is Ready but not yet available: the status and `rollout status`
    // say so until minReadySeconds have passed.
    let verdict = await_availability(&s, "mr", MIN_READY);
    assert!(
        verdict.contains("2 of 3 updated pods are available"),
        "{verdict}"
    );
    rollout_done(&s, "mr");
}

// ---------------------------------------------------------------------------------------
// A node that goes silent mid-rollout (README: "Nodes that are NotReady or unreachable
// during a rollout")
// ---------------------------------------------------------------------------------------

/// Like [`daemonset`] but with no tolerations of its own: only the automatic daemon
/// ones, so it leaves a node tainted `unreachable:NoSchedule` (and the master).
fn intolerant_daemonset(name: &str, image: &str, extra: &str) -> String {
    daemonset(name, image, &rolling("1", "0"), extra)
        .replace("      tolerations:\n      - operator: Exists\n", "")
}

fn node_ready(s: &Server, node: &str) -> String {
    s.ok(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ])
    .trim()
    .to_string()
}

/// A pod as `(name, controller-revision-hash, terminating)`.
type PodBrief = (String, String, bool);

/// Every pod of `app` on `node` (live or terminating).
fn pods_on(s: &Server, app: &str, node: &str) -> Vec<PodBrief> {
    let selector = format!("app={app}");
    let v = s.json(&["get", "pods", "-l", &selector]);
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|p| target_node(p) == node)
                .map(|p| {
                    (
                        p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        p["metadata"]["labels"]["controller-revision-hash"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        !p["metadata"]["deletionTimestamp"].is_null(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_node_going_silent_mid_rollout_does_not_hold_the_rollout_hostage() {
    let s = Server::start_with(&[
        "up",
        "--nodes",
        "5",
        "--ready-delay-ms",
        "100",
        "--node-monitor-grace-seconds",
        "2",
    ]);
    // minReadySeconds paces the rollouts (maxUnavailable 1) so that a node can go silent
    // while they run. `open` tolerates everything, so it also runs on the master and a
    // silent node stays desired; `plain` has only the automatic daemon tolerations, so
    // the unreachable NoSchedule taint takes a silent node out of its desired set.
    let extra = "  minReadySeconds: 4";
    apply(
        &s,
        &daemonset("open", "busybox:v1", &rolling("1", "0"), extra),
    );
    apply(&s, &intolerant_daemonset("plain", "busybox:v1", extra));
    rollout_done(&s, "open");
    rollout_done(&s, "plain");
    let workers = ["node1", "node2", "node3", "node4"];
    assert_eq!(pods(&s, "open").len(), 5);
    assert_eq!(pods(&s, "plain").len(), 4);
    let old = (revision_hash(&s, "open", 1), revision_hash(&s, "plain", 1));

    let mut w = watch_settled(&s, "open", 1);
    write(&s, &["set", "image", "ds/open", "c=busybox:v2"]);
    write(&s, &["set", "image", "ds/plain", "c=busybox:v2"]);
    let new = (revision_hash(&s, "open", 2), revision_hash(&s, "plain", 2));
    // Mid-rollout: the first node has its new pod; a worker that still runs the old
    // revision of both goes silent.
    w.until("the first new pod", |w| {
        w.live().any(|p| p.hash == new.0 && p.ready)
    });
    let silent = workers
        .iter()
        .find(|n| {
            let n: &str = n;
            let untouched = |app: &str, hash: &str| {
                let on = pods_on(&s, app, n);
                on.len() == 1 && on[0].1 == hash && !on[0].2
            };
            untouched("open", &old.0) && untouched("plain", &old.1)
        })
        .expect("a worker the rollouts have not reached yet")
        .to_string();
    let o = s.everynode(&["node", "stop", &silent]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("node/{silent} stopped")
    );
    wait_for(LIMIT, "the silent node to turn Unknown", || {
        (node_ready(&s, &silent) == "Unknown").then_some(())
    });
    // `plain` no longer wants the tainted node (status counts as on Kubernetes); once
    // the controller has seen that, the silent node's pods are off-limits to the rollout.
    status_until(
        &s,
        "plain",
        "the silent node to leave plain's desired set",
        |st| num(st, "desiredNumberScheduled") == 3,
    );
    let frozen: Vec<(&str, Vec<PodBrief>)> = ["open", "plain"]
        .into_iter()
        .map(|app| (app, pods_on(&s, app, &silent)))
        .collect();

    // Both rollouts go on over the healthy nodes; neither waits for the silent one.
    rollout_done(&s, "plain");
    let st = status_until(&s, "plain", "plain done on the healthy nodes", |st| {
        num(st, "updatedNumberScheduled") == 3 && num(st, "numberAvailable") == 3
    });
    assert_eq!(num(&st, "numberMisscheduled"), 1, "{st}");
    status_until(&s, "open", "open updated on every healthy node", |st| {
        num(st, "updatedNumberScheduled") == 4 && num(st, "desiredNumberScheduled") == 5
    });
    for (app, new_hash, old_hash) in [("open", &new.0, &old.0), ("plain", &new.1, &old.1)] {
        for (node, (_, hash, _)) in pods(&s, app) {
            let want = if node == silent { old_hash } else { new_hash };
            assert_eq!(&hash, want, "{app} on {node}");
        }
        // The silent node got nothing new (its pods, whatever their state, are old).
        let on = pods_on(&s, app, &silent);
        assert!(on.iter().all(|(_, h, _)| h == old_hash), "{app}: {on:?}");
    }
    // The rollout deleted nothing on the silent node once it was known to be unready.
    for (app, before) in &frozen {
        let now = pods_on(&s, app, &silent);
        for (name, _, terminating) in before {
            if !terminating {
                assert!(
                    now.iter().any(|(n, _, t)| n == name && !t),
                    "{app}: {name} was deleted on the silent node: {now:?}"
                );
            }
        }
    }
    // `open` still wants the silent node, so `kubectl rollout status` keeps waiting.
    let verdict = rollout_verdict(&s, "open");
    assert!(
        verdict.contains("Waiting for daemon set \"open\" rollout to finish: 4 out of 5 new pods have been updated"),
        "{verdict}"
    );
    let o = s.kubectl(&["rollout", "status", "ds/open", "--timeout=2s"]);
    assert!(
        !o.status.success(),
        "open cannot finish without the silent node"
    );

    // Back online, the node is updated like any other.
    let o = s.everynode(&["node", "start", &silent]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for(LIMIT, "the node to be Ready again", || {
        (node_ready(&s, &silent) == "True").then_some(())
    });
    rollout_done(&s, "open");
    rollout_done(&s, "plain");
    for (app, new_hash, count) in [("open", &new.0, 5), ("plain", &new.1, 4)] {
        let st = status_until(&s, app, "every pod updated and available", |st| {
            num(st, "updatedNumberScheduled") == count && num(st, "numberAvailable") == count
        });
        assert_eq!(num(&st, "desiredNumberScheduled"), count, "{app}: {st}");
        let pods = pods(&s, app);
        assert_eq!(pods.len() as i64, count, "{app}: {pods:?}");
        assert!(
            pods.values().all(|(_, h, _)| h == new_hash),
            "{app}: {pods:?}"
        );
        assert!(
            pods_on(&s, app, &silent)
                .iter()
                .all(|(_, h, t)| h == new_hash && !t)
        );
    }
}

#[test]
fn node_stop_and_start_need_a_simulated_node() {
    let s = Server::up(2);
    let o = s.everynode(&["node", "stop", "ghost"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("node \"ghost\" not found"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A node without the sim runtime behind it cannot be stopped by everynode.
    let o = s.apply_yaml("apiVersion: v1\nkind: Node\nmetadata:\n  name: real\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = s.everynode(&["node", "stop", "real"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a simulated node"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
