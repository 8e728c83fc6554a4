//! The simulated bus: topics of partitions of records, the mailboxes
//! through which the driver hands batches to actor instances, the groups'
//! offsets, and the records published and not yet acknowledged.
//!
//! One `World` per simulation, behind a mutex shared by the driver, every
//! instance's feed and every publisher's outlet. Everything runs on the
//! simulation's one thread, so the lock is never contended; it exists
//! because publishers must be `Send`.

// Just under 400 lines for one job: the simulated broker's state and what it
// does on a publish (partition, fate, acknowledgement).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use rand::Rng as _;

pub(crate) use super::acks::Acks;
use rand_chacha::ChaCha8Rng;

use crate::delivery::tracker::AckSlot;
use crate::error::Result;
use crate::kafka::partitioner::partition_for_key;
use crate::ops::stats::ActorStats;
use crate::wire::headers::Headers;

/// One record as the bus stores it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) key: Option<Arc<[u8]>>,
    pub(crate) value: Arc<[u8]>,
    pub(crate) headers: Arc<Headers>,
    pub(crate) timestamp_ms: i64,
    /// A deletion (a changelog's tombstone): `value` is empty and means
    /// none.
    pub(crate) tombstone: bool,
    /// Written in a transaction that was aborted: it takes its offset, and
    /// no `read_committed` reader (every scribe consumer) ever sees it.
    pub(crate) aborted: bool,
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

/// The mailbox between the driver and one actor instance: what its
/// consumer is assigned, handed and has stored.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// The actor whose instance it is, and which of its members (its
    /// supervisors) started it.
    pub(crate) actor: usize,
    pub(crate) member: u64,
    /// A replay's instance: the partitions it reads and where it starts
    /// (`None`: a member of the actor's group, assigned by the driver).
    pub(crate) replay: Option<BTreeMap<(usize, i32), i64>>,
    /// A batch handed over and not yet taken.
    pub(crate) grant: Option<Grant>,
    /// Whether a batch is being handled: set by the driver with a grant,
    /// cleared by the instance's consumer when the feed asks for a record
    /// after the batch's last.
    pub(crate) busy: bool,
    /// The partitions the instance's consumer is assigned.
    pub(crate) assigned: Vec<(usize, i32)>,
    /// Offsets its feed stored (the next to read), not yet committed.
    pub(crate) stored: BTreeMap<(usize, i32), i64>,
    /// The instance's feed is gone (its actor stopped).
    pub(crate) exited: bool,
    /// Its publisher's flag for a record not delivered.
    pub(crate) undelivered: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes the instance's feed.
    pub(crate) feed: Option<Waker>,
    /// How many times its assignment changed: what its consumer reports as
    /// rebalances.
    pub(crate) rebalances: u64,
    /// Partitions its consumer paused: granted nothing more.
    pub(crate) paused: Vec<(usize, i32)>,
    /// Whether each partition newly assigned is paused until its feed
    /// restored its state (an actor with stores).
    pub(crate) hold_back: bool,
    /// Held back: the partitions assigned since its feed last took them.
    pub(crate) fresh: Vec<(usize, i32)>,
    /// Its feed asked to go back to the committed offsets (an exactly-once
    /// feed after a rebalance); the driver moves its positions.
    pub(crate) rewind: bool,
    /// Exactly-once: its producer's open transaction.
    pub(crate) txn: Option<Txn>,
}

/// An open transaction of one instance's producer: the records of it the
/// simulated broker appended (invisible to `read_committed` readers until
/// it commits; marked aborted if it aborts).
#[derive(Debug, Default)]
pub(crate) struct Txn {
    pub(crate) written: Vec<(usize, i32, i64)>,
}

