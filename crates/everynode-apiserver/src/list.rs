//! LIST: label and field selectors, resourceVersion semantics, and limit/continue
//! pagination over consistent store snapshots (compat doc §6.2, §9).

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use everynode_api::selector::{FieldSelector, Selector};
use everynode_store::{ListError, Revision};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::registry::{Registry, decode};
use crate::resources::ResourceInfo;
use crate::strategy;

/// The label and field selectors of a request, checked against the resource.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub label: Selector,
    pub field: Option<FieldSelector>,
}

impl Filter {
    pub fn from_query(res: &ResourceInfo, q: &HashMap<String, String>) -> ApiResult<Filter> {
        let label = match q.get("labelSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => Selector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => Selector::default(),
        };
        let field = match q.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let f =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                // Reject unsupported fields up front, as kube-apiserver does.
                let probe = json!({ "metadata": {} });
                for name in f.fields() {
                    strategy::field_value(res, &probe, name).map_err(ApiError::bad_request)?;
                }
                Some(f)
            }
            None => None,
        };
        Ok(Filter { label, field })
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_empty() && self.field.is_none()
    }

    /// No label or field selector: every object matches.
    pub fn is_everything(&self) -> bool {
        self.label.is_empty() && self.field.is_none()
    }

    pub fn matches(&self, res: &ResourceInfo, obj: &Value) -> bool {
        if !self.label.is_empty() {
            let labels: BTreeMap<String, String> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            if !self.label.matches(&labels) {
                return false;
            }
        }
        match &self.field {
            None => true,
            Some(f) => f.matches(|name| strategy::field_value(res, obj, name).ok()),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: Revision,
    start: String,
}

fn encode_continue(rv: Revision, start: &str) -> String {
    let t = ContinueToken {
        rv,
        start: start.to_string(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&t).unwrap_or_default())
}

fn decode_continue(s: &str) -> ApiResult<ContinueToken> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::bad_request("continue key is not valid: illegal base64 data"))
}

/// One page of a list.
pub struct Page {
    pub items: Vec<Value>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

impl Page {
    pub fn list_metadata(&self) -> Value {
        let mut m = json!({ "resourceVersion": self.revision.to_string() });
        if let Some(c) = &self.continue_token {
            m["continue"] = json!(c);
        }
        if let Some(r) = self.remaining {
            m["remainingItemCount"] = json!(r);
        }
        m
    }
}

/// kube-apiserver's checks of a list's `resourceVersionMatch`.
fn validate_options(q: &HashMap<String, String>) -> ApiResult<()> {
    use everynode_api::field::FieldError;
    let Some(m) = q.get("resourceVersionMatch").filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    let rv = q.get("resourceVersion").map_or("", String::as_str);
    let field = "resourceVersionMatch";
    let mut errs = Vec::new();
    if rv.is_empty() {
        errs.push(FieldError::forbidden(
            field,
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if q.get("continue").is_some_and(|c| !c.is_empty()) {
        errs.push(FieldError::forbidden(
            field,
            "resourceVersionMatch is forbidden when continue is provided",
        ));
    }
    if m != "Exact" && m != "NotOlderThan" {
        errs.push(FieldError::not_supported(
            field,
            m,
            &["Exact", "NotOlderThan", ""],
        ));
    }
    if m == "Exact" && rv == "0" {
        errs.push(FieldError::forbidden(
            field,
            "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_kind(
            "ListOptions",
            "meta.k8s.io",
            "",
            &errs,
        ))
    }
}

/// Lists one page following the request's selectors, `limit`, `continue` and
/// `resourceVersion`/`resourceVersionMatch`.
pub fn list(
    reg: &Registry,
    res: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    filter: &Filter,
) -> ApiResult<Page> {
    validate_options(q)?;
    let prefix = res.prefix(ns);
    let limit = match q.get("limit") {
        Some(l) => {
            let n: i64 = l
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?;
            if n > 0 { Some(n as usize) } else { None }
        }
        None => None,
    };
    let continued = q.get("continue").is_some_and(|c| !c.is_empty());
    let (at, start) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => {
            let t = decode_continue(c)?;
            if !t.start.starts_with(&prefix) {
                return Err(ApiError::bad_request(
                    "continue key is not valid: the key does not match the request",
                ));
            }
            (Some(t.rv), Some(t.start))
        }
        None => {
            let rv = q.get("resourceVersion").filter(|s| !s.is_empty());
            let exact = q.get("resourceVersionMatch").is_some_and(|m| m == "Exact");
            match rv {
                Some(rv) => {
                    let n: Revision = rv.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid resource version: {rv}"))
                    })?;
                    if n > reg.store.current_revision() {
                        return Err(ApiError::timeout(format!(
                            "Too large resource version: {n}, current: {}",
                            reg.store.current_revision()
                        )));
                    }
                    (if exact { Some(n) } else { None }, None)
                }
                None => (None, None),
            }
        }
    };
    let snapshot = reg.store.list(&prefix, start.as_deref(), None, at).map_err(|e| match e {
        ListError::Expired { requested, oldest } if continued => ApiError::expired(format!(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list. (requested {requested}, oldest {oldest})"
        )),
        ListError::Expired { .. } => {
            ApiError::expired("The resourceVersion for the provided list is too old.")
        }
    })?;
    let mut items = Vec::new();
    let mut last_key: Option<&str> = None;
    let mut more = false;
    let mut consumed = 0usize;
    for kv in &snapshot.items {
        if let Some(l) = limit
            && items.len() >= l
        {
            more = true;
            break;
        }
        consumed += 1;
        let obj = decode(res, kv)?;
        last_key = Some(&kv.key);
        if filter.matches(res, &obj) {
            items.push(obj);
        }
    }
    // With a limit, a page ends on the last matched item; keep scanning for whether any
    // later item matches, so `continue` is only returned when more results exist.
    if more && !filter.is_empty() {
        more = snapshot.items[consumed..]
            .iter()
            .any(|kv| decode(res, kv).is_ok_and(|o| filter.matches(res, &o)));
    }
    let continue_token = match (more, last_key) {
        (true, Some(k)) => Some(encode_continue(snapshot.revision, k)),
        _ => None,
    };
    let remaining = if more && filter.is_empty() {
        Some(snapshot.items.len() - consumed)
    } else {
        None
    };
    Ok(Page {
        items,
        revision: snapshot.revision,
        continue_token,
        remaining,
    })
}
