//! Sending records, waiting for room in a full queue, and the broker's
//! delivery reports, which count down the ack slots of the records that
//! caused each publish.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};

use crate::delivery::tracker::AckSlot;
use crate::error::{Error, Result};
use crate::ops::stats::ActorStats;

/// librdkafka's default `message.max.bytes`.
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// The Kafka producer of one actor instance.
pub(crate) type ActorProducer = ThreadedProducer<DeliveryTracker>;

/// Receives the broker's delivery reports and counts down the ack slots of
/// the records that caused each publish.
pub(crate) struct DeliveryTracker {
    pub(crate) actor: Arc<str>,
    pub(crate) stats: Arc<ActorStats>,
    /// Set when the brokers refused a write for good: for want of a
    /// permission, or because a newer instance with the same transactional
    /// id fenced this one. A restart cannot mend either (and a restarted
    /// zombie would fence its replacement in turn), so the actor stops for
    /// good, saying why.
    pub(crate) refused: Arc<std::sync::OnceLock<String>>,
    /// How long a publish waits for room in a full producer queue before
    /// it fails: the producer's `message.timeout.ms`, as long as a queued
    /// record may wait for its delivery.
    pub(crate) queue_full_limit: Duration,
    /// Set when a record was not delivered (see `PublisherCore::undelivered`).
    pub(crate) undelivered: Arc<std::sync::atomic::AtomicBool>,
}

/// A Kafka producer made from a node's client settings, with what the
/// publisher over it needs to know.
pub(crate) struct KafkaProducer {
    pub(crate) producer: ActorProducer,
    /// The flag its delivery reports raise when a record was not delivered.
    pub(crate) undelivered: Arc<std::sync::atomic::AtomicBool>,
    /// Its `message.max.bytes`: what a dead letter must fit.
    pub(crate) max_message_bytes: usize,
}

impl KafkaProducer {
    /// The producer of `client` (an actor, or a gateway) with `settings`,
    /// as producer `transactional_id` when given, its configuration changed
    /// by `tune` first; its reports count in `stats`, and a refusal for good
    /// is kept in `refused`.
    pub(crate) fn create(
        settings: &crate::kafka::settings::ClientSettings,
        client: &str,
        transactional_id: Option<&str>,
        stats: Arc<ActorStats>,
        refused: Arc<std::sync::OnceLock<String>>,
        tune: impl FnOnce(&mut rdkafka::ClientConfig),
    ) -> Result<Self> {
        let mut config = settings.producer(client, transactional_id);
        tune(&mut config);
        let number = |key: &str| config.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        let max_message_bytes =
            number("message.max.bytes").map_or(DEFAULT_MAX_MESSAGE_BYTES, |n| n as usize);
        // librdkafka's default message.timeout.ms is 5 minutes.
        let queue_full_limit =
            Duration::from_millis(number("message.timeout.ms").unwrap_or(300_000));
        let undelivered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let producer: ActorProducer = config
            .create_with_context(DeliveryTracker {
                actor: client.into(),
                stats,
                refused,
                queue_full_limit,
                undelivered: undelivered.clone(),
            })
            .map_err(|e| Error::kafka(format!("cannot create producer of `{client}`"), e))?;
        Ok(Self {
            producer,
            undelivered,
            max_message_bytes,
        })
    }
}

/// A publish waiting this long for room in the producer's queue is logged.
const STALL_WARNING: Duration = Duration::from_secs(1);

impl ClientContext for DeliveryTracker {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.stats.producer_statistics(&statistics);
    }
}

