//! everynode's controllers. Each is a pure planning function over the objects it
//! observes ("decide") plus a thin loop that performs the result through the Kubernetes
//! API ("act"); the planning half has no I/O, no async and reads no clock.
//!
//! Layout:
//! - [`daemonset`]: the DaemonSet controller (`docs/daemonset-semantics.md` §5–§15).
//! - [`scheduler`]: binds pending pods to nodes, or says why none fits.
//! - [`endpointslice`]: EndpointSlices and Endpoints for Services with a selector.
//! - [`gc`]: the garbage collector (owner references, orphan and foreground deletion).
//! - [`csr`]: approves and signs kubelet client certificate requests (node join).
//! - [`nodelifecycle`]: silent nodes become Unknown, get unreachable taints, lose pods.
//! - [`rootca`]: the ConfigMap `kube-root-ca.crt` (the cluster CA) in every namespace.
//! - [`satokens`]: long-lived tokens in ServiceAccount token Secrets.
//! - [`runtime`]: the caches and work queue the loops share; [`events`]: Event recording;
//!   [`write`]: writes whose answer is not decoded.

pub mod csr;
pub mod daemonset;
pub mod endpointslice;
pub mod events;
pub mod gc;
pub mod nodelifecycle;
pub mod rootca;
pub mod runtime;
pub mod satokens;
pub mod scheduler;
pub mod write;
