//! The simulator: a node's actors over an in-memory bus, on virtual time,
//! reproducible from a seed, with faults on demand (feature `testing`).
//!
//! A [`Simulation`] runs the same actor types, built the same way (from a
//! [`NodeBuilder`](crate::NodeBuilder) or a node config file), as a real
//! node. Only Kafka is replaced, by a model of what actors can observe of
//! it:
//!
//! - topics of partitions of records with offsets; keyed records land where
//!   Kafka's default partitioner puts them ([`crate::partition_for_key`]);
//! - one consumer group per actor with committed offsets, committed every
//!   commit interval of virtual time as a real node does, and records
//!   handled one partition at a time, in order;
//! - at-least-once redelivery: after a crash, a failed handler or a
//!   rebalance, an instance starts from its group's committed offset;
//! - publishes acknowledged, late or lost; transactions for exactly-once
//!   actors, whose records no reader sees before they commit, nor ever if
//!   they abort; dead-letter replay ([`Simulation::replay_dead_letters`]).
//!
//! **Deterministic.** Every choice (which partition is read next, how many
//! records a fetch returns, where an unkeyed record goes, every `ce_id`) is
//! drawn from one seed, and everything runs on one thread. A run is
//! reproduced exactly by its seed. The seed is [`Simulation::seed`];
//! [`Simulation::new`] takes it from `SCRIBE_SIM_SEED` when set; a failing
//! expectation, invariant or test prints it.
//!
//! **Virtual time.** The simulation runs on a paused tokio clock: actix
//! intervals and delays, [`crate::clock::now`] and record timestamps follow
//! it, and [`Simulation::run_for`] of an hour takes as long as the work
//! done in that hour.
//!
//! **Faults.** [`Simulation::crash`] and [`Simulation::restart`],
//! [`Simulation::redeliver`] (a duplicate delivery),
//! [`Simulation::delay_partition`], [`Simulation::lose_ack`],
//! [`Simulation::abort_transaction`], [`Simulation::scale`] and
//! [`Simulation::rebalance`] (partitions moving between instances of one
//! group); or at random from the seed ([`Faults`]). Handler errors and
//! panics restart the instance after the same backoff as a real node, in
//! virtual time.
//!
//! **Invariants.** [`Simulation::check_invariants`] counts, per actor, the
//! input records never handled, duplicates beyond what the faults exposed,
//! and records of one key published out of their inputs' order.
//!
//! See `docs/testing.md` for a complete test of the example system.

// Over 400 lines for a reason: most of it is the public `Simulation` API
// and its documentation, in one place for users.

mod acks;
mod check;
mod driver;
mod faults;
mod instance;
mod members;
mod replay;
mod source;
mod txn;
mod world;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::clock::virtual_time::Clock;
use crate::codec::{Decoder, Encoder};
use crate::error::{Error, Result};
use crate::headers::{Headers, Outbound};
use crate::inbound::Inbound;
use crate::record::Record;
use crate::stats::StatsSnapshot;

pub use check::{InvariantReport, RecordId};
use driver::{Driver, expose};
pub use faults::{FaultCounts, Faults};
use world::Stored;
#[cfg(not(test))]
use world::lock;
#[cfg(test)]
pub(crate) use world::{Outlet, World, lock};

/// The environment variable that sets the seed of [`Simulation::new`] and
/// [`seeds`].
pub const SEED_VAR: &str = "SCRIBE_SIM_SEED";

/// The seeds a test should run: the one in `SCRIBE_SIM_SEED` when set (to
/// reproduce a failure), otherwise `0..count`.
///
/// ```
/// for seed in scribe::sim::seeds(8) {
///     // let sim = Simulation::builder(node()).seed(seed).build()?; ...
/// #   let _ = seed;
/// }
/// ```
pub fn seeds(count: u64) -> Vec<u64> {
    match env_seed() {
        Some(seed) => vec![seed],
        None => (0..count).collect(),
    }
}

