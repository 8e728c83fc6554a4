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
//!   they abort; dead-letter replay ([`Simulation::replay_dead_letters`]);
//! - stores: each store's changelog is a simulated topic its actor writes
//!   (partition by partition, deletions as tombstones), and a partition
//!   newly assigned is held back until the runtime's own restore read it
//!   from there (`changelogs`), as on Kafka.
//!
//! **Deterministic.** Every choice (which partition is read next, how many
//! records a fetch returns, where an unkeyed record goes, every `ce_id`) is
//! drawn from one seed, and everything runs on one thread. A run is
//! reproduced exactly by its seed. The seed is [`Simulation::seed`];
//! [`Simulation::new`] takes it from `SCRIBE_SIM_SEED` when set; a failing
//! expectation, invariant or test prints it.
//!
//! **Virtual time.** The simulation runs on a paused tokio clock: actix
//! intervals and delays, [`crate::wire::clock::now`] and record timestamps follow
//! it, and [`Simulation::run_for`] of an hour takes as long as the work
//! done in that hour.
//!
//! **Faults.** [`Simulation::crash`] and [`Simulation::restart`],
//! [`Simulation::redeliver`] (a duplicate delivery; refused for an actor
//! with stores, whose runtime never rewinds a partition it keeps),
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
//!
//! Owns: the simulated broker (`driver`, `broker`, `world`, `acks`, `txn`,
//! `chaos`, `members`, `source`, `tail`, `changelogs`) and the public [`Simulation`]
//! (`simulation`, `topics`, `ask`, `check`, `faults`, `seed`). May import
//! every subsystem; nothing in the runtime imports it (a test checks).

mod acks;
mod ask;
mod broker;
mod changelogs;
mod chaos;
mod check;
mod driver;
mod faults;
mod instance;
mod members;
mod replay;
mod seed;
mod simulation;
mod source;
mod tail;
mod topics;
mod txn;
mod world;

pub use check::{InvariantReport, RecordId};
pub use faults::{FaultCounts, Faults};
pub use seed::{SEED_VAR, seeds};
pub use simulation::{Simulation, SimulationBuilder};
pub use topics::{Appended, Injected, RawRecord};
#[cfg(test)]
pub(crate) use world::{Outlet, World, lock};
