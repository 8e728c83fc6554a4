//! [`Stores`]: the state of one actor instance, store by store and
//! partition by partition, as bytes.
//!
//! Each partition the instance holds has a shard per store: what the
//! changelog says, restored before the partition's first record, then
//! changed by its handlers. A handler's changes are kept aside while it
//! runs; they take effect when it returns `Ok` ([`Stores::finish`] sends
//! them to the changelog), and are forgotten when it fails or panics
//! ([`Stores::discard`]), so a record tried again changes the state once.
//! Under exactly-once, what handlers changed since the transaction began
//! is kept aside too, until the transaction commits ([`Stores::committed`])
//! or aborts ([`Stores::aborted`]): no aborted change is ever seen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::StoreInfo;
use super::changelog::Input;
use crate::delivery::consumed::Position;
use crate::error::{Error, Result};
use crate::wire::codec::{DecodeError, SchemaRegistry};

/// A key and its value, as a store keeps them (encoded).
pub(crate) type Entry = (Vec<u8>, Arc<[u8]>);

/// Checks that a state value decodes as its store's type.
pub(crate) type ValueCheck =
    Arc<dyn Fn(&[u8]) -> std::result::Result<(), DecodeError> + Send + Sync>;

/// A store as an instance holds it: what it is, and how its values are
/// checked when restored.
#[derive(Clone)]
pub(crate) struct StoreSpec {
    pub(crate) info: StoreInfo,
    pub(crate) check: ValueCheck,
    /// A timer set's clock (its values are [`TimerDue`](super::due::TimerDue)s).
    pub(crate) clock: Option<super::due::TimerClock>,
    /// Its keys from text and values as JSON, for reading it from outside.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // read by the admin endpoint
    pub(crate) json: Arc<super::json::StoreJson>,
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSpec")
            .field("info", &self.info)
            .finish()
    }
}

/// A key's change: its new value, or `None` once deleted.
type Change = Option<Arc<[u8]>>;

/// One store's share of one partition.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Shard {
    /// What the changelog holds (under exactly-once: what committed).
    pub(crate) base: BTreeMap<Vec<u8>, Arc<[u8]>>,
    /// Exactly-once: the changes of the open transaction.
    txn: BTreeMap<Vec<u8>, Change>,
}

impl Shard {
    /// A shard holding `base`.
    pub(crate) fn of(base: BTreeMap<Vec<u8>, Arc<[u8]>>) -> Self {
        Self {
            base,
            txn: BTreeMap::new(),
        }
    }

    /// The value of `key`, the open transaction's changes first.
    pub(super) fn get(&self, key: &[u8]) -> Option<Arc<[u8]>> {
        match self.txn.get(key) {
            Some(change) => change.clone(),
            None => self.base.get(key).cloned(),
        }
    }

    fn apply(map: &mut BTreeMap<Vec<u8>, Arc<[u8]>>, key: Vec<u8>, change: Change) {
        match change {
            Some(value) => {
                map.insert(key, value);
            }
            None => {
                map.remove(&key);
            }
        }
    }

    fn commit(&mut self) {
        for (key, change) in std::mem::take(&mut self.txn) {
            Self::apply(&mut self.base, key, change);
        }
    }
}

/// A change on its way to the changelog: what [`Stores::finish`] hands
/// its sender.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    /// The changelog topic.
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) key: &'a [u8],
    /// The new value; none for a deletion (a tombstone).
    pub(crate) value: Option<&'a [u8]>,
    /// The [`STATE_INPUT`](super::changelog::STATE_INPUT) header's value.
    pub(crate) input: &'a str,
}

/// The state of one actor instance.
pub(crate) struct Stores {
    actor: Arc<str>,
    specs: Vec<StoreSpec>,
    registry: SchemaRegistry,
    transactional: bool,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("actor", &self.actor)
            .field("stores", &self.specs)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub(super) struct Inner {
    /// The record being handled, and its changes so far, store by store.
    current: Option<Position>,
    changes: Vec<BTreeMap<Vec<u8>, Change>>,
    /// Empty maps, one per store, swapped with `changes` while a record's
    /// changes are sent (none allocated per record).
    spare: Vec<BTreeMap<Vec<u8>, Change>>,
    /// The shards of each partition held, one per store.
    pub(super) partitions: BTreeMap<i32, Vec<Shard>>,
    /// When the timers of the timer sets are due.
    pub(super) due: super::due::DueIndex,
}

impl Stores {
    /// The stores `specs` of `actor`; `transactional` under exactly-once.
    pub(crate) fn new(
        actor: Arc<str>,
        specs: Vec<StoreSpec>,
        registry: SchemaRegistry,
        transactional: bool,
    ) -> Self {
        let changes = vec![BTreeMap::new(); specs.len()];
        Self {
            actor,
            specs,
            registry,
            transactional,
            inner: Mutex::new(Inner {
                changes,
                ..Inner::default()
            }),
        }
    }

