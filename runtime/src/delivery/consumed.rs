//! A consumed record: where it is ([`Position`]) and what it was when
//! fetched ([`Fetched`]), before any decoding.

use std::fmt;
use std::sync::Arc;

use crate::wire::headers::Headers;

/// A record's topic, partition and offset: what its offset commit names,
/// what a dead letter points back to, and how logs and errors name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Position {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

impl Position {
    pub(crate) fn new(topic: Arc<str>, partition: i32, offset: i64) -> Self {
        Self {
            topic,
            partition,
            offset,
        }
    }
}

/// Positions as the Kafka client takes them.
pub(crate) fn partition_list(positions: &[Position]) -> rdkafka::TopicPartitionList {
    let mut list = rdkafka::TopicPartitionList::with_capacity(positions.len());
    for at in positions {
        // Cannot fail: the partition was just added with a valid offset.
        let _ =
            list.add_partition_offset(&at.topic, at.partition, rdkafka::Offset::Offset(at.offset));
    }
    list
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// A consumed record as it came: what a retry decodes again and what a
/// dead letter carries.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// Key, value and headers are shared with the decoded record, so
    /// decoding, a retry or a dead letter copies no bytes.
    pub(crate) key: Option<Arc<[u8]>>,
    pub(crate) value: Arc<[u8]>,
    pub(crate) headers: Arc<Headers>,
    pub(crate) timestamp: Option<i64>,
    /// The route that decodes it, if its topic has one.
    pub(crate) route: Option<usize>,
}
