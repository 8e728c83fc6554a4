//! How a record's metadata travels: [`Envelope`], and the wire form of the
//! compact envelope, one `scribe_envelope` header holding a
//! `scribe.Envelope` record (`runtime/avro/envelope.avsc`) in Avro
//! single-object encoding.
//!
//! The header is written and read here by hand, not through apache-avro's
//! serde path: a handful of strings, written into a reused buffer, read
//! without an allocation per field. A test checks the bytes against
//! apache-avro's own encoding of the same record.

use std::sync::OnceLock;

use serde::Deserialize;

/// The header that carries the compact envelope.
pub const ENVELOPE: &str = "scribe_envelope";

/// The schema of the compact envelope's record (`scribe.Envelope`).
pub const ENVELOPE_SCHEMA: &str = include_str!("../../avro/envelope.avsc");

/// How an actor writes its records' metadata (id, type, source, time,
/// correlation, causation, trace context), per actor.
///
/// In a node config file it is `envelope` under `[node]` (every actor's
/// default) or under an `[[actors]]` entry. Readers take either form,
/// whatever they write themselves. `docs/envelope.md` says how clients that
/// are not scribe read each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Envelope {
    /// One `scribe_envelope` header holding a `scribe.Envelope` Avro
    /// record. The default: one header to add on produce and to parse on
    /// consume, where the CloudEvents form has eight.
    #[default]
    Compact,
    /// The CloudEvents Kafka binding's headers: `ce_id`, `ce_type`,
    /// `ce_source`, `ce_time`, `ce_specversion`, `content-type`, plus
    /// `correlation_id`, `causation_id` (and `traceparent`, `tracestate`
    /// when present). For topics read by tools that expect CloudEvents.
    CloudEvents,
}

impl Envelope {
    /// Its name in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::Compact => "compact",
            Envelope::CloudEvents => "cloudevents",
        }
    }
}

impl std::fmt::Display for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Envelope {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "compact" => Ok(Envelope::Compact),
            "cloudevents" => Ok(Envelope::CloudEvents),
            other => Err(format!(
                "unknown variant `{other}`, expected `compact` or `cloudevents`"
            )),
        }
    }
}

/// The envelope's fields, in the schema's order. The first five are
/// required strings; the last three optional.
pub(crate) const FIELDS: usize = 8;
const REQUIRED: usize = 5;

/// The single-object marker.
const MARKER: [u8; 2] = crate::wire::codec::SINGLE_OBJECT_MARKER;

/// The envelope schema's CRC-64-AVRO fingerprint, little-endian.
fn fingerprint() -> &'static [u8; 8] {
    static FINGERPRINT: OnceLock<[u8; 8]> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let schema = apache_avro::Schema::parse_str(ENVELOPE_SCHEMA)
            .expect("the envelope schema, checked by a test");
        crate::wire::codec::Fingerprint::of(&schema).0
    })
}

/// Appends the envelope holding `fields` (in the schema's order) to `out`.
/// A required field given as `None` is written empty.
pub(crate) fn encode(fields: &[Option<&str>; FIELDS], out: &mut Vec<u8>) {
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(fingerprint());
    for (index, field) in fields.iter().enumerate() {
        match (index < REQUIRED, field) {
            (true, field) => string(field.unwrap_or_default(), out),
            (false, None) => out.push(0),
            (false, Some(text)) => {
                out.push(2);
                string(text, out);
            }
        }
    }
}

/// An Avro string: its length, zig-zag varint, then its bytes.
fn string(text: &str, out: &mut Vec<u8>) {
    let mut n = (text.len() as u64) << 1;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(text.as_bytes());
}

/// What a `scribe_envelope` header turned out to hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read<'a> {
    /// The envelope's fields, in the schema's order.
    Fields([Option<&'a str>; FIELDS]),
    /// Not this schema's envelope (another marker or fingerprint: a newer
    /// scribe, another writer): kept as an ordinary header.
    Foreign,
    /// This schema's fingerprint, but not a datum of it: why.
    Malformed(String),
}

/// Reads a `scribe_envelope` header's value.
pub(crate) fn decode(bytes: &[u8]) -> Read<'_> {
    if bytes.len() < 10 || bytes[..2] != MARKER || bytes[2..10] != *fingerprint() {
        return Read::Foreign;
    }
    let mut cursor = Cursor {
        bytes: &bytes[10..],
        at: 10,
    };
    let mut fields = [None; FIELDS];
    for (index, field) in fields.iter_mut().enumerate() {
        let present = index < REQUIRED || {
            match cursor.long() {
                Ok(0) => false,
                Ok(1) => true,
                Ok(branch) => {
                    return Read::Malformed(format!(
                        "field {} has union branch {branch} at byte {}",
                        NAMES[index], cursor.at
                    ));
                }
                Err(reason) => return Read::Malformed(format!("field {}: {reason}", NAMES[index])),
            }
        };
        if present {
            match cursor.string() {
                Ok(text) => *field = Some(text),
                Err(reason) => return Read::Malformed(format!("field {}: {reason}", NAMES[index])),
            }
        }
    }
    if !cursor.bytes.is_empty() {
        return Read::Malformed(format!(
            "{} bytes left over after the record",
            cursor.bytes.len()
        ));
    }
    Read::Fields(fields)
}

