//! How a feed settles what it handled: at-least-once, by storing the
//! offsets whose records are complete and letting the consumer commit them;
//! exactly-once, by committing the open transaction with those offsets. And
//! what a rebalance, a failure or a drain does to either.

use std::time::Duration;

use super::{Exit, Feed, Source};
use crate::actor::TopicActor;
use crate::delivery::consumed::Position;
use crate::delivery::failure::Failure;
use crate::delivery::tracker::OffsetTracker;
use crate::ops::stats::ActorStats;
use crate::publisher::TxnFailure;

/// How long a rewind waits for the broker's committed offsets.
const REWIND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a drain waits for the broker to acknowledge published records.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

impl<A: TopicActor, S: Source> Feed<A, S> {
    /// Exactly-once: whether the consumer rebalanced since the last call
    /// while records were handled and not committed. Their positions may
    /// have been reset under the feed (a partition revoked, or revoked and
    /// assigned again from its committed offset), so the open transaction
    /// must not commit: [`Feed::rewind`].
    pub(super) fn rebalanced(&mut self) -> bool {
        let Some(consumer) = &self.consumer else {
            return false;
        };
        let now = consumer.rebalances();
        let changed = now != self.rebalances;
        self.rebalances = now;
        changed && (self.tracker.outstanding() > 0 || self.core.is_open())
    }

    /// Exactly-once: aborts the open transaction and moves every assigned
    /// partition back to its committed offset, so what the transaction
    /// held is handled again, once.
    pub(super) fn rewind(&mut self) {
        self.abort();
        self.tracker = OffsetTracker::default();
        self.pending = None;
        let Some(consumer) = &self.consumer else {
            return;
        };
        match consumer.rewind(REWIND_TIMEOUT) {
            Ok(()) => tracing::info!(
                actor = %self.actor,
                "rebalanced: the open transaction is aborted and its records handled again"
            ),
            Err(error) => {
                self.failure
                    .get_or_insert(Exit::Failed(Failure::Consumer(format!(
                        "cannot rewind to the committed offsets after a rebalance: {error}"
                    ))));
            }
        }
    }

    /// Stores the offsets that became committable; the consumer commits them
    /// in the background every `auto.commit.interval.ms`.
    pub(super) fn store_completed(&mut self) {
        if self.core.is_transactional() {
            return;
        }
        let Some(consumer) = &self.consumer else {
            return;
        };
        let collected = self.tracker.collect();
        self.stats.in_flight.store(
            self.tracker.outstanding() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if !collected.offsets.is_empty()
            && let Err(error) = consumer.store(&collected.offsets)
        {
            // Typically a partition was revoked by a rebalance: its new
            // owner starts from the last committed offset.
            tracing::debug!(actor = %self.actor, %error, "cannot store offsets");
            if let Ok(assigned) = consumer.assignment() {
                self.tracker.retain(|topic, partition| {
                    assigned.iter().any(|(t, p)| t == topic && *p == partition)
                });
            }
        }
        if let Some(undelivered) = collected.undelivered {
            self.undelivered(&undelivered);
        }
    }

    /// A record's publishes were not delivered: its offset must not
    /// commit, and the instance restarts to handle it again.
    pub(super) fn undelivered(&mut self, undelivered: &Position) {
        self.failure.get_or_insert_with(|| {
            Exit::Failed(Failure::Undelivered {
                at: undelivered.clone(),
            })
        });
    }

    /// Exactly-once: commits the open transaction with the input offsets
    /// of every record handled in it.
    pub(super) fn commit_transaction(&mut self) {
        if self.settled {
            return;
        }
        if self.rebalanced() {
            self.rewind();
            return;
        }
        let collected = self.tracker.collect();
        if let Some(undelivered) = collected.undelivered {
            // A publish refused outright (under exactly-once no slot waits
            // for a delivery report): the transaction must not commit; the
            // drain aborts it.
            return self.undelivered(&undelivered);
        }
        let group = self.consumer.as_ref().and_then(|c| c.group_metadata());
        let outcome = self.core.commit(&collected.offsets, group.as_ref());
        let failure = match outcome {
            Ok((committed, retries)) => {
                ActorStats::add(&self.stats.transactions, u64::from(committed));
                ActorStats::add(&self.stats.commit_retries, u64::from(retries));
                return;
            }
            Err(TxnFailure::Abortable(reason)) => {
                // Its records are handled again by the next instance, from
                // the last committed offsets; what it wrote is never read.
                self.abort();
                Exit::Failed(Failure::Transaction(reason))
            }
            Err(TxnFailure::Unknown(reason)) => {
                self.settled = true;
                Exit::Failed(Failure::Transaction(format!(
                    "{reason}; the producer is rebuilt and the broker settles the transaction"
                )))
            }
            Err(TxnFailure::Fatal(reason)) => {
                self.settled = true;
                // Fenced, or transactions cannot work: a new instance would
                // fail the same way (or fence the live one back).
                Exit::Halted(Failure::Transaction(reason))
            }
        };
        tracing::error!(actor = %self.actor, reason = ?failure, "transaction not committed");
        self.failure.get_or_insert(failure);
    }

    /// Exactly-once: aborts the open transaction, if any.
    pub(super) fn abort(&self) {
        if self.core.abort() {
            ActorStats::add(&self.stats.transactions_aborted, 1);
        }
    }

    /// Exactly-once: commits what was handled, or aborts it when the
    /// instance failed (the next one handles it again).
    pub(super) fn drain_transaction(&mut self) {
        match &self.failure {
            _ if self.settled => {}
            Some(Exit::Failed(_)) => self.abort(),
            Some(Exit::Stopped | Exit::Halted(_)) | None => self.commit_transaction(),
        }
        let exit = self.failure.take().unwrap_or(Exit::Stopped);
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(exit);
        }
    }

