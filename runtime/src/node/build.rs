//! [`NodeBuilder::build`]: the validation that turns what a node is made
//! of into a [`Node`], before anything touches Kafka. What it refuses is
//! what `scribe check` refuses, with the same one line.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::builder::NodeBuilder;
use super::validated::Node;
use crate::actor::{SubscriptionInfo, pattern_regex};
use crate::delivery::policy::Delivery;
use crate::error::{Error, Result};
use crate::kafka::topics::check_name;
use crate::supervisor::ActorFactory;
use crate::topology::ActorInfo;
use crate::wire::codec::full_name;
use crate::wire::framing::Encoding;

/// A setting out of range, named as a node file names it.
fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        setting: setting.into(),
        reason: reason.into(),
    }
}

impl NodeBuilder {
    /// Validates the topology and returns the node, ready to start.
    ///
    /// Fails when a name is not a legal Kafka name, two actors share a name,
    /// two actors own one topic (single writer), an actor subscribes to its
    /// own output or to one topic twice, or a subscriber cannot read what
    /// the topic's owner writes (see [`crate::topology::check`]).
    pub fn build(mut self) -> Result<Node> {
        if let Some(error) = self.errors.drain(..).next() {
            return Err(error);
        }
        self.check_settings()?;
        self.check_actor_settings()?;
        let mut names = HashMap::new();
        for (actor, _) in &self.actors {
            check_name("actor", actor.name())?;
            check_name("topic", actor.output())?;
            if names.insert(actor.name(), ()).is_some() {
                return Err(Error::DuplicateActor {
                    actor: actor.name().to_owned(),
                });
            }
        }
        for (actor, _) in &self.actors {
            check_subscriptions(&**actor)?;
            check_output_types(&**actor)?;
        }
        for gateway in &self.gateways {
            check_name("gateway", &gateway.name)?;
            check_name("topic", &gateway.requests)?;
            check_name("topic", &gateway.replies)?;
        }
        if let Some(registry) = &self.schema_registry {
            registry
                .validate()
                .map_err(|reason| invalid("registry", reason))?;
        }
        let node = Node { builder: self };
        let actors = node.actors();
        check_encodings(&node, &actors)?;
        check_stores(&node, &actors)?;
        crate::topology::check(&actors)?;
        crate::topology::check_gateways(&actors, &node.builder.gateways, false)?;
        crate::topology::check_asks(&actors, false)?;
        check_dead_letters(&actors)?;
        let exactly_once = node
            .builder
            .deliveries
            .values()
            .any(|d| *d == Delivery::ExactlyOnce);
        node.settings(String::new(), false).validate(exactly_once)?;
        Ok(node)
    }

    /// The node's own settings: its name, intervals, topics and security.
    fn check_settings(&self) -> Result<()> {
        check_name("node", &self.name)?;
        for (setting, value) in [
            ("node.commit_interval", self.commit_interval),
            ("node.transaction_timeout", self.transaction_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(setting, "must be more than zero"));
            }
        }
        self.default_topic
            .check()
            .map_err(|(field, reason)| invalid(format!("topic_defaults.{field}"), reason))?;
        for (topic, spec) in &self.topics {
            spec.check()
                .map_err(|(field, reason)| invalid(format!("topic `{topic}`: {field}"), reason))?;
        }
        self.security
            .check()
            .map_err(|(field, reason)| Error::Security { field, reason })?;
        for topic in self.topics.keys() {
            check_name("topic", topic)?;
        }
        self.check_features()
    }

    /// Settings that need a cargo feature this build of scribe lacks.
    fn check_features(&self) -> Result<()> {
        let missing = |setting: &str, feature: &str, what: &str| {
            invalid(
                setting,
                format!(
                    "this build of scribe has no {what} (cargo feature `{feature}` of `scribe`)"
                ),
            )
        };
        if cfg!(not(feature = "admin")) && (self.admin.is_some() || self.admin_token.is_some()) {
            return Err(missing("node.admin", "admin", "admin endpoint"));
        }
        if cfg!(not(feature = "otlp")) && self.tracing.is_some() {
            return Err(missing("node.tracing", "otlp", "OTLP export"));
        }
        if cfg!(not(feature = "registry")) && self.schema_registry.is_some() {
            return Err(missing("registry", "registry", "schema registry client"));
        }
        Ok(())
    }

    /// Settings given per actor name: each names an actor of the node.
    fn check_actor_settings(&self) -> Result<()> {
        let known = |actor: &String| -> Result<()> {
            if self.actors.iter().any(|(a, _)| a.name() == actor) {
                Ok(())
            } else {
                Err(Error::UnknownActor {
                    actor: actor.clone(),
                })
            }
        };
        for actor in self
            .deliveries
            .keys()
            .chain(self.envelopes.keys())
            .chain(self.encodings.keys())
            .chain(self.subject_strategies.keys())
        {
            known(actor)?;
        }
        for (actor, policy) in &self.policies {
            known(actor)?;
            if let Some(topic) = &policy.dead_letter_topic {
                check_name("topic", topic)?;
            }
        }
        Ok(())
    }
}

