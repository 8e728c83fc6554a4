//! When timers are due, as stores keep them: the clock a timer set
//! follows ([`TimerClock`]), the value of each key of a timer set
//! ([`TimerDue`]), read straight from its encoding ([`due_of`]), and the
//! index of when each timer is due, per partition, that [`Stores`](super::stores::Stores)
//! keeps in step with its shards ([`DueIndex`]).

use std::collections::{BTreeMap, BTreeSet};

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// Which clock a timer set follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerClock {
    /// The wall clock (virtual time in the simulator): a timer fires once
    /// the clock reaches it, records or not.
    Wall,
    /// Stream time: the largest record timestamp the instance has handled
    /// on the timer's partition. A timer fires once a record of its
    /// partition carries its time or later; a partition without records
    /// does not move its timers.
    Stream,
}

/// When a timer is due, as its store keeps it: `scribe.state.TimerDue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.state")]
pub(crate) struct TimerDue {
    /// Milliseconds since the Unix epoch, on the set's clock.
    pub(crate) at_ms: i64,
}

/// When each timer of each set is due, per partition: `(store, partition)`
/// to `(at, key)`. Entries may be stale (a timer changed by a transaction
/// that aborted, or by a handler since); the value in the store decides.
pub(crate) type DueIndex = BTreeMap<(usize, i32), BTreeSet<(i64, Vec<u8>)>>;

/// The time in a [`TimerDue`] value, read straight from its single-object
/// encoding (the datum is one zigzag varint).
pub(crate) fn due_of(value: &[u8]) -> Option<i64> {
    let datum = value.get(crate::wire::codec::SINGLE_OBJECT_HEADER_LEN..)?;
    let mut raw: u64 = 0;
    for (i, byte) in datum.iter().enumerate().take(10) {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_due_time_is_read_from_its_encoding() {
        let encoder = crate::wire::codec::Encoder::<TimerDue>::new().unwrap();
        for at_ms in [0, 1, -1, 63, 64, 1_767_225_600_000, i64::MAX, i64::MIN] {
            let mut bytes = Vec::new();
            encoder.encode(&TimerDue { at_ms }, &mut bytes).unwrap();
            assert_eq!(due_of(&bytes), Some(at_ms), "{at_ms}");
        }
        assert_eq!(due_of(b"short"), None);
    }
}
