//! The single writer: group commit.
//!
//! One OS thread owns the backend. It blocks for the first queued write, drains whatever
//! else is queued (up to a batch limit) without waiting, checks each write against the
//! batch's running state, commits the whole batch in one durable transaction, and only
//! then publishes the new state and events and answers every waiter. While it is inside
//! a commit (an fsync), new writes pile up in the queue and become the next batch: the
//! batch size grows with the load, so the cost of an fsync is shared by everyone who
//! arrived during the previous one. Under a flood (the previous commit carried many
//! writes) that keeps every core busy, the writer also lets writes still arriving join
//! the batch, waiting up to half a millisecond in 50 µs steps, as long as each step
//! brings more; a lone writer never waits.
//!
//! It is a plain thread rather than a tokio task because redb's commit blocks on the
//! disk, and because `Store::memory()`/`Store::open()` must work without a runtime.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::state::{Map, Shared};
use crate::{Event, EventKind, KeyValue, Revision, WriteError};

/// Upper bound on writes per transaction, so one commit (and the time its waiters wait)
/// stays bounded under a flood.
const MAX_BATCH_WRITES: usize = 4096;
/// Upper bound on value bytes per transaction, for the same reason with big objects.
const MAX_BATCH_BYTES: usize = 32 << 20;
/// A commit of at least this many writes means a flood: the next batch may gather.
const GATHER_FROM: usize = 8;
/// How long the writer waits for one more write while gathering, and at most in all.
const GATHER_GAP: Duration = Duration::from_micros(50);
const GATHER_MAX: Duration = Duration::from_micros(500);

/// A write as the API asked for it.
pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

impl Op {
    fn value_len(&self) -> usize {
        match self {
            Op::Create { value, .. } | Op::Update { value, .. } => value.len(),
            Op::Delete { .. } => 0,
        }
    }
}

pub(crate) type Reply = oneshot::Sender<Result<KeyValue, WriteError>>;

/// What the store handles send to the writer.
pub(crate) enum Msg {
    Write(Op, Reply),
    /// Stop accepting writes, finish the queued ones, stop.
    Close,
}

/// Where a batch becomes durable.
pub(crate) trait Backend: Send + 'static {
    /// Durably applies `events` (contiguous, ascending revisions) and drops the stored
    /// history below `keep_from`. An error means the batch did not commit (see
    /// `DESIGN.md` for the one ambiguous case, a failing fsync).
    fn commit(&mut self, events: &[Arc<Event>], keep_from: Revision) -> Result<(), String>;
}

/// Whether the process has lately been using (nearly) every core, sampled at most every
/// `Busy::PERIOD` from the process's CPU clock.
struct Busy {
    cores: f64,
    at: std::time::Instant,
    cpu: Duration,
    saturated: bool,
}

impl Busy {
    const PERIOD: Duration = Duration::from_millis(20);

    fn new() -> Busy {
        Busy {
            cores: std::thread::available_parallelism().map_or(1, usize::from) as f64,
            at: std::time::Instant::now(),
            cpu: process_cpu(),
            saturated: false,
        }
    }

    fn saturated(&mut self) -> bool {
        let elapsed = self.at.elapsed();
        if elapsed >= Self::PERIOD {
            let cpu = process_cpu();
            let used = cpu.saturating_sub(self.cpu).as_secs_f64() / elapsed.as_secs_f64();
            // Within half a core of all of them.
            self.saturated = used >= self.cores - 0.5;
            self.at = std::time::Instant::now();
            self.cpu = cpu;
        }
        self.saturated
    }
}

fn process_cpu() -> Duration {
    cpu_clock(rustix::time::ClockId::ProcessCPUTime)
}

