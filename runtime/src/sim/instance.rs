//! Starting actor instances in a simulation: the [`SimLauncher`] a
//! simulated actor's supervisor (the node's own `supervise` loop) starts
//! its instances with. Each is wired to the simulated broker ([`SimSource`]
//! and [`Outlet`]) and built by the runtime's own instance builder
//! (`ActorFactory::spawn_wired`), on the simulation's one thread.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::changelogs::SimChangelogs;
use super::source::SimSource;
use super::tail::SimTail;
use super::world::{Outlet, Slot, World, lock};
use crate::delivery::attempts::Failures;
use crate::error::{Error, Result};
use crate::feed::{Boxed, Reading};
use crate::ops::stats::ActorStats;
use crate::publisher::Sink;
use crate::supervisor::{ActorFactory, Instance, Launcher, Reads, Wiring};
use crate::wire::codec::SchemaRegistry;

/// How a simulated actor's supervisor starts its instances: each one a
/// new member of the actor's group in the world (or of its replay's
/// group), which the scheduler notices and assigns partitions to.
#[derive(Clone)]
pub(crate) struct SimLauncher {
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
    /// How the actor writes its records' metadata.
    pub(crate) envelope: crate::Envelope,
}

impl Launcher for SimLauncher {
    fn spawn(
        &self,
        factory: &dyn ActorFactory,
        failures: &Failures,
        mode: &Reads,
    ) -> Result<Instance> {
        let (group, input, replay) = self.reads(mode)?;
        let (id, topic) = {
            let mut world = lock(&self.world);
            let topic = world.index.get(factory.output()).copied();
            (world.new_instance_id(), topic)
        };
        let Some(topic) = topic else {
            return Err(Error::UnknownTopic {
                topic: factory.output().to_owned(),
            });
        };
        let transactional = failures.transactional.then(|| {
            // A replay has an identity of its own, as on a node. The
            // simulated broker never times a transaction out.
            let mut id = crate::kafka::settings::transactional_id(&self.node, factory.name());
            if replay.is_some() {
                id.push_str(".dlq-replay");
            }
            (id, Duration::from_secs(60))
        });
        let slot = Slot {
            actor: self.actor,
            member: self.member,
            replay,
            hold_back: !factory.stores().is_empty(),
            ..Slot::default()
        };
        let outlet = Outlet {
            world: self.world.clone(),
            instance: id,
            topic,
            stats: self.stats.clone(),
            actor: self.actor,
            group,
            transactional: transactional.is_some(),
        };
        let wiring = Wiring {
            sink: Sink::Dyn(Box::new(outlet)),
            undelivered: slot.undelivered.clone(),
            transactional,
            // Every instance has a consumer, even one without
            // subscriptions (it is never granted a record): the driver
            // sees each instance end through it.
            source: Boxed(Box::new(SimSource::new(
                self.world.clone(),
                id,
                self.actor,
                group,
            ))),
            input,
            stats: self.stats.clone(),
            store_interval: crate::feed::store_interval(
                self.commit_interval,
                failures.transactional,
            ),
            registry: &self.registry,
            node: &self.node,
            envelope: self.envelope,
            tail: Arc::new(SimTail {
                world: self.world.clone(),
            }),
            changelogs: Arc::new(SimChangelogs {
                world: self.world.clone(),
                group,
            }),
        };
        {
            let mut world = lock(&self.world);
            world.slots.insert(id, slot);
            world.membership += 1;
            world.changed();
        }
        let spawned = factory.spawn_wired(wiring, failures);
        if spawned.is_err() {
            lock(&self.world).slots.remove(&id);
        }
        spawned
    }
}

impl SimLauncher {
    /// What an instance reads: its actor's subscriptions in the actor's
    /// group; or, for a replay, the dead letters not yet replayed (from the
    /// replay group's commits) up to where they ended, with where each
    /// partition starts.
    fn reads(&self, mode: &Reads) -> Result<(usize, Reading, Option<Positions>)> {
        let replay = match mode {
            Reads::Live => return Ok((self.actor, Reading::Subscribed, None)),
            Reads::Replay(replay) => replay,
        };
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
        Ok((self.replay_group, input, Some(positions)))
    }
}

/// Where a replay starts, per topic and partition.
type Positions = BTreeMap<(usize, i32), i64>;
