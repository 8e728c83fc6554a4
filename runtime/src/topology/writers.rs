//! One writer per topic, and readers that can read what the writer
//! writes: [`check`] over one node's actors or a whole deployment, what it
//! finds outside ([`ExternalTopic`]), and what it refuses
//! ([`SchemaMismatch`]).

use std::collections::BTreeMap;

use apache_avro::schema_compatibility::SchemaCompatibility;

use super::actors::ActorInfo;
use crate::actor::{Binding, SubscriptionInfo};
use crate::error::{Error, Result};

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
    // Dead-letter topics are written by their actor's supervisor, and
    // changelogs by its stores: owned too.
    let mut dead_letters: BTreeMap<&str, &str> = BTreeMap::new();
    for actor in actors {
        let changelogs = actor.stores.iter().map(|s| &s.changelog);
        for topic in actor.dead_letter_topic.iter().chain(changelogs) {
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
    }
    let mut external = Vec::new();
    for actor in actors {
        for sub in &actor.subscriptions {
            // Dead letters are whatever could not be handled, changelogs
            // state: any bytes.
            if dead_letters.contains_key(sub.topic.as_str()) {
                continue;
            }
            // The owners of what this subscription reads: one topic's, or
            // those of every topic matching its pattern.
            if sub.pattern {
                // Refused with the reason, not read as matching nothing.
                crate::actor::pattern_regex(&sub.topic)?;
            }
            if sub.reads(&actor.output) {
                return Err(Error::SubscribesToOwnOutput {
                    actor: actor.name.clone(),
                    topic: sub.topic.clone(),
                });
            }
            let read: Vec<&ActorInfo> = owners
                .iter()
                .filter(|(topic, _)| sub.reads(topic))
                .map(|(_, owner)| *owner)
                .collect();
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
                if let Err(reason) = fits(owner, sub) {
                    return Err(Error::SchemaMismatch(Box::new(SchemaMismatch {
                        topic: owner.output.clone(),
                        writer: owner.name.clone(),
                        writer_type: owner.output_type.clone(),
                        reader: actor.name.clone(),
                        reader_type: sub.record_type.clone(),
                        reason,
                    })));
                }
            }
        }
    }
    Ok(external)
}

/// Whether `sub` can take what `owner` writes: every type it writes, for a
/// subscription to every record; its own type among them, readable, for a
/// binding by type; some type whose name starts with it, for a prefix.
/// Says why not.
fn fits(owner: &ActorInfo, sub: &SubscriptionInfo) -> std::result::Result<(), String> {
    let names = || {
        owner
            .output_schemas
            .iter()
            .map(|s| format!("`{}`", crate::wire::codec::full_name(s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if sub.binding == Binding::Foreign {
        // Read with the actor's own function: nothing to check.
        return Ok(());
    }
    if owner.output_schemas.is_empty() {
        return Err(format!(
            "it writes {} there, not Avro; read it with `Subscriptions::subscribe_foreign`",
            owner.output_type
        ));
    }
    match &sub.binding {
        Binding::Foreign => Ok(()),
        Binding::Every => match owner.output_schemas.as_slice() {
            [writer] => SchemaCompatibility::can_read(writer, &sub.schema)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            several => Err(format!(
                "the topic carries {} record types ({}); take each with `Subscriptions::on` \
                 or `on_prefix`",
                several.len(),
                names()
            )),
        },
        Binding::Type => {
            let writer = owner
                .output_schemas
                .iter()
                .find(|w| crate::wire::codec::full_name(w) == sub.record_type)
                .ok_or_else(|| {
                    format!("no type it writes has that name (it writes {})", names())
                })?;
            SchemaCompatibility::can_read(writer, &sub.schema)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Binding::Prefix(prefix) => {
            if owner
                .output_schemas
                .iter()
                .any(|w| crate::wire::codec::full_name(w).starts_with(prefix.as_str()))
            {
                Ok(())
            } else {
                Err(format!(
                    "no type it writes has a name that starts with `{prefix}` (it writes {})",
                    names()
                ))
            }
        }
    }
}
