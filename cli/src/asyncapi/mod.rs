//! `scribe asyncapi`: a deployment as an AsyncAPI 3.0 document.
//!
//! - A channel per topic: its address, its messages (the owner's record
//!   type; for a topic no actor here owns, the types its readers expect),
//!   and who owns it (`x-scribe-owner`), with the Kafka binding's
//!   partitions and replicas where the node file declares them.
//! - A channel per dead-letter topic, whose messages are the records the
//!   actor gave up on, as they came, with the `scribe_dlq_*` headers.
//! - Per actor, a `send` operation on the channel it owns and a `receive`
//!   operation per subscription (its consumer group in the Kafka
//!   binding). A pattern subscription's channel has no fixed address: the
//!   pattern is in `x-scribe-pattern`.
//! - Each record type once under `components.messages`, its payload the
//!   Avro schema (`application/vnd.apache.avro;version=1.9.0`), with the
//!   metadata headers and `correlation_id` as its correlation id.
//! - A channel per store changelog, owned by its actor, with a `send`
//!   operation per store.
//!
//! Owns: the document (`document`, here) and its messages (`messages`).
//! May import: the deployment and the runtime's descriptions of actors.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use messages::{
    AVRO, KAFKA_BINDING, framing, id, message, message_key, outside_message, pointer, reply,
};

use crate::deployment::Deployment;
use scribe::Binding;

mod messages;

