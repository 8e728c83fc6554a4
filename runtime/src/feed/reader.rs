//! Reading a feed's records: an actor's subscriptions, or a replay of its
//! dead letters up to where they ended when the replay began.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rdkafka::error::KafkaResult;

use super::source::{Message, Source};
use crate::actor::{Routes, TopicActor};
use crate::delivery::consumed::Fetched;
use crate::delivery::consumed::Position;
use crate::handling::{Decoded, decode};
use crate::wire::codec::DecodeError;

/// Where a record was read: what its offset commit names. The same as
/// the record's own coordinates, but for a replayed dead letter, which is
/// handled as the record it was and committed where it was read.
pub(crate) type ReadAt = Position;

/// What a feed reads.
#[derive(Debug, Clone)]
pub(crate) enum Reading {
    /// The actor's subscriptions, in its consumer group. Never ends.
    Subscribed,
    /// Its dead-letter topic (assigned, not subscribed), up to each
    /// partition's end offset taken when the replay began; the feed drains
    /// and stops once every partition reached it.
    DeadLetters {
        /// The end offset of each partition still to read.
        ends: BTreeMap<i32, i64>,
        /// Every dead letter read so far, across the replay's restarts.
        read: ReadSet,
    },
}

/// How long a replay waits for a record before asking the consumer
/// whether it is past the end already (offsets with no record: transaction
/// markers, compacted records).
const REPLAY_IDLE: Duration = Duration::from_millis(500);

/// What [`arrivals`] yields: a record decoded, as fetched, and where it
/// was read.
pub(super) type Arrival<A> = KafkaResult<(Decoded<A>, Fetched, ReadAt)>;

/// The source's records, decoded for the actor's routes.
pub(super) fn arrivals<A: TopicActor, S: Source>(
    consumer: Arc<S>,
    routes: Arc<Routes<A>>,
    input: Reading,
) -> Pin<Box<dyn Stream<Item = Arrival<A>>>> {
    let mut reader = Reader {
        consumer,
        decoding: Decoding::new(routes),
        ends: None,
    };
    // Two streams, so the live one's per-record future carries nothing of
    // a replay's (its idle timer).
    match input {
        Reading::Subscribed => Box::pin(futures::stream::unfold(reader, |mut reader| async move {
            // A message borrows its consumer; this one, not the reader's.
            let consumer = reader.consumer.clone();
            let item = match consumer.recv().await {
                Ok(message) => reader.decoding.subscribed(message),
                Err(error) => Err(error),
            };
            Some((item, reader))
        })),
        Reading::DeadLetters { ends, read } => {
            reader.ends = Some((ends, read));
            Box::pin(futures::stream::unfold(reader, |mut reader| async move {
                let item = reader.next_replayed().await?;
                Some((item, reader))
            }))
        }
    }
}

/// The dead letters a replay read, as (partition, offset): how many there
/// were, whatever offsets the transaction markers between them take.
pub(crate) type ReadSet = Arc<std::sync::Mutex<std::collections::BTreeSet<(i32, i64)>>>;

/// The state of [`arrivals`].
struct Reader<A: TopicActor, S> {
    consumer: Arc<S>,
    decoding: Decoding<A>,
    /// Replaying: the partitions still to read and their end offsets, and
    /// the dead letters read.
    ends: Option<(BTreeMap<i32, i64>, ReadSet)>,
}

/// A topic's route: the topic's shared name and the route's index.
type Found = (Arc<str>, usize);

/// Turns a source's message into what the feed handles: its route found,
/// its bytes kept, decoded.
pub(super) struct Decoding<A: TopicActor> {
    routes: Arc<Routes<A>>,
    /// Each topic's route, found once (patterns are matched per topic,
    /// not per record).
    cache: HashMap<String, Option<Found>>,
    /// The topic last looked up, and its route.
    last: Option<(Arc<str>, Option<Found>)>,
}

impl<A: TopicActor, S: Source> Reader<A, S> {
    /// The next dead letter of a replay; `None` once it is past every end.
    async fn next_replayed(&mut self) -> Option<Arrival<A>> {
        // A message borrows its consumer; this one, not `self`'s.
        let consumer = self.consumer.clone();
        loop {
            let (ends, _) = self.ends.as_ref()?;
            if ends.is_empty() {
                return None;
            }
            let message = match tokio::time::timeout(REPLAY_IDLE, consumer.recv()).await {
                Err(_) => {
                    self.past_the_end();
                    continue;
                }
                Ok(Err(error)) => return Some(Err(error)),
                Ok(Ok(message)) => message,
            };
            let partition = message.partition();
            let Some(&end) = ends.get(&partition) else {
                // A partition already done: what follows its end (dead
                // letters written by this very replay) is for the next one.
                continue;
            };
            if message.offset() >= end {
                self.finish(message.topic(), partition);
                continue;
            }
            if let Some(Ok(mut read)) = self.ends.as_ref().map(|(_, read)| read.lock()) {
                read.insert((partition, message.offset()));
            }
            if message.offset() + 1 >= end {
                self.finish(message.topic(), partition);
            }
            return Some(Ok(self.decoding.replayed(message)));
        }
    }

    /// Stops reading `partition` of a replay.
    fn finish(&mut self, topic: &str, partition: i32) {
        if let Some((ends, _)) = &mut self.ends {
            ends.remove(&partition);
        }
        if let Err(error) = self.consumer.pause(topic, partition) {
            tracing::debug!(%topic, partition, %error, "cannot pause a replayed partition");
        }
    }

