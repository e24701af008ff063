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

pub type Revision = u64;

pub use bytes::Bytes;
