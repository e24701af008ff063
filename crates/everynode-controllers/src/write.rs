//! API writes whose answer is not read, or only for the new object's name.
//!
//! kube's typed calls decode the whole object the server sends back. The busiest writers
//! (pod creates, bindings, status reports, Lease renewals, events) do not look at it, and
//! at thousands of writes a second that decoding is a real part of their cost; these
//! send the same request and skip it. Errors are kube's, as from the typed calls.

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::Request;
use serde::{Deserialize, Serialize};

/// Just enough of an answer to learn the name the server gave (`generateName`).
#[derive(Deserialize)]
struct Named {
    metadata: NameOnly,
}

#[derive(Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: String,
}

fn request<K: kube::Resource>(api: &Api<K>) -> Request {
    Request::new(api.resource_url())
}

/// Creates `obj` and returns the created object's name.
pub async fn create<K: kube::Resource + Serialize + Clone>(
    api: &Api<K>,
    pp: &PostParams,
    obj: &K,
) -> kube::Result<String> {
    let body = serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?;
    let req = request(api)
        .create(pp, body)
        .map_err(kube::Error::BuildRequest)?;
    let text = api.clone().into_client().request_text(req).await?;
    let named: Named = serde_json::from_str(&text).map_err(kube::Error::SerdeError)?;
    Ok(named.metadata.name)
}

/// Creates `obj` as the subresource `sub` of `name` (a pod's `binding`, say).
pub async fn create_subresource<K: kube::Resource + Clone, T: Serialize>(
    api: &Api<K>,
    sub: &str,
    name: &str,
    pp: &PostParams,
    obj: &T,
) -> kube::Result<()> {
    let body = serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?;
    let req = request(api)
        .create_subresource(sub, name, pp, body)
        .map_err(kube::Error::BuildRequest)?;
    api.clone().into_client().request_text(req).await.map(drop)
}

/// Patches `name` (its `status` subresource when `status` is true).
pub async fn patch<K: kube::Resource + Clone, P: Serialize + std::fmt::Debug>(
    api: &Api<K>,
    name: &str,
    status: bool,
    pp: &PatchParams,
    patch: &Patch<P>,
) -> kube::Result<()> {
    let req = if status {
        request(api).patch_subresource("status", name, pp, patch)
    } else {
        request(api).patch(name, pp, patch)
    }
    .map_err(kube::Error::BuildRequest)?;
    api.clone().into_client().request_text(req).await.map(drop)
}
