//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), Kubernetes'
//! strategic merge patch, and a first cut of server-side apply (merge of the applied
//! configuration with strategic rules; no field-ownership tracking yet).

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_media(media: &str) -> ApiResult<Self> {
        match media {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

fn unprocessable(msg: String) -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid",
        message: msg,
        details: None,
    }
}

/// Applies a decoded patch to the current object.
pub fn apply(
    res: &ResourceInfo,
    kind: PatchType,
    original: &Value,
    patch: &Value,
) -> ApiResult<Value> {
    match kind {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = original.clone();
            json_patch::patch(&mut doc, &p).map_err(|e| {
                unprocessable(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            let mut doc = original.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        PatchType::Strategic | PatchType::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            everynode_api::smp::strategic_merge_patch(original, patch, res.kind)
                .map_err(|e| unprocessable(e.to_string()))
        }
    }
}
