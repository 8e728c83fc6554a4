//! Record types used by the end-to-end tests and the benchmark.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// A numbered input record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.test")]
pub struct Number {
    /// The key it travels under.
    pub key: String,
    /// Its sequence number within its key.
    pub seq: i64,
}

/// A number after the first hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.test")]
pub struct Doubled {
    /// The key it travels under.
    pub key: String,
    /// Sequence number of the input.
    pub seq: i64,
    /// Twice the sequence number.
    pub value: i64,
}

/// A number after the second hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.test")]
pub struct Labeled {
    /// The key it travels under.
    pub key: String,
    /// Sequence number of the input.
    pub seq: i64,
    /// The doubled value.
    pub value: i64,
    /// `key#seq`.
    pub label: String,
}

/// A benchmark record of about 200 bytes encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.bench")]
pub struct Payload {
    /// Sequence number.
    pub seq: i64,
    /// Hops taken so far.
    pub hops: i32,
    /// Filler text making the record about 200 bytes.
    pub body: String,
}

/// What a [`Tally`](crate::actors::Tally) remembers of a key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.test")]
pub struct Tally {
    /// Numbers of the key handled so far.
    pub count: i64,
    /// The sum of their sequence numbers.
    pub sum: i64,
}

/// A number with its key's tally once it was counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.test")]
pub struct Tallied {
    /// The key.
    pub key: String,
    /// The number's sequence number.
    pub seq: i64,
    /// Numbers of the key counted, this one included.
    pub count: i64,
    /// The sum of their sequence numbers.
    pub sum: i64,
}
