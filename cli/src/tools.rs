//! `scribe topics`, `tail`, `produce` and `dlq`: tools that talk to a node's
//! cluster directly, with the node's schemas.

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use uuid::Uuid;

use crate::settings::{NodeConfig, Registry};
use scribe::Node;
use scribe::codec::{decode_json, encode_json, full_name};
use scribe::headers::Outbound;
use scribe::{Error, Result};

const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// A validated node and the cluster to reach it at.
pub(crate) struct Tool {
    file: String,
    node: Node,
    bootstrap: Option<String>,
}

impl Tool {
    pub(crate) fn new(registry: &Registry, file: &Path, bootstrap: Option<&str>) -> Result<Self> {
        let config = NodeConfig::load(file)?;
        let node = config.node(registry)?;
        let bootstrap =
            bootstrap
                .map(str::to_owned)
                .or_else(|| match config.kafka.bootstrap_servers.trim() {
                    "embedded" => None,
                    servers => Some(servers.to_owned()),
                });
        Ok(Self {
            file: config.file,
            node,
            bootstrap,
        })
    }

    fn bootstrap(&self) -> Result<&str> {
        self.bootstrap.as_deref().ok_or_else(|| Error::Config {
            file: self.file.clone(),
            message: "kafka.bootstrap_servers is `embedded`, a broker inside the running node: \
                      pass --bootstrap with the address `scribe run` logged"
                .into(),
        })
    }

    /// The node's client settings, once the cluster answered through them
    /// (wrong credentials or certificates are reported here, by cause).
    fn client(&self) -> Result<ClientConfig> {
        let bootstrap = self.bootstrap()?;
        let config = self.node.client_config(bootstrap);
        scribe::client::first_contact(&config, bootstrap, scribe::client::FIRST_CONTACT)?;
        Ok(config)
    }

