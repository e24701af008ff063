"""everynode through Python's official `kubernetes` client, an independent client that
decodes every answer into its strict models. Run by tests/python_client.rs against
`everynode up --nodes 3`: python client_check.py KUBECONFIG. Exits non-zero, naming the
failed checks, if any check fails.
"""
import json
import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
core, apps = client.CoreV1Api(), client.AppsV1Api()
coord, disc, events = client.CoordinationV1Api(), client.DiscoveryV1Api(), client.EventsV1Api()
NS = "py"
FAILED = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))
    if not ok:
        FAILED.append(name)


def status_of(fn):
    """(HTTP status, Status body) of a call expected to fail; (200, result) otherwise."""
    try:
        return 200, fn()
    except ApiException as e:
        try:
            return e.status, json.loads(e.body)
        except ValueError:
            return e.status, e.body


def until(what, fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.2)
    check(what, False, "timed out")
    return None


def settled(name):
    d = apps.read_namespaced_daemon_set(name, NS)
    s = d.status
    return d if (s.observed_generation == d.metadata.generation and s.desired_number_scheduled
                 and s.number_ready == s.desired_number_scheduled == s.updated_number_scheduled
                 and not s.number_unavailable) else None


core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))

# Typed models and plain dicts, every answer decoded by the client's models.
nodes = core.list_node().items
check("three nodes, each Ready", len(nodes) == 3 and all(
    any(c.type == "Ready" and c.status == "True" for c in n.status.conditions) for n in nodes))
check("version is v1.33", client.VersionApi().get_code().git_version.startswith("v1.33"))
apps.create_namespaced_daemon_set(NS, {
    "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "web"},
    "spec": {"selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"tolerations": [{"operator": "Exists"}],
                                   "containers": [{"name": "c", "image": "nginx:1.27"}]}}}})
