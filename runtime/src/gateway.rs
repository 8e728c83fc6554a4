//! Ask and answer over Kafka from code that is not an actor: a
//! [`Gateway`] publishes typed requests on a topic it owns and resolves
//! each with the typed reply that a responder actor publishes on the topic
//! *it* owns. Nobody writes a topic they do not own.
//!
//! How a reply finds its request: the responder is an ordinary actor. What
//! it publishes while handling a request carries the request's `ce_id` as
//! its `causation_id` (see `docs/semantics.md`), so the gateway matches
//! replies by `causation_id`, with no change to the responder.
//!
//! When the responder gives up on a request (past its retries, or it
//! cannot decode it), it answers with an error reply saying why (see
//! `docs/semantics.md`), and [`Gateway::ask`] returns
//! [`Error::Refused`](crate::Error::Refused) at once.
//!
//! How a reply finds its gateway when several run (one per process of a
//! web tier, say): each gateway reads **every** partition of the reply
//! topic, without a consumer group, from where the topic ended when it
//! started, and its request ids start with its own instance id. A reply
//! whose `causation_id` is another gateway's is skipped (counted in
//! [`GatewayStats::others`]); one of this gateway's that nobody waits for
//! any more (it came after its request's timeout) is counted as late and
//! dropped. Every gateway reads every reply: the price of needing neither a
//! partition per instance nor a topic per instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{Semaphore, oneshot};

use crate::codec::{Decoder, Encoder, SchemaRegistry};
use crate::error::{Error, Result};
use crate::headers::{Headers, Outbound};
use crate::kafka::ClientSettings;
use crate::record::Record;

/// How long a metadata or watermark request waits for the broker.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// What a [`Gateway`] is: its name, the topic it owns and the topic its
/// replies come on, and its bounds.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Its name: the `ce_source` of its requests is `node/name`.
    pub name: String,
    /// The topic it publishes requests to, which it owns.
    pub requests: String,
    /// The topic the responder owns and publishes replies to.
    pub replies: String,
    /// Requests awaiting their reply at most; a further [`Gateway::ask`]
    /// waits for a slot (within its timeout). Default 10 000.
    pub max_pending: usize,
    /// How long [`Gateway::ask`] waits for a reply. Default 30 s.
    pub timeout: Duration,
}

impl GatewayOptions {
    /// Gateway `name` publishing requests to `requests` and reading
    /// replies from `replies`, with the default bounds.
    pub fn new(
        name: impl Into<String>,
        requests: impl Into<String>,
        replies: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            requests: requests.into(),
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

    /// [`Gateway::ask`] gives up after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

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

struct Shared<R> {
    waiting: Waiting<R>,
    counters: Counters,
    stop: AtomicBool,
}

/// Asks a responder over Kafka and awaits its typed reply (see the
/// module's documentation). Cheap to share behind an `Arc`; usable from
/// any tokio code (an HTTP handler, a job) and from actors.
pub struct Gateway<Q: Record, R: Record> {
    options: GatewayOptions,
    source: String,
    producer: FutureProducer,
    encoder: Encoder<Q>,
    slots: Arc<Semaphore>,
    replies: Replies<R>,
}

impl<Q: Record, R: Record> std::fmt::Debug for Gateway<Q, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("options", &self.options)
            .field("instance", &self.replies.instance)
            .finish_non_exhaustive()
    }
}

impl<Q: Record, R: Record> Gateway<Q, R> {
    /// Connects with the node's client settings: positions its reader at
    /// the end of every partition of the reply topic (so every reply to a
    /// request it sends from now on is seen), then returns.
    pub(crate) async fn start(settings: &ClientSettings, options: GatewayOptions) -> Result<Self> {
        let mut config = settings.producer(&options.name, None);
        // A request waits for no batch: it goes out at once.
        config.set("linger.ms", "0");
        let producer: FutureProducer = config.create().map_err(|e| {
            Error::kafka(
                format!("cannot create producer of gateway `{}`", options.name),
                e,
            )
        })?;
        let replies = {
            let (settings, name, topic) = (
                settings.clone(),
                options.name.clone(),
                options.replies.clone(),
            );
            tokio::task::spawn_blocking(move || Replies::start(&settings, &name, &topic, None))
                .await
                .map_err(|e| Error::Gateway {
                    gateway: options.name.clone(),
                    reason: format!("its reply reader's setup failed: {e}"),
                })??
        };
        Ok(Self {
            source: format!("{}/{}", settings.node, options.name),
            encoder: Encoder::<Q>::new()?,
            slots: Arc::new(Semaphore::new(options.max_pending)),
            options,
            producer,
            replies,
        })
    }

