//! The redb file: its tables, loading it on open, and committing batches into it.
//! `DESIGN.md` (next to `Cargo.toml`) describes the layout and the crash story.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::state::Map;
use crate::writer::Backend;
use crate::{Event, EventKind, KeyValue, OpenError, Revision, codec};

/// Current state: key → (create_revision, mod_revision, value).
const KV: TableDefinition<&str, (u64, u64, &[u8])> = TableDefinition::new("kv");
/// Watch history: revision → encoded event (see `codec`), the last `history_events`.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Bookkeeping: `"revision"` → the revision of the last committed write, as files
/// written before the revision was read from `events` kept it; no longer updated.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";

/// The store's redb backend, owned by the writer thread.
pub(crate) struct RedbBackend {
    db: Database,
    /// The lowest revision the events table may still hold; pruning starts here, so a
    /// commit only touches the few revisions that fall out of the history.
    events_from: Revision,
}

impl Backend for RedbBackend {
    fn commit(&mut self, events: &[Arc<Event>], keep_from: Revision) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(|e| e.to_string())?;
        // Immediate is redb's default; set it anyway because the store's promise ("Ok
        // means durable") rests on it.
        txn.set_durability(Durability::Immediate)
            .map_err(|e| e.to_string())?;
        {
            let mut kv = txn.open_table(KV).map_err(|e| e.to_string())?;
            let mut log = txn.open_table(EVENTS).map_err(|e| e.to_string())?;
            for event in events {
                let k = &event.kv;
                match event.kind {
                    EventKind::Put => {
                        kv.insert(
                            k.key.as_str(),
                            (k.create_revision, k.mod_revision, &k.value[..]),
                        )
                        .map_err(|e| e.to_string())?;
                    }
                    EventKind::Delete => {
                        kv.remove(k.key.as_str()).map_err(|e| e.to_string())?;
                    }
                }
                log.insert(event.revision, codec::encode(event).as_slice())
                    .map_err(|e| e.to_string())?;
            }
            if self.events_from < keep_from {
                log.retain_in(self.events_from..keep_from, |_, _| false)
                    .map_err(|e| e.to_string())?;
            }
        }
        // The revision is the last event's (the history always keeps at least that
        // one), so no third table is written per commit.
        txn.commit().map_err(|e| e.to_string())?;
        self.events_from = self.events_from.max(keep_from);
        Ok(())
    }
}

/// What `open` found in the file.
pub(crate) struct Loaded {
    pub backend: RedbBackend,
    pub map: Map,
    pub revision: Revision,
    pub history: VecDeque<Arc<Event>>,
}

