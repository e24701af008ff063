//! everynode's storage layer: a revisioned key-value store with etcd's semantics.
//!
//! INTERFACE CONTRACT (the API server is written against exactly this surface; keep
//! these names and signatures, add to them freely):
//!
//! * One global, monotonically increasing [`Revision`]. Every successful write (create,
//!   update, delete) takes the next revision; an object's `resourceVersion` in the API is
//!   the `mod_revision` of its last write. Revision 0 never names a write; the first
//!   write is revision 1.
//! * Reads (`get`, `list`) are synchronous and served from memory: they never wait for
//!   the disk. `list` returns a consistent snapshot plus the revision it was taken at.
//! * Writes are `async` and return only after the write is durable (redb backend) —
//!   concurrent writes are group-committed: one writer task drains everything queued and
//!   commits it in one durable transaction, then acknowledges every waiter.
//! * `update` and `delete` compare-and-swap on the key's current `mod_revision`.
//! * `watch(prefix, after)` yields every event with `revision > after` whose key starts
//!   with `prefix`, in revision order, then live events. If `after` is older than the
//!   retained history the call fails with [`WatchError::Compacted`]; a watcher that falls
//!   too far behind gets `Err(Compacted)` as its last item.
//! * The redb backend persists both the current state and the bounded event history, so
//!   after a crash (SIGKILL) and restart every object is back with the same
//!   revisions, and a watch resumed from a pre-crash revision sees exactly the later events.
//!
//! # Layout tour
//!
//! * [`store`](crate::Store) — the public handle. Reads go straight to the published
//!   in-memory state; writes are queued to the writer and awaited.
//! * `state` — what readers see: the published map (a persistent `imbl::OrdMap`, so a
//!   snapshot is an O(1) clone), the watch history ring, pinned list snapshots and the
//!   wakers of idle watchers.
//! * `writer` — the single writer thread: drains the queue into a batch, checks every
//!   compare-and-swap against the batch's running state, commits the batch through a
//!   `Backend` (memory: nothing to do; redb: one durable transaction), then publishes
//!   and acknowledges.
//! * `redb_backend` / `codec` — the on-disk layout (see `DESIGN.md` next to
//!   `Cargo.toml`), loading on open, and [`raw_redb_floor`].
//! * `watch` — [`Watch`], a cursor over the history ring; no per-watcher queues.

mod codec;
mod error;
mod file;
mod redb_backend;
mod state;
mod store;
mod watch;
mod writer;

pub use bytes::Bytes;
pub use error::{ListError, OpenError, WatchError, WriteError};
pub use redb_backend::{CommitCost, RedbFile, raw_redb_floor, redb_commit_cost};
pub use store::{Store, StoreOptions, StoreStats};
pub use watch::Watch;

/// A point in the store's history. Every successful write takes the next one; 0 is
/// "before the first write".
pub type Revision = u64;

/// One key with its value and the revisions that describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/pods/default/nginx-abc`.
    pub key: String,
    /// Opaque bytes (JSON for the API server).
    pub value: Bytes,
    /// The revision of the write that created this key (kept across updates).
    pub create_revision: Revision,
    /// The revision of the last write of this key. For a Delete event's `kv`: the
    /// revision of the deletion itself.
    pub mod_revision: Revision,
}

/// What a write did to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A create or an update.
    Put,
    /// A delete.
    Delete,
}

/// One successful write, as watchers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The revision this write took.
    pub revision: Revision,
    /// Put or Delete.
    pub kind: EventKind,
    /// Put: the new state. Delete: the last value, key and create_revision, with
    /// `mod_revision` = this event's revision.
    pub kv: KeyValue,
    /// The state before this event (None for a create).
    pub prev: Option<KeyValue>,
}

/// One page of a `list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    /// The matching keys in key order.
    pub items: Vec<KeyValue>,
    /// The revision of the snapshot these items come from; pass it back as `at` to read
    /// the next page from the same snapshot.
    pub revision: Revision,
    /// Whether more matching keys follow the last item.
    pub more: bool,
    /// How many matching keys follow the last item.
    pub remaining: usize,
}
