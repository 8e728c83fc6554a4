//! Topic settings and Kafka's rules for names.

use crate::error::{Error, Result};

/// How a topic is created when it does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    /// Number of partitions. The default is 3.
    pub partitions: i32,
    /// Replication factor. The default is 1 (right for one broker; use 3 on
    /// a production cluster). The embedded broker caps it at its broker count.
    pub replication: i32,
    /// How long records are kept (`retention.ms`). The default, `None`,
    /// leaves the broker's default. The embedded broker ignores it.
    pub retention_ms: Option<i64>,
}

impl Default for TopicSpec {
    fn default() -> Self {
        Self {
            partitions: 3,
            replication: 1,
            retention_ms: None,
        }
    }
}

impl TopicSpec {
    /// A topic of `partitions` partitions, each with `replication` replicas.
    pub fn new(partitions: i32, replication: i32) -> Self {
        Self {
            partitions,
            replication,
            retention_ms: None,
        }
    }
}

/// The most partitions scribe creates a topic with. Kafka sets no limit
/// of its own, but more than this in one topic is a typo far more often
/// than a plan, and a huge count makes the embedded broker abort.
pub(crate) const MAX_PARTITIONS: i32 = 10_000;

impl TopicSpec {
    /// Checks the counts: partitions from 1 to [`MAX_PARTITIONS`],
    /// replication from 1 to Kafka's 32767, retention positive or -1
    /// (forever). Returns the field at fault and why.
    pub(crate) fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
            return Err((
                "partitions",
                format!(
                    "{} is out of range (1 to {MAX_PARTITIONS})",
                    self.partitions
                ),
            ));
        }
        if !(1..=i32::from(i16::MAX)).contains(&self.replication) {
            return Err((
                "replication",
                format!("{} is out of range (1 to {})", self.replication, i16::MAX),
            ));
        }
        if let Some(ms) = self.retention_ms
            && ms <= 0
            && ms != -1
        {
            return Err(("retention", format!("{ms} ms must be more than zero")));
        }
        Ok(())
    }
}

/// Checks a name against Kafka's rules for topic (and group) names:
/// 1 to 249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 249 {
        Some("it is longer than 249 characters")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are reserved")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("only ASCII letters, digits, `.`, `_` and `-` are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            what,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn kafka_topic_names_are_checked() {
        assert!(check_name("topic", "metrics.host_v1-a").is_ok());
        for bad in ["", ".", "..", "has space", "slash/", &"x".repeat(250)] {
            let err = check_name("topic", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid topic name"), "{err}");
        }
    }
}
