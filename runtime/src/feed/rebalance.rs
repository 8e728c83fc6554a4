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
    stats: Option<std::sync::Arc<crate::ops::stats::ActorStats>>,
    /// Whether the group's protocol is cooperative (incremental), as the
    /// consumer's `partition.assignment.strategy` makes it. Known from the
    /// configuration because asking librdkafka in the callback
    /// (`rd_kafka_rebalance_protocol`) can block forever when the callback
    /// runs as the consumer closes (librdkafka issue 4041): a node that
    /// got SIGTERM during a rebalance then never exited.
    cooperative: bool,
    /// For an actor with stores: each partition assigned, paused before
    /// a record of it is fetched, until the feed restored its state
    /// ([`Source::take_assigned`](super::Source::take_assigned)).
    pub(super) held_back: Option<std::sync::Mutex<Vec<(String, i32)>>>,
}

impl Rebalances {
    /// A context for a consumer built from `config`, that also notes each
    /// assignment in the actor's counters.
    pub(crate) fn reporting_to(
        stats: std::sync::Arc<crate::ops::stats::ActorStats>,
        config: &rdkafka::ClientConfig,
    ) -> Self {
        Self {
            stats: Some(stats),
            cooperative: cooperative(config),
            ..Self::default()
        }
    }

    /// Holds every partition assigned back (paused) until the feed has
    /// restored its state.
    pub(crate) fn holding_back(mut self, hold: bool) -> Self {
        self.held_back = hold.then(Default::default);
        self
    }
}

/// Whether a consumer built from `config` rebalances cooperatively:
/// librdkafka does when every strategy of `partition.assignment.strategy`
/// is cooperative (only `cooperative-sticky` is); its default
/// (`range,roundrobin`) is eager.
fn cooperative(config: &rdkafka::ClientConfig) -> bool {
    config
        .get("partition.assignment.strategy")
        .is_some_and(|strategies| {
            strategies
                .split(',')
                .all(|s| s.trim().eq_ignore_ascii_case("cooperative-sticky"))
        })
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
        let cooperative = self.cooperative;
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
        if let (Ok(()), Why::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, Some(held)) =
            (&outcome, err, &self.held_back)
        {
            // Before a record of them is fetched: their state first.
            if let Err(error) = consumer.pause(partitions) {
                tracing::error!(%error, "cannot hold newly assigned partitions back for their restore");
            }
            held.lock().unwrap_or_else(|p| p.into_inner()).extend(
                partitions
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition())),
            );
        }
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
        } else if let (Why::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, Some(stats)) = (err, &self.stats)
        {
            // What it still holds: nothing once an eager revocation is
            // settled, the rest after a cooperative one.
            let now = if cooperative {
                consumer.assignment().map_or(0, |list| list.count())
            } else {
                0
            };
            stats.holding(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cooperative;

    #[test]
    fn the_protocol_is_cooperative_only_when_every_strategy_is() {
        let mut config = rdkafka::ClientConfig::new();
        assert!(!cooperative(&config), "librdkafka's default is eager");
        config.set("partition.assignment.strategy", "cooperative-sticky");
        assert!(cooperative(&config));
        config.set("partition.assignment.strategy", "range, roundrobin");
        assert!(!cooperative(&config));
        config.set("partition.assignment.strategy", "range,cooperative-sticky");
        assert!(
            !cooperative(&config),
            "librdkafka refuses a mix; never cooperative"
        );
    }
}