/// An actor's subscriptions: legal names and patterns, and one topic
/// taken whole once, or by distinct types and prefixes.
fn check_subscriptions(actor: &dyn ActorFactory) -> Result<()> {
    let mut seen: Vec<&SubscriptionInfo> = Vec::new();
    for sub in actor.subscriptions() {
        if sub.pattern {
            pattern_regex(&sub.topic)?;
        } else {
            check_name("topic", &sub.topic)?;
        }
        let twice = seen.iter().filter(|s| s.topic == sub.topic).any(|s| {
            s.binding.is_whole()
                || sub.binding.is_whole()
                || (s.binding == sub.binding && s.record_type == sub.record_type)
        });
        if twice {
            return Err(Error::DuplicateSubscription {
                actor: actor.name().to_owned(),
                topic: sub.topic.clone(),
            });
        }
        seen.push(sub);
    }
    Ok(())
}

/// An actor's output types: readers tell them apart by name, so no name
/// twice.
fn check_output_types(actor: &dyn ActorFactory) -> Result<()> {
    let mut written = BTreeSet::new();
    for schema in actor.output_schemas() {
        let name = full_name(&schema);
        if !written.insert(name.clone()) {
            return Err(invalid(
                format!("actor `{}`: output", actor.name()),
                format!("its record types name `{name}` twice; readers tell them apart by name"),
            ));
        }
    }
    Ok(())
}

/// Actors writing in the schema registry's framing: a registry to
/// register with, and schemas it can hold under their subjects.
fn check_encodings(node: &Node, actors: &[ActorInfo]) -> Result<()> {
    for actor in actors {
        if actor.encoding != Encoding::Confluent {
            continue;
        }
        let why = if node.builder.schema_registry.is_none() {
            "confluent needs a schema registry ([registry] url)"
        } else if actor.output_schemas.is_empty() {
            "the actor writes JSON, which has no avro schema to register"
        } else if actor.output_schemas.len() > 1 && !actor.subject_strategy.per_type() {
            "its topic carries several record types, and the topic_name subject \
             strategy gives them one subject; use record_name or topic_record_name"
        } else {
            continue;
        };
        return Err(invalid(format!("actor `{}`: encoding", actor.name), why));
    }
    Ok(())
}

/// A dead-letter topic is neither the actor's output nor one it reads.
fn check_dead_letters(actors: &[ActorInfo]) -> Result<()> {
    for actor in actors {
        let Some(dead_letters) = &actor.dead_letter_topic else {
            continue;
        };
        let why = if *dead_letters == actor.output {
            "it is the actor's own output, so undecodable records would reach its readers"
        } else if actor.subscriptions.iter().any(|s| s.reads(dead_letters)) {
            "the actor reads it, so a dead letter would come back to it at once"
        } else {
            continue;
        };
        return Err(invalid(
            format!(
                "actor `{}`: failure.dead_letter_topic `{dead_letters}`",
                actor.name
            ),
            why,
        ));
    }
    Ok(())
}

