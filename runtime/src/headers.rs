//! Kafka headers every record carries, after the CloudEvents Kafka binding.
//!
//! | header | value |
//! |---|---|
//! | `ce_specversion` | `1.0` |
//! | `ce_id` | a fresh UUID per record |
//! | `ce_type` | the Avro full name of the value's schema |
//! | `ce_source` | `<node>/<actor>` that published the record |
//! | `ce_time` | RFC 3339 time of publication |
//! | `content-type` | [`CONTENT_TYPE_AVRO`] |
//! | `correlation_id` | carried unchanged along a chain of actors |
//! | `causation_id` | the `ce_id` of the record being handled when this one was published |

// Over 400 lines with its unit tests (the last third); the code itself
// does one job: the headers, read and written.

use rdkafka::message::{BorrowedHeaders, Header, Headers as _, OwnedHeaders};

/// Header carrying the CloudEvents spec version.
pub const CE_SPECVERSION: &str = "ce_specversion";
/// Header carrying the event id.
pub const CE_ID: &str = "ce_id";
/// Header carrying the event type (the Avro full name).
pub const CE_TYPE: &str = "ce_type";
/// Header carrying the event source (`node/actor`).
pub const CE_SOURCE: &str = "ce_source";
/// Header carrying the event time (RFC 3339).
pub const CE_TIME: &str = "ce_time";
/// Header carrying the content type.
pub const CONTENT_TYPE: &str = "content-type";
/// Header carrying the correlation id shared by a whole chain.
pub const CORRELATION_ID: &str = "correlation_id";
/// Header carrying the `ce_id` of the record that caused this one.
pub const CAUSATION_ID: &str = "causation_id";
/// What the names of every dead-letter header start with.
const DLQ_PREFIX: &str = "scribe_dlq_";
/// On a dead letter: why the record could not be handled.
pub const DLQ_ERROR: &str = "scribe_dlq_error";
/// On a dead letter: how many times handling was tried (0: never, it could not be decoded).
pub const DLQ_ATTEMPTS: &str = "scribe_dlq_attempts";
/// On a dead letter: the actor that gave up on it.
pub const DLQ_ACTOR: &str = "scribe_dlq_actor";
/// On a dead letter: the topic it was read from.
pub const DLQ_TOPIC: &str = "scribe_dlq_topic";
/// On a dead letter: the partition it was read from.
pub const DLQ_PARTITION: &str = "scribe_dlq_partition";
/// On a dead letter: its offset there.
pub const DLQ_OFFSET: &str = "scribe_dlq_offset";
/// On a dead letter that is only part of its record, because the whole
/// record did not fit the producer's `message.max.bytes`: what was kept,
/// as `value K of N bytes` (and `, key dropped` when it was). Such a dead
/// letter is not replayed.
pub const DLQ_TRUNCATED: &str = "scribe_dlq_truncated";
/// The CloudEvents spec version scribe writes.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of every value: Avro single-object encoding.
pub const CONTENT_TYPE_AVRO: &str = "application/avro";

/// The well-known headers, in the order of [`Headers`]' slots.
const KNOWN: [&str; 8] = [
    CE_ID,
    CE_TYPE,
    CE_SOURCE,
    CE_TIME,
    CE_SPECVERSION,
    CONTENT_TYPE,
    CORRELATION_ID,
    CAUSATION_ID,
];

/// The slot of a well-known header in [`KNOWN`]: one comparison by
/// length and bytes, not one per known key.
fn known_slot(key: &str) -> Option<usize> {
    match key {
        CE_ID => Some(0),
        CE_TYPE => Some(1),
        CE_SOURCE => Some(2),
        CE_TIME => Some(3),
        CE_SPECVERSION => Some(4),
        CONTENT_TYPE => Some(5),
        CORRELATION_ID => Some(6),
        CAUSATION_ID => Some(7),
        _ => None,
    }
}

/// Every header of a consumed record as (key, value), and the positions
/// of the headers left out because their key is not UTF-8.
///
/// Anyone may write such a key (Kafka's keys are bytes on the wire), but
/// rust-rdkafka's accessor panics on it. Each header is read under a guard
/// (free unless it trips), so one bad key costs only its own header.
pub fn kafka_pairs(headers: Option<&BorrowedHeaders>) -> (Vec<(&str, &[u8])>, Vec<usize>) {
    let Some(headers) = headers else {
        return (Vec::new(), Vec::new());
    };
    let mut pairs = Vec::with_capacity(headers.count());
    let mut unreadable = Vec::new();
    for index in 0..headers.count() {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| headers.try_get(index))) {
            Ok(Some(header)) => pairs.push((header.key, header.value.unwrap_or_default())),
            Ok(None) => {}
            Err(_) => unreadable.push(index),
        }
    }
    (pairs, unreadable)
}

