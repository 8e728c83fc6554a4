//! What an actor declares, as plain data the topology checks and the
//! tools read: each subscription ([`SubscriptionInfo`], its [`Binding`])
//! and each request/reply pairing it asks ([`AskInfo`]).

use apache_avro::Schema;

use super::pattern::pattern_regex;

/// What a subscription reads: its topic and the Avro record type expected there.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionInfo {
    /// The subscribed topic, or with `pattern`, a regular expression that
    /// topic names must match from their start.
    pub topic: String,
    /// Whether `topic` is a pattern (see [`Subscriptions::subscribe_matching`](crate::Subscriptions::subscribe_matching)).
    pub pattern: bool,
    /// Avro full name of the record type the actor reads it as.
    pub record_type: String,
    /// The schema the actor reads it with (`null` for a
    /// [`Binding::Prefix`], which reads any type as JSON).
    pub schema: Schema,
    /// Which of the topic's records it takes.
    pub binding: Binding,
}

/// Which of a topic's records a subscription takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// Every record ([`Subscriptions::subscribe`](crate::Subscriptions::subscribe)): the topic carries one
    /// type, and a record that cannot be read as it is dead-lettered.
    Every,
    /// The records of the subscription's type ([`Subscriptions::on`](crate::Subscriptions::on)), on
    /// a topic that may carry several.
    Type,
    /// The records whose type's full name starts with this prefix
    /// ([`Subscriptions::on_prefix`](crate::Subscriptions::on_prefix)), read as [`AnyRecord`](crate::AnyRecord)s.
    Prefix(String),
    /// Every record, written by a client that is not scribe (JSON, raw
    /// bytes), turned into the subscription's type by the actor's own
    /// function ([`Subscriptions::subscribe_foreign`](crate::Subscriptions::subscribe_foreign)). No schema is
    /// checked against the topic.
    Foreign,
}

impl Binding {
    /// Whether it takes every record of its topic, so that no other
    /// binding of the actor may share the topic.
    pub fn is_whole(&self) -> bool {
        matches!(self, Binding::Every | Binding::Foreign)
    }
}

impl SubscriptionInfo {
    /// Whether this subscription reads `topic`: the same name, or a name
    /// its pattern matches (a pattern that does not compile reads nothing;
    /// [`NodeBuilder::build`](crate::NodeBuilder::build) refuses it).
    pub fn reads(&self, topic: &str) -> bool {
        if self.pattern {
            pattern_regex(&self.topic).is_ok_and(|re| re.is_match(topic))
        } else {
            self.topic == topic
        }
    }
}

/// A request/reply pairing an actor declares: it asks with `request` on
/// the topic it owns and awaits `reply` on `replies`, the responder's.
#[derive(Debug, Clone, PartialEq)]
pub struct AskInfo {
    /// The topic the responder owns and answers on.
    pub replies: String,
    /// The Avro full name of the type it asks with.
    pub request_type: String,
    /// Its schema.
    pub request: apache_avro::Schema,
    /// The Avro full name of the type it expects back.
    pub reply_type: String,
    /// Its schema.
    pub reply: apache_avro::Schema,
}
