//! [`Node`]: many actors in one process, wired through Kafka. Described
//! by a [`NodeBuilder`] ([`builder`]), validated into a [`Node`] (here),
//! started into a [`RunningNode`] ([`running`]); [`replay`] sends an
//! actor's dead letters back to it.

mod builder;
mod replay;
mod running;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use tokio::sync::watch;

use crate::broker::{Broker, EmbeddedBroker};
use crate::codec::SchemaRegistry;
use crate::error::{Error, Result};
use crate::kafka::{ClientSettings, ensure_topics};
use crate::policy::{Delivery, FailurePolicy};
use crate::supervisor::{ActorFactory, Env, Launch, NodeControl, Reads, Supervision, supervise};
use crate::topic::TopicSpec;
use crate::topology::ActorInfo;

pub use builder::NodeBuilder;
pub use replay::Replayed;
pub use running::RunningNode;
pub use running::wait_for_signal;

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
            envelopes: BTreeMap::new(),
            default_envelope: crate::Envelope::default(),
            security: crate::security::Security::default(),
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

    /// The envelope set for the actor, else its kind's own
    /// ([`TopicActor::envelope`](crate::TopicActor::envelope)), else the
    /// node's default.
    fn envelope_of(b: &NodeBuilder, actor: &dyn ActorFactory) -> crate::Envelope {
        b.envelopes
            .get(actor.name())
            .copied()
            .or(actor.preferred_envelope())
            .unwrap_or(b.default_envelope)
    }

    /// Each actor's envelope, by name.
    fn envelopes_of(b: &NodeBuilder) -> BTreeMap<String, crate::Envelope> {
        b.actors
            .iter()
            .map(|(a, _)| (a.name().to_owned(), Node::envelope_of(b, &**a)))
            .collect()
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
        let topics = self.topics();
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
        NodeParts {
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
        self.builder
            .actors
            .iter()
            .map(|(a, _)| ActorInfo {
                name: a.name().to_owned(),
                output: a.output().to_owned(),
                output_type: a.output_type().to_owned(),
                output_schemas: a.output_schemas(),
                subscriptions: a.subscriptions().to_vec(),
                dead_letter_topic: Node::dead_letter_of(&self.builder, &**a),
                delivery: Node::delivery_of(&self.builder, a.name()),
                envelope: Node::envelope_of(&self.builder, &**a),
                encoding: self
                    .builder
                    .encodings
                    .get(a.name())
                    .copied()
                    .unwrap_or(self.builder.default_encoding),
                subject_strategy: self
                    .builder
                    .subject_strategies
                    .get(a.name())
                    .copied()
                    .unwrap_or(self.builder.default_subject_strategy),
                asks: a.asks().to_vec(),
            })
            .collect()
    }

    /// The schema registry the node uses, if any.
    pub fn schema_registry_settings(&self) -> Option<&crate::RegistrySettings> {
        self.builder.schema_registry.as_ref()
    }

    /// Connects to the broker (starting the embedded one if so configured),
    /// creates missing topics and starts every actor.
    ///
    /// Must be called inside an actix `System` (`#[actix::main]`,
    /// `#[actix::test]`). Returns once every actor is constructed; fails if
    /// any constructor fails, after stopping the others.
    pub async fn start(self) -> Result<RunningNode> {
        let infos = self.actors();
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
        let tracer = match (&b.tracer_provider, &b.tracing) {
            (Some(provider), _) => Some(Traced {
                provider: provider.clone(),
                owned: false,
            }),
            (None, Some(tracing)) => Some(Traced {
                provider: tracing.provider(&b.name)?,
                owned: true,
            }),
            (None, None) => None,
        };
        // Before the cluster: an address it cannot bind stops the node
        // before it touches Kafka.
        if b.admin.is_some() {
            for (_, stats) in &b.actors {
                stats
                    .timed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let admin = match b.admin {
            Some(addr) => Some(crate::admin::serve(
                addr,
                crate::admin::Admin::new(
                    b.name.clone(),
                    b.actors
                        .iter()
                        .map(|(factory, stats)| crate::admin::AdminActor {
                            name: factory.name().to_owned(),
                            output: factory.output().to_owned(),
                            subscriptions: factory
                                .subscriptions()
                                .iter()
                                .map(|s| {
                                    if s.pattern {
                                        format!("/{}/", s.topic)
                                    } else {
                                        s.topic.clone()
                                    }
                                })
                                .collect(),
                            stats: stats.clone(),
                        })
                        .collect(),
                    b.admin_token.clone(),
                ),
            )?),
            None => None,
        };

        // Wrong credentials or certificates stop the node here, saying
        // which, before any actor starts; so does a schema the registry
        // refuses.
        let contact = async {
            let registered = Node::registered(b.schema_registry.clone(), &infos, registry).await?;
            crate::connect::first_contact_of(&settings).await?;
            ensure_topics(&settings, embedded.as_ref(), &topics).await?;
            Ok::<_, Error>(registered)
        };
        let (registry, schema_ids) = match contact.await {
            Ok(registered) => registered,
            Err(error) => {
                if let Some(admin) = &admin {
                    admin.stop().await;
                }
                if let Some(tracer) = tracer {
                    tracer.close().await;
                }
                return Err(error);
            }
        };
        let env = Arc::new(Env {
            settings,
            registry,
            schema_ids,
            envelopes: Node::envelopes_of(&b),
            tracer: tracer
                .as_ref()
                .map(|t| crate::trace::Tracer::new(&t.provider)),
        });
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
            admin,
            tracer,
            settings: env.settings.clone(),
            actors: infos,
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
                launch: Launch::Node(env.clone()),
                stats,
                policy,
                dead_letter,
                delivery,
                control: control.clone(),
                mode: Reads::Live,
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

/// Of each actor writing in the schema registry's framing: the registry id
/// of each schema it writes.
pub(crate) type SchemaIds = BTreeMap<String, Arc<HashMap<crate::codec::Fingerprint, u32>>>;

impl Node {
    /// With a schema registry: registers the schemas of every actor that
    /// writes in its framing (under each actor's subjects), learns the
    /// ids already registered for what the actors read, and gives
    /// `registry` the server for ids seen later. Off the actors' thread:
    /// the calls block.
    async fn registered(
        settings: Option<crate::RegistrySettings>,
        actors: &[ActorInfo],
        registry: SchemaRegistry,
    ) -> Result<(SchemaRegistry, SchemaIds)> {
        let Some(settings) = settings else {
            return Ok((registry, SchemaIds::new()));
        };
        let actors = actors.to_vec();
        tokio::task::spawn_blocking(move || Node::register_schemas(&settings, &actors, registry))
            .await
            .map_err(|e| Error::Registry {
                url: String::new(),
                call: "registering schemas".into(),
                reason: e.to_string(),
            })?
    }

    fn register_schemas(
        settings: &crate::RegistrySettings,
        actors: &[ActorInfo],
        mut registry: SchemaRegistry,
    ) -> Result<(SchemaRegistry, SchemaIds)> {
        let client = crate::confluent::RegistryClient::new(settings)?;
        let mut ids = SchemaIds::new();
        for actor in actors {
            if actor.encoding != crate::Encoding::Confluent {
                continue;
            }
            let mut own = HashMap::new();
            for (subject, schema) in actor.subjects() {
                let id = client
                    .register(&subject, schema)
                    .map_err(|error| match error {
                        Error::Registry { url, call, reason } => Error::Registry {
                            url,
                            call: format!(
                                "actor `{}` registering its output `{}`: {call}",
                                actor.name, actor.output
                            ),
                            reason,
                        },
                        other => other,
                    })?;
                let fingerprint = registry.register_id(id, schema.clone());
                tracing::info!(actor = %actor.name, %subject, id, "schema registered");
                own.insert(fingerprint, id);
            }
            ids.insert(actor.name.clone(), Arc::new(own));
        }
        // What readers will meet, looked up now rather than per record:
        // every version under the subjects the topics they read would use.
        let mut subjects = std::collections::BTreeSet::new();
        for actor in actors {
            for sub in actor.subscriptions.iter().filter(|s| !s.pattern) {
                let ty = &sub.record_type;
                subjects.insert(format!("{}-value", sub.topic));
                if matches!(sub.binding, crate::Binding::Type | crate::Binding::Every) {
                    subjects.insert(ty.clone());
                    subjects.insert(format!("{}-{ty}", sub.topic));
                }
            }
        }
        for subject in subjects {
            for (id, schema) in client.versions(&subject)? {
                registry.register_id(id, schema);
            }
        }
        Ok((registry.with_remote(client), ids))
    }
}

/// How often, with the admin endpoint on, each client's librdkafka
/// statistics are taken (milliseconds).
const STATISTICS_MS: &str = "5000";

/// What the simulator takes from a node.
#[cfg(feature = "testing")]
pub(crate) struct NodeParts {
    pub(crate) name: String,
    pub(crate) actors: Vec<(Arc<dyn ActorFactory>, Arc<crate::stats::ActorStats>)>,
    pub(crate) topics: BTreeMap<String, TopicSpec>,
    pub(crate) registry: SchemaRegistry,
    pub(crate) commit_interval: Duration,
    /// Each actor's failure policy and dead-letter topic, in actor order.
    pub(crate) policies: Vec<(Arc<crate::FailurePolicy>, Option<String>)>,
    /// Each actor's delivery guarantee, in actor order.
    pub(crate) deliveries: Vec<crate::Delivery>,
    /// Each actor's envelope, in actor order.
    pub(crate) envelopes: Vec<crate::Envelope>,
}

/// The tracer provider of a traced node, and whether the node built it
/// (and so shuts it down) or only flushes it when it stops.
pub(crate) struct Traced {
    pub(crate) provider: opentelemetry_sdk::trace::SdkTracerProvider,
    pub(crate) owned: bool,
}

impl Traced {
    /// Exports the spans still buffered; shuts the provider down if the
    /// node built it. Off the actix thread: the export blocks.
    pub(crate) async fn close(self) {
        let closed = tokio::task::spawn_blocking(move || {
            if self.owned {
                self.provider.shutdown()
            } else {
                self.provider.force_flush()
            }
        })
        .await;
        match closed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "spans not all exported at shutdown"),
            Err(error) => tracing::warn!(%error, "spans not all exported at shutdown"),
        }
    }
}