/// The headers of an inbound record, with the well-known ones parsed out.
///
/// Records from producers that are not scribe nodes may lack any of them.
/// The well-known values share one buffer, so reading a record's headers
/// costs one allocation, not one per header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    text: String,
    known: [Option<(u32, u32)>; KNOWN.len()],
    other: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// A consumed record's headers, and the position of the first one
    /// dropped because its key is not UTF-8 (see [`kafka_pairs`]).
    pub(crate) fn from_kafka(headers: Option<&BorrowedHeaders>) -> (Self, Option<usize>) {
        let (pairs, unreadable) = kafka_pairs(headers);
        (Headers::from_pairs(pairs), unreadable.first().copied())
    }

    /// Headers from key and value pairs, in order.
    pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut out = Headers::default();
        out.text.reserve(192);
        for (key, value) in pairs {
            match known_slot(key) {
                Some(slot) => {
                    let start = out.text.len() as u32;
                    match std::str::from_utf8(value) {
                        Ok(text) => out.text.push_str(text),
                        Err(_) => out.text.push_str(&String::from_utf8_lossy(value)),
                    }
                    out.known[slot] = Some((start, out.text.len() as u32));
                }
                None => out.other.push((key.to_owned(), value.to_vec())),
            }
        }
        out
    }

    /// Every header as a key and value pair: the well-known ones first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        KNOWN
            .iter()
            .enumerate()
            .filter_map(|(slot, key)| self.known(slot).map(|v| (*key, v.as_bytes())))
            .chain(self.other.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    fn known(&self, slot: usize) -> Option<&str> {
        self.known[slot].map(|(start, end)| &self.text[start as usize..end as usize])
    }

    /// `ce_id`: this record's unique id.
    pub fn id(&self) -> Option<&str> {
        self.known(0)
    }
    /// `ce_type`: the Avro full name of the writer's schema.
    pub fn ce_type(&self) -> Option<&str> {
        self.known(1)
    }
    /// `ce_source`: `node/actor` that published the record.
    pub fn source(&self) -> Option<&str> {
        self.known(2)
    }
    /// `ce_time`: when the record was published (RFC 3339).
    pub fn time(&self) -> Option<&str> {
        self.known(3)
    }
    /// `ce_specversion`.
    pub fn spec_version(&self) -> Option<&str> {
        self.known(4)
    }
    /// `content-type`.
    pub fn content_type(&self) -> Option<&str> {
        self.known(5)
    }
    /// `correlation_id`: shared by every record of one chain.
    pub fn correlation_id(&self) -> Option<&str> {
        self.known(6)
    }
    /// `causation_id`: the `ce_id` of the record whose handling published this one.
    pub fn causation_id(&self) -> Option<&str> {
        self.known(7)
    }
    /// These headers without the `scribe_dlq_*` ones a dead letter
    /// carries: a record being replayed, as it was first written.
    pub(crate) fn without_dead_letter(&self) -> Headers {
        let mut out = self.clone();
        // A part of a record stays marked as such.
        out.other
            .retain(|(key, _)| !is_dead_letter(key) || key == DLQ_TRUNCATED);
        out
    }

    /// Any other header, by key (the first one when repeated).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.other
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

impl Headers {
    /// The headers a forwarded record carries: these, in the same order of
    /// well-known ones, with the well-known ones they lack (but
    /// `causation_id`) taken from `fresh`.
    pub(crate) fn forwarded<'a>(
        &'a self,
        fresh: &'a Outbound<'a>,
    ) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        let fallback = [
            Some(fresh.id),
            Some(fresh.ty),
            Some(fresh.source),
            Some(fresh.time),
            Some(SPEC_VERSION),
            Some(CONTENT_TYPE_AVRO),
            Some(fresh.correlation_id),
            None,
        ];
        let known = KNOWN
            .iter()
            .zip(fallback)
            .enumerate()
            .filter_map(|(slot, (key, fallback))| {
                self.known(slot).or(fallback).map(|v| (*key, v.as_bytes()))
            });
        let other = self.other.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
        known.chain(other)
    }
}

