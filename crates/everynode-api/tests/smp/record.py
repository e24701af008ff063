#!/usr/bin/env python3
"""Records the strategic-merge-patch differential corpus.

Each case is applied by stock kubectl (`kubectl patch --local --type strategic`, which runs
k8s.io/apimachinery's strategicpatch against the Go structs of the kind) and the result (or
the error message) is stored next to the input as <name>.json. The Rust test
(tests/smp_corpus.rs) replays the files without kubectl.

Usage: python3 record.py [path/to/kubectl]   (default /usr/lib/google-cloud-sdk/bin/kubectl.1.33)
"""
import json, os, subprocess, sys, tempfile

KUBECTL = sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
HERE = os.path.dirname(os.path.abspath(__file__))

def pod(spec=None, status=None, **meta):
    m = {"name": "p", "namespace": "default"}
    m.update(meta)
    o = {"apiVersion": "v1", "kind": "Pod", "metadata": m,
         "spec": spec if spec is not None else {"containers": [{"name": "c", "image": "nginx"}]}}
    if status is not None:
        o["status"] = status
    return o

def node(spec=None, status=None, **meta):
    m = {"name": "n1"}
    m.update(meta)
    o = {"apiVersion": "v1", "kind": "Node", "metadata": m, "spec": spec or {}}
    if status is not None:
        o["status"] = status
    return o

FLUENTD_TEMPLATE = {
    "metadata": {"labels": {"app": "fluentd"}},
    "spec": {
        "containers": [
            {"name": "fluentd", "image": "fluentd:v1", "args": ["--a", "--b"],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 24224, "protocol": "TCP"}, {"containerPort": 9880, "protocol": "TCP"}],
             "volumeMounts": [{"name": "logs", "mountPath": "/var/log"}]},
            {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]},
        ],
        "nodeSelector": {"zone": "a", "disk": "ssd"},
        "tolerations": [{"key": "b", "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "logs", "hostPath": {"path": "/var/log", "type": ""}}],
    },
}

def ds(template=None, status=None, **meta):
    m = {"name": "fluentd", "namespace": "default", "uid": "ds-uid",
         "finalizers": ["example.com/a", "example.com/b"],
         "annotations": {"deprecated.daemonset.template.generation": "1"}}
    m.update(meta)
    o = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": m,
         "spec": {"selector": {"matchLabels": {"app": "fluentd"}},
                  "template": json.loads(json.dumps(template or FLUENTD_TEMPLATE)),
                  "updateStrategy": {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                  "revisionHistoryLimit": 10}}
    if status is not None:
        o["status"] = status
    return o

def obj(api, kind, body, **meta):
    m = {"name": "x", "namespace": "default"}
    m.update(meta)
    o = {"apiVersion": api, "kind": kind, "metadata": m}
    o.update(body)
    return o

APPLY_PATCH = {
    "metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/b"],
                 "$setElementOrder/finalizers": ["example.com/a"],
                 "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
    "spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "fluentd"}],
        "$setElementOrder/volumes": [{"name": "logs"}],
        "containers": [{"$setElementOrder/env": [{"name": "A"}],
                        "$setElementOrder/ports": [{"containerPort": 24224}],
                        "args": ["--a"],
                        "env": [{"$patch": "delete", "name": "B"}],
                        "image": "fluentd:v2", "name": "fluentd",
                        "ports": [{"$patch": "delete", "containerPort": 9880}]},
                       {"$patch": "delete", "name": "sidecar"}],
        "nodeSelector": {"zone": None},
        "tolerations": [{"key": "a", "operator": "Exists"}],
        "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"},
                     "hostPath": None, "name": "logs"}]}},
        "updateStrategy": {"rollingUpdate": None, "type": "OnDelete"}}}

