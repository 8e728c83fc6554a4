//! Building one actor instance: its producer, its consumer, its routes
//! and its publisher, then the actor itself on a thread of its own with
//! its feed.

use std::sync::Arc;

use actix::{Arbiter, AsyncContext, Context};
use futures::channel::oneshot;
use rdkafka::consumer::Consumer as _;

use super::Reads;
use crate::actor::{Routes, SubscriptionInfo, Subscriptions, SwitchRoute, TopicActor};
use crate::delivery::attempts::Failures;
use crate::delivery::failure::Failure;
use crate::error::{Error, Result};
use crate::feed::{ActorConsumer, Exit, Feed, FeedParts, Reading, Rebalances};
use crate::kafka::settings::ClientSettings;
use crate::ops::stats::ActorStats;
use crate::publisher::{KafkaProducer, Publisher, PublisherCore, Sink};
use crate::state::reading::ChangelogReading;
use crate::state::{StoreInfo, changelog_topic};
use crate::wire::codec::{SchemaRegistry, full_name};

/// An actor as the node sees it, whatever its type.
pub(crate) trait ActorFactory: Send + Sync {
    fn name(&self) -> &str;
    fn output(&self) -> &str;
    fn output_type(&self) -> &str;
    fn output_schemas(&self) -> Vec<apache_avro::Schema>;
    fn subscriptions(&self) -> &[SubscriptionInfo];
    /// The stores it declares, their changelogs named.
    fn stores(&self) -> &[StoreInfo] {
        &[]
    }
    /// The requests it declares it asks.
    fn asks(&self) -> &[crate::actor::AskInfo] {
        &[]
    }
    fn register_schemas(&self, registry: &mut SchemaRegistry);
    fn preferred_envelope(&self) -> Option<crate::Envelope>;
    fn spawn(&self, env: &Env, failures: &Failures, mode: &Reads) -> Result<Instance>;
    /// Builds an instance from the clients `wiring` gives and starts it
    /// on the current thread (a simulation's).
    #[cfg(feature = "testing")]
    fn spawn_wired(&self, wiring: Wiring<'_>, failures: &Failures) -> Result<Instance>;
}

/// The clients of an instance a [`Launcher`](super::Launcher) builds: its
/// sink and source, and what the feed needs to know of them.
#[cfg(feature = "testing")]
pub(crate) struct Wiring<'a> {
    pub(crate) sink: Sink,
    /// The flag the sink sets when a record was not delivered.
    pub(crate) undelivered: Arc<std::sync::atomic::AtomicBool>,
    /// Exactly-once: the transactional id and the transaction timeout.
    pub(crate) transactional: Option<(String, std::time::Duration)>,
    pub(crate) source: crate::feed::Boxed,
    pub(crate) input: Reading,
    pub(crate) stats: Arc<ActorStats>,
    pub(crate) store_interval: std::time::Duration,
    pub(crate) registry: &'a SchemaRegistry,
    pub(crate) node: &'a str,
    /// How the instance writes its records' metadata.
    pub(crate) envelope: crate::Envelope,
    /// How its requesters read their replies.
    pub(crate) tail: Arc<dyn crate::kafka::tail::DynTail>,
    /// How it restores its stores' partitions.
    pub(crate) changelogs: Arc<dyn crate::state::reading::DynChangelogs>,
}

/// What every instance of every actor of a node shares.
pub(crate) struct Env {
    pub(crate) settings: ClientSettings,
    pub(crate) registry: SchemaRegistry,
    /// How each actor writes its records' metadata, by name (the default
    /// for one not named).
    pub(crate) envelopes: std::collections::BTreeMap<String, crate::Envelope>,
    /// The node's tracer, when it traces.
    pub(crate) tracer: Option<crate::ops::trace::Tracer>,
    /// Of each actor writing in the schema registry's framing, by name:
    /// the registry id of each schema it writes.
    pub(crate) schema_ids: std::collections::BTreeMap<
        String,
        Arc<std::collections::HashMap<crate::wire::codec::Fingerprint, u32>>,
    >,
    /// Of each actor with stores, by name: its input's partition count.
    pub(crate) state_partitions: std::collections::BTreeMap<String, i32>,
}

