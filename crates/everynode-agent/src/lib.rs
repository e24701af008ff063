//! everynode's node agent.
//!
//! An agent registers its Node, keeps the node's Lease in `kube-node-lease` fresh, and
//! runs the pods bound to it, reporting their status — all through the Kubernetes API,
//! so the same agent works against everynode and a real cluster.
//!
//! - [`sim`]: the simulated runtime. One [`sim::Fleet`] drives any number of nodes
//!   (like kwok): one shared pod watch, one lease loop, no per-node tasks.
//! - [`join`]: joining a cluster over the network (CA discovery by hash, bootstrap
//!   token, certificate signing request, stored node credential).
//! - [`node`]: one node run by an `everynode agent` process: registration, re-registration
//!   when its Node disappears, reporting reconnects.
//! - [`process`]: one real node whose containers run as host processes
//!   ([`process::run_node`]), with logs served over mTLS like the kubelet's.

pub mod join;
pub mod node;
pub mod process;
pub mod sim;

/// Annotation naming a Node's runtime: `sim` (simulated) or `process`.
pub const RUNTIME_ANNOTATION: &str = "everynode.io/runtime";
/// Annotation holding a simulated node's index, from which its addresses derive.
pub const SIM_INDEX_ANNOTATION: &str = "everynode.io/sim-index";
/// Annotation on a Node run by its own `everynode agent` process (value: the runtime);
/// `everynode up`'s simulated fleet leaves such nodes alone.
pub const AGENT_ANNOTATION: &str = "everynode.io/agent";
/// Annotation that stops a simulated node (value `"true"`): the fleet stops renewing its
/// Lease, posting its status and playing the kubelet for its pods, as if the machine had
/// gone silent, until the annotation is removed (`everynode node stop|start`).
pub const SIM_STOPPED_ANNOTATION: &str = "everynode.io/sim-stopped";
/// The Kubernetes release the agent reports as its kubelet version.
pub const KUBELET_VERSION: &str = "v1.33.0";
