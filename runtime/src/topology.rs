//! Rules over a whole topology: one node's actors, or every node of a
//! deployment (several config files).

use std::collections::BTreeMap;

use apache_avro::schema_compatibility::SchemaCompatibility;

use crate::actor::SubscriptionInfo;
use crate::error::{Error, Result};
use crate::policy::Delivery;

/// A described actor of a node: what it owns and what it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorInfo {
    /// The actor's name (and consumer group).
    pub name: String,
    /// The topic it owns.
    pub output: String,
    /// Avro full name of the record type it writes.
    pub output_type: String,
    /// The schema it writes with.
    pub output_schema: apache_avro::Schema,
    /// What it subscribes to.
    pub subscriptions: Vec<SubscriptionInfo>,
    /// Where it writes the records it gives up on (`None` for an actor
    /// that reads nothing, or whose policy stops it instead).
    pub dead_letter_topic: Option<String>,
    /// What its outputs and offsets guarantee.
    pub delivery: Delivery,
    /// How it writes its records' metadata.
    pub envelope: crate::Envelope,
}

/// A subscription to a topic that no actor of the topology owns: its
/// records come from outside (another system's producer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTopic {
    /// The topic.
    pub topic: String,
    /// The actor reading it.
    pub reader: String,
    /// The record type the actor expects there.
    pub record_type: String,
}

/// A subscription whose record type cannot read what the topic's owner writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaMismatch {
    /// The topic.
    pub topic: String,
    /// The topic's owner.
    pub writer: String,
    /// The owner's record type (Avro full name).
    pub writer_type: String,
    /// The subscriber.
    pub reader: String,
    /// The subscriber's record type (Avro full name).
    pub reader_type: String,
    /// What schema resolution objected to.
    pub reason: String,
}

impl std::fmt::Display for SchemaMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "actor `{}` reads topic `{}` as `{}` but its owner `{}` writes `{}`, which that cannot read: {}",
            self.reader, self.topic, self.reader_type, self.writer, self.writer_type, self.reason
        )
    }
}

/// Checks the rules that span actors: one writer per topic, no actor
/// reading its own topic (by name or by a pattern that matches it), and
/// every subscription able to read, by Avro schema resolution, what the
/// owner of each topic it reads writes. Returns the subscriptions to topics
/// (or patterns matching topics) nobody in `actors` owns.
///
/// The same actor name owning the same topic twice (one actor run on two
/// nodes, sharing its consumer group) is one writer.
pub fn check(actors: &[ActorInfo]) -> Result<Vec<ExternalTopic>> {
    let mut owners: BTreeMap<&str, &ActorInfo> = BTreeMap::new();
    for actor in actors {
        if let Some(first) = owners.insert(&actor.output, actor)
            && first.name != actor.name
        {
            return Err(Error::TopicOwnedTwice {
                topic: actor.output.clone(),
                first: first.name.clone(),
                second: actor.name.clone(),
            });
        }
    }
    // Dead-letter topics are written by their actor's supervisor: owned too.
    let mut dead_letters: BTreeMap<&str, &str> = BTreeMap::new();
    for actor in actors {
        let Some(topic) = &actor.dead_letter_topic else {
            continue;
        };
        let other = owners
            .get(topic.as_str())
            .map(|a| a.name.as_str())
            .or_else(|| dead_letters.get(topic.as_str()).copied())
            .filter(|other| *other != actor.name);
        if let Some(other) = other {
            return Err(Error::TopicOwnedTwice {
                topic: topic.clone(),
                first: other.to_owned(),
                second: actor.name.clone(),
            });
        }
        dead_letters.insert(topic, &actor.name);
    }
    let mut external = Vec::new();
    for actor in actors {
        for sub in &actor.subscriptions {
            // Dead letters are whatever could not be handled: any bytes.
            if dead_letters.contains_key(sub.topic.as_str()) {
                continue;
            }
            // The owners of what this subscription reads: one topic's, or
            // those of every topic matching its pattern.
            let read: Vec<&ActorInfo> = if sub.pattern {
                let regex = crate::actor::pattern_regex(&sub.topic)?;
                if regex.is_match(&actor.output) {
                    return Err(Error::SubscribesToOwnOutput {
                        actor: actor.name.clone(),
                        topic: sub.topic.clone(),
                    });
                }
                owners
                    .iter()
                    .filter(|(topic, _)| regex.is_match(topic))
                    .map(|(_, owner)| *owner)
                    .collect()
            } else {
                if sub.topic == actor.output {
                    return Err(Error::SubscribesToOwnOutput {
                        actor: actor.name.clone(),
                        topic: sub.topic.clone(),
                    });
                }
                owners
                    .get(sub.topic.as_str())
                    .copied()
                    .into_iter()
                    .collect()
            };
            if read.is_empty()
                && !external
                    .iter()
                    .any(|e: &ExternalTopic| e.topic == sub.topic && e.reader == actor.name)
            {
                external.push(ExternalTopic {
                    topic: sub.topic.clone(),
                    reader: actor.name.clone(),
                    record_type: sub.record_type.clone(),
                });
            }
            for owner in read {
                if let Err(reason) =
                    SchemaCompatibility::can_read(&owner.output_schema, &sub.schema)
                {
                    return Err(Error::SchemaMismatch(Box::new(SchemaMismatch {
                        topic: owner.output.clone(),
                        writer: owner.name.clone(),
                        writer_type: owner.output_type.clone(),
                        reader: actor.name.clone(),
                        reader_type: sub.record_type.clone(),
                        reason: reason.to_string(),
                    })));
                }
            }
        }
    }
    Ok(external)
}
