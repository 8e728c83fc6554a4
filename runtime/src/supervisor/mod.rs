//! The supervisor: starts each actor instance on its own thread
//! ([`instance`]), restarts it when it fails within its restart budget, and
//! stops it with a drain. [`replay`] is what an instance replaying dead
//! letters reads.
//!
//! Owns: an actor's instances over its life, and its restart budget. May
//! import every subsystem below it (`feed` and down). Imported by: `node`
//! and `sim` (which run the same `supervise` loop).

mod instance;
mod replay;
mod restarter;
mod stateful;

use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::delivery::attempts::Failures;
use crate::delivery::failure::Failure;
use crate::delivery::policy::{Delivery, FailurePolicy};
use crate::error::{Error, Result};
use crate::feed::Exit;
use crate::ops::stats::{ActorState, ActorStats};

#[cfg(feature = "testing")]
pub(crate) use instance::Wiring;
pub(crate) use instance::{ActorFactory, Env, Factory, Instance};
pub(crate) use replay::{Reads, Replay};
#[cfg(feature = "testing")]
pub(crate) use restarter::MAX_BACKOFF;
use restarter::{Restarter, Then};

/// How long a stopping actor may take to drain before it is dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What every supervisor of a node shares: the node's stop switch, which a
/// supervisor throws when its actor's restart budget says stop the node.
#[derive(Debug)]
pub(crate) struct NodeControl {
    pub(crate) stop: watch::Sender<bool>,
    /// Why the node stopped itself, if it did.
    pub(crate) halted: std::sync::Mutex<Option<String>>,
}

impl NodeControl {
    fn halt(&self, reason: String) {
        if let Ok(mut halted) = self.halted.lock() {
            halted.get_or_insert(reason);
        }
        let _ = self.stop.send(true);
    }
}

/// Where a supervisor starts its actor's instances.
pub(crate) enum Launch {
    /// On threads of their own, as clients of a Kafka cluster.
    Node(Arc<Env>),
    /// By a launcher the runtime reaches through a trait object (the
    /// simulator's, on the simulation's one thread).
    #[cfg(feature = "testing")]
    Dyn(Box<dyn Launcher>),
}

/// What starts an actor's instances when they are not Kafka clients on
/// threads of their own: the simulator implements it, and wires each
/// instance with [`ActorFactory::spawn_wired`].
#[cfg(feature = "testing")]
pub(crate) trait Launcher: Send + Sync {
    /// Builds and starts an instance of `factory`'s actor reading `mode`.
    fn spawn(
        &self,
        factory: &dyn ActorFactory,
        failures: &Failures,
        mode: &Reads,
    ) -> Result<Instance>;
}

impl Launch {
    fn spawn(
        &self,
        factory: &dyn ActorFactory,
        failures: &Failures,
        mode: &Reads,
    ) -> Result<Instance> {
        match self {
            Launch::Node(env) => factory.spawn(env, failures, mode),
            #[cfg(feature = "testing")]
            Launch::Dyn(launcher) => launcher.spawn(factory, failures, mode),
        }
    }
}

/// One actor's supervision: its policy and the state it keeps across restarts.
pub(crate) struct Supervision {
    pub(crate) factory: Arc<dyn ActorFactory>,
    pub(crate) launch: Launch,
    pub(crate) stats: Arc<ActorStats>,
    pub(crate) policy: Arc<FailurePolicy>,
    pub(crate) dead_letter: Option<String>,
    pub(crate) delivery: Delivery,
    pub(crate) control: Arc<NodeControl>,
    pub(crate) mode: Reads,
}

