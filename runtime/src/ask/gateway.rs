//! Asking from code that is not an actor: a
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
//!
//! A gateway writes through the seam every actor's publisher writes
//! through (`publisher::Sink`), and reads through the one every requester
//! reads through (`kafka::tail`): on a node, Kafka clients of its own; in a
//! simulation (`Simulation::gateway`), the simulated broker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::replies::{GatewayStats, Replies};
use crate::delivery::tracker::{AckSlot, Acknowledged};
use crate::error::{Error, Result};
use crate::kafka::settings::ClientSettings;
use crate::kafka::tail::TailReading;
use crate::ops::stats::ActorStats;
use crate::publisher::{KafkaProducer, Publisher, PublisherCore, Send, Sink};
use crate::wire::record::Record;

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

/// Asks a responder over Kafka and awaits its typed reply (see the
/// module's documentation). Cheap to share behind an `Arc`; usable from
/// any tokio code (an HTTP handler, a job) and from actors.
pub struct Gateway<Q: Record, R: Record> {
    options: GatewayOptions,
    /// Writes its requests on the topic it owns, through the seam every
    /// actor's publisher writes through (a Kafka producer, or a
    /// simulation's log). Locked while one request is encoded and queued.
    publisher: Mutex<Publisher<Q>>,
    slots: Arc<Semaphore>,
    replies: Replies<R>,
}

/// Where a gateway's requests go and how its replies are read: a node's
/// Kafka clients, or a simulation's.
pub(crate) struct GatewayWiring {
    /// Where its requests go.
    pub(crate) sink: Sink,
    /// How it reads the reply topic.
    pub(crate) reading: TailReading,
    /// The node's name: its requests' `ce_source` is `node/gateway`.
    pub(crate) node: String,
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
    /// Connects with the node's client settings: a producer of its own
    /// that sends each request at once, and a reader positioned at the end
    /// of every partition of the reply topic (so every reply to a request
    /// it sends from now on is seen); then returns.
    pub(crate) async fn start(settings: &ClientSettings, options: GatewayOptions) -> Result<Self> {
        let producer = KafkaProducer::create(
            settings,
            &options.name,
            None,
            Arc::new(ActorStats::default()),
            Arc::default(),
            // A request waits for no batch: it goes out at once.
            |config| {
                config.set("linger.ms", "0");
            },
        )?;
        let wiring = GatewayWiring {
            sink: Sink::Kafka(producer.producer),
            reading: TailReading::Kafka(settings.clone()),
            node: settings.node.clone(),
        };
        let name = options.name.clone();
        // The reader's setup waits for the broker's metadata.
        tokio::task::spawn_blocking(move || Self::wired(wiring, options))
            .await
            .map_err(|e| Error::Gateway {
                gateway: name,
                reason: format!("its reply reader's setup failed: {e}"),
            })?
    }

    /// A gateway over `wiring`'s clients.
    pub(crate) fn wired(wiring: GatewayWiring, options: GatewayOptions) -> Result<Self> {
        let core = PublisherCore::new(
            wiring.sink,
            options.requests.as_str().into(),
            format!("{}/{}", wiring.node, options.name),
        );
        let publisher = Publisher::<Q>::new(Arc::new(core))?;
        let replies = Replies::start(&wiring.reading, &options.name, &options.replies, None)?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(options.max_pending)),
            options,
            publisher: Mutex::new(publisher),
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
                self.replies.timed_out();
                timed_out("for one of its pending slots")
            })?
            .map_err(|_| Error::GatewayClosed {
                gateway: self.options.name.clone(),
            })?;
        let (id, rx) = self.replies.expect();
        let sent = AckSlot::watched();
        let published = self
            .publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Some(key.as_bytes()), request, Send::Sent(&id, &sent));
        if let Err(error) = published {
            self.replies.forget(&id);
            return Err(error);
        }
        let delivered = match tokio::time::timeout_at(deadline, Acknowledged(sent)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(Error::Gateway {
                gateway: self.options.name.clone(),
                reason: format!(
                    "its request to `{}` was not delivered{}",
                    self.options.requests,
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
            }),
            Err(_) => {
                self.replies.timed_out();
                Err(timed_out("for its request to be acknowledged"))
            }
        };
        if let Err(error) = delivered {
            self.replies.forget(&id);
            return Err(error);
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
