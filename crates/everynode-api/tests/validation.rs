//! Defaulting and validation over the example manifests (examples/*.yaml, written here as
//! JSON because this crate has no YAML parser), and the messages kubectl shows for the
//! mistakes users make most often.

use everynode_api::defaults::{default_daemonset, default_pod, pod_qos_class};
use everynode_api::field::aggregate_message;
use everynode_api::validation::{validate_daemonset, validate_daemonset_update, validate_pod};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// examples/fluentd-elasticsearch.yaml
fn fluentd_elasticsearch() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "fluentd-elasticsearch", "namespace": "kube-system", "labels": {"k8s-app": "fluentd-logging"}},
        "spec": {
            "selector": {"matchLabels": {"name": "fluentd-elasticsearch"}},
            "template": {
                "metadata": {"labels": {"name": "fluentd-elasticsearch"}},
                "spec": {
                    "tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "fluentd-elasticsearch",
                        "image": "quay.io/fluentd_elasticsearch/fluentd:v2.5.2",
                        "resources": {"limits": {"memory": "200Mi"}, "requests": {"cpu": "100m", "memory": "200Mi"}},
                        "volumeMounts": [
                            {"name": "varlog", "mountPath": "/var/log"},
                            {"name": "varlibdockercontainers", "mountPath": "/var/lib/docker/containers", "readOnly": true}
                        ]
                    }],
                    "terminationGracePeriodSeconds": 30,
                    "volumes": [
                        {"name": "varlog", "hostPath": {"path": "/var/log"}},
                        {"name": "varlibdockercontainers", "hostPath": {"path": "/var/lib/docker/containers"}}
                    ]
                }
            }
        }
    })
}

/// examples/fluentd.yaml
fn fluentd() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "fluentd", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "fluentd"}},
            "template": {
                "metadata": {"labels": {"app": "fluentd"}},
                "spec": {
                    "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "fluentd",
                        "image": "fluent/fluentd:v1.14.2",
                        "resources": {"requests": {"memory": "200Mi", "cpu": "100m"}, "limits": {"memory": "500Mi", "cpu": "500m"}},
                        "volumeMounts": [
                            {"name": "varlog", "mountPath": "/var/log"},
                            {"name": "varlibdockercontainers", "mountPath": "/var/lib/docker/containers", "readOnly": true}
                        ]
                    }],
                    "volumes": [
                        {"name": "varlog", "hostPath": {"path": "/var/log"}},
                        {"name": "varlibdockercontainers", "hostPath": {"path": "/var/lib/docker/containers"}}
                    ],
                    "serviceAccountName": "fluentd"
                }
            }
        }
    })
}

/// examples/nginx-ds.yaml (namespace filled in, as the server does from the URL)
fn nginx_ds() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "nginx-ds", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "nginx", "image": "nginx", "ports": [{"name": "http", "containerPort": 80}]}]
                }
            }
        }
    })
}

/// examples/node-exporter.yaml (namespace filled in)
fn node_exporter() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "node-exporter", "namespace": "default", "labels": {"name": "node-exporter"}},
        "spec": {
            "selector": {"matchLabels": {"name": "node-exporter"}},
            "template": {
                "metadata": {
                    "labels": {"name": "node-exporter"},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}
                },
                "spec": {
                    "hostPID": true, "hostIPC": true, "hostNetwork": true,
                    "containers": [{
                        "name": "node-exporter",
                        "image": "prom/node-exporter@sha256:ffc3e0adf58771cb2097aa0b074a6fe68b4925ba75c2e1c41f41ae656eebee11",
                        "securityContext": {"privileged": true},
                        "args": ["--collector.procfs", "/host/proc", "--collector.sysfs", "/host/sys",
                                 "--collector.filesystem.ignored-mount-points", "\"^/(sys|proc|dev|host|etc)($|/)\""],
                        "ports": [{"containerPort": 9100, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "100m", "memory": "100Mi"}, "requests": {"cpu": "10m", "memory": "100Mi"}},
                        "volumeMounts": [
                            {"name": "dev", "mountPath": "/host/dev"},
                            {"name": "proc", "mountPath": "/host/proc"},
                            {"name": "sys", "mountPath": "/host/sys"},
                            {"name": "rootfs", "mountPath": "/rootfs"}
                        ]
                    }],
                    "volumes": [
                        {"name": "proc", "hostPath": {"path": "/proc"}},
                        {"name": "dev", "hostPath": {"path": "/dev"}},
                        {"name": "sys", "hostPath": {"path": "/sys"}},
                        {"name": "rootfs", "hostPath": {"path": "/"}}
                    ]
                }
            }
        }
    })
}

fn examples() -> Vec<(&'static str, Value)> {
    vec![
        ("fluentd-elasticsearch", fluentd_elasticsearch()),
        ("fluentd", fluentd()),
        ("nginx-ds", nginx_ds()),
        ("node-exporter", node_exporter()),
    ]
}

fn defaulted(doc: Value) -> DaemonSet {
    let mut ds: DaemonSet = serde_json::from_value(doc).expect("daemonset");
    default_daemonset(&mut ds);
    ds
}

/// The pod the DaemonSet controller would create on `node` from the template.
fn daemon_pod(ds: &DaemonSet, node: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut meta = template.metadata.unwrap_or_default();
    meta.name = Some(format!(
        "{}-x7k2p",
        ds.metadata.name.as_deref().unwrap_or("ds")
    ));
    meta.namespace = ds.metadata.namespace.clone();
    let mut spec = template.spec.unwrap_or_default();
    spec.node_name = Some(node.to_string());
    let mut pod = Pod {
        metadata: meta,
        spec: Some(spec),
        ..Default::default()
    };
    default_pod(&mut pod);
    pod
}