    /// Its state (the timers' index in `timers.rs` reads it too).
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes in the timers' index that `key` of store `index`, partition
    /// `partition`, now holds `value`, if the store is a timer set.
    fn index_due(
        specs: &[StoreSpec],
        due: &mut super::due::DueIndex,
        index: usize,
        partition: i32,
        key: &[u8],
        value: &[u8],
    ) {
        if specs[index].clock.is_some()
            && let Some(at) = super::due::due_of(value)
        {
            due.entry((index, partition))
                .or_default()
                .insert((at, key.to_vec()));
        }
    }

    /// The stores, in the order the actor declared them.
    pub(crate) fn specs(&self) -> &[StoreSpec] {
        &self.specs
    }

    /// The node's schemas, which state values are read with.
    pub(crate) fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    /// The actor's name.
    pub(crate) fn actor(&self) -> &str {
        &self.actor
    }

    /// The index of store `name`, if the actor declared it.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.info.name == name)
    }

    fn refused(&self, index: usize, reason: String) -> Error {
        Error::State {
            actor: self.actor.to_string(),
            store: self.specs[index].info.name.clone(),
            reason,
        }
    }

    /// The shard of store `index` for the record being handled, and that
    /// record's changes.
    fn scope<'a>(
        &self,
        inner: &'a mut Inner,
        index: usize,
    ) -> Result<(&'a mut BTreeMap<Vec<u8>, Change>, &'a Shard)> {
        let Some(at) = &inner.current else {
            return Err(self.refused(
                index,
                "state is read and written only while a record is handled".into(),
            ));
        };
        let Some(shards) = inner.partitions.get(&at.partition) else {
            return Err(self.refused(
                index,
                format!(
                    "partition {} is not restored on this instance (record {at})",
                    at.partition
                ),
            ));
        };
        Ok((&mut inner.changes[index], &shards[index]))
    }

    /// The value of `key` in store `index`, as the record being handled
    /// sees it (its own changes first).
    pub(crate) fn get(&self, index: usize, key: &[u8]) -> Result<Option<Arc<[u8]>>> {
        let mut inner = self.lock();
        let (changes, shard) = self.scope(&mut inner, index)?;
        Ok(match changes.get(key) {
            Some(change) => change.clone(),
            None => shard.get(key),
        })
    }

    /// Sets `key` of store `index` to `value` (`None` deletes it), taking
    /// effect when the handler returns `Ok`.
    pub(crate) fn set(&self, index: usize, key: Vec<u8>, value: Change) -> Result<()> {
        let mut inner = self.lock();
        let (changes, _) = self.scope(&mut inner, index)?;
        changes.insert(key, value);
        Ok(())
    }

    /// Every key of store `index` in the record's partition, with its
    /// value, in the order of the keys' bytes.
    pub(crate) fn scan(&self, index: usize) -> Result<Vec<Entry>> {
        let mut inner = self.lock();
        let (changes, shard) = self.scope(&mut inner, index)?;
        let mut all: BTreeMap<&[u8], Option<&Arc<[u8]>>> = shard
            .base
            .iter()
            .map(|(key, value)| (key.as_slice(), Some(value)))
            .collect();
        for (key, change) in shard.txn.iter().chain(changes.iter()) {
            all.insert(key, change.as_ref());
        }
        Ok(all
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key.to_vec(), v.clone())))
            .collect())
    }

    /// A record begins to be handled: state calls see its partition.
    pub(crate) fn begin(&self, at: &Position) {
        let mut inner = self.lock();
        inner.current = Some(at.clone());
        for changes in &mut inner.changes {
            changes.clear();
        }
    }

    /// The record's handler failed or panicked: its changes are forgotten.
    pub(crate) fn discard(&self) {
        let mut inner = self.lock();
        inner.current = None;
        for changes in &mut inner.changes {
            changes.clear();
        }
    }

    /// The record's handler returned `Ok`: hands each change to `send`
    /// (which writes it to the changelog, counted on the record's slot),
    /// then makes the changes the shard's. On an error from `send` the
    /// changes are forgotten and the error returned: the record fails
    /// (its slot was failed by the send, so its offset never commits).
    pub(crate) fn finish(&self, mut send: impl FnMut(Outgoing<'_>) -> Result<()>) -> Result<()> {
        let (at, mut changes) = {
            let mut inner = self.lock();
            let Some(at) = inner.current.take() else {
                return Ok(());
            };
            if inner.changes.iter().all(BTreeMap::is_empty) {
                return Ok(());
            }
            let mut spare = std::mem::take(&mut inner.spare);
            if spare.len() != self.specs.len() {
                spare = vec![BTreeMap::new(); self.specs.len()];
            }
            (at, std::mem::replace(&mut inner.changes, spare))
        };
        let input = Input::text(&at.topic, at.partition, at.offset);
        for (spec, changes) in self.specs.iter().zip(&changes) {
            for (key, value) in changes {
                send(Outgoing {
                    topic: &spec.info.changelog,
                    partition: at.partition,
                    key,
                    value: value.as_deref(),
                    input: &input,
                })?;
            }
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        let transactional = self.transactional;
        if let Some(shards) = inner.partitions.get_mut(&at.partition) {
            for (index, (shard, changes)) in shards.iter_mut().zip(&mut changes).enumerate() {
                for (key, change) in std::mem::take(changes) {
                    if let Some(value) = &change {
                        Self::index_due(
                            &self.specs,
                            &mut inner.due,
                            index,
                            at.partition,
                            &key,
                            value,
                        );
                    }
                    if transactional {
                        shard.txn.insert(key, change);
                    } else {
                        Shard::apply(&mut shard.base, key, change);
                    }
                }
            }
        }
        // The emptied maps are kept for the next record.
        inner.spare = changes;
        Ok(())
    }

    /// Exactly-once: the transaction committed; its changes are the
    /// shards' now.
    pub(crate) fn committed(&self) {
        let mut inner = self.lock();
        for shard in inner.partitions.values_mut().flatten() {
            shard.commit();
        }
    }

    /// Exactly-once: the transaction aborted; its changes are gone, as
    /// they are from the changelog.
    pub(crate) fn aborted(&self) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for shard in inner.partitions.values_mut().flatten() {
            shard.txn.clear();
        }
        // Timers the transaction fired or changed are as committed again.
        inner.due.clear();
        for (&partition, shards) in &inner.partitions {
            for (index, shard) in shards.iter().enumerate() {
                for (key, value) in &shard.base {
                    Self::index_due(&self.specs, &mut inner.due, index, partition, key, value);
                }
            }
        }
    }

    /// `partition` is restored: its shards, one per store, in order.
    pub(crate) fn install(&self, partition: i32, shards: Vec<Shard>) {
        debug_assert_eq!(shards.len(), self.specs.len());
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.due.retain(|(_, p), _| *p != partition);
        for (index, shard) in shards.iter().enumerate() {
            for (key, value) in &shard.base {
                Self::index_due(&self.specs, &mut inner.due, index, partition, key, value);
            }
        }
        inner.partitions.insert(partition, shards);
    }

    /// `partition` is no longer this instance's: its shards go.
    pub(crate) fn release(&self, partition: i32) -> bool {
        let mut inner = self.lock();
        inner.due.retain(|(_, p), _| *p != partition);
        inner.partitions.remove(&partition).is_some()
    }

    /// The partitions whose shards this instance holds.
    pub(crate) fn held(&self) -> Vec<i32> {
        self.lock().partitions.keys().copied().collect()
    }

    /// The committed value of `key` in store `index`, partition
    /// `partition`, if this instance holds that partition (`Err` when it
    /// does not): what a reader outside the actor sees.
    #[cfg_attr(not(any(test, feature = "admin")), allow(dead_code))] // read by the admin endpoint
    pub(crate) fn peek(
        &self,
        index: usize,
        partition: i32,
        key: &[u8],
    ) -> std::result::Result<Option<Arc<[u8]>>, ()> {
        let inner = self.lock();
        let shards = inner.partitions.get(&partition).ok_or(())?;
        Ok(shards[index].base.get(key).cloned())
    }
}

#[cfg(test)]
#[path = "stores_tests.rs"]
mod tests;
