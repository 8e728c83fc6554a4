//! The feed: drives one actor instance from its consumer.
//!
//! The feed is an actix `ActorFuture` spawned in the actor's own context, so
//! it runs on the actor's thread with `&mut` access to the actor. It pulls
//! records from the consumer ([`reader`]), hands each to the actor under its
//! failure policy ([`crate::handling`]), tracks which offsets may be
//! committed, and on a stop request drains: it stops taking records,
//! flushes the producer, stores and commits the completed offsets, and
//! reports to the supervisor ([`commit`]). [`rebalance`] is the consumer's
//! context, which holds a revocation back until the feed has settled it.
//! The consumer is a [`Source`] ([`source`]): Kafka's ([`kafka`]), or the
//! simulator's in-memory log.
//!
//! Owns: an instance's loop over its records, its offsets and its drain.
//! May import: `error`, `wire`, `delivery`, `ops`, `publisher`, `actor`,
//! `handling`. Imported by: `supervisor` (which builds feeds) and `sim`
//! (its sources).

mod commit;
mod kafka;
mod pause;
mod reader;
mod rebalance;
mod restores;
mod restoring;
mod source;
mod timers;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::{ActorContext, ActorFuture, Context};
use futures::Stream;
use futures::channel::oneshot;

use crate::actor::{Routes, TopicActor};
use crate::delivery::attempts::Failures;
use crate::delivery::consumed::Fetched;
use crate::delivery::consumed::Position;
use crate::delivery::failure::Failure;
use crate::delivery::tracker::{AckSlot, OffsetTracker};
use crate::handling::{Decoded, Dispatch, Next};
use crate::ops::stats::ActorStats;
use crate::publisher::PublisherCore;

use reader::ReadAt;
pub(crate) use reader::{ReadSet, Reading};
pub(crate) use rebalance::{ActorConsumer, Rebalances};
pub(crate) use restores::Restores;
pub(crate) use source::Source;
#[cfg(feature = "testing")]
pub(crate) use source::{Boxed, DynSource, Owned};

/// How many records the feed handles before yielding to the actor's other
/// work (its mailbox, its intervals) and storing completed offsets.
const BUDGET: usize = 256;
/// How long the feed handles records before yielding, whatever their number,
/// so slow handlers still store offsets and see stop requests promptly.
const BUDGET_TIME: Duration = Duration::from_millis(20);

/// How often a feed stores completed offsets while idle: four times per
/// commit interval; under exactly-once, where each commit is a
/// transaction, once per interval.
pub(crate) fn store_interval(commit_interval: Duration, transactional: bool) -> Duration {
    let interval = if transactional {
        commit_interval
    } else {
        commit_interval / 4
    };
    interval.max(Duration::from_millis(10))
}

/// Why an actor instance ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Asked to stop; drained and committed.
    Stopped,
    /// Failed; the supervisor restarts it.
    Failed(Failure),
    /// Stopped by its failure policy; the supervisor does not restart it.
    Halted(Failure),
}

type Fetches<A> = Pin<Box<dyn Stream<Item = reader::Arrival<A>>>>;

/// A record waiting to be tried again.
struct Pending {
    at: Position,
    raw: Fetched,
    attempt: u32,
    slot: Arc<AckSlot>,
    wait: Pin<Box<tokio::time::Sleep>>,
}

pub(crate) struct Feed<A: TopicActor, S: Source> {
    actor: Arc<str>,
    consumer: Option<Arc<S>>,
    arrivals: Fetches<A>,
    /// Decodes what the consumer has at hand ([`Source::try_recv`]); a
    /// replay reads only through `arrivals`.
    at_hand: Option<reader::Decoding<A>>,
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
    /// Records handled since the source last heard of them (only when it
    /// counts them, [`Source::COUNTS_HANDLED`]).
    handled: Vec<Position>,
    /// Whether the consumer is paused (by the admin endpoint).
    paused: bool,
    /// With stores: their restores.
    state: Option<Restores>,
}

/// What a feed is made of.
pub(crate) struct FeedParts<A: TopicActor, S: Source> {
    pub(crate) actor: Arc<str>,
    pub(crate) consumer: Option<Arc<S>>,
    pub(crate) routes: Routes<A>,
    pub(crate) core: Arc<PublisherCore>,
    pub(crate) stats: Arc<ActorStats>,
    /// How often completed offsets are stored while idle.
    pub(crate) store_interval: Duration,
    pub(crate) failures: Failures,
    pub(crate) input: Reading,
    /// With stores: what restores them.
    pub(crate) state: Option<Restores>,
}

