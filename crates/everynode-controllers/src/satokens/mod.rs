//! The tokens controller: a Secret of type `kubernetes.io/service-account-token` that
//! names a ServiceAccount (annotation `kubernetes.io/service-account.name`) gets a
//! long-lived token for it, the cluster CA and its namespace (`data.token`, `ca.crt`,
//! `namespace`) and the ServiceAccount's uid (annotation), as kube-controller-manager's
//! tokens controller fills them in. A token Secret whose ServiceAccount does not exist
//! (or is another one by now: the uid differs) is deleted, and so are a deleted
//! ServiceAccount's token Secrets.
//!
//! Two watches (token Secrets, ServiceAccounts); each change is planned by [`plan`] and
//! acted on with one patch or delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use everynode_api::satoken::{
    Claims, Keys, ObjectRef, SECRET_NAME_ANNOTATION, SECRET_TYPE, SECRET_UID_ANNOTATION,
};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};

/// What a token Secret needs.
#[derive(Debug, PartialEq)]
pub enum Action {
    Nothing,
    /// Delete it (its uid, as a precondition).
    Delete(String),
    /// A merge patch filling it in (carrying the resourceVersion it was planned from).
    Fill(serde_json::Value),
}

fn annotation<'a>(s: &'a Secret, key: &str) -> Option<&'a str> {
    s.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn data<'a>(s: &'a Secret, key: &str) -> Option<&'a [u8]> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
}

/// Decides for token Secret `secret`, whose ServiceAccount (by its annotation) is `sa`
/// (None: not found). `sign` makes the token for a ServiceAccount and this Secret.
pub fn plan(
    secret: &Secret,
    sa: Option<&ServiceAccount>,
    ca: &str,
    sign: impl FnOnce(&ObjectRef, &str) -> Result<String, String>,
) -> Result<Action, String> {
    if secret.type_.as_deref() != Some(SECRET_TYPE) || secret.metadata.deletion_timestamp.is_some()
    {
        return Ok(Action::Nothing);
    }
    let (Some(name), Some(ns)) = (
        secret.metadata.name.as_deref(),
        secret.metadata.namespace.as_deref(),
    ) else {
        return Ok(Action::Nothing);
    };
    let secret_uid = secret.metadata.uid.clone().unwrap_or_default();
    let Some(sa_name) = annotation(secret, SECRET_NAME_ANNOTATION) else {
        return Ok(Action::Nothing);
    };
    let Some(sa) = sa.filter(|sa| sa.metadata.deletion_timestamp.is_none()) else {
        return Ok(Action::Delete(secret_uid));
    };
    let sa_uid = sa.metadata.uid.as_deref().unwrap_or("");
    if annotation(secret, SECRET_UID_ANNOTATION).is_some_and(|u| !u.is_empty() && u != sa_uid) {
        return Ok(Action::Delete(secret_uid));
    }
    let token_missing = data(secret, "token").is_none_or(<[u8]>::is_empty);
    let ca_right = data(secret, "ca.crt") == Some(ca.as_bytes());
    let ns_right = data(secret, "namespace") == Some(ns.as_bytes());
    let uid_right = annotation(secret, SECRET_UID_ANNOTATION) == Some(sa_uid);
    if !token_missing && ca_right && ns_right && uid_right {
        return Ok(Action::Nothing);
    }
    let mut fill: BTreeMap<&str, ByteString> = BTreeMap::new();
    if token_missing {
        let sa_ref = ObjectRef {
            name: sa_name.to_string(),
            uid: sa_uid.to_string(),
        };
        fill.insert("token", ByteString(sign(&sa_ref, name)?.into_bytes()));
    }
    fill.insert("ca.crt", ByteString(ca.as_bytes().to_vec()));
    fill.insert("namespace", ByteString(ns.as_bytes().to_vec()));
    Ok(Action::Fill(serde_json::json!({
        "metadata": {
            "resourceVersion": secret.metadata.resource_version,
            "annotations": { SECRET_UID_ANNOTATION: sa_uid },
        },
        "data": fill,
    })))
}

async fn ensure(client: &kube::Client, ns: &str, name: &str, keys: &Keys, ca: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = match secrets.get_opt(name).await {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(namespace = ns, secret = name, error = %e, "reading a token Secret");
            return;
        }
    };
    let sa = match annotation(&secret, SECRET_NAME_ANNOTATION) {
        Some(sa) => match Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .get_opt(sa)
            .await
        {
            Ok(sa) => sa,
            Err(e) => {
                tracing::debug!(namespace = ns, error = %e, "reading a ServiceAccount");
                return;
            }
        },
        None => None,
    };
    let sign = |sa: &ObjectRef, secret: &str| keys.sign(&Claims::legacy(ns, sa, secret));
    let result = match plan(&secret, sa.as_ref(), ca, sign) {
        Ok(Action::Nothing) => return,
        Ok(Action::Delete(uid)) => secrets
            .delete(
                name,
                &DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                },
            )
            .await
            .map(drop),
        Ok(Action::Fill(patch)) => secrets
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(drop),
        Err(e) => {
            tracing::warn!(namespace = ns, secret = name, error = %e, "signing a token");
            return;
        }
    };
    match result {
        Ok(()) => {}
        // Changed or deleted meanwhile: the watch brings what is left to do.
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => {}
        Err(e) => {
            tracing::warn!(namespace = ns, secret = name, error = %e, "writing a token Secret")
        }
    }
}

