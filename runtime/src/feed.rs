//! The feed: drives one actor instance from its Kafka consumer.
//!
//! The feed is an actix `ActorFuture` spawned in the actor's own context, so
//! it runs on the actor's thread with `&mut` access to the actor. It pulls
//! records from the consumer, decodes them, calls the actor's handler
//! directly (no mailbox round trip per record), tracks which offsets may be
//! committed, and on a stop request drains: it stops taking records,
//! flushes the producer, stores and commits the completed offsets, and
//! reports to the supervisor.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::{ActorContext, ActorFuture, Context};
use futures::Stream;
use futures::channel::oneshot;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message as _;

use crate::actor::{Deliver, Routes, TopicActor};
use crate::codec::DecodeError;
use crate::failures::{Failures, Handling, Next, Raw, decode};
use crate::headers::Headers;
use crate::publisher::{Cause, PublisherCore, TxnFailure};
use crate::stats::ActorStats;
use crate::tracker::{AckSlot, OffsetTracker, Undelivered};

/// The Kafka consumer of one actor instance.
pub(crate) type Consumer = StreamConsumer<Rebalances>;

/// Counts the consumer's rebalances, and holds a revocation back until the
/// feed has settled the revoked partitions. librdkafka calls it on the
/// actor's own thread, while the feed waits for a record.
#[derive(Debug, Default)]
pub(crate) struct Rebalances {
    count: AtomicU64,
    /// Partitions are revoked and still assigned: the feed finishes what it
    /// handled of them (every delivery report in, offsets committed), then
    /// gives them up. Without this, what was handled since the last stored
    /// offset was handled again by the next owner: 3107 duplicates in a
    /// rolling restart of two nodes on the embedded broker.
    revoking: std::sync::atomic::AtomicBool,
    /// The feed is done with the consumer (drained, failed or dropped):
    /// a revocation now, as the consumer closes, is honoured at once.
    done: std::sync::atomic::AtomicBool,
}

impl rdkafka::ClientContext for Rebalances {}

impl rdkafka::consumer::ConsumerContext for Rebalances {
    fn rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        partitions: &mut rdkafka::TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr as Why;
        self.count.fetch_add(1, Ordering::AcqRel);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            rdkafka::consumer::RebalanceProtocol::Cooperative
        );
        let outcome = match err {
            Why::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS if cooperative => {
                consumer.incremental_assign(partitions)
            }
            Why::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => consumer.assign(partitions),
            // Eager: every partition goes; the feed unassigns once settled,
            // unless the consumer is closing (the feed is done with it, and
            // closing waits for the unassignment).
            Why::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS
                if !cooperative && (self.done.load(Ordering::Acquire) || consumer.closed()) =>
            {
                consumer.unassign()
            }
            Why::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS if !cooperative => {
                tracing::debug!(
                    partitions = partitions.count(),
                    "revoked: settling before unassigning"
                );
                self.revoking.store(true, Ordering::Release);
                Ok(())
            }
            Why::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => consumer.incremental_unassign(partitions),
            other => {
                tracing::error!(error = ?other, "rebalance failed; giving up the assignment");
                consumer.unassign()
            }
        };
        if let Err(error) = outcome {
            tracing::error!(%error, "cannot take the rebalance's assignment");
        }
    }
}

/// How long a rewind waits for the broker's committed offsets.
const REWIND_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Where a record was read: what its offset commit names. The same as
/// the record's own coordinates, but for a replayed dead letter, which is
/// handled as the record it was and committed where it was read.
pub(crate) type ReadAt = (Arc<str>, i32, i64);

type Arrivals<A> = Pin<Box<dyn Stream<Item = KafkaResult<(Arrival<A>, Raw, ReadAt)>>>>;

