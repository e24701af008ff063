//! kube-apiserver's `meta.k8s.io/v1` Table columns and row cells, per resource.
//!
//! `kubectl get` (human output) asks the server for a Table; the column definitions and
//! the cells of each row come from here (compat doc §5). Facts mirror the printers that
//! kube-apiserver 1.32/1.33 registers for these types:
//!
//! - The server always renders *wide* rows: every column is present in every row, and
//!   kubectl hides the `priority > 0` ones unless `-o wide` is given. So
//!   [`row_cells`] returns exactly one cell per entry of [`columns`], in order.
//! - Cells are JSON strings, except counters, which are JSON integers. A few columns are
//!   declared `string` while the cell is an integer (events' Count, configmaps'/secrets'
//!   Data, serviceaccounts' Secrets, controllerrevisions' Revision); that is what the real
//!   server sends and kubectl prints either with `%v`.
//! - Ages are rendered with apimachinery's `HumanDuration` ([`human_duration`]); a missing
//!   timestamp shows as `<unknown>`.
//!
//! Objects arrive in their versioned JSON form (`serde_json::Value`); nothing here panics
//! on odd input: missing or mistyped fields read as empty / zero.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use crate::selector::{format_label_selector, format_labels};

/// One `columnDefinitions` entry of a Table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

// ---------------------------------------------------------------------------------------
// Column descriptions (the API field docs the real server puts there; kubectl ignores them).
// ---------------------------------------------------------------------------------------

const D_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const D_AGE: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const D_CONTAINERS: &str = "Names of each container in the template.";
const D_IMAGES: &str = "Images referenced by each container in the template.";

const D_DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const D_DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const D_DS_READY: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.";
const D_DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
const D_DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
const D_NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
const D_DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

const D_POD_READY: &str = "The aggregate readiness state of this pod for accepting traffic.";
const D_POD_STATUS: &str = "The aggregate status of the containers in this pod.";
const D_POD_RESTARTS: &str = "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.";
const D_POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
const D_POD_NODE: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const D_POD_NOMINATED: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const D_POD_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

const D_NODE_STATUS: &str = "The status of the node";
const D_NODE_ROLES: &str = "The roles of the node";
const D_NODE_VERSION: &str = "Kubelet Version reported by the node.";
const D_NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const D_NODE_OS: &str =
    "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
const D_NODE_KERNEL: &str =
    "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
const D_NODE_RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";

const D_CR_CONTROLLER: &str = "Controller of the object";
const D_CR_REVISION: &str = "Revision indicates the revision of the state represented by Data.";

const D_NS_STATUS: &str = "The status of the namespace";

const D_EV_LAST_SEEN: &str =
    "The time at which the most recent occurrence of this event was recorded.";
const D_EV_TYPE: &str =
    "Type of this event (Normal, Warning), new types could be added in the future";
const D_EV_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
const D_EV_OBJECT: &str = "The object that this event is about.";
const D_EV_SUBOBJECT: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
const D_EV_SOURCE: &str =
    "The component reporting this event. Should be a short machine understandable string.";
const D_EV_MESSAGE: &str = "A human-readable description of the status of this operation.";
const D_EV_FIRST_SEEN: &str =
    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
const D_EV_COUNT: &str = "The number of times this event has occurred.";

const D_LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";

const D_SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const D_SVC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const D_SVC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
const D_SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const D_SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";

const D_EP_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";

const D_EPS_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.";
const D_EPS_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.";
const D_EPS_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";

const D_CM_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const D_SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
const D_SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
const D_SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";

// ---------------------------------------------------------------------------------------
// Column tables.
// ---------------------------------------------------------------------------------------

/// The `Name` column (format `name`).
const fn name_col(priority: i32) -> Column {
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: D_NAME,
        priority,
    }
}

/// A column without a format.
const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
    priority: i32,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority,
    }
}

const AGE: Column = col("Age", "string", D_AGE, 0);

static DAEMONSET_COLUMNS: [Column; 11] = [
    name_col(0),
    col("Desired", "integer", D_DS_DESIRED, 0),
    col("Current", "integer", D_DS_CURRENT, 0),
    col("Ready", "integer", D_DS_READY, 0),
    col("Up-to-date", "integer", D_DS_UPDATED, 0),
    col("Available", "integer", D_DS_AVAILABLE, 0),
    col("Node Selector", "string", D_NODE_SELECTOR, 0),
    AGE,
    col("Containers", "string", D_CONTAINERS, 1),
    col("Images", "string", D_IMAGES, 1),
    col("Selector", "string", D_DS_SELECTOR, 1),
];

static POD_COLUMNS: [Column; 9] = [
    name_col(0),
    col("Ready", "string", D_POD_READY, 0),
    col("Status", "string", D_POD_STATUS, 0),
    col("Restarts", "string", D_POD_RESTARTS, 0),
    AGE,
    col("IP", "string", D_POD_IP, 1),
    col("Node", "string", D_POD_NODE, 1),
    col("Nominated Node", "string", D_POD_NOMINATED, 1),
    col("Readiness Gates", "string", D_POD_GATES, 1),
];

static NODE_COLUMNS: [Column; 10] = [
    name_col(0),
    col("Status", "string", D_NODE_STATUS, 0),
    col("Roles", "string", D_NODE_ROLES, 0),
    AGE,
    col("Version", "string", D_NODE_VERSION, 0),
    col("Internal-IP", "string", D_NODE_ADDRESSES, 1),
    col("External-IP", "string", D_NODE_ADDRESSES, 1),
    col("OS-Image", "string", D_NODE_OS, 1),
    col("Kernel-Version", "string", D_NODE_KERNEL, 1),
    col("Container-Runtime", "string", D_NODE_RUNTIME, 1),
];

static CONTROLLER_REVISION_COLUMNS: [Column; 4] = [
    name_col(0),
    col("Controller", "string", D_CR_CONTROLLER, 0),
    col("Revision", "string", D_CR_REVISION, 0),
    AGE,
];

static NAMESPACE_COLUMNS: [Column; 3] = [name_col(0), col("Status", "string", D_NS_STATUS, 0), AGE];

static EVENT_COLUMNS: [Column; 10] = [
    col("Last Seen", "string", D_EV_LAST_SEEN, 0),
    col("Type", "string", D_EV_TYPE, 0),
    col("Reason", "string", D_EV_REASON, 0),
    col("Object", "string", D_EV_OBJECT, 0),
    col("Subobject", "string", D_EV_SUBOBJECT, 1),
    col("Source", "string", D_EV_SOURCE, 1),
    col("Message", "string", D_EV_MESSAGE, 0),
    col("First Seen", "string", D_EV_FIRST_SEEN, 1),
    col("Count", "string", D_EV_COUNT, 1),
    name_col(1),
];

const D_CSR_SIGNER: &str = "signerName indicates the requested signer, and is a qualified name.";
const D_CSR_REQUESTOR: &str = "username contains the name of the user that created the CertificateSigningRequest. Populated by the API server on creation and immutable.";
const D_CSR_DURATION: &str =
    "expirationSeconds is the requested duration of validity of the issued certificate.";
const D_CSR_CONDITION: &str = "conditions applied to the request. Known conditions are \"Approved\", \"Denied\", and \"Failed\".";

static CSR_COLUMNS: [Column; 6] = [
    name_col(0),
    AGE,
    col("SignerName", "string", D_CSR_SIGNER, 0),
    col("Requestor", "string", D_CSR_REQUESTOR, 0),
    col("RequestedDuration", "string", D_CSR_DURATION, 0),
    col("Condition", "string", D_CSR_CONDITION, 0),
];

static LEASE_COLUMNS: [Column; 3] = [name_col(0), col("Holder", "string", D_LEASE_HOLDER, 0), AGE];

static SERVICE_COLUMNS: [Column; 7] = [
    name_col(0),
    col("Type", "string", D_SVC_TYPE, 0),
    col("Cluster-IP", "string", D_SVC_CLUSTER_IP, 0),
    col("External-IP", "string", D_SVC_EXTERNAL_IPS, 0),
    col("Port(s)", "string", D_SVC_PORTS, 0),
    AGE,
    col("Selector", "string", D_SVC_SELECTOR, 1),
];

static ENDPOINTS_COLUMNS: [Column; 3] = [
    name_col(0),
    col("Endpoints", "string", D_EP_SUBSETS, 0),
    AGE,
];

static ENDPOINT_SLICE_COLUMNS: [Column; 5] = [
    name_col(0),
    col("AddressType", "string", D_EPS_ADDRESS_TYPE, 0),
    col("Ports", "string", D_EPS_PORTS, 0),
    col("Endpoints", "string", D_EPS_ENDPOINTS, 0),
    AGE,
];

static CONFIGMAP_COLUMNS: [Column; 3] = [name_col(0), col("Data", "string", D_CM_DATA, 0), AGE];

static SECRET_COLUMNS: [Column; 4] = [
    name_col(0),
    col("Type", "string", D_SECRET_TYPE, 0),
    col("Data", "string", D_SECRET_DATA, 0),
    AGE,
];

static SERVICE_ACCOUNT_COLUMNS: [Column; 3] =
    [name_col(0), col("Secrets", "string", D_SA_SECRETS, 0), AGE];

const D_RB_ROLE: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";
const D_CRB_ROLE: &str = "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";

static ROLE_BINDING_COLUMNS: [Column; 6] = [
    name_col(0),
    col("Role", "string", D_RB_ROLE, 0),
    AGE,
    col("Users", "string", "Users in the roleBinding", 1),
    col("Groups", "string", "Groups in the roleBinding", 1),
    col(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
        1,
    ),
];

static CLUSTER_ROLE_BINDING_COLUMNS: [Column; 6] = [
    name_col(0),
    col("Role", "string", D_CRB_ROLE, 0),
    AGE,
    col("Users", "string", "Users in the clusterRoleBinding", 1),
    col("Groups", "string", "Groups in the clusterRoleBinding", 1),
    col(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
        1,
    ),
];

const D_PC_VALUE: &str = "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.";
const D_PC_GLOBAL_DEFAULT: &str = "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.";
const D_PC_PREEMPTION: &str = "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.";

static PRIORITY_CLASS_COLUMNS: [Column; 5] = [
    name_col(0),
    col("Value", "integer", D_PC_VALUE, 0),
    col("Global-Default", "boolean", D_PC_GLOBAL_DEFAULT, 0),
    AGE,
    col("PreemptionPolicy", "string", D_PC_PREEMPTION, 0),
];

/// The Table columns kube-apiserver uses for resource `plural`, or `None` when it has no
/// printer for it (the server then uses `Name` + `Created At`, see [`default_row_cells`]).
pub fn columns(plural: &str) -> Option<&'static [Column]> {
    let cols: &'static [Column] = match plural {
        "daemonsets" => &DAEMONSET_COLUMNS,
        "pods" => &POD_COLUMNS,
        "nodes" => &NODE_COLUMNS,
        "controllerrevisions" => &CONTROLLER_REVISION_COLUMNS,
        "namespaces" => &NAMESPACE_COLUMNS,
        "events" => &EVENT_COLUMNS,
        "leases" => &LEASE_COLUMNS,
        "certificatesigningrequests" => &CSR_COLUMNS,
        "services" => &SERVICE_COLUMNS,
        "endpoints" => &ENDPOINTS_COLUMNS,
        "endpointslices" => &ENDPOINT_SLICE_COLUMNS,
        "configmaps" => &CONFIGMAP_COLUMNS,
        "secrets" => &SECRET_COLUMNS,
        "serviceaccounts" => &SERVICE_ACCOUNT_COLUMNS,
        "rolebindings" => &ROLE_BINDING_COLUMNS,
        "clusterrolebindings" => &CLUSTER_ROLE_BINDING_COLUMNS,
        "priorityclasses" => &PRIORITY_CLASS_COLUMNS,
        _ => return None,
    };
    Some(cols)
}

