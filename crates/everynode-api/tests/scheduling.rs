//! The pure pieces the DaemonSet controller strings together, exercised through the public
//! API on the fluentd-elasticsearch example from the Kubernetes documentation.

use everynode_api::hash::compute_template_hash;
use everynode_api::quantity::parse_milli;
use everynode_api::scheduling::{
    ShouldRun, add_daemon_tolerations, daemon_pod_target_node, node_should_run_daemon_pod,
    pod_matches_node, pod_requests, set_daemon_node_affinity,
};
use everynode_api::selector::{Selector, format_label_selector, format_labels};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

fn fluentd() -> DaemonSet {
    let ds = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "fluentd-elasticsearch", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"name": "fluentd-elasticsearch"}},
            "template": {
                "metadata": {"labels": {"name": "fluentd-elasticsearch"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}
                    ],
                    "containers": [{
                        "name": "fluentd-elasticsearch",
                        "image": "quay.io/fluentd_elasticsearch/fluentd:v2.5.2",
                        "resources": {
                            "limits": {"memory": "200Mi"},
                            "requests": {"cpu": "100m", "memory": "200Mi"}
                        }
                    }]
                }
            }
        }
    });
    serde_json::from_value(ds).expect("valid DaemonSet")
}

fn node(name: &str, os: &str, taints: serde_json::Value) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/os": os, "kubernetes.io/hostname": name}},
        "spec": {"taints": taints}
    }))
    .expect("valid Node")
}

fn verdict(should_run: bool, should_continue_running: bool) -> ShouldRun {
    ShouldRun {
        should_run,
        should_continue_running,
    }
}

#[test]
fn which_nodes_get_a_fluentd_pod() {
    let ds = fluentd();
    let cases = [
        (
            "worker",
            node("worker", "linux", json!([])),
            verdict(true, true),
        ),
        (
            "control plane (tolerated)",
            node(
                "cp",
                "linux",
                json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
            ),
            verdict(true, true),
        ),
        (
            "windows node",
            node("win", "windows", json!([])),
            verdict(false, false),
        ),
        (
            "not ready",
            node(
                "sick",
                "linux",
                json!([
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
                ]),
            ),
            verdict(false, true),
        ),
        (
            "cordoned",
            node(
                "cordoned",
                "linux",
                json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
            ),
            verdict(true, true),
        ),
        (
            "dedicated NoExecute",
            node(
                "gpu",
                "linux",
                json!([{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]),
            ),
            verdict(false, false),
        ),
    ];
    for (name, n, want) in cases {
        assert_eq!(node_should_run_daemon_pod(&n, &ds), want, "{name}");
    }
}

#[test]
fn the_created_pod_is_pinned_to_its_node() {
    let ds = fluentd();
    let worker = node("worker", "linux", json!([]));
    let other = node("other", "linux", json!([]));
    let spec = ds.spec.as_ref().expect("spec");
    let template = &spec.template;

    let mut pod_spec = template.spec.clone().expect("template spec");
    add_daemon_tolerations(&mut pod_spec);
    pod_spec.affinity = Some(set_daemon_node_affinity(pod_spec.affinity.take(), "worker"));
    let pod = Pod {
        metadata: template.metadata.clone().unwrap_or_default(),
        spec: Some(pod_spec.clone()),
        status: None,
    };

    assert_eq!(daemon_pod_target_node(&pod), Some("worker".to_string()));
    assert!(pod_matches_node(&pod_spec, &worker));
    assert!(!pod_matches_node(&pod_spec, &other));
    // The user's toleration first, then the six daemon ones.
    assert_eq!(pod_spec.tolerations.as_ref().map(Vec::len), Some(7));

    // The DaemonSet's selector picks the pod up.
    let selector = Selector::from_optional_label_selector(Some(&spec.selector)).expect("valid");
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert!(selector.matches(&labels));
    assert_eq!(
        format_label_selector(&spec.selector),
        "name=fluentd-elasticsearch"
    );
    assert_eq!(
        format_labels(&pod_spec.node_selector.clone().unwrap_or_default()),
        "kubernetes.io/os=linux"
    );

    // Requests and the revision hash.
    let requests = pod_requests(&pod_spec);
    assert_eq!(requests.get("cpu"), Some(&100));
    assert_eq!(requests.get("memory").copied(), parse_milli("200Mi").ok());
    let hash = compute_template_hash(template, None);
    assert_eq!(
        hash,
        compute_template_hash(&fluentd().spec.expect("spec").template, None)
    );
    assert_ne!(hash, compute_template_hash(template, Some(1)));
}
