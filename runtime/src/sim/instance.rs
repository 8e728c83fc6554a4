//! Starting one actor instance in a simulation: the production feed and
//! publisher over the simulated log ([`SimSource`] and [`Outlet`]), built
//! and started as on a node, on the simulation's one thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;

use super::source::SimSource;
use super::world::{Outlet, Slot, World, lock};
use crate::actor::TopicActor;
use crate::error::{Error, Result};
use crate::failures::Failures;
use crate::feed::{Exit, FeedParts, Reading};
use crate::publisher::{Publisher, PublisherCore, Sink};
use crate::supervisor::{Factory, start};

/// What a simulated instance is started with.
pub(crate) struct SimEnv<'a> {
    pub(crate) world: &'a Arc<Mutex<World>>,
    pub(crate) node: &'a str,
    pub(crate) registry: &'a crate::codec::SchemaRegistry,
    /// The instance's id (its slot in the world).
    pub(crate) id: u64,
    /// The actor's index in the simulation.
    pub(crate) actor: usize,
    /// The consumer group it commits in: its actor's, or a replay's.
    pub(crate) group: usize,
    /// What it reads: its subscriptions, or a replay's dead letters.
    pub(crate) input: Reading,
    /// Where its counts go: its actor's, or a replay's own.
    pub(crate) stats: &'a Arc<crate::stats::ActorStats>,
    /// The node's commit interval: its feed stores offsets four times per
    /// interval, as on a node.
    pub(crate) commit_interval: Duration,
}

/// A started instance, as the driver holds it: its stop switch (dropped,
/// the instance ends at once, as in a crash) and how it ended.
pub(crate) struct Spawned {
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) exit: oneshot::Receiver<Exit>,
}

/// Builds an instance of `A` and starts it on the current (simulation)
/// thread.
pub(crate) fn spawn<A: TopicActor>(
    factory: &Factory<A>,
    env: &SimEnv<'_>,
    failures: &Failures,
) -> Result<Spawned> {
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
    };
    let slot = Slot::default();
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
        if matches!(env.input, Reading::DeadLetters { .. }) {
            id.push_str(".dlq-replay");
        }
        core = core.transactional(id, Duration::from_secs(60));
    }
    let core = Arc::new(core);
    let publisher = Publisher::<A::Output>::new(core.clone())?;
    let routes = factory.routes(env.registry)?;
    lock(env.world).slots.insert(env.id, slot);
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
    let (ready_tx, mut ready_rx) = oneshot::channel();
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
    if let Ok(Some(Err(source))) = ready_rx.try_recv() {
        lock(env.world).slots.remove(&env.id);
        return Err(Error::ActorStart {
            actor: factory.name.clone(),
            source,
        });
    }
    Ok(Spawned {
        stop: Some(stop_tx),
        exit: exit_rx,
    })
}