fn storage(path: &Path, err: impl std::fmt::Display) -> OpenError {
    OpenError::Storage {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

fn corrupt(path: &Path, detail: impl Into<String>) -> OpenError {
    OpenError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// redb's page cache. Reads never reach redb after the load (they are served from the
/// in-memory state), so the cache only has to hold the B-tree pages that commits
/// rewrite; redb's default (1 GiB) let it grow with the file and dominate the RSS of
/// large clusters.
const CACHE_BYTES: usize = 64 << 20;

fn open_db(path: &Path) -> Result<Database, OpenError> {
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|err| match err {
            DatabaseError::DatabaseAlreadyOpen => OpenError::Locked {
                path: path.to_path_buf(),
            },
            other => storage(path, other),
        })
}

/// Opens (creating if missing) the file, makes sure the tables exist, and loads the
/// state and the last `history_events` events.
pub(crate) fn load(path: &Path, history_events: usize) -> Result<Loaded, OpenError> {
    let db = open_db(path)?;
    // Create the tables up front so a read transaction can open them on a new file.
    let txn = db.begin_write().map_err(|e| storage(path, e))?;
    txn.open_table(KV).map_err(|e| storage(path, e))?;
    txn.open_table(EVENTS).map_err(|e| storage(path, e))?;
    txn.open_table(META).map_err(|e| storage(path, e))?;
    txn.commit().map_err(|e| storage(path, e))?;

    let txn = db.begin_read().map_err(|e| storage(path, e))?;
    let meta = txn.open_table(META).map_err(|e| storage(path, e))?;
    // Files written before the revision was taken from the events table kept it in
    // `meta` too (equal to the last event); newer commits leave `meta` behind.
    let meta_revision = meta
        .get(META_REVISION)
        .map_err(|e| storage(path, e))?
        .map_or(0, |g| g.value());
    let last_event = txn
        .open_table(EVENTS)
        .map_err(|e| storage(path, e))?
        .last()
        .map_err(|e| storage(path, e))?
        .map(|(rev, _)| rev.value());
    let revision = match last_event {
        Some(last) if last < meta_revision => {
            return Err(corrupt(
                path,
                format!("last event {last} is older than the stored revision {meta_revision}"),
            ));
        }
        Some(last) => last,
        None => meta_revision,
    };

    let mut map = Map::new();
    let kv = txn.open_table(KV).map_err(|e| storage(path, e))?;
    for entry in kv.iter().map_err(|e| storage(path, e))? {
        let (key, value) = entry.map_err(|e| storage(path, e))?;
        let key = key.value();
        let (create_revision, mod_revision, value) = value.value();
        if create_revision == 0 || create_revision > mod_revision || mod_revision > revision {
            return Err(corrupt(
                path,
                format!(
                    "key {key:?} has revisions {create_revision}/{mod_revision} past the stored revision {revision}"
                ),
            ));
        }
        let kv = KeyValue {
            key: key.to_string(),
            value: Bytes::copy_from_slice(value),
            create_revision,
            mod_revision,
        };
        map.insert(Arc::from(key), Arc::new(kv));
    }

    let log = txn.open_table(EVENTS).map_err(|e| storage(path, e))?;
    let events_from = match log.first().map_err(|e| storage(path, e))? {
        Some((first, _)) => first.value(),
        None => revision + 1,
    };
    // Load the newest `history_events`, newest first, stopping at a gap: the ring must
    // be contiguous, and a gap could only come from a damaged file.
    let keep_from = (revision + 1)
        .saturating_sub(history_events.max(1) as u64)
        .max(1);
    let mut history = VecDeque::new();
    let mut expected = revision;
    // Put events do not repeat their value (`codec`): it is the key's `kv` row while
    // the key is unchanged, else the `prev` of the key's next event. Walking newest
    // first, `newer_prev` holds, per key, the prev of the newest event seen so far.
    let mut newer_prev: HashMap<String, Option<KeyValue>> = HashMap::new();
    for entry in log
        .range(keep_from..=revision)
        .map_err(|e| storage(path, e))?
        .rev()
    {
        let (rev, bytes) = entry.map_err(|e| storage(path, e))?;
        let rev = rev.value();
        if rev != expected {
            tracing::warn!(path = %path.display(), rev, expected, "gap in the stored event history; keeping the part after it");
            break;
        }
        let codec::Decoded {
            mut event,
            value_in_state,
        } = codec::decode(rev, bytes.value()).map_err(|detail| corrupt(path, detail))?;
        if value_in_state {
            let from = match newer_prev.get(event.kv.key.as_str()) {
                Some(prev) => prev.as_ref(),
                None => map.get(event.kv.key.as_str()).map(|kv| &**kv),
            };
            match from {
                Some(kv) if kv.mod_revision == rev => event.kv.value = kv.value.clone(),
                _ => {
                    return Err(corrupt(
                        path,
                        format!(
                            "event {rev}: the value of {:?} is neither in the state nor in a later event",
                            event.kv.key
                        ),
                    ));
                }
            }
        }
        newer_prev.insert(event.kv.key.clone(), event.prev.clone());
        history.push_front(Arc::new(event));
        expected = rev.saturating_sub(1);
    }
    drop((meta, kv, log));
    txn.close().map_err(|e| storage(path, e))?;
    Ok(Loaded {
        backend: RedbBackend { db, events_from },
        map,
        revision,
        history,
    })
}

/// The machine's floor for the store's write path: writes `values` straight into a redb
/// file at `path` (created if missing), one durable transaction per `batch` objects, with
/// no in-memory state and no watch history, and returns how long the writes took (the
/// open is not counted). The same objects through `Store` cost this plus the store's
/// own work (events table, memory state, acknowledgements).
pub async fn raw_redb_floor(
    path: &Path,
    values: Vec<(String, Bytes)>,
    batch: usize,
) -> Result<Duration, OpenError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || floor_blocking(&path, &values, batch.max(1)))
        .await
        .map_err(|e| OpenError::Io(std::io::Error::other(e)))?
}

fn floor_blocking(
    path: &Path,
    values: &[(String, Bytes)],
    batch: usize,
) -> Result<Duration, OpenError> {
    const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
    let db = open_db(path)?;
    let started = Instant::now();
    for chunk in values.chunks(batch) {
        let mut txn = db.begin_write().map_err(|e| storage(path, e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| storage(path, e))?;
        {
            let mut table = txn.open_table(OBJECTS).map_err(|e| storage(path, e))?;
            for (key, value) in chunk {
                table
                    .insert(key.as_str(), &value[..])
                    .map_err(|e| storage(path, e))?;
            }
        }
        txn.commit().map_err(|e| storage(path, e))?;
    }
    Ok(started.elapsed())
}
