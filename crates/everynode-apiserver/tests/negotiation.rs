//! Content negotiation through the real router (in process, over a memory store): JSON
//! by default, YAML when asked for first, 406 for what the server cannot write.

use axum::body::Body;
use everynode_apiserver::{ApiServer, Authenticator, User, WatchConfig};
use everynode_store::Store;
use http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "test-token";

async fn server() -> ApiServer {
    let auth = Authenticator::new();
    auth.add_token(TOKEN, User::admin());
    ApiServer::new(Store::memory(), auth, WatchConfig::default())
        .await
        .expect("server")
}

/// Status, content type and body of one request.
async fn call(
    s: &ApiServer,
    method: &str,
    uri: &str,
    accept: &str,
    body: Option<Value>,
) -> (u16, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("accept", accept)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let resp = s.router().oneshot(req).await.expect("infallible");
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (code, ct, String::from_utf8_lossy(&bytes).into_owned())
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn yaml_is_served_when_asked_for_first() {
    let s = server().await;
    let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "c", "labels": { "a": "b" } },
        "data": { "k": "line one\nline two", "n": "1" } });
    let (code, _, _) = call(&s, "POST", CMS, "application/json", Some(cm)).await;
    assert_eq!(code, 201);
    let (code, ct, json_body) =
        call(&s, "GET", &format!("{CMS}/c"), "application/json", None).await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let as_json: Value = serde_json::from_str(&json_body).expect("json");

    // The object, and a list, as YAML: the same data.
    let (code, ct, yaml) = call(&s, "GET", &format!("{CMS}/c"), "application/yaml", None).await;
    assert_eq!((code, ct.as_str()), (200, "application/yaml"), "{yaml}");
    let from_yaml: Value = serde_saphyr::from_str(&yaml).expect("yaml");
    assert_eq!(from_yaml, as_json);
    assert!(yaml.contains("kind: ConfigMap"), "{yaml}");
    let accept = "application/yaml, application/json;q=0.9";
    let (code, ct, yaml) = call(&s, "GET", CMS, accept, None).await;
    assert_eq!((code, ct.as_str()), (200, "application/yaml"));
    let list: Value = serde_saphyr::from_str(&yaml).expect("yaml");
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"][0]["data"], as_json["data"]);

    // Errors come as YAML too.
    let (code, ct, yaml) = call(&s, "GET", &format!("{CMS}/nope"), "application/yaml", None).await;
    assert_eq!((code, ct.as_str()), (404, "application/yaml"));
    let status: Value = serde_saphyr::from_str(&yaml).expect("yaml");
    assert_eq!(status["reason"], "NotFound");

    // JSON first still means JSON; a watch cannot be YAML; protobuf alone is refused.
    let accept = "application/json, application/yaml";
    let (_, ct, _) = call(&s, "GET", &format!("{CMS}/c"), accept, None).await;
    assert_eq!(ct, "application/json");
    let (code, _, body) = call(
        &s,
        "GET",
        &format!("{CMS}?watch=true"),
        "application/yaml",
        None,
    )
    .await;
    assert_eq!(code, 406, "{body}");
    let protobuf = "application/vnd.kubernetes.protobuf";
    let (code, _, body) = call(&s, "GET", &format!("{CMS}/c"), protobuf, None).await;
    assert_eq!(code, 406, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("status")["reason"],
        "NotAcceptable"
    );
}

/// An apply must name its field manager (kube-apiserver's PatchOptions validation).
#[tokio::test]
async fn an_apply_without_a_field_manager_is_invalid() {
    let s = server().await;
    let req = Request::builder()
        .method("PATCH")
        .uri(format!("{CMS}/c"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/apply-patch+yaml")
        .body(Body::from(
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" } })
                .to_string(),
        ))
        .expect("request");
    let resp = s.router().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status().as_u16(), 422);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let status: Value = serde_json::from_slice(&bytes).expect("status");
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
}
