//! An actor instance's consumer in a simulation: the feed's
//! [`Source`](crate::feed::Source) over the in-memory log. It hands the
//! feed the batch the driver granted, then tells the driver the batch is
//! done; offsets it stores wait in the world for the driver's periodic
//! commit, as librdkafka's do for its auto-commit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};

use super::world::{World, lock};
use crate::delivery::consumed::Position;
use crate::feed::{DynSource, Owned};

/// The consumer of one simulated instance.
pub(crate) struct SimSource {
    world: Arc<Mutex<World>>,
    /// The instance's id (its slot in the world).
    id: u64,
    /// The actor's index in the simulation.
    actor: usize,
    /// The consumer group it commits in (see [`World::committed`]).
    group: usize,
    local: Mutex<Local>,
}

/// What the source keeps between calls, locked only by the actor's thread.
#[derive(Default)]
struct Local {
    /// The granted records not yet handed to the feed.
    batch: VecDeque<Owned>,
    /// A buffer for the records handled, by topic index, reused.
    handled: Vec<(usize, i32, i64)>,
    /// Topic names seen, with their index in the world.
    topics: Vec<(Arc<str>, usize)>,
    /// The next offset it would fetch, per partition granted so far.
    fetched: Vec<((usize, i32), i64)>,
}

impl SimSource {
    pub(crate) fn new(world: Arc<Mutex<World>>, id: u64, actor: usize, group: usize) -> Self {
        Self {
            world,
            id,
            actor,
            group,
            local: Mutex::new(Local::default()),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn poll_next(&self, cx: &mut std::task::Context<'_>) -> Poll<KafkaResult<Owned>> {
        let mut local = self.local();
        if let Some(message) = local.batch.pop_front() {
            return Poll::Ready(Ok(message));
        }
        let mut world = lock(&self.world);
        let Some(slot) = world.slots.get_mut(&self.id) else {
            return Poll::Pending;
        };
        if let Some(grant) = slot.grant.take() {
            let log = &world.logs[grant.topic];
            let records = &log.partitions[grant.partition as usize];
            let from = grant.from as usize;
            let tp = (grant.topic, grant.partition);
            let next = grant.from + grant.count as i64;
            match local.fetched.iter_mut().find(|(at, _)| *at == tp) {
                Some((_, position)) => *position = next,
                None => local.fetched.push((tp, next)),
            }
            local.batch.extend(
                records[from..from + grant.count]
                    .iter()
                    .enumerate()
                    // A `read_committed` reader skips what an aborted
                    // transaction wrote.
                    .filter(|(_, stored)| !stored.aborted)
                    .map(|(i, stored)| Owned {
                        topic: log.name.clone(),
                        partition: grant.partition,
                        offset: grant.from + i as i64,
                        key: stored.key.clone(),
                        value: stored.value.clone(),
                        headers: stored.headers.clone(),
                        timestamp: stored.timestamp_ms,
                    }),
            );
            if let Some(message) = local.batch.pop_front() {
                return Poll::Ready(Ok(message));
            }
        }
        // The feed asks for more: the batch is done.
        let slot = world.slots.get_mut(&self.id).expect("looked up above");
        slot.feed = Some(cx.waker().clone());
        if slot.busy {
            slot.busy = false;
            world.changed();
        }
        Poll::Pending
    }

    fn topic_index(&self, local: &mut Local, topic: &Arc<str>) -> Option<usize> {
        if let Some((_, index)) = local
            .topics
            .iter()
            .find(|(t, _)| Arc::ptr_eq(t, topic) || **t == **topic)
        {
            return Some(*index);
        }
        let index = *lock(&self.world).index.get(&**topic)?;
        local.topics.push((topic.clone(), index));
        Some(index)
    }
}

impl DynSource for SimSource {
    fn poll_recv(&self, cx: &mut std::task::Context<'_>) -> Poll<KafkaResult<Owned>> {
        self.poll_next(cx)
    }

    fn try_recv(&self) -> Option<KafkaResult<Owned>> {
        self.local().batch.pop_front().map(Ok)
    }

    fn store(&self, offsets: &[Position]) -> KafkaResult<()> {
        let mut local = self.local();
        let offsets: Vec<_> = offsets
            .iter()
            .filter_map(|at| {
                Some((
                    (self.topic_index(&mut local, &at.topic)?, at.partition),
                    at.offset,
                ))
            })
            .collect();
        drop(local);
        let mut world = lock(&self.world);
        let Some(slot) = world.slots.get_mut(&self.id) else {
            return Err(KafkaError::StoreOffset(RDKafkaErrorCode::State));
        };
        let mut refused = false;
        for (tp, offset) in offsets {
            if slot.assigned.contains(&tp) {
                slot.stored.insert(tp, offset);
            } else {
                refused = true;
            }
        }
        if refused {
            // As librdkafka: a partition no longer assigned keeps nothing.
            return Err(KafkaError::StoreOffset(RDKafkaErrorCode::State));
        }
        Ok(())
    }

    fn assignment(&self) -> KafkaResult<Vec<(String, i32)>> {
        let world = lock(&self.world);
        Ok(world.slots.get(&self.id).map_or_else(Vec::new, |slot| {
            slot.assigned
                .iter()
                .map(|&(t, p)| (world.logs[t].name.to_string(), p))
                .collect()
        }))
    }

    fn commit_stored(&self) -> KafkaResult<()> {
        let mut world = lock(&self.world);
        world.commit(self.group, self.id);
        Ok(())
    }

    fn rewind(&self) -> KafkaResult<()> {
        // What was fetched and not handled is dropped; the driver moves
        // the positions back to the committed offsets before its next
        // grant.
        let mut local = self.local();
        local.batch.clear();
        local.fetched.clear();
        let mut world = lock(&self.world);
        let Some(slot) = world.slots.get_mut(&self.id) else {
            return Err(KafkaError::Seek("the instance is gone".into()));
        };
        slot.rewind = true;
        world.changed();
        Ok(())
    }

    fn pause(&self, topic: &str, partition: i32) -> KafkaResult<()> {
        let mut world = lock(&self.world);
        let Some(topic) = world.index.get(topic).copied() else {
            return Ok(());
        };
        if let Some(slot) = world.slots.get_mut(&self.id) {
            slot.paused.push((topic, partition));
        }
        Ok(())
    }

    fn resume(&self, topic: &str, partition: i32) -> KafkaResult<()> {
        let mut world = lock(&self.world);
        let Some(topic) = world.index.get(topic).copied() else {
            return Ok(());
        };
        if let Some(slot) = world.slots.get_mut(&self.id) {
            slot.paused.retain(|tp| *tp != (topic, partition));
        }
        world.changed();
        Ok(())
    }

    fn positions(&self) -> KafkaResult<Vec<Position>> {
        let local = self.local();
        let world = lock(&self.world);
        Ok(local
            .fetched
            .iter()
            .map(|&((t, p), offset)| Position::new(world.logs[t].name.clone(), p, offset))
            .collect())
    }

    fn rebalances(&self) -> u64 {
        lock(&self.world)
            .slots
            .get(&self.id)
            .map_or(0, |slot| slot.rebalances)
    }

    fn take_assigned(&self) -> Vec<(String, i32)> {
        let mut world = lock(&self.world);
        let Some(slot) = world.slots.get_mut(&self.id) else {
            return Vec::new();
        };
        let fresh = std::mem::take(&mut slot.fresh);
        fresh
            .into_iter()
            .map(|(t, p)| (world.logs[t].name.to_string(), p))
            .collect()
    }

    fn handled(&self, handled: &mut Vec<Position>) {
        let mut local = self.local();
        let mut counted = std::mem::take(&mut local.handled);
        for at in handled.drain(..) {
            if let Some(topic) = self.topic_index(&mut local, &at.topic) {
                counted.push((topic, at.partition, at.offset));
            }
        }
        drop(local);
        lock(&self.world).count_handled(self.actor, &mut counted);
        self.local().handled = counted;
    }
}

impl Drop for SimSource {
    fn drop(&mut self) {
        let mut world = lock(&self.world);
        if let Some(slot) = world.slots.get_mut(&self.id) {
            slot.exited = true;
            slot.busy = false;
        }
        world.membership += 1;
        world.changed();
    }
}