/// Whether `key` is one of the headers a dead letter gains.
pub(crate) fn is_dead_letter(key: &str) -> bool {
    key.starts_with(DLQ_PREFIX)
}

/// Kafka headers from key and value pairs.
pub fn to_kafka<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>) -> OwnedHeaders {
    pairs.fold(OwnedHeaders::new_with_capacity(10), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value),
        })
    })
}

/// The values a publisher writes into the headers of one record: the
/// CloudEvents attributes and the correlation and causation ids. Tools that
/// write records as an actor would (`scribe produce`) use it too.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    /// `ce_id`: the record's own id.
    pub id: &'a str,
    /// `ce_type`: the Avro full name of its value.
    pub ty: &'a str,
    /// `ce_source`: `node/actor`.
    pub source: &'a str,
    /// `ce_time`: RFC 3339.
    pub time: &'a str,
    /// `correlation_id`: shared by a whole chain of records.
    pub correlation_id: &'a str,
    /// `causation_id`: the `ce_id` of the record that caused it, if any.
    pub causation_id: Option<&'a str>,
}

impl<'a> Outbound<'a> {
    /// The headers of a freshly published record.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + use<'a> {
        [
            (CE_SPECVERSION, Some(SPEC_VERSION)),
            (CE_ID, Some(self.id)),
            (CE_TYPE, Some(self.ty)),
            (CE_SOURCE, Some(self.source)),
            (CE_TIME, Some(self.time)),
            (CONTENT_TYPE, Some(CONTENT_TYPE_AVRO)),
            (CORRELATION_ID, Some(self.correlation_id)),
            (CAUSATION_ID, self.causation_id),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v.as_bytes())))
    }
}

impl Headers {
    /// The headers of a freshly published record: what
    /// `Headers::from_pairs(outbound.pairs())` gives, without matching keys
    /// or checking text that is text already. The simulator's sink stores
    /// these.
    #[cfg(feature = "testing")]
    pub(crate) fn from_outbound(outbound: &Outbound<'_>) -> Self {
        let mut out = Headers::default();
        out.text.reserve(192);
        let fields = [
            (4, Some(SPEC_VERSION)),
            (0, Some(outbound.id)),
            (1, Some(outbound.ty)),
            (2, Some(outbound.source)),
            (3, Some(outbound.time)),
            (5, Some(CONTENT_TYPE_AVRO)),
            (6, Some(outbound.correlation_id)),
            (7, outbound.causation_id),
        ];
        for (slot, value) in fields {
            if let Some(value) = value {
                let start = out.text.len() as u32;
                out.text.push_str(value);
                out.known[slot] = Some((start, out.text.len() as u32));
            }
        }
        out
    }
}

