//! Reading a record's headers: [`Headers`], the well-known values parsed
//! out of CloudEvents headers or a compact envelope, the others kept.

use rdkafka::message::BorrowedMessage;

use super::names::*;
use super::raw::{self, UnreadableKey};
use crate::wire::envelope::{self, ENVELOPE, Envelope};

/// A header that is not a well-known one, as kept.
pub(super) type Other = (String, Vec<u8>);

/// The headers of an inbound record, with the well-known ones parsed out:
/// the CloudEvents headers, or the fields of the compact envelope (see
/// [`Envelope`]), whichever the record carries.
///
/// Records from producers that are not scribe nodes may lack any of them.
/// The well-known values share one buffer, so reading a record's headers
/// costs one allocation, not one per header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub(super) text: String,
    known: [Option<(u32, u32)>; KNOWN.len()],
    pub(super) other: Vec<Other>,
    /// The well-known values came in a compact envelope.
    pub(super) enveloped: bool,
    /// Why the record's `scribe_envelope` header could not be read (it is
    /// then kept among the others, as it came).
    malformed: Option<String>,
}

impl Headers {
    /// A consumed record's headers, and the first one left out because
    /// its key is not UTF-8, if any (see [`kafka_pairs`](super::kafka_pairs)).
    pub fn from_kafka(message: &BorrowedMessage<'_>) -> (Self, Option<UnreadableKey>) {
        let mut out = Headers::default();
        let mut first = None;
        raw::each_pair(
            message,
            |key, value| out.add(key, value),
            |key| {
                first.get_or_insert(key);
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

    pub(super) fn add(&mut self, key: &str, value: &[u8]) {
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

    pub(super) fn set(&mut self, slot: usize, value: &str) {
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

    pub(super) fn known(&self, slot: usize) -> Option<&str> {
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
}
