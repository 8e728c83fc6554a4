//! The simulated bus: topics of partitions of records, and the mailboxes
//! through which the driver hands batches to actor instances.
//!
//! One `World` per simulation, behind a mutex shared by the driver, every
//! instance's feed and every publisher's outlet. Everything runs on the
//! simulation's one thread, so the lock is never contended; it exists
//! because publishers must be `Send`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::headers::Headers;
use crate::partitioner::partition_for_key;
use crate::stats::ActorStats;

/// One record as the bus stores it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Arc<[u8]>,
    pub(crate) headers: Headers,
    pub(crate) timestamp_ms: i64,
}

/// A topic: its partitions' logs.
#[derive(Debug)]
pub(crate) struct Log {
    pub(crate) name: Arc<str>,
    pub(crate) partitions: Vec<Vec<Stored>>,
}

/// Records `from..from + count` of one partition, handed to one instance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    pub(crate) topic: usize,
    pub(crate) partition: i32,
    pub(crate) from: i64,
    pub(crate) count: usize,
}

/// The mailbox between the driver and one actor instance.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// The actor's index in the simulation.
    pub(crate) actor: usize,
    /// A batch handed over and not yet taken.
    pub(crate) grant: Option<Grant>,
    /// Whether a batch is being handled.
    pub(crate) busy: bool,
    /// After a batch: the next offset to commit (every record before it completed).
    pub(crate) completed: Option<i64>,
    /// Why the instance must stop and restart (a handler panicked).
    pub(crate) failure: Option<crate::failure::Failure>,
    /// Why the instance stopped for good (its failure policy said so).
    pub(crate) halt: Option<crate::failure::Failure>,
    /// The driver asks the instance to end without committing (a crash).
    pub(crate) kill: bool,
    /// The instance's feed is gone (its actor stopped).
    pub(crate) exited: bool,
    /// Wakes the instance's feed.
    pub(crate) feed: Option<Waker>,
}

/// How often each record was handled, per actor, topic and partition,
/// indexed by offset: what the invariant checks read.
pub(crate) type HandledCounts = HashMap<(usize, usize, i32), Vec<u32>>;

/// The shared state of a simulation.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) logs: Vec<Log>,
    pub(crate) index: BTreeMap<String, usize>,
    pub(crate) slots: BTreeMap<u64, Slot>,
    pub(crate) handled: HandledCounts,
    /// Partitions of unkeyed records.
    pub(crate) rng: ChaCha8Rng,
    /// Grows with every append and every instance event.
    pub(crate) generation: u64,
    /// Wakes the driver.
    pub(crate) driver: Option<Waker>,
}

impl World {
    pub(crate) fn new(rng: ChaCha8Rng) -> Self {
        Self {
            logs: Vec::new(),
            index: BTreeMap::new(),
            slots: BTreeMap::new(),
            handled: HashMap::new(),
            rng,
            generation: 0,
            driver: None,
        }
    }

    /// Adds a topic unless it exists; returns its index.
    pub(crate) fn create_topic(&mut self, name: &str, partitions: i32) -> usize {
        if let Some(&index) = self.index.get(name) {
            return index;
        }
        let index = self.logs.len();
        self.logs.push(Log {
            name: name.into(),
            partitions: (0..partitions.max(1)).map(|_| Vec::new()).collect(),
        });
        self.index.insert(name.to_owned(), index);
        index
    }

    /// Appends a record where Kafka's default partitioner puts it: by the
    /// murmur2 hash of its key, or anywhere (seeded) without one, unless a
    /// partition is given. Returns its partition and offset.
    pub(crate) fn append(
        &mut self,
        topic: usize,
        partition: Option<i32>,
        record: Stored,
    ) -> (i32, i64) {
        let count = self.logs[topic].partitions.len() as i32;
        let partition = match (partition, &record.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => self.rng.random_range(0..count),
        };
        let log = &mut self.logs[topic].partitions[partition as usize];
        log.push(record);
        let offset = log.len() as i64 - 1;
        self.changed();
        (partition, offset)
    }

    /// Notes a change and wakes the driver.
    pub(crate) fn changed(&mut self) {
        self.generation += 1;
        if let Some(waker) = self.driver.take() {
            waker.wake();
        }
    }

    pub(crate) fn end_offset(&self, topic: usize, partition: i32) -> i64 {
        self.logs[topic].partitions[partition as usize].len() as i64
    }
}

/// Locks the world; a panic elsewhere does not poison the simulation.
pub(crate) fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where one actor's publisher writes in a simulation: its output topic.
pub(crate) struct Outlet {
    pub(crate) world: Arc<Mutex<World>>,
    pub(crate) topic: usize,
    pub(crate) stats: Arc<ActorStats>,
}

impl Outlet {
    /// Appends a dead letter to `topic` (the actor's dead-letter topic).
    pub(crate) fn dead_letter(
        &self,
        topic: &str,
        raw: &crate::consumed::Fetched,
        headers: Headers,
    ) -> Result<()> {
        let mut world = lock(&self.world);
        let Some(&index) = world.index.get(topic) else {
            return Err(crate::Error::UnknownTopic {
                topic: topic.to_owned(),
            });
        };
        let record = Stored {
            key: raw.key.clone(),
            value: raw.value.clone(),
            headers,
            timestamp_ms: raw.timestamp.unwrap_or_default(),
        };
        world.append(index, None, record);
        Ok(())
    }
}

impl Outlet {
    /// Appends a published record; the simulated broker acknowledges it at once.
    pub(crate) fn append(
        &self,
        key: Option<&[u8]>,
        value: &[u8],
        headers: Headers,
        timestamp_ms: i64,
    ) -> Result<()> {
        let record = Stored {
            key: key.map(<[u8]>::to_vec),
            value: Arc::from(value),
            headers,
            timestamp_ms,
        };
        lock(&self.world).append(self.topic, None, record);
        ActorStats::add(&self.stats.published, 1);
        Ok(())
    }
}
