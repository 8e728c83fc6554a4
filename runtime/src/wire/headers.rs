//! The metadata every record carries, and the other Kafka headers.
//!
//! Each record says what it is and where it comes from:
//!
//! | value | CloudEvents header | compact envelope field |
//! |---|---|---|
//! | a fresh UUID per record | `ce_id` | `id` |
//! | the Avro full name of the value's schema | `ce_type` | `type` |
//! | `<node>/<actor>` that published the record | `ce_source` | `source` |
//! | RFC 3339 time of publication | `ce_time` | `time` |
//! | carried unchanged along a chain of actors | `correlation_id` | `correlation_id` |
//! | the `ce_id` of the record being handled when this one was published | `causation_id` | `causation_id` |
//! | W3C trace context, when present | `traceparent`, `tracestate` | `traceparent`, `tracestate` |
//!
//! An actor writes them in its [`Envelope`]: by default one
//! `scribe_envelope` header (see [`crate::wire::envelope`]); as CloudEvents
//! headers (with `ce_specversion` `1.0` and `content-type`
//! [`CONTENT_TYPE_AVRO`]) when configured so. Every reader takes both.

// Over 400 lines with its unit tests (the last third); the code itself
// does one job: the headers, read and written.

use rdkafka::message::{BorrowedHeaders, Header, Headers as _, OwnedHeaders};

use crate::wire::envelope::{self, ENVELOPE, Envelope};

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

/// On a request from a [`Gateway`](crate::Gateway): a reply is awaited,
/// so a responder that cannot answer sends an error reply.
pub const EXPECTS_REPLY: &str = "scribe_expects_reply";
/// On an error reply: why the responder could not answer. The record has
/// no value; readers other than the asking gateway pass it over.
pub const REPLY_ERROR: &str = "scribe_reply_error";
/// The `ce_type` of an error reply.
pub const REPLY_ERROR_TYPE: &str = "scribe.ReplyError";

/// Header carrying the W3C trace context, when a record has one.
pub const TRACEPARENT: &str = "traceparent";
/// Header carrying the W3C trace state, when a record has one.
pub const TRACESTATE: &str = "tracestate";

/// The well-known headers, in the order of [`Headers`]' slots.
const KNOWN: [&str; 10] = [
    CE_ID,
    CE_TYPE,
    CE_SOURCE,
    CE_TIME,
    CE_SPECVERSION,
    CONTENT_TYPE,
    CORRELATION_ID,
    CAUSATION_ID,
    TRACEPARENT,
    TRACESTATE,
];

/// The slots of the compact envelope's fields, in its schema's order.
const ENVELOPE_SLOTS: [usize; envelope::FIELDS] = [0, 1, 2, 3, 6, 7, 8, 9];

/// The slots in the order of the CloudEvents headers a record carries.
const CLOUDEVENTS_ORDER: [usize; KNOWN.len()] = [4, 0, 1, 2, 3, 5, 6, 7, 8, 9];

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
        TRACEPARENT => Some(8),
        TRACESTATE => Some(9),
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
    let mut pairs = Vec::with_capacity(headers.map_or(0, |h| h.count()));
    let mut unreadable = Vec::new();
    each_kafka_pair(
        headers,
        |pair| pairs.push(pair),
        |index| unreadable.push(index),
    );
    (pairs, unreadable)
}

/// [`kafka_pairs`], one at a time, without collecting them.
fn each_kafka_pair<'a>(
    headers: Option<&'a BorrowedHeaders>,
    mut pair: impl FnMut((&'a str, &'a [u8])),
    mut unreadable: impl FnMut(usize),
) {
    let Some(headers) = headers else {
        return;
    };
    for index in 0..headers.count() {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| headers.try_get(index))) {
            Ok(Some(header)) => pair((header.key, header.value.unwrap_or_default())),
            Ok(None) => {}
            Err(_) => unreadable(index),
        }
    }
}