    /// Drops the partitions whose position is at or past their end, though
    /// no record said so (the last offsets hold no record).
    fn past_the_end(&mut self) {
        let Ok(positions) = self.consumer.positions() else {
            return;
        };
        for at in positions {
            let end = self
                .ends
                .as_ref()
                .and_then(|(ends, _)| ends.get(&at.partition));
            if end.is_some_and(|end| at.offset >= *end) {
                self.finish(&at.topic, at.partition);
            }
        }
    }
}

impl<A: TopicActor> Decoding<A> {
    pub(super) fn new(routes: Arc<Routes<A>>) -> Self {
        Self {
            routes,
            cache: HashMap::new(),
            last: None,
        }
    }

    fn route(&mut self, topic: &str) -> Option<Found> {
        // Records come in runs of one topic: the last one found is checked
        // before the table.
        if let Some((last, found)) = &self.last
            && **last == *topic
        {
            return found.clone();
        }
        let found = match self.cache.get(topic) {
            Some(found) => found.clone(),
            None => {
                let found = self
                    .routes
                    .find(topic)
                    .map(|i| (Arc::<str>::from(topic), i));
                self.cache.insert(topic.to_owned(), found.clone());
                found
            }
        };
        let name = found
            .as_ref()
            .map_or_else(|| Arc::from(topic), |(name, _)| name.clone());
        self.last = Some((name, found.clone()));
        found
    }

    /// A record of a subscribed topic.
    pub(super) fn subscribed(
        &mut self,
        mut message: impl Message,
    ) -> KafkaResult<(Decoded<A>, Fetched, ReadAt)> {
        let route = self.route(message.topic());
        let topic = route
            .as_ref()
            .map_or_else(|| Arc::from(message.topic()), |(t, _)| t.clone());
        let at = Position::new(topic, message.partition(), message.offset());
        let unrouted = route
            .is_none()
            .then(|| DecodeError::Unrouted(message.topic().to_owned()));
        let (headers, unreadable) = message.headers();
        let raw = message.fetched(headers, route.as_ref().map(|(_, i)| *i));
        let failed = |error| Decoded {
            at: at.clone(),
            body: Err(error),
        };
        // Never skipped: what cannot be routed or read is dead-lettered.
        let malformed = raw.headers.malformed_envelope();
        let arrival = match (route, unreadable, malformed) {
            (None, _, _) => failed(unrouted.expect("no route")),
            (Some(_), Some(bad), _) => failed(DecodeError::HeaderKey {
                index: bad.index,
                key: bad.key,
            }),
            (Some(_), None, Some(why)) => failed(DecodeError::Envelope(why.to_owned())),
            (Some(_), None, None) => decode(&self.routes, at.clone(), &raw),
        };
        Ok((arrival, raw, at))
    }

    /// A dead letter, as the record it was: its original topic, partition
    /// and offset, its headers without the dead-letter ones, decoded by the
    /// route of its original topic.
    fn replayed(&mut self, mut message: impl Message) -> (Decoded<A>, Fetched, ReadAt) {
        // A dead letter's unreadable header keys were dropped when it was
        // written; one written by another client is replayed without them.
        let (all, _) = message.headers();
        let text = |key: &str| all.get(key).and_then(|v| std::str::from_utf8(v).ok());
        let read_at = Position::new(
            Arc::from(message.topic()),
            message.partition(),
            message.offset(),
        );
        let origin = text(crate::wire::headers::DLQ_TOPIC).zip(
            text(crate::wire::headers::DLQ_PARTITION)
                .and_then(|p| p.parse::<i32>().ok())
                .zip(text(crate::wire::headers::DLQ_OFFSET).and_then(|o| o.parse::<i64>().ok())),
        );
        let (origin, route) = match origin {
            Some((topic, (partition, offset))) => {
                let route = self.route(topic);
                let topic = route
                    .as_ref()
                    .map_or_else(|| Arc::from(topic), |(t, _)| t.clone());
                (
                    Position::new(topic, partition, offset),
                    route.map(|(_, i)| i),
                )
            }
            None => (read_at.clone(), None),
        };
        let raw = message.fetched(Arc::new(all.without_dead_letter()), route);
        let truncated = text(crate::wire::headers::DLQ_TRUNCATED).map(str::to_owned);
        let arrival = match (origin.topic == read_at.topic, route) {
            _ if truncated.is_some() => self.unreplayable(
                origin,
                format!(
                    "it holds only part of the record ({}: {})",
                    crate::wire::headers::DLQ_TRUNCATED,
                    truncated.unwrap_or_default()
                ),
            ),
            (true, _) => self.unreplayable(
                origin,
                "it has no scribe_dlq_topic, _partition and _offset headers".into(),
            ),
            (false, None) => self.unreplayable(
                origin.clone(),
                format!(
                    "the actor no longer subscribes to its topic `{}`",
                    origin.topic
                ),
            ),
            (false, Some(_)) => match raw.headers.malformed_envelope() {
                Some(why) => Decoded {
                    at: origin,
                    body: Err(DecodeError::Envelope(why.to_owned())),
                },
                None => decode(&self.routes, origin, &raw),
            },
        };
        (arrival, raw, read_at)
    }

    fn unreplayable(&self, at: Position, reason: String) -> Decoded<A> {
        Decoded {
            at,
            body: Err(DecodeError::Unreplayable(reason)),
        }
    }
}
