//! A deployment: every node file given to `scribe check`, `graph` or
//! `acls`, validated one by one and then together (here), and drawn as a
//! graph (`graph`).
//!
//! Owns: loading and checking node files together. May import: `settings`,
//! `error`, the runtime.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::settings::{NodeConfig, Registry};
use scribe::topology::{self, ExternalTopic};
use scribe::{ActorInfo, Node};

mod graph;

pub use graph::{Format, graph};

/// One loaded node of a deployment.
#[derive(Debug)]
pub struct Loaded {
    /// The file as read.
    pub config: NodeConfig,
    /// The node it describes, validated.
    pub node: Node,
}

/// Every node of a deployment, checked together.
#[derive(Debug)]
pub struct Deployment {
    /// The nodes, in the order of their files.
    pub nodes: Vec<Loaded>,
    /// Subscriptions to topics no actor of the deployment owns.
    pub external: Vec<ExternalTopic>,
    /// Every actor of every node, in file order.
    pub actors: Vec<ActorInfo>,
}

impl Deployment {
    /// The actor that owns `topic` (writes it as its output), if any.
    pub fn owner(&self, topic: &str) -> Option<&ActorInfo> {
        self.actors.iter().find(|a| a.output == topic)
    }
}

/// Loads and validates every file, then checks them together as one
/// deployment. Touches no network.
pub fn load(registry: &Registry, files: &[PathBuf]) -> Result<Deployment> {
    let mut nodes: Vec<Loaded> = Vec::new();
    for file in files {
        let config = NodeConfig::load(file)?;
        let node = config.node(registry)?;
        // Node names tell the nodes apart: in client ids, in every record's
        // `ce_source`, and in the principal `scribe acls` binds.
        if let Some(other) = nodes.iter().find(|l| l.node.name() == node.name()) {
            return Err(Error::Config {
                file: config.file.clone(),
                message: format!(
                    "node.name: `{}` is also the name of the node in {}; each node of a \
                     deployment needs its own (a node run on several machines is one file)",
                    node.name(),
                    other.config.file
                ),
            });
        }
        nodes.push(Loaded { config, node });
    }
    check_copies(&nodes)?;
    let actors: Vec<ActorInfo> = nodes.iter().flat_map(|l| l.node.actors()).collect();
    let gateways: Vec<_> = nodes
        .iter()
        .flat_map(|l| l.node.gateways().iter().cloned())
        .collect();
    let all = || {
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let external = topology::check(&actors).map_err(|e| Error::Config {
        file: all(),
        message: e.to_string(),
    })?;
    topology::check_gateways(&actors, &gateways, true).map_err(|e| Error::Config {
        file: all(),
        message: e.to_string(),
    })?;
    topology::check_asks(&actors, true).map_err(|e| Error::Config {
        file: all(),
        message: e.to_string(),
    })?;
    Ok(Deployment {
        nodes,
        external,
        actors,
    })
}

/// An actor of one name in two files is one actor run on two nodes: one
/// consumer group, one output. Its copies must do the same work, so each
/// setting of one copy must be the other's; the first that differs is
/// refused, naming the actor, both files and the setting.
fn check_copies(nodes: &[Loaded]) -> Result<()> {
    for (i, first) in nodes.iter().enumerate() {
        for second in &nodes[i + 1..] {
            for (a_section, a_info) in first.config.actors.iter().zip(first.node.actors()) {
                let copy = second
                    .config
                    .actors
                    .iter()
                    .zip(second.node.actors())
                    .find(|(section, _)| section.name == a_section.name);
                let Some((b_section, b_info)) = copy else {
                    continue;
                };
                let a = settings(a_section, &a_info);
                let b = settings(b_section, &b_info);
                let difference = a
                    .iter()
                    .zip(&b)
                    .find_map(|((name, x), (_, y))| first_difference(name, x, y));
                let Some((setting, in_first, in_second)) = difference else {
                    continue;
                };
                let (first_file, second_file) = (&first.config.file, &second.config.file);
                return Err(Error::Config {
                    file: format!("{first_file}, {second_file}"),
                    message: format!(
                        "actor `{}` is in both files, so both run one actor (one consumer group, \
                         one output), but its copies differ: {setting} is {in_first} in \
                         {first_file} and {in_second} in {second_file}",
                        a_section.name
                    ),
                });
            }
        }
    }
    Ok(())
}

/// What one copy of an actor is, setting by setting, as its file gives
/// it (kind, output, parameters, failure policy) and as its node makes it
/// (delivery, envelope, encoding, dead-letter topic, from the node's
/// defaults where the actor sets none).
fn settings(
    section: &crate::settings::ActorSection,
    info: &ActorInfo,
) -> [(&'static str, serde_json::Value); 9] {
    let shown = |value: &dyn std::fmt::Debug| serde_json::Value::String(format!("{value:?}"));
    [
        ("kind", section.kind.clone().into()),
        ("output", section.output.clone().into()),
        ("params", section.params.clone()),
        (
            "failure",
            shown(&section.failure.clone().unwrap_or_default()),
        ),
        ("dead_letter_topic", shown(&info.dead_letter_topic)),
        ("delivery", info.delivery.to_string().into()),
        ("envelope", info.envelope.to_string().into()),
        ("encoding", info.encoding.to_string().into()),
        ("subject_strategy", info.subject_strategy.to_string().into()),
    ]
}

/// The first place where `a` and `b` differ, by its path below `at`, and
/// each one's value there (`absent` where one has none).
fn first_difference(
    at: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    if a == b {
        return None;
    }
    let below = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    let show = |value: Option<&Value>| match value {
        None | Some(Value::Null) => "absent".to_owned(),
        Some(value) => format!("`{value}`"),
    };
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .find_map(|key| match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => first_difference(&below(key), x, y),
                    (x, y) => Some((below(key), show(x), show(y))),
                })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&below(&i.to_string()), x, y)),
        _ => Some((at.to_owned(), show(Some(a)), show(Some(b)))),
    }
}

