//! The feed: drives one actor instance from its Kafka consumer.
//!
//! The feed is an actix `ActorFuture` spawned in the actor's own context, so
//! it runs on the actor's thread with `&mut` access to the actor. It pulls
//! records from the consumer, decodes them, calls the actor's handler
//! directly (no mailbox round trip per record), tracks which offsets may be
//! committed, and on a stop request drains: it stops taking records,
//! flushes the producer, stores and commits the completed offsets, and
//! reports to the supervisor.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::{ActorContext, ActorFuture, Context};
use futures::Stream;
use futures::channel::oneshot;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message as _;

use crate::actor::{Deliver, Meta, Routes, TopicActor};
use crate::codec::DecodeError;
use crate::failures::{Failures, Handling, Next, Raw};
use crate::headers::Headers;
use crate::publisher::{Cause, PublisherCore};
use crate::stats::ActorStats;
use crate::tracker::{AckSlot, OffsetTracker};

/// The Kafka consumer of one actor instance.
pub(crate) type Consumer = StreamConsumer;

/// How many records the feed handles before yielding to the actor's other
/// work (its mailbox, its intervals) and storing completed offsets.
const BUDGET: usize = 256;
/// How long the feed handles records before yielding, whatever their number,
/// so slow handlers still store offsets and see stop requests promptly.
const BUDGET_TIME: Duration = Duration::from_millis(20);
/// How long a drain waits for the broker to acknowledge published records.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an actor instance ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Asked to stop; drained and committed.
    Stopped,
    /// Failed; the supervisor restarts it.
    Failed(String),
    /// Stopped by its failure policy; the supervisor does not restart it.
    Halted(String),
}

/// A consumed record, decoded (or not) for the actor's routes.
pub(crate) struct Arrival<A: TopicActor> {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) body: Result<Box<dyn Deliver<A>>, DecodeError>,
}

type Arrivals<A> = Pin<Box<dyn Stream<Item = KafkaResult<(Arrival<A>, Raw)>>>>;

/// A record waiting to be tried again.
struct Pending {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    raw: Raw,
    attempt: u32,
    slot: Arc<AckSlot>,
    wait: Pin<Box<tokio::time::Sleep>>,
}

pub(crate) struct Feed<A: TopicActor> {
    actor: Arc<str>,
    consumer: Option<Arc<Consumer>>,
    arrivals: Arrivals<A>,
    routes: Arc<Routes<A>>,
    failures: Failures,
    pending: Option<Pending>,
    core: Arc<PublisherCore>,
    stats: Arc<ActorStats>,
    tracker: OffsetTracker,
    tick: tokio::time::Interval,
    /// The supervisor's stop request; `None` once it came or was abandoned.
    stop: Option<oneshot::Receiver<()>>,
    exit: Option<oneshot::Sender<Exit>>,
    failure: Option<Exit>,
    stopping: bool,
}

/// What a feed is made of.
pub(crate) struct FeedParts<A: TopicActor> {
    pub(crate) actor: Arc<str>,
    pub(crate) consumer: Option<Arc<Consumer>>,
    pub(crate) routes: Routes<A>,
    pub(crate) core: Arc<PublisherCore>,
    pub(crate) stats: Arc<ActorStats>,
    /// How often completed offsets are stored while idle.
    pub(crate) store_interval: Duration,
    pub(crate) failures: Failures,
}

impl<A: TopicActor> Feed<A> {
    pub(crate) fn new(
        parts: FeedParts<A>,
        stop: oneshot::Receiver<()>,
        exit: oneshot::Sender<Exit>,
    ) -> Self {
        let FeedParts {
            actor,
            consumer,
            routes,
            core,
            stats,
            store_interval,
            failures,
        } = parts;
        let routes = Arc::new(routes);
        let arrivals: Arrivals<A> = match &consumer {
            Some(consumer) => Box::pin(arrivals(consumer.clone(), routes.clone())),
            None => Box::pin(futures::stream::pending()),
        };
        let mut tick = tokio::time::interval(store_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            actor,
            consumer,
            arrivals,
            routes,
            failures,
            pending: None,
            core,
            stats,
            tracker: OffsetTracker::default(),
            tick,
            stop: Some(stop),
            exit: Some(exit),
            failure: None,
            stopping: false,
        }
    }

    /// Hands one record to the actor under its failure policy.
    fn handle(&mut self, act: &mut A, ctx: &mut Context<A>, arrival: Arrival<A>, raw: Raw) {
        let slot = AckSlot::new();
        self.tracker.track(
            &arrival.topic,
            arrival.partition,
            arrival.offset,
            slot.clone(),
        );
        let at = (arrival.topic.clone(), arrival.partition, arrival.offset);
        let next = self.handling().process(act, ctx, arrival, &raw, 1, &slot);
        self.follow(next, at, raw, slot);
    }

