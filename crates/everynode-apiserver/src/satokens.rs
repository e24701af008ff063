//! ServiceAccount tokens in the API server: `POST serviceaccounts/NAME/token` (a
//! TokenRequest, what `kubectl create token` sends) and the authenticator for the
//! tokens it and the tokens controller issue. The JWT work is
//! `everynode_api::satoken`'s; this module checks that the objects a token names still
//! back it: its ServiceAccount (same uid), the Pod, Secret or Node it is bound to (same
//! uid, not terminating for more than a minute), and for a legacy token the Secret that
//! holds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use everynode_api::satoken::{self, Bound, Claims, Issue, ObjectRef, Verified};
use http::StatusCode;
use serde_json::{Value, json};

use crate::ServerState;
use crate::auth::{GROUP_AUTHENTICATED, User};
use crate::error::{ApiError, ApiResult};
use crate::registry::{Part, WriteOptions, format_time};
use crate::resources;
use everynode_api::field::FieldError;

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

/// How many checked signatures are remembered (then forgotten all at once).
const VERIFIED_TOKENS: usize = 4096;

/// The claims of a token signed with the server's key: remembered from an earlier
/// request, or verified now (and remembered).
fn signed_claims(st: &ServerState, token: &str) -> Result<Arc<Claims>, satoken::Refusal> {
    let lock = || st.verified_tokens.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = lock().get(token) {
        return Ok(c.clone());
    }
    let claims = Arc::new(st.service_account_keys().verify_signature(token)?);
    let mut cache = lock();
    if cache.len() >= VERIFIED_TOKENS {
        cache.clear();
    }
    cache.insert(token.into(), claims.clone());
    Ok(claims)
}

