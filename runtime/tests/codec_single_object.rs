//! Values are Avro single-object encoded, and readers resolve writer schemas
//! found by fingerprint.

use apache_avro::{AvroSchema, Schema};
use scribe::codec::{Decoder, Encoder, SINGLE_OBJECT_MARKER};
use scribe::{DecodeError, SchemaRegistry};
use scribe_schemas::{Alarm, AlarmState};
use serde::{Deserialize, Serialize};

use scribe_schemas::metrics::v1::HostMetrics as HostMetricsV1;

/// A different record that happens to share the full name but not the shape.
mod clash {
    use super::*;
    #[derive(Debug, Clone, Serialize, Deserialize, AvroSchema)]
    #[avro(namespace = "scribe.metrics")]
    pub(super) struct HostMetrics {
        pub(super) host: i64,
    }
}

/// CRC-64-AVRO as the Avro specification gives it, written from the spec.
fn spec_fingerprint(canonical: &str) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let table: Vec<u64> = (0..256u64)
        .map(|i| (0..8).fold(i, |fp, _| (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg())))
        .collect();
    canonical.bytes().fold(EMPTY, |fp, b| {
        (fp >> 8) ^ table[((fp ^ b as u64) & 0xff) as usize]
    })
}

fn sample() -> scribe_schemas::HostMetrics {
    scribe_schemas::HostMetrics {
        host: "h1".into(),
        cpu_percent: 12.5,
        mem_used_percent: 40.0,
        load1: 0.75,
        sampled_at_ms: 1_700_000_000_000,
    }
}

#[test]
fn encoding_is_marker_then_spec_fingerprint_then_datum() {
    let encoder = Encoder::<scribe_schemas::HostMetrics>::new().unwrap();
    let mut bytes = Vec::new();
    encoder.encode(&sample(), &mut bytes).unwrap();
    assert_eq!(bytes[..2], SINGLE_OBJECT_MARKER);
    let canonical = scribe_schemas::HostMetrics::get_schema().canonical_form();
    let expected = spec_fingerprint(&canonical).to_le_bytes();
    assert_eq!(
        bytes[2..10],
        expected,
        "fingerprint must be CRC-64-AVRO, little-endian"
    );
    // The datum is plain Avro binary: readable with the schema alone.
    let schema = scribe_schemas::HostMetrics::get_schema();
    #[allow(deprecated)]
    let value = apache_avro::from_avro_datum(&schema, &mut &bytes[10..], None).unwrap();
    let back: scribe_schemas::HostMetrics = apache_avro::from_value(&value).unwrap();
    assert_eq!(back, sample());
}

#[test]
fn a_value_round_trips_including_enums() {
    let alarm = Alarm {
        host: "h".into(),
        metric: "cpu_percent".into(),
        state: AlarmState::Cleared,
        value: 3.0,
        threshold: 5.0,
        at_ms: 7,
    };
    let mut bytes = Vec::new();
    Encoder::<Alarm>::new()
        .unwrap()
        .encode(&alarm, &mut bytes)
        .unwrap();
    let decoded = Decoder::<Alarm>::new(SchemaRegistry::new())
        .unwrap()
        .decode(&bytes)
        .unwrap();
    assert_eq!(decoded, alarm);
}

#[test]
fn a_newer_reader_resolves_an_older_writer_found_by_fingerprint() {
    let old = HostMetricsV1 {
        host: "old".into(),
        cpu_percent: 1.0,
        mem_used_percent: 2.0,
        sampled_at_ms: 3,
    };
    let mut bytes = Vec::new();
    Encoder::<HostMetricsV1>::new()
        .unwrap()
        .encode(&old, &mut bytes)
        .unwrap();

    let mut registry = SchemaRegistry::new();
    registry
        .register(
            "host_metrics.v1.avsc",
            scribe_schemas::avsc("host_metrics.v1.avsc").unwrap(),
        )
        .unwrap();
    let decoder = Decoder::<scribe_schemas::HostMetrics>::new(registry).unwrap();
    let new = decoder.decode(&bytes).unwrap();
    assert_eq!(new.host, "old");
    assert_eq!(new.load1, 0.0, "the added field takes its default");
    assert_eq!(new.sampled_at_ms, 3);
}

#[test]
fn an_unregistered_writer_schema_is_an_unknown_fingerprint() {
    let mut bytes = Vec::new();
    Encoder::<HostMetricsV1>::new()
        .unwrap()
        .encode(
            &HostMetricsV1 {
                host: "x".into(),
                cpu_percent: 0.0,
                mem_used_percent: 0.0,
                sampled_at_ms: 0,
            },
            &mut bytes,
        )
        .unwrap();
    let decoder = Decoder::<scribe_schemas::HostMetrics>::new(SchemaRegistry::new()).unwrap();
    let err = decoder.decode(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownFingerprint(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("unknown writer schema fingerprint"),
        "{err}"
    );
}

#[test]
fn an_incompatible_writer_schema_is_refused_with_both_names() {
    let mut bytes = Vec::new();
    Encoder::<clash::HostMetrics>::new()
        .unwrap()
        .encode(&clash::HostMetrics { host: 5 }, &mut bytes)
        .unwrap();
    let mut registry = SchemaRegistry::new();
    registry.register_type::<clash::HostMetrics>();
    let decoder = Decoder::<scribe_schemas::HostMetrics>::new(registry).unwrap();
    let err = decoder.decode(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::Incompatible { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("scribe.metrics.HostMetrics"), "{text}");
}

#[test]
fn garbage_is_refused_not_panicked_on() {
    let decoder = Decoder::<scribe_schemas::HostMetrics>::new(SchemaRegistry::new()).unwrap();
    assert!(matches!(
        decoder.decode(b"hello"),
        Err(DecodeError::Truncated { len: 5 })
    ));
    assert!(matches!(
        decoder.decode(b"not avro at all, clearly"),
        Err(DecodeError::NoMarker)
    ));
    // A valid header for the right schema, followed by a truncated datum.
    let mut bytes = Vec::new();
    Encoder::<scribe_schemas::HostMetrics>::new()
        .unwrap()
        .encode(&sample(), &mut bytes)
        .unwrap();
    assert!(matches!(
        decoder.decode(&bytes[..14]),
        Err(DecodeError::Datum(_))
    ));
    // And one with bytes left over.
    bytes.extend_from_slice(b"junk");
    assert!(matches!(
        decoder.decode(&bytes),
        Err(DecodeError::TrailingBytes(4))
    ));
}

#[test]
fn registering_a_broken_schema_names_its_origin() {
    let err = SchemaRegistry::new()
        .register("broken.avsc", "{\"type\": \"record\"}")
        .unwrap_err();
    assert!(err.to_string().contains("broken.avsc"), "{err}");
    let _ = Schema::parse_str("\"int\"").unwrap();
}
