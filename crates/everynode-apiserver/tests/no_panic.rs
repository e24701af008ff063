//! Nothing a client sends may panic the server: property tests that push arbitrary
//! bodies, content types, query strings and patches through the real router (in
//! process, over a memory store) and require a well-formed response every time.

use axum::body::Body;
use everynode_apiserver::{ApiServer, Authenticator, User, WatchConfig};
use everynode_store::Store;
use http::Request;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "test-token";

fn server(rt: &tokio::runtime::Runtime) -> ApiServer {
    rt.block_on(async {
        let auth = Authenticator::new();
        auth.add_token(TOKEN, User::admin());
        ApiServer::new(Store::memory(), auth, WatchConfig::default())
            .await
            .expect("server")
    })
}

fn call(
    rt: &tokio::runtime::Runtime,
    s: &ApiServer,
    method: &str,
    uri: &str,
    ct: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    rt.block_on(async {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", ct)
            .body(Body::from(body))
            .expect("request");
        let resp = s.router().oneshot(req).await.expect("infallible");
        let code = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    })
}

/// JSON built from Kubernetes-flavoured keys, so mutations reach deep into admission.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("metadata".to_string()),
        Just("spec".to_string()),
        Just("status".to_string()),
        Just("name".to_string()),
        Just("namespace".to_string()),
        Just("labels".to_string()),
        Just("selector".to_string()),
        Just("matchLabels".to_string()),
        Just("matchExpressions".to_string()),
        Just("template".to_string()),
        Just("containers".to_string()),
        Just("image".to_string()),
        Just("ports".to_string()),
        Just("containerPort".to_string()),
        Just("updateStrategy".to_string()),
        Just("rollingUpdate".to_string()),
        Just("maxUnavailable".to_string()),
        Just("maxSurge".to_string()),
        Just("tolerations".to_string()),
        Just("finalizers".to_string()),
        Just("ownerReferences".to_string()),
        Just("$patch".to_string()),
        Just("$setElementOrder/containers".to_string()),
        Just("$deleteFromPrimitiveList/finalizers".to_string()),
        Just("$retainKeys".to_string()),
        Just("volumes".to_string()),
        Just("resources".to_string()),
        Just("requests".to_string()),
        "[a-zA-Z/.$-]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!("replace")),
        Just(json!("delete")),
        Just(json!("10%")),
        Just(json!("app")),
        ".{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn valid_ds() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": { "name": "ds", "labels": { "app": "x" } },
        "spec": { "selector": { "matchLabels": { "app": "x" } },
                  "template": { "metadata": { "labels": { "app": "x" } },
                                "spec": { "containers": [{ "name": "c", "image": "i:1", "ports": [{ "containerPort": 80 }] }] } } }
    })
}

const COLLECTIONS: &[&str] = &[
    "/apis/apps/v1/namespaces/default/daemonsets",
    "/api/v1/namespaces/default/pods",
    "/api/v1/nodes",
    "/api/v1/namespaces",
    "/apis/apps/v1/namespaces/default/controllerrevisions",
    "/api/v1/namespaces/default/events",
    "/apis/events.k8s.io/v1/namespaces/default/events",
    "/apis/coordination.k8s.io/v1/namespaces/default/leases",
    "/api/v1/namespaces/default/services",
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_creates_get_a_status(idx in 0..COLLECTIONS.len(), body in arb_json()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let s = server(&rt);
        let (code, resp) = call(&rt, &s, "POST", COLLECTIONS[idx], "application/json", serde_json::to_vec(&body).expect("json"));
        prop_assert!(code == 201 || (400..600).contains(&code), "code {}", code);
        if code != 201 {
            prop_assert_eq!(&resp["kind"], "Status");
        }
    }

    #[test]
    fn arbitrary_patches_never_panic(kind in 0..3usize, patch in arb_json()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let s = server(&rt);
        let (code, _) = call(&rt, &s, "POST", COLLECTIONS[0], "application/json", serde_json::to_vec(&valid_ds()).expect("json"));
        prop_assert_eq!(code, 201);
        let ct = ["application/strategic-merge-patch+json", "application/merge-patch+json", "application/json-patch+json"][kind];
        let (code, resp) = call(&rt, &s, "PATCH", "/apis/apps/v1/namespaces/default/daemonsets/ds", ct, serde_json::to_vec(&patch).expect("json"));
        prop_assert!(code == 200 || (400..600).contains(&code), "code {}", code);
        if code != 200 {
            prop_assert_eq!(&resp["kind"], "Status");
        }
    }

    #[test]
    fn arbitrary_bytes_and_queries_never_panic(body in prop::collection::vec(any::<u8>(), 0..256), q in "[a-vx-zA-Z=&%+,()!]{0,40}", ct_idx in 0..4usize) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let s = server(&rt);
        let ct = ["application/json", "application/yaml", "text/plain", "application/strategic-merge-patch+json"][ct_idx];
        for (m, uri) in [("POST", format!("{}?{q}", COLLECTIONS[1])), ("GET", format!("{}?{q}", COLLECTIONS[1])),
                         ("PATCH", format!("{}/x?{q}", COLLECTIONS[0])), ("DELETE", format!("{}/x?{q}", COLLECTIONS[2]))] {
            let (code, _) = call(&rt, &s, m, &uri, ct, body.clone());
            prop_assert!((200..600).contains(&code));
        }
    }
}
