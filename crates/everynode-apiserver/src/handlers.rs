//! The request pipeline: authenticate → route → verb handler → response shaping
//! (JSON, Table or PartialObjectMetadata). One entry point, [`dispatch`], serves every
//! path; the resource verbs are generic over the resource table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use crate::ServerState;
use crate::auth::{self, User};
use crate::error::{ApiError, ApiResult, success_status};
use crate::list::{self, Filter};
use crate::patch::{self, PatchType};
use crate::registry::{Created, DeleteOptions, Part, Updated, WriteOptions, name_of};
use crate::request::{
    self, Output, Route, Target, decode_body, media_type, negotiate, parse_query,
};
use crate::resources::{self, ResourceInfo, Strategy};
use crate::tables::{self, IncludeObject};
use crate::{discovery, openapi};
use crate::{namespaces, watch};
use k8s_openapi::api::rbac::v1::PolicyRule;

pub(crate) fn json_response(code: StatusCode, v: &Value) -> Response {
    let mut body = Vec::with_capacity(1024);
    if serde_json::to_writer(&mut body, v).is_err() {
        body.clear();
    }
    (
        code,
        [(http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn bytes_response(ct: &'static str, b: bytes::Bytes) -> Response {
    (StatusCode::OK, [(http::header::CONTENT_TYPE, ct)], b).into_response()
}

/// kube-apiserver's version document (everynode implements the 1.33 API).
pub fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": crate::openapi::GIT_VERSION,
        "gitCommit": concat!("everynode-", env!("CARGO_PKG_VERSION")), "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
        "emulationMajor": "1", "emulationMinor": "33", "minCompatibilityMajor": "1", "minCompatibilityMinor": "32",
    })
}

/// The single axum handler behind every path.
pub async fn dispatch(State(st): State<Arc<ServerState>>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let route = request::parse_path(parts.uri.path());
    if let Route::Health(check) = &route {
        return health(&st, check, parts.uri.query());
    }
    let Some(user) = authenticate(&st, &parts, &route) else {
        return ApiError::unauthorized().into_response();
    };
    let user = match auth::impersonated(user, &parts.headers, &NoFacts(&st)) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let q = parse_query(parts.uri.query());
    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let result = match route {
        Route::Version => Ok(json_response(StatusCode::OK, &version_info())),
        Route::ApiVersions => Ok(match discovery::wants_aggregated(accept.as_deref()) {
            Some(v) => aggregated(discovery::aggregated(true, v), v),
            None => json_response(StatusCode::OK, &discovery::api_versions()),
        }),
        Route::ApiGroups => Ok(match discovery::wants_aggregated(accept.as_deref()) {
            Some(v) => aggregated(discovery::aggregated(false, v), v),
            None => json_response(StatusCode::OK, &discovery::api_groups()),
        }),
        Route::GroupVersion { group, version } if version.is_empty() => {
            discovery::api_group(&group)
                .map(|g| json_response(StatusCode::OK, &g))
                .ok_or_else(ApiError::path_not_found)
        }
        Route::GroupVersion { group, version } => discovery::resource_list(&group, &version)
            .map(|l| json_response(StatusCode::OK, &l))
            .ok_or_else(ApiError::path_not_found),
        Route::OpenApiV3Index => Ok(bytes_response("application/json", st.openapi.index())),
        Route::OpenApiV3 { path } => st
            .openapi
            .doc(&path)
            .map(|d| bytes_response("application/json", d))
            .ok_or_else(ApiError::path_not_found),
        Route::OpenApiV2 => {
            let protobuf = accept.as_deref().is_some_and(|a| a.contains("protobuf"));
            // The protobuf media type itself is not a valid MIME type (`@`), and client-go
            // parses the response type, so answer with a neutral one.
            let ct = if protobuf {
                "application/octet-stream"
            } else {
                "application/json"
            };
            Ok(bytes_response(ct, openapi::v2_document(protobuf).into()))
        }
        Route::NotFound => Err(ApiError::path_not_found()),
        Route::Metrics => {
            non_resource(&st, &user, &parts.method, "/metrics").map(|()| metrics(&st))
        }
        Route::IssuerDiscovery => {
            non_resource(&st, &user, &parts.method, auth::ISSUER_DISCOVERY_PATHS[0])
                .map(|()| crate::satokens::openid_configuration())
        }
        Route::IssuerKeys => {
            non_resource(&st, &user, &parts.method, auth::ISSUER_DISCOVERY_PATHS[1])
                .map(|()| crate::satokens::jwks(&st))
        }
        Route::Health(_) => Err(ApiError::path_not_found()),
        Route::Resource(t) if is_pod_exec(&parts.method, &t) => {
            let ns = t.namespace.clone().unwrap_or_default();
            let name = t.name.clone().unwrap_or_default();
            match authorize(&user, &parts.method, &t, Some(&ns), &q, &st) {
                Err(e) => Err(e),
                Ok(()) => {
                    crate::exec::pod_exec(
                        &st,
                        &ns,
                        &name,
                        &parts.method,
                        &parts.headers,
                        parts.uri.query().unwrap_or(""),
                        parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
                    )
                    .await
                }
            }
        }
        Route::Resource(t) => {
            let deprecated = deprecation(t.res);
            let answer = resource(
                &st,
                &user,
                &parts.method,
                &parts.headers,
                t,
                q,
                accept.as_deref(),
                body,
            )
            .await
            .unwrap_or_else(IntoResponse::into_response);
            Ok(match deprecated {
                Some(w) => with_warnings(answer, &[w.to_string()]),
                None => answer,
            })
        }
        Route::Review(r) => review(&st, &user, &parts.method, &parts.headers, r, body).await,
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `kubectl auth whoami` (a SelfSubjectReview: who the server takes the caller for) and
/// `kubectl auth can-i` (a SelfSubjectAccessReview: whether the caller may do what the
/// spec describes, decided by the same authorizer as real requests). Nothing is stored.
async fn review(
    st: &ServerState,
    user: &User,
    method: &Method,
    headers: &HeaderMap,
    r: &discovery::Review,
    body: Body,
) -> ApiResult<Response> {
    if *method != Method::POST {
        return Err(ApiError::method_not_routed());
    }
    let media = media_type(
        headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut obj = decode_body(&media, &read_body(body).await?)?;
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: the body must be a JSON object",
            r.kind, r.version, r.kind
        )));
    }
    obj["apiVersion"] = json!(format!("{}/{}", r.group, r.version));
    obj["kind"] = json!(r.kind);
    obj["metadata"] = json!({ "creationTimestamp": null });
    obj["status"] = match r.kind {
        "SelfSubjectReview" => {
            let mut info = json!({ "username": user.name });
            if let Some(uid) = &user.uid {
                info["uid"] = json!(uid);
            }
            info["groups"] = json!(user.groups);
            if !user.extra.is_empty() {
                info["extra"] = json!(user.extra);
            }
            json!({ "userInfo": info })
        }
        // The administrator may do anything; other users' permissions depend on the
        // objects (a node's on the pods bound to it), which rules cannot list.
        "SelfSubjectRulesReview" if user.is_admin() => json!({
            "resourceRules": [{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }],
            "nonResourceRules": [{ "verbs": ["*"], "nonResourceURLs": ["*"] }],
            "incomplete": false,
        }),
        // Anyone else: what the stored RBAC bindings grant (the bootstrap ones give
        // everyone signed in the self-reviews and the discovery paths) in the namespace
        // asked about.
        "SelfSubjectRulesReview" if user.node_name().is_none() && !user.is_bootstrap() => {
            let ns = obj
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let mut rules = Vec::new();
            let mut non_resource = Vec::new();
            for r in stored_rbac_rules(st, user, ns) {
                match &r.non_resource_urls {
                    Some(urls) if !urls.is_empty() => {
                        non_resource.push(json!({ "verbs": r.verbs, "nonResourceURLs": urls }))
                    }
                    _ => rules.push(json!({
                        "verbs": r.verbs, "apiGroups": r.api_groups,
                        "resources": r.resources, "resourceNames": r.resource_names,
                    })),
                }
            }
            json!({
                "resourceRules": rules,
                "nonResourceRules": non_resource,
                "incomplete": false,
            })
        }
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [], "nonResourceRules": [], "incomplete": true,
            "evaluationError": "this user's permissions depend on the objects they name; ask for one with `kubectl auth can-i VERB RESOURCE`",
        }),
        _ => access_review(st, user, obj.get("spec").unwrap_or(&Value::Null))?,
    };
    Ok(json_response(StatusCode::CREATED, &obj))
}

