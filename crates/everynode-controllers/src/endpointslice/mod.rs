//! The EndpointSlice controller, which also writes the legacy core/v1 Endpoints (the
//! work of Kubernetes' endpointslice and endpoints controllers, in one loop).
//!
//! [`plan`] decides what each Service's slices and Endpoints hold; this loop keeps the
//! caches (Services, pods, the slices it manages, Endpoints), queues a Service when
//! anything it depends on changes, and carries out the plan. After its own writes it
//! waits until the slice cache has caught up (by slice generation, as Kubernetes'
//! endpoint-slice tracker does), so a lagging cache never makes it create a slice twice.

pub mod plan;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::runtime::{Cache, Change, Informers, WorkQueue};
use plan::{EndpointsAction, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY};

const WORKERS: usize = 4;
/// How long to wait for the cache to show this controller's own writes before trusting
/// it anyway (someone else may have changed the slice meanwhile).
const STALE_LIMIT: Duration = Duration::from_secs(5);

type Key = ObjectRef<Service>;

/// What a written slice must look like in the cache before it is trusted again.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Present with at least this generation.
    Generation(i64),
    /// Gone.
    Deleted,
}

/// When the last write for a Service was made, and what each slice must show.
type Written = (Instant, HashMap<String, Expect>);

struct Ctl {
    client: kube::Client,
    services: Cache<Service>,
    pods: Cache<Pod>,
    slices: Cache<EndpointSlice>,
    endpoints: Cache<Endpoints>,
    /// Per Service: slice name → what the cache must show, and since when.
    written: Mutex<HashMap<Key, Written>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(ns: &str, name: &str) -> Key {
    ObjectRef::new(name).within(ns)
}

/// Runs the controller until the task is dropped.
pub async fn run(informers: Informers) {
    let client = informers.client().clone();
    let managed = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let (services, svc_changes) = informers.all::<Service>(Default::default());
    let (pods, pod_changes) = informers.all::<Pod>(Default::default());
    let (slices, slice_changes) = informers.all::<EndpointSlice>(managed);
    let (endpoints, ep_changes) = informers.all::<Endpoints>(Default::default());
    let ctl = Arc::new(Ctl {
        client,
        services,
        pods,
        slices,
        endpoints,
        written: Mutex::default(),
    });
    let queue: Arc<WorkQueue<Key>> = WorkQueue::new();
    let all = {
        let (ctl, queue) = (ctl.clone(), queue.clone());
        move || {
            for s in ctl.services.state() {
                queue.add(ObjectRef::from_obj(&*s));
            }
        }
    };
    let feed_services = {
        let (queue, all) = (queue.clone(), all.clone());
        svc_changes.for_each(move |c| {
            match c {
                Change::Applied(s) | Change::Deleted(s) => queue.add(ObjectRef::from_obj(&*s)),
                Change::Synced => all(),
            }
            futures::future::ready(())
        })
    };
    let feed_pods = {
        let (ctl, queue, all) = (ctl.clone(), queue.clone(), all.clone());
        pod_changes.for_each(move |c| {
            match c {
                Change::Applied(p) | Change::Deleted(p) => ctl.pod_changed(&p, &queue),
                Change::Synced => all(),
            }
            futures::future::ready(())
        })
    };
    let feed_slices = {
        let queue = queue.clone();
        slice_changes.for_each(move |c| {
            if let Change::Applied(s) | Change::Deleted(s) = c
                && let Some(svc) = s
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_SERVICE_NAME))
            {
                queue.add(key(s.metadata.namespace.as_deref().unwrap_or(""), svc));
            }
            futures::future::ready(())
        })
    };
    let feed_endpoints = {
        let (ctl, queue) = (ctl.clone(), queue.clone());
        ep_changes.for_each(move |c| {
            if let Change::Applied(e) | Change::Deleted(e) = c {
                let k = ObjectRef::<Service>::new(e.metadata.name.as_deref().unwrap_or(""))
                    .within(e.metadata.namespace.as_deref().unwrap_or(""));
                // Only Endpoints this controller keeps (their Service has a selector).
                if ctl
                    .services
                    .get(&k)
                    .is_some_and(|s| plan::selector(&s).is_some())
                {
                    queue.add(k);
                }
            }
            futures::future::ready(())
        })
    };
    // Wait for the caches once, before the workers start. (kube-runtime's own store
    // readiness wakes only the last of several waiters; `Cache` wakes them all, but one
    // wait is all the workers need.)
    let ready = {
        let ctl = ctl.clone();
        async move {
            // Planning before every cache has listed would drop endpoints of pods not
            // loaded yet.
            let _ = tokio::join!(
                ctl.services.wait_until_ready(),
                ctl.pods.wait_until_ready(),
                ctl.slices.wait_until_ready(),
                ctl.endpoints.wait_until_ready()
            );
        }
    };
    let workers = futures::future::join_all((0..WORKERS).map(|_| {
        let (ctl, queue) = (ctl.clone(), queue.clone());
        async move {
            loop {
                let k = queue.next().await;
                match ctl.sync(&k).await {
                    Ok(None) => {}
                    Ok(Some(after)) => queue.add_after(k.clone(), after),
                    Err(e) => {
                        tracing::warn!(service = %k, error = %e, "endpoints sync failed; retrying");
                        queue.add_after(k.clone(), Duration::from_secs(1));
                    }
                }
                queue.done(&k);
            }
        }
    }));
    let workers = async move {
        ready.await;
        workers.await;
    };
    tokio::join!(
        feed_services,
        feed_pods,
        feed_slices,
        feed_endpoints,
        workers
    );
}