/// The token Secrets of ServiceAccount `sa` (deleted): each is planned again, and goes.
async fn sweep(client: &kube::Client, sa: &ServiceAccount, keys: &Keys, ca: &str) {
    let (Some(ns), Some(name)) = (
        sa.metadata.namespace.as_deref(),
        sa.metadata.name.as_deref(),
    ) else {
        return;
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().fields(&format!("type={SECRET_TYPE}"));
    let Ok(list) = secrets.list(&lp).await else {
        return;
    };
    for s in list.items {
        if annotation(&s, SECRET_NAME_ANNOTATION) == Some(name)
            && let Some(secret) = s.metadata.name.as_deref()
        {
            ensure(client, ns, secret, keys, ca).await;
        }
    }
}

enum Seen {
    Secret(String, String),
    Gone(Box<ServiceAccount>),
}

/// Runs until the task is dropped.
pub async fn run(client: kube::Client, keys: Arc<Keys>, ca: String) {
    let secrets = watcher(
        Api::<Secret>::all(client.clone()),
        watcher::Config::default().fields(&format!("type={SECRET_TYPE}")),
    )
    .default_backoff()
    .filter_map(|e| async move {
        match e {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                match (s.metadata.namespace, s.metadata.name) {
                    (Some(ns), Some(name)) => Some(Seen::Secret(ns, name)),
                    _ => None,
                }
            }
            Ok(_) => None,
            Err(e) => {
                crate::runtime::log_watch_error("tokens", &e);
                None
            }
        }
    });
    let accounts = watcher(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .filter_map(|e| async move {
        match e {
            Ok(watcher::Event::Delete(sa)) => Some(Seen::Gone(Box::new(sa))),
            Ok(_) => None,
            Err(e) => {
                crate::runtime::log_watch_error("tokens", &e);
                None
            }
        }
    });
    let mut seen = std::pin::pin!(futures::stream::select(secrets, accounts));
    while let Some(s) = seen.next().await {
        match s {
            Seen::Secret(ns, name) => ensure(&client, &ns, &name, &keys, &ca).await,
            Seen::Gone(sa) => sweep(&client, &sa, &keys, &ca).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(annotations: &[(&str, &str)], data: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some("robot-token".into());
        s.metadata.namespace = Some("ns1".into());
        s.metadata.uid = Some("secret-uid".into());
        s.metadata.resource_version = Some("7".into());
        s.type_ = Some(SECRET_TYPE.into());
        s.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        );
        s
    }

    fn account(uid: &str) -> ServiceAccount {
        let mut sa = ServiceAccount::default();
        sa.metadata.name = Some("robot".into());
        sa.metadata.namespace = Some("ns1".into());
        sa.metadata.uid = Some(uid.into());
        sa
    }

    fn signer(sa: &ObjectRef, secret: &str) -> Result<String, String> {
        Ok(format!("token-for-{}-{}-{secret}", sa.name, sa.uid))
    }

    #[test]
    fn a_new_token_secret_is_filled_in() {
        let s = secret(&[(SECRET_NAME_ANNOTATION, "robot")], &[]);
        let a = plan(&s, Some(&account("sa-uid")), "CA", signer).expect("plan");
        let Action::Fill(p) = a else { panic!("{a:?}") };
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(
            p["metadata"]["annotations"][SECRET_UID_ANNOTATION],
            "sa-uid"
        );
        let b64 = |s: &str| serde_json::to_value(ByteString(s.as_bytes().to_vec())).expect("json");
        assert_eq!(
            p["data"]["token"],
            b64("token-for-robot-sa-uid-robot-token")
        );
        assert_eq!(p["data"]["ca.crt"], b64("CA"));
        assert_eq!(p["data"]["namespace"], b64("ns1"));
    }

    #[test]
    fn a_filled_secret_is_left_alone_and_a_lost_ca_comes_back_without_a_new_token() {
        let full = [("token", "t"), ("ca.crt", "CA"), ("namespace", "ns1")];
        let ann = [
            (SECRET_NAME_ANNOTATION, "robot"),
            (SECRET_UID_ANNOTATION, "sa-uid"),
        ];
        let s = secret(&ann, &full);
        assert_eq!(
            plan(&s, Some(&account("sa-uid")), "CA", signer),
            Ok(Action::Nothing)
        );
        let s = secret(&ann, &[("token", "t")]);
        let Ok(Action::Fill(p)) = plan(&s, Some(&account("sa-uid")), "CA", signer) else {
            panic!("not filled")
        };
        assert!(p["data"].get("token").is_none(), "{p}");
        assert!(p["data"].get("ca.crt").is_some());
    }

    #[test]
    fn a_secret_without_its_service_account_goes() {
        let s = secret(&[(SECRET_NAME_ANNOTATION, "robot")], &[]);
        assert_eq!(
            plan(&s, None, "CA", signer),
            Ok(Action::Delete("secret-uid".into()))
        );
        // The ServiceAccount was deleted and made again: the old token Secret goes.
        let s = secret(
            &[
                (SECRET_NAME_ANNOTATION, "robot"),
                (SECRET_UID_ANNOTATION, "old"),
            ],
            &[("token", "t")],
        );
        assert_eq!(
            plan(&s, Some(&account("new")), "CA", signer),
            Ok(Action::Delete("secret-uid".into()))
        );
    }

    #[test]
    fn other_secrets_are_not_touched() {
        let mut s = secret(&[(SECRET_NAME_ANNOTATION, "robot")], &[]);
        s.type_ = Some("Opaque".into());
        assert_eq!(plan(&s, None, "CA", signer), Ok(Action::Nothing));
    }
}