/// The status of a SelfSubjectAccessReview whose spec is `spec`.
fn access_review(st: &ServerState, user: &User, spec: &Value) -> ApiResult<Value> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    // The verdict, and what "no rule allows it" reads like for this request (to tell it
    // from a refusal with a reason).
    let (verdict, plain_no) = if let Some(ra) =
        spec.get("resourceAttributes").filter(|v| v.is_object())
    {
        let (verb, group, resource) = (text(ra, "verb"), text(ra, "group"), text(ra, "resource"));
        let (sub, namespace, name) = (
            text(ra, "subresource"),
            text(ra, "namespace"),
            text(ra, "name"),
        );
        fn some(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        let opt = |s: &str| some(s).map(str::to_string);
        let attrs = auth::Attributes {
            verb: &verb,
            group: &group,
            resource: &resource,
            subresource: some(&sub),
            namespace: some(&namespace),
            name: some(&name),
        };
        // The facts the node authorizer asks for (where a pod is bound, who uses a
        // Secret) come from the store, for the object the review names.
        let known = resources::RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == resource);
        let verdict = match known {
            Some(res) => {
                let t = Target {
                    res,
                    namespace: opt(&namespace),
                    name: opt(&name),
                    subresource: opt(&sub),
                };
                let facts = StoreFacts {
                    st,
                    t: &t,
                    ns: t.namespace.as_deref(),
                };
                auth::authorize(user, &attrs, &facts)
            }
            None => auth::authorize(user, &attrs, &NoFacts(st)),
        };
        (verdict, Some(attrs.rbac_denial(user)))
    } else if let Some(nra) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        let path = text(nra, "path");
        let verdict = auth::authorize_non_resource(
            user,
            &text(nra, "verb"),
            &path,
            &stored_rbac_rules(st, user, None),
        );
        // RBAC's refusal of a path is a plain one (no reason).
        let plain = verdict.as_ref().err().cloned();
        (verdict, plain)
    } else {
        return Err(ApiError::new(
            422,
            "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    Ok(match verdict {
        Ok(()) => json!({ "allowed": true }),
        // A plain "no rule allows it" carries no reason (kubectl prints a bare "no");
        // the node authorizer's refusals say why.
        Err(reason) if Some(&reason) == plain_no.as_ref() => json!({ "allowed": false }),
        Err(reason) => json!({ "allowed": false, "reason": reason }),
    })
}

