//! [`StoreInfo`]: a store an actor declares, as plain data the topology
//! checks and the tools read.

use apache_avro::Schema;

/// A store an actor declares
/// ([`Subscriptions::store`](crate::Subscriptions::store)): its name, its
/// changelog topic, and the Avro types of its keys and values.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreInfo {
    /// The store's name, unique within its actor.
    pub name: String,
    /// Its changelog: a compacted topic the actor owns, with as many
    /// partitions as the actor's input
    /// ([`changelog_topic`](crate::state::changelog_topic)).
    pub changelog: String,
    /// The Avro full name of its key type.
    pub key_type: String,
    /// Its key schema.
    pub key_schema: Schema,
    /// The Avro full name of its value type.
    pub value_type: String,
    /// Its value schema.
    pub value_schema: Schema,
}

/// Checks a store name: 1 to 64 characters of `[a-z0-9_-]`, so that its
/// changelog's name reads as the actor's output, the store and
/// `changelog`.
pub(crate) fn check_store_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("it must be 1 to 64 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
    {
        return Err("only lowercase ASCII letters, digits, `_` and `-` are allowed");
    }
    Ok(())
}
