#![doc = include_str!("../../README.md")]

// The subsystems. ARCHITECTURE.md draws their layers, from `wire` at the
// bottom to `sim` at the top; `tests/tests/runtime_modules_depend_one_way.rs`
// checks that each imports only from those below it.
mod actor;
mod ask;
mod delivery;
mod error;
mod feed;
mod handling;
mod kafka;
mod node;
mod ops;
mod publisher;
#[cfg(feature = "testing")]
pub mod sim;
pub mod state;
mod supervisor;
pub mod topology;
mod wire;

pub use ops::trace;
pub use wire::{clock, codec, envelope, headers};

/// The Confluent Schema Registry: its framing, subject strategies, and a
/// client for the REST calls scribe makes.
pub mod confluent {
    pub use crate::kafka::registry::RegistrySettings;
    #[cfg(feature = "registry")]
    pub use crate::kafka::registry_client::{Compatibility, RegistryClient};
    pub use crate::wire::framing::{
        Encoding, HEADER_LEN, MAGIC, SubjectStrategy, header, reframe, split,
    };
}

pub use actor::{AskInfo, Binding, SubscriptionInfo, Subscriptions, TopicActor};
pub use ask::gateway::{Gateway, GatewayOptions};
pub use ask::replies::GatewayStats;
pub use ask::requester::{Answered, Pending, Requester, RequesterOptions};
pub use delivery::inbound::Inbound;
pub use delivery::policy::{Delivery, Exhausted, FailurePolicy, OverBudget};
pub use error::{ActorError, ConnectFailure, Error, Result};
pub use kafka::broker::{Broker, EmbeddedBroker};
pub use kafka::partitioner::partition_for_key;
pub use kafka::registry::RegistrySettings;
pub use kafka::secret::{Properties, Secret};
pub use kafka::security::{Protocol, SaslMechanism, Security};
pub use kafka::topics::TopicSpec;
pub use node::{Node, NodeBuilder, Replayed, RunningNode};
pub use ops::stats::{ActorState, StatsSnapshot};
pub use publisher::Publisher;
pub use state::{Store, StoreInfo};
pub use topology::ActorInfo;
pub use wire::codec::{DecodeError, Fingerprint, SchemaRegistry};
pub use wire::envelope::Envelope;
pub use wire::framing::{Encoding, SubjectStrategy};
pub use wire::headers::Headers;
pub use wire::record::Record;
pub use wire::records::{AnyRecord, Records};

/// Talking to a cluster directly, as scribe's own tools do: the first
/// contact that names why a connection fails, topic metadata, and the ids
/// scribe gives its clients on the cluster.
pub mod client {
    pub use crate::kafka::connect::{FIRST_CONTACT, first_contact};
    pub use crate::kafka::settings::transactional_id;
    pub use crate::kafka::topics::partition_count;
}

pub use error::chain as error_chain;
pub use node::wait_for_signal;

#[doc(hidden)]
/// What [`records!`] expands to refers to; not an API.
pub mod __private {
    pub use apache_avro;
}

pub mod prelude;
