//! API discovery, built from the resource table: the legacy documents (`/api`, `/apis`,
//! `/api/v1`, `/apis/<g>/<v>`) and aggregated discovery (apidiscovery.k8s.io v2 and
//! v2beta1) on `/api` and `/apis` (compat doc §3).

use serde_json::{Value, json};

use crate::resources::{self, ResourceInfo};

fn storage_version_hash(r: &ResourceInfo) -> String {
    // Opaque to clients; stable per group/version/kind.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{}/{}/{}", r.group, r.version, r.kind).bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes())
}

fn subresource_kind(r: &ResourceInfo, sub: &str) -> (&'static str, &'static str, &'static str) {
    match sub {
        "eviction" => ("policy", "v1", "Eviction"),
        "binding" => ("", "v1", "Binding"),
        "exec" => ("", "v1", "PodExecOptions"),
        "attach" => ("", "v1", "PodAttachOptions"),
        "portforward" => ("", "v1", "PodPortForwardOptions"),
        "token" => ("authentication.k8s.io", "v1", "TokenRequest"),
        _ => (r.group, r.version, r.kind),
    }
}

fn subresource_verbs(sub: &str) -> Vec<&'static str> {
    match sub {
        "status" | "approval" => vec!["get", "patch", "update"],
        "binding" | "eviction" | "token" => vec!["create"],
        "log" => vec!["get"],
        "exec" | "attach" | "portforward" => vec!["create", "get"],
        "finalize" => vec!["update"],
        _ => vec![],
    }
}

/// `GET /api`, legacy form.
pub fn api_versions() -> Value {
    json!({ "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "" }] })
}

/// A create-only endpoint that stores nothing: what `kubectl auth whoami` and
/// `kubectl auth can-i` post (answered by `handlers::review`).
#[derive(Debug)]
pub struct Review {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
}

pub static REVIEWS: &[Review] = &[
    Review {
        group: "authentication.k8s.io",
        version: "v1",
        kind: "SelfSubjectReview",
        plural: "selfsubjectreviews",
        singular: "selfsubjectreview",
    },
    Review {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "SelfSubjectAccessReview",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
    },
    Review {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "SelfSubjectRulesReview",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
    },
];

/// The review at `/apis/GROUP/VERSION/PLURAL`, if any.
pub fn review(group: &str, version: &str, plural: &str) -> Option<&'static Review> {
    REVIEWS
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Every group/version served: the resources' and the reviews'.
fn all_groups() -> Vec<(&'static str, &'static str)> {
    let mut out = resources::groups();
    for r in REVIEWS {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

fn reviews_in<'a>(group: &'a str, version: &'a str) -> impl Iterator<Item = &'static Review> + 'a {
    REVIEWS
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// `GET /apis`, legacy form.
pub fn api_groups() -> Value {
    let groups: Vec<Value> = all_groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| {
            let gv = json!({ "groupVersion": format!("{g}/{v}"), "version": v });
            json!({ "name": g, "versions": [gv.clone()], "preferredVersion": gv })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `GET /apis/<group>` (the group alone).
pub fn api_group(group: &str) -> Option<Value> {
    let (g, v) = all_groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let gv = json!({ "groupVersion": format!("{g}/{v}"), "version": v });
    Some(
        json!({ "kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv.clone()], "preferredVersion": gv }),
    )
}

/// `GET /api/v1` or `/apis/<g>/<v>`: the legacy APIResourceList.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<&ResourceInfo> = resources::in_group_version(group, version).collect();
    if rs.is_empty() && reviews_in(group, version).next().is_none() {
        return None;
    }
    let mut out: Vec<Value> = reviews_in(group, version)
        .map(|r| {
            json!({ "name": r.plural, "singularName": r.singular, "namespaced": false,
                    "kind": r.kind, "verbs": ["create"] })
        })
        .collect();
    for r in rs {
        let mut e = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
            "verbs": r.verbs(), "storageVersionHash": storage_version_hash(r),
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        out.push(e);
        for sub in r.subresources {
            let (g, v, k) = subresource_kind(r, sub);
            let mut s = json!({ "name": format!("{}/{}", r.plural, sub), "singularName": "", "namespaced": r.namespaced,
                                "kind": k, "verbs": subresource_verbs(sub) });
            if *sub == "eviction" {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            out.push(s);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out }),
    )
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut e = json!({
        "resource": r.plural,
        "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        e["subresources"] = json!(r
            .subresources
            .iter()
            .map(|s| {
                let (g, v, k) = subresource_kind(r, s);
                json!({ "subresource": s, "responseKind": { "group": g, "version": v, "kind": k },
                        "verbs": subresource_verbs(s) })
            })
            .collect::<Vec<_>>());
    }
    e
}

/// Aggregated discovery for the core group (`core` true, served on `/api`) or for the
/// named groups (`/apis`). `version` is "v2" or "v2beta1".
pub fn aggregated(core: bool, version: &str) -> Value {
    let items: Vec<Value> = all_groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, v)| {
            let mut rs: Vec<Value> = resources::in_group_version(g, v).map(aggregated_resource).collect();
            rs.extend(reviews_in(g, v).map(|r| {
                json!({ "resource": r.plural, "singularResource": r.singular, "scope": "Cluster",
                        "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
                        "verbs": ["create"] })
            }));
            let mut meta = json!({ "creationTimestamp": null });
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({ "metadata": meta, "versions": [{ "version": v, "freshness": "Current", "resources": rs }] })
        })
        .collect();
    json!({ "kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"),
            "metadata": {}, "items": items })
}

/// Which aggregated discovery version the Accept header asks for, if any.
pub fn wants_aggregated(accept: Option<&str>) -> Option<&'static str> {
    let accept = accept?;
    for range in accept.split(',') {
        let params: Vec<&str> = range.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if has("as=APIGroupDiscoveryList") && has("g=apidiscovery.k8s.io") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if params.first().is_some_and(|m| *m == "application/json") && params.len() == 1 {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_has_eviction_with_group_and_version() {
        let l = resource_list("", "v1").unwrap();
        let ev = l["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .unwrap();
        assert_eq!(
            (
                ev["group"].as_str(),
                ev["version"].as_str(),
                ev["kind"].as_str()
            ),
            (Some("policy"), Some("v1"), Some("Eviction"))
        );
        let ds = resource_list("apps", "v1").unwrap();
        let ds = ds["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "daemonsets")
            .unwrap()
            .clone();
        assert_eq!(ds["shortNames"], json!(["ds"]));
        assert_eq!(ds["categories"], json!(["all"]));
    }

    #[test]
    fn aggregated_choice_follows_kubectl_accept() {
        let a = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(wants_aggregated(Some(a)), Some("v2"));
        assert_eq!(wants_aggregated(Some("application/json")), None);
        assert_eq!(wants_aggregated(None), None);
        let core = aggregated(true, "v2");
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert!(
            aggregated(false, "v2")["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["metadata"]["name"] == "apps")
        );
    }
}