/// The headers of an inbound record, with the well-known ones parsed out:
/// the CloudEvents headers, or the fields of the compact envelope (see
/// [`Envelope`]), whichever the record carries.
///
/// Records from producers that are not scribe nodes may lack any of them.
/// The well-known values share one buffer, so reading a record's headers
/// costs one allocation, not one per header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    text: String,
    known: [Option<(u32, u32)>; KNOWN.len()],
    other: Vec<Other>,
    /// The well-known values came in a compact envelope.
    enveloped: bool,
    /// Why the record's `scribe_envelope` header could not be read (it is
    /// then kept among the others, as it came).
    malformed: Option<String>,
}

impl Headers {
    /// A consumed record's headers, and the position of the first one
    /// dropped because its key is not UTF-8 (see [`kafka_pairs`]).
    pub fn from_kafka(headers: Option<&BorrowedHeaders>) -> (Self, Option<usize>) {
        let mut out = Headers::default();
        let mut first = None;
        each_kafka_pair(
            headers,
            |(key, value)| out.add(key, value),
            |index| {
                first.get_or_insert(index);
            },
        );
        (out, first)
    }

    /// Headers from key and value pairs, in order.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut out = Headers::default();
        for (key, value) in pairs {
            out.add(key, value);
        }
        out
    }

    fn add(&mut self, key: &str, value: &[u8]) {
        if self.text.capacity() == 0 {
            self.text.reserve(192);
        }
        if let Some(slot) = known_slot(key) {
            match std::str::from_utf8(value) {
                Ok(text) => self.set(slot, text),
                Err(_) => self.set(slot, &String::from_utf8_lossy(value)),
            }
            return;
        }
        if key == ENVELOPE {
            match envelope::decode(value) {
                envelope::Read::Fields(fields) => {
                    self.enveloped = true;
                    for (slot, field) in ENVELOPE_SLOTS.into_iter().zip(fields) {
                        if let Some(text) = field {
                            self.set(slot, text);
                        }
                    }
                    return;
                }
                envelope::Read::Foreign => {}
                envelope::Read::Malformed(why) => {
                    self.malformed.get_or_insert(why);
                }
            }
        }
        self.other.push((key.to_owned(), value.to_vec()));
    }

    fn set(&mut self, slot: usize, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        self.known[slot] = Some((start, self.text.len() as u32));
    }

    /// Every header as a key and value pair: the well-known ones first,
    /// under their CloudEvents names, whether they came as CloudEvents
    /// headers or in a compact envelope (which is then not listed itself).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        KNOWN
            .iter()
            .enumerate()
            .filter_map(|(slot, key)| self.known(slot).map(|v| (*key, v.as_bytes())))
            .chain(self.others())
    }

    /// The headers that are not well-known ones.
    fn others(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.other.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
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
    /// `ce_specversion` (a record in a compact envelope has none).
    pub fn spec_version(&self) -> Option<&str> {
        self.known(4)
    }
    /// `content-type` (a record in a compact envelope has none: its
    /// value is always Avro single-object encoding).
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
    /// `traceparent`: the W3C trace context, if the record has one.
    pub fn traceparent(&self) -> Option<&str> {
        self.known(8)
    }
    /// `tracestate`: the W3C trace state, if the record has one.
    pub fn tracestate(&self) -> Option<&str> {
        self.known(9)
    }
    /// How the well-known values came: in a compact envelope, or as
    /// CloudEvents headers (also when the record has none).
    pub fn envelope(&self) -> Envelope {
        if self.enveloped {
            Envelope::Compact
        } else {
            Envelope::CloudEvents
        }
    }
    /// Why the record's `scribe_envelope` header could not be read, if it
    /// could not: the record is then dead-lettered, not handled.
    pub fn malformed_envelope(&self) -> Option<&str> {
        self.malformed.as_deref()
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

    /// The well-known values of a record forwarded as `fresh`: these, with
    /// the ones they lack (but `causation_id`) taken from `fresh`; and
    /// `fresh`'s trace context when it has one (the forwarding span's).
    fn forwarded_known<'a>(&'a self, fresh: &'a Outbound<'a>) -> [Option<&'a str>; KNOWN.len()] {
        let fallback = fresh.known();
        std::array::from_fn(|slot| match slot {
            7 => self.known(slot),
            8 | 9 if fallback[8].is_some() => fallback[slot],
            _ => self.known(slot).or(fallback[slot]),
        })
    }
}

