//! The redb file: its table, loading it on open (and converting files of earlier
//! versions), and committing batches into it. `DESIGN.md` (next to `Cargo.toml`)
//! describes the layout and the crash story.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition,
    TableHandle,
};

use crate::codec::{self, Record};
use crate::file::ZeroFilledFile;
use crate::state::Map;
use crate::writer::Backend;
use crate::{Event, EventKind, KeyValue, OpenError, Revision};

/// Every write, under its revision (`codec::Record`): the current state is each key's
/// newest record, the history is the newest records, and an event's previous state is
/// the record it names. Records no longer needed by either are removed as they fall out
/// of the history.
const REVISIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("revisions");
/// Files of earlier versions (converted on open): current state, key → (create_revision,
/// mod_revision, value) ...
const KV: TableDefinition<&str, (u64, u64, &[u8])> = TableDefinition::new("kv");
/// ... and the history, revision → event (`codec` formats 1 and 2).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Bookkeeping of the oldest files: `"revision"` → the revision of the last committed
/// write. Still read (the store's revision is never below it); no longer written.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";

/// What the backend remembers of an event in the history: enough to know which records
/// to remove when it leaves.
#[derive(Clone, Copy, Debug)]
struct Kept {
    revision: Revision,
    /// The record this write superseded.
    prev: Option<Revision>,
    delete: bool,
}

impl Kept {
    fn of(event: &Event) -> Kept {
        Kept {
            revision: event.revision,
            prev: event.prev.as_ref().map(|p| p.mod_revision),
            delete: event.kind == EventKind::Delete,
        }
    }
}

/// The store's redb backend, owned by the writer thread.
pub(crate) struct RedbBackend {
    db: Database,
    /// The events of the history, oldest first, as the file holds them.
    window: VecDeque<Kept>,
}

impl Backend for RedbBackend {
    fn commit(&mut self, events: &[Arc<Event>], keep_from: Revision) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        let fresh: Vec<Kept> = events.iter().map(|e| Kept::of(e)).collect();
        let mut txn = self.db.begin_write().map_err(|e| e.to_string())?;
        // Immediate is redb's default; set it anyway because the store's promise ("Ok
        // means durable") rests on it.
        txn.set_durability(Durability::Immediate)
            .map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(REVISIONS).map_err(|e| e.to_string())?;
            // Appends: revisions only grow, so a batch touches the B-tree's right edge.
            for event in events {
                table
                    .insert(event.revision, codec::encode_record(event).as_slice())
                    .map_err(|e| e.to_string())?;
            }
            // An event leaving the history takes with it the record it superseded (no
            // event needs it as its previous state any more) and, for a deletion, its
            // own record (the key is gone from the state too).
            let leaving = self
                .window
                .iter()
                .chain(&fresh)
                .take_while(|k| k.revision < keep_from);
            for k in leaving {
                if let Some(prev) = k.prev {
                    table.remove(prev).map_err(|e| e.to_string())?;
                }
                if k.delete {
                    table.remove(k.revision).map_err(|e| e.to_string())?;
                }
            }
        }
        txn.commit().map_err(|e| e.to_string())?;
        self.window.extend(fresh);
        while self.window.front().is_some_and(|k| k.revision < keep_from) {
            self.window.pop_front();
        }
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
/// large clusters. 16 MiB against 64 MiB (session 10, alternating A/B): bench api,
/// converge and rollout within their noise, 63–69 MB less peak RSS (BENCHMARKS.md);
/// what a commit misses comes from the kernel's page cache.
const CACHE_BYTES: usize = 16 << 20;

fn open_db(path: &Path) -> Result<Database, OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| storage(path, e))?;
    let backend = ZeroFilledFile::new(file).map_err(|e| storage(path, e))?;
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create_with_backend(backend)
        .map_err(|err| match err {
            DatabaseError::DatabaseAlreadyOpen => OpenError::Locked {
                path: path.to_path_buf(),
            },
            other => storage(path, other),
        })
}

