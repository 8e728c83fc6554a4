//! The reading side of asking: a reader of every partition of a reply
//! topic, without a consumer group, that resolves the requests of one
//! asker (a gateway or an actor's requester) by `causation_id`, and what
//! it counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::kafka::settings::ClientSettings;
use crate::wire::codec::{Decoder, SchemaRegistry};
use crate::wire::headers::Headers;
use crate::wire::record::Record;

/// How long a metadata or watermark request waits for the broker.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The reading side of asking: a reader of every partition of a reply
/// topic, without a consumer group, from where the topic ended when it
/// started, resolving the requests this instance made (their ids start
/// with its instance id). A [`Gateway`] and a [`Requester`] each own one.
pub(crate) struct Replies<R> {
    /// The reply topic.
    topic: String,
    /// This reader's instance id: the start of its requests' ids.
    pub(super) instance: String,
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
        self.shared.stop.store(true, Ordering::Release);
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(reader) = reader {
            let _ = tokio::task::spawn_blocking(move || reader.join()).await;
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
        let (headers, _) = Headers::from_kafka(&message);
        let Some(cause) = headers.causation_id().filter(|c| c.starts_with(prefix)) else {
            shared.counters.others.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        // Another type the responder wrote for this request (a `Started`
        // before the `Returned`): not the reply; the request still waits.
        if headers.get(crate::wire::headers::REPLY_ERROR).is_none()
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
        if let Some(reason) = headers.get(crate::wire::headers::REPLY_ERROR) {
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
