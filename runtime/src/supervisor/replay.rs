//! What an actor's instances read: their subscriptions, or once, the
//! dead letters their dead-letter topic held when a replay began.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Error, Result};
use crate::feed::{ActorConsumer, Reading};

/// What an actor's instances read (each instance keeps its own
/// [`Reading`](crate::feed::Reading) of it).
#[derive(Debug, Clone)]
pub(crate) enum Reads {
    /// Its subscriptions, as a member of its consumer group.
    Live,
    /// Its dead letters, once; see [`crate::Node::replay_dead_letters`].
    Replay(Arc<Replay>),
}

/// A replay of an actor's dead letters: which, and where its progress is
/// committed.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    /// The dead-letter topic.
    pub(crate) topic: String,
    /// The consumer group the replay commits its progress in (not the
    /// actor's: that group's live members own its offsets).
    pub(crate) group: String,
    /// Each partition's oldest offset and end offset when the replay
    /// began, for the partitions holding records: dead letters written
    /// after the end, by this replay too, are left for the next one.
    pub(crate) ranges: BTreeMap<i32, (i64, i64)>,
    /// The dead letters read (partition, offset), by every instance.
    pub(crate) read: crate::feed::ReadSet,
}

impl Replay {
    /// A replay of what `topic` holds now, committing in `group`; asks
    /// the broker through `consumer`.
    pub(crate) fn of(
        consumer: &rdkafka::consumer::BaseConsumer,
        topic: String,
        group: String,
    ) -> Result<Self> {
        let mut ranges = BTreeMap::new();
        for partition in 0..crate::kafka::topics::partition_count(consumer, &topic, KAFKA_TIMEOUT)?
        {
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, KAFKA_TIMEOUT)
                .map_err(|e| Error::kafka(format!("cannot read the offsets of `{topic}`"), e))?;
            if high > low {
                ranges.insert(partition, (low, high));
            }
        }
        Ok(Self {
            topic,
            group,
            ranges,
            read: Arc::default(),
        })
    }

    /// How many offsets lie before the ends, given `starts`: the dead
    /// letters waiting, and on a topic written in transactions the markers
    /// between them.
    pub(crate) fn offsets_before_end(&self, starts: &BTreeMap<i32, i64>) -> u64 {
        self.ranges
            .iter()
            .map(|(p, (low, end))| (end - starts.get(p).copied().unwrap_or(*low)).max(0) as u64)
            .sum()
    }

    /// Assigns `consumer` the partitions with dead letters left before
    /// their end, each from the replay group's committed offset.
    pub(crate) fn assign(&self, consumer: &ActorConsumer) -> Result<Reading> {
        let starts = self.starts(consumer)?;
        let mut list = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for (partition, (low, end)) in &self.ranges {
            let start = starts.get(partition).copied().unwrap_or(*low);
            if start < *end {
                list.add_partition_offset(&self.topic, *partition, Offset::Offset(start))
                    .map_err(|e| Error::kafka("cannot assign partitions", e))?;
                ends.insert(*partition, *end);
            }
        }
        consumer
            .assign(&list)
            .map_err(|e| Error::kafka(format!("cannot assign `{}`", self.topic), e))?;
        Ok(Reading::DeadLetters {
            ends,
            read: self.read.clone(),
        })
    }

    /// Where the replay group stands in each partition: its committed
    /// offset, else the oldest record there when the replay began.
    pub(crate) fn starts<C, K>(&self, consumer: &K) -> Result<BTreeMap<i32, i64>>
    where
        C: rdkafka::consumer::ConsumerContext,
        K: rdkafka::consumer::Consumer<C>,
    {
        let mut list = TopicPartitionList::new();
        for partition in self.ranges.keys() {
            list.add_partition(&self.topic, *partition);
        }
        let committed = consumer
            .committed_offsets(list, KAFKA_TIMEOUT)
            .map_err(|e| {
                Error::kafka(
                    format!("cannot read the offsets group `{}` committed", self.group),
                    e,
                )
            })?;
        let mut starts = BTreeMap::new();
        for (partition, (low, _)) in &self.ranges {
            let stored = committed
                .find_partition(&self.topic, *partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(at) => Some(at),
                    _ => None,
                });
            starts.insert(*partition, stored.unwrap_or(*low).max(*low));
        }
        Ok(starts)
    }
}

/// How long a replay waits for the broker's answer about offsets.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
