//! The seam under the publisher: where an actor's records go. A Kafka
//! producer ([`super::producer`]) or, with the `testing` feature, any
//! [`DynSink`] (the simulator's in-memory log, which the runtime does not
//! name). The publisher, its dead letters and its transactions are written
//! once, against [`Sink`].

use std::sync::Arc;

use rdkafka::producer::BaseRecord;

use super::producer::{ActorProducer, send};
use crate::delivery::tracker::AckSlot;
use crate::error::Result;
use crate::wire::envelope::Envelope;
use crate::wire::headers::Outgoing;

/// Where an actor's records go: the seam under the publisher. Either way
/// a record sent has counted on an ack slot, which the broker's answer (a
/// delivery report, or the simulated broker's) counts down or fails.
pub(crate) enum Sink {
    /// A Kafka producer.
    Kafka(ActorProducer),
    /// A sink the runtime reaches through a trait object (the simulator's
    /// in-memory log, which the runtime does not name).
    #[cfg(feature = "testing")]
    Dyn(Box<dyn DynSink>),
}

/// Where records go when not to Kafka: what a sink defined outside the
/// runtime (the simulator's) implements. A record sent has counted on its
/// ack slot, which the sink's broker counts down or fails.
#[cfg(feature = "testing")]
pub(crate) trait DynSink: Send + Sync {
    /// Sends one record; on an error the slot's count is released.
    fn send(
        &self,
        record: Sent<'_>,
        headers: crate::wire::headers::Headers,
        ack: Arc<AckSlot>,
    ) -> Result<()>;
    /// Waits until everything sent is answered.
    fn flush(&self);
    /// Opens a transaction unless one is open.
    fn begin_txn(&self);
    /// Commits the open transaction with `offsets`; on an error it must be
    /// aborted.
    fn commit_txn(
        &self,
        offsets: &[crate::delivery::consumed::Position],
    ) -> std::result::Result<(), String>;
    /// Aborts the open transaction; returns whether one was open.
    fn abort_txn(&self) -> bool;
}

impl Sink {
    /// The Kafka producer, when it is one.
    pub(super) fn producer(&self) -> Option<&ActorProducer> {
        match self {
            Sink::Kafka(producer) => Some(producer),
            #[cfg(feature = "testing")]
            Sink::Dyn(_) => None,
        }
    }

    /// Sends `record`, its metadata in `form` (`buf` holds a compact
    /// envelope while it is copied). `ack` counts it already; on an error
    /// the count is released.
    pub(super) fn send(
        &self,
        record: Sending<'_>,
        (form, buf): (Envelope, &mut Vec<u8>),
        ack: Arc<AckSlot>,
    ) -> Result<()> {
        let Sending {
            topic,
            partition,
            key,
            value,
            headers,
            timestamp,
        } = record;
        match self {
            Sink::Kafka(producer) => {
                let mut out =
                    BaseRecord::with_opaque_to(topic, ack).headers(headers.to_kafka(form, buf));
                if let Some(value) = value {
                    out = out.payload(value);
                }
                if let Some(partition) = partition {
                    out = out.partition(partition);
                }
                if let Some(timestamp) = timestamp {
                    out = out.timestamp(timestamp);
                }
                if let Some(key) = key {
                    out = out.key(key);
                }
                send(producer, out, topic)
            }
            #[cfg(feature = "testing")]
            Sink::Dyn(sink) => sink.send(
                Sent {
                    topic,
                    partition,
                    key,
                    value,
                    timestamp_ms: timestamp.unwrap_or_else(crate::wire::clock::now_ms),
                },
                headers.to_headers(form),
                ack,
            ),
        }
    }
}

/// One record on its way to a sink.
pub(crate) struct Sending<'a> {
    pub(crate) topic: &'a str,
    /// The partition, when the sender picks it (a changelog record's, in
    /// its input's partition); else the key's.
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a [u8]>,
    /// Its value; none for a tombstone (a deleted state key).
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: Outgoing<'a>,
    /// Its timestamp in milliseconds; none for now.
    pub(crate) timestamp: Option<i64>,
}

/// A record as a [`DynSink`] gets it, its headers apart.
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent<'a> {
    pub(crate) topic: &'a str,
    /// The partition the sender picked, if it did.
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a [u8]>,
    /// None for a tombstone.
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) timestamp_ms: i64,
}
