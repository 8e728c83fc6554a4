//! Replaying an actor's dead letters: [`Node::replay_dead_letters`].

use std::sync::Arc;

use futures::channel::oneshot;
use tokio::sync::watch;

use crate::delivery::policy::OverBudget;
use crate::error::{Error, Result};
use crate::kafka::broker::Broker;
use crate::supervisor::{Env, Launch, NodeControl, Reads, Replay, Supervision, supervise};

use super::validated::Node;

impl Node {
    /// Points the node at another broker (tools given `--bootstrap`).
    pub fn set_broker(&mut self, broker: Broker) {
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
        let infos = self.actors();
        let b = self.builder;
        let index = b
            .actors
            .iter()
            .position(|(a, _)| a.name() == actor)
            .ok_or_else(|| Error::UnknownActor {
                actor: actor.to_owned(),
            })?;
        let policy = Node::policy_of(&b, actor);
        let delivery = Node::delivery_of(&b, actor);
        let topic = Node::dead_letter_of(&b, &*b.actors[index].0).ok_or_else(|| {
            failed(
                "it has no dead-letter topic: it reads nothing, or its failure policy stops it instead"
                    .into(),
            )
        })?;
        let bootstrap = replay_bootstrap(&b.broker).map_err(failed)?;
        let settings = Node::settings_of(&b, bootstrap, matches!(b.broker, Broker::InProcess(_)));
        let envelopes = Node::envelopes_of(&b);
        let (registry, schema_ids) =
            Node::registered(b.schema_registry.clone(), &infos, registry).await?;
        crate::kafka::connect::first_contact_of(&settings).await?;
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
            let env = Env {
                tracer: None,
                settings,
                registry,
                envelopes,
                schema_ids,
                // Replays refuse actors with stores.
                state_partitions: Default::default(),
            };
            let run = Run {
                factory,
                stats: stats.clone(),
                env,
                policy,
                delivery,
            };
            run.until_the_end(&replay).await.map_err(|e| match e {
                Ended::Error(error) => error,
                Ended::Stopped(why) => failed(why),
            })?;
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

/// Where a replay reads: the cluster the node runs on (an embedded broker
/// would start empty); or why it cannot.
fn replay_bootstrap(broker: &Broker) -> std::result::Result<String, String> {
    match broker {
        Broker::Embedded => Err(
            "its node's broker is embedded, and a new embedded broker starts empty: \
             replay against the cluster the node runs on (its bootstrap servers)"
                .into(),
        ),
        Broker::InProcess(broker) => Ok(broker.bootstrap_servers().to_owned()),
        Broker::Bootstrap(servers) => Ok(servers.clone()),
    }
}

/// The actor a replay runs, and what it runs with.
struct Run {
    factory: Arc<dyn crate::supervisor::ActorFactory>,
    stats: Arc<crate::ops::stats::ActorStats>,
    env: Env,
    policy: crate::delivery::policy::FailurePolicy,
    delivery: crate::delivery::policy::Delivery,
}

/// Why a replay ended before its end.
enum Ended {
    /// The actor could not start.
    Error(Error),
    /// It stopped for good, saying why.
    Stopped(String),
}

impl Run {
    /// Runs the actor's supervisor over `replay` until the replay is past
    /// its ends, or the actor stops for good.
    async fn until_the_end(self, replay: &Replay) -> std::result::Result<(), Ended> {
        let mut policy = self.policy;
        // Past its budget the replay stops, saying why.
        policy.over_budget = OverBudget::StopNode;
        let (stop, stop_rx) = watch::channel(false);
        let control = Arc::new(NodeControl {
            stop,
            halted: std::sync::Mutex::new(None),
        });
        let supervision = Supervision {
            factory: self.factory,
            launch: Launch::Node(Arc::new(self.env)),
            stats: self.stats.clone(),
            dead_letter: Some(replay.topic.clone()),
            policy: Arc::new(policy),
            delivery: self.delivery,
            control: control.clone(),
            mode: Reads::Replay(Arc::new(replay.clone())),
        };
        let (started_tx, started_rx) = oneshot::channel();
        supervise(supervision, stop_rx, started_tx).await;
        if let Ok(Err(error)) = started_rx.await {
            return Err(Ended::Error(error));
        }
        if self
            .stats
            .unhealthy
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let why = control.halted.lock().ok().and_then(|h| h.clone());
            return Err(Ended::Stopped(format!(
                "it stopped before the end ({}); what it finished is committed in group `{}`",
                why.as_deref().unwrap_or("stopped by its failure policy"),
                replay.group
            )));
        }
        Ok(())
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
