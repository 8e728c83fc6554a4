//! [`NodeBuilder`]: what a node is made of, and its validation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::actor::TopicActor;
use crate::broker::Broker;
use crate::codec::SchemaRegistry;
use crate::confluent::{Encoding, RegistrySettings, SubjectStrategy};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::policy::{Delivery, FailurePolicy};
use crate::stats::ActorStats;
use crate::supervisor::{ActorFactory, Factory};
use crate::topic::{TopicSpec, check_name};

use super::Node;

/// Builds a [`Node`]: its actors, topics, broker and client settings.
///
/// Nothing touches Kafka until [`Node::start`]; [`NodeBuilder::build`]
/// validates the whole topology first.
pub struct NodeBuilder {
    pub(super) name: String,
    pub(super) broker: Broker,
    pub(super) default_topic: TopicSpec,
    pub(super) topics: BTreeMap<String, TopicSpec>,
    pub(super) actors: Vec<(Arc<dyn ActorFactory>, Arc<ActorStats>)>,
    pub(super) registry: SchemaRegistry,
    pub(super) errors: Vec<Error>,
    pub(super) commit_interval: Duration,
    pub(super) transaction_timeout: Duration,
    pub(super) common: Vec<(String, String)>,
    pub(super) consumer: Vec<(String, String)>,
    pub(super) producer: Vec<(String, String)>,
    pub(super) policies: BTreeMap<String, FailurePolicy>,
    pub(super) deliveries: BTreeMap<String, Delivery>,
    pub(super) envelopes: BTreeMap<String, Envelope>,
    pub(super) default_envelope: Envelope,
    pub(super) security: crate::security::Security,
    pub(super) admin: Option<std::net::SocketAddr>,
    pub(super) admin_token: Option<crate::Secret>,
    pub(super) tracing: Option<crate::trace::Tracing>,
    pub(super) tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    pub(super) gateways: Vec<crate::topology::GatewayInfo>,
    pub(super) encodings: BTreeMap<String, Encoding>,
    pub(super) default_encoding: Encoding,
    pub(super) subject_strategies: BTreeMap<String, SubjectStrategy>,
    pub(super) default_subject_strategy: SubjectStrategy,
    pub(super) schema_registry: Option<RegistrySettings>,
}