    /// Tries the pending record again.
    fn retry(&mut self, act: &mut A, ctx: &mut Context<A>, pending: Pending) {
        let Pending {
            topic,
            partition,
            offset,
            raw,
            attempt,
            slot,
            ..
        } = pending;
        let handling = self.handling();
        let arrival = handling.redecode(&topic, partition, offset, &raw);
        let next = handling.process(act, ctx, arrival, &raw, attempt, &slot);
        self.follow(next, (topic, partition, offset), raw, slot);
    }

    fn handling(&self) -> Handling<'_, A> {
        Handling {
            actor: &self.actor,
            core: &self.core,
            stats: &self.stats,
            routes: &self.routes,
            failures: &self.failures,
        }
    }

    fn follow(&mut self, next: Next, at: (Arc<str>, i32, i64), raw: Raw, slot: Arc<AckSlot>) {
        match next {
            Next::Done => {}
            Next::Retry { after, attempt } => {
                let (topic, partition, offset) = at;
                self.pending = Some(Pending {
                    topic,
                    partition,
                    offset,
                    raw,
                    attempt,
                    slot,
                    wait: Box::pin(tokio::time::sleep(after)),
                });
            }
            Next::Restart(reason) => {
                self.failure.get_or_insert(Exit::Failed(reason));
                self.stopping = true;
            }
            Next::Halt(reason) => {
                self.failure.get_or_insert(Exit::Halted(reason));
                self.stopping = true;
            }
        }
    }

    /// Stores the offsets that became committable; the consumer commits them
    /// in the background every `auto.commit.interval.ms`.
    fn store_completed(&mut self) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        match self.tracker.collect() {
            Ok(None) => {}
            Ok(Some(list)) => {
                if let Err(error) = consumer.store_offsets(&list) {
                    // Typically a partition was revoked by a rebalance: its new
                    // owner starts from the last committed offset.
                    tracing::debug!(actor = %self.actor, %error, "cannot store offsets");
                    if let Ok(assigned) = consumer.assignment() {
                        self.tracker.retain(|topic, partition| {
                            assigned.find_partition(topic, partition).is_some()
                        });
                    }
                }
            }
            Err(undelivered) => {
                self.failure.get_or_insert_with(|| {
                    Exit::Failed(format!(
                        "records published while handling {}/{}@{} were not delivered",
                        undelivered.topic, undelivered.partition, undelivered.offset
                    ))
                });
            }
        }
    }

    /// Flushes, stores and commits what is complete, and reports the exit.
    fn drain(&mut self) {
        if let Err(error) = self.core.flush(FLUSH_TIMEOUT) {
            tracing::warn!(actor = %self.actor, %error, "producer flush did not complete");
        }
        self.store_completed();
        if let Some(consumer) = &self.consumer {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(error) => tracing::warn!(actor = %self.actor, %error, "final commit failed"),
            }
        }
        let outstanding = self.tracker.outstanding();
        if outstanding > 0 {
            tracing::info!(
                actor = %self.actor,
                outstanding,
                "records left uncommitted; they are redelivered on the next start"
            );
        }
        let exit = self.failure.take().unwrap_or(Exit::Stopped);
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(exit);
        }
    }
}

