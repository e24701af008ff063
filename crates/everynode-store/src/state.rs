//! The state readers see, shared between the `Store` handles, the writer thread and the
//! watchers.
//!
//! The locks are `std::sync` ones, not async: every critical section is a handful of
//! pointer copies (an `imbl` clone is O(1)) or a bounded scan of the history ring, and
//! readers (`get`, `list`) are synchronous by contract.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::{Event, KeyValue, ListError, Revision};

/// The key-value state at one revision. Keys and values sit behind `Arc`s so that the
/// copy-on-write path copies of `imbl` (64-entry nodes) are refcount bumps, not string
/// allocations.
pub(crate) type Map = imbl::OrdMap<Arc<str>, Arc<KeyValue>>;

/// Past this many pinned list snapshots the oldest are dropped early, so a client that
/// lists at a new revision every few milliseconds cannot keep unbounded old versions
/// alive; such a client gets `Expired` and restarts its list, as after a compaction.
const MAX_PINNED_SNAPSHOTS: usize = 1024;

/// What the writer publishes after each durable commit.
pub(crate) struct Published {
    /// The state at `revision`.
    pub map: Map,
    /// The revision of the last committed write.
    pub revision: Revision,
    /// The watch history: the events of revisions `revision - len + 1 ..= revision`,
    /// contiguous because every revision is one event.
    pub history: VecDeque<Arc<Event>>,
    /// Set once the writer has stopped: no event will ever follow `revision`.
    pub closed: bool,
}

impl Published {
    /// The revision of the oldest event in the history ring, or `revision + 1` when the
    /// ring is empty (then only future events can be watched).
    pub fn oldest_watchable(&self) -> Revision {
        (self.revision + 1).saturating_sub(self.history.len() as u64)
    }

    /// Whether a watch that has delivered everything up to `after` can continue.
    pub fn can_watch_from(&self, after: Revision) -> bool {
        after >= self.revision || after.saturating_add(1) >= self.oldest_watchable()
    }

    /// The event of `revision`, if the ring still holds it.
    pub fn event(&self, revision: Revision) -> Option<&Arc<Event>> {
        let offset = revision.checked_sub(self.oldest_watchable())?;
        self.history.get(usize::try_from(offset).ok()?)
    }
}

/// A list snapshot kept readable for continue tokens.
struct Pinned {
    map: Map,
    /// Refreshed by every list that reads it, so a slow paginating client keeps it.
    last_used: Instant,
}

/// Everything behind the `Arc` that stores, the writer and watches share.
pub(crate) struct Shared {
    /// The published state. Readers hold the read lock only to clone the map or scan a
    /// bounded stretch of history; the writer holds the write lock only to swap in a
    /// new state.
    state: RwLock<Published>,
    /// Idle watchers, by id. A watcher registers while still holding the state read
    /// lock, and the writer takes them all after publishing, so no wakeup is lost.
    wakers: Mutex<HashMap<u64, Waker>>,
    next_watcher: AtomicU64,
    /// Durable commits made and writes they carried, for `Store::stats`.
    commits: AtomicU64,
    committed_writes: AtomicU64,
    /// Snapshots that a list returned, by revision.
    snapshots: Mutex<BTreeMap<Revision, Pinned>>,
    /// Maximum number of events in `history` (at least 1).
    pub history_events: usize,
    /// How long a snapshot stays pinned after its last use.
    snapshot_retention: Duration,
}

impl Shared {
    pub fn new(
        map: Map,
        revision: Revision,
        history: VecDeque<Arc<Event>>,
        history_events: usize,
        snapshot_retention: Duration,
    ) -> Shared {
        Shared {
            state: RwLock::new(Published {
                map,
                revision,
                history,
                closed: false,
            }),
            wakers: Mutex::new(HashMap::new()),
            next_watcher: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            committed_writes: AtomicU64::new(0),
            snapshots: Mutex::new(BTreeMap::new()),
            history_events: history_events.max(1),
            snapshot_retention,
        }
    }

    // A panic while holding one of these locks cannot leave the data half-updated (every
    // critical section assigns whole values), so a poisoned lock is still usable.
    pub fn read(&self) -> RwLockReadGuard<'_, Published> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Published> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_wakers(&self) -> MutexGuard<'_, HashMap<u64, Waker>> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_snapshots(&self) -> MutexGuard<'_, BTreeMap<Revision, Pinned>> {
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state and its revision.
    pub fn current(&self) -> (Map, Revision) {
        let st = self.read();
        (st.map.clone(), st.revision)
    }

