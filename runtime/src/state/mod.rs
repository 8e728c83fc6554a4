//! Actor state that survives what records survive: typed stores
//! (`store`), the state of one instance as bytes, partition by partition
//! (`stores`), each store's changelog topic and what its records say
//! (`changelog`), restoring a partition from it (`restore`), and
//! reading changelogs to restore, the seam under it (`reading`), with a
//! reader thread per store on Kafka (`kafka_reader`); timers: stores of
//! when each key's timer is due (`timers`, with the clocks, values and
//! index of due times in `due`); and reading an instance's state from
//! outside the actor, for the admin endpoint (`view`, each store's keys
//! and values as JSON in `json`).
//!
//! An actor declares its stores (`info`); the publisher writes their
//! changes to their changelogs, counted with the actor's outputs, and the
//! feed restores a partition's shards before its first record.
//!
//! Owns: what actors remember, and the rules that keep it in step with
//! the committed input. May import: `error`, `wire`, `kafka`, `delivery`,
//! `ops`. Imported by: `publisher` (which writes the changes and commits
//! or aborts them with its transactions), `actor` (declarations),
//! `topology`, `handling`, `feed`, `supervisor`, `node`, `sim`.

pub(crate) mod changelog;
pub(crate) mod due;
mod info;
pub(crate) mod json;
mod kafka_reader;
pub(crate) mod reading;
pub(crate) mod restore;
mod store;
pub(crate) mod stores;
pub(crate) mod timers;
pub(crate) mod view;

pub use changelog::changelog_topic;
pub use due::TimerClock;
pub use info::StoreInfo;
pub(crate) use info::check_store_name;
pub use store::Store;
pub use timers::{Fired, Timers};
