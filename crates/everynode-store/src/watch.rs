//! Watches: cursors over the shared history ring.
//!
//! A watch holds no queue of its own. It remembers the next revision to look at, and
//! when polled it scans the ring from there under the read lock, taking out up to
//! `TAKE` matching events (just `Arc` clones) per scan. A slow or idle watcher therefore
//! costs the writer nothing; if it falls so far behind that the ring has dropped its next
//! revision, it ends with `Err(Compacted)`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::FusedStream;

use crate::state::Shared;
use crate::{Event, Revision, WatchError};

/// Events examined per lock acquisition, so a watcher catching up over a long history
/// never holds the read lock (and so the writer's publish) for long.
const SCAN: usize = 4096;
/// Matching events taken out per scan.
const TAKE: usize = 256;

/// A stream of events for keys with one prefix, in revision order.
///
/// Guarantees (each has a test of the same name in `tests/store/watch.rs`):
/// * **ordered** — strictly increasing revisions;
/// * **unique** — no event twice;
/// * **no gaps** — every write of a matching key after the start revision is delivered;
/// * **prefix filter** — only keys starting with the prefix;
/// * **resumable** — a new watch from any revision still retained continues exactly
///   where an earlier one stopped;
/// * **compacted last** — if the watcher falls behind the retained history, the stream
///   yields what it had, then one `Err(Compacted)`, then ends.
///
/// The stream also ends (`None`) once the store is closed and every event has been
/// delivered.
pub struct Watch {
    shared: Arc<Shared>,
    /// Key of this watch's waker in the shared registry.
    id: u64,
    prefix: String,
    /// The next revision to examine.
    next: Revision,
    /// Matching events already taken from the ring, not yet yielded.
    ready: VecDeque<Arc<Event>>,
    /// The error to yield once `ready` is drained.
    failed: Option<WatchError>,
    done: bool,
}

impl Watch {
    pub(crate) fn new(shared: Arc<Shared>, prefix: String, after: Revision) -> Watch {
        let id = shared.new_watcher_id();
        Watch {
            shared,
            id,
            prefix,
            next: after.saturating_add(1),
            ready: VecDeque::new(),
            failed: None,
            done: false,
        }
    }

    /// The prefix this watch filters on.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every matching event up to this revision has been yielded: the revision to
    /// resume from with a new watch, or to report in a bookmark.
    pub fn progress(&self) -> Revision {
        match self.ready.front() {
            Some(event) => event.revision.saturating_sub(1),
            None => self.next.saturating_sub(1),
        }
    }
}

impl Stream for Watch {
    type Item = Result<Arc<Event>, WatchError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(err) = this.failed.take() {
                this.done = true;
                return Poll::Ready(Some(Err(err)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let st = this.shared.read();
            let oldest = st.oldest_watchable();
            if this.next < oldest {
                // The ring dropped revisions this watcher never saw.
                this.failed = Some(WatchError::Compacted {
                    requested: this.next.saturating_sub(1),
                    oldest,
                });
                continue;
            }
            let mut scanned = 0;
            while this.next <= st.revision && scanned < SCAN && this.ready.len() < TAKE {
                if let Some(event) = st.event(this.next)
                    && event.kv.key.starts_with(&this.prefix)
                {
                    this.ready.push_back(event.clone());
                }
                this.next += 1;
                scanned += 1;
            }
            if !this.ready.is_empty() {
                continue;
            }
            if this.next <= st.revision {
                // Scan budget spent on non-matching events: let others run, then go on.
                drop(st);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if st.closed {
                this.done = true;
                return Poll::Ready(None);
            }
            this.shared.register_waker(&st, this.id, cx.waker());
            return Poll::Pending;
        }
    }
}

impl FusedStream for Watch {
    fn is_terminated(&self) -> bool {
        self.done && self.ready.is_empty() && self.failed.is_none()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.unregister_waker(self.id);
    }
}
