//! The supervisor: starts each actor instance on its own thread, restarts it
//! when it fails, and stops it with a drain.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Arbiter, AsyncContext, Context};
use futures::channel::oneshot;
use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::actor::{Routes, SubscriptionInfo, Subscriptions, TopicActor};
use crate::codec::{SchemaRegistry, full_name};
use crate::error::{Error, Result};
use crate::failures::Failures;
use crate::feed::{Consumer, Exit, Feed, FeedParts, Input, Rebalances};
use crate::kafka::ClientSettings;
use crate::policy::{Delivery, FailurePolicy, OverBudget, Restarts};
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
    fn spawn(&self, env: &Env, failures: &Failures, mode: &Mode) -> Result<Instance>;
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

    fn spawn(&self, env: &Env, failures: &Failures, mode: &Mode) -> Result<Instance> {
        let actor: Arc<str> = self.name.as_str().into();
        // Exactly-once: the transactional id is the actor's identity on the
        // cluster, so a second live instance fences the first; a replay is
        // an identity of its own, so it does not fence the live node.
        let transactional_id = failures.transactional.then(|| match mode {
            Mode::Live => env.settings.transactional_id(&self.name),
            Mode::Replay(_) => format!("{}.dlq-replay", env.settings.transactional_id(&self.name)),
        });
        let config = env
            .settings
            .producer(&self.name, transactional_id.as_deref());
        let number = |key: &str| config.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        let max_message_bytes = number("message.max.bytes")
            .map_or(crate::publisher::DEFAULT_MAX_MESSAGE_BYTES, |n| n as usize);
        // librdkafka's default message.timeout.ms is 5 minutes.
        let queue_full_limit =
            Duration::from_millis(number("message.timeout.ms").unwrap_or(300_000));
        let producer: Producer = config
            .create_with_context(DeliveryTracker {
                actor: actor.clone(),
                stats: self.stats.clone(),
                refused: failures.refused.clone(),
                queue_full_limit,
            })
            .map_err(|e| {
                Error::kafka(
                    format!("cannot create producer of actor `{}`", self.name),
                    e,
                )
            })?;
        let mut core = PublisherCore::new(
            Sink::Kafka(producer),
            self.output.as_str().into(),
            format!("{}/{}", env.settings.node, self.name),
        )
        .max_message_bytes(max_message_bytes);
        if let Some(id) = transactional_id {
            core = core.transactional(id, env.settings.transaction_timeout);
        }
        let core = Arc::new(core);
        let publisher = Publisher::<A::Output>::new(core.clone())?;
        let mut routes: Routes<A> = Routes::new();
        for sub in &self.subscriptions.entries {
            routes.add(&sub.info, (sub.make_route)(&env.registry)?)?;
        }
        let (consumer, input) = if routes.is_empty() {
            (None, Input::Subscribed)
        } else {
            let mut config = env.settings.consumer(&self.name, failures.transactional);
            if let Mode::Replay(replay) = mode {
                config.set("group.id", &replay.group);
            }
            let consumer: Consumer =
                config
                    .create_with_context(Rebalances::default())
                    .map_err(|e| {
                        Error::kafka(
                            format!("cannot create consumer of actor `{}`", self.name),
                            e,
                        )
                    })?;
            let input = match mode {
                Mode::Live => {
                    let subscription = routes.subscription();
                    let topics: Vec<&str> = subscription.iter().map(String::as_str).collect();
                    consumer.subscribe(&topics).map_err(|e| {
                        Error::kafka(format!("actor `{}` cannot subscribe", self.name), e)
                    })?;
                    Input::Subscribed
                }
                Mode::Replay(replay) => replay.assign(&consumer)?,
            };
            (Some(Arc::new(consumer)), input)
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let args = self.args.clone();
        let stats = self.stats.clone();
        // Offsets are stored four times per commit; under exactly-once each
        // commit is a transaction, once per commit interval.
        let store_interval = if failures.transactional {
            env.settings.commit_interval
        } else {
            env.settings.commit_interval / 4
        }
        .max(Duration::from_millis(10));
        let failures = failures.clone();
        let arbiter = Arbiter::new();
        let spawned = arbiter.spawn_fn(move || {
            // On the actor's thread: it waits for the broker, which fences
            // any older instance and settles its open transaction.
            if let Err(error) = core.init_transactions() {
                let reason = crate::error::chain(&error);
                let _ = ready_tx.send(Err(reason.clone().into()));
                let _ = exit_tx.send(Exit::Failed(reason));
                return;
            }
            start::<A>(
                args,
                publisher,
                FeedParts {
                    actor,
                    consumer,
                    routes,
                    core,
                    stats,
                    store_interval,
                    failures,
                    input,
                },
                stop_rx,
                exit_tx,
                ready_tx,
            );
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

/// Builds the actor through its constructor and starts its feed, on the
/// current (the actor's) thread.
fn start<A: TopicActor>(
    args: A::Args,
    publisher: Publisher<A::Output>,
    parts: FeedParts<A>,
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
            let _ = exit.send(Exit::Failed("constructor failed".into()));
        }
    }
}

/// What an actor's instances read.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Its subscriptions, as a member of its consumer group.
    Live,
    /// Its dead letters, once; see [`crate::Node::replay_dead_letters`].
    Replay(Arc<Replay>),
}

/// A replay of an actor's dead letters: which, and where its progress is
/// committed.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    /// The dead-letter topic.
    pub(crate) topic: String,
    /// The consumer group the replay commits its progress in (not the
    /// actor's: that group's live members own its offsets).
    pub(crate) group: String,
    /// Each partition's oldest offset and end offset when the replay
    /// began, for the partitions holding records: dead letters written
    /// after the end, by this replay too, are left for the next one.
    pub(crate) ranges: BTreeMap<i32, (i64, i64)>,
    /// The dead letters read (partition, offset), by every instance.
    pub(crate) read: crate::feed::ReadSet,
}

