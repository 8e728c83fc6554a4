//! [`Simulation`]: how one is built and run, and the faults a test injects.

use std::fmt;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::check::{self, InvariantReport};
use super::driver::{Driver, expose};
use super::faults::{FaultCounts, Faults};
use super::seed::env_seed;
use super::world::lock;
use crate::error::{Error, Result};
use crate::wire::clock::virtual_time::Clock;

/// Configures a [`Simulation`].
#[derive(Debug)]
pub struct SimulationBuilder {
    node: crate::Node,
    seed: Option<u64>,
    max_batch: usize,
    faults: Faults,
    start: SystemTime,
}

impl SimulationBuilder {
    /// The seed. The default is `SCRIBE_SIM_SEED` when set, else a random one.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The most records one simulated fetch hands an actor; each fetch
    /// takes a seeded number between 1 and this. The default is 64.
    pub fn max_batch(mut self, records: usize) -> Self {
        self.max_batch = records.max(1);
        self
    }

    /// Faults to inject at random, from the seed. The default is none.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The wall-clock time the virtual clock starts at. The default is
    /// 2026-01-01T00:00:00Z, so record times are the same on every run.
    pub fn start_time(mut self, start: SystemTime) -> Self {
        self.start = start;
        self
    }

    /// Creates the topics and starts every actor (one instance each).
    ///
    /// Fails when an actor's constructor fails.
    pub fn build(self) -> Result<Simulation> {
        let seed = self
            .seed
            .or_else(env_seed)
            .unwrap_or_else(rand::random::<u64>);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .map_err(|e| Error::Embedded(format!("cannot build the simulation's runtime: {e}")))?;
        let runner = actix::System::with_tokio_rt(|| runtime);
        let parts = self.node.into_sim_parts();
        let start = self.start;
        let max_batch = self.max_batch;
        let faults = self.faults;
        let (clock, driver) = runner.block_on(async move {
            let clock = Clock::new(start, seed);
            let _entered = clock.enter();
            let driver = Driver::new(parts, seed, max_batch, faults, start);
            (clock, driver)
        });
        let mut sim = Simulation {
            runner,
            clock,
            driver,
            encoders: std::collections::HashMap::new(),
        };
        for actor in 0..sim.driver.actors.len() {
            let _entered = sim.clock.enter();
            sim.runner.block_on(sim.driver.start_instances(actor))?;
        }
        Ok(sim)
    }
}

/// A node's actors running over an in-memory bus on virtual time.
///
/// ```
/// # use scribe::prelude::*;
/// # use scribe::sim::Simulation;
/// # fn demo(node: Node) -> Result<(), scribe::Error> {
/// let mut sim = Simulation::builder(node).seed(7).build()?;
/// // sim.inject("readings", "sensor-1", &Reading { .. })?;
/// sim.run_until_idle();
/// sim.run_for(std::time::Duration::from_secs(3600)); // an hour, in milliseconds
/// sim.assert_invariants();
/// # Ok(()) }
/// ```
pub struct Simulation {
    pub(super) runner: actix::SystemRunner,
    /// In force while the simulation runs (inside every `block_on`).
    pub(super) clock: Clock,
    pub(super) driver: Driver,
    pub(super) encoders: std::collections::HashMap<std::any::TypeId, Box<dyn std::any::Any>>,
}

impl fmt::Debug for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("node", &self.driver.node)
            .field("seed", &self.driver.seed)
            .finish_non_exhaustive()
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.driver.replay_hint());
        }
    }
}

impl Simulation {
    /// Configures a simulation of `node`.
    pub fn builder(node: crate::Node) -> SimulationBuilder {
        SimulationBuilder {
            node,
            seed: None,
            max_batch: 64,
            faults: Faults::default(),
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        }
    }

    /// Starts a simulation of `node` with the default settings (see
    /// [`SimulationBuilder`]).
    pub fn new(node: crate::Node) -> Result<Self> {
        Self::builder(node).build()
    }

    /// How many faults the simulator injected by itself (see [`Faults`]).
    pub fn faults_injected(&self) -> FaultCounts {
        let world = lock(&self.driver.world);
        FaultCounts {
            lost_acks: world.acks.lost,
            delayed_acks: world.acks.delayed,
            aborted_txns: world.acks.aborted_txns,
            ..self.driver.injected
        }
    }