    /// Publishes `request` under `key` and waits for its reply, within the
    /// gateway's timeout (waiting for a pending slot included).
    pub async fn ask(&self, key: &str, request: &Q) -> Result<R> {
        self.ask_within(key, request, self.options.timeout).await
    }

    /// [`Gateway::ask`] with a timeout of its own.
    pub async fn ask_within(&self, key: &str, request: &Q, timeout: Duration) -> Result<R> {
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = |waiting: &str| Error::AskTimedOut {
            gateway: self.options.name.clone(),
            topic: self.options.requests.clone(),
            after: timeout,
            waiting: waiting.to_owned(),
        };
        // Backpressure: a slot among `max_pending`, within the timeout.
        let _slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                self.replies
                    .shared
                    .counters
                    .timed_out
                    .fetch_add(1, Ordering::Relaxed);
                timed_out("for one of its pending slots")
            })?
            .map_err(|_| Error::GatewayClosed {
                gateway: self.options.name.clone(),
            })?;
        let mut value = Vec::new();
        self.encoder
            .encode(request, &mut value)
            .map_err(|source| Error::Encode {
                topic: self.options.requests.clone(),
                source,
            })?;
        let (id, rx) = self.replies.expect();
        let now = std::time::SystemTime::now();
        let time = humantime::format_rfc3339_millis(now).to_string();
        let outbound = Outbound {
            id: &id,
            ty: self.encoder.full_name(),
            source: &self.source,
            time: &time,
            correlation_id: &id,
            causation_id: None,
            traceparent: None,
            tracestate: None,
        };
        let headers = outbound
            .to_kafka(crate::Envelope::default(), &mut Vec::new())
            // A responder that cannot answer answers with the reason.
            .insert(rdkafka::message::Header {
                key: crate::headers::EXPECTS_REPLY,
                value: Some("1"),
            });
        let record = FutureRecord::to(&self.options.requests)
            .key(key)
            .payload(&value)
            .headers(headers);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Err((error, _)) = self.producer.send(record, left).await {
            self.replies.forget(&id);
            return Err(Error::kafka(
                format!(
                    "gateway `{}` cannot publish to `{}`",
                    self.options.name, self.options.requests
                ),
                error,
            ));
        }
        self.replies.sent();
        let received = tokio::time::timeout_at(deadline, rx).await.ok();
        self.replies.outcome(
            &self.options.name,
            &self.options.requests,
            timeout,
            &id,
            received,
        )
    }

    /// What it counted so far.
    pub fn stats(&self) -> GatewayStats {
        self.replies.stats()
    }

    /// Requests awaiting their reply now.
    pub fn pending(&self) -> usize {
        self.replies.pending()
    }

    /// Its options.
    pub fn options(&self) -> &GatewayOptions {
        &self.options
    }

    /// Stops reading replies; requests still waiting fail as closed.
    pub async fn close(&self) {
        self.slots.close();
        self.replies.close().await;
    }
}

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
/// Replies are read as a [`Gateway`] reads them: every partition of the
/// reply topic, without a consumer group, matched by `causation_id` against
/// request ids that start with this requester's instance id. So a reply
/// reaches the instance that asked, whichever node of several sharing the
/// actor's partitions that is, and however the responder keys it.
pub struct Requester<R: Record> {
    inner: Arc<RequesterInner<R>>,
}

