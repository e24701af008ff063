//! Write throughput, printed rather than asserted (timing on a shared VM is noisy).
//! Run it in release mode:
//!
//! ```text
//! cargo test --release -p everynode-store --test store -- --ignored throughput --nocapture
//! ```
//!
//! `EVERYNODE_STORE_BENCH_WRITES` sets the writes per run (default 40 000).

use std::time::{Duration, Instant};

use everynode_store::{Bytes, Store, raw_redb_floor};

fn writes() -> usize {
    std::env::var("EVERYNODE_STORE_BENCH_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000)
}

/// A 1–2 KiB value, varying in size like real objects.
fn value(i: usize) -> Bytes {
    Bytes::from(format!(
        "{{\"i\":{i},\"pad\":\"{}\"}}",
        "p".repeat(1024 + (i * 131) % 1024)
    ))
}

async fn run(store: &Store, writers: usize, total: usize) -> Duration {
    let per_writer = total / writers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..per_writer {
                    let n = w * per_writer + i;
                    store
                        .create(&format!("/registry/pods/ns-{w}/pod-{n:07}"), value(n))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn rate(writes: usize, took: Duration) -> f64 {
    writes as f64 / took.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
async fn throughput_writes_per_second() {
    let total = writes();
    for writers in [16, 64, 256] {
        let memory = Store::memory();
        let took = run(&memory, writers, total).await;
        println!(
            "memory  writers={writers:>3}: {:>9.0} writes/s ({} commits)",
            rate(total, took),
            memory.stats().commits
        );
        memory.close().await;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bench.redb"), Default::default()).unwrap();
        let took = run(&store, writers, total).await;
        let stats = store.stats();
        println!(
            "redb    writers={writers:>3}: {:>9.0} writes/s ({} commits, {:.1} writes/commit)",
            rate(total, took),
            stats.commits,
            stats.writes as f64 / stats.commits as f64
        );
        store.close().await;
    }
    for batch in [16, 64, 256, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<_> = (0..total)
            .map(|n| (format!("/registry/pods/ns/pod-{n:07}"), value(n)))
            .collect();
        let took = raw_redb_floor(&dir.path().join("floor.redb"), values, batch)
            .await
            .unwrap();
        println!(
            "raw redb floor batch={batch:>4}: {:>9.0} writes/s",
            rate(total, took)
        );
    }
}