/// Facts about an object the server does not serve: nothing is bound, nothing used.
/// The facts of a review that names no object the server knows: no pod, no Secret; the
/// RBAC rules still come from the store.
struct NoFacts<'a>(&'a ServerState);

impl auth::Facts for NoFacts<'_> {
    fn pod_binding(&self) -> auth::PodBinding {
        auth::PodBinding::Missing
    }

    fn secret_used_by(&self, _node: &str) -> bool {
        false
    }

    fn rbac_rules(&self, user: &User, namespace: Option<&str>) -> Vec<PolicyRule> {
        stored_rbac_rules(self.0, user, namespace)
    }
}

/// Authorizes a request for a non-resource path (only GET is served on them), with
/// kube-apiserver's refusal: `forbidden: User "u" cannot get path "/metrics"`.
fn non_resource(st: &ServerState, user: &User, method: &Method, path: &str) -> ApiResult<()> {
    let verb = match *method {
        Method::GET => "get",
        Method::HEAD => "head",
        _ => return Err(ApiError::method_not_routed()),
    };
    // (The administrator's requests need no look at the stored bindings.)
    if user.is_admin() {
        return Ok(());
    }
    auth::authorize_non_resource(user, verb, path, &stored_rbac_rules(st, user, None))
        .map_err(|why| ApiError::forbidden(format!("forbidden: {why}")))
}

/// The rules the stored ClusterRoleBindings (and, in `namespace`, RoleBindings) grant
/// `user`, read from the store's memory: a binding to a role that does not exist grants
/// nothing, as in Kubernetes.
fn stored_rbac_rules(st: &ServerState, user: &User, namespace: Option<&str>) -> Vec<PolicyRule> {
    use k8s_openapi::api::rbac::v1::{RoleRef, Subject};
    /// What authorization reads of a RoleBinding or ClusterRoleBinding.
    #[derive(serde::Deserialize)]
    struct Binding {
        #[serde(default)]
        subjects: Option<Vec<Subject>>,
        #[serde(rename = "roleRef")]
        role_ref: RoleRef,
    }
    /// ... and of a Role or ClusterRole.
    #[derive(serde::Deserialize)]
    struct Rules {
        #[serde(default)]
        rules: Option<Vec<PolicyRule>>,
    }
    fn res(plural: &str) -> Option<&'static ResourceInfo> {
        resources::lookup(everynode_api::rbac::GROUP, "v1", plural)
    }
    let all = |plural: &str, ns: Option<&str>| -> Vec<Arc<Binding>> {
        let Some(res) = res(plural) else {
            return Vec::new();
        };
        st.registry
            .store
            .list(&res.prefix(ns), None, None, None)
            .map(|l| {
                l.items
                    .iter()
                    .filter_map(|kv| rbac_decoded(st, kv))
                    .collect()
            })
            .unwrap_or_default()
    };
    let rules_of = |plural: &str, ns: Option<&str>, name: &str| -> Vec<PolicyRule> {
        res(plural)
            .and_then(|res| st.registry.store.get(&res.key(ns, name)))
            .and_then(|kv| rbac_decoded::<Rules>(st, &kv))
            .and_then(|r| r.rules.clone())
            .unwrap_or_default()
    };
    let binds = |subjects: &Option<Vec<Subject>>, ns: &str| {
        subjects
            .iter()
            .flatten()
            .any(|s| everynode_api::rbac::applies_to(s, &user.name, &user.groups, ns))
    };
    let mut rules = Vec::new();
    for b in all("clusterrolebindings", None) {
        if binds(&b.subjects, "") && b.role_ref.kind == "ClusterRole" {
            rules.extend(rules_of("clusterroles", None, &b.role_ref.name));
        }
    }
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        for b in all("rolebindings", Some(ns)) {
            if !binds(&b.subjects, ns) {
                continue;
            }
            match b.role_ref.kind.as_str() {
                "ClusterRole" => rules.extend(rules_of("clusterroles", None, &b.role_ref.name)),
                "Role" => rules.extend(rules_of("roles", Some(ns), &b.role_ref.name)),
                _ => {}
            }
        }
    }
    rules
}

/// How many decoded RBAC objects are kept (then forgotten all at once).
const RBAC_DECODED: usize = 8192;

/// The parts `T` of stored RBAC object `kv`, decoded once per version of it.
fn rbac_decoded<T: serde::de::DeserializeOwned + Send + Sync + 'static>(
    st: &ServerState,
    kv: &everynode_store::KeyValue,
) -> Option<Arc<T>> {
    let lock = || st.rbac_decoded.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((rev, parts)) = lock().get(&kv.key)
        && *rev == kv.mod_revision
        && let Ok(t) = parts.clone().downcast::<T>()
    {
        return Some(t);
    }
    let t: Arc<T> = Arc::new(serde_json::from_slice(&kv.value).ok()?);
    let mut cache = lock();
    if cache.len() >= RBAC_DECODED {
        cache.clear();
    }
    cache.insert(kv.key.clone(), (kv.mod_revision, t.clone()));
    Some(t)
}

