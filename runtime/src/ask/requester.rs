//! Asking from inside an actor: a [`Requester`] reads the replies to an
//! actor's requests, [`Publisher::ask`] publishes one and returns its
//! [`Pending`] reply, and [`Answered`] holds the asking record until the
//! reply has been dealt with.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::replies::{GatewayStats, NoReply, Received, Replies};
use crate::error::{Error, Result};
use crate::kafka::tail::TailReading;
use crate::publisher::{Cause, Publisher, Send};
use crate::wire::codec::SchemaRegistry;
use crate::wire::record::Record;
use crate::wire::records::Records;

/// How an actor's [`Requester`] waits: for replies on `replies`, at most
/// `max_pending` at once, each at most `timeout`.
#[derive(Debug, Clone)]
pub struct RequesterOptions {
    /// The topic the responder owns and answers on.
    pub replies: String,
    /// Requests awaiting replies at most; one more is refused at once
    /// ([`Error::TooManyPending`]). Default 10 000.
    pub max_pending: usize,
    /// How long a request waits for its reply. Default 30 s.
    pub timeout: Duration,
}

impl RequesterOptions {
    /// Replies on `replies`, with the default bounds.
    pub fn new(replies: impl Into<String>) -> Self {
        Self {
            replies: replies.into(),
            max_pending: 10_000,
            timeout: Duration::from_secs(30),
        }
    }

    /// At most `max_pending` requests await replies at once.
    pub fn max_pending(mut self, max_pending: usize) -> Self {
        self.max_pending = max_pending.max(1);
        self
    }

    /// A request gives up after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Asks from inside an actor: the actor publishes each request on the
/// topic it owns ([`Publisher::ask`](crate::Publisher::ask)) and awaits
/// the typed reply its responder publishes on the responder's own topic.
/// Made by [`Publisher::requester`](crate::Publisher::requester), usually
/// in the actor's `create`.
///
/// Replies are read as a [`Gateway`](crate::Gateway) reads them: every partition of the
/// reply topic, without a consumer group, matched by `causation_id` against
/// request ids that start with this requester's instance id. So a reply
/// reaches the instance that asked, whichever node of several sharing the
/// actor's partitions that is, and however the responder keys it.
pub struct Requester<R: Record> {
    inner: Arc<RequesterInner<R>>,
}

struct RequesterInner<R: Record> {
    name: String,
    options: RequesterOptions,
    replies: Replies<R>,
}

impl<R: Record> Clone for Requester<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Record> Requester<R> {
    /// Its options.
    pub fn options(&self) -> &RequesterOptions {
        &self.inner.options
    }
}

impl<R: Record> std::fmt::Debug for Requester<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requester")
            .field("name", &self.inner.name)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// A request id, where its reply will come, and how to give up on it.
pub(crate) struct Asked<R> {
    pub(crate) id: String,
    pub(crate) reply: oneshot::Receiver<std::result::Result<R, NoReply>>,
}

impl<R: Record> Requester<R> {
    /// Starts reading replies for actor `actor`. Blocks on the broker's
    /// metadata.
    pub(crate) fn start(
        reading: &TailReading,
        registry: SchemaRegistry,
        actor: &str,
        options: RequesterOptions,
    ) -> Result<Self> {
        let name = format!("{actor}'s requester");
        let replies = Replies::start(reading, actor, &options.replies, Some(registry))?;
        Ok(Self {
            inner: Arc::new(RequesterInner {
                name,
                options,
                replies,
            }),
        })
    }

    /// A new request's id, unless the bound is reached.
    pub(crate) fn expect(&self) -> Result<Asked<R>> {
        if self.inner.replies.pending() >= self.inner.options.max_pending {
            return Err(Error::TooManyPending {
                requester: self.inner.name.clone(),
                topic: self.inner.options.replies.clone(),
                max: self.inner.options.max_pending,
            });
        }
        let (id, reply) = self.inner.replies.expect();
        Ok(Asked { id, reply })
    }

    /// A request was sent.
    pub(crate) fn sent(&self) {
        self.inner.replies.sent();
    }

    /// The request `id` could not be sent: nobody waits for it.
    pub(crate) fn unsent(&self, id: &str) {
        self.inner.replies.forget(id);
    }

    /// What becomes of a request's reply: the reply, or why there is none.
    pub(crate) fn outcome(&self, id: &str, received: Option<Received<R>>) -> Result<R> {
        let inner = &self.inner;
        inner.replies.outcome(
            &inner.name,
            &inner.options.replies,
            inner.options.timeout,
            id,
            received,
        )
    }

    /// What it counted so far (`sent`, `answered`, `timed_out`, `late`:
    /// replies nobody waited for any more, `others`, `refused`).
    pub fn stats(&self) -> GatewayStats {
        self.inner.replies.stats()
    }

    /// Requests awaiting their reply now.
    pub fn pending(&self) -> usize {
        self.inner.replies.pending()
    }
}

impl<T: Records> Publisher<T> {
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
                refused("this publisher has no reader of replies: it is no actor's")
            })?;
        if self.core.is_transactional() {
            // A held record would keep its transaction open until the reply.
            return Err(refused(
                "an exactly-once actor cannot ask: its transaction would stay open until the reply",
            ));
        }
        Requester::start(
            &asking.reading,
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
}

/// The record being handled when its actor asked, held (its offset does
/// not commit) until the reply has been dealt with: what the actor
/// publishes with [`Answered`] counts on it too.
pub(crate) struct Held(pub(crate) Cause);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.slot.done();
    }
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