/// Opens (creating if missing) the file, converts a file of an earlier version, and
/// loads the state and the last `history_events` events.
pub(crate) fn load(path: &Path, history_events: usize) -> Result<Loaded, OpenError> {
    let db = open_db(path)?;
    let txn = db.begin_write().map_err(|e| storage(path, e))?;
    let tables: HashSet<String> = txn
        .list_tables()
        .map_err(|e| storage(path, e))?
        .map(|t| t.name().to_string())
        .collect();
    // Create the table up front so a read transaction can open it on a new file.
    txn.open_table(REVISIONS).map_err(|e| storage(path, e))?;
    txn.commit().map_err(|e| storage(path, e))?;
    let meta_revision = if tables.contains(META.name()) {
        let txn = db.begin_read().map_err(|e| storage(path, e))?;
        let meta = txn.open_table(META).map_err(|e| storage(path, e))?;
        meta.get(META_REVISION)
            .map_err(|e| storage(path, e))?
            .map_or(0, |g| g.value())
    } else {
        0
    };
    if tables.contains(KV.name()) || tables.contains(EVENTS.name()) {
        convert(&db, path, history_events, meta_revision)?;
    }

    let txn = db.begin_read().map_err(|e| storage(path, e))?;
    let table = txn.open_table(REVISIONS).map_err(|e| storage(path, e))?;
    let mut records: Vec<(Revision, Record)> = Vec::new();
    for entry in table.iter().map_err(|e| storage(path, e))? {
        let (rev, bytes) = entry.map_err(|e| storage(path, e))?;
        let rev = rev.value();
        let record = codec::decode_record(rev, bytes.value()).map_err(|d| corrupt(path, d))?;
        records.push((rev, record));
    }
    drop(table);
    txn.close().map_err(|e| storage(path, e))?;
    // (Only a converted file of the oldest kind can have `meta` ahead of its records.)
    let revision = records.last().map_or(0, |(rev, _)| *rev).max(meta_revision);

    // The state: each key's newest record (the first one met walking newest first),
    // unless that is a deletion.
    let mut map = Map::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (rev, record) in records.iter().rev() {
        if seen.insert(record.key.as_str()) && !record.delete {
            let kv = KeyValue {
                key: record.key.clone(),
                value: record.value.clone(),
                create_revision: record.create_revision,
                mod_revision: *rev,
            };
            map.insert(Arc::from(record.key.as_str()), Arc::new(kv));
        }
    }

    // The history: the newest `history_events` revisions, as far back as every one of
    // them has its record and its previous record (older ones were removed as they left
    // a history, possibly a shorter one than this open asks for).
    let keep_from = (revision + 1)
        .saturating_sub(history_events.max(1) as u64)
        .max(1);
    let find = |rev: Revision| {
        records
            .binary_search_by_key(&rev, |(r, _)| *r)
            .ok()
            .map(|i| &records[i])
    };
    let mut history = VecDeque::new();
    let mut expected = revision;
    for (rev, record) in records.iter().rev() {
        if *rev < keep_from || *rev != expected {
            break;
        }
        let prev = match record.prev {
            None => None,
            Some(p) => match find(p) {
                Some((_, pr)) if pr.key == record.key && !pr.delete => Some(KeyValue {
                    key: pr.key.clone(),
                    value: pr.value.clone(),
                    create_revision: pr.create_revision,
                    mod_revision: p,
                }),
                Some(_) => {
                    return Err(corrupt(
                        path,
                        format!(
                            "record {rev}: its previous record {p} is not a write of {:?}",
                            record.key
                        ),
                    ));
                }
                None => break,
            },
        };
        let value = match (&prev, record.delete) {
            (Some(p), true) => p.value.clone(),
            _ => record.value.clone(),
        };
        history.push_front(Arc::new(Event {
            revision: *rev,
            kind: if record.delete {
                EventKind::Delete
            } else {
                EventKind::Put
            },
            kv: KeyValue {
                key: record.key.clone(),
                value,
                create_revision: record.create_revision,
                mod_revision: *rev,
            },
            prev,
        }));
        expected = rev.saturating_sub(1);
    }

    // Records neither the state nor the history needs (the file was written with a
    // longer history than this open keeps) go now; later ones go as commits push events
    // out of the history.
    let history_from = history.front().map_or(revision + 1, |e| e.revision);
    let needed: HashSet<Revision> = history
        .iter()
        .filter_map(|e| e.prev.as_ref().map(|p| p.mod_revision))
        .collect();
    let stale: Vec<Revision> = records
        .iter()
        .filter(|(rev, record)| {
            *rev < history_from
                && !needed.contains(rev)
                && map
                    .get(record.key.as_str())
                    .is_none_or(|kv| kv.mod_revision != *rev)
        })
        .map(|(rev, _)| *rev)
        .collect();
    drop(records);
    if !stale.is_empty() {
        let txn = db.begin_write().map_err(|e| storage(path, e))?;
        {
            let mut table = txn.open_table(REVISIONS).map_err(|e| storage(path, e))?;
            for rev in &stale {
                table.remove(*rev).map_err(|e| storage(path, e))?;
            }
        }
        txn.commit().map_err(|e| storage(path, e))?;
    }
    let window = history.iter().map(|e| Kept::of(e)).collect();
    Ok(Loaded {
        backend: RedbBackend { db, window },
        map,
        revision,
        history,
    })
}

