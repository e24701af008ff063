//! The scheduler's decision for one pod: the nodes it fits, the best of them, or why
//! none fits — in the words kube-scheduler uses, since users read them in
//! `kubectl describe pod` and in `FailedScheduling` events.

use std::collections::{BTreeMap, HashMap, HashSet};

use everynode_api::quantity::parse_milli;
use everynode_api::scheduling::{find_untolerated_taint, pod_matches_node, pod_requests};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};

/// What the pods already on a node take from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeUsage {
    /// Summed effective requests, in milli-units per resource name.
    pub requested: BTreeMap<String, i128>,
    /// Pods counted against the node's `pods` capacity.
    pub pods: usize,
    /// Host ports in use: (protocol, hostIP or "0.0.0.0", port) → how many pods hold it.
    pub host_ports: HashMap<(String, String, i32), usize>,
}

impl NodeUsage {
    /// Adds a pod that is bound to (or assumed on) the node.
    pub fn add(&mut self, spec: &PodSpec) {
        for (resource, amount) in pod_requests(spec) {
            *self.requested.entry(resource).or_default() += amount;
        }
        self.pods += 1;
        for port in host_ports(spec) {
            *self.host_ports.entry(port).or_default() += 1;
        }
    }

    /// Takes back what [`NodeUsage::add`] added for the same spec.
    pub fn remove(&mut self, spec: &PodSpec) {
        for (resource, amount) in pod_requests(spec) {
            if let Some(v) = self.requested.get_mut(&resource) {
                *v -= amount;
                if *v <= 0 {
                    self.requested.remove(&resource);
                }
            }
        }
        self.pods = self.pods.saturating_sub(1);
        for port in host_ports(spec) {
            if let Some(n) = self.host_ports.get_mut(&port) {
                *n -= 1;
                if *n == 0 {
                    self.host_ports.remove(&port);
                }
            }
        }
    }
}

/// A pod's host ports, normalized: protocol defaults to TCP, hostIP to 0.0.0.0.
pub fn host_ports(spec: &PodSpec) -> Vec<(String, String, i32)> {
    let mut out = Vec::new();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                let ip = p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into());
                out.push((proto, ip, hp));
            }
        }
    }
    out
}

fn ports_conflict(
    wanted: &[(String, String, i32)],
    used: &HashMap<(String, String, i32), usize>,
) -> bool {
    wanted.iter().any(|(proto, ip, port)| {
        used.keys().any(|(uproto, uip, uport)| {
            uproto == proto && uport == port && (uip == ip || uip == "0.0.0.0" || ip == "0.0.0.0")
        })
    })
}

/// Why a node was rejected (one node may have several resource shortfalls).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    Unschedulable,
    Taint { key: String, value: String },
    Affinity,
    Ports,
    Insufficient(String),
    TooManyPods,
}

