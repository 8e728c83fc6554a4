//! [`Node`]: many actors in one process, wired through Kafka.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use tokio::sync::watch;

use crate::actor::{SubscriptionInfo, TopicActor};
use crate::broker::{Broker, EmbeddedBroker};
use crate::codec::SchemaRegistry;
use crate::error::{Error, Result};
use crate::kafka::{ClientSettings, ensure_topics};
use crate::policy::{Delivery, FailurePolicy, OverBudget};
use crate::stats::{ActorStats, StatsSnapshot};
use crate::supervisor::{
    ActorFactory, Env, Factory, Mode, NodeControl, Replay, Supervision, supervise,
};
use crate::topic::{TopicSpec, check_name};

/// Builds a [`Node`]: its actors, topics, broker and client settings.
///
/// Nothing touches Kafka until [`Node::start`]; [`NodeBuilder::build`]
/// validates the whole topology first.
pub struct NodeBuilder {
    name: String,
    broker: Broker,
    default_topic: TopicSpec,
    topics: BTreeMap<String, TopicSpec>,
    actors: Vec<(Arc<dyn ActorFactory>, Arc<ActorStats>)>,
    registry: SchemaRegistry,
    errors: Vec<Error>,
    commit_interval: Duration,
    transaction_timeout: Duration,
    common: Vec<(String, String)>,
    consumer: Vec<(String, String)>,
    producer: Vec<(String, String)>,
    policies: BTreeMap<String, FailurePolicy>,
    deliveries: BTreeMap<String, Delivery>,
    security: crate::security::Security,
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
        for actor in self.deliveries.keys() {
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
            let mut seen = HashMap::new();
            for sub in actor.subscriptions() {
                if sub.pattern {
                    crate::actor::pattern_regex(&sub.topic)?;
                } else {
                    check_name("topic", &sub.topic)?;
                }
                if seen.insert(sub.topic.as_str(), ()).is_some() {
                    return Err(Error::DuplicateSubscription {
                        actor: actor.name().to_owned(),
                        topic: sub.topic.clone(),
                    });
                }
            }
        }
        let node = Node { builder: self };
        crate::topology::check(&node.actors())?;
        for actor in node.actors() {
            let Some(dead_letters) = &actor.dead_letter_topic else {
                continue;
            };
            let why = if *dead_letters == actor.output {
                "it is the actor's own output, so undecodable records would reach its readers"
            } else if actor.subscriptions.iter().any(|s| {
                if s.pattern {
                    crate::actor::pattern_regex(&s.topic).is_ok_and(|re| re.is_match(dead_letters))
                } else {
                    s.topic == *dead_letters
                }
            }) {
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

/// A described actor of a node: what it owns and what it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorInfo {
    /// The actor's name (and consumer group).
    pub name: String,
    /// The topic it owns.
    pub output: String,
    /// Avro full name of the record type it writes.
    pub output_type: String,
    /// The schema it writes with.
    pub output_schema: apache_avro::Schema,
    /// What it subscribes to.
    pub subscriptions: Vec<SubscriptionInfo>,
    /// Where it writes the records it gives up on (`None` for an actor
    /// that reads nothing, or whose policy stops it instead).
    pub dead_letter_topic: Option<String>,
    /// What its outputs and offsets guarantee.
    pub delivery: Delivery,
}

/// A validated set of actors, ready to start.
///
/// ```no_run
/// # use scribe::prelude::*;
/// # async fn demo(builder: NodeBuilder) -> Result<(), scribe::Error> {
/// let node = builder.build()?;          // validation, no Kafka yet
/// let running = node.start().await?;    // topics created, actors running
/// running.run_until_signal().await?;    // Ctrl-C or SIGTERM drains and commits
/// # Ok(()) }
/// ```
pub struct Node {
    builder: NodeBuilder,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.builder.name)
            .field("actors", &self.actors())
            .finish()
    }
}

