//! The reading side of asking: the replies of one asker (a gateway or an
//! actor's requester), read by a tail of the reply topic
//! ([`crate::kafka::tail`]: Kafka's, or the simulator's), each resolving
//! the request it answers by `causation_id`; and what it counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::kafka::tail::{OnRecord, Tail, TailReading};
use crate::wire::codec::{Decoder, SchemaRegistry};
use crate::wire::headers::{Headers, REPLY_ERROR};
use crate::wire::record::Record;

/// What a gateway counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Requests published.
    pub sent: u64,
    /// Requests answered.
    pub answered: u64,
    /// Requests given up on: no reply within their timeout.
    pub timed_out: u64,
    /// Replies to this gateway's requests that came after their timeout,
    /// or twice (a responder redelivered its request): dropped.
    pub late: u64,
    /// Records skipped: replies to other gateways' requests, and records
    /// of another type than the reply's that the responder wrote while
    /// handling this gateway's request (its topic may carry several types,
    /// [`records!`](crate::records)).
    pub others: u64,
    /// Requests the responder could not handle, answered with an error
    /// reply saying why.
    pub refused: u64,
    /// Replies to this gateway's requests that could not be decoded as
    /// the reply type: their requests fail with the reason.
    pub undecodable: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    answered: AtomicU64,
    timed_out: AtomicU64,
    late: AtomicU64,
    others: AtomicU64,
    refused: AtomicU64,
    undecodable: AtomicU64,
}

/// Why a request got no reply value.
#[derive(Debug)]
pub(crate) enum NoReply {
    /// The responder could not handle it and said why (an error reply).
    Refused(String),
    /// The reply could not be decoded as the reply type.
    Undecodable(String),
}

/// What a request's waiter receives: the reply or why there is none, or
/// that the reader stopped.
pub(crate) type Received<R> =
    std::result::Result<std::result::Result<R, NoReply>, oneshot::error::RecvError>;

type Waiting<R> = Mutex<HashMap<String, oneshot::Sender<std::result::Result<R, NoReply>>>>;

/// What the tail shares with the asker: the requests waiting for their
/// replies, and how to read a reply.
struct Shared<R: Record> {
    waiting: Waiting<R>,
    counters: Counters,
    /// The reply topic.
    topic: String,
    /// What this asker's request ids start with.
    prefix: String,
    decoder: Decoder<R>,
}

/// The reading side of asking: a reader of every partition of a reply
/// topic, without a consumer group, from where the topic ended when it
/// started, resolving the requests this instance made (their ids start
/// with its instance id). A [`Gateway`] and a [`Requester`] each own one.
pub(crate) struct Replies<R: Record> {
    /// The reply topic.
    topic: String,
    /// This reader's instance id: the start of its requests' ids.
    pub(super) instance: String,
    next: AtomicU64,
    shared: Arc<Shared<R>>,
    tail: Mutex<Option<Tail>>,
}

impl<R: Record> Replies<R> {
    /// Starts reading `topic` from its end (so every reply to a request
    /// made from now on is seen) as `reading` says, for asker `name`. On
    /// Kafka, blocks on the broker's metadata. `registry` knows the reply
    /// type's other versions (and the schema registry), if any.
    pub(crate) fn start(
        reading: &TailReading,
        name: &str,
        topic: &str,
        registry: Option<SchemaRegistry>,
    ) -> Result<Self> {
        // From the simulation's seed inside one.
        let instance = crate::wire::clock::new_id().simple().to_string();
        let shared = Arc::new(Shared {
            waiting: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            topic: topic.to_owned(),
            prefix: format!("{instance}."),
            decoder: Decoder::<R>::new(registry.unwrap_or_default())?,
        });
        let tail = reading.start(name, topic, shared.clone())?;
        Ok(Self {
            topic: topic.to_owned(),
            instance,
            next: AtomicU64::new(0),
            shared,
            tail: Mutex::new(Some(tail)),
        })
    }