/// Rewrites a file of an earlier version (state in `kv`, history in `events`) as
/// records, in one transaction: the converted file holds the same state and history.
fn convert(
    db: &Database,
    path: &Path,
    history_events: usize,
    meta_revision: Revision,
) -> Result<(), OpenError> {
    let (map, history) = read_kv_and_events(db, path, history_events, meta_revision)?;
    let txn = db.begin_write().map_err(|e| storage(path, e))?;
    {
        let mut table = txn.open_table(REVISIONS).map_err(|e| storage(path, e))?;
        let mut put = |event: &Event| {
            table
                .insert(event.revision, codec::encode_record(event).as_slice())
                .map(drop)
                .map_err(|e| storage(path, e))
        };
        // The history's previous states and the current state first, as writes whose
        // own previous record is gone; the history's events last, since an event's
        // record also names its previous record.
        let as_put = |kv: &KeyValue| Event {
            revision: kv.mod_revision,
            kind: EventKind::Put,
            kv: kv.clone(),
            prev: None,
        };
        for prev in history.iter().filter_map(|e| e.prev.as_ref()) {
            put(&as_put(prev))?;
        }
        for kv in map.values() {
            put(&as_put(kv))?;
        }
        for event in &history {
            put(event)?;
        }
    }
    txn.delete_table(KV).map_err(|e| storage(path, e))?;
    txn.delete_table(EVENTS).map_err(|e| storage(path, e))?;
    txn.commit().map_err(|e| storage(path, e))?;
    tracing::info!(path = %path.display(), keys = map.len(), events = history.len(), "store file converted to records");
    Ok(())
}

/// The state and the last `history_events` events of a file of an earlier version.
fn read_kv_and_events(
    db: &Database,
    path: &Path,
    history_events: usize,
    meta_revision: Revision,
) -> Result<(Map, VecDeque<Arc<Event>>), OpenError> {
    let txn = db.begin_write().map_err(|e| storage(path, e))?;
    // Either table may be missing in a damaged or partial file: read it as empty.
    txn.open_table(KV).map_err(|e| storage(path, e))?;
    txn.open_table(EVENTS).map_err(|e| storage(path, e))?;
    txn.commit().map_err(|e| storage(path, e))?;
    let txn = db.begin_read().map_err(|e| storage(path, e))?;
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
    drop((kv, log));
    txn.close().map_err(|e| storage(path, e))?;
    Ok((map, history))
}

/// The machine's floor for the store's write path: writes `values` straight into a redb
/// file at `path` (created if missing, on the same file backend as the store's), one
/// durable transaction per `batch` objects, with no in-memory state and no watch
/// history, and returns how long the writes took (the open is not counted). The same
/// objects through `Store` cost this plus the store's own work (history records, memory
/// state, acknowledgements).
pub async fn raw_redb_floor(
    path: &Path,
    values: Vec<(String, Bytes)>,
    batch: usize,
) -> Result<Duration, OpenError> {
    let cost = redb_commit_cost(path, values, batch, RedbFile::Store).await?;
    Ok(cost.wall)
}

/// The file backend under a redb database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedbFile {
    /// redb's own (`Database::create`): the file grows sparse.
    AsShipped,
    /// The store's: fresh space is zero-filled before redb writes into it (`file.rs`).
    Store,
}

