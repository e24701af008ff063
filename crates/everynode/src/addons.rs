//! What `everynode up` puts in a new simulated cluster besides the nodes, as kubeadm
//! does in a new cluster: the `kube-proxy` DaemonSet in `kube-system` (its ServiceAccount
//! and ConfigMap with it), so `kubectl get daemonset --namespace=kube-system` shows the
//! system DaemonSet users know. On simulated nodes its pods are simulated like any
//! other; process nodes have no such pods (their agent carries the Service proxy).
//!
//! Installed once, when the cluster is new: a marker file in the data directory
//! remembers it, so a user who deletes the DaemonSet does not see it come back.

use std::path::Path;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;

const MARKER: &str = "addons-installed";

/// The kube-proxy objects, as kubeadm writes them (image at the server's version).
fn kube_proxy() -> Result<(ServiceAccount, ConfigMap, DaemonSet), serde_json::Error> {
    let labels = json!({ "k8s-app": "kube-proxy" });
    let sa = serde_json::from_value(json!({
        "metadata": { "name": "kube-proxy", "namespace": "kube-system" },
    }))?;
    let cm = serde_json::from_value(json!({
        "metadata": { "name": "kube-proxy", "namespace": "kube-system", "labels": { "app": "kube-proxy" } },
        "data": {
            "config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\nmode: \"\"\n",
            "kubeconfig.conf": "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n    server: https://kubernetes.default.svc\n  name: default\ncontexts:\n- context:\n    cluster: default\n    namespace: default\n    user: default\n  name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
        },
    }))?;
    let ds = serde_json::from_value(json!({
        "metadata": { "name": "kube-proxy", "namespace": "kube-system", "labels": labels },
        "spec": {
            "selector": { "matchLabels": labels },
            "updateStrategy": { "type": "RollingUpdate",
                                "rollingUpdate": { "maxUnavailable": 1, "maxSurge": 0 } },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "containers": [{
                        "name": "kube-proxy",
                        "image": format!("registry.k8s.io/kube-proxy:{}", everynode_apiserver::openapi::GIT_VERSION),
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/usr/local/bin/kube-proxy",
                                    "--config=/var/lib/kube-proxy/config.conf",
                                    "--hostname-override=$(NODE_NAME)"],
                        "env": [{ "name": "NODE_NAME",
                                  "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } }],
                        "securityContext": { "privileged": true },
                        "volumeMounts": [
                            { "name": "kube-proxy", "mountPath": "/var/lib/kube-proxy" },
                            { "name": "xtables-lock", "mountPath": "/run/xtables.lock" },
                            { "name": "lib-modules", "mountPath": "/lib/modules", "readOnly": true },
                        ],
                    }],
                    "hostNetwork": true,
                    "nodeSelector": { "kubernetes.io/os": "linux" },
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "kube-proxy",
                    "tolerations": [{ "operator": "Exists" }],
                    "volumes": [
                        { "name": "kube-proxy", "configMap": { "name": "kube-proxy" } },
                        { "name": "xtables-lock",
                          "hostPath": { "path": "/run/xtables.lock", "type": "FileOrCreate" } },
                        { "name": "lib-modules", "hostPath": { "path": "/lib/modules" } },
                    ],
                },
            },
        },
    }))?;
    Ok((sa, cm, ds))
}

/// Creates what a new cluster holds, once per data directory.
pub async fn install(client: &kube::Client, data_dir: &Path) -> Result<(), String> {
    let marker = data_dir.join(MARKER);
    if marker.exists() {
        return Ok(());
    }
    let (sa, cm, ds) = kube_proxy().map_err(|e| format!("kube-proxy manifests: {e}"))?;
    let pp = PostParams::default();
    let created = |r: Result<(), kube::Error>| match r {
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        other => other.map_err(|e| format!("creating kube-proxy: {e}")),
    };
    created(
        Api::<ServiceAccount>::namespaced(client.clone(), "kube-system")
            .create(&pp, &sa)
            .await
            .map(drop),
    )?;
    created(
        Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
            .create(&pp, &cm)
            .await
            .map(drop),
    )?;
    created(
        Api::<DaemonSet>::namespaced(client.clone(), "kube-system")
            .create(&pp, &ds)
            .await
            .map(drop),
    )?;
    std::fs::write(&marker, "kube-proxy\n")
        .map_err(|e| format!("writing {}: {e}", marker.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifests decode into their types and, defaulted as the server defaults them,
    /// pass its validation.
    #[test]
    fn kube_proxy_is_a_valid_daemonset() {
        let (_, _, mut ds) = kube_proxy().expect("manifests");
        everynode_api::defaults::default_daemonset(&mut ds);
        let errs = everynode_api::validation::validate_daemonset(&ds);
        assert!(errs.is_empty(), "{errs:?}");
        let spec = ds.spec.expect("spec");
        assert_eq!(
            spec.template
                .spec
                .expect("pod spec")
                .priority_class_name
                .as_deref(),
            Some("system-node-critical")
        );
    }
}
