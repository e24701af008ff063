//! The byte encoding of one event in the redb `events` table (see `DESIGN.md`).
//!
//! ```text
//! format: u8 = 1
//! flags:  u8   bit 0: Delete (else Put)   bit 1: has prev   bit 2: kv.value == prev.value (not repeated)
//! create_revision: u64 LE                 (of kv; prev.create_revision when the key was re-created is in prev)
//! key:    u64 LE length, UTF-8 bytes
//! value:  u64 LE length, bytes            (absent when bit 2 is set)
//! prev:   create u64 LE, mod u64 LE, value (u64 LE length, bytes)   (present when bit 1 is set)
//! ```
//!
//! The event's revision is the table key and `kv.mod_revision` always equals it, so
//! neither is stored again. A Delete's value is its prev's value, so bit 2 keeps deletes
//! from storing the object twice.
//!
//! Format 2 (what [`encode`] writes) adds flag bit 3, "value in state": a Put's value is
//! not repeated in its event, because it is written to the `kv` table in the same
//! transaction and stays findable: while the key is unchanged the `kv` row (whose
//! `mod_revision` is the event's revision) holds it, and once the key is written again
//! that later event — always inside the retained history, which runs up to the current
//! revision — carries it as its `prev`. [`decode`] leaves such a value empty and reports
//! it; `redb_backend::load` fills it in. Format 1 records (bit 3 never set) still decode.

use bytes::Bytes;

use crate::{Event, EventKind, KeyValue, Revision};

const FORMAT_1: u8 = 1;
const FORMAT: u8 = 2;
const DELETE: u8 = 1;
const HAS_PREV: u8 = 1 << 1;
const VALUE_IS_PREV: u8 = 1 << 2;
const VALUE_IN_STATE: u8 = 1 << 3;

