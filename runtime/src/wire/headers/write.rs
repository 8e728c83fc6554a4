//! Writing a record's headers: the metadata a publisher gives a record
//! ([`Outbound`]), and the headers each kind of record sent carries, in
//! Kafka's form or as the simulator stores them ([`Outgoing`]).

use rdkafka::message::{Header, OwnedHeaders};

use super::names::*;
use super::read::{Headers, Other};
use crate::wire::envelope::{self, ENVELOPE, Envelope};

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
    pub(super) fn known(&self) -> [Option<&'a str>; KNOWN.len()] {
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
    /// Only these headers, no metadata: a changelog record's.
    Bare(&'a [(&'a str, &'a [u8])]),
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
            Outgoing::Bare(extra) => ([None; KNOWN.len()], form, &[], extra),
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
