//! One narrow error enum per operation family, so a caller matches only the cases its
//! operation can produce (writes, watches, lists, opening).

use std::path::PathBuf;

use crate::Revision;

/// Why a write did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// `create` of a key that exists.
    #[error("key already exists")]
    AlreadyExists,
    /// `update` or `delete` of a key that does not exist.
    #[error("key not found")]
    NotFound,
    /// The expected revision did not match; `current` is the key's `mod_revision`.
    #[error("revision conflict: the key was last modified at revision {current}")]
    Conflict {
        /// The key's current `mod_revision`.
        current: Revision,
    },
    /// The durable commit failed; the write did not happen and memory is unchanged.
    #[error("storage failure, the write did not happen: {0}")]
    Storage(String),
    /// The store has been shut down.
    #[error("the store is closed")]
    Closed,
}

/// Why a watch cannot continue from the requested revision.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// Events after `requested` are no longer all retained. `oldest` is
    /// [`Store::oldest_watchable_revision`](crate::Store::oldest_watchable_revision) at
    /// that moment: the smallest `after` that works is `oldest - 1`.
    #[error("revision {requested} has been compacted; the oldest watchable revision is {oldest}")]
    Compacted {
        /// The `after` the watch asked for (or had reached when it fell behind).
        requested: Revision,
        /// The oldest revision still in the watch history.
        oldest: Revision,
    },
}

/// Why a list at a revision cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The snapshot at `requested` is no longer retained (or never existed: a revision
    /// in the future, or one from before a restart). `oldest` is the oldest snapshot
    /// revision still readable.
    #[error("the snapshot at revision {requested} has expired; the oldest available is {oldest}")]
    Expired {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision a list can still be served at.
        oldest: Revision,
    },
}

/// Why [`Store::open`](crate::Store::open) failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another `Store` (in this or another process) has the file open.
    #[error("database {path} is already open by another store or process")]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// redb could not open, create or read the file.
    #[error("database {path}: {message}")]
    Storage {
        /// The database file.
        path: PathBuf,
        /// redb's description of the failure.
        message: String,
    },
    /// The file opened but its contents break the store's invariants.
    #[error("database {path} is corrupt: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which invariant failed.
        detail: String,
    },
    /// The operating system refused something else (e.g. starting the writer thread).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