impl Reject {
    fn text(&self) -> String {
        match self {
            Reject::Unschedulable => "node(s) were unschedulable".into(),
            Reject::Taint { key, value } => {
                format!("node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reject::Affinity => "node(s) didn't match Pod's node affinity/selector".into(),
            Reject::Ports => "node(s) didn't have free ports for the requested pod ports".into(),
            Reject::Insufficient(resource) => format!("Insufficient {resource}"),
            Reject::TooManyPods => "Too many pods".into(),
        }
    }

    /// Whether evicting lower-priority pods could help (only shortages of room can).
    fn preemption_may_help(&self) -> bool {
        matches!(
            self,
            Reject::Insufficient(_) | Reject::TooManyPods | Reject::Ports
        )
    }
}

/// The scheduler's verdict on one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Bind(String),
    Unschedulable(String),
}

/// The node names a pod's required affinity pins it to (`matchFields` on
/// `metadata.name`), as daemon pods carry: kube-scheduler filters on them first.
pub fn pinned_nodes(spec: &PodSpec) -> Option<HashSet<String>> {
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let mut names = HashSet::new();
    for term in terms {
        let fields = term.match_fields.as_ref()?;
        let pinned = fields
            .iter()
            .find(|f| f.key == "metadata.name" && f.operator == "In")?;
        names.extend(pinned.values.iter().flatten().cloned());
    }
    Some(names)
}

/// Checks one node; `Err` holds every reason it cannot take the pod.
pub fn fits(
    spec: &PodSpec,
    node: &Node,
    usage: &NodeUsage,
    pinned: Option<&HashSet<String>>,
) -> Result<(), Vec<Reject>> {
    let name = node.metadata.name.as_deref().unwrap_or("");
    if pinned.is_some_and(|p| !p.contains(name)) {
        return Err(vec![Reject::Affinity]);
    }
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let node_spec = node.spec.clone().unwrap_or_default();
    if node_spec.unschedulable == Some(true) {
        let unsched = k8s_openapi::api::core::v1::Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if find_untolerated_taint(std::slice::from_ref(&unsched), &tolerations, |_| true).is_some()
        {
            return Err(vec![Reject::Unschedulable]);
        }
    }
    let taints = node_spec.taints.unwrap_or_default();
    if let Some(t) = find_untolerated_taint(&taints, &tolerations, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    }) {
        return Err(vec![Reject::Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
        }]);
    }
    if !pod_matches_node(spec, node) {
        return Err(vec![Reject::Affinity]);
    }
    if ports_conflict(&host_ports(spec), &usage.host_ports) {
        return Err(vec![Reject::Ports]);
    }
    let allocatable = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone().or_else(|| s.capacity.clone()))
        .unwrap_or_default();
    let mut rejects = Vec::new();
    let max_pods = allocatable
        .get("pods")
        .and_then(|q| parse_milli(&q.0).ok())
        .map(|m| (m / 1000) as usize);
    if max_pods.is_some_and(|max| usage.pods + 1 > max) {
        rejects.push(Reject::TooManyPods);
    }
    for (resource, wanted) in pod_requests(spec) {
        if wanted <= 0 || resource == "pods" {
            continue;
        }
        let have = allocatable
            .get(&resource)
            .and_then(|q| parse_milli(&q.0).ok())
            .unwrap_or(0);
        let used = usage.requested.get(&resource).copied().unwrap_or(0);
        if used + wanted > have {
            rejects.push(Reject::Insufficient(resource));
        }
    }
    if rejects.is_empty() {
        Ok(())
    } else {
        Err(rejects)
    }
}

/// Least-allocated score in [0, 100]: the node with the most free cpu and memory wins.
fn score(spec: &PodSpec, node: &Node, usage: &NodeUsage) -> i128 {
    let allocatable = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    let requests = pod_requests(spec);
    let mut total = 0;
    for resource in ["cpu", "memory"] {
        let have = allocatable
            .get(resource)
            .and_then(|q| parse_milli(&q.0).ok())
            .unwrap_or(0);
        if have <= 0 {
            continue;
        }
        let used = usage.requested.get(resource).copied().unwrap_or(0)
            + requests.get(resource).copied().unwrap_or(0);
        total += (have - used).max(0) * 100 / have;
    }
    total / 2
}

/// Picks a node for `pod` among `nodes`, given what is already on each node.
pub fn schedule(pod: &Pod, nodes: &[&Node], usage: &HashMap<String, NodeUsage>) -> Decision {
    schedule_among(pod, nodes, nodes.len(), usage)
}

