//! The seam under the feed: where its records come from and where its
//! offsets go. Two implementations: an actor's Kafka consumer
//! ([`super::kafka`]) and, with the `testing` feature, the simulator's
//! in-memory log (`sim::source`). The feed, its reader and its commit
//! strategy are written once, against this trait.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaResult;

use crate::consumed::{Fetched, Position};
use crate::headers::Headers;

/// One record as a [`Source`] hands it over, before the feed keeps it.
pub(crate) trait Message {
    fn topic(&self) -> &str;
    fn partition(&self) -> i32;
    fn offset(&self) -> i64;
    /// Its headers, and the index of the first one whose key is not UTF-8
    /// (left out of the headers), if any. Called once.
    fn headers(&mut self) -> (Arc<Headers>, Option<usize>);
    /// The record as the feed keeps it, with `headers` and `route`.
    fn fetched(self, headers: Arc<Headers>, route: Option<usize>) -> Fetched;
}

/// A member of the actor's consumer group: the records of the partitions
/// it is assigned, and the group's offsets.
///
/// Everything but [`Source::recv`] is called on the actor's thread between
/// records and does not wait for the broker, unless its name says so.
pub(crate) trait Source: Send + Sync + 'static {
    /// A record borrowed from the source.
    type Message<'a>: Message
    where
        Self: 'a;

    /// The next record of the assignment.
    fn recv(&self) -> impl Future<Output = KafkaResult<Self::Message<'_>>>;

    /// The next record when it is at hand, without waiting; `None` when
    /// it would have to wait (then [`Source::recv`]). The feed takes records
    /// this way first, which spares the future `recv` makes per record.
    /// Kafka's consumer has no such call, so it always says `None`.
    fn try_recv(&self) -> Option<KafkaResult<Self::Message<'_>>> {
        None
    }

    /// Marks `offsets` (per partition, the next offset to read) as ready to
    /// commit; they are committed in the background every commit
    /// interval. Fails for a partition no longer assigned.
    fn store(&self, offsets: &[Position]) -> KafkaResult<()>;

    /// The partitions assigned to this member now, as (topic, partition).
    fn assignment(&self) -> KafkaResult<Vec<(String, i32)>>;

    /// Commits the stored offsets now, waiting for the broker.
    fn commit_stored(&self) -> KafkaResult<()>;

    /// Moves every assigned partition back to the group's committed
    /// offset (the earliest without one), waiting up to `timeout` for the
    /// broker.
    fn rewind(&self, timeout: Duration) -> KafkaResult<()>;

    /// Stops fetching `topic`/`partition`.
    fn pause(&self, topic: &str, partition: i32) -> KafkaResult<()>;

    /// The next offset to fetch of each assigned partition that has one.
    fn positions(&self) -> KafkaResult<Vec<Position>>;

    /// Gives up the whole assignment (after an eager revocation).
    fn unassign(&self) -> KafkaResult<()>;

    /// How many rebalances this member took part in so far.
    fn rebalances(&self) -> u64;

    /// Whether partitions are being revoked and wait for the feed to settle
    /// them; true once per revocation.
    fn take_revoking(&self) -> bool;

    /// The feed is done with this source (drained, failed or dropped): a
    /// revocation from now on is honoured at once.
    fn done(&self);

    /// The group's metadata, which a transaction commits offsets under.
    fn group_metadata(&self) -> Option<ConsumerGroupMetadata>;

    /// Whether the source wants to hear which records were handled
    /// ([`Source::handled`]). Only the simulator does, to check its
    /// invariants; for Kafka the feed keeps no list.
    const COUNTS_HANDLED: bool = false;

    /// The records at `handled` were handled (or dead-lettered), in that
    /// order; the source takes them out of the list.
    fn handled(&self, handled: &mut Vec<Position>) {
        handled.clear();
    }
}