#[test]
fn examples_validate_clean_after_defaulting() {
    for (name, doc) in examples() {
        let ds = defaulted(doc);
        assert_eq!(aggregate_message(&validate_daemonset(&ds)), "", "{name}");
        let pod = daemon_pod(&ds, "node-1");
        assert_eq!(aggregate_message(&validate_pod(&pod)), "", "{name} pod");
    }
}

#[test]
fn defaulting_examples_is_idempotent() {
    for (name, doc) in examples() {
        let once = defaulted(doc);
        let mut twice = once.clone();
        default_daemonset(&mut twice);
        assert_eq!(twice, once, "{name}");
        // A round trip through JSON (what the store does) changes nothing either.
        let stored = serde_json::to_value(&once).expect("serialize");
        assert_eq!(defaulted(stored), once, "{name} after storage");

        let pod = daemon_pod(&once, "node-1");
        let mut again = pod.clone();
        default_pod(&mut again);
        assert_eq!(again, pod, "{name} pod");
    }
}

#[test]
fn examples_read_back_with_kubernetes_defaults() {
    let ds = defaulted(node_exporter());
    let spec = serde_json::to_value(&ds.spec).expect("serialize");
    let pod_spec = &spec["template"]["spec"];
    let c = &pod_spec["containers"][0];
    assert_eq!(
        c["imagePullPolicy"],
        json!("IfNotPresent"),
        "digest references are not re-pulled"
    );
    assert_eq!(
        c["ports"][0].get("hostPort"),
        None,
        "templates keep hostPort unset"
    );
    assert_eq!(
        pod_spec["volumes"][0]["hostPath"],
        json!({"path": "/proc", "type": ""})
    );
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );

    let pod = daemon_pod(&ds, "node-1");
    let pod_json = serde_json::to_value(&pod.spec).expect("serialize");
    assert_eq!(
        pod_json["containers"][0]["ports"][0]["hostPort"],
        json!(9100)
    );
    assert_eq!(pod_json["enableServiceLinks"], json!(true));
    assert_eq!(pod.spec.as_ref().map(pod_qos_class), Some("Burstable"));

    let nginx = defaulted(nginx_ds());
    let c = serde_json::to_value(&nginx.spec).expect("serialize")["template"]["spec"]["containers"]
        [0]
    .clone();
    assert_eq!(
        c["imagePullPolicy"],
        json!("Always"),
        "untagged images are pulled"
    );
    assert_eq!(c["ports"][0]["protocol"], json!("TCP"));
}

/// Sets `pointer` to `value`; the parent object must exist.
fn edit(mut doc: Value, pointer: &str, value: Value) -> Value {
    let (parent, field) = pointer.rsplit_once('/').expect("pointer");
    let obj = doc
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object");
    obj.insert(field.to_string(), value);
    doc
}

fn remove(mut doc: Value, parent: &str, field: &str) -> Value {
    if let Some(obj) = doc.pointer_mut(parent).and_then(Value::as_object_mut) {
        obj.remove(field);
    }
    doc
}

/// The text after `The DaemonSet "x" is invalid:` for the most common mistakes.
#[test]
fn common_mistakes_read_like_kubectl() {
    let cases = [
        (
            "apps/v1 manifest without a selector",
            remove(nginx_ds(), "/spec", "selector"),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"nginx\"}: `selector` does not match template `labels`",
        ),
        (
            "selector and template labels disagree",
            edit(
                nginx_ds(),
                "/spec/template/metadata/labels",
                json!({"app": "web"}),
            ),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
        ),
        (
            "restartPolicy copied from a Job",
            edit(
                nginx_ds(),
                "/spec/template/spec/restartPolicy",
                json!("OnFailure"),
            ),
            "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
        ),
        (
            "image left out",
            remove(nginx_ds(), "/spec/template/spec/containers/0", "image"),
            "spec.template.spec.containers[0].image: Required value",
        ),
        (
            "upper-case name",
            edit(nginx_ds(), "/metadata/name", json!("Nginx-DS")),
            "metadata.name: Invalid value: \"Nginx-DS\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            "volume mount without a volume",
            remove(fluentd(), "/spec/template/spec", "volumes"),
            "[spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"varlog\", spec.template.spec.containers[0].volumeMounts[1].name: Not found: \"varlibdockercontainers\"]",
        ),
        (
            "request above limit",
            edit(
                fluentd(),
                "/spec/template/spec/containers/0/resources/requests/cpu",
                json!("1"),
            ),
            "spec.template.spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
        ),
        (
            "several mistakes at once",
            edit(
                remove(nginx_ds(), "/spec/template/spec/containers/0", "image"),
                "/spec/template/spec/restartPolicy",
                json!("Never"),
            ),
            "[spec.template.spec.containers[0].image: Required value, spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"]",
        ),
    ];
    for (name, doc, want) in cases {
        assert_eq!(
            aggregate_message(&validate_daemonset(&defaulted(doc))),
            want,
            "{name}"
        );
    }
}

#[test]
fn changing_the_selector_is_refused() {
    let annotate = |mut ds: DaemonSet, generation: &str| {
        ds.metadata.annotations = Some(
            [(
                "deprecated.daemonset.template.generation".to_string(),
                generation.to_string(),
            )]
            .into(),
        );
        ds
    };
    let old = annotate(defaulted(nginx_ds()), "1");
    let new = annotate(
        defaulted(edit(
            nginx_ds(),
            "/spec/selector/matchLabels",
            json!({"app": "web"}),
        )),
        "1",
    );
    assert_eq!(
        aggregate_message(&validate_daemonset_update(&new, &old)),
        "[spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"nginx\"}: `selector` does not match template `labels`, \
spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable]"
    );
}