/// The cells of `obj`'s row, one per entry of [`columns`]`(plural)` in the same order.
/// `obj` is in its API (versioned JSON) form; events in the core/v1 shape. For a plural
/// without a printer this is [`default_row_cells`].
pub fn row_cells(plural: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
    match plural {
        "daemonsets" => daemonset_row(obj, now),
        "pods" => pod_row(obj, now),
        "nodes" => node_row(obj, now),
        "controllerrevisions" => controller_revision_row(obj, now),
        "namespaces" => namespace_row(obj, now),
        "events" => event_row(obj, now),
        "leases" => lease_row(obj, now),
        "certificatesigningrequests" => csr_row(obj, now),
        "services" => service_row(obj, now),
        "endpoints" => endpoints_row(obj, now),
        "endpointslices" => endpoint_slice_row(obj, now),
        "configmaps" => configmap_row(obj, now),
        "secrets" => secret_row(obj, now),
        "serviceaccounts" => service_account_row(obj, now),
        "rolebindings" | "clusterrolebindings" => binding_row(obj, now),
        "priorityclasses" => priority_class_row(obj, now),
        _ => default_row_cells(obj),
    }
}

/// Cells for the server's fallback columns `Name` and `Created At`: the name and the
/// creation time as RFC 3339 in UTC with whole seconds (Go's zero time when unset).
pub fn default_row_cells(obj: &Value) -> Vec<Value> {
    let created = match obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
    {
        None => GO_ZERO_TIME_RFC3339.to_string(),
        Some(raw) => match raw.parse::<Timestamp>() {
            Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            // Not a timestamp the real server could have stored; show it as it is.
            Err(_) => raw.to_string(),
        },
    };
    vec![Value::from(obj_name(obj)), Value::from(created)]
}

// ---------------------------------------------------------------------------------------
// Ages.
// ---------------------------------------------------------------------------------------

const GO_ZERO_TIME_RFC3339: &str = "0001-01-01T00:00:00Z";
/// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which `metav1.Time`
/// treats as "unset".
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;

/// apimachinery's `duration.HumanDuration`: a short age with 2–3 significant figures,
/// e.g. `45s`, `90s`, `5m30s`, `15m`, `3h5m`, `10h`, `3d5h`, `8d`, `2y30d`, `9y`.
/// Up to a second in the future still reads `0s` (clock skew); further is `<invalid>`.
/// Durations saturate at Go's `time.Duration` range (about 292 years).
pub fn human_duration(d: SignedDuration) -> String {
    // Go's time.Duration is an i64 nanosecond count and `Time.Sub` saturates.
    let nanos =
        i64::try_from(d.as_nanos()).unwrap_or(if d.is_negative() { i64::MIN } else { i64::MAX });
    // Integer division truncates toward zero, as Go's int(d.Seconds()) does.
    let seconds = nanos / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 2 * 60 {
        return format!("{seconds}s");
    }
    let minutes = nanos / NANOS_PER_MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = nanos / NANOS_PER_HOUR;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dy}d")
        };
    }
    format!("{years}y")
}

/// A `metav1.Time`/`MicroTime` field: `None` when missing, null, unparsable or Go's zero time.
fn time_at(obj: &Value, ptr: &str) -> Option<Timestamp> {
    let ts = obj.pointer(ptr)?.as_str()?.parse::<Timestamp>().ok()?;
    (ts.as_second() != GO_ZERO_TIME_UNIX).then_some(ts)
}

/// kubectl's `translateTimestampSince`: the human age of `ts`, `<unknown>` if unset.
fn since(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        Some(ts) => human_duration(now.duration_since(ts)),
        None => "<unknown>".to_string(),
    }
}

fn age(obj: &Value, now: Timestamp) -> Value {
    Value::from(since(time_at(obj, "/metadata/creationTimestamp"), now))
}

// ---------------------------------------------------------------------------------------
// Lenient JSON accessors.
// ---------------------------------------------------------------------------------------

/// The value at `ptr`, treating JSON `null` as absent (Go decodes it to a nil pointer).
fn present<'a>(obj: &'a Value, ptr: &str) -> Option<&'a Value> {
    obj.pointer(ptr).filter(|v| !v.is_null())
}

fn str_at<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn int_at(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn bool_at(obj: &Value, ptr: &str) -> bool {
    obj.pointer(ptr).and_then(Value::as_bool).unwrap_or(false)
}

fn arr_at<'a>(obj: &'a Value, ptr: &str) -> &'a [Value] {
    obj.pointer(ptr)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Number of entries of the JSON object at `ptr` (0 if absent).
fn map_len(obj: &Value, ptr: &str) -> usize {
    obj.pointer(ptr)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

/// A `map[string]string` field; non-string values are skipped.
fn string_map(obj: &Value, ptr: &str) -> BTreeMap<String, String> {
    obj.pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn obj_name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "<unknown>".to_string()
    } else {
        s.to_string()
    }
}

/// Container names and images, each comma-joined (`layoutContainerCells`).
fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `metav1.FormatLabelSelector` of the `LabelSelector` at `ptr`: `<none>` when absent or
/// empty, `<error>` when it cannot even be decoded.
fn label_selector_cell(obj: &Value, ptr: &str) -> String {
    match present(obj, ptr) {
        None => format_label_selector(&LabelSelector::default()),
        Some(v) => match serde_json::from_value::<LabelSelector>(v.clone()) {
            Ok(sel) => format_label_selector(&sel),
            Err(_) => "<error>".to_string(),
        },
    }
}

// ---------------------------------------------------------------------------------------
// daemonsets
// ---------------------------------------------------------------------------------------

fn daemonset_row(ds: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(ds, "/spec/template/spec/containers"));
    vec![
        Value::from(obj_name(ds)),
        Value::from(int_at(ds, "/status/desiredNumberScheduled")),
        Value::from(int_at(ds, "/status/currentNumberScheduled")),
        Value::from(int_at(ds, "/status/numberReady")),
        Value::from(int_at(ds, "/status/updatedNumberScheduled")),
        Value::from(int_at(ds, "/status/numberAvailable")),
        Value::from(format_labels(&string_map(
            ds,
            "/spec/template/spec/nodeSelector",
        ))),
        age(ds, now),
        Value::from(names),
        Value::from(images),
        Value::from(label_selector_cell(ds, "/spec/selector")),
    ]
}

// ---------------------------------------------------------------------------------------
// pods
// ---------------------------------------------------------------------------------------

/// An init container with `restartPolicy: Always` (a sidecar).
fn is_restartable_init_container(c: &Value) -> bool {
    str_at(c, "/restartPolicy") == "Always"
}

/// Keep the later of the two restart times (an unset one never wins).
fn keep_latest(current: &mut Option<Timestamp>, candidate: Option<Timestamp>) {
    if let Some(c) = candidate
        && current.is_none_or(|cur| cur < c)
    {
        *current = Some(c);
    }
}

/// When a container status last terminated (`lastState.terminated.finishedAt`).
fn last_termination(status: &Value) -> Option<Timestamp> {
    present(status, "/lastState/terminated")?;
    time_at(status, "/lastState/terminated/finishedAt")
}

fn has_condition(pod: &Value, type_: &str, status: &str) -> bool {
    arr_at(pod, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == type_ && str_at(c, "/status") == status)
}

/// The first `Initialized` condition decides (kubectl's `isPodInitializedConditionTrue`).
fn pod_initialized(pod: &Value) -> bool {
    arr_at(pod, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Initialized")
        .is_some_and(|c| str_at(c, "/status") == "True")
}

/// The summary printers.go computes for a pod: (ready, total, status reason, restarts cell).
struct PodSummary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: String,
}

