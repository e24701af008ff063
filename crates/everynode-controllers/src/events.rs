//! Recording core/v1 Events the way Kubernetes' controllers do (`kubectl describe` and
//! `kubectl get events` show them).
//!
//! Recording never blocks the caller: [`Recorder::record`] decides at once what to write
//! (the [`Correlator`], a pure function of what was recorded before and the time) and
//! hands the write to background writers. Like client-go's recorder, the correlator
//!
//! * counts repeats: an event identical to an earlier one but for its time updates that
//!   event's `count` and `lastTimestamp` instead of creating another;
//! * aggregates: from the 10th event within 10 minutes that differs from earlier ones only
//!   in its message, one event with the message prefixed `(combined from similar
//!   events): ` stands for the rest and counts them;
//! * limits each component to a burst of 25 events about one object, refilled at one
//!   every 5 minutes, so a DaemonSet creating 50,000 pods writes 25 events, not 50,000.
//!
//! Failures to record are logged, never fatal; a writer queue that is full drops the
//! event (client-go does the same).

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

/// Events that differ only in their message are aggregated from this many on.
pub const AGGREGATE_MAX_EVENTS: usize = 10;
/// ... when each came within this many seconds of the one before.
pub const AGGREGATE_INTERVAL_SECONDS: i64 = 600;
/// Events one component may record about one object in a burst.
pub const SPAM_BURST: f64 = 25.0;
/// Refill of that burst, per second (one every 5 minutes).
pub const SPAM_QPS: f64 = 1.0 / 300.0;
/// Entries each of the correlator's caches keeps (client-go: 4,096).
const CACHE_ENTRIES: usize = 4096;
/// Background writers; the events of one name always go to the same one, in order.
const LANES: usize = 8;
/// Writes queued per writer before events are dropped.
const LANE_QUEUE: usize = 2048;

/// The message of an aggregated event.
pub const AGGREGATE_PREFIX: &str = "(combined from similar events): ";

/// What to write for one recorded event.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// A new event.
    Create(Event),
    /// An existing event (by name) seen again: its `count`, `lastTimestamp` and
    /// `message` change. Holds the whole event, to create it if the server lost it.
    Update(Event),
}

impl Write {
    pub fn event(&self) -> &Event {
        match self {
            Write::Create(e) | Write::Update(e) => e,
        }
    }
}

/// A map that holds at most about `cap` entries, forgetting the least recently used
/// ones in halves (two generations: a hit in the old one moves to the new one).
struct Bounded<V> {
    cap: usize,
    new: HashMap<String, V>,
    old: HashMap<String, V>,
}

impl<V> Bounded<V> {
    fn new(cap: usize) -> Bounded<V> {
        Bounded {
            cap: cap.max(2),
            new: HashMap::new(),
            old: HashMap::new(),
        }
    }

    fn take(&mut self, key: &str) -> Option<V> {
        self.new.remove(key).or_else(|| self.old.remove(key))
    }

    fn put(&mut self, key: String, value: V) {
        if self.new.len() >= self.cap / 2 {
            self.old = std::mem::take(&mut self.new);
        }
        self.new.insert(key, value);
    }
}

struct Aggregate {
    messages: BTreeSet<String>,
    last: Timestamp,
}

struct Seen {
    count: i32,
    first: Option<Time>,
    name: String,
}

struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// Decides, for each event recorded, whether to create it, update an earlier one or drop
/// it (see the module docs). Pure: the caller passes the time.
pub struct Correlator {
    aggregates: Bounded<Aggregate>,
    seen: Bounded<Seen>,
    buckets: Bounded<Bucket>,
}

impl Default for Correlator {
    fn default() -> Correlator {
        Correlator {
            aggregates: Bounded::new(CACHE_ENTRIES),
            seen: Bounded::new(CACHE_ENTRIES),
            buckets: Bounded::new(CACHE_ENTRIES),
        }
    }
}

