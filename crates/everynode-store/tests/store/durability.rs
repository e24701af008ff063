//! The redb backend: what survives a crash, reopening, history bounds on disk.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;

use everynode_store::{Event, EventKind, KeyValue, OpenError, Revision, Store, StoreOptions};

use crate::common::{DEADLINE, b, collect_until, plain};

const CHILD_DB_ENV: &str = "EVERYNODE_STORE_CRASH_DB";
const READY: &str = "EVERYNODE-CRASH-CHILD-READY";
const CONCURRENT: usize = 200;

fn options() -> StoreOptions {
    StoreOptions {
        history_events: 1000,
        ..StoreOptions::default()
    }
}

/// A deterministic sequence of creates, updates and deletes (sequential, so a memory
/// store running it ends in exactly the same state with the same revisions), with
/// values of 0.5–2.5 KiB.
async fn sequential_workload(store: &Store) {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..300 {
        let r = random();
        let key = format!(
            "/{}/{:02}",
            if r % 2 == 0 { "a" } else { "b" },
            (r >> 8) % 20
        );
        let value = b(&format!(
            "{i}:{}",
            "x".repeat(512 + (r >> 20) as usize % 2048)
        ));
        match store.get(&key) {
            None => drop(store.create(&key, value).await.unwrap()),
            Some(kv) if r % 5 == 0 => {
                drop(store.delete(&key, Some(kv.mod_revision)).await.unwrap())
            }
            Some(kv) => drop(store.update(&key, value, kv.mod_revision).await.unwrap()),
        }
    }
}

/// Runs in a child process started by `durability_survives_sigkill`: writes, reports
/// every acknowledged concurrent write on stdout, then waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child half of durability_survives_sigkill"]
async fn crash_child() {
    let Ok(path) = std::env::var(CHILD_DB_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&path), options()).unwrap();
    sequential_workload(&store).await;
    println!("SEQUENTIAL {}", store.current_revision());
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create(&format!("/c/{i:03}"), b(&format!("concurrent {i}")))
                    .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let kv = task.await.unwrap().unwrap();
        println!("ACK /c/{i:03} {}", kv.mod_revision);
    }
    println!("{READY}");
    // No close(), no drop: the parent SIGKILLs this process while the store is open.
    std::future::pending::<()>().await;
}

#[test]
fn durability_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, &db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut sequential_revision = None;
    let mut acked: Vec<(String, Revision)> = Vec::new();
    loop {
        let line = lines
            .recv_timeout(DEADLINE)
            .expect("the child never became ready");
        if line == READY {
            break;
        // libtest prints "test <name> ... " without a newline before the test's own
        // output, so the first marker can share a line with it.
        } else if let Some((_, rev)) = line.split_once("SEQUENTIAL ") {
            sequential_revision = Some(rev.parse::<Revision>().unwrap());
        } else if let Some(ack) = line.strip_prefix("ACK ") {
            let (key, rev) = ack.split_once(' ').unwrap();
            acked.push((key.to_string(), rev.parse().unwrap()));
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no close, no flush
    child.wait().unwrap();
    let sequential_revision = sequential_revision.unwrap();
    assert_eq!(acked.len(), CONCURRENT);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The same sequential writes on a memory store give the expected state and events.
        let model = Store::memory_with(options());
        sequential_workload(&model).await;
        assert_eq!(model.current_revision(), sequential_revision);

        let store = Store::open(&db, options()).unwrap();
        let total = sequential_revision + CONCURRENT as u64;
        assert_eq!(store.current_revision(), total);
        assert_eq!(store.oldest_watchable_revision(), 1);
        for prefix in ["/a/", "/b/"] {
            assert_eq!(
                store.list(prefix, None, None, None).unwrap().items,
                model.list(prefix, None, None, None).unwrap().items
            );
        }
        let mut concurrent_events = Vec::new();
        for (key, rev) in &acked {
            let i: usize = key.trim_start_matches("/c/").parse().unwrap();
            let kv = KeyValue {
                key: key.clone(),
                value: b(&format!("concurrent {i}")),
                create_revision: *rev,
                mod_revision: *rev,
            };
            assert_eq!(store.get(key).as_ref(), Some(&kv));
            concurrent_events.push(Event {
                revision: *rev,
                kind: EventKind::Put,
                kv,
                prev: None,
            });
        }
        concurrent_events.sort_by_key(|e| e.revision);
        assert_eq!(store.count("/c/"), CONCURRENT);

        // Watches resumed from pre-crash revisions replay exactly the later events.
        let all_before: Vec<Event> = plain(&model.events_since("", 0).unwrap());
        for after in [
            0,
            1,
            sequential_revision / 2,
            sequential_revision - 1,
            sequential_revision,
            sequential_revision + 77,
        ] {
            let mut expected: Vec<Event> = all_before
                .iter()
                .filter(|e| e.revision > after)
                .cloned()
                .collect();
            expected.extend(
                concurrent_events
                    .iter()
                    .filter(|e| e.revision > after)
                    .cloned(),
            );
            let mut watch = store.watch("", after).unwrap();
            assert_eq!(
                plain(&collect_until(&mut watch, total).await),
                expected,
                "watch after {after}"
            );
            let a_only: Vec<Event> = expected
                .iter()
                .filter(|e| e.kv.key.starts_with("/a/"))
                .cloned()
                .collect();
            assert_eq!(plain(&store.events_since("/a/", after).unwrap()), a_only);
        }

        // Revisions continue from the stored one.
        let next = store.create("/after-crash", b("x")).await.unwrap();
        assert_eq!(next.mod_revision, total + 1);
        store.close().await;
    });
}