pub(crate) struct Factory<A: TopicActor> {
    pub(crate) name: String,
    pub(crate) output: String,
    output_type: String,
    pub(crate) args: A::Args,
    pub(crate) subscriptions: Subscriptions<A>,
    infos: Vec<SubscriptionInfo>,
    pub(super) stores: Vec<StoreInfo>,
    pub(crate) stats: Arc<ActorStats>,
}

impl<A: TopicActor> Factory<A> {
    pub(crate) fn new(name: String, output: String, args: A::Args, stats: Arc<ActorStats>) -> Self {
        let subscriptions = Subscriptions::<A>::of(&args);
        let infos = subscriptions.infos().cloned().collect();
        let stores = subscriptions
            .stores
            .iter()
            .map(|decl| StoreInfo {
                changelog: changelog_topic(&output, &decl.info.name),
                ..decl.info.clone()
            })
            .collect();
        Self {
            name,
            output,
            output_type: output_type(&<A::Output as crate::Records>::schemas()),
            args,
            subscriptions,
            infos,
            stores,
            stats,
        }
    }
}

/// The name of what an actor writes: its one type's full name, its types'
/// joined by ` | `, or `json` for values written as JSON.
fn output_type(schemas: &[apache_avro::Schema]) -> String {
    if schemas.is_empty() {
        return "json".to_owned();
    }
    schemas
        .iter()
        .map(full_name)
        .collect::<Vec<_>>()
        .join(" | ")
}

impl<A: TopicActor> Factory<A> {
    /// The decoders of the actor's subscriptions, by topic.
    pub(crate) fn routes(&self, registry: &SchemaRegistry) -> Result<Routes<A>> {
        let mut routes: Routes<A> = Routes::new();
        // The bindings by type or prefix of each topic, gathered into one
        // route that tells its records apart.
        let mut switches: Vec<(&SubscriptionInfo, SwitchRoute<A>)> = Vec::new();
        for sub in &self.subscriptions.entries {
            let route = (sub.make_route)(registry)?;
            if sub.info.binding.is_whole() {
                routes.add(&sub.info, route)?;
                continue;
            }
            let at = match switches.iter().position(|(i, _)| i.topic == sub.info.topic) {
                Some(at) => at,
                None => {
                    let strict = self
                        .subscriptions
                        .dead_letter_unhandled
                        .contains(&sub.info.topic);
                    switches.push((&sub.info, SwitchRoute::new(registry, strict)));
                    switches.len() - 1
                }
            };
            switches[at].1.add(&sub.info, route);
        }
        for (info, switch) in switches {
            routes.add(info, Box::new(switch.finish()))?;
        }
        routes.timers = self.subscriptions.timers.clone();
        Ok(routes)
    }
}

impl<A: TopicActor> ActorFactory for Factory<A> {
    fn name(&self) -> &str {
        &self.name
    }

    fn output(&self) -> &str {
        &self.output
    }

    fn output_type(&self) -> &str {
        &self.output_type
    }

    fn output_schemas(&self) -> Vec<apache_avro::Schema> {
        <A::Output as crate::Records>::schemas()
    }

    fn subscriptions(&self) -> &[SubscriptionInfo] {
        &self.infos
    }

    fn stores(&self) -> &[StoreInfo] {
        &self.stores
    }

    fn asks(&self) -> &[crate::actor::AskInfo] {
        &self.subscriptions.asks
    }

    fn preferred_envelope(&self) -> Option<crate::Envelope> {
        A::envelope()
    }

    fn register_schemas(&self, registry: &mut SchemaRegistry) {
        for schema in <A::Output as crate::Records>::schemas() {
            registry.insert(schema);
        }
        for sub in &self.subscriptions.entries {
            // A subscription's own type is a writer schema too: its upstream
            // may be built with the same version.
            registry.insert(sub.info.schema.clone());
        }
        for store in &self.stores {
            registry.insert(store.key_schema.clone());
            registry.insert(store.value_schema.clone());
        }
    }

