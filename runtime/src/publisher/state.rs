//! [`PublisherCore`]: what an actor's publisher shares with its feed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;

use crate::delivery::tracker::AckSlot;
use crate::error::{Error, Result};
use crate::wire::codec::Fingerprint;
use crate::wire::envelope::Envelope;
use crate::wire::headers::Outgoing;

use super::producer::DEFAULT_MAX_MESSAGE_BYTES;
use super::sink::{Sending, Sink};
use super::txn::{Transaction, TxnFailure};
use crate::delivery::consumed::Position;
use crate::state::changelog::{RESTORED, STATE_INPUT};
use crate::state::stores::Stores;

/// The record being handled while a handler runs: what publishes inherit.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    /// Its headers, shared with the record: its id is the causation id
    /// of what the handler publishes, its correlation id (or else its id)
    /// their correlation id.
    pub(crate) headers: Arc<crate::wire::headers::Headers>,
    pub(crate) slot: Arc<AckSlot>,
    /// With tracing on: the handling span, the parent of what it publishes.
    pub(crate) trace: Option<crate::ops::trace::TraceParent>,
}

/// State shared by an actor's publisher and the runtime driving the actor.
pub(crate) struct PublisherCore {
    pub(crate) sink: Sink,
    pub(crate) topic: Arc<str>,
    pub(crate) source: String,
    /// How its records carry their metadata.
    pub(crate) envelope: Envelope,
    pub(super) cause: Mutex<Option<Cause>>,
    pub(super) detached: Arc<AckSlot>,
    /// Exactly-once: the producer's transaction state.
    txn: Option<Transaction>,
    /// Records sent so far: tells whether a failed handler published.
    pub(super) sent: AtomicU64,
    /// The producer's `message.max.bytes`: what a dead letter must fit.
    pub(super) max_message_bytes: usize,
    /// Set when the broker reported a record not delivered: the feed
    /// stops taking records at once, so nothing it handles after the
    /// failure is published before the failed record is handled again.
    pub(super) undelivered: Arc<AtomicBool>,
    /// With tracing on: the node's tracer.
    pub(crate) tracer: Option<crate::ops::trace::Tracer>,
    /// With a Kafka client: what a [`Requester`](crate::Requester) reads
    /// replies with.
    pub(crate) asking: Option<Asking>,
    /// When the topic is written in the schema registry's framing: the
    /// registry id of each schema the actor writes, by fingerprint.
    pub(crate) schema_ids: Option<Arc<HashMap<Fingerprint, u32>>>,
    /// The actor's stores, when it declares any: their changes are written
    /// with its records, and committed or aborted with its transactions.
    pub(crate) stores: Option<Arc<Stores>>,
}

/// What an actor's requesters read replies with: a tail of the reply
/// topic (a Kafka consumer, or the simulator's log), the node's schemas,
/// and the actor's name.
pub(crate) struct Asking {
    pub(crate) reading: crate::kafka::tail::TailReading,
    pub(crate) registry: crate::wire::codec::SchemaRegistry,
    pub(crate) actor: String,
}

impl PublisherCore {
    pub(crate) fn new(sink: Sink, topic: Arc<str>, source: String) -> Self {
        Self {
            sink,
            topic,
            source,
            envelope: Envelope::default(),
            cause: Mutex::new(None),
            detached: AckSlot::detached(),
            txn: None,
            sent: AtomicU64::new(0),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            undelivered: Arc::default(),
            tracer: None,
            schema_ids: None,
            asking: None,
            stores: None,
        }
    }

    /// Keeps the actor's state in `stores`, if it has any.
    pub(crate) fn stores(mut self, stores: Option<Arc<Stores>>) -> Self {
        self.stores = stores;
        self
    }

    /// After restoring `partition` (at-least-once): writes each key whose
    /// last change the restore dropped, with its restored value (a
    /// tombstone when absent), marked as written by a restore, to the
    /// changelog of its store (`restored` is in store order), counted on
    /// `slot`.
    pub(crate) fn write_repairs(
        &self,
        partition: i32,
        restored: &[crate::state::restore::Restored],
        slot: &Arc<AckSlot>,
    ) -> Result<()> {
        let Some(stores) = &self.stores else {
            return Ok(());
        };
        let headers = [(STATE_INPUT, RESTORED.as_bytes())];
        let mut buf = Vec::new();
        for (spec, restored) in stores.specs().iter().zip(restored) {
            for (key, value) in &restored.repairs {
                let record = Sending {
                    topic: &spec.info.changelog,
                    partition: Some(partition),
                    key: Some(key),
                    value: value.as_deref(),
                    headers: Outgoing::Bare(&headers),
                    timestamp: None,
                };
                self.send(record, &mut buf, slot)?;
            }
        }
        Ok(())
    }

