//! The root CA publisher: every namespace that is not being deleted holds the ConfigMap
//! `kube-root-ca.crt` with the cluster CA under `ca.crt`, as kube-controller-manager's
//! root-ca-cert-publisher keeps it, so workloads can verify the API server. A deleted or
//! edited one is put back. Two watches (namespaces, and ConfigMaps of that name); each
//! change is planned by [`plan`] and acted on with one create or patch.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

/// The ConfigMap's name in every namespace.
pub const NAME: &str = "kube-root-ca.crt";
/// The key holding the CA bundle.
pub const KEY: &str = "ca.crt";
const DESCRIPTION_KEY: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// What a namespace's `kube-root-ca.crt` needs.
#[derive(Debug, PartialEq)]
pub enum Action {
    Nothing,
    Create(Box<ConfigMap>),
    /// A merge patch putting the bundle (and the description) back.
    Repair(serde_json::Value),
}

/// Decides for namespace `ns` (None: gone) holding `existing`, given the CA bundle.
pub fn plan(ns: Option<&Namespace>, existing: Option<&ConfigMap>, ca: &str) -> Action {
    let Some(ns) = ns.filter(|n| n.metadata.deletion_timestamp.is_none()) else {
        return Action::Nothing;
    };
    let Some(name) = ns.metadata.name.as_deref() else {
        return Action::Nothing;
    };
    let Some(cm) = existing.filter(|c| c.metadata.deletion_timestamp.is_none()) else {
        if existing.is_some() {
            return Action::Nothing;
        }
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(NAME.into());
        cm.metadata.namespace = Some(name.into());
        cm.metadata.annotations = Some([(DESCRIPTION_KEY.into(), DESCRIPTION.into())].into());
        cm.data = Some([(KEY.into(), ca.into())].into());
        return Action::Create(Box::new(cm));
    };
    let holds = cm
        .data
        .as_ref()
        .and_then(|d| d.get(KEY))
        .map(String::as_str)
        == Some(ca);
    let described = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DESCRIPTION_KEY))
        .is_some_and(|d| d == DESCRIPTION);
    if holds && described {
        return Action::Nothing;
    }
    Action::Repair(serde_json::json!({
        "metadata": { "annotations": { DESCRIPTION_KEY: DESCRIPTION } },
        "data": { KEY: ca },
    }))
}

/// Brings namespace `ns`'s ConfigMap in line.
async fn ensure(client: &kube::Client, ns: &str, ca: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let (namespace, existing) = match (namespaces.get_opt(ns).await, cms.get_opt(NAME).await) {
        (Ok(n), Ok(c)) => (n, c),
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(namespace = ns, error = %e, "reading for the root CA ConfigMap");
            return;
        }
    };
    let result = match plan(namespace.as_ref(), existing.as_ref(), ca) {
        Action::Nothing => return,
        Action::Create(cm) => cms.create(&PostParams::default(), &cm).await.map(drop),
        Action::Repair(patch) => cms
            .patch(NAME, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(drop),
    };
    match result {
        Ok(()) => {}
        // Created meanwhile, or the namespace started terminating: the watch brings
        // whatever is left to do.
        Err(kube::Error::Api(e)) if matches!(e.code, 403 | 404 | 409) => {}
        Err(e) => tracing::warn!(namespace = ns, error = %e, "writing the root CA ConfigMap"),
    }
}

enum Seen {
    Namespace(String),
    ConfigMap(String),
}

/// Runs until the task is dropped.
pub async fn run(client: kube::Client, ca: String) {
    let namespaces = watcher(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .filter_map(|e| async move {
        match e {
            Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => {
                n.metadata.name.map(Seen::Namespace)
            }
            Ok(_) => None,
            Err(e) => {
                crate::runtime::log_watch_error("root-ca-publisher", &e);
                None
            }
        }
    });
    let config_maps = watcher(
        Api::<ConfigMap>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={NAME}")),
    )
    .default_backoff()
    .filter_map(|e| async move {
        match e {
            Ok(
                watcher::Event::Apply(c) | watcher::Event::InitApply(c) | watcher::Event::Delete(c),
            ) => c.metadata.namespace.map(Seen::ConfigMap),
            Ok(_) => None,
            Err(e) => {
                crate::runtime::log_watch_error("root-ca-publisher", &e);
                None
            }
        }
    });
    let mut seen = std::pin::pin!(futures::stream::select(namespaces, config_maps));
    while let Some(s) = seen.next().await {
        let (Seen::Namespace(ns) | Seen::ConfigMap(ns)) = s;
        ensure(&client, &ns, &ca).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, deleting: bool) -> Namespace {
        let mut n = Namespace::default();
        n.metadata.name = Some(name.into());
        if deleting {
            n.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            );
        }
        n
    }

    #[test]
    fn every_live_namespace_gets_the_bundle_and_keeps_it() {
        let ca = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
        let Action::Create(cm) = plan(Some(&ns("team", false)), None, ca) else {
            panic!("a missing ConfigMap is created");
        };
        assert_eq!(cm.metadata.name.as_deref(), Some(NAME));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(
            cm.data
                .as_ref()
                .and_then(|d| d.get(KEY))
                .map(String::as_str),
            Some(ca)
        );
        assert_eq!(
            plan(Some(&ns("team", false)), Some(&cm), ca),
            Action::Nothing
        );
        // Edited: the bundle goes back; the rest of the data is left alone.
        let mut edited = (*cm).clone();
        edited.data = Some([(KEY.into(), "other".into()), ("x".into(), "y".into())].into());
        let Action::Repair(patch) = plan(Some(&ns("team", false)), Some(&edited), ca) else {
            panic!("an edited bundle is repaired");
        };
        assert_eq!(patch["data"], serde_json::json!({ KEY: ca }));
        // A namespace being deleted, or gone, gets nothing.
        assert_eq!(plan(Some(&ns("team", true)), None, ca), Action::Nothing);
        assert_eq!(plan(None, None, ca), Action::Nothing);
    }
}
