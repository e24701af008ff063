//! The small runtime the controller loops share: watched caches and a work queue.
//!
//! [`Informers`] hands out one [`Cache`] per resource (and scope) to every controller
//! in the process: one watch and one copy of each object, however many controllers
//! read it (in `everynode up` the scheduler, the DaemonSet, node-lifecycle and
//! EndpointSlice controllers all read every pod). Each caller gets its own stream of
//! [`Change`]s to drive its queue; a caller that arrives late first sees what the cache
//! holds. The watch relists on its own after errors. A [`WorkQueue`] holds keys to
//! reconcile: a key queued twice is processed once, a key re-queued while being
//! processed runs again afterwards, and `add_after` delays a key (back-off,
//! minReadySeconds).

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// What a watched resource needs to be cached.
pub trait Cached:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}

impl<K> Cached for K where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
}

/// The process's shared caches, one per resource kind and scope (URL and selectors).
#[derive(Clone)]
pub struct Informers {
    client: kube::Client,
    caches: Arc<Mutex<HashMap<(TypeId, String), AnyCache>>>,
}

/// A `Cache<K>` of some K.
type AnyCache = Box<dyn Any + Send + Sync>;

impl Informers {
    pub fn new(client: kube::Client) -> Informers {
        Informers {
            client,
            caches: Arc::default(),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The cache of every `K` in the cluster that `config` selects (see [`Self::cache`]).
    pub fn all<K: Cached>(
        &self,
        config: watcher::Config,
    ) -> (Cache<K>, impl Stream<Item = Change<K>> + Send + use<K>) {
        self.cache(Api::all(self.client.clone()), config)
    }

    /// The cache of what `api` and `config` select (started by the first caller), and a
    /// stream of its changes for this caller alone. The stream must be polled or
    /// dropped: changes queue up for it until then.
    pub fn cache<K: Cached>(
        &self,
        api: Api<K>,
        config: watcher::Config,
    ) -> (Cache<K>, impl Stream<Item = Change<K>> + Send + use<K>) {
        let scope = format!(
            "{}?labels={:?}&fields={:?}",
            api.resource_url(),
            config.label_selector,
            config.field_selector
        );
        let mut caches = lock(&self.caches);
        let cache = match caches
            .get(&(TypeId::of::<K>(), scope.clone()))
            .and_then(|c| c.downcast_ref::<Cache<K>>())
        {
            Some(c) => c.clone(),
            None => {
                let cache = Cache::new();
                let events = watcher(api, config).default_backoff();
                tokio::spawn(feed(Arc::downgrade(&cache.inner), events));
                caches.insert((TypeId::of::<K>(), scope), Box::new(cache.clone()));
                cache
            }
        };
        drop(caches);
        let changes = cache.subscribe();
        (cache, changes)
    }
}

/// A watched set of objects, shared by every controller that reads it. Cloning is cheap.
pub struct Cache<K: Cached> {
    inner: Arc<CacheInner<K>>,
}

impl<K: Cached> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

struct CacheInner<K: Cached> {
    objects: RwLock<HashMap<ObjectRef<K>, Arc<K>>>,
    feed: Mutex<FeedState<K>>,
    ready: tokio::sync::watch::Sender<bool>,
}

/// What the feed and late subscribers agree on, under one lock.
struct FeedState<K: Cached> {
    subscribers: Vec<UnboundedSender<Change<K>>>,
    /// Objects of a list in progress; they replace `objects` when it completes.
    listing: Option<HashMap<ObjectRef<K>, Arc<K>>>,
}

impl<K: Cached> Cache<K> {
    fn new() -> Cache<K> {
        Cache {
            inner: Arc::new(CacheInner {
                objects: RwLock::default(),
                feed: Mutex::new(FeedState {
                    subscribers: Vec::new(),
                    listing: None,
                }),
                ready: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// Every object, in no particular order.
    pub fn state(&self) -> Vec<Arc<K>> {
        read(&self.inner.objects).values().cloned().collect()
    }

    pub fn get(&self, key: &ObjectRef<K>) -> Option<Arc<K>> {
        read(&self.inner.objects).get(key).cloned()
    }

    pub fn len(&self) -> usize {
        read(&self.inner.objects).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first list has completed.
    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// Waits for the first list to complete. Any number of tasks may wait.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.inner.ready.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// A stream of changes for one caller: first what the cache already holds (and
    /// `Synced` if it has listed), then every change as it comes.
    fn subscribe(&self) -> impl Stream<Item = Change<K>> + Send + use<K> {
        let (tx, rx) = unbounded();
        let mut feed = lock(&self.inner.feed);
        let synced = self.is_ready();
        if synced {
            for obj in read(&self.inner.objects).values() {
                let _ = tx.unbounded_send(Change::Applied(obj.clone()));
            }
        }
        for obj in feed.listing.iter().flat_map(|l| l.values()) {
            let _ = tx.unbounded_send(Change::Applied(obj.clone()));
        }
        if synced && feed.listing.is_none() {
            let _ = tx.unbounded_send(Change::Synced);
        }
        feed.subscribers.push(tx);
        rx
    }

    /// Applies one watch event and passes it on to every subscriber.
    fn apply(&self, event: watcher::Event<K>) {
        let mut feed = lock(&self.inner.feed);
        let change = match event {
            watcher::Event::Init => {
                feed.listing = Some(HashMap::new());
                return;
            }
            watcher::Event::InitApply(obj) => {
                let obj = Arc::new(slim(obj));
                match feed.listing.as_mut() {
                    Some(l) => {
                        l.insert(ObjectRef::from_obj(&*obj), obj.clone());
                    }
                    None => {
                        write(&self.inner.objects).insert(ObjectRef::from_obj(&*obj), obj.clone());
                    }
                }
                Change::Applied(obj)
            }
            watcher::Event::InitDone => {
                if let Some(listed) = feed.listing.take() {
                    *write(&self.inner.objects) = listed;
                }
                self.inner.ready.send_replace(true);
                Change::Synced
            }
            watcher::Event::Apply(obj) => {
                let obj = Arc::new(slim(obj));
                write(&self.inner.objects).insert(ObjectRef::from_obj(&*obj), obj.clone());
                Change::Applied(obj)
            }
            watcher::Event::Delete(obj) => {
                write(&self.inner.objects).remove(&ObjectRef::from_obj(&obj));
                Change::Deleted(Arc::new(obj))
            }
        };
        feed.subscribers
            .retain(|tx| tx.unbounded_send(change.clone()).is_ok());
    }
}

/// Whether a watch failed because an in-process API server is gone (it shuts down
/// before the controllers that run beside it: `everynode up` on Ctrl-C), which is no
/// news worth a warning.
pub fn server_gone(e: &watcher::Error) -> bool {
    e.to_string().contains("buffer's worker closed")
}

/// Logs a failed watch of controller `who`: a warning, unless the server is gone.
pub fn log_watch_error(who: &'static str, e: &watcher::Error) {
    if server_gone(e) {
        tracing::debug!(controller = who, error = %e, "watch failed");
    } else {
        tracing::warn!(controller = who, error = %e, "watch failed");
    }
}

/// An object as the caches keep it: what no controller reads is dropped on the way in,
/// as kube-controller-manager's informers drop it with a transform. A pod's volumes and
/// volume mounts (every pod carries the projected `kube-api-access-*` volume, ~4 KB in
/// its typed form) are read by no controller here: the scheduler has no volume
/// predicates, and the EndpointSlice controller reads container ports only.
fn slim<K: 'static>(mut obj: K) -> K {
    if let Some(pod) = (&mut obj as &mut dyn Any).downcast_mut::<k8s_openapi::api::core::v1::Pod>()
        && let Some(spec) = pod.spec.as_mut()
    {
        spec.volumes = None;
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            c.volume_mounts = None;
        }
    }
    obj
}

/// Keeps a cache current from its watch until the cache is dropped.
async fn feed<K: Cached>(
    cache: Weak<CacheInner<K>>,
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
) {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let Some(inner) = cache.upgrade() else {
            return;
        };
        match event {
            Ok(e) => Cache { inner }.apply(e),
            Err(e) if server_gone(&e) => tracing::debug!(error = %e, "watch failed; retrying"),
            Err(e) => tracing::warn!(error = %e, "watch failed; retrying"),
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One change seen by a cache.
#[derive(Debug)]
pub enum Change<K> {
    Applied(Arc<K>),
    Deleted(Arc<K>),
    /// A (re)list finished: the cache holds the whole current state.
    Synced,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied(o) => Change::Applied(o.clone()),
            Change::Deleted(o) => Change::Deleted(o.clone()),
            Change::Synced => Change::Synced,
        }
    }
}

struct QueueState<T> {
    order: VecDeque<T>,
    queued: HashSet<T>,
    active: HashSet<T>,
    /// Keys re-added while active: queued again when they finish.
    dirty: HashSet<T>,
}

/// A deduplicating work queue of keys.
pub struct WorkQueue<T> {
    state: Mutex<QueueState<T>>,
    notify: Notify,
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    pub fn new() -> Arc<WorkQueue<T>> {
        Arc::new(WorkQueue {
            state: Mutex::new(QueueState {
                order: VecDeque::new(),
                queued: HashSet::new(),
                active: HashSet::new(),
                dirty: HashSet::new(),
            }),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<T>> {
        lock(&self.state)
    }

    /// Queues `key` unless it is queued already.
    pub fn add(&self, key: T) {
        let mut st = self.lock();
        if st.active.contains(&key) {
            st.dirty.insert(key);
            return;
        }
        if st.queued.insert(key.clone()) {
            st.order.push_back(key);
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: T, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Waits for the next key; call [`WorkQueue::done`] with it when finished.
    pub async fn next(&self) -> T {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.lock();
                if let Some(key) = st.order.pop_front() {
                    st.queued.remove(&key);
                    st.active.insert(key.clone());
                    let more = !st.order.is_empty();
                    drop(st);
                    if more {
                        // Wake another worker for the rest.
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` finished, re-queueing it if it was added meanwhile.
    pub fn done(&self, key: &T) {
        let again = {
            let mut st = self.lock();
            st.active.remove(key);
            st.dirty.remove(key)
        };
        if again {
            self.add(key.clone());
        }
    }

    /// Keys waiting (not counting active ones).
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_pods_drop_their_volumes_and_nothing_else() {
        use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, Volume, VolumeMount};
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        pod.spec = Some(PodSpec {
            node_name: Some("n1".into()),
            containers: vec![Container {
                name: "c".into(),
                volume_mounts: Some(vec![VolumeMount::default()]),
                ..Container::default()
            }],
            volumes: Some(vec![Volume::default()]),
            ..PodSpec::default()
        });
        let slimmed = slim(pod.clone());
        let spec = slimmed.spec.as_ref().expect("spec");
        assert_eq!(spec.volumes, None);
        assert_eq!(spec.containers[0].volume_mounts, None);
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(slimmed.metadata, pod.metadata);
        let mut node = Node::default();
        node.metadata.name = Some("n1".into());
        assert_eq!(slim(node.clone()), node);
    }
    use futures::FutureExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use watcher::Event;

    fn cm(name: &str, v: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some("default".into());
        c.data = Some([("v".to_string(), v.to_string())].into());
        c
    }

    fn key(name: &str) -> ObjectRef<ConfigMap> {
        ObjectRef::new(name).within("default")
    }

    /// What a subscriber has received so far, as short strings.
    fn drain(rx: &mut (impl Stream<Item = Change<ConfigMap>> + Unpin)) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(Some(c)) = rx.next().now_or_never() {
            seen.push(match c {
                Change::Applied(o) => format!("+{}", o.metadata.name.clone().unwrap_or_default()),
                Change::Deleted(o) => format!("-{}", o.metadata.name.clone().unwrap_or_default()),
                Change::Synced => "synced".into(),
            });
        }
        seen.sort();
        seen
    }

    #[tokio::test]
    async fn every_waiter_wakes_when_the_first_list_completes() {
        let cache: Cache<ConfigMap> = Cache::new();
        let waiters = futures::future::join_all((0..32).map(|_| {
            let c = cache.clone();
            async move { c.wait_until_ready().await }
        }));
        let list = async {
            tokio::task::yield_now().await;
            cache.apply(Event::Init);
            cache.apply(Event::InitApply(cm("a", "1")));
            assert!(!cache.is_ready());
            cache.apply(Event::InitDone);
        };
        let all = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(waiters, list)
        })
        .await;
        assert!(all.is_ok(), "some waiter never woke");
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn subscribers_early_and_late_see_the_same_objects() {
        let cache: Cache<ConfigMap> = Cache::new();
        let mut early = Box::pin(cache.subscribe());
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(cm("a", "1")));
        // A subscriber arriving mid-list gets what was listed so far, then the rest.
        let mut mid = Box::pin(cache.subscribe());
        assert!(
            cache.state().is_empty(),
            "the list is not published until done"
        );
        cache.apply(Event::InitApply(cm("b", "1")));
        cache.apply(Event::InitDone);
        assert_eq!(drain(&mut early), ["+a", "+b", "synced"]);
        assert_eq!(drain(&mut mid), ["+a", "+b", "synced"]);
        // After the list: everything the cache holds, then Synced.
        let mut late = Box::pin(cache.subscribe());
        assert_eq!(drain(&mut late), ["+a", "+b", "synced"]);
        cache.apply(Event::Apply(cm("a", "2")));
        cache.apply(Event::Delete(cm("b", "1")));
        for rx in [&mut early, &mut mid, &mut late] {
            assert_eq!(drain(rx), ["+a", "-b"]);
        }
        let a = cache.get(&key("a")).expect("a");
        assert_eq!(
            a.data.as_ref().and_then(|d| d.get("v")).map(String::as_str),
            Some("2")
        );
        assert!(cache.get(&key("b")).is_none());
    }

    #[tokio::test]
    async fn a_relist_drops_what_was_deleted_meanwhile() {
        let cache: Cache<ConfigMap> = Cache::new();
        let mut rx = Box::pin(cache.subscribe());
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(cm("a", "1")));
        cache.apply(Event::InitApply(cm("b", "1")));
        cache.apply(Event::InitDone);
        drain(&mut rx);
        // The watch broke and relists: b is gone, c is new.
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(cm("a", "1")));
        cache.apply(Event::InitApply(cm("c", "1")));
        assert_eq!(
            cache.len(),
            2,
            "the old state serves reads during the relist"
        );
        assert!(cache.get(&key("b")).is_some());
        cache.apply(Event::InitDone);
        assert_eq!(drain(&mut rx), ["+a", "+c", "synced"]);
        let mut names: Vec<String> = cache
            .state()
            .iter()
            .filter_map(|o| o.metadata.name.clone())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "c"]);
    }

    #[tokio::test]
    async fn dropped_subscribers_are_forgotten() {
        let cache: Cache<ConfigMap> = Cache::new();
        let kept = cache.subscribe();
        drop(cache.subscribe());
        cache.apply(Event::Apply(cm("a", "1")));
        assert_eq!(lock(&cache.inner.feed).subscribers.len(), 1);
        drop(kept);
        cache.apply(Event::Apply(cm("b", "1")));
        assert!(lock(&cache.inner.feed).subscribers.is_empty());
    }

    #[tokio::test]
    async fn duplicates_collapse_and_busy_keys_run_again() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, "a");
        q.add("a"); // while active: runs again after done
        assert_eq!(q.len(), 1);
        q.done(&k);
        assert_eq!(q.next().await, "b");
        assert_eq!(q.next().await, "a");
    }

    #[tokio::test]
    async fn workers_sharing_one_task_all_take_keys() {
        // 64 workers in one join_all (as the controllers run them): each holds its key
        // at a barrier that opens only when all 64 hold one, so the test finishes only
        // if every worker was woken for the keys that arrived while it waited.
        const N: usize = 64;
        let q: Arc<WorkQueue<usize>> = WorkQueue::new();
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let workers = futures::future::join_all((0..N).map(|_| {
            let (q, barrier) = (q.clone(), barrier.clone());
            async move {
                let k = q.next().await;
                barrier.wait().await;
                q.done(&k);
            }
        }));
        let feed = async {
            tokio::task::yield_now().await;
            for i in 0..N {
                q.add(i);
            }
        };
        let all = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(workers, feed)
        })
        .await;
        assert!(all.is_ok(), "{} keys were never taken", q.len());
    }
}