/// The object, source and reporter of an event: what its keys share.
fn object_key(e: &Event) -> String {
    let o = &e.involved_object;
    let src = e.source.as_ref();
    [
        src.and_then(|s| s.component.as_deref()),
        src.and_then(|s| s.host.as_deref()),
        o.kind.as_deref(),
        o.namespace.as_deref(),
        o.name.as_deref(),
        o.uid.as_deref(),
        o.api_version.as_deref(),
    ]
    .map(|p| p.unwrap_or(""))
    .join("\u{1}")
}

fn nanos_name(object: &str, now: Timestamp) -> String {
    format!("{object}.{:x}", now.as_nanosecond())
}

impl Correlator {
    /// What to write for `event` (a fresh event with count 1, recorded at `now`), or
    /// `None` when the component has spent its budget for the object.
    pub fn correlate(&mut self, mut event: Event, now: Timestamp) -> Option<Write> {
        let object = object_key(&event);
        let reason = event.reason.clone().unwrap_or_default();
        let type_ = event.type_.clone().unwrap_or_default();
        let message = event.message.clone().unwrap_or_default();
        let group = [
            object.as_str(),
            type_.as_str(),
            reason.as_str(),
            event.reporting_component.as_deref().unwrap_or(""),
            event.reporting_instance.as_deref().unwrap_or(""),
        ]
        .join("\u{1}");

        // Aggregation: many messages for one (object, type, reason) become one event.
        let mut agg = self
            .aggregates
            .take(&group)
            .filter(|a| (now.as_second() - a.last.as_second()) <= AGGREGATE_INTERVAL_SECONDS)
            .unwrap_or(Aggregate {
                messages: BTreeSet::new(),
                last: now,
            });
        agg.messages.insert(message.clone());
        agg.last = now;
        let key = if agg.messages.len() < AGGREGATE_MAX_EVENTS {
            format!("{group}\u{1}{message}")
        } else {
            // Keep the set from growing past the threshold.
            agg.messages.pop_first();
            let object_name = event.involved_object.name.clone().unwrap_or_default();
            event.metadata.name = Some(nanos_name(&object_name, now));
            event.message = Some(format!("{AGGREGATE_PREFIX}{message}"));
            group.clone()
        };
        self.aggregates.put(group, agg);

        // Counting: the same event again updates the first one's count.
        let write = match self.seen.take(&key) {
            Some(seen) => {
                event.metadata.name = Some(seen.name.clone());
                event.first_timestamp = seen.first.clone();
                event.count = Some(seen.count.saturating_add(1));
                let count = event.count.unwrap_or(1);
                self.seen.put(key, Seen { count, ..seen });
                Write::Update(event)
            }
            None => {
                self.seen.put(
                    key,
                    Seen {
                        count: event.count.unwrap_or(1),
                        first: event.first_timestamp.clone(),
                        name: event.metadata.name.clone().unwrap_or_default(),
                    },
                );
                Write::Create(event)
            }
        };

        // Budget per component and object: a token bucket.
        let mut bucket = self.buckets.take(&object).unwrap_or(Bucket {
            tokens: SPAM_BURST,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * SPAM_QPS).min(SPAM_BURST);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        self.buckets.put(object, bucket);
        allowed.then_some(write)
    }
}

/// The event a component records about `obj` at `now` (count 1, named like client-go's:
/// `<object>.<nanoseconds in hex>`).
pub fn new_event<K>(
    obj: &K,
    component: &str,
    type_: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Event
where
    K: Resource<DynamicType = ()>,
{
    let meta = obj.meta();
    let name = meta.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(nanos_name(&name, now)),
            namespace: Some(
                meta.namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_string()),
            ),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(name),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            field_path: None,
        },
        reason: Some(reason.to_string()),
        message: Some(message.trim().to_string()),
        type_: Some(type_.to_string()),
        source: Some(EventSource {
            component: Some(component.to_string()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(component.to_string()),
        reporting_instance: Some(String::new()),
        ..Event::default()
    }
}

/// Records events on behalf of one component (`daemonset-controller`,
/// `default-scheduler`). Cheap to clone; the writers stop when every clone is gone.
#[derive(Clone)]
pub struct Recorder {
    component: &'static str,
    correlator: Arc<Mutex<Correlator>>,
    lanes: Arc<Vec<mpsc::Sender<Write>>>,
}

impl Recorder {
    /// A recorder writing through `client`; must be called within a Tokio runtime.
    pub fn new(client: kube::Client, component: &'static str) -> Recorder {
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::channel(LANE_QUEUE);
                tokio::spawn(write_lane(client.clone(), component, rx));
                tx
            })
            .collect();
        Recorder {
            component,
            correlator: Arc::new(Mutex::new(Correlator::default())),
            lanes: Arc::new(lanes),
        }
    }