/// Whether `key` is one of the headers a dead letter gains.
pub(crate) fn is_dead_letter(key: &str) -> bool {
    key.starts_with(DLQ_PREFIX)
}

/// Kafka headers from key and value pairs.
pub fn to_kafka<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>) -> OwnedHeaders {
    let (low, _) = pairs.size_hint();
    pairs.fold(
        OwnedHeaders::new_with_capacity(low.max(1)),
        |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        },
    )
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
    /// `traceparent`: the W3C trace context, if it has one.
    pub traceparent: Option<&'a str>,
    /// `tracestate`: the W3C trace state, if it has one.
    pub tracestate: Option<&'a str>,
}

impl<'a> Outbound<'a> {
    /// The headers of a freshly published record, in the CloudEvents form.
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
            (TRACEPARENT, self.traceparent),
            (TRACESTATE, self.tracestate),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v.as_bytes())))
    }

    /// The Kafka headers of a freshly published record in `form`;
    /// `buf` holds the compact envelope while it is copied.
    pub fn to_kafka(&self, form: Envelope, buf: &mut Vec<u8>) -> OwnedHeaders {
        Outgoing::Fresh(self).to_kafka(form, buf)
    }

    /// Its values in the slots of [`KNOWN`].
    fn known(&self) -> [Option<&'a str>; KNOWN.len()] {
        [
            Some(self.id),
            Some(self.ty),
            Some(self.source),
            Some(self.time),
            Some(SPEC_VERSION),
            Some(CONTENT_TYPE_AVRO),
            Some(self.correlation_id),
            self.causation_id,
            self.traceparent,
            self.tracestate,
        ]
    }
}

/// The compact envelope's fields from values in the slots of [`KNOWN`].
fn envelope_fields<'a>(
    known: &[Option<&'a str>; KNOWN.len()],
) -> [Option<&'a str>; envelope::FIELDS] {
    ENVELOPE_SLOTS.map(|slot| known[slot])
}

impl Headers {
    /// The headers of a freshly published record: what reading its Kafka
    /// headers in `form` gives, without writing and parsing them. The
    /// simulator's sink stores these.
    #[cfg(feature = "testing")]
    pub(crate) fn from_outbound(outbound: &Outbound<'_>, form: Envelope) -> Self {
        let mut out = Headers::default();
        out.text.reserve(192);
        out.enveloped = form == Envelope::Compact;
        let known = outbound.known();
        // In the order a consumer reads them.
        let slots: &[usize] = match form {
            Envelope::Compact => &ENVELOPE_SLOTS,
            Envelope::CloudEvents => &CLOUDEVENTS_ORDER,
        };
        for &slot in slots {
            if let Some(value) = known[slot] {
                out.set(slot, value);
            }
        }
        out
    }
}

/// A header that is not a well-known one, as kept.
type Other = (String, Vec<u8>);
/// A header as key and value.
type Pair<'a> = (&'a str, &'a [u8]);