/// `scribe check`: the summary printed for a valid deployment.
pub fn check(registry: &Registry, files: &[PathBuf]) -> Result<String> {
    let deployment = load(registry, files)?;
    let mut out = String::new();
    let mut actors = 0;
    for loaded in &deployment.nodes {
        actors += loaded.config.actors.len();
        let _ = writeln!(
            out,
            "{}: node `{}`, {} actors, kafka {}",
            loaded.config.file,
            loaded.node.name(),
            loaded.config.actors.len(),
            loaded.config.kafka.bootstrap_servers
        );
        for (section, actor) in loaded.config.actors.iter().zip(loaded.node.actors()) {
            let reads: Vec<String> = actor
                .subscriptions
                .iter()
                .map(|s| format!("{} ({})", s.topic, s.record_type))
                .collect();
            let reads = if reads.is_empty() {
                "nothing".to_owned()
            } else {
                reads.join(", ")
            };
            let mut delivery = match actor.delivery {
                scribe::Delivery::AtLeastOnce => String::new(),
                other => format!("; {other}"),
            };
            if actor.envelope != scribe::Envelope::default() {
                let _ = write!(delivery, "; {} envelope", actor.envelope);
            }
            if actor.encoding == scribe::Encoding::Confluent {
                let _ = write!(
                    delivery,
                    "; confluent encoding, {} subjects",
                    actor.subject_strategy
                );
            }
            let _ = writeln!(
                out,
                "  {} [{}] writes {} ({}); reads {}{delivery}",
                actor.name, section.kind, actor.output, actor.output_type, reads
            );
            for store in &actor.stores {
                let _ = writeln!(
                    out,
                    "    remembers {} ({} -> {}) in {}",
                    store.name, store.key_type, store.value_type, store.changelog
                );
            }
            for ask in &actor.asks {
                let responder = deployment
                    .owner(&ask.replies)
                    .map_or("", |a| a.name.as_str());
                let _ = writeln!(
                    out,
                    "    asks {} on {}, answered by {responder} with {} on {}",
                    ask.request_type, actor.output, ask.reply_type, ask.replies
                );
            }
        }
    }
    for loaded in &deployment.nodes {
        for gateway in loaded.node.gateways() {
            let responder = deployment
                .owner(&gateway.replies)
                .map(|a| a.name.as_str())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  gateway {} (node `{}`) asks on {}, answered by {} on {}",
                gateway.name,
                loaded.node.name(),
                gateway.requests,
                responder,
                gateway.replies
            );
        }
    }
    for ExternalTopic {
        topic,
        reader,
        record_type,
    } in &deployment.external
    {
        let _ = writeln!(
            out,
            "external: `{topic}` ({record_type}), read by `{reader}`, is owned by no actor here"
        );
    }
    let _ = writeln!(out, "ok: {} files, {actors} actors", deployment.nodes.len());
    Ok(out)
}

/// `scribe check --registry URL`: whether the registry at `url` would
/// take each schema that actors writing `encoding = "confluent"` register,
/// under its subject and that subject's compatibility level. The report,
/// and how many schemas it would refuse. Each file's `[registry]`
/// credentials and CA are used, with `url` instead of its own.
pub fn check_registry(deployment: &Deployment, url: &str) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut refused = 0;
    let _ = writeln!(out, "schema registry {url}:");
    for loaded in &deployment.nodes {
        let mut settings = loaded
            .node
            .schema_registry_settings()
            .cloned()
            .unwrap_or_default();
        settings.url = url.to_owned();
        let client = scribe::confluent::RegistryClient::new(&settings)?;
        for actor in loaded.node.actors() {
            if actor.encoding != scribe::Encoding::Confluent {
                let _ = writeln!(
                    out,
                    "  skip {} ({}): encoding {}, nothing registered",
                    actor.output, actor.name, actor.encoding
                );
                continue;
            }
            for (subject, schema) in actor.subjects() {
                let name = scribe::codec::full_name(schema);
                let head = format!(
                    "{} {name} ({}), subject `{subject}`",
                    actor.output, actor.name
                );
                match client.check(&subject, schema)? {
                    scribe::confluent::Compatibility::NewSubject => {
                        let _ = writeln!(out, "  ok   {head}: new subject, would be version 1");
                    }
                    scribe::confluent::Compatibility::Compatible { level } => {
                        let _ = writeln!(out, "  ok   {head}: compatible under {level}");
                    }
                    scribe::confluent::Compatibility::Incompatible { level, messages } => {
                        refused += 1;
                        let _ = writeln!(out, "  FAIL {head}: refused under {level}");
                        for message in messages {
                            let _ = writeln!(out, "       {message}");
                        }
                    }
                }
            }
        }
    }
    Ok((out, refused))
}
