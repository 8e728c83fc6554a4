//! `scribe acls`: the ACL bindings a deployment needs, and nothing more, so
//! the cluster itself enforces the single-writer rule.
//!
//! Each node's principal may write (and create, and describe) only the
//! topics its actors own and their dead-letter topics, read the topics its
//! actors subscribe to, use its actors' consumer groups, and, for
//! exactly-once actors, their transactional ids. A node that tries to write
//! anywhere else is refused by the brokers.
//!
//! Idempotent producers need no cluster-wide `IdempotentWrite` on Kafka 3.0
//! and later: WRITE on a topic implies it (KIP-679).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::error::{Error, Result};
use scribe::Delivery;

/// A kind of Kafka resource an ACL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// A transactional id.
    TransactionalId,
}

/// How an ACL's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pattern {
    /// The name exactly.
    Literal,
    /// Every name starting with it.
    Prefixed,
}

/// An operation an ACL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Consume, or use a consumer group.
    Read,
    /// Produce, or use a transactional id.
    Write,
    /// Create the topic if it is missing.
    Create,
    /// See the resource's metadata.
    Describe,
    /// See the resource's configuration (a changelog's cleanup policy).
    DescribeConfigs,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Describe => "Describe",
            Operation::DescribeConfigs => "DescribeConfigs",
        }
    }
}

/// One allowed resource of a node's principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What kind of resource.
    pub resource: Resource,
    /// How `name` matches.
    pub pattern: Pattern,
    /// The resource's name (or prefix).
    pub name: String,
    /// What the principal may do with it.
    pub operations: Vec<Operation>,
    /// Why the node needs it.
    pub why: Vec<String>,
}

/// What one node's principal is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAcls {
    /// The node's configuration file.
    pub file: String,
    /// The node's name.
    pub node: String,
    /// Its principal as the brokers know it (`User:NAME`).
    pub principal: String,
    /// What it may do, in a stable order.
    pub grants: Vec<Grant>,
}

/// The grants of every node of `deployment`.
pub fn deployment_acls(deployment: &crate::Deployment) -> Result<Vec<NodeAcls>> {
    deployment
        .nodes
        .iter()
        .map(|loaded| {
            let file = loaded.config.file.clone();
            let security = &loaded.config.kafka.security;
            let principal = match (&security.principal, &security.sasl_username) {
                (Some(principal), _) => principal.clone(),
                (None, Some(user)) => format!("User:{user}"),
                (None, None) => {
                    return Err(Error::Config {
                        file,
                        message: "kafka.security.principal: missing: without SASL credentials \
                                  the node's principal cannot be told (set it to what the \
                                  brokers know the node as, e.g. `User:CN=orders`)"
                            .into(),
                    });
                }
            };
            let node = loaded.node.name().to_owned();
            let grants =
                node_grants(&node, &loaded.node.actors()).map_err(|message| Error::Config {
                    file: file.clone(),
                    message,
                })?;
            Ok(NodeAcls {
                file,
                node,
                principal,
                grants,
            })
        })
        .collect()
}

