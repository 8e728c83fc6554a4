//! Rules over a whole topology: one node's actors, or every node of a
//! deployment (several config files).

use std::collections::BTreeMap;

use apache_avro::schema_compatibility::SchemaCompatibility;

pub use crate::actor::AskInfo;
use crate::actor::{Binding, SubscriptionInfo};
use crate::delivery::policy::Delivery;
use crate::error::{Error, Result};

/// A described actor of a node: what it owns and what it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorInfo {
    /// The actor's name (and consumer group).
    pub name: String,
    /// The topic it owns.
    pub output: String,
    /// Avro full name of the record type it writes; for a set of types
    /// ([`records!`](crate::records)), their names joined by ` | `; `json`
    /// for an actor that writes JSON ([`AnyRecord`](crate::AnyRecord)).
    pub output_type: String,
    /// The schema of each type it writes, in the set's order (one for a
    /// single [`Record`](crate::Record) type; none for JSON).
    pub output_schemas: Vec<apache_avro::Schema>,
    /// What it subscribes to.
    pub subscriptions: Vec<SubscriptionInfo>,
    /// Where it writes the records it gives up on (`None` for an actor
    /// that reads nothing, or whose policy stops it instead).
    pub dead_letter_topic: Option<String>,
    /// What its outputs and offsets guarantee.
    pub delivery: Delivery,
    /// How it writes its records' metadata.
    pub envelope: crate::Envelope,
    /// How it encodes its records.
    pub encoding: crate::Encoding,
    /// Under which registry subjects it registers its schemas, when it
    /// writes [`Encoding::Confluent`](crate::Encoding::Confluent).
    pub subject_strategy: crate::SubjectStrategy,
    /// The requests it declares it asks
    /// ([`Subscriptions::asks`](crate::Subscriptions::asks)).
    pub asks: Vec<AskInfo>,
}

/// Checks the pairings actors declare
/// ([`Subscriptions::asks`](crate::Subscriptions::asks)): the request type
/// is one the asker writes, the reply topic is another's, and its owner
/// reads the asker's topic in a type that reads the request and writes a
/// type the reply reads. With `whole` (every actor of the deployment is
/// in `actors`), a reply topic nobody owns is refused too.
pub fn check_asks(actors: &[ActorInfo], whole: bool) -> Result<()> {
    for actor in actors {
        for ask in &actor.asks {
            let refuse = |reason: String| Error::InvalidSetting {
                setting: format!(
                    "actor `{}`: asks `{}` on `{}`",
                    actor.name, ask.request_type, ask.replies
                ),
                reason,
            };
            if !actor
                .output_schemas
                .iter()
                .any(|s| crate::wire::codec::full_name(s) == ask.request_type)
            {
                return Err(refuse(format!(
                    "it asks with `{}`, which it does not write ({})",
                    ask.request_type, actor.output_type
                )));
            }
            if ask.replies == actor.output {
                return Err(refuse(
                    "the replies come on the responder's topic, not the asker's own".into(),
                ));
            }
            match actors.iter().find(|a| a.output == ask.replies) {
                Some(responder) => {
                    check_gateway_types(responder, &actor.output, &ask.request, &ask.reply)
                        .map_err(refuse)?;
                }
                None if whole => {
                    return Err(refuse(format!(
                        "no actor owns `{}`, so nothing answers",
                        ask.replies
                    )));
                }
                None => {}
            }
        }
    }
    Ok(())
}

impl ActorInfo {
    /// The registry subject of each type the actor writes, with its
    /// schema, in its set's order.
    pub fn subjects(&self) -> Vec<(String, &apache_avro::Schema)> {
        self.output_schemas
            .iter()
            .map(|schema| {
                let name = crate::wire::codec::full_name(schema);
                (self.subject_strategy.subject(&self.output, &name), schema)
            })
            .collect()
    }
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

/// A gateway a node declares (`[[gateways]]`,
/// [`NodeBuilder::gateway`](crate::NodeBuilder::gateway)): it writes
/// `requests`, which it owns, and reads the replies the owner of `replies`
/// publishes (see [`Gateway`](crate::Gateway)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayInfo {
    /// Its name.
    pub name: String,
    /// The topic it owns and asks on.
    pub requests: String,
    /// The topic the responder owns and answers on.
    pub replies: String,
    /// The Avro full name of the record type it asks with, when declared
    /// ([`NodeBuilder::gateway_types`](crate::NodeBuilder::gateway_types)).
    pub request_type: Option<String>,
    /// The Avro full name of the record type it expects back, when declared.
    pub reply_type: Option<String>,
}

