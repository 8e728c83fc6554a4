//! The simulation's scheduler: its actors and their instances, and every
//! decision of a run, taken on one thread from the seed.

// The driver's state and its loop; what the simulated broker does at
// each step (grants, assignments, rewinds, commits, acknowledgements) is
// `broker.rs`, the faults it injects `chaos.rs`, and the supervisors and
// instances it drives are the node's own (`members.rs`).

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::delivery::policy::{Delivery, FailurePolicy};
use crate::error::{Error, Result};
use crate::ops::stats::ActorStats;
use crate::supervisor::ActorFactory;
use crate::wire::codec::SchemaRegistry;

use super::faults::{FaultCounts, Faults};
use super::seed::SEED_VAR;
use super::world::{World, lock};
use crate::node::NodeParts;
use crate::supervisor::NodeControl;
use tokio::task::JoinHandle;

/// Offset ranges of each partition that faults exposed to redelivery.
pub(super) type Exposures = BTreeMap<(usize, i32), Vec<(i64, i64)>>;

/// Notes that records `from..to` of `tp` may be delivered again.
pub(super) fn expose(exposures: &mut Exposures, tp: (usize, i32), from: i64, to: i64) {
    if from < to {
        exposures.entry(tp).or_default().push((from, to));
    }
}

/// One actor of the simulated node.
pub(super) struct SimActor {
    pub(super) factory: Arc<dyn ActorFactory>,
    pub(super) stats: Arc<ActorStats>,
    pub(super) name: String,
    /// How many members (supervisors, each a node in a deployment) its
    /// group should have.
    pub(super) wanted: usize,
    /// Crashed by the test; stays down until restarted.
    pub(super) down: bool,
    /// Its supervisors: each runs the node's `supervise` loop, which
    /// starts, restarts and stops its instance.
    pub(super) members: Vec<Member>,
    /// Its running instances: its group's members', and a replay's.
    pub(super) instances: Vec<SimInstance>,
    /// When crashed members come back (their node restarted).
    pub(super) restart_at: Option<Instant>,
    /// Shifts the partition assignment (see [`Simulation::rebalance`]).
    pub(super) rotation: usize,
    /// Offset ranges redelivered by faults, per partition: how many
    /// duplicates each record may have.
    pub(super) exposures: Exposures,
    /// Its failure policy, dead-letter topic and delivery guarantee.
    pub(super) policy: Arc<FailurePolicy>,
    pub(super) dead_letter: Option<String>,
    pub(super) delivery: Delivery,
    /// How it writes its records' metadata.
    pub(super) envelope: crate::Envelope,
}

impl SimActor {
    /// Whether it runs exactly-once.
    pub(super) fn transactional(&self) -> bool {
        self.delivery == Delivery::ExactlyOnce
    }

    /// Whether it has stores.
    pub(super) fn stateful(&self) -> bool {
        !self.factory.stores().is_empty()
    }

    /// Its instance `id`, if it runs.
    pub(super) fn instance_mut(&mut self, id: u64) -> Option<&mut SimInstance> {
        self.instances.iter_mut().find(|i| i.id == id)
    }
}

/// One supervisor of an actor: what a node is to the actor in a
/// deployment.
pub(crate) struct Member {
    /// Tells its instances apart from other members'.
    pub(super) tag: u64,
    /// Its stop switch, and why it stopped the node, if it did.
    pub(super) control: Arc<NodeControl>,
    /// Its `supervise` loop.
    pub(super) task: JoinHandle<()>,
}

/// One running instance of an actor.
pub(super) struct SimInstance {
    pub(super) id: u64,
    /// The supervisor that started it ([`Member::tag`]).
    pub(super) member: u64,
    /// A replay's instance, outside the actor's group.
    pub(super) replay: bool,
    /// The next offset to hand it, per partition it is assigned (its
    /// consumer's copy of the assignment is in the world's slot).
    pub(super) position: BTreeMap<(usize, i32), i64>,
}

/// The simulation's scheduler: decides every step, on one thread.
pub(super) struct Driver {
    pub(super) world: Arc<Mutex<World>>,
    pub(super) actors: Vec<SimActor>,
    pub(super) node: String,
    /// Each actor as the topology checks see it.
    pub(super) infos: Vec<crate::topology::ActorInfo>,
    pub(super) registry: SchemaRegistry,
    pub(super) rng: ChaCha8Rng,
    pub(super) seed: u64,
    pub(super) max_batch: usize,
    pub(super) faults: Faults,
    pub(super) injected: FaultCounts,
    /// Why the simulated node stopped itself, if it did.
    pub(super) halted: Option<String>,
    pub(super) commit_interval: Duration,
    pub(super) next_commit: Instant,
    pub(super) delays: BTreeMap<(usize, i32), Instant>,
    /// The tag of the next member.
    pub(super) next_member: u64,
    /// The world's `membership` when the driver last synced with it.
    pub(super) membership: u64,
    /// A replay under way: its actor and supervisor.
    pub(super) replaying: Option<(usize, Member)>,
    pub(super) start: Instant,
    pub(super) base: SystemTime,
}

