//! Reading a simulated topic from its end, without a group: what an
//! asker's replies are read with in a simulation ([`SimTail`], the
//! runtime's `DynTail`). Each tail is a tap in the world; the driver hands
//! it, at each step, the records of its topic that became readable (as a
//! `read_committed` consumer reads them: none of an open or aborted
//! transaction), in each partition's order.

use std::sync::{Arc, Mutex};

use super::world::{Tap, World, lock};
use crate::error::{Error, Result};
use crate::kafka::tail::{DynTail, OnRecord};

/// The simulation's tails.
pub(crate) struct SimTail {
    pub(crate) world: Arc<Mutex<World>>,
}

/// Takes a tap out of the world when dropped.
struct Stop {
    world: Arc<Mutex<World>>,
    id: u64,
}

impl Drop for Stop {
    fn drop(&mut self) {
        lock(&self.world).taps.remove(&self.id);
    }
}

impl DynTail for SimTail {
    fn start(&self, topic: &str, on: Arc<dyn OnRecord>) -> Result<Box<dyn Send + Sync>> {
        let mut world = lock(&self.world);
        let index = *world.index.get(topic).ok_or_else(|| Error::UnknownTopic {
            topic: topic.to_owned(),
        })?;
        let next = (0..world.logs[index].partitions.len() as i32)
            .map(|p| world.end_offset(index, p))
            .collect();
        let id = world.new_instance_id();
        world.taps.insert(
            id,
            Tap {
                topic: index,
                next,
                on,
            },
        );
        Ok(Box::new(Stop {
            world: self.world.clone(),
            id,
        }))
    }
}

impl World {
    /// Every record that became readable to a tap since it last read, with
    /// the tap to hand it to, in tap then partition then offset order; the
    /// taps move past them.
    pub(crate) fn tapped(&mut self) -> Vec<(Arc<dyn OnRecord>, super::world::Stored, i32, i64)> {
        let mut out = Vec::new();
        let ends: Vec<Vec<i64>> = self
            .taps
            .values()
            .map(|tap| {
                (0..tap.next.len() as i32)
                    .map(|p| self.stable_end(tap.topic, p))
                    .collect()
            })
            .collect();
        for (tap, ends) in self.taps.values_mut().zip(ends) {
            let log = &self.logs[tap.topic];
            for (partition, end) in ends.into_iter().enumerate() {
                let next = &mut tap.next[partition];
                while *next < end {
                    let record = &log.partitions[partition][*next as usize];
                    if !record.aborted {
                        out.push((tap.on.clone(), record.clone(), partition as i32, *next));
                    }
                    *next += 1;
                }
            }
        }
        out
    }
}