/// The headers of a record being sent, as each sink turns them into its
/// own form: Kafka's header list, or the simulator's [`Headers`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outgoing<'a> {
    /// A published record's: its metadata, in the actor's envelope.
    Fresh(&'a Outbound<'a>),
    /// A forwarded record's: the inbound record's metadata, completed
    /// from the fresh one's (see [`Headers::forwarded_known`]), in the
    /// actor's envelope; its other headers as they came.
    Forwarded(&'a Headers, &'a Outbound<'a>),
    /// A dead letter's: the record's headers in the form they came in,
    /// without any earlier dead letter's headers but its truncation mark,
    /// then `extra`.
    Kept(&'a Headers, &'a [(&'a str, &'a [u8])]),
    /// Fresh metadata, then `extra`: an error reply's (its reason), a
    /// request's (its mark that it expects a reply).
    Answer(&'a Outbound<'a>, &'a [(&'a str, &'a [u8])]),
}

impl<'a> Outgoing<'a> {
    /// Calls `pair` with each Kafka header, in order; `buf` holds a
    /// compact envelope while it is given.
    fn each(self, form: Envelope, buf: &mut Vec<u8>, mut pair: impl FnMut(&str, &[u8])) {
        let (known, form, others, extra): (_, _, &[Other], &[Pair<'_>]) = match self {
            Outgoing::Fresh(outbound) => (outbound.known(), form, &[], &[]),
            Outgoing::Forwarded(inbound, outbound) => {
                (inbound.forwarded_known(outbound), form, &inbound.other, &[])
            }
            Outgoing::Answer(outbound, extra) => (outbound.known(), form, &[], extra),
            Outgoing::Kept(headers, extra) => (
                std::array::from_fn(|slot| headers.known(slot)),
                headers.envelope(),
                &headers.other,
                extra,
            ),
        };
        let kept = matches!(self, Outgoing::Kept(..));
        match form {
            Envelope::Compact if known.iter().any(Option::is_some) => {
                buf.clear();
                envelope::encode(&envelope_fields(&known), buf);
                pair(ENVELOPE, buf);
            }
            Envelope::Compact => {}
            Envelope::CloudEvents => {
                for slot in CLOUDEVENTS_ORDER {
                    if let Some(value) = known[slot] {
                        pair(KNOWN[slot], value.as_bytes());
                    }
                }
            }
        }
        for (key, value) in others {
            let skip = if kept {
                is_dead_letter(key) && key != DLQ_TRUNCATED
            } else {
                // A foreign envelope is not carried beside this one.
                form == Envelope::Compact && key == ENVELOPE
            };
            if !skip {
                pair(key, value);
            }
        }
        for (key, value) in extra {
            pair(key, value);
        }
    }

    /// Kafka's form.
    pub(crate) fn to_kafka(self, form: Envelope, buf: &mut Vec<u8>) -> OwnedHeaders {
        let capacity = match (self, form) {
            (Outgoing::Fresh(_), Envelope::Compact) => 1,
            _ => 10,
        };
        let mut headers = Some(OwnedHeaders::new_with_capacity(capacity));
        self.each(form, buf, |key, value| {
            headers = headers.take().map(|h| {
                h.insert(Header {
                    key,
                    value: Some(value),
                })
            });
        });
        headers.unwrap_or_default()
    }

    /// As a consumer reads them (the simulator's sink).
    #[cfg(feature = "testing")]
    pub(crate) fn to_headers(self, form: Envelope) -> Headers {
        if let Outgoing::Fresh(outbound) = self {
            return Headers::from_outbound(outbound, form);
        }
        let mut out = Headers::default();
        let mut buf = Vec::new();
        self.each(form, &mut buf, |key, value| out.add(key, value));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers a consumer reads from what `outgoing` writes to Kafka.
    fn through_kafka(outgoing: Outgoing<'_>, form: Envelope) -> Headers {
        let mut buf = Vec::new();
        let written = outgoing.to_kafka(form, &mut buf);
        let pairs: Vec<(String, Vec<u8>)> = (0..written.count())
            .map(|i| {
                let h = written.get(i);
                (h.key.to_owned(), h.value.unwrap_or_default().to_vec())
            })
            .collect();
        Headers::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    #[test]
    fn a_published_records_headers_are_built_as_a_consumer_reads_them() {
        let mut fresh = outbound();
        for form in [Envelope::Compact, Envelope::CloudEvents] {
            for cause in [Some("id-1"), None] {
                fresh.causation_id = cause;
                assert_eq!(
                    Headers::from_outbound(&fresh, form),
                    through_kafka(Outgoing::Fresh(&fresh), form),
                    "{form} {cause:?}"
                );
                assert_eq!(
                    Outgoing::Fresh(&fresh).to_headers(form),
                    through_kafka(Outgoing::Fresh(&fresh), form),
                );
            }
        }
    }

    #[test]
    fn a_compact_record_carries_one_header_and_reads_as_cloudevents_would() {
        let fresh = outbound();
        let mut buf = Vec::new();
        let written = fresh.to_kafka(Envelope::Compact, &mut buf);
        assert_eq!(written.count(), 1);
        assert_eq!(written.get(0).key, ENVELOPE);
        let compact = through_kafka(Outgoing::Fresh(&fresh), Envelope::Compact);
        let events = Headers::from_pairs(fresh.pairs());
        assert_eq!(compact.envelope(), Envelope::Compact);
        assert_eq!(events.envelope(), Envelope::CloudEvents);
        for read in [&compact, &events] {
            assert_eq!(read.id(), Some("id-2"));
            assert_eq!(read.ce_type(), Some("t.Fresh"));
            assert_eq!(read.source(), Some("n/a"));
            assert_eq!(read.time(), Some("2026-01-01T00:00:00.000Z"));
            assert_eq!(read.correlation_id(), Some("corr-2"));
            assert_eq!(read.causation_id(), Some("id-1"));
        }
        assert_eq!(compact.spec_version(), None);
        assert_eq!(compact.get(ENVELOPE), None, "read, not kept");
    }

    #[test]
    fn a_malformed_envelope_is_kept_as_it_came_and_named() {
        let mut buf = Vec::new();
        let fresh = outbound();
        let written = fresh.to_kafka(Envelope::Compact, &mut buf);
        let mut bytes = written.get(0).value.unwrap().to_vec();
        bytes.truncate(bytes.len() - 4);
        let read = Headers::from_pairs([(ENVELOPE, bytes.as_slice())]);
        assert!(read.malformed_envelope().is_some());
        assert_eq!(read.id(), None);
        let letter = through_kafka(Outgoing::Kept(&read, &[]), Envelope::Compact);
        assert_eq!(letter.get(ENVELOPE), Some(bytes.as_slice()), "verbatim");
    }

    #[test]
    fn a_dead_letter_keeps_the_form_its_record_came_in() {
        let fresh = outbound();
        let extra = [(DLQ_ERROR, &b"boom"[..])];
        for form in [Envelope::Compact, Envelope::CloudEvents] {
            let read = through_kafka(Outgoing::Fresh(&fresh), form);
            // Whatever the dead-lettering actor itself writes.
            for writer in [Envelope::Compact, Envelope::CloudEvents] {
                let letter = through_kafka(Outgoing::Kept(&read, &extra), writer);
                assert_eq!(letter.envelope(), form);
                assert_eq!(letter.without_dead_letter(), read);
                assert_eq!(letter.get(DLQ_ERROR), Some(&b"boom"[..]));
            }
        }
    }

    fn outbound() -> Outbound<'static> {
        Outbound {
            id: "id-2",
            ty: "t.Fresh",
            source: "n/a",
            time: "2026-01-01T00:00:00.000Z",
            correlation_id: "corr-2",
            causation_id: Some("id-1"),
            traceparent: None,
            tracestate: None,
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
            traceparent: None,
            tracestate: None,
            ..fresh
        };
        assert!(!no_cause.pairs().any(|(k, _)| k == CAUSATION_ID));
    }

    #[test]
    fn a_forwarded_record_keeps_its_own_headers_and_fills_in_the_missing_ones() {
        let inbound = Headers::from_pairs([(CE_ID, &b"id-1"[..]), ("x-trace", b"t")]);
        let fresh = outbound();
        for form in [Envelope::Compact, Envelope::CloudEvents] {
            let forwarded = through_kafka(Outgoing::Forwarded(&inbound, &fresh), form);
            assert_eq!(forwarded.envelope(), form);
            assert_eq!(forwarded.id(), Some("id-1"), "the original event's id");
            assert_eq!(forwarded.ce_type(), Some("t.Fresh"), "filled in");
            assert_eq!(forwarded.correlation_id(), Some("corr-2"));
            assert_eq!(forwarded.causation_id(), None, "never invented");
            assert_eq!(forwarded.get("x-trace"), Some(&b"t"[..]));
            assert_eq!(
                Outgoing::Forwarded(&inbound, &fresh).to_headers(form),
                forwarded,
                "the simulator's sink"
            );
        }
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
