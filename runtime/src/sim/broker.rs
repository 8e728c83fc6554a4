//! The simulated broker's side of each step of the driver: which
//! partitions each instance is assigned, which batch goes to which idle
//! instance, when publishes are acknowledged, and the group commits and
//! rewinds, each decision drawn from the seed.

use std::future::poll_fn;
use std::task::Poll;

use rand::Rng as _;
use tokio::time::Instant;

use super::driver::{Driver, expose};
use super::faults::Faults;
use super::world::{Grant, lock};

/// Records an instance could be handed now: actor, instance id, partition,
/// its position and the partition's end.
type Candidate = (usize, u64, (usize, i32), i64, i64);

impl Driver {
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
            let mut fresh = Vec::new();
            for tp in &assigned {
                instance.position.entry(*tp).or_insert_with(|| {
                    fresh.push(*tp);
                    committed.get(tp).copied().unwrap_or(0)
                });
            }
            if let Some(slot) = world.slots.get_mut(&instance.id)
                && slot.assigned != assigned
            {
                if slot.hold_back {
                    // As an actor with stores's consumer does: each
                    // partition new to it waits for its restore.
                    slot.paused.retain(|tp| !revoked.contains(tp));
                    slot.fresh.retain(|tp| !revoked.contains(tp));
                    slot.paused.extend(&fresh);
                    slot.fresh.extend(fresh);
                    if let Some(feed) = slot.feed.take() {
                        feed.wake();
                    }
                }
                slot.assigned = assigned;
                slot.rebalances += 1;
            }
        }
    }

    /// Moves the instances whose feeds asked for it back to their group's
    /// committed offsets (an exactly-once feed after a rebalance): what
    /// they handled since is delivered again.
    pub(super) fn rewind(&mut self) {
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
    pub(super) fn commit(&mut self, actor: usize) {
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
    pub(super) fn candidates(&self) -> Vec<Candidate> {
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
    pub(super) async fn deliver_one(&mut self) -> bool {
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
    pub(super) fn acknowledge_due(&mut self) -> bool {
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
}