/// The consumers' `partition.assignment.strategy`, if the node sets it
/// (the last setting wins, the consumer's over the common one).
fn assignment_strategy(node: &Node) -> Option<&str> {
    let b = &node.builder;
    b.common
        .iter()
        .chain(&b.consumer)
        .filter(|(key, _)| key == "partition.assignment.strategy")
        .map(|(_, value)| value.as_str())
        .next_back()
}

/// An actor's stores: legal, distinct names; named topics to shard them
/// by, all of one partition count as far as the node's topic settings
/// say (the broker's counts are checked at start); changelogs that are
/// nothing else of the actor's.
fn check_stores(node: &Node, actors: &[ActorInfo]) -> Result<()> {
    for actor in actors.iter().filter(|a| !a.stores.is_empty()) {
        let setting = |store: &str| format!("actor `{}`: store `{store}`", actor.name);
        let mut names = BTreeSet::new();
        for store in &actor.stores {
            crate::state::check_store_name(&store.name)
                .map_err(|reason| invalid(setting(&store.name), reason))?;
            if !names.insert(&store.name) {
                return Err(invalid(setting(&store.name), "declared twice"));
            }
            check_name("topic", &store.changelog)?;
            if actor.dead_letter_topic.as_ref() == Some(&store.changelog) {
                return Err(invalid(
                    setting(&store.name),
                    format!(
                        "its changelog `{}` is the actor's dead-letter topic",
                        store.changelog
                    ),
                ));
            }
        }
        let store = &actor.stores[0].name;
        if actor.subscriptions.is_empty() {
            return Err(invalid(
                setting(store),
                "the actor reads no topic: state is sharded by input partition",
            ));
        }
        if let Some(pattern) = actor.subscriptions.iter().find(|s| s.pattern) {
            return Err(invalid(
                setting(store),
                format!(
                    "the actor reads pattern `{}`: an actor with stores reads named topics, \
                     whose partition counts must agree",
                    pattern.topic
                ),
            ));
        }
        if let Some(strategy) = assignment_strategy(node)
            && strategy.contains("cooperative")
        {
            return Err(invalid(
                setting(store),
                format!(
                    "`partition.assignment.strategy` is `{strategy}`: a cooperative rebalance \
                     takes a partition away without letting the actor settle it first, so a \
                     record in hand would find its state gone (use an eager assignor: `range`, \
                     librdkafka's default)"
                ),
            ));
        }
        if actor.subscriptions.len() > 1
            && let Some(strategy) = assignment_strategy(node)
            && strategy.split(',').next().map(str::trim) != Some("range")
        {
            return Err(invalid(
                setting(store),
                format!(
                    "the actor reads {} topics and `partition.assignment.strategy` is \
                     `{strategy}`: only `range` gives one member partition p of every input, \
                     whose state is one shard",
                    actor.subscriptions.len()
                ),
            ));
        }
        let counts: BTreeMap<&str, i32> = actor
            .subscriptions
            .iter()
            .map(|s| {
                let spec = node
                    .builder
                    .topics
                    .get(&s.topic)
                    .unwrap_or(&node.builder.default_topic);
                (s.topic.as_str(), spec.partitions)
            })
            .collect();
        let first = counts.values().next().copied().unwrap_or_default();
        if counts.values().any(|c| *c != first) {
            let listed: Vec<String> = counts
                .iter()
                .map(|(topic, count)| format!("`{topic}` has {count}"))
                .collect();
            return Err(invalid(
                setting(store),
                format!(
                    "the actor's inputs differ in partition count ({}): state is sharded by \
                     input partition, so they must agree",
                    listed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
