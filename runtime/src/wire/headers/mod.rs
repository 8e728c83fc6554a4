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
//! An actor writes them in its [`Envelope`](crate::Envelope): by default one
//! `scribe_envelope` header (see [`crate::wire::envelope`]); as CloudEvents
//! headers (with `ce_specversion` `1.0` and `content-type`
//! [`CONTENT_TYPE_AVRO`]) when configured so. Every reader takes both.

mod names;
mod raw;
mod read;
mod write;

pub use names::*;
pub use raw::{UnreadableKey, kafka_pairs};
pub use read::Headers;
pub(crate) use write::Outgoing;
pub use write::{Outbound, to_kafka};

#[cfg(test)]
mod tests;
