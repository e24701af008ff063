//! The Priority admission plugin's store side: which PriorityClass a new pod gets (the
//! rules are `everynode_api::priority`), at most one global default class, and the
//! system classes that cannot be deleted.
//!
//! Every pod create asks for the global default class, so it is kept in memory
//! ([`DefaultClass`]) and read again from the store only after a PriorityClass was
//! written. A pod that names its class costs one map lookup and a small decode.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use everynode_api::priority::{self, Class};
use everynode_store::Store;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceInfo};

fn classes() -> Option<&'static ResourceInfo> {
    resources::lookup("scheduling.k8s.io", "v1", "priorityclasses")
}

fn decode(bytes: &[u8]) -> ApiResult<Class> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("corrupt PriorityClass: {e}")))
}

/// The global default class, cached between PriorityClass writes.
///
/// `generation` counts writes; a cached answer is used only if no write happened since
/// it was read (a write that races a read makes the next pod read again). The lock is
/// a plain mutex held only to copy the answer in or out, never across an await.
#[derive(Default)]
pub struct DefaultClass {
    generation: AtomicU64,
    cached: Mutex<Option<(u64, Option<Class>)>>,
}

impl DefaultClass {
    /// Called after any write to a PriorityClass.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn get(&self, store: &Store) -> ApiResult<Option<Class>> {
        let generation = self.generation.load(Ordering::Acquire);
        {
            let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((g, class)) = cached.as_ref()
                && *g == generation
            {
                return Ok(class.clone());
            }
        }
        let class = Self::read(store)?;
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            *cached = Some((generation, class.clone()));
        }
        Ok(class)
    }

    fn read(store: &Store) -> ApiResult<Option<Class>> {
        let Some(res) = classes() else {
            return Ok(None);
        };
        let list = store
            .list(&res.prefix(None), None, None, None)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut found = Vec::new();
        for kv in list.items {
            // Decode only the classes that may be the default.
            if memchr::memmem::find(&kv.value, b"globalDefault").is_some() {
                found.push(decode(&kv.value)?);
            }
        }
        Ok(priority::pick_global_default(found))
    }
}

/// The Priority admission of a new pod: resolves its class and sets `spec.priority`
/// and `spec.preemptionPolicy` (403 with kube-apiserver's message when it cannot).
pub fn admit_pod(
    store: &Store,
    default: &DefaultClass,
    res: &ResourceInfo,
    name: &str,
    pod: &mut Pod,
) -> ApiResult<()> {
    let Some(spec) = pod.spec.as_mut() else {
        return Ok(());
    };
    let named = match (priority::named_class(spec), classes()) {
        (Some(class), Some(pcs)) => match store.get(&pcs.key(None, class)) {
            Some(kv) => Some(decode(&kv.value)?),
            None => None,
        },
        _ => None,
    };
    // The default is needed only by a pod that names no class.
    let mut failed = None;
    let result = priority::admit_pod(spec, named, || {
        default.get(store).unwrap_or_else(|e| {
            failed = Some(e);
            None
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    result.map_err(|why| ApiError::forbidden_object(res, name, &why))
}

/// At most one class is the global default: a new one (or another one marked so) is
/// refused while one exists.
pub fn check_one_default(store: &Store, res: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    if obj.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match DefaultClass::read(store)? {
        Some(other) if other.metadata.name != name => Err(ApiError::forbidden_object(
            res,
            name,
            &format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                other.metadata.name
            ),
        )),
        _ => Ok(()),
    }
}

/// The system classes stay.
pub fn check_delete(res: &ResourceInfo, name: &str) -> ApiResult<()> {
    if priority::is_system_class(name) {
        return Err(ApiError::forbidden_object(
            res,
            name,
            "this is a system priority class and cannot be deleted",
        ));
    }
    Ok(())
}
