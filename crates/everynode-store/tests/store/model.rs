//! Model-based test: random create/update/delete sequences (with right and wrong expected
//! revisions, some submitted concurrently so they share a batch) against a `BTreeMap`
//! model. Results, lists, counts, revisions and the replayed watch history must match.

use std::collections::BTreeMap;

use everynode_store::{Event, EventKind, KeyValue, Revision, Store, StoreOptions, WriteError};
use proptest::prelude::*;

use crate::common::{b, collect_until, plain};

/// Overlapping prefixes on purpose: `/a` is a prefix of `/a/1` and of `/ab`.
const KEYS: [&str; 8] = [
    "/a/1", "/a/2", "/a/3", "/b/1", "/b/2", "/ab", "/c", "/a/1/x",
];
const PREFIXES: [&str; 7] = ["", "/a/", "/a", "/b/", "/c", "/a/1", "/zz"];

/// How a command picks its expected revision.
#[derive(Clone, Debug)]
enum Expect {
    /// The key's current `mod_revision` (1 if it does not exist).
    Right,
    /// Off by `1 + n` from the current one.
    Wrong(u64),
    /// Revision 0, never a write's.
    Zero,
}

#[derive(Clone, Debug)]
enum Cmd {
    Create(usize, u8),
    Update(usize, u8, Expect),
    Delete(usize, Option<Expect>),
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![4 => Just(Expect::Right), 1 => (0..3u64).prop_map(Expect::Wrong), 1 => Just(Expect::Zero)]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let key = 0..KEYS.len();
    prop_oneof![
        3 => (key.clone(), any::<u8>()).prop_map(|(k, v)| Cmd::Create(k, v)),
        3 => (key.clone(), any::<u8>(), expect()).prop_map(|(k, v, e)| Cmd::Update(k, v, e)),
        2 => (key, proptest::option::of(expect())).prop_map(|(k, e)| Cmd::Delete(k, e)),
    ]
}

/// A write with its expected revision resolved against the model state.
#[derive(Clone, Debug)]
enum Write {
    Create {
        key: &'static str,
        value: String,
    },
    Update {
        key: &'static str,
        value: String,
        expected: Revision,
    },
    Delete {
        key: &'static str,
        expected: Option<Revision>,
    },
}

#[derive(Default)]
struct Model {
    map: BTreeMap<String, KeyValue>,
    revision: Revision,
    events: Vec<Event>,
}

impl Model {
    fn resolve(&self, cmd: &Cmd) -> Write {
        let pick = |key: &str, e: &Expect| {
            let current = self.map.get(key).map_or(1, |kv| kv.mod_revision);
            match e {
                Expect::Right => current,
                Expect::Wrong(n) => current + 1 + n,
                Expect::Zero => 0,
            }
        };
        match cmd {
            Cmd::Create(k, v) => Write::Create {
                key: KEYS[*k],
                value: format!("c{v}"),
            },
            Cmd::Update(k, v, e) => Write::Update {
                key: KEYS[*k],
                value: format!("u{v}"),
                expected: pick(KEYS[*k], e),
            },
            Cmd::Delete(k, e) => Write::Delete {
                key: KEYS[*k],
                expected: e.as_ref().map(|e| pick(KEYS[*k], e)),
            },
        }
    }

    fn apply(&mut self, write: &Write) -> Result<KeyValue, WriteError> {
        let next = self.revision + 1;
        let (kind, kv, prev) = match write {
            Write::Create { key, value } => {
                if self.map.contains_key(*key) {
                    return Err(WriteError::AlreadyExists);
                }
                let kv = KeyValue {
                    key: key.to_string(),
                    value: b(value),
                    create_revision: next,
                    mod_revision: next,
                };
                (EventKind::Put, kv, None)
            }
            Write::Update {
                key,
                value,
                expected,
            } => {
                let prev = self.map.get(*key).ok_or(WriteError::NotFound)?.clone();
                if prev.mod_revision != *expected {
                    return Err(WriteError::Conflict {
                        current: prev.mod_revision,
                    });
                }
                let kv = KeyValue {
                    value: b(value),
                    mod_revision: next,
                    ..prev.clone()
                };
                (EventKind::Put, kv, Some(prev))
            }
            Write::Delete { key, expected } => {
                let prev = self.map.get(*key).ok_or(WriteError::NotFound)?.clone();
                if expected.is_some_and(|e| e != prev.mod_revision) {
                    return Err(WriteError::Conflict {
                        current: prev.mod_revision,
                    });
                }
                (
                    EventKind::Delete,
                    KeyValue {
                        mod_revision: next,
                        ..prev.clone()
                    },
                    Some(prev),
                )
            }
        };
        self.revision = next;
        match kind {
            EventKind::Put => self.map.insert(kv.key.clone(), kv.clone()),
            EventKind::Delete => self.map.remove(&kv.key),
        };
        self.events.push(Event {
            revision: next,
            kind,
            kv: kv.clone(),
            prev,
        });
        Ok(kv)
    }

    fn list(&self, prefix: &str) -> Vec<KeyValue> {
        self.map
            .values()
            .filter(|kv| kv.key.starts_with(prefix))
            .cloned()
            .collect()
    }
}

