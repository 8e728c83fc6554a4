//! [`Node::start`]: from a validated node to a running one. The broker
//! (the embedded one, started here), the tracer and the admin endpoint
//! first; then, before any actor starts, the schema registry, the first
//! contact with the cluster and the missing topics (changelogs last,
//! with their inputs' partition counts), so that wrong
//! credentials, certificates or schemas stop the node naming why; then
//! one supervisor per actor.

use std::collections::HashMap;
use std::sync::Arc;
#[cfg(feature = "admin")]
use std::sync::atomic::Ordering;

use futures::channel::oneshot;
use tokio::sync::watch;

use super::running::RunningNode;
use super::validated::Node;
use crate::delivery::policy::Delivery;
use crate::error::{Error, Result};
use crate::kafka::broker::{Broker, EmbeddedBroker};
use crate::kafka::changelogs::ensure_changelogs;
use crate::kafka::connect::first_contact_of;
use crate::kafka::topics::ensure_topics;
#[cfg(feature = "admin")]
use crate::ops::admin::{Admin, AdminActor, AdminServer, serve};
use crate::ops::trace::{Traced, Tracer};
use crate::supervisor::{Env, Launch, NodeControl, Reads, Supervision, supervise};

use super::builder::NodeBuilder;

impl Node {
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
        let changelogs = self.changelogs();
        let b = self.builder;
        let (bootstrap, embedded) = broker(&b.broker)?;
        let settings = Node::settings_of(&b, bootstrap.clone(), embedded.is_some());
        if embedded.is_some() {
            warn_of_state_without_transactional_offsets(&infos);
        }
        let tracer = traced(&b)?;
        // Before the cluster: an address it cannot bind stops the node
        // before it touches Kafka.
        #[cfg(feature = "admin")]
        let admin = admin(&b)?;
        // Wrong credentials or certificates stop the node here, saying
        // which, before any actor starts; so does a schema the registry
        // refuses.
        let contact = async {
            let registered = Node::registered(b.schema_registry.clone(), &infos, registry).await?;
            first_contact_of(&settings).await?;
            ensure_topics(&settings, embedded.as_ref(), &topics).await?;
            let state_partitions =
                ensure_changelogs(&settings, embedded.as_ref(), &changelogs).await?;
            Ok::<_, Error>((registered, state_partitions))
        };
        let ((registry, schema_ids), state_partitions) = match contact.await {
            Ok(registered) => registered,
            Err(error) => {
                #[cfg(feature = "admin")]
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
            tracer: tracer.as_ref().map(|t| Tracer::new(&t.provider)),
            state_partitions,
        });
        let (stop, stop_rx) = watch::channel(false);
        let control = Arc::new(NodeControl {
            stop,
            halted: std::sync::Mutex::new(None),
        });
        let mut running = RunningNode {
            name: b.name.clone(),
            bootstrap,
            embedded,
            control: control.clone(),
            supervisors: Vec::new(),
            stats: HashMap::new(),
            #[cfg(feature = "admin")]
            admin,
            tracer,
            settings: env.settings.clone(),
            actors: infos,
        };
        let starts = supervise_all(b, &env, &control, &stop_rx, &mut running);
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

/// The embedded broker keeps no transactional offsets: an exactly-once
/// actor there reads its input from the start after a restart or a
/// rebalance, so its outputs repeat and what its stores hold counts
/// records again. Said once per such actor with stores, at start.
fn warn_of_state_without_transactional_offsets(infos: &[crate::topology::ActorInfo]) {
    for actor in exactly_once_state(infos) {
        tracing::warn!(
                actor = %actor,
                "exactly-once state on the embedded broker: it keeps no transactional offsets, \
                 so after a restart or a rebalance the actor reads its input from the start and \
                 its stores count those records again; run exactly-once state on Apache Kafka"
        );
    }
}

/// The actors of `infos` with stores that deliver exactly once.
fn exactly_once_state(infos: &[crate::topology::ActorInfo]) -> Vec<&str> {
    infos
        .iter()
        .filter(|info| !info.stores.is_empty() && info.delivery == Delivery::ExactlyOnce)
        .map(|info| info.name.as_str())
        .collect()
}

/// Where the node's Kafka is: its bootstrap servers, and the embedded
/// broker (started now) when it is one.
fn broker(broker: &Broker) -> Result<(String, Option<EmbeddedBroker>)> {
    Ok(match broker {
        Broker::Embedded => {
            let broker = EmbeddedBroker::start()?;
            (broker.bootstrap_servers().to_owned(), Some(broker))
        }
        Broker::InProcess(broker) => (broker.bootstrap_servers().to_owned(), Some(broker.clone())),
        Broker::Bootstrap(servers) => (servers.clone(), None),
    })
}

/// The node's tracer provider: the one it was given, or one it builds
/// from its tracing settings; none without either.
fn traced(b: &NodeBuilder) -> Result<Option<Traced>> {
    Ok(match (&b.tracer_provider, &b.tracing) {
        (Some(provider), _) => Some(Traced {
            provider: provider.clone(),
            owned: false,
        }),
        #[cfg(feature = "otlp")]
        (None, Some(tracing)) => Some(Traced {
            provider: tracing.provider(&b.name)?,
            owned: true,
        }),
        // `build` refuses tracing settings without the feature.
        #[cfg(not(feature = "otlp"))]
        (None, Some(_)) => None,
        (None, None) => None,
    })
}

/// The admin endpoint, serving already, when the node has one.
#[cfg(feature = "admin")]
fn admin(b: &NodeBuilder) -> Result<Option<AdminServer>> {
    let Some(addr) = b.admin else {
        return Ok(None);
    };
    for (_, stats) in &b.actors {
        stats.timed.store(true, Ordering::Relaxed);
    }
    let actors = b
        .actors
        .iter()
        .map(|(factory, stats)| AdminActor {
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
            stores: factory.stores().iter().map(|s| s.name.clone()).collect(),
            stats: stats.clone(),
        })
        .collect();
    let admin = Admin::new(b.name.clone(), actors, b.admin_token.clone());
    serve(addr, admin).map(Some)
}

/// Starts one supervisor per actor; returns, per actor, where it says
/// whether its first instance started.
fn supervise_all(
    b: NodeBuilder,
    env: &Arc<Env>,
    control: &Arc<NodeControl>,
    stop: &watch::Receiver<bool>,
    running: &mut RunningNode,
) -> Vec<(String, oneshot::Receiver<Result<()>>)> {
    let policies = Node::policies_of(&b);
    let deliveries: Vec<Delivery> = b
        .actors
        .iter()
        .map(|(a, _)| Node::delivery_of(&b, a.name()))
        .collect();
    let mut starts = Vec::new();
    let actors = b.actors.into_iter().zip(policies).zip(deliveries);
    for (((factory, stats), (policy, dead_letter)), delivery) in actors {
        let name = factory.name().to_owned();
        let (started_tx, started_rx) = oneshot::channel();
        running.stats.insert(name.clone(), stats.clone());
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
        let task = actix::spawn(supervise(supervision, stop.clone(), started_tx));
        running.supervisors.push((name.clone(), task));
        starts.push((name, started_rx));
    }
    starts
}
