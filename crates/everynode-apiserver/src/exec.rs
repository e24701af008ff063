//! `pods/<name>/exec`. As kube-apiserver does, the server checks the pod and container,
//! then proxies the client's upgrade request to the node's agent
//! (`https://NODE_IP:PORT/exec/NS/POD/CONTAINER?command=..&stdin=..`, the endpoint
//! `pods/log` uses, with the same client certificate) and, once the agent has switched
//! protocols, copies bytes both ways until either side closes. The streaming protocol
//! (WebSocket `v5.channel.k8s.io`/`v4.channel.k8s.io`) is the agent's business; an agent
//! that refuses (a container that does not run, SPDY) answers with a Status, passed on.
//!
//! Pods on simulated nodes, whose agents run nothing, get a 400 saying so.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderName, Method, StatusCode, header};
use serde_json::Value;

use crate::ServerState;
use crate::error::{ApiError, ApiResult};
use crate::resources;

/// Request headers passed on to the agent: the upgrade handshake's.
const REQUEST_HEADERS: &[HeaderName] = &[
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
];
/// Response headers passed back to the client with the agent's 101.
const RESPONSE_HEADERS: &[HeaderName] = &[
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_ACCEPT,
    header::SEC_WEBSOCKET_PROTOCOL,
];
/// SPDY's version negotiation header (passed both ways; the agent refuses SPDY).
const STREAM_PROTOCOL: &str = "x-stream-protocol-version";

/// Which container an exec is for: the one asked for, else the pod's only container.
/// Errors are kube-apiserver's.
pub fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> ApiResult<String> {
    let names = |p: &str| -> Vec<String> {
        pod.pointer(p)
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let main = names("/spec/containers");
    let init = names("/spec/initContainers");
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => {
            let ephemeral = names("/spec/ephemeralContainers");
            if main.iter().chain(&init).chain(&ephemeral).any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match main.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    main.join(" ")
                );
                if !init.is_empty() {
                    msg.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::bad_request(msg))
            }
        },
    }
}

/// Whether the request asks to switch protocols (`Connection: Upgrade` and an
/// `Upgrade` header).
fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// The agent's query: the client's, without `container` (part of the path).
fn agent_query(raw: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if k != "container" {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

/// Checks an exec request and proxies it to the pod's node agent.
pub async fn pod_exec(
    st: &Arc<ServerState>,
    ns: &str,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
    raw_query: &str,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> ApiResult<Response> {
    let res = resources::lookup("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
    let pod = st.registry.get(res, Some(ns), name)?;
    let asked = form_urlencoded::parse(raw_query.as_bytes())
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.into_owned());
    let container = pick_container(&pod, name, asked.as_deref())?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let nodes = resources::lookup("", "v1", "nodes").ok_or_else(ApiError::path_not_found)?;
    let node = st.registry.get(nodes, None, node_name).ok();
    let simulated = node
        .as_ref()
        .and_then(|n| n.pointer("/metadata/annotations/everynode.io~1runtime"))
        .and_then(Value::as_str)
        == Some("sim");
    let endpoint = node.as_ref().and_then(crate::logs::node_endpoint);
    let (Some(cfg), Some((ip, port)), false) = (st.kubelet_client.get(), endpoint, simulated)
    else {
        return Err(ApiError::bad_request(format!(
            "pod \"{name}\" runs on node \"{node_name}\", and everynode's node agents do not run commands in containers"
        )));
    };
    if !is_upgrade(headers) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let Some(on_upgrade) = on_upgrade else {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded (use HTTP/1.1)",
        ));
    };
    let path = format!(
        "/exec/{}/{}/{}?{}",
        urlencoding::encode(ns),
        urlencoding::encode(name),
        urlencoding::encode(&container),
        agent_query(raw_query)
    );
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!("the node's agent at {ip}:{port}: {e}"))
    };
    let tls = crate::logs::connect(cfg.clone(), &ip, port).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut req = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, format!("{ip}:{port}"));
    for h in REQUEST_HEADERS
        .iter()
        .chain(&[HeaderName::from_static(STREAM_PROTOCOL)])
    {
        for v in headers.get_all(h) {
            req = req.header(h, v);
        }
    }
    let req = req
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| unreachable(&e))?;
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .map_err(|_| unreachable(&"no answer within 30s"))?
        .map_err(|e| unreachable(&e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(crate::logs::agent_refusal(resp).await);
    }
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for h in RESPONSE_HEADERS
        .iter()
        .chain(&[HeaderName::from_static(STREAM_PROTOCOL)])
    {
        for v in resp.headers().get_all(h) {
            answer = answer.header(h, v);
        }
    }
    let answer = answer
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (pod_name, ns) = (name.to_string(), ns.to_string());
    tokio::spawn(async move {
        let agent = match hyper::upgrade::on(resp).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(pod = %pod_name, namespace = %ns, error = %e, "exec: the agent's upgrade");
                return;
            }
        };
        let client = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(pod = %pod_name, namespace = %ns, error = %e, "exec: the client's upgrade");
                return;
            }
        };
        let mut agent = hyper_util::rt::TokioIo::new(agent);
        let mut client = hyper_util::rt::TokioIo::new(client);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
    });
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_are_picked_as_kube_apiserver_does() {
        let one = json!({ "spec": { "containers": [{ "name": "a" }] } });
        assert_eq!(pick_container(&one, "p", None).expect("only one"), "a");
        assert_eq!(pick_container(&one, "p", Some("")).expect("only one"), "a");
        let many = json!({ "spec": {
            "containers": [{ "name": "a" }, { "name": "b" }],
            "initContainers": [{ "name": "i" }],
        } });
        assert_eq!(pick_container(&many, "p", Some("i")).expect("init"), "i");
        assert_eq!(
            pick_container(&many, "p", None).expect_err("which").message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(
            pick_container(&many, "p", Some("zz"))
                .expect_err("unknown")
                .message,
            "container zz is not valid for pod p"
        );
        assert_eq!(
            pick_container(&json!({}), "p", None)
                .expect_err("none")
                .message,
            "a container name must be specified for pod p"
        );
    }

    #[test]
    fn upgrades_and_queries() {
        let mut h = HeaderMap::new();
        assert!(!is_upgrade(&h));
        h.insert(
            header::CONNECTION,
            "keep-alive, Upgrade".parse().expect("v"),
        );
        assert!(!is_upgrade(&h));
        h.insert(header::UPGRADE, "websocket".parse().expect("v"));
        assert!(is_upgrade(&h));
        assert_eq!(
            agent_query("command=sh&command=-c&command=echo+a%26b&container=c&stdout=true"),
            "command=sh&command=-c&command=echo+a%26b&stdout=true"
        );
    }
}
