//! Restoring one partition of one store from its changelog: the records
//! applied in order, the rule that keeps the state in step with the
//! committed input, and what a broken record stops.
//!
//! At-least-once, a changelog may be ahead of the input offsets: a record
//! handled, its state changes acknowledged, and the instance gone before
//! its offset committed. That record is handled again, so a change it made
//! is dropped here: a change whose input record is at or past its input
//! partition's committed offset does not apply. The keys whose last change
//! was dropped are handed back as repairs, which the instance writes to
//! the changelog (marked [`RESTORED`](super::changelog::RESTORED)) before
//! the partition's first record: a later restore, with a later committed
//! offset, then ends on the value restored here, not on the dropped one.
//! Exactly-once, the changelog holds only what committed with the input
//! offsets, and every record applies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::changelog::{ChangeRecord, Input, STATE_INPUT};
use super::stores::{Shard, ValueCheck};
use crate::error::{Error, Result};

/// The committed offsets of an instance's input partitions, as a restore
/// at-least-once compares changes with them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Committed {
    /// By input topic and partition: the next offset to read, or `None`
    /// when the group never committed one.
    offsets: HashMap<(Arc<str>, i32), Option<i64>>,
    /// Exactly-once: nothing is dropped.
    keep_all: bool,
}

impl Committed {
    /// Every change applies (exactly-once).
    pub(crate) fn keep_all() -> Self {
        Self {
            keep_all: true,
            ..Self::default()
        }
    }

    /// Input partition `topic`/`partition` has committed `offset` (`None`:
    /// nothing yet).
    pub(crate) fn insert(&mut self, topic: &str, partition: i32, offset: Option<i64>) {
        self.offsets.insert((Arc::from(topic), partition), offset);
    }

    /// Where the records of `partition` go on from, as restored: the
    /// first of `inputs` the group has an entry for, with its committed
    /// offset (0 when it never committed one). What a timer fired before
    /// the partition's next record is counted at. `None` exactly-once, or
    /// when none of `inputs` is known.
    pub(crate) fn resumes_at(
        &self,
        inputs: &[Arc<str>],
        partition: i32,
    ) -> Option<(Arc<str>, i64)> {
        if self.keep_all {
            return None;
        }
        inputs.iter().find_map(|topic| {
            self.offsets
                .get(&(topic.clone(), partition))
                .map(|offset| (topic.clone(), offset.unwrap_or(0)))
        })
    }

    /// Whether a change made by the input record at `topic`/`partition`/
    /// `offset` is dropped: its offset is not committed. A topic the actor
    /// no longer reads cannot be handled again, so its changes apply.
    fn drops(&self, topic: &Arc<str>, partition: i32, offset: i64) -> bool {
        if self.keep_all {
            return false;
        }
        match self.offsets.get(&(topic.clone(), partition)) {
            Some(Some(committed)) => offset >= *committed,
            Some(None) => true,
            None => false,
        }
    }
}

/// A partition's store being restored, one changelog record at a time.
pub(crate) struct Restoring {
    topic: Arc<str>,
    partition: i32,
    check: ValueCheck,
    committed: Arc<Committed>,
    map: BTreeMap<Vec<u8>, Arc<[u8]>>,
    /// Keys whose last change so far was dropped.
    dropped: BTreeSet<Vec<u8>>,
    counts: Counts,
}

/// What a restore did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Changelog records applied.
    pub(crate) applied: u64,
    /// Changelog records dropped (their input not committed).
    pub(crate) dropped: u64,
    /// Bytes of keys and values read.
    pub(crate) bytes: u64,
}

/// A key to write again, with its restored value (`None`: absent).
pub(crate) type Repair = (Vec<u8>, Option<Arc<[u8]>>);

/// A restored partition of one store.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) shard: Shard,
    /// What to write to the changelog before the partition's first record:
    /// each key whose last change was dropped, with its restored value
    /// (`None`: absent).
    pub(crate) repairs: Vec<Repair>,
    pub(crate) counts: Counts,
    /// The committed input offsets the restore compared changes with
    /// (none when it read no changelog record).
    pub(crate) committed: Option<Arc<Committed>>,
}