/// What the actors of node `node` need.
fn node_grants(node: &str, actors: &[scribe::ActorInfo]) -> Result<Vec<Grant>, String> {
    use Operation::{Create, Describe, DescribeConfigs, Read, Write};
    let mut grants: BTreeMap<(Resource, Pattern, String), Grant> = BTreeMap::new();
    let mut grant = |resource, pattern, name: &str, ops: &[Operation], why: String| {
        let entry = grants
            .entry((resource, pattern, name.to_owned()))
            .or_insert_with(|| Grant {
                resource,
                pattern,
                name: name.to_owned(),
                operations: Vec::new(),
                why: Vec::new(),
            });
        for op in ops {
            if !entry.operations.contains(op) {
                entry.operations.push(*op);
            }
        }
        entry.operations.sort();
        if !entry.why.contains(&why) {
            entry.why.push(why);
        }
    };
    for actor in actors {
        let name = &actor.name;
        grant(
            Resource::Topic,
            Pattern::Literal,
            &actor.output,
            &[Write, Create, Describe],
            format!("actor `{name}` owns it"),
        );
        for sub in &actor.subscriptions {
            if sub.pattern {
                for (prefix, exact) in pattern_prefixes(&sub.topic).map_err(|reason| {
                    format!("actor `{name}` reads pattern `{}`: {reason}", sub.topic)
                })? {
                    let pattern = if exact {
                        Pattern::Literal
                    } else {
                        Pattern::Prefixed
                    };
                    grant(
                        Resource::Topic,
                        pattern,
                        &prefix,
                        &[Read, Describe],
                        format!("actor `{name}` reads topics matching `{}`", sub.topic),
                    );
                }
            } else {
                grant(
                    Resource::Topic,
                    Pattern::Literal,
                    &sub.topic,
                    &[Read, Describe],
                    format!("actor `{name}` reads it"),
                );
            }
        }
        if !actor.subscriptions.is_empty() {
            grant(
                Resource::Group,
                Pattern::Literal,
                name,
                &[Read],
                format!("actor `{name}`'s consumer group"),
            );
        }
        if let Some(dlq) = &actor.dead_letter_topic {
            grant(
                Resource::Topic,
                Pattern::Literal,
                dlq,
                &[Write, Create, Describe, Read],
                format!("actor `{name}`'s dead letters (written; read by `scribe dlq`)"),
            );
            grant(
                Resource::Group,
                Pattern::Literal,
                &format!("{name}.dlq-replay"),
                &[Read],
                format!("`scribe dlq replay` of actor `{name}`"),
            );
        }
        for store in &actor.stores {
            grant(
                Resource::Topic,
                Pattern::Literal,
                &store.changelog,
                &[Write, Create, Describe, DescribeConfigs, Read],
                format!(
                    "actor `{name}`'s store `{}` (written; read to restore; its cleanup policy checked at start)",
                    store.name
                ),
            );
        }
        if actor.delivery == Delivery::ExactlyOnce {
            let id = scribe::client::transactional_id(node, name);
            grant(
                Resource::TransactionalId,
                Pattern::Literal,
                &id,
                &[Write, Describe],
                format!("exactly-once actor `{name}`"),
            );
            if actor.dead_letter_topic.is_some() {
                grant(
                    Resource::TransactionalId,
                    Pattern::Literal,
                    &format!("{id}.dlq-replay"),
                    &[Write, Describe],
                    format!("`scribe dlq replay` of exactly-once actor `{name}`"),
                );
            }
        }
    }
    Ok(grants.into_values().collect())
}

/// The literal prefixes every topic matching `pattern` (anchored at the
/// start) begins with, each with whether it is the whole name. Kafka's ACLs
/// match literal names or prefixes, not regular expressions: a pattern
/// without a literal start cannot be granted narrowly, and is refused.
fn pattern_prefixes(pattern: &str) -> Result<Vec<(String, bool)>, String> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::Parser::new()
        .parse(&format!("^(?:{pattern})"))
        .map_err(|e| e.to_string())?;
    // A class (`[0-9]`) ends a prefix rather than multiplying it.
    let seq = Extractor::new()
        .kind(ExtractKind::Prefix)
        .limit_class(1)
        .extract(&hir);
    let refuse = || {
        "Kafka ACLs grant literal names or prefixes, and this pattern starts with no literal \
         text: start it with one (e.g. `metrics\\.`) or grant READ on its topics by hand"
            .to_owned()
    };
    let literals = seq.literals().ok_or_else(refuse)?;
    if literals.is_empty() || literals.len() > 16 {
        return Err(refuse());
    }
    let mut out = Vec::new();
    for literal in literals {
        let text = String::from_utf8(literal.as_bytes().to_vec()).map_err(|_| refuse())?;
        if text.is_empty() {
            return Err(refuse());
        }
        out.push((text, literal.is_exact()));
    }
    Ok(out)
}