    /// A new request id, and where its reply will come.
    pub(super) fn expect(&self) -> (String, oneshot::Receiver<std::result::Result<R, NoReply>>) {
        let id = format!(
            "{}.{}",
            self.instance,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.clone(), tx);
        (id, rx)
    }

    /// What became of request `id` of asker `asker`: its reply, or the
    /// error saying why there is none; `None` received means it waited
    /// `after` in vain (`AskTimedOut` names `asked_on`). Counts it.
    pub(super) fn outcome(
        &self,
        asker: &str,
        asked_on: &str,
        after: Duration,
        id: &str,
        received: Option<Received<R>>,
    ) -> Result<R> {
        let counters = &self.shared.counters;
        match received {
            Some(Ok(Ok(reply))) => {
                counters.answered.fetch_add(1, Ordering::Relaxed);
                Ok(reply)
            }
            Some(Ok(Err(NoReply::Undecodable(reason)))) => Err(Error::BadReply {
                gateway: asker.to_owned(),
                topic: self.topic.clone(),
                reason,
            }),
            Some(Ok(Err(NoReply::Refused(reason)))) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                Err(Error::Refused {
                    gateway: asker.to_owned(),
                    topic: self.topic.clone(),
                    reason,
                })
            }
            Some(Err(_)) => Err(Error::GatewayClosed {
                gateway: asker.to_owned(),
            }),
            None => {
                // A reply that comes now is late: nobody waits for it.
                self.forget(id);
                counters.timed_out.fetch_add(1, Ordering::Relaxed);
                Err(Error::AskTimedOut {
                    gateway: asker.to_owned(),
                    topic: asked_on.to_owned(),
                    after,
                    waiting: format!("for the reply on `{}`", self.topic),
                })
            }
        }
    }

    /// A request timed out before it was sent.
    pub(super) fn timed_out(&self) {
        self.shared
            .counters
            .timed_out
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A request was sent.
    pub(super) fn sent(&self) {
        self.shared.counters.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Nobody waits for `id`'s reply any more: it will count as late.
    pub(super) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    pub(super) fn stats(&self) -> GatewayStats {
        let c = &self.shared.counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        GatewayStats {
            sent: get(&c.sent),
            answered: get(&c.answered),
            timed_out: get(&c.timed_out),
            late: get(&c.late),
            others: get(&c.others),
            refused: get(&c.refused),
            undecodable: get(&c.undecodable),
        }
    }

    pub(super) fn pending(&self) -> usize {
        self.lock().len()
    }

    pub(super) async fn close(&self) {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut tail) = tail {
            tail.close().await;
        }
        self.lock().clear();
    }

    pub(super) fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<std::result::Result<R, NoReply>>>>
    {
        self.shared
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl<R: Record> OnRecord for Shared<R> {
    /// Each reply of this asker's (its `causation_id` starts with
    /// `prefix`) resolves the request waiting for it; other records are
    /// counted and passed over.
    fn record(&self, headers: &Headers, value: &[u8], partition: i32, offset: i64) {
        let Some(cause) = headers
            .causation_id()
            .filter(|c| c.starts_with(&self.prefix))
        else {
            self.counters.others.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // Another type the responder wrote for this request (a `Started`
        // before the `Returned`): not the reply; the request still waits.
        if headers.get(REPLY_ERROR).is_none()
            && headers
                .ce_type()
                .is_some_and(|t| t != self.decoder.full_name())
        {
            self.counters.others.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cause);
        let Some(waiting) = waiting else {
            self.counters.late.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Some(reason) = headers.get(REPLY_ERROR) {
            let reason = String::from_utf8_lossy(reason).into_owned();
            let _ = waiting.send(Err(NoReply::Refused(reason)));
            return;
        }
        let reply = self.decoder.decode(value).map_err(|e| {
            self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
            NoReply::Undecodable(format!(
                "the reply at {}/{partition}@{offset} cannot be decoded: {}",
                self.topic,
                crate::error_chain(&e)
            ))
        });
        let _ = waiting.send(reply);
    }
}