impl<A: TopicActor, S: Source> Feed<A, S> {
    pub(crate) fn new(
        parts: FeedParts<A, S>,
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
            state,
        } = parts;
        let routes = Arc::new(routes);
        let at_hand =
            matches!(input, Reading::Subscribed).then(|| reader::Decoding::new(routes.clone()));
        let arrivals: Fetches<A> = match &consumer {
            Some(consumer) => reader::arrivals(consumer.clone(), routes.clone(), input),
            None => Box::pin(futures::stream::pending()),
        };
        let mut tick = tokio::time::interval(store_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            actor,
            consumer,
            arrivals,
            at_hand,
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
            handled: Vec::new(),
            paused: false,
            state,
        }
    }

    /// Hands one record to the actor under its failure policy.
    fn handle(
        &mut self,
        act: &mut A,
        ctx: &mut Context<A>,
        arrival: Decoded<A>,
        raw: Fetched,
        read_at: ReadAt,
    ) {
        if self.core.is_transactional() && self.rebalanced() {
            // This record is fetched again from the rewound position.
            self.rewind();
            return;
        }
        let slot = AckSlot::new();
        self.tracker.track(&read_at, slot.clone());
        let at = arrival.at.clone();
        self.advance_timers(&at, raw.timestamp);
        let next = self.handling().process(act, ctx, arrival, &raw, 1, &slot);
        self.follow(next, at, raw, slot);
    }

    /// Tries the pending record again.
    fn retry(&mut self, act: &mut A, ctx: &mut Context<A>, pending: Pending) {
        let Pending {
            at,
            raw,
            attempt,
            slot,
            ..
        } = pending;
        let handling = self.handling();
        let arrival = handling.redecode(&at, &raw);
        let next = handling.process(act, ctx, arrival, &raw, attempt, &slot);
        self.follow(next, at, raw, slot);
    }

    /// Tells the source which records were handled, if it counts them.
    fn report_handled(&mut self) {
        if let Some(consumer) = &self.consumer
            && !self.handled.is_empty()
        {
            consumer.handled(&mut self.handled);
        }
    }

    fn handling(&self) -> Dispatch<'_, A> {
        Dispatch {
            actor: &self.actor,
            core: &self.core,
            stats: &self.stats,
            routes: &self.routes,
            failures: &self.failures,
        }
    }

    fn follow(&mut self, next: Next, at: Position, raw: Fetched, slot: Arc<AckSlot>) {
        match next {
            Next::Done => {
                if S::COUNTS_HANDLED {
                    self.handled.push(at);
                }
            }
            Next::Retry { after, attempt } => {
                self.pending = Some(Pending {
                    at,
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
}

impl<A: TopicActor, S: Source> Feed<A, S> {
    /// Looks at the supervisor's stop request. Returns true when the
    /// instance must end at once, without a drain.
    fn poll_stop(&mut self, ctx: &mut Context<A>, task: &mut std::task::Context<'_>) -> bool {
        let Some(stop) = &mut self.stop else {
            return false;
        };
        match Pin::new(stop).poll(task) {
            Poll::Ready(Ok(())) => {
                self.stop = None;
                self.stopping = true;
                false
            }
            // The supervisor is gone (the node was dropped, or a simulated
            // process killed): the instance ends at once, without a
            // drain, as its thread does.
            Poll::Ready(Err(oneshot::Canceled)) => {
                self.stop = None;
                ctx.stop();
                true
            }
            Poll::Pending => false,
        }
    }

    /// Whether the feed may take another record after a record was
    /// reported not delivered: no record more is taken, so that nothing
    /// handled after it is published before it is handled again; the
    /// instance stops once the tracker finds which record it was (its
    /// earlier records' acknowledgements may still be due). A failed
    /// publish no tracked record waits for (one made outside handling)
    /// changes nothing.
    fn may_go_on_after_undelivered(&mut self) -> bool {
        if !self.core.undelivered() {
            return true;
        }
        self.core.set_undelivered(false);
        self.store_completed();
        if self.failure.is_some() {
            self.stopping = true;
            return false;
        }
        if self.tracker.any_failed() {
            self.core.set_undelivered(true);
            return false;
        }
        true
    }

    /// The next record: one the consumer has at hand, else the stream's.
    fn next_arrival(
        &mut self,
        task: &mut std::task::Context<'_>,
    ) -> Poll<Option<reader::Arrival<A>>> {
        let at_hand = match (&self.consumer, &mut self.at_hand) {
            (Some(consumer), Some(decoding)) => consumer
                .try_recv()
                .map(|fetched| fetched.and_then(|message| decoding.subscribed(message))),
            _ => None,
        };
        match at_hand {
            Some(arrival) => Poll::Ready(Some(arrival)),
            None => self.arrivals.as_mut().poll_next(task),
        }
    }

    /// Handles records until none is at hand, the budget is spent, a
    /// retry waits or the feed is stopping. Counts them in `run`.
    fn take_records(
        &mut self,
        act: &mut A,
        ctx: &mut Context<A>,
        task: &mut std::task::Context<'_>,
        run: &mut Run,
    ) {
        while !self.stopping && self.pending.is_none() {
            self.settle_revoked();
            if !self.may_go_on_after_undelivered() {
                break;
            }
            // The clock is read every eighth record: a record costs far
            // less than the budget's time.
            if run.handled >= BUDGET
                || (run.handled.is_multiple_of(8) && run.started.elapsed() >= BUDGET_TIME)
            {
                run.exhausted = true;
                break;
            }
            match self.next_arrival(task) {
                Poll::Ready(Some(Ok((arrival, raw, read_at)))) => {
                    run.handled += 1;
                    self.handle(act, ctx, arrival, raw, read_at);
                }
                Poll::Ready(Some(Err(error))) => {
                    run.handled += 1;
                    tracing::warn!(actor = %self.actor, %error, "consumer error");
                }
                // The input is finished (a replay reached its end).
                Poll::Ready(None) => {
                    run.handled += 1;
                    self.stopping = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
    }

    /// After a batch: commits an exactly-once actor's transaction on its
    /// tick, and stores what completed.
    fn settle_batch(&mut self, task: &mut std::task::Context<'_>, run: &Run) {
        let mut ticked = false;
        while self.tick.poll_tick(task).is_ready() {
            ticked = true;
        }
        if self.core.is_transactional() && ticked {
            self.commit_transaction();
        }
        if run.handled > 0 || ticked {
            self.report_handled();
            self.store_completed();
            if self.failure.is_some() {
                self.stopping = true;
            }
        }
    }
}

/// What one poll of a feed did so far.
struct Run {
    /// Records handled (or given up on) in this poll.
    handled: usize,
    started: Instant,
    /// Whether it stopped for its budget, with records left to take.
    exhausted: bool,
}

impl<A: TopicActor, S: Source> ActorFuture<A> for Feed<A, S> {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut A,
        ctx: &mut Context<A>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        if this.poll_stop(ctx, task) {
            return Poll::Ready(());
        }
        this.apply_pause(task);
        this.poll_state(task);
        let mut run = Run {
            handled: 0,
            started: Instant::now(),
            exhausted: false,
        };
        if let Some(pending) = &mut this.pending
            && !this.stopping
            && pending.wait.as_mut().poll(task).is_ready()
        {
            let pending = this.pending.take().expect("checked above");
            run.handled += 1;
            this.retry(act, ctx, pending);
        }
        // While a record waits for its retry, the records after it wait too.
        this.settle_revoked();
        this.take_records(act, ctx, task, &mut run);
        this.fire_timers(act, ctx, task);
        this.settle_batch(task, &run);
        if this.stopping {
            this.drain();
            ctx.stop();
            return Poll::Ready(());
        }
        // A retry just scheduled: its timer must know whom to wake.
        if let Some(pending) = &mut this.pending
            && pending.wait.as_mut().poll(task).is_ready()
        {
            run.exhausted = true;
        }
        if run.exhausted {
            task.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<A: TopicActor, S: Source> Drop for Feed<A, S> {
    fn drop(&mut self) {
        self.report_handled();
        if let Some(consumer) = &self.consumer {
            consumer.done();
        }
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(Exit::Failed(Failure::Lost(
                "the actor stopped unexpectedly".into(),
            )));
        }
    }
}
