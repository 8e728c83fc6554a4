//! [`ActorInfo`]: what a described actor of a node owns, reads, writes,
//! asks and remembers, as the topology checks and the tools see it.

use crate::actor::{AskInfo, SubscriptionInfo};
use crate::delivery::policy::Delivery;
use crate::state::StoreInfo;

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
    /// The stores it declares
    /// ([`Subscriptions::store`](crate::Subscriptions::store)), each with
    /// the changelog topic it owns.
    pub stores: Vec<StoreInfo>,
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
