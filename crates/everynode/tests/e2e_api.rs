//! The API server driven by the stock kubectl (issue 2): the seeds' manifests through
//! create/apply/get/edit/label/annotate/taint/cordon/delete/watch/explain, validation
//! messages, strict field validation, authentication and durability across SIGKILL.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{Server, example, rows, wait_for};

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: NAME
  labels:
    kubernetes.io/hostname: NAME
    kubernetes.io/os: linux
"#;

fn node(name: &str) -> String {
    NODE.replace("NAME", name)
}

#[test]
fn seed_manifests_create_apply_get_and_delete() {
    let s = Server::start();
    let out = s.ok(&["create", "-f", &example("nginx-ds.yaml")]);
    assert_eq!(out.trim(), "daemonset.apps/nginx-ds created");
    let again = s.fails(&["create", "-f", &example("nginx-ds.yaml")]);
    assert!(
        again.contains("Error from server (AlreadyExists)")
            && again.contains("daemonsets.apps \"nginx-ds\" already exists"),
        "{again}"
    );

    assert_eq!(
        s.ok(&["apply", "-f", &example("fluentd-elasticsearch.yaml")])
            .trim(),
        "daemonset.apps/fluentd-elasticsearch created"
    );
    assert_eq!(
        s.ok(&["apply", "-f", &example("fluentd-elasticsearch.yaml")])
            .trim(),
        "daemonset.apps/fluentd-elasticsearch unchanged"
    );
    s.ok(&["apply", "-f", &example("fluentd-serviceaccount.yaml")]);
    s.ok(&["apply", "-f", &example("fluentd.yaml")]);
    s.ok(&["apply", "-f", &example("node-exporter.yaml")]);

    // `kubectl get ds -o wide`: kube-apiserver's columns, in order.
    let wide = rows(&s.ok(&["get", "ds", "-o", "wide"]));
    assert_eq!(
        wide[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let nginx = wide
        .iter()
        .find(|r| r[0] == "nginx-ds")
        .expect("nginx-ds row");
    assert_eq!(&nginx[1..7], ["0", "0", "0", "0", "0", "<none>"]);
    assert_eq!(&nginx[8..], ["nginx", "nginx", "app=nginx"]);

    // -A shows the namespace column from row.object.
    let all = rows(&s.ok(&["get", "ds", "-A"]));
    assert_eq!(all[0][0], "NAMESPACE");
    assert!(
        all.iter()
            .any(|r| r[0] == "kube-system" && r[1] == "fluentd-elasticsearch")
    );
    assert!(all.iter().any(|r| r[0] == "default" && r[1] == "nginx-ds"));

    // Defaults are visible in -o yaml / -o json.
    let yaml = s.ok(&["get", "ds", "nginx-ds", "-o", "yaml"]);
    for want in [
        "revisionHistoryLimit: 10",
        "maxUnavailable: 1",
        "maxSurge: 0",
        "type: RollingUpdate",
        "deprecated.daemonset.template.generation: \"1\"",
        "terminationGracePeriodSeconds: 30",
        "imagePullPolicy: Always",
        "dnsPolicy: ClusterFirst",
        "schedulerName: default-scheduler",
    ] {
        assert!(yaml.contains(want), "missing {want} in\n{yaml}");
    }
    let j = s.json(&["get", "ds", "nginx-ds"]);
    assert_eq!(j["metadata"]["generation"], 1);
    assert_eq!(j["status"]["desiredNumberScheduled"], 0);
    assert!(j["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));

    // Selectors.
    let by_label = s.ok(&[
        "get",
        "ds",
        "-A",
        "-l",
        "k8s-app=fluentd-logging",
        "-o",
        "name",
    ]);
    assert_eq!(by_label.trim(), "daemonset.apps/fluentd-elasticsearch");
    let by_field = s.ok(&[
        "get",
        "ds",
        "-n",
        "kube-system",
        "--field-selector",
        "metadata.name=fluentd",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "daemonset.apps/fluentd");
    let none = s.kubectl(&["get", "ds", "-l", "app=nothing"]);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No resources found in default namespace.")
    );

    assert_eq!(
        s.ok(&["delete", "ds", "nginx-ds"]).trim(),
        "daemonset.apps \"nginx-ds\" deleted"
    );
    let gone = s.fails(&["get", "ds", "nginx-ds"]);
    assert!(
        gone.contains("Error from server (NotFound): daemonsets.apps \"nginx-ds\" not found"),
        "{gone}"
    );
}

#[test]
fn legacy_extensions_manifest_gets_no_matches_for_kind() {
    let s = Server::start();
    let err = s.fails(&[
        "create",
        "-f",
        &example("legacy/node-exporter-extensions-v1beta1.yaml"),
    ]);
    assert!(
        err.contains("no matches for kind \"DaemonSet\" in version \"extensions/v1beta1\""),
        "{err}"
    );
}

/// `kind: List` files always make kubectl fetch `/openapi/v2` (protobuf); they must apply.
#[test]
fn list_manifests_apply_with_default_validation() {
    let s = Server::start();
    s.ok(&["apply", "-f", &example("nginx-ds.yaml")]);
    let list = s.ok(&["get", "ds", "-o", "json"]);
    assert!(list.contains("\"kind\": \"List\""), "{list}");
    let o = s.with_stdin(&["apply", "-f", "-"], &list);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("daemonset.apps/nginx-ds"));
}

const BASE_DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: v
spec:
  selector:
    matchLabels:
      app: v
  template:
    metadata:
      labels:
        app: v
    spec:
      containers:
      - name: c
        image: busybox:1.36
"#;

#[test]
fn every_validation_rule_shows_its_message() {
    let s = Server::start();
    let check = |yaml: String, wants: &[&str]| {
        let o = s.with_stdin(&["create", "-f", "-"], &yaml);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "accepted:\n{yaml}");
        for w in wants {
            assert!(err.contains(w), "want {w:?} in:\n{err}\nfor:\n{yaml}");
        }
    };
    let invalid = "The DaemonSet \"v\" is invalid";
    check(
        BASE_DS.replacen(
            "      app: v\n  template",
            "      app: other\n  template",
            1,
        ),
        &[
            invalid,
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"v\"}: `selector` does not match template `labels`",
        ],
    );
    check(
        BASE_DS.replace(
            "      containers:",
            "      restartPolicy: Never\n      containers:",
        ),
        &[
            invalid,
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        ],
    );
    check(
        BASE_DS.replace("name: v\nspec", "name: Bad_Name\nspec"),
        &[
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of",
        ],
    );
    check(
        BASE_DS.replace(
            "spec:\n  selector",
            "spec:\n  minReadySeconds: -1\n  selector",
        ),
        &[
            invalid,
            "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
        ],
    );
    check(
        BASE_DS.replace(
            "spec:\n  selector",
            "spec:\n  updateStrategy:\n    type: Bogus\n  selector",
        ),
        &[
            invalid,
            "spec.updateStrategy: Unsupported value: apps.DaemonSetUpdateStrategy{Type:\"Bogus\", RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: \"RollingUpdate\", \"OnDelete\"",
        ],
    );
    check(BASE_DS.replace("spec:\n  selector", "spec:\n  updateStrategy:\n    rollingUpdate:\n      maxUnavailable: 0\n      maxSurge: 0\n  selector"),
          &[invalid, "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]);
    check(BASE_DS.replace("spec:\n  selector", "spec:\n  updateStrategy:\n    rollingUpdate:\n      maxUnavailable: 1\n      maxSurge: 1\n  selector"),
          &[invalid, "spec.updateStrategy.rollingUpdate.maxSurge", "may not be set when maxUnavailable is non-zero"]);
    check(
        BASE_DS.replace(
            "spec:\n  selector",
            "spec:\n  updateStrategy:\n    rollingUpdate:\n      maxUnavailable: 110%\n  selector",
        ),
        &[
            invalid,
            "spec.updateStrategy.rollingUpdate.maxUnavailable",
            "must not be greater than 100%",
        ],
    );
    check(
        BASE_DS.replace(
            "      containers:",
            "      activeDeadlineSeconds: 10\n      containers:",
        ),
        &[
            invalid,
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported",
        ],
    );
    check(
        BASE_DS.replace(
            "  selector:\n    matchLabels:\n      app: v\n",
            "  selector: {}\n",
        ),
        &[invalid, "empty selector is invalid for daemonset"],
    );
    check(
        BASE_DS.replace(
            "      containers:\n      - name: c\n        image: busybox:1.36\n",
            "      containers: []\n",
        ),
        &[invalid, "spec.template.spec.containers: Required value"],
    );
    check(
        BASE_DS.replace("        image: busybox:1.36\n", ""),
        &[
            invalid,
            "spec.template.spec.containers[0].image: Required value",
        ],
    );

    // The selector is immutable once created.
    s.with_stdin(&["create", "-f", "-"], BASE_DS);
    let changed = BASE_DS.replace(
        "      app: v\n  template:\n    metadata:\n      labels:\n        app: v",
        "      app: v2\n  template:\n    metadata:\n      labels:\n        app: v2",
    );
    let o = s.with_stdin(&["apply", "-f", "-"], &changed);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("spec.selector") && err.contains("field is immutable"),
        "{err}"
    );
}

#[test]
fn strict_field_validation_rejects_unknown_fields() {
    let s = Server::start();
    let bad = BASE_DS.replace("spec:\n  selector", "spec:\n  bogusField: 1\n  selector");
    let o = s.with_stdin(&["create", "-f", "-"], &bad);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("strict decoding error: unknown field \"spec.bogusField\""),
        "{err}"
    );
    // --validate=warn: created, with kubectl's warning.
    let o = s.with_stdin(&["create", "--validate=warn", "-f", "-"], &bad);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("unknown field \"spec.bogusField\""), "{err}");
    // What kube-apiserver warns of in a pod template.
    let dated = BASE_DS
        .replace("name: v\n", "name: w\n")
        .replace(
            "    spec:\n      containers:",
            "    spec:\n      nodeSelector:\n        beta.kubernetes.io/os: linux\n      containers:",
        )
        .replace(
            "image: busybox:1.36\n",
            "image: busybox:1.36\n        resources: {limits: {memory: 100m}}\n        env: [{name: FOO, value: a}, {name: FOO, value: b}]\n",
        );
    let o = s.with_stdin(&["apply", "--dry-run=server", "-f", "-"], &dated);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for want in [
        "Warning: spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \"kubernetes.io/os\" instead",
        "Warning: spec.template.spec.containers[0].resources.limits[memory]: fractional byte value \"100m\" is invalid, must be an integer",
        "Warning: spec.template.spec.containers[0].env[1]: hides previous definition of \"FOO\", which may be dropped when using apply",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
}

#[test]
fn edit_label_and_annotate() {
    let s = Server::start();
    s.ok(&["create", "-f", &example("nginx-ds.yaml")]);
    let editor = s.data_dir().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/image: nginx$/image: nginx:1.25/' \"$1\"\n",
    )
    .expect("write editor");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .expect("chmod");
    let o = s
        .command()
        .args(["edit", "ds", "nginx-ds"])
        .env("EDITOR", &editor)
        .output()
        .expect("edit");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "daemonset.apps/nginx-ds edited"
    );
    let j = s.json(&["get", "ds", "nginx-ds"]);
    assert_eq!(
        j["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
    assert_eq!(j["metadata"]["generation"], 2);
    assert_eq!(
        j["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "2"
    );

    assert_eq!(
        s.ok(&["label", "ds", "nginx-ds", "tier=infra"]).trim(),
        "daemonset.apps/nginx-ds labeled"
    );
    assert_eq!(
        s.ok(&["annotate", "ds", "nginx-ds", "owner=team-a"]).trim(),
        "daemonset.apps/nginx-ds annotated"
    );
    let j = s.json(&["get", "ds", "nginx-ds"]);
    assert_eq!(j["metadata"]["labels"]["tier"], "infra");
    assert_eq!(j["metadata"]["annotations"]["owner"], "team-a");
    // Metadata-only changes do not bump the generation.
    assert_eq!(j["metadata"]["generation"], 2);
    s.ok(&["label", "ds", "nginx-ds", "tier-"]);
    assert!(
        s.json(&["get", "ds", "nginx-ds"])["metadata"]["labels"]
            .get("tier")
            .is_none()
    );
    // set image sends a strategic merge patch keyed by container name.
    s.ok(&["set", "image", "ds/nginx-ds", "nginx=nginx:1.26"]);
    assert_eq!(
        s.json(&["get", "ds", "nginx-ds"])["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
}

#[test]
fn nodes_taint_and_cordon() {
    let s = Server::start();
    assert!(s.apply_yaml(&node("n1")).status.success());
    assert!(s.apply_yaml(&node("n2")).status.success());
    assert_eq!(
        s.ok(&["taint", "nodes", "n1", "dedicated=infra:NoSchedule"])
            .trim(),
        "node/n1 tainted"
    );
    let taints = s.json(&["get", "node", "n1"])["spec"]["taints"].clone();
    assert_eq!(taints[0]["key"], "dedicated");
    assert_eq!(taints[0]["effect"], "NoSchedule");
    assert_eq!(
        s.ok(&["taint", "nodes", "n1", "dedicated:NoSchedule-"])
            .trim(),
        "node/n1 untainted"
    );
    assert!(
        s.json(&["get", "node", "n1"])["spec"]
            .get("taints")
            .is_none_or(|t| t.as_array().is_some_and(|a| a.is_empty()))
    );

    assert_eq!(s.ok(&["cordon", "n2"]).trim(), "node/n2 cordoned");
    let nodes = rows(&s.ok(&["get", "nodes"]));
    assert_eq!(nodes[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let n2 = nodes.iter().find(|r| r[0] == "n2").expect("n2 row");
    assert!(n2[1].ends_with(",SchedulingDisabled"), "{n2:?}");
    assert_eq!(s.ok(&["uncordon", "n2"]).trim(), "node/n2 uncordoned");
    assert!(
        !s.json(&["get", "node", "n2"])["spec"]
            .get("unschedulable")
            .and_then(|u| u.as_bool())
            .unwrap_or(false)
    );
    let sel = s.ok(&[
        "get",
        "nodes",
        "-l",
        "kubernetes.io/hostname=n1",
        "-o",
        "name",
    ]);
    assert_eq!(sel.trim(), "node/n1");
}

#[test]
fn get_watch_prints_new_objects() {
    let s = Server::start();
    let mut w = s
        .command()
        .args(["get", "ds", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch");
    let stdout = w.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Whether kubectl lists before or after this create, the row must appear.
    s.ok(&["create", "-f", &example("nginx-ds.yaml")]);
    let line = wait_for(
        Duration::from_secs(30),
        "the watch to print nginx-ds",
        || {
            rx.recv_timeout(Duration::from_millis(100))
                .ok()
                .filter(|l| l.starts_with("nginx-ds"))
        },
    );
    assert!(line.split_whitespace().count() >= 8, "{line}");
    let _ = w.kill();
    let _ = w.wait();
}

#[test]
fn api_resources_and_explain() {
    let s = Server::start();
    let ar = s.ok(&["api-resources"]);
    let ds = rows(&ar)
        .into_iter()
        .find(|r| r[0] == "daemonsets")
        .expect("daemonsets listed");
    assert_eq!(ds, ["daemonsets", "ds", "apps/v1", "true", "DaemonSet"]);
    assert!(rows(&ar).iter().any(|r| r[0] == "pods" && r[1] == "po"));
    let ex = s.ok(&["explain", "ds.spec"]);
    assert!(ex.contains("KIND:") && ex.contains("DaemonSet"), "{ex}");
    for f in [
        "updateStrategy",
        "selector",
        "template",
        "minReadySeconds",
        "revisionHistoryLimit",
    ] {
        assert!(ex.contains(f), "explain lacks {f}:\n{ex}");
    }
    // As in Kubernetes' schemas, metadata is required of no kind; a DaemonSet's spec
    // requires its selector and template.
    let ex = s.ok(&["explain", "ds"]);
    let line = |name: &str| {
        ex.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(!line("metadata").contains("-required-"), "{ex}");
    let ex = s.ok(&["explain", "ds.spec"]);
    assert!(
        ex.lines()
            .any(|l| l.trim_start().starts_with("selector") && l.contains("-required-")),
        "{ex}"
    );
    // Closed sets of values are listed.
    let ex = s.ok(&["explain", "ds.spec.updateStrategy.type"]);
    assert!(
        ex.contains("ENUM:\n    OnDelete\n    RollingUpdate\n"),
        "{ex}"
    );
    let ex = s.ok(&["explain", "pc.preemptionPolicy"]);
    assert!(
        ex.contains("ENUM:\n    Never\n    PreemptLowerPriority\n"),
        "{ex}"
    );
    let ex = s.ok(&["explain", "pod.spec.tolerations.effect"]);
    assert!(
        ex.contains("ENUM:\n    NoExecute\n    NoSchedule\n    PreferNoSchedule\n"),
        "{ex}"
    );
}

/// Server-side apply tracks who owns which fields: another manager's different value is
/// a conflict until forced, and what an applier stops applying is removed.
#[test]
fn server_side_apply_owns_conflicts_and_removes_fields() {
    let s = Server::start();
    let manifest = |image: &str, extras: bool| {
        let (tier, selector) = if extras {
            (
                ", tier: web",
                "\n      nodeSelector: {kubernetes.io/os: linux}",
            )
        } else {
            ("", "")
        };
        format!(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: ssa, labels: {{app: ssa{tier}}}}}\nspec:\n  selector: {{matchLabels: {{app: ssa}}}}\n  template:\n    metadata: {{labels: {{app: ssa}}}}\n    spec:{selector}\n      containers: [{{name: c, image: \"{image}\"}}]\n"
        )
    };
    let apply = |yaml: &str, extra: &[&str]| {
        let mut args = vec!["apply", "--server-side", "-f", "-"];
        args.extend_from_slice(extra);
        s.with_stdin(&args, yaml)
    };
    let show = |s: &Server| {
        s.ok(&[
            "get",
            "ds",
            "ssa",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.nodeSelector} {.metadata.labels}",
        ])
    };
    for _ in 0..2 {
        let o = apply(&manifest("nginx:1.27", true), &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("daemonset.apps/ssa serverside-applied")
        );
    }
    let managers = s.ok(&[
        "get",
        "ds",
        "ssa",
        "--show-managed-fields",
        "-o",
        "jsonpath={range .metadata.managedFields[*]}{.manager}:{.operation} {end}",
    ]);
    assert_eq!(managers.trim(), "kubectl:Apply");
    // A server-side dry run answers with the stored resourceVersion, so diffing the
    // applied manifest shows nothing.
    let o = s.with_stdin(
        &["diff", "--server-side", "-f", "-"],
        &manifest("nginx:1.27", true),
    );
    assert!(
        o.status.success() && o.stdout.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let stored = s.ok(&[
        "get",
        "ds",
        "ssa",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let dry = s.ok(&[
        "patch",
        "ds",
        "ssa",
        "--dry-run=server",
        "-p",
        r#"{"metadata":{"labels":{"a":"b"}}}"#,
        "-o",
        "jsonpath={.metadata.resourceVersion} {.metadata.labels.a}",
    ]);
    assert_eq!(dry, format!("{stored} b"));

    // Another applier with another image: a conflict naming the field and its owner.
    let o = apply(&manifest("nginx:1.28", true), &["--field-manager=other"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.template.spec.containers[name=\"c\"].image"),
        "{err}"
    );
    // An update takes the field over; applying the old value conflicts with it now.
    s.ok(&["set", "image", "ds/ssa", "c=nginx:1.29"]);
    let o = apply(&manifest("nginx:1.27", true), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("conflict with \"kubectl-set\""), "{err}");
    assert!(show(&s).starts_with("nginx:1.29 "), "{}", show(&s));
    let o = apply(&manifest("nginx:1.27", true), &["--force-conflicts"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        show(&s),
        r#"nginx:1.27 {"kubernetes.io/os":"linux"} {"app":"ssa","tier":"web"}"#
    );
    // Fields the applier no longer applies, and nobody else owns, go.
    let o = apply(&manifest("nginx:1.27", false), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(show(&s), r#"nginx:1.27  {"app":"ssa"}"#);

    // What `kubectl create` set is owned from the start: another value conflicts.
    s.ok(&["create", "cm", "made", "--from-literal=a=1"]);
    let o = apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: made}\ndata: {a: \"2\"}\n",
        &["--field-manager=other"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("conflict with \"kubectl-create\" using v1: .data.a"),
        "{err}"
    );
    // From client-side to server-side apply: kubectl hands the client-side fields over,
    // and what the server-side manifest leaves out goes.
    let cm = |labels: &str, data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: moved, labels: {{{labels}}}}}\ndata: {{{data}}}\n"
        )
    };
    let o = s.with_stdin(
        &["apply", "-f", "-"],
        &cm("keep: \"1\", drop: \"1\"", "a: \"1\", b: \"2\""),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = apply(&cm("keep: \"1\"", "a: \"1\""), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "moved",
            "-o",
            "jsonpath={.metadata.labels} {.data}"
        ]),
        r#"{"keep":"1"} {"a":"1"}"#
    );
    // kubectl's client-side record follows the server-side apply, so going back to
    // client-side apply starts from what was applied last.
    let record: serde_json::Value = serde_json::from_str(&s.ok(&[
        "get",
        "cm",
        "moved",
        "-o",
        r"jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}",
    ]))
    .expect("the record is JSON");
    assert_eq!(record["data"], serde_json::json!({ "a": "1" }));
    assert_eq!(
        record["metadata"]["labels"],
        serde_json::json!({ "keep": "1" })
    );
    let o = s.with_stdin(&["apply", "-f", "-"], &cm("keep: \"1\"", "b: \"2\""));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        s.ok(&["get", "cm", "moved", "-o", "jsonpath={.data}"]),
        r#"{"b":"2"}"#
    );

    // The move may change values on the way, as kube-apiserver lets kubectl take over
    // what client-side apply last applied; another applier still conflicts.
    let cb = |v: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cb}}\ndata: {{a: \"{v}\"}}\n")
    };
    let o = s.with_stdin(&["apply", "-f", "-"], &cb("1"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = apply(&cb("2"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(s.ok(&["get", "cm", "cb", "-o", "jsonpath={.data.a}"]), "2");
    let o = apply(&cb("3"), &["--field-manager=other"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("conflict with \"kubectl\""),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A DNS daemon's 53/UDP and 53/TCP are two ports, applied again and again.
    let dns = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: dns}\nspec:\n  selector: {matchLabels: {app: dns}}\n  template:\n    metadata: {labels: {app: dns}}\n    spec:\n      containers:\n      - name: c\n        image: coredns\n        ports:\n        - {name: dns, containerPort: 53, protocol: UDP}\n        - {name: dns-tcp, containerPort: 53, protocol: TCP}\n";
    for _ in 0..2 {
        let o = apply(dns, &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let ports = s.ok(&[
        "get",
        "ds",
        "dns",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].ports[*].name}",
    ]);
    assert_eq!(ports, "dns dns-tcp");
    // Two items with one key are refused, as server-side apply refuses them.
    let twice = dns.replace(
        "dns-tcp, containerPort: 53, protocol: TCP",
        "dns2, containerPort: 53, protocol: UDP",
    );
    let o = apply(&twice, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("ports: duplicate entries for key [containerPort=53,protocol=\"UDP\"]"),
        "{err}"
    );
}

#[test]
fn kubectl_auth_whoami_and_can_i() {
    let s = Server::start();
    let who = rows(&s.ok(&["auth", "whoami"]));
    assert_eq!(who[0], ["ATTRIBUTE", "VALUE"]);
    assert_eq!(who[1], ["Username", "admin"]);
    assert_eq!(who[2][0], "Groups");
    assert_eq!(
        s.ok(&["auth", "can-i", "create", "daemonsets.apps"]).trim(),
        "yes"
    );
    assert_eq!(s.ok(&["auth", "can-i", "get", "/healthz"]).trim(), "yes");
    // As another user: bob may ask, and do nothing else.
    let bob = rows(&s.ok(&["auth", "whoami", "--as", "bob"]));
    assert_eq!(bob[1], ["Username", "bob"]);
    let out = s.kubectl(&["auth", "can-i", "create", "pods", "--as", "bob"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    let list = rows(&s.ok(&["auth", "can-i", "--list"]));
    assert_eq!(
        list[0],
        [
            "Resources",
            "Non-Resource",
            "URLs",
            "Resource",
            "Names",
            "Verbs"
        ]
    );
    assert_eq!(list[1], ["*.*", "[]", "[]", "[*]"]);
}

#[test]
fn unauthenticated_requests_get_401() {
    let s = Server::start();
    let err = s.fails(&["--token", "not-the-token", "get", "pods"]);
    // kubectl's words for a 401, exactly as against kube-apiserver.
    assert!(
        err.contains("error: You must be logged in to the server"),
        "{err}"
    );
    let raw = s.fails(&["--token", "not-the-token", "get", "--raw", "/api/v1/pods"]);
    assert!(
        raw.contains("You must be logged in to the server (Unauthorized)"),
        "{raw}"
    );
    // Health endpoints stay open, as on a kubeadm-made cluster, for load balancers and probes.
    assert_eq!(
        s.ok(&["--token", "not-the-token", "get", "--raw", "/healthz"])
            .trim(),
        "ok"
    );
    // Plain HTTP to the TLS port gets a readable 400, as from a Go server.
    let kubeconfig = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    let addr = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("server address")
        .trim_end_matches('/')
        .to_string();
    let mut tcp = std::net::TcpStream::connect(&addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    std::io::Write::write_all(&mut tcp, b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut tcp, &mut answer).expect("read");
    assert!(
        answer.starts_with("HTTP/1.0 400 Bad Request")
            && answer.ends_with("Client sent an HTTP request to an HTTPS server.\n"),
        "{answer}"
    );
    // The server still speaks TLS.
    assert!(
        s.ok(&["get", "ns", "default", "-o", "name"])
            .contains("namespace/default")
    );
}

#[test]
fn pagination_and_generate_name() {
    let s = Server::start();
    for i in 0..5 {
        s.ok(&[
            "create",
            "configmap",
            &format!("cm-{i}"),
            "--from-literal=k=v",
        ]);
    }
    let names = s.ok(&["get", "cm", "--chunk-size=2", "-o", "name"]);
    let got: Vec<&str> = names.lines().filter(|l| l.contains("cm-")).collect();
    assert_eq!(
        got,
        [
            "configmap/cm-0",
            "configmap/cm-1",
            "configmap/cm-2",
            "configmap/cm-3",
            "configmap/cm-4"
        ]
    );
    let o = s.with_stdin(
        &["create", "-f", "-", "-o", "name"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let name = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        name.starts_with("configmap/gen-") && name.len() == "configmap/gen-".len() + 5,
        "{name}"
    );
    // An exact list at an earlier resourceVersion shows the state then.
    let before: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]))
            .expect("json");
    let rv = before["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    s.ok(&["delete", "configmap", "cm-0"]);
    s.ok(&["label", "configmap", "cm-1", "later=yes"]);
    let then: serde_json::Value = serde_json::from_str(&s.ok(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact"
        ),
    ]))
    .expect("json");
    assert_eq!(then["metadata"]["resourceVersion"], rv.as_str());
    assert_eq!(then["items"], before["items"]);
    // resourceVersionMatch without a resourceVersion, as kube-apiserver answers it.
    let err = s.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?resourceVersionMatch=NotOlderThan",
    ]);
    assert!(
        err.contains("The ListOptions \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"),
        "{err}"
    );
}

#[test]
fn deleting_a_namespace_deletes_its_contents() {
    let s = Server::start();
    s.ok(&["create", "namespace", "scratch"]);
    // Every namespace gets the cluster CA as kube-root-ca.crt (the kubeconfig's CA),
    // and keeps it: deleted or edited, it comes back.
    let ca = {
        use base64::Engine;
        let kc = std::fs::read_to_string(s.data_dir().join("kubeconfig")).expect("kubeconfig");
        let b64 = kc
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
            .expect("CA data")
            .trim()
            .to_string();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64"),
        )
        .expect("PEM")
    };
    let bundle = |ns: &str| {
        s.eventually(
            "kube-root-ca.crt",
            &[
                "get",
                "cm",
                "kube-root-ca.crt",
                "-n",
                ns,
                "-o",
                r"jsonpath={.data.ca\.crt}",
            ],
            |out| !out.is_empty() && !out.contains("edited"),
        )
    };
    for ns in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "scratch",
    ] {
        assert_eq!(bundle(ns), ca, "{ns}");
    }
    // Written by the controller manager, as its managed fields say.
    let managers = s.ok(&[
        "get",
        "cm",
        "kube-root-ca.crt",
        "-n",
        "scratch",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert_eq!(managers, "kube-controller-manager");
    s.ok(&["delete", "cm", "kube-root-ca.crt", "-n", "scratch"]);
    assert_eq!(bundle("scratch"), ca);
    s.ok(&[
        "patch",
        "cm",
        "kube-root-ca.crt",
        "-n",
        "scratch",
        "-p",
        r#"{"data":{"ca.crt":"edited"}}"#,
    ]);
    assert_eq!(bundle("scratch"), ca);
    s.ok(&[
        "create",
        "configmap",
        "c1",
        "-n",
        "scratch",
        "--from-literal=a=b",
    ]);
    s.ok(&["delete", "namespace", "scratch"]);
    wait_for(
        Duration::from_secs(30),
        "namespace scratch to disappear",
        || {
            let o = s.kubectl(&["get", "namespace", "scratch"]);
            (!o.status.success()).then_some(())
        },
    );
    let o = s.kubectl(&["get", "configmap", "c1", "-n", "scratch"]);
    assert!(!o.status.success());
    // Content held by a finalizer keeps a namespace Terminating, and its conditions
    // say what and why, as kube-controller-manager's namespace controller reports it.
    s.ok(&["create", "namespace", "held"]);
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c2\n  namespace: held\n  finalizers: [example.com/hold]\n";
    let o = s.with_stdin(&["create", "-f", "-"], held);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.ok(&["delete", "namespace", "held", "--wait=false"]);
    let conditions = s.eventually(
        "the namespace's conditions",
        &[
            "get",
            "namespace",
            "held",
            "-o",
            "jsonpath={range .status.conditions[*]}{.type}={.status}/{.reason}: {.message}{\"\\n\"}{end}",
        ],
        |out| out.contains("NamespaceFinalizersRemaining=True"),
    );
    assert!(
        conditions.contains("NamespaceContentRemaining=True/SomeResourcesRemain: Some resources are remaining: configmaps. has 1 resource instances"),
        "{conditions}"
    );
    assert!(
        conditions.contains("NamespaceFinalizersRemaining=True/SomeFinalizersRemain: Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"),
        "{conditions}"
    );
    s.ok(&[
        "patch",
        "cm",
        "c2",
        "-n",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    wait_for(
        Duration::from_secs(30),
        "namespace held to disappear",
        || (!s.kubectl(&["get", "namespace", "held"]).status.success()).then_some(()),
    );
    let err = s.fails(&["delete", "namespace", "default"]);
    assert!(err.contains("forbidden"), "{err}");
    // Namespaces have no deletecollection: a DELETE on the collection changes nothing.
    let err = s.fails(&["delete", "--raw", "/api/v1/namespaces"]);
    assert!(
        err.contains("MethodNotAllowed")
            && err.contains("the server does not allow this method on the requested resource"),
        "{err}"
    );
    let phases = s.ok(&[
        "get",
        "namespaces",
        "-o",
        "jsonpath={.items[*].status.phase}",
    ]);
    assert!(phases.split_whitespace().all(|p| p == "Active"), "{phases}");
}

#[test]
fn objects_and_watch_history_survive_sigkill() {
    let mut s = Server::start();
    // The root CA publisher's ConfigMap comes first (the replay below counts events).
    s.eventually(
        "kube-root-ca.crt in default",
        &["get", "configmap", "kube-root-ca.crt", "-o", "name"],
        |out| out.trim() == "configmap/kube-root-ca.crt",
    );
    s.ok(&["apply", "-f", &example("nginx-ds.yaml")]);
    for n in ["keep", "change", "drop"] {
        s.ok(&["create", "configmap", n, "--from-literal=v=1"]);
    }
    // The last of the three creates: everything after it is what a resumed watch replays.
    let before = s.json(&["get", "configmap", "drop"]);
    let rv0: u64 = before["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse()
        .expect("numeric rv");
    // Changes after rv0, which a resumed watch must replay exactly.
    s.ok(&["create", "configmap", "later", "--from-literal=v=1"]);
    s.ok(&["label", "configmap", "change", "x=y"]);
    s.ok(&["delete", "configmap", "drop"]);
    let ds_before = s.json(&["get", "ds", "nginx-ds"]);
    let change_before = s.json(&["get", "configmap", "change"]);

    s.crash_and_restart();

    let ds_after = s.json(&["get", "ds", "nginx-ds"]);
    assert_eq!(ds_after["metadata"]["uid"], ds_before["metadata"]["uid"]);
    assert_eq!(
        ds_after["metadata"]["resourceVersion"],
        ds_before["metadata"]["resourceVersion"]
    );
    let change_after = s.json(&["get", "configmap", "change"]);
    assert_eq!(change_after, change_before);
    assert!(!s.kubectl(&["get", "configmap", "drop"]).status.success());

    let raw = s.ok(&["get", "--raw", &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv0}&timeoutSeconds=2")]);
    let events: Vec<(String, String)> = raw
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("watch event JSON");
            (
                v["type"].as_str().unwrap_or("").to_string(),
                v["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("ADDED", "later"),
        ("MODIFIED", "change"),
        ("DELETED", "drop"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(events, want);
}

#[test]
fn bad_bodies_get_status_errors() {
    let s = Server::start();
    let dir = s.data_dir().to_path_buf();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":",
    )
    .expect("write");
    let err = s.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        bad.to_str().expect("utf8"),
    ]);
    assert!(
        err.contains("BadRequest") || err.contains("json parse error"),
        "{err}"
    );
    std::fs::write(
        &bad,
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}",
    )
    .expect("write");
    let err = s.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        bad.to_str().expect("utf8"),
    ]);
    assert!(
        err.contains("does not match the expected API version"),
        "{err}"
    );
    let big = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"k\":\"{}\"}}}}",
        "x".repeat(3 * 1024 * 1024 + 10)
    );
    std::fs::write(&bad, big).expect("write");
    let err = s.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        bad.to_str().expect("utf8"),
    ]);
    assert!(
        err.contains("RequestEntityTooLarge")
            && err.contains("Request entity too large: limit is 3145728"),
        "{err}"
    );
    // ConfigMaps and Secrets hold at most 1 MiB of data; a Secret's stringData is
    // stored in its data.
    let mib = "x".repeat(1 << 20);
    let file = dir.join("data.txt");
    std::fs::write(&file, &mib).expect("write");
    let from = format!("--from-file=k={}", file.to_str().expect("utf8"));
    s.ok(&["create", "configmap", "full", &from]);
    std::fs::write(&file, format!("{mib}y")).expect("write");
    let err = s.fails(&["create", "configmap", "over", &from]);
    assert!(
        err.contains(
            "ConfigMap \"over\" is invalid: []: Too long: may not be more than 1048576 bytes"
        ),
        "{err}"
    );
    let err = s.fails(&["create", "secret", "generic", "over", &from]);
    assert!(
        err.contains(
            "Secret \"over\" is invalid: data: Too long: may not be more than 1048576 bytes"
        ),
        "{err}"
    );
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mixed\ndata:\n  a: b2xk\n  b: Yg==\nstringData:\n  a: new\n";
    let out = s.with_stdin(&["create", "-f", "-"], secret);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = s.json(&["get", "secret", "mixed"]);
    assert_eq!(
        stored["data"],
        serde_json::json!({ "a": "bmV3", "b": "Yg==" })
    );
    assert!(stored.get("stringData").is_none(), "{stored}");
    // A Secret without a type is Opaque (kubectl's TYPE column, `type=Opaque` selects
    // it); a typed one must carry its keys; the type never changes.
    assert_eq!(stored["type"], "Opaque");
    assert_eq!(
        s.ok(&[
            "get",
            "secret",
            "--field-selector=type=Opaque",
            "-o",
            "name"
        ])
        .trim(),
        "secret/mixed"
    );
    let tls = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\ntype: kubernetes.io/tls\ndata:\n  tls.crt: eA==\n";
    let out = s.with_stdin(&["create", "-f", "-"], tls);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Secret \"tls\" is invalid: data[tls.key]: Required value"),
        "{err}"
    );
    let err = s.fails(&[
        "patch",
        "secret",
        "mixed",
        "-p",
        r#"{"type":"kubernetes.io/basic-auth"}"#,
    ]);
    assert!(
        err.contains("The Secret \"mixed\" is invalid: \n* type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable\n* data[username]: Required value"),
        "{err}"
    );
    // An immutable ConfigMap or Secret keeps its data, and stays immutable.
    s.ok(&["create", "configmap", "frozen", "--from-literal=a=b"]);
    s.ok(&[
        "patch",
        "configmap",
        "frozen",
        "-p",
        r#"{"immutable":true}"#,
    ]);
    let err = s.fails(&[
        "patch",
        "configmap",
        "frozen",
        "-p",
        r#"{"data":{"a":"c"}}"#,
    ]);
    assert!(
        err.contains("ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );
    let err = s.fails(&[
        "patch",
        "configmap",
        "frozen",
        "-p",
        r#"{"immutable":false}"#,
    ]);
    assert!(
        err.contains("ConfigMap \"frozen\" is invalid: immutable: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );
    s.ok(&["patch", "secret", "mixed", "-p", r#"{"immutable":true}"#]);
    let err = s.fails(&[
        "patch",
        "secret",
        "mixed",
        "-p",
        r#"{"stringData":{"a":"newer"}}"#,
    ]);
    assert!(
        err.contains("Secret \"mixed\" is invalid: data: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );
    assert_eq!(s.json(&["get", "secret", "mixed"])["data"]["a"], "bmV3");
    // Keys follow the config key rule.
    let bad_key = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: badkey\ndata:\n  a/b: c\n";
    let out = s.with_stdin(&["create", "-f", "-"], bad_key);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ConfigMap \"badkey\" is invalid: data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters"), "{err}");
    // A value of the wrong type is named by its field, in Go's words, with kubectl's
    // validation on or off.
    let port = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\nspec:\n  containers:\n  - name: c\n    image: nginx\n    ports:\n    - containerPort: abc\n";
    for validate in ["--validate=true", "--validate=false"] {
        let out = s.with_stdin(&["create", validate, "-f", "-"], port);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && err.contains("Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"),
            "{validate}: {err}"
        );
    }
    // The server is still healthy.
    assert_eq!(s.ok(&["get", "--raw", "/healthz"]).trim(), "ok");
}

/// What the real server answers for `kubectl apply` of `yaml`, as (exit ok, stderr).
fn apply_err(s: &Server, yaml: &str) -> String {
    let o = s.apply_yaml(yaml);
    assert!(
        !o.status.success(),
        "apply unexpectedly succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// flannel's manifest (RBAC, a system-node-critical DaemonSet) applies, its pods get
/// the class's priority on every node, and the RBAC and PriorityClass rules answer
/// with kube-apiserver's messages.
#[test]
fn flannel_manifest_rbac_and_priority_classes() {
    let s = Server::up(3);

    // The default policy and the system classes exist from the start.
    let roles = s.ok(&["get", "clusterroles", "-o", "name"]);
    for r in ["cluster-admin", "admin", "edit", "view"] {
        assert!(
            roles.contains(&format!("clusterrole.rbac.authorization.k8s.io/{r}\n")),
            "{roles}"
        );
    }
    let admin = rows(&s.ok(&["get", "clusterrolebinding", "cluster-admin", "-o", "wide"]));
    assert_eq!(
        admin[0],
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    assert_eq!(admin[1][1], "ClusterRole/cluster-admin");
    assert_eq!(admin[1][3], "system:masters");
    // kubectl's create subcommands send these kinds as protobuf.
    s.ok(&[
        "create",
        "clusterrole",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    s.ok(&[
        "create",
        "role",
        "cm-editor",
        "--verb=update",
        "--resource=configmaps",
    ]);
    s.ok(&[
        "create",
        "clusterrolebinding",
        "readers",
        "--clusterrole=pod-reader",
        "--user=bob",
        "--serviceaccount=kube-system:reader",
    ]);
    s.ok(&[
        "create",
        "rolebinding",
        "editors",
        "--role=cm-editor",
        "--group=devs",
    ]);
    s.ok(&[
        "create",
        "priorityclass",
        "batch-low",
        "--value=10",
        "--description=low",
        "--preemption-policy=Never",
    ]);
    let rule = s.json(&["get", "clusterrole", "pod-reader"]);
    assert_eq!(
        rule["rules"],
        serde_json::json!([{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"] }])
    );
    let readers = rows(&s.ok(&["get", "clusterrolebinding", "readers", "-o", "wide"]));
    assert_eq!(readers[1][1], "ClusterRole/pod-reader");
    // (GROUPS is empty, so the row has one cell less.)
    assert_eq!(readers[1][3..], ["bob", "kube-system/reader"]);
    let subjects = s.json(&["get", "clusterrolebinding", "readers"])["subjects"].clone();
    assert_eq!(
        subjects,
        serde_json::json!([
            { "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob" },
            { "kind": "ServiceAccount", "name": "reader", "namespace": "kube-system" }
        ])
    );
    let editors = rows(&s.ok(&["get", "rolebinding", "editors", "-o", "wide"]));
    assert_eq!(editors[1][1], "Role/cm-editor");
    assert_eq!(editors[1][3], "devs");
    let low = s.json(&["get", "pc", "batch-low"]);
    assert_eq!(
        (low["value"].as_i64(), low["preemptionPolicy"].as_str()),
        (Some(10), Some("Never"))
    );
    // The stored roles and bindings decide for the users they name (impersonated here).
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&s.kubectl(&all).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(can(&["list", "pods", "--as", "bob"]), "yes");
    assert_eq!(can(&["list", "pods", "--as", "alice"]), "no");
    assert_eq!(can(&["delete", "pods", "--as", "bob"]), "no");
    assert_eq!(
        can(&[
            "get",
            "pods",
            "--as",
            "system:serviceaccount:kube-system:reader",
            "-A"
        ]),
        "yes"
    );
    assert_eq!(
        can(&[
            "update",
            "configmaps",
            "--as",
            "alice",
            "--as-group",
            "devs"
        ]),
        "yes"
    );
    assert_eq!(
        can(&[
            "update",
            "configmaps",
            "-n",
            "kube-system",
            "--as",
            "alice",
            "--as-group",
            "devs"
        ]),
        "no"
    );
    let listed = rows(&s.ok(&["auth", "can-i", "--list", "--as", "bob"]));
    assert!(
        listed
            .iter()
            .any(|r| r[0] == "pods" && r[r.len() - 2..] == ["[get", "list]"]),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|r| r[0] == "selfsubjectaccessreviews.authorization.k8s.io"),
        "{listed:?}"
    );
    let pods = s.kubectl(&["get", "pods", "-A", "--as", "bob", "-o", "name"]);
    assert!(
        pods.status.success(),
        "{}",
        String::from_utf8_lossy(&pods.stderr)
    );
    let err = s.fails(&["get", "configmaps", "--as", "bob"]);
    assert!(
        err.contains("configmaps is forbidden: User \"bob\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    s.ok(&["delete", "clusterrolebinding", "readers"]);
    assert_eq!(can(&["list", "pods", "--as", "bob"]), "no");
    s.ok(&["delete", "rolebinding", "editors"]);
    s.ok(&["delete", "clusterrole", "pod-reader"]);
    s.ok(&["delete", "role", "cm-editor"]);
    s.ok(&["delete", "pc", "batch-low"]);
    let pcs = rows(&s.ok(&["get", "pc"]));
    assert_eq!(
        pcs[0],
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    );
    let pc_rows: Vec<(&str, &str, &str, &str)> = pcs[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(
        pc_rows,
        [
            (
                "system-cluster-critical",
                "2000000000",
                "false",
                "PreemptLowerPriority"
            ),
            (
                "system-node-critical",
                "2000001000",
                "false",
                "PreemptLowerPriority"
            ),
        ]
    );

    let applied = s.ok(&["apply", "-f", &example("kube-flannel.yml")]);
    assert_eq!(
        applied.lines().collect::<Vec<_>>(),
        [
            "namespace/kube-flannel created",
            "clusterrole.rbac.authorization.k8s.io/flannel created",
            "clusterrolebinding.rbac.authorization.k8s.io/flannel created",
            "serviceaccount/flannel created",
            "configmap/kube-flannel-cfg created",
            "daemonset.apps/kube-flannel-ds created",
        ]
    );
    // flannel's ServiceAccount may do what its ClusterRole says, and no more.
    let flannel = "system:serviceaccount:kube-flannel:flannel";
    for (verb, what, sub, want) in [
        ("list", "nodes", "", "yes"),
        ("patch", "nodes", "--subresource=status", "yes"),
        ("patch", "nodes", "", "no"),
        ("delete", "nodes", "", "no"),
    ] {
        let mut args = vec!["auth", "can-i", verb, what, "--as", flannel];
        if !sub.is_empty() {
            args.push(sub);
        }
        let out = s.kubectl(&args);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want,
            "{verb} {what} {sub}"
        );
    }
    let both = rows(&s.ok(&["get", "clusterrole,clusterrolebinding", "flannel"]));
    assert_eq!(both[0], ["NAME", "CREATED", "AT"]);
    assert_eq!(both[1][0], "clusterrole.rbac.authorization.k8s.io/flannel");
    assert_eq!(both[2], ["NAME", "ROLE", "AGE"]);
    assert_eq!(
        both[3][..2],
        [
            "clusterrolebinding.rbac.authorization.k8s.io/flannel",
            "ClusterRole/flannel"
        ]
    );
    let wide = rows(&s.ok(&["get", "clusterrolebinding", "flannel", "-o", "wide"]));
    assert_eq!(
        wide[1].last().map(String::as_str),
        Some("kube-flannel/flannel")
    );

    // One pod on every node (the master's NoSchedule taint is tolerated), each with
    // the class's priority.
    s.eventually(
        "a running flannel pod on each of the 3 nodes",
        &[
            "get",
            "pods",
            "-n",
            "kube-flannel",
            "-o",
            "wide",
            "--no-headers",
        ],
        |out| out.lines().filter(|l| l.contains("Running")).count() == 3,
    );
    let pods = s.json(&["get", "pods", "-n", "kube-flannel"]);
    let items = pods["items"].as_array().expect("items");
    let mut nodes: Vec<&str> = items
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap_or(""))
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["master", "node1", "node2"]);
    for p in items {
        assert_eq!(p["spec"]["priority"], 2_000_001_000, "{p}");
        assert_eq!(p["spec"]["priorityClassName"], "system-node-critical");
        assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    }
    let pod = items[0]["metadata"]["name"].as_str().expect("name");
    // Its two init containers ran to completion, as a kubelet reports them.
    let inits = s.eventually(
        "flannel's init containers completed",
        &["get", "pod", "-n", "kube-flannel", pod, "-o",
          "jsonpath={range .status.initContainerStatuses[*]}{.name}={.state.terminated.reason} {end}"],
        |out| out.split_whitespace().count() == 2 && out.split_whitespace().all(|w| w.ends_with("=Completed")),
    );
    assert_eq!(
        inits.trim(),
        "install-cni-plugin=Completed install-cni=Completed"
    );
    let described = s.ok(&["describe", "pod", "-n", "kube-flannel", pod]);
    assert!(
        described
            .lines()
            .any(|l| l.starts_with("Priority:") && l.ends_with(" 2000001000")),
        "{described}"
    );
    assert!(
        described
            .lines()
            .any(|l| l.starts_with("Priority Class Name:") && l.ends_with(" system-node-critical")),
        "{described}"
    );

    // A pod that names no class: priority 0, as Kubernetes gives it.
    let plain = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
    s.apply_yaml(plain);
    let p = s.json(&["get", "pod", "plain"]);
    assert_eq!(p["spec"]["priority"], 0);
    assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    assert!(p["spec"].get("priorityClassName").is_none(), "{p}");
    let described = s.ok(&["describe", "pod", "plain"]);
    assert!(
        described
            .lines()
            .any(|l| l.starts_with("Priority:") && l.ends_with(" 0")),
        "{described}"
    );
    // A pod's priority cannot change; an update that leaves it out keeps it.
    for patch in [
        r#"{"spec":{"priority":5}}"#,
        r#"{"spec":{"priorityClassName":"system-node-critical"}}"#,
    ] {
        let err = s.fails(&["patch", "pod", "plain", "--type=merge", "-p", patch]);
        assert!(
            err.contains("spec: Forbidden: pod updates may not change fields other than"),
            "{patch}: {err}"
        );
    }
    let mut stripped = s.json(&["get", "pod", "plain"]);
    if let Some(spec) = stripped["spec"].as_object_mut() {
        spec.remove("priority");
        spec.remove("preemptionPolicy");
    }
    let o = s.with_stdin(&["replace", "-f", "-"], &stripped.to_string());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(s.json(&["get", "pod", "plain"])["spec"]["priority"], 0);

    // Priority admission refusals.
    let pod_with = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{extra}  containers:\n  - name: c\n    image: nginx\n"
        )
    };
    let err = apply_err(&s, &pod_with("nope", "  priorityClassName: nope\n"));
    assert!(
        err.contains(
            "Error from server (Forbidden): error when creating \"STDIN\": pods \"nope\" is forbidden: no PriorityClass with name nope was found"
        ),
        "{err}"
    );
    let err = apply_err(
        &s,
        &pod_with(
            "mismatch",
            "  priorityClassName: system-node-critical\n  priority: 5\n",
        ),
    );
    assert!(
        err.contains("pods \"mismatch\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 2000001000 from the given PriorityClass name"),
        "{err}"
    );

    // PriorityClass rules.
    let err = s.fails(&["delete", "pc", "system-node-critical"]);
    assert!(
        err.contains("Error from server (Forbidden): priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"),
        "{err}"
    );
    let class = |name: &str, value: i64, extra: &str| {
        format!(
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\nvalue: {value}\n{extra}"
        )
    };
    let err = apply_err(&s, &class("system-mine", 10, ""));
    assert!(
        err.contains("The PriorityClass \"system-mine\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"),
        "{err}"
    );
    let err = apply_err(&s, &class("huge", 1_000_000_001, ""));
    assert!(
        err.contains("The PriorityClass \"huge\" is invalid: value: Forbidden: maximum allowed value of a user defined priority is 1000000000"),
        "{err}"
    );
    let err = apply_err(&s, &class("odd", 1, "preemptionPolicy: Sometimes\n"));
    assert!(
        err.contains("preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\""),
        "{err}"
    );
    s.apply_yaml(&class(
        "default-low",
        100,
        "globalDefault: true\npreemptionPolicy: Never\n",
    ));
    let err = apply_err(&s, &class("default-two", 200, "globalDefault: true\n"));
    assert!(
        err.contains("priorityclasses.scheduling.k8s.io \"default-two\" is forbidden: PriorityClass default-low is already marked as default. Only one default can exist"),
        "{err}"
    );
    let err = s.fails(&[
        "patch",
        "pc",
        "default-low",
        "--type=merge",
        "-p",
        "{\"value\":101}",
    ]);
    assert!(
        err.contains("The PriorityClass \"default-low\" is invalid: value: Forbidden: may not be changed in an update."),
        "{err}"
    );
    // The global default now applies to pods that name no class.
    s.apply_yaml(&pod_with("defaulted", ""));
    let p = s.json(&["get", "pod", "defaulted"]);
    assert_eq!(p["spec"]["priority"], 100);
    assert_eq!(p["spec"]["priorityClassName"], "default-low");
    assert_eq!(p["spec"]["preemptionPolicy"], "Never");
    s.ok(&["delete", "pc", "default-low"]);
    s.apply_yaml(&pod_with("zero-again", ""));
    assert_eq!(s.json(&["get", "pod", "zero-again"])["spec"]["priority"], 0);

    // RBAC rules.
    let binding = |role: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\n  namespace: default\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\nsubjects:\n- kind: User\n  name: jane\n"
        )
    };
    s.apply_yaml(&binding("view"));
    let rb = rows(&s.ok(&["get", "rolebinding", "rb", "-o", "wide"]));
    assert_eq!(rb[1][1], "ClusterRole/view");
    assert_eq!(rb[1][3], "jane");
    let err = apply_err(&s, &binding("edit"));
    assert!(
        err.contains("The RoleBinding \"rb\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"),
        "{err}"
    );
    let err = apply_err(
        &s,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: bad\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: x\nsubjects:\n- kind: ServiceAccount\n  name: sa\n",
    );
    assert!(
        err.contains("The ClusterRoleBinding \"bad\" is invalid: \n* roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"\n* subjects[0].namespace: Required value"),
        "{err}"
    );
    let err = apply_err(
        &s,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: default\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n",
    );
    assert!(
        err.contains("The Role \"r\" is invalid: rules[0].verbs: Required value: verbs must contain at least one value"),
        "{err}"
    );
}
