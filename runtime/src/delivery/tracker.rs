//! Which consumed offsets may be committed.
//!
//! Each consumed record gets an [`AckSlot`] counting what it still waits for:
//! one for its handler, plus one for every record the handler published
//! while handling it. The handler's return and the producer's delivery
//! reports count it down. A partition's offset advances over the longest
//! prefix of records whose slots reached zero, so an offset is committed only
//! after its record was handled *and* everything published because of it was
//! acknowledged by the broker.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::delivery::consumed::Position;

/// What one consumed record still waits for before its offset may commit.
#[derive(Debug)]
pub(crate) struct AckSlot {
    pending: AtomicU32,
    failed: AtomicBool,
    /// Someone awaits the slot ([`Acknowledged`]): a gateway's request.
    watch: Option<Box<Watch>>,
}

/// Who awaits a watched slot, and why it failed.
#[derive(Debug, Default)]
struct Watch {
    waker: futures::task::AtomicWaker,
    reason: std::sync::OnceLock<String>,
}

impl AckSlot {
    /// A slot waiting for its handler.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            pending: AtomicU32::new(1),
            failed: AtomicBool::new(false),
            watch: None,
        })
    }

    /// A slot waiting for nothing yet, which [`Acknowledged`] awaits: what
    /// a record sent outside any handler (a gateway's request) counts on.
    pub(crate) fn watched() -> Arc<Self> {
        Arc::new(Self {
            pending: AtomicU32::new(0),
            failed: AtomicBool::new(false),
            watch: Some(Box::default()),
        })
    }

    /// A slot for records published outside any handler (by source actors):
    /// it is never tracked, only flagged on failure.
    pub(crate) fn detached() -> Arc<Self> {
        Self::new()
    }

    pub(crate) fn add_pending(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// One awaited thing is done (the handler returned Ok, or a publish was acknowledged).
    pub(crate) fn done(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(watch) = &self.watch
        {
            watch.waker.wake();
        }
    }

    /// A publish caused by this record failed for good.
    pub(crate) fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        if let Some(watch) = &self.watch {
            watch.waker.wake();
        }
    }

    /// [`AckSlot::fail`], saying why to whoever awaits the slot.
    pub(crate) fn fail_because(&self, reason: impl FnOnce() -> String) {
        if let Some(watch) = &self.watch {
            let _ = watch.reason.set(reason());
        }
        self.fail();
    }

    fn is_complete(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// A watched slot ([`AckSlot::watched`]) awaited: `Ok` once everything
/// counted on it is acknowledged, else why it failed (when said).
pub(crate) struct Acknowledged(pub(crate) Arc<AckSlot>);

impl std::future::Future for Acknowledged {
    type Output = std::result::Result<(), Option<String>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let slot = &self.0;
        let watch = slot.watch.as_ref().expect("only a watched slot is awaited");
        watch.waker.register(cx.waker());
        if slot.has_failed() {
            return Poll::Ready(Err(watch.reason.get().cloned()));
        }
        if slot.is_complete() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

/// What [`OffsetTracker::collect`] found.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// The offsets that became committable: per partition, the next
    /// offset to read.
    pub(crate) offsets: Vec<Position>,
    /// A record whose publishes were not delivered, if any: its partition's
    /// offset stays before it.
    pub(crate) undelivered: Option<Position>,
}

/// A topic and partition.
type Partition = (Arc<str>, i32);
/// Consumed offsets of one partition not yet committable, oldest first.
type InFlight = VecDeque<(i64, Arc<AckSlot>)>;

/// In-order completion of consumed offsets, per topic and partition.
///
/// An instance reads a handful of partitions, so they are kept in a list,
/// found by comparing the topic's shared name first by pointer: no hashing
/// and no copy of the name per record.
#[derive(Debug, Default)]
pub(crate) struct OffsetTracker {
    partitions: Vec<(Partition, InFlight)>,
    /// The partition of the last record tracked.
    last: usize,
}

impl OffsetTracker {
    /// Starts tracking a consumed record.
    pub(crate) fn track(&mut self, at: &Position, slot: Arc<AckSlot>) {
        let is = |((topic, partition), _): &(Partition, InFlight)| {
            *partition == at.partition && (Arc::ptr_eq(topic, &at.topic) || *topic == at.topic)
        };
        if !self.partitions.get(self.last).is_some_and(is) {
            self.last = match self.partitions.iter().position(is) {
                Some(index) => index,
                None => {
                    let partition = (at.topic.clone(), at.partition);
                    self.partitions.push((partition, InFlight::new()));
                    self.partitions.len() - 1
                }
            };
        }
        self.partitions[self.last].1.push_back((at.offset, slot));
    }

    /// Removes every completed prefix and returns the offsets to store (the
    /// next offset to read, per partition). A partition stops at its first
    /// record whose publishes failed, which [`Collected::undelivered`]
    /// names; the other partitions' progress is returned all the same, so
    /// it is stored before the instance restarts and not handled again.
    pub(crate) fn collect(&mut self) -> Collected {
        let mut collected = Collected::default();
        for ((topic, partition), queue) in &mut self.partitions {
            let mut last = None;
            while let Some((offset, slot)) = queue.front() {
                if slot.has_failed() {
                    collected
                        .undelivered
                        .get_or_insert_with(|| Position::new(topic.clone(), *partition, *offset));
                    break;
                }
                if !slot.is_complete() {
                    break;
                }
                last = Some(*offset);
                queue.pop_front();
            }
            if let Some(offset) = last {
                collected
                    .offsets
                    .push(Position::new(topic.clone(), *partition, offset + 1));
            }
        }
        collected
    }

    /// Whether any record tracked waits for a publish that failed.
    pub(crate) fn any_failed(&self) -> bool {
        self.partitions
            .iter()
            .any(|(_, queue)| queue.iter().any(|(_, slot)| slot.has_failed()))
    }

    /// Number of records consumed but not yet committable.
    pub(crate) fn outstanding(&self) -> usize {
        self.partitions.iter().map(|(_, queue)| queue.len()).sum()
    }

    /// Forgets partitions this consumer no longer owns.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str, i32) -> bool) {
        self.partitions.retain(|((t, p), _)| keep(t, *p));
        self.last = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(list: &[Position]) -> Vec<(String, i32, i64)> {
        let mut v: Vec<_> = list
            .iter()
            .map(|p| (p.topic.to_string(), p.partition, p.offset))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn offset_advances_only_over_a_completed_prefix() {
        let topic: Arc<str> = "t".into();
        let mut tracker = OffsetTracker::default();
        let slots: Vec<_> = (0..3).map(|_| AckSlot::new()).collect();
        for (i, slot) in slots.iter().enumerate() {
            tracker.track(&Position::new(topic.clone(), 0, i as i64), slot.clone());
        }
        // Record 1 is handled and has nothing pending, but 0 still waits.
        slots[1].done();
        assert!(tracker.collect().offsets.is_empty());
        // Record 0 published one record that is not yet acknowledged.
        slots[0].add_pending();
        slots[0].done();
        assert!(tracker.collect().offsets.is_empty());
        slots[0].done();
        let list = tracker.collect().offsets;
        assert_eq!(offsets(&list), vec![("t".into(), 0, 2)]);
        assert_eq!(tracker.outstanding(), 1);
    }

    #[test]
    fn a_failure_behind_a_record_still_waiting_is_seen_but_not_yet_collected() {
        let topic: Arc<str> = "t".into();
        let mut tracker = OffsetTracker::default();
        let waiting = AckSlot::new();
        let failed = AckSlot::new();
        tracker.track(&Position::new(topic.clone(), 0, 1), waiting.clone());
        tracker.track(&Position::new(topic.clone(), 0, 2), failed.clone());
        assert!(!tracker.any_failed());
        failed.fail();
        assert!(tracker.any_failed());
        assert!(tracker.collect().undelivered.is_none());
        waiting.done();
        let undelivered = tracker
            .collect()
            .undelivered
            .expect("found once 1 completed");
        assert_eq!(undelivered.offset, 2);
    }

    #[test]
    fn a_failed_delivery_blocks_its_partition() {
        let topic: Arc<str> = "t".into();
        let mut tracker = OffsetTracker::default();
        let slot = AckSlot::new();
        tracker.track(&Position::new(topic.clone(), 2, 7), slot.clone());
        slot.fail();
        let err = tracker.collect().undelivered.unwrap();
        assert_eq!((err.partition, err.offset), (2, 7));
    }

    #[test]
    fn an_undelivered_record_keeps_the_progress_of_other_partitions() {
        let topic: Arc<str> = "t".into();
        let mut tracker = OffsetTracker::default();
        let done: Vec<_> = (0..3).map(|_| AckSlot::new()).collect();
        for (i, slot) in done.iter().enumerate() {
            tracker.track(&Position::new(topic.clone(), i as i32, 10), slot.clone());
            slot.done();
        }
        // Partition 1 also holds a record after the completed one whose
        // publish failed, and one complete after that.
        let failed = AckSlot::new();
        failed.fail();
        tracker.track(&Position::new(topic.clone(), 1, 11), failed);
        let after = AckSlot::new();
        after.done();
        tracker.track(&Position::new(topic.clone(), 1, 12), after);
        let collected = tracker.collect();
        let undelivered = collected.undelivered.unwrap();
        assert_eq!((undelivered.partition, undelivered.offset), (1, 11));
        assert_eq!(
            offsets(&collected.offsets),
            vec![
                ("t".into(), 0, 11),
                ("t".into(), 1, 11),
                ("t".into(), 2, 11)
            ]
        );
        // The failed record and the one behind it stay.
        assert_eq!(tracker.outstanding(), 2);
    }

    #[test]
    fn a_revoked_partition_is_forgotten_and_the_others_still_commit() {
        let topic: Arc<str> = "t".into();
        let mut tracker = OffsetTracker::default();
        let slots: Vec<_> = (0..4).map(|_| AckSlot::new()).collect();
        for (i, slot) in slots.iter().enumerate() {
            // Partitions 0 and 1, two records each.
            let at = Position::new(topic.clone(), (i % 2) as i32, (i / 2) as i64);
            tracker.track(&at, slot.clone());
        }
        // A rebalance takes partition 0 away with its records in flight.
        tracker.retain(|_, partition| partition == 1);
        assert_eq!(tracker.outstanding(), 2);
        for slot in &slots {
            slot.done();
        }
        let collected = tracker.collect();
        assert!(collected.undelivered.is_none());
        assert_eq!(
            offsets(&collected.offsets),
            vec![("t".into(), 1, 2)],
            "nothing is stored for the partition this consumer no longer owns"
        );
        assert_eq!(tracker.outstanding(), 0);
    }
}