    /// Makes a committed batch visible: new state, events appended to the ring (oldest
    /// dropped past `history_events`), then every idle watcher woken.
    pub fn publish(&self, map: Map, revision: Revision, events: Vec<Arc<Event>>) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.committed_writes
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        {
            let mut st = self.write();
            st.map = map;
            st.revision = revision;
            st.history.extend(events);
            let excess = st.history.len().saturating_sub(self.history_events);
            st.history.drain(..excess);
        }
        self.wake_watchers();
    }

    /// Marks the store as stopped so watchers end once they have drained the ring.
    pub fn close(&self) {
        self.write().closed = true;
        self.wake_watchers();
    }

    fn wake_watchers(&self) {
        // Wake outside the lock: a waker may run arbitrary executor code.
        let wakers = std::mem::take(&mut *self.lock_wakers());
        for waker in wakers.into_values() {
            waker.wake();
        }
    }

    /// (commits, writes) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.committed_writes.load(Ordering::Relaxed),
        )
    }

    pub fn new_watcher_id(&self) -> u64 {
        self.next_watcher.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers an idle watcher. Call with the state read guard still held (that is
    /// what the `_held` argument enforces) so a publish cannot slip in between the
    /// watcher's "nothing new" check and this registration.
    pub fn register_waker(&self, _held: &RwLockReadGuard<'_, Published>, id: u64, waker: &Waker) {
        let mut wakers = self.lock_wakers();
        match wakers.get_mut(&id) {
            Some(existing) if existing.will_wake(waker) => {}
            Some(existing) => existing.clone_from(waker),
            None => {
                wakers.insert(id, waker.clone());
            }
        }
    }

    pub fn unregister_waker(&self, id: u64) {
        self.lock_wakers().remove(&id);
    }

    /// The snapshot a list reads: the current one (`at == None`), or the one pinned at
    /// `at`. Every snapshot returned is pinned (or has its pin refreshed) so the next
    /// page of the same list can read it.
    pub fn snapshot(&self, at: Option<Revision>) -> Result<(Map, Revision), ListError> {
        let now = Instant::now();
        let mut pins = self.lock_snapshots();
        if let Some(at) = at
            && let Some(pin) = pins.get_mut(&at)
            && now.duration_since(pin.last_used) <= self.snapshot_retention
        {
            pin.last_used = now;
            return Ok((pin.map.clone(), at));
        }
        let (map, revision, newer) = {
            let st = self.read();
            // A past revision the history still reaches back to: the events after it,
            // to be undone on a copy of the current state.
            let newer: Option<Vec<Arc<Event>>> = match at {
                Some(at) if at < st.revision && st.can_watch_from(at) => Some(
                    (at + 1..=st.revision)
                        .filter_map(|r| st.event(r).cloned())
                        .collect(),
                ),
                _ => None,
            };
            (st.map.clone(), st.revision, newer)
        };
        let Some(at) = at.filter(|at| *at != revision) else {
            self.pin(&mut pins, revision, &map, now);
            return Ok((map, revision));
        };
        match newer {
            Some(events) if at > 0 => {
                let past = undo(map, &events);
                self.pin(&mut pins, at, &past, now);
                Ok((past, at))
            }
            _ => {
                let oldest = pins
                    .iter()
                    .find(|(_, pin)| now.duration_since(pin.last_used) <= self.snapshot_retention)
                    .map_or(revision, |(rev, _)| *rev);
                Err(ListError::Expired {
                    requested: at,
                    oldest,
                })
            }
        }
    }

    fn pin(
        &self,
        pins: &mut BTreeMap<Revision, Pinned>,
        revision: Revision,
        map: &Map,
        now: Instant,
    ) {
        if let Some(pin) = pins.get_mut(&revision) {
            pin.last_used = now;
            return;
        }
        let retention = self.snapshot_retention;
        pins.retain(|_, pin| now.duration_since(pin.last_used) <= retention);
        while pins.len() >= MAX_PINNED_SNAPSHOTS {
            pins.pop_first();
        }
        pins.insert(
            revision,
            Pinned {
                map: map.clone(),
                last_used: now,
            },
        );
    }
}

/// The state before `events` (ascending, the newest ending at `map`'s revision): each
/// undone newest first, a create by removing its key, an update or a deletion by putting
/// back the state before it.
fn undo(mut map: Map, events: &[Arc<Event>]) -> Map {
    for event in events.iter().rev() {
        match &event.prev {
            Some(prev) => {
                map.insert(Arc::from(prev.key.as_str()), Arc::new(prev.clone()));
            }
            None => {
                map.remove(event.kv.key.as_str());
            }
        }
    }
    map
}
