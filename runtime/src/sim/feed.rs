//! The simulator's feed: drives one actor instance from batches the driver
//! grants it, the way the Kafka feed drives one from its consumer.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use actix::{ActorContext, ActorFuture, AsyncContext, Context};

use crate::actor::{Routes, TopicActor};
use crate::consumed::Fetched;
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::failures::Failures;
use crate::handling::{Dispatch, Next};
use crate::publisher::{Publisher, PublisherCore, Sink};
use crate::stats::ActorStats;
use crate::supervisor::Factory;
use crate::tracker::AckSlot;

use super::world::{Grant, Outlet, World, lock};

/// What a simulated instance is started with.
pub(crate) struct SimEnv<'a> {
    pub(crate) world: &'a Arc<Mutex<World>>,
    pub(crate) node: &'a str,
    pub(crate) registry: &'a crate::codec::SchemaRegistry,
    /// The instance's id (its slot in the world).
    pub(crate) id: u64,
    /// The actor's index in the simulation.
    pub(crate) actor: usize,
}

/// Builds an instance of `A` and runs it on the current (simulation) thread.
pub(crate) fn spawn<A: TopicActor>(
    factory: &Factory<A>,
    env: &SimEnv<'_>,
    failures: &Failures,
) -> Result<()> {
    let name: Arc<str> = factory.name.as_str().into();
    let output = lock(env.world).index.get(&factory.output).copied();
    let Some(topic) = output else {
        return Err(Error::UnknownTopic {
            topic: factory.output.clone(),
        });
    };
    let outlet = Outlet {
        world: env.world.clone(),
        topic,
        stats: factory.stats.clone(),
    };
    let core = Arc::new(PublisherCore::new(
        Sink::Sim(outlet),
        factory.output.as_str().into(),
        format!("{}/{}", env.node, factory.name),
    ));
    let publisher = Publisher::<A::Output>::new(core.clone())?;
    let mut routes: Routes<A> = Routes::new();
    for sub in &factory.subscriptions.entries {
        routes.add(&sub.info, (sub.make_route)(env.registry)?)?;
    }
    let act = <A as TopicActor>::create(factory.args.clone(), publisher).map_err(|source| {
        Error::ActorStart {
            actor: factory.name.clone(),
            source,
        }
    })?;
    let feed = SimFeed {
        actor: name,
        id: env.id,
        world: env.world.clone(),
        routes,
        route_of: Vec::new(),
        core,
        stats: factory.stats.clone(),
        failures: failures.clone(),
        batch: VecDeque::new(),
        progress: None,
        pending: None,
    };
    lock(env.world).slots.insert(
        env.id,
        super::world::Slot {
            actor: env.actor,
            ..Default::default()
        },
    );
    let mut ctx = Context::<A>::new();
    ctx.spawn(feed);
    ctx.run(act);
    Ok(())
}

struct SimFeed<A: TopicActor> {
    actor: Arc<str>,
    id: u64,
    world: Arc<Mutex<World>>,
    routes: Routes<A>,
    /// Each topic's route, by topic index, found once.
    route_of: Vec<Option<Option<usize>>>,
    core: Arc<PublisherCore>,
    stats: Arc<ActorStats>,
    failures: Failures,
    /// The granted records not yet handled.
    batch: VecDeque<Fetched>,
    /// The grant being handled: its first offset and how many are done.
    progress: Option<(Grant, usize)>,
    /// A record waiting for its retry, with its attempt number.
    pending: Option<Retry>,
}

/// A record waiting for its retry: its bytes, the attempt it will be, its
/// ack slot, and the wait.
type Retry = (Fetched, u32, Arc<AckSlot>, Pin<Box<tokio::time::Sleep>>);

/// How a batch ended.
enum End {
    Completed,
    Restart(Failure),
    Halt(Failure),
}

impl<A: TopicActor> SimFeed<A> {
    fn route(&mut self, world: &World, topic: usize) -> Option<usize> {
        if self.route_of.len() <= topic {
            self.route_of.resize(topic + 1, None);
        }
        *self.route_of[topic].get_or_insert_with(|| self.routes.find(&world.logs[topic].name))
    }

    /// Copies the granted records into `self.batch`.
    fn take(&mut self, world: &World, grant: Grant) {
        let route = self.route(world, grant.topic);
        let records = &world.logs[grant.topic].partitions[grant.partition as usize];
        let from = grant.from as usize;
        self.batch.extend(
            records[from..from + grant.count]
                .iter()
                .map(|stored| Fetched {
                    key: stored.key.clone(),
                    value: stored.value.clone(),
                    headers: stored.headers.clone(),
                    timestamp: Some(stored.timestamp_ms),
                    route,
                }),
        );
    }

