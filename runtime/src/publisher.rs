//! [`Publisher`]: the only way an actor writes, bound to the topic it owns.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};

use crate::Record;
use crate::codec::Encoder;
use crate::error::{Error, Result};
use crate::headers::{Headers, Outbound, to_kafka};
use crate::inbound::Inbound;
use crate::stats::ActorStats;
use crate::tracker::AckSlot;

/// The Kafka producer of one actor instance.
pub(crate) type Producer = ThreadedProducer<DeliveryTracker>;

/// Receives the broker's delivery reports and counts down the ack slots of
/// the records that caused each publish.
pub(crate) struct DeliveryTracker {
    pub(crate) actor: Arc<str>,
    pub(crate) stats: Arc<ActorStats>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = Arc<AckSlot>;

    fn delivery(&self, result: &DeliveryResult<'_>, slot: Arc<AckSlot>) {
        match result {
            Ok(_) => {
                ActorStats::add(&self.stats.published, 1);
                slot.done();
            }
            Err((error, message)) => {
                tracing::error!(
                    actor = %self.actor,
                    topic = message.topic(),
                    partition = message.partition(),
                    %error,
                    "record not delivered; the offset that caused it will not be committed"
                );
                ActorStats::add(&self.stats.publish_failures, 1);
                slot.fail();
            }
        }
    }
}

/// The record being handled while a handler runs: what publishes inherit.
#[derive(Debug)]
pub(crate) struct Cause {
    pub(crate) ce_id: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) slot: Arc<AckSlot>,
}

/// Where an actor's records go.
pub(crate) enum Sink {
    /// A Kafka producer.
    Kafka(Producer),
    /// The simulator's in-memory bus.
    #[cfg(feature = "testing")]
    Sim(crate::sim::Outlet),
}

/// State shared by an actor's publisher and the runtime driving the actor.
pub(crate) struct PublisherCore {
    pub(crate) sink: Sink,
    pub(crate) topic: Arc<str>,
    pub(crate) source: String,
    cause: Mutex<Option<Cause>>,
    detached: Arc<AckSlot>,
}

impl PublisherCore {
    pub(crate) fn new(sink: Sink, topic: Arc<str>, source: String) -> Self {
        Self {
            sink,
            topic,
            source,
            cause: Mutex::new(None),
            detached: AckSlot::detached(),
        }
    }

    fn cause(&self) -> std::sync::MutexGuard<'_, Option<Cause>> {
        self.cause.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes from now on are caused by `cause`.
    pub(crate) fn begin(&self, cause: Cause) {
        *self.cause() = Some(cause);
    }

    /// Publishes from now on have no cause.
    pub(crate) fn end(&self) {
        *self.cause() = None;
    }

    /// Writes a record the actor gives up on to its dead-letter topic: the
    /// original key, value and headers, plus `extra` headers saying why.
    /// `slot` completes once the dead letter is acknowledged.
    pub(crate) fn dead_letter(
        &self,
        topic: &str,
        raw: &crate::failures::Raw,
        extra: &[(&str, &[u8])],
        slot: &Arc<AckSlot>,
    ) -> Result<()> {
        let pairs = raw.headers.iter().chain(extra.iter().copied());
        match &self.sink {
            Sink::Kafka(producer) => {
                slot.add_pending();
                let mut record = BaseRecord::with_opaque_to(topic, slot.clone())
                    .payload(&*raw.value)
                    .headers(to_kafka(pairs));
                if let Some(timestamp) = raw.timestamp {
                    record = record.timestamp(timestamp);
                }
                if let Some(key) = &raw.key {
                    record = record.key(key.as_slice());
                }
                send(producer, record, topic)
            }
            #[cfg(feature = "testing")]
            Sink::Sim(outlet) => outlet.dead_letter(topic, raw, Headers::from_pairs(pairs)),
        }
    }

    /// Waits until the broker acknowledged everything published.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        match &self.sink {
            Sink::Kafka(producer) => producer.flush(timeout),
            // The simulated bus acknowledges on append.
            #[cfg(feature = "testing")]
            Sink::Sim(_) => Ok(()),
        }
    }
}

/// Writes records of type `T` to the one topic its actor owns.
///
/// The runtime hands each actor exactly one publisher, bound to its output
/// topic; there is no other way for an actor to write, which is how the
/// single-writer rule holds. Publishing enqueues the record and returns: the
/// producer batches records and the broker acknowledges them asynchronously.
/// While a handler runs, each published record is linked to the record being
/// handled (`causation_id`, `correlation_id`), and the inbound offset is not
/// committed until every such record is acknowledged.
pub struct Publisher<T: Record> {
    core: Arc<PublisherCore>,
    encoder: Encoder<T>,
    buf: RefCell<Vec<u8>>,
    clock: RefCell<Clock>,
}

