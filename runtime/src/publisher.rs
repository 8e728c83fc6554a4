//! [`Publisher`]: the only way an actor writes, bound to the topic it owns.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientContext, TopicPartitionList};

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
}

/// A publish waiting this long for room in the producer's queue is logged.
const STALL_WARNING: Duration = Duration::from_secs(1);

impl ClientContext for DeliveryTracker {}

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
    /// Exactly-once: the producer's transaction state.
    txn: Option<Transaction>,
    /// Records sent so far: tells whether a failed handler published.
    sent: AtomicU64,
    /// The producer's `message.max.bytes`: what a dead letter must fit.
    max_message_bytes: usize,
}

/// The state of an exactly-once actor's transactions.
#[derive(Debug)]
struct Transaction {
    id: String,
    open: AtomicBool,
    /// How long a step waits for the broker before its outcome is unknown.
    timeout: Duration,
}

impl Transaction {
    /// Opens a transaction unless one is open.
    fn ensure_open(&self, producer: &Producer) -> rdkafka::error::KafkaResult<()> {
        if !self.open.load(Ordering::Acquire) {
            producer.begin_transaction()?;
            self.open.store(true, Ordering::Release);
        }
        Ok(())
    }
}

/// librdkafka's default `message.max.bytes`.
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// How many times a transaction commit whose outcome is unknown is retried
/// before the producer is rebuilt.
const COMMIT_TRIES: u32 = 5;

/// Why a transaction did not commit, and what must follow.
#[derive(Debug)]
pub(crate) enum TxnFailure {
    /// Failed for sure: abort it; its records are handled again.
    Abortable(String),
    /// Its outcome is unknown after every retry: never abort it. Drop the
    /// producer: the next one, with the same transactional id, makes the
    /// broker finish it (committed or not) before going on.
    Unknown(String),
    /// Fenced by a newer instance with the same transactional id, or
    /// otherwise fatal: this instance must stop.
    Fatal(String),
}

impl TxnFailure {
    /// What failed, and why.
    pub(crate) fn reason(&self) -> &str {
        match self {
            TxnFailure::Abortable(reason)
            | TxnFailure::Unknown(reason)
            | TxnFailure::Fatal(reason) => reason,
        }
    }
}

