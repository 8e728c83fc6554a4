//! `scribe topics`, `tail`, `produce` and `dlq`: tools that talk to a node's
//! cluster directly, with the node's schemas.

mod dlq;
mod produce;

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::settings::{NodeConfig, Registry};
use scribe::Node;
use scribe::codec::decode_json;

pub(super) const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

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

    /// Every schema the node knows, and its schema registry for the ids
    /// of values in the registry's framing.
    pub(super) fn schemas(&self) -> Result<scribe::SchemaRegistry> {
        let schemas = self.node.schema_registry();
        Ok(match self.node.schema_registry_settings() {
            Some(settings) => {
                schemas.with_remote(scribe::confluent::RegistryClient::new(settings)?)
            }
            None => schemas,
        })
    }

    pub(super) fn bootstrap(&self) -> Result<&str> {
        self.bootstrap.as_deref().ok_or_else(|| Error::Config {
            file: self.file.clone(),
            message: "kafka.bootstrap_servers is `embedded`, a broker inside the running node: \
                      pass --bootstrap with the address `scribe run` logged"
                .into(),
        })
    }

    /// The node's client settings, once the cluster answered through them
    /// (wrong credentials or certificates are reported here, by cause).
    pub(super) fn client(&self) -> Result<ClientConfig> {
        let bootstrap = self.bootstrap()?;
        let config = self.node.client_config(bootstrap);
        scribe::client::first_contact(&config, bootstrap, scribe::client::FIRST_CONTACT)?;
        Ok(config)
    }

    /// A consumer for reading, in a throwaway group that commits nothing.
    pub(super) fn reader(&self, tool: &str) -> Result<BaseConsumer> {
        self.client()?
            .set(
                "group.id",
                format!("scribe-{tool}-{}", Uuid::new_v4().simple()),
            )
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| scribe::Error::kafka("cannot create consumer", e).into())
    }

    pub(super) fn partitions(&self, consumer: &BaseConsumer, topic: &str) -> Result<i32> {
        Ok(scribe::client::partition_count(
            consumer,
            topic,
            METADATA_TIMEOUT,
        )?)
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
            let end = end_offsets(reachable.as_ref(), &topic);
            // What the cluster has; what the config says when unknown.
            let partitions = match (on_cluster, &reachable) {
                (Some(n), _) => n.to_string(),
                (None, Some(_)) => "-".to_owned(),
                (None, None) => format!("({})", spec.partitions),
            };
            println!("{topic:<32} {owner_name:<20} {record_type:<36} {partitions:>10} {end:>12}");
        }
        // Each store's changelog: the actor's, as many partitions as its
        // input (created at start).
        for actor in &actors {
            for store in &actor.stores {
                let topic = &store.changelog;
                let on_cluster = reachable
                    .as_ref()
                    .and_then(|(_, partitions)| partitions.get(topic).copied());
                let end = end_offsets(reachable.as_ref(), topic);
                let partitions = on_cluster.map_or("-".to_owned(), |n| n.to_string());
                let record_type = format!("state {} -> {}", store.key_type, store.value_type);
                println!(
                    "{topic:<32} {:<20} {record_type:<36} {partitions:>10} {end:>12}",
                    actor.name
                );
            }
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
                .map_err(|e| scribe::Error::kafka("cannot assign partitions", e))?;
        }
        consumer
            .assign(&list)
            .map_err(|e| scribe::Error::kafka("cannot assign partitions", e))?;
        let registry = self.schemas()?;
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
            let (read, unreadable) = scribe::Headers::from_kafka(&message);
            let payload = message.payload().unwrap_or_default();
            let (ty, value) = match decode_json(&registry, payload) {
                Ok(decoded) => decoded,
                // JSON text (a `json-out` mirror's topic): as it is, typed
                // by its `ce_type`.
                Err(e) => match serde_json::from_slice::<serde_json::Value>(payload) {
                    Ok(json) => (read.ce_type().unwrap_or("json").to_owned(), json),
                    Err(_) => {
                        eprintln!("{at}: cannot decode: {}", scribe::error_chain(&e));
                        continue;
                    }
                },
            };
            if let Some(bad) = unreadable {
                eprintln!(
                    "{at}: header {} (`{}`) left out, as any other whose key is not UTF-8",
                    bad.index, bad.key
                );
            }
            if let Some(why) = read.malformed_envelope() {
                eprintln!("{at}: its scribe_envelope header cannot be read: {why}");
            }
            // The metadata under its CloudEvents names, whichever envelope
            // it came in.
            let headers: serde_json::Map<String, serde_json::Value> = read
                .iter()
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
                // The trace it belongs to, to look up in a tracing UI.
                "trace_id": read.traceparent().and_then(scribe::trace::trace_id),
                "type": ty,
                "value": value,
            });
            println!("{line}");
            printed += 1;
        }
        Ok(())
    }
}

/// The next record within 200 ms, if any; a consumer error is printed.
pub(super) fn next_message(
    consumer: &BaseConsumer,
) -> Option<rdkafka::message::BorrowedMessage<'_>> {
    match consumer.poll(Duration::from_millis(200))? {
        Ok(message) => Some(message),
        Err(e) => {
            eprintln!("consumer error: {e}");
            None
        }
    }
}

/// The sum of `topic`'s end offsets over its partitions, as the cluster
/// (when reached) says; `-` when unknown.
fn end_offsets(
    reachable: Option<&(BaseConsumer, std::collections::HashMap<String, i32>)>,
    topic: &str,
) -> String {
    reachable
        .and_then(|(consumer, partitions)| {
            (0..*partitions.get(topic)?)
                .map(|p| {
                    consumer
                        .fetch_watermarks(topic, p, METADATA_TIMEOUT)
                        .ok()
                        .map(|(_, high)| high)
                })
                .sum::<Option<i64>>()
        })
        .map_or("-".to_owned(), |n| n.to_string())
}