    /// Why the simulated node stopped itself, if it did: an actor spent its
    /// restart budget under `over_budget = "stop-node"`.
    pub fn halted(&self) -> Option<&str> {
        self.driver.halted.as_deref()
    }

    /// The seed that reproduces this run.
    pub fn seed(&self) -> u64 {
        self.driver.seed
    }

    /// The virtual time now.
    pub fn now(&self) -> SystemTime {
        self.driver.base + self.elapsed()
    }

    /// Virtual time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        // Outside its runtime, tokio's clock is the real one.
        let start = self.driver.start;
        let _entered = self.clock.enter();
        self.runner.block_on(async move { Instant::now() - start })
    }

    /// Runs until nothing is left to deliver: every record published or
    /// injected so far is handled, failed actors restarted and delayed
    /// partitions released. Virtual time advances only as far as those
    /// need; periodic timers (intervals) do not keep it running.
    pub fn run_until_idle(&mut self) {
        let _entered = self.clock.enter();
        self.runner.block_on(self.driver.run(None));
    }

    /// Runs for `duration` of virtual time: timers fire, records flow, and
    /// offsets commit every commit interval.
    pub fn run_for(&mut self, duration: Duration) {
        let _entered = self.clock.enter();
        self.runner.block_on(self.driver.run(Some(duration)));
    }

    /// Kills every instance of `actor` at once, as `kill -9` would: what it
    /// handled but had not committed is redelivered after
    /// [`Simulation::restart`]. It stays down until then.
    pub fn crash(&mut self, actor: &str) -> Result<()> {
        let a = self.driver.actor(actor)?;
        let _entered = self.clock.enter();
        self.runner.block_on(self.driver.crash(a));
        self.driver.actors[a].down = true;
        Ok(())
    }

    /// Starts a crashed actor again (from its group's committed offsets).
    pub fn restart(&mut self, actor: &str) -> Result<()> {
        let a = self.driver.actor(actor)?;
        self.driver.actors[a].down = false;
        self.driver.actors[a].restart_at = None;
        self.driver.actors[a]
            .members
            .retain(|m| !m.task.is_finished());
        let _entered = self.clock.enter();
        self.runner.block_on(self.driver.start_instances(a))
    }

    /// Delivers `actor` the records of `topic`/`partition` again from
    /// `offset`, as Kafka does after a consumer rewinds: the duplicates a
    /// real system sees. Refused for an actor with stores: its runtime
    /// never rewinds a partition it keeps (a partition goes back to its
    /// committed offset only as it is assigned again, and its state with
    /// it: see [`Simulation::rebalance`] and [`Simulation::crash`]).
    pub fn redeliver(
        &mut self,
        actor: &str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<()> {
        let a = self.driver.actor(actor)?;
        if let Some(store) = self.driver.actors[a].factory.stores().first() {
            return Err(Error::State {
                actor: actor.to_owned(),
                store: store.name.clone(),
                reason: "an actor with stores is not sent back without a rebalance: its state \
                         already holds what it handled"
                    .into(),
            });
        }
        let t = self.driver.topic(topic)?;
        self.driver.check_partition(t, partition)?;
        let actor = &mut self.driver.actors[a];
        let offset = offset.max(0);
        for instance in actor.instances.iter_mut().filter(|i| !i.replay) {
            if let Some(position) = instance.position.get_mut(&(t, partition))
                && offset < *position
            {
                expose(&mut actor.exposures, (t, partition), offset, *position);
                *position = offset;
            }
        }
        Ok(())
    }

    /// Makes the broker lose the `nth` record (counting from 0, over the
    /// whole run) published to `topic`: its publish fails as a delivery
    /// timeout does. So does what the same instance sent to that
    /// partition behind it, as the idempotent producer fails the records
    /// queued behind a failed one. The offset of the record that caused it
    /// is not committed; its instance stops, and the record is handled
    /// again after the restart.
    pub fn lose_ack(&mut self, topic: &str, nth: u64) -> Result<()> {
        let index = self.driver.topic(topic)?;
        lock(&self.driver.world).acks.targeted.push((index, nth));
        Ok(())
    }

    /// Makes the next transaction commit of exactly-once `actor` fail, as
    /// a broker does when a transaction cannot complete: the transaction
    /// is aborted, what it wrote is never read, and its records are
    /// handled again after a restart. Fails for an actor that is not
    /// exactly-once.
    pub fn abort_transaction(&mut self, actor: &str) -> Result<()> {
        let a = self.driver.actor(actor)?;
        if !self.driver.actors[a].transactional() {
            return Err(Error::Transaction {
                reason: format!(
                    "actor `{actor}` has no transactions to abort: its delivery is not exactly-once"
                ),
            });
        }
        lock(&self.driver.world).acks.abort_targeted.push(a);
        Ok(())
    }

    /// Holds back the records of `topic`/`partition` from every consumer
    /// for `duration` of virtual time (a slow or unreachable partition
    /// leader).
    pub fn delay_partition(
        &mut self,
        topic: &str,
        partition: i32,
        duration: Duration,
    ) -> Result<()> {
        let t = self.driver.topic(topic)?;
        self.driver.check_partition(t, partition)?;
        let until = self.driver.start + self.elapsed() + duration;
        self.driver.delays.insert((t, partition), until);
        Ok(())
    }

    /// Runs `instances` instances of `actor` in its consumer group (as
    /// several nodes would) and spreads its partitions over them. Removed
    /// instances leave gracefully, committing what they handled.
    pub fn scale(&mut self, actor: &str, instances: usize) -> Result<()> {
        let a = self.driver.actor(actor)?;
        self.driver.actors[a].wanted = instances.max(1);
        let _entered = self.clock.enter();
        self.runner.block_on(self.driver.scale(a))
    }

    /// Moves each of `actor`'s partitions to the next of its instances, as
    /// a group rebalance does: each new owner starts from the committed
    /// offset, so what the old owner handled since the last commit is
    /// delivered again.
    pub fn rebalance(&mut self, actor: &str) -> Result<()> {
        let a = self.driver.actor(actor)?;
        self.driver.actors[a].rotation += 1;
        self.driver.rebalance(a);
        Ok(())
    }

    /// Sends `actor`'s dead letters back to it for another try, as
    /// [`Node::replay_dead_letters`](crate::Node::replay_dead_letters) does
    /// on a cluster, and runs until the replay is over; returns what became
    /// of them.
    ///
    /// The replay runs the production feed's replay beside the actor's
    /// live instances (as a replay started on a second machine would): one
    /// more instance of the actor, writing its output topic, reading its
    /// dead-letter topic up to each partition's end when the replay began,
    /// committing its progress in a group of its own; what fails again is
    /// dead-lettered anew after the end, so a replay always ends. Its
    /// counts are in the [`Replayed`](crate::Replayed) it returns, not in
    /// [`Simulation::stats`].
    pub fn replay_dead_letters(&mut self, actor: &str) -> Result<crate::Replayed> {
        let a = self.driver.actor(actor)?;
        let _entered = self.clock.enter();
        self.runner.block_on(self.driver.replay(a))
    }

    /// Checks, for every actor, that each record of its inputs was handled,
    /// that no record was handled more often than the simulated faults
    /// allow, and that per key, its output follows its input's order.
    pub fn check_invariants(&self) -> Vec<InvariantReport> {
        check::check(&self.driver)
    }

    /// [`Simulation::check_invariants`], printing every actor's counts and
    /// panicking, with the seed, when one is broken.
    #[track_caller]
    pub fn assert_invariants(&self) {
        let reports = self.check_invariants();
        for report in &reports {
            println!("{report}");
        }
        let broken: Vec<String> = reports
            .iter()
            .filter(|r| !r.holds())
            .map(|r| r.violations())
            .collect();
        if !broken.is_empty() {
            panic!(
                "{}: invariants broken:\n{}",
                self.driver.replay_hint(),
                broken.join("\n")
            );
        }
    }

    #[track_caller]
    pub(super) fn fail(&self, what: &dyn fmt::Display) -> ! {
        panic!("{}: {what}", self.driver.replay_hint())
    }
}
