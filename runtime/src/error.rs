//! The runtime's error type.

use crate::wire::codec::DecodeError;

/// What an actor's handler or constructor returns when it fails.
///
/// Any error type converts into it with `?`. The supervisor applies the
/// actor's failure policy to it (see `docs/semantics.md`).
pub type ActorError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` whose error defaults to the runtime's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the scribe runtime can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two actors claim the same output topic (the single-writer rule).
    #[error("topic `{topic}` is owned by actor `{first}` and claimed again by actor `{second}`")]
    TopicOwnedTwice {
        /// The contested topic.
        topic: String,
        /// The actor that claimed it first.
        first: String,
        /// The actor that claimed it second.
        second: String,
    },
    /// An actor subscribes to the topic it writes.
    #[error("actor `{actor}` subscribes to its own output topic `{topic}`")]
    SubscribesToOwnOutput {
        /// The actor.
        actor: String,
        /// Its output topic.
        topic: String,
    },
    /// A subscriber cannot read, by Avro schema resolution, what the
    /// topic's owner writes.
    #[error("{0}")]
    SchemaMismatch(Box<crate::topology::SchemaMismatch>),
    /// Two actors share one name (names are consumer groups and must be unique).
    #[error("actor name `{actor}` is used twice")]
    DuplicateActor {
        /// The repeated name.
        actor: String,
    },
    /// One actor subscribes to one topic twice.
    #[error("actor `{actor}` subscribes to topic `{topic}` twice")]
    DuplicateSubscription {
        /// The actor.
        actor: String,
        /// The topic.
        topic: String,
    },
    /// A name (node, actor or topic) is empty or not a legal Kafka name.
    #[error("invalid {what} name `{name}`: {reason}")]
    InvalidName {
        /// What was named: `node`, `actor` or `topic`.
        what: &'static str,
        /// The offending name.
        name: String,
        /// Why it is not allowed.
        reason: &'static str,
    },
    /// A librdkafka property is unknown or its value invalid.
    #[error("kafka property `{key}`: {reason}")]
    KafkaProperty {
        /// The property.
        key: String,
        /// librdkafka's objection (without the value, for secret properties).
        reason: String,
    },
    /// A subscription pattern is not a valid regular expression.
    #[error("invalid subscription pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// The regular expression parser's objection.
        reason: String,
    },
    /// An Avro schema could not be parsed or registered.
    #[error("invalid avro schema {origin}")]
    Schema {
        /// Where the schema came from (a type or file name).
        origin: String,
        /// The parser's error.
        #[source]
        source: apache_avro::Error,
    },
    /// A record could not be decoded.
    #[error("cannot decode record at {topic}/{partition}@{offset}")]
    Decode {
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Why it could not be decoded.
        #[source]
        source: DecodeError,
    },
    /// A call to the Confluent Schema Registry failed or was refused.
    #[error("schema registry {url}: {call}: {reason}")]
    Registry {
        /// The registry's base URL (never with credentials).
        url: String,
        /// What was asked (`POST /subjects/orders-value/versions`).
        call: String,
        /// Why it failed: the registry's own message where it gave one.
        reason: String,
    },
    /// The tracing settings cannot be used.
    #[error("tracing: {reason}")]
    Tracing {
        /// What is wrong.
        reason: String,
    },
    /// The embedded broker could not be started or commanded.
    #[error("embedded broker: {0}")]
    Embedded(String),
    /// A Kafka client call failed.
    #[error("kafka {context}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A topic could not be created or did not appear in time.
    #[error("cannot create topic `{topic}`: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
    /// A value did not fit its schema when publishing.
    #[error("cannot encode record for topic `{topic}`")]
    Encode {
        /// The publisher's topic.
        topic: String,
        /// The encoder's error.
        #[source]
        source: apache_avro::Error,
    },
    /// The producer refused a record.
    #[error("cannot publish to topic `{topic}`")]
    Publish {
        /// The publisher's topic.
        topic: String,
        /// The producer's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// An actor's constructor failed.
    #[error("actor `{actor}` failed to start")]
    ActorStart {
        /// The actor.
        actor: String,
        /// Its constructor's error.
        #[source]
        source: ActorError,
    },
    /// A simulation or a tool was asked about an actor the node lacks.
    #[error("no actor named `{actor}`")]
    UnknownActor {
        /// The name asked for.
        actor: String,
    },
    /// A simulation or a tool was asked about a topic it does not have.
    #[error("no topic named `{topic}`")]
    UnknownTopic {
        /// The name asked for.
        topic: String,
    },
    /// A simulation was asked about a partition its topic does not have.
    #[error("topic `{topic}` has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: i32,
    },
    /// A setting is out of its range (a zero interval, a partition count
    /// no cluster would take).
    #[error("{setting}: {reason}")]
    InvalidSetting {
        /// The setting, as a node file names it.
        setting: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// An actor's own checks of its arguments refused them
    /// ([`crate::TopicActor::validate`]).
    #[error("actor `{actor}`: params: {reason}")]
    InvalidParams {
        /// The actor.
        actor: String,
        /// What its checks said.
        reason: String,
    },
    /// The node stopped itself: an actor spent its restart budget.
    #[error("the node stopped: {reason}")]
    NodeHalted {
        /// Which actor, how often it failed, and its last failure.
        reason: String,
    },
    /// A replay of an actor's dead letters could not run, or stopped.
    #[error("cannot replay the dead letters of actor `{actor}`: {reason}")]
    Replay {
        /// The actor.
        actor: String,
        /// Why.
        reason: String,
    },
    /// An exactly-once actor's transactions failed.
    #[error("{reason}")]
    Transaction {
        /// Which step, as which transactional id, and the broker's answer.
        reason: String,
    },
    /// A store refused a call: outside a handler, on a partition this
    /// instance does not hold, or with a key or value that does not encode
    /// or decode. A handler that returns it fails under its actor's
    /// failure policy.
    #[error("actor `{actor}`, store `{store}`: {reason}")]
    State {
        /// The actor.
        actor: String,
        /// Its store.
        store: String,
        /// What was wrong.
        reason: String,
    },
    /// A changelog record stopped a restore: the partition's state is not
    /// restored, and its records are not handled.
    #[error("cannot restore from changelog {topic}/{partition}@{offset}: {reason}")]
    Restore {
        /// The changelog topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// The offset of the record.
        offset: i64,
        /// What is wrong with the record.
        reason: String,
    },
    /// A changelog topic exists but cannot hold its store: too few or too
    /// many partitions, or not compacted.
    #[error("changelog `{topic}` of actor `{actor}`: {reason}")]
    Changelog {
        /// The changelog topic.
        topic: String,
        /// The actor that owns it.
        actor: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `[kafka.security]` (or [`crate::NodeBuilder::security`]) is
    /// incomplete, contradictory, or names a file that cannot be read.
    #[error("kafka.security.{field}: {reason}")]
    Security {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The node's first contact with the cluster failed, before any actor
    /// started.
    #[error("cannot connect to {bootstrap}: {cause}")]
    Connect {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// Why, as the client reported it.
        cause: ConnectFailure,
    },
    /// The admin endpoint cannot listen where it was told to.
    #[error("admin endpoint: cannot listen on {addr}: {reason}")]
    Admin {
        /// The address it was to bind.
        addr: String,
        /// Why, as the system said.
        reason: String,
    },
    /// A gateway's request got no reply in time.
    #[error(
        "gateway `{gateway}`: no answer to a request on `{topic}` within {after:?}: waited {waiting}"
    )]
    AskTimedOut {
        /// The gateway.
        gateway: String,
        /// Its request topic.
        topic: String,
        /// The timeout.
        after: std::time::Duration,
        /// What it was waiting for.
        waiting: String,
    },
    /// A gateway's reply could not be read as the reply type.
    #[error("gateway `{gateway}`: bad reply on `{topic}`: {reason}")]
    BadReply {
        /// The gateway.
        gateway: String,
        /// The reply topic.
        topic: String,
        /// What was wrong, and where.
        reason: String,
    },
    /// A responder could not handle a gateway's request, and said why.
    #[error(
        "gateway `{gateway}`: the responder could not answer (error reply on `{topic}`): {reason}"
    )]
    Refused {
        /// The gateway.
        gateway: String,
        /// The reply topic.
        topic: String,
        /// The responder's reason.
        reason: String,
    },
    /// A gateway could not start.
    #[error("gateway `{gateway}`: {reason}")]
    Gateway {
        /// The gateway.
        gateway: String,
        /// Why.
        reason: String,
    },
    /// An actor asked while as many of its requests as its requester's
    /// bound allows awaited replies.
    #[error(
        "`{requester}`: {max} requests await replies on `{topic}` already (its max_pending); answer or time some out first"
    )]
    TooManyPending {
        /// The requester (`actor's requester`).
        requester: String,
        /// The reply topic.
        topic: String,
        /// Its bound.
        max: usize,
    },
    /// A gateway was closed while a request waited.
    #[error("gateway `{gateway}` is closed")]
    GatewayClosed {
        /// The gateway.
        gateway: String,
    },
    /// A gateway would write a topic it does not own.
    #[error("gateway `{gateway}` cannot publish to `{topic}`: {reason}")]
    GatewayTopic {
        /// The gateway.
        gateway: String,
        /// The topic.
        topic: String,
        /// Why not.
        reason: String,
    },
    /// The node's actors did not all stop cleanly.
    #[error("shutdown of actor `{actor}` failed: {reason}")]
    Shutdown {
        /// The actor.
        actor: String,
        /// What went wrong.
        reason: String,
    },
}

/// Why a node could not reach its cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The brokers refused the SASL credentials.
    #[error("authentication failed ({0})")]
    Authentication(String),
    /// A broker's certificate does not chain to a trusted CA.
    #[error("certificate not trusted ({0})")]
    UntrustedCertificate(String),
    /// A broker's certificate is for another host name.
    #[error("hostname mismatch ({0})")]
    HostnameMismatch(String),
    /// The TLS handshake failed otherwise.
    #[error("tls handshake failed ({0})")]
    Tls(String),
    /// The brokers did not answer in time.
    #[error("no broker answered within {0:?}: {1}")]
    Unreachable(std::time::Duration, String),
}

impl Error {
    /// A Kafka client call that failed while doing `context`.
    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka {
            context: context.into(),
            source,
        }
    }
}

/// An error and its sources, joined by `: `.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        // rdkafka's errors repeat their source's text in their own.
        let said = s.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = s.source();
    }
    text
}
