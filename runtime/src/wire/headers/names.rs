//! The names of every header scribe reads or writes, and where each
//! well-known one sits among a record's parsed values.

use crate::wire::envelope;

/// Header carrying the CloudEvents spec version.
pub const CE_SPECVERSION: &str = "ce_specversion";
/// Header carrying the event id.
pub const CE_ID: &str = "ce_id";
/// Header carrying the event type (the Avro full name).
pub const CE_TYPE: &str = "ce_type";
/// Header carrying the event source (`node/actor`).
pub const CE_SOURCE: &str = "ce_source";
/// Header carrying the event time (RFC 3339).
pub const CE_TIME: &str = "ce_time";
/// Header carrying the content type.
pub const CONTENT_TYPE: &str = "content-type";
/// Header carrying the correlation id shared by a whole chain.
pub const CORRELATION_ID: &str = "correlation_id";
/// Header carrying the `ce_id` of the record that caused this one.
pub const CAUSATION_ID: &str = "causation_id";
/// What the names of every dead-letter header start with.
pub(super) const DLQ_PREFIX: &str = "scribe_dlq_";
/// On a dead letter: why the record could not be handled.
pub const DLQ_ERROR: &str = "scribe_dlq_error";
/// On a dead letter: how many times handling was tried (0: never, it could not be decoded).
pub const DLQ_ATTEMPTS: &str = "scribe_dlq_attempts";
/// On a dead letter: the actor that gave up on it.
pub const DLQ_ACTOR: &str = "scribe_dlq_actor";
/// On a dead letter: the topic it was read from.
pub const DLQ_TOPIC: &str = "scribe_dlq_topic";
/// On a dead letter: the partition it was read from.
pub const DLQ_PARTITION: &str = "scribe_dlq_partition";
/// On a dead letter: its offset there.
pub const DLQ_OFFSET: &str = "scribe_dlq_offset";
/// On a dead letter that is only part of its record, because the whole
/// record did not fit the producer's `message.max.bytes`: what was kept,
/// as `value K of N bytes` (and `, key dropped` when it was). Such a dead
/// letter is not replayed.
pub const DLQ_TRUNCATED: &str = "scribe_dlq_truncated";
/// The CloudEvents spec version scribe writes.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of every value: Avro single-object encoding.
pub const CONTENT_TYPE_AVRO: &str = "application/avro";

/// On a request from a [`Gateway`](crate::Gateway): a reply is awaited,
/// so a responder that cannot answer sends an error reply.
pub const EXPECTS_REPLY: &str = "scribe_expects_reply";
/// On an error reply: why the responder could not answer. The record has
/// no value; readers other than the asking gateway pass it over.
pub const REPLY_ERROR: &str = "scribe_reply_error";
/// The `ce_type` of an error reply.
pub const REPLY_ERROR_TYPE: &str = "scribe.ReplyError";

/// Header carrying the W3C trace context, when a record has one.
pub const TRACEPARENT: &str = "traceparent";
/// Header carrying the W3C trace state, when a record has one.
pub const TRACESTATE: &str = "tracestate";

/// The well-known headers, in the order of [`Headers`]' slots.
pub(super) const KNOWN: [&str; 10] = [
    CE_ID,
    CE_TYPE,
    CE_SOURCE,
    CE_TIME,
    CE_SPECVERSION,
    CONTENT_TYPE,
    CORRELATION_ID,
    CAUSATION_ID,
    TRACEPARENT,
    TRACESTATE,
];

/// The slots of the compact envelope's fields, in its schema's order.
pub(super) const ENVELOPE_SLOTS: [usize; envelope::FIELDS] = [0, 1, 2, 3, 6, 7, 8, 9];

/// The slots in the order of the CloudEvents headers a record carries.
pub(super) const CLOUDEVENTS_ORDER: [usize; KNOWN.len()] = [4, 0, 1, 2, 3, 5, 6, 7, 8, 9];

/// The slot of a well-known header in [`KNOWN`]: one comparison by
/// length and bytes, not one per known key.
pub(super) fn known_slot(key: &str) -> Option<usize> {
    match key {
        CE_ID => Some(0),
        CE_TYPE => Some(1),
        CE_SOURCE => Some(2),
        CE_TIME => Some(3),
        CE_SPECVERSION => Some(4),
        CONTENT_TYPE => Some(5),
        CORRELATION_ID => Some(6),
        CAUSATION_ID => Some(7),
        TRACEPARENT => Some(8),
        TRACESTATE => Some(9),
        _ => None,
    }
}

/// Whether `key` is one of the headers a dead letter gains.
pub(crate) fn is_dead_letter(key: &str) -> bool {
    key.starts_with(DLQ_PREFIX)
}