    #[cfg(feature = "testing")]
    fn spawn_wired(&self, wiring: Wiring<'_>, failures: &Failures) -> Result<Instance> {
        if !self.stores.is_empty() && !matches!(wiring.input, Reading::Subscribed) {
            return Err(self.no_stores_replay());
        }
        let mut core = PublisherCore::new(
            wiring.sink,
            self.output.as_str().into(),
            format!("{}/{}", wiring.node, self.name),
        )
        .reporting_to(wiring.undelivered)
        .envelope(wiring.envelope)
        .asking(crate::publisher::Asking {
            reading: crate::kafka::tail::TailReading::Dyn(wiring.tail),
            registry: wiring.registry.clone(),
            actor: self.name.clone(),
        })
        .stores(self.state(wiring.registry, failures.transactional)?);
        if let Some((id, timeout)) = wiring.transactional {
            core = core.transactional(id, timeout);
        }
        let core = Arc::new(core);
        let publisher = Publisher::<A::Output>::new(core.clone())?;
        let routes = self.routes(wiring.registry)?;
        let state = self.restores(
            &crate::state::reading::ChangelogReading::Dyn(wiring.changelogs),
            &core,
            &routes,
            failures.transactional,
            None,
        )?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        start::<A, crate::feed::Boxed>(
            self.args.clone(),
            publisher,
            FeedParts {
                actor: self.name.as_str().into(),
                consumer: Some(Arc::new(wiring.source)),
                routes,
                core,
                stats: wiring.stats,
                store_interval: wiring.store_interval,
                failures: failures.clone(),
                input: wiring.input,
                state,
            },
            stop_rx,
            exit_tx,
            ready_tx,
        );
        Ok(Instance {
            arbiter: None,
            stop: Some(stop_tx),
            exit: exit_rx,
            ready: Some(ready_rx),
        })
    }

    fn spawn(&self, env: &Env, failures: &Failures, mode: &Reads) -> Result<Instance> {
        if !self.stores.is_empty() && !matches!(mode, Reads::Live) {
            return Err(self.no_stores_replay());
        }
        let core = Arc::new(self.kafka_core(env, failures, mode)?);
        let publisher = Publisher::<A::Output>::new(core.clone())?;
        let routes = self.routes(&env.registry)?;
        let (consumer, input) = self.kafka_consumer(env, failures, mode, &routes)?;
        let reading = ChangelogReading::Kafka {
            settings: env.settings.clone(),
            group: self.name.clone(),
        };
        let state = self.restores(
            &reading,
            &core,
            &routes,
            failures.transactional,
            env.state_partitions.get(&self.name).copied(),
        )?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let args = self.args.clone();
        let parts = FeedParts {
            actor: self.name.as_str().into(),
            consumer,
            routes,
            core: core.clone(),
            stats: self.stats.clone(),
            store_interval: crate::feed::store_interval(
                env.settings.commit_interval,
                failures.transactional,
            ),
            failures: failures.clone(),
            input,
            state,
        };
        let arbiter = Arbiter::new();
        let spawned = arbiter.spawn_fn(move || {
            // On the actor's thread: it waits for the broker, which fences
            // any older instance and settles its open transaction.
            if let Err(error) = core.init_transactions() {
                let reason = crate::error::chain(&error);
                let _ = ready_tx.send(Err(reason.clone().into()));
                let _ = exit_tx.send(Exit::Failed(Failure::Transaction(reason)));
                return;
            }
            start::<A, ActorConsumer>(args, publisher, parts, stop_rx, exit_tx, ready_tx);
        });
        if !spawned {
            return Err(Error::Shutdown {
                actor: self.name.clone(),
                reason: "its thread is gone".into(),
            });
        }
        Ok(Instance {
            arbiter: Some(arbiter),
            stop: Some(stop_tx),
            exit: exit_rx,
            ready: Some(ready_rx),
        })
    }
}