/// The AsyncAPI document of `deployment`, titled from its nodes.
pub fn document(deployment: &Deployment) -> Value {
    let mut messages = serde_json::Map::new();
    let mut channels = serde_json::Map::new();
    let mut operations = serde_json::Map::new();
    let mut servers = serde_json::Map::new();

    // Who owns each topic, and how the node file creates it.
    let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut specs = BTreeMap::new();
    for loaded in &deployment.nodes {
        for actor in loaded.node.actors() {
            owners.insert(
                actor.output.clone(),
                (actor.name.clone(), loaded.node.name().to_owned()),
            );
        }
        specs.extend(loaded.node.topics());
    }
    // Each channel's messages, by topic (or pattern).
    let mut channel_messages: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

    for loaded in &deployment.nodes {
        let node = loaded.node.name();
        servers.insert(
            id(node),
            json!({
                "host": loaded.config.kafka.bootstrap_servers,
                "protocol": "kafka",
                "description": format!("The Kafka cluster node `{node}` uses (`embedded`: a broker in its own process)."),
            }),
        );
        for actor in loaded.node.actors() {
            // One message per type it writes.
            let mut sent = Vec::new();
            for schema in &actor.output_schemas {
                let name = scribe::codec::full_name(schema);
                let out = message(&mut messages, &name, schema, framing(&actor));
                channel_messages
                    .entry(actor.output.clone())
                    .or_default()
                    .insert(out.clone(), name);
                sent.push(json!({"$ref": format!("#/channels/{}/messages/{}", pointer(&id(&actor.output)), pointer(&out))}));
            }
            if actor.output_schemas.is_empty() {
                // JSON for readers outside scribe, typed by `ce_type`.
                let name = format!("{}.json", actor.name);
                let out = outside_message(
                    &mut messages,
                    &name,
                    "application/json",
                    format!(
                        "A record as JSON text, its type in `ce_type`, written by `{}`.",
                        actor.name
                    ),
                );
                channel_messages
                    .entry(actor.output.clone())
                    .or_default()
                    .insert(out.clone(), name);
                sent.push(json!({"$ref": format!("#/channels/{}/messages/{}", pointer(&id(&actor.output)), pointer(&out))}));
            }
            operations.insert(
                id(&format!("{}.send", actor.name)),
                json!({
                    "action": "send",
                    "title": format!("{} publishes {}", actor.name, actor.output_type),
                    "channel": {"$ref": format!("#/channels/{}", pointer(&id(&actor.output)))},
                    "messages": sent,
                    "x-scribe-actor": actor.name,
                    "x-scribe-node": node,
                    "x-scribe-delivery": actor.delivery.to_string(),
                }),
            );
            for sub in &actor.subscriptions {
                // What the channel carries: the owner's type when there
                // is an owner here, else the type this reader expects.
                let owner = deployment.owner(&sub.topic).filter(|_| !sub.pattern);
                let channel = id(&sub.topic);
                // The messages it takes: of the owner's types, those its
                // binding takes; else (an outside topic) the type it expects.
                let reads: Vec<String> = match (owner, &sub.binding) {
                    // Written outside scribe, read by the actor's own function.
                    (None, Binding::Foreign) => {
                        let name = format!("{}.outside", sub.topic);
                        let key = outside_message(
                            &mut messages,
                            &name,
                            "application/octet-stream",
                            format!(
                                "Written by a client outside scribe (JSON, bytes); `{}` reads it into `{}`.",
                                actor.name, sub.record_type
                            ),
                        );
                        channel_messages
                            .entry(sub.topic.clone())
                            .or_default()
                            .insert(key.clone(), name);
                        vec![key]
                    }
                    (Some(owner), _) if owner.output_schemas.is_empty() => {
                        vec![id(&format!("{}.json", owner.name))]
                    }
                    (Some(owner), binding) => owner
                        .output_schemas
                        .iter()
                        .map(scribe::codec::full_name)
                        .filter(|name| match binding {
                            Binding::Every | Binding::Foreign => true,
                            Binding::Type => *name == sub.record_type,
                            Binding::Prefix(prefix) => name.starts_with(prefix.as_str()),
                        })
                        .map(|name| message_key(&name, framing(owner)))
                        .collect(),
                    // Any type, read as JSON: nothing to declare.
                    (None, Binding::Prefix(_)) => Vec::new(),
                    (None, _) => {
                        let key = message(&mut messages, &sub.record_type, &sub.schema, None);
                        channel_messages
                            .entry(sub.topic.clone())
                            .or_default()
                            .insert(key.clone(), sub.record_type.clone());
                        vec![key]
                    }
                };
                let reads: Vec<Value> = reads
                    .iter()
                    .map(|key| json!({"$ref": format!("#/channels/{}/messages/{}", pointer(&channel), pointer(key))}))
                    .collect();
                let operation = match sub.binding {
                    Binding::Every | Binding::Foreign => {
                        format!("{}.receive.{}", actor.name, sub.topic)
                    }
                    _ => format!("{}.receive.{}.{}", actor.name, sub.topic, sub.record_type),
                };
                operations.insert(
                    id(&operation),
                    json!({
                        "action": "receive",
                        "title": format!("{} reads {} as {}", actor.name, sub.topic, sub.record_type),
                        "channel": {"$ref": format!("#/channels/{}", pointer(&channel))},
                        "messages": reads,
                        "bindings": {"kafka": {
                            "groupId": {"type": "string", "enum": [actor.name]},
                            "bindingVersion": KAFKA_BINDING,
                        }},
                        "x-scribe-actor": actor.name,
                        "x-scribe-node": node,
                        "x-scribe-reads-as": sub.record_type,
                    }),
                );
                if sub.pattern {
                    channel_messages.entry(sub.topic.clone()).or_default();
                }
            }
            if let Some(dlq) = &actor.dead_letter_topic {
                let key = "scribe.DeadLetter".to_owned();
                messages.entry(key.clone()).or_insert_with(|| {
                    json!({
                        "name": "scribe.DeadLetter",
                        "title": "A dead letter",
                        "summary": "A record an actor gave up on, key, value and headers as they came, with scribe_dlq_error, scribe_dlq_attempts, scribe_dlq_actor, scribe_dlq_topic, scribe_dlq_partition and scribe_dlq_offset headers saying why and from where.",
                        "contentType": "application/octet-stream",
                    })
                });
                channel_messages
                    .entry(dlq.clone())
                    .or_default()
                    .insert(key.clone(), key.clone());
                owners.insert(dlq.clone(), (actor.name.clone(), node.to_owned()));
                operations.insert(
                    id(&format!("{}.dead-letter", actor.name)),
                    json!({
                        "action": "send",
                        "title": format!("{} dead-letters what it gives up on", actor.name),
                        "channel": {"$ref": format!("#/channels/{}", pointer(&id(dlq)))},
                        "messages": [{"$ref": format!("#/channels/{}/messages/{}", pointer(&id(dlq)), pointer(&key))}],
                        "x-scribe-actor": actor.name,
                        "x-scribe-node": node,
                    }),
                );
            }
            for store in &actor.stores {
                let key = format!("{}.{}.state", actor.name, store.name);
                let value = serde_json::to_value(&store.value_schema)
                    .unwrap_or_else(|_| json!(store.value_schema.canonical_form()));
                let record_key = serde_json::to_value(&store.key_schema)
                    .unwrap_or_else(|_| json!(store.key_schema.canonical_form()));
                messages.entry(key.clone()).or_insert_with(|| {
                    json!({
                        "name": key,
                        "title": format!("A change of store `{}` of `{}`", store.name, actor.name),
                        "summary": format!(
                            "The new value of a key of store `{}` (`{}` in Avro single-object encoding; no value: deleted). The key is the `{}` datum. Header scribe_state_input names the input record that made the change (topic/partition/offset), or `restored`.",
                            store.name, store.value_type, store.key_type
                        ),
                        "contentType": "application/avro",
                        "payload": {"schemaFormat": AVRO, "schema": value},
                        "x-scribe-key-schema": record_key,
                    })
                });
                channel_messages
                    .entry(store.changelog.clone())
                    .or_default()
                    .insert(key.clone(), key.clone());
                owners.insert(
                    store.changelog.clone(),
                    (actor.name.clone(), node.to_owned()),
                );
                operations.insert(
                    id(&format!("{}.state.{}", actor.name, store.name)),
                    json!({
                        "action": "send",
                        "title": format!("{} keeps store {} in its changelog", actor.name, store.name),
                        "channel": {"$ref": format!("#/channels/{}", pointer(&id(&store.changelog)))},
                        "messages": [{"$ref": format!("#/channels/{}/messages/{}", pointer(&id(&store.changelog)), pointer(&key))}],
                        "x-scribe-actor": actor.name,
                        "x-scribe-node": node,
                    }),
                );
            }
        }
    }

    // Gateways: a send operation on the topic each owns, whose reply comes
    // on its responder's topic (AsyncAPI's request/reply).
    let mut gateway_owned: BTreeMap<String, (String, String)> = BTreeMap::new();
    for loaded in &deployment.nodes {
        let node = loaded.node.name();
        for gateway in loaded.node.gateways() {
            let Some(responder) = deployment.owner(&gateway.replies) else {
                continue;
            };
            let Some(sub) = responder
                .subscriptions
                .iter()
                .find(|s| s.reads(&gateway.requests))
            else {
                continue;
            };
            let asked = message(&mut messages, &sub.record_type, &sub.schema, None);
            channel_messages
                .entry(gateway.requests.clone())
                .or_default()
                .insert(asked.clone(), sub.record_type.clone());
            gateway_owned.insert(
                gateway.requests.clone(),
                (gateway.name.clone(), node.to_owned()),
            );
            let requests = id(&gateway.requests);
            operations.insert(
                id(&format!("{}.ask", gateway.name)),
                json!({
                    "action": "send",
                    "title": format!("gateway {} asks {} and awaits its reply", gateway.name, responder.name),
                    "channel": {"$ref": format!("#/channels/{}", pointer(&requests))},
                    "messages": [{"$ref": format!("#/channels/{}/messages/{}", pointer(&requests), pointer(&asked))}],
                    "reply": reply(responder, gateway.reply_type.as_deref()),
                    "x-scribe-gateway": gateway.name,
                    "x-scribe-node": node,
                    "x-scribe-responder": responder.name,
                }),
            );
        }
        // What actors declare they ask: a request of their own topic, the
        // reply on the responder's.
        for actor in loaded.node.actors() {
            for ask in &actor.asks {
                let Some(responder) = deployment.owner(&ask.replies) else {
                    continue;
                };
                let requests = id(&actor.output);
                let asked = message_key(&ask.request_type, framing(&actor));
                operations.insert(
                    id(&format!("{}.ask.{}", actor.name, ask.replies)),
                    json!({
                        "action": "send",
                        "title": format!("{} asks {} and awaits its reply", actor.name, responder.name),
                        "channel": {"$ref": format!("#/channels/{}", pointer(&requests))},
                        "messages": [{"$ref": format!("#/channels/{}/messages/{}", pointer(&requests), pointer(&asked))}],
                        "reply": reply(responder, Some(&ask.reply_type)),
                        "x-scribe-actor": actor.name,
                        "x-scribe-node": node,
                        "x-scribe-responder": responder.name,
                    }),
                );
            }
        }
    }

    for (topic, carried) in channel_messages {
        let pattern = deployment
            .actors
            .iter()
            .flat_map(|a| &a.subscriptions)
            .any(|s| s.pattern && s.topic == topic);
        let mut channel = json!({
            "messages": carried
                .keys()
                .map(|key| (key.clone(), json!({"$ref": format!("#/components/messages/{}", pointer(key))})))
                .collect::<serde_json::Map<_, _>>(),
        });
        if pattern {
            channel["address"] = Value::Null;
            channel["description"] = json!(format!(
                "Every topic whose name matches `{topic}` from its start."
            ));
            channel["x-scribe-pattern"] = json!(topic);
        } else {
            channel["address"] = json!(topic);
            match owners.get(&topic) {
                None if gateway_owned.contains_key(&topic) => {
                    let (gateway, node) = &gateway_owned[&topic];
                    channel["description"] = json!(format!(
                        "Owned by gateway `{gateway}` of node `{node}`: the only writer; its requests."
                    ));
                    channel["x-scribe-owner"] = json!({"gateway": gateway, "node": node});
                }
                Some((actor, node)) => {
                    channel["description"] = json!(format!(
                        "Owned by actor `{actor}` of node `{node}`: the only writer."
                    ));
                    channel["x-scribe-owner"] = json!({"actor": actor, "node": node});
                }
                None => {
                    channel["description"] =
                        json!("Outside: no actor of this deployment writes it.");
                    channel["x-scribe-outside"] = json!(true);
                }
            }
            if let Some(spec) = specs.get(&topic) {
                channel["bindings"] = json!({"kafka": {
                    "topic": topic,
                    "partitions": spec.partitions,
                    "replicas": spec.replication,
                    "bindingVersion": KAFKA_BINDING,
                }});
            }
        }
        channels.insert(id(&topic), channel);
    }

    let names: Vec<&str> = deployment.nodes.iter().map(|l| l.node.name()).collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": format!("scribe deployment: {}", names.join(", ")),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Generated by `scribe asyncapi` from the deployment's node files. Each topic has one owner, the only actor that writes it.",
        },
        "defaultContentType": "application/avro",
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    })
}