fn summarize_pod(pod: &Value, now: Timestamp) -> PodSummary {
    let init_specs = arr_at(pod, "/spec/initContainers");
    let total = arr_at(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| is_restartable_init_container(c))
            .count();
    let mut ready = 0usize;

    let phase = str_at(pod, "/status/phase");
    let status_reason = str_at(pod, "/status/reason");
    let mut reason = if status_reason.is_empty() {
        phase
    } else {
        status_reason
    }
    .to_string();

    // A pod held back by scheduling gates says so.
    if arr_at(pod, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    // Init containers: the first one that has not finished successfully (and is not a
    // started sidecar) decides the status.
    let mut initializing = false;
    for (i, cs) in arr_at(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let restart_count = int_at(cs, "/restartCount");
        let terminated_at = last_termination(cs);
        restarts += restart_count;
        keep_latest(&mut last_restart, terminated_at);

        let name = str_at(cs, "/name");
        let restartable = init_specs
            .iter()
            .find(|c| str_at(c, "/name") == name)
            .is_some_and(is_restartable_init_container);
        if restartable {
            sidecar_restarts += restart_count;
            keep_latest(&mut last_sidecar_restart, terminated_at);
        }

        let terminated = present(cs, "/state/terminated");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if restartable && bool_at(cs, "/started") {
            if bool_at(cs, "/ready") {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = str_at(cs, "/state/waiting/reason");
        reason = if let Some(t) = terminated {
            let r = str_at(t, "/reason");
            let signal = int_at(t, "/signal");
            if !r.is_empty() {
                format!("Init:{r}")
            } else if signal != 0 {
                format!("Init:Signal:{signal}")
            } else {
                format!("Init:ExitCode:{}", int_at(t, "/exitCode"))
            }
        } else if present(cs, "/state/waiting").is_some()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || pod_initialized(pod) {
        // Past initialization only sidecar restarts still count from the init containers.
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts += int_at(cs, "/restartCount");
            keep_latest(&mut last_restart, last_termination(cs));

            let waiting_reason = str_at(cs, "/state/waiting/reason");
            let terminated = present(cs, "/state/terminated");
            if present(cs, "/state/waiting").is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = str_at(t, "/reason");
                let signal = int_at(t, "/signal");
                reason = if !r.is_empty() {
                    r.to_string()
                } else if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int_at(t, "/exitCode"))
                };
            } else if bool_at(cs, "/ready") && present(cs, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // Some containers completed but others still run: the pod is not "Completed".
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready", "True") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if present(pod, "/metadata/deletionTimestamp").is_some() {
        if status_reason == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts = if restarts != 0
        && let Some(at) = last_restart
    {
        format!("{restarts} ({} ago)", since(Some(at), now))
    } else {
        restarts.to_string()
    };

    PodSummary {
        ready,
        total,
        reason,
        restarts,
    }
}

/// The pod's primary IP: `status.podIP` wins over `status.podIPs[0]` (as the v1 → internal
/// conversion decides).
fn pod_ip(pod: &Value) -> &str {
    let ip = str_at(pod, "/status/podIP");
    if ip.is_empty() {
        str_at(pod, "/status/podIPs/0/ip")
    } else {
        ip
    }
}

fn readiness_gates_cell(pod: &Value) -> String {
    let gates = arr_at(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = arr_at(pod, "/status/conditions");
    let true_count = gates
        .iter()
        .filter(|g| {
            let t = str_at(g, "/conditionType");
            conditions
                .iter()
                .find(|c| str_at(c, "/type") == t)
                .is_some_and(|c| str_at(c, "/status") == "True")
        })
        .count();
    format!("{true_count}/{}", gates.len())
}

fn pod_row(pod: &Value, now: Timestamp) -> Vec<Value> {
    let s = summarize_pod(pod, now);
    vec![
        Value::from(obj_name(pod)),
        Value::from(format!("{}/{}", s.ready, s.total)),
        Value::from(s.reason),
        Value::from(s.restarts),
        age(pod, now),
        Value::from(or_none(pod_ip(pod))),
        Value::from(or_none(str_at(pod, "/spec/nodeName"))),
        Value::from(or_none(str_at(pod, "/status/nominatedNodeName"))),
        Value::from(readiness_gates_cell(pod)),
    ]
}

// ---------------------------------------------------------------------------------------
// nodes
// ---------------------------------------------------------------------------------------

const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

fn node_status_cell(node: &Value) -> String {
    // The last Ready condition wins, as with the map the printer builds.
    let ready = arr_at(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready");
    let mut status = match ready {
        Some(c) if str_at(c, "/status") == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if bool_at(node, "/spec/unschedulable") {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles_cell(node: &Value) -> String {
    let mut roles = std::collections::BTreeSet::new();
    for (k, v) in string_map(node, "/metadata/labels") {
        if let Some(role) = k.strip_prefix(NODE_ROLE_PREFIX) {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == NODE_ROLE_LABEL && !v.is_empty() {
            roles.insert(v);
        }
    }
    if roles.is_empty() {
        return "<none>".to_string();
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}

fn node_address(node: &Value, type_: &str) -> String {
    arr_at(node, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == type_)
        .map_or_else(
            || "<none>".to_string(),
            |a| str_at(a, "/address").to_string(),
        )
}

fn node_row(node: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        Value::from(obj_name(node)),
        Value::from(node_status_cell(node)),
        Value::from(node_roles_cell(node)),
        age(node, now),
        Value::from(str_at(node, "/status/nodeInfo/kubeletVersion")),
        Value::from(node_address(node, "InternalIP")),
        Value::from(node_address(node, "ExternalIP")),
        Value::from(or_unknown(str_at(node, "/status/nodeInfo/osImage"))),
        Value::from(or_unknown(str_at(node, "/status/nodeInfo/kernelVersion"))),
        Value::from(or_unknown(str_at(
            node,
            "/status/nodeInfo/containerRuntimeVersion",
        ))),
    ]
}

// ---------------------------------------------------------------------------------------
// controllerrevisions
// ---------------------------------------------------------------------------------------

/// `<lowercase kind>.<group>/<name>` of the controlling ownerReference (`<kind>/<name>` for
/// the core group), `<none>` without one.
fn controller_cell(obj: &Value) -> String {
    let Some(owner) = arr_at(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| bool_at(r, "/controller"))
    else {
        return "<none>".to_string();
    };
    let kind = str_at(owner, "/kind");
    let name = str_at(owner, "/name");
    // The group is what precedes the version in apiVersion ("apps/v1"; "v1" is core).
    // kube-apiserver fails the request on an apiVersion with more than one '/'; here the
    // text before the first '/' is taken instead.
    let group = str_at(owner, "/apiVersion")
        .split_once('/')
        .map_or("", |(g, _)| g);
    if kind.is_empty() && group.is_empty() {
        return name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{name}", group_kind.to_lowercase())
}

fn controller_revision_row(cr: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        Value::from(obj_name(cr)),
        Value::from(controller_cell(cr)),
        Value::from(int_at(cr, "/revision")),
        age(cr, now),
    ]
}

// ---------------------------------------------------------------------------------------
// namespaces, leases
// ---------------------------------------------------------------------------------------

fn namespace_row(ns: &Value, now: Timestamp) -> Vec<Value> {
    // The real server always sets the phase on create (Active); assume it if missing.
    let phase = match str_at(ns, "/status/phase") {
        "" => "Active",
        p => p,
    };
    vec![Value::from(obj_name(ns)), Value::from(phase), age(ns, now)]
}

fn lease_row(lease: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        Value::from(obj_name(lease)),
        Value::from(str_at(lease, "/spec/holderIdentity")),
        age(lease, now),
    ]
}

/// kubectl's CSR row: the condition cell lists Approved/Denied/Failed, then `Issued`
/// once a certificate is there; `Pending` when none of these.
fn csr_row(csr: &Value, now: Timestamp) -> Vec<Value> {
    let mut conds: Vec<&str> = csr
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("type").and_then(Value::as_str))
                .filter(|t| matches!(*t, "Approved" | "Denied" | "Failed"))
                .collect()
        })
        .unwrap_or_default();
    if !str_at(csr, "/status/certificate").is_empty() {
        conds.push("Issued");
    }
    let condition = if conds.is_empty() {
        "Pending".to_string()
    } else {
        conds.join(",")
    };
    let duration = match present(csr, "/spec/expirationSeconds").and_then(Value::as_i64) {
        Some(secs) => human_duration(SignedDuration::from_secs(secs)),
        None => "<none>".to_string(),
    };
    vec![
        Value::from(obj_name(csr)),
        age(csr, now),
        Value::from(str_at(csr, "/spec/signerName")),
        Value::from(str_at(csr, "/spec/username")),
        Value::from(duration),
        Value::from(condition),
    ]
}

// ---------------------------------------------------------------------------------------
// events (core/v1 shape)
// ---------------------------------------------------------------------------------------

fn event_source_cell(ev: &Value) -> String {
    let first_non_empty = |a: &'static str, b: &'static str| {
        let v = str_at(ev, a);
        if v.is_empty() { str_at(ev, b) } else { v }
    };
    let component = first_non_empty("/source/component", "/reportingComponent");
    let host = first_non_empty("/source/host", "/reportingInstance");
    if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    }
}

fn event_row(ev: &Value, now: Timestamp) -> Vec<Value> {
    let first_seen = match time_at(ev, "/firstTimestamp") {
        Some(t) => since(Some(t), now),
        None => since(time_at(ev, "/eventTime"), now),
    };
    let mut last_seen = match time_at(ev, "/lastTimestamp") {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = int_at(ev, "/count");
    if present(ev, "/series").is_some() {
        last_seen = since(time_at(ev, "/series/lastObservedTime"), now);
        count = int_at(ev, "/series/count");
    } else if count == 0 {
        // Singleton events from the events.k8s.io API carry no count.
        count = 1;
    }

    let kind = str_at(ev, "/involvedObject/kind").to_lowercase();
    let involved_name = str_at(ev, "/involvedObject/name");
    let object = if involved_name.is_empty() {
        kind
    } else {
        format!("{kind}/{involved_name}")
    };

    vec![
        Value::from(last_seen),
        Value::from(str_at(ev, "/type")),
        Value::from(str_at(ev, "/reason")),
        Value::from(object),
        Value::from(str_at(ev, "/involvedObject/fieldPath")),
        Value::from(event_source_cell(ev)),
        Value::from(str_at(ev, "/message").trim()),
        Value::from(first_seen),
        Value::from(count),
        Value::from(obj_name(ev)),
    ]
}

// ---------------------------------------------------------------------------------------
// services, endpoints, endpointslices
// ---------------------------------------------------------------------------------------

fn strings_at<'a>(obj: &'a Value, ptr: &str) -> Vec<&'a str> {
    arr_at(obj, ptr).iter().filter_map(Value::as_str).collect()
}

/// Load-balancer ingress points: IP, else hostname; sorted and de-duplicated. The server
/// renders wide rows, so the list is never clipped.
fn load_balancer_ingress(svc: &Value) -> Vec<String> {
    let mut set = std::collections::BTreeSet::new();
    for ing in arr_at(svc, "/status/loadBalancer/ingress") {
        let ip = str_at(ing, "/ip");
        let host = str_at(ing, "/hostname");
        if !ip.is_empty() {
            set.insert(ip.to_string());
        } else if !host.is_empty() {
            set.insert(host.to_string());
        }
    }
    set.into_iter().collect()
}

fn service_external_ip(svc: &Value, type_: &str) -> String {
    let external_ips = strings_at(svc, "/spec/externalIPs");
    match type_ {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut all = load_balancer_ingress(svc);
            if all.is_empty() && external_ips.is_empty() {
                return "<pending>".to_string();
            }
            all.extend(external_ips.iter().map(|s| s.to_string()));
            all.join(",")
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_ports_cell(svc: &Value) -> String {
    let ports: Vec<String> = arr_at(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "/port");
            let node_port = int_at(p, "/nodePort");
            let protocol = match str_at(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    }
}

fn service_row(svc: &Value, now: Timestamp) -> Vec<Value> {
    // Defaulting makes ClusterIP explicit on a real server; assume it if missing.
    let type_ = match str_at(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    // clusterIP wins over clusterIPs[0], as in the v1 -> internal conversion.
    let cluster_ip = match str_at(svc, "/spec/clusterIP") {
        "" => str_at(svc, "/spec/clusterIPs/0"),
        ip => ip,
    };
    vec![
        Value::from(obj_name(svc)),
        Value::from(type_),
        Value::from(or_none(cluster_ip)),
        Value::from(service_external_ip(svc, type_)),
        Value::from(service_ports_cell(svc)),
        age(svc, now),
        Value::from(format_labels(&string_map(svc, "/spec/selector"))),
    ]
}

/// Go's `net.JoinHostPort`: IPv6 literals are bracketed.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// At most three entries, then ` + N more...`.
const MAX_LISTED: usize = 3;

fn endpoints_cell(ep: &Value) -> String {
    let subsets = arr_at(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports: list bare IPs.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX_LISTED {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX_LISTED {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, "/ip"), int_at(p, "/port")));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX_LISTED)
    } else {
        joined
    }
}

/// Shared tail of the endpoint-slice list cells: `<unset>` when empty.
fn list_with_more(list: &[String], more: bool, count: usize) -> String {
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX_LISTED)
    } else if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

fn endpoint_slice_ports_cell(eps: &Value) -> String {
    let ports = arr_at(eps, "/ports");
    let list: Vec<String> = ports
        .iter()
        .take(MAX_LISTED)
        .map(|p| match present(p, "/port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => match present(p, "/name").and_then(Value::as_str) {
                Some(name) => name.to_string(),
                None => "*".to_string(),
            },
        })
        .collect();
    list_with_more(&list, ports.len() > MAX_LISTED, ports.len())
}

fn endpoint_slice_endpoints_cell(eps: &Value) -> String {
    let addresses: Vec<&str> = arr_at(eps, "/endpoints")
        .iter()
        .flat_map(|e| strings_at(e, "/addresses"))
        .collect();
    let list: Vec<String> = addresses
        .iter()
        .take(MAX_LISTED)
        .map(|s| s.to_string())
        .collect();
    list_with_more(&list, addresses.len() > MAX_LISTED, addresses.len())
}

fn endpoints_row(ep: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        Value::from(obj_name(ep)),
        Value::from(endpoints_cell(ep)),
        age(ep, now),
    ]
}

fn endpoint_slice_row(eps: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        Value::from(obj_name(eps)),
        Value::from(str_at(eps, "/addressType")),
        Value::from(endpoint_slice_ports_cell(eps)),
        Value::from(endpoint_slice_endpoints_cell(eps)),
        age(eps, now),
    ]
}

// ---------------------------------------------------------------------------------------
// configmaps, secrets, serviceaccounts
// ---------------------------------------------------------------------------------------

fn configmap_row(cm: &Value, now: Timestamp) -> Vec<Value> {
    let data = map_len(cm, "/data") + map_len(cm, "/binaryData");
    vec![Value::from(obj_name(cm)), Value::from(data), age(cm, now)]
}

fn secret_row(secret: &Value, now: Timestamp) -> Vec<Value> {
    // Defaulting makes the type explicit (Opaque) on a real server.
    let type_ = match str_at(secret, "/type") {
        "" => "Opaque",
        t => t,
    };
    // The server folds write-only stringData into data; count the union of keys.
    let mut keys: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for ptr in ["/data", "/stringData"] {
        if let Some(m) = secret.pointer(ptr).and_then(Value::as_object) {
            keys.extend(m.keys().map(String::as_str));
        }
    }
    vec![
        Value::from(obj_name(secret)),
        Value::from(type_),
        Value::from(keys.len()),
        age(secret, now),
    ]
}