impl Replay {
    /// A replay of what `topic` holds now, committing in `group`; asks
    /// the broker through `consumer`.
    pub(crate) fn of(
        consumer: &rdkafka::consumer::BaseConsumer,
        topic: String,
        group: String,
    ) -> Result<Self> {
        let mut ranges = BTreeMap::new();
        for partition in 0..crate::kafka::partition_count(consumer, &topic, KAFKA_TIMEOUT)? {
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, KAFKA_TIMEOUT)
                .map_err(|e| Error::kafka(format!("cannot read the offsets of `{topic}`"), e))?;
            if high > low {
                ranges.insert(partition, (low, high));
            }
        }
        Ok(Self {
            topic,
            group,
            ranges,
            read: Arc::default(),
        })
    }

    /// How many offsets lie before the ends, given `starts`: the dead
    /// letters waiting, and on a topic written in transactions the markers
    /// between them.
    pub(crate) fn offsets_before_end(&self, starts: &BTreeMap<i32, i64>) -> u64 {
        self.ranges
            .iter()
            .map(|(p, (low, end))| (end - starts.get(p).copied().unwrap_or(*low)).max(0) as u64)
            .sum()
    }

    /// Assigns `consumer` the partitions with dead letters left before
    /// their end, each from the replay group's committed offset.
    pub(crate) fn assign(&self, consumer: &Consumer) -> Result<Input> {
        let starts = self.starts(consumer)?;
        let mut list = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for (partition, (low, end)) in &self.ranges {
            let start = starts.get(partition).copied().unwrap_or(*low);
            if start < *end {
                list.add_partition_offset(&self.topic, *partition, Offset::Offset(start))
                    .map_err(|e| Error::kafka("cannot assign partitions", e))?;
                ends.insert(*partition, *end);
            }
        }
        consumer
            .assign(&list)
            .map_err(|e| Error::kafka(format!("cannot assign `{}`", self.topic), e))?;
        Ok(Input::DeadLetters {
            ends,
            read: self.read.clone(),
        })
    }

    /// Where the replay group stands in each partition: its committed
    /// offset, else the oldest record there when the replay began.
    pub(crate) fn starts<C, K>(&self, consumer: &K) -> Result<BTreeMap<i32, i64>>
    where
        C: rdkafka::consumer::ConsumerContext,
        K: rdkafka::consumer::Consumer<C>,
    {
        let mut list = TopicPartitionList::new();
        for partition in self.ranges.keys() {
            list.add_partition(&self.topic, *partition);
        }
        let committed = consumer
            .committed_offsets(list, KAFKA_TIMEOUT)
            .map_err(|e| {
                Error::kafka(
                    format!("cannot read the offsets group `{}` committed", self.group),
                    e,
                )
            })?;
        let mut starts = BTreeMap::new();
        for (partition, (low, _)) in &self.ranges {
            let stored = committed
                .find_partition(&self.topic, *partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(at) => Some(at),
                    _ => None,
                });
            starts.insert(*partition, stored.unwrap_or(*low).max(*low));
        }
        Ok(starts)
    }
}

