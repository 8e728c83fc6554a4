//! The consumer's context: counts rebalances, and holds an eager
//! revocation back until the feed has settled the revoked partitions.

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::consumer::{Consumer as _, StreamConsumer};

/// The Kafka consumer of one actor instance.
pub(crate) type ActorConsumer = StreamConsumer<Rebalances>;

/// Counts the consumer's rebalances, and holds a revocation back until the
/// feed has settled the revoked partitions. librdkafka calls it on the
/// actor's own thread, while the feed waits for a record.
#[derive(Debug, Default)]
pub(crate) struct Rebalances {
    pub(super) count: AtomicU64,
    /// Partitions are revoked and still assigned: the feed finishes what it
    /// handled of them (every delivery report in, offsets committed), then
    /// gives them up. Without this, what was handled since the last stored
    /// offset was handled again by the next owner: 3107 duplicates in a
    /// rolling restart of two nodes on the embedded broker.
    pub(super) revoking: std::sync::atomic::AtomicBool,
    /// The feed is done with the consumer (drained, failed or dropped):
    /// a revocation now, as the consumer closes, is honoured at once.
    pub(super) done: std::sync::atomic::AtomicBool,
    /// The actor's counters: each assignment taken, and its partitions
    /// (what `/ready` and `/metrics` report).
    stats: Option<std::sync::Arc<crate::stats::ActorStats>>,
}

impl Rebalances {
    /// A context that also notes each assignment in the actor's counters.
    pub(crate) fn reporting_to(stats: std::sync::Arc<crate::stats::ActorStats>) -> Self {
        Self {
            stats: Some(stats),
            ..Self::default()
        }
    }
}

impl rdkafka::ClientContext for Rebalances {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(stats) = &self.stats {
            stats.consumer_statistics(&statistics);
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Rebalances {
    fn rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        partitions: &mut rdkafka::TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr as Why;
        self.count.fetch_add(1, Ordering::AcqRel);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            rdkafka::consumer::RebalanceProtocol::Cooperative
        );
        let outcome = match err {
            Why::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS if cooperative => {
                consumer.incremental_assign(partitions)
            }
            Why::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => consumer.assign(partitions),
            // Eager: every partition goes; the feed unassigns once settled,
            // unless the consumer is closing (the feed is done with it, and
            // closing waits for the unassignment).
            Why::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS
                if !cooperative && (self.done.load(Ordering::Acquire) || consumer.closed()) =>
            {
                consumer.unassign()
            }
            Why::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS if !cooperative => {
                tracing::debug!(
                    partitions = partitions.count(),
                    "revoked: settling before unassigning"
                );
                self.revoking.store(true, Ordering::Release);
                Ok(())
            }
            Why::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => consumer.incremental_unassign(partitions),
            other => {
                tracing::error!(error = ?other, "rebalance failed; giving up the assignment");
                consumer.unassign()
            }
        };
        if let Err(error) = outcome {
            tracing::error!(%error, "cannot take the rebalance's assignment");
        } else if let (Why::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, Some(stats)) = (err, &self.stats)
        {
            // A pause outlives rebalances: what the group hands a paused
            // actor is paused before a record of it is fetched.
            if stats.paused.load(Ordering::Acquire)
                && let Err(error) = consumer.pause(partitions)
            {
                tracing::error!(%error, "cannot pause the newly assigned partitions");
            }
            let now = consumer.assignment().map_or(0, |list| list.count());
            stats.assigned(now);
        }
    }
}
