//! The simulator's feed: drives one actor instance from batches the driver
//! grants it, the way the Kafka feed drives one from its consumer.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use actix::{ActorContext, ActorFuture, AsyncContext, Context};

use crate::actor::{Meta, Routes, TopicActor};
use crate::codec::DecodeError;
use crate::error::{Error, Result};
use crate::feed::{Arrival, Delivered, deliver};
use crate::publisher::{Publisher, PublisherCore, Sink};
use crate::stats::ActorStats;
use crate::supervisor::Factory;
use crate::tracker::AckSlot;

use super::world::{Outlet, World, lock};

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
pub(crate) fn spawn<A: TopicActor>(factory: &Factory<A>, env: &SimEnv<'_>) -> Result<()> {
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
        batch: Vec::new(),
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
    batch: Vec<Arrival<A>>,
}

impl<A: TopicActor> SimFeed<A> {
    fn route(&mut self, world: &World, topic: usize) -> Option<usize> {
        if self.route_of.len() <= topic {
            self.route_of.resize(topic + 1, None);
        }
        *self.route_of[topic].get_or_insert_with(|| self.routes.find(&world.logs[topic].name))
    }

    /// Decodes the granted records into `self.batch`.
    fn take(&mut self, world: &World, grant: super::world::Grant) {
        let route = self.route(world, grant.topic);
        let log = &world.logs[grant.topic];
        let records = &log.partitions[grant.partition as usize];
        let from = grant.from as usize;
        for (i, stored) in records[from..from + grant.count].iter().enumerate() {
            let offset = grant.from + i as i64;
            let meta = Meta {
                topic: log.name.clone(),
                partition: grant.partition,
                offset,
                timestamp: Some(stored.timestamp_ms),
                key: stored.key.clone(),
                headers: stored.headers.clone(),
            };
            let body = match route {
                Some(route) => self.routes.route(route).decode(&stored.value, meta),
                None => Err(DecodeError::NoMarker),
            };
            self.batch.push(Arrival {
                topic: log.name.clone(),
                partition: grant.partition,
                offset,
                body,
            });
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
        let mut guard = lock(&world);
        let Some(slot) = guard.slots.get_mut(&this.id) else {
            ctx.stop();
            return Poll::Ready(());
        };
        if slot.kill {
            drop(guard);
            ctx.stop();
            return Poll::Ready(());
        }
        let Some(grant) = slot.grant.take() else {
            slot.feed = Some(task.waker().clone());
            return Poll::Pending;
        };
        let actor_index = slot.actor;
        this.take(&guard, grant);
        drop(guard);

        let mut next = grant.from;
        let mut failure = None;
        // Handled, or skipped as undecodable: either way done with.
        let mut completed = 0;
        for arrival in this.batch.drain(..) {
            let offset = arrival.offset;
            // The simulated bus acknowledges publishes as they are made, so
            // the slot completes when the handler returns.
            match deliver(
                &this.actor,
                &this.core,
                &this.stats,
                act,
                ctx,
                arrival,
                AckSlot::new(),
            ) {
                Ok(Delivered::Handled | Delivered::Skipped) => {
                    completed += 1;
                    next = offset + 1;
                }
                Err(reason) => {
                    failure = Some(reason);
                    break;
                }
            }
        }
        // Records after a failure are not handled; drop their decoded values.
        this.batch.clear();

        let mut guard = lock(&world);
        let counts = guard
            .handled
            .entry((actor_index, grant.topic, grant.partition))
            .or_default();
        let from = grant.from as usize;
        if counts.len() < from + completed {
            counts.resize(from + completed, 0);
        }
        for count in &mut counts[from..from + completed] {
            *count += 1;
        }
        let stop = failure.is_some();
        if let Some(slot) = guard.slots.get_mut(&this.id) {
            slot.busy = false;
            slot.completed = Some(next);
            slot.failure = failure;
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
