//! The Kafka side: where a node's cluster is ([`broker`]: an embedded mock
//! cluster or a real one), the settings its clients are made from
//! ([`settings`], [`security`], [`secret`]), its first contact with the
//! cluster ([`connect`]), topics ([`topics`]) and the changelogs of
//! actors' stores ([`changelogs`]), a topic read from its end
//! without a group ([`tail`]), where a keyed record goes
//! ([`partitioner`]), and the schema registry beside the cluster (where it
//! is, [`registry`]; its REST client, `registry_client`, feature
//! `registry`).
//!
//! Owns: talking to the cluster as a client, outside any actor. May
//! import: `error`, `wire`. Imported by: the subsystems above it
//! (`publisher`, `ask`, `feed`, `supervisor`, `node`) and the CLI, through
//! `scribe::client`.

pub(crate) mod broker;
pub(crate) mod changelogs;
pub(crate) mod connect;
pub(crate) mod partitioner;
pub(crate) mod registry;
#[cfg(feature = "registry")]
pub(crate) mod registry_client;
pub(crate) mod secret;
pub(crate) mod security;
pub(crate) mod settings;
pub(crate) mod tail;
pub(crate) mod topics;