/// Who sent the request: a verified client certificate, a static or bootstrap bearer
/// token, or, for the one object anyone may read (`kube-public/cluster-info`), nobody.
fn authenticate(
    st: &Arc<ServerState>,
    parts: &http::request::Parts,
    route: &Route,
) -> Option<User> {
    if let Some(auth::PeerIdentity(u)) = parts.extensions.get::<auth::PeerIdentity>() {
        return Some(u.clone());
    }
    if let Some(token) = auth::Authenticator::bearer(&parts.headers) {
        // A token that does not authenticate is a 401, even where anonymous would pass.
        if everynode_api::satoken::looks_like_jwt(token)
            && st.auth.authenticate_token(token.as_bytes()).is_none()
        {
            return crate::satokens::authenticate(st, token);
        }
        return st.auth.authenticate_with(&parts.headers, |secret| {
            let res = resources::lookup("", "v1", "secrets")?;
            st.registry.get(res, Some("kube-system"), secret).ok()
        });
    }
    let cluster_info = matches!(route, Route::Resource(t)
        if parts.method == Method::GET
            && t.res.plural == "configmaps" && t.res.group.is_empty()
            && t.namespace.as_deref() == Some("kube-public")
            && t.name.as_deref() == Some("cluster-info")
            && t.subresource.is_none());
    cluster_info.then(User::anonymous)
}

fn aggregated(v: Value, version: &str) -> Response {
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    let body = serde_json::to_vec(&v).unwrap_or_default();
    let mut r = (StatusCode::OK, body).into_response();
    if let Ok(h) = HeaderValue::from_str(&ct) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, h);
    }
    r.headers_mut()
        .insert(http::header::VARY, HeaderValue::from_static("Accept"));
    r
}

fn health(st: &ServerState, check: &str, query: Option<&str>) -> Response {
    let ready = !*st.shutdown.borrow();
    let verbose = query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    let ok = ready || check == "livez";
    let body = if verbose {
        let status = if ok { "ok" } else { "failed" };
        format!(
            "[+]ping ok\n[+]etcd ok\n[{}]shutdown {}\n{} check {}\n",
            if ok { "+" } else { "-" },
            status,
            check,
            if ok { "passed" } else { "failed" }
        )
    } else if ok {
        "ok".to_string()
    } else {
        format!("[-]shutdown failed: reason withheld\n{check} check failed\n")
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (
        code,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn metrics(st: &ServerState) -> Response {
    let stats = st.registry.store.stats();
    let body = format!(
        "# HELP everynode_store_revision The current store revision.\n# TYPE everynode_store_revision gauge\neverynode_store_revision {}\n\
         # HELP everynode_store_commits_total Durable store commits (group-committed batches).\n# TYPE everynode_store_commits_total counter\neverynode_store_commits_total {}\n\
         # HELP everynode_store_committed_writes_total Writes those commits carried.\n# TYPE everynode_store_committed_writes_total counter\neverynode_store_committed_writes_total {}\n",
        st.registry.store.current_revision(),
        stats.commits,
        stats.writes,
    );
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

async fn read_body(body: Body) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(body, request::MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large())
}

fn respond_object(
    res: &ResourceInfo,
    obj: &Value,
    output: Output,
    code: StatusCode,
    include: IncludeObject,
) -> Response {
    match output {
        Output::Json => json_response(code, obj),
        Output::PartialMetadata => json_response(code, &tables::partial_metadata(obj)),
        Output::Table => {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            json_response(
                code,
                &tables::table(
                    res,
                    std::slice::from_ref(obj),
                    json!({ "resourceVersion": rv }),
                    include,
                    true,
                ),
            )
        }
    }
}

/// The answer to an update: the stored bytes with their resourceVersion where they are
/// the answer's JSON, otherwise the object encoded as asked.
fn respond_updated(
    res: &ResourceInfo,
    updated: Updated,
    output: Output,
    include: IncludeObject,
) -> Response {
    match (output, updated.json) {
        (Output::Json, Some(json)) => (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        _ => respond_object(res, &updated.object, output, StatusCode::OK, include),
    }
}

/// `fieldValidation`: Strict rejects unknown fields, Warn (the default) reports them in
/// `Warning` headers, Ignore drops them silently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

fn field_validation(q: &HashMap<String, String>) -> ApiResult<FieldValidation> {
    match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}; supported values are Strict, Warn, Ignore"
        ))),
    }
}

