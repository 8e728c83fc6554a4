//! A store's changelog: the compacted topic its actor owns, named after
//! the actor's output and the store, and what each of its records says.
//!
//! A changelog record is one change of one key in one partition's shard:
//! its key is the state key's Avro datum, its value the state value in
//! Avro's single-object encoding (none: the key was deleted, a tombstone
//! compaction keeps until it removes the key), and its one header,
//! [`STATE_INPUT`], names the input record whose handling made the change
//! (or says the change repairs a restore). Changelog partition `p` holds
//! the shard of input partition `p`.

use std::sync::Arc;

/// The header naming the input record a changelog record comes from, as
/// `topic/partition/offset`, or [`RESTORED`] for a record a restore wrote.
pub(crate) const STATE_INPUT: &str = "scribe_state_input";

/// The value of [`STATE_INPUT`] of a record a restore wrote to undo the
/// changes it dropped: it always applies.
pub(crate) const RESTORED: &str = "restored";

/// The changelog topic of store `store` of the actor writing `output`.
pub fn changelog_topic(output: &str, store: &str) -> String {
    format!("{output}.{store}.changelog")
}

/// Where a changelog record comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// The handling of the input record at this topic, partition, offset.
    Record {
        topic: Arc<str>,
        partition: i32,
        offset: i64,
    },
    /// A restore, undoing changes it dropped.
    Restored,
}

impl Input {
    /// The header's value for the input record at `topic`/`partition`/`offset`.
    pub(crate) fn text(topic: &str, partition: i32, offset: i64) -> String {
        format!("{topic}/{partition}/{offset}")
    }

    /// Reads a [`STATE_INPUT`] value; `None` when it is neither form.
    /// Topic names cannot hold `/`, so the last two fields are the
    /// partition and offset.
    pub(crate) fn parse(value: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(value).ok()?;
        if text == RESTORED {
            return Some(Input::Restored);
        }
        let mut fields = text.rsplitn(3, '/');
        let offset = fields.next()?.parse::<i64>().ok()?;
        let partition = fields.next()?.parse::<i32>().ok()?;
        let topic = fields.next().filter(|t| !t.is_empty())?;
        (offset >= 0 && partition >= 0).then(|| Input::Record {
            topic: Arc::from(topic),
            partition,
            offset,
        })
    }
}

/// One record of a changelog partition, as a restore reads it.
#[derive(Debug, Clone)]
pub(crate) struct ChangeRecord {
    /// Its offset in the changelog partition.
    pub(crate) offset: i64,
    /// The state key's datum; none is a broken record.
    pub(crate) key: Option<Vec<u8>>,
    /// The state value, single-object encoded; none for a deletion.
    pub(crate) value: Option<Arc<[u8]>>,
    /// The [`STATE_INPUT`] header's value, if it has one.
    pub(crate) input: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_header_names_a_record_or_a_restore() {
        let text = Input::text("metrics.host", 3, 1207);
        assert_eq!(text, "metrics.host/3/1207");
        assert_eq!(
            Input::parse(text.as_bytes()),
            Some(Input::Record {
                topic: "metrics.host".into(),
                partition: 3,
                offset: 1207
            })
        );
        assert_eq!(Input::parse(b"restored"), Some(Input::Restored));
        for bad in [&b""[..], b"x/1", b"/1/2", b"t/-1/2", b"t/1/x", b"\xff/1/2"] {
            assert_eq!(Input::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_changelog_is_named_after_the_output_and_the_store() {
        assert_eq!(
            changelog_topic("metrics.summary", "windows"),
            "metrics.summary.windows.changelog"
        );
    }
}
