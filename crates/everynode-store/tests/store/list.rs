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

#[tokio::test]
async fn list_at_a_revision_no_list_returned_is_expired() {
    let store = Store::memory();
    for i in 0..5 {
        store.create(&format!("/k/{i}"), b("v")).await.unwrap();
    }
    // Revision 3 was never the state a list saw.
    assert_eq!(
        store.list("/k/", None, None, Some(3)),
        Err(ListError::Expired {
            requested: 3,
            oldest: 5
        })
    );
    // A revision in the future cannot be served either.
    assert!(matches!(
        store.list("/k/", None, None, Some(99)),
        Err(ListError::Expired { requested: 99, .. })
    ));
    // The current revision can always be served.
    assert_eq!(
        store.list("/k/", None, None, Some(5)).unwrap().items.len(),
        5
    );
}

#[tokio::test]
async fn list_snapshot_expires_after_retention() {
    let store = Store::memory_with(StoreOptions {
        snapshot_retention: Duration::ZERO,
        ..Default::default()
    });
    store.create("/k/a", b("v")).await.unwrap();
    let page = store.list("/k/", None, Some(1), None).unwrap();
    // A write both moves the current revision on and lets time pass beyond a zero retention.
    store.create("/k/b", b("v")).await.unwrap();
    // (Instant has nanosecond resolution; the write's round trip to the writer thread
    // takes microseconds, so the zero retention has certainly passed.)
    let result = store.list("/k/", Some("/k/a"), Some(1), Some(page.revision));
    assert_eq!(
        result,
        Err(ListError::Expired {
            requested: 1,
            oldest: 2
        })
    );
}