impl Ctl {
    /// Queues the Services that select the pod now, and those whose slices list it
    /// (its labels may have changed, or it is gone).
    fn pod_changed(&self, pod: &Pod, queue: &WorkQueue<Key>) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        for s in self.services.state() {
            if plan::selects(&s, pod) {
                queue.add(ObjectRef::from_obj(&*s));
            }
        }
        for slice in self.slices.state() {
            if slice.metadata.namespace.as_deref() != Some(ns) {
                continue;
            }
            let lists = slice.endpoints.iter().any(|e| {
                e.target_ref
                    .as_ref()
                    .is_some_and(|r| r.name.as_deref() == Some(name))
            });
            if lists
                && let Some(svc) = slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_SERVICE_NAME))
            {
                queue.add(key(ns, svc));
            }
        }
    }

    /// The managed slices of one Service, from the cache.
    fn slices_of(&self, ns: &str, name: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .state()
            .into_iter()
            .filter(|s| {
                s.metadata.namespace.as_deref() == Some(ns)
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(LABEL_SERVICE_NAME))
                        .is_some_and(|n| n == name)
            })
            .collect()
    }

    /// True when the cache shows every write made for `k` (or the wait has run out).
    fn cache_current(&self, k: &Key, slices: &[Arc<EndpointSlice>]) -> bool {
        let mut written = lock(&self.written);
        let Some((since, expect)) = written.get_mut(k) else {
            return true;
        };
        expect.retain(|name, e| {
            let cached = slices
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            match (e, cached) {
                (Expect::Deleted, None) => false,
                (Expect::Deleted, Some(_)) => true,
                (Expect::Generation(g), Some(s)) => s.metadata.generation.unwrap_or(0) < *g,
                (Expect::Generation(_), None) => true,
            }
        });
        if expect.is_empty() || since.elapsed() > STALE_LIMIT {
            written.remove(k);
            return true;
        }
        false
    }

    fn expect(&self, k: &Key, name: String, e: Expect) {
        let mut written = lock(&self.written);
        let entry = written
            .entry(k.clone())
            .or_insert_with(|| (Instant::now(), HashMap::new()));
        entry.0 = Instant::now();
        entry.1.insert(name, e);
    }

    /// One pass for one Service. `Ok(Some(d))`: look again after `d`.
    async fn sync(&self, k: &Key) -> Result<Option<Duration>, kube::Error> {
        let ns = k.namespace.clone().unwrap_or_default();
        let slices = self.slices_of(&ns, &k.name);
        if !self.cache_current(k, &slices) {
            return Ok(Some(Duration::from_millis(50)));
        }
        let slice_api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &ns);
        let ep_api: Api<Endpoints> = Api::namespaced(self.client.clone(), &ns);
        let Some(svc) = self.services.get(k) else {
            // The Service is gone: so are its slices and Endpoints.
            for s in &slices {
                let name = s.metadata.name.clone().unwrap_or_default();
                self.delete_slice(&slice_api, k, &name, s.metadata.uid.clone())
                    .await?;
            }
            if self
                .endpoints
                .get(&ObjectRef::new(&k.name).within(&ns))
                .is_some()
            {
                ignore_not_found(ep_api.delete(&k.name, &DeleteParams::default()).await)?;
            }
            return Ok(None);
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .collect();
        let pod_refs: Vec<&Pod> = pods.iter().map(|p| &**p).collect();
        let slice_refs: Vec<&EndpointSlice> = slices.iter().map(|s| &**s).collect();
        let stored_ep = self.endpoints.get(&ObjectRef::new(&k.name).within(&ns));
        let p = plan::plan(&svc, &pod_refs, &slice_refs, stored_ep.as_deref());
        for (name, uid) in p.delete {
            self.delete_slice(&slice_api, k, &name, Some(uid)).await?;
        }
        for s in p.update {
            let name = s.metadata.name.clone().unwrap_or_default();
            let done = slice_api.replace(&name, &PostParams::default(), &s).await?;
            self.expect(
                k,
                name,
                Expect::Generation(done.metadata.generation.unwrap_or(0)),
            );
        }
        for s in p.create {
            let done = slice_api.create(&PostParams::default(), &s).await?;
            if let Some(name) = done.metadata.name.clone() {
                self.expect(
                    k,
                    name,
                    Expect::Generation(done.metadata.generation.unwrap_or(0)),
                );
            }
        }
        match p.endpoints {
            EndpointsAction::Nothing => {}
            EndpointsAction::Create(e) => match ep_api.create(&PostParams::default(), &e).await {
                Ok(_) => {}
                // The cache has not seen it yet: look again once it has.
                Err(kube::Error::Api(ae)) if ae.code == 409 => {
                    return Ok(Some(Duration::from_millis(200)));
                }
                Err(e) => return Err(e),
            },
            EndpointsAction::Update(e) => {
                let name = e.metadata.name.clone().unwrap_or_default();
                match ep_api.replace(&name, &PostParams::default(), &e).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(ae)) if ae.code == 409 || ae.code == 404 => {
                        return Ok(Some(Duration::from_millis(200)));
                    }
                    Err(e) => return Err(e),
                }
            }
            EndpointsAction::Delete => {
                ignore_not_found(ep_api.delete(&k.name, &DeleteParams::default()).await)?;
            }
        }
        Ok(None)
    }

    async fn delete_slice(
        &self,
        api: &Api<EndpointSlice>,
        k: &Key,
        name: &str,
        uid: Option<String>,
    ) -> Result<(), kube::Error> {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid,
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e),
        }
        self.expect(k, name.to_string(), Expect::Deleted);
        Ok(())
    }
}

fn ignore_not_found<T>(r: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