impl Restoring {
    /// Restores partition `partition` of the changelog `topic`, checking
    /// values with `check` and dropping as `committed` says.
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        check: ValueCheck,
        committed: Arc<Committed>,
    ) -> Self {
        Self {
            topic,
            partition,
            check,
            committed,
            map: BTreeMap::new(),
            dropped: BTreeSet::new(),
            counts: Counts::default(),
        }
    }

    fn broken(&self, offset: i64, reason: String) -> Error {
        Error::Restore {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset,
            reason,
        }
    }

    /// Applies the next record of the partition, or drops it. A record
    /// without a key, without its input header, or whose value does not
    /// decode stops the restore: the error names its topic, partition and
    /// offset.
    pub(crate) fn apply(&mut self, record: ChangeRecord) -> Result<()> {
        let offset = record.offset;
        let Some(key) = record.key else {
            return Err(self.broken(offset, "the record has no key".into()));
        };
        let input = record
            .input
            .as_deref()
            .and_then(Input::parse)
            .ok_or_else(|| {
                self.broken(
                    offset,
                    format!("the record has no valid `{STATE_INPUT}` header"),
                )
            })?;
        self.counts.bytes += (key.len() + record.value.as_ref().map_or(0, |v| v.len())) as u64;
        if let Input::Record {
            topic,
            partition,
            offset: at,
        } = &input
            && self.committed.drops(topic, *partition, *at)
        {
            self.counts.dropped += 1;
            self.dropped.insert(key);
            return Ok(());
        }
        match record.value {
            Some(value) => {
                (self.check)(&value).map_err(|error| {
                    self.broken(offset, format!("the value does not decode: {error}"))
                })?;
                self.dropped.remove(&key);
                self.map.insert(key, value);
            }
            None => {
                self.dropped.remove(&key);
                self.map.remove(&key);
            }
        }
        self.counts.applied += 1;
        Ok(())
    }

    /// What it has read so far.
    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }

    /// The restored shard, and the repairs to write.
    pub(crate) fn finish(self) -> Restored {
        let repairs = self
            .dropped
            .into_iter()
            .map(|key| {
                let value = self.map.get(&key).cloned();
                (key, value)
            })
            .collect();
        Restored {
            shard: Shard::of(self.map),
            repairs,
            counts: self.counts,
            committed: Some(self.committed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::DecodeError;

    fn record(offset: i64, key: &str, value: Option<u8>, input: &str) -> ChangeRecord {
        ChangeRecord {
            offset,
            key: Some(key.as_bytes().to_vec()),
            value: value.map(|v| Arc::from(&[v][..])),
            input: Some(input.as_bytes().to_vec()),
        }
    }

    fn restoring(committed: Committed, check: ValueCheck) -> Restoring {
        Restoring::new("out.s.changelog".into(), 0, check, Arc::new(committed))
    }

    fn any() -> ValueCheck {
        Arc::new(|_| Ok(()))
    }

    fn committed_at(offset: Option<i64>) -> Committed {
        let mut committed = Committed::default();
        committed.insert("in", 0, offset);
        committed
    }

    fn values(restored: &Restored) -> Vec<(String, u8)> {
        restored
            .shard
            .base
            .iter()
            .map(|(k, v)| (String::from_utf8(k.clone()).unwrap(), v[0]))
            .collect()
    }

    #[test]
    fn changes_past_the_committed_offset_are_dropped_and_repaired() {
        let mut r = restoring(committed_at(Some(10)), any());
        for rec in [
            record(0, "a", Some(1), "in/0/3"),
            record(1, "b", Some(1), "in/0/4"),
            record(2, "a", Some(2), "in/0/10"),
            record(3, "c", Some(7), "in/0/11"),
            record(4, "b", None, "in/0/12"),
        ] {
            r.apply(rec).unwrap();
        }
        let restored = r.finish();
        assert_eq!(values(&restored), vec![("a".into(), 1), ("b".into(), 1)]);
        assert_eq!(
            restored.counts,
            Counts {
                applied: 2,
                dropped: 3,
                // Every key and value read, dropped or not: 5 keys, 4 values.
                bytes: 5 + 4
            }
        );
        let repairs: Vec<(String, Option<u8>)> = restored
            .repairs
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.clone()).unwrap(),
                    v.as_ref().map(|v| v[0]),
                )
            })
            .collect();
        assert_eq!(
            repairs,
            vec![
                ("a".into(), Some(1)),
                ("b".into(), Some(1)),
                ("c".into(), None)
            ]
        );
    }

    #[test]
    fn a_repair_applies_whatever_is_committed_later() {
        // The first restore dropped `a`'s change at input 10 and repaired
        // it; the record was handled again and changed nothing. Now 20 is
        // committed: the dropped change is before it, the repair after.
        let mut r = restoring(committed_at(Some(20)), any());
        for rec in [
            record(0, "a", Some(1), "in/0/3"),
            record(1, "a", Some(2), "in/0/10"),
            record(2, "a", Some(1), "restored"),
        ] {
            r.apply(rec).unwrap();
        }
        let restored = r.finish();
        assert_eq!(values(&restored), vec![("a".into(), 1)]);
        assert!(restored.repairs.is_empty());
    }

    #[test]
    fn nothing_committed_restores_nothing_and_a_topic_no_longer_read_applies() {
        let mut committed = committed_at(None);
        committed.insert("other", 1, Some(0));
        let mut r = restoring(committed, any());
        r.apply(record(0, "a", Some(1), "in/0/0")).unwrap();
        r.apply(record(1, "b", Some(2), "gone/0/99")).unwrap();
        let restored = r.finish();
        assert_eq!(values(&restored), vec![("b".into(), 2)]);
        assert_eq!(restored.repairs.len(), 1);
    }

    #[test]
    fn exactly_once_every_change_applies() {
        let mut r = restoring(Committed::keep_all(), any());
        r.apply(record(0, "a", Some(1), "in/0/50")).unwrap();
        assert_eq!(values(&r.finish()), vec![("a".into(), 1)]);
    }

    #[test]
    fn a_broken_record_stops_the_restore_naming_where_it_is() {
        let refuse: ValueCheck = Arc::new(|v| {
            if v[0] == 0 {
                Err(DecodeError::NoMarker)
            } else {
                Ok(())
            }
        });
        let mut r = restoring(committed_at(Some(100)), refuse);
        r.apply(record(0, "a", Some(1), "in/0/1")).unwrap();
        let error = r.apply(record(1, "a", Some(0), "in/0/2")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot restore from changelog out.s.changelog/0@1: the value does not decode: \
             value does not start with the avro single-object marker (nor with the schema \
             registry's magic byte)"
        );
        let mut headless = record(2, "a", Some(1), "");
        headless.input = None;
        let error = r.apply(headless).unwrap_err().to_string();
        assert!(
            error.ends_with("@2: the record has no valid `scribe_state_input` header"),
            "{error}"
        );
        let mut keyless = record(3, "a", Some(1), "in/0/3");
        keyless.key = None;
        let error = r.apply(keyless).unwrap_err().to_string();
        assert!(error.ends_with("@3: the record has no key"), "{error}");
    }
}