/// Whether the types `gateway` declares fit `responder`, by name: its
/// subscription to the request topic takes the request type, and the reply
/// type is one it writes. The schemas themselves are checked when a program
/// opens the gateway ([`RunningNode::gateway`](crate::RunningNode::gateway)).
fn check_declared_types(
    responder: &ActorInfo,
    gateway: &GatewayInfo,
) -> std::result::Result<(), String> {
    let mut reading = responder
        .subscriptions
        .iter()
        .filter(|s| s.reads(&gateway.requests))
        .peekable();
    if let Some(request) = &gateway.request_type
        && let Some(first) = reading.peek().copied()
        && !reading.any(|s| match &s.binding {
            Binding::Every | Binding::Type => s.record_type == *request,
            Binding::Prefix(prefix) => request.starts_with(prefix.as_str()),
            // Read with the actor's own function: nothing to compare.
            Binding::Foreign => true,
        })
    {
        return Err(format!(
            "its request type `{request}` is not what actor `{}` reads there (`{}`)",
            responder.name, first.record_type
        ));
    }
    if let Some(reply) = &gateway.reply_type
        && !responder
            .output_schemas
            .iter()
            .any(|w| crate::wire::codec::full_name(w) == *reply)
    {
        return Err(format!(
            "its reply type `{reply}` is not what actor `{}` writes (`{}`)",
            responder.name, responder.output_type
        ));
    }
    Ok(())
}

/// The one-writer rule for gateways: a gateway's request topic is written
/// by no actor (nor as a dead-letter topic) and by no other gateway, and
/// is not its reply topic. With `whole` (every node of the deployment is
/// in `actors`), also the pairing: the reply topic has an owner, and that
/// owner reads the request topic (by name or pattern), so something
/// answers; the owner's name is the gateway's responder.
pub fn check_gateways(actors: &[ActorInfo], gateways: &[GatewayInfo], whole: bool) -> Result<()> {
    let refuse = |gateway: &GatewayInfo, topic: &str, reason: String| Error::GatewayTopic {
        gateway: gateway.name.clone(),
        topic: topic.to_owned(),
        reason,
    };
    for (i, gateway) in gateways.iter().enumerate() {
        if gateway.requests == gateway.replies {
            return Err(refuse(
                gateway,
                &gateway.requests,
                "it is also the reply topic: the responder writes that one".into(),
            ));
        }
        if let Some(actor) = actors.iter().find(|a| {
            a.output == gateway.requests
                || a.dead_letter_topic.as_deref() == Some(&gateway.requests)
        }) {
            return Err(refuse(
                gateway,
                &gateway.requests,
                format!("actor `{}` writes it (one writer per topic)", actor.name),
            ));
        }
        if let Some(other) = gateways[..i]
            .iter()
            .find(|g| g.requests == gateway.requests && g.name != gateway.name)
        {
            return Err(refuse(
                gateway,
                &gateway.requests,
                format!(
                    "gateway `{}` writes it too (one writer per topic)",
                    other.name
                ),
            ));
        }
        if let Some(responder) = actors.iter().find(|a| a.output == gateway.replies) {
            check_declared_types(responder, gateway)
                .map_err(|reason| refuse(gateway, &gateway.requests, reason))?;
        }
        if !whole {
            continue;
        }
        let Some(responder) = actors.iter().find(|a| a.output == gateway.replies) else {
            return Err(refuse(
                gateway,
                &gateway.requests,
                format!(
                    "no actor owns its reply topic `{}`, so nothing answers",
                    gateway.replies
                ),
            ));
        };
        if !responder
            .subscriptions
            .iter()
            .any(|s| s.reads(&gateway.requests))
        {
            return Err(refuse(
                gateway,
                &gateway.requests,
                format!(
                    "actor `{}` owns its reply topic `{}` but does not read `{}`, so nothing answers",
                    responder.name, gateway.replies, gateway.requests
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a gateway asking with `request` and expecting `reply` fits
/// `responder` (the owner of its reply topic) on `requests`: the
/// responder's subscription there can read `request`, and `reply` can read
/// what the responder writes. Says what does not fit.
pub fn check_gateway_types(
    responder: &ActorInfo,
    requests: &str,
    request: &apache_avro::Schema,
    reply: &apache_avro::Schema,
) -> std::result::Result<(), String> {
    let name = |schema: &apache_avro::Schema| crate::wire::codec::full_name(schema);
    let sub = responder
        .subscriptions
        .iter()
        .filter(|s| s.reads(requests))
        .find(|s| match &s.binding {
            Binding::Every | Binding::Foreign => true,
            Binding::Type => s.record_type == name(request),
            Binding::Prefix(prefix) => name(request).starts_with(prefix.as_str()),
        })
        .ok_or_else(|| {
            format!(
                "actor `{}` owns the reply topic but takes no `{}` from `{requests}`",
                responder.name,
                name(request)
            )
        })?;
    if let Binding::Prefix(_) | Binding::Foreign = sub.binding {
        // Read as JSON, or by the actor's own function: nothing to check.
    } else {
        SchemaCompatibility::can_read(request, &sub.schema).map_err(|e| {
            format!(
                "actor `{}` reads `{requests}` as `{}`, which cannot read the request type `{}`: {e}",
                responder.name,
                sub.record_type,
                name(request)
            )
        })?;
    }
    let written = match responder.output_schemas.as_slice() {
        [one] => one,
        several => several
            .iter()
            .find(|w| name(w) == name(reply))
            .ok_or_else(|| {
                format!(
                    "actor `{}` writes no record of the reply type `{}` (it writes {})",
                    responder.name,
                    name(reply),
                    responder.output_type
                )
            })?,
    };
    SchemaCompatibility::can_read(written, reply).map_err(|e| {
        format!(
            "the reply type `{}` cannot read what actor `{}` writes, `{}`: {e}",
            name(reply),
            responder.name,
            responder.output_type
        )
    })?;
    Ok(())
}