    /// A consumer for reading, in a throwaway group that commits nothing.
    fn reader(&self, tool: &str) -> Result<BaseConsumer> {
        self.client()?
            .set(
                "group.id",
                format!("scribe-{tool}-{}", Uuid::new_v4().simple()),
            )
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| Error::kafka("cannot create consumer", e))
    }

    fn partitions(&self, consumer: &BaseConsumer, topic: &str) -> Result<i32> {
        scribe::client::partition_count(consumer, topic, METADATA_TIMEOUT)
    }

    /// `scribe topics`.
    pub(crate) fn topics(&self) -> Result<()> {
        let actors = self.node.actors();
        // One metadata request for every topic; no offsets if the broker is
        // not there (rather than one timeout per topic).
        let reachable: Option<(BaseConsumer, std::collections::HashMap<String, i32>)> =
            self.bootstrap.as_ref().and_then(|b| {
                let config = self.node.client_config(b);
                scribe::client::first_contact(&config, b, METADATA_TIMEOUT).ok()?;
                let consumer: BaseConsumer = config.create().ok()?;
                let metadata = consumer.fetch_metadata(None, METADATA_TIMEOUT).ok()?;
                let partitions = metadata
                    .topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
                    .collect();
                Some((consumer, partitions))
            });
        println!(
            "{:<32} {:<20} {:<36} {:>10} {:>12}",
            "TOPIC", "OWNER", "TYPE", "PARTITIONS", "END OFFSETS"
        );
        for (topic, spec) in self.node.topics() {
            let owner = actors.iter().find(|a| a.output == topic);
            let (owner_name, record_type) = match owner {
                Some(a) => (a.name.clone(), a.output_type.clone()),
                None => {
                    let read_as = actors
                        .iter()
                        .flat_map(|a| &a.subscriptions)
                        .find(|s| s.topic == topic)
                        .map_or(String::new(), |s| s.record_type.clone());
                    ("(external)".to_owned(), read_as)
                }
            };
            let on_cluster = reachable
                .as_ref()
                .and_then(|(_, partitions)| partitions.get(&topic).copied());
            if let Some(actual) = on_cluster
                && actual != spec.partitions
            {
                eprintln!(
                    "topic `{topic}` has {actual} partitions on the cluster; the node's \
                     config says {}",
                    spec.partitions
                );
            }
            let end = reachable
                .as_ref()
                .and_then(|(consumer, partitions)| {
                    (0..*partitions.get(&topic)?)
                        .map(|p| {
                            consumer
                                .fetch_watermarks(&topic, p, METADATA_TIMEOUT)
                                .ok()
                                .map(|(_, high)| high)
                        })
                        .sum::<Option<i64>>()
                })
                .map_or("-".to_owned(), |n| n.to_string());
            // What the cluster has; what the config says when unknown.
            let partitions = match (on_cluster, &reachable) {
                (Some(n), _) => n.to_string(),
                (None, Some(_)) => "-".to_owned(),
                (None, None) => format!("({})", spec.partitions),
            };
            println!("{topic:<32} {owner_name:<20} {record_type:<36} {partitions:>10} {end:>12}");
        }
        Ok(())
    }

    /// `scribe tail`; with `count`, stops after that many records, or
    /// fails once none came for its idle timeout.
    pub(crate) fn tail(
        &self,
        topic: &str,
        from_beginning: bool,
        count: Option<(usize, Duration)>,
    ) -> Result<()> {
        let consumer = self.reader("tail")?;
        let mut list = TopicPartitionList::new();
        let start = if from_beginning {
            Offset::Beginning
        } else {
            Offset::End
        };
        for p in 0..self.partitions(&consumer, topic)? {
            list.add_partition_offset(topic, p, start)
                .map_err(|e| Error::kafka("cannot assign partitions", e))?;
        }
        consumer
            .assign(&list)
            .map_err(|e| Error::kafka("cannot assign partitions", e))?;
        let registry = self.node.schema_registry();
        let mut printed = 0;
        let mut last = Instant::now();
        while count.is_none_or(|(n, _)| printed < n) {
            let Some(message) = next_message(&consumer) else {
                if let Some((wanted, idle)) = count
                    && last.elapsed() >= idle
                {
                    return Err(Error::TailTimedOut {
                        topic: topic.to_owned(),
                        printed,
                        wanted,
                        idle,
                    });
                }
                continue;
            };
            last = Instant::now();
            let at = format!(
                "{}/{}@{}",
                message.topic(),
                message.partition(),
                message.offset()
            );
            let (ty, value) = match decode_json(&registry, message.payload().unwrap_or_default()) {
                Ok(decoded) => decoded,
                Err(e) => {
                    eprintln!("{at}: cannot decode: {}", scribe::error_chain(&e));
                    continue;
                }
            };
            let (pairs, unreadable) = scribe::headers::kafka_pairs(message.headers());
            if !unreadable.is_empty() {
                eprintln!("{at}: headers {unreadable:?} left out: their keys are not UTF-8");
            }
            let headers: serde_json::Map<String, serde_json::Value> = pairs
                .into_iter()
                .map(|(key, value)| {
                    let v = String::from_utf8_lossy(value).into_owned();
                    (key.to_owned(), serde_json::Value::String(v))
                })
                .collect();
            let line = serde_json::json!({
                "topic": message.topic(),
                "partition": message.partition(),
                "offset": message.offset(),
                "key": message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                "headers": headers,
                "type": ty,
                "value": value,
            });
            println!("{line}");
            printed += 1;
        }
        Ok(())
    }

    /// `scribe dlq list`: every dead letter of `actor` so far, oldest
    /// first per partition, as JSON lines; stops at the end.
    pub(crate) fn dlq_list(&self, actor: &str) -> Result<usize> {
        let info = self
            .node
            .actors()
            .into_iter()
            .find(|a| a.name == actor)
            .ok_or_else(|| Error::UnknownActor {
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
                .map_err(|e| Error::kafka(format!("cannot read the offsets of `{topic}`"), e))?;
            if high > low {
                remaining.insert(p, high);
                list.add_partition_offset(&topic, p, Offset::Offset(low))
                    .map_err(|e| Error::kafka("cannot assign partitions", e))?;
            }
        }
        if remaining.is_empty() {
            return Ok(0);
        }
        consumer
            .assign(&list)
            .map_err(|e| Error::kafka("cannot assign partitions", e))?;
        let registry = self.node.schema_registry();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut printed = 0;
        while !remaining.is_empty() && Instant::now() < deadline {
            let Some(message) = next_message(&consumer) else {
                continue;
            };
            let (pairs, _) = scribe::headers::kafka_pairs(message.headers());
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
        actix::System::new().block_on(async move { node.replay_dead_letters(&actor).await })
    }

    /// `scribe produce`: returns how many lines were rejected.
    pub(crate) fn produce(
        &self,
        topic: &str,
        as_owner: bool,
        input: impl BufRead,
    ) -> Result<usize> {
        let owner = self
            .node
            .actors()
            .into_iter()
            .find(|a| a.output == topic)
            .ok_or_else(|| Error::Config {
                file: self.file.clone(),
                message: format!(
                    "no actor owns topic `{topic}`, so there is no schema to encode with"
                ),
            })?;
        if !as_owner {
            return Err(Error::Config {
                file: self.file.clone(),
                message: format!(
                    "topic `{topic}` is owned by actor `{}`: writing there makes a second \
                     writer; pass --as-owner if that is meant",
                    owner.name
                ),
            });
        }
        let producer: BaseProducer<Deliveries> = self
            .client()?
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .create_with_context(Deliveries::default())
            .map_err(|e| Error::kafka("cannot create producer", e))?;
        let ty = full_name(&owner.output_schema);
        let source = format!("{}/scribe-produce", self.node.name());
        let mut rejected = 0;
        for (number, line) in input.lines().enumerate() {
            let number = number + 1;
            let line = line.map_err(|e| Error::Config {
                file: "<stdin>".into(),
                message: format!("line {number}: {e}"),
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let encoded = serde_json::from_str::<serde_json::Value>(&line)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(envelope)
                .and_then(|(key, value)| {
                    encode_json(&owner.output_schema, value)
                        .map(|bytes| (key, bytes))
                        .map_err(|e| format!("does not fit `{ty}`: {}", scribe::error_chain(&e)))
                });
            let (key, bytes) = match encoded {
                Ok(encoded) => encoded,
                Err(reason) => {
                    eprintln!("line {number}: {reason}");
                    rejected += 1;
                    continue;
                }
            };
            let id = Uuid::new_v4().to_string();
            let now = SystemTime::now();
            let time = humantime::format_rfc3339_millis(now).to_string();
            let outbound = Outbound {
                id: &id,
                ty: &ty,
                source: &source,
                time: &time,
                correlation_id: &id,
                causation_id: None,
            };
            let headers = scribe::headers::to_kafka(outbound.pairs());
            let mut record = BaseRecord::to(topic).payload(&bytes).headers(headers);
            if let Some(key) = &key {
                record = record.key(key.as_str());
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull,
                        ),
                        back,
                    )) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => {
                        return Err(Error::Publish {
                            topic: topic.to_owned(),
                            source: e,
                        });
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        producer
            .flush(deadline.saturating_duration_since(Instant::now()))
            .map_err(|e| Error::Publish {
                topic: topic.to_owned(),
                source: e,
            })?;
        // Flushed is not delivered: each record's report says.
        let failures = producer.context().failures.lock().map_or(0, |f| f.0);
        if let Some(first) = producer
            .context()
            .failures
            .lock()
            .ok()
            .and_then(|f| f.1.clone())
        {
            eprintln!("{failures} records were not delivered");
            return Err(Error::Publish {
                topic: topic.to_owned(),
                source: first,
            });
        }
        Ok(rejected)
    }
}

/// The next record within 200 ms, if any; a consumer error is printed.
fn next_message(consumer: &BaseConsumer) -> Option<rdkafka::message::BorrowedMessage<'_>> {
    match consumer.poll(Duration::from_millis(200))? {
        Ok(message) => Some(message),
        Err(e) => {
            eprintln!("consumer error: {e}");
            None
        }
    }
}

/// Splits `{"key": ..., "value": ...}` into its parts.
fn envelope(
    json: serde_json::Value,
) -> std::result::Result<(Option<String>, serde_json::Value), String> {
    let serde_json::Value::Object(mut fields) = json else {
        return Err("expected an object {\"key\": ..., \"value\": {...}}".into());
    };
    let value = fields
        .remove("value")
        .ok_or("missing `value` (each line is {\"key\": ..., \"value\": {...}})")?;
    let key = match fields.remove("key") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(key)) => Some(key),
        Some(other) => Some(other.to_string()),
    };
    Ok((key, value))
}

/// Counts the records `scribe produce` sent that the brokers did not take,
/// keeping the first reason.
#[derive(Default)]
struct Deliveries {
    failures: std::sync::Mutex<(usize, Option<rdkafka::error::KafkaError>)>,
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let (Err((error, _)), Ok(mut failures)) = (result, self.failures.lock()) {
            failures.0 += 1;
            failures.1.get_or_insert_with(|| error.clone());
        }
    }
}