impl fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("name", &self.name)
            .field("broker", &self.broker)
            .field(
                "actors",
                &self
                    .actors
                    .iter()
                    .map(|(a, _)| a.name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl NodeBuilder {
    /// Where Kafka is. The default is [`Broker::Embedded`].
    pub fn broker(mut self, broker: Broker) -> Self {
        self.broker = broker;
        self
    }

    /// How topics without their own [`NodeBuilder::topic`] entry are
    /// created. The default is [`TopicSpec::default`] (3 partitions,
    /// replication 1).
    pub fn default_topic(mut self, spec: TopicSpec) -> Self {
        self.default_topic = spec;
        self
    }

    /// How `topic` is created if it does not exist.
    pub fn topic(mut self, topic: impl Into<String>, spec: TopicSpec) -> Self {
        self.topics.insert(topic.into(), spec);
        self
    }

    /// Adds an actor named `name` (also its consumer group) that owns
    /// `output`, built from `args`.
    pub fn actor<A: TopicActor>(
        mut self,
        name: impl Into<String>,
        output: impl Into<String>,
        args: A::Args,
    ) -> Self {
        let name = name.into();
        if let Err(reason) = A::validate(&args) {
            self.errors.push(Error::InvalidParams {
                actor: name.clone(),
                reason: crate::error::chain(&*reason),
            });
        }
        let stats = Arc::new(ActorStats::default());
        let factory = Factory::<A>::new(name, output.into(), args, stats.clone());
        self.actors.push((Arc::new(factory), stats));
        self
    }

    /// What `actor` does when handling fails: retries, dead letters,
    /// restart budget. The default is [`FailurePolicy::default`].
    pub fn failure_policy(mut self, actor: impl Into<String>, policy: FailurePolicy) -> Self {
        self.policies.insert(actor.into(), policy);
        self
    }

    /// What `actor`'s outputs and offsets guarantee. The default is
    /// [`Delivery::AtLeastOnce`].
    pub fn delivery(mut self, actor: impl Into<String>, delivery: Delivery) -> Self {
        self.deliveries.insert(actor.into(), delivery);
        self
    }

    /// How `actor` writes its records' metadata. The default is the
    /// node's ([`NodeBuilder::default_envelope`]).
    pub fn envelope(mut self, actor: impl Into<String>, envelope: Envelope) -> Self {
        self.envelopes.insert(actor.into(), envelope);
        self
    }

    /// How the node's actors write their records' metadata, unless
    /// [`NodeBuilder::envelope`] says otherwise for one. The default is
    /// [`Envelope::Compact`].
    pub fn default_envelope(mut self, envelope: Envelope) -> Self {
        self.default_envelope = envelope;
        self
    }

    /// How `actor` encodes its records. The default is the node's
    /// ([`NodeBuilder::default_encoding`]).
    pub fn encoding(mut self, actor: impl Into<String>, encoding: Encoding) -> Self {
        self.encodings.insert(actor.into(), encoding);
        self
    }

    /// How the node's actors encode their records, unless
    /// [`NodeBuilder::encoding`] says otherwise for one. The default is
    /// [`Encoding::SingleObject`]; [`Encoding::Confluent`] needs
    /// [`NodeBuilder::schema_registry`].
    pub fn default_encoding(mut self, encoding: Encoding) -> Self {
        self.default_encoding = encoding;
        self
    }

    /// Under which registry subjects `actor` registers the schemas it
    /// writes, when it writes [`Encoding::Confluent`]. The default is the
    /// node's ([`NodeBuilder::default_subject_strategy`]).
    pub fn subject_strategy(mut self, actor: impl Into<String>, strategy: SubjectStrategy) -> Self {
        self.subject_strategies.insert(actor.into(), strategy);
        self
    }

    /// The node's subject naming strategy, unless
    /// [`NodeBuilder::subject_strategy`] says otherwise for one actor. The
    /// default is [`SubjectStrategy::TopicName`].
    pub fn default_subject_strategy(mut self, strategy: SubjectStrategy) -> Self {
        self.default_subject_strategy = strategy;
        self
    }

    /// The Confluent Schema Registry: where actors writing
    /// [`Encoding::Confluent`] register their schemas, and where every
    /// reader looks up the schema ids it meets.
    pub fn schema_registry(mut self, settings: RegistrySettings) -> Self {
        self.schema_registry = Some(settings);
        self
    }

    /// Serves the admin endpoint on `addr` while the node runs: `GET
    /// /health`, `/ready` and `/metrics` (`docs/operations.md`). Port 0
    /// picks a free port ([`RunningNode::admin_addr`](crate::RunningNode::admin_addr)
    /// says which). Bind it to loopback unless the endpoint must be
    /// reached from other hosts, and then with [`NodeBuilder::admin_token`].
    pub fn admin(mut self, addr: std::net::SocketAddr) -> Self {
        self.admin = Some(addr);
        self
    }

    /// Declares gateway `name`, which asks on `requests` (a topic it owns)
    /// and awaits replies on `replies` (the responder's): the one-writer
    /// check then covers `requests`, and `scribe check`, `graph` and
    /// `asyncapi` show the pairing. Start it with
    /// [`RunningNode::gateway`](crate::RunningNode::gateway).
    pub fn gateway(
        mut self,
        name: impl Into<String>,
        requests: impl Into<String>,
        replies: impl Into<String>,
    ) -> Self {
        self.gateways.push(crate::topology::GatewayInfo {
            name: name.into(),
            requests: requests.into(),
            replies: replies.into(),
            request_type: None,
            reply_type: None,
        });
        self
    }

    /// Declares the record types the gateway `name` (declared with
    /// [`gateway`](Self::gateway)) asks with and expects back, as Avro full
    /// names (`[[gateways]] request_type`, `reply_type`): `build` and
    /// `scribe check` then refuse a responder that does not read the
    /// request type on the request topic or does not write the reply type.
    /// `build` refuses a name no gateway has.
    pub fn gateway_types(
        mut self,
        name: &str,
        request: impl Into<String>,
        reply: impl Into<String>,
    ) -> Self {
        match self.gateways.iter_mut().find(|g| g.name == name) {
            Some(gateway) => {
                gateway.request_type = Some(request.into());
                gateway.reply_type = Some(reply.into());
            }
            None => self.errors.push(Error::InvalidSetting {
                setting: format!("gateway `{name}`"),
                reason: "no gateway of that name is declared, so it has no types to declare".into(),
            }),
        }
        self
    }

    /// Traces every record the node handles and publishes, exporting the
    /// spans over OTLP (see [`crate::trace`]). Off by default.
    pub fn tracing(mut self, tracing: crate::trace::Tracing) -> Self {
        self.tracing = Some(tracing);
        self
    }

    /// Traces every record the node handles and publishes into `provider`,
    /// which the caller built (its exporter, sampler and resource) and
    /// shuts down: the node only flushes it when it stops. Takes the place
    /// of [`NodeBuilder::tracing`].
    pub fn tracer_provider(
        mut self,
        provider: opentelemetry_sdk::trace::SdkTracerProvider,
    ) -> Self {
        self.tracer_provider = Some(provider);
        self
    }

    /// Makes the admin endpoint answer only requests that carry
    /// `Authorization: Bearer TOKEN`.
    pub fn admin_token(mut self, token: crate::Secret) -> Self {
        self.admin_token = Some(token);
        self
    }

    /// Registers an older (or foreign) writer schema given as Avro JSON, so
    /// records written with it can be resolved; `origin` names it in errors.
    pub fn schema(mut self, origin: &str, avsc: &str) -> Self {
        if let Err(error) = self.registry.register(origin, avsc) {
            self.errors.push(error);
        }
        self
    }

    /// Registers every schema of `registry`.
    pub fn schemas(mut self, registry: &SchemaRegistry) -> Self {
        self.registry.extend(registry);
        self
    }

    /// How often consumed offsets are committed. The default is 500 ms.
    /// Commits carry every offset that became committable since the last one.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// How long an exactly-once actor waits for the broker on a transaction
    /// step (commit, sending offsets) before the step's outcome counts as
    /// unknown; the step is then tried again, never aborted. The default
    /// is 10 s.
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }

    /// How every client of the node reaches the cluster: TLS and SASL. The
    /// default is plaintext without authentication. Checked by
    /// [`NodeBuilder::build`] (missing or contradictory fields, unreadable
    /// files); the node's first contact with the cluster tells an
    /// authentication failure, an untrusted certificate and a host name
    /// mismatch apart ([`crate::ConnectFailure`]).
    pub fn security(mut self, security: crate::security::Security) -> Self {
        self.security = security;
        self
    }

    /// Sets a librdkafka property on every client of the node. Applied
    /// after scribe's own settings and [`NodeBuilder::security`].
    pub fn kafka_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.common.push((key.into(), value.into()));
        self
    }

    /// Sets a librdkafka property on every consumer of the node (for example
    /// `session.timeout.ms`).
    pub fn consumer_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.consumer.push((key.into(), value.into()));
        self
    }

    /// Sets a librdkafka property on every producer of the node (for example
    /// `linger.ms`).
    pub fn producer_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.producer.push((key.into(), value.into()));
        self
    }

    /// Validates the topology and returns the node, ready to start.
    ///
    /// Fails when a name is not a legal Kafka name, two actors share a name,
    /// two actors own one topic (single writer), an actor subscribes to its
    /// own output or to one topic twice, or a subscriber cannot read what
    /// the topic's owner writes (see [`crate::topology::check`]).
    pub fn build(mut self) -> Result<Node> {
        if let Some(error) = self.errors.drain(..).next() {
            return Err(error);
        }
        check_name("node", &self.name)?;
        let invalid = |setting: String, reason: String| Error::InvalidSetting { setting, reason };
        for (setting, value) in [
            ("node.commit_interval", self.commit_interval),
            ("node.transaction_timeout", self.transaction_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(setting.into(), "must be more than zero".into()));
            }
        }
        self.default_topic
            .check()
            .map_err(|(field, reason)| invalid(format!("topic_defaults.{field}"), reason))?;
        for (topic, spec) in &self.topics {
            spec.check()
                .map_err(|(field, reason)| invalid(format!("topic `{topic}`: {field}"), reason))?;
        }
        self.security
            .check()
            .map_err(|(field, reason)| Error::Security { field, reason })?;
        for topic in self.topics.keys() {
            check_name("topic", topic)?;
        }
        for actor in self
            .deliveries
            .keys()
            .chain(self.envelopes.keys())
            .chain(self.encodings.keys())
            .chain(self.subject_strategies.keys())
        {
            if !self.actors.iter().any(|(a, _)| a.name() == actor) {
                return Err(Error::UnknownActor {
                    actor: actor.clone(),
                });
            }
        }
        for (actor, policy) in &self.policies {
            if !self.actors.iter().any(|(a, _)| a.name() == actor) {
                return Err(Error::UnknownActor {
                    actor: actor.clone(),
                });
            }
            if let Some(topic) = &policy.dead_letter_topic {
                check_name("topic", topic)?;
            }
        }
        let mut names = HashMap::new();
        for (actor, _) in &self.actors {
            check_name("actor", actor.name())?;
            check_name("topic", actor.output())?;
            if names.insert(actor.name(), ()).is_some() {
                return Err(Error::DuplicateActor {
                    actor: actor.name().to_owned(),
                });
            }
        }
        for (actor, _) in &self.actors {
            let mut seen: Vec<&crate::SubscriptionInfo> = Vec::new();
            for sub in actor.subscriptions() {
                if sub.pattern {
                    crate::actor::pattern_regex(&sub.topic)?;
                } else {
                    check_name("topic", &sub.topic)?;
                }
                // One topic: taken whole once, or by distinct types and
                // prefixes.
                let twice = seen.iter().filter(|s| s.topic == sub.topic).any(|s| {
                    s.binding.is_whole()
                        || sub.binding.is_whole()
                        || (s.binding == sub.binding && s.record_type == sub.record_type)
                });
                if twice {
                    return Err(Error::DuplicateSubscription {
                        actor: actor.name().to_owned(),
                        topic: sub.topic.clone(),
                    });
                }
                seen.push(sub);
            }
            let mut written = std::collections::BTreeSet::new();
            for schema in actor.output_schemas() {
                let name = crate::codec::full_name(&schema);
                if !written.insert(name.clone()) {
                    return Err(invalid(
                        format!("actor `{}`: output", actor.name()),
                        format!(
                            "its record types name `{name}` twice; readers tell them apart by name"
                        ),
                    ));
                }
            }
        }
        for gateway in &self.gateways {
            check_name("gateway", &gateway.name)?;
            check_name("topic", &gateway.requests)?;
            check_name("topic", &gateway.replies)?;
        }
        if let Some(registry) = &self.schema_registry {
            registry
                .validate()
                .map_err(|reason| invalid("registry".into(), reason))?;
        }
        let node = Node { builder: self };
        for actor in node.actors() {
            if actor.encoding != Encoding::Confluent {
                continue;
            }
            let setting = format!("actor `{}`: encoding", actor.name);
            let why = if node.builder.schema_registry.is_none() {
                "confluent needs a schema registry ([registry] url)"
            } else if actor.output_schemas.is_empty() {
                "the actor writes JSON, which has no avro schema to register"
            } else if actor.output_schemas.len() > 1 && !actor.subject_strategy.per_type() {
                "its topic carries several record types, and the topic_name subject \
                 strategy gives them one subject; use record_name or topic_record_name"
            } else {
                continue;
            };
            return Err(invalid(setting, why.into()));
        }
        crate::topology::check(&node.actors())?;
        crate::topology::check_gateways(&node.actors(), &node.builder.gateways, false)?;
        crate::topology::check_asks(&node.actors(), false)?;
        for actor in node.actors() {
            let Some(dead_letters) = &actor.dead_letter_topic else {
                continue;
            };
            let why = if *dead_letters == actor.output {
                "it is the actor's own output, so undecodable records would reach its readers"
            } else if actor.subscriptions.iter().any(|s| s.reads(dead_letters)) {
                "the actor reads it, so a dead letter would come back to it at once"
            } else {
                continue;
            };
            return Err(invalid(
                format!(
                    "actor `{}`: failure.dead_letter_topic `{dead_letters}`",
                    actor.name
                ),
                why.into(),
            ));
        }
        let exactly_once = node
            .builder
            .deliveries
            .values()
            .any(|d| *d == Delivery::ExactlyOnce);
        node.settings(String::new(), false).validate(exactly_once)?;
        Ok(node)
    }
}
