//! Helpers shared by the test modules. Nothing here sleeps: waits are awaits bounded by
//! a deadline, so a bug shows up as a failure instead of a hang.

use std::sync::Arc;
use std::time::Duration;

use everynode_store::{Bytes, Event, Revision, Watch, WatchError};
use futures::{FutureExt, StreamExt};

/// Far longer than any wait should take, even on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// The next stream item, failing the test if none arrives before the deadline.
pub async fn next(watch: &mut Watch) -> Option<Result<Arc<Event>, WatchError>> {
    tokio::time::timeout(DEADLINE, watch.next())
        .await
        .expect("watch produced nothing before the deadline")
}

/// Events until (and including) the first one at or past `until`.
pub async fn collect_until(watch: &mut Watch, until: Revision) -> Vec<Arc<Event>> {
    let mut events = Vec::new();
    while events
        .last()
        .is_none_or(|e: &Arc<Event>| e.revision < until)
    {
        match next(watch).await {
            Some(Ok(event)) => events.push(event),
            other => panic!(
                "watch ended early with {other:?} after {} events",
                events.len()
            ),
        }
    }
    events
}

/// Asserts the watch has nothing to yield right now (without waiting).
pub fn assert_idle(watch: &mut Watch) {
    if let Some(item) = watch.next().now_or_never() {
        panic!("expected no event, got {item:?}");
    }
}

/// Strips the `Arc`s for comparisons.
pub fn plain(events: &[Arc<Event>]) -> Vec<Event> {
    events.iter().map(|e| (**e).clone()).collect()
}