/// [`schedule`] over `candidates` only, the other `total - candidates.len()` nodes of the
/// cluster being known not to match the pod's node affinity. A daemon pod pins one node
/// by name, so the scheduler looks at that node alone instead of all of them (what
/// kube-scheduler's NodeAffinity pre-filter does).
pub fn schedule_among(
    pod: &Pod,
    candidates: &[&Node],
    total: usize,
    usage: &HashMap<String, NodeUsage>,
) -> Decision {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let pinned = pinned_nodes(spec);
    let none = NodeUsage::default();
    let mut best: Option<(i128, &str)> = None;
    let mut reasons: BTreeMap<Reject, usize> = BTreeMap::new();
    let mut preemption_helps = 0;
    let skipped = total.saturating_sub(candidates.len());
    if skipped > 0 {
        reasons.insert(Reject::Affinity, skipped);
    }
    for node in candidates {
        let name = node.metadata.name.as_deref().unwrap_or("");
        let u = usage.get(name).unwrap_or(&none);
        match fits(spec, node, u, pinned.as_ref()) {
            Ok(()) => {
                let s = score(spec, node, u);
                // Ties go to the alphabetically first node, so decisions are reproducible.
                if best.is_none_or(|(bs, bn)| s > bs || (s == bs && name < bn)) {
                    best = Some((s, name));
                }
            }
            Err(rs) => {
                if rs.iter().all(Reject::preemption_may_help) {
                    preemption_helps += 1;
                }
                for r in rs {
                    *reasons.entry(r).or_default() += 1;
                }
            }
        }
    }
    if let Some((_, name)) = best {
        return Decision::Bind(name.to_string());
    }
    Decision::Unschedulable(unschedulable_message(total, &reasons, preemption_helps))
}

