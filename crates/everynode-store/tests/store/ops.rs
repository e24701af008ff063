//! Each operation and each of its errors.

use std::collections::HashSet;

use everynode_store::{KeyValue, Store, WriteError};

use crate::common::{b, next};

#[tokio::test]
async fn create_assigns_the_next_revision_and_get_sees_it() {
    let store = Store::memory();
    assert_eq!(store.current_revision(), 0);
    let a = store.create("/r/a", b("one")).await.unwrap();
    assert_eq!(
        a,
        KeyValue {
            key: "/r/a".into(),
            value: b("one"),
            create_revision: 1,
            mod_revision: 1
        }
    );
    let c = store.create("/r/c", b("two")).await.unwrap();
    assert_eq!((c.create_revision, c.mod_revision), (2, 2));
    assert_eq!(store.current_revision(), 2);
    assert_eq!(store.get("/r/a"), Some(a));
    assert_eq!(store.get("/r/b"), None);
}

#[tokio::test]
async fn create_of_an_existing_key_is_already_exists() {
    let store = Store::memory();
    let first = store.create("/k", b("v")).await.unwrap();
    assert_eq!(
        store.create("/k", b("w")).await,
        Err(WriteError::AlreadyExists)
    );
    assert_eq!(store.get("/k"), Some(first));
    assert_eq!(
        store.current_revision(),
        1,
        "a rejected write takes no revision"
    );
}

#[tokio::test]
async fn update_with_the_current_revision_replaces_the_value() {
    let store = Store::memory();
    let v1 = store.create("/k", b("v1")).await.unwrap();
    store.create("/other", b("x")).await.unwrap();
    let v2 = store.update("/k", b("v2"), v1.mod_revision).await.unwrap();
    assert_eq!(
        v2,
        KeyValue {
            key: "/k".into(),
            value: b("v2"),
            create_revision: 1,
            mod_revision: 3
        }
    );
    assert_eq!(store.get("/k"), Some(v2));
}

#[tokio::test]
async fn update_of_a_missing_key_is_not_found() {
    let store = Store::memory();
    assert_eq!(
        store.update("/missing", b("v"), 0).await,
        Err(WriteError::NotFound)
    );
    assert_eq!(store.current_revision(), 0);
}

#[tokio::test]
async fn update_with_a_stale_revision_is_conflict_with_the_current_one() {
    let store = Store::memory();
    let v1 = store.create("/k", b("v1")).await.unwrap();
    let v2 = store.update("/k", b("v2"), v1.mod_revision).await.unwrap();
    assert_eq!(
        store.update("/k", b("v3"), v1.mod_revision).await,
        Err(WriteError::Conflict {
            current: v2.mod_revision
        })
    );
    assert_eq!(
        store.update("/k", b("v3"), 99).await,
        Err(WriteError::Conflict {
            current: v2.mod_revision
        })
    );
    assert_eq!(store.get("/k"), Some(v2));
}

#[tokio::test]
async fn delete_returns_the_last_value_at_the_deletion_revision() {
    let store = Store::memory();
    let v1 = store.create("/k", b("v1")).await.unwrap();
    let deleted = store.delete("/k", Some(v1.mod_revision)).await.unwrap();
    assert_eq!(
        deleted,
        KeyValue {
            key: "/k".into(),
            value: b("v1"),
            create_revision: 1,
            mod_revision: 2
        }
    );
    assert_eq!(store.get("/k"), None);
    assert_eq!(store.current_revision(), 2);
}

#[tokio::test]
async fn delete_without_expected_revision_is_unconditional() {
    let store = Store::memory();
    store.create("/k", b("v1")).await.unwrap();
    let deleted = store.delete("/k", None).await.unwrap();
    assert_eq!(deleted.mod_revision, 2);
    assert_eq!(store.get("/k"), None);
}

#[tokio::test]
async fn delete_of_a_missing_key_is_not_found() {
    let store = Store::memory();
    assert_eq!(store.delete("/k", None).await, Err(WriteError::NotFound));
    assert_eq!(store.delete("/k", Some(3)).await, Err(WriteError::NotFound));
}

#[tokio::test]
async fn delete_with_a_stale_revision_is_conflict_with_the_current_one() {
    let store = Store::memory();
    let v1 = store.create("/k", b("v1")).await.unwrap();
    let v2 = store.update("/k", b("v2"), v1.mod_revision).await.unwrap();
    assert_eq!(
        store.delete("/k", Some(v1.mod_revision)).await,
        Err(WriteError::Conflict { current: 2 })
    );
    assert_eq!(store.get("/k"), Some(v2));
}

