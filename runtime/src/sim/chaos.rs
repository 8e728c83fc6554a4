//! The faults the driver injects by itself before a delivery, drawn from
//! the seed as [`Faults`](super::Faults) configures: crashes, redeliveries
//! and delayed partitions.

use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

use super::driver::{Driver, expose};
use super::world::lock;

impl Driver {
    /// Injects the faults the seed decides on before a delivery, as configured.
    pub(super) async fn inject_faults(&mut self) {
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
            // Nor is the consumer of an actor with stores: its partitions
            // go back to the committed offset only as they are assigned
            // again, with their state (crashes and rebalances).
            let at_least_once = self
                .actors
                .iter()
                .enumerate()
                .filter(|(_, actor)| !actor.transactional() && !actor.stateful());
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
}
