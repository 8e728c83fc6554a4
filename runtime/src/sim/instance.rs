//! Starting actor instances in a simulation: the [`Launcher`] a simulated
//! actor's supervisor (the node's own `supervise` loop) starts its
//! instances with, and the instance itself: the production feed and
//! publisher over the simulated log ([`SimSource`] and [`Outlet`]), built
//! and started as on a node, on the simulation's one thread.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;

use super::source::SimSource;
use super::world::{Outlet, Slot, World, lock};
use crate::actor::TopicActor;
use crate::codec::SchemaRegistry;
use crate::error::{Error, Result};
use crate::failures::Failures;
use crate::feed::{FeedParts, Reading};
use crate::publisher::{Publisher, PublisherCore, Sink};
use crate::stats::ActorStats;
use crate::supervisor::{ActorFactory, Factory, Instance, Reads, start};

/// How a simulated actor's supervisor starts its instances: each one a
/// new member of the actor's group in the world (or of its replay's
/// group), which the scheduler notices and assigns partitions to.
#[derive(Clone)]
pub(crate) struct Launcher {
    pub(crate) world: Arc<Mutex<World>>,
    pub(crate) node: Arc<str>,
    pub(crate) registry: Arc<SchemaRegistry>,
    /// The actor's index in the simulation.
    pub(crate) actor: usize,
    /// The consumer group its replays commit in.
    pub(crate) replay_group: usize,
    /// The supervisor's tag: which of the actor's members (a node, in a
    /// real deployment) the instances belong to.
    pub(crate) member: u64,
    pub(crate) commit_interval: Duration,
    pub(crate) stats: Arc<ActorStats>,
}

impl Launcher {
    /// Builds and starts an instance of `factory`'s actor reading `mode`.
    pub(crate) fn spawn(
        &self,
        factory: &dyn ActorFactory,
        failures: &Failures,
        mode: &Reads,
    ) -> Result<Instance> {
        let (group, input, replay) = match mode {
            Reads::Live => (self.actor, Reading::Subscribed, None),
            Reads::Replay(replay) => {
                let world = lock(&self.world);
                let topic = *world
                    .index
                    .get(&replay.topic)
                    .ok_or_else(|| Error::UnknownTopic {
                        topic: replay.topic.clone(),
                    })?;
                let committed = world.committed.get(&self.replay_group);
                let mut ends = BTreeMap::new();
                let mut positions = BTreeMap::new();
                for (&partition, &(low, end)) in &replay.ranges {
                    let start = committed
                        .and_then(|c| c.get(&(topic, partition)))
                        .copied()
                        .unwrap_or(low)
                        .max(low);
                    if start < end {
                        ends.insert(partition, end);
                        positions.insert((topic, partition), start);
                    }
                }
                let input = Reading::DeadLetters {
                    ends,
                    read: replay.read.clone(),
                };
                (self.replay_group, input, Some(positions))
            }
        };
        let id = lock(&self.world).new_instance_id();
        let env = SimEnv {
            world: &self.world,
            node: &self.node,
            registry: &self.registry,
            id,
            actor: self.actor,
            member: self.member,
            group,
            commit_interval: self.commit_interval,
            input,
            replay,
            stats: &self.stats,
        };
        factory.spawn_sim(&env, failures)
    }
}

/// What a simulated instance is started with.
pub(crate) struct SimEnv<'a> {
    pub(crate) world: &'a Arc<Mutex<World>>,
    pub(crate) node: &'a str,
    pub(crate) registry: &'a SchemaRegistry,
    /// The instance's id (its slot in the world).
    pub(crate) id: u64,
    /// The actor's index in the simulation.
    pub(crate) actor: usize,
    /// Its supervisor's tag ([`Launcher::member`]).
    pub(crate) member: u64,
    /// The consumer group it commits in: its actor's, or a replay's.
    pub(crate) group: usize,
    /// The node's commit interval: its feed stores offsets four times per
    /// interval, as on a node.
    pub(crate) commit_interval: Duration,
    /// What it reads: its subscriptions, or a replay's dead letters.
    pub(crate) input: Reading,
    /// A replay: the partitions it reads and where it starts in each.
    pub(crate) replay: Option<BTreeMap<(usize, i32), i64>>,
    /// Where its counts go: its actor's, or a replay's own.
    pub(crate) stats: &'a Arc<ActorStats>,
}

/// Builds an instance of `A` and starts it on the current (simulation)
/// thread. A constructor that fails is reported through the instance's
/// `ready`, as on a node.
pub(crate) fn spawn<A: TopicActor>(
    factory: &Factory<A>,
    env: &SimEnv<'_>,
    failures: &Failures,
) -> Result<Instance> {
    let output = lock(env.world).index.get(&factory.output).copied();
    let Some(topic) = output else {
        return Err(Error::UnknownTopic {
            topic: factory.output.clone(),
        });
    };
    let outlet = Outlet {
        world: env.world.clone(),
        instance: env.id,
        topic,
        stats: env.stats.clone(),
        actor: env.actor,
        group: env.group,
        transactional: failures.transactional,
    };
    let slot = Slot {
        actor: env.actor,
        member: env.member,
        replay: env.replay.clone(),
        ..Slot::default()
    };
    let mut core = PublisherCore::new(
        Sink::Sim(outlet),
        factory.output.as_str().into(),
        format!("{}/{}", env.node, factory.name),
    )
    .reporting_to(slot.undelivered.clone());
    if failures.transactional {
        // The simulated broker never times a transaction out. A replay
        // has an identity of its own, as on a node.
        let mut id = crate::kafka::transactional_id(env.node, &factory.name);
        if env.replay.is_some() {
            id.push_str(".dlq-replay");
        }
        core = core.transactional(id, Duration::from_secs(60));
    }
    let core = Arc::new(core);
    let publisher = Publisher::<A::Output>::new(core.clone())?;
    let routes = factory.routes(env.registry)?;
    {
        let mut world = lock(env.world);
        world.slots.insert(env.id, slot);
        world.membership += 1;
        world.changed();
    }
    // Every instance has a consumer, even one without subscriptions (it is
    // never granted a record): the driver sees each instance end through
    // it.
    let source = Arc::new(SimSource::new(
        env.world.clone(),
        env.id,
        env.actor,
        env.group,
    ));
    let (stop_tx, stop_rx) = oneshot::channel();
    let (exit_tx, exit_rx) = oneshot::channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    start::<A, SimSource>(
        factory.args.clone(),
        publisher,
        FeedParts {
            actor: factory.name.as_str().into(),
            consumer: Some(source),
            routes,
            core,
            stats: env.stats.clone(),
            store_interval: crate::feed::store_interval(
                env.commit_interval,
                failures.transactional,
            ),
            failures: failures.clone(),
            input: env.input.clone(),
        },
        stop_rx,
        exit_tx,
        ready_tx,
    );
    Ok(Instance {
        arbiter: None,
        stop: Some(stop_tx),
        exit: exit_rx,
        ready: Some(ready_rx),
    })
}
