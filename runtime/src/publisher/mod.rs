//! [`Publisher`]: the only way an actor writes, bound to the topic it owns.
//!
//! [`state`] is the state a publisher shares with the feed that drives its
//! actor (the record being handled, the dead letters, the producer);
//! [`delivery`] sends records and receives the broker's delivery reports;
//! [`txn`] runs an exactly-once actor's transactions.

mod delivery;
mod state;
mod txn;

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::Records;
use crate::codec::Encoders;
use crate::error::{Error, Result};
use crate::gateway::{NoReply, Requester, RequesterOptions};
use crate::headers::{Headers, Outbound, Outgoing};
use crate::inbound::Inbound;
use crate::record::Record;

pub(crate) use delivery::{ActorProducer, DeliveryTracker};
#[cfg(feature = "testing")]
pub(crate) use state::DynSink;
use state::Held;
pub(crate) use state::{Asking, Cause, DEFAULT_MAX_MESSAGE_BYTES, PublisherCore, Sink};
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
    core: Arc<PublisherCore>,
    encoders: Encoders,
    /// In the schema registry's framing: each type's header, by index.
    frames: Option<Vec<[u8; crate::confluent::HEADER_LEN]>>,
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
                        Ok(crate::confluent::header(*id))
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

    /// Starts reading the replies to this actor's requests: of type `R`,
    /// on `options.replies`, the topic of the actor that answers (see
    /// [`Requester`]). Call it in `create`; it blocks until the reader is
    /// positioned at the end of every reply partition.
    pub fn requester<R: Record>(&self, options: RequesterOptions) -> Result<Requester<R>> {
        let refused = |reason: &str| Error::Gateway {
            gateway: format!("requester on `{}`", self.core.topic),
            reason: reason.into(),
        };
        let asking =
            self.core.asking.as_ref().ok_or_else(|| {
                refused("asking needs a node's Kafka client; the simulator has none")
            })?;
        if self.core.txn.is_some() {
            // A held record would keep its transaction open until the reply.
            return Err(refused(
                "an exactly-once actor cannot ask: its transaction would stay open until the reply",
            ));
        }
        Requester::start(
            &asking.settings,
            asking.registry.clone(),
            &asking.actor,
            options,
        )
    }

    /// Publishes `request` under `key` on this actor's topic as a request
    /// (its responder answers with an error reply when it cannot handle
    /// it) and returns the future of its reply, resolved within the
    /// requester's timeout.
    ///
    /// Asked while handling a record, that record stays unacknowledged
    /// (its offset does not commit) until the [`Answered`] the future
    /// resolves to is dropped, and what the actor publishes with
    /// [`Publisher::publish_answered`] counts on it as well: a crash before
    /// then hands the record to the actor again, which asks again. Fails at
    /// once when `max_pending` requests await replies already.
    pub fn ask<K, R>(
        &self,
        requester: &Requester<R>,
        key: &K,
        request: impl Borrow<T>,
    ) -> Result<Pending<R>>
    where
        K: AsRef<[u8]> + ?Sized,
        R: Record,
    {
        let asked = requester.expect()?;
        let held = self.core.cause().as_ref().map(|cause| {
            cause.slot.add_pending();
            Held(cause.clone())
        });
        if let Err(error) = self.send(
            Some(key.as_ref()),
            request.borrow(),
            Send::Request(&asked.id),
        ) {
            requester.unsent(&asked.id);
            return Err(error);
        }
        requester.sent();
        Ok(Pending {
            deadline: Box::pin(tokio::time::sleep(requester.options().timeout)),
            requester: requester.clone(),
            id: asked.id,
            reply: asked.reply,
            held,
        })
    }

    /// Publishes `value` under `key` as what the asking record caused (its
    /// `causation_id` and `correlation_id`): the record's offset commits
    /// only once this is acknowledged too.
    pub fn publish_answered<K, R>(
        &self,
        answered: &Answered<R>,
        key: &K,
        value: impl Borrow<T>,
    ) -> Result<()>
    where
        K: AsRef<[u8]> + ?Sized,
        R: Record,
    {
        match &answered.held {
            Some(held) => self.send(Some(key.as_ref()), value.borrow(), Send::CausedBy(&held.0)),
            None => self.send(Some(key.as_ref()), value.borrow(), Send::Plain),
        }
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

    fn send(&self, key: Option<&[u8]>, value: &T, how: Send<'_>) -> Result<()> {
        let mut buf = self.buf.borrow_mut();
        buf.clear();
        let index = value
            .encode(&self.encoders, &mut buf)
            .map_err(|source| Error::Encode {
                topic: self.core.topic.to_string(),
                source,
            })?;
        if let Some(frames) = &self.frames {
            crate::confluent::reframe(&mut buf, &frames[index]);
        }
        let mut id_buf = [0u8; 36];
        let id: &str = match how {
            Send::Request(id) => id,
            _ => crate::clock::new_id()
                .hyphenated()
                .encode_lower(&mut id_buf),
        };
        let now = crate::clock::now();
        let millis = crate::clock::millis_of(now);
        let mut clock = self.clock.borrow_mut();
        if clock.millis != millis || clock.text.is_empty() {
            clock.millis = millis;
            clock.text.clear();
            let _ = write!(clock.text, "{}", humantime::format_rfc3339_millis(now));
        }
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
        let (correlation_id, causation_id, slot, traceparent, tracestate) = match cause {
            Some(cause) => (
                cause
                    .headers
                    .correlation_id()
                    .or(cause.headers.id())
                    .unwrap_or(id),
                cause.headers.id(),
                cause.slot.clone(),
                // The handling span when traced; else the trace context
                // the record came with, passed on unchanged.
                cause
                    .trace
                    .as_ref()
                    .map(|t| t.as_str())
                    .or(cause.headers.traceparent()),
                cause.headers.tracestate(),
            ),
            None => (
                id,
                None,
                self.core.detached.clone(),
                published.as_ref().map(|t| t.as_str()),
                None,
            ),
        };
        let outbound = Outbound {
            id,
            ty: match value.record_type() {
                Some(named) => named,
                None => self.encoders.full_name(index),
            },
            source: &self.core.source,
            time: &clock.text,
            correlation_id,
            causation_id,
            traceparent,
            tracestate,
        };
        // The cause stays locked while its headers are read: only this
        // thread takes the lock.
        let topic = &self.core.topic;
        const EXPECTS: [(&str, &[u8]); 1] = [(crate::headers::EXPECTS_REPLY, b"1")];
        let headers = match how {
            Send::Forward(inbound) => Outgoing::Forwarded(inbound, &outbound),
            Send::Request(_) => Outgoing::Answer(&outbound, &EXPECTS),
            Send::Plain | Send::CausedBy(_) => Outgoing::Fresh(&outbound),
        };
        let sent = self.core.send(
            topic,
            key,
            &buf,
            headers,
            &mut self.envelope.borrow_mut(),
            Some(millis),
            &slot,
        );
        drop(current);
        // A refused publish fails the record that caused it, whatever the
        // handler does with the error: its offset never commits.
        sent.inspect_err(|_| slot.fail())
    }
}

