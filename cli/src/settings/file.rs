//! The sections of a node configuration file, and loading one.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::registry::Registry;
use crate::error::{Error, Result};
use scribe::Broker;
use scribe::Properties;
use scribe::Security;
use scribe::TopicSpec;
use scribe::{Node, NodeBuilder};

/// A node configuration file, as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// `[node]`: the node itself.
    pub node: NodeSection,
    /// `[kafka]`: where Kafka is and how to reach it.
    #[serde(default)]
    pub kafka: KafkaSection,
    /// `[topic_defaults]`: how topics without a `[[topics]]` entry are created.
    #[serde(default)]
    pub topic_defaults: TopicSection,
    /// `[[topics]]`: how particular topics are created.
    #[serde(default)]
    pub topics: Vec<TopicSection>,
    /// `[[actors]]`: the actors this node runs.
    #[serde(default)]
    pub actors: Vec<ActorSection>,
    /// `[[gateways]]`: the gateways a program running this node starts
    /// (`RunningNode::gateway`), declared so the checks see them.
    #[serde(default)]
    pub gateways: Vec<GatewaySection>,
    /// `[registry]`: the Confluent Schema Registry, for actors writing
    /// `encoding = "confluent"` and readers of such topics; none when absent.
    #[serde(default)]
    pub registry: Option<scribe::RegistrySettings>,
    /// The file it was read from (not a key of the file).
    #[serde(skip)]
    pub file: String,
}

/// `[node]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The node's name: prefixes client ids and every record's `ce_source`.
    pub name: String,
    /// How often consumed offsets are committed. The default is 500 ms.
    #[serde(default, with = "humantime_serde")]
    pub commit_interval: Option<Duration>,
    /// How long an exactly-once actor waits for the broker on a transaction
    /// step before its outcome counts as unknown. The default is 10 s.
    #[serde(default, with = "humantime_serde")]
    pub transaction_timeout: Option<Duration>,
    /// How the node's actors write their records' metadata (see
    /// [`scribe::Envelope`]); `compact` when absent.
    #[serde(default)]
    pub envelope: Option<scribe::Envelope>,
    /// How the node's actors encode their records (see
    /// [`scribe::Encoding`]); `single_object` when absent.
    #[serde(default)]
    pub encoding: Option<scribe::Encoding>,
    /// Under which registry subjects `confluent` actors register their
    /// schemas (see [`scribe::SubjectStrategy`]); `topic_name` when absent.
    #[serde(default)]
    pub subject_strategy: Option<scribe::SubjectStrategy>,
    /// Where the admin endpoint listens (`GET /health`, `/ready`,
    /// `/metrics`), `HOST:PORT`; none when absent.
    #[serde(default)]
    pub admin: Option<std::net::SocketAddr>,
    /// The bearer token the admin endpoint asks for; none when absent.
    #[serde(default)]
    pub admin_token: Option<scribe::Secret>,
    /// `[node.tracing]`: OpenTelemetry spans per record, exported over
    /// OTLP; off when absent.
    #[serde(default)]
    pub tracing: Option<scribe::trace::Tracing>,
}

/// A `[[gateways]]` entry: a gateway that asks on `requests`, a topic it
/// owns, and awaits replies on `replies`, its responder's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Its name.
    pub name: String,
    /// The topic it owns and asks on.
    pub requests: String,
    /// The topic its responder owns and answers on.
    pub replies: String,
    /// The Avro full name of the type it asks with: `check` refuses a
    /// responder that does not read it on `requests`. Give both or neither.
    #[serde(default)]
    pub request_type: Option<String>,
    /// The Avro full name of the type it expects back: `check` refuses a
    /// responder that does not write it.
    #[serde(default)]
    pub reply_type: Option<String>,
}

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// `embedded` (the default) starts a broker in the process; otherwise
    /// the cluster's bootstrap servers, `host:port,host:port`.
    #[serde(default = "embedded")]
    pub bootstrap_servers: String,
    /// `[kafka.security]`: TLS and SASL.
    #[serde(default)]
    pub security: Security,
    /// `[kafka.properties]`: librdkafka properties for every client.
    #[serde(default)]
    pub properties: Properties,
    /// `[kafka.consumer]`: librdkafka properties for consumers only.
    #[serde(default)]
    pub consumer: Properties,
    /// `[kafka.producer]`: librdkafka properties for producers only.
    #[serde(default)]
    pub producer: Properties,
}

fn embedded() -> String {
    "embedded".into()
}

impl Default for KafkaSection {
    fn default() -> Self {
        Self {
            bootstrap_servers: embedded(),
            security: Security::default(),
            properties: Properties::default(),
            consumer: Properties::default(),
            producer: Properties::default(),
        }
    }
}

/// A `[[topics]]` entry, or `[topic_defaults]` (where `name` is not used).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSection {
    /// The topic (required in `[[topics]]`).
    pub name: Option<String>,
    /// Number of partitions. The default is 3.
    pub partitions: Option<i32>,
    /// Replication factor. The default is 1.
    pub replication: Option<i32>,
    /// How long records are kept, e.g. `7days`. The default is the broker's.
    #[serde(default, with = "humantime_serde")]
    pub retention: Option<Duration>,
}

impl TopicSection {
    fn over(&self, base: TopicSpec) -> TopicSpec {
        TopicSpec {
            partitions: self.partitions.unwrap_or(base.partitions),
            replication: self.replication.unwrap_or(base.replication),
            retention_ms: self
                .retention
                .map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX))
                .or(base.retention_ms),
        }
    }
}