impl DeliveryTracker {
    /// Keeps why the brokers refused a write to `topic` for good, when
    /// `code` says they did.
    fn note(&self, code: RDKafkaErrorCode, topic: &str) {
        use RDKafkaErrorCode as Code;
        let why = match code {
            Code::TopicAuthorizationFailed
            | Code::ClusterAuthorizationFailed
            | Code::TransactionalIdAuthorizationFailed => format!(
                "the brokers refused its write to topic `{topic}` ({code}): this node's \
                 principal may not write there (the cluster's ACLs, see `scribe acls`)"
            ),
            Code::Fenced | Code::ProducerFenced | Code::InvalidProducerEpoch => format!(
                "fenced: another instance of the actor runs with its transactional id \
                 ({code}); this one stops so that one alone writes"
            ),
            _ => return,
        };
        let _ = self.refused.set(why);
    }
}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = Arc<AckSlot>;

    fn delivery(&self, result: &DeliveryResult<'_>, slot: Arc<AckSlot>) {
        match result {
            Ok(_) => {
                ActorStats::add(&self.stats.published, 1);
                slot.done();
            }
            // An aborted transaction took the record back: its cause is
            // handled again by the next instance.
            Err((
                KafkaError::MessageProduction(
                    RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight,
                ),
                _,
            )) => slot.fail(),
            Err((error, message)) => {
                if let KafkaError::MessageProduction(code) = error {
                    self.note(*code, message.topic());
                }
                tracing::error!(
                    actor = %self.actor,
                    topic = message.topic(),
                    partition = message.partition(),
                    %error,
                    "record not delivered; the offset that caused it will not be committed"
                );
                ActorStats::add(&self.stats.publish_failures, 1);
                slot.fail_because(|| error.to_string());
                self.undelivered
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        }
    }
}

/// Sends a record, waiting while librdkafka's local queue is full. On a
/// refusal the record's ack slot is released and the error returned: the
/// caller then fails the slot of the record that caused the publish, so
/// its offset never commits, whatever a handler does with the error, and
/// it is handled again after a restart (under exactly-once, its
/// transaction aborts).
///
/// While librdkafka's local queue is full the actor's thread waits: that is
/// the backpressure a handler publishing faster than the broker
/// acknowledges feels. The wait is counted in the actor's stats, logged
/// after [`STALL_WARNING`], and fails the publish after the producer's
/// `message.timeout.ms`.
pub(super) fn send(
    producer: &ActorProducer,
    mut record: BaseRecord<'_, [u8], [u8], Arc<AckSlot>>,
    topic: &str,
) -> Result<()> {
    let context = producer.context();
    let mut stalled: Option<std::time::Instant> = None;
    let mut warned = false;
    loop {
        match producer.send(record) {
            Ok(()) => {
                if let Some(since) = stalled {
                    let ms = since.elapsed().as_millis() as u64;
                    ActorStats::add(&context.stats.publish_stalled_ms, ms);
                    if warned {
                        tracing::info!(actor = %context.actor, topic, waited_ms = ms, "the producer's queue has room again");
                    }
                }
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                // The local queue is full: wait for the broker to drain it.
                record = back;
                let since = *stalled.get_or_insert_with(|| {
                    ActorStats::add(&context.stats.publish_stalls, 1);
                    std::time::Instant::now()
                });
                let waited = since.elapsed();
                if waited >= context.queue_full_limit {
                    ActorStats::add(&context.stats.publish_stalled_ms, waited.as_millis() as u64);
                    record.delivery_opaque.done();
                    tracing::error!(actor = %context.actor, topic, ?waited, "the producer's queue stayed full; the publish fails");
                    return Err(Error::Publish {
                        topic: topic.to_owned(),
                        source: KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    });
                }
                if !warned && waited >= STALL_WARNING {
                    warned = true;
                    tracing::warn!(
                        actor = %context.actor, topic, ?waited,
                        "the producer's queue is full: the broker is not keeping up; the actor waits"
                    );
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((source, back)) => {
                back.delivery_opaque.done();
                // A producer in a fatal state says why once, here.
                if let Some((code, _)) = producer.client().fatal_error() {
                    producer.context().note(code, topic);
                }
                return Err(Error::Publish {
                    topic: topic.to_owned(),
                    source,
                });
            }
        }
    }
}
