//! [`NodeBuilder`]: what a node is made of.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::actor::TopicActor;
use crate::delivery::policy::{Delivery, FailurePolicy};
use crate::error::Error;
use crate::kafka::broker::Broker;
use crate::kafka::registry::RegistrySettings;
use crate::kafka::topics::TopicSpec;
use crate::ops::stats::ActorStats;
use crate::supervisor::{ActorFactory, Factory};
use crate::wire::codec::SchemaRegistry;
use crate::wire::envelope::Envelope;
use crate::wire::framing::{Encoding, SubjectStrategy};

/// Builds a [`Node`](crate::Node): its actors, topics, broker and client settings.
///
/// Nothing touches Kafka until [`Node::start`](crate::Node::start); [`NodeBuilder::build`]
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
    pub(super) security: crate::kafka::security::Security,
    pub(super) admin: Option<std::net::SocketAddr>,
    pub(super) admin_token: Option<crate::Secret>,
    pub(super) tracing: Option<crate::ops::trace::Tracing>,
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
    /// A node called `name`, with nothing in it yet (see [`Node::builder`]).
    pub(super) fn new(name: String) -> Self {
        NodeBuilder {
            name,
            broker: Broker::default(),
            default_topic: TopicSpec::default(),
            topics: BTreeMap::new(),
            actors: Vec::new(),
            registry: SchemaRegistry::new(),
            errors: Vec::new(),
            commit_interval: Duration::from_millis(500),
            transaction_timeout: Duration::from_secs(10),
            common: Vec::new(),
            consumer: Vec::new(),
            producer: Vec::new(),
            policies: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            envelopes: BTreeMap::new(),
            default_envelope: crate::Envelope::default(),
            security: crate::kafka::security::Security::default(),
            admin: None,
            admin_token: None,
            tracing: None,
            tracer_provider: None,
            gateways: Vec::new(),
            encodings: BTreeMap::new(),
            default_encoding: crate::Encoding::default(),
            subject_strategies: BTreeMap::new(),
            default_subject_strategy: crate::SubjectStrategy::default(),
            schema_registry: None,
        }
    }

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
    /// spans over OTLP (see [`crate::ops::trace`]). Off by default.
    pub fn tracing(mut self, tracing: crate::ops::trace::Tracing) -> Self {
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
    pub fn security(mut self, security: crate::kafka::security::Security) -> Self {
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
}