/// kube-scheduler's summary: `0/3 nodes are available: 1 Insufficient memory, 2 node(s)
/// didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 1 No
/// preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.`
pub fn unschedulable_message(
    total: usize,
    reasons: &BTreeMap<Reject, usize>,
    preemption_helps: usize,
) -> String {
    if total == 0 {
        return "no nodes available to schedule pods".into();
    }
    let mut parts: Vec<String> = reasons
        .iter()
        .map(|(r, n)| format!("{n} {}", r.text()))
        .collect();
    parts.sort();
    let mut msg = format!("0/{total} nodes are available: {}.", parts.join(", "));
    // Every pod has the same priority here, so eviction never finds a victim.
    let mut pre = Vec::new();
    if preemption_helps > 0 {
        pre.push(format!(
            "{preemption_helps} No preemption victims found for incoming pod"
        ));
    }
    if total > preemption_helps {
        pre.push(format!(
            "{} Preemption is not helpful for scheduling",
            total - preemption_helps
        ));
    }
    msg.push_str(&format!(
        " preemption: 0/{total} nodes are available: {}.",
        pre.join(", ")
    ));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cpu: &str, memory: &str, extra: serde_json::Value) -> Node {
        let mut v = json!({
            "metadata": { "name": name, "labels": { "kubernetes.io/hostname": name } },
            "spec": {},
            "status": { "allocatable": { "cpu": cpu, "memory": memory, "pods": "110" } },
        });
        if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(v).expect("node")
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({ "metadata": { "name": "p", "namespace": "default" }, "spec": spec }),
        )
        .expect("pod")
    }

    fn requesting(memory: &str) -> Pod {
        pod(
            json!({ "containers": [{ "name": "c", "image": "i", "resources": { "requests": { "memory": memory } } }] }),
        )
    }

    fn pinned(memory: &str, node: &str) -> Pod {
        pod(json!({
            "containers": [{ "name": "c", "image": "i", "resources": { "requests": { "memory": memory } } }],
            "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [
                { "matchFields": [{ "key": "metadata.name", "operator": "In", "values": [node] }] }
            ] } } },
        }))
    }

    #[test]
    fn binds_to_the_least_loaded_fitting_node() {
        let (a, b) = (
            node("a", "4", "8Gi", json!({})),
            node("b", "4", "8Gi", json!({})),
        );
        let mut usage = HashMap::new();
        let mut ua = NodeUsage::default();
        ua.add(requesting("4Gi").spec.as_ref().expect("spec"));
        usage.insert("a".to_string(), ua);
        assert_eq!(
            schedule(&requesting("1Gi"), &[&a, &b], &usage),
            Decision::Bind("b".into())
        );
    }

    #[test]
    fn a_daemon_pod_too_big_for_its_node_says_insufficient_memory() {
        let nodes = [
            node("a", "4", "1Gi", json!({})),
            node("b", "4", "8Gi", json!({})),
            node("c", "4", "8Gi", json!({})),
        ];
        let refs: Vec<&Node> = nodes.iter().collect();
        let d = schedule(&pinned("2Gi", "a"), &refs, &HashMap::new());
        assert_eq!(
            d,
            Decision::Unschedulable(
                "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector. \
                 preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
                    .into()
            )
        );
    }

    #[test]
    fn taints_unschedulable_and_ports() {
        let tainted = node(
            "t",
            "4",
            "8Gi",
            json!({ "taints": [{ "key": "node-role.kubernetes.io/master", "effect": "NoSchedule" }] }),
        );
        let cordoned = node("u", "4", "8Gi", json!({ "unschedulable": true }));
        let refs = [&tainted, &cordoned];
        match schedule(&requesting("1Mi"), &refs, &HashMap::new()) {
            Decision::Unschedulable(m) => assert!(
                m.starts_with("0/2 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, 1 node(s) were unschedulable."),
                "{m}"
            ),
            d => panic!("{d:?}"),
        }
        let with_port = pod(
            json!({ "containers": [{ "name": "c", "image": "i", "ports": [{ "containerPort": 80, "hostPort": 8080 }] }] }),
        );
        let free = node("f", "4", "8Gi", json!({}));
        let mut usage = HashMap::new();
        let mut u = NodeUsage::default();
        u.add(with_port.spec.as_ref().expect("spec"));
        usage.insert("f".to_string(), u);
        assert!(
            matches!(schedule(&with_port, &[&free], &usage), Decision::Unschedulable(m) if m.contains("didn't have free ports"))
        );
    }

    #[test]
    fn tolerations_let_pods_onto_tainted_nodes() {
        let tainted = node(
            "t",
            "4",
            "8Gi",
            json!({ "taints": [{ "key": "node-role.kubernetes.io/master", "effect": "NoSchedule" }] }),
        );
        let tolerant = pod(json!({
            "containers": [{ "name": "c", "image": "i" }],
            "tolerations": [{ "key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule" }],
        }));
        assert_eq!(
            schedule(&tolerant, &[&tainted], &HashMap::new()),
            Decision::Bind("t".into())
        );
    }

    #[test]
    fn usage_add_and_remove_are_inverse() {
        let with_port = pod(
            json!({ "containers": [{ "name": "c", "image": "i", "ports": [{ "containerPort": 80, "hostPort": 8080 }],
            "resources": { "requests": { "memory": "1Gi", "cpu": "100m" } } }] }),
        );
        let spec = with_port.spec.as_ref().expect("spec");
        let mut u = NodeUsage::default();
        u.add(spec);
        u.add(spec);
        u.remove(spec);
        assert_eq!(u.pods, 1);
        assert_eq!(u.host_ports.len(), 1);
        u.remove(spec);
        assert_eq!(u, NodeUsage::default());
    }

    #[test]
    fn pinned_pods_are_judged_on_their_node_alone() {
        let a = node("a", "4", "1Gi", json!({}));
        let d = schedule_among(&pinned("2Gi", "a"), &[&a], 3, &HashMap::new());
        assert_eq!(
            d,
            schedule(
                &pinned("2Gi", "a"),
                &[
                    &a,
                    &node("b", "4", "8Gi", json!({})),
                    &node("c", "4", "8Gi", json!({}))
                ],
                &HashMap::new()
            )
        );
    }

    #[test]
    fn no_nodes_at_all() {
        assert_eq!(
            schedule(&requesting("1Mi"), &[], &HashMap::new()),
            Decision::Unschedulable("no nodes available to schedule pods".into())
        );
    }
}
