//! [`Node`]: a validated set of actors, and what each actor's settings
//! come to (its failure policy, delivery, envelope, dead-letter topic,
//! topics and client settings), derived from its [`NodeBuilder`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::builder::NodeBuilder;
use crate::delivery::policy::{Delivery, FailurePolicy};
use crate::kafka::broker::Broker;
use crate::kafka::settings::ClientSettings;
use crate::kafka::topics::TopicSpec;
use crate::supervisor::ActorFactory;
use crate::topology::ActorInfo;
use crate::wire::codec::SchemaRegistry;

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
    pub(super) builder: NodeBuilder,
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
        NodeBuilder::new(name.into())
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.builder.name
    }

    pub(super) fn registry_of(b: &NodeBuilder) -> SchemaRegistry {
        let mut registry = b.registry.clone();
        for (actor, _) in &b.actors {
            actor.register_schemas(&mut registry);
        }
        registry
    }

    pub(super) fn policy_of(b: &NodeBuilder, actor: &str) -> FailurePolicy {
        b.policies.get(actor).cloned().unwrap_or_default()
    }

    pub(super) fn delivery_of(b: &NodeBuilder, actor: &str) -> Delivery {
        b.deliveries.get(actor).copied().unwrap_or_default()
    }

    /// The envelope set for the actor, else its kind's own
    /// ([`TopicActor::envelope`](crate::TopicActor::envelope)), else the
    /// node's default.
    pub(super) fn envelope_of(b: &NodeBuilder, actor: &dyn ActorFactory) -> crate::Envelope {
        b.envelopes
            .get(actor.name())
            .copied()
            .or(actor.preferred_envelope())
            .unwrap_or(b.default_envelope)
    }

    /// Each actor's envelope, by name.
    pub(super) fn envelopes_of(b: &NodeBuilder) -> BTreeMap<String, crate::Envelope> {
        b.actors
            .iter()
            .map(|(a, _)| (a.name().to_owned(), Node::envelope_of(b, &**a)))
            .collect()
    }

    pub(super) fn dead_letter_of(b: &NodeBuilder, actor: &dyn ActorFactory) -> Option<String> {
        if actor.subscriptions().is_empty() {
            return None;
        }
        Node::policy_of(b, actor.name()).dead_letter_topic_for(actor.output())
    }

    /// Each actor's failure policy and dead-letter topic, in actor order.
    pub(super) fn policies_of(b: &NodeBuilder) -> Vec<(Arc<FailurePolicy>, Option<String>)> {
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

    pub(super) fn topics_of(b: &NodeBuilder) -> BTreeMap<String, TopicSpec> {
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

    /// The changelog of every store of the node's actors: its owner, the
    /// topics whose partition count it takes, and its replication (its
    /// owner's output's).
    pub(crate) fn changelogs(&self) -> Vec<crate::kafka::changelogs::ChangelogSpec> {
        let b = &self.builder;
        self.actors()
            .iter()
            .flat_map(|actor| {
                let mut inputs: Vec<String> = actor
                    .subscriptions
                    .iter()
                    .map(|s| s.topic.clone())
                    .collect();
                inputs.dedup();
                let replication = b
                    .topics
                    .get(&actor.output)
                    .unwrap_or(&b.default_topic)
                    .replication;
                actor
                    .stores
                    .iter()
                    .map(move |store| crate::kafka::changelogs::ChangelogSpec {
                        topic: store.changelog.clone(),
                        actor: actor.name.clone(),
                        inputs: inputs.clone(),
                        replication,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
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

    pub(super) fn settings(&self, bootstrap: String, embedded: bool) -> ClientSettings {
        Node::settings_of(&self.builder, bootstrap, embedded)
    }

    pub(super) fn settings_of(
        b: &NodeBuilder,
        bootstrap: String,
        embedded: bool,
    ) -> ClientSettings {
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
                // With the admin endpoint: librdkafka's statistics (lag,
                // queue depth, round trips) every few seconds, for
                // `/metrics`; `[kafka.properties]` may change the interval.
                .chain(b.admin.map(|_| {
                    (
                        "statistics.interval.ms".to_owned(),
                        STATISTICS_MS.to_owned(),
                    )
                }))
                .chain(b.common.iter().cloned())
                .collect(),
            consumer: b.consumer.clone(),
            producer: b.producer.clone(),
        }
    }

    /// What the simulator runs: the node's name, actors, topics, schemas
    /// and commit interval.
    #[cfg(feature = "testing")]
    pub(crate) fn into_sim_parts(self) -> NodeParts {
        let mut topics = self.topics();
        // Each changelog, with its inputs' partitions (the build checked
        // they agree), as the node creates them on the broker.
        for changelog in self.changelogs() {
            let partitions = changelog
                .inputs
                .iter()
                .find_map(|input| topics.get(input))
                .map_or(1, |input| input.partitions);
            topics.entry(changelog.topic).or_insert(TopicSpec {
                partitions,
                replication: changelog.replication,
                retention_ms: None,
            });
        }
        let registry = self.schema_registry();
        let b = self.builder;
        let policies = Node::policies_of(&b);
        let deliveries = b
            .actors
            .iter()
            .map(|(a, _)| Node::delivery_of(&b, a.name()))
            .collect();
        let envelopes = b
            .actors
            .iter()
            .map(|(a, _)| Node::envelope_of(&b, &**a))
            .collect();
        let infos = Node::actors_of(&b);
        NodeParts {
            infos,
            envelopes,
            name: b.name,
            actors: b.actors,
            topics,
            registry,
            commit_interval: b.commit_interval,
            deliveries,
            policies,
        }
    }

    /// The gateways the node declares.
    pub fn gateways(&self) -> &[crate::topology::GatewayInfo] {
        &self.builder.gateways
    }

    /// The node's actors.
    pub fn actors(&self) -> Vec<ActorInfo> {
        Node::actors_of(&self.builder)
    }

    /// Each actor of `b`, as the topology checks see it.
    fn actors_of(b: &NodeBuilder) -> Vec<ActorInfo> {
        b.actors
            .iter()
            .map(|(a, _)| ActorInfo {
                name: a.name().to_owned(),
                output: a.output().to_owned(),
                output_type: a.output_type().to_owned(),
                output_schemas: a.output_schemas(),
                subscriptions: a.subscriptions().to_vec(),
                dead_letter_topic: Node::dead_letter_of(b, &**a),
                delivery: Node::delivery_of(b, a.name()),
                envelope: Node::envelope_of(b, &**a),
                encoding: b
                    .encodings
                    .get(a.name())
                    .copied()
                    .unwrap_or(b.default_encoding),
                subject_strategy: b
                    .subject_strategies
                    .get(a.name())
                    .copied()
                    .unwrap_or(b.default_subject_strategy),
                asks: a.asks().to_vec(),
                stores: a.stores().to_vec(),
            })
            .collect()
    }

    /// The schema registry the node uses, if any.
    pub fn schema_registry_settings(&self) -> Option<&crate::RegistrySettings> {
        self.builder.schema_registry.as_ref()
    }
}

/// How often, with the admin endpoint on, each client's librdkafka
/// statistics are taken (milliseconds).
const STATISTICS_MS: &str = "5000";

/// What the simulator takes from a node.
#[cfg(feature = "testing")]
pub(crate) struct NodeParts {
    /// Each actor as the topology checks see it, in actor order.
    pub(crate) infos: Vec<ActorInfo>,
    pub(crate) name: String,
    pub(crate) actors: Vec<(Arc<dyn ActorFactory>, Arc<crate::ops::stats::ActorStats>)>,
    pub(crate) topics: BTreeMap<String, TopicSpec>,
    pub(crate) registry: SchemaRegistry,
    pub(crate) commit_interval: std::time::Duration,
    /// Each actor's failure policy and dead-letter topic, in actor order.
    pub(crate) policies: Vec<(Arc<crate::FailurePolicy>, Option<String>)>,
    /// Each actor's delivery guarantee, in actor order.
    pub(crate) deliveries: Vec<crate::Delivery>,
    /// Each actor's envelope, in actor order.
    pub(crate) envelopes: Vec<crate::Envelope>,
}