impl Node {
    /// Starts describing a node called `name` (it prefixes client ids and
    /// every record's `ce_source`).
    pub fn builder(name: impl Into<String>) -> NodeBuilder {
        NodeBuilder {
            name: name.into(),
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
            security: crate::security::Security::default(),
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.builder.name
    }

    fn registry_of(b: &NodeBuilder) -> SchemaRegistry {
        let mut registry = b.registry.clone();
        for (actor, _) in &b.actors {
            actor.register_schemas(&mut registry);
        }
        registry
    }

    fn policy_of(b: &NodeBuilder, actor: &str) -> FailurePolicy {
        b.policies.get(actor).cloned().unwrap_or_default()
    }

    fn delivery_of(b: &NodeBuilder, actor: &str) -> Delivery {
        b.deliveries.get(actor).copied().unwrap_or_default()
    }

    fn dead_letter_of(b: &NodeBuilder, actor: &dyn ActorFactory) -> Option<String> {
        if actor.subscriptions().is_empty() {
            return None;
        }
        Node::policy_of(b, actor.name()).dead_letter_topic_for(actor.output())
    }

    /// Each actor's failure policy and dead-letter topic, in actor order.
    fn policies_of(b: &NodeBuilder) -> Vec<(Arc<FailurePolicy>, Option<String>)> {
        b.actors
            .iter()
            .map(|(a, _)| {
                (
                    Arc::new(Node::policy_of(b, a.name())),
                    Node::dead_letter_of(b, &**a),
                )
            })
            .collect()
    }

    fn topics_of(b: &NodeBuilder) -> BTreeMap<String, TopicSpec> {
        let mut topics = BTreeMap::new();
        for (actor, _) in &b.actors {
            let dead_letter = Node::dead_letter_of(b, &**actor);
            // Patterns name no topic to create.
            let names = std::iter::once(actor.output())
                .chain(dead_letter.as_deref())
                .chain(
                    actor
                        .subscriptions()
                        .iter()
                        .filter(|s| !s.pattern)
                        .map(|s| s.topic.as_str()),
                );
            for topic in names {
                let spec = b.topics.get(topic).copied().unwrap_or(b.default_topic);
                topics.insert(topic.to_owned(), spec);
            }
        }
        topics
    }

    /// Every schema the node knows: its actors' types and any registered.
    pub fn schema_registry(&self) -> SchemaRegistry {
        Node::registry_of(&self.builder)
    }

    /// Every topic the node's actors own or read, with how it is created.
    pub fn topics(&self) -> BTreeMap<String, TopicSpec> {
        Node::topics_of(&self.builder)
    }

    /// The Kafka client settings every client of the node shares (security,
    /// pass-through properties), pointed at `bootstrap`: for tools that talk
    /// to the node's cluster, such as `scribe tail`.
    pub fn client_config(&self, bootstrap: &str) -> rdkafka::ClientConfig {
        self.settings(bootstrap.to_owned(), false).admin()
    }

    /// Where the node's Kafka is.
    pub fn broker(&self) -> &Broker {
        &self.builder.broker
    }

    fn settings(&self, bootstrap: String, embedded: bool) -> ClientSettings {
        Node::settings_of(&self.builder, bootstrap, embedded)
    }

    fn settings_of(b: &NodeBuilder, bootstrap: String, embedded: bool) -> ClientSettings {
        ClientSettings {
            bootstrap,
            node: b.name.clone(),
            embedded,
            commit_interval: b.commit_interval,
            transaction_timeout: b.transaction_timeout,
            common: b
                .security
                .properties()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .chain(b.common.iter().cloned())
                .collect(),
            consumer: b.consumer.clone(),
            producer: b.producer.clone(),
        }
    }

    /// What the simulator runs: the node's name, actors, topics, schemas
    /// and commit interval.
    #[cfg(feature = "testing")]
    pub(crate) fn into_sim_parts(self) -> crate::sim::NodeParts {
        let topics = self.topics();
        let registry = self.schema_registry();
        let b = self.builder;
        let policies = Node::policies_of(&b);
        crate::sim::NodeParts {
            name: b.name,
            actors: b.actors,
            topics,
            registry,
            commit_interval: b.commit_interval,
            policies,
        }
    }

    /// The node's actors.
    pub fn actors(&self) -> Vec<ActorInfo> {
        self.builder
            .actors
            .iter()
            .map(|(a, _)| ActorInfo {
                name: a.name().to_owned(),
                output: a.output().to_owned(),
                output_type: a.output_type().to_owned(),
                output_schema: a.output_schema(),
                subscriptions: a.subscriptions().to_vec(),
                dead_letter_topic: Node::dead_letter_of(&self.builder, &**a),
                delivery: Node::delivery_of(&self.builder, a.name()),
            })
            .collect()
    }

    /// Connects to the broker (starting the embedded one if so configured),
    /// creates missing topics and starts every actor.
    ///
    /// Must be called inside an actix `System` (`#[actix::main]`,
    /// `#[actix::test]`). Returns once every actor is constructed; fails if
    /// any constructor fails, after stopping the others.
    pub async fn start(self) -> Result<RunningNode> {
        let registry = self.schema_registry();
        let topics: Vec<_> = self.topics().into_iter().collect();
        let b = self.builder;
        let policies = Node::policies_of(&b);
        let deliveries: Vec<Delivery> = b
            .actors
            .iter()
            .map(|(a, _)| Node::delivery_of(&b, a.name()))
            .collect();
        let (bootstrap, embedded) = match &b.broker {
            Broker::Embedded => {
                let broker = EmbeddedBroker::start()?;
                (broker.bootstrap_servers().to_owned(), Some(broker))
            }
            Broker::InProcess(broker) => {
                (broker.bootstrap_servers().to_owned(), Some(broker.clone()))
            }
            Broker::Bootstrap(servers) => (servers.clone(), None),
        };
        let settings = Node::settings_of(&b, bootstrap.clone(), embedded.is_some());

        // Wrong credentials or certificates stop the node here, saying
        // which, before any actor starts.
        crate::connect::first_contact_of(&settings).await?;
        ensure_topics(&settings, embedded.as_ref(), &topics).await?;
        let env = Arc::new(Env { settings, registry });
        let (stop, stop_rx) = watch::channel(false);
        let control = Arc::new(NodeControl {
            stop,
            halted: std::sync::Mutex::new(None),
        });
        let mut running = RunningNode {
            name: b.name,
            bootstrap,
            embedded,
            control: control.clone(),
            supervisors: Vec::new(),
            stats: HashMap::new(),
        };
        let mut starts = Vec::new();
        let actors = b.actors.into_iter().zip(policies).zip(deliveries);
        for (((factory, stats), (policy, dead_letter)), delivery) in actors {
            let name = factory.name().to_owned();
            let (started_tx, started_rx) = oneshot::channel();
            running
                .stats
                .insert(factory.name().to_owned(), stats.clone());
            let supervision = Supervision {
                factory,
                env: env.clone(),
                stats,
                policy,
                dead_letter,
                delivery,
                control: control.clone(),
                mode: Mode::Live,
            };
            let task = actix::spawn(supervise(supervision, stop_rx.clone(), started_tx));
            running.supervisors.push((name.clone(), task));
            starts.push((name, started_rx));
        }
        for (actor, started) in starts {
            let outcome = started.await.unwrap_or_else(|_| {
                Err(Error::ActorStart {
                    actor,
                    source: "its supervisor ended before starting it".into(),
                })
            });
            if let Err(error) = outcome {
                let _ = running.shutdown_in_place().await;
                return Err(error);
            }
        }
        tracing::info!(
            node = %running.name,
            bootstrap = %running.bootstrap,
            actors = running.supervisors.len(),
            "node started"
        );
        Ok(running)
    }
}

impl Node {
    /// Points the node at another broker (tools given `--bootstrap`).
    pub(crate) fn set_broker(&mut self, broker: Broker) {
        self.builder.broker = broker;
    }