/// The fields' names, for errors.
const NAMES: [&str; FIELDS] = [
    "id",
    "type",
    "source",
    "time",
    "correlation_id",
    "causation_id",
    "traceparent",
    "tracestate",
];

/// Reads Avro's binary encoding from a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    /// Where `bytes` starts in the header's value, for errors.
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A zig-zag varint long.
    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for (index, byte) in self.bytes.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7F) << (7 * index);
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[index + 1..];
                self.at += index + 1;
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(format!("no complete number at byte {}", self.at))
    }

    /// A UTF-8 string.
    fn string(&mut self) -> Result<&'a str, String> {
        let len = self.long()?;
        let Some(bytes) = usize::try_from(len)
            .ok()
            .and_then(|len| self.bytes.get(..len))
        else {
            return Err(format!(
                "length {len} at byte {} runs past the end",
                self.at
            ));
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("the text at byte {} is not UTF-8", self.at))?;
        self.bytes = &self.bytes[bytes.len()..];
        self.at += bytes.len();
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;

    const FULL: [Option<&str>; FIELDS] = [
        Some("3f2c6a1e-0000-4000-8000-000000000001"),
        Some("scribe.tests.Number"),
        Some("node/relay"),
        Some("2026-11-28T17:00:00.123Z"),
        Some("corr-é"),
        Some("cause-1"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        None,
    ];

    /// The same record through apache-avro's own single-object writer.
    fn apache_avro_bytes(fields: &[Option<&str>; FIELDS]) -> Vec<u8> {
        let schema = apache_avro::Schema::parse_str(ENVELOPE_SCHEMA).unwrap();
        let value = Value::Record(
            NAMES
                .iter()
                .zip(fields)
                .enumerate()
                .map(|(index, (name, field))| {
                    let text = Value::String(field.unwrap_or_default().to_owned());
                    let value = match (index < REQUIRED, field) {
                        (true, _) => text,
                        (false, None) => Value::Union(0, Box::new(Value::Null)),
                        (false, Some(_)) => Value::Union(1, Box::new(text)),
                    };
                    ((*name).to_owned(), value)
                })
                .collect(),
        );
        let mut out = Vec::new();
        apache_avro::GenericSingleObjectWriter::new_with_capacity(&schema, 256)
            .unwrap()
            .write_value(value, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn the_envelope_is_written_byte_for_byte_as_apache_avro_writes_it() {
        let mut out = Vec::new();
        encode(&FULL, &mut out);
        assert_eq!(out, apache_avro_bytes(&FULL));
        let long_id = "x".repeat(300);
        let mut fields = FULL;
        fields[0] = Some(&long_id);
        fields[6] = None;
        fields[7] = Some("a=b");
        out.clear();
        encode(&fields, &mut out);
        assert_eq!(out, apache_avro_bytes(&fields), "two-byte lengths");
    }

    #[test]
    fn an_envelope_reads_back_its_fields() {
        let mut out = Vec::new();
        encode(&FULL, &mut out);
        assert_eq!(decode(&out), Read::Fields(FULL));
    }

    #[test]
    fn another_schemas_header_is_foreign_and_a_broken_one_malformed() {
        assert_eq!(decode(b"plain text"), Read::Foreign);
        let mut out = Vec::new();
        encode(&FULL, &mut out);
        let mut other = out.clone();
        other[5] ^= 0xFF;
        assert_eq!(decode(&other), Read::Foreign, "another fingerprint");
        let cut = &out[..out.len() - 3];
        assert!(
            matches!(decode(cut), Read::Malformed(ref why) if why.contains("traceparent")),
            "{:?}",
            decode(cut)
        );
        let mut longer = out.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer),
            Read::Malformed("1 bytes left over after the record".into())
        );
        let mut bad_union = out.clone();
        let last = bad_union.len() - 1;
        bad_union[last] = 6;
        assert!(
            matches!(decode(&bad_union), Read::Malformed(ref why) if why.contains("union branch 3"))
        );
    }

    #[test]
    fn config_names_round_trip() {
        for envelope in [Envelope::Compact, Envelope::CloudEvents] {
            assert_eq!(Envelope::try_from(envelope.to_string()), Ok(envelope));
        }
        assert!(Envelope::try_from("json".to_owned()).is_err());
    }
}
