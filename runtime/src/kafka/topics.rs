//! Topics: how one is created ([`TopicSpec`]), Kafka's rules for names,
//! creating the missing ones, and how many partitions one has.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{Error, Result};
use crate::kafka::broker::EmbeddedBroker;
use crate::kafka::settings::ClientSettings;

/// How long topic creation waits for a new topic to appear in metadata.
const TOPIC_WAIT: Duration = Duration::from_secs(30);

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

/// How many partitions `topic` has, as the broker says; `UnknownTopic` if
/// it has none.
pub fn partition_count(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<i32> {
    use rdkafka::consumer::Consumer as _;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| Error::kafka(format!("cannot read metadata of `{topic}`"), e))?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(Error::UnknownTopic {
            topic: topic.to_owned(),
        }),
    }
}

/// Creates every topic in `topics` that does not exist yet.
pub(crate) async fn ensure_topics(
    settings: &ClientSettings,
    embedded: Option<&EmbeddedBroker>,
    topics: &[(String, TopicSpec)],
) -> Result<()> {
    if let Some(broker) = embedded {
        for (name, spec) in topics {
            broker.create_topic(name, spec.partitions, spec.replication)?;
        }
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = settings
        .admin()
        .create()
        .map_err(|e| Error::kafka("cannot create admin client", e))?;
    // Ask first: creating only what is missing needs no admin rights when
    // everything exists.
    let existing: Vec<String> = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| Error::kafka("cannot fetch metadata", e))?
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.name().to_owned())
        .collect();
    let topics: Vec<&(String, TopicSpec)> = topics
        .iter()
        .filter(|(name, _)| !existing.contains(name))
        .collect();
    if topics.is_empty() {
        return Ok(());
    }
    let retention: Vec<Option<String>> = topics
        .iter()
        .map(|(_, spec)| spec.retention_ms.map(|ms| ms.to_string()))
        .collect();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&retention)
        .map(|((name, spec), retention)| {
            let topic = NewTopic::new(
                name,
                spec.partitions,
                TopicReplication::Fixed(spec.replication),
            );
            match retention {
                Some(ms) => topic.set("retention.ms", ms),
                None => topic,
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new.iter(), &options)
        .await
        .map_err(|e| Error::kafka("create topics", e))?;
    for result in results {
        created(result)?;
    }
    for (name, _) in topics {
        wait_for_topic(&admin, name).await?;
    }
    Ok(())
}

/// What the broker said of one topic it was asked to create: created, or
/// there already; else why not, as an error naming the topic.
pub(super) fn created(
    result: std::result::Result<String, (String, RDKafkaErrorCode)>,
) -> Result<()> {
    match result {
        Ok(name) => tracing::info!(topic = %name, "created topic"),
        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
        Err((
            name,
            RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed,
        )) => {
            return Err(Error::CreateTopic {
                topic: name,
                reason: "topic authorization failed: this node's principal may neither see \
                         nor create it (the cluster's ACLs, see `scribe acls`)"
                    .into(),
            });
        }
        Err((name, code)) => {
            return Err(Error::CreateTopic {
                topic: name,
                reason: code.to_string(),
            });
        }
    }
    Ok(())
}

pub(super) async fn wait_for_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let found = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| {
                m.topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .map(|t| t.error().is_none() && !t.partitions().is_empty())
            })
            .unwrap_or(false);
        if found {
            return Ok(());
        }
        if started.elapsed() > TOPIC_WAIT {
            return Err(Error::CreateTopic {
                topic: topic.to_owned(),
                reason: format!("not in the broker's metadata after {TOPIC_WAIT:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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
