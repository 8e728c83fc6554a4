//! The simulation's scheduler: its actors and their instances, and every
//! decision of a run, taken on one thread from the seed.

// Over 400 lines for a reason: this is the simulated broker's group
// coordinator and scheduler in one (grants, assignments, rewinds, commits,
// acknowledgements, faults). The supervisors and instances it drives are
// the node's own (`members.rs`).

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::codec::SchemaRegistry;
use crate::error::{Error, Result};
use crate::policy::{Delivery, FailurePolicy};
use crate::stats::ActorStats;
use crate::supervisor::ActorFactory;

use super::SEED_VAR;
use super::faults::{FaultCounts, Faults};
use super::members::Member;
use super::world::{Grant, World, lock};
use crate::node::NodeParts;

/// Offset ranges of each partition that faults exposed to redelivery.
pub(super) type Exposures = BTreeMap<(usize, i32), Vec<(i64, i64)>>;

/// Notes that records `from..to` of `tp` may be delivered again.
pub(super) fn expose(exposures: &mut Exposures, tp: (usize, i32), from: i64, to: i64) {
    if from < to {
        exposures.entry(tp).or_default().push((from, to));
    }
}

/// Records an instance could be handed now: actor, instance id, partition,
/// its position and the partition's end.
type Candidate = (usize, u64, (usize, i32), i64, i64);

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

    /// Its instance `id`, if it runs.
    fn instance_mut(&mut self, id: u64) -> Option<&mut SimInstance> {
        self.instances.iter_mut().find(|i| i.id == id)
    }
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

    /// Spreads `actor`'s partitions over its instances. A partition that
    /// changes owner restarts from the committed offset.
    pub(super) fn rebalance(&mut self, actor: usize) {
        let inputs = self.inputs(actor);
        let mut world = lock(&self.world);
        let committed = world.committed.entry(actor).or_default().clone();
        let a = &mut self.actors[actor];
        let n = a.instances.iter().filter(|i| !i.replay).count();
        if n == 0 {
            return;
        }
        let mut wanted: Vec<Vec<(usize, i32)>> = vec![Vec::new(); n];
        for (i, tp) in inputs.iter().enumerate() {
            wanted[(i + a.rotation) % n].push(*tp);
        }
        let members = a.instances.iter_mut().filter(|i| !i.replay);
        for (instance, assigned) in members.zip(wanted) {
            let revoked: Vec<(usize, i32)> = instance
                .position
                .keys()
                .filter(|tp| !assigned.contains(tp))
                .copied()
                .collect();
            for tp in &revoked {
                // Revoked, with whatever the instance has in flight: what
                // it handled since the last commit is delivered again to
                // the new owner, and its stored offset is dropped.
                let committed = committed.get(tp).copied().unwrap_or(0);
                if let Some(&position) = instance.position.get(tp) {
                    expose(&mut a.exposures, *tp, committed, position);
                }
                instance.position.remove(tp);
                if let Some(slot) = world.slots.get_mut(&instance.id) {
                    slot.stored.remove(tp);
                }
            }
            for tp in &assigned {
                instance
                    .position
                    .entry(*tp)
                    .or_insert_with(|| committed.get(tp).copied().unwrap_or(0));
            }
            if let Some(slot) = world.slots.get_mut(&instance.id)
                && slot.assigned != assigned
            {
                slot.assigned = assigned;
                slot.rebalances += 1;
            }
        }
    }

    /// Moves the instances whose feeds asked for it back to their group's
    /// committed offsets (an exactly-once feed after a rebalance): what
    /// they handled since is delivered again.
    fn rewind(&mut self) {
        let mut world = lock(&self.world);
        for (a, actor) in self.actors.iter_mut().enumerate() {
            for instance in &mut actor.instances {
                let Some(slot) = world.slots.get_mut(&instance.id) else {
                    continue;
                };
                if !std::mem::take(&mut slot.rewind) {
                    continue;
                }
                let group = world.committed.get(&a);
                for (tp, position) in &mut instance.position {
                    let committed = group.and_then(|g| g.get(tp)).copied().unwrap_or(0);
                    expose(&mut actor.exposures, *tp, committed, *position);
                    *position = committed;
                }
            }
        }
    }

    /// Commits the offsets every instance of `actor` stored, as
    /// librdkafka's auto-commit does each interval. With
    /// [`Faults::fail_commit`] some commits fail; their offsets stay stored
    /// for the next.
    fn commit(&mut self, actor: usize) {
        for instance in &self.actors[actor].instances {
            if instance.replay {
                lock(&self.world).commit(self.replay_group(actor), instance.id);
                continue;
            }
            if self.faults.fail_commit > 0.0
                && self.rng.random_bool(self.faults.fail_commit.min(1.0))
            {
                self.injected.failed_commits += 1;
                continue;
            }
            lock(&self.world).commit(actor, instance.id);
        }
    }

    /// What could be delivered now: idle instances with records waiting
    /// on partitions that are not held back.
    fn candidates(&self) -> Vec<Candidate> {
        let now = Instant::now();
        let mut candidates = Vec::new();
        let world = lock(&self.world);
        for (a, actor) in self.actors.iter().enumerate() {
            for instance in &actor.instances {
                // An instance told of a record not delivered takes no
                // more records; it stops once it finds which one it was.
                let Some(slot) = world.slots.get(&instance.id) else {
                    continue;
                };
                let idle = !slot.busy
                    && !slot.exited
                    && !slot.undelivered.load(std::sync::atomic::Ordering::Acquire);
                if !idle {
                    continue;
                }
                let paused = &slot.paused;
                for (tp, &position) in &instance.position {
                    if self.delays.get(tp).is_some_and(|until| *until > now) || paused.contains(tp)
                    {
                        continue;
                    }
                    let end = world.stable_end(tp.0, tp.1);
                    if position < end {
                        candidates.push((a, instance.id, *tp, position, end));
                    }
                }
            }
        }
        candidates
    }

    /// Hands one batch to one instance and waits until it is handled.
    /// Returns false when nothing can be delivered now.
    async fn deliver_one(&mut self) -> bool {
        let mut candidates = self.candidates();
        if candidates.is_empty() {
            return false;
        }
        if self.faults != Faults::default() {
            self.inject_faults().await;
            candidates = self.candidates();
            if candidates.is_empty() {
                return true;
            }
        }
        let (a, id, tp, from, end) = candidates[self.rng.random_range(0..candidates.len())];
        let available = usize::try_from(end - from).unwrap_or(usize::MAX);
        let count = self.rng.random_range(1..=available.min(self.max_batch));
        {
            let mut world = lock(&self.world);
            let slot = world.slots.get_mut(&id).expect("idle instance has a slot");
            slot.grant = Some(Grant {
                topic: tp.0,
                partition: tp.1,
                from,
                count,
            });
            slot.busy = true;
            if let Some(waker) = slot.feed.take() {
                waker.wake();
            }
        }
        if let Some(instance) = self.actors[a].instance_mut(id) {
            instance.position.insert(tp, from + count as i64);
        }
        poll_fn(|cx| {
            let mut world = lock(&self.world);
            match world.slots.get(&id) {
                Some(slot) if slot.busy && !slot.exited => {
                    world.driver = Some(cx.waker().clone());
                    Poll::Pending
                }
                _ => Poll::Ready(()),
            }
        })
        .await;
        self.sync();
        true
    }

    /// Acknowledges the records in flight whose acknowledgement is due, in
    /// the order they were sent, each partition in order: a record held
    /// back holds back the ones after it on its partition, and only those.
    /// Returns whether any was.
    fn acknowledge_due(&mut self) -> bool {
        let now = Instant::now();
        let mut world = lock(&self.world);
        if world.in_flight.is_empty() {
            return false;
        }
        if world.acks.delay == 0.0 {
            while let Some(record) = world.in_flight.pop_front() {
                world.acknowledge(record);
            }
            world.changed();
            world.wake_undelivered();
            return true;
        }
        let mut ready = Vec::new();
        let mut held: Vec<(usize, i32)> = Vec::new();
        let mut kept = std::collections::VecDeque::new();
        for record in world.in_flight.drain(..) {
            let tp = (record.topic, record.partition);
            if record.due.is_none_or(|due| due <= now) && !held.contains(&tp) {
                ready.push(record);
            } else {
                if !held.contains(&tp) {
                    held.push(tp);
                }
                kept.push_back(record);
            }
        }
        world.in_flight = kept;
        let any = !ready.is_empty();
        for record in ready {
            world.acknowledge(record);
        }
        if any {
            world.changed();
            world.wake_undelivered();
        }
        any
    }

    /// Injects the faults the seed decides on before a delivery, as configured.
    async fn inject_faults(&mut self) {
        let faults = self.faults;
        let now = Instant::now();
        // Each chance is drawn only when set, so runs without faults draw
        // the same numbers as before faults existed.
        if faults.crash > 0.0 && self.rng.random_bool(faults.crash.min(1.0)) {
            let running: Vec<(usize, u64)> = self
                .actors
                .iter()
                .enumerate()
                .flat_map(|(a, actor)| {
                    let members = actor.instances.iter().filter(|i| !i.replay);
                    members.map(move |i| (a, i.member))
                })
                .collect();
            if !running.is_empty() {
                let (actor, member) = running[self.rng.random_range(0..running.len())];
                self.crash_member(actor, member).await;
                let due = now + faults.restart_after;
                let a = &mut self.actors[actor];
                a.restart_at = Some(a.restart_at.map_or(due, |at| at.min(due)));
                self.injected.crashes += 1;
            }
        }
        if faults.redeliver > 0.0 && self.rng.random_bool(faults.redeliver.min(1.0)) {
            let mut rewindable = Vec::new();
            let world = lock(&self.world);
            // An exactly-once consumer is never sent back by itself: it
            // rewinds only with its transaction aborted (see `rewind`).
            let at_least_once = self
                .actors
                .iter()
                .enumerate()
                .filter(|(_, actor)| !actor.transactional());
            for (a, actor) in at_least_once {
                let group = world.committed.get(&a);
                let members = actor.instances.iter().enumerate();
                for (i, instance) in members.filter(|(_, i)| !i.replay) {
                    for (tp, &position) in &instance.position {
                        let committed = group.and_then(|g| g.get(tp)).copied().unwrap_or(0);
                        if position > committed {
                            rewindable.push((a, i, *tp, committed, position));
                        }
                    }
                }
            }
            drop(world);
            if !rewindable.is_empty() {
                let (a, i, tp, committed, position) =
                    rewindable[self.rng.random_range(0..rewindable.len())];
                let actor = &mut self.actors[a];
                expose(&mut actor.exposures, tp, committed, position);
                actor.instances[i].position.insert(tp, committed);
                self.injected.redeliveries += 1;
            }
        }
        if faults.delay > 0.0 && self.rng.random_bool(faults.delay.min(1.0)) {
            let partitions: Vec<(usize, i32)> = {
                let world = lock(&self.world);
                world
                    .logs
                    .iter()
                    .enumerate()
                    .flat_map(|(t, log)| (0..log.partitions.len() as i32).map(move |p| (t, p)))
                    .collect()
            };
            if !partitions.is_empty() {
                let tp = partitions[self.rng.random_range(0..partitions.len())];
                let longest = u64::try_from(faults.max_delay.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1);
                let until = now + Duration::from_millis(self.rng.random_range(1..=longest));
                let entry = self.delays.entry(tp).or_insert(until);
                *entry = (*entry).max(until);
                self.injected.delays += 1;
            }
        }
    }

    /// Restarts, commits and releases that are due.
    async fn housekeeping(&mut self) {
        self.sync();
        self.acknowledge_due();
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
        // Each partition's acknowledgements wait for its oldest one.
        let mut heads: Vec<(usize, i32)> = Vec::new();
        let acks = world.in_flight.iter().filter_map(|r| {
            let tp = (r.topic, r.partition);
            if heads.contains(&tp) {
                return None;
            }
            heads.push(tp);
            r.due
        });
        // An open transaction commits at its feed's next tick, at the
        // latest a commit interval from now.
        let open = world
            .slots
            .values()
            .any(|s| s.txn.is_some() && !s.exited)
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
        let deadline = duration.map(|d| Instant::now() + d);
        loop {
            self.housekeeping().await;
            if self.deliver_one().await {
                continue;
            }
            if self.settle().await {
                continue;
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
