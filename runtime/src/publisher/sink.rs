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
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: crate::wire::headers::Headers,
        timestamp_ms: i64,
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

    /// Sends one record to `topic`, its metadata in `form` (`buf` holds
    /// a compact envelope while it is copied). `ack` counts it already; on
    /// an error the count is released.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: Outgoing<'_>,
        (form, buf): (Envelope, &mut Vec<u8>),
        timestamp: Option<i64>,
        ack: Arc<AckSlot>,
    ) -> Result<()> {
        match self {
            Sink::Kafka(producer) => {
                let mut record = BaseRecord::with_opaque_to(topic, ack)
                    .payload(value)
                    .headers(headers.to_kafka(form, buf));
                if let Some(timestamp) = timestamp {
                    record = record.timestamp(timestamp);
                }
                if let Some(key) = key {
                    record = record.key(key);
                }
                send(producer, record, topic)
            }
            #[cfg(feature = "testing")]
            Sink::Dyn(sink) => sink.send(
                topic,
                key,
                value,
                headers.to_headers(form),
                timestamp.unwrap_or_else(crate::wire::clock::now_ms),
                ack,
            ),
        }
    }
}
