//! [`Publisher`]: the only way an actor writes, bound to the topic it owns.
//!
//! [`state`] is the state a publisher shares with the feed that drives its
//! actor (the record being handled, the dead letters); [`sink`] is the seam
//! under it, where records go;
//! [`producer`] sends records and receives the broker's delivery reports;
//! [`txn`] runs an exactly-once actor's transactions.
//!
//! Owns: writing records (an actor's, its dead letters, a gateway's
//! requests) and knowing when they are acknowledged. May import: `error`,
//! `wire`, `kafka`, `delivery`, `ops`. Imported by: `actor`, `ask`,
//! `handling`, `feed`, `supervisor`, `sim` (its sink).

mod producer;
mod sink;
mod state;
mod txn;

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::Records;
use crate::delivery::inbound::Inbound;
use crate::delivery::tracker::AckSlot;
use crate::error::{Error, Result};
use crate::state::Store;
use crate::wire::codec::{Encoders, Fingerprint, full_name};
use crate::wire::headers::{Headers, Outbound, Outgoing};

pub(crate) use producer::KafkaProducer;
#[cfg(feature = "testing")]
pub(crate) use sink::{DynSink, Sent};
pub(crate) use sink::{Sending, Sink};
pub(crate) use state::{Asking, Cause, PublisherCore};
pub(crate) use txn::TxnFailure;

/// Writes records of type `T` (one [`Record`](crate::Record) type, or a
/// closed set of them made with [`records!`](crate::records)) to the one
/// topic its actor owns.
///
/// The runtime hands each actor exactly one publisher, bound to its output
/// topic; there is no other way for an actor to write, which is how the
/// single-writer rule holds. Publishing enqueues the record and returns: the
/// producer batches records and the broker acknowledges them asynchronously.
/// While a handler runs, each published record is linked to the record being
/// handled (`causation_id`, `correlation_id`), and the inbound offset is not
/// committed until every such record is acknowledged.
pub struct Publisher<T: Records> {
    pub(crate) core: Arc<PublisherCore>,
    encoders: Encoders,
    /// In the schema registry's framing: each type's header, by index.
    frames: Option<Vec<[u8; crate::wire::framing::HEADER_LEN]>>,
    _type: std::marker::PhantomData<fn(T)>,
    buf: RefCell<Vec<u8>>,
    /// The compact envelope of the record being sent.
    envelope: RefCell<Vec<u8>>,
    clock: RefCell<Clock>,
}

/// The last publication time, as milliseconds and as RFC 3339 text: records
/// published within one millisecond share the formatting.
#[derive(Default)]
struct Clock {
    millis: i64,
    text: String,
}

impl<T: Records> fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.core.topic)
            .field("types", &self.encoders)
            .finish()
    }
}

