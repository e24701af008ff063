//! Request parsing: the Kubernetes URL layout, query parameters, content negotiation
//! and body decoding. Pure functions over strings and bytes, so they are unit-tested
//! without a server.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceInfo};

/// Largest request body accepted, as kube-apiserver (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Deepest JSON/YAML nesting accepted in a body.
pub const MAX_DEPTH: usize = 100;

/// What a resource URL names.
#[derive(Debug, Clone)]
pub struct Target {
    pub res: &'static ResourceInfo,
    /// The namespace from the URL (`None` for cluster-scoped resources and all-namespace lists).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// The non-resource endpoints and the resource ones, as parsed from a path.
#[derive(Debug, Clone)]
pub enum Route {
    Version,
    Health(String),
    ApiVersions,
    ApiGroups,
    GroupVersion {
        group: String,
        version: String,
    },
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3 {
        path: String,
    },
    Resource(Target),
    /// A create-only review (`kubectl auth whoami`, `kubectl auth can-i`).
    Review(&'static crate::discovery::Review),
    Metrics,
    /// The ServiceAccount issuer's OpenID configuration and its keys.
    IssuerDiscovery,
    IssuerKeys,
    NotFound,
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".."
}

/// Parses a request path into a [`Route`].
pub fn parse_path(path: &str) -> Route {
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "/version" => return Route::Version,
        "/healthz" | "/livez" | "/readyz" => {
            return Route::Health(trimmed.trim_start_matches('/').into());
        }
        "/api" => return Route::ApiVersions,
        "/apis" => return Route::ApiGroups,
        "/openapi/v2" => return Route::OpenApiV2,
        "/openapi/v3" => return Route::OpenApiV3Index,
        "/metrics" => return Route::Metrics,
        "/.well-known/openid-configuration" => return Route::IssuerDiscovery,
        "/openid/v1/jwks" => return Route::IssuerKeys,
        _ => {}
    }
    if let Some(rest) = trimmed.strip_prefix("/openapi/v3/") {
        return Route::OpenApiV3 {
            path: rest.to_string(),
        };
    }
    for h in ["/healthz/", "/livez/", "/readyz/"] {
        if trimmed.starts_with(h) {
            return Route::Health(trimmed.trim_start_matches('/').into());
        }
    }
    let segs: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        ["apis", g] => {
            return Route::GroupVersion {
                group: (*g).into(),
                version: String::new(),
            };
        }
        _ => return Route::NotFound,
    };
    if rest.is_empty() {
        return Route::GroupVersion {
            group: group.into(),
            version: version.into(),
        };
    }
    if rest.iter().any(|s| !valid_segment(s)) {
        return Route::NotFound;
    }
    if let [plural] = rest
        && let Some(r) = crate::discovery::review(group, version, plural)
    {
        return Route::Review(r);
    }
    let target =
        |plural: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| -> Route {
            match resources::lookup(group, version, plural) {
                Some(res) => {
                    if namespace.is_some() && !res.namespaced {
                        return Route::NotFound;
                    }
                    if let Some(s) = sub
                        && !res.has_subresource(s)
                    {
                        return Route::NotFound;
                    }
                    Route::Resource(Target {
                        res,
                        namespace: namespace.map(str::to_string),
                        name: name.map(str::to_string),
                        subresource: sub.map(str::to_string),
                    })
                }
                None => Route::NotFound,
            }
        };
    match rest {
        // /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]] — unless {resource} is a
        // subresource of the Namespace object itself (status, finalize).
        ["namespaces", ns, plural, tail @ ..]
            if group.is_empty()
                && (*plural == "status" || *plural == "finalize")
                && tail.is_empty() =>
        {
            target("namespaces", None, Some(ns), Some(plural))
        }
        ["namespaces", ns, plural] => target(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => target(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => target(plural, Some(ns), Some(name), Some(sub)),
        [plural] => target(plural, None, None, None),
        [plural, name] => target(plural, None, Some(name), None),
        [plural, name, sub] => target(plural, None, Some(name), Some(sub)),
        _ => Route::NotFound,
    }
}

/// Query parameters (`+` and percent escapes decoded); later duplicates win.
/// A boolean query parameter, read as Go's `strconv.ParseBool` reads it (kube-apiserver
/// decodes them so): `1`, `t`, `T`, `true`, `TRUE` and `True` are true — Python's client
/// sends `watch=True`.
pub fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| everynode_api::query_bool(v))
}

pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(q) = q {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            out.insert(k.into_owned(), v.into_owned());
        }
    }
    out
}

/// How the response body should be shaped, from the Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Table,
    PartialMetadata,
}

/// Whether the first media range of an Accept header asks for YAML (served as the JSON
/// answer converted; see `handlers::resource`).
pub fn wants_yaml(accept: Option<&str>) -> bool {
    accept
        .and_then(|a| a.split(',').next())
        .map(|range| range.split(';').next().unwrap_or("").trim())
        .is_some_and(|mt| mt.eq_ignore_ascii_case("application/yaml"))
}

/// Content negotiation the way kube-apiserver does it for a JSON-only server: the first
/// acceptable media range wins; a missing header means JSON; nothing acceptable is 406.
pub fn negotiate(accept: Option<&str>) -> ApiResult<Output> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let mt = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: HashMap<String, String> = parts
            .filter_map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            })
            .collect();
        let json_like = matches!(mt.as_str(), "application/json" | "*/*" | "application/*");
        if !json_like {
            continue;
        }
        match params.get("as").map(String::as_str) {
            None => return Ok(Output::Json),
            Some("Table") if params.get("g").is_none_or(|g| g == "meta.k8s.io") => {
                return Ok(Output::Table);
            }
            Some("PartialObjectMetadata") | Some("PartialObjectMetadataList") => {
                return Ok(Output::PartialMetadata);
            }
            Some(_) => continue,
        }
    }
    Err(ApiError::not_acceptable())
}

/// The body's media type, without parameters.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn depth(v: &Value) -> usize {
    // Iterative, so a hostile body cannot overflow the stack here.
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

