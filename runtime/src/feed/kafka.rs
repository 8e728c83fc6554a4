//! An actor's Kafka consumer as a feed's [`Source`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};

use super::rebalance::ActorConsumer;
use super::source::{Message, Source};
use crate::delivery::consumed::{Fetched, Position, partition_list};
use crate::wire::headers::{Headers, UnreadableKey};

impl Message for BorrowedMessage<'_> {
    fn topic(&self) -> &str {
        rdkafka::message::Message::topic(self)
    }

    fn partition(&self) -> i32 {
        rdkafka::message::Message::partition(self)
    }

    fn offset(&self) -> i64 {
        rdkafka::message::Message::offset(self)
    }

    fn headers(&mut self) -> (Arc<Headers>, Option<UnreadableKey>) {
        let (headers, unreadable) = Headers::from_kafka(self);
        (Arc::new(headers), unreadable)
    }

    fn fetched(self, headers: Arc<Headers>, route: Option<usize>) -> Fetched {
        Fetched {
            key: self.key().map(Arc::from),
            value: Arc::from(self.payload().unwrap_or_default()),
            headers,
            timestamp: self.timestamp().to_millis(),
            route,
        }
    }
}

impl Source for ActorConsumer {
    type Message<'a> = BorrowedMessage<'a>;

    fn recv(&self) -> impl Future<Output = KafkaResult<BorrowedMessage<'_>>> {
        rdkafka::consumer::StreamConsumer::recv(self)
    }

    fn store(&self, offsets: &[Position]) -> KafkaResult<()> {
        self.store_offsets(&partition_list(offsets))
    }

    fn assignment(&self) -> KafkaResult<Vec<(String, i32)>> {
        let list = rdkafka::consumer::Consumer::assignment(self)?;
        Ok(list
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect())
    }

    fn commit_stored(&self) -> KafkaResult<()> {
        match self.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn rewind(&self, timeout: Duration) -> KafkaResult<()> {
        for e in self.committed(timeout)?.elements() {
            let to = match e.offset() {
                rdkafka::Offset::Offset(at) => rdkafka::Offset::Offset(at),
                // No commit yet: a new group starts at the earliest.
                _ => rdkafka::Offset::Beginning,
            };
            self.seek(e.topic(), e.partition(), to, timeout)?;
        }
        Ok(())
    }

    fn pause(&self, topic: &str, partition: i32) -> KafkaResult<()> {
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition(topic, partition);
        rdkafka::consumer::Consumer::pause(self, &list)
    }

    fn resume(&self, topic: &str, partition: i32) -> KafkaResult<()> {
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition(topic, partition);
        rdkafka::consumer::Consumer::resume(self, &list)
    }

    fn set_paused(&self, paused: bool) -> KafkaResult<()> {
        // One call for the whole assignment; librdkafka drops what it
        // fetched ahead and, on resuming, fetches from the record after
        // the last it handed over.
        let assigned = rdkafka::consumer::Consumer::assignment(self)?;
        if paused {
            rdkafka::consumer::Consumer::pause(self, &assigned)
        } else {
            rdkafka::consumer::Consumer::resume(self, &assigned)
        }
    }

    fn positions(&self) -> KafkaResult<Vec<Position>> {
        Ok(self
            .position()?
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                rdkafka::Offset::Offset(at) => {
                    Some(Position::new(Arc::from(e.topic()), e.partition(), at))
                }
                _ => None,
            })
            .collect())
    }

    fn unassign(&self) -> KafkaResult<()> {
        rdkafka::consumer::Consumer::unassign(self)
    }

    fn rebalances(&self) -> u64 {
        self.context().count.load(Ordering::Acquire)
    }

    fn take_revoking(&self) -> bool {
        // Checked before each record: a plain load unless a revocation waits.
        let flag = &self.context().revoking;
        flag.load(Ordering::Acquire) && flag.swap(false, Ordering::AcqRel)
    }

    fn done(&self) {
        self.context().done.store(true, Ordering::Release);
    }

    fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        rdkafka::consumer::Consumer::group_metadata(self)
    }

    fn take_assigned(&self) -> Vec<(String, i32)> {
        match &self.context().held_back {
            Some(held) => std::mem::take(&mut *held.lock().unwrap_or_else(|p| p.into_inner())),
            None => Vec::new(),
        }
    }
}