impl<T: Records> Publisher<T> {
    pub(crate) fn new(core: Arc<PublisherCore>) -> Result<Self> {
        let encoders = T::encoders()?;
        let frames = match &core.schema_ids {
            None => None,
            Some(ids) => Some(
                (0..encoders.len())
                    .map(|index| {
                        let id = ids.get(&encoders.fingerprint(index)).ok_or_else(|| {
                            Error::Registry {
                                url: String::new(),
                                call: format!("writing `{}`", core.topic),
                                reason: format!(
                                    "type `{}` has no schema id",
                                    encoders.full_name(index)
                                ),
                            }
                        })?;
                        Ok(crate::wire::framing::header(*id))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Ok(Self {
            core,
            encoders,
            frames,
            _type: std::marker::PhantomData,
            buf: RefCell::new(Vec::with_capacity(256)),
            envelope: RefCell::new(Vec::with_capacity(256)),
            clock: RefCell::new(Clock::default()),
        })
    }

    /// The topic this publisher writes to.
    pub fn topic(&self) -> &str {
        &self.core.topic
    }

    /// The actor's store `name`, as declared in
    /// [`TopicActor::subscriptions`](crate::TopicActor::subscriptions) with
    /// [`Subscriptions::store`](crate::Subscriptions::store): keys of type
    /// `K`, values of type `V`. Take it in `create`; its changes are
    /// written to its changelog with this publisher's records. Fails when
    /// the actor declares no store of that name, or declares it with other
    /// types.
    pub fn store<K: crate::Record, V: crate::Record>(&self, name: &str) -> Result<Store<K, V>> {
        let refused = |reason: String| self.state_refused(name, reason);
        let Some(stores) = &self.core.stores else {
            return Err(refused(
                "the actor declares no store (`Subscriptions::store` in `subscriptions`)".into(),
            ));
        };
        let index = stores.index_of(name).ok_or_else(|| {
            refused("the actor declares no store of this name (`Subscriptions::store`)".into())
        })?;
        let info = &stores.specs()[index].info;
        let (key, value) = (K::get_schema(), V::get_schema());
        if Fingerprint::of(&key) != Fingerprint::of(&info.key_schema)
            || Fingerprint::of(&value) != Fingerprint::of(&info.value_schema)
        {
            return Err(refused(format!(
                "declared as Store<{}, {}>, taken as Store<{}, {}>",
                info.key_type,
                info.value_type,
                full_name(&key),
                full_name(&value)
            )));
        }
        Store::new(stores.clone(), index)
    }

    /// The actor's timer set `name`, with keys of type `K`: what it sets
    /// and cancels its timers with. Fails as [`Publisher::store`] does,
    /// and for a store that is not a timer set.
    pub fn timers<K: crate::Record>(&self, name: &str) -> Result<crate::state::Timers<K>> {
        let store = self.store::<K, crate::state::due::TimerDue>(name)?;
        let is_set = self.core.stores.as_ref().is_some_and(|stores| {
            stores
                .index_of(name)
                .is_some_and(|index| stores.specs()[index].clock.is_some())
        });
        if !is_set {
            return Err(self.state_refused(
                name,
                "a store, not a timer set (`Subscriptions::timers`)".into(),
            ));
        }
        Ok(crate::state::Timers::new(store))
    }

    /// Why the actor's store `store` cannot be taken.
    fn state_refused(&self, store: &str, reason: String) -> Error {
        let actor = match &self.core.stores {
            Some(stores) => stores.actor(),
            // `node/actor`, its `ce_source`.
            None => self.core.source.rsplit('/').next().unwrap_or_default(),
        };
        Error::State {
            actor: actor.to_owned(),
            store: store.to_owned(),
            reason,
        }
    }

    /// Publishes `value` under `key`; records with one key keep their order.
    ///
    /// Returns once the record is queued for sending. Fails when the value
    /// does not fit its schema or the producer refuses the record.
    pub fn publish<K>(&self, key: &K, value: impl Borrow<T>) -> Result<()>
    where
        K: AsRef<[u8]> + ?Sized,
    {
        self.send(Some(key.as_ref()), value.borrow(), Send::Plain)
    }

    /// Publishes `value` without a key (the producer spreads such records
    /// over partitions).
    pub fn publish_unkeyed(&self, value: impl Borrow<T>) -> Result<()> {
        self.send(None, value.borrow(), Send::Plain)
    }

    /// Forwards an inbound record unchanged in meaning: its value (encoded
    /// with this publisher's schema), its key and all its headers, the
    /// CloudEvents ones included (`ce_id` stays the original event's). Only
    /// standard headers the record lacks are added. As with `publish`, the
    /// inbound offset commits once the forwarded record is acknowledged.
    pub fn forward(&self, inbound: &Inbound<T>) -> Result<()> {
        self.send(
            inbound.key(),
            inbound.value(),
            Send::Forward(inbound.headers()),
        )
    }

    /// Encodes and sends `value` under `key`, its metadata as `how` says.
    pub(crate) fn send(&self, key: Option<&[u8]>, value: &T, how: Send<'_>) -> Result<()> {
        let mut buf = self.buf.borrow_mut();
        let index = self.encode(value, &mut buf)?;
        let mut id_buf = [0u8; 36];
        let id: &str = match how {
            Send::Request(id) | Send::Sent(id, _) => id,
            _ => crate::wire::clock::new_id()
                .hyphenated()
                .encode_lower(&mut id_buf),
        };
        let (millis, clock) = self.now();
        let current = self.core.cause();
        let cause = match how {
            Send::CausedBy(held) => Some(held),
            _ => current.as_ref(),
        };
        // Outside handling, with tracing on: a span of its own.
        let published = match (cause, &self.core.tracer) {
            (None, Some(tracer)) => Some(tracer.publish(&self.core.source, &self.core.topic, id)),
            _ => None,
        };
        let lineage = self.lineage(cause, id, published.as_ref());
        let outbound = Outbound {
            id,
            ty: match value.record_type() {
                Some(named) => named,
                None => self.encoders.full_name(index),
            },
            source: &self.core.source,
            time: &clock.text,
            correlation_id: lineage.correlation_id,
            causation_id: lineage.causation_id,
            traceparent: lineage.traceparent,
            tracestate: lineage.tracestate,
        };
        // The cause stays locked while its headers are read: only this
        // thread takes the lock.
        const EXPECTS: [(&str, &[u8]); 1] = [(crate::wire::headers::EXPECTS_REPLY, b"1")];
        let headers = match how {
            Send::Forward(inbound) => Outgoing::Forwarded(inbound, &outbound),
            Send::Request(_) | Send::Sent(..) => Outgoing::Answer(&outbound, &EXPECTS),
            Send::Plain | Send::CausedBy(_) => Outgoing::Fresh(&outbound),
        };
        let slot = match how {
            Send::Sent(_, watched) => watched.clone(),
            _ => lineage.slot,
        };
        let record = Sending {
            topic: &self.core.topic,
            partition: None,
            key,
            value: Some(&buf),
            headers,
            timestamp: Some(millis),
        };
        let sent = self
            .core
            .send(record, &mut self.envelope.borrow_mut(), &slot);
        drop(current);
        // A refused publish fails the record that caused it, whatever the
        // handler does with the error: its offset never commits.
        sent.inspect_err(|_| slot.fail())
    }

    /// Encodes `value` into `buf` (emptied first), in the topic's framing;
    /// returns the index of its type.
    fn encode(&self, value: &T, buf: &mut Vec<u8>) -> Result<usize> {
        buf.clear();
        let index = value
            .encode(&self.encoders, buf)
            .map_err(|source| Error::Encode {
                topic: self.core.topic.to_string(),
                source,
            })?;
        if let Some(frames) = &self.frames {
            crate::wire::framing::reframe(buf, &frames[index]);
        }
        Ok(index)
    }

    /// The time now, in milliseconds and as RFC 3339 text (formatted once
    /// per millisecond).
    fn now(&self) -> (i64, std::cell::RefMut<'_, Clock>) {
        let now = crate::wire::clock::now();
        let millis = crate::wire::clock::millis_of(now);
        let mut clock = self.clock.borrow_mut();
        if clock.millis != millis || clock.text.is_empty() {
            clock.millis = millis;
            clock.text.clear();
            let _ = write!(clock.text, "{}", humantime::format_rfc3339_millis(now));
        }
        (millis, clock)
    }

    /// Where a record with id `id` comes from: the record whose handling
    /// caused it, if any, else itself (and the span `published` of its own,
    /// when traced).
    fn lineage<'a>(
        &'a self,
        cause: Option<&'a Cause>,
        id: &'a str,
        published: Option<&'a crate::ops::trace::TraceParent>,
    ) -> Lineage<'a> {
        match cause {
            Some(cause) => Lineage {
                correlation_id: cause
                    .headers
                    .correlation_id()
                    .or(cause.headers.id())
                    .unwrap_or(id),
                causation_id: cause.headers.id(),
                slot: cause.slot.clone(),
                // The handling span when traced; else the trace context
                // the record came with, passed on unchanged.
                traceparent: cause
                    .trace
                    .as_ref()
                    .map(|t| t.as_str())
                    .or(cause.headers.traceparent()),
                tracestate: cause.headers.tracestate(),
            },
            None => Lineage {
                correlation_id: id,
                causation_id: None,
                slot: self.core.detached.clone(),
                traceparent: published.map(|t| t.as_str()),
                tracestate: None,
            },
        }
    }
}

/// A record's metadata from the record that caused it, and the ack slot
/// it counts on.
struct Lineage<'a> {
    correlation_id: &'a str,
    causation_id: Option<&'a str>,
    slot: Arc<AckSlot>,
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

/// How [`Publisher::send`] sends a record.
#[derive(Clone, Copy)]
pub(crate) enum Send<'a> {
    /// Fresh metadata, caused by the record being handled, if any.
    Plain,
    /// The inbound record's metadata kept.
    Forward(&'a Headers),
    /// A request with this id, marked as expecting a reply.
    Request(&'a str),
    /// A request with this id, counted on this slot (a gateway's, outside
    /// any handler), which it awaits.
    Sent(&'a str, &'a Arc<AckSlot>),
    /// Caused by a record held for an answered request.
    CausedBy(&'a Cause),
}
