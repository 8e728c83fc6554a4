//! `scribe dlq list` and `scribe dlq replay`.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Error, Result};
use scribe::codec::decode_json;

use super::{METADATA_TIMEOUT, Tool, next_message};

impl Tool {
    /// `scribe dlq list`: every dead letter of `actor` so far, oldest
    /// first per partition, as JSON lines; stops at the end.
    pub(crate) fn dlq_list(&self, actor: &str) -> Result<usize> {
        let info = self
            .node
            .actors()
            .into_iter()
            .find(|a| a.name == actor)
            .ok_or_else(|| scribe::Error::UnknownActor {
                actor: actor.to_owned(),
            })?;
        let topic = info.dead_letter_topic.ok_or_else(|| Error::Config {
            file: self.file.clone(),
            message: format!(
                "actor `{actor}` has no dead-letter topic: it reads nothing, or its failure policy stops it instead"
            ),
        })?;
        let consumer = self.reader("dlq")?;
        let mut list = TopicPartitionList::new();
        let mut remaining = std::collections::BTreeMap::new();
        for p in 0..self.partitions(&consumer, &topic)? {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, METADATA_TIMEOUT)
                .map_err(|e| {
                    scribe::Error::kafka(format!("cannot read the offsets of `{topic}`"), e)
                })?;
            if high > low {
                remaining.insert(p, high);
                list.add_partition_offset(&topic, p, Offset::Offset(low))
                    .map_err(|e| scribe::Error::kafka("cannot assign partitions", e))?;
            }
        }
        if remaining.is_empty() {
            return Ok(0);
        }
        consumer
            .assign(&list)
            .map_err(|e| scribe::Error::kafka("cannot assign partitions", e))?;
        let registry = self.schemas()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut printed = 0;
        while !remaining.is_empty() && Instant::now() < deadline {
            let Some(message) = next_message(&consumer) else {
                continue;
            };
            let (pairs, _) = scribe::headers::kafka_pairs(&message);
            let header = |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            };
            let number = |key: &str| header(key).and_then(|v| v.parse::<i64>().ok());
            let payload = message.payload().unwrap_or_default();
            let (ty, value) = match decode_json(&registry, payload) {
                Ok((ty, value)) => (Some(ty), value),
                Err(_) => (
                    None,
                    serde_json::Value::String(String::from_utf8_lossy(payload).into_owned()),
                ),
            };
            let line = serde_json::json!({
                "dlq": {"topic": message.topic(), "partition": message.partition(), "offset": message.offset()},
                "from": {
                    "topic": header(scribe::headers::DLQ_TOPIC),
                    "partition": number(scribe::headers::DLQ_PARTITION),
                    "offset": number(scribe::headers::DLQ_OFFSET),
                },
                "actor": header(scribe::headers::DLQ_ACTOR),
                "attempts": number(scribe::headers::DLQ_ATTEMPTS),
                "error": header(scribe::headers::DLQ_ERROR),
                "key": message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                "type": ty,
                "value": value,
            });
            println!("{line}");
            printed += 1;
            if remaining
                .get(&message.partition())
                .is_some_and(|end| message.offset() + 1 >= *end)
            {
                remaining.remove(&message.partition());
            }
        }
        if !remaining.is_empty() {
            eprintln!("stopped after 30 s before reaching the end of {remaining:?}");
        }
        Ok(printed)
    }

    /// `scribe dlq replay`: runs the actor on its dead letters.
    pub(crate) fn dlq_replay(self, actor: &str) -> Result<scribe::Replayed> {
        let bootstrap = self.bootstrap()?.to_owned();
        let mut node = self.node;
        node.set_broker(scribe::Broker::Bootstrap(bootstrap));
        let actor = actor.to_owned();
        Ok(actix::System::new().block_on(async move { node.replay_dead_letters(&actor).await })?)
    }
}
