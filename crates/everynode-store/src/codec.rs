//! The byte encodings of the redb file (see `DESIGN.md`).
//!
//! **Records** (format 3, what the store writes): the `revisions` table holds one record
//! per write, under the write's revision.
//!
//! ```text
//! format:          u8 = 3
//! flags:           u8   bit 0: Delete (else Put)
//! create_revision: u64 LE
//! prev_revision:   u64 LE   the revision of the key's previous record (0: none, a create)
//! key:             u64 LE length, UTF-8 bytes
//! value:           u64 LE length, bytes   (Put only; a Delete's value is its prev's)
//! ```
//!
//! A write's value is stored once, in its own record; the previous state an event
//! carries is the record its `prev_revision` names, kept as long as the event is in the
//! history (`redb_backend`).
//!
//! **Events** (formats 1 and 2, written by earlier versions into the `events` table;
//! read once, when such a file is opened and converted):
//!
//! ```text
//! format: u8 = 1 or 2
//! flags:  u8   bit 0: Delete (else Put)   bit 1: has prev   bit 2: kv.value == prev.value (not repeated)
//!              bit 3 (format 2): a Put's value is not in the event (it is in `kv`, or the key's next event's prev)
//! create_revision: u64 LE
//! key:    u64 LE length, UTF-8 bytes
//! value:  u64 LE length, bytes            (absent when bit 2 or bit 3 is set)
//! prev:   create u64 LE, mod u64 LE, value (u64 LE length, bytes)   (present when bit 1 is set)
//! ```

use bytes::Bytes;

use crate::{Event, EventKind, KeyValue, Revision};

const FORMAT_1: u8 = 1;
const FORMAT: u8 = 2;
const RECORD_FORMAT: u8 = 3;
const DELETE: u8 = 1;
const HAS_PREV: u8 = 1 << 1;
const VALUE_IS_PREV: u8 = 1 << 2;
const VALUE_IN_STATE: u8 = 1 << 3;

/// An event in format 2 (files of earlier versions; the tests write such files).
#[cfg(test)]
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

/// One write as the `revisions` table keeps it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    pub delete: bool,
    pub create_revision: Revision,
    /// The revision of the key's previous record (None: the write created the key).
    pub prev: Option<Revision>,
    pub key: String,
    /// Empty for a Delete.
    pub value: Bytes,
}

/// The record of `event` (its revision is the table key).
pub(crate) fn encode_record(event: &Event) -> Vec<u8> {
    let kv = &event.kv;
    let delete = event.kind == EventKind::Delete;
    let value: &[u8] = if delete { &[] } else { &kv.value };
    let mut buf = Vec::with_capacity(2 + 8 + 8 + 8 + kv.key.len() + 8 + value.len());
    buf.push(RECORD_FORMAT);
    buf.push(if delete { DELETE } else { 0 });
    buf.extend_from_slice(&kv.create_revision.to_le_bytes());
    let prev = event.prev.as_ref().map_or(0, |p| p.mod_revision);
    buf.extend_from_slice(&prev.to_le_bytes());
    put_bytes(&mut buf, kv.key.as_bytes());
    if !delete {
        put_bytes(&mut buf, value);
    }
    buf
}