fn env_seed() -> Option<u64> {
    std::env::var(SEED_VAR).ok()?.trim().parse().ok()
}

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

/// A record's key and value bytes.
pub type RawRecord = (Option<Vec<u8>>, Vec<u8>);

/// Where an injected record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// A record to inject, with everything a producer could set.
#[derive(Debug, Clone)]
pub struct Injected<T> {
    /// The value.
    pub value: T,
    /// The key; records with one key keep their order.
    pub key: Option<Vec<u8>>,
    /// Extra headers; the CloudEvents ones are added unless given here.
    pub headers: Vec<(String, Vec<u8>)>,
    /// A partition to write to instead of the key's.
    pub partition: Option<i32>,
}

impl<T> Injected<T> {
    /// An unkeyed record with the standard headers.
    pub fn new(value: T) -> Self {
        Self {
            value,
            key: None,
            headers: Vec::new(),
            partition: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.key = Some(key.as_ref().to_vec());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((key.into(), value.as_ref().to_vec()));
        self
    }

    /// Writes to `partition` whatever the key.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
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
    runner: actix::SystemRunner,
    /// In force while the simulation runs (inside every `block_on`).
    clock: Clock,
    driver: Driver,
    encoders: std::collections::HashMap<std::any::TypeId, Box<dyn std::any::Any>>,
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

    /// Appends `value` under `key` to `topic`, as a producer outside the
    /// node would, with fresh CloudEvents headers.
    pub fn inject<T: Record>(
        &mut self,
        topic: &str,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<Appended> {
        let (ty, bytes) = self.encode(topic, value)?;
        let record = Injected::new(()).key(key);
        self.append(topic, &ty, bytes, record)
    }

    /// Appends a record with a key, headers or partition of the test's choosing.
    pub fn inject_record<T: Record>(
        &mut self,
        topic: &str,
        record: Injected<T>,
    ) -> Result<Appended> {
        let (ty, bytes) = self.encode(topic, &record.value)?;
        let Injected {
            key,
            headers,
            partition,
            ..
        } = record;
        let record = Injected {
            value: (),
            key,
            headers,
            partition,
        };
        self.append(topic, &ty, bytes, record)
    }

    /// Appends bytes that need not be Avro (to test undecodable records).
    pub fn inject_raw(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Appended> {
        let topic_index = self.driver.topic(topic)?;
        let stored = Stored {
            key: key.map(Arc::from),
            value: Arc::from(value),
            headers: Arc::default(),
            timestamp_ms: crate::clock::millis_of(self.now()),
            aborted: false,
        };
        let (partition, offset) = lock(&self.driver.world).append(topic_index, None, stored);
        Ok(Appended { partition, offset })
    }

    /// Encodes with one encoder per type, built on first use (building
    /// one validates its schema, which costs more than encoding).
    /// Returns the type's Avro full name and the encoded value.
    fn encode<T: Record>(&mut self, topic: &str, value: &T) -> Result<(Arc<str>, Vec<u8>)> {
        let encoder = match self.encoders.entry(std::any::TypeId::of::<T>()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Box::new(Encoder::<T>::new()?))
            }
        };
        let encoder = encoder
            .downcast_ref::<Encoder<T>>()
            .expect("encoders are keyed by their type");
        let mut bytes = Vec::new();
        encoder
            .encode(value, &mut bytes)
            .map_err(|source| Error::Encode {
                topic: topic.to_owned(),
                source,
            })?;
        Ok((encoder.full_name().clone(), bytes))
    }

    fn append(
        &mut self,
        topic: &str,
        ty: &str,
        value: Vec<u8>,
        record: Injected<()>,
    ) -> Result<Appended> {
        let index = self.driver.topic(topic)?;
        if let Some(partition) = record.partition {
            self.driver.check_partition(index, partition)?;
        }
        let driver = &self.driver;
        let _entered = self.clock.enter();
        let (partition, offset) = self.runner.block_on(async {
            let now = crate::clock::now();
            let id = crate::clock::new_id().to_string();
            let time = humantime::format_rfc3339_millis(now).to_string();
            let source = format!("{}/test", driver.node);
            let outbound = Outbound {
                id: &id,
                ty,
                source: &source,
                time: &time,
                correlation_id: &id,
                causation_id: None,
                traceparent: None,
                tracestate: None,
            };
            let given: Vec<&str> = record.headers.iter().map(|(k, _)| k.as_str()).collect();
            let headers = Headers::from_pairs(
                outbound.pairs().filter(|(k, _)| !given.contains(k)).chain(
                    record
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_slice())),
                ),
            );
            let stored = Stored {
                key: record.key.map(Arc::from),
                value: value.into(),
                headers: Arc::new(headers),
                timestamp_ms: crate::clock::millis_of(now),
                aborted: false,
            };
            lock(&driver.world).append(index, record.partition, stored)
        });
        Ok(Appended { partition, offset })
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