/// The CPU time a clock (the process's, the calling thread's) has counted.
pub(crate) fn cpu_clock(clock: rustix::time::ClockId) -> Duration {
    let t = rustix::time::clock_gettime(clock);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// The memory backend: the same writer and batching, nothing to persist.
pub(crate) struct NoBackend;

impl Backend for NoBackend {
    fn commit(&mut self, _events: &[Arc<Event>], _keep_from: Revision) -> Result<(), String> {
        Ok(())
    }
}

pub(crate) struct Writer<B> {
    backend: B,
    shared: Arc<Shared>,
    /// The writer's copy of the published map (same tree, so O(1) to publish).
    map: Map,
    revision: Revision,
}

/// How one write of a batch turned out before the commit.
enum Outcome {
    Applied(Arc<Event>),
    Rejected(WriteError),
}

impl<B: Backend> Writer<B> {
    pub fn new(backend: B, shared: Arc<Shared>) -> Writer<B> {
        let (map, revision) = shared.current();
        Writer {
            backend,
            shared,
            map,
            revision,
        }
    }

    /// Runs until the store is closed or every handle is dropped, then marks the state
    /// closed, drops the backend (releasing the database file) and only then reports
    /// `stopped`, so `close().await` returning means the file can be reopened.
    pub fn run(mut self, mut rx: mpsc::Receiver<Msg>, stopped: watch::Sender<bool>) {
        let mut batch: Vec<(Op, Reply)> = Vec::new();
        // Writes the previous commit carried.
        let mut previous = 0;
        let mut busy = Busy::new();
        while let Some(first) = rx.blocking_recv() {
            let mut bytes = 0;
            let mut closed = false;
            let mut waited = Duration::ZERO;
            let mut next = Some(first);
            loop {
                while let Some(msg) = next.take() {
                    match msg {
                        Msg::Write(op, reply) => {
                            bytes += op.value_len();
                            batch.push((op, reply));
                        }
                        // Queued writes stay receivable after `close`, so they still commit.
                        Msg::Close => {
                            rx.close();
                            closed = true;
                        }
                    }
                    if batch.len() < MAX_BATCH_WRITES && bytes < MAX_BATCH_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                // Under a flood (the previous commit was large) that keeps every core
                // busy, writes that are still on their way join this commit while they
                // keep coming, up to as many as last time: fewer, larger commits cost
                // less CPU (each fsync costs kernel work too), which is what such a
                // flood is short of. With cores to spare the wait would only add
                // latency; a lone or light writer never waits.
                let full = batch.len() >= MAX_BATCH_WRITES || bytes >= MAX_BATCH_BYTES;
                if closed
                    || full
                    || previous < GATHER_FROM
                    || batch.len() >= previous
                    || waited >= GATHER_MAX
                    || !busy.saturated()
                {
                    break;
                }
                std::thread::sleep(GATHER_GAP);
                waited += GATHER_GAP;
                next = rx.try_recv().ok();
                if next.is_none() {
                    break;
                }
            }
            previous = batch.len();
            if !batch.is_empty() {
                self.commit_batch(&mut batch);
            }
        }
        self.shared.close();
        drop(self);
        // Nobody may be waiting; that is fine.
        let _ = stopped.send(true);
    }

    fn commit_batch(&mut self, batch: &mut Vec<(Op, Reply)>) {
        let mut map = self.map.clone();
        let mut revision = self.revision;
        let mut events = Vec::with_capacity(batch.len());
        let mut outcomes = Vec::with_capacity(batch.len());
        for (op, reply) in batch.drain(..) {
            match apply(&mut map, revision + 1, op) {
                Ok(event) => {
                    revision += 1;
                    let event = Arc::new(event);
                    outcomes.push((reply, Outcome::Applied(event.clone())));
                    events.push(event);
                }
                Err(err) => outcomes.push((reply, Outcome::Rejected(err))),
            }
        }
        if events.is_empty() {
            for (reply, outcome) in outcomes {
                if let Outcome::Rejected(err) = outcome {
                    let _ = reply.send(Err(err));
                }
            }
            return;
        }
        let keep_from = (revision + 1)
            .saturating_sub(self.shared.history_events as u64)
            .max(1);
        if let Err(message) = self.backend.commit(&events, keep_from) {
            tracing::error!(%message, writes = outcomes.len(), "store commit failed");
            // Every answer of this batch may depend on writes that did not happen (a
            // Conflict caused by an earlier write of the batch, say), so all get the failure.
            for (reply, _) in outcomes {
                let _ = reply.send(Err(WriteError::Storage(message.clone())));
            }
            return;
        }
        self.map = map.clone();
        self.revision = revision;
        self.shared.publish(map, revision, events);
        for (reply, outcome) in outcomes {
            // A dropped receiver means the caller stopped waiting; the write stands.
            let _ = match outcome {
                Outcome::Applied(event) => reply.send(Ok(event.kv.clone())),
                Outcome::Rejected(err) => reply.send(Err(err)),
            };
        }
    }
}

/// Checks one write against `map` (the state including earlier writes of the batch) and
/// applies it as revision `revision`.
fn apply(map: &mut Map, revision: Revision, op: Op) -> Result<Event, WriteError> {
    match op {
        Op::Create { key, value } => {
            if map.contains_key(key.as_str()) {
                return Err(WriteError::AlreadyExists);
            }
            let kv = KeyValue {
                key,
                value,
                create_revision: revision,
                mod_revision: revision,
            };
            map.insert(Arc::from(kv.key.as_str()), Arc::new(kv.clone()));
            Ok(Event {
                revision,
                kind: EventKind::Put,
                kv,
                prev: None,
            })
        }
        Op::Update {
            key,
            value,
            expected,
        } => {
            let (map_key, prev) = current(map, &key, Some(expected))?;
            let kv = KeyValue {
                key,
                value,
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            map.insert(map_key, Arc::new(kv.clone()));
            Ok(Event {
                revision,
                kind: EventKind::Put,
                kv,
                prev: Some(prev),
            })
        }
        Op::Delete { key, expected } => {
            let (_, prev) = current(map, &key, expected)?;
            map.remove(key.as_str());
            let kv = KeyValue {
                key,
                value: prev.value.clone(),
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            Ok(Event {
                revision,
                kind: EventKind::Delete,
                kv,
                prev: Some(prev),
            })
        }
    }
}

/// The key's current entry, if it exists and (when `expected` is given) its
/// `mod_revision` matches.
fn current(
    map: &Map,
    key: &str,
    expected: Option<Revision>,
) -> Result<(Arc<str>, KeyValue), WriteError> {
    let (map_key, kv) = map.get_key_value(key).ok_or(WriteError::NotFound)?;
    if let Some(expected) = expected
        && expected != kv.mod_revision
    {
        return Err(WriteError::Conflict {
            current: kv.mod_revision,
        });
    }
    Ok((map_key.clone(), (**kv).clone()))
}