impl PublisherCore {
    pub(crate) fn new(sink: Sink, topic: Arc<str>, source: String) -> Self {
        Self {
            sink,
            topic,
            source,
            cause: Mutex::new(None),
            detached: AckSlot::detached(),
            txn: None,
            sent: AtomicU64::new(0),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// The producer's `message.max.bytes`, when it is not librdkafka's
    /// default.
    pub(crate) fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Makes the core transactional, as producer `id`.
    pub(crate) fn transactional(mut self, id: String, timeout: Duration) -> Self {
        self.txn = Some(Transaction {
            id,
            open: AtomicBool::new(false),
            timeout,
        });
        self
    }

    /// Whether outputs go through transactions.
    pub(crate) fn is_transactional(&self) -> bool {
        self.txn.is_some()
    }

    /// Whether a transaction is open.
    pub(crate) fn is_open(&self) -> bool {
        self.txn
            .as_ref()
            .is_some_and(|txn| txn.open.load(Ordering::Acquire))
    }

    /// Records sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn producer(&self) -> Option<&Producer> {
        match &self.sink {
            Sink::Kafka(producer) => Some(producer),
            #[cfg(feature = "testing")]
            Sink::Sim(_) => None,
        }
    }

    /// Registers the transactional id with the broker: fences any older
    /// instance and finishes its open transaction.
    pub(crate) fn init_transactions(&self) -> Result<()> {
        let (Some(txn), Some(producer)) = (&self.txn, self.producer()) else {
            return Ok(());
        };
        retry(&txn.id, "init", || producer.init_transactions(txn.timeout))
            .map(|_| ())
            .map_err(|failure| Error::Transaction {
                reason: failure.reason().to_owned(),
            })
    }

    /// Opens a transaction unless one is open.
    fn begin_transaction(&self) -> Result<()> {
        let (Some(txn), Some(producer)) = (&self.txn, self.producer()) else {
            return Ok(());
        };
        txn.ensure_open(producer)
            .map_err(|e| Error::kafka(format!("cannot begin a transaction as `{}`", txn.id), e))
    }

    /// Commits the open transaction with `offsets` (the input positions
    /// of every record handled in it), opening one if only offsets are new.
    /// A step whose outcome is unknown is retried, never aborted. Returns
    /// whether a transaction was committed and how many steps were retried.
    pub(crate) fn commit(
        &self,
        offsets: Option<(&TopicPartitionList, &ConsumerGroupMetadata)>,
    ) -> std::result::Result<(bool, u32), TxnFailure> {
        let (Some(txn), Some(producer)) = (&self.txn, self.producer()) else {
            return Ok((false, 0));
        };
        if offsets.is_none() && !txn.open.load(Ordering::Acquire) {
            return Ok((false, 0));
        }
        txn.ensure_open(producer)
            .map_err(|e| classify(&txn.id, "begin", &e))?;
        let mut retries = 0;
        if let Some((offsets, group)) = offsets {
            retries += retry(&txn.id, "send offsets to", || {
                producer.send_offsets_to_transaction(offsets, group, txn.timeout)
            })?;
        }
        retries += retry(&txn.id, "commit", || {
            producer.commit_transaction(txn.timeout)
        })?;
        txn.open.store(false, Ordering::Release);
        Ok((true, retries))
    }

    /// Aborts the open transaction, if one is open: what it wrote is never
    /// read by a `read_committed` consumer. Returns whether one was.
    pub(crate) fn abort(&self) -> bool {
        let (Some(txn), Some(producer)) = (&self.txn, self.producer()) else {
            return false;
        };
        if !txn.open.swap(false, Ordering::AcqRel) {
            return false;
        }
        if let Err(error) = producer.abort_transaction(txn.timeout) {
            // The next producer with this id aborts it on the broker.
            tracing::warn!(transactional_id = %txn.id, %error, "cannot abort the transaction");
        }
        true
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
    /// `slot` completes once the dead letter is acknowledged. A record too
    /// large for the producer goes as much of it as fits, saying so in
    /// [`DLQ_TRUNCATED`](crate::headers::DLQ_TRUNCATED). When nothing can
    /// be written, `slot` fails: the record's offset never commits.
    pub(crate) fn dead_letter(
        &self,
        topic: &str,
        raw: &crate::handling::Raw,
        extra: &[(&str, &[u8])],
        slot: &Arc<AckSlot>,
    ) -> Result<()> {
        self.begin_transaction()?;
        // A dead letter dead-lettered again carries only the latest
        // failure's headers, and whether it is only part of its record.
        let pairs: Vec<(&str, &[u8])> = raw
            .headers
            .iter()
            .filter(|(key, _)| {
                !crate::headers::is_dead_letter(key) || *key == crate::headers::DLQ_TRUNCATED
            })
            .chain(extra.iter().copied())
            .collect();
        let producer = match &self.sink {
            Sink::Kafka(producer) => producer,
            #[cfg(feature = "testing")]
            Sink::Sim(outlet) => return outlet.dead_letter(topic, raw, Headers::from_pairs(pairs)),
        };
        let write = |key: Option<&[u8]>, value: &[u8], pairs: &[(&str, &[u8])]| {
            let ack = self.ack_slot(slot.clone());
            ack.add_pending();
            let mut record = BaseRecord::with_opaque_to(topic, ack)
                .payload(value)
                .headers(to_kafka(pairs.iter().copied()));
            if let Some(timestamp) = raw.timestamp {
                record = record.timestamp(timestamp);
            }
            if let Some(key) = key {
                record = record.key(key);
            }
            self.sent.fetch_add(1, Ordering::Relaxed);
            send(producer, record, topic)
        };
        let written = match write(raw.key.as_deref(), &raw.value, &pairs) {
            Err(Error::Publish {
                source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                ..
            }) => {
                let cut = Truncated::fit(self.max_message_bytes, raw, &pairs);
                tracing::warn!(topic, truncated = %cut.note, "dead letter too large for the producer; writing what fits");
                let mut pairs = pairs.clone();
                pairs.push((crate::headers::DLQ_TRUNCATED, cut.note.as_bytes()));
                let key = raw.key.as_deref().filter(|_| cut.keep_key);
                write(key, &raw.value[..cut.value], &pairs)
            }
            other => other,
        };
        if written.is_err() {
            slot.fail();
        }
        written
    }

    /// What a record sent while handling `cause_slot`'s record waits on:
    /// that slot, but under exactly-once, where the transaction commits
    /// the record's outputs and offset together, nothing.
    fn ack_slot(&self, cause_slot: Arc<AckSlot>) -> Arc<AckSlot> {
        if self.txn.is_some() {
            self.detached.clone()
        } else {
            cause_slot
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

/// How much of a record too large for the producer a dead letter keeps.
struct Truncated {
    /// Bytes of the value kept, from its start.
    value: usize,
    /// Whether the key is kept.
    keep_key: bool,
    /// What was kept, for [`DLQ_TRUNCATED`](crate::headers::DLQ_TRUNCATED).
    note: String,
}

impl Truncated {
    /// Room for the record batch and header framing librdkafka adds.
    const OVERHEAD: usize = 1024;

    /// What fits in `max` bytes, with `pairs` as headers.
    fn fit(max: usize, raw: &crate::handling::Raw, pairs: &[(&str, &[u8])]) -> Self {
        let headers: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
        let room = max.saturating_sub(headers + Self::OVERHEAD + 64);
        let key = raw.key.as_ref().map_or(0, Vec::len);
        let keep_key = key <= room / 2;
        let room = if keep_key { room - key } else { room };
        let value = raw.value.len().min(room);
        let note = format!(
            "value {value} of {} bytes{}",
            raw.value.len(),
            if keep_key { "" } else { ", key dropped" }
        );
        Self {
            value,
            keep_key,
            note,
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
        self.core.begin_transaction()?;
        let slot_of_cause = slot.clone();
        let slot = self.core.ack_slot(slot);
        slot.add_pending();
        self.core.sent.fetch_add(1, Ordering::Relaxed);
        let mut record = BaseRecord::with_opaque_to(&self.core.topic, slot)
            .payload(buf.as_slice())
            .headers(headers)
            .timestamp(millis);
        if let Some(key) = key {
            record = record.key(key);
        }
        send(producer, record, &self.core.topic).inspect_err(|_| slot_of_cause.fail())
    }
}

/// Calls a transaction step, again while its outcome is unknown and
/// librdkafka says it may be retried; returns how many times it was called
/// again.
fn retry(
    id: &str,
    step: &str,
    call: impl Fn() -> rdkafka::error::KafkaResult<()>,
) -> std::result::Result<u32, TxnFailure> {
    let mut tries = 0;
    loop {
        tries += 1;
        let Err(error) = call() else {
            return Ok(tries - 1);
        };
        let retriable = matches!(&error, KafkaError::Transaction(e) if e.is_retriable());
        match classify(id, step, &error) {
            TxnFailure::Unknown(reason) if retriable && tries < COMMIT_TRIES => {
                tracing::warn!(transactional_id = %id, tries, %reason, "transaction outcome unknown; retrying");
                std::thread::sleep(Duration::from_millis(100) * tries);
            }
            failure => return Err(failure),
        }
    }
}

/// What a failed transaction step means, after librdkafka's flags.
fn classify(id: &str, step: &str, error: &KafkaError) -> TxnFailure {
    let what = match step {
        "init" => format!("cannot init transactions as `{id}`"),
        step => format!("cannot {step} the transaction of `{id}`"),
    };
    let KafkaError::Transaction(e) = error else {
        // Not from the transaction API (a closed producer, a local state
        // error): nothing says the transaction failed, so no abort.
        return TxnFailure::Unknown(format!("{what}: {error}"));
    };
    use RDKafkaErrorCode as Code;
    match e.code() {
        Code::ProducerFenced | Code::InvalidProducerEpoch => TxnFailure::Fatal(format!(
            "{what}: fenced: another instance of the actor runs with this transactional id ({e})"
        )),
        Code::UnsupportedFeature | Code::UnsupportedVersion => TxnFailure::Fatal(format!(
            "{what}: the broker does not support transactions ({e})"
        )),
        _ if e.is_fatal() => TxnFailure::Fatal(format!("{what}: {e}")),
        _ if e.txn_requires_abort() => TxnFailure::Abortable(format!("{what}: {e}")),
        // Retriable (a timeout: the broker may have done it), or neither
        // retriable nor abortable: either way the outcome is not known.
        _ => TxnFailure::Unknown(format!("{what}: {e}")),
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
fn send(
    producer: &Producer,
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