/// The headers of a record being sent, as each sink turns them into its
/// own form: Kafka's header list, or the simulator's [`Headers`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outgoing<'a> {
    /// A published record's: its CloudEvents headers.
    Fresh(&'a Outbound<'a>),
    /// A forwarded record's: the inbound record's, completed (see
    /// [`Headers::forwarded`]).
    Forwarded(&'a Headers, &'a Outbound<'a>),
    /// As given (a dead letter's).
    Pairs(&'a [(&'a str, &'a [u8])]),
}

impl Outgoing<'_> {
    /// Kafka's form.
    pub(crate) fn to_kafka(self) -> OwnedHeaders {
        match self {
            Outgoing::Fresh(outbound) => to_kafka(outbound.pairs()),
            Outgoing::Forwarded(inbound, outbound) => to_kafka(inbound.forwarded(outbound)),
            Outgoing::Pairs(pairs) => to_kafka(pairs.iter().copied()),
        }
    }

    /// As a consumer reads them (the simulator's sink).
    #[cfg(feature = "testing")]
    pub(crate) fn to_headers(self) -> Headers {
        match self {
            Outgoing::Fresh(outbound) => Headers::from_outbound(outbound),
            Outgoing::Forwarded(inbound, outbound) => {
                Headers::from_pairs(inbound.forwarded(outbound))
            }
            Outgoing::Pairs(pairs) => Headers::from_pairs(pairs.iter().copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_records_headers_are_built_as_from_its_pairs() {
        let mut fresh = outbound();
        assert_eq!(
            Headers::from_outbound(&fresh),
            Headers::from_pairs(fresh.pairs())
        );
        fresh.causation_id = None;
        assert_eq!(
            Headers::from_outbound(&fresh),
            Headers::from_pairs(fresh.pairs())
        );
    }

    fn outbound() -> Outbound<'static> {
        Outbound {
            id: "id-2",
            ty: "t.Fresh",
            source: "n/a",
            time: "2026-01-01T00:00:00.000Z",
            correlation_id: "corr-2",
            causation_id: Some("id-1"),
        }
    }

    #[test]
    fn each_known_key_has_its_own_slot() {
        for (slot, key) in KNOWN.iter().enumerate() {
            assert_eq!(known_slot(key), Some(slot), "{key}");
        }
        assert_eq!(known_slot("ce_idx"), None);
    }

    #[test]
    fn well_known_headers_are_parsed_and_others_kept_in_order() {
        let headers = Headers::from_pairs([
            ("x-b", &b"2"[..]),
            (CE_ID, b"id-1"),
            (CORRELATION_ID, b"corr-1"),
            ("x-a", b"1"),
            (CE_TYPE, b"t.T"),
        ]);
        assert_eq!(headers.id(), Some("id-1"));
        assert_eq!(headers.ce_type(), Some("t.T"));
        assert_eq!(headers.correlation_id(), Some("corr-1"));
        assert_eq!(headers.causation_id(), None);
        assert_eq!(headers.get("x-a"), Some(&b"1"[..]));
        let keys: Vec<&str> = headers.iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"x-b") && keys.contains(&CE_ID), "{keys:?}");
        let others: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| k.starts_with("x-"))
            .collect();
        assert_eq!(others, ["x-b", "x-a"], "other headers keep their order");
    }

    #[test]
    fn a_well_known_value_that_is_not_utf8_is_read_lossily() {
        let headers = Headers::from_pairs([(CE_SOURCE, &b"node/\xff"[..])]);
        assert_eq!(headers.source(), Some("node/\u{fffd}"));
    }

    #[test]
    fn a_fresh_record_carries_every_cloudevents_header() {
        let fresh = outbound();
        let pairs: Vec<(&str, &[u8])> = fresh.pairs().collect();
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                CE_SPECVERSION,
                CE_ID,
                CE_TYPE,
                CE_SOURCE,
                CE_TIME,
                CONTENT_TYPE,
                CORRELATION_ID,
                CAUSATION_ID
            ]
        );
        let no_cause = Outbound {
            causation_id: None,
            ..fresh
        };
        assert!(!no_cause.pairs().any(|(k, _)| k == CAUSATION_ID));
    }

    #[test]
    fn a_forwarded_record_keeps_its_own_headers_and_fills_in_the_missing_ones() {
        let inbound = Headers::from_pairs([(CE_ID, &b"id-1"[..]), ("x-trace", b"t")]);
        let fresh = outbound();
        let forwarded = Headers::from_pairs(inbound.forwarded(&fresh));
        assert_eq!(forwarded.id(), Some("id-1"), "the original event's id");
        assert_eq!(forwarded.ce_type(), Some("t.Fresh"), "filled in");
        assert_eq!(forwarded.correlation_id(), Some("corr-2"));
        assert_eq!(forwarded.causation_id(), None, "never invented");
        assert_eq!(forwarded.get("x-trace"), Some(&b"t"[..]));
    }

    #[test]
    fn replaying_drops_dead_letter_headers_but_keeps_the_truncation_mark() {
        let letter = Headers::from_pairs([
            (CE_ID, &b"id-1"[..]),
            (DLQ_ERROR, b"boom"),
            (DLQ_OFFSET, b"7"),
            (DLQ_TRUNCATED, b"value 10 of 20 bytes"),
            ("x-a", b"1"),
        ]);
        let replayed = letter.without_dead_letter();
        assert_eq!(replayed.get(DLQ_ERROR), None);
        assert_eq!(replayed.get(DLQ_OFFSET), None);
        assert_eq!(
            replayed.get(DLQ_TRUNCATED),
            Some(&b"value 10 of 20 bytes"[..])
        );
        assert_eq!(replayed.get("x-a"), Some(&b"1"[..]));
        assert_eq!(replayed.id(), Some("id-1"));
    }
}
