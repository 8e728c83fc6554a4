//! The feed's side of an actor's state: every partition assigned is held
//! back (paused by the source as it is assigned) until its shards are
//! restored and, at-least-once, the restore's repairs acknowledged; every
//! partition given up takes its shards along. Each (re)assignment restores
//! again: between two assignments another member may have owned it.

use std::collections::BTreeSet;
use std::future::Future as _;
use std::pin::Pin;
use std::task::Poll;

use super::{Exit, Feed, Source};
use crate::actor::TopicActor;
use crate::delivery::failure::Failure;
use crate::delivery::tracker::{AckSlot, Acknowledged};
use crate::error::Error;
use crate::state::reading::Done;

impl<A: TopicActor, S: Source> Feed<A, S> {
    /// Follows the assignment: restores what is new, lets go of what went,
    /// and takes a partition's records once it is restored.
    pub(super) fn poll_state(&mut self, task: &mut std::task::Context<'_>) {
        if self.state.is_none() || self.consumer.is_none() {
            return;
        }
        self.release_revoked();
        self.restore_assigned();
        self.install_restored(task);
        self.await_repairs(task);
    }

    /// Drops the shards and restores of partitions no longer assigned.
    fn release_revoked(&mut self) {
        let (Some(state), Some(consumer)) = (&mut self.state, &self.consumer) else {
            return;
        };
        let now = consumer.rebalances();
        if now == state.rebalances {
            return;
        }
        state.rebalances = now;
        let Ok(assigned) = consumer.assignment() else {
            return;
        };
        let kept: BTreeSet<i32> = assigned.iter().map(|(_, p)| *p).collect();
        for partition in state.stores.held() {
            if !kept.contains(&partition) {
                state.stores.release(partition);
                state.forget_timers(partition);
                tracing::debug!(actor = %self.actor, partition, "state let go with its partition");
            }
        }
        let gone: Vec<i32> = state
            .waiting
            .keys()
            .copied()
            .filter(|p| !kept.contains(p))
            .collect();
        for partition in gone {
            state.waiting.remove(&partition);
            state.restorer.forget(partition);
        }
        state.repairing.retain(|(p, _)| kept.contains(p));
    }

    /// Starts restoring every partition newly assigned.
    fn restore_assigned(&mut self) {
        let (Some(state), Some(consumer)) = (&mut self.state, &self.consumer) else {
            return;
        };
        let assigned = consumer.take_assigned();
        let partitions: BTreeSet<i32> = assigned.iter().map(|(_, p)| *p).collect();
        for (topic, partition) in assigned {
            let waiting = state.waiting.entry(partition).or_default();
            if !waiting.contains(&(topic.clone(), partition)) {
                waiting.push((topic, partition));
            }
        }
        for partition in partitions {
            // Assigned again: what was held or being restored may be stale.
            state.restorer.forget(partition);
            state.repairing.retain(|(p, _)| *p != partition);
            state.stores.release(partition);
            state.forget_timers(partition);
            tracing::info!(actor = %self.actor, partition, "restoring the state of a partition before its first record");
            state.restorer.restore(partition, state.inputs.clone());
        }
    }

    /// Installs the shards of every partition restored; writes its repairs
    /// or, without any, lets its records in.
    fn install_restored(&mut self, task: &mut std::task::Context<'_>) {
        loop {
            let Some(state) = &mut self.state else {
                return;
            };
            let Poll::Ready(Done { partition, outcome }) = state.restorer.poll_done(task) else {
                return;
            };
            if !state.waiting.contains_key(&partition) {
                continue;
            }
            let restored = match outcome {
                Ok(restored) => restored,
                Err(error) => return self.restore_failed(partition, &error),
            };
            let (applied, dropped, bytes) = restored.iter().fold((0, 0, 0), |(a, d, b), r| {
                (
                    a + r.counts.applied,
                    d + r.counts.dropped,
                    b + r.counts.bytes,
                )
            });
            tracing::info!(actor = %self.actor, partition, applied, dropped, bytes, "state restored");
            let repairs = restored.iter().any(|r| !r.repairs.is_empty());
            let slot = AckSlot::watched();
            slot.add_pending();
            let written = if repairs {
                self.core.write_repairs(partition, &restored, &slot)
            } else {
                Ok(())
            };
            slot.done();
            let state = self.state.as_mut().expect("checked above");
            // Timers fired before the partition's next record count at
            // the offset it goes on from.
            if let Some(at) = restored
                .iter()
                .find_map(|r| r.committed.as_ref()?.resumes_at(&state.inputs, partition))
            {
                state.positions.insert(partition, at);
            }
            state
                .stores
                .install(partition, restored.into_iter().map(|r| r.shard).collect());
            match written {
                Err(error) => return self.restore_failed(partition, &error),
                Ok(()) if repairs => state.repairing.push((partition, Acknowledged(slot))),
                Ok(()) => self.let_in(partition),
            }
        }
    }

    /// Lets in the records of each partition whose repairs are acknowledged.
    fn await_repairs(&mut self, task: &mut std::task::Context<'_>) {
        let Some(state) = &mut self.state else {
            return;
        };
        let mut acknowledged = Vec::new();
        let mut failed = None;
        state
            .repairing
            .retain_mut(|(partition, ack)| match Pin::new(ack).poll(task) {
                Poll::Pending => true,
                Poll::Ready(Ok(())) => {
                    acknowledged.push(*partition);
                    false
                }
                Poll::Ready(Err(reason)) => {
                    failed.get_or_insert((*partition, reason));
                    false
                }
            });
        for partition in acknowledged {
            self.let_in(partition);
        }
        if let Some((partition, reason)) = failed {
            self.failure
                .get_or_insert(Exit::Failed(Failure::Restore(format!(
                    "the repairs of the restore of partition {partition} were not delivered{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ))));
            self.stopping = true;
        }
    }

    /// Resumes the input partitions held back for `partition` (unless the
    /// actor is paused: they resume with the rest).
    fn let_in(&mut self, partition: i32) {
        let (Some(state), Some(consumer)) = (&mut self.state, &self.consumer) else {
            return;
        };
        let Some(held) = state.waiting.remove(&partition) else {
            return;
        };
        if self.paused {
            return;
        }
        for (topic, partition) in held {
            if let Err(error) = consumer.resume(&topic, partition) {
                tracing::warn!(actor = %self.actor, %topic, partition, %error, "cannot resume a restored partition");
            }
        }
    }

    /// A restore failed: a broken changelog record stops the actor (a
    /// restart would meet it again); anything else restarts it.
    fn restore_failed(&mut self, partition: i32, error: &Error) {
        let reason = format!(
            "cannot restore the state of partition {partition}: {}",
            crate::error::chain(error)
        );
        tracing::error!(actor = %self.actor, partition, %reason, "restore failed");
        let failure = Failure::Restore(reason);
        self.failure.get_or_insert(match error {
            Error::Restore { .. } => Exit::Halted(failure),
            _ => Exit::Failed(failure),
        });
        self.stopping = true;
    }
}
