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

use bytes::Bytes;

use crate::{Event, EventKind, KeyValue, Revision};

const FORMAT: u8 = 1;
const DELETE: u8 = 1;
const HAS_PREV: u8 = 1 << 1;
const VALUE_IS_PREV: u8 = 1 << 2;

pub(crate) fn encode(event: &Event) -> Vec<u8> {
    let kv = &event.kv;
    let mut flags = 0;
    if event.kind == EventKind::Delete {
        flags |= DELETE;
    }
    let value_is_prev = event.prev.as_ref().is_some_and(|p| p.value == kv.value);
    if event.prev.is_some() {
        flags |= HAS_PREV;
    }
    if value_is_prev {
        flags |= VALUE_IS_PREV;
    }
    let prev_len = event.prev.as_ref().map_or(0, |p| 24 + p.value.len());
    let value_len = if value_is_prev { 0 } else { 8 + kv.value.len() };
    let mut buf = Vec::with_capacity(2 + 8 + 8 + kv.key.len() + value_len + prev_len);
    buf.push(FORMAT);
    buf.push(flags);
    buf.extend_from_slice(&kv.create_revision.to_le_bytes());
    put_bytes(&mut buf, kv.key.as_bytes());
    if !value_is_prev {
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

/// Decodes the event stored under `revision`. Errors describe what is malformed; the
/// caller turns them into `OpenError::Corrupt`.
pub(crate) fn decode(revision: Revision, bytes: &[u8]) -> Result<Event, String> {
    let mut r = Reader { bytes };
    let format = r.u8()?;
    if format != FORMAT {
        return Err(format!("event {revision}: unknown format {format}"));
    }
    let flags = r.u8()?;
    let create_revision = r.u64()?;
    let key = String::from_utf8(r.bytes()?.to_vec())
        .map_err(|_| format!("event {revision}: key is not UTF-8"))?;
    let own_value = if flags & VALUE_IS_PREV == 0 {
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
    Ok(Event {
        revision,
        kind,
        kv: KeyValue {
            key,
            value,
            create_revision,
            mod_revision: revision,
        },
        prev,
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
            let decoded = decode(event.revision, &encode(&event));
            assert_eq!(decoded, Ok(event));
        }
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
