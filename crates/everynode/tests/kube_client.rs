//! An independent client: kube-rs (the same library everynode's controllers use) against
//! the real binary — create, get, list with selectors, patch, watch, status, delete.

mod common;

use std::time::Duration;

use common::{Server, example};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};

async fn client(s: &Server) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(&s.kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_drives_daemonsets() {
    let s = Server::start();
    let c = client(&s).await;
    let api: Api<DaemonSet> = Api::namespaced(c.clone(), "default");
    let yaml = std::fs::read_to_string(example("nginx-ds.yaml")).expect("example");
    let ds: DaemonSet = serde_saphyr::from_str(&yaml).expect("parse");
    let created = api
        .create(&PostParams::default(), &ds)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    let spec = created.spec.as_ref().expect("spec");
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(
        spec.update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref()),
        Some("RollingUpdate")
    );

    let listed = api
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert!(
        api.list(&ListParams::default().labels("app=other"))
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // Watch from the created revision, then patch: the watch sees exactly that change.
    let rv = created.metadata.resource_version.clone().expect("rv");
    let mut stream = api
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watch")
        .boxed();
    let patched = api
        .patch(
            "nginx-ds",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"tier": "infra"}}})),
        )
        .await
        .expect("patch");
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "labels do not bump the generation"
    );
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("event in time")
        .expect("stream ok");
    match ev {
        Some(WatchEvent::Modified(d)) => {
            assert_eq!(
                d.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("tier"))
                    .map(String::as_str),
                Some("infra")
            );
            assert_eq!(
                d.metadata.resource_version,
                patched.metadata.resource_version
            );
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // The status subresource ignores spec changes and stores status.
    let st = api
        .patch_status("nginx-ds", &PatchParams::default(), &Patch::Merge(serde_json::json!({
            "spec": {"minReadySeconds": 99},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "numberMisscheduled": 0}
        })))
        .await
        .expect("patch status");
    assert_eq!(
        st.status.as_ref().map(|s| s.desired_number_scheduled),
        Some(3)
    );
    assert_eq!(st.spec.as_ref().and_then(|s| s.min_ready_seconds), None);

    // A stale resourceVersion is a 409 Conflict.
    let mut stale = created.clone();
    stale
        .metadata
        .labels
        .get_or_insert_default()
        .insert("x".into(), "y".into());
    match api
        .replace("nginx-ds", &PostParams::default(), &stale)
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (409, "Conflict")),
        other => panic!("expected 409, got {other:?}"),
    }

    api.delete("nginx-ds", &DeleteParams::default())
        .await
        .expect("delete");
    match api.get("nginx-ds").await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watcher_and_server_side_apply() {
    let s = Server::start();
    let c = client(&s).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    // Server-side apply creates what is missing, then updates it.
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}});
    api.patch(
        "applied",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&cm),
    )
    .await
    .expect("apply create");
    let cm2 = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "2"}});
    let got = api
        .patch(
            "applied",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&cm2),
        )
        .await
        .expect("apply update");
    assert_eq!(
        got.data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("2")
    );

    // kube-runtime's watcher (list, then watch from the list revision) sees a new object.
    let w = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default());
    let api2 = api.clone();
    tokio::spawn(async move {
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}});
        let _ = api2
            .create(
                &PostParams::default(),
                &serde_json::from_value(cm).expect("cm"),
            )
            .await;
    });
    let found = tokio::time::timeout(
        Duration::from_secs(20),
        w.try_filter_map(|ev| async move {
            Ok(match ev {
                kube::runtime::watcher::Event::Apply(cm)
                | kube::runtime::watcher::Event::InitApply(cm)
                    if cm.metadata.name.as_deref() == Some("late") =>
                {
                    Some(())
                }
                _ => None,
            })
        })
        .boxed()
        .try_next(),
    )
    .await
    .expect("watcher saw the object in time")
    .expect("watcher ok");
    assert_eq!(found, Some(()));
}

/// Concurrent patches of one object all land: the server retries a patch whose object
/// changed underneath (as kube-apiserver does) instead of answering 409, unless the
/// patch itself names a resourceVersion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_all_apply_and_explicit_versions_still_conflict() {
    let s = Server::start();
    let c = client(&s).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": "busy" } })).expect("cm");
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let patches = (0..24).map(|i| {
        let api = api.clone();
        async move {
            let p = serde_json::json!({ "metadata": { "labels": { format!("k{i}"): "v" } } });
            api.patch("busy", &PatchParams::default(), &Patch::Merge(p))
                .await
        }
    });
    for r in futures::future::join_all(patches).await {
        r.expect("every patch applies");
    }
    let labels = api
        .get("busy")
        .await
        .expect("get")
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(labels.len(), 24);
    let stale = serde_json::json!({ "metadata": { "resourceVersion": created.metadata.resource_version, "labels": { "x": "y" } } });
    match api
        .patch("busy", &PatchParams::default(), &Patch::Merge(stale))
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 409),
        other => panic!("a stale explicit resourceVersion must conflict: {other:?}"),
    }
}