/// The user a ServiceAccount token speaks for, or None (logged) if it does not verify or
/// the objects behind it are gone.
pub fn authenticate(st: &Arc<ServerState>, token: &str) -> Option<User> {
    let now = jiff::Timestamp::now().as_second();
    let verified = match signed_claims(st, token)
        .and_then(|c| Claims::clone(&c).check(st.api_audiences(), now))
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

/// A legacy token's Secret carries the day (UTC) its token was last used, updated at
/// most once a day, as kube-apiserver's legacy token tracking does.
pub const LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";

/// Marks legacy token Secret `secret` of `ns` as used today, unless its label says so
/// already (in the background: the request does not wait for the write).
fn mark_used(st: &Arc<ServerState>, ns: &str, secret: &str, label: Option<&str>) {
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    if label == Some(today.as_str()) {
        return;
    }
    let (Ok(rt), Some(res)) = (
        tokio::runtime::Handle::try_current(),
        resources::lookup("", "v1", "secrets"),
    ) else {
        return;
    };
    let (st, ns, secret) = (st.clone(), ns.to_string(), secret.to_string());
    rt.spawn(async move {
        let result = st
            .registry
            .update(res, Some(&ns), &secret, Part::Main, &WriteOptions::default(), |cur| {
                let mut next = cur.clone();
                if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                if !next["metadata"]["labels"].is_object() {
                    next["metadata"]["labels"] = json!({});
                }
                next["metadata"]["labels"][LAST_USED_LABEL] = json!(today);
                Ok(next)
            })
            .await;
        if let Err(e) = result {
            tracing::debug!(namespace = %ns, secret = %secret, error = %e.message, "marking a legacy token used");
        }
    });
}

fn user_of(st: &Arc<ServerState>, v: &Verified, token: &str, now: i64) -> Result<User, String> {
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
            let last_used = s
                .pointer("/metadata/labels")
                .and_then(|l| l.get(LAST_USED_LABEL))
                .and_then(Value::as_str)
                .map(str::to_string);
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
            mark_used(st, ns, secret, last_used.as_deref());
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
/// The steps and their order are kube-apiserver's (`pkg/registry/core/serviceaccount/
/// storage/token.go`): the body's name and namespace, the ServiceAccount, validation,
/// the bound object.
pub fn token_request(
    st: &ServerState,
    ns: &str,
    name: &str,
    mut obj: Value,
) -> ApiResult<Response> {
    const KIND: &str = "TokenRequest";
    const GROUP: &str = "authentication.k8s.io";
    let undecodable = |why: &str| {
        ApiError::bad_request(format!(
            "{KIND} in version \"v1\" cannot be handled as a {KIND}: {why}"
        ))
    };
    if !obj.is_object() {
        return Err(undecodable("the body must be a JSON object"));
    }
    if let Some(e) = st
        .openapi
        .check_schema("io.k8s.api.authentication.v1.TokenRequest", &obj)
        .type_error
    {
        return Err(undecodable(&e));
    }
    if let Some(kind) = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && *k != KIND)
    {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {KIND}): {kind}"
        )));
    }
    let meta = |field: &str| {
        obj.pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    for (field, want, rule) in [
        (
            "name",
            name,
            "must match the service account name if specified",
        ),
        (
            "namespace",
            ns,
            "must match the service account namespace if specified",
        ),
    ] {
        if let Some(given) = meta(field).filter(|g| g != want) {
            let err = FieldError::invalid(format!("metadata.{field}"), &given, rule);
            return Err(ApiError::invalid_kind(KIND, GROUP, name, &[err]));
        }
    }
    let sa_res = resources::lookup("", "v1", "serviceaccounts")
        .ok_or_else(|| ApiError::internal("serviceaccounts are not served"))?;
    let sa = st.registry.get(sa_res, Some(ns), name)?;
    let spec = satoken::token_request_spec(&obj, st.api_audiences())
        .map_err(|errs| ApiError::invalid_kind(KIND, GROUP, "", &errs))?;
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
        let found = match (r.group(), r.kind.as_str()) {
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
                // The pod's node goes into the token too (its uid only if it exists).
                if let Some(node) = pod
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                {
                    bound.node = Some(ObjectRef {
                        name: node.to_string(),
                        uid: object(st, "nodes", None, node)
                            .map(|n| uid_of(&n).to_string())
                            .unwrap_or_default(),
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
        if let Some(uid) = r.uid.as_deref().filter(|u| *u != uid_of(&found)) {
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
    // A pod's token at the kubelet's default lifetime (and for the API server) is valid
    // for a year but flagged as stale after the lifetime asked for, as kube-apiserver
    // does with --service-account-extend-token-expiration (kubeadm's default).
    let extended = bound.pod.is_some()
        && spec.expiration_seconds == satoken::KUBELET_EXPIRATION_SECONDS
        && spec
            .audiences
            .iter()
            .all(|a| st.api_audiences().contains(a));
    let now = jiff::Timestamp::now();
    let claims = Claims::bound(Issue {
        bound,
        audiences: spec.audiences.clone(),
        expiration_seconds: if extended {
            satoken::EXTENDED_EXPIRATION_SECONDS
        } else {
            spec.expiration_seconds
        },
        warn_after: extended.then_some(now.as_second() + spec.expiration_seconds),
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
    obj["kind"] = json!(KIND);
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["name"] = json!(name);
    obj["metadata"]["namespace"] = json!(ns);
    obj["metadata"]["creationTimestamp"] = json!(format_time(now));
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    obj["spec"]["audiences"] = json!(spec.audiences);
    obj["spec"]["expirationSeconds"] = json!(spec.expiration_seconds);
    if obj["spec"].get("boundObjectRef").is_none() {
        obj["spec"]["boundObjectRef"] = Value::Null;
    }
    obj["status"] = json!({ "token": token, "expirationTimestamp": format_time(expires) });
    Ok(crate::handlers::json_response(StatusCode::CREATED, &obj))
}

/// `/.well-known/openid-configuration`: where the issuer's keys are, for those who
/// check the cluster's ServiceAccount tokens themselves.
pub fn openid_configuration() -> Response {
    let mut r = crate::handlers::json_response(
        StatusCode::OK,
        &json!({
            "issuer": satoken::ISSUER,
            "jwks_uri": format!("{}/openid/v1/jwks", satoken::ISSUER),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static(CACHE_AN_HOUR),
    );
    r
}

/// How long clients may keep the issuer's documents (kube-apiserver's header).
const CACHE_AN_HOUR: &str = "public, max-age=3600";

/// `/openid/v1/jwks`: the public half of the signing key.
pub fn jwks(st: &ServerState) -> Response {
    let body = serde_json::to_vec(&st.service_account_keys().jwks()).unwrap_or_default();
    (
        StatusCode::OK,
        [
            (http::header::CONTENT_TYPE, "application/jwk-set+json"),
            (http::header::CACHE_CONTROL, CACHE_AN_HOUR),
        ],
        body,
    )
        .into_response()
}
