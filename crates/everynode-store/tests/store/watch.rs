//! The watch guarantees, each as its own test (named as in etcd's robustness suite),
//! checked against the store's own record of history.

use std::collections::HashSet;
use std::sync::Arc;

use everynode_store::{Event, EventKind, KeyValue, Store, StoreOptions, WatchError};

use crate::common::{assert_idle, b, collect_until, next, plain};

/// Runs writers on several tasks over keys in `/w/` and `/x/` (creates, updates, deletes,
/// some of them conflicting) while `watch` is open; returns the watch's events up to the
/// final revision and the store's complete history.
async fn concurrent_history(prefix: &str) -> (Vec<Arc<Event>>, Vec<Arc<Event>>) {
    let store = Store::memory();
    let mut watch = store.watch(prefix, 0).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    let dir = if (w + i) % 3 == 0 { "/x/" } else { "/w/" };
                    let key = format!("{dir}{}", (w * 7 + i) % 10);
                    match store.get(&key) {
                        None => {
                            let _ = store.create(&key, b(&format!("{w}-{i}"))).await;
                        }
                        Some(kv) if i % 4 == 0 => {
                            let _ = store.delete(&key, Some(kv.mod_revision)).await;
                        }
                        Some(kv) => {
                            let _ = store
                                .update(&key, b(&format!("{w}-{i}")), kv.mod_revision)
                                .await;
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let all = store.events_since("", 0).unwrap();
    let last_matching = all
        .iter()
        .rev()
        .find(|e| e.kv.key.starts_with(prefix))
        .map_or(0, |e| e.revision);
    let seen = collect_until(&mut watch, last_matching).await;
    assert_idle(&mut watch);
    (seen, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_ordered() {
    let (seen, _) = concurrent_history("").await;
    assert!(
        seen.windows(2).all(|w| w[0].revision < w[1].revision),
        "revisions strictly increase"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_unique() {
    let (seen, _) = concurrent_history("").await;
    let revisions: HashSet<_> = seen.iter().map(|e| e.revision).collect();
    assert_eq!(revisions.len(), seen.len(), "no revision delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_no_gaps() {
    let (seen, all) = concurrent_history("").await;
    let revisions: Vec<_> = seen.iter().map(|e| e.revision).collect();
    assert_eq!(
        revisions,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "every revision, contiguous"
    );
    assert_eq!(plain(&seen), plain(&all), "exactly the store's history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_prefix_filter() {
    let (seen, all) = concurrent_history("/x/").await;
    let expected: Vec<_> = all
        .iter()
        .filter(|e| e.kv.key.starts_with("/x/"))
        .cloned()
        .collect();
    assert!(!expected.is_empty() && expected.len() < all.len());
    assert_eq!(
        plain(&seen),
        plain(&expected),
        "exactly the matching events"
    );
}

#[tokio::test]
async fn watch_events_carry_the_previous_state() {
    let store = Store::memory();
    let mut watch = store.watch("/", 0).unwrap();
    let v1 = store.create("/k", b("v1")).await.unwrap();
    let v2 = store.update("/k", b("v2"), 1).await.unwrap();
    let gone = store.delete("/k", None).await.unwrap();
    let events = plain(&collect_until(&mut watch, 3).await);
    assert_eq!(
        events,
        vec![
            Event {
                revision: 1,
                kind: EventKind::Put,
                kv: v1.clone(),
                prev: None
            },
            Event {
                revision: 2,
                kind: EventKind::Put,
                kv: v2.clone(),
                prev: Some(v1)
            },
            Event {
                revision: 3,
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: "/k".into(),
                    value: b("v2"),
                    create_revision: 1,
                    mod_revision: 3
                },
                prev: Some(v2),
            },
        ]
    );
    assert_eq!(gone, events[2].kv);
}

#[tokio::test]
async fn watch_from_current_revision_gives_only_future_events() {
    let store = Store::memory();
    for i in 0..5 {
        store.create(&format!("/k{i}"), b("old")).await.unwrap();
    }
    let mut watch = store.watch("/", store.current_revision()).unwrap();
    assert_idle(&mut watch);
    let new = store.create("/new", b("new")).await.unwrap();
    let event = next(&mut watch).await.unwrap().unwrap();
    assert_eq!(event.kv, new);
    assert_idle(&mut watch);
}

#[tokio::test]
async fn watch_resumable_from_any_retained_revision() {
    let store = Store::memory_with(StoreOptions {
        history_events: 50,
        ..Default::default()
    });
    for i in 0..80u64 {
        let key = format!("/r/{}", i % 7);
        match store.get(&key) {
            Some(_) if i % 5 == 0 => drop(store.delete(&key, None).await.unwrap()),
            Some(kv) => drop(
                store
                    .update(&key, b(&i.to_string()), kv.mod_revision)
                    .await
                    .unwrap(),
            ),
            None => drop(store.create(&key, b(&i.to_string())).await.unwrap()),
        }
    }
    let all = store.events_since("", 30).unwrap();
    assert_eq!(store.oldest_watchable_revision(), 31);
    // A watcher that stopped after any retained revision `r` picks up exactly the rest.
    for after in 30..=80 {
        let mut watch = store.watch("", after).unwrap();
        let rest: Vec<_> = all.iter().filter(|e| e.revision > after).cloned().collect();
        let seen = if rest.is_empty() {
            Vec::new()
        } else {
            collect_until(&mut watch, 80).await
        };
        assert_eq!(plain(&seen), plain(&rest), "resumed after {after}");
        assert_idle(&mut watch);
    }
    // Resuming a prefix watch from its own progress point continues without gaps.
    let mut first = store.watch("/r/3", 30).unwrap();
    let head = next(&mut first).await.unwrap().unwrap();
    let mut second = store.watch("/r/3", first.progress()).unwrap();
    let expected: Vec<_> = all
        .iter()
        .filter(|e| e.kv.key == "/r/3" && e.revision > head.revision)
        .cloned()
        .collect();
    let last = expected.last().unwrap().revision;
    assert_eq!(
        plain(&collect_until(&mut second, last).await),
        plain(&expected)
    );
}

#[tokio::test]
async fn watch_compacted_when_too_old() {
    let store = Store::memory_with(StoreOptions {
        history_events: 10,
        ..Default::default()
    });
    for i in 0..30 {
        store.create(&format!("/k/{i:02}"), b("v")).await.unwrap();
    }
    assert_eq!(store.oldest_watchable_revision(), 21);
    for after in [0, 5, 19] {
        match store.watch("/k/", after) {
            Err(WatchError::Compacted { requested, oldest }) => {
                assert_eq!((requested, oldest), (after, 21))
            }
            Ok(_) => panic!("watch from {after} should be compacted"),
        }
    }
    let mut watch = store.watch("/k/", 20).unwrap();
    let events = collect_until(&mut watch, 30).await;
    assert_eq!(
        events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        (21..=30).collect::<Vec<_>>()
    );
    // Past the current revision is allowed too: nothing until the history reaches it.
    let mut future = store.watch("/k/", 31).unwrap();
    assert_idle(&mut future);
}

#[tokio::test]
async fn lagging_watcher_gets_compacted_last() {
    let store = Store::memory_with(StoreOptions {
        history_events: 10,
        ..Default::default()
    });
    let mut watch = store.watch("/", 0).unwrap();
    for i in 0..5 {
        store.create(&format!("/a/{i}"), b("v")).await.unwrap();
    }
    let first_two = [
        next(&mut watch).await.unwrap().unwrap(),
        next(&mut watch).await.unwrap().unwrap(),
    ];
    assert_eq!(first_two.map(|e| e.revision), [1, 2]);
    // Now write far past what the ring holds while the watcher is not reading.
    for i in 0..50 {
        store.create(&format!("/b/{i}"), b("v")).await.unwrap();
    }
    let mut items = Vec::new();
    while let Some(item) = next(&mut watch).await {
        items.push(item);
    }
    let (last, delivered) = items.split_last().unwrap();
    // Whatever it still gets is in order and gap-free from where it was ...
    for (item, revision) in delivered.iter().zip(3..) {
        assert_eq!(item.as_ref().unwrap().revision, revision);
    }
    // ... and then exactly one Compacted, naming where it stopped, and the end.
    let resume = 2 + delivered.len() as u64;
    assert_eq!(
        last.as_ref().unwrap_err(),
        &WatchError::Compacted {
            requested: resume,
            oldest: 46
        }
    );
    assert!(resume < 45);
    assert!(next(&mut watch).await.is_none());
}

#[tokio::test]
async fn many_idle_watchers_all_wake_on_a_write() {
    let store = Store::memory();
    let mut watches: Vec<_> = (0..100)
        .map(|i| store.watch(&format!("/p/{}", i % 10), 0).unwrap())
        .collect();
    for watch in &mut watches {
        assert_idle(watch);
    }
    for i in 0..10 {
        store.create(&format!("/p/{i}"), b("v")).await.unwrap();
    }
    for (i, watch) in watches.iter_mut().enumerate() {
        let event = next(watch).await.unwrap().unwrap();
        assert_eq!(event.kv.key, format!("/p/{}", i % 10));
        assert_idle(watch);
    }
}