/// Supervises one actor until `stop` turns true. Reports the first start's
/// outcome on `started`.
pub(crate) async fn supervise(
    supervision: Supervision,
    mut stop: watch::Receiver<bool>,
    started: oneshot::Sender<Result<()>>,
) {
    let Supervision {
        factory,
        launch,
        stats,
        policy,
        dead_letter,
        delivery,
        control,
        mode,
    } = supervision;
    let failures = Failures {
        policy: policy.clone(),
        attempts: Arc::default(),
        dead_letter: dead_letter.map(Into::into),
        transactional: delivery == Delivery::ExactlyOnce,
        refused: Arc::default(),
    };
    let name = factory.name().to_owned();
    let mut started = Some(started);
    let mut restarter = Restarter::new(name.clone(), policy, stats.clone());
    loop {
        let began = Instant::now();
        let exit = match launch.spawn(&*factory, &failures, &mode) {
            Ok(instance) => match run(instance, &name, &stats, &mut started, &mut stop).await {
                Some(exit) => exit,
                // The first start failed; `started` says why.
                None => return,
            },
            Err(error) => {
                if let Some(started) = started.take() {
                    let _ = started.send(Err(error));
                    return;
                }
                // Counted like any failure: a restart that cannot build
                // its instance spends the budget, and stops the actor
                // when it keeps failing.
                Exit::Failed(Failure::Start(format!(
                    "cannot build a new instance: {}",
                    crate::error::chain(&error)
                )))
            }
        };
        let stopping = *stop.borrow();
        match restarter.after(exit, began.elapsed(), stopping, failures.refused.get()) {
            Then::Done => {
                stats.set_state(ActorState::Stopped);
                return;
            }
            Then::StopNode(budget) => {
                control.halt(budget);
                return;
            }
            Then::Restart(backoff) => {
                stats.set_state(ActorState::Restarting);
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Waits for a spawned instance to start, reporting the first start on
/// `started`, then until it exits or `stop` asks it to drain. `None` when
/// the first start failed (reported, nothing to restart).
async fn run(
    mut instance: Instance,
    name: &str,
    stats: &ActorStats,
    started: &mut Option<oneshot::Sender<Result<()>>>,
    stop: &mut watch::Receiver<bool>,
) -> Option<Exit> {
    if let Some(ready) = instance.ready.take() {
        let outcome = match ready.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(Error::ActorStart {
                actor: name.to_owned(),
                source,
            }),
            Err(_) => Err(Error::ActorStart {
                actor: name.to_owned(),
                source: "its thread ended before it started".into(),
            }),
        };
        if outcome.is_ok() {
            stats.set_state(ActorState::Running);
        }
        match (outcome, started.take()) {
            (Ok(()), Some(started)) => {
                let _ = started.send(Ok(()));
            }
            (Err(error), Some(started)) => {
                let _ = started.send(Err(error));
                instance.join().await;
                return None;
            }
            // Its exit says it failed, and is counted.
            (Err(error), None) => {
                tracing::error!(actor = %name, error = %crate::error::chain(&error), "actor failed to restart");
            }
            (Ok(()), None) => {}
        }
    }
    // Biased: the simulator runs this loop too, and must decide alike
    // every time.
    let exit = tokio::select! {
        biased;
        exit = &mut instance.exit => exit.unwrap_or(Exit::Failed(Failure::Lost("the actor's thread ended".into()))),
        _ = stop.wait_for(|stop| *stop) => {
            if let Some(tx) = instance.stop.take() {
                let _ = tx.send(());
            }
            match tokio::time::timeout(DRAIN_TIMEOUT, &mut instance.exit).await {
                Ok(Ok(exit)) => exit,
                Ok(Err(_)) => Exit::Failed(Failure::Lost("the actor's thread ended while draining".into())),
                Err(_) => Exit::Failed(Failure::Lost(format!("drain took longer than {DRAIN_TIMEOUT:?}"))),
            }
        }
    };
    instance.join().await;
    Some(exit)
}

/// Sleeps, unless asked to stop first; returns whether to stop.
async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        biased;
        _ = tokio::time::sleep(delay) => true,
        _ = stop.wait_for(|stop| *stop) => false,
    };
    !slept || *stop.borrow()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::actor::SubscriptionInfo;
    use crate::wire::codec::SchemaRegistry;

    /// An actor whose first instance fails and whose every restart cannot
    /// even be built.
    struct Unbuildable {
        spawned: AtomicU32,
    }

    impl ActorFactory for Unbuildable {
        fn name(&self) -> &str {
            "unbuildable"
        }
        fn output(&self) -> &str {
            "out"
        }
        fn output_type(&self) -> &str {
            "t"
        }
        fn output_schemas(&self) -> Vec<apache_avro::Schema> {
            vec![apache_avro::Schema::Null]
        }
        fn subscriptions(&self) -> &[SubscriptionInfo] {
            &[]
        }
        fn register_schemas(&self, _: &mut SchemaRegistry) {}
        fn preferred_envelope(&self) -> Option<crate::Envelope> {
            None
        }
        fn spawn(&self, _: &Env, _: &Failures, _: &Reads) -> Result<Instance> {
            if self.spawned.fetch_add(1, Ordering::SeqCst) > 0 {
                return Err(Error::Shutdown {
                    actor: "unbuildable".into(),
                    reason: "no instance for you".into(),
                });
            }
            let (exit_tx, exit) = oneshot::channel();
            exit_tx
                .send(Exit::Failed(Failure::Lost(
                    "the first instance failed".into(),
                )))
                .ok();
            let (ready_tx, ready) = oneshot::channel();
            ready_tx.send(Ok(())).ok();
            Ok(Instance {
                arbiter: None,
                stop: None,
                exit,
                ready: Some(ready),
            })
        }
        #[cfg(feature = "testing")]
        fn spawn_wired(&self, _: Wiring<'_>, _: &Failures) -> Result<Instance> {
            unreachable!()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_that_cannot_build_its_instance_spends_the_budget() {
        let factory = Arc::new(Unbuildable {
            spawned: AtomicU32::new(0),
        });
        let stats = Arc::new(ActorStats::default());
        let (stop_tx, stop) = watch::channel(false);
        let policy = FailurePolicy::default();
        let supervision = Supervision {
            factory: factory.clone(),
            launch: Launch::Node(Arc::new(Env {
                tracer: None,
                settings: crate::kafka::settings::ClientSettings {
                    bootstrap: "127.0.0.1:9".into(),
                    node: "n".into(),
                    embedded: false,
                    commit_interval: Duration::from_secs(1),
                    transaction_timeout: Duration::from_secs(1),
                    common: vec![],
                    consumer: vec![],
                    producer: vec![],
                },
                registry: SchemaRegistry::new(),
                envelopes: Default::default(),
                state_partitions: Default::default(),
                schema_ids: Default::default(),
            })),
            stats: stats.clone(),
            policy: Arc::new(policy.clone()),
            dead_letter: None,
            delivery: Delivery::AtLeastOnce,
            control: Arc::new(NodeControl {
                stop: stop_tx,
                halted: Mutex::default(),
            }),
            mode: Reads::Live,
        };
        let (started_tx, started) = oneshot::channel();
        // It ends by itself: the budget is spent.
        tokio::time::timeout(
            Duration::from_secs(3600),
            supervise(supervision, stop, started_tx),
        )
        .await
        .expect("the supervisor gives up");
        started.await.unwrap().expect("the first instance started");
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.restarts, u64::from(policy.max_restarts));
        assert!(snapshot.unhealthy);
        let why = stats.stopped_because.lock().unwrap().clone().unwrap();
        assert!(why.contains("cannot build a new instance"), "{why}");
        assert!(why.contains("no instance for you"), "{why}");
        assert_eq!(
            factory.spawned.load(Ordering::SeqCst),
            policy.max_restarts + 1
        );
    }
}
