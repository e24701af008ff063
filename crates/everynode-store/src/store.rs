//! The public handle.

use std::collections::VecDeque;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::redb_backend::{self, Loaded};
use crate::state::{Map, Shared};
use crate::watch::Watch;
use crate::writer::{Backend, Msg, NoBackend, Op, Writer};
use crate::{Event, KeyValue, ListError, ListResult, OpenError, Revision, WatchError, WriteError};

/// How many writes may wait for the writer before `create`/`update`/`delete` callers
/// wait to enqueue (back-pressure instead of unbounded memory). Larger than any batch,
/// so the queue never limits the batch size.
const QUEUE_CAPACITY: usize = 16 * 1024;

/// Tuning of a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How many past events the watch history retains (default 100 000; at least 1 is
    /// kept). Also bounds the redb file (records leave it as their events leave the history).
    pub history_events: usize,
    /// How long a list snapshot stays readable for continue tokens after the last list
    /// that read it (default 5 minutes).
    pub snapshot_retention: Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            history_events: 100_000,
            snapshot_retention: Duration::from_secs(5 * 60),
        }
    }
}

/// Counters of the writer's work since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Durable commits (batches that wrote at least one event).
    pub commits: u64,
    /// Writes those commits carried; `writes / commits` is the mean batch size.
    pub writes: u64,
}

/// A revisioned key-value store. Cheap to clone: every clone is a handle to the same
/// store. Dropping the last handle stops the writer after it has finished the queued
/// writes (without waiting for it); `close` does the same and waits.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The writer's queue. Watches do not hold it, so dropping every `Store` stops the
    /// writer even while watches live on.
    tx: mpsc::Sender<Msg>,
    /// Becomes true once the writer has stopped and released the backend.
    stopped: watch::Receiver<bool>,
    shared: Arc<Shared>,
}

impl Store {
    /// A store without durability, with the same semantics and the same group-commit
    /// writer as the redb one.
    pub fn memory() -> Store {
        Store::memory_with(StoreOptions::default())
    }

    /// [`Store::memory`] with options.
    pub fn memory_with(opts: StoreOptions) -> Store {
        let shared = Shared::new(
            Map::new(),
            0,
            VecDeque::new(),
            opts.history_events,
            opts.snapshot_retention,
        );
        match Store::start(NoBackend, shared) {
            Ok(store) => store,
            Err((err, store)) => {
                // The signature has no room for an error; a store whose writer never
                // started answers every write with `Closed`, which callers handle anyway.
                tracing::error!(%err, "cannot start the store writer thread; the store is closed");
                store
            }
        }
    }