/// Checks a body against its kind's schema: a value of the wrong JSON type is a 400 in
/// Go's words; unknown fields are a 400 (Strict) or warnings (Warn). Returns the
/// warnings to send.
/// The field check of a write (`sub`: the subresource written, if any), with the
/// warnings the answer carries.
fn check_fields(
    st: &ServerState,
    res: &ResourceInfo,
    obj: &Value,
    mode: FieldValidation,
    sub: Option<&str>,
) -> ApiResult<Vec<String>> {
    let found = st.openapi.check(res, obj);
    // A value of the wrong JSON type cannot be decoded, whatever the field validation.
    if let Some(e) = found.type_error {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        )));
    }
    // What kube-apiserver warns of in pods and pod templates, after the unknown fields;
    // status writes (a kubelet's, many a second) get none, as there.
    let about_pods = || match sub {
        None => everynode_api::warnings::for_object(res.kind, obj),
        Some(_) => Vec::new(),
    };
    if mode == FieldValidation::Ignore {
        return Ok(about_pods());
    }
    let mut unknown: Vec<String> = found
        .unknown
        .into_iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if unknown.is_empty() {
        return Ok(about_pods());
    }
    if mode == FieldValidation::Strict {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            res.kind,
            res.version,
            res.kind,
            unknown.join(", ")
        )));
    }
    unknown.extend(about_pods());
    Ok(unknown)
}

/// `GET|POST /api/v1/namespaces/NS/pods/NAME/exec`: handled by [`crate::exec`], which
/// needs the raw query (`command` repeats) and the connection's upgrade.
fn is_pod_exec(method: &Method, t: &Target) -> bool {
    matches!(*method, Method::GET | Method::POST)
        && t.res.group.is_empty()
        && t.res.plural == "pods"
        && t.namespace.is_some()
        && t.name.is_some()
        && t.subresource.as_deref() == Some("exec")
}

/// The warning Kubernetes 1.33 attaches to every request for a deprecated API.
fn deprecation(res: &ResourceInfo) -> Option<&'static str> {
    (res.group.is_empty() && res.plural == "endpoints")
        .then_some("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice")
}

fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let v = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(h) = HeaderValue::from_str(&v) {
            r.headers_mut().append(http::header::WARNING, h);
        }
    }
    r
}

fn dry_run(q: &HashMap<String, String>) -> bool {
    q.get("dryRun").is_some_and(|v| v == "All")
}

/// What authorization asks of the store about the request's target.
struct StoreFacts<'a> {
    st: &'a ServerState,
    t: &'a Target,
    ns: Option<&'a str>,
}

impl auth::Facts for StoreFacts<'_> {
    fn pod_binding(&self) -> auth::PodBinding {
        let pod = self
            .t
            .name
            .as_deref()
            .and_then(|name| self.st.registry.get(self.t.res, self.ns, name).ok());
        match pod {
            None => auth::PodBinding::Missing,
            Some(p) => auth::PodBinding::Node(
                p.pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
        }
    }

    fn rbac_rules(&self, user: &User, namespace: Option<&str>) -> Vec<PolicyRule> {
        stored_rbac_rules(self.st, user, namespace)
    }

    /// Scans the namespace's pods (the store keeps them in memory).
    fn secret_used_by(&self, node: &str) -> bool {
        let (Some(name), Some(ns), Some(pods)) = (
            self.t.name.as_deref(),
            self.ns,
            resources::lookup("", "v1", "pods"),
        ) else {
            return false;
        };
        let Ok(list) = self
            .st
            .registry
            .store
            .list(&pods.prefix(Some(ns)), None, None, None)
        else {
            return false;
        };
        list.items.iter().any(|kv| {
            crate::registry::decode(pods, kv).is_ok_and(|p| {
                p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
                    && auth::pod_uses_secret(&p, name)
            })
        })
    }
}

/// Authorization (see [`crate::auth::authorize`]): the request's verb and target, with
/// the node a named pod is bound to read from the store only when a rule needs it.
fn authorize(
    user: &User,
    method: &Method,
    t: &Target,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    st: &ServerState,
) -> ApiResult<()> {
    let watch = request::flag(q, "watch");
    // Connecting to a pod (exec, attach, port-forward) is `create` on the subresource
    // whatever the method: kube-apiserver asks for it of WebSocket GETs too.
    let connect = matches!(
        t.subresource.as_deref(),
        Some("exec" | "attach" | "portforward")
    );
    let attrs = auth::Attributes {
        verb: if connect {
            "create"
        } else {
            auth::verb(method, t.name.is_some(), watch)
        },
        group: t.res.group,
        resource: t.res.plural,
        subresource: t.subresource.as_deref(),
        namespace: ns,
        name: t.name.as_deref(),
    };
    let facts = StoreFacts { st, t, ns };
    auth::authorize(user, &attrs, &facts).map_err(|why| {
        // What kube-apiserver's Forbidden names: the resource, its group, the object.
        let mut details = json!({ "kind": t.res.plural });
        if let Some(name) = &t.name {
            details["name"] = json!(name);
        }
        if !t.res.group.is_empty() {
            details["group"] = json!(t.res.group);
        }
        ApiError::forbidden(why).with_details(details)
    })
}

