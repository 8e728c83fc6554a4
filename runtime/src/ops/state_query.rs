//! Reading an actor's state from outside the actor: what the admin
//! endpoint's `GET /actors/NAME/state/KEY` asks of a running instance.
//!
//! The trait is here, where the endpoint is; `state` implements it over an
//! instance's stores and hands it to the actor's [`ActorStats`](super::stats::ActorStats).

// Read by the admin endpoint only.
#![cfg_attr(not(feature = "admin"), allow(dead_code))]

use std::collections::BTreeMap;

/// What a state query answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StateAnswer {
    /// This instance holds the key's partition: the key's value in each
    /// store asked (`None` where the store has no value for it).
    Held {
        partition: i32,
        values: BTreeMap<String, Option<serde_json::Value>>,
    },
    /// The key's partition is not this instance's (another node's, or not
    /// assigned yet): where it is, and what this instance holds.
    NotHeld {
        /// The partition the key's records go to, when the partition
        /// count is known.
        partition: Option<i32>,
        held: Vec<i32>,
    },
    /// The query cannot be answered as asked (an unknown store, a key
    /// that is not one of the store's keys).
    Refused(String),
}

/// An instance's state, read from outside it.
pub(crate) trait StateQuery: std::fmt::Debug + Send + Sync {
    /// The value of `key` (as text, or as JSON of the store's key type)
    /// in `store`, or in every store of the actor when none is named. The
    /// values are the committed ones: under exactly-once, what the last
    /// committed transaction left.
    fn query(&self, key: &str, store: Option<&str>) -> StateAnswer;
}