/// How long a replay waits for the broker's answer about offsets.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub(crate) delivery: Delivery,
    pub(crate) control: Arc<NodeControl>,
    pub(crate) mode: Mode,
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
    let mut backoff = MIN_BACKOFF;
    let mut restarts = Restarts::default();
    loop {
        let began = Instant::now();
        let exit = match factory.spawn(&env, &failures, &mode) {
            Ok(instance) => match run(instance, &name, &mut started, &mut stop).await {
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
                Exit::Failed(format!(
                    "cannot build a new instance: {}",
                    crate::error::chain(&error)
                ))
            }
        };
        let stopping = *stop.borrow();
        // A failure the brokers made permanent is not restarted: a restart
        // would be refused again, or, fenced, would fence its replacement.
        let exit = match (exit, failures.refused.get()) {
            (Exit::Failed(_), Some(refused)) => Exit::Halted(refused.clone()),
            (exit, _) => exit,
        };
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
                if let Ok(mut why) = stats.stopped_because.lock() {
                    why.get_or_insert_with(|| reason.clone());
                }
                tracing::error!(actor = %name, %reason, "actor stopped for good; it is not restarted");
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
                    if let Ok(mut why) = stats.stopped_because.lock() {
                        why.get_or_insert_with(|| budget.to_string());
                    }
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

/// Waits for a spawned instance to start, reporting the first start on
/// `started`, then until it exits or `stop` asks it to drain. `None` when
/// the first start failed (reported, nothing to restart).
async fn run(
    mut instance: Instance,
    name: &str,
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
    Some(exit)
}

/// Sleeps, unless asked to stop first; returns whether to stop.
async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
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
        fn output_schema(&self) -> apache_avro::Schema {
            apache_avro::Schema::Null
        }
        fn subscriptions(&self) -> &[SubscriptionInfo] {
            &[]
        }
        fn register_schemas(&self, _: &mut SchemaRegistry) {}
        fn spawn(&self, _: &Env, _: &Failures, _: &Mode) -> Result<Instance> {
            if self.spawned.fetch_add(1, Ordering::SeqCst) > 0 {
                return Err(Error::Shutdown {
                    actor: "unbuildable".into(),
                    reason: "no instance for you".into(),
                });
            }
            let (exit_tx, exit) = oneshot::channel();
            exit_tx
                .send(Exit::Failed("the first instance failed".into()))
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
        fn spawn_sim(&self, _: &crate::sim::SimEnv<'_>, _: &Failures) -> Result<()> {
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
            env: Arc::new(Env {
                settings: crate::kafka::ClientSettings {
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
            }),
            stats: stats.clone(),
            policy: Arc::new(policy.clone()),
            dead_letter: None,
            delivery: Delivery::AtLeastOnce,
            control: Arc::new(NodeControl {
                stop: stop_tx,
                halted: Mutex::default(),
            }),
            mode: Mode::Live,
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
