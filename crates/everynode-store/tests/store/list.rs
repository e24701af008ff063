//! `list`: prefix, order, pagination, and snapshots at a revision.

use std::time::Duration;

use everynode_store::{KeyValue, ListError, Store, StoreOptions};

use crate::common::b;

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

#[tokio::test]
async fn list_filters_by_prefix_in_key_order_with_start_after_and_limit() {
    let store = Store::memory();
    for key in ["/p/c", "/p/a", "/q/a", "/p/b", "/p", "/pa", "/p/d"] {
        store.create(key, b(key)).await.unwrap();
    }
    let all = store.list("/p/", None, None, None).unwrap();
    assert_eq!(keys(&all.items), ["/p/a", "/p/b", "/p/c", "/p/d"]);
    assert_eq!((all.revision, all.more, all.remaining), (7, false, 0));

    let page = store.list("/p/", None, Some(2), None).unwrap();
    assert_eq!(keys(&page.items), ["/p/a", "/p/b"]);
    assert_eq!((page.more, page.remaining), (true, 2));

    let page = store.list("/p/", Some("/p/b"), Some(2), None).unwrap();
    assert_eq!(keys(&page.items), ["/p/c", "/p/d"]);
    assert_eq!((page.more, page.remaining), (false, 0));

    // A start_after outside the prefix's range neither skips nor leaks keys.
    assert_eq!(
        keys(&store.list("/p/", Some("/a"), None, None).unwrap().items).len(),
        4
    );
    assert!(
        store
            .list("/p/", Some("/z"), None, None)
            .unwrap()
            .items
            .is_empty()
    );
    // Key that does not exist in the middle of the range.
    assert_eq!(
        keys(&store.list("/p/", Some("/p/bb"), None, None).unwrap().items),
        ["/p/c", "/p/d"]
    );

    let zero = store.list("/p/", None, Some(0), None).unwrap();
    assert!(zero.items.is_empty());
    assert_eq!((zero.more, zero.remaining), (true, 4));
    assert_eq!(store.list("", None, None, None).unwrap().items.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_pagination_at_a_snapshot_while_writes_continue() {
    let store = Store::memory();
    for i in 0..100 {
        store
            .create(&format!("/pods/{i:03}"), b(&format!("v0-{i}")))
            .await
            .unwrap();
    }
    let snapshot = store.list("/pods/", None, None, None).unwrap();
    let first = store.list("/pods/", None, Some(7), None).unwrap();
    assert_eq!(first.revision, 100);
    assert_eq!(first.items, snapshot.items[..7]);

    // Writers change, delete and add keys in the listed range the whole time.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..300usize {
                let key = format!("/pods/{:03}", (i * 37) % 130);
                match store.get(&key) {
                    Some(kv) if i % 3 == 0 => drop(store.delete(&key, Some(kv.mod_revision)).await),
                    Some(kv) => drop(
                        store
                            .update(&key, b(&format!("v{i}")), kv.mod_revision)
                            .await,
                    ),
                    None => drop(store.create(&key, b("new")).await),
                }
            }
        })
    };

    let mut pages = vec![first.clone()];
    let mut seen = first.items.clone();
    while pages.last().unwrap().more {
        let last_key = seen.last().unwrap().key.clone();
        let page = store
            .list("/pods/", Some(&last_key), Some(7), Some(first.revision))
            .unwrap();
        assert_eq!(page.revision, first.revision);
        assert_eq!(page.remaining, 100 - seen.len() - page.items.len());
        seen.extend(page.items.iter().cloned());
        pages.push(page);
    }
    writer.await.unwrap();
    assert!(
        store.current_revision() > 100,
        "the writes really happened meanwhile"
    );
    assert_eq!(
        seen, snapshot.items,
        "every page came from the first page's snapshot"
    );
    // The snapshot stays readable after the writes finished.
    assert_eq!(
        store.list("/pods/", None, None, Some(100)).unwrap().items,
        snapshot.items
    );
    assert_ne!(
        store.list("/pods/", None, None, None).unwrap().items,
        snapshot.items
    );
}

/// A list at a past revision is the state at that revision, rebuilt from the watch
/// history (as etcd serves one until compaction); before the history, it is expired.
#[tokio::test]
async fn list_at_a_past_revision_is_rebuilt_from_the_history() {
    let store = Store::memory_with(StoreOptions {
        history_events: 6,
        ..Default::default()
    });
    for i in 0..5 {
        store.create(&format!("/k/{i}"), b("v")).await.unwrap();
    }
    let kv = store.get("/k/1").unwrap();
    store.update("/k/1", b("w"), kv.mod_revision).await.unwrap(); // 6
    store.delete("/k/0", None).await.unwrap(); // 7
    store.create("/other", b("x")).await.unwrap(); // 8
    let at = |rev| store.list("/k/", None, None, Some(rev));
    let at3 = at(3).unwrap();
    assert_eq!(at3.revision, 3);
    assert_eq!(keys(&at3.items), ["/k/0", "/k/1", "/k/2"]);
    let at6 = at(6).unwrap();
    assert_eq!(keys(&at6.items), ["/k/0", "/k/1", "/k/2", "/k/3", "/k/4"]);
    assert_eq!(at6.items[1].value, b("w"));
    assert_eq!(at6.items[1].mod_revision, 6);
    let at5 = at(5).unwrap();
    assert_eq!(at5.items[1].value, b("v"));
    assert_eq!(at5.items[1].mod_revision, 2);
    assert_eq!(
        keys(&at(7).unwrap().items),
        ["/k/1", "/k/2", "/k/3", "/k/4"]
    );
    // Pages of such a list read the same rebuilt state.
    let page = store.list("/k/", Some("/k/1"), Some(1), Some(3)).unwrap();
    assert_eq!(keys(&page.items), ["/k/2"]);
    // The history (six events: 3..=8) no longer reaches back to revision 1.
    assert_eq!(
        at(1),
        Err(ListError::Expired {
            requested: 1,
            oldest: 3
        })
    );
    // A revision in the future cannot be served either.
    assert!(matches!(
        at(99),
        Err(ListError::Expired { requested: 99, .. })
    ));
    // The current revision can always be served.
    assert_eq!(at(8).unwrap().items.len(), 4);
}

#[tokio::test]
async fn list_snapshot_expires_after_retention() {
    // (A history of one event cannot rebuild the older snapshot either once two writes
    // followed it.)
    let store = Store::memory_with(StoreOptions {
        snapshot_retention: Duration::ZERO,
        history_events: 1,
    });
    store.create("/k/a", b("v")).await.unwrap();
    let page = store.list("/k/", None, Some(1), None).unwrap();
    // A write both moves the current revision on and lets time pass beyond a zero retention.
    store.create("/k/b", b("v")).await.unwrap();
    store.create("/k/c", b("v")).await.unwrap();
    // (Instant has nanosecond resolution; the write's round trip to the writer thread
    // takes microseconds, so the zero retention has certainly passed.)
    let result = store.list("/k/", Some("/k/a"), Some(1), Some(page.revision));
    assert_eq!(
        result,
        Err(ListError::Expired {
            requested: 1,
            oldest: 3
        })
    );
}