    /// Every record of `topic` a `read_committed` consumer reads (none of
    /// an aborted or still open transaction), decoded as `T`, in partition
    /// then offset order.
    pub fn records<T: Record>(&self, topic: &str) -> Result<Vec<Inbound<T>>> {
        self.read::<T>(topic, false)
    }

    /// The records of type `T` on `topic`, a topic of several record types
    /// ([`records!`](crate::records)), as [`records`](Self::records) reads
    /// them; records of other types (by `ce_type`) are passed over.
    pub fn records_of<T: Record>(&self, topic: &str) -> Result<Vec<Inbound<T>>> {
        self.read::<T>(topic, true)
    }

    fn read<T: Record>(&self, topic: &str, only_t: bool) -> Result<Vec<Inbound<T>>> {
        let name = crate::codec::full_name(&T::get_schema());
        let index = self.driver.topic(topic)?;
        let decoder = Decoder::<T>::new(self.driver.registry.clone())?;
        let world = lock(&self.driver.world);
        let log = &world.logs[index];
        let mut out = Vec::new();
        for partition in 0..log.partitions.len() {
            for (offset, stored) in world.readable(index, partition as i32) {
                if only_t && stored.headers.ce_type().is_some_and(|t| t != name) {
                    continue;
                }
                let value = decoder
                    .decode(&stored.value)
                    .map_err(|source| Error::Decode {
                        topic: topic.to_owned(),
                        partition: partition as i32,
                        offset,
                        source,
                    })?;
                out.push(Inbound::shared(
                    value,
                    crate::inbound::Meta {
                        topic: log.name.clone(),
                        partition: partition as i32,
                        offset,
                        timestamp: Some(stored.timestamp_ms),
                        key: stored.key.clone(),
                        headers: stored.headers.clone(),
                    },
                ));
            }
        }
        Ok(out)
    }

    /// The values of `topic` published under `key`, in order.
    pub fn values<T: Record>(&self, topic: &str, key: &str) -> Result<Vec<T>> {
        Ok(self
            .records::<T>(topic)?
            .into_iter()
            .filter(|r| r.key() == Some(key.as_bytes()))
            .map(Inbound::into_value)
            .collect())
    }

    /// Every partition of `topic`: the key and value bytes of each record
    /// a `read_committed` consumer reads, in offset order.
    pub fn raw(&self, topic: &str) -> Result<Vec<Vec<RawRecord>>> {
        let index = self.driver.topic(topic)?;
        let world = lock(&self.driver.world);
        Ok((0..world.logs[index].partitions.len() as i32)
            .map(|p| {
                world
                    .readable(index, p)
                    .map(|(_, r)| (r.key.as_deref().map(<[u8]>::to_vec), r.value.to_vec()))
                    .collect()
            })
            .collect())
    }