    /// Opens the redb file at `path`, creating it if missing, and loads the state and
    /// the retained event history into memory. Revisions continue from the stored one.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Store, OpenError> {
        let Loaded {
            backend,
            map,
            revision,
            history,
        } = redb_backend::load(path, opts.history_events)?;
        tracing::info!(path = %path.display(), revision, keys = map.len(), events = history.len(), "store opened");
        let shared = Shared::new(
            map,
            revision,
            history,
            opts.history_events,
            opts.snapshot_retention,
        );
        Store::start(backend, shared).map_err(|(err, _)| OpenError::Io(err))
    }

    /// A memory-layout store over a test backend (e.g. one that fails on demand).
    #[cfg(test)]
    pub(crate) fn with_backend<B: Backend>(backend: B, opts: StoreOptions) -> Store {
        let shared = Shared::new(
            Map::new(),
            0,
            VecDeque::new(),
            opts.history_events,
            opts.snapshot_retention,
        );
        match Store::start(backend, shared) {
            Ok(store) | Err((_, store)) => store,
        }
    }

    /// Starts the writer thread. On failure the store is still returned (closed), for
    /// `memory_with`, which cannot fail.
    fn start<B: Backend>(backend: B, shared: Shared) -> Result<Store, (std::io::Error, Store)> {
        let shared = Arc::new(shared);
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (stopped_tx, stopped) = watch::channel(false);
        let writer = Writer::new(backend, shared.clone());
        let store = Store {
            inner: Arc::new(Inner {
                tx,
                stopped,
                shared: shared.clone(),
            }),
        };
        let spawned = std::thread::Builder::new()
            .name("everynode-store-writer".into())
            .spawn(move || writer.run(rx, stopped_tx));
        match spawned {
            Ok(_) => Ok(store),
            Err(err) => {
                // The closure (with the receiver and `stopped_tx`) is gone, so sends fail
                // with `Closed` and `close()` returns at once; watchers end too.
                shared.close();
                Err((err, store))
            }
        }
    }

    /// The revision of the last committed write (0 before the first).
    pub fn current_revision(&self) -> Revision {
        self.inner.shared.read().revision
    }

    /// The oldest revision whose event the watch history still holds (`current + 1`
    /// when it holds none). `watch(prefix, after)` succeeds iff `after + 1 >=` this, or
    /// `after >= current_revision()`.
    pub fn oldest_watchable_revision(&self) -> Revision {
        self.inner.shared.read().oldest_watchable()
    }

    /// How much group commit has been happening.
    pub fn stats(&self) -> StoreStats {
        let (commits, writes) = self.inner.shared.stats();
        StoreStats { commits, writes }
    }

    /// The key's current state, from memory.
    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.inner
            .shared
            .read()
            .map
            .get(key)
            .map(|kv| (**kv).clone())
    }

    /// Keys with this prefix, in key order, strictly after `start_after` if given, at
    /// most `limit` (None = all).
    ///
    /// `at`: None = the current state; Some(rev) = the snapshot taken at exactly that
    /// revision (for pagination continue tokens: the first page's revision); Err(Expired)
    /// if that snapshot is no longer retained. Every snapshot a list returns stays
    /// readable for `snapshot_retention` after its last use, so page N+1 sees exactly
    /// what page N saw.
    ///
    /// `remaining` is counted by walking the rest of the range, so it costs O(matching
    /// keys after the page).
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at: Option<Revision>,
    ) -> Result<ListResult, ListError> {
        let (map, revision) = self.inner.shared.snapshot(at)?;
        // Keys with the prefix form one contiguous run starting at `prefix`; a
        // `start_after` before the run must not skip into keys outside it.
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut run = map
            .range::<_, str>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix));
        let limit = limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        while items.len() < limit {
            match run.next() {
                Some((_, kv)) => items.push((**kv).clone()),
                None => break,
            }
        }
        let remaining = run.count();
        Ok(ListResult {
            items,
            revision,
            more: remaining > 0,
            remaining,
        })
    }

    /// How many keys have this prefix now. O(matching keys).
    pub fn count(&self, prefix: &str) -> usize {
        let map = self.inner.shared.read().map.clone();
        map.range::<_, str>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }

    /// Creates `key`; `AlreadyExists` if it exists. Returns the stored state.
    pub async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, WriteError> {
        self.submit(Op::Create {
            key: key.to_string(),
            value,
        })
        .await
    }

    /// Replaces `key`'s value if its `mod_revision` is `expected`; `NotFound` if it does
    /// not exist, `Conflict { current }` if it moved on. Returns the stored state.
    pub async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, WriteError> {
        self.submit(Op::Update {
            key: key.to_string(),
            value,
            expected,
        })
        .await
    }

    /// Deletes `key` (if `expected` is given, only at that `mod_revision`). Returns the
    /// deleted state with `mod_revision` = the deletion's revision.
    pub async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<KeyValue, WriteError> {
        self.submit(Op::Delete {
            key: key.to_string(),
            expected,
        })
        .await
    }

    /// Queues a write and waits for its answer. If the caller's future is dropped after
    /// the write was queued, the write still happens (as with etcd).
    async fn submit(&self, op: Op) -> Result<KeyValue, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Write(op, reply))
            .await
            .map_err(|_| WriteError::Closed)?;
        // A dropped reply means the writer stopped without answering (it panicked).
        answer.await.unwrap_or(Err(WriteError::Closed))
    }

    /// Every event after `after` whose key starts with `prefix`, then live events. See
    /// [`Watch`] for the guarantees.
    pub fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, WatchError> {
        let st = self.inner.shared.read();
        if !st.can_watch_from(after) {
            return Err(WatchError::Compacted {
                requested: after,
                oldest: st.oldest_watchable(),
            });
        }
        drop(st);
        Ok(Watch::new(
            self.inner.shared.clone(),
            prefix.to_string(),
            after,
        ))
    }

    /// The retained history after `after` for keys with `prefix`, without waiting:
    /// a convenience for replay and tests.
    pub fn events_since(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<Vec<Arc<Event>>, WatchError> {
        let st = self.inner.shared.read();
        if !st.can_watch_from(after) {
            return Err(WatchError::Compacted {
                requested: after,
                oldest: st.oldest_watchable(),
            });
        }
        let skip = usize::try_from(
            after
                .saturating_add(1)
                .saturating_sub(st.oldest_watchable()),
        )
        .unwrap_or(usize::MAX);
        Ok(st
            .history
            .iter()
            .skip(skip)
            .filter(|e| e.kv.key.starts_with(prefix))
            .cloned()
            .collect())
    }

    /// Finishes the queued writes, stops the writer and releases the database file.
    /// Later writes get `Closed`; reads keep working; watches end after the last event.
    pub async fn close(&self) {
        // Fails only if the writer is already gone, which is what we want anyway.
        let _ = self.inner.tx.send(Msg::Close).await;
        let mut stopped = self.inner.stopped.clone();
        // An error means the writer dropped its end: it has stopped too.
        let _ = stopped.wait_for(|s| *s).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::StreamExt;

    use super::*;

    /// A backend whose commits fail while `fail` is set: a disk that errors.
    struct FlakyDisk {
        fail: Arc<AtomicBool>,
    }

    impl Backend for FlakyDisk {
        fn commit(&mut self, _events: &[Arc<Event>], _keep_from: Revision) -> Result<(), String> {
            if self.fail.load(Ordering::SeqCst) {
                Err("injected disk failure".into())
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn failed_commit_fails_every_write_of_the_batch_and_leaves_memory_unchanged() {
        let fail = Arc::new(AtomicBool::new(false));
        let store = Store::with_backend(FlakyDisk { fail: fail.clone() }, StoreOptions::default());
        let a = store.create("/a", Bytes::from_static(b"1")).await.unwrap();
        let mut watch = store.watch("/", 0).unwrap();

        fail.store(true, Ordering::SeqCst);
        // Queued together, so they are likely one batch; each must fail either way.
        let (update, create, conflict) = tokio::join!(
            store.update("/a", Bytes::from_static(b"2"), a.mod_revision),
            store.create("/b", Bytes::from_static(b"x")),
            store.update("/a", Bytes::from_static(b"3"), a.mod_revision),
        );
        for result in [update, create, conflict] {
            assert!(matches!(result, Err(WriteError::Storage(_))), "{result:?}");
        }
        assert_eq!(store.current_revision(), 1);
        assert_eq!(store.get("/a"), Some(a.clone()));
        assert_eq!(store.get("/b"), None);
        assert_eq!(
            store.list("/", None, None, None).unwrap().items,
            vec![a.clone()]
        );

        // The failed revisions are reused by the next successful write, and watchers see
        // only that write.
        fail.store(false, Ordering::SeqCst);
        let b = store.create("/b", Bytes::from_static(b"y")).await.unwrap();
        assert_eq!(b.mod_revision, 2);
        let first = watch.next().await.unwrap().unwrap();
        let second = watch.next().await.unwrap().unwrap();
        assert_eq!((first.revision, first.kv.key.as_str()), (1, "/a"));
        assert_eq!(
            (
                second.revision,
                second.kv.key.as_str(),
                second.kv.value.as_ref()
            ),
            (2, "/b", &b"y"[..])
        );
        store.close().await;
    }
}