UNDO_DATA = {"spec": {"template": {
    "$patch": "replace",
    "metadata": {"creationTimestamp": None, "labels": {"app": "fluentd"}},
    "spec": {"containers": [{"image": "fluentd:v0", "imagePullPolicy": "IfNotPresent", "name": "fluentd",
                             "resources": {}, "terminationMessagePath": "/dev/termination-log",
                             "terminationMessagePolicy": "File"}],
             "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "securityContext": {}, "terminationGracePeriodSeconds": 30}}}}

C = "containers"
CASES = [
    # --- kubectl's own bodies (kubectl-compat.md §10.3, §13) ---
    ("kubectl-apply-daemonset", ds(), APPLY_PATCH),
    ("kubectl-set-image", ds(), {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "fluentd"}, {"name": "sidecar"}], "containers": [{"image": "fluentd:v9", "name": "fluentd"}]}}}}),
    ("kubectl-edit-one-container-order", ds(), {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "fluentd"}], "containers": [{"image": "fluentd:v9", "name": "fluentd"}]}}}}),
    ("kubectl-rollout-undo", ds(), UNDO_DATA),
    ("kubectl-rollout-restart", ds(), {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-24T08:54:45Z"}}}}}),
    ("kubectl-taint-add", node(spec={"taints": [{"key": "a", "value": "1", "effect": "NoSchedule"}]}), {"spec": {"taints": [{"key": "b", "value": "2", "effect": "NoExecute"}, {"key": "a", "value": "1", "effect": "NoSchedule"}]}}),
    ("kubectl-taint-remove-all", node(spec={"taints": [{"key": "a", "effect": "NoSchedule"}]}), {"spec": {"taints": None}}),
    ("kubectl-cordon", node(spec={"podCIDR": "10.0.0.0/24"}), {"spec": {"unschedulable": True}}),
    ("kubectl-uncordon", node(spec={"unschedulable": True, "podCIDR": "10.0.0.0/24"}), {"spec": {"unschedulable": None}}),
    ("controller-release-pod", pod(ownerReferences=[{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "ds-uid", "controller": True, "blockOwnerDeletion": True}, {"apiVersion": "v1", "kind": "Other", "name": "o", "uid": "other"}], uid="pod-uid"),
     {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "ds-uid"}], "uid": "pod-uid"}}),
    ("controller-adopt-pod", pod(uid="pod-uid", ownerReferences=[{"apiVersion": "v1", "kind": "Other", "name": "o", "uid": "other"}]),
     {"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "ds-uid", "controller": True, "blockOwnerDeletion": True}], "uid": "pod-uid"}}),
    ("controller-adopt-pod-no-refs", pod(uid="pod-uid"),
     {"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "ds-uid", "controller": True, "blockOwnerDeletion": True}], "uid": "pod-uid"}}),
    ("label-and-annotate", pod(labels={"a": "1", "tier": "x"}), {"metadata": {"labels": {"tier": None, "b": "2"}, "annotations": {"k": "v"}}}),
    # --- metadata ---
    ("finalizers-union", pod(finalizers=["a", "b", "c"]), {"metadata": {"finalizers": ["c", "d", "a"]}}),
    ("finalizers-delete-list", pod(finalizers=["a", "b", "c"]), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}}),
    ("finalizers-delete-list-absent", pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
    ("finalizers-delete-list-null", pod(finalizers=["a"]), {"metadata": {"$deleteFromPrimitiveList/finalizers": None}}),
    ("finalizers-set-order-only", pod(finalizers=["a", "b", "c"]), {"metadata": {"$setElementOrder/finalizers": ["c", "b"]}}),
    ("finalizers-set-order-add", pod(finalizers=["a", "b", "c"]), {"metadata": {"$setElementOrder/finalizers": ["d", "c"], "finalizers": ["d"]}}),
    ("finalizers-set-order-add-delete", pod(finalizers=["a", "b", "c"]), {"metadata": {"$setElementOrder/finalizers": ["a", "x", "c"], "finalizers": ["x"], "$deleteFromPrimitiveList/finalizers": ["b"]}}),
    ("finalizers-null", pod(finalizers=["a"]), {"metadata": {"finalizers": None}}),
    ("owner-references-merge", pod(ownerReferences=[{"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1"}, {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2"}]),
     {"metadata": {"ownerReferences": [{"uid": "2", "controller": True}, {"uid": "3", "apiVersion": "v1", "kind": "C", "name": "c"}]}}),
    ("owner-references-replace", pod(ownerReferences=[{"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1"}]),
     {"metadata": {"ownerReferences": [{"$patch": "replace"}, {"uid": "9", "apiVersion": "v1", "kind": "Z", "name": "z"}]}}),
    ("managed-fields-atomic", pod(managedFields=[{"manager": "a", "operation": "Update"}]), {"metadata": {"managedFields": [{"manager": "b", "operation": "Apply"}]}}),
    # --- containers and their lists ---
    ("containers-merge-and-add", pod({C: [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}), {"spec": {C: [{"name": "b", "image": "3"}, {"name": "z", "image": "4"}]}}),
    ("containers-patch-order-wins", pod({C: [{"name": "a"}, {"name": "b"}, {"name": "c"}]}), {"spec": {C: [{"name": "c", "image": "1"}, {"name": "a", "image": "2"}]}}),
    ("containers-set-order-only", pod({C: [{"name": "a"}, {"name": "b"}, {"name": "c"}]}), {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}}),
    ("containers-set-order-new-middle", pod({C: [{"name": "a"}, {"name": "b"}, {"name": "c"}]}), {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "x"}, {"name": "a"}], C: [{"name": "x"}]}}),
    ("containers-delete-directive", pod({C: [{"name": "a"}, {"name": "b"}]}), {"spec": {C: [{"name": "a", "$patch": "delete"}]}}),
    ("containers-list-replace", pod({C: [{"name": "a", "image": "1"}, {"name": "b"}]}), {"spec": {C: [{"name": "n", "image": "9"}, {"$patch": "replace"}]}}),
    ("init-containers-merge", pod({C: [{"name": "c"}], "initContainers": [{"name": "i1", "image": "1"}, {"name": "i2", "image": "2"}]}), {"spec": {"initContainers": [{"name": "i2", "image": "3"}]}}),
    ("ephemeral-containers-merge", pod({C: [{"name": "c"}], "ephemeralContainers": [{"name": "debug", "image": "1", "env": [{"name": "A", "value": "1"}]}]}), {"spec": {"ephemeralContainers": [{"name": "debug", "env": [{"name": "B", "value": "2"}]}, {"name": "debug2", "image": "b"}]}}),
    ("env-merge-by-name", pod({C: [{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}), {"spec": {C: [{"name": "c", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}, {"name": "A", "$patch": "delete"}]}]}}),
    ("env-value-from-switch", pod({C: [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}), {"spec": {C: [{"name": "c", "env": [{"name": "A", "value": None, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]}}),
    ("ports-merge-by-container-port", pod({C: [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}), {"spec": {C: [{"name": "c", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 8080}]}]}}),
    ("volume-mounts-merge-by-mount-path", pod({C: [{"name": "c", "volumeMounts": [{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/b"}]}]}), {"spec": {C: [{"name": "c", "volumeMounts": [{"name": "z", "mountPath": "/a", "readOnly": True}, {"name": "c", "mountPath": "/c"}, {"mountPath": "/b", "$patch": "delete"}]}]}}),
    ("volume-devices-merge-by-device-path", pod({C: [{"name": "c", "volumeDevices": [{"name": "a", "devicePath": "/dev/a"}]}]}), {"spec": {C: [{"name": "c", "volumeDevices": [{"name": "b", "devicePath": "/dev/b"}, {"name": "a2", "devicePath": "/dev/a"}]}]}}),
    ("container-atomic-lists", pod({C: [{"name": "c", "command": ["a", "b"], "args": ["x"], "envFrom": [{"configMapRef": {"name": "a"}}], "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}], "resources": {"claims": [{"name": "x"}], "limits": {"cpu": "1"}}}]}),
     {"spec": {C: [{"name": "c", "command": ["z"], "args": ["y"], "envFrom": [{"secretRef": {"name": "s"}}], "resizePolicy": [{"resourceName": "memory", "restartPolicy": "NotRequired"}], "resources": {"claims": [{"name": "y"}], "requests": {"cpu": "100m"}}}]}}),
    ("delete-from-atomic-primitive-list", pod({C: [{"name": "c", "args": ["x", "y", "x"]}]}), {"spec": {C: [{"name": "c", "$deleteFromPrimitiveList/args": ["x"]}]}}),
    # --- pod spec lists ---
    ("volumes-retain-keys", pod({C: [{"name": "c"}], "volumes": [{"name": "v", "hostPath": {"path": "/x"}}, {"name": "w", "emptyDir": {}}]}), {"spec": {"volumes": [{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "cm"}}]}}),
    ("volumes-merge-and-delete", pod({C: [{"name": "c"}], "volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}), {"spec": {"$setElementOrder/volumes": [{"name": "n"}, {"name": "w"}], "volumes": [{"name": "n", "secret": {"secretName": "s"}}, {"name": "v", "$patch": "delete"}]}}),
    ("image-pull-secrets-by-name", pod({C: [{"name": "c"}], "imagePullSecrets": [{"name": "a"}]}), {"spec": {"imagePullSecrets": [{"name": "b"}, {"name": "a"}]}}),
    ("host-aliases-by-ip", pod({C: [{"name": "c"}], "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["a"]}, {"ip": "2.2.2.2", "hostnames": ["b"]}]}), {"spec": {"hostAliases": [{"ip": "1.1.1.1", "hostnames": ["z"]}]}}),
    ("topology-spread-by-topology-key", pod({C: [{"name": "c"}], "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]}), {"spec": {"topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2}, {"topologyKey": "host", "maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway"}]}}),
    ("scheduling-gates-by-name", pod({C: [{"name": "c"}], "schedulingGates": [{"name": "a"}, {"name": "b"}]}), {"spec": {"schedulingGates": [{"name": "a", "$patch": "delete"}]}}),
    ("resource-claims-by-name", pod({C: [{"name": "c"}], "resourceClaims": [{"name": "a", "resourceClaimName": "x"}]}), {"spec": {"resourceClaims": [{"name": "b", "resourceClaimName": "y"}, {"name": "a", "resourceClaimName": "z"}]}}),
    ("tolerations-atomic", pod({C: [{"name": "c"}], "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]}), {"spec": {"tolerations": [{"key": "c", "operator": "Equal", "value": "1"}]}}),
    ("readiness-gates-atomic", pod({C: [{"name": "c"}], "readinessGates": [{"conditionType": "a"}]}), {"spec": {"readinessGates": [{"conditionType": "b"}]}}),
    ("node-affinity-terms-atomic", pod({C: [{"name": "c"}], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}, "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [{"key": "p", "operator": "Exists"}]}}]}}}),
     {"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}}),
    ("node-selector-map-merge", pod({C: [{"name": "c"}], "nodeSelector": {"a": "1", "b": "2"}}), {"spec": {"nodeSelector": {"a": None, "c": "3"}}}),
    ("map-replace-directive", pod({C: [{"name": "c"}], "nodeSelector": {"a": "1", "b": "2"}}), {"spec": {"nodeSelector": {"$patch": "replace", "z": "9"}}}),
    ("map-delete-directive", pod({C: [{"name": "c"}], "nodeSelector": {"a": "1"}}), {"spec": {"nodeSelector": {"$patch": "delete"}}}),
    ("security-context-nested-merge", pod({C: [{"name": "c"}], "securityContext": {"runAsUser": 1, "sysctls": [{"name": "a", "value": "1"}]}}), {"spec": {"securityContext": {"runAsGroup": 2, "sysctls": [{"name": "b", "value": "2"}]}}}),
    ("fresh-subtree-cleanup", pod(), {"spec": {"nodeSelector": {"a": None, "b": "c"}, "dnsConfig": {"$patch": "delete"}, "volumes": [{"name": "v", "$patch": "delete"}, {"name": "w", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}]}}),
    ("type-change-replaces", pod({C: [{"name": "c"}], "nodeSelector": {"a": "1"}}), {"spec": {"nodeSelector": "oops"}}),
    ("retain-keys-plain-map", pod({C: [{"name": "c"}], "securityContext": {"runAsUser": 1, "runAsGroup": 2}}), {"spec": {"securityContext": {"$retainKeys": ["runAsGroup", "fsGroup"], "fsGroup": 3}}}),
    # --- pod status ---
    ("pod-status-lists", pod(status={"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}], "podIPs": [{"ip": "10.0.0.1"}], "hostIPs": [{"ip": "192.168.0.1"}], "containerStatuses": [{"name": "c", "ready": False}], "resourceClaimStatuses": [{"name": "a"}]}),
     {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}], "podIPs": [{"ip": "fd00::1"}], "hostIPs": [{"ip": "192.168.0.1"}, {"ip": "fd00::2"}], "containerStatuses": [{"name": "c", "ready": True}], "resourceClaimStatuses": [{"name": "b"}]}}),
    ("pod-status-set-order", pod(status={"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}, {"type": "C", "status": "True"}]}),
     {"status": {"$setElementOrder/conditions": [{"type": "C"}, {"type": "B"}], "conditions": [{"type": "B", "status": "False"}]}}),
    # --- node ---
    ("node-pod-cidrs-merge", node(spec={"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"]}), {"spec": {"podCIDRs": ["fd00::/64"]}}),
    ("node-status-lists", node(status={"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}, {"type": "MemoryPressure", "status": "False"}], "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}], "images": [{"names": ["a"]}]}),
     {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}], "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}], "images": [{"names": ["b"]}]}}),
    ("node-heartbeat-set-order", node(status={"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]}),
     {"status": {"$setElementOrder/conditions": [{"type": "MemoryPressure"}, {"type": "DiskPressure"}, {"type": "Ready"}], "conditions": [{"type": "DiskPressure", "status": "False"}, {"type": "Ready", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]}}),
    # --- daemonset ---
    ("daemonset-status-conditions", ds(status={"currentNumberScheduled": 1, "conditions": [{"type": "A", "status": "True"}]}), {"status": {"numberReady": 1, "conditions": [{"type": "B", "status": "True"}]}}),
    ("daemonset-update-strategy-plain", ds(), {"spec": {"updateStrategy": {"rollingUpdate": {"maxSurge": 1}}}}),
    ("daemonset-template-env-add", ds(), {"spec": {"template": {"spec": {C: [{"name": "sidecar", "env": [{"name": "X", "value": "y"}]}]}}}}),
    ("daemonset-selector-atomic-expressions", ds(), {"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}}),
    # --- other kinds ---
    ("namespace-lists", obj("v1", "Namespace", {"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active", "conditions": [{"type": "A", "status": "True"}]}}),
     {"spec": {"finalizers": ["x"]}, "status": {"conditions": [{"type": "B", "status": "True"}]}}),
    ("service-ports-by-port", obj("v1", "Service", {"spec": {"ports": [{"port": 80, "name": "a", "targetPort": 8080}, {"port": 443, "name": "b"}], "selector": {"app": "x"}}, "status": {"conditions": [{"type": "A", "status": "True"}]}}),
     {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 81, "name": "c"}], "selector": {"tier": "y"}}, "status": {"conditions": [{"type": "B", "status": "True"}]}}),
    ("endpoints-subsets-atomic", obj("v1", "Endpoints", {"subsets": [{"addresses": [{"ip": "1.1.1.1"}], "ports": [{"port": 80}]}]}), {"subsets": [{"addresses": [{"ip": "2.2.2.2"}]}]}),
    ("endpointslice-atomic", obj("discovery.k8s.io/v1", "EndpointSlice", {"addressType": "IPv4", "endpoints": [{"addresses": ["1.1.1.1"]}], "ports": [{"port": 80}]}), {"endpoints": [{"addresses": ["2.2.2.2"]}], "ports": [{"port": 81}]}),
    ("lease-renew", obj("coordination.k8s.io/v1", "Lease", {"spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2026-01-01T00:00:00.000000Z"}}), {"spec": {"renewTime": "2026-01-01T00:00:10.000000Z"}}),
    ("event-series", obj("v1", "Event", {"involvedObject": {"kind": "Pod", "name": "p"}, "reason": "X", "count": 1, "related": {"kind": "Node", "name": "n"}}), {"count": 2, "lastTimestamp": "2026-01-01T00:00:00Z", "related": None}),
    ("binding-target", obj("v1", "Binding", {"target": {"kind": "Node", "name": "n1"}}), {"target": {"name": "n2"}}),
    ("controllerrevision-data-fresh", obj("apps/v1", "ControllerRevision", {"revision": 1}), {"data": {"spec": {"template": {"$patch": "replace", "spec": {}}}}, "revision": 2}),
    ("configmap-unknown-kind-rules", obj("v1", "ConfigMap", {"data": {"a": "1", "b": "2"}}, finalizers=["x"]), {"data": {"a": None, "c": "3"}, "metadata": {"finalizers": ["y"]}}),
    # --- errors ---
    ("error-missing-merge-key", pod({C: [{"name": "a"}]}), {"spec": {C: [{"image": "x"}]}}),
    ("error-unknown-patch-type-map", pod(), {"spec": {"$patch": "foo"}}),
    ("error-unknown-patch-type-list", pod(), {"spec": {C: [{"name": "c", "$patch": "foo"}]}}),
    ("error-merge-directive-in-list", pod(), {"spec": {C: [{"name": "c", "$patch": "merge"}]}}),
    ("error-retain-keys-not-list", pod(), {"spec": {"$retainKeys": "x"}}),
    ("error-retain-keys-missing-key", pod(), {"spec": {"$retainKeys": ["containers"], "hostNetwork": True}}),
    ("error-set-order-mismatch", pod(), {"spec": {"$setElementOrder/containers": [{"name": "b"}], C: [{"name": "c"}]}}),
    ("error-set-order-bad-prefix", pod(), {"spec": {"$setElementOrderX/containers": []}}),
    ("error-delete-list-bad-prefix", pod(), {"spec": {"$deleteFromPrimitiveListX/containers": []}}),
    ("error-element-types", pod(finalizers=["a"]), {"metadata": {"finalizers": [1]}}),
    ("error-list-of-lists", pod(finalizers=["a"]), {"metadata": {"finalizers": [["a"]]}}),
    ("error-merge-key-list-of-strings", pod(), {"spec": {C: ["x"]}}),
    # --- known divergences (see DIVERGENT) ---
    ("divergent-controllerrevision-data-merge", obj("apps/v1", "ControllerRevision", {"revision": 1, "data": {"spec": {"a": 1}}}), {"data": {"spec": {"b": 1}}}),
    ("divergent-unknown-field-in-both", pod({C: [{"name": "c"}], "foo": {"a": 1}}), {"spec": {"foo": {"b": 2}}}),
]

# Cases where everynode knowingly differs from Go: name -> (reason, everynode's result)
DIVERGENT = {
    "divergent-controllerrevision-data-merge": (
        "Go has no patch metadata for RawExtension and fails; everynode merges the map",
        obj("apps/v1", "ControllerRevision", {"revision": 1, "data": {"spec": {"a": 1, "b": 1}}})),
    "divergent-unknown-field-in-both": (
        "Go fails on a field missing from the struct; everynode treats it as a plain field",
        pod({C: [{"name": "c"}], "foo": {"a": 1, "b": 2}})),
}

def run(original, patch):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(original, f)
        path = f.name
    env = dict(os.environ, KUBECONFIG="/dev/null")
    try:
        p = subprocess.run([KUBECTL, "patch", "--local", "-f", path, "--type", "strategic",
                            "-p", json.dumps(patch), "-o", "json", "--show-managed-fields"],
                           capture_output=True, text=True, env=env)
    finally:
        os.unlink(path)
    if p.returncode == 0:
        return {"expected": json.loads(p.stdout)}
    msg = p.stderr.strip()
    if msg.startswith("error: "):
        msg = msg[len("error: "):]
    return {"expected_error": msg}

def main():
    version = subprocess.run([KUBECTL, "version", "--client", "-o", "json"], capture_output=True, text=True)
    ver = json.loads(version.stdout)["clientVersion"]["gitVersion"] if version.returncode == 0 else "?"
    names = set()
    for name, original, patch in CASES:
        assert name not in names, name
        names.add(name)
        kind = original["kind"]
        case = {"kind": kind, "recorded_with": f"kubectl {ver} patch --local --type strategic",
                "original": original, "patch": patch}
        case.update(run(original, patch))
        if name in DIVERGENT:
            reason, ours = DIVERGENT[name]
            case["divergence"] = reason
            case["everynode"] = ours
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump(case, f, indent=1, sort_keys=True)
            f.write("\n")
        print(name, "error" if "expected_error" in case else "ok")

if __name__ == "__main__":
    main()