pub(crate) fn encode(event: &Event) -> Vec<u8> {
    let kv = &event.kv;
    let mut flags = 0;
    if event.kind == EventKind::Delete {
        flags |= DELETE;
    }
    let value_is_prev =
        event.kind == EventKind::Delete && event.prev.as_ref().is_some_and(|p| p.value == kv.value);
    let value_in_state = event.kind == EventKind::Put;
    if event.prev.is_some() {
        flags |= HAS_PREV;
    }
    if value_is_prev {
        flags |= VALUE_IS_PREV;
    }
    if value_in_state {
        flags |= VALUE_IN_STATE;
    }
    let own_value = !value_is_prev && !value_in_state;
    let prev_len = event.prev.as_ref().map_or(0, |p| 24 + p.value.len());
    let value_len = if own_value { 8 + kv.value.len() } else { 0 };
    let mut buf = Vec::with_capacity(2 + 8 + 8 + kv.key.len() + value_len + prev_len);
    buf.push(FORMAT);
    buf.push(flags);
    buf.extend_from_slice(&kv.create_revision.to_le_bytes());
    put_bytes(&mut buf, kv.key.as_bytes());
    if own_value {
        put_bytes(&mut buf, &kv.value);
    }
    if let Some(prev) = &event.prev {
        buf.extend_from_slice(&prev.create_revision.to_le_bytes());
        buf.extend_from_slice(&prev.mod_revision.to_le_bytes());
        put_bytes(&mut buf, &prev.value);
    }
    buf
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// An event as decoded: when `value_in_state` is set, `event.kv.value` is empty and the
/// caller must fill it in (see the module comment).
#[derive(Debug, PartialEq)]
pub(crate) struct Decoded {
    pub event: Event,
    pub value_in_state: bool,
}

/// Decodes the event stored under `revision`. Errors describe what is malformed; the
/// caller turns them into `OpenError::Corrupt`.
pub(crate) fn decode(revision: Revision, bytes: &[u8]) -> Result<Decoded, String> {
    let mut r = Reader { bytes };
    let format = r.u8()?;
    if format != FORMAT && format != FORMAT_1 {
        return Err(format!("event {revision}: unknown format {format}"));
    }
    let flags = r.u8()?;
    let value_in_state = flags & VALUE_IN_STATE != 0;
    if value_in_state && (format == FORMAT_1 || flags & (DELETE | VALUE_IS_PREV) != 0) {
        return Err(format!(
            "event {revision}: flags {flags:#x} do not go together"
        ));
    }
    let create_revision = r.u64()?;
    let key = String::from_utf8(r.bytes()?.to_vec())
        .map_err(|_| format!("event {revision}: key is not UTF-8"))?;
    let own_value = if value_in_state {
        Some(Bytes::new())
    } else if flags & VALUE_IS_PREV == 0 {
        Some(Bytes::copy_from_slice(r.bytes()?))
    } else {
        None
    };
    let prev = if flags & HAS_PREV != 0 {
        let create = r.u64()?;
        let modified = r.u64()?;
        let value = Bytes::copy_from_slice(r.bytes()?);
        Some(KeyValue {
            key: key.clone(),
            value,
            create_revision: create,
            mod_revision: modified,
        })
    } else {
        None
    };
    if !r.bytes.is_empty() {
        return Err(format!(
            "event {revision}: {} trailing bytes",
            r.bytes.len()
        ));
    }
    let value = match (own_value, &prev) {
        (Some(v), _) => v,
        (None, Some(p)) => p.value.clone(),
        (None, None) => return Err(format!("event {revision}: value refers to a missing prev")),
    };
    let kind = if flags & DELETE != 0 {
        EventKind::Delete
    } else {
        EventKind::Put
    };
    Ok(Decoded {
        event: Event {
            revision,
            kind,
            kv: KeyValue {
                key,
                value,
                create_revision,
                mod_revision: revision,
            },
            prev,
        },
        value_in_state,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!(
                "truncated: wanted {n} bytes, {} left",
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(raw))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.u64()?).map_err(|_| "length overflows usize".to_string())?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, create: Revision, modified: Revision) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::from(value.to_string()),
            create_revision: create,
            mod_revision: modified,
        }
    }

    #[test]
    fn round_trips_create_update_delete() {
        let events = [
            Event {
                revision: 3,
                kind: EventKind::Put,
                kv: kv("/a", "one", 3, 3),
                prev: None,
            },
            Event {
                revision: 4,
                kind: EventKind::Put,
                kv: kv("/a", "two", 3, 4),
                prev: Some(kv("/a", "one", 3, 3)),
            },
            Event {
                revision: 5,
                kind: EventKind::Put,
                kv: kv("/a", "two", 3, 5),
                prev: Some(kv("/a", "two", 3, 4)),
            },
            Event {
                revision: 6,
                kind: EventKind::Delete,
                kv: kv("/a", "two", 3, 6),
                prev: Some(kv("/a", "two", 3, 5)),
            },
            Event {
                revision: 7,
                kind: EventKind::Put,
                kv: kv("/a", "", 7, 7),
                prev: None,
            },
        ];
        for event in events {
            let decoded = decode(event.revision, &encode(&event)).unwrap();
            // A Put's value is not stored in its event (it is in the state table).
            assert_eq!(decoded.value_in_state, event.kind == EventKind::Put);
            let mut expected = event.clone();
            if decoded.value_in_state {
                expected.kv.value = Bytes::new();
            }
            assert_eq!(decoded.event, expected);
        }
    }

    /// Records written by format 1 (every value stored) still decode.
    #[test]
    fn decodes_format_1() {
        let mut bytes = vec![FORMAT_1, HAS_PREV];
        bytes.extend_from_slice(&3u64.to_le_bytes());
        put_bytes(&mut bytes, b"/a");
        put_bytes(&mut bytes, b"two");
        bytes.extend_from_slice(&3u64.to_le_bytes());
        bytes.extend_from_slice(&3u64.to_le_bytes());
        put_bytes(&mut bytes, b"one");
        let decoded = decode(4, &bytes).unwrap();
        assert!(!decoded.value_in_state);
        assert_eq!(
            decoded.event,
            Event {
                revision: 4,
                kind: EventKind::Put,
                kv: kv("/a", "two", 3, 4),
                prev: Some(kv("/a", "one", 3, 3)),
            }
        );
        // Format 1 never had bit 3.
        bytes[1] |= VALUE_IN_STATE;
        assert!(decode(4, &bytes).is_err());
    }

    #[test]
    fn rejects_truncated_and_garbage_input() {
        let event = Event {
            revision: 9,
            kind: EventKind::Put,
            kv: kv("/k", "value", 9, 9),
            prev: Some(kv("/k", "old", 2, 8)),
        };
        let bytes = encode(&event);
        // (A Put's record ends with its prev; every shorter prefix is truncated.)
        for cut in 0..bytes.len() {
            assert!(decode(9, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(9, &long).is_err());
        assert!(decode(9, &[2, 0]).is_err());
        // A huge length must be an error, not an allocation or a panic.
        let mut huge = vec![FORMAT, 0];
        huge.extend_from_slice(&1u64.to_le_bytes());
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(9, &huge).is_err());
    }
}
