//! [`DecodeError`]: why a record's bytes could not be turned into the
//! subscriber's type.

use super::fingerprint::Fingerprint;

/// Why a record's bytes could not be turned into the subscriber's type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The value is shorter than a single-object header.
    #[error("value of {len} bytes is too short for avro single-object encoding")]
    Truncated {
        /// Length of the value.
        len: usize,
    },
    /// The value starts neither with the single-object marker `C3 01` nor
    /// with the schema registry's magic byte `0`.
    #[error(
        "value does not start with the avro single-object marker (nor with the schema registry's magic byte)"
    )]
    NoMarker,
    /// The value is in the schema registry's framing, but the node has no
    /// registry to look its schema id up in (`[registry]`).
    #[error("schema registry id {0}, and no schema registry is configured to look it up")]
    UnknownSchemaId(u32),
    /// The schema registry could not say which schema an id is.
    #[error("schema registry id {id}: {reason}")]
    Registry {
        /// The schema id the value carries.
        id: u32,
        /// Why it could not be looked up.
        reason: String,
    },
    /// The writer's schema fingerprint is not in the registry.
    #[error("unknown writer schema fingerprint {0}")]
    UnknownFingerprint(Fingerprint),
    /// The writer's schema cannot be read with the subscriber's schema.
    #[error("writer schema `{writer}` cannot be read as `{reader}`: {reason}")]
    Incompatible {
        /// Full name of the writer's schema.
        writer: String,
        /// Full name of the reader's schema.
        reader: String,
        /// What schema resolution objected to.
        reason: String,
    },
    /// The datum does not match the writer's schema.
    #[error("malformed avro datum")]
    Datum(#[source] apache_avro::Error),
    /// Bytes were left over after the datum.
    #[error("{0} bytes left over after the avro datum")]
    TrailingBytes(usize),
    /// A header's key is not UTF-8 (written by a client that is not
    /// scribe); the record is dead-lettered without that header.
    #[error("header {index} has a key that is not UTF-8 (`{key}`)")]
    HeaderKey {
        /// Its position among the record's headers, from 0.
        index: usize,
        /// The key, its bytes that are not printable ASCII escaped.
        key: String,
    },
    /// The record's `scribe_envelope` header has the envelope schema's
    /// fingerprint but cannot be read; the dead letter keeps it as it came.
    #[error("its scribe_envelope header cannot be read: {0}")]
    Envelope(String),
    /// The record's topic matches none of the actor's subscriptions as
    /// scribe reads them, though the consumer fetched it.
    #[error("no subscription of the actor matches topic `{0}`")]
    Unrouted(String),
    /// The record's type is one no binding of the actor takes, on a topic
    /// whose unhandled types the actor dead-letters
    /// ([`Subscriptions::dead_letter_unhandled`](crate::Subscriptions::dead_letter_unhandled)).
    #[error("no handler of the actor takes records of type `{0}`")]
    Unhandled(String),
    /// A value written outside scribe that the actor's own reader
    /// ([`Subscriptions::subscribe_foreign`](crate::Subscriptions::subscribe_foreign))
    /// refused, with its reason.
    #[error("{0}")]
    Foreign(String),
    /// A dead letter that cannot be replayed to its actor.
    #[error("cannot replay the dead letter: {0}")]
    Unreplayable(String),
}
