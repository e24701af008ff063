//! Pure logic over the `k8s-openapi` types. No I/O, no async, no clocks read here
//! (callers pass `now`). Everything in this crate is unit-testable in isolation.
//!
//! Layout:
//! - [`selector`]: label selector strings and `LabelSelector` objects; field selectors.
//! - [`smp`]: strategic merge patch (Kubernetes' list merge keys and `$patch` directives).
//! - [`quantity`]: resource quantities (`100m`, `200Mi`) as exact integers.
//! - [`scheduling`]: taints/tolerations, node affinity, daemon-pod eligibility.
//! - [`hash`]: pod-template hashing for `controller-revision-hash`.
//! - [`field`]: field-error types and their Kubernetes rendering.
//! - [`validation`]: object-meta, DaemonSet, Pod, Node, ... validation rules.
//! - [`defaults`]: apps/v1 and core/v1 defaulting.
//! - [`rbac`]: Roles, ClusterRoles and bindings: defaulting, validation, bootstrap policy.
//! - [`priority`]: PriorityClasses and the Priority admission of pods.
//! - [`table`]: kube-apiserver's Table columns and row cells per resource.
//! - [`satoken`]: ServiceAccount tokens (JWTs): issuing, verifying, TokenRequest specs.
//! - [`service_alloc`]: Service cluster-IP and node-port ranges and their allocator.
//! - [`service_table`]: Services with their endpoints, for cluster DNS and a Service proxy.

pub mod defaults;
pub mod field;
pub mod hash;
pub mod priority;
pub mod quantity;
pub mod rbac;
pub mod satoken;
pub mod scheduling;
pub mod selector;
pub mod service_alloc;
pub mod service_table;
pub mod smp;
pub mod table;
pub mod validation;
pub mod warnings;

/// A boolean query parameter as Go's `strconv.ParseBool` (and so kube-apiserver and the
/// kubelet) reads it: `1`, `t`, `T`, `true`, `TRUE`, `True` are true (Python's client
/// sends `True`); anything else is false.
pub fn query_bool(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True")
}
