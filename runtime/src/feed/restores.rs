//! What the feed of an actor with stores keeps of their restores (the
//! partitions waiting for one, the repairs not yet acknowledged). Its own
//! file so that the feed names it without naming the restore's steps
//! (`restoring.rs`), which name the feed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::delivery::tracker::Acknowledged;
use crate::state::reading::Restorer;
use crate::state::stores::Stores;

/// What the feed of an actor with stores keeps of their restores.
pub(crate) struct Restores {
    pub(super) stores: Arc<Stores>,
    pub(super) restorer: Restorer,
    /// The actor's input topics: whose committed offsets a restore
    /// compares changes with.
    pub(super) inputs: Vec<Arc<str>>,
    /// Partitions not restored yet, each with the input partitions held
    /// back until it is.
    pub(super) waiting: BTreeMap<i32, Vec<(String, i32)>>,
    /// Partitions restored whose repairs are not acknowledged yet.
    pub(super) repairing: Vec<(i32, Acknowledged)>,
    /// The consumer's rebalances as last seen.
    pub(super) rebalances: u64,
    /// With timers: where each partition goes on from (the topic and
    /// offset of its next record), as restored or last handled.
    pub(super) positions: BTreeMap<i32, (Arc<str>, i64)>,
    /// With timers: each partition's stream time (the largest record
    /// timestamp handled).
    pub(super) stream_time: BTreeMap<i32, i64>,
    /// Wakes the feed when the next wall-clock timer is due.
    pub(super) wake: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Restores {
    /// The restores of `stores`, read by `restorer`, for an actor reading
    /// `inputs`.
    pub(crate) fn new(stores: Arc<Stores>, restorer: Restorer, inputs: Vec<Arc<str>>) -> Self {
        Self {
            stores,
            restorer,
            inputs,
            waiting: BTreeMap::new(),
            repairing: Vec::new(),
            rebalances: 0,
            positions: BTreeMap::new(),
            stream_time: BTreeMap::new(),
            wake: None,
        }
    }

    /// Forgets what it knew of `partition`'s timers.
    pub(super) fn forget_timers(&mut self, partition: i32) {
        self.positions.remove(&partition);
        self.stream_time.remove(&partition);
    }

    /// The input partitions held back for a restore, as (topic, partition).
    pub(super) fn held_back(&self) -> impl Iterator<Item = &(String, i32)> {
        self.waiting.values().flatten()
    }
}
