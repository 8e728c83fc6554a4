//! A simulated instance's changelogs: the runtime's restore reads a
//! store's changelog partition from the in-memory log, as a
//! `read_committed` consumer sees it, and the instance's group's committed
//! offsets from the world.

use std::sync::{Arc, Mutex};

use super::world::{World, lock};
use crate::error::{Error, Result};
use crate::state::changelog::{ChangeRecord, STATE_INPUT};
use crate::state::reading::DynChangelogs;
use crate::state::restore::Committed;

/// The changelogs of one simulated instance, in consumer group `group`.
pub(crate) struct SimChangelogs {
    pub(crate) world: Arc<Mutex<World>>,
    pub(crate) group: usize,
}

impl DynChangelogs for SimChangelogs {
    fn records(&self, topic: &str, partition: i32) -> Result<Vec<ChangeRecord>> {
        let world = lock(&self.world);
        let index = *world.index.get(topic).ok_or_else(|| Error::UnknownTopic {
            topic: topic.to_owned(),
        })?;
        let partitions = world.logs[index].partitions.len() as i32;
        if partition >= partitions {
            return Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partitions,
            });
        }
        Ok(world
            .readable(index, partition)
            .map(|(offset, stored)| ChangeRecord {
                offset,
                key: stored.key.as_deref().map(<[u8]>::to_vec),
                value: (!stored.tombstone).then(|| stored.value.clone()),
                input: stored.headers.get(STATE_INPUT).map(<[u8]>::to_vec),
            })
            .collect())
    }

    fn committed(&self, inputs: &[Arc<str>], partition: i32) -> Committed {
        let world = lock(&self.world);
        let group = world.committed.get(&self.group);
        let mut committed = Committed::default();
        for input in inputs {
            let Some(&index) = world.index.get(&**input) else {
                continue;
            };
            let offset = group.and_then(|g| g.get(&(index, partition))).copied();
            committed.insert(input, partition, offset);
        }
        committed
    }
}
