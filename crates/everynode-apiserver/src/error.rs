//! API errors and their one rendering: a Kubernetes `metav1.Status` body with the HTTP
//! code, reason and details kubectl relies on (compat doc §7). Every rejection in the
//! server becomes an [`ApiError`]; nothing else writes error bodies.

use axum::response::{IntoResponse, Response};
use everynode_api::field::{FieldError, aggregate_message};
use http::StatusCode;
use serde_json::{Value, json};

use crate::resources::ResourceInfo;

/// A failed request, carrying exactly what the `Status` object will say.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    fn resource_details(res: &ResourceInfo, name: &str) -> Value {
        let mut d = json!({ "name": name, "kind": res.plural });
        if !res.group.is_empty() {
            d["group"] = json!(res.group);
        }
        d
    }

    pub fn not_found(res: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", res.qualified(), name),
        )
        .with_details(Self::resource_details(res, name))
    }

    /// A 404 with a message of its own (e.g. a node agent's answer).
    pub fn not_found_message(message: impl Into<String>) -> Self {
        Self::new(404, "NotFound", message)
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({ "name": ns, "kind": "namespaces" }))
    }

    pub fn path_not_found() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
            .with_details(json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": "404 page not found" }] }))
    }

    pub fn already_exists(res: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", res.qualified(), name),
        )
        .with_details(Self::resource_details(res, name))
    }

    pub fn generate_name_exhausted(res: &ResourceInfo, name: &str) -> Self {
        let mut details = Self::resource_details(res, name);
        details["retryAfterSeconds"] = json!(1);
        Self::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{}\" already exists, the server was not able to generate a unique name for the object",
                res.qualified(),
                name
            ),
        )
        .with_details(details)
    }

    pub fn conflict(res: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                res.qualified(),
                name,
                why
            ),
        )
        .with_details(Self::resource_details(res, name))
    }

    /// 409 with field causes (a server-side apply's ownership conflicts).
    pub fn conflict_with_causes(message: String, causes: Vec<Value>) -> Self {
        Self::new(409, "Conflict", message).with_details(json!({ "causes": causes }))
    }

    pub fn stale(res: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per field error; `details.kind` is the Kind here, not the resource.
    pub fn invalid(res: &ResourceInfo, name: &str, errs: &[FieldError]) -> Self {
        Self::invalid_kind(res.kind, res.group, name, errs)
    }

    /// 422 for an object of any kind (`ListOptions.meta.k8s.io "" is invalid: ...`).
    pub fn invalid_kind(kind: &str, group: &str, name: &str, errs: &[FieldError]) -> Self {
        let causes: Vec<Value> = errs
            .iter()
            .map(|e| json!({ "reason": e.kind.reason(), "message": e.cause_message(), "field": e.field }))
            .collect();
        let mut details = json!({ "name": name, "kind": kind, "causes": causes });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        let kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {}", aggregate_message(errs)),
        )
        .with_details(details)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// An admission plugin's refusal of one object: `pods "p" is forbidden: WHY`.
    pub fn forbidden_object(res: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{}\" is forbidden: {why}", res.qualified(), name),
        )
        .with_details(Self::resource_details(res, name))
    }

    pub fn namespace_terminating(res: &ResourceInfo, name: &str, ns: &str) -> Self {
        let mut details = Self::resource_details(res, name);
        details["causes"] = json!([{
            "reason": "NamespaceTerminating",
            "message": format!("namespace {ns} is being terminated"),
            "field": "metadata.namespace"
        }]);
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                res.qualified(),
                name,
                ns
            ),
        )
        .with_details(details)
    }

    pub fn method_not_allowed(action: &str, kind: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{action} is not supported on resources of kind \"{kind}\""),
        )
    }

    /// A method the resource's path has no route for (kube-apiserver's answer then).
    pub fn method_not_routed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// A watch in a form this server does not stream (YAML).
    pub fn not_acceptable_for_watch() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted for watch: application/json, application/json;stream=watch",
        )
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io",
        )
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml; got \"{ct}\""
            ),
        )
    }

    pub fn unsupported_media_type_because(ct: &str, why: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request (\"{ct}\") cannot be used: {why}"),
        )
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, "TooManyRequests", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `metav1.Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        (
            code,
            [(http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// A successful `Status` (delete of an object that is gone, eviction, binding).
pub fn success_status(code: u16, details: Option<Value>) -> Value {
    let mut s =
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success" });
    if let Some(d) = details {
        s["details"] = d;
    }
    if code != 200 {
        s["code"] = json!(code);
    }
    s
}