impl Driver {
    /// Must run inside the simulation's runtime (its clock is the paused one).
    pub(super) fn new(
        parts: NodeParts,
        seed: u64,
        max_batch: usize,
        faults: Faults,
        base: SystemTime,
    ) -> Self {
        let mut world = World::new(seed);
        for (topic, spec) in &parts.topics {
            world.create_topic(topic, spec.partitions);
        }
        world.acks.lose = faults.lose_ack;
        world.acks.delay = faults.delay_ack;
        world.acks.max_delay = faults.max_delay;
        let now = Instant::now();
        world.acks.abort_txn = faults.abort_txn;
        let actors = parts
            .actors
            .into_iter()
            .zip(parts.policies)
            .zip(parts.deliveries)
            .zip(parts.envelopes)
            .map(
                |((((factory, stats), (policy, dead_letter)), delivery), envelope)| SimActor {
                    name: factory.name().to_owned(),
                    factory,
                    stats,
                    wanted: 1,
                    down: false,
                    members: Vec::new(),
                    instances: Vec::new(),
                    restart_at: None,
                    rotation: 0,
                    exposures: BTreeMap::new(),
                    policy,
                    dead_letter,
                    delivery,
                    envelope,
                },
            )
            .collect();
        Self {
            world: Arc::new(Mutex::new(world)),
            actors,
            node: parts.name,
            infos: parts.infos,
            registry: parts.registry,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            max_batch,
            faults,
            injected: FaultCounts::default(),
            halted: None,
            commit_interval: parts.commit_interval,
            next_commit: now + parts.commit_interval,
            delays: BTreeMap::new(),
            next_member: 0,
            membership: u64::MAX,
            replaying: None,
            start: now,
            base,
        }
    }

    pub(super) fn replay_hint(&self) -> String {
        format!(
            "simulation of node `{}` with seed {} (rerun with {SEED_VAR}={})",
            self.node, self.seed, self.seed
        )
    }