    /// Sends `actor`'s dead letters back to it for another try, then
    /// returns what became of them.
    ///
    /// The actor runs alone, as the node runs it: built by its constructor,
    /// writing its own output topic with its own producer under its failure
    /// policy, so the single-writer rule holds (this is the second instance
    /// of the actor that two nodes sharing it would be). It reads its
    /// dead-letter topic up to the end each partition had when the replay
    /// began, and gets every dead letter as the record it was: its original
    /// topic, partition, offset, key, timestamp and headers (without the
    /// `scribe_dlq_*` ones), decoded by the subscription of its original
    /// topic. A record that fails again goes through the policy again:
    /// retried, then dead-lettered anew, after the end, with fresh
    /// `scribe_dlq_*` headers and its original coordinates; so a replay
    /// always ends. Progress is committed in the consumer group
    /// `<actor>.dlq-replay`: a replay stopped half way resumes where it
    /// stopped, and the next replay starts after the last one.
    ///
    /// Needs the cluster the node runs on ([`Broker::Bootstrap`] or
    /// [`Broker::InProcess`]); an [`Broker::Embedded`] broker would start
    /// empty. Must be called inside an actix `System`.
    pub async fn replay_dead_letters(self, actor: &str) -> Result<Replayed> {
        let failed = |reason: String| Error::Replay {
            actor: actor.to_owned(),
            reason,
        };
        let registry = self.schema_registry();
        let b = self.builder;
        let index = b
            .actors
            .iter()
            .position(|(a, _)| a.name() == actor)
            .ok_or_else(|| Error::UnknownActor {
                actor: actor.to_owned(),
            })?;
        let mut policy = Node::policy_of(&b, actor);
        let delivery = Node::delivery_of(&b, actor);
        let topic = Node::dead_letter_of(&b, &*b.actors[index].0).ok_or_else(|| {
            failed(
                "it has no dead-letter topic: it reads nothing, or its failure policy stops it instead"
                    .into(),
            )
        })?;
        let bootstrap = match &b.broker {
            Broker::Embedded => {
                return Err(failed(
                    "its node's broker is embedded, and a new embedded broker starts empty: \
                     replay against the cluster the node runs on (its bootstrap servers)"
                        .into(),
                ));
            }
            Broker::InProcess(broker) => broker.bootstrap_servers().to_owned(),
            Broker::Bootstrap(servers) => servers.clone(),
        };
        let settings = Node::settings_of(&b, bootstrap, matches!(b.broker, Broker::InProcess(_)));
        crate::connect::first_contact_of(&settings).await?;
        let group = format!("{actor}.dlq-replay");
        let probe: rdkafka::consumer::BaseConsumer = settings
            .consumer(actor, false)
            .set("group.id", &group)
            .create()
            .map_err(|e| Error::kafka("cannot create consumer", e))?;
        let replay = Replay::of(&probe, topic, group).map_err(|e| failed(e.to_string()))?;
        let span = replay.offsets_before_end(&replay.starts(&probe)?);
        drop(probe);
        let (factory, stats) = b.actors.into_iter().nth(index).expect("found above");
        let before = stats.snapshot();
        tracing::info!(actor, topic = %replay.topic, group = %replay.group, offsets = span, "replaying dead letters");
        if span > 0 {
            // Past its budget the replay stops, saying why.
            policy.over_budget = OverBudget::StopNode;
            let (stop, stop_rx) = watch::channel(false);
            let control = Arc::new(NodeControl {
                stop,
                halted: std::sync::Mutex::new(None),
            });
            let supervision = Supervision {
                factory,
                env: Arc::new(Env { settings, registry }),
                stats: stats.clone(),
                dead_letter: Some(replay.topic.clone()),
                policy: Arc::new(policy),
                delivery,
                control: control.clone(),
                mode: Mode::Replay(Arc::new(replay.clone())),
            };
            let (started_tx, started_rx) = oneshot::channel();
            supervise(supervision, stop_rx, started_tx).await;
            if let Ok(Err(error)) = started_rx.await {
                return Err(error);
            }
            if stats.unhealthy.load(std::sync::atomic::Ordering::Relaxed) {
                let why = control.halted.lock().ok().and_then(|h| h.clone());
                return Err(failed(format!(
                    "it stopped before the end ({}); what it finished is committed in group `{}`",
                    why.as_deref().unwrap_or("stopped by its failure policy"),
                    replay.group
                )));
            }
        }
        let after = stats.snapshot();
        let waiting = replay.read.lock().map_or(0, |read| read.len() as u64);
        Ok(Replayed {
            actor: actor.to_owned(),
            topic: replay.topic,
            waiting,
            handled: after.handled - before.handled,
            dead_lettered: after.dead_lettered - before.dead_lettered,
            restarts: after.restarts - before.restarts,
        })
    }
}

/// What [`Node::replay_dead_letters`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Replayed {
    /// The actor.
    pub actor: String,
    /// Its dead-letter topic.
    pub topic: String,
    /// Dead letters waiting when the replay began (records, not offsets:
    /// the transaction markers of an exactly-once actor's dead-letter
    /// topic take offsets too).
    pub waiting: u64,
    /// Those the actor handled this time.
    pub handled: u64,
    /// Those that failed again, dead-lettered anew after the end.
    pub dead_lettered: u64,
    /// Restarts of the actor during the replay (handler panics, failed
    /// transactions).
    pub restarts: u64,
}