/// A tail in the world: its topic, the next offset it reads of each
/// partition, and where it hands records.
pub(crate) struct Tap {
    pub(crate) topic: usize,
    pub(crate) next: Vec<i64>,
    pub(crate) on: Arc<dyn crate::kafka::tail::OnRecord>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("topic", &self.topic)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// A record published and not yet acknowledged by the simulated broker.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// The instance that published it.
    pub(crate) instance: u64,
    pub(crate) topic: usize,
    pub(crate) partition: i32,
    pub(crate) record: Stored,
    /// The slot of the record that caused it, counted down on the ack.
    pub(crate) slot: Arc<AckSlot>,
    pub(crate) stats: Arc<ActorStats>,
    /// The broker will not acknowledge it: its publish fails.
    pub(crate) lost: bool,
    /// When the acknowledgement comes (virtual time); `None`: as soon as
    /// the driver looks.
    pub(crate) due: Option<tokio::time::Instant>,
    /// Sent in the instance's open transaction.
    pub(crate) txn: bool,
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
    /// Each consumer group's committed offsets: the next offset to read.
    /// An actor's group is its index; see [`replay_group`].
    pub(crate) committed: HashMap<usize, BTreeMap<(usize, i32), i64>>,
    /// Per partition, the open transactions with records there: the
    /// instance and the offset of its first record on the partition. A
    /// `read_committed` reader stops at the lowest (the last stable
    /// offset).
    pub(crate) open: BTreeMap<(usize, i32), Vec<(u64, i64)>>,
    /// Published records waiting for their acknowledgement, oldest first.
    pub(crate) in_flight: VecDeque<InFlight>,
    pub(crate) acks: Acks,
    /// The partitions, by instance, where a record the instance sent was
    /// lost: the simulated idempotent producer fails what the instance sent
    /// there after it rather than open a gap, so a key's records never
    /// land out of order. The instance stops for the failure; its entries
    /// go with it.
    pub(crate) broken: Vec<(u64, usize, i32)>,
    pub(crate) handled: HandledCounts,
    /// Partitions of unkeyed records.
    pub(crate) rng: ChaCha8Rng,
    /// Grows with every append and every instance event.
    pub(crate) generation: u64,
    /// The id of the next instance.
    pub(crate) next_id: u64,
    /// Grows when an instance starts or ends, or a supervisor ends: what
    /// the driver's `sync` looks at.
    pub(crate) membership: u64,
    /// Wakes the driver.
    pub(crate) driver: Option<Waker>,
    /// The tails reading topics from their end (askers' replies), by id.
    pub(crate) taps: BTreeMap<u64, Tap>,
}

impl World {
    /// A world whose choices follow `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        use rand::SeedableRng as _;
        let rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0b05);
        Self {
            logs: Vec::new(),
            index: BTreeMap::new(),
            slots: BTreeMap::new(),
            committed: HashMap::new(),
            open: BTreeMap::new(),
            in_flight: VecDeque::new(),
            acks: Acks::new(ChaCha8Rng::seed_from_u64(seed ^ 0xac45)),
            broken: Vec::new(),
            handled: HashMap::new(),
            rng,
            generation: 0,
            next_id: 0,
            membership: 0,
            driver: None,
            taps: BTreeMap::new(),
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

    /// Where Kafka's default partitioner puts a record: by the murmur2
    /// hash of its key, or anywhere (seeded) without one, unless a
    /// partition is given.
    pub(crate) fn partition_of(
        &mut self,
        topic: usize,
        partition: Option<i32>,
        key: Option<&[u8]>,
    ) -> i32 {
        let count = self.logs[topic].partitions.len() as i32;
        match (partition, key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => self.rng.random_range(0..count),
        }
    }

    /// Appends a record where [`World::partition_of`] puts it. Returns its
    /// partition and offset.
    pub(crate) fn append(
        &mut self,
        topic: usize,
        partition: Option<i32>,
        record: Stored,
    ) -> (i32, i64) {
        let partition = self.partition_of(topic, partition, record.key.as_deref());
        let log = &mut self.logs[topic].partitions[partition as usize];
        log.push(record);
        let offset = log.len() as i64 - 1;
        self.changed();
        (partition, offset)
    }

    /// The broker's answer to a record sent: appended and acknowledged, or
    /// lost and its publish failed. What the same instance sent to that
    /// partition after a lost record is lost with it (see
    /// [`World::broken`]). The caller notes the change.
    pub(crate) fn acknowledge(&mut self, record: InFlight) {
        let at = (record.instance, record.topic, record.partition);
        if record.lost || self.broken.contains(&at) {
            if !self.broken.contains(&at) {
                self.broken.push(at);
            }
            if let Some(slot) = self.slots.get(&record.instance) {
                slot.undelivered
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            tracing::warn!(
                topic = %self.logs[record.topic].name,
                partition = record.partition,
                "simulated broker lost a record; the offset that caused it will not be committed"
            );
            ActorStats::add(&record.stats.publish_failures, 1);
            record
                .slot
                .fail_because(|| "the simulated broker lost it".into());
        } else {
            let log = &mut self.logs[record.topic].partitions[record.partition as usize];
            log.push(record.record);
            let offset = log.len() as i64 - 1;
            if record.txn {
                self.written_in_txn(record.instance, record.topic, record.partition, offset);
            }
            ActorStats::add(&record.stats.published, 1);
            record.slot.done();
        }
    }

    /// Answers every record `instance` has in flight, at once, each with
    /// its fate.
    pub(crate) fn flush(&mut self, instance: u64) {
        let (mine, others) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|r| r.instance == instance);
        self.in_flight = others;
        for record in Vec::from(mine) {
            self.acknowledge(record);
        }
        self.changed();
    }

    /// Wakes the feeds of instances told of a record not delivered: an
    /// acknowledgement may have let their trackers find which it was.
    pub(crate) fn wake_undelivered(&mut self) {
        for slot in self.slots.values_mut() {
            if slot.undelivered.load(std::sync::atomic::Ordering::Acquire)
                && let Some(feed) = slot.feed.take()
            {
                feed.wake();
            }
        }
    }

    /// Counts records an instance of `actor` handled.
    pub(crate) fn count_handled(&mut self, actor: usize, handled: &mut Vec<(usize, i32, i64)>) {
        let mut records = handled.drain(..).peekable();
        while let Some((topic, partition, offset)) = records.next() {
            // One lookup for a run of records of one partition.
            let counts = self.handled.entry((actor, topic, partition)).or_default();
            let mut offset = offset;
            loop {
                let at = offset as usize;
                if counts.len() <= at {
                    counts.resize(at + 1, 0);
                }
                counts[at] += 1;
                match records.next_if(|&(t, p, _)| (t, p) == (topic, partition)) {
                    Some((_, _, next)) => offset = next,
                    None => break,
                }
            }
        }
    }

    /// Commits the offsets instance `id` of `actor` stored.
    pub(crate) fn commit(&mut self, actor: usize, id: u64) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let committed = self.committed.entry(actor).or_default();
        for (tp, offset) in std::mem::take(&mut slot.stored) {
            let at = committed.entry(tp).or_insert(0);
            *at = (*at).max(offset);
        }
    }

    /// A new instance's id.
    pub(crate) fn new_instance_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
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