apps.create_namespaced_daemon_set(NS, client.V1DaemonSet(
    metadata=client.V1ObjectMeta(name="agent"),
    spec=client.V1DaemonSetSpec(
        selector=client.V1LabelSelector(match_labels={"app": "agent"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "agent"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")])))))
web = until("web ready", lambda: settled("web"))
check("web on every node", web is not None and web.status.desired_number_scheduled == 3)
agent = until("agent ready", lambda: settled("agent"))
check("agent skips the tainted master", agent is not None and agent.status.desired_number_scheduled == 2)
check("defaults applied", web is not None
      and web.spec.update_strategy.rolling_update.max_unavailable == 1
      and web.spec.revision_history_limit == 10)
pods = core.list_namespaced_pod(NS, label_selector="app=web").items
check("pods listed by label", len(pods) == 3 and all(p.status.phase == "Running" for p in pods))
on_master = core.list_namespaced_pod(NS, field_selector="spec.nodeName=master").items
check("pods listed by node", {p.metadata.labels["app"] for p in on_master} == {"web"})
revs = apps.list_namespaced_controller_revision(NS, label_selector="app=web").items
check("a ControllerRevision per template", len(revs) == 1 and revs[0].revision == 1)

# A rolling update, followed with a watch from the DaemonSet's resourceVersion.
rv = apps.read_namespaced_daemon_set("web", NS).metadata.resource_version
apps.patch_namespaced_daemon_set("web", NS, {"spec": {"template": {"spec": {"containers": [
    {"name": "c", "image": "nginx:1.28"}]}}}})
done = False
for ev in watch.Watch().stream(apps.list_namespaced_daemon_set, NS, field_selector="metadata.name=web",
                               resource_version=rv, timeout_seconds=60):
    o = ev["object"]
    if (o.metadata.generation == 2 and o.status.observed_generation == 2
            and o.status.updated_number_scheduled == 3 and o.status.number_available == 3
            and not o.status.number_unavailable):
        done = True
        break
check("rolling update seen through a watch", done)
images = {p.spec.containers[0].image for p in core.list_namespaced_pod(NS, label_selector="app=web").items
          if p.metadata.deletion_timestamp is None}
check("every web pod on the new image", images == {"nginx:1.28"}, images)

# Pagination: limit and continue.
for i in range(5):
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm%d" % i, labels={"page": "y"})))
first = core.list_namespaced_config_map(NS, label_selector="page=y", limit=2)
second = core.list_namespaced_config_map(NS, label_selector="page=y", limit=10, _continue=first.metadata._continue)
check("limit and continue", [c.metadata.name for c in first.items + second.items] == ["cm%d" % i for i in range(5)])

# Errors as Kubernetes Status bodies.
code, body = status_of(lambda: core.read_namespaced_config_map("nope", NS))
check("404 NotFound", code == 404 and body["reason"] == "NotFound" and body["details"]["name"] == "nope", body)
code, body = status_of(lambda: core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm0"))))
check("409 AlreadyExists", code == 409 and body["reason"] == "AlreadyExists", body)
stale = core.read_namespaced_config_map("cm1", NS)
core.patch_namespaced_config_map("cm1", NS, {"data": {"k": "v2"}})
code, body = status_of(lambda: core.replace_namespaced_config_map("cm1", NS, stale))
check("409 Conflict on a stale update", code == 409 and body["reason"] == "Conflict", body)
code, body = status_of(lambda: apps.patch_namespaced_daemon_set("web", NS, {"spec": {"selector": {"matchLabels": {"app": "other"}}}}))
check("422 Invalid names the field", code == 422 and body["reason"] == "Invalid"
      and any(c["field"] == "spec.selector" for c in body["details"]["causes"]), body)

# Server-side apply, with field ownership.
api = client.ApiClient()
api.call_api("/api/v1/namespaces/%s/configmaps/applied" % NS, "PATCH",
             query_params=[("fieldManager", "py")],
             header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
             body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}},
             auth_settings=["BearerToken"], response_type="V1ConfigMap")
owners = [m.manager for m in core.read_namespaced_config_map("applied", NS).metadata.managed_fields]
check("server-side apply records its manager", owners == ["py"], owners)

# Status subresource and events in both APIs.
apps.patch_namespaced_daemon_set_status("agent", NS, {"status": {"conditions": [
    {"type": "Checked", "status": "True", "reason": "Py", "message": "from python"}]}})
time.sleep(0.5)
conds = [c.type for c in apps.read_namespaced_daemon_set("agent", NS).status.conditions or []]
check("a status condition written by another client stays", "Checked" in conds, conds)
core_events = core.list_namespaced_event(NS).items
check("the controller's events", any(e.reason == "SuccessfulCreate" for e in core_events))
check("events.k8s.io/v1 view of them", len(events.list_namespaced_event(NS).items) == len(core_events))
leases = until("a Lease per node", lambda: [
    l for l in coord.list_namespaced_lease("kube-node-lease").items if l.spec.renew_time is not None
] if len(coord.list_namespaced_lease("kube-node-lease").items) == 3 else None)
check("node Leases held by their nodes", bool(leases) and sorted(l.spec.holder_identity for l in leases)
      == sorted(n.metadata.name for n in nodes), leases)

# Eviction of a daemon pod: it comes back.
victim = core.list_namespaced_pod(NS, label_selector="app=agent").items[0]
core.create_namespaced_pod_eviction(victim.metadata.name, NS, client.V1Eviction(
    metadata=client.V1ObjectMeta(name=victim.metadata.name, namespace=NS)))
until("the evicted daemon pod replaced", lambda: settled("agent") and all(
    p.metadata.uid != victim.metadata.uid for p in core.list_namespaced_pod(NS, label_selector="app=agent").items))

# Services, endpoint slices, a headless one.
core.create_namespaced_service(NS, client.V1Service(metadata=client.V1ObjectMeta(name="web"), spec=client.V1ServiceSpec(
    selector={"app": "web"}, ports=[client.V1ServicePort(port=80)])))
svc = core.read_namespaced_service("web", NS)
check("a cluster IP from the range", svc.spec.cluster_ip.startswith("10."), svc.spec.cluster_ip)
slices = until("the web endpoint slice", lambda: [s for s in disc.list_namespaced_endpoint_slice(
    NS, label_selector="kubernetes.io/service-name=web").items if len(s.endpoints or []) == 3])
check("three ready endpoints", bool(slices) and all(e.conditions.ready for e in slices[0].endpoints))

# Secrets and ConfigMaps as kube-apiserver keeps them.
secret = core.create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"p": "x"}))
check("a Secret is Opaque by default, stringData in data", secret.type == "Opaque" and secret.data == {"p": "eA=="}, secret)
core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="frozen"), data={"a": "b"}, immutable=True))
code, body = status_of(lambda: core.patch_namespaced_config_map("frozen", NS, {"data": {"a": "c"}}))
check("an immutable ConfigMap keeps its data", code == 422, body)

# Deletion with an orphan policy keeps the pods; a new DaemonSet adopts them.
uids = {p.metadata.uid for p in core.list_namespaced_pod(NS, label_selector="app=agent").items}
apps.delete_namespaced_daemon_set("agent", NS, body=client.V1DeleteOptions(propagation_policy="Orphan"))
until("the DaemonSet gone", lambda: not [d for d in apps.list_namespaced_daemon_set(NS).items if d.metadata.name == "agent"])
left = {p.metadata.uid for p in core.list_namespaced_pod(NS, label_selector="app=agent").items}
check("orphaned pods stay", left == uids, (left, uids))
check("orphans have no owner", all(not p.metadata.owner_references for p in core.list_namespaced_pod(NS, label_selector="app=agent").items))

# A namespace and everything in it.
core.delete_namespace(NS)
until("the namespace gone", lambda: NS not in [n.metadata.name for n in core.list_namespace().items], timeout=90)

print("%d check(s) failed" % len(FAILED) if FAILED else "all checks passed")
sys.exit(1 if FAILED else 0)