impl<A: TopicActor> ActorFuture<A> for Feed<A> {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut A,
        ctx: &mut Context<A>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        if let Some(stop) = &mut this.stop {
            match Pin::new(stop).poll(task) {
                Poll::Ready(Ok(())) => {
                    this.stop = None;
                    this.stopping = true;
                }
                // The supervisor is gone (the node was dropped): its thread is
                // being stopped without a drain, so no drain here either.
                Poll::Ready(Err(oneshot::Canceled)) => this.stop = None,
                Poll::Pending => {}
            }
        }
        let mut handled = 0;
        let started = Instant::now();
        let mut exhausted = false;
        if let Some(pending) = &mut this.pending
            && !this.stopping
            && pending.wait.as_mut().poll(task).is_ready()
        {
            let pending = this.pending.take().expect("checked above");
            handled += 1;
            this.retry(act, ctx, pending);
        }
        // While a record waits for its retry, the records after it wait too.
        while !this.stopping && this.pending.is_none() {
            if handled >= BUDGET || started.elapsed() >= BUDGET_TIME {
                exhausted = true;
                break;
            }
            match this.arrivals.as_mut().poll_next(task) {
                Poll::Ready(Some(Ok((arrival, raw)))) => {
                    handled += 1;
                    this.handle(act, ctx, arrival, raw);
                }
                Poll::Ready(Some(Err(error))) => {
                    handled += 1;
                    tracing::warn!(actor = %this.actor, %error, "consumer error");
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        let mut ticked = false;
        while this.tick.poll_tick(task).is_ready() {
            ticked = true;
        }
        if handled > 0 || ticked {
            this.store_completed();
            if this.failure.is_some() {
                this.stopping = true;
            }
        }
        if this.stopping {
            this.drain();
            ctx.stop();
            return Poll::Ready(());
        }
        // A retry just scheduled: its timer must know whom to wake.
        if let Some(pending) = &mut this.pending
            && pending.wait.as_mut().poll(task).is_ready()
        {
            exhausted = true;
        }
        if exhausted {
            task.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<A: TopicActor> Drop for Feed<A> {
    fn drop(&mut self) {
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(Exit::Failed("the actor stopped unexpectedly".into()));
        }
    }
}

/// The consumer's records, decoded for the actor's routes.
fn arrivals<A: TopicActor>(
    consumer: Arc<Consumer>,
    routes: Arc<Routes<A>>,
) -> impl Stream<Item = KafkaResult<(Arrival<A>, Raw)>> {
    // Each topic's route, found once (patterns are matched per topic, not
    // per record).
    let cache: HashMap<String, Option<(Arc<str>, usize)>> = HashMap::new();
    futures::stream::unfold(
        (consumer, routes, cache),
        |(consumer, routes, mut cache)| async move {
            let item = match consumer.recv().await {
                Ok(message) => {
                    let topic = message.topic();
                    if !cache.contains_key(topic) {
                        let found = routes.find(topic).map(|i| (Arc::<str>::from(topic), i));
                        cache.insert(topic.to_owned(), found);
                    }
                    match &cache[topic] {
                        Some((topic, index)) => {
                            let raw = Raw {
                                key: message.key().map(<[u8]>::to_vec),
                                value: Arc::from(message.payload().unwrap_or_default()),
                                headers: Headers::from_kafka(message.headers()),
                                timestamp: message.timestamp().to_millis(),
                                route: Some(*index),
                            };
                            let meta = Meta {
                                topic: topic.clone(),
                                partition: message.partition(),
                                offset: message.offset(),
                                timestamp: raw.timestamp,
                                key: raw.key.clone(),
                                headers: raw.headers.clone(),
                            };
                            let body = match message.payload() {
                                Some(payload) => routes.route(*index).decode(payload, meta),
                                None => Err(DecodeError::Truncated { len: 0 }),
                            };
                            let arrival = Arrival {
                                topic: topic.clone(),
                                partition: message.partition(),
                                offset: message.offset(),
                                body,
                            };
                            Ok((arrival, raw))
                        }
                        None => Err(KafkaError::Subscription(format!(
                            "record from unsubscribed topic `{topic}`"
                        ))),
                    }
                }
                Err(error) => Err(error),
            };
            Some((item, (consumer, routes, cache)))
        },
    )
}

/// Why a handler did not handle its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failed {
    /// It returned an error (the text of its chain).
    Error(String),
    /// It panicked (the panic's message).
    Panic(String),
}

/// Hands one decoded record to the actor, linking what it publishes to the
/// record through `slot`, in a span naming the record. Shared by the Kafka
/// feed and the simulator's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn deliver<A: TopicActor>(
    actor: &str,
    core: &PublisherCore,
    stats: &ActorStats,
    act: &mut A,
    ctx: &mut Context<A>,
    (topic, partition, offset): (&str, i32, i64),
    record: Box<dyn Deliver<A>>,
    slot: Arc<AckSlot>,
) -> Result<(), Failed> {
    let ce_id = record.headers().id().map(str::to_owned);
    let correlation_id = record
        .headers()
        .correlation_id()
        .map(str::to_owned)
        .or_else(|| ce_id.clone());
    let span = tracing::info_span!(
        "handle",
        actor,
        topic,
        partition,
        offset,
        ce_id = ce_id.as_deref().unwrap_or(""),
    );
    let _entered = span.enter();
    core.begin(Cause {
        ce_id,
        correlation_id,
        slot: slot.clone(),
    });
    let outcome = catch_unwind(AssertUnwindSafe(|| record.deliver(act, ctx)));
    core.end();
    match outcome {
        Ok(Ok(())) => {
            ActorStats::add(&stats.handled, 1);
            slot.done();
            Ok(())
        }
        Ok(Err(error)) => {
            ActorStats::add(&stats.handler_failures, 1);
            let reason = error_chain(&*error);
            tracing::error!(%reason, "handler failed");
            Err(Failed::Error(reason))
        }
        Err(panic) => {
            ActorStats::add(&stats.handler_failures, 1);
            let reason = panic_message(&*panic);
            tracing::error!(%reason, "handler panicked; the actor restarts and the record is redelivered");
            Err(Failed::Panic(reason))
        }
    }
}

/// An error and its sources, joined by `: `.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}
