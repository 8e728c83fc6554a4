//! The Confluent Schema Registry's wire format, and how an actor chooses
//! it ([`Encoding`]) and names its schemas there ([`SubjectStrategy`]).
//!
//! A topic written with [`Encoding::Confluent`] carries each value as the
//! registry's framing: the magic byte `0`, the writer schema's registry id
//! (4 bytes, big-endian), then the Avro binary datum. Every client that
//! reads through the registry (confluent-kafka's `AvroDeserializer`, Kafka
//! Connect, ksqlDB) reads such a topic. The two framings never collide
//! (`C3` against `0`), so every scribe reader takes both. The registry's
//! REST client is `kafka::registry`.

use std::fmt;

use serde::Deserialize;

/// The byte that opens every value in the registry's framing.
pub const MAGIC: u8 = 0;
/// Length of the registry's framing before the datum.
pub const HEADER_LEN: usize = 5;

/// How an actor's records are written on its topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Encoding {
    /// Avro single-object encoding: marker `C3 01`, the schema's 8-byte
    /// fingerprint, the datum. Needs no registry server.
    #[default]
    SingleObject,
    /// The Confluent Schema Registry's framing: byte `0`, the 4-byte
    /// schema id, the datum. Needs a registry (`[registry]`).
    Confluent,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::SingleObject => "single_object",
            Encoding::Confluent => "confluent",
        })
    }
}

/// Under which registry subject a topic's writer schemas are registered:
/// the naming strategies of Confluent's serializers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubjectStrategy {
    /// `TopicNameStrategy`: `<topic>-value`. One record type per topic,
    /// its versions checked against each other.
    #[default]
    TopicName,
    /// `RecordNameStrategy`: the record's full name, whatever the topic.
    RecordName,
    /// `TopicRecordNameStrategy`: `<topic>-<full name>`.
    TopicRecordName,
}

impl SubjectStrategy {
    /// The subject of values of type `full_name` written on `topic`.
    pub fn subject(&self, topic: &str, full_name: &str) -> String {
        match self {
            SubjectStrategy::TopicName => format!("{topic}-value"),
            SubjectStrategy::RecordName => full_name.to_owned(),
            SubjectStrategy::TopicRecordName => format!("{topic}-{full_name}"),
        }
    }

    /// Whether each record type of a topic gets a subject of its own, as
    /// a topic of several types needs.
    pub fn per_type(&self) -> bool {
        !matches!(self, SubjectStrategy::TopicName)
    }
}

impl fmt::Display for SubjectStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubjectStrategy::TopicName => "topic_name",
            SubjectStrategy::RecordName => "record_name",
            SubjectStrategy::TopicRecordName => "topic_record_name",
        })
    }
}

/// The registry's framing of schema `id`.
pub fn header(id: u32) -> [u8; HEADER_LEN] {
    let id = id.to_be_bytes();
    [MAGIC, id[0], id[1], id[2], id[3]]
}

/// Turns a single-object encoded value into the registry's framing in
/// place: its 10-byte header becomes `frame` ([`header`]), the datum moves
/// up. No allocation.
pub fn reframe(single_object: &mut Vec<u8>, frame: &[u8; HEADER_LEN]) {
    const SINGLE_OBJECT: usize = 10;
    single_object.copy_within(SINGLE_OBJECT.., HEADER_LEN);
    single_object.truncate(single_object.len() - (SINGLE_OBJECT - HEADER_LEN));
    single_object[..HEADER_LEN].copy_from_slice(frame);
}

/// The schema id and datum of a value in the registry's framing; `None`
/// when the value is not in it.
pub fn split(bytes: &[u8]) -> Option<(u32, &[u8])> {
    if bytes.len() < HEADER_LEN || bytes[0] != MAGIC {
        return None;
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Some((id, &bytes[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_confluents_naming_strategies() {
        let (topic, name) = ("orders", "shop.Order");
        assert_eq!(
            SubjectStrategy::TopicName.subject(topic, name),
            "orders-value"
        );
        assert_eq!(
            SubjectStrategy::RecordName.subject(topic, name),
            "shop.Order"
        );
        assert_eq!(
            SubjectStrategy::TopicRecordName.subject(topic, name),
            "orders-shop.Order"
        );
    }

    #[test]
    fn framing_is_magic_byte_then_big_endian_id() {
        let mut value = header(0x0102_0304).to_vec();
        value.push(42);
        assert_eq!(value, [0, 1, 2, 3, 4, 42]);
        assert_eq!(split(&value), Some((0x0102_0304, &[42u8][..])));
        assert_eq!(split(&[0, 1, 2]), None);
        assert_eq!(split(&[0xC3, 1, 2, 3, 4]), None);
    }

    #[test]
    fn reframing_keeps_the_datum_after_the_registry_header() {
        let mut buf = vec![0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 42, 43];
        reframe(&mut buf, &header(7));
        assert_eq!(buf, [0, 0, 0, 0, 7, 42, 43]);
    }
}