/// The last publication time, as milliseconds and as RFC 3339 text: records
/// published within one millisecond share the formatting.
#[derive(Default)]
struct Clock {
    millis: i64,
    text: String,
}

impl<T: Record> fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.core.topic)
            .field("type", self.encoder.full_name())
            .finish()
    }
}

impl<T: Record> Publisher<T> {
    pub(crate) fn new(core: Arc<PublisherCore>) -> Result<Self> {
        Ok(Self {
            core,
            encoder: Encoder::new()?,
            buf: RefCell::new(Vec::with_capacity(256)),
            clock: RefCell::new(Clock::default()),
        })
    }

    /// The topic this publisher writes to.
    pub fn topic(&self) -> &str {
        &self.core.topic
    }

    /// Publishes `value` under `key`; records with one key keep their order.
    ///
    /// Returns once the record is queued for sending. Fails when the value
    /// does not fit its schema or the producer refuses the record.
    pub fn publish<K>(&self, key: &K, value: impl Borrow<T>) -> Result<()>
    where
        K: AsRef<[u8]> + ?Sized,
    {
        self.send(Some(key.as_ref()), value.borrow(), None)
    }

    /// Publishes `value` without a key (the producer spreads such records
    /// over partitions).
    pub fn publish_unkeyed(&self, value: impl Borrow<T>) -> Result<()> {
        self.send(None, value.borrow(), None)
    }

    /// Forwards an inbound record unchanged in meaning: its value (encoded
    /// with this publisher's schema), its key and all its headers, the
    /// CloudEvents ones included (`ce_id` stays the original event's). Only
    /// standard headers the record lacks are added. As with `publish`, the
    /// inbound offset commits once the forwarded record is acknowledged.
    pub fn forward(&self, inbound: &Inbound<T>) -> Result<()> {
        self.send(inbound.key(), inbound.value(), Some(inbound.headers()))
    }

    fn send(&self, key: Option<&[u8]>, value: &T, keep: Option<&Headers>) -> Result<()> {
        let mut buf = self.buf.borrow_mut();
        buf.clear();
        self.encoder
            .encode(value, &mut buf)
            .map_err(|source| Error::Encode {
                topic: self.core.topic.to_string(),
                source,
            })?;
        let mut id_buf = [0u8; 36];
        let id: &str = crate::clock::new_id()
            .hyphenated()
            .encode_lower(&mut id_buf);
        let now = crate::clock::now();
        let millis = crate::clock::millis_of(now);
        let mut clock = self.clock.borrow_mut();
        if clock.millis != millis || clock.text.is_empty() {
            clock.millis = millis;
            clock.text.clear();
            let _ = write!(clock.text, "{}", humantime::format_rfc3339_millis(now));
        }
        let cause = self.core.cause();
        let (correlation_id, causation_id, slot) = match &*cause {
            Some(cause) => (
                cause.correlation_id.as_deref().unwrap_or(id),
                cause.ce_id.as_deref(),
                cause.slot.clone(),
            ),
            None => (id, None, self.core.detached.clone()),
        };
        let outbound = Outbound {
            id,
            ty: self.encoder.full_name(),
            source: &self.core.source,
            time: &clock.text,
            correlation_id,
            causation_id,
        };
        // Without the `testing` feature, Kafka is the only sink.
        #[allow(clippy::infallible_destructuring_match)]
        let producer = match &self.core.sink {
            Sink::Kafka(producer) => producer,
            #[cfg(feature = "testing")]
            Sink::Sim(outlet) => {
                let headers = match keep {
                    None => Headers::from_pairs(outbound.pairs()),
                    Some(inbound) => Headers::from_pairs(inbound.forwarded(&outbound)),
                };
                drop(cause);
                return outlet.append(key, &buf, headers, millis);
            }
        };
        let headers = match keep {
            None => to_kafka(outbound.pairs()),
            Some(inbound) => to_kafka(inbound.forwarded(&outbound)),
        };
        drop(cause);
        slot.add_pending();
        let mut record = BaseRecord::with_opaque_to(&self.core.topic, slot)
            .payload(buf.as_slice())
            .headers(headers)
            .timestamp(millis);
        if let Some(key) = key {
            record = record.key(key);
        }
        send(producer, record, &self.core.topic)
    }
}

/// Sends a record, waiting while librdkafka's local queue is full. On a
/// refusal the record's ack slot is released and the error returned.
pub(crate) fn send(
    producer: &Producer,
    mut record: BaseRecord<'_, [u8], [u8], Arc<AckSlot>>,
    topic: &str,
) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                // The local queue is full: wait for the broker to drain it.
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((source, back)) => {
                back.delivery_opaque.done();
                return Err(Error::Publish {
                    topic: topic.to_owned(),
                    source,
                });
            }
        }
    }
}
