//! Back-off for replacing failed daemon pods (§5, §8.2 of `daemonset-semantics.md`).
//!
//! A node whose daemon pod keeps failing (a kubelet that rejects it, a crashing image
//! with `restartPolicy: Always` that still ends `Failed`) must not make the controller
//! delete and recreate it in a hot loop. Kubernetes keeps a `flowcontrol.Backoff` per
//! `<ds uid>/<status.observedGeneration>/<node>` key: 1 s at first, doubling per failure up
//! to 15 min; an entry untouched for twice the maximum is considered stable and starts
//! over. This is the same state machine with the clock passed in, so the planning code
//! stays pure: [`plan`](super::plan::plan) reads it and asks, through
//! [`Action::AdvanceFailedPodBackoff`](super::plan::Action::AdvanceFailedPodBackoff), for
//! [`FailedPodBackoff::next`] to be called; the controller loop owns the value.
//!
//! Unlike some client-go versions there is no jitter: the delays are exact, which keeps
//! tests deterministic.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

/// First back-off delay after a failed pod was deleted.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Upper bound of the back-off delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// The current delay: the key is in back-off until `last_update + delay`.
    delay: Duration,
    /// When [`FailedPodBackoff::next`] last ran for this key.
    last_update: Timestamp,
}

/// Per-key exponential back-off with an injected clock (client-go's `flowcontrol.Backoff`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedPodBackoff {
    initial: Duration,
    max: Duration,
    entries: BTreeMap<String, Entry>,
}

impl Default for FailedPodBackoff {
    fn default() -> Self {
        Self::new(INITIAL_BACKOFF, MAX_BACKOFF)
    }
}

impl FailedPodBackoff {
    /// A back-off starting at `initial` and doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        FailedPodBackoff {
            initial,
            max,
            entries: BTreeMap::new(),
        }
    }

    /// Time elapsed from `since` to `now`, zero if the clock went backwards.
    fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
        Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
    }

    /// An entry untouched for more than twice the maximum delay counts as stable.
    fn expired(&self, entry: &Entry, now: Timestamp) -> bool {
        Self::elapsed(entry.last_update, now) > self.max.saturating_mul(2)
    }

    /// `IsInBackOffSinceUpdate`: if `key` is still backing off at `now`, the time left.
    pub fn in_backoff(&self, key: &str, now: Timestamp) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if self.expired(entry, now) {
            return None;
        }
        let elapsed = Self::elapsed(entry.last_update, now);
        (elapsed < entry.delay).then(|| entry.delay - elapsed)
    }

    /// The current delay of `key` (zero when unknown).
    pub fn delay(&self, key: &str) -> Duration {
        self.entries.get(key).map_or(Duration::ZERO, |e| e.delay)
    }

    /// `Next`: record a failure at `now`: the first one (or the first after the entry
    /// expired) starts at the initial delay, later ones double it up to the maximum.
    pub fn next(&mut self, key: &str, now: Timestamp) {
        let delay = match self.entries.get(key) {
            Some(entry) if !self.expired(entry, now) => entry.delay.saturating_mul(2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    /// `GC`: drop entries that have expired (Kubernetes runs this every minute).
    pub fn gc(&mut self, now: Timestamp) {
        let max2 = self.max.saturating_mul(2);
        self.entries
            .retain(|_, e| Self::elapsed(e.last_update, now) <= max2);
    }

    /// Number of keys tracked (for metrics and tests).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn doubles_up_to_the_maximum_and_expires() {
        let mut b = FailedPodBackoff::new(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(b.in_backoff("k", at(0)), None);
        b.next("k", at(0));
        assert_eq!(b.in_backoff("k", at(0)), Some(Duration::from_secs(1)));
        assert_eq!(b.in_backoff("k", at(1)), None);
        let expected = [2, 4, 8, 10, 10];
        for (i, want) in expected.iter().enumerate() {
            let now = at(1 + i as i64);
            b.next("k", now);
            assert_eq!(b.delay("k"), Duration::from_secs(*want));
        }
        // Quiet for more than 2 × max: starts over.
        b.next("k", at(100));
        assert_eq!(b.delay("k"), Duration::from_secs(1));
        assert_eq!(b.in_backoff("other", at(100)), None);
        b.gc(at(100));
        assert_eq!(b.len(), 1);
        b.gc(at(200));
        assert!(b.is_empty());
    }
}