/// Where one actor instance's publisher writes in a simulation: its
/// output topic, and its dead-letter topic. A record sent waits in
/// [`World::in_flight`] until the driver acknowledges it (appends it and
/// counts its cause's slot down) or loses it (fails the slot).
pub(crate) struct Outlet {
    pub(crate) world: Arc<Mutex<World>>,
    /// The instance publishing.
    pub(crate) instance: u64,
    /// Its output topic's index.
    pub(crate) topic: usize,
    pub(crate) stats: Arc<ActorStats>,
    /// Its actor's index, and the consumer group its transactions commit
    /// offsets in.
    pub(crate) actor: usize,
    pub(crate) group: usize,
    /// Whether it writes in transactions.
    pub(crate) transactional: bool,
}

/// The simulated broker as an instance's producer.
impl crate::publisher::DynSink for Outlet {
    fn send(
        &self,
        sent: crate::publisher::Sent<'_>,
        headers: Headers,
        slot: Arc<AckSlot>,
    ) -> Result<()> {
        let crate::publisher::Sent {
            topic,
            partition,
            key,
            value,
            timestamp_ms,
        } = sent;
        // Only a store's changelog picks its partition or deletes a key.
        let mut world = lock(&self.world);
        let index = if *world.logs[self.topic].name == *topic {
            self.topic
        } else {
            match world.index.get(topic) {
                Some(&index) => index,
                None => {
                    slot.done();
                    return Err(crate::Error::UnknownTopic {
                        topic: topic.to_owned(),
                    });
                }
            }
        };
        let partition = world.partition_of(index, partition, key);
        let (lost, due) = world.acks.fate(index);
        let record = Stored {
            key: key.map(Arc::from),
            value: Arc::from(value.unwrap_or_default()),
            headers: Arc::new(headers),
            timestamp_ms,
            tombstone: value.is_none(),
            aborted: false,
        };
        // A transactional producer sends inside its open transaction.
        let txn = self.transactional;
        world.in_flight.push_back(InFlight {
            instance: self.instance,
            topic: index,
            partition,
            record,
            slot,
            stats: self.stats.clone(),
            lost,
            due,
            txn,
        });
        world.changed();
        Ok(())
    }

    /// The simulated broker answers at once, each record with its fate.
    fn flush(&self) {
        lock(&self.world).flush(self.instance);
    }

    fn begin_txn(&self) {
        lock(&self.world).begin_txn(self.instance);
    }

    fn commit_txn(
        &self,
        offsets: &[crate::delivery::consumed::Position],
    ) -> std::result::Result<(), String> {
        lock(&self.world).commit_txn(self.instance, self.actor, self.group, offsets)
    }

    fn abort_txn(&self) -> bool {
        lock(&self.world).abort_txn(self.instance)
    }
}
