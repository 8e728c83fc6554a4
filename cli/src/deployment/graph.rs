//! `scribe graph`: a deployment's actors and topics as a Mermaid or
//! Graphviz DOT drawing.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use clap::ValueEnum;

use super::Deployment;

/// Graph output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// `scribe graph`: the deployment as Mermaid or DOT.
pub fn graph(deployment: &Deployment, format: Format) -> String {
    let id = |prefix: &str, name: &str| {
        let clean: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("{prefix}_{clean}")
    };
    // Boxes (actor id, name, kind), cylinders (topic id, name) and labelled
    // arrows (from, to, record type), each in a stable order.
    let mut actors = Vec::new();
    let mut topics = BTreeSet::new();
    let mut edges = Vec::new();
    let mut gateways = BTreeSet::new();
    for loaded in &deployment.nodes {
        for (section, actor) in loaded.config.actors.iter().zip(loaded.node.actors()) {
            let me = id("a", &actor.name);
            edges.push((
                me.clone(),
                id("t", &actor.output),
                actor.output_type.clone(),
            ));
            topics.insert(actor.output.clone());
            for ask in &actor.asks {
                // The replies its requester reads.
                edges.push((
                    id("t", &ask.replies),
                    me.clone(),
                    format!("reply {}", ask.reply_type),
                ));
                topics.insert(ask.replies.clone());
            }
            for sub in &actor.subscriptions {
                edges.push((id("t", &sub.topic), me.clone(), sub.record_type.clone()));
                topics.insert(sub.topic.clone());
            }
            for store in &actor.stores {
                // The changelog it writes and restores from.
                edges.push((
                    me.clone(),
                    id("t", &store.changelog),
                    format!("state {}", store.name),
                ));
                topics.insert(store.changelog.clone());
            }
            actors.push((me, actor.name.clone(), section.kind.clone()));
        }
        for gateway in loaded.node.gateways() {
            let me = id("g", &gateway.name);
            edges.push((me.clone(), id("t", &gateway.requests), "request".into()));
            edges.push((id("t", &gateway.replies), me.clone(), "reply".into()));
            topics.insert(gateway.requests.clone());
            topics.insert(gateway.replies.clone());
            gateways.insert((me, gateway.name.clone()));
        }
    }
    // Topics written outside the deployment (no actor or gateway owns
    // them), drawn at the edge.
    let owned: BTreeSet<&str> = deployment
        .actors
        .iter()
        .map(|a| a.output.as_str())
        .chain(
            deployment
                .actors
                .iter()
                .flat_map(|a| &a.stores)
                .map(|s| s.changelog.as_str()),
        )
        .chain(
            deployment
                .nodes
                .iter()
                .flat_map(|l| l.node.gateways())
                .map(|g| g.requests.as_str()),
        )
        .collect();
    let outside = |topic: &str| {
        let pattern = deployment
            .actors
            .iter()
            .flat_map(|a| &a.subscriptions)
            .find(|s| s.pattern && s.topic == topic);
        match pattern {
            // A pattern reads outside topics when it matches none owned here.
            Some(sub) => !owned.iter().any(|t| sub.reads(t)),
            None => !owned.contains(topic),
        }
    };
    let mut out = String::new();
    match format {
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            for (me, name, kind) in &actors {
                let _ = writeln!(out, "  {me}[\"{name}<br/><i>{kind}</i>\"]");
            }
            for (me, name) in &gateways {
                let _ = writeln!(out, "  {me}{{{{\"{name}<br/><i>gateway</i>\"}}}}");
            }
            for topic in &topics {
                if outside(topic) {
                    let _ = writeln!(
                        out,
                        "  {}[/\"{topic}<br/><i>outside</i>\"/]",
                        id("t", topic)
                    );
                } else {
                    let _ = writeln!(out, "  {}[(\"{topic}\")]", id("t", topic));
                }
            }
            for (from, to, label) in &edges {
                let _ = writeln!(out, "  {from} -- \"{label}\" --> {to}");
            }
        }
        Format::Dot => {
            out.push_str("digraph scribe {\n  rankdir=LR;\n");
            for (me, name, kind) in &actors {
                let _ = writeln!(out, "  \"{me}\" [shape=box, label=\"{name}\\n{kind}\"];");
            }
            for (me, name) in &gateways {
                let _ = writeln!(
                    out,
                    "  \"{me}\" [shape=hexagon, label=\"{name}\\ngateway\"];"
                );
            }
            for topic in &topics {
                let (style, note) = if outside(topic) {
                    (", style=dashed", "\\noutside")
                } else {
                    ("", "")
                };
                let _ = writeln!(
                    out,
                    "  \"{}\" [shape=cylinder{style}, label=\"{topic}{note}\"];",
                    id("t", topic)
                );
            }
            for (from, to, label) in &edges {
                let _ = writeln!(out, "  \"{from}\" -> \"{to}\" [label=\"{label}\"];");
            }
            out.push_str("}\n");
        }
    }
    out
}