    pub(super) fn actor(&self, name: &str) -> Result<usize> {
        self.actors
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| Error::UnknownActor {
                actor: name.to_owned(),
            })
    }

    pub(super) fn topic(&self, name: &str) -> Result<usize> {
        lock(&self.world)
            .index
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_owned(),
            })
    }

    pub(super) fn check_partition(&self, topic: usize, partition: i32) -> Result<()> {
        let world = lock(&self.world);
        let log = &world.logs[topic];
        let partitions = log.partitions.len() as i32;
        if partition < 0 || partition >= partitions {
            return Err(Error::UnknownPartition {
                topic: log.name.to_string(),
                partition,
                partitions,
            });
        }
        Ok(())
    }

    /// The partitions `actor` reads, in a fixed order.
    pub(super) fn inputs(&self, actor: usize) -> Vec<(usize, i32)> {
        let world = lock(&self.world);
        let mut topics = Vec::new();
        for sub in self.actors[actor].factory.subscriptions() {
            if sub.pattern {
                if let Ok(re) = crate::actor::pattern_regex(&sub.topic) {
                    topics.extend(
                        world
                            .index
                            .iter()
                            .filter(|(name, _)| re.is_match(name))
                            .map(|(_, &t)| t),
                    );
                }
            } else if let Some(&t) = world.index.get(&sub.topic) {
                topics.push(t);
            }
        }
        topics.sort_unstable();
        topics.dedup();
        topics
            .into_iter()
            .flat_map(|t| (0..world.logs[t].partitions.len() as i32).map(move |p| (t, p)))
            .collect()
    }

    /// Hands every tail (an asker's reader of its replies) the records
    /// of its topic that became readable, outside the world's lock.
    fn feed_tails(&mut self) {
        let tapped = lock(&self.world).tapped();
        for (on, record, partition, offset) in tapped {
            on.record(&record.headers, &record.value, partition, offset);
        }
    }

    /// Restarts, commits and releases that are due.
    async fn housekeeping(&mut self) {
        self.sync();
        self.acknowledge_due();
        self.feed_tails();
        self.rewind();
        let now = Instant::now();
        for actor in 0..self.actors.len() {
            let a = &self.actors[actor];
            if !a.down && a.restart_at.is_some_and(|at| at <= now) {
                self.actors[actor].restart_at = None;
                if let Err(error) = self.start_instances(actor).await {
                    // A crashed node that cannot start again stays down.
                    self.cannot_restart(actor, &error);
                }
            }
        }
        if now >= self.next_commit {
            for actor in 0..self.actors.len() {
                self.commit(actor);
            }
            while self.next_commit <= now {
                self.next_commit += self.commit_interval;
            }
        }
        self.delays.retain(|_, until| *until > now);
    }

    /// The earliest time something other than a periodic timer is due.
    fn next_due(&self) -> Option<Instant> {
        let restarts = self
            .actors
            .iter()
            .filter(|a| !a.down)
            .filter_map(|a| a.restart_at);
        let world = lock(&self.world);
        let delays = self.delays.iter().filter_map(|(&(t, p), &until)| {
            let waiting = self.actors.iter().flat_map(|a| &a.instances).any(|i| {
                i.position
                    .get(&(t, p))
                    .is_some_and(|&pos| pos < world.stable_end(t, p))
            });
            waiting.then_some(until)
        });
        // Each partition's acknowledgements wait for its oldest one; one
        // without a delay is due at once (sent while the driver looked
        // elsewhere, say by an instance restoring as it started).
        let mut heads: Vec<(usize, i32)> = Vec::new();
        let now = Instant::now();
        let acks = world.in_flight.iter().filter_map(|r| {
            let tp = (r.topic, r.partition);
            if heads.contains(&tp) {
                return None;
            }
            heads.push(tp);
            Some(r.due.unwrap_or(now))
        });
        // An open transaction commits at its feed's next tick, at the
        // latest a commit interval from now.
        let open = world
            .slots
            .values()
            .any(|s| s.txn.is_some() && !s.exited)
            .then(|| Instant::now() + self.commit_interval);
        // An instance told of a record not delivered looks again for which
        // it was at its feed's next tick, at the latest a commit interval
        // from now (as on Kafka: nothing else wakes it).
        let told = world
            .slots
            .values()
            .any(|s| !s.exited && s.undelivered.load(std::sync::atomic::Ordering::Acquire))
            .then(|| Instant::now() + self.commit_interval);
        // A supervisor between two instances restarts one after its
        // backoff (at most `MAX_BACKOFF`); a replay under way may be
        // waiting to find that it is past its ends (the last offsets hold
        // no record).
        let supervising = self
            .actors
            .iter()
            .any(|a| {
                a.members.iter().any(|m| {
                    !m.task.is_finished() && !a.instances.iter().any(|i| i.member == m.tag)
                })
            })
            .then(|| Instant::now() + crate::supervisor::MAX_BACKOFF);
        let replaying = self
            .replaying
            .as_ref()
            .filter(|(_, m)| !m.task.is_finished())
            .map(|_| Instant::now() + self.commit_interval);
        restarts
            .chain(delays)
            .chain(acks)
            .chain(open)
            .chain(told)
            .chain(supervising)
            .chain(replaying)
            .min()
    }

    /// Lets every task that is ready run; returns whether anything changed.
    async fn settle(&self) -> bool {
        let before = lock(&self.world).generation;
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        lock(&self.world).generation != before
    }

    /// Sleeps until `until` or until the bus changes, whichever is first.
    async fn wait(&self, until: Instant) {
        let seen = lock(&self.world).generation;
        let changed = poll_fn(|cx| {
            let mut world = lock(&self.world);
            if world.generation != seen {
                Poll::Ready(())
            } else {
                world.driver = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        tokio::select! {
            biased;
            () = changed => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }

    /// The driver's loop: until idle (`None`) or for a virtual duration.
    pub(super) async fn run(&mut self, duration: Option<Duration>) {
        self.run_while(duration, || true).await;
    }

    /// [`Driver::run`], stopping also as soon as `go_on` says no, between
    /// two steps (never inside one).
    pub(super) async fn run_while(&mut self, duration: Option<Duration>, go_on: impl Fn() -> bool) {
        let deadline = duration.map(|d| Instant::now() + d);
        while go_on() {
            self.housekeeping().await;
            if self.deliver_one().await {
                continue;
            }
            if self.settle().await {
                continue;
            }
            if !go_on() {
                break;
            }
            let now = Instant::now();
            let target = match deadline {
                Some(deadline) if now >= deadline => break,
                Some(deadline) => Some(
                    self.next_due()
                        .map_or(deadline, |due| due.min(deadline))
                        .min(self.next_commit),
                ),
                None => self.next_due(),
            };
            match target {
                Some(target) => self.wait(target).await,
                None => break,
            }
        }
    }
}
