//! The small runtime the controller loops share: watched caches and a work queue.
//!
//! A cache is kube-runtime's reflector store, kept current by a watcher that relists on
//! its own after errors. A [`WorkQueue`] holds keys to reconcile: a key queued twice is
//! processed once, a key re-queued while being processed runs again afterwards, and
//! `add_after` delays a key (back-off, minReadySeconds).

use std::collections::{HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

/// Starts a reflector for `api` and returns its store, plus a stream of the objects that
/// changed (applied or deleted), to drive a queue. The stream must be polled for the
/// store to stay current.
pub fn cache<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, impl Stream<Item = Change<K>> + Send)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff()).filter_map(
        |event| async move {
            match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                    Some(Change::Applied(Arc::new(obj)))
                }
                Ok(watcher::Event::Delete(obj)) => Some(Change::Deleted(Arc::new(obj))),
                Ok(watcher::Event::InitDone) => Some(Change::Synced),
                Ok(watcher::Event::Init) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "watch failed; retrying");
                    None
                }
            }
        },
    );
    (reader, stream)
}

/// One change seen by a cache.
#[derive(Debug)]
pub enum Change<K> {
    Applied(Arc<K>),
    Deleted(Arc<K>),
    /// A (re)list finished: the cache holds the whole current state.
    Synced,
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
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