/// An `[[actors]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSection {
    /// The actor's name, unique on the node; also its consumer group.
    pub name: String,
    /// Its kind, as registered in the [`Registry`].
    pub kind: String,
    /// The topic it owns.
    pub output: String,
    /// Its parameters, read into its kind's typed arguments; unknown fields
    /// are refused.
    #[serde(default)]
    pub params: serde_json::Value,
    /// What the actor does when handling fails (see [`scribe::FailurePolicy`]);
    /// the defaults when absent.
    #[serde(default)]
    pub failure: Option<scribe::FailurePolicy>,
    /// What its outputs and offsets guarantee (see [`scribe::Delivery`]);
    /// at-least-once when absent.
    #[serde(default)]
    pub delivery: Option<scribe::Delivery>,
    /// How it writes its records' metadata (see [`scribe::Envelope`]); the
    /// node's `envelope` when absent.
    #[serde(default)]
    pub envelope: Option<scribe::Envelope>,
    /// How it encodes its records (see [`scribe::Encoding`]); the node's
    /// `encoding` when absent.
    #[serde(default)]
    pub encoding: Option<scribe::Encoding>,
    /// Its registry subject naming strategy (see
    /// [`scribe::SubjectStrategy`]); the node's when absent.
    #[serde(default)]
    pub subject_strategy: Option<scribe::SubjectStrategy>,
}

impl NodeConfig {
    /// Reads a configuration file (TOML, or YAML by its extension) and the
    /// `SCRIBE__...` environment overrides. Touches no network.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let fail = |message: String| Error::Config {
            file: file.clone(),
            message,
        };
        let (text, format) = super::text::read(path).map_err(fail)?;
        let merged = config::Config::builder()
            .add_source(config::File::from_str(&text, format))
            .add_source(
                config::Environment::with_prefix("SCRIBE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| {
                fail(format!(
                    "malformed: {}",
                    super::text::one_line(&e.to_string())
                ))
            })?;
        let mut node: NodeConfig = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            fail(format!(
                "{path}: {}",
                super::text::one_line(&e.into_inner().to_string())
            ))
        })?;
        node.file = file;
        Ok(node)
    }

    /// Turns the file into a node builder through `registry`, reading each
    /// actor's parameters into its kind's arguments. Touches no network.
    pub fn builder(&self, registry: &Registry) -> Result<NodeBuilder> {
        let fail = |message: String| Error::Config {
            file: self.file.clone(),
            message,
        };
        let broker = match self.kafka.bootstrap_servers.trim() {
            "" => {
                return Err(fail(
                    "kafka.bootstrap_servers: empty; use `embedded` or host:port".into(),
                ));
            }
            "embedded" => Broker::Embedded,
            servers => Broker::bootstrap(servers),
        };
        let base = self.topic_defaults.over(TopicSpec::default());
        let mut builder = Node::builder(&self.node.name)
            .broker(broker)
            .default_topic(base)
            .schemas(registry.schemas());
        if let Some(interval) = self.node.commit_interval {
            builder = builder.commit_interval(interval);
        }
        if let Some(timeout) = self.node.transaction_timeout {
            builder = builder.transaction_timeout(timeout);
        }
        if let Some(addr) = self.node.admin {
            builder = builder.admin(addr);
        }
        if let Some(token) = &self.node.admin_token {
            builder = builder.admin_token(token.clone());
        }
        if let Some(tracing) = &self.node.tracing {
            tracing
                .check()
                .map_err(|reason| fail(format!("node.tracing: {reason}")))?;
            builder = builder.tracing(tracing.clone());
        }
        if let Some(envelope) = self.node.envelope {
            builder = builder.default_envelope(envelope);
        }
        if let Some(encoding) = self.node.encoding {
            builder = builder.default_encoding(encoding);
        }
        if let Some(strategy) = self.node.subject_strategy {
            builder = builder.default_subject_strategy(strategy);
        }
        if let Some(registry) = &self.registry {
            registry
                .validate()
                .map_err(|reason| fail(format!("registry: {reason}")))?;
            builder = builder.schema_registry(registry.clone());
        }
        for (i, topic) in self.topics.iter().enumerate() {
            let name = topic
                .name
                .as_ref()
                .ok_or_else(|| fail(format!("topics[{i}].name: missing")))?;
            builder = builder.topic(name, topic.over(base));
        }
        builder = builder.security(self.kafka.security.clone());
        for (key, value) in &self.kafka.properties.0 {
            builder = builder.kafka_property(key, value);
        }
        for (key, value) in &self.kafka.consumer.0 {
            builder = builder.consumer_property(key, value);
        }
        for (key, value) in &self.kafka.producer.0 {
            builder = builder.producer_property(key, value);
        }
        for gateway in &self.gateways {
            builder = builder.gateway(&gateway.name, &gateway.requests, &gateway.replies);
            match (&gateway.request_type, &gateway.reply_type) {
                (Some(request), Some(reply)) => {
                    builder = builder.gateway_types(&gateway.name, request, reply);
                }
                (None, None) => {}
                _ => {
                    return Err(fail(format!(
                        "gateway `{}`: give request_type and reply_type together",
                        gateway.name
                    )));
                }
            }
        }
        for actor in &self.actors {
            builder = registry
                .add(builder, actor)
                .map_err(|message| fail(format!("actor `{}`: {message}", actor.name)))?;
        }
        Ok(builder)
    }

    /// Loads, checks and builds the node: every check that needs no network.
    pub fn node(&self, registry: &Registry) -> Result<Node> {
        self.builder(registry)?.build().map_err(|e| Error::Config {
            file: self.file.clone(),
            message: e.to_string(),
        })
    }
}
