//! Firing an actor's timers: each timer of a partition the instance holds
//! that came due (on the wall clock, or on the partition's stream time)
//! is handed to the actor through the same path as a record, in the
//! record order of its partition.
//!
//! At-least-once, a timer fired after the record at offset `n - 1` of a
//! partition is counted as that partition's position `n`: its state
//! changes carry input `n` (so a restore drops them until `n` is
//! committed, and the timer fires again), and it is tracked between
//! records `n - 1` and `n`, so no offset past `n` commits before what it
//! published is acknowledged. Exactly-once, it fires inside the open
//! transaction, which commits or aborts it with the records around it.

use std::sync::Arc;
use std::time::Duration;

use actix::Context;

use super::{Exit, Feed, Source};
use crate::actor::{Due, TopicActor};
use crate::delivery::consumed::Position;
use crate::delivery::failure::Failure;
use crate::delivery::tracker::AckSlot;
use crate::handling::deliver;
use crate::state::TimerClock;

/// A timer to fire: its route, what it is, and where it is counted.
struct ToFire {
    route: usize,
    due: Due,
    at: Position,
}

impl<A: TopicActor, S: Source> Feed<A, S> {
    /// Notes that the record at `at`, with `timestamp`, was handled: where
    /// its partition goes on from, and its stream time.
    pub(super) fn advance_timers(&mut self, at: &Position, timestamp: Option<i64>) {
        let Some(state) = &mut self.state else {
            return;
        };
        if self.routes.timers.is_empty() {
            return;
        }
        state
            .positions
            .insert(at.partition, (at.topic.clone(), at.offset + 1));
        if let Some(timestamp) = timestamp {
            let time = state.stream_time.entry(at.partition).or_insert(timestamp);
            *time = (*time).max(timestamp);
        }
    }

    /// Fires every timer that came due, then arms the wake-up of the next
    /// wall-clock one.
    pub(super) fn fire_timers(
        &mut self,
        act: &mut A,
        ctx: &mut Context<A>,
        task: &mut std::task::Context<'_>,
    ) {
        if self.routes.timers.is_empty() || self.stopping || self.pending.is_some() {
            return;
        }
        if self.core.is_transactional() && self.rebalanced() {
            // What the open transaction holds is handled again first; the
            // timers on the next poll.
            self.rewind();
            task.waker().wake_by_ref();
            return;
        }
        for fire in self.due_timers() {
            self.fire(act, ctx, fire);
            if self.stopping {
                return;
            }
        }
        self.arm_wake(task);
    }

    /// The timers due now, set by set, partition by partition.
    fn due_timers(&self) -> Vec<ToFire> {
        let Some(state) = &self.state else {
            return Vec::new();
        };
        let now = crate::wire::clock::now_ms();
        let transactional = self.core.is_transactional();
        let mut due = Vec::new();
        for (route, timers) in self.routes.timers.iter().enumerate() {
            let Some(index) = state.stores.index_of(&timers.name) else {
                continue;
            };
            let clock = state.stores.specs()[index].clock;
            for partition in state.stores.held() {
                if state.waiting.contains_key(&partition) {
                    continue;
                }
                // Where it is counted: after the partition's last record.
                let at = match state.positions.get(&partition) {
                    Some((topic, next)) => Position::new(topic.clone(), partition, *next),
                    // Exactly-once, the transaction decides, not offsets.
                    None if transactional => match state.inputs.first() {
                        Some(topic) => Position::new(topic.clone(), partition, 0),
                        None => continue,
                    },
                    None => continue,
                };
                let now = match clock {
                    Some(TimerClock::Stream) => match state.stream_time.get(&partition) {
                        Some(time) => *time,
                        None => continue,
                    },
                    _ => now,
                };
                for (key, at_ms) in state.stores.due_timers(index, partition, now) {
                    due.push(ToFire {
                        route,
                        due: Due {
                            stores: state.stores.clone(),
                            index,
                            key,
                            at_ms,
                            partition,
                        },
                        at: at.clone(),
                    });
                }
            }
        }
        due
    }

    /// Hands one timer to the actor; a failure restarts the instance (the
    /// timer is still in its store: it fires again).
    fn fire(&mut self, act: &mut A, ctx: &mut Context<A>, fire: ToFire) {
        let ToFire { route, due, at } = fire;
        let slot = AckSlot::new();
        if !self.core.is_transactional() {
            // Between the partition's last record and its next one.
            let before = Position::new(at.topic.clone(), at.partition, at.offset - 1);
            self.tracker.track(&before, slot.clone());
        }
        let name = self.routes.timers[route].name.clone();
        tracing::debug!(actor = %self.actor, timers = %name, partition = at.partition, at_ms = due.at_ms, "timer fired");
        let outcome = (self.routes.timers[route].fire)(due)
            .map_err(|error| crate::handling::Failed::Error(crate::error::chain(&error)));
        let outcome = outcome.and_then(|message| {
            deliver(
                &self.actor,
                &self.core,
                &self.stats,
                act,
                ctx,
                &at,
                message,
                Arc::default(),
                slot.clone(),
            )
        });
        if outcome.is_ok() {
            crate::ops::stats::ActorStats::add(&self.stats.timers_fired, 1);
        }
        if let Err(failed) = outcome {
            let reason = match failed {
                crate::handling::Failed::Error(reason) | crate::handling::Failed::Panic(reason) => {
                    reason
                }
            };
            tracing::error!(actor = %self.actor, timers = %name, partition = at.partition, %reason, "a timer's handler failed; the instance restarts and the timer fires again");
            slot.fail();
            self.failure
                .get_or_insert(Exit::Failed(Failure::Timer(format!(
                    "a timer of set `{name}` on partition {} failed: {reason}",
                    at.partition
                ))));
            self.stopping = true;
        }
    }

    /// Wakes the feed when the next wall-clock timer is due.
    fn arm_wake(&mut self, task: &mut std::task::Context<'_>) {
        let Some(state) = &mut self.state else {
            return;
        };
        let next = self
            .routes
            .timers
            .iter()
            .filter_map(|timers| state.stores.index_of(&timers.name))
            .filter(|index| state.stores.specs()[*index].clock == Some(TimerClock::Wall))
            .filter_map(|index| state.stores.next_due(index))
            .min();
        let Some(next) = next else {
            state.wake = None;
            return;
        };
        let wait = Duration::from_millis(
            u64::try_from(next.saturating_sub(crate::wire::clock::now_ms())).unwrap_or(0),
        );
        let when = tokio::time::Instant::now() + wait;
        let sleep = state
            .wake
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(when)));
        if sleep.deadline() != when {
            sleep.as_mut().reset(when);
        }
        if sleep.as_mut().poll(task).is_ready() {
            // Due already (a timer set in the past): fire on the next poll.
            task.waker().wake_by_ref();
        }
    }
}
