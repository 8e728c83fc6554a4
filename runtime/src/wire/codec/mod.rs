//! Avro single-object encoding, the schemas a node knows, and schema
//! resolution: `fingerprint` (how a value names its writer's schema),
//! `schema` (the [`SchemaRegistry`]), `encode` and `decode`
//! ([`DecodeError`] says why a value could not be read).
//!
//! Every value on the bus is encoded as the Avro specification's
//! *single-object encoding*: the two marker bytes `C3 01`, the schema's
//! 8-byte CRC-64-AVRO fingerprint (little-endian), then the binary datum.
//! A reader looks the writer's schema up by that fingerprint in a
//! [`SchemaRegistry`] and, when it differs from its own, applies Avro schema
//! resolution.
//!
//! A topic may instead carry the Confluent Schema Registry's framing
//! ([`crate::confluent`], `wire::framing`): byte `0`, a 4-byte schema id, the datum. The two
//! framings never collide (`C3` against `0`), so every reader takes both:
//! it maps the id to the schema's fingerprint with the ids the node learnt
//! at start, and asks the registry server once for any id it has not seen.

mod decode;
mod decode_error;
mod encode;
mod fingerprint;
mod schema;

pub use decode::{Decoder, decode_json};
pub use decode_error::DecodeError;
pub use encode::{Encoder, Encoders, encode_json};
/// Length of the single-object header (marker and fingerprint) before a
/// value's Avro datum.
pub(crate) use fingerprint::HEADER_LEN as SINGLE_OBJECT_HEADER_LEN;
pub use fingerprint::{Fingerprint, SINGLE_OBJECT_MARKER};
pub(crate) use schema::intern;
pub use schema::{SchemaLookup, SchemaRegistry, full_name};
