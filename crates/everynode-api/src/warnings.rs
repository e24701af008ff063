//! The warnings kube-apiserver attaches to a pod or a pod template it accepts (kubectl
//! prints them as `Warning: ...`): deprecated node labels and annotations, removed volume
//! types, fractional byte quantities, duplicated env names, pull secrets and host
//! aliases, a host IP without a host port. Read from the JSON as sent (before decoding),
//! so a create pays a handful of map lookups.

use std::collections::HashSet;

use serde_json::Value;

use crate::defaults::qty;

/// Node labels Kubernetes has replaced, with what it says about them.
const DEPRECATED_NODE_LABELS: [(&str, &str); 5] = [
    (
        "beta.kubernetes.io/arch",
        "deprecated since v1.14; use \"kubernetes.io/arch\" instead",
    ),
    (
        "beta.kubernetes.io/os",
        "deprecated since v1.14; use \"kubernetes.io/os\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "deprecated since v1.17; use \"topology.kubernetes.io/region\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/zone",
        "deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead",
    ),
    (
        "beta.kubernetes.io/instance-type",
        "deprecated since v1.17; use \"node.kubernetes.io/instance-type\" instead",
    ),
];

const DEPRECATED_ANNOTATIONS: [(&str, &str); 3] = [
    (
        "scheduler.alpha.kubernetes.io/critical-pod",
        "non-functional in v1.16+; use the \"priorityClassName\" field instead",
    ),
    (
        "security.alpha.kubernetes.io/sysctls",
        "non-functional in v1.11+; use the \"sysctls\" field instead",
    ),
    (
        "security.alpha.kubernetes.io/unsafe-sysctls",
        "non-functional in v1.11+; use the \"sysctls\" field instead",
    ),
];

/// Volume sources Kubernetes retired, and when: the JSON field, the name the warning
/// gives it, the message.
const RETIRED_VOLUMES: [(&str, &str, &str); 9] = [
    (
        "photonPersistentDisk",
        "photonPersistentDisk",
        "deprecated in v1.11, non-functional in v1.16+",
    ),
    ("gitRepo", "gitRepo", "deprecated in v1.11"),
    (
        "scaleIO",
        "scaleIO",
        "deprecated in v1.16, non-functional in v1.22+",
    ),
    (
        "flocker",
        "flocker",
        "deprecated in v1.22, non-functional in v1.25+",
    ),
    (
        "storageos",
        "storageOS",
        "deprecated in v1.22, non-functional in v1.25+",
    ),
    (
        "quobyte",
        "quobyte",
        "deprecated in v1.22, non-functional in v1.25+",
    ),
    (
        "glusterfs",
        "glusterfs",
        "deprecated in v1.25, non-functional in v1.26+",
    ),
    (
        "cephfs",
        "cephfs",
        "deprecated in v1.28, non-functional in v1.31+",
    ),
    (
        "rbd",
        "rbd",
        "deprecated in v1.28, non-functional in v1.31+",
    ),
];

fn deprecated_label(key: &str) -> Option<&'static str> {
    DEPRECATED_NODE_LABELS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, m)| *m)
}

fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn entries(v: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    v.and_then(Value::as_object).into_iter().flatten()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The warnings for an object of `kind` (pods, and the pod templates of DaemonSets).
pub fn for_object(kind: &str, obj: &Value) -> Vec<String> {
    match kind {
        "Pod" => pod(obj.get("metadata"), obj.get("spec"), ""),
        "DaemonSet" => {
            let template = obj.pointer("/spec/template");
            pod(
                template.and_then(|t| t.get("metadata")),
                template.and_then(|t| t.get("spec")),
                "spec.template.",
            )
        }
        _ => Vec::new(),
    }
}

/// A pod's (or a template's, `prefix` = `spec.template.`) metadata and spec.
fn pod(meta: Option<&Value>, spec: Option<&Value>, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(spec) = spec else {
        return out;
    };
    for (k, _) in entries(spec.get("nodeSelector")) {
        if let Some(m) = deprecated_label(k) {
            out.push(format!("{prefix}spec.nodeSelector[{k}]: {m}"));
        }
    }
    let affinity = spec.pointer("/affinity/nodeAffinity");
    let required = affinity.and_then(|a| {
        a.pointer("/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
    });
    for (i, term) in items(required).iter().enumerate() {
        let path = format!(
            "{prefix}spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]"
        );
        selector_term(term, &path, &mut out);
    }
    let preferred = affinity.and_then(|a| a.get("preferredDuringSchedulingIgnoredDuringExecution"));
    for (i, p) in items(preferred).iter().enumerate() {
        if let Some(term) = p.get("preference") {
            let path = format!(
                "{prefix}spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].preference"
            );
            selector_term(term, &path, &mut out);
        }
    }
    for (i, t) in items(spec.get("topologySpreadConstraints"))
        .iter()
        .enumerate()
    {
        let key = str_of(t, "topologyKey");
        if let Some(m) = deprecated_label(key) {
            out.push(format!(
                "{prefix}spec.topologySpreadConstraints[{i}].topologyKey: {key} is {m}"
            ));
        }
        if t.get("labelSelector").is_none_or(Value::is_null) {
            out.push(format!("{prefix}spec.topologySpreadConstraints[{i}].labelSelector: a null labelSelector results in matching no pod"));
        }
    }
    let annotations = meta.and_then(|m| m.get("annotations"));
    for (key, message) in DEPRECATED_ANNOTATIONS {
        if annotations.and_then(|a| a.get(key)).is_some() {
            out.push(format!("{prefix}metadata.annotations[{key}]: {message}"));
        }
    }
    for (i, v) in items(spec.get("volumes")).iter().enumerate() {
        for (field, name, message) in RETIRED_VOLUMES {
            if v.get(field).is_some_and(|s| !s.is_null()) {
                out.push(format!("{prefix}spec.volumes[{i}].{name}: {message}"));
            }
        }
    }
    let mut ips = HashSet::new();
    for (i, h) in items(spec.get("hostAliases")).iter().enumerate() {
        let ip = str_of(h, "ip");
        if !ips.insert(ip) {
            out.push(format!(
                "{prefix}spec.hostAliases[{i}].ip: duplicate ip \"{ip}\""
            ));
        }
    }
    let mut names = HashSet::new();
    for (i, s) in items(spec.get("imagePullSecrets")).iter().enumerate() {
        let name = str_of(s, "name");
        if !names.insert(name) {
            out.push(format!(
                "{prefix}spec.imagePullSecrets[{i}].name: duplicate name \"{name}\""
            ));
        }
    }
    for (i, s) in items(spec.get("imagePullSecrets")).iter().enumerate() {
        if str_of(s, "name").is_empty() {
            out.push(format!(
                "{prefix}spec.imagePullSecrets[{i}].name: invalid empty name \"\""
            ));
        }
    }
    for (list, field) in [
        ("initContainers", "initContainers"),
        ("containers", "containers"),
        ("ephemeralContainers", "ephemeralContainers"),
    ] {
        for (i, c) in items(spec.get(list)).iter().enumerate() {
            container(c, &format!("{prefix}spec.{field}[{i}]"), &mut out);
        }
    }
    out
}

fn selector_term(term: &Value, path: &str, out: &mut Vec<String>) {
    for (i, e) in items(term.get("matchExpressions")).iter().enumerate() {
        let key = str_of(e, "key");
        if let Some(m) = deprecated_label(key) {
            out.push(format!("{path}.matchExpressions[{i}].key: {key} is {m}"));
        }
    }
}

fn container(c: &Value, path: &str, out: &mut Vec<String>) {
    for kind in ["limits", "requests"] {
        for resource in ["memory", "ephemeral-storage"] {
            let Some(text) = c.pointer(&format!("/resources/{kind}/{resource}")) else {
                continue;
            };
            let text = match text {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // Named as Kubernetes holds it by then: rounded up to milli-units, in its
            // canonical form (`0.5` is `500m`, `100.5m` is `101m`).
            let Some(milli) = qty::parse(&text).map(|q| q.round_up_to_milli()) else {
                continue;
            };
            if !milli.is_integer() {
                out.push(format!(
                    "{path}.resources.{kind}[{resource}]: fractional byte value \"{}\" is invalid, must be an integer",
                    milli.canonical()
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    for (i, e) in items(c.get("env")).iter().enumerate() {
        let name = str_of(e, "name");
        if seen.insert(name) {
            continue;
        }
        // A redefinition that builds on the earlier value (`X=$(X):more`) is fine.
        let reference = format!("$({name})");
        let value = str_of(e, "value");
        let hides = e.get("valueFrom").is_some_and(|v| !v.is_null())
            || value == reference
            || !value.contains(&reference);
        if hides {
            out.push(format!("{path}.env[{i}]: hides previous definition of \"{name}\", which may be dropped when using apply"));
        }
    }
    for (i, p) in items(c.get("ports")).iter().enumerate() {
        let host_ip = str_of(p, "hostIP");
        let host_port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
        if !host_ip.is_empty() && host_port == 0 {
            out.push(format!(
                "{path}.ports[{i}]: hostIP set without hostPort: {}",
                go_port(p)
            ));
        }
    }
}

/// A container port as Go's `%+v` prints the struct.
fn go_port(p: &Value) -> String {
    format!(
        "{{Name:{} HostPort:{} ContainerPort:{} Protocol:{} HostIP:{}}}",
        str_of(p, "name"),
        p.get("hostPort").and_then(Value::as_i64).unwrap_or(0),
        p.get("containerPort").and_then(Value::as_i64).unwrap_or(0),
        str_of(p, "protocol"),
        str_of(p, "hostIP"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_daemonset_template_gets_kube_apiservers_warnings() {
        let ds = json!({
            "spec": { "template": {
                "metadata": { "annotations": { "scheduler.alpha.kubernetes.io/critical-pod": "" } },
                "spec": {
                    "nodeSelector": { "beta.kubernetes.io/os": "linux", "disk": "ssd" },
                    "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{ "matchExpressions": [
                            { "key": "failure-domain.beta.kubernetes.io/zone", "operator": "Exists" }
                        ]}]
                    }}},
                    "volumes": [{ "name": "v", "gitRepo": { "repository": "x" } }],
                    "containers": [{
                        "name": "c",
                        "resources": { "limits": { "memory": "100m", "cpu": "100m" },
                                       "requests": { "memory": "100.5m" } },
                        "env": [
                            { "name": "FOO", "value": "a" },
                            { "name": "FOO", "value": "b" },
                            { "name": "PATH", "value": "/bin" },
                            { "name": "PATH", "value": "$(PATH):/sbin" }
                        ]
                    }]
                }
            }}
        });
        assert_eq!(
            for_object("DaemonSet", &ds),
            vec![
                "spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \"kubernetes.io/os\" instead",
                "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key: failure-domain.beta.kubernetes.io/zone is deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead",
                "spec.template.metadata.annotations[scheduler.alpha.kubernetes.io/critical-pod]: non-functional in v1.16+; use the \"priorityClassName\" field instead",
                "spec.template.spec.volumes[0].gitRepo: deprecated in v1.11",
                "spec.template.spec.containers[0].resources.limits[memory]: fractional byte value \"100m\" is invalid, must be an integer",
                "spec.template.spec.containers[0].resources.requests[memory]: fractional byte value \"101m\" is invalid, must be an integer",
                "spec.template.spec.containers[0].env[1]: hides previous definition of \"FOO\", which may be dropped when using apply",
            ]
        );
    }

    #[test]
    fn a_plain_pod_has_none() {
        let pod = json!({ "metadata": { "name": "p" }, "spec": { "containers": [
            { "name": "c", "image": "nginx", "resources": { "limits": { "memory": "1Gi" } },
              "ports": [{ "containerPort": 80 }] }
        ]}});
        assert!(for_object("Pod", &pod).is_empty());
        let pod = json!({ "spec": { "containers": [
            { "name": "c", "ports": [{ "containerPort": 80, "hostIP": "10.0.0.1", "protocol": "TCP" }] }
        ], "imagePullSecrets": [{ "name": "a" }, { "name": "a" }, {}] }});
        assert_eq!(
            for_object("Pod", &pod),
            vec![
                "spec.imagePullSecrets[1].name: duplicate name \"a\"",
                "spec.imagePullSecrets[2].name: invalid empty name \"\"",
                "spec.containers[0].ports[0]: hostIP set without hostPort: {Name: HostPort:0 ContainerPort:80 Protocol:TCP HostIP:10.0.0.1}",
            ]
        );
    }
}
