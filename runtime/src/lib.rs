#![doc = include_str!("../../README.md")]

mod actor;
mod admin;
mod broker;
pub mod clock;
pub mod codec;
pub mod confluent;
mod connect;
mod consumed;
pub mod envelope;
mod error;
mod failure;
mod failures;
mod feed;
mod gateway;
mod handling;
pub mod headers;
mod inbound;
mod kafka;
mod node;
mod partitioner;
mod policy;
mod publisher;
mod record;
mod secret;
mod security;
#[cfg(feature = "testing")]
pub mod sim;
mod stats;
mod supervisor;
mod topic;
pub mod topology;
pub mod trace;
mod tracker;

pub use actor::{AskInfo, Binding, SubscriptionInfo, Subscriptions, TopicActor};
pub use broker::{Broker, EmbeddedBroker};
pub use codec::{DecodeError, Fingerprint, SchemaRegistry};
pub use confluent::{Encoding, RegistrySettings, SubjectStrategy};
pub use envelope::Envelope;
pub use error::{ActorError, ConnectFailure, Error, Result};
pub use gateway::{Gateway, GatewayOptions, GatewayStats, Requester, RequesterOptions};
pub use headers::Headers;
pub use inbound::Inbound;
pub use node::{Node, NodeBuilder, Replayed, RunningNode};
pub use partitioner::partition_for_key;
pub use policy::{Delivery, Exhausted, FailurePolicy, OverBudget};
pub use publisher::{Answered, Pending, Publisher};
pub use record::{AnyRecord, Record, Records};
pub use secret::{Properties, Secret};
pub use security::{Protocol, SaslMechanism, Security};
pub use stats::{ActorState, StatsSnapshot};
pub use topic::TopicSpec;
pub use topology::ActorInfo;

/// Talking to a cluster directly, as scribe's own tools do: the first
/// contact that names why a connection fails, topic metadata, and the ids
/// scribe gives its clients on the cluster.
pub mod client {
    pub use crate::connect::{FIRST_CONTACT, first_contact};
    pub use crate::kafka::{partition_count, transactional_id};
}

pub use error::chain as error_chain;
pub use node::wait_for_signal;

#[doc(hidden)]
/// What [`records!`] expands to refers to; not an API.
pub mod __private {
    pub use apache_avro;
}

/// What an actor's file needs: `use scribe::prelude::*;`.
pub mod prelude {
    pub use crate::{
        ActorError, Answered, AnyRecord, Broker, Inbound, Node, NodeBuilder, Publisher, Record,
        Records, Requester, RequesterOptions, Subscriptions, TopicActor, TopicSpec,
    };
    // Continuing with a reply: `ctx.spawn(pending.into_actor(self).map(..))`.
    pub use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};
}
