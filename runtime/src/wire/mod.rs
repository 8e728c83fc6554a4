//! The wire: what travels on a topic and how it is written. A record's
//! Rust type ([`record`]) and the types a topic carries ([`records`]), its Avro encoding and the schemas a node knows
//! ([`codec`]), the schema registry's framing ([`framing`]), the metadata
//! every record carries in its headers ([`headers`], [`envelope`]), and the
//! time and ids records are stamped with ([`clock`]).
//!
//! Owns: bytes and types, nothing about clients, actors or offsets.
//! May import: `error` only. Imported by: every other subsystem.

pub mod clock;
pub mod codec;
pub mod envelope;
pub(crate) mod framing;
pub mod headers;
pub(crate) mod record;
pub(crate) mod records;
