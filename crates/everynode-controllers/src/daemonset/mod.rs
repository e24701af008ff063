//! The DaemonSet controller: "a pod on every eligible node".
//!
//! - [`plan`](mod@plan): the pure decision function (`plan(&Observed) -> Plan`) and the
//!   objects it builds (pods, revisions); table-tested without a cluster.
//! - [`backoff`]: the failed-pod back-off state the loop keeps between passes.
//!
//! - [`controller`]: the asynchronous loop (caches, expectations, API calls), which only
//!   carries out what [`plan::plan`] decides.

pub mod backoff;
pub mod controller;
pub mod plan;

pub use backoff::FailedPodBackoff;
pub use plan::{Action, Observed, Plan, plan, pod_for_node, slow_start_batches};