/// What a Kafka feed reads.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    /// The actor's subscriptions, in its consumer group. Never ends.
    Subscribed,
    /// Its dead-letter topic (assigned, not subscribed), up to each
    /// partition's end offset taken when the replay began; the feed drains
    /// and stops once every partition reached it.
    DeadLetters {
        /// The end offset of each partition still to read.
        ends: BTreeMap<i32, i64>,
        /// Every dead letter read so far, across the replay's restarts.
        read: ReadSet,
    },
}

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
    /// Exactly-once: the open transaction's fate is settled elsewhere (its
    /// commit outcome is unknown, or the producer is fenced): the drain
    /// must neither commit nor abort it.
    settled: bool,
    /// The consumer's rebalances as the feed last saw them.
    rebalances: u64,
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
    pub(crate) input: Input,
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
            input,
        } = parts;
        let routes = Arc::new(routes);
        let arrivals: Arrivals<A> = match &consumer {
            Some(consumer) => Box::pin(arrivals(consumer.clone(), routes.clone(), input)),
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
            settled: false,
            rebalances: 0,
        }
    }

    /// Exactly-once: whether the consumer rebalanced since the last call
    /// while records were handled and not committed. Their positions may
    /// have been reset under the feed (a partition revoked, or revoked and
    /// assigned again from its committed offset), so the open transaction
    /// must not commit: [`Feed::rewind`].
    fn rebalanced(&mut self) -> bool {
        let Some(consumer) = &self.consumer else {
            return false;
        };
        let now = consumer.context().count.load(Ordering::Acquire);
        let changed = now != self.rebalances;
        self.rebalances = now;
        changed && (self.tracker.outstanding() > 0 || self.core.is_open())
    }

    /// Exactly-once: aborts the open transaction and moves every assigned
    /// partition back to its committed offset, so what the transaction
    /// held is handled again, once.
    fn rewind(&mut self) {
        self.abort();
        self.tracker = OffsetTracker::default();
        self.pending = None;
        let Some(consumer) = &self.consumer else {
            return;
        };
        let rewound = consumer.committed(REWIND_TIMEOUT).and_then(|committed| {
            for e in committed.elements() {
                let to = match e.offset() {
                    rdkafka::Offset::Offset(at) => rdkafka::Offset::Offset(at),
                    // No commit yet: a new group starts at the earliest.
                    _ => rdkafka::Offset::Beginning,
                };
                consumer.seek(e.topic(), e.partition(), to, REWIND_TIMEOUT)?;
            }
            Ok(())
        });
        match rewound {
            Ok(()) => tracing::info!(
                actor = %self.actor,
                "rebalanced: the open transaction is aborted and its records handled again"
            ),
            Err(error) => {
                self.failure.get_or_insert(Exit::Failed(format!(
                    "cannot rewind to the committed offsets after a rebalance: {error}"
                )));
            }
        }
    }

    /// Hands one record to the actor under its failure policy.
    fn handle(
        &mut self,
        act: &mut A,
        ctx: &mut Context<A>,
        arrival: Arrival<A>,
        raw: Raw,
        (topic, partition, offset): ReadAt,
    ) {
        if self.core.is_transactional() && self.rebalanced() {
            // This record is fetched again from the rewound position.
            self.rewind();
            return;
        }
        let slot = AckSlot::new();
        self.tracker.track(&topic, partition, offset, slot.clone());
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
        if self.core.is_transactional() {
            return;
        }
        let Some(consumer) = &self.consumer else {
            return;
        };
        let collected = self.tracker.collect();
        if let Some(list) = collected.offsets
            && let Err(error) = consumer.store_offsets(&list)
        {
            // Typically a partition was revoked by a rebalance: its new
            // owner starts from the last committed offset.
            tracing::debug!(actor = %self.actor, %error, "cannot store offsets");
            if let Ok(assigned) = consumer.assignment() {
                self.tracker
                    .retain(|topic, partition| assigned.find_partition(topic, partition).is_some());
            }
        }
        if let Some(undelivered) = collected.undelivered {
            self.undelivered(&undelivered);
        }
    }

    /// A record's publishes were not delivered: its offset must not
    /// commit, and the instance restarts to handle it again.
    fn undelivered(&mut self, undelivered: &Undelivered) {
        self.failure.get_or_insert_with(|| {
            Exit::Failed(format!(
                "records published while handling {}/{}@{} were not delivered",
                undelivered.topic, undelivered.partition, undelivered.offset
            ))
        });
    }

    /// Exactly-once: commits the open transaction with the input offsets
    /// of every record handled in it.
    fn commit_transaction(&mut self) {
        if self.settled {
            return;
        }
        if self.rebalanced() {
            self.rewind();
            return;
        }
        let collected = self.tracker.collect();
        if let Some(undelivered) = collected.undelivered {
            // A publish refused outright (under exactly-once no slot waits
            // for a delivery report): the transaction must not commit; the
            // drain aborts it.
            return self.undelivered(&undelivered);
        }
        let offsets = collected.offsets;
        let group = self.consumer.as_ref().and_then(|c| c.group_metadata());
        let outcome = self.core.commit(offsets.as_ref().zip(group.as_ref()));
        let failure = match outcome {
            Ok((committed, retries)) => {
                ActorStats::add(&self.stats.transactions, u64::from(committed));
                ActorStats::add(&self.stats.commit_retries, u64::from(retries));
                return;
            }
            Err(TxnFailure::Abortable(reason)) => {
                // Its records are handled again by the next instance, from
                // the last committed offsets; what it wrote is never read.
                self.abort();
                Exit::Failed(reason)
            }
            Err(TxnFailure::Unknown(reason)) => {
                self.settled = true;
                Exit::Failed(format!(
                    "{reason}; the producer is rebuilt and the broker settles the transaction"
                ))
            }
            Err(TxnFailure::Fatal(reason)) => {
                self.settled = true;
                // Fenced, or transactions cannot work: a new instance would
                // fail the same way (or fence the live one back).
                Exit::Halted(reason)
            }
        };
        tracing::error!(actor = %self.actor, reason = ?failure, "transaction not committed");
        self.failure.get_or_insert(failure);
    }

    /// Exactly-once: aborts the open transaction, if any.
    fn abort(&self) {
        if self.core.abort() {
            ActorStats::add(&self.stats.transactions_aborted, 1);
        }
    }

    /// Exactly-once: commits what was handled, or aborts it when the
    /// instance failed (the next one handles it again).
    fn drain_transaction(&mut self) {
        match &self.failure {
            _ if self.settled => {}
            Some(Exit::Failed(_)) => self.abort(),
            Some(Exit::Stopped | Exit::Halted(_)) | None => self.commit_transaction(),
        }
        let exit = self.failure.take().unwrap_or(Exit::Stopped);
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(exit);
        }
    }

    /// Partitions are being revoked (an eager rebalance): finish with them
    /// before they go. At-least-once: every delivery report in, complete
    /// offsets stored and committed, so the next owner starts after what
    /// was handled. Exactly-once: the open transaction is aborted, as on
    /// any rebalance. Then the assignment is given up.
    fn settle_revoked(&mut self) {
        // Checked before each record: a plain load unless a revocation waits.
        let revoking = self.consumer.as_ref().is_some_and(|c| {
            let flag = &c.context().revoking;
            flag.load(Ordering::Acquire) && flag.swap(false, Ordering::AcqRel)
        });
        let Some(consumer) = self.consumer.clone().filter(|_| revoking) else {
            return;
        };
        tracing::debug!(actor = %self.actor, outstanding = self.tracker.outstanding(), "settling revoked partitions");
        if self.core.is_transactional() {
            if self.rebalanced() {
                self.rewind();
            }
        } else {
            self.commit_completed("before a rebalance");
        }
        // What is left of the revoked partitions is their next owner's.
        self.tracker = OffsetTracker::default();
        self.pending = None;
        if let Err(error) = consumer.unassign() {
            self.failure.get_or_insert(Exit::Failed(format!(
                "cannot give up revoked partitions: {error}"
            )));
        }
    }

    /// At-least-once: waits for every delivery report, stores what is
    /// complete and commits it synchronously; `when` names the occasion in
    /// warnings.
    fn commit_completed(&mut self, when: &str) {
        if let Err(error) = self.core.flush(FLUSH_TIMEOUT) {
            tracing::warn!(actor = %self.actor, %error, "producer flush {when} did not complete");
        }
        self.store_completed();
        if let Some(consumer) = &self.consumer {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(error) => tracing::warn!(actor = %self.actor, %error, "commit {when} failed"),
            }
        }
    }

    /// Flushes, stores and commits what is complete, and reports the exit.
    fn drain(&mut self) {
        if let Some(consumer) = &self.consumer {
            consumer.context().done.store(true, Ordering::Release);
        }
        if self.core.is_transactional() {
            self.drain_transaction();
            return;
        }
        self.commit_completed("at the end");
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
        this.settle_revoked();
        while !this.stopping && this.pending.is_none() {
            this.settle_revoked();
            if handled >= BUDGET || started.elapsed() >= BUDGET_TIME {
                exhausted = true;
                break;
            }
            match this.arrivals.as_mut().poll_next(task) {
                Poll::Ready(Some(Ok((arrival, raw, read_at)))) => {
                    handled += 1;
                    this.handle(act, ctx, arrival, raw, read_at);
                }
                Poll::Ready(Some(Err(error))) => {
                    handled += 1;
                    tracing::warn!(actor = %this.actor, %error, "consumer error");
                }
                // The input is finished (a replay reached its end).
                Poll::Ready(None) => {
                    handled += 1;
                    this.stopping = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        let mut ticked = false;
        while this.tick.poll_tick(task).is_ready() {
            ticked = true;
        }
        if this.core.is_transactional() && ticked {
            this.commit_transaction();
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
        if let Some(consumer) = &self.consumer {
            consumer.context().done.store(true, Ordering::Release);
        }
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(Exit::Failed("the actor stopped unexpectedly".into()));
        }
    }
}

/// How long a replay waits for a record before asking the consumer
/// whether it is past the end already (offsets with no record: transaction
/// markers, compacted records).
const REPLAY_IDLE: Duration = Duration::from_millis(500);

/// The consumer's records, decoded for the actor's routes.
fn arrivals<A: TopicActor>(
    consumer: Arc<Consumer>,
    routes: Arc<Routes<A>>,
    input: Input,
) -> impl Stream<Item = KafkaResult<(Arrival<A>, Raw, ReadAt)>> {
    let reader = Reader {
        consumer,
        routes,
        cache: HashMap::new(),
        ends: match input {
            Input::Subscribed => None,
            Input::DeadLetters { ends, read } => Some((ends, read)),
        },
    };
    futures::stream::unfold(reader, |mut reader| async move {
        let item = reader.next().await?;
        Some((item, reader))
    })
}

/// The dead letters a replay read, as (partition, offset): how many there
/// were, whatever offsets the transaction markers between them take.
pub(crate) type ReadSet = Arc<std::sync::Mutex<std::collections::BTreeSet<(i32, i64)>>>;

/// The state of [`arrivals`].
struct Reader<A: TopicActor> {
    consumer: Arc<Consumer>,
    routes: Arc<Routes<A>>,
    /// Each topic's route, found once (patterns are matched per topic,
    /// not per record).
    cache: HashMap<String, Option<(Arc<str>, usize)>>,
    /// Replaying: the partitions still to read and their end offsets, and
    /// the dead letters read.
    ends: Option<(BTreeMap<i32, i64>, ReadSet)>,
}

impl<A: TopicActor> Reader<A> {
    /// The next record; `None` once a replay is past every end.
    async fn next(&mut self) -> Option<KafkaResult<(Arrival<A>, Raw, ReadAt)>> {
        // A message borrows its consumer; this one, not `self`'s.
        let consumer = self.consumer.clone();
        loop {
            let Some((ends, _)) = &self.ends else {
                return Some(match consumer.recv().await {
                    Ok(message) => self.subscribed(&message),
                    Err(error) => Err(error),
                });
            };
            if ends.is_empty() {
                return None;
            }
            let message = match tokio::time::timeout(REPLAY_IDLE, consumer.recv()).await {
                Err(_) => {
                    self.past_the_end();
                    continue;
                }
                Ok(Err(error)) => return Some(Err(error)),
                Ok(Ok(message)) => message,
            };
            let partition = message.partition();
            let Some(&end) = ends.get(&partition) else {
                // A partition already done: what follows its end (dead
                // letters written by this very replay) is for the next one.
                continue;
            };
            if message.offset() >= end {
                self.finish(message.topic(), partition);
                continue;
            }
            if let Some(Ok(mut read)) = self.ends.as_ref().map(|(_, read)| read.lock()) {
                read.insert((partition, message.offset()));
            }
            if message.offset() + 1 >= end {
                self.finish(message.topic(), partition);
            }
            return Some(Ok(self.replayed(&message)));
        }
    }

    fn route(&mut self, topic: &str) -> Option<(Arc<str>, usize)> {
        if !self.cache.contains_key(topic) {
            let found = self
                .routes
                .find(topic)
                .map(|i| (Arc::<str>::from(topic), i));
            self.cache.insert(topic.to_owned(), found);
        }
        self.cache[topic].clone()
    }

    /// A record of a subscribed topic.
    fn subscribed(
        &mut self,
        message: &rdkafka::message::BorrowedMessage<'_>,
    ) -> KafkaResult<(Arrival<A>, Raw, ReadAt)> {
        let route = self.route(message.topic());
        let topic = route
            .as_ref()
            .map_or_else(|| Arc::from(message.topic()), |(t, _)| t.clone());
        let (headers, unreadable) = Headers::from_kafka(message.headers());
        let raw = raw_of(message, headers, route.as_ref().map(|(_, i)| *i));
        let at = (topic, message.partition(), message.offset());
        let failed = |error| Arrival {
            topic: at.0.clone(),
            partition: at.1,
            offset: at.2,
            body: Err(error),
        };
        // Never skipped: what cannot be routed or read is dead-lettered.
        let arrival = match (route, unreadable) {
            (None, _) => failed(DecodeError::Unrouted(message.topic().to_owned())),
            (Some(_), Some(index)) => failed(DecodeError::HeaderKey { index }),
            (Some(_), None) => decode(&self.routes, at.clone(), &raw),
        };
        Ok((arrival, raw, at))
    }

    /// A dead letter, as the record it was: its original topic, partition
    /// and offset, its headers without the dead-letter ones, decoded by the
    /// route of its original topic.
    fn replayed(
        &mut self,
        message: &rdkafka::message::BorrowedMessage<'_>,
    ) -> (Arrival<A>, Raw, ReadAt) {
        // A dead letter's unreadable header keys were dropped when it was
        // written; one written by another client is replayed without them.
        let (all, _) = Headers::from_kafka(message.headers());
        let text = |key: &str| all.get(key).and_then(|v| std::str::from_utf8(v).ok());
        let read_at: ReadAt = (
            Arc::from(message.topic()),
            message.partition(),
            message.offset(),
        );
        let origin = text(crate::headers::DLQ_TOPIC).zip(
            text(crate::headers::DLQ_PARTITION)
                .and_then(|p| p.parse::<i32>().ok())
                .zip(text(crate::headers::DLQ_OFFSET).and_then(|o| o.parse::<i64>().ok())),
        );
        let (origin, route) = match origin {
            Some((topic, (partition, offset))) => {
                let route = self.route(topic);
                let topic = route
                    .as_ref()
                    .map_or_else(|| Arc::from(topic), |(t, _)| t.clone());
                ((topic, partition, offset), route.map(|(_, i)| i))
            }
            None => (read_at.clone(), None),
        };
        let raw = raw_of(message, all.without_dead_letter(), route);
        let truncated = text(crate::headers::DLQ_TRUNCATED).map(str::to_owned);
        let arrival = match (origin.0 == read_at.0, route) {
            _ if truncated.is_some() => self.unreplayable(
                origin,
                format!(
                    "it holds only part of the record ({}: {})",
                    crate::headers::DLQ_TRUNCATED,
                    truncated.unwrap_or_default()
                ),
            ),
            (true, _) => self.unreplayable(
                origin,
                "it has no scribe_dlq_topic, _partition and _offset headers".into(),
            ),
            (false, None) => self.unreplayable(
                origin.clone(),
                format!("the actor no longer subscribes to its topic `{}`", origin.0),
            ),
            (false, Some(_)) => decode(&self.routes, origin, &raw),
        };
        (arrival, raw, read_at)
    }

    fn unreplayable(&self, (topic, partition, offset): ReadAt, reason: String) -> Arrival<A> {
        Arrival {
            topic,
            partition,
            offset,
            body: Err(DecodeError::Unreplayable(reason)),
        }
    }

    /// Stops reading `partition` of a replay.
    fn finish(&mut self, topic: &str, partition: i32) {
        if let Some((ends, _)) = &mut self.ends {
            ends.remove(&partition);
        }
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition(topic, partition);
        if let Err(error) = self.consumer.pause(&list) {
            tracing::debug!(%topic, partition, %error, "cannot pause a replayed partition");
        }
    }

    /// Drops the partitions whose position is at or past their end, though
    /// no record said so (the last offsets hold no record).
    fn past_the_end(&mut self) {
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        let done: Vec<(String, i32)> = positions
            .elements()
            .iter()
            .filter_map(|e| {
                let end = self.ends.as_ref()?.0.get(&e.partition())?;
                match e.offset() {
                    rdkafka::Offset::Offset(at) if at >= *end => {
                        Some((e.topic().to_owned(), e.partition()))
                    }
                    _ => None,
                }
            })
            .collect();
        for (topic, partition) in done {
            self.finish(&topic, partition);
        }
    }
}

/// A consumed message as the feed keeps it, with `headers` and `route`.
fn raw_of(
    message: &rdkafka::message::BorrowedMessage<'_>,
    headers: Headers,
    route: Option<usize>,
) -> Raw {
    Raw {
        key: message.key().map(<[u8]>::to_vec),
        value: Arc::from(message.payload().unwrap_or_default()),
        headers,
        timestamp: message.timestamp().to_millis(),
        route,
    }
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
        // rdkafka's errors repeat their source's text in their own.
        let said = s.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
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