/// A resource request; asked for YAML (`Accept: application/yaml`), the JSON answer in
/// YAML, as kube-apiserver serves it (a watch cannot be: 406).
#[allow(clippy::too_many_arguments)]
async fn resource(
    st: &Arc<ServerState>,
    user: &User,
    method: &Method,
    headers: &HeaderMap,
    t: Target,
    q: HashMap<String, String>,
    accept: Option<&str>,
    body: Body,
) -> ApiResult<Response> {
    if !request::wants_yaml(accept) {
        return resource_as(st, user, method, headers, t, q, accept, body).await;
    }
    if request::flag(&q, "watch") {
        return Err(ApiError::not_acceptable_for_watch());
    }
    let json = "application/json";
    let answer = match resource_as(st, user, method, headers, t, q, Some(json), body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    Ok(as_yaml(answer).await)
}

/// A JSON response's body in YAML (anything else as it is).
async fn as_yaml(r: Response) -> Response {
    let is_json = r
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_json {
        return r;
    }
    let (mut parts, body) = r.into_parts();
    let yaml = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_saphyr::to_string(&v).map_err(|e| e.to_string())),
        Err(e) => Err(e.to_string()),
    };
    match yaml {
        Ok(text) => {
            parts.headers.remove(http::header::CONTENT_LENGTH);
            parts.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml"),
            );
            Response::from_parts(parts, Body::from(text))
        }
        Err(e) => ApiError::internal(format!("encoding the answer as YAML: {e}")).into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn resource_as(
    st: &Arc<ServerState>,
    user: &User,
    method: &Method,
    headers: &HeaderMap,
    t: Target,
    q: HashMap<String, String>,
    accept: Option<&str>,
    body: Body,
) -> ApiResult<Response> {
    let res = t.res;
    let ns = t.namespace.as_deref();
    if res.namespaced && ns.is_none() && (t.name.is_some() || *method != Method::GET) {
        return Err(ApiError::path_not_found());
    }
    authorize(user, method, &t, ns, &q, st)?;
    let output = negotiate(accept)?;
    let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
    let media = media_type(
        headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let reg = &st.registry;
    let name = t.name.as_deref();
    match (method.clone(), name, t.subresource.as_deref()) {
        (Method::GET, None, None) => {
            let filter = Filter::from_query(res, &q)?;
            if request::flag(&q, "watch") {
                return watch::watch(
                    reg,
                    res,
                    ns,
                    &q,
                    filter,
                    output,
                    &st.watch,
                    st.shutdown.clone(),
                );
            }
            let page = list::list(reg, res, ns, &q, &filter)?;
            let meta = page.list_metadata();
            Ok(match output {
                Output::Table => json_response(
                    StatusCode::OK,
                    &tables::table(res, &page.items, meta, include, true),
                ),
                Output::PartialMetadata => json_response(
                    StatusCode::OK,
                    &json!({
                    "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                    "items": page.items.iter().map(tables::partial_metadata).collect::<Vec<_>>() }),
                ),
                Output::Json => json_response(
                    StatusCode::OK,
                    &json!({
                    "kind": res.list_kind, "apiVersion": res.api_version(), "metadata": meta, "items": page.items }),
                ),
            })
        }
        (Method::GET, Some(n), None | Some("status") | Some("approval")) => {
            let obj = reg.get(res, ns, n)?;
            Ok(respond_object(res, &obj, output, StatusCode::OK, include))
        }
        (Method::GET, Some(n), Some("log")) => {
            crate::logs::pod_logs(st, ns.unwrap_or(""), n, &q).await
        }
        (Method::GET | Method::POST, Some(n), Some(sub @ ("attach" | "portforward"))) => {
            let pod = reg.get(res, ns, n)?;
            let node = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if node.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "pod \"{n}\" is not bound to a node yet"
                )));
            }
            let what = match sub {
                "attach" => "attach to",
                _ => "forward ports to",
            };
            Err(ApiError::bad_request(format!(
                "pod \"{n}\" runs on node \"{node}\", and everynode's node agents do not {what} containers"
            )))
        }
        (Method::POST, None, None) => {
            let mode = field_validation(&q)?;
            let mut obj = decode_body(&media, &read_body(body).await?)?;
            request::check_type(res, &mut obj)?;
            let warnings = check_fields(st, res, &obj, mode, None)?;
            auth::admit_node_create(user, res.plural, &obj).map_err(ApiError::forbidden)?;
            if res.strategy == Strategy::CertificateSigningRequest {
                crate::strategy::set_csr_requestor(&mut obj, user);
            }
            let created = reg
                .create_encoded(
                    res,
                    ns,
                    obj,
                    &WriteOptions {
                        dry_run: dry_run(&q),
                        manager: Some(manager(&q, headers, None)),
                    },
                )
                .await?;
            let response = match (output, created) {
                (Output::Json, Created::Json(json)) => (
                    StatusCode::CREATED,
                    [(http::header::CONTENT_TYPE, "application/json")],
                    json,
                )
                    .into_response(),
                (_, created) => respond_object(
                    res,
                    &created.into_value()?,
                    output,
                    StatusCode::CREATED,
                    include,
                ),
            };
            Ok(with_warnings(response, &warnings))
        }
        (Method::POST, Some(n), Some("token")) => {
            let obj = decode_body(&media, &read_body(body).await?)?;
            crate::satokens::token_request(st, ns.unwrap_or(""), n, obj)
        }
        (Method::POST, Some(n), Some("binding")) => {
            let b = decode_body(&media, &read_body(body).await?)?;
            bind(st, ns, n, &b).await
        }
        (Method::POST, Some(n), Some("eviction")) => {
            let b = decode_body(&media, &read_body(body).await?)?;
            if let Some(bn) = b.pointer("/metadata/name").and_then(Value::as_str)
                && bn != n
            {
                return Err(ApiError::bad_request(
                    "name in URL does not match name in Eviction object",
                ));
            }
            let opts = DeleteOptions::parse(b.get("deleteOptions"), &HashMap::new())?;
            reg.delete(res, ns, n, &opts).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &success_status(201, None),
            ))
        }
        (Method::PUT, Some(n), sub @ (None | Some("status") | Some("approval"))) => {
            let mode = field_validation(&q)?;
            let mut obj = decode_body(&media, &read_body(body).await?)?;
            request::check_type(res, &mut obj)?;
            let warnings = check_fields(st, res, &obj, mode, sub)?;
            let part = match sub {
                Some("approval") => Part::Approval,
                Some(_) => Part::Status,
                None => Part::Main,
            };
            let updated = reg
                .update(
                    res,
                    ns,
                    n,
                    part,
                    &WriteOptions {
                        dry_run: dry_run(&q),
                        manager: Some(manager(&q, headers, None)),
                    },
                    |old| {
                        if res.strategy == Strategy::Node {
                            auth::admit_node_update(user, old, &obj)
                                .map_err(ApiError::forbidden)?;
                        }
                        Ok(obj.clone())
                    },
                )
                .await?;
            Ok(with_warnings(
                respond_updated(res, updated, output, include),
                &warnings,
            ))
        }
        (Method::PUT, Some(n), Some("finalize")) => {
            let obj = decode_body(&media, &read_body(body).await?)?;
            let fins = obj
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            let updated = reg
                .update(res, ns, n, Part::System, &WriteOptions::default(), |old| {
                    let mut new = old.clone();
                    new["spec"]["finalizers"] = fins.clone();
                    Ok(new)
                })
                .await?;
            Ok(respond_updated(res, updated, output, include))
        }
        (Method::PATCH, Some(n), sub @ (None | Some("status") | Some("approval"))) => {
            let kind = PatchType::from_media(&media)?;
            let mode = field_validation(&q)?;
            let patch_body = decode_body(&media, &read_body(body).await?)?;
            let part = match sub {
                Some("approval") => Part::Approval,
                Some(_) => Part::Status,
                None => Part::Main,
            };
            let applied = if kind == PatchType::Apply {
                if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                    ));
                }
                crate::managed::check_config(res, ns, n, &patch_body)?;
                Some(crate::managed::Applied::new(
                    res.kind,
                    patch_body.clone(),
                    request::flag(&q, "force"),
                ))
            } else {
                None
            };
            // What strategic merge merges: the patch, or an apply's configuration with
            // the lists it would match wrongly marked for replacement.
            let merged_body = applied
                .as_ref()
                .and_then(|a| crate::managed::merge_body(res, &a.config));
            let opts = WriteOptions {
                dry_run: dry_run(&q),
                manager: Some(manager(&q, headers, applied)),
            };
            let warnings: Mutex<Vec<String>> = Mutex::new(Vec::new());
            // A patch is a precondition on resourceVersion only if it sets one itself; the
            // version copied from the stored object must not turn a race into a 409.
            let explicit_rv = mentions_resource_version(&patch_body);
            let apply_manager = q.get("fieldManager").filter(|_| kind == PatchType::Apply);
            let mutate = |old: &Value| -> ApiResult<Value> {
                let body = merged_body.as_ref().unwrap_or(&patch_body);
                let mut patched = patch::apply(res, kind, old, body)?;
                if let Some(m) = apply_manager {
                    crate::managed::sync_last_applied(m, &patch_body, &mut patched);
                }
                if res.strategy == Strategy::Node {
                    auth::admit_node_update(user, old, &patched).map_err(ApiError::forbidden)?;
                }
                if !explicit_rv
                    && let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    m.remove("resourceVersion");
                }
                let w = check_fields(st, res, &patched, mode, sub)?;
                if let Ok(mut g) = warnings.lock() {
                    *g = w;
                }
                Ok(patched)
            };
            let result = reg.update(res, ns, n, part, &opts, mutate).await;
            let updated = match result {
                Err(e) if e.code == 404 && kind == PatchType::Apply && part == Part::Main => {
                    // Server-side apply creates what does not exist.
                    let mut obj = patch_body.clone();
                    request::check_type(res, &mut obj)?;
                    auth::admit_node_create(user, res.plural, &obj).map_err(ApiError::forbidden)?;
                    if name_of(&obj).is_empty() {
                        obj["metadata"]["name"] = json!(n);
                    }
                    let w = check_fields(st, res, &obj, mode, None)?;
                    let created = reg.create(res, ns, obj, &opts).await?;
                    return Ok(with_warnings(
                        respond_object(res, &created, output, StatusCode::CREATED, include),
                        &w,
                    ));
                }
                other => other?,
            };
            let w = warnings.lock().map(|g| g.clone()).unwrap_or_default();
            Ok(with_warnings(
                respond_updated(res, updated, output, include),
                &w,
            ))
        }
        (Method::DELETE, Some(n), None) => {
            let opts = delete_options(body, &media, &q).await?;
            if res.strategy == Strategy::Namespace
                && matches!(n, "default" | "kube-system" | "kube-public")
            {
                return Err(ApiError::forbidden(format!(
                    "namespaces \"{n}\" is forbidden: this namespace may not be deleted"
                )));
            }
            let d = reg.delete(res, ns, n, &opts).await?;
            if res.strategy == Strategy::Namespace && !d.gone && !opts.dry_run {
                namespaces::spawn_finalizer(st.clone(), n.to_string());
            }
            if d.gone && res.strategy != Strategy::Pod {
                let mut details = json!({ "name": n, "kind": res.plural,
                                          "uid": d.object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null) });
                if !res.group.is_empty() {
                    details["group"] = json!(res.group);
                }
                return Ok(json_response(
                    StatusCode::OK,
                    &success_status(200, Some(details)),
                ));
            }
            let code = if !d.gone && d_orphan_false(&opts) {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(respond_object(res, &d.object, output, code, include))
        }
        // Namespaces have no deletecollection: kube-apiserver has no such route.
        (Method::DELETE, None, None) if !res.deletecollection => Err(ApiError::method_not_routed()),
        (Method::DELETE, None, None) => {
            let opts = delete_options(body, &media, &q).await?;
            let filter = Filter::from_query(res, &q)?;
            let mut lq = q.clone();
            lq.remove("limit");
            lq.remove("continue");
            let page = list::list(reg, res, ns, &lq, &filter)?;
            let mut deleted = Vec::new();
            for obj in &page.items {
                let on = obj
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match reg
                    .delete(res, on.as_deref().or(ns), name_of(obj), &opts)
                    .await
                {
                    Ok(d) => deleted.push(d.object),
                    Err(e) if e.code == 404 => {}
                    // The system PriorityClasses stay; the others go.
                    Err(e)
                        if e.code == 403
                            && res.strategy == crate::resources::Strategy::PriorityClass => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({
                "kind": res.list_kind, "apiVersion": res.api_version(),
                "metadata": { "resourceVersion": reg.store.current_revision().to_string() }, "items": deleted }),
            ))
        }
        // A subresource without this verb: kube-apiserver has no route for it.
        (_, _, Some(_)) => Err(ApiError::method_not_routed()),
        (m, _, _) => {
            let action = match m {
                Method::POST => "create",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "this method",
            };
            Err(ApiError::method_not_allowed(action, res.kind))
        }
    }
}