/// One `kafka-acls` command line per grant, each node's under a comment
/// naming its file and principal; `bootstrap` goes in each line.
pub fn kafka_acls_commands(acls: &[NodeAcls], bootstrap: &str) -> String {
    let mut out = String::new();
    for node in acls {
        let _ = writeln!(
            out,
            "# {}: node `{}` as {}",
            node.file, node.node, node.principal
        );
        for grant in &node.grants {
            let _ = write!(
                out,
                "kafka-acls.sh --bootstrap-server {} --add --allow-principal {}",
                quote(bootstrap),
                quote(&node.principal)
            );
            for op in &grant.operations {
                let _ = write!(out, " --operation {}", op.name());
            }
            let flag = match grant.resource {
                Resource::Topic => "--topic",
                Resource::Group => "--group",
                Resource::TransactionalId => "--transactional-id",
            };
            let _ = write!(out, " {flag} {}", quote(&grant.name));
            if grant.pattern == Pattern::Prefixed {
                out.push_str(" --resource-pattern-type prefixed");
            }
            let _ = writeln!(out, "   # {}", grant.why.join("; "));
        }
    }
    out
}

/// `text` as one shell word.
fn quote(text: &str) -> impl fmt::Display + '_ {
    struct Quoted<'a>(&'a str);
    impl fmt::Display for Quoted<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let safe = |c: char| c.is_ascii_alphanumeric() || "._-:,/=@".contains(c);
            if !self.0.is_empty() && self.0.chars().all(safe) {
                f.write_str(self.0)
            } else {
                write!(f, "'{}'", self.0.replace('\'', r"'\''"))
            }
        }
    }
    Quoted(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_with_a_literal_start_is_granted_by_prefix() {
        assert_eq!(
            pattern_prefixes(r"metrics\..*").unwrap(),
            vec![("metrics.".to_owned(), false)]
        );
        assert_eq!(
            pattern_prefixes(r"a\.b").unwrap(),
            vec![("a.b".to_owned(), true)]
        );
        let both = pattern_prefixes(r"(orders|refunds)\.v[0-9]+").unwrap();
        assert_eq!(
            both,
            [
                ("orders.v".to_owned(), false),
                ("refunds.v".to_owned(), false)
            ]
        );
    }

    #[test]
    fn a_pattern_without_a_literal_start_is_refused() {
        let error = pattern_prefixes(r".*\.alarms").unwrap_err();
        assert!(error.contains("starts with no literal text"), "{error}");
    }

    #[test]
    fn an_actor_with_a_store_may_write_read_create_and_describe_its_changelog() {
        let actor = scribe::ActorInfo {
            name: "tally".into(),
            output: "tallies".into(),
            output_type: "long".into(),
            output_schemas: vec![apache_avro::Schema::Long],
            subscriptions: vec![scribe::SubscriptionInfo {
                topic: "numbers".into(),
                pattern: false,
                record_type: "long".into(),
                schema: apache_avro::Schema::Long,
                binding: scribe::Binding::Every,
            }],
            dead_letter_topic: None,
            delivery: Delivery::AtLeastOnce,
            envelope: Default::default(),
            encoding: Default::default(),
            subject_strategy: Default::default(),
            asks: Vec::new(),
            stores: vec![scribe::StoreInfo {
                name: "counts".into(),
                changelog: "tallies.counts.changelog".into(),
                key_type: "string".into(),
                key_schema: apache_avro::Schema::String,
                value_type: "long".into(),
                value_schema: apache_avro::Schema::Long,
            }],
        };
        let grants = node_grants("n", &[actor]).unwrap();
        let changelog = grants
            .iter()
            .find(|g| g.name == "tallies.counts.changelog")
            .expect("a grant on the changelog");
        assert_eq!(
            (changelog.resource, changelog.pattern),
            (Resource::Topic, Pattern::Literal)
        );
        use Operation::*;
        assert_eq!(
            changelog.operations,
            vec![Read, Write, Create, Describe, DescribeConfigs]
        );
        assert!(changelog.why[0].contains("actor `tally`'s store `counts`"));
    }

    #[test]
    fn names_that_are_not_shell_words_are_quoted() {
        assert_eq!(quote("User:orders").to_string(), "User:orders");
        assert_eq!(quote("User:it's me").to_string(), r"'User:it'\''s me'");
    }
}