    /// Partitions are being revoked (an eager rebalance): finish with them
    /// before they go. At-least-once: every delivery report in, complete
    /// offsets stored and committed, so the next owner starts after what
    /// was handled. Exactly-once: the open transaction is aborted, as on
    /// any rebalance. Then the assignment is given up.
    pub(super) fn settle_revoked(&mut self) {
        let revoking = self.consumer.as_ref().is_some_and(|c| c.take_revoking());
        let Some(consumer) = self.consumer.clone().filter(|_| revoking) else {
            return;
        };
        tracing::debug!(actor = %self.actor, outstanding = self.tracker.outstanding(), "settling revoked partitions");
        if self.core.is_transactional() {
            if self.rebalanced() {
                self.rewind();
            }
        } else {
            self.commit_completed("before a rebalance");
        }
        // What is left of the revoked partitions is their next owner's.
        self.tracker = OffsetTracker::default();
        self.pending = None;
        if let Err(error) = consumer.unassign() {
            self.failure
                .get_or_insert(Exit::Failed(Failure::Consumer(format!(
                    "cannot give up revoked partitions: {error}"
                ))));
        }
    }

    /// At-least-once: waits for every delivery report, stores what is
    /// complete and commits it synchronously; `when` names the occasion in
    /// warnings.
    pub(super) fn commit_completed(&mut self, when: &str) {
        if let Err(error) = self.core.flush(FLUSH_TIMEOUT) {
            tracing::warn!(actor = %self.actor, %error, "producer flush {when} did not complete");
        }
        self.store_completed();
        if let Some(consumer) = &self.consumer
            && let Err(error) = consumer.commit_stored()
        {
            tracing::warn!(actor = %self.actor, %error, "commit {when} failed");
        }
    }

    /// Flushes, stores and commits what is complete, and reports the exit.
    pub(super) fn drain(&mut self) {
        if let Some(consumer) = &self.consumer {
            consumer.done();
        }
        if self.core.is_transactional() {
            self.drain_transaction();
            return;
        }
        self.commit_completed("at the end");
        let outstanding = self.tracker.outstanding();
        if outstanding > 0 {
            tracing::info!(
                actor = %self.actor,
                outstanding,
                "records left uncommitted; they are redelivered on the next start"
            );
        }
        let exit = self.failure.take().unwrap_or(Exit::Stopped);
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(exit);
        }
    }
}
