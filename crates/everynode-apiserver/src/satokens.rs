//! ServiceAccount tokens in the API server: `POST serviceaccounts/NAME/token` (a
//! TokenRequest, what `kubectl create token` sends) and the authenticator for the
//! tokens it and the tokens controller issue. The JWT work is
//! `everynode_api::satoken`'s; this module checks that the objects a token names still
//! back it: its ServiceAccount (same uid), the Pod, Secret or Node it is bound to (same
//! uid, not terminating for more than a minute), and for a legacy token the Secret that
//! holds it.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use everynode_api::satoken::{self, Bound, Claims, Issue, ObjectRef, Verified};
use http::StatusCode;
use serde_json::{Value, json};

use crate::ServerState;
use crate::auth::{GROUP_AUTHENTICATED, User};
use crate::error::{ApiError, ApiResult};
use crate::resources;

const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

fn object(st: &ServerState, plural: &str, ns: Option<&str>, name: &str) -> Option<Value> {
    let res = resources::lookup("", "v1", plural)?;
    st.registry.get(res, ns, name).ok()
}

fn uid_of(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// When the object started terminating, in seconds since the epoch.
fn deleted_at(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
}

/// The object `r` names, if it still exists with the same uid and has not been
/// terminating for longer than the grace kube-apiserver gives.
fn still_there(
    st: &ServerState,
    plural: &str,
    ns: Option<&str>,
    r: &ObjectRef,
    now: i64,
) -> Result<Value, String> {
    let obj = object(st, plural, ns, &r.name)
        .ok_or_else(|| format!("{plural} \"{}\" not found", r.name))?;
    if uid_of(&obj) != r.uid {
        return Err(format!(
            "{plural} \"{}\": the uid in the token is not the object's (deleted and recreated?)",
            r.name
        ));
    }
    if deleted_at(&obj).is_some_and(|t| t < now - satoken::DELETION_GRACE_SECONDS) {
        return Err(format!("{plural} \"{}\" is being deleted", r.name));
    }
    Ok(obj)
}

/// The user a ServiceAccount token speaks for, or None (logged) if it does not verify or
/// the objects behind it are gone.
pub fn authenticate(st: &ServerState, token: &str) -> Option<User> {
    let now = jiff::Timestamp::now().as_second();
    let verified = match st
        .service_account_keys()
        .verify(token, st.api_audiences(), now)
    {
        Ok(v) => v,
        Err(why) => {
            tracing::info!(reason = ?why, "service account token refused");
            return None;
        }
    };
    match user_of(st, &verified, token, now) {
        Ok(u) => Some(u),
        Err(why) => {
            tracing::info!(reason = %why, "service account token refused");
            None
        }
    }
}

fn user_of(st: &ServerState, v: &Verified, token: &str, now: i64) -> Result<User, String> {
    let ns = v.namespace();
    let sa = v.service_account();
    still_there(st, "serviceaccounts", Some(ns), sa, now)?;
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        extra.insert(k.to_string(), vec![v.to_string()]);
    };
    match v {
        Verified::Bound { bound, jti } => {
            if let Some(p) = &bound.pod {
                still_there(st, "pods", Some(ns), p, now)?;
                put(EXTRA_POD_NAME, &p.name);
                put(EXTRA_POD_UID, &p.uid);
            }
            if let Some(s) = &bound.secret {
                still_there(st, "secrets", Some(ns), s, now)?;
            }
            if let Some(n) = &bound.node {
                // A token bound to a pod names the pod's node for information only;
                // one bound to the node needs the node.
                if bound.pod.is_none() {
                    still_there(st, "nodes", None, n, now)?;
                }
                put(EXTRA_NODE_NAME, &n.name);
                put(EXTRA_NODE_UID, &n.uid);
            }
            if let Some(j) = jti {
                put(EXTRA_CREDENTIAL_ID, &format!("JTI={j}"));
            }
        }
        Verified::Legacy { secret, .. } => {
            let s = object(st, "secrets", Some(ns), secret)
                .ok_or_else(|| format!("secrets \"{secret}\" not found"))?;
            let held = s
                .pointer("/data/token")
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            if held.as_deref() != Some(token.as_bytes()) {
                return Err(format!("secrets \"{secret}\" no longer holds this token"));
            }
            if deleted_at(&s).is_some() {
                return Err(format!("secrets \"{secret}\" is being deleted"));
            }
        }
    }
    let mut groups = satoken::groups(ns);
    groups.push(GROUP_AUTHENTICATED.to_string());
    Ok(User {
        name: satoken::user_name(ns, &sa.name),
        groups,
        uid: Some(sa.uid.clone()),
        extra,
    })
}

