//! WATCH: chunked newline-delimited `WatchEvent`s over a store watch, with selector
//! transitions (an object that stops matching is DELETED for this watcher), bookmarks,
//! `sendInitialEvents`, timeouts and the 410 `Expired` ERROR event (compat doc §6).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use everynode_store::{Event, EventKind, Revision, WatchError};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::list::Filter;
use crate::registry::{Registry, api_bytes, decode_at};
use crate::request::Output;
use crate::resources::ResourceInfo;
use crate::tables::{self, IncludeObject};

/// Settings shared by every watch a server serves.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// Upper bound when the client gives no `timeoutSeconds` (kube-apiserver picks 30–60 min).
    pub default_timeout: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            bookmark_interval: Duration::from_secs(60),
            default_timeout: Duration::from_secs(1800),
        }
    }
}

struct Encoder {
    res: &'static ResourceInfo,
    output: Output,
    include: IncludeObject,
    columns_sent: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = match self.output {
            Output::Json => obj.clone(),
            Output::PartialMetadata => tables::partial_metadata(obj),
            Output::Table => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(json!(""));
                let t = tables::table(
                    self.res,
                    std::slice::from_ref(obj),
                    json!({ "resourceVersion": rv }),
                    self.include,
                    !self.columns_sent,
                );
                self.columns_sent = true;
                t
            }
        };
        line(&json!({ "type": kind, "object": object }))
    }

    fn bookmark(&self, rv: Revision, initial_end: bool) -> Bytes {
        let mut meta = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        line(&json!({ "type": "BOOKMARK", "object": {
            "kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta } }))
    }
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

fn expired_event(requested: Revision, oldest: Revision) -> Bytes {
    let status =
        ApiError::expired(format!("too old resource version: {requested} ({oldest})")).to_status();
    line(&json!({ "type": "ERROR", "object": status }))
}

/// One store event, prepared once and shared by every watcher of its resource: the
/// JSON lines for watchers that want plain objects, and, only when a watcher needs them
/// (a selector, a table), the decoded object and its previous state. With five watchers
/// of pods (scheduler, DaemonSet controller, garbage collector, node agents,
/// EndpointSlices) this turns five encodings of every pod write into one; and since the
/// stored bytes are the API form without its resourceVersion, the line is those bytes
/// with the resourceVersion put in, with no decoding at all. Slots hold only the lines
/// and references to the store's bytes, which keeps the cache small.
pub struct Decoded {
    res: &'static ResourceInfo,
    revision: Revision,
    value: Bytes,
    prev: Option<(Bytes, Revision)>,
    obj: OnceLock<Option<Value>>,
    prev_obj: OnceLock<Option<Value>>,
    /// `ADDED`, `MODIFIED`, `DELETED` lines for `Output::Json`.
    lines: [OnceLock<Option<Bytes>>; 3],
}

impl Decoded {
    fn new(res: &'static ResourceInfo, ev: &Event) -> Decoded {
        Decoded {
            res,
            revision: ev.revision,
            value: ev.kv.value.clone(),
            prev: ev.prev.as_ref().map(|p| (p.value.clone(), p.mod_revision)),
            obj: OnceLock::new(),
            prev_obj: OnceLock::new(),
            lines: Default::default(),
        }
    }

    /// The object in its API form (decoded on first use).
    fn obj(&self) -> Option<&Value> {
        self.obj
            .get_or_init(|| decode_at(self.res, &self.value, self.revision).ok())
            .as_ref()
    }

    fn prev(&self) -> Option<&Value> {
        self.prev_obj
            .get_or_init(|| {
                let (value, rev) = self.prev.as_ref()?;
                decode_at(self.res, value, *rev).ok()
            })
            .as_ref()
    }

    fn json_line(&self, kind: &'static str) -> Option<Bytes> {
        let i = match kind {
            "ADDED" => 0,
            "MODIFIED" => 1,
            _ => 2,
        };
        self.lines[i]
            .get_or_init(|| {
                let line = |obj: &[u8]| {
                    let mut b = Vec::with_capacity(obj.len() + 40);
                    b.extend_from_slice(b"{\"type\":\"");
                    b.extend_from_slice(kind.as_bytes());
                    b.extend_from_slice(b"\",\"object\":");
                    b.extend_from_slice(obj);
                    b.extend_from_slice(b"}\n");
                    Bytes::from(b)
                };
                match api_bytes(self.res, &self.value, self.revision) {
                    Some(obj) => Some(line(&obj)),
                    None => Some(line(&serde_json::to_vec(self.obj()?).ok()?)),
                }
            })
            .clone()
    }
}

/// Slots of recently decoded events, by revision. A watcher that finds its event's
/// slot taken by another revision (it lags far behind) decodes for itself.
pub struct DecodeCache {
    slots: Vec<Mutex<Option<Slot>>>,
}

/// A decoded event and the revision it belongs to.
type Slot = (Revision, Arc<Decoded>);

const DECODE_SLOTS: usize = 8192;

impl Default for DecodeCache {
    fn default() -> Self {
        DecodeCache {
            slots: (0..DECODE_SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl DecodeCache {
    pub fn get(&self, res: &'static ResourceInfo, ev: &Event) -> Arc<Decoded> {
        let Some(slot) = self.slots.get(ev.revision as usize % DECODE_SLOTS) else {
            return Arc::new(Decoded::new(res, ev));
        };
        let mut slot = match slot.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some((rev, d)) = slot.as_ref()
            && *rev == ev.revision
            && std::ptr::eq(d.res, res)
        {
            return d.clone();
        }
        let d = Arc::new(Decoded::new(res, ev));
        *slot = Some((ev.revision, d.clone()));
        d
    }
}

/// What one store event means for a watcher with this filter: the event type, with
/// the decoded event holding the object.
fn transition(
    cache: &DecodeCache,
    res: &'static ResourceInfo,
    filter: &Filter,
    ev: &Event,
) -> Option<(&'static str, Arc<Decoded>)> {
    let d = cache.get(res, ev);
    if filter.is_everything() {
        let kind = match (ev.kind, &ev.prev) {
            (EventKind::Put, None) => "ADDED",
            (EventKind::Put, Some(_)) => "MODIFIED",
            (EventKind::Delete, _) => "DELETED",
        };
        return Some((kind, d));
    }
    let matches = |v: &Value| filter.matches(res, v);
    let obj = d.obj()?;
    let kind = match ev.kind {
        EventKind::Put => {
            let was = ev.prev.is_some() && d.prev().is_some_and(matches);
            match (matches(obj), was) {
                (true, true) => "MODIFIED",
                (true, false) => "ADDED",
                (false, true) => "DELETED",
                (false, false) => return None,
            }
        }
        EventKind::Delete => {
            if !matches(obj) {
                return None;
            }
            "DELETED"
        }
    };
    Some((kind, d))
}

impl Encoder {
    /// The line for an event from the shared decode: JSON watchers share one encoding.
    fn shared_event(&mut self, kind: &'static str, d: &Decoded) -> Option<Bytes> {
        match self.output {
            Output::Json => d.json_line(kind),
            _ => Some(self.event(kind, d.obj()?)),
        }
    }
}

/// Starts a watch and returns the streaming response.
#[allow(clippy::too_many_arguments)] // the watch parameters kube-apiserver takes, one each
pub fn watch(
    reg: &Registry,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    filter: Filter,
    output: Output,
    cfg: &WatchConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> ApiResult<Response> {
    let prefix = res.prefix(ns);
    let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
    let bookmarks = crate::request::flag(q, "allowWatchBookmarks");
    let send_initial = crate::request::flag(q, "sendInitialEvents");
    let rv = q.get("resourceVersion").filter(|s| !s.is_empty()).cloned();
    let timeout = match q.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?,
        ),
        None => cfg.default_timeout,
    };
    let from: Option<Revision> = match rv.as_deref() {
        None | Some("0") => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
        ),
    };
    let mut enc = Encoder {
        res,
        output,
        include,
        columns_sent: false,
    };

    // The initial state (synthetic ADDED events) when no revision was given, or when
    // the client asked for a streaming list.
    let mut initial = Vec::new();
    let start = if from.is_none() || send_initial {
        let snap = reg
            .store
            .list(&prefix, None, None, None)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        for kv in &snap.items {
            let obj = decode_at(res, &kv.value, kv.mod_revision)?;
            if filter.matches(res, &obj) {
                initial.push(enc.event("ADDED", &obj));
            }
        }
        if send_initial && bookmarks {
            initial.push(enc.bookmark(snap.revision, true));
        }
        snap.revision
    } else {
        from.unwrap_or(0)
    };

    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let store = reg.store.clone();
    let cache = reg.decoded.clone();
    let bookmark_every = cfg.bookmark_interval;
    let watch = store.watch(&prefix, start);
    tokio::spawn(async move {
        for b in initial {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let mut w = match watch {
            Ok(w) => w,
            Err(WatchError::Compacted { requested, oldest }) => {
                let _ = tx.send(expired_event(requested, oldest)).await;
                return;
            }
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + bookmark_every, bookmark_every);
        let mut last_sent = start;
        loop {
            tokio::select! {
                ev = w.next() => match ev {
                    Some(Ok(ev)) => {
                        last_sent = last_sent.max(ev.revision);
                        if let Some((kind, d)) = transition(&cache, res, &filter, &ev)
                            && let Some(b) = enc.shared_event(kind, &d)
                            && tx.send(b).await.is_err() { return; }
                    }
                    Some(Err(WatchError::Compacted { requested, oldest })) => {
                        let _ = tx.send(expired_event(requested, oldest)).await;
                        return;
                    }
                    None => return,
                },
                _ = tick.tick(), if bookmarks => {
                    // Everything at or below `now` is already in the store's history:
                    // drain what is ready so the bookmark never runs ahead of an event.
                    let now = store.current_revision();
                    while let Some(Some(item)) = w.next().now_or_never() {
                        match item {
                            Ok(ev) => {
                                last_sent = last_sent.max(ev.revision);
                                if let Some((kind, d)) = transition(&cache, res, &filter, &ev)
                                    && let Some(b) = enc.shared_event(kind, &d)
                                    && tx.send(b).await.is_err() { return; }
                            }
                            Err(WatchError::Compacted { requested, oldest }) => {
                                let _ = tx.send(expired_event(requested, oldest)).await;
                                return;
                            }
                        }
                    }
                    last_sent = last_sent.max(now);
                    if tx.send(enc.bookmark(last_sent, false)).await.is_err() { return; }
                }
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = shutdown.changed() => return,
            }
        }
    });
    let body =
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}