async fn submit(store: &Store, write: Write) -> Result<KeyValue, WriteError> {
    match write {
        Write::Create { key, value } => store.create(key, b(&value)).await,
        Write::Update {
            key,
            value,
            expected,
        } => store.update(key, b(&value), expected).await,
        Write::Delete { key, expected } => store.delete(key, expected).await,
    }
}

async fn check(chunks: Vec<Vec<Cmd>>) -> Result<(), TestCaseError> {
    let store = Store::memory();
    let mut model = Model::default();
    for chunk in chunks {
        // Resolve and apply in order on the model; submit the chunk concurrently. The
        // futures enqueue in order (join_all polls them in order, fewer than 30), so the
        // writer sees the model's order, in one batch or several.
        let mut writes = Vec::new();
        let mut expected = Vec::new();
        for cmd in &chunk {
            let write = model.resolve(cmd);
            expected.push(model.apply(&write));
            writes.push(write);
        }
        let got = futures::future::join_all(writes.into_iter().map(|w| submit(&store, w))).await;
        prop_assert_eq!(got, expected);
        prop_assert_eq!(store.current_revision(), model.revision);
    }
    for key in KEYS {
        prop_assert_eq!(store.get(key), model.map.get(key).cloned());
    }
    for prefix in PREFIXES {
        let want = model.list(prefix);
        let all = store.list(prefix, None, None, None).unwrap();
        prop_assert_eq!(&all.items, &want);
        prop_assert_eq!(all.revision, model.revision);
        prop_assert_eq!(store.count(prefix), want.len());
        // The same list in pages of 2 at the first page's revision.
        let mut paged = Vec::new();
        let mut page = store.list(prefix, None, Some(2), None).unwrap();
        loop {
            prop_assert_eq!(page.remaining, want.len() - paged.len() - page.items.len());
            paged.extend(page.items.iter().cloned());
            if !page.more {
                break;
            }
            let after = paged.last().map(|kv: &KeyValue| kv.key.clone());
            page = store
                .list(prefix, after.as_deref(), Some(2), Some(page.revision))
                .unwrap();
        }
        prop_assert_eq!(&paged, &want);
    }
    // A watch from 0 replays exactly the applied writes, and a prefix watch exactly its part.
    if model.revision > 0 {
        let mut watch = store.watch("", 0).unwrap();
        prop_assert_eq!(
            plain(&collect_until(&mut watch, model.revision).await),
            model.events.clone()
        );
        let part: Vec<Event> = model
            .events
            .iter()
            .filter(|e| e.kv.key.starts_with("/a/"))
            .cloned()
            .collect();
        if let Some(last) = part.last() {
            let mut watch = store.watch("/a/", 0).unwrap();
            prop_assert_eq!(plain(&collect_until(&mut watch, last.revision).await), part);
        }
    }
    store.close().await;
    Ok(())
}

/// Runs `chunks` on a redb store with a history of `histories[0]` events, then closes and
/// reopens it with each following history size in turn, writing `more` after each reopen:
/// after every reopen the state is the model's, and the history holds exactly the model's
/// events from its oldest revision on, at least as many as every history size so far
/// allowed.
async fn check_reopened(
    chunks: Vec<Vec<Cmd>>,
    histories: Vec<usize>,
    more: Vec<Cmd>,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.redb");
    let open = |history_events| {
        Store::open(
            &path,
            StoreOptions {
                history_events,
                ..StoreOptions::default()
            },
        )
        .unwrap()
    };
    let mut model = Model::default();
    let mut store = open(histories[0]);
    for chunk in chunks {
        let writes: Vec<Write> = chunk
            .iter()
            .map(|cmd| {
                let w = model.resolve(cmd);
                let _ = model.apply(&w);
                w
            })
            .collect();
        futures::future::join_all(writes.into_iter().map(|w| submit(&store, w))).await;
    }
    // The fewest events any history size so far guaranteed to keep.
    let mut kept = histories[0];
    for &history in &histories[1..] {
        store.close().await;
        store = open(history);
        kept = kept.min(history);
        prop_assert_eq!(store.current_revision(), model.revision);
        let all = store.list("", None, None, None).unwrap();
        prop_assert_eq!(all.items, model.list(""));
        let oldest = store.oldest_watchable_revision();
        let newest_kept = (model.revision as usize).min(kept) as u64;
        prop_assert!(
            model.revision + 1 - oldest >= newest_kept,
            "history from {} to {}, at least {} expected",
            oldest,
            model.revision,
            newest_kept
        );
        let want: Vec<Event> = model
            .events
            .iter()
            .filter(|e| e.revision >= oldest)
            .cloned()
            .collect();
        prop_assert_eq!(
            plain(&store.events_since("", oldest.saturating_sub(1)).unwrap()),
            want
        );
        for cmd in &more {
            let w = model.resolve(cmd);
            prop_assert_eq!(submit(&store, w.clone()).await, model.apply(&w));
        }
    }
    store.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn redb_store_reopens_to_the_model(
        chunks in proptest::collection::vec(proptest::collection::vec(cmd(), 1..8), 1..10),
        histories in proptest::collection::vec(1..40usize, 2..5),
        more in proptest::collection::vec(cmd(), 0..6),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(check_reopened(chunks, histories, more))?;
    }

    #[test]
    fn store_matches_btreemap_model(chunks in proptest::collection::vec(proptest::collection::vec(cmd(), 1..8), 1..12)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(check(chunks))?;
    }
}