fn service_account_row(sa: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        Value::from(obj_name(sa)),
        Value::from(arr_at(sa, "/secrets").len()),
        age(sa, now),
    ]
}

// ---------------------------------------------------------------------------------------
// rolebindings, clusterrolebindings, priorityclasses
// ---------------------------------------------------------------------------------------

/// `Kind/name` of the role, then (wide) the users, groups and service accounts.
fn binding_row(b: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(b, "/roleRef/kind"),
        str_at(b, "/roleRef/name")
    );
    let subjects: Vec<k8s_openapi::api::rbac::v1::Subject> = b
        .get("subjects")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let (users, groups, sas) = crate::rbac::subjects_strings(&subjects);
    vec![
        Value::from(obj_name(b)),
        Value::from(role),
        age(b, now),
        Value::from(users),
        Value::from(groups),
        Value::from(sas),
    ]
}

fn priority_class_row(pc: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        Value::from(obj_name(pc)),
        Value::from(int_at(pc, "/value")),
        Value::from(bool_at(pc, "/globalDefault")),
        age(pc, now),
        Value::from(str_at(pc, "/preemptionPolicy")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2025-06-01T12:00:00Z".parse().expect("valid timestamp")
    }

    /// RFC 3339 time `secs` seconds before [`now`].
    fn ago(secs: i64) -> String {
        now()
            .checked_sub(SignedDuration::from_secs(secs))
            .expect("in range")
            .to_string()
    }

    const MIN: i64 = 60;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    /// Cells as kubectl prints them (`%v`), for comparing with real output.
    fn printed(cells: &[Value]) -> Vec<String> {
        cells
            .iter()
            .map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    /// Split a kubectl header line into column titles (they are separated by 2+ spaces).
    fn header_titles(line: &str) -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn upper_names(plural: &str) -> Vec<String> {
        columns(plural)
            .expect("has columns")
            .iter()
            .map(|c| c.name.to_uppercase())
            .collect()
    }

    // -----------------------------------------------------------------------------------
    // HumanDuration
    // -----------------------------------------------------------------------------------

    #[test]
    fn csr_rows() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let base = json!({ "metadata": { "name": "node-csr-x", "creationTimestamp": "2026-01-01T00:00:00Z" },
            "spec": { "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                      "username": "system:bootstrap:abcdef" } });
        let cells = row_cells("certificatesigningrequests", &base, now);
        assert_eq!(
            cells,
            [
                "node-csr-x",
                "60m",
                "kubernetes.io/kube-apiserver-client-kubelet",
                "system:bootstrap:abcdef",
                "<none>",
                "Pending"
            ]
        );
        let mut issued = base.clone();
        issued["spec"]["expirationSeconds"] = json!(86400);
        issued["status"] = json!({ "conditions": [{ "type": "Approved", "status": "True" }],
                                   "certificate": "LS0t" });
        let cells = row_cells("certificatesigningrequests", &issued, now);
        assert_eq!(cells[4], "24h");
        assert_eq!(cells[5], "Approved,Issued");
    }

    #[test]
    fn human_duration_table() {
        let cases: &[(SignedDuration, &str)] = &[
            (SignedDuration::from_secs(-3), "<invalid>"),
            (SignedDuration::from_secs(-2), "<invalid>"),
            (SignedDuration::from_millis(-1999), "0s"),
            (SignedDuration::from_secs(-1), "0s"),
            (SignedDuration::from_millis(-500), "0s"),
            (SignedDuration::ZERO, "0s"),
            (SignedDuration::from_millis(999), "0s"),
            (SignedDuration::from_secs(1), "1s"),
            (SignedDuration::from_secs(59), "59s"),
            (SignedDuration::from_secs(60), "60s"),
            (SignedDuration::from_secs(90), "90s"),
            (SignedDuration::from_secs(119), "119s"),
            (SignedDuration::from_millis(119_999), "119s"),
            (SignedDuration::from_secs(120), "2m"),
            (SignedDuration::from_secs(121), "2m1s"),
            (SignedDuration::from_secs(5 * MIN + 30), "5m30s"),
            (SignedDuration::from_secs(9 * MIN + 59), "9m59s"),
            (SignedDuration::from_secs(10 * MIN), "10m"),
            (SignedDuration::from_secs(10 * MIN + 30), "10m"),
            (SignedDuration::from_secs(15 * MIN), "15m"),
            (SignedDuration::from_secs(179 * MIN + 59), "179m"),
            (SignedDuration::from_secs(3 * HOUR), "3h"),
            (SignedDuration::from_secs(3 * HOUR + 5 * MIN), "3h5m"),
            (SignedDuration::from_secs(3 * HOUR + 5 * MIN + 59), "3h5m"),
            (SignedDuration::from_secs(7 * HOUR + 59 * MIN), "7h59m"),
            (SignedDuration::from_secs(8 * HOUR), "8h"),
            (SignedDuration::from_secs(8 * HOUR + 30 * MIN), "8h"),
            (SignedDuration::from_secs(10 * HOUR), "10h"),
            (SignedDuration::from_secs(47 * HOUR + 59 * MIN), "47h"),
            (SignedDuration::from_secs(2 * DAY), "2d"),
            (SignedDuration::from_secs(3 * DAY), "3d"),
            (SignedDuration::from_secs(3 * DAY + 5 * HOUR), "3d5h"),
            (
                SignedDuration::from_secs(7 * DAY + 23 * HOUR + 59 * MIN),
                "7d23h",
            ),
            (SignedDuration::from_secs(8 * DAY), "8d"),
            (SignedDuration::from_secs(8 * DAY + 23 * HOUR), "8d"),
            (SignedDuration::from_secs(400 * DAY), "400d"),
            (SignedDuration::from_secs(729 * DAY + 23 * HOUR), "729d"),
            (SignedDuration::from_secs(730 * DAY), "2y"),
            (SignedDuration::from_secs(731 * DAY), "2y1d"),
            (
                SignedDuration::from_secs(3 * 365 * DAY + 100 * DAY),
                "3y100d",
            ),
            (SignedDuration::from_secs(8 * 365 * DAY - DAY), "7y364d"),
            (SignedDuration::from_secs(8 * 365 * DAY), "8y"),
            (SignedDuration::from_secs(10 * 365 * DAY + 5 * DAY), "10y"),
            // Go's time.Duration saturates at ~292 years.
            (SignedDuration::from_secs(300 * 365 * DAY), "292y"),
            (SignedDuration::from_secs(-300 * 365 * DAY), "<invalid>"),
            (SignedDuration::MAX, "292y"),
            (SignedDuration::MIN, "<invalid>"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "duration {d:?}");
        }
    }

    #[test]
    fn ages_from_timestamps() {
        let obj = |ts: Value| json!({"metadata": {"name": "x", "creationTimestamp": ts}});
        let age_of = |o: &Value| row_cells("namespaces", o, now())[2].clone();
        assert_eq!(age_of(&obj(json!(ago(19 * MIN)))), json!("19m"));
        // Clock skew: a second in the future still reads 0s, more is invalid.
        let future = |s: i64| {
            now()
                .checked_add(SignedDuration::from_secs(s))
                .expect("in range")
                .to_string()
        };
        assert_eq!(age_of(&obj(json!(future(1)))), json!("0s"));
        assert_eq!(age_of(&obj(json!(future(5)))), json!("<invalid>"));
        // Offsets and fractions are accepted.
        assert_eq!(
            age_of(&obj(json!("2025-06-01T13:55:00.25+02:00"))),
            json!("4m59s")
        );
        // Unset, null, unparsable and Go's zero time are all unknown.
        assert_eq!(
            age_of(&json!({"metadata": {"name": "x"}})),
            json!("<unknown>")
        );
        assert_eq!(age_of(&obj(Value::Null)), json!("<unknown>"));
        assert_eq!(age_of(&obj(json!("yesterday"))), json!("<unknown>"));
        assert_eq!(age_of(&obj(json!(12345))), json!("<unknown>"));
        assert_eq!(
            age_of(&obj(json!("0001-01-01T00:00:00Z"))),
            json!("<unknown>")
        );
    }

    // -----------------------------------------------------------------------------------
    // Column definitions
    // -----------------------------------------------------------------------------------

    const PLURALS: &[&str] = &[
        "daemonsets",
        "pods",
        "nodes",
        "controllerrevisions",
        "namespaces",
        "events",
        "leases",
        "services",
        "endpoints",
        "endpointslices",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "rolebindings",
        "clusterrolebindings",
        "priorityclasses",
    ];

    #[test]
    fn column_headers_per_resource() {
        let cases: &[(&str, &[&str], &[i32])] = &[
            (
                "daemonsets",
                &[
                    "Name",
                    "Desired",
                    "Current",
                    "Ready",
                    "Up-to-date",
                    "Available",
                    "Node Selector",
                    "Age",
                    "Containers",
                    "Images",
                    "Selector",
                ],
                &[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
            ),
            (
                "pods",
                &[
                    "Name",
                    "Ready",
                    "Status",
                    "Restarts",
                    "Age",
                    "IP",
                    "Node",
                    "Nominated Node",
                    "Readiness Gates",
                ],
                &[0, 0, 0, 0, 0, 1, 1, 1, 1],
            ),
            (
                "nodes",
                &[
                    "Name",
                    "Status",
                    "Roles",
                    "Age",
                    "Version",
                    "Internal-IP",
                    "External-IP",
                    "OS-Image",
                    "Kernel-Version",
                    "Container-Runtime",
                ],
                &[0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
            ),
            (
                "controllerrevisions",
                &["Name", "Controller", "Revision", "Age"],
                &[0, 0, 0, 0],
            ),
            ("namespaces", &["Name", "Status", "Age"], &[0, 0, 0]),
            (
                "events",
                &[
                    "Last Seen",
                    "Type",
                    "Reason",
                    "Object",
                    "Subobject",
                    "Source",
                    "Message",
                    "First Seen",
                    "Count",
                    "Name",
                ],
                &[0, 0, 0, 0, 1, 1, 0, 1, 1, 1],
            ),
            ("leases", &["Name", "Holder", "Age"], &[0, 0, 0]),
            (
                "services",
                &[
                    "Name",
                    "Type",
                    "Cluster-IP",
                    "External-IP",
                    "Port(s)",
                    "Age",
                    "Selector",
                ],
                &[0, 0, 0, 0, 0, 0, 1],
            ),
            ("endpoints", &["Name", "Endpoints", "Age"], &[0, 0, 0]),
            (
                "endpointslices",
                &["Name", "AddressType", "Ports", "Endpoints", "Age"],
                &[0, 0, 0, 0, 0],
            ),
            ("configmaps", &["Name", "Data", "Age"], &[0, 0, 0]),
            ("secrets", &["Name", "Type", "Data", "Age"], &[0, 0, 0, 0]),
            ("serviceaccounts", &["Name", "Secrets", "Age"], &[0, 0, 0]),
            (
                "rolebindings",
                &["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"],
                &[0, 0, 0, 1, 1, 1],
            ),
            (
                "clusterrolebindings",
                &["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"],
                &[0, 0, 0, 1, 1, 1],
            ),
            (
                "priorityclasses",
                &["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"],
                &[0, 0, 0, 0, 0],
            ),
        ];
        assert_eq!(cases.len(), PLURALS.len());
        for (plural, names, priorities) in cases {
            let cols = columns(plural).expect("printer exists");
            let got: Vec<&str> = cols.iter().map(|c| c.name).collect();
            assert_eq!(&got, names, "{plural}");
            let got: Vec<i32> = cols.iter().map(|c| c.priority).collect();
            assert_eq!(&got, priorities, "{plural}");
        }
    }

    #[test]
    fn column_types_and_formats() {
        for plural in PLURALS {
            let cols = columns(plural).expect("printer exists");
            for c in cols {
                assert!(
                    ["string", "integer", "number", "boolean", "date"].contains(&c.type_),
                    "{plural}/{}",
                    c.name
                );
                assert!(!c.description.is_empty(), "{plural}/{}", c.name);
                // Exactly the Name column is marked as the name.
                assert_eq!(c.format == "name", c.name == "Name", "{plural}/{}", c.name);
                assert!(c.format.is_empty() || c.format == "name");
            }
            assert_eq!(
                cols.iter().filter(|c| c.format == "name").count(),
                1,
                "{plural}"
            );
        }
        let integer_columns: Vec<&str> = columns("daemonsets")
            .expect("ds")
            .iter()
            .filter(|c| c.type_ == "integer")
            .map(|c| c.name)
            .collect();
        assert_eq!(
            integer_columns,
            ["Desired", "Current", "Ready", "Up-to-date", "Available"]
        );
        // The declared types of the real server (the cells of some are integers anyway).
        // Priority classes: Value is an integer, Global-Default a boolean.
        let typed: Vec<(&str, &str)> = columns("priorityclasses")
            .expect("pc")
            .iter()
            .map(|c| (c.name, c.type_))
            .filter(|(_, t)| *t != "string")
            .collect();
        assert_eq!(typed, [("Value", "integer"), ("Global-Default", "boolean")]);
        for plural in PLURALS
            .iter()
            .filter(|p| !["daemonsets", "priorityclasses"].contains(*p))
        {
            assert!(
                columns(plural)
                    .expect("cols")
                    .iter()
                    .all(|c| c.type_ == "string"),
                "{plural}"
            );
        }
        assert_eq!(D_EV_SUBOBJECT.matches("containers[2]").count(), 2);
    }

    #[test]
    fn unknown_resources_have_no_printer() {
        for plural in [
            "deployments",
            "customresourcedefinitions",
            "",
            "pod",
            "Pods",
        ] {
            assert_eq!(columns(plural), None, "{plural}");
        }
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-03-04T05:06:07Z"}});
        assert_eq!(row_cells("widgets", &obj, now()), default_row_cells(&obj));
    }

    #[test]
    fn one_cell_per_column_even_for_empty_objects() {
        for plural in PLURALS {
            let n = columns(plural).expect("cols").len();
            for obj in [
                json!({}),
                json!(null),
                json!([1, 2]),
                json!({"metadata": null, "spec": 3, "status": "x"}),
            ] {
                let cells = row_cells(plural, &obj, now());
                assert_eq!(cells.len(), n, "{plural} {obj}");
                for (c, col) in cells.iter().zip(columns(plural).expect("cols")) {
                    assert!(
                        c.is_string() || c.is_i64() || c.is_u64() || col.type_ == "boolean",
                        "{plural}/{}",
                        col.name
                    );
                    if col.type_ == "boolean" {
                        assert!(c.is_boolean(), "{plural}/{}", col.name);
                    }
                    if col.type_ == "integer" {
                        assert!(c.is_i64() || c.is_u64(), "{plural}/{}", col.name);
                    }
                }
            }
        }
    }

    #[test]
    fn integer_cells_are_json_integers() {
        let cases: &[(&str, &[&str])] = &[
            (
                "daemonsets",
                &["Desired", "Current", "Ready", "Up-to-date", "Available"],
            ),
            ("controllerrevisions", &["Revision"]),
            ("events", &["Count"]),
            ("configmaps", &["Data"]),
            ("secrets", &["Data"]),
            ("serviceaccounts", &["Secrets"]),
        ];
        for (plural, int_cols) in cases {
            let cols = columns(plural).expect("cols");
            let cells = row_cells(plural, &json!({}), now());
            for (c, col) in cells.iter().zip(cols) {
                assert_eq!(
                    c.is_number(),
                    int_cols.contains(&col.name),
                    "{plural}/{}",
                    col.name
                );
            }
        }
        // Restarts is a string cell since kubectl 1.27's "N (Xm ago)".
        assert!(row_cells("pods", &json!({}), now())[3].is_string());
    }

    // -----------------------------------------------------------------------------------
    // default columns
    // -----------------------------------------------------------------------------------

    #[test]
    fn default_row_cells_table() {
        let cases = [
            (
                json!({"metadata": {"name": "a", "creationTimestamp": "2024-03-04T05:06:07Z"}}),
                json!(["a", "2024-03-04T05:06:07Z"]),
            ),
            (
                json!({"metadata": {"name": "b", "creationTimestamp": "2024-03-04T07:06:07.5+02:00"}}),
                json!(["b", "2024-03-04T05:06:07Z"]),
            ),
            (
                json!({"metadata": {"name": "c"}}),
                json!(["c", "0001-01-01T00:00:00Z"]),
            ),
            (
                json!({"metadata": {"name": "z", "creationTimestamp": "0001-01-01T00:00:00Z"}}),
                json!(["z", "0001-01-01T00:00:00Z"]),
            ),
            (
                json!({"metadata": {"name": "d", "creationTimestamp": "garbage"}}),
                json!(["d", "garbage"]),
            ),
            (json!({}), json!(["", "0001-01-01T00:00:00Z"])),
            (json!(null), json!(["", "0001-01-01T00:00:00Z"])),
        ];
        for (obj, want) in cases {
            assert_eq!(Value::from(default_row_cells(&obj)), want, "{obj}");
        }
    }

    // -----------------------------------------------------------------------------------
    // daemonsets
    // -----------------------------------------------------------------------------------

    fn nginx_ds() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "nginx-ds", "namespace": "default", "labels": {"app": "nginx"},
                         "creationTimestamp": ago(19 * MIN + 12)},
            "spec": {
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {
                        "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [{"name": "nginx", "image": "nginx",
                                        "ports": [{"name": "http", "containerPort": 80}]}]
                    }
                }
            },
            "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 2, "numberAvailable": 2,
                       "numberMisscheduled": 0, "numberReady": 2, "observedGeneration": 1,
                       "updatedNumberScheduled": 2}
        })
    }

    /// Seed 004: `kubectl get ds -o wide` against a real cluster.
    /// Depends on `selector::format_labels` / `format_label_selector`.
    #[test]
    fn daemonset_matches_seed_kubectl_get_ds_wide() {
        let out = "NAME       DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR   AGE   CONTAINERS   IMAGES   SELECTOR\n\
                   nginx-ds   2         2         2       2            2           <none>          19m   nginx        nginx    app=nginx";
        let mut lines = out.lines();
        let header = header_titles(lines.next().expect("header"));
        assert_eq!(header, upper_names("daemonsets"));
        let row: Vec<String> = lines
            .next()
            .expect("row")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let cells = row_cells("daemonsets", &nginx_ds(), now());
        assert_eq!(printed(&cells), row);
        assert_eq!(cells[1], json!(2));
    }

    /// Depends on `selector::format_labels` / `format_label_selector`.
    #[test]
    fn daemonset_rows() {
        let fluentd = json!({
            "metadata": {"name": "fluentd-elasticsearch", "namespace": "kube-system",
                         "creationTimestamp": ago(3 * DAY + 5 * HOUR + 7 * MIN)},
            "spec": {
                "selector": {"matchLabels": {"name": "fluentd-elasticsearch"}},
                "template": {"metadata": {"labels": {"name": "fluentd-elasticsearch"}},
                             "spec": {"containers": [{"name": "fluentd-elasticsearch",
                                                      "image": "quay.io/fluentd_elasticsearch/fluentd:v2.5.2"}]}}
            },
            "status": {"currentNumberScheduled": 3, "desiredNumberScheduled": 4, "numberReady": 2,
                       "updatedNumberScheduled": 1, "numberAvailable": 1, "numberUnavailable": 3}
        });
        assert_eq!(
            Value::from(row_cells("daemonsets", &fluentd, now())),
            json!([
                "fluentd-elasticsearch",
                4,
                3,
                2,
                1,
                1,
                "<none>",
                "3d5h",
                "fluentd-elasticsearch",
                "quay.io/fluentd_elasticsearch/fluentd:v2.5.2",
                "name=fluentd-elasticsearch"
            ])
        );

        let multi = json!({
            "metadata": {"name": "agent", "creationTimestamp": ago(90)},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"},
                             "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend", "backend"]}]},
                "template": {"spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux", "disktype": "ssd"},
                    "containers": [{"name": "agent", "image": "example/agent:1.0"},
                                   {"name": "exporter", "image": "prom/node-exporter:v1.8.2"}]
                }}
            }
        });
        assert_eq!(
            Value::from(row_cells("daemonsets", &multi, now())),
            json!([
                "agent",
                0,
                0,
                0,
                0,
                0,
                "disktype=ssd,kubernetes.io/os=linux",
                "90s",
                "agent,exporter",
                "example/agent:1.0,prom/node-exporter:v1.8.2",
                "app=agent,tier in (backend,frontend)"
            ])
        );

        // A brand-new DaemonSet without status: counts are 0, selector absent -> <none>.
        let bare = json!({"metadata": {"name": "bare", "creationTimestamp": ago(0)},
                          "spec": {"template": {"spec": {"containers": []}}}});
        assert_eq!(
            Value::from(row_cells("daemonsets", &bare, now())),
            json!(["bare", 0, 0, 0, 0, 0, "<none>", "0s", "", "", "<none>"])
        );
    }

    #[test]
    fn daemonset_undecodable_selector_is_error() {
        let ds = json!({"metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": "oops"}}});
        assert_eq!(row_cells("daemonsets", &ds, now())[10], json!("<error>"));
        let ds = json!({"metadata": {"name": "x"}, "spec": {"selector": 7}});
        assert_eq!(row_cells("daemonsets", &ds, now())[10], json!("<error>"));
    }

    /// An operator the API does not know cannot be turned into a selector.
    /// Depends on `selector::format_label_selector`.
    #[test]
    fn daemonset_invalid_selector_is_error() {
        let ds = json!({"metadata": {"name": "x"},
                        "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]}}});
        assert_eq!(row_cells("daemonsets", &ds, now())[10], json!("<error>"));
    }

    #[test]
    fn daemonset_node_selector_skips_non_strings() {
        // Only string values can be labels; a malformed map must not panic.
        let ds = json!({"metadata": {"name": "x"},
                        "spec": {"template": {"spec": {"nodeSelector": {"a": 1, "b": null}}}}});
        let cells = row_cells("daemonsets", &ds, now());
        assert_eq!(cells.len(), 11);
    }

    // -----------------------------------------------------------------------------------
    // pods
    // -----------------------------------------------------------------------------------

    fn running(ready: bool, restarts: i64) -> Value {
        json!({"name": "c", "ready": ready, "restartCount": restarts, "started": true,
               "state": {"running": {"startedAt": ago(20 * MIN)}}})
    }

    fn nginx_pod(name: &str, ip: &str, node: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": ago(20 * MIN + 5),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "nginx-ds",
                                              "uid": "u", "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"nodeName": node, "containers": [{"name": "nginx", "image": "nginx"}]},
            "status": {
                "phase": "Running", "hostIP": "192.168.1.10", "podIP": ip, "podIPs": [{"ip": ip}],
                "startTime": ago(20 * MIN),
                "conditions": [
                    {"type": "PodReadyToStartContainers", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "True"},
                    {"type": "ContainersReady", "status": "True"},
                    {"type": "PodScheduled", "status": "True"}
                ],
                "containerStatuses": [{"name": "nginx", "image": "nginx:latest", "ready": true, "restartCount": 0,
                                       "started": true, "state": {"running": {"startedAt": ago(20 * MIN)}}}]
            }
        })
    }

    /// Seed 004: `kubectl get po -o wide` of the DaemonSet's pods.
    #[test]
    fn pods_match_seed_kubectl_get_po_wide() {
        let out = "NAME             READY   STATUS    RESTARTS   AGE   IP               NODE           NOMINATED NODE   READINESS GATES\n\
                   nginx-ds-7n8qj   1/1     Running   0          20m   10.100.235.209   k8s-master     <none>           <none>\n\
                   nginx-ds-htrvw   1/1     Running   0          20m   10.100.132.168   k8s-woker-01   <none>           <none>";
        let mut lines = out.lines();
        assert_eq!(
            header_titles(lines.next().expect("header")),
            upper_names("pods")
        );
        let pods = [
            nginx_pod("nginx-ds-7n8qj", "10.100.235.209", "k8s-master"),
            nginx_pod("nginx-ds-htrvw", "10.100.132.168", "k8s-woker-01"),
        ];
        for (line, pod) in lines.zip(pods.iter()) {
            let want: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            let cells = row_cells("pods", pod, now());
            assert_eq!(printed(&cells), want);
            assert!(cells.iter().all(Value::is_string));
        }
    }

    /// (case, pod) → (READY, STATUS, RESTARTS)
    #[test]
    fn pod_status_table() {
        let cases: Vec<(&str, Value, [&str; 3])> = vec![
            (
                "pending unscheduled",
                json!({"spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}),
                ["0/1", "Pending", "0"],
            ),
            (
                "container creating",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Pending", "containerStatuses": [
                           {"name": "c", "ready": false, "restartCount": 0,
                            "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
                ["0/1", "ContainerCreating", "0"],
            ),
            (
                "err image pull",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Pending", "containerStatuses": [
                           {"name": "c", "ready": false, "restartCount": 0,
                            "state": {"waiting": {"reason": "ErrImagePull", "message": "pull failed"}}}]}}),
                ["0/1", "ErrImagePull", "0"],
            ),
            (
                "image pull backoff",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Pending", "containerStatuses": [
                           {"name": "c", "ready": false, "restartCount": 0,
                            "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}),
                ["0/1", "ImagePullBackOff", "0"],
            ),
            (
                "crash loop with last restart",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Running", "containerStatuses": [
                           {"name": "c", "ready": false, "restartCount": 5,
                            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                         "startedAt": ago(40), "finishedAt": ago(30)}},
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
                ["0/1", "CrashLoopBackOff", "5 (30s ago)"],
            ),
            (
                "restarts without a known time",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Running", "containerStatuses": [running(true, 4)]}}),
                ["1/1", "Running", "4"],
            ),
            (
                "restart time kept from the latest termination",
                json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                       "status": {"phase": "Running", "containerStatuses": [
                           {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}},
                            "lastState": {"terminated": {"exitCode": 2, "finishedAt": ago(3 * HOUR + 5 * MIN)}}},
                           {"name": "b", "ready": true, "restartCount": 2, "state": {"running": {}},
                            "lastState": {"terminated": {"exitCode": 2, "finishedAt": ago(5 * MIN)}}}]}}),
                ["2/2", "Running", "3 (5m ago)"],
            ),
            (
                "init running",
                json!({"spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]},
                       "status": {"phase": "Pending",
                                  "conditions": [{"type": "Initialized", "status": "False"}],
                                  "initContainerStatuses": [
                                      {"name": "i1", "ready": false, "restartCount": 0, "state": {"running": {}}},
                                      {"name": "i2", "ready": false, "restartCount": 0,
                                       "state": {"waiting": {"reason": "PodInitializing"}}}],
                                  "containerStatuses": [
                                      {"name": "c", "ready": false, "restartCount": 0,
                                       "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
                ["0/1", "Init:0/2", "0"],
            ),
            (
                "second init running",
                json!({"spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                           {"name": "i2", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
                ["0/1", "Init:1/2", "0"],
            ),
            (
                "init crash loop counts init restarts",
                json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "c"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "i1", "restartCount": 3,
                            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(2 * MIN)}},
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
                           "containerStatuses": [{"name": "c", "restartCount": 0,
                                                  "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
                ["0/1", "Init:CrashLoopBackOff", "3 (2m ago)"],
            ),
            (
                "init error",
                json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "c"}]},
                       "status": {"phase": "Failed", "initContainerStatuses": [
                           {"name": "i1", "restartCount": 0,
                            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
                ["0/1", "Init:Error", "0"],
            ),
            (
                "init exit code",
                json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "c"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "i1", "state": {"terminated": {"exitCode": 2}}}]}}),
                ["0/1", "Init:ExitCode:2", "0"],
            ),
            (
                "init signal",
                json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "c"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "i1", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}}),
                ["0/1", "Init:Signal:9", "0"],
            ),
            (
                "completed",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Succeeded", "containerStatuses": [
                           {"name": "c", "ready": false, "restartCount": 0,
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
                ["0/1", "Completed", "0"],
            ),
            (
                "completed container but another still running and ready",
                json!({"spec": {"containers": [{"name": "job"}, {"name": "proxy"}]},
                       "status": {"phase": "Running",
                                  "conditions": [{"type": "Ready", "status": "True"}],
                                  "containerStatuses": [
                                      {"name": "job", "ready": false, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                                      {"name": "proxy", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
                ["1/2", "Running", "0"],
            ),
            (
                "completed container, running one, pod not ready",
                json!({"spec": {"containers": [{"name": "job"}, {"name": "proxy"}]},
                       "status": {"phase": "Running",
                                  "conditions": [{"type": "Ready", "status": "False"}],
                                  "containerStatuses": [
                                      {"name": "job", "ready": false, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                                      {"name": "proxy", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
                ["1/2", "NotReady", "0"],
            ),
            (
                "terminated without reason: exit code",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Failed", "containerStatuses": [
                           {"name": "c", "restartCount": 0, "state": {"terminated": {"exitCode": 137}}}]}}),
                ["0/1", "ExitCode:137", "0"],
            ),
            (
                "terminated without reason: signal",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Failed", "containerStatuses": [
                           {"name": "c", "restartCount": 0, "state": {"terminated": {"exitCode": 143, "signal": 15}}}]}}),
                ["0/1", "Signal:15", "0"],
            ),
            (
                "oom killed",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Running", "containerStatuses": [
                           {"name": "c", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}),
                ["0/1", "OOMKilled", "0"],
            ),
            (
                "terminating",
                json!({"metadata": {"deletionTimestamp": ago(3), "deletionGracePeriodSeconds": 30},
                       "spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Running", "containerStatuses": [running(true, 0)]}}),
                ["1/1", "Terminating", "0"],
            ),
            (
                "node lost",
                json!({"metadata": {"deletionTimestamp": ago(3)},
                       "spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Running", "reason": "NodeLost", "containerStatuses": [running(true, 0)]}}),
                ["1/1", "Unknown", "0"],
            ),
            (
                "deleting a finished pod keeps its status",
                json!({"metadata": {"deletionTimestamp": ago(3)},
                       "spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Succeeded", "containerStatuses": [
                           {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
                ["0/1", "Completed", "0"],
            ),
            (
                "null deletion timestamp is not deleting",
                json!({"metadata": {"deletionTimestamp": null},
                       "spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Running", "containerStatuses": [running(true, 0)]}}),
                ["1/1", "Running", "0"],
            ),
            (
                "scheduling gated",
                json!({"spec": {"schedulingGates": [{"name": "example.com/gate"}], "containers": [{"name": "c"}]},
                       "status": {"phase": "Pending", "conditions": [
                           {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
                ["0/1", "SchedulingGated", "0"],
            ),
            (
                "evicted",
                json!({"spec": {"containers": [{"name": "c"}]},
                       "status": {"phase": "Failed", "reason": "Evicted",
                                  "message": "The node was low on resource: memory."}}),
                ["0/1", "Evicted", "0"],
            ),
            (
                "sidecar counted in total and ready",
                json!({"spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}, {"name": "migrate"}],
                                "containers": [{"name": "app"}]},
                       "status": {"phase": "Running",
                                  "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                                  "initContainerStatuses": [
                                      {"name": "proxy", "ready": true, "started": true, "restartCount": 2,
                                       "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(10 * MIN)}},
                                       "state": {"running": {}}},
                                      {"name": "migrate", "ready": false, "restartCount": 1,
                                       "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(MIN)}},
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                                  "containerStatuses": [
                                      {"name": "app", "ready": true, "restartCount": 1, "state": {"running": {}},
                                       "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(5 * MIN)}}}]}}),
                ["2/2", "Running", "3 (5m ago)"],
            ),
            (
                "sidecar not started yet blocks init",
                json!({"spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                                "containers": [{"name": "app"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "proxy", "ready": false, "started": false, "restartCount": 0,
                            "state": {"running": {}}}]}}),
                ["0/2", "Init:0/1", "0"],
            ),
            (
                "reason without phase",
                json!({"spec": {"containers": [{"name": "c"}]}, "status": {"reason": "UnexpectedAdmissionError"}}),
                ["0/1", "UnexpectedAdmissionError", "0"],
            ),
            (
                "no status at all",
                json!({"spec": {"containers": [{"name": "c"}]}}),
                ["0/1", "", "0"],
            ),
        ];
        for (name, mut pod, want) in cases {
            if pod.get("metadata").is_none() {
                pod["metadata"] = json!({});
            }
            pod["metadata"]["name"] = json!("p");
            pod["metadata"]["creationTimestamp"] = json!(ago(HOUR));
            let cells = row_cells("pods", &pod, now());
            assert_eq!(
                printed(&cells[1..4]),
                want.map(str::to_string).to_vec(),
                "case {name}"
            );
            assert_eq!(cells[0], json!("p"), "case {name}");
            assert_eq!(cells[4], json!("60m"), "case {name}");
        }
    }

    #[test]
    fn pod_wide_cells() {
        let base = |status: Value, spec: Value| {
            json!({"metadata": {"name": "p", "creationTimestamp": ago(DAY)},
                   "spec": spec, "status": status})
        };
        let wide = |pod: &Value| printed(&row_cells("pods", pod, now())[5..]);

        // Nothing known yet.
        assert_eq!(
            wide(&base(
                json!({"phase": "Pending"}),
                json!({"containers": [{"name": "c"}]})
            )),
            ["<none>", "<none>", "<none>", "<none>"]
        );
        // Dual-stack: the first podIPs entry; podIP wins when both are present.
        assert_eq!(
            wide(&base(
                json!({"podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}], "nominatedNodeName": "node-b"}),
                json!({"nodeName": "node-a"})
            )),
            ["fd00::5", "node-a", "node-b", "<none>"]
        );
        assert_eq!(
            wide(&base(
                json!({"podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.5"}]}),
                json!({})
            ))[0],
            "10.0.0.9"
        );
        assert_eq!(
            wide(&base(
                json!({"podIP": "", "podIPs": []}),
                json!({"nodeName": ""})
            )),
            ["<none>", "<none>", "<none>", "<none>"]
        );
        // Readiness gates: true conditions over gates.
        let gated = base(
            json!({"conditions": [
                {"type": "www.example.com/feature-1", "status": "True"},
                {"type": "feature-2", "status": "False"},
                {"type": "Ready", "status": "True"}]}),
            json!({"readinessGates": [
                {"conditionType": "www.example.com/feature-1"},
                {"conditionType": "feature-2"},
                {"conditionType": "feature-3"}]}),
        );
        assert_eq!(wide(&gated)[3], "1/3");
        let all = base(
            json!({"conditions": [{"type": "g", "status": "True"}]}),
            json!({"readinessGates": [{"conditionType": "g"}]}),
        );
        assert_eq!(wide(&all)[3], "1/1");
        assert_eq!(
            wide(&base(json!({}), json!({"readinessGates": []})))[3],
            "<none>"
        );
    }

    // -----------------------------------------------------------------------------------
    // nodes
    // -----------------------------------------------------------------------------------

    fn node(name: &str, labels: Value, conditions: Value, unschedulable: bool) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "creationTimestamp": ago(10 * DAY + 3 * HOUR)},
            "spec": {"unschedulable": unschedulable, "podCIDR": "10.244.0.0/24"},
            "status": {
                "conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": "172.18.0.2"},
                              {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": "v1.32.2", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.8.0-45-generic", "containerRuntimeVersion": "containerd://1.7.24",
                             "architecture": "amd64", "operatingSystem": "linux"}
            }
        })
    }

    fn ready(status: &str) -> Value {
        json!([{"type": "MemoryPressure", "status": "False"},
               {"type": "DiskPressure", "status": "False"},
               {"type": "Ready", "status": status, "reason": "KubeletReady"}])
    }

    #[test]
    fn node_matches_kubectl_get_nodes() {
        // `kubectl get nodes -o wide` on a kind cluster.
        let out = "NAME                 STATUS   ROLES           AGE   VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE                         KERNEL-VERSION     CONTAINER-RUNTIME";
        assert_eq!(header_titles(out), upper_names("nodes"));
        let n = node(
            "kind-control-plane",
            json!({"kubernetes.io/hostname": "kind-control-plane",
                   "node-role.kubernetes.io/control-plane": "",
                   "node.kubernetes.io/exclude-from-external-load-balancers": ""}),
            ready("True"),
            false,
        );
        assert_eq!(
            Value::from(row_cells("nodes", &n, now())),
            json!([
                "kind-control-plane",
                "Ready",
                "control-plane",
                "10d",
                "v1.32.2",
                "172.18.0.2",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.8.0-45-generic",
                "containerd://1.7.24"
            ])
        );
    }

    #[test]
    fn node_status_table() {
        let cases = [
            (ready("True"), false, "Ready"),
            (ready("False"), false, "NotReady"),
            (ready("Unknown"), false, "NotReady"),
            (ready("True"), true, "Ready,SchedulingDisabled"),
            (ready("Unknown"), true, "NotReady,SchedulingDisabled"),
            (json!([]), false, "Unknown"),
            (
                json!([{"type": "MemoryPressure", "status": "True"}]),
                false,
                "Unknown",
            ),
            (json!(null), true, "Unknown,SchedulingDisabled"),
            // Duplicate conditions: the last one counts.
            (
                json!([{"type": "Ready", "status": "False"}, {"type": "Ready", "status": "True"}]),
                false,
                "Ready",
            ),
        ];
        for (conds, unsched, want) in cases {
            let n = node("n", json!({}), conds.clone(), unsched);
            assert_eq!(
                row_cells("nodes", &n, now())[1],
                json!(want),
                "{conds} {unsched}"
            );
        }
    }

    #[test]
    fn node_roles_table() {
        let cases = [
            (json!({}), "<none>"),
            (json!({"kubernetes.io/hostname": "n1"}), "<none>"),
            (json!({"node-role.kubernetes.io/worker": ""}), "worker"),
            (
                json!({"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "",
                       "kubernetes.io/role": "master"}),
                "control-plane,master,worker",
            ),
            (
                json!({"node-role.kubernetes.io/master": "true", "kubernetes.io/role": "master"}),
                "master",
            ),
            (
                json!({"node-role.kubernetes.io/": "x", "kubernetes.io/role": ""}),
                "<none>",
            ),
            (json!({"kubernetes.io/role": "ingress"}), "ingress"),
            (json!({"node-role.kubernetes.io/infra": "false"}), "infra"),
        ];
        for (labels, want) in cases {
            let n = node("n", labels.clone(), ready("True"), false);
            assert_eq!(row_cells("nodes", &n, now())[2], json!(want), "{labels}");
        }
    }

    #[test]
    fn node_wide_fallbacks() {
        let n = json!({"metadata": {"name": "bare"},
                       "status": {"addresses": [{"type": "ExternalIP", "address": "203.0.113.7"},
                                                {"type": "ExternalIP", "address": "203.0.113.8"}]}});
        assert_eq!(
            Value::from(row_cells("nodes", &n, now())),
            json!([
                "bare",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "203.0.113.7",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ])
        );
    }

    // -----------------------------------------------------------------------------------
    // controllerrevisions
    // -----------------------------------------------------------------------------------

    #[test]
    fn controller_revision_table() {
        let cr = |owners: Value, revision: Value| {
            json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
                   "metadata": {"name": "fluentd-elasticsearch-6b9f5c7d4d", "namespace": "kube-system",
                                "creationTimestamp": ago(5 * MIN), "ownerReferences": owners},
                   "data": {"spec": {}}, "revision": revision})
        };
        let ds_owner = json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd-elasticsearch",
                               "uid": "9b1f", "controller": true, "blockOwnerDeletion": true}]);
        assert_eq!(
            Value::from(row_cells(
                "controllerrevisions",
                &cr(ds_owner, json!(3)),
                now()
            )),
            json!([
                "fluentd-elasticsearch-6b9f5c7d4d",
                "daemonset.apps/fluentd-elasticsearch",
                3,
                "5m"
            ])
        );
        let controller = |owners: Value| {
            row_cells("controllerrevisions", &cr(owners, json!(1)), now())[1].clone()
        };
        assert_eq!(controller(json!(null)), json!("<none>"));
        assert_eq!(controller(json!([])), json!("<none>"));
        // Only the controller reference counts.
        assert_eq!(
            controller(
                json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x"},
                              {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "y", "controller": false}])
            ),
            json!("<none>")
        );
        assert_eq!(
            controller(
                json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "a"},
                              {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}])
            ),
            json!("statefulset.apps/web")
        );
        // Core group: no ".group".
        assert_eq!(
            controller(
                json!([{"apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "controller": true}])
            ),
            json!("replicationcontroller/rc")
        );
        assert_eq!(
            controller(
                json!([{"apiVersion": "example.com/v1alpha1", "kind": "CloneSet", "name": "c", "controller": true}])
            ),
            json!("cloneset.example.com/c")
        );
        // Neither kind nor group: just the name.
        assert_eq!(
            controller(json!([{"apiVersion": "v1", "name": "bare", "controller": true}])),
            json!("bare")
        );
        // Revision is an integer cell; missing is 0.
        assert_eq!(
            row_cells("controllerrevisions", &cr(json!([]), json!(12)), now())[2],
            json!(12)
        );
        assert_eq!(
            row_cells("controllerrevisions", &cr(json!([]), Value::Null), now())[2],
            json!(0)
        );
    }

    // -----------------------------------------------------------------------------------
    // namespaces, leases
    // -----------------------------------------------------------------------------------

    #[test]
    fn namespace_and_lease_rows() {
        let ns = |phase: Value| {
            json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(30 * DAY)},
                   "status": {"phase": phase}})
        };
        assert_eq!(
            Value::from(row_cells("namespaces", &ns(json!("Active")), now())),
            json!(["kube-system", "Active", "30d"])
        );
        assert_eq!(
            row_cells("namespaces", &ns(json!("Terminating")), now())[1],
            json!("Terminating")
        );
        assert_eq!(
            row_cells("namespaces", &ns(Value::Null), now())[1],
            json!("Active")
        );

        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": "kube-controller-manager", "namespace": "kube-system",
                                        "creationTimestamp": ago(2 * HOUR + 30 * MIN)},
                           "spec": {"holderIdentity": "kind-control-plane_5c9a0d1e-7d3f-4c8a-9f0e-1a2b3c4d5e6f",
                                    "leaseDurationSeconds": 15, "acquireTime": ago(HOUR), "renewTime": ago(1)}});
        assert_eq!(
            Value::from(row_cells("leases", &lease, now())),
            json!([
                "kube-controller-manager",
                "kind-control-plane_5c9a0d1e-7d3f-4c8a-9f0e-1a2b3c4d5e6f",
                "150m"
            ])
        );
        let node_lease =
            json!({"metadata": {"name": "worker", "creationTimestamp": ago(8 * HOUR)}, "spec": {}});
        assert_eq!(
            Value::from(row_cells("leases", &node_lease, now())),
            json!(["worker", "", "8h"])
        );
    }

    // -----------------------------------------------------------------------------------
    // events
    // -----------------------------------------------------------------------------------

    #[test]
    fn event_classic_core_v1() {
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "nginx-ds-7n8qj.17a8b3c4d5e6f7a8", "namespace": "default",
                         "creationTimestamp": ago(10 * MIN)},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "nginx-ds-7n8qj",
                               "apiVersion": "v1", "fieldPath": "spec.containers{nginx}"},
            "reason": "BackOff", "message": "Back-off restarting failed container nginx\n",
            "source": {"component": "kubelet", "host": "k8s-master"},
            "firstTimestamp": ago(10 * MIN), "lastTimestamp": ago(2 * MIN), "count": 5, "type": "Warning",
            "eventTime": null, "reportingComponent": "kubelet", "reportingInstance": "k8s-master"
        });
        let out = "LAST SEEN   TYPE      REASON    OBJECT               SUBOBJECT                SOURCE               MESSAGE                                      FIRST SEEN   COUNT   NAME";
        assert_eq!(header_titles(out), upper_names("events"));
        assert_eq!(
            Value::from(row_cells("events", &ev, now())),
            json!([
                "2m",
                "Warning",
                "BackOff",
                "pod/nginx-ds-7n8qj",
                "spec.containers{nginx}",
                "kubelet, k8s-master",
                "Back-off restarting failed container nginx",
                "10m",
                5,
                "nginx-ds-7n8qj.17a8b3c4d5e6f7a8"
            ])
        );
    }

    #[test]
    fn event_new_style_and_series() {
        // Written through events.k8s.io/v1 and stored in the core/v1 shape.
        let single = json!({
            "metadata": {"name": "fluentd.1", "creationTimestamp": ago(30)},
            "involvedObject": {"kind": "DaemonSet", "name": "fluentd", "namespace": "kube-system"},
            "reason": "SuccessfulCreate", "message": "  Created pod: fluentd-x7k2p  ", "type": "Normal",
            "eventTime": "2025-06-01T11:59:29.876543Z",
            "reportingComponent": "daemonset-controller", "reportingInstance": "",
            "source": {}, "action": "Create"
        });
        assert_eq!(
            Value::from(row_cells("events", &single, now())),
            json!([
                "30s",
                "Normal",
                "SuccessfulCreate",
                "daemonset/fluentd",
                "",
                "daemonset-controller",
                "Created pod: fluentd-x7k2p",
                "30s",
                1,
                "fluentd.1"
            ])
        );

        let series = json!({
            "metadata": {"name": "node.2"},
            "involvedObject": {"kind": "Node", "name": ""},
            "reason": "NodeNotReady", "type": "Warning",
            "eventTime": ago(HOUR), "series": {"count": 12, "lastObservedTime": ago(45)},
            "reportingComponent": "node-controller", "reportingInstance": "cp-1",
            "count": 3
        });
        assert_eq!(
            Value::from(row_cells("events", &series, now())),
            json!([
                "45s",
                "Warning",
                "NodeNotReady",
                "node",
                "",
                "node-controller, cp-1",
                "",
                "60m",
                12,
                "node.2"
            ])
        );
    }

    #[test]
    fn event_timestamp_fallbacks() {
        // lastTimestamp missing -> first seen; firstTimestamp missing -> eventTime.
        let ev = json!({"metadata": {"name": "e"}, "firstTimestamp": ago(5 * MIN), "count": 0});
        let cells = row_cells("events", &ev, now());
        assert_eq!(cells[0], json!("5m"));
        assert_eq!(cells[7], json!("5m"));
        assert_eq!(cells[8], json!(1));
        // Nothing at all.
        let ev = json!({"metadata": {"name": "e"}, "firstTimestamp": null, "lastTimestamp": null});
        let cells = row_cells("events", &ev, now());
        assert_eq!(cells[0], json!("<unknown>"));
        assert_eq!(cells[7], json!("<unknown>"));
        // A series without lastObservedTime.
        let ev =
            json!({"metadata": {"name": "e"}, "lastTimestamp": ago(MIN), "series": {"count": 2}});
        let cells = row_cells("events", &ev, now());
        assert_eq!(cells[0], json!("<unknown>"));
        assert_eq!(cells[8], json!(2));
        // Source: the old fields win over the reporting ones; no host -> no comma.
        let ev = json!({"metadata": {"name": "e"}, "source": {"component": "kubelet"},
                        "reportingComponent": "other", "reportingInstance": "node-9"});
        assert_eq!(row_cells("events", &ev, now())[5], json!("kubelet, node-9"));
        let ev = json!({"metadata": {"name": "e"}, "source": {"host": "h"}});
        assert_eq!(row_cells("events", &ev, now())[5], json!(", h"));
    }

    // -----------------------------------------------------------------------------------
    // services, endpoints, endpointslices
    // -----------------------------------------------------------------------------------

    fn svc(name: &str, spec: Value, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "creationTimestamp": ago(30 * DAY)},
               "spec": spec, "status": status})
    }

    /// Selector column depends on `selector::format_labels`.
    #[test]
    fn service_table() {
        let cases = [
            (
                svc(
                    "kubernetes",
                    json!({"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                           "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}),
                    json!({"loadBalancer": {}}),
                ),
                json!([
                    "kubernetes",
                    "ClusterIP",
                    "10.96.0.1",
                    "<none>",
                    "443/TCP",
                    "30d",
                    "<none>"
                ]),
            ),
            (
                svc(
                    "kube-dns",
                    json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"},
                           "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                     {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                                     {"name": "metrics", "port": 9153, "protocol": "TCP"}]}),
                    json!({}),
                ),
                json!([
                    "kube-dns",
                    "ClusterIP",
                    "10.96.0.10",
                    "<none>",
                    "53/UDP,53/TCP,9153/TCP",
                    "30d",
                    "k8s-app=kube-dns"
                ]),
            ),
            (
                svc(
                    "web",
                    json!({"type": "NodePort", "clusterIPs": ["10.96.12.34", "fd00:10:96::1234"],
                           "externalIPs": ["198.51.100.1", "198.51.100.2"],
                           "selector": {"app": "nginx", "tier": "web"},
                           "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 8443, "nodePort": 30443}]}),
                    json!({}),
                ),
                json!([
                    "web",
                    "NodePort",
                    "10.96.12.34",
                    "198.51.100.1,198.51.100.2",
                    "80:30080/TCP,8443:30443/TCP",
                    "30d",
                    "app=nginx,tier=web"
                ]),
            ),
            (
                svc(
                    "lb-pending",
                    json!({"type": "LoadBalancer", "clusterIP": "10.96.0.50", "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}),
                    json!({"loadBalancer": {}}),
                ),
                json!([
                    "lb-pending",
                    "LoadBalancer",
                    "10.96.0.50",
                    "<pending>",
                    "80:31000/TCP",
                    "30d",
                    "<none>"
                ]),
            ),
            (
                svc(
                    "lb",
                    json!({"type": "LoadBalancer", "clusterIP": "10.96.0.51", "externalIPs": ["5.6.7.8"],
                           "ports": [{"port": 443, "nodePort": 31001, "protocol": "TCP"}]}),
                    json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}, {"ip": "1.2.3.4"},
                                                        {"ip": "1.2.3.4", "hostname": "dup"}]}}),
                ),
                json!([
                    "lb",
                    "LoadBalancer",
                    "10.96.0.51",
                    "1.2.3.4,lb.example.com,5.6.7.8",
                    "443:31001/TCP",
                    "30d",
                    "<none>"
                ]),
            ),
            (
                svc(
                    "headless",
                    json!({"type": "ClusterIP", "clusterIP": "None", "selector": {"app": "db"},
                           "ports": [{"port": 5432, "protocol": "TCP"}]}),
                    json!({}),
                ),
                json!([
                    "headless",
                    "ClusterIP",
                    "None",
                    "<none>",
                    "5432/TCP",
                    "30d",
                    "app=db"
                ]),
            ),
            (
                svc(
                    "db",
                    json!({"type": "ExternalName", "externalName": "db.example.com"}),
                    json!({}),
                ),
                json!([
                    "db",
                    "ExternalName",
                    "<none>",
                    "db.example.com",
                    "<none>",
                    "30d",
                    "<none>"
                ]),
            ),
            (
                svc("untyped", json!({"ports": [{"port": 80}]}), json!({})),
                json!([
                    "untyped",
                    "ClusterIP",
                    "<none>",
                    "<none>",
                    "80/TCP",
                    "30d",
                    "<none>"
                ]),
            ),
            (
                svc("weird", json!({"type": "Bogus"}), json!({})),
                json!([
                    "weird",
                    "Bogus",
                    "<none>",
                    "<unknown>",
                    "<none>",
                    "30d",
                    "<none>"
                ]),
            ),
        ];
        for (obj, want) in cases {
            assert_eq!(
                Value::from(row_cells("services", &obj, now())),
                want,
                "{obj}"
            );
        }
    }

    #[test]
    fn endpoints_table() {
        let ep = |subsets: Value| json!({"metadata": {"name": "ep", "creationTimestamp": ago(HOUR)}, "subsets": subsets});
        let addrs =
            |ips: &[&str]| Value::from(ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>());
        let cases = [
            (json!(null), "<none>"),
            (json!([]), "<none>"),
            (
                json!([{"addresses": addrs(&["172.18.0.2"]), "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]),
                "172.18.0.2:6443",
            ),
            (
                json!([{"addresses": addrs(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]),
                        "ports": [{"port": 80}]}]),
                "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...",
            ),
            (
                json!([{"addresses": addrs(&["10.0.0.1", "10.0.0.2"]), "ports": [{"port": 80}, {"port": 443}]}]),
                "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
            ),
            (
                json!([{"addresses": addrs(&["10.0.0.1"]), "ports": [{"port": 53}]},
                       {"addresses": addrs(&["10.0.0.2"]), "ports": [{"port": 53}]}]),
                "10.0.0.1:53,10.0.0.2:53",
            ),
            (
                json!([{"addresses": addrs(&["10.0.0.1", "10.0.0.2"])}]),
                "10.0.0.1,10.0.0.2",
            ),
            (
                json!([{"addresses": addrs(&["a", "b", "c", "d"])}, {"addresses": addrs(&["e"]), "ports": [{"port": 1}]}]),
                "a,b,c + 2 more...",
            ),
            (
                json!([{"addresses": addrs(&["fd00::1"]), "ports": [{"port": 80}]}]),
                "[fd00::1]:80",
            ),
            (
                json!([{"notReadyAddresses": addrs(&["10.0.0.9"]), "ports": [{"port": 80}]}]),
                "",
            ),
        ];
        for (subsets, want) in cases {
            let cells = row_cells("endpoints", &ep(subsets.clone()), now());
            assert_eq!(Value::from(cells), json!(["ep", want, "60m"]), "{subsets}");
        }
    }

    #[test]
    fn endpoint_slice_table() {
        let eps = |ports: Value, endpoints: Value| {
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": "kubernetes", "creationTimestamp": ago(30 * DAY)},
                   "addressType": "IPv4", "ports": ports, "endpoints": endpoints})
        };
        let cells = |o: Value| Value::from(row_cells("endpointslices", &o, now()));
        assert_eq!(
            cells(eps(
                json!([{"name": "https", "port": 6443, "protocol": "TCP"}]),
                json!([{"addresses": ["172.18.0.2"], "conditions": {"ready": true}}])
            )),
            json!(["kubernetes", "IPv4", "6443", "172.18.0.2", "30d"])
        );
        assert_eq!(
            cells(eps(json!(null), json!([]))),
            json!(["kubernetes", "IPv4", "<unset>", "<unset>", "30d"])
        );
        assert_eq!(
            cells(eps(
                json!([{"name": "http"}, {}, {"port": 8080, "name": "alt"}]),
                json!([{"addresses": ["10.0.0.1", "10.0.0.2"]}, {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}])
            )),
            json!([
                "kubernetes",
                "IPv4",
                "http,*,8080",
                "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
                "30d"
            ])
        );
        assert_eq!(
            cells(eps(
                json!([{"port": 1}, {"port": 2}, {"port": 3}, {"port": 4}, {"port": 5}]),
                json!([{"addresses": []}])
            )),
            json!(["kubernetes", "IPv4", "1,2,3 + 2 more...", "<unset>", "30d"])
        );
    }

    // -----------------------------------------------------------------------------------
    // configmaps, secrets, serviceaccounts
    // -----------------------------------------------------------------------------------

    #[test]
    fn configmap_secret_serviceaccount_rows() {
        let meta = |name: &str| json!({"name": name, "creationTimestamp": ago(45 * DAY)});

        let cm = json!({"metadata": meta("kube-root-ca.crt"), "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}});
        assert_eq!(
            Value::from(row_cells("configmaps", &cm, now())),
            json!(["kube-root-ca.crt", 1, "45d"])
        );
        let cm = json!({"metadata": meta("mixed"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AAE="}});
        assert_eq!(row_cells("configmaps", &cm, now())[1], json!(3));
        let cm = json!({"metadata": meta("empty")});
        assert_eq!(row_cells("configmaps", &cm, now())[1], json!(0));

        let tls = json!({"metadata": meta("web-tls"), "type": "kubernetes.io/tls",
                         "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}});
        assert_eq!(
            Value::from(row_cells("secrets", &tls, now())),
            json!(["web-tls", "kubernetes.io/tls", 2, "45d"])
        );
        let opaque = json!({"metadata": meta("creds"), "data": {"user": "YQ==", "pass": "Yg=="},
                            "stringData": {"pass": "c", "token": "d"}});
        assert_eq!(
            Value::from(row_cells("secrets", &opaque, now())),
            json!(["creds", "Opaque", 3, "45d"])
        );

        let sa = json!({"metadata": meta("default")});
        assert_eq!(
            Value::from(row_cells("serviceaccounts", &sa, now())),
            json!(["default", 0, "45d"])
        );
        let sa = json!({"metadata": meta("builder"), "secrets": [{"name": "builder-token"}]});
        assert_eq!(row_cells("serviceaccounts", &sa, now())[1], json!(1));
    }

    #[test]
    fn binding_and_priority_class_rows() {
        let meta = |name: &str| json!({"name": name, "creationTimestamp": ago(3 * 86_400)});
        let crb = json!({"metadata": meta("flannel"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flannel"},
            "subjects": [{"kind": "ServiceAccount", "name": "flannel", "namespace": "kube-flannel"},
                         {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g"}]});
        assert_eq!(
            Value::from(row_cells("clusterrolebindings", &crb, now())),
            json!([
                "flannel",
                "ClusterRole/flannel",
                "3d",
                "",
                "g",
                "kube-flannel/flannel"
            ])
        );
        let rb = json!({"metadata": meta("empty"), "roleRef": {"kind": "Role", "name": "r"}});
        assert_eq!(
            Value::from(row_cells("rolebindings", &rb, now())),
            json!(["empty", "Role/r", "3d", "", "", ""])
        );
        let pc = json!({"metadata": meta("system-node-critical"), "value": 2_000_001_000,
                        "preemptionPolicy": "PreemptLowerPriority"});
        assert_eq!(
            Value::from(row_cells("priorityclasses", &pc, now())),
            json!([
                "system-node-critical",
                2_000_001_000,
                false,
                "3d",
                "PreemptLowerPriority"
            ])
        );
    }
}