impl<A: TopicActor> Factory<A> {
    /// What an instance on Kafka publishes through: its own producer (as
    /// its transactional id under exactly-once), the node's envelope,
    /// registry ids, tracer, and a Kafka reader for its requesters.
    fn kafka_core(&self, env: &Env, failures: &Failures, mode: &Reads) -> Result<PublisherCore> {
        // Exactly-once: the transactional id is the actor's identity on the
        // cluster, so a second live instance fences the first; a replay is
        // an identity of its own, so it does not fence the live node.
        let transactional_id = failures.transactional.then(|| match mode {
            Reads::Live => env.settings.transactional_id(&self.name),
            Reads::Replay(_) => format!("{}.dlq-replay", env.settings.transactional_id(&self.name)),
        });
        let KafkaProducer {
            producer,
            undelivered,
            max_message_bytes,
        } = KafkaProducer::create(
            &env.settings,
            &self.name,
            transactional_id.as_deref(),
            self.stats.clone(),
            failures.refused.clone(),
            |_| {},
        )?;
        let mut core = PublisherCore::new(
            Sink::Kafka(producer),
            self.output.as_str().into(),
            format!("{}/{}", env.settings.node, self.name),
        )
        .max_message_bytes(max_message_bytes)
        .reporting_to(undelivered)
        .envelope(env.envelopes.get(&self.name).copied().unwrap_or_default())
        .schema_ids(env.schema_ids.get(&self.name).cloned())
        .asking(crate::publisher::Asking {
            reading: crate::kafka::tail::TailReading::Kafka(env.settings.clone()),
            registry: env.registry.clone(),
            actor: self.name.clone(),
        })
        .traced(env.tracer.clone())
        .stores(self.state(&env.registry, failures.transactional)?);
        if let Some(id) = transactional_id {
            core = core.transactional(id, env.settings.transaction_timeout);
        }
        Ok(core)
    }

    /// An instance's Kafka consumer, subscribed to what `routes` read (or
    /// assigned the dead letters a replay reads); none for an actor that
    /// reads nothing.
    fn kafka_consumer(
        &self,
        env: &Env,
        failures: &Failures,
        mode: &Reads,
        routes: &Routes<A>,
    ) -> Result<(Option<Arc<ActorConsumer>>, Reading)> {
        if routes.is_empty() {
            return Ok((None, Reading::Subscribed));
        }
        let mut config = env.settings.consumer(&self.name, failures.transactional);
        if let Reads::Replay(replay) = mode {
            config.set("group.id", &replay.group);
        }
        let consumer: ActorConsumer = config
            .create_with_context(
                Rebalances::reporting_to(self.stats.clone(), &config)
                    .holding_back(!self.stores.is_empty()),
            )
            .map_err(|e| {
                Error::kafka(
                    format!("cannot create consumer of actor `{}`", self.name),
                    e,
                )
            })?;
        let input = match mode {
            Reads::Live => {
                let subscription = routes.subscription();
                let topics: Vec<&str> = subscription.iter().map(String::as_str).collect();
                consumer.subscribe(&topics).map_err(|e| {
                    Error::kafka(format!("actor `{}` cannot subscribe", self.name), e)
                })?;
                Reading::Subscribed
            }
            Reads::Replay(replay) => replay.assign(&consumer)?,
        };
        Ok((Some(Arc::new(consumer)), input))
    }
}

/// Builds the actor through its constructor and starts its feed, on the
/// current (the actor's) thread.
fn start<A: TopicActor, S: crate::feed::Source>(
    args: A::Args,
    publisher: Publisher<A::Output>,
    parts: FeedParts<A, S>,
    stop: oneshot::Receiver<()>,
    exit: oneshot::Sender<Exit>,
    ready: oneshot::Sender<std::result::Result<(), crate::ActorError>>,
) {
    match <A as TopicActor>::create(args, publisher) {
        Ok(act) => {
            let feed = Feed::new(parts, stop, exit);
            let mut ctx = Context::<A>::new();
            ctx.spawn(feed);
            ctx.run(act);
            let _ = ready.send(Ok(()));
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            let _ = exit.send(Exit::Failed(Failure::Start("constructor failed".into())));
        }
    }
}

/// One running instance of an actor, on its own thread.
pub(crate) struct Instance {
    /// Its thread; none in a simulation (it runs on the simulation's).
    pub(crate) arbiter: Option<Arbiter>,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) exit: oneshot::Receiver<Exit>,
    pub(crate) ready: Option<oneshot::Receiver<std::result::Result<(), crate::ActorError>>>,
}

impl Instance {
    /// Stops the thread and waits until it is gone (the consumer is closed
    /// and has left its group by then).
    pub(super) async fn join(mut self) {
        if let Some(arbiter) = self.arbiter.take() {
            arbiter.stop();
            let _ = tokio::task::spawn_blocking(move || arbiter.join()).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Dropped without a drain (the node was dropped): stop at once.
        if let Some(arbiter) = self.arbiter.take() {
            arbiter.stop();
        }
    }
}