/// Decodes a JSON or YAML body into a JSON value, enforcing the nesting limit.
pub fn decode_body(media: &str, bytes: &[u8]) -> ApiResult<Value> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large());
    }
    let v: Value = if media == "application/vnd.kubernetes.protobuf" {
        // kubectl's typed commands (create namespace/configmap/secret, drain) send protobuf.
        crate::protobuf::decode(bytes).map_err(|e| {
            if e.is_unsupported() {
                ApiError::unsupported_media_type_because(media, &e.to_string())
            } else {
                ApiError::bad_request(format!("the protobuf body could not be decoded: {e}"))
            }
        })?
    } else if !(media.is_empty() || media.ends_with("json") || media.ends_with("yaml")) {
        // CBOR and anything else: 415, and client-go falls back to JSON where it can.
        return Err(ApiError::unsupported_media_type(media));
    } else if media.ends_with("yaml") {
        match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(_) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| ApiError::bad_request("the body is not valid UTF-8 YAML"))?;
                serde_saphyr::from_str::<Value>(text).map_err(|e| {
                    ApiError::bad_request(format!("error converting YAML to JSON: {e}"))
                })?
            }
        }
    } else {
        serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if depth(&v) > MAX_DEPTH {
        return Err(ApiError::bad_request(format!(
            "the request body is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    Ok(v)
}

/// Checks `apiVersion`/`kind` of a body against the resource, filling them in when absent.
pub fn check_type(res: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: the body must be a JSON object",
            res.kind, res.version, res.kind
        )));
    };
    let want_av = res.api_version();
    match map.get("apiVersion") {
        None | Some(Value::Null) => {
            map.insert("apiVersion".into(), Value::String(want_av.clone()));
        }
        Some(Value::String(av)) if *av == want_av => {}
        Some(other) => {
            let got = other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string());
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({got}) does not match the expected API version ({want_av})"
            )));
        }
    }
    match map.get("kind") {
        None | Some(Value::Null) => {
            map.insert("kind".into(), Value::String(res.kind.to_string()));
        }
        Some(Value::String(k)) if k == res.kind => {}
        Some(other) => {
            let got = other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string());
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: the kind in the data ({}) does not match the expected kind ({})",
                res.kind, res.version, res.kind, got, res.kind
            )));
        }
    }
    if !map
        .get("metadata")
        .is_none_or(|m| m.is_object() || m.is_null())
    {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
            res.kind, res.version, res.kind
        )));
    }
    if !map.get("metadata").is_some_and(Value::is_object) {
        map.insert("metadata".into(), Value::Object(Default::default()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(p: &str) -> Target {
        match parse_path(p) {
            Route::Resource(t) => t,
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn paths_resolve_like_kube_apiserver() {
        let t = target("/apis/apps/v1/namespaces/kube-system/daemonsets/fluentd");
        assert_eq!(
            (t.res.plural, t.namespace.as_deref(), t.name.as_deref()),
            ("daemonsets", Some("kube-system"), Some("fluentd"))
        );
        let t = target("/api/v1/namespaces/default");
        assert_eq!(
            (t.res.plural, t.namespace, t.name.as_deref()),
            ("namespaces", None, Some("default"))
        );
        let t = target("/api/v1/namespaces/default/status");
        assert_eq!(
            (t.name.as_deref(), t.subresource.as_deref()),
            (Some("default"), Some("status"))
        );
        let t = target("/api/v1/namespaces/default/pods");
        assert_eq!(
            (t.res.plural, t.namespace.as_deref(), t.name),
            ("pods", Some("default"), None)
        );
        let t = target("/api/v1/namespaces/default/pods/p1/eviction");
        assert_eq!(t.subresource.as_deref(), Some("eviction"));
        let t = target("/api/v1/nodes/n1/status");
        assert_eq!(
            (t.res.plural, t.name.as_deref(), t.subresource.as_deref()),
            ("nodes", Some("n1"), Some("status"))
        );
        let t = target("/apis/apps/v1/daemonsets");
        assert_eq!((t.namespace, t.name), (None, None));
        assert!(matches!(
            parse_path("/api/v1/namespaces/default/nodes"),
            Route::NotFound
        ));
        assert!(matches!(
            parse_path("/api/v1/namespaces/default/pods/p/bogus"),
            Route::NotFound
        ));
        assert!(matches!(
            parse_path("/apis/nope/v1/things"),
            Route::NotFound
        ));
        assert!(matches!(
            parse_path("/api/v1/namespaces/default/pods/.."),
            Route::NotFound
        ));
    }

    #[test]
    fn negotiation_matches_kubectl_accept_headers() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(table)).unwrap(), Output::Table);
        assert_eq!(negotiate(None).unwrap(), Output::Json);
        assert_eq!(
            negotiate(Some("application/json, */*")).unwrap(),
            Output::Json
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf,application/json")).unwrap(),
            Output::Json
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf"))
                .unwrap_err()
                .code,
            406
        );
    }

    #[test]
    fn query_decoding_handles_plus_and_escapes() {
        let q = parse_query(Some(
            "labelSelector=app%3Dx%2Ctier+notin+%28a%2Cb%29&limit=500&&",
        ));
        assert_eq!(
            q.get("labelSelector").map(String::as_str),
            Some("app=x,tier notin (a,b)")
        );
        assert_eq!(q.get("limit").map(String::as_str), Some("500"));
    }

    #[test]
    fn bodies_are_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 5) + &"]".repeat(MAX_DEPTH + 5);
        assert_eq!(
            decode_body("application/json", deep.as_bytes())
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode_body("application/json", b"{not json")
                .unwrap_err()
                .code,
            400
        );
        let y = decode_body("application/yaml", b"kind: Pod\nmetadata:\n  name: x\n").unwrap();
        assert_eq!(y["metadata"]["name"], "x");
    }
}