struct RequesterInner<R> {
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
        settings: &ClientSettings,
        registry: SchemaRegistry,
        actor: &str,
        options: RequesterOptions,
    ) -> Result<Self> {
        let name = format!("{actor}'s requester");
        let replies = Replies::start(settings, actor, &options.replies, Some(registry))?;
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

/// The reading side of asking: a reader of every partition of a reply
/// topic, without a consumer group, from where the topic ended when it
/// started, resolving the requests this instance made (their ids start
/// with its instance id). A [`Gateway`] and a [`Requester`] each own one.
pub(crate) struct Replies<R> {
    /// The reply topic.
    topic: String,
    /// This reader's instance id: the start of its requests' ids.
    instance: String,
    next: AtomicU64,
    shared: Arc<Shared<R>>,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl<R: Record> Replies<R> {
    /// Positions a reader at the end of every partition of `topic` (so
    /// every reply to a request made from now on is seen) and starts its
    /// thread. Blocks on the broker's metadata. `registry` knows the reply
    /// type's other versions (and the schema registry), if any.
    pub(crate) fn start(
        settings: &ClientSettings,
        name: &str,
        topic: &str,
        registry: Option<SchemaRegistry>,
    ) -> Result<Self> {
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let mut config = settings.consumer(&format!("{name}.{instance}"), false);
        // No group: it reads every partition, and never commits.
        config
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest");
        if settings.embedded {
            // The embedded mock cluster answers a fetch only when its wait
            // is over, even when a record came meanwhile (a broker answers
            // at once): a reply would wait out up to the whole wait.
            config.set("fetch.wait.max.ms", "1");
        }
        let failed = |reason: String| Error::Gateway {
            gateway: name.to_owned(),
            reason,
        };
        let consumer: BaseConsumer = config
            .create()
            .map_err(|e| Error::kafka(format!("cannot create reply reader of `{name}`"), e))?;
        let partitions = crate::client::partition_count(&consumer, topic, METADATA_TIMEOUT)?;
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .map_err(|e| {
                    Error::kafka(format!("cannot read the end of `{topic}`/{partition}"), e)
                })?;
            list.add_partition_offset(topic, partition, Offset::Offset(high))
                .map_err(|e| Error::kafka("cannot assign reply partitions", e))?;
        }
        consumer
            .assign(&list)
            .map_err(|e| Error::kafka("cannot assign reply partitions", e))?;
        let shared = Arc::new(Shared {
            waiting: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
        });
        let reader = {
            let shared = shared.clone();
            let prefix = format!("{instance}.");
            let decoder = Decoder::<R>::new(registry.unwrap_or_default())?;
            std::thread::Builder::new()
                .name(format!("replies-{name}"))
                .spawn(move || read_replies(&consumer, &decoder, &prefix, &shared))
                .map_err(|e| failed(format!("cannot start its reply reader: {e}")))?
        };
        Ok(Self {
            topic: topic.to_owned(),
            instance,
            next: AtomicU64::new(0),
            shared,
            reader: Mutex::new(Some(reader)),
        })
    }

    /// A new request id, and where its reply will come.
    fn expect(&self) -> (String, oneshot::Receiver<std::result::Result<R, NoReply>>) {
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
    fn outcome(
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

    /// A request was sent.
    fn sent(&self) {
        self.shared.counters.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Nobody waits for `id`'s reply any more: it will count as late.
    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn stats(&self) -> GatewayStats {
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

    fn pending(&self) -> usize {
        self.lock().len()
    }

    async fn close(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(reader) = reader {
            let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        }
        self.lock().clear();
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<std::result::Result<R, NoReply>>>>
    {
        self.shared
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl<R> Drop for Replies<R> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// The reader's loop: each reply of this gateway's (its `causation_id`
/// starts with `prefix`) resolves the request waiting for it.
fn read_replies<R: Record>(
    consumer: &BaseConsumer,
    decoder: &Decoder<R>,
    prefix: &str,
    shared: &Shared<R>,
) {
    while !shared.stop.load(Ordering::Acquire) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "gateway reply reader");
                continue;
            }
        };
        let (headers, _) = Headers::from_kafka(message.headers());
        let Some(cause) = headers.causation_id().filter(|c| c.starts_with(prefix)) else {
            shared.counters.others.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        // Another type the responder wrote for this request (a `Started`
        // before the `Returned`): not the reply; the request still waits.
        if headers.get(crate::headers::REPLY_ERROR).is_none()
            && headers.ce_type().is_some_and(|t| t != decoder.full_name())
        {
            shared.counters.others.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let waiting = shared
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cause);
        let Some(waiting) = waiting else {
            shared.counters.late.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if let Some(reason) = headers.get(crate::headers::REPLY_ERROR) {
            let reason = String::from_utf8_lossy(reason).into_owned();
            let _ = waiting.send(Err(NoReply::Refused(reason)));
            continue;
        }
        let reply = decoder
            .decode(message.payload().unwrap_or_default())
            .map_err(|e| {
                shared.counters.undecodable.fetch_add(1, Ordering::Relaxed);
                NoReply::Undecodable(format!(
                    "the reply at {}/{}@{} cannot be decoded: {}",
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    crate::error_chain(&e)
                ))
            });
        let _ = waiting.send(reply);
    }
}
