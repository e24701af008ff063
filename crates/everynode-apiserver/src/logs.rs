//! `pods/<name>/log`. Container output lives with the node agent that runs the pod; the
//! API server answers for pods that have no running container and says so for pods
//! whose node serves no logs (simulated nodes).

use std::collections::HashMap;
use std::sync::Arc;

use axum::response::Response;
use serde_json::Value;

use crate::ServerState;
use crate::error::{ApiError, ApiResult};
use crate::resources;

pub async fn pod_logs(
    st: &Arc<ServerState>,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let res = resources::lookup("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
    let pod = st.registry.get(res, Some(ns), name)?;
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let container = match q.get("container").filter(|c| !c.is_empty()) {
        Some(c) => {
            if !containers.contains(c) {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            c.clone()
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let waiting = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|s| s["name"] == container.as_str()))
        .and_then(|s| {
            s.pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() || waiting.is_some() {
        let reason = waiting.unwrap_or_else(|| "ContainerCreating".into());
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        )));
    }
    Err(ApiError::bad_request(format!(
        "container \"{container}\" in pod \"{name}\" runs on node \"{node}\", whose agent serves no logs"
    )))
}
