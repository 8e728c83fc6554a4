//! Headers written as a consumer reads them, in either envelope, and the
//! parsing of what any producer writes.

use rdkafka::message::Headers as _;

use super::names::*;
use super::read::Headers;
use super::write::{Outbound, Outgoing};
use crate::wire::envelope::{ENVELOPE, Envelope};

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
