//! SelfSubjectReview and SelfSubjectAccessReview through the real router (in process,
//! over a memory store): the answers follow the same authorizer as real requests.

use axum::body::Body;
use everynode_apiserver::{ApiServer, Authenticator, User, WatchConfig};
use everynode_store::Store;
use http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: &str = "admin-token";
const NODE: &str = "node-token";

async fn server() -> ApiServer {
    let auth = Authenticator::new();
    auth.add_token(ADMIN, User::admin());
    auth.add_token(NODE, User::node("n1"));
    ApiServer::new(Store::memory(), auth, WatchConfig::default())
        .await
        .expect("server")
}

async fn post(s: &ApiServer, token: &str, uri: &str, body: Value) -> (u16, Value) {
    post_as(s, token, uri, body, &[]).await
}

/// [`post`] with extra headers (impersonation).
async fn post_as(
    s: &ApiServer,
    token: &str,
    uri: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Body::from(body.to_string())).expect("request");
    let resp = s.router().oneshot(req).await.expect("infallible");
    let code = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

async fn can(s: &ApiServer, token: &str, spec: Value) -> (bool, String) {
    let body = json!({ "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec });
    let (code, v) = post(s, token, SSAR, body).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["kind"], "SelfSubjectAccessReview");
    let allowed = v["status"]["allowed"].as_bool().expect("allowed");
    (
        allowed,
        v["status"]["reason"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn reviews_answer_for_the_caller() {
    let s = server().await;
    let (code, v) = post(
        &s,
        NODE,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview" }),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["status"]["userInfo"]["username"], "system:node:n1");
    assert_eq!(v["status"]["userInfo"]["groups"][0], "system:nodes");

    let anything = json!({ "resourceAttributes": { "verb": "delete", "group": "apps", "resource": "daemonsets", "namespace": "kube-system" } });
    assert!(can(&s, ADMIN, anything.clone()).await.0);
    // A node may read its own Node but not delete DaemonSets or read unrelated Secrets.
    let own = json!({ "resourceAttributes": { "verb": "get", "resource": "nodes", "name": "n1" } });
    assert!(can(&s, NODE, own).await.0);
    // No rule allows it: a bare no. The node authorizer's refusal says why.
    assert_eq!(can(&s, NODE, anything).await, (false, String::new()));
    let secret = json!({ "resourceAttributes": { "verb": "get", "resource": "secrets", "namespace": "default", "name": "s" } });
    let (allowed, reason) = can(&s, NODE, secret).await;
    assert!(!allowed);
    assert!(
        reason.contains("no relationship found between node 'n1'"),
        "{reason}"
    );
    // Everyone signed in may ask.
    let ask = json!({ "resourceAttributes": { "verb": "create", "group": "authorization.k8s.io", "resource": "selfsubjectaccessreviews" } });
    assert!(can(&s, NODE, ask).await.0);
    // Non-resource paths: discovery and health for every user, the rest for the admin.
    let path = |p: &str| json!({ "nonResourceAttributes": { "verb": "get", "path": p } });
    assert!(can(&s, NODE, path("/healthz")).await.0);
    assert!(can(&s, NODE, path("/apis/apps/v1")).await.0);
    assert!(!can(&s, NODE, path("/metrics")).await.0);
    assert!(can(&s, ADMIN, path("/metrics")).await.0);

    // A spec with neither attribute set is invalid; other methods are not routed.
    let (code, v) = post(&s, ADMIN, SSAR, json!({ "spec": {} })).await;
    assert_eq!(code, 422, "{v}");
    let req = Request::builder()
        .uri(SSAR)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .expect("request");
    let resp = s.router().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status().as_u16(), 405);
}

/// `kubectl --as`: the administrator acts as another user (and its groups); nobody
/// else may.
#[tokio::test]
async fn the_administrator_may_impersonate_and_nobody_else() {
    let s = server().await;
    let whoami = |token: &'static str, headers: &'static [(&'static str, &'static str)]| {
        post_as(
            &s,
            token,
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json!({ "kind": "SelfSubjectReview" }),
            headers,
        )
    };
    let (code, v) = whoami(
        ADMIN,
        &[("impersonate-user", "bob"), ("impersonate-group", "devs")],
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        v["status"]["userInfo"],
        json!({ "username": "bob", "groups": ["devs", "system:authenticated"] })
    );
    let (code, v) = whoami(NODE, &[("impersonate-user", "bob")]).await;
    assert_eq!(code, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot impersonate resource \"users\""),
        "{v}"
    );
    let (code, _) = whoami(ADMIN, &[("impersonate-group", "devs")]).await;
    assert_eq!(code, 400);
}

/// A request the authorizer refuses is a 403 naming the resource, its group and the
/// object, as kube-apiserver's Forbidden does.
#[tokio::test]
async fn a_refused_request_names_what_it_asked_for() {
    let s = server().await;
    let body = json!({ "apiVersion": "apps/v1", "kind": "DaemonSet",
                       "metadata": { "name": "ds" }, "spec": {} });
    let (code, v) = post(
        &s,
        NODE,
        "/apis/apps/v1/namespaces/default/daemonsets",
        body,
    )
    .await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["reason"], "Forbidden");
    assert_eq!(
        v["details"],
        json!({ "group": "apps", "kind": "daemonsets" })
    );
    let (code, v) = post(
        &s,
        NODE,
        "/api/v1/namespaces/default/configmaps",
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" } }),
    )
    .await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["details"], json!({ "kind": "configmaps" }));
}
