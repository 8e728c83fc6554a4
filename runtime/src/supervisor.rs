//! The supervisor: starts each actor instance on its own thread, restarts it
//! when it fails, and stops it with a drain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Arbiter, AsyncContext, Context};
use futures::channel::oneshot;
use rdkafka::consumer::Consumer as _;
use tokio::sync::watch;

use crate::actor::{Routes, SubscriptionInfo, Subscriptions, TopicActor};
use crate::codec::{SchemaRegistry, full_name};
use crate::error::{Error, Result};
use crate::failures::Failures;
use crate::feed::{Consumer, Exit, Feed, FeedParts};
use crate::kafka::ClientSettings;
use crate::policy::{FailurePolicy, OverBudget, Restarts};
use crate::publisher::{DeliveryTracker, Producer, Publisher, PublisherCore, Sink};
use crate::stats::ActorStats;

/// First delay before restarting a failed actor; doubles up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An instance that ran this long resets the backoff.
pub(crate) const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long a stopping actor may take to drain before it is dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// An actor as the node sees it, whatever its type.
pub(crate) trait ActorFactory: Send + Sync {
    fn name(&self) -> &str;
    fn output(&self) -> &str;
    fn output_type(&self) -> &str;
    fn output_schema(&self) -> apache_avro::Schema;
    fn subscriptions(&self) -> &[SubscriptionInfo];
    fn register_schemas(&self, registry: &mut SchemaRegistry);
    fn spawn(&self, env: &Env, failures: &Failures) -> Result<Instance>;
    /// Starts an instance in a simulation, on the current thread.
    #[cfg(feature = "testing")]
    fn spawn_sim(&self, env: &crate::sim::SimEnv<'_>, failures: &Failures) -> Result<()>;
}

/// What every instance of every actor of a node shares.
pub(crate) struct Env {
    pub(crate) settings: ClientSettings,
    pub(crate) registry: SchemaRegistry,
}

pub(crate) struct Factory<A: TopicActor> {
    pub(crate) name: String,
    pub(crate) output: String,
    output_type: String,
    pub(crate) args: A::Args,
    pub(crate) subscriptions: Subscriptions<A>,
    infos: Vec<SubscriptionInfo>,
    pub(crate) stats: Arc<ActorStats>,
}

impl<A: TopicActor> Factory<A> {
    pub(crate) fn new(name: String, output: String, args: A::Args, stats: Arc<ActorStats>) -> Self {
        let subscriptions = Subscriptions::<A>::of(&args);
        let infos = subscriptions.infos().cloned().collect();
        Self {
            name,
            output,
            output_type: full_name(&<A::Output as apache_avro::AvroSchema>::get_schema()),
            args,
            subscriptions,
            infos,
            stats,
        }
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

    fn output_schema(&self) -> apache_avro::Schema {
        <A::Output as apache_avro::AvroSchema>::get_schema()
    }

    fn subscriptions(&self) -> &[SubscriptionInfo] {
        &self.infos
    }

    fn register_schemas(&self, registry: &mut SchemaRegistry) {
        registry.register_type::<A::Output>();
        for sub in &self.subscriptions.entries {
            // A subscription's own type is a writer schema too: its upstream
            // may be built with the same version.
            registry.insert(sub.info.schema.clone());
        }
    }

    #[cfg(feature = "testing")]
    fn spawn_sim(&self, env: &crate::sim::SimEnv<'_>, failures: &Failures) -> Result<()> {
        crate::sim::spawn(self, env, failures)
    }

    fn spawn(&self, env: &Env, failures: &Failures) -> Result<Instance> {
        let actor: Arc<str> = self.name.as_str().into();
        let producer: Producer = env
            .settings
            .producer(&self.name)
            .create_with_context(DeliveryTracker {
                actor: actor.clone(),
                stats: self.stats.clone(),
            })
            .map_err(|e| {
                Error::kafka(
                    format!("cannot create producer of actor `{}`", self.name),
                    e,
                )
            })?;
        let core = Arc::new(PublisherCore::new(
            Sink::Kafka(producer),
            self.output.as_str().into(),
            format!("{}/{}", env.settings.node, self.name),
        ));
        let publisher = Publisher::<A::Output>::new(core.clone())?;
        let mut routes: Routes<A> = Routes::new();
        for sub in &self.subscriptions.entries {
            routes.add(&sub.info, (sub.make_route)(&env.registry)?)?;
        }
        let consumer = if routes.is_empty() {
            None
        } else {
            let consumer: Consumer = env.settings.consumer(&self.name).create().map_err(|e| {
                Error::kafka(
                    format!("cannot create consumer of actor `{}`", self.name),
                    e,
                )
            })?;
            let subscription = routes.subscription();
            let topics: Vec<&str> = subscription.iter().map(String::as_str).collect();
            consumer
                .subscribe(&topics)
                .map_err(|e| Error::kafka(format!("actor `{}` cannot subscribe", self.name), e))?;
            Some(Arc::new(consumer))
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let args = self.args.clone();
        let stats = self.stats.clone();
        let store_interval = (env.settings.commit_interval / 4).max(Duration::from_millis(10));
        let failures = failures.clone();
        let arbiter = Arbiter::new();
        let spawned = arbiter.spawn_fn(move || match <A as TopicActor>::create(args, publisher) {
            Ok(act) => {
                let parts = FeedParts {
                    actor,
                    consumer,
                    routes,
                    core,
                    stats,
                    store_interval,
                    failures,
                };
                let feed = Feed::new(parts, stop_rx, exit_tx);
                let mut ctx = Context::<A>::new();
                ctx.spawn(feed);
                ctx.run(act);
                let _ = ready_tx.send(Ok(()));
            }
            Err(error) => {
                let _ = ready_tx.send(Err(error));
                let _ = exit_tx.send(Exit::Failed("constructor failed".into()));
            }
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

/// One running instance of an actor, on its own thread.
pub(crate) struct Instance {
    arbiter: Option<Arbiter>,
    stop: Option<oneshot::Sender<()>>,
    exit: oneshot::Receiver<Exit>,
    ready: Option<oneshot::Receiver<std::result::Result<(), crate::ActorError>>>,
}

impl Instance {
    /// Stops the thread and waits until it is gone (the consumer is closed
    /// and has left its group by then).
    async fn join(mut self) {
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

/// One actor's supervision: its policy and the state it keeps across restarts.
pub(crate) struct Supervision {
    pub(crate) factory: Arc<dyn ActorFactory>,
    pub(crate) env: Arc<Env>,
    pub(crate) stats: Arc<ActorStats>,
    pub(crate) policy: Arc<FailurePolicy>,
    pub(crate) dead_letter: Option<String>,
    pub(crate) control: Arc<NodeControl>,
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
        env,
        stats,
        policy,
        dead_letter,
        control,
    } = supervision;
    let failures = Failures {
        policy: policy.clone(),
        attempts: Arc::default(),
        dead_letter: dead_letter.map(Into::into),
    };
    let name = factory.name().to_owned();
    let mut started = Some(started);
    let mut backoff = MIN_BACKOFF;
    let mut restarts = Restarts::default();
    loop {
        let began = Instant::now();
        let mut instance = match factory.spawn(&env, &failures) {
            Ok(instance) => instance,
            Err(error) => {
                if let Some(started) = started.take() {
                    let _ = started.send(Err(error));
                    return;
                }
                tracing::error!(actor = %name, error = %crate::feed::error_chain(&error), "cannot restart actor");
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if let Some(ready) = instance.ready.take() {
            let outcome = match ready.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(Error::ActorStart {
                    actor: name.clone(),
                    source,
                }),
                Err(_) => Err(Error::ActorStart {
                    actor: name.clone(),
                    source: "its thread ended before it started".into(),
                }),
            };
            match (outcome, started.take()) {
                (Ok(()), Some(started)) => {
                    let _ = started.send(Ok(()));
                }
                (Err(error), Some(started)) => {
                    let _ = started.send(Err(error));
                    instance.join().await;
                    return;
                }
                (Err(error), None) => {
                    tracing::error!(actor = %name, error = %crate::feed::error_chain(&error), "actor failed to restart");
                }
                (Ok(()), None) => {}
            }
        }
        let exit = tokio::select! {
            exit = &mut instance.exit => exit.unwrap_or(Exit::Failed("the actor's thread ended".into())),
            _ = stop.wait_for(|stop| *stop) => {
                if let Some(tx) = instance.stop.take() {
                    let _ = tx.send(());
                }
                match tokio::time::timeout(DRAIN_TIMEOUT, &mut instance.exit).await {
                    Ok(Ok(exit)) => exit,
                    Ok(Err(_)) => Exit::Failed("the actor's thread ended while draining".into()),
                    Err(_) => Exit::Failed(format!("drain took longer than {DRAIN_TIMEOUT:?}")),
                }
            }
        };
        instance.join().await;
        let stopping = *stop.borrow();
        match exit {
            Exit::Stopped => {
                tracing::info!(actor = %name, "actor stopped");
                return;
            }
            Exit::Failed(reason) | Exit::Halted(reason) if stopping => {
                tracing::error!(actor = %name, %reason, "actor failed while stopping");
                return;
            }
            Exit::Halted(reason) => {
                stats
                    .unhealthy
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(actor = %name, %reason, "actor stopped by its failure policy; it is not restarted");
                return;
            }
            Exit::Failed(reason) => {
                let now = Instant::now();
                if now.duration_since(began) > HEALTHY_AFTER {
                    backoff = MIN_BACKOFF;
                }
                if let Some(budget) = restarts.spent(now, &policy, &name, &reason) {
                    stats
                        .unhealthy
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    match policy.over_budget {
                        OverBudget::StopActor => {
                            tracing::error!(actor = %name, %budget, "restart budget spent; the actor stays stopped");
                        }
                        OverBudget::StopNode => {
                            tracing::error!(actor = %name, %budget, "restart budget spent; stopping the node");
                            control.halt(budget);
                        }
                    }
                    return;
                }
                tracing::warn!(actor = %name, %reason, ?backoff, "actor failed; restarting");
                ActorStats::add(&stats.restarts, 1);
                if sleep_or_stop(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Sleeps, unless asked to stop first; returns whether to stop.
async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.wait_for(|stop| *stop) => false,
    };
    !slept || *stop.borrow()
}
