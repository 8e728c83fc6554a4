//! Transactions on the simulated broker: an exactly-once instance's
//! records stay invisible to `read_committed` readers until its
//! transaction commits together with its input offsets, and are never
//! seen if it aborts, as on Kafka.

use super::world::{InFlight, Stored, Txn, World};
use crate::delivery::consumed::Position;

impl World {
    /// Notes that the open transaction of `instance` wrote `offset` of
    /// `topic`/`partition`.
    pub(super) fn written_in_txn(
        &mut self,
        instance: u64,
        topic: usize,
        partition: i32,
        offset: i64,
    ) {
        let Some(txn) = self.slots.get_mut(&instance).and_then(|s| s.txn.as_mut()) else {
            // Its transaction is gone (aborted with the record in flight).
            self.logs[topic].partitions[partition as usize][offset as usize].aborted = true;
            return;
        };
        txn.written.push((topic, partition, offset));
        let open = self.open.entry((topic, partition)).or_default();
        if !open.iter().any(|&(i, _)| i == instance) {
            open.push((instance, offset));
        }
    }

    /// Opens a transaction for `instance` unless one is open.
    pub(crate) fn begin_txn(&mut self, instance: u64) {
        if let Some(slot) = self.slots.get_mut(&instance) {
            slot.txn.get_or_insert_with(Txn::default);
        }
    }

    /// Commits the open transaction of `instance` of `actor`, with
    /// `offsets` for `group`: first every record it has in flight is
    /// answered (a commit flushes); then, unless one was lost or the commit
    /// fails on purpose, its records become visible and the offsets are
    /// committed, at once. On an error the transaction must be aborted.
    pub(crate) fn commit_txn(
        &mut self,
        instance: u64,
        actor: usize,
        group: usize,
        offsets: &[Position],
    ) -> std::result::Result<(), String> {
        let mut indexed = Vec::with_capacity(offsets.len());
        for at in offsets {
            let topic = self
                .index
                .get(&*at.topic)
                .copied()
                .ok_or_else(|| format!("unknown topic `{}`", at.topic))?;
            indexed.push(((topic, at.partition), at.offset));
        }
        self.flush(instance);
        if self.broken.iter().any(|&(i, _, _)| i == instance) {
            return Err("a record of the transaction was not delivered".into());
        }
        if self.acks.commit_fails(actor) {
            return Err("the simulated broker failed the commit".into());
        }
        if let Some(txn) = self.slots.get_mut(&instance).and_then(|s| s.txn.take()) {
            self.close(instance, &txn);
        }
        let committed = self.committed.entry(group).or_default();
        for (tp, offset) in indexed {
            committed.insert(tp, offset);
        }
        self.changed();
        Ok(())
    }

    /// Aborts the open transaction of `instance`, if any: its records in
    /// flight and appended are marked aborted, never to be read. Returns
    /// whether one was open.
    pub(crate) fn abort_txn(&mut self, instance: u64) -> bool {
        let Some(txn) = self.slots.get_mut(&instance).and_then(|s| s.txn.take()) else {
            return false;
        };
        // What is still in flight lands aborted (it takes its offsets, as
        // on Kafka).
        let (mine, others) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|r| r.instance == instance && r.txn);
        self.in_flight = others;
        for record in Vec::<InFlight>::from(mine) {
            let log = &mut self.logs[record.topic].partitions[record.partition as usize];
            log.push(Stored {
                aborted: true,
                ..record.record
            });
        }
        for &(topic, partition, offset) in &txn.written {
            self.logs[topic].partitions[partition as usize][offset as usize].aborted = true;
        }
        self.close(instance, &txn);
        self.changed();
        true
    }

    /// Takes the partitions `txn` wrote out of the open transactions.
    fn close(&mut self, instance: u64, txn: &Txn) {
        for &(topic, partition, _) in &txn.written {
            if let Some(open) = self.open.get_mut(&(topic, partition)) {
                open.retain(|&(i, _)| i != instance);
                if open.is_empty() {
                    self.open.remove(&(topic, partition));
                }
            }
        }
    }

    /// Where a `read_committed` reader of `topic`/`partition` stops: before
    /// the first record of a transaction still open (the last stable
    /// offset), else at the end.
    pub(crate) fn stable_end(&self, topic: usize, partition: i32) -> i64 {
        let end = self.end_offset(topic, partition);
        if self.open.is_empty() {
            return end;
        }
        self.open
            .get(&(topic, partition))
            .and_then(|open| open.iter().map(|&(_, first)| first).min())
            .map_or(end, |first| first.min(end))
    }

    /// The records of `topic`/`partition` a `read_committed` reader reads,
    /// with their offsets: below the last stable offset, none aborted.
    pub(crate) fn readable(
        &self,
        topic: usize,
        partition: i32,
    ) -> impl Iterator<Item = (i64, &Stored)> {
        let end = self.stable_end(topic, partition) as usize;
        self.logs[topic].partitions[partition as usize][..end]
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.aborted)
            .map(|(offset, r)| (offset as i64, r))
    }
}
