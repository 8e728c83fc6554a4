//! Timers: a store whose value is when each key's timer is due, so that
//! timers are kept, restored and moved with their partition exactly as
//! state is, and whose changes go in the changelog with the handler's
//! other changes.
//!
//! An actor declares a timer set with
//! [`Subscriptions::timers`](crate::Subscriptions::timers), takes its
//! [`Timers`] from its publisher, sets and cancels timers while it handles
//! a record (or a timer), and handles each timer that comes due as a
//! [`Fired`] message. The feed fires them (`feed/timers.rs`), each through
//! the same path as a record; this file also finds a partition's timers
//! that came due, in the index of when they are due (`due.rs`).

use super::Store;
use super::due::{TimerDue, due_of};
use super::stores::Stores;
use crate::error::Result;
use crate::wire::record::Record;

/// An actor's handle on one timer set: at most one timer per key, kept in
/// a store of the set's name (its changelog is `<output>.<name>.changelog`).
/// Setting and cancelling take effect when the handler returns `Ok`, with
/// its other state changes; under exactly-once, when its transaction
/// commits.
pub struct Timers<K: Record> {
    store: Store<K, TimerDue>,
}

impl<K: Record> std::fmt::Debug for Timers<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("name", &self.store.name())
            .finish()
    }
}

impl<K: Record> Timers<K> {
    pub(crate) fn new(store: Store<K, TimerDue>) -> Self {
        Self { store }
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        self.store.name()
    }

    /// Sets `key`'s timer to fire at `at_ms` (milliseconds since the Unix
    /// epoch, on the set's clock), replacing any it had. A time already
    /// past fires as soon as the handler is done.
    pub fn set(&self, key: &K, at_ms: i64) -> Result<()> {
        self.store.put(key, &TimerDue { at_ms })
    }

    /// Cancels `key`'s timer, if it has one.
    pub fn cancel(&self, key: &K) -> Result<()> {
        self.store.delete(key)
    }

    /// When `key`'s timer is due, if it has one.
    pub fn get(&self, key: &K) -> Result<Option<i64>> {
        Ok(self.store.get(key)?.map(|due| due.at_ms))
    }
}

/// A timer that came due, handed to its actor as a message (the actor
/// implements `Handler<Fired<K>>`). It is handled as a record is: what the
/// handler publishes and changes counts for the timer's partition, its
/// timer is gone unless the handler sets it again, and a handler that
/// fails or panics restarts the instance, after which the timer fires
/// again.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired<K> {
    /// The timer set's name.
    pub timers: String,
    /// The timer's key.
    pub key: K,
    /// When it was due (milliseconds since the Unix epoch, on its clock).
    pub at_ms: i64,
    /// The partition whose state it belongs to.
    pub partition: i32,
}

impl<K: 'static> actix::Message for Fired<K> {
    type Result = std::result::Result<(), crate::ActorError>;
}

impl Stores {
    /// The timers of set `index` on `partition` due at `now` or before, in
    /// the order they are due: (key, at). Stale index entries are dropped
    /// as they are met.
    pub(crate) fn due_timers(&self, index: usize, partition: i32, now: i64) -> Vec<(Vec<u8>, i64)> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(entries) = inner.due.get_mut(&(index, partition)) else {
            return Vec::new();
        };
        let Some(shards) = inner.partitions.get(&partition) else {
            return Vec::new();
        };
        let mut due = Vec::new();
        while let Some((at, key)) = entries.first().cloned() {
            if at > now {
                break;
            }
            entries.pop_first();
            // Still this key's time (not cancelled, moved or aborted)?
            if shards[index].get(&key).as_deref().and_then(due_of) == Some(at) {
                due.push((key, at));
            }
        }
        due
    }

    /// The earliest time any timer of set `index` is indexed at, over the
    /// partitions held (it may be stale: firing then finds nothing).
    pub(crate) fn next_due(&self, index: usize) -> Option<i64> {
        let inner = self.lock();
        inner
            .due
            .iter()
            .filter(|((store, partition), _)| {
                *store == index && inner.partitions.contains_key(partition)
            })
            .filter_map(|(_, entries)| entries.first().map(|(at, _)| *at))
            .min()
    }
}