#[tokio::test]
async fn close_and_reopen_keeps_state_revisions_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path, options()).unwrap();
    sequential_workload(&store).await;
    let before = store.list("", None, None, None).unwrap();
    let events = store.events_since("", 0).unwrap();
    store.close().await;

    let store = Store::open(&path, options()).unwrap();
    assert_eq!(store.list("", None, None, None).unwrap(), before);
    assert_eq!(plain(&store.events_since("", 0).unwrap()), plain(&events));
    store.close().await;
}

#[tokio::test]
async fn reopen_with_a_smaller_history_keeps_the_newest_events_and_prunes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path, options()).unwrap();
    // Five keys written ten times each: revisions 1..=50, the newest of each key 46..=50.
    for i in 0..50 {
        let key = format!("/k/{}", i % 5);
        match store.get(&key) {
            None => drop(store.create(&key, b(&format!("v{i}"))).await.unwrap()),
            Some(kv) => drop(
                store
                    .update(&key, b(&format!("v{i}")), kv.mod_revision)
                    .await
                    .unwrap(),
            ),
        }
    }
    let state = store.list("", None, None, None).unwrap();
    let tail: Vec<Arc<Event>> = store.events_since("", 40).unwrap();
    store.close().await;

    let small = StoreOptions {
        history_events: 10,
        ..StoreOptions::default()
    };
    let store = Store::open(&path, small).unwrap();
    assert_eq!(store.oldest_watchable_revision(), 41);
    assert_eq!(plain(&store.events_since("", 40).unwrap()), plain(&tail));
    assert!(store.watch("", 39).is_err());
    let kv = store.get("/k/0").unwrap();
    store
        .update("/k/0", b("v50"), kv.mod_revision)
        .await
        .unwrap();
    assert_eq!(store.oldest_watchable_revision(), 42);
    store.close().await;

    // The file was pruned as the history shrank: a larger history finds no event older
    // than the small one kept (their previous states are gone), and the state is whole.
    let store = Store::open(&path, options()).unwrap();
    assert_eq!(store.oldest_watchable_revision(), 42);
    assert_eq!(store.current_revision(), 51);
    let mut expected = state;
    expected.items.retain(|kv| kv.key != "/k/0");
    let now = store.list("", None, None, None).unwrap();
    assert_eq!(now.items.len(), 5);
    assert!(expected.items.iter().all(|kv| now.items.contains(kv)));
    assert_eq!(store.get("/k/0").unwrap().value, b("v50"));
    store.close().await;
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path, options()).unwrap();
    assert!(matches!(
        Store::open(&path, options()),
        Err(OpenError::Locked { .. })
    ));
    store.close().await;
    // close() released the file.
    Store::open(&path, options()).unwrap().close().await;
}

#[test]
fn opening_a_file_that_is_not_a_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.redb");
    std::fs::write(&path, vec![0x5a; 10_000]).unwrap();
    let result = Store::open(&path, options());
    assert!(
        matches!(
            result,
            Err(OpenError::Storage { .. } | OpenError::Corrupt { .. })
        ),
        "{:?}",
        result.err()
    );
}