/// What writing a set of values cost: wall time and the CPU time of the writing thread
/// (including the kernel's work for its writes and syncs).
#[derive(Clone, Copy, Debug)]
pub struct CommitCost {
    pub wall: Duration,
    pub cpu: Duration,
}

/// [`raw_redb_floor`] on either file backend, with the CPU it took.
pub async fn redb_commit_cost(
    path: &Path,
    values: Vec<(String, Bytes)>,
    batch: usize,
    file: RedbFile,
) -> Result<CommitCost, OpenError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || floor_blocking(&path, &values, batch.max(1), file))
        .await
        .map_err(|e| OpenError::Io(std::io::Error::other(e)))?
}

fn thread_cpu() -> Duration {
    crate::writer::cpu_clock(rustix::time::ClockId::ThreadCPUTime)
}

fn floor_blocking(
    path: &Path,
    values: &[(String, Bytes)],
    batch: usize,
    file: RedbFile,
) -> Result<CommitCost, OpenError> {
    const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
    let db = match file {
        RedbFile::Store => open_db(path)?,
        RedbFile::AsShipped => Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| storage(path, e))?,
    };
    let (started, cpu) = (Instant::now(), thread_cpu());
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
    Ok(CommitCost {
        wall: started.elapsed(),
        cpu: thread_cpu().saturating_sub(cpu),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    /// The writer of the earlier layout (state in `kv`, history in `events`, format 2),
    /// to make files of that kind.
    struct Format2 {
        db: Database,
        events_from: Revision,
    }

    impl Backend for Format2 {
        fn commit(&mut self, events: &[Arc<Event>], keep_from: Revision) -> Result<(), String> {
            let txn = self.db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut kv = txn.open_table(KV).map_err(|e| e.to_string())?;
                let mut log = txn.open_table(EVENTS).map_err(|e| e.to_string())?;
                for event in events {
                    let k = &event.kv;
                    match event.kind {
                        EventKind::Put => drop(
                            kv.insert(
                                k.key.as_str(),
                                (k.create_revision, k.mod_revision, &k.value[..]),
                            )
                            .map_err(|e| e.to_string())?,
                        ),
                        EventKind::Delete => {
                            drop(kv.remove(k.key.as_str()).map_err(|e| e.to_string())?)
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
            txn.commit().map_err(|e| e.to_string())?;
            self.events_from = self.events_from.max(keep_from);
            Ok(())
        }
    }

    fn value(i: usize) -> Bytes {
        Bytes::from(format!("{i}:{}", "v".repeat(i % 7)))
    }

    /// A file of the earlier layout opens with the same state and history, and is
    /// rewritten as records: it opens the same way again, and the store goes on from it.
    #[tokio::test]
    async fn files_of_the_earlier_layout_are_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        let opts = StoreOptions {
            history_events: 25,
            ..StoreOptions::default()
        };
        let db = open_db(&path).unwrap();
        let store = Store::with_backend(Format2 { db, events_from: 1 }, opts.clone());
        for i in 0..60 {
            let key = format!("/k/{}", i % 7);
            match store.get(&key) {
                Some(kv) if i % 5 == 0 => drop(store.delete(&key, Some(kv.mod_revision)).await),
                Some(kv) => drop(store.update(&key, value(i), kv.mod_revision).await),
                None => drop(store.create(&key, value(i)).await),
            }
        }
        let state = store.list("", None, None, None).unwrap().items;
        let revision = store.current_revision();
        let oldest = store.oldest_watchable_revision();
        let history = store.events_since("", oldest - 1).unwrap();
        assert_eq!(history.len(), 25);
        store.close().await;

        for round in 0..2 {
            let store = Store::open(&path, opts.clone()).unwrap();
            assert_eq!(
                store.list("", None, None, None).unwrap().items,
                state,
                "round {round}"
            );
            assert_eq!(store.current_revision(), revision);
            assert_eq!(store.oldest_watchable_revision(), oldest);
            assert_eq!(store.events_since("", oldest - 1).unwrap(), history);
            store.close().await;
        }
        let db = open_db(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        assert_eq!(names, vec![REVISIONS.name().to_string()]);
        drop((txn, db));

        let store = Store::open(&path, opts).unwrap();
        let kv = store.create("/new", value(1)).await.unwrap();
        assert_eq!(kv.mod_revision, revision + 1);
        store.close().await;
    }
}