    /// After a handler returned `Ok`: writes its state changes to their
    /// changelogs, counted on `slot` (the handled record's), and makes
    /// them its stores'. An error fails the slot: the record's offset
    /// never commits.
    pub(crate) fn write_changes(&self, slot: &Arc<AckSlot>) -> Result<()> {
        let Some(stores) = &self.stores else {
            return Ok(());
        };
        let mut buf = Vec::new();
        stores.finish(|change| {
            let headers = [(STATE_INPUT, change.input.as_bytes())];
            let record = Sending {
                topic: change.topic,
                partition: Some(change.partition),
                key: Some(change.key),
                value: change.value,
                headers: Outgoing::Bare(&headers),
                timestamp: None,
            };
            self.send(record, &mut buf, slot)
                .inspect_err(|_| slot.fail())
        })
    }

    /// Lets its actor ask ([`Publisher::requester`](crate::Publisher::requester)).
    pub(crate) fn asking(mut self, asking: Asking) -> Self {
        self.asking = Some(asking);
        self
    }

    /// Writes in the schema registry's framing, with these ids.
    pub(crate) fn schema_ids(mut self, ids: Option<Arc<HashMap<Fingerprint, u32>>>) -> Self {
        self.schema_ids = ids;
        self
    }

    /// Its records are traced by `tracer`, if any.
    pub(crate) fn traced(mut self, tracer: Option<crate::ops::trace::Tracer>) -> Self {
        self.tracer = tracer;
        self
    }

    /// Its records carry their metadata in `envelope`.
    pub(crate) fn envelope(mut self, envelope: Envelope) -> Self {
        self.envelope = envelope;
        self
    }

    /// The flag the sink's delivery reports set when a record was not
    /// delivered.
    pub(crate) fn reporting_to(mut self, undelivered: Arc<AtomicBool>) -> Self {
        self.undelivered = undelivered;
        self
    }

    /// Whether a record was reported not delivered.
    pub(crate) fn undelivered(&self) -> bool {
        self.undelivered.load(Ordering::Acquire)
    }

    /// Sets or clears [`PublisherCore::undelivered`].
    pub(crate) fn set_undelivered(&self, undelivered: bool) {
        self.undelivered.store(undelivered, Ordering::Release);
    }

    /// The producer's `message.max.bytes`, when it is not librdkafka's
    /// default.
    pub(crate) fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Records sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub(crate) fn cause(&self) -> std::sync::MutexGuard<'_, Option<Cause>> {
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

    /// Sends `record`, caused by the record of `cause_slot` (inside or
    /// outside a transaction): it counts on the slot until the broker
    /// acknowledges it. The caller fails the slot on an error. `buf` holds
    /// the record's compact envelope while it is copied.
    pub(crate) fn send(
        &self,
        record: Sending<'_>,
        buf: &mut Vec<u8>,
        cause_slot: &Arc<AckSlot>,
    ) -> Result<()> {
        self.begin_transaction()?;
        let ack = self.ack_slot(cause_slot.clone());
        ack.add_pending();
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.sink.send(record, (self.envelope, buf), ack)
    }