/// Decodes the record stored under `revision`; errors describe what is malformed.
pub(crate) fn decode_record(revision: Revision, bytes: &[u8]) -> Result<Record, String> {
    let mut r = Reader { bytes };
    let format = r.u8()?;
    if format != RECORD_FORMAT {
        return Err(format!("record {revision}: unknown format {format}"));
    }
    let flags = r.u8()?;
    if flags & !DELETE != 0 {
        return Err(format!("record {revision}: unknown flags {flags:#x}"));
    }
    let delete = flags & DELETE != 0;
    let create_revision = r.u64()?;
    let prev = r.u64()?;
    if create_revision == 0 || create_revision > revision || prev >= revision {
        return Err(format!(
            "record {revision}: revisions out of order (created {create_revision}, previous {prev})"
        ));
    }
    if delete && prev == 0 {
        return Err(format!(
            "record {revision}: a deletion without a previous record"
        ));
    }
    let key = String::from_utf8(r.bytes()?.to_vec())
        .map_err(|_| format!("record {revision}: key is not UTF-8"))?;
    let value = if delete {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(r.bytes()?)
    };
    if !r.bytes.is_empty() {
        return Err(format!(
            "record {revision}: {} trailing bytes",
            r.bytes.len()
        ));
    }
    Ok(Record {
        delete,
        create_revision,
        prev: (prev != 0).then_some(prev),
        key,
        value,
    })
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// An event (formats 1 and 2) as decoded: when `value_in_state` is set, `event.kv.value` is empty and the
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

    /// The event of a write: its revision is its `kv`'s mod revision.
    fn event(kind: EventKind, kv: KeyValue, prev: Option<KeyValue>) -> Event {
        Event {
            revision: kv.mod_revision,
            kind,
            kv,
            prev,
        }
    }

    fn put(kv: KeyValue, prev: Option<KeyValue>) -> Event {
        event(EventKind::Put, kv, prev)
    }

    fn delete(kv: KeyValue, prev: Option<KeyValue>) -> Event {
        event(EventKind::Delete, kv, prev)
    }

    #[test]
    fn round_trips_create_update_delete() {
        let events = [
            put(kv("/a", "one", 3, 3), None),
            put(kv("/a", "two", 3, 4), Some(kv("/a", "one", 3, 3))),
            put(kv("/a", "two", 3, 5), Some(kv("/a", "two", 3, 4))),
            delete(kv("/a", "two", 3, 6), Some(kv("/a", "two", 3, 5))),
            put(kv("/a", "", 7, 7), None),
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

    /// `bytes` decodes, and no prefix of it nor it with a byte more does.
    fn assert_only_whole(bytes: &[u8], decodes: impl Fn(&[u8]) -> bool) {
        assert!(decodes(bytes));
        for cut in 0..bytes.len() {
            assert!(!decodes(&bytes[..cut]), "cut at {cut}");
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(!decodes(&long));
    }

    #[test]
    fn records_round_trip_and_store_each_value_once() {
        let update = put(kv("/a", "two", 3, 4), Some(kv("/a", "one", 3, 3)));
        let bytes = encode_record(&update);
        assert_eq!(bytes.windows(3).filter(|w| w == b"one").count(), 0);
        assert_eq!(
            decode_record(4, &bytes).unwrap(),
            Record {
                delete: false,
                create_revision: 3,
                prev: Some(3),
                key: "/a".into(),
                value: Bytes::from_static(b"two"),
            }
        );
        let create = Event {
            prev: None,
            ..update.clone()
        };
        assert_eq!(
            decode_record(4, &encode_record(&create)).unwrap().prev,
            None
        );
        let removal = delete(kv("/a", "two", 3, 5), Some(kv("/a", "two", 3, 4)));
        let bytes = encode_record(&removal);
        assert!(!bytes.windows(3).any(|w| w == b"two"));
        let record = decode_record(5, &bytes).unwrap();
        assert!(record.delete);
        assert_eq!((record.prev, record.value.len()), (Some(4), 0));
    }

    #[test]
    fn rejects_truncated_and_inconsistent_records() {
        let event = put(kv("/k", "value", 2, 9), Some(kv("/k", "old", 2, 8)));
        let bytes = encode_record(&event);
        assert_only_whole(&bytes, |b| decode_record(9, b).is_ok());
        // Stored under a revision its previous record is not older than.
        assert!(decode_record(8, &bytes).is_err());
        // Unknown flags, and a deletion with nothing before it.
        let mut flags = bytes.clone();
        flags[1] = 0x80;
        assert!(decode_record(9, &flags).is_err());
        let orphan = Event {
            kind: EventKind::Delete,
            prev: None,
            ..event
        };
        assert!(decode_record(9, &encode_record(&orphan)).is_err());
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
            put(kv("/a", "two", 3, 4), Some(kv("/a", "one", 3, 3)))
        );
        // Format 1 never had bit 3.
        bytes[1] |= VALUE_IN_STATE;
        assert!(decode(4, &bytes).is_err());
    }

    #[test]
    fn rejects_truncated_and_garbage_input() {
        let event = put(kv("/k", "value", 9, 9), Some(kv("/k", "old", 2, 8)));
        let bytes = encode(&event);
        // (A Put's record ends with its prev; every shorter prefix is truncated.)
        assert_only_whole(&bytes, |b| decode(9, b).is_ok());
        assert!(decode(9, &[2, 0]).is_err());
        // A huge length must be an error, not an allocation or a panic.
        let mut huge = vec![FORMAT, 0];
        huge.extend_from_slice(&1u64.to_le_bytes());
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(9, &huge).is_err());
    }
}