/// `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`: a token for the
/// ServiceAccount, with the request's audiences (the API server's by default), lifetime
/// (an hour by default) and bound object, answered as the TokenRequest with its status.
pub fn token_request(
    st: &ServerState,
    ns: &str,
    name: &str,
    mut obj: Value,
) -> ApiResult<Response> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: the body must be a JSON object",
        ));
    }
    if obj
        .get("spec")
        .is_some_and(|s| !s.is_object() && !s.is_null())
    {
        return Err(ApiError::bad_request(
            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec must be an object",
        ));
    }
    if let Some(kind) = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && *k != "TokenRequest")
    {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type TokenRequest): {kind}"
        )));
    }
    if obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty() && n != ns)
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let spec = satoken::token_request_spec(&obj, st.api_audiences()).map_err(|errs| {
        ApiError::invalid_kind("TokenRequest", "authentication.k8s.io", "", &errs)
    })?;
    let sa_res = resources::lookup("", "v1", "serviceaccounts")
        .ok_or_else(|| ApiError::internal("serviceaccounts are not served"))?;
    let sa = st.registry.get(sa_res, Some(ns), name)?;
    let mut bound = Bound {
        namespace: ns.to_string(),
        service_account: ObjectRef {
            name: name.to_string(),
            uid: uid_of(&sa).to_string(),
        },
        ..Bound::default()
    };
    if let Some(r) = &spec.bound_object {
        let get = |plural: &str, scoped: bool| {
            let res = resources::lookup("", "v1", plural)
                .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
            st.registry.get(res, scoped.then_some(ns), &r.name)
        };
        let obj = match (r.group(), r.kind.as_str()) {
            ("", "Pod") => {
                let pod = get("pods", true)?;
                let runs_as = pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if runs_as != name {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount \"{name}\" to pod running with different serviceaccount name."
                    )));
                }
                bound.pod = Some(ObjectRef {
                    name: r.name.clone(),
                    uid: uid_of(&pod).to_string(),
                });
                // The pod's node goes into the token too (for the node-name extra).
                let node_name = pod.pointer("/spec/nodeName").and_then(Value::as_str);
                if let Some(node) = node_name.and_then(|n| object(st, "nodes", None, n)) {
                    bound.node = Some(ObjectRef {
                        name: node_name.unwrap_or_default().to_string(),
                        uid: uid_of(&node).to_string(),
                    });
                }
                pod
            }
            ("", "Secret") => {
                let secret = get("secrets", true)?;
                bound.secret = Some(ObjectRef {
                    name: r.name.clone(),
                    uid: uid_of(&secret).to_string(),
                });
                secret
            }
            ("", "Node") => {
                let node = get("nodes", false)?;
                bound.node = Some(ObjectRef {
                    name: r.name.clone(),
                    uid: uid_of(&node).to_string(),
                });
                node
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {}",
                    r.gvk_string()
                )));
            }
        };
        if let Some(uid) = r.uid.as_deref().filter(|u| *u != uid_of(&obj)) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated",
                    r.kind, r.name
                ),
            )
            .with_details(json!({ "name": r.name, "kind": r.kind })));
        }
    }
    let now = jiff::Timestamp::now();
    let claims = Claims::bound(Issue {
        bound,
        audiences: spec.audiences.clone(),
        expiration_seconds: spec.expiration_seconds,
        now: now.as_second(),
        jti: uuid::Uuid::new_v4().to_string(),
    });
    let token = st
        .service_account_keys()
        .sign(&claims)
        .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    let expires = jiff::Timestamp::from_second(now.as_second() + spec.expiration_seconds)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    obj["apiVersion"] = json!("authentication.k8s.io/v1");
    obj["kind"] = json!("TokenRequest");
    let meta = obj
        .get("metadata")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    obj["metadata"] = meta;
    if obj["metadata"].get("creationTimestamp").is_none() {
        obj["metadata"]["creationTimestamp"] = Value::Null;
    }
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    obj["spec"]["audiences"] = json!(spec.audiences);
    obj["spec"]["expirationSeconds"] = json!(spec.expiration_seconds);
    if obj["spec"].get("boundObjectRef").is_none() {
        obj["spec"]["boundObjectRef"] = Value::Null;
    }
    obj["status"] = json!({
        "token": token,
        "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    Ok(crate::handlers::json_response(StatusCode::CREATED, &obj))
}

/// `/.well-known/openid-configuration`: where the issuer's keys are, for those who
/// check the cluster's ServiceAccount tokens themselves.
pub fn openid_configuration() -> Response {
    crate::handlers::json_response(
        StatusCode::OK,
        &json!({
            "issuer": satoken::ISSUER,
            "jwks_uri": format!("{}/openid/v1/jwks", satoken::ISSUER),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }),
    )
}

/// `/openid/v1/jwks`: the public half of the signing key.
pub fn jwks(st: &ServerState) -> Response {
    let body = serde_json::to_vec(&st.service_account_keys().jwks()).unwrap_or_default();
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/jwk-set+json")],
        body,
    )
        .into_response()
}