    /// Records an event about `obj` (any namespaced or cluster-scoped object). Returns at
    /// once; the write happens in the background.
    pub fn record<K>(&self, obj: &K, type_: &str, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let now = Timestamp::now();
        self.send(
            new_event(obj, self.component, type_, reason, message, now),
            now,
        );
    }

    pub fn pod(&self, pod: &Pod, type_: &str, reason: &str, message: &str) {
        self.record(pod, type_, reason, message)
    }

    /// Records an event about a pod as a node's agent does (the kubelet): the node is the
    /// source's host and the reporting instance, and `field_path` names the part of the
    /// pod it is about (`spec.containers{c}`), if any.
    pub fn pod_on_node(
        &self,
        pod: &Pod,
        node: &str,
        field_path: Option<&str>,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let now = Timestamp::now();
        let mut event = new_event(pod, self.component, type_, reason, message, now);
        if let Some(src) = event.source.as_mut() {
            src.host = Some(node.to_string());
        }
        event.reporting_instance = Some(node.to_string());
        event.involved_object.field_path = field_path.map(str::to_string);
        self.send(event, now);
    }

    fn send(&self, event: Event, now: Timestamp) {
        let reason = event.reason.clone().unwrap_or_default();
        let write = self
            .correlator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .correlate(event, now);
        let Some(write) = write else {
            tracing::debug!(component = self.component, %reason, "event over budget; dropped");
            return;
        };
        let name = write.event().metadata.name.as_deref().unwrap_or("");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        let lane = usize::try_from(h.finish() % LANES as u64).unwrap_or(0);
        if let Some(tx) = self.lanes.get(lane)
            && tx.try_send(write).is_err()
        {
            tracing::debug!(component = self.component, %reason, "event queue full; dropped");
        }
    }
}

