//! The seam under the feed: where its records come from and where its
//! offsets go. Two implementations: an actor's Kafka consumer
//! ([`super::kafka`]) and, with the `testing` feature, any [`DynSource`]
//! behind [`Boxed`] (the simulator's in-memory log, which the runtime does
//! not name). The feed, its reader and its commit strategy are written
//! once, against this trait.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaResult;

use crate::delivery::consumed::{Fetched, Position};
use crate::wire::headers::{Headers, UnreadableKey};

/// One record as a [`Source`] hands it over, before the feed keeps it.
pub(crate) trait Message {
    fn topic(&self) -> &str;
    fn partition(&self) -> i32;
    fn offset(&self) -> i64;
    /// Its headers, and the first one whose key is not UTF-8 (left out of
    /// the headers), if any. Called once.
    fn headers(&mut self) -> (Arc<Headers>, Option<UnreadableKey>);
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

    /// Fetches `topic`/`partition` again, from the record after the last
    /// one handed over.
    fn resume(&self, topic: &str, partition: i32) -> KafkaResult<()>;

    /// Pauses (or resumes) every assigned partition: records fetched
    /// ahead and not handed over yet are dropped, and fetched again on
    /// resuming, so none is lost or handed over twice.
    fn set_paused(&self, paused: bool) -> KafkaResult<()> {
        for (topic, partition) in self.assignment()? {
            if paused {
                self.pause(&topic, partition)?;
            } else {
                self.resume(&topic, partition)?;
            }
        }
        Ok(())
    }

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

    /// The partitions assigned since the last call, each already paused,
    /// when the source was told to hold new partitions back (an actor with
    /// stores restores a partition before its first record). Empty
    /// otherwise.
    fn take_assigned(&self) -> Vec<(String, i32)> {
        Vec::new()
    }

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

/// A record a [`DynSource`] hands over, owned (its bytes shared).
#[cfg(feature = "testing")]
#[derive(Debug)]
pub(crate) struct Owned {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Arc<[u8]>>,
    pub(crate) value: Arc<[u8]>,
    pub(crate) headers: Arc<Headers>,
    pub(crate) timestamp: i64,
}

#[cfg(feature = "testing")]
impl Message for Owned {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn partition(&self) -> i32 {
        self.partition
    }

    fn offset(&self) -> i64 {
        self.offset
    }

    fn headers(&mut self) -> (Arc<Headers>, Option<UnreadableKey>) {
        (self.headers.clone(), None)
    }

    fn fetched(self, headers: Arc<Headers>, route: Option<usize>) -> Fetched {
        Fetched {
            key: self.key,
            value: self.value,
            headers,
            timestamp: Some(self.timestamp),
            route,
        }
    }
}

/// A [`Source`] the runtime reaches through a trait object: what a source
/// defined outside it (the simulator's) implements. Each call is the
/// [`Source`] call of the same name; a source behind it never rebalances
/// eagerly, and it hears which records were handled.
#[cfg(feature = "testing")]
pub(crate) trait DynSource: Send + Sync + 'static {
    fn poll_recv(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<KafkaResult<Owned>>;
    fn try_recv(&self) -> Option<KafkaResult<Owned>>;
    fn store(&self, offsets: &[Position]) -> KafkaResult<()>;
    fn assignment(&self) -> KafkaResult<Vec<(String, i32)>>;
    fn commit_stored(&self) -> KafkaResult<()>;
    fn rewind(&self) -> KafkaResult<()>;
    fn pause(&self, topic: &str, partition: i32) -> KafkaResult<()>;
    fn resume(&self, topic: &str, partition: i32) -> KafkaResult<()>;
    fn positions(&self) -> KafkaResult<Vec<Position>>;
    fn rebalances(&self) -> u64;
    fn handled(&self, handled: &mut Vec<Position>);
    fn take_assigned(&self) -> Vec<(String, i32)>;
}

/// A [`DynSource`] as the feed's [`Source`].
#[cfg(feature = "testing")]
pub(crate) struct Boxed(pub(crate) Box<dyn DynSource>);

#[cfg(feature = "testing")]
impl Source for Boxed {
    type Message<'a> = Owned;

    fn recv(&self) -> impl Future<Output = KafkaResult<Owned>> {
        std::future::poll_fn(|cx| self.0.poll_recv(cx))
    }

    fn try_recv(&self) -> Option<KafkaResult<Owned>> {
        self.0.try_recv()
    }

    fn store(&self, offsets: &[Position]) -> KafkaResult<()> {
        self.0.store(offsets)
    }

    fn assignment(&self) -> KafkaResult<Vec<(String, i32)>> {
        self.0.assignment()
    }

    fn commit_stored(&self) -> KafkaResult<()> {
        self.0.commit_stored()
    }

    fn rewind(&self, _: Duration) -> KafkaResult<()> {
        self.0.rewind()
    }

    fn pause(&self, topic: &str, partition: i32) -> KafkaResult<()> {
        self.0.pause(topic, partition)
    }

    fn resume(&self, topic: &str, partition: i32) -> KafkaResult<()> {
        self.0.resume(topic, partition)
    }

    fn positions(&self) -> KafkaResult<Vec<Position>> {
        self.0.positions()
    }

    fn unassign(&self) -> KafkaResult<()> {
        Ok(())
    }

    fn rebalances(&self) -> u64 {
        self.0.rebalances()
    }

    fn take_revoking(&self) -> bool {
        false
    }

    fn done(&self) {}

    fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        None
    }

    const COUNTS_HANDLED: bool = true;

    fn handled(&self, handled: &mut Vec<Position>) {
        self.0.handled(handled);
    }

    fn take_assigned(&self) -> Vec<(String, i32)> {
        self.0.take_assigned()
    }
}