#[tokio::test]
async fn recreate_after_delete_starts_a_new_create_revision() {
    let store = Store::memory();
    store.create("/k", b("v1")).await.unwrap();
    store.delete("/k", None).await.unwrap();
    let again = store.create("/k", b("v2")).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (3, 3));
}

#[tokio::test]
async fn count_counts_only_the_prefix() {
    let store = Store::memory();
    for key in ["/a/1", "/a/2", "/ab", "/b/1", "/a"] {
        store.create(key, b("v")).await.unwrap();
    }
    assert_eq!(store.count("/a/"), 2);
    assert_eq!(store.count("/a"), 4);
    assert_eq!(store.count(""), 5);
    assert_eq!(store.count("/c"), 0);
}

#[tokio::test]
async fn writes_after_close_are_closed_and_reads_still_work() {
    let store = Store::memory();
    let kv = store.create("/k", b("v")).await.unwrap();
    let mut watch = store.watch("/", 0).unwrap();
    store.close().await;
    store.close().await; // idempotent
    assert_eq!(store.create("/x", b("v")).await, Err(WriteError::Closed));
    assert_eq!(store.update("/k", b("w"), 1).await, Err(WriteError::Closed));
    assert_eq!(store.delete("/k", None).await, Err(WriteError::Closed));
    let clone = store.clone();
    assert_eq!(clone.create("/y", b("v")).await, Err(WriteError::Closed));
    assert_eq!(store.get("/k"), Some(kv));
    assert_eq!(store.current_revision(), 1);
    // A watch delivers what was written, then ends.
    assert_eq!(next(&mut watch).await.unwrap().unwrap().revision, 1);
    assert!(next(&mut watch).await.is_none());
}

#[tokio::test]
async fn dropping_every_handle_stops_the_writer_and_ends_watches() {
    let store = Store::memory();
    store.create("/k", b("v")).await.unwrap();
    let mut watch = store.watch("/", 1).unwrap();
    drop(store);
    assert!(next(&mut watch).await.is_none());
}

#[tokio::test]
async fn writes_queued_before_close_still_commit() {
    let store = Store::memory();
    let writes: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.create(&format!("/q/{i:03}"), b("v")).await })
        })
        .collect();
    store.close().await;
    let mut ok = 0;
    for write in writes {
        match write.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WriteError::Closed) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(store.count("/q/"), ok);
    assert_eq!(store.current_revision(), ok as u64);
}

#[tokio::test]
async fn two_updates_with_the_same_expected_revision_one_wins_one_conflicts() {
    let store = Store::memory();
    let v1 = store.create("/k", b("v1")).await.unwrap();
    // Queued back to back, so usually one batch; the outcome must be the same either way.
    let (x, y) = tokio::join!(
        store.update("/k", b("x"), v1.mod_revision),
        store.update("/k", b("y"), v1.mod_revision),
    );
    let x = x.unwrap();
    assert_eq!(
        y,
        Err(WriteError::Conflict {
            current: x.mod_revision
        })
    );
    assert_eq!(store.get("/k").unwrap().value, b("x"));
}

async fn thousand_concurrent_writes(store: Store) {
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create(&format!("/g/{i:04}"), b(&format!("value {i}")))
                    .await
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.unwrap().unwrap().mod_revision);
    }
    let distinct: HashSet<_> = revisions.iter().copied().collect();
    assert_eq!(distinct.len(), 1000, "revisions are distinct");
    revisions.sort_unstable();
    assert_eq!(
        revisions,
        (1..=1000).collect::<Vec<u64>>(),
        "revisions are contiguous from 1"
    );
    assert_eq!(store.current_revision(), 1000);
    assert_eq!(store.count("/g/"), 1000);
    let stats = store.stats();
    assert_eq!(stats.writes, 1000);
    println!("1000 writes in {} commits", stats.commits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_memory_1000_concurrent_writes_get_distinct_contiguous_revisions() {
    thousand_concurrent_writes(Store::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_redb_1000_concurrent_writes_share_durable_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb"), Default::default()).unwrap();
    thousand_concurrent_writes(store.clone()).await;
    // Every commit is an fsync; a thousand concurrent writers must share them.
    assert!(store.stats().commits < 1000, "{:?}", store.stats());
    store.close().await;
}