    /// Writes a record the actor gives up on to its dead-letter topic: the
    /// original key, value and headers, plus `extra` headers saying why.
    /// `slot` completes once the dead letter is acknowledged. A record too
    /// large for the producer goes as much of it as fits, saying so in
    /// [`DLQ_TRUNCATED`](crate::wire::headers::DLQ_TRUNCATED). When nothing can
    /// be written, `slot` fails: the record's offset never commits.
    pub(crate) fn dead_letter(
        &self,
        topic: &str,
        raw: &crate::delivery::consumed::Fetched,
        extra: &[(&str, &[u8])],
        slot: &Arc<AckSlot>,
    ) -> Result<()> {
        // A dead letter dead-lettered again carries only the latest
        // failure's headers, and whether it is only part of its record.
        let mut buf = Vec::new();
        let mut write = |key: Option<&[u8]>, value: &[u8], extra: &[(&str, &[u8])]| {
            let record = Sending {
                topic,
                partition: None,
                key,
                value: Some(value),
                headers: Outgoing::Kept(&raw.headers, extra),
                timestamp: raw.timestamp,
            };
            self.send(record, &mut buf, slot)
        };
        let written = match write(raw.key.as_deref(), &raw.value, extra) {
            Err(Error::Publish {
                source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                ..
            }) => {
                let pairs: Vec<(&str, &[u8])> =
                    raw.headers.iter().chain(extra.iter().copied()).collect();
                let cut = Truncated::fit(self.max_message_bytes, raw, &pairs);
                tracing::warn!(topic, truncated = %cut.note, "dead letter too large for the producer; writing what fits");
                let mut extra = extra.to_vec();
                extra.push((crate::wire::headers::DLQ_TRUNCATED, cut.note.as_bytes()));
                let key = raw.key.as_deref().filter(|_| cut.keep_key);
                write(key, &raw.value[..cut.value], &extra)
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
    pub(super) fn ack_slot(&self, cause_slot: Arc<AckSlot>) -> Arc<AckSlot> {
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
            #[cfg(feature = "testing")]
            Sink::Dyn(sink) => {
                sink.flush();
                Ok(())
            }
        }
    }
}

/// An exactly-once actor's transactions ([`super::txn`]), on its sink.
impl PublisherCore {
    /// Makes the core transactional, as producer `id`.
    pub(crate) fn transactional(mut self, id: String, timeout: Duration) -> Self {
        self.txn = Some(Transaction::new(id, timeout));
        self
    }

    /// Whether outputs go through transactions.
    pub(crate) fn is_transactional(&self) -> bool {
        self.txn.is_some()
    }

    /// Whether a transaction is open.
    pub(crate) fn is_open(&self) -> bool {
        self.txn.as_ref().is_some_and(Transaction::is_open)
    }

    /// Registers the transactional id with the broker: fences any older
    /// instance and finishes its open transaction.
    pub(crate) fn init_transactions(&self) -> Result<()> {
        self.txn.as_ref().map_or(Ok(()), |txn| txn.init(&self.sink))
    }

    /// Opens a transaction unless one is open.
    fn begin_transaction(&self) -> Result<()> {
        self.txn
            .as_ref()
            .map_or(Ok(()), |txn| txn.begin(&self.sink))
    }

    /// Commits the open transaction with `offsets` in the consumer group
    /// of `group` (see [`Transaction::commit`]); returns whether one was
    /// committed and how many steps were retried.
    pub(crate) fn commit(
        &self,
        offsets: &[Position],
        group: Option<&ConsumerGroupMetadata>,
    ) -> std::result::Result<(bool, u32), TxnFailure> {
        let committed = self
            .txn
            .as_ref()
            .map_or(Ok((false, 0)), |txn| txn.commit(&self.sink, offsets, group));
        if let (Ok((true, _)), Some(stores)) = (&committed, &self.stores) {
            stores.committed();
        }
        committed
    }

    /// Aborts the open transaction, if one is open; returns whether one was.
    pub(crate) fn abort(&self) -> bool {
        if let Some(stores) = &self.stores {
            stores.aborted();
        }
        self.txn.as_ref().is_some_and(|txn| txn.abort(&self.sink))
    }
}

/// How much of a record too large for the producer a dead letter keeps.
struct Truncated {
    /// Bytes of the value kept, from its start.
    value: usize,
    /// Whether the key is kept.
    keep_key: bool,
    /// What was kept, for [`DLQ_TRUNCATED`](crate::wire::headers::DLQ_TRUNCATED).
    note: String,
}

impl Truncated {
    /// Room for the record batch and header framing librdkafka adds.
    const OVERHEAD: usize = 1024;

    /// What fits in `max` bytes, with `pairs` as headers.
    fn fit(max: usize, raw: &crate::delivery::consumed::Fetched, pairs: &[(&str, &[u8])]) -> Self {
        let headers: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
        let room = max.saturating_sub(headers + Self::OVERHEAD + 64);
        let key = raw.key.as_ref().map_or(0, |key| key.len());
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