/// Writes one lane's events in order.
async fn write_lane(client: kube::Client, component: &str, mut rx: mpsc::Receiver<Write>) {
    while let Some(write) = rx.recv().await {
        let ns = write
            .event()
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        let result = match &write {
            Write::Create(e) => create(&api, e).await,
            Write::Update(e) => {
                let name = e.metadata.name.clone().unwrap_or_default();
                let patch = json!({
                    "count": e.count, "lastTimestamp": e.last_timestamp, "message": e.message,
                });
                let patch = Patch::Merge(patch);
                match crate::write::patch(&api, &name, false, &PatchParams::default(), &patch).await
                {
                    // Gone (deleted, or its TTL ran out): write it again, count and all.
                    Err(kube::Error::Api(s)) if s.code == 404 => create(&api, e).await,
                    other => other,
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(component, error = %e, "recording an event");
        }
    }
}

async fn create(api: &Api<Event>, e: &Event) -> Result<(), kube::Error> {
    let pp = PostParams::default();
    match crate::write::create(api, &pp, e).await {
        // Two events about one object in the same nanosecond: let the server name it.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let mut e = e.clone();
            e.metadata.generate_name = e.metadata.name.take().map(|n| format!("{n}."));
            crate::write::create(api, &pp, &e).await.map(drop)
        }
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSet;

    fn ds(name: &str) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            ..DaemonSet::default()
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn record(
        c: &mut Correlator,
        obj: &DaemonSet,
        reason: &str,
        msg: &str,
        t: Timestamp,
    ) -> Option<Write> {
        c.correlate(new_event(obj, "ctl", "Normal", reason, msg, t), t)
    }

    #[test]
    fn repeats_update_the_first_event() {
        let mut c = Correlator::default();
        let d = ds("a");
        let first = record(&mut c, &d, "Hi", "same", at(0));
        let Some(Write::Create(first)) = first else {
            panic!("first is a create: {first:?}");
        };
        for n in 2..=4 {
            let w = record(&mut c, &d, "Hi", "same", at(n));
            let Some(Write::Update(e)) = w else {
                panic!("repeat {n} is an update: {w:?}");
            };
            assert_eq!(e.metadata.name, first.metadata.name);
            assert_eq!(e.count, Some(i32::try_from(n).unwrap_or(0)));
            assert_eq!(e.first_timestamp, first.first_timestamp);
            assert_eq!(e.last_timestamp, Some(Time(at(n))));
        }
    }

    #[test]
    fn the_tenth_distinct_message_starts_an_aggregate() {
        let mut c = Correlator::default();
        let d = ds("a");
        let mut names = BTreeSet::new();
        for i in 0..9 {
            let w = record(
                &mut c,
                &d,
                "SuccessfulCreate",
                &format!("Created pod: p{i}"),
                at(i),
            );
            let Some(Write::Create(e)) = w else {
                panic!("event {i} is its own: {w:?}");
            };
            assert!(names.insert(e.metadata.name.clone()));
        }
        let w = record(&mut c, &d, "SuccessfulCreate", "Created pod: p9", at(9));
        let Some(Write::Create(agg)) = w else {
            panic!("the 10th creates the aggregate: {w:?}");
        };
        assert_eq!(
            agg.message.as_deref(),
            Some("(combined from similar events): Created pod: p9")
        );
        let w = record(&mut c, &d, "SuccessfulCreate", "Created pod: p10", at(10));
        let Some(Write::Update(next)) = w else {
            panic!("the 11th counts into it: {w:?}");
        };
        assert_eq!(next.metadata.name, agg.metadata.name);
        assert_eq!(next.count, Some(2));
        assert_eq!(
            next.message.as_deref(),
            Some("(combined from similar events): Created pod: p10")
        );
        // Another reason is another group.
        let w = record(&mut c, &d, "SuccessfulDelete", "Deleted pod: p0", at(11));
        assert!(matches!(w, Some(Write::Create(_))), "{w:?}");
    }

    #[test]
    fn each_object_gets_a_burst_of_25_then_one_per_five_minutes() {
        let mut c = Correlator::default();
        let d = ds("a");
        let written = (0..100)
            .filter(|i| record(&mut c, &d, "R", &format!("m{i}"), at(0)).is_some())
            .count();
        assert_eq!(written, 25);
        // Another object has its own budget.
        assert!(record(&mut c, &ds("b"), "R", "m", at(0)).is_some());
        // The budget refills at one per 300 s.
        assert!(record(&mut c, &d, "R", "x", at(299)).is_none());
        assert!(record(&mut c, &d, "R", "y", at(301)).is_some());
        assert!(record(&mut c, &d, "R", "z", at(302)).is_none());
    }

    #[test]
    fn a_quiet_interval_ends_the_aggregate() {
        let mut c = Correlator::default();
        let d = ds("a");
        for i in 0..9 {
            assert!(matches!(
                record(&mut c, &d, "R", &format!("m{i}"), at(i)),
                Some(Write::Create(_))
            ));
        }
        // More than 10 minutes later the group starts over: m9 is its own event.
        let w = record(
            &mut c,
            &d,
            "R",
            "m9",
            at(8 + AGGREGATE_INTERVAL_SECONDS + 1),
        );
        let Some(Write::Create(e)) = w else {
            panic!("{w:?}");
        };
        assert_eq!(e.message.as_deref(), Some("m9"));
    }

    #[test]
    fn the_caches_stay_bounded() {
        let mut b: Bounded<usize> = Bounded::new(8);
        for i in 0..100 {
            b.put(format!("k{i}"), i);
        }
        assert!(b.new.len() + b.old.len() <= 8);
        assert_eq!(b.take("k99"), Some(99));
        assert_eq!(b.take("k0"), None);
    }
}