/// Who a write is by, for field ownership: `?fieldManager`, else the client's
/// User-Agent up to its first `/` (as kube-apiserver defaults it).
fn manager(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    apply: Option<crate::managed::Applied>,
) -> crate::managed::Manager {
    let name = q
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .or_else(|| {
            headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .and_then(|ua| ua.split('/').next())
                .filter(|m| !m.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    crate::managed::Manager { name, apply }
}

fn d_orphan_false(o: &DeleteOptions) -> bool {
    o.orphan_dependents == Some(false)
}

/// `pods/<name>/binding`: assigns the pod to a node (the scheduler's write).
async fn bind(st: &ServerState, ns: Option<&str>, name: &str, b: &Value) -> ApiResult<Response> {
    let res = resources::lookup("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
    if let Some(bn) = b.pointer("/metadata/name").and_then(Value::as_str)
        && !bn.is_empty()
        && bn != name
    {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Binding object",
        ));
    }
    let node = b
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            res,
            name,
            &[everynode_api::field::FieldError::required(
                "target.name",
                "",
            )],
        ));
    }
    let now = crate::registry::format_time(crate::registry::now());
    st.registry
        .update(res, ns, name, Part::System, &WriteOptions::default(), |old| {
            if old.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
                return Err(ApiError::conflict(res, name, "pod is being deleted, cannot be assigned to a host"));
            }
            match old.pointer("/spec/nodeName").and_then(Value::as_str) {
                Some(cur) if !cur.is_empty() => {
                    return Err(ApiError::conflict(res, name, &format!("pod {name} is already assigned to node \"{cur}\"")));
                }
                _ => {}
            }
            let mut new = old.clone();
            new["spec"]["nodeName"] = json!(node);
            let mut conds: Vec<Value> = new.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
            conds.retain(|c| c["type"] != "PodScheduled");
            conds.push(json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now }));
            new["status"]["conditions"] = json!(conds);
            Ok(new)
        })
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &success_status(201, None),
    ))
}

/// The DeleteOptions of a DELETE: from the body (JSON from most clients, protobuf from
/// typed client-go ones; an empty body is none) and the query.
async fn delete_options(
    body: Body,
    media: &str,
    q: &HashMap<String, String>,
) -> ApiResult<DeleteOptions> {
    let raw = read_body(body).await?;
    let b = if raw.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let m = if media == "application/vnd.kubernetes.protobuf" {
            media
        } else {
            "application/json"
        };
        Some(decode_body(m, &raw)?)
    };
    DeleteOptions::parse(b.as_ref(), q)
}

/// Whether a patch body (merge, strategic, apply or JSON patch) sets
/// `metadata.resourceVersion`.
fn mentions_resource_version(patch: &Value) -> bool {
    match patch {
        Value::Array(ops) => ops
            .iter()
            .any(|op| op["path"].as_str() == Some("/metadata/resourceVersion")),
        _ => patch
            .pointer("/metadata/resourceVersion")
            .is_some_and(|v| !v.is_null()),
    }
}