/// A started node. [`RunningNode::shutdown`] stops it gracefully; dropping
/// it stops every actor at once without draining (records in hand are
/// redelivered on the next start).
pub struct RunningNode {
    name: String,
    bootstrap: String,
    embedded: Option<EmbeddedBroker>,
    control: Arc<NodeControl>,
    /// Each actor's name and supervisor task.
    supervisors: Vec<(String, tokio::task::JoinHandle<()>)>,
    stats: HashMap<String, Arc<ActorStats>>,
}

impl fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningNode")
            .field("name", &self.name)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl RunningNode {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bootstrap servers the node uses; for an embedded broker, where
    /// outside clients (kcat, Python) can connect.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The embedded broker, when the node uses one.
    pub fn embedded_broker(&self) -> Option<&EmbeddedBroker> {
        self.embedded.as_ref()
    }

    /// The counters of actor `actor`.
    pub fn stats(&self, actor: &str) -> Option<StatsSnapshot> {
        self.stats.get(actor).map(|s| s.snapshot())
    }

    /// Why `actor` stopped for good (its failure policy, a spent restart
    /// budget, fenced transactions, writes the brokers refused), or `None`
    /// while it runs or restarts.
    pub fn stopped_because(&self, actor: &str) -> Option<String> {
        self.stats
            .get(actor)
            .and_then(|s| s.stopped_because.lock().ok().and_then(|w| w.clone()))
    }

    /// Stops gracefully: every actor stops taking records, finishes the one
    /// in hand, flushes its producer and commits its offsets.
    pub async fn shutdown(mut self) -> Result<()> {
        self.shutdown_in_place().await
    }

    async fn shutdown_in_place(&mut self) -> Result<()> {
        let _ = self.control.stop.send(true);
        let mut failed = None;
        for (actor, task) in self.supervisors.drain(..) {
            if let Err(error) = task.await {
                failed.get_or_insert(Error::Shutdown {
                    actor,
                    reason: format!("its supervisor failed: {error}"),
                });
            }
        }
        tracing::info!(node = %self.name, "node stopped");
        failed.map_or(Ok(()), Err)
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down gracefully. Also
    /// returns, with [`Error::NodeHalted`], when an actor's restart budget
    /// stopped the node.
    pub async fn run_until_signal(self) -> Result<()> {
        self.until_signal_or_halt().await;
        self.drain().await
    }

    /// Waits for Ctrl-C or SIGTERM, or for an actor's restart budget to
    /// stop the node, whichever comes first; says which in the log.
    pub(crate) async fn until_signal_or_halt(&self) {
        let mut stopped = self.control.stop.subscribe();
        tokio::select! {
            () = wait_for_signal() => {
                tracing::info!(node = %self.name, "signal received; draining");
            }
            _ = stopped.wait_for(|stop| *stop) => {
                let reason = self.halted().unwrap_or_default();
                tracing::error!(node = %self.name, %reason, "the node stops itself; draining");
            }
        }
    }

    /// Shuts down gracefully; [`Error::NodeHalted`] when the node had
    /// stopped itself.
    pub(crate) async fn drain(self) -> Result<()> {
        let halted = self.halted();
        self.shutdown().await?;
        halted.map_or(Ok(()), |reason| Err(Error::NodeHalted { reason }))
    }

    /// Why the node stopped itself, if it did: an actor spent its restart
    /// budget under `over_budget = "stop-node"`. Its actors are draining or
    /// drained by then.
    pub fn halted(&self) -> Option<String> {
        self.control.halted.lock().ok().and_then(|h| h.clone())
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        for (_, task) in &self.supervisors {
            task.abort();
        }
    }
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