/// How [`Publisher::send`] sends a record.
#[derive(Clone, Copy)]
enum Send<'a> {
    /// Fresh metadata, caused by the record being handled, if any.
    Plain,
    /// The inbound record's metadata kept.
    Forward(&'a Headers),
    /// A request with this id, marked as expecting a reply.
    Request(&'a str),
    /// Caused by a record held for an answered request.
    CausedBy(&'a Cause),
}

/// The reply to a request an actor asked ([`Publisher::ask`]), to come: a
/// future resolving to [`Answered`] once the reply comes, the responder
/// says it could not answer, or the requester's timeout passes. Spawn it
/// on the actor's context (`ctx.spawn(pending.into_actor(self).map(...))`).
#[must_use = "a request's reply is dealt with only when its future is awaited"]
pub struct Pending<R: Record> {
    requester: Requester<R>,
    id: String,
    reply: tokio::sync::oneshot::Receiver<std::result::Result<R, NoReply>>,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    held: Option<Held>,
}

impl<R: Record> fmt::Debug for Pending<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<R: Record> std::future::Future for Pending<R> {
    type Output = Answered<R>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Answered<R>> {
        use std::task::Poll;
        let this = &mut *self;
        let received = match std::pin::Pin::new(&mut this.reply).poll(cx) {
            Poll::Ready(received) => Some(received),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => None,
                Poll::Pending => return Poll::Pending,
            },
        };
        Poll::Ready(Answered {
            reply: this.requester.outcome(&this.id, received),
            held: this.held.take(),
        })
    }
}

impl<R: Record> Drop for Pending<R> {
    /// Dropped before it resolved (its actor stopped, or the future was
    /// thrown away): nobody deals with the reply, so the record that asked
    /// is not acknowledged but handled again.
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.0.slot.fail();
        }
        self.requester.unsent(&self.id);
    }
}

/// What became of a request: its reply, or why there is none (timed out,
/// refused by the responder with its reason, undecodable). While it lives,
/// the record whose handling asked is held: its offset commits after it is
/// dropped and what [`Publisher::publish_answered`] sent with it is
/// acknowledged.
pub struct Answered<R: Record> {
    reply: Result<R>,
    held: Option<Held>,
}

impl<R: Record> fmt::Debug for Answered<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answered")
            .field("answered", &self.reply.is_ok())
            .field("holds_a_record", &self.held.is_some())
            .finish()
    }
}

impl<R: Record> Answered<R> {
    /// The reply, or why there is none.
    pub fn reply(&self) -> &Result<R> {
        &self.reply
    }

    /// Gives up on the request without committing the record that asked:
    /// the actor restarts from its last committed offset and handles that
    /// record again, so it asks again (after a timeout, say). Does nothing
    /// for a request asked outside handling.
    pub fn handle_again(mut self) {
        if let Some(held) = self.held.take() {
            held.0.slot.fail();
        }
    }
}