    /// Number of records on `topic` a `read_committed` consumer reads.
    pub fn record_count(&self, topic: &str) -> Result<usize> {
        let index = self.driver.topic(topic)?;
        let world = lock(&self.driver.world);
        Ok((0..world.logs[index].partitions.len() as i32)
            .map(|p| world.readable(index, p).count())
            .sum())
    }

    /// The names of the simulation's topics.
    pub fn topics(&self) -> Vec<String> {
        lock(&self.driver.world).index.keys().cloned().collect()
    }

    /// Creates a topic the node does not declare (for pattern
    /// subscriptions, or a second input); an existing one is left as it is.
    pub fn create_topic(&mut self, topic: &str, partitions: i32) -> Result<()> {
        crate::topic::check_name("topic", topic)?;
        lock(&self.driver.world).create_topic(topic, partitions);
        for actor in 0..self.driver.actors.len() {
            self.driver.rebalance(actor);
        }
        Ok(())
    }

    /// The offsets `actor`'s group has committed: the next offset to read,
    /// per topic and partition.
    pub fn committed(&self, actor: &str) -> Result<BTreeMap<(String, i32), i64>> {
        let a = self.driver.actor(actor)?;
        let world = lock(&self.driver.world);
        Ok(world
            .committed
            .get(&a)
            .into_iter()
            .flatten()
            .map(|(&(t, p), &o)| ((world.logs[t].name.to_string(), p), o))
            .collect())
    }

    /// `actor`'s counters, as a running node reports them.
    pub fn stats(&self, actor: &str) -> Result<StatsSnapshot> {
        let a = self.driver.actor(actor)?;
        Ok(self.driver.actors[a].stats.snapshot())
    }

    /// The partitions each running instance of `actor` owns.
    pub fn assignment(&self, actor: &str) -> Result<Vec<Vec<(String, i32)>>> {
        let a = self.driver.actor(actor)?;
        let world = lock(&self.driver.world);
        Ok(self.driver.actors[a]
            .instances
            .iter()
            .filter(|i| !i.replay)
            .map(|i| {
                i.position
                    .keys()
                    .map(|&(t, p)| (world.logs[t].name.to_string(), p))
                    .collect()
            })
            .collect())
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
    /// real system sees.
    pub fn redeliver(
        &mut self,
        actor: &str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<()> {
        let a = self.driver.actor(actor)?;
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

    /// Asserts that `topic` holds exactly `count` records.
    #[track_caller]
    pub fn expect_count(&self, topic: &str, count: usize) {
        let found = self.record_count(topic).unwrap_or_else(|e| self.fail(&e));
        if found != count {
            self.fail(&format!(
                "expected {count} records on `{topic}`, found {found}"
            ));
        }
    }

    /// Asserts that the values published on `topic` under `key` are
    /// `expected`, in that order.
    #[track_caller]
    pub fn expect_values<T>(&self, topic: &str, key: &str, expected: &[T])
    where
        T: Record + PartialEq + fmt::Debug,
    {
        let found = self
            .values::<T>(topic, key)
            .unwrap_or_else(|e| self.fail(&e));
        if found != expected {
            self.fail(&format!(
                "expected on `{topic}` under key `{key}`:\n  {expected:?}\nfound:\n  {found:?}"
            ));
        }
    }

    /// Asserts that some record of `topic` satisfies `what`, described as `description`.
    #[track_caller]
    pub fn expect_any<T>(&self, topic: &str, description: &str, what: impl Fn(&Inbound<T>) -> bool)
    where
        T: Record + fmt::Debug,
    {
        let records = self.records::<T>(topic).unwrap_or_else(|e| self.fail(&e));
        if !records.iter().any(&what) {
            let found: Vec<_> = records.iter().map(|r| (r.key_str(), r.value())).collect();
            self.fail(&format!(
                "expected a record on `{topic}` that {description}; found {} records: {found:?}",
                records.len()
            ));
        }
    }

    #[track_caller]
    fn fail(&self, what: &dyn fmt::Display) -> ! {
        panic!("{}: {what}", self.driver.replay_hint())
    }
}