    /// Handles the batch's records until it is done, a record must wait
    /// for a retry (`None`), or the instance must end.
    fn work(
        &mut self,
        act: &mut A,
        ctx: &mut Context<A>,
        task: &mut std::task::Context<'_>,
    ) -> Option<End> {
        let (grant, _) = self.progress?;
        let topic = lock(&self.world).logs[grant.topic].name.clone();
        loop {
            let (raw, attempt, slot) = match self.pending.take() {
                Some((raw, attempt, slot, mut wait)) => {
                    if wait.as_mut().poll(task).is_pending() {
                        self.pending = Some((raw, attempt, slot, wait));
                        return None;
                    }
                    (raw, attempt, slot)
                }
                None => match self.batch.pop_front() {
                    Some(raw) => (raw, 1, AckSlot::new()),
                    None => return Some(End::Completed),
                },
            };
            let Some((_, done)) = &mut self.progress else {
                return Some(End::Completed);
            };
            let offset = grant.from + *done as i64;
            let handling = Dispatch {
                actor: &self.actor,
                core: &self.core,
                stats: &self.stats,
                routes: &self.routes,
                failures: &self.failures,
            };
            let at = crate::consumed::Position::new(topic.clone(), grant.partition, offset);
            let arrival = handling.redecode(&at, &raw);
            // The simulated bus acknowledges publishes as they are made, so
            // the slot completes when the record is handled.
            match handling.process(act, ctx, arrival, &raw, attempt, &slot) {
                Next::Done => *done += 1,
                Next::Retry { after, attempt } => {
                    self.pending = Some((raw, attempt, slot, Box::pin(tokio::time::sleep(after))));
                }
                Next::Restart(reason) => return Some(End::Restart(reason)),
                Next::Halt(reason) => return Some(End::Halt(reason)),
            }
        }
    }
}

impl<A: TopicActor> ActorFuture<A> for SimFeed<A> {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut A,
        ctx: &mut Context<A>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        let world = this.world.clone();
        {
            let mut guard = lock(&world);
            let Some(slot) = guard.slots.get_mut(&this.id) else {
                drop(guard);
                ctx.stop();
                return Poll::Ready(());
            };
            if slot.kill {
                drop(guard);
                ctx.stop();
                return Poll::Ready(());
            }
            if this.progress.is_none() {
                let Some(grant) = slot.grant.take() else {
                    slot.feed = Some(task.waker().clone());
                    return Poll::Pending;
                };
                this.progress = Some((grant, 0));
                this.take(&guard, grant);
            }
        }
        let Some(end) = this.work(act, ctx, task) else {
            // A retry is due later; its timer wakes this feed.
            if let Some(slot) = lock(&world).slots.get_mut(&this.id) {
                slot.feed = Some(task.waker().clone());
            }
            return Poll::Pending;
        };
        let (grant, done) = this.progress.take().expect("a batch was in hand");
        // Records after a failure are not handled.
        this.batch.clear();

        let mut guard = lock(&world);
        let actor_index = guard.slots.get(&this.id).map_or(0, |s| s.actor);
        let counts = guard
            .handled
            .entry((actor_index, grant.topic, grant.partition))
            .or_default();
        let from = grant.from as usize;
        if counts.len() < from + done {
            counts.resize(from + done, 0);
        }
        for count in &mut counts[from..from + done] {
            *count += 1;
        }
        let (failure, halt) = match end {
            End::Completed => (None, None),
            End::Restart(reason) => (Some(reason), None),
            End::Halt(reason) => (None, Some(reason)),
        };
        let stop = failure.is_some() || halt.is_some();
        if let Some(slot) = guard.slots.get_mut(&this.id) {
            slot.busy = false;
            slot.completed = Some(grant.from + done as i64);
            slot.failure = failure;
            slot.halt = halt;
            slot.feed = Some(task.waker().clone());
        }
        guard.changed();
        drop(guard);
        if stop {
            ctx.stop();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl<A: TopicActor> Drop for SimFeed<A> {
    fn drop(&mut self) {
        let mut world = lock(&self.world);
        if let Some(slot) = world.slots.get_mut(&self.id) {
            slot.exited = true;
            slot.busy = false;
        }
        world.changed();
    }
}
