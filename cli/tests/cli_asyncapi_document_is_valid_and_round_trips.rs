//! `scribe asyncapi` writes an AsyncAPI 3.0 document that the official
//! parser (`@asyncapi/parser` with `@asyncapi/avro-schema-parser`, run by
//! Node) accepts without an error or a warning, and what the parser reads
//! back is the deployment: every actor's send and receive operations,
//! every topic as a channel with its one owner, every record type with its
//! Avro fields, topics owned by no actor as outside, pattern
//! subscriptions as channels without a fixed address.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const EDGE: &str = r#"
[node]
name = "edge"

# Not contacted: the document only says how the gatherer frames values.
[registry]
url = "http://registry.invalid:8081"

# Written in the Confluent Schema Registry's framing.
[[actors]]
name = "gatherer"
kind = "relay.host-metrics"
output = "metrics.gathered"
encoding = "confluent"
params = { pattern = "metrics\\.host.*" }

[[actors]]
name = "outside-alarm"
kind = "threshold-alarm"
output = "alarms.outside"
params = { input = "summaries.from-elsewhere", metric = "cpu_percent", high = 90.0, low = 70.0 }

# Asked by the `ops` gateway: it reads the gateway's requests and answers
# on its own topic.
[[actors]]
name = "asked-alarm"
kind = "threshold-alarm"
output = "alarms.asked"
# Its replies in the registry's framing: the gateway's reply names that message.
encoding = "confluent"
params = { input = "summaries.asked", metric = "cpu_percent", high = 90.0, low = 70.0 }

# Bridges at the edge: outside JSON in, an owned topic out as JSON.
[[actors]]
name = "acapy-in"
kind = "json-in.host-metrics"
output = "metrics.bridged"
params = { pattern = "acapy-inbound-.*", fields = { cpu_percent = "cpu" } }

[[actors]]
name = "mirror"
kind = "json-out"
output = "metrics.bridged.json"
params = { topic = "metrics.bridged" }

[[gateways]]
name = "ops"
requests = "summaries.asked"
replies = "alarms.asked"
"#;

#[test]
fn the_document_passes_the_official_parser_and_round_trips_the_topology() {
    let Some(parser) = scribe_tests::asyncapi::parser_dir() else {
        println!("skipped: no @asyncapi/parser (set SCRIBE_REQUIRE_ASYNCAPI=1 to fail)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("scribe-asyncapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let edge = dir.join("edge.toml");
    std::fs::write(&edge, EDGE).unwrap();
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/host-monitor.toml");
    let files = [example, edge];

    let out = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .arg("asyncapi")
        .args(&files)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let document = dir.join("asyncapi.json");
    std::fs::write(&document, &out.stdout).unwrap();
    // The gatherer's records say how they are framed, in the Kafka
    // message bindings registry-aware tools read.
    let written: Value = serde_json::from_slice(&out.stdout).unwrap();
    let framed =
        &written["components"]["messages"]["scribe.metrics.HostMetrics.confluent-topic_name"];
    assert_eq!(
        framed["bindings"]["kafka"]["schemaIdPayloadEncoding"], "confluent",
        "{framed}"
    );
    assert_eq!(
        framed["bindings"]["kafka"]["schemaLookupStrategy"],
        "TopicNameStrategy"
    );
    assert_eq!(
        written["channels"]["metrics.gathered"]["messages"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["scribe.metrics.HostMetrics.confluent-topic_name"]
    );

    let read = scribe_tests::asyncapi::parse(&parser, &document);

    let deployment = scribe_cli::load(&scribe_cli::settings::Registry::standard(), &files)
        .expect("valid deployment");
    let channels = read["channels"].as_array().unwrap();
    let operations = read["operations"].as_array().unwrap();
    let channel = |address: &str| {
        channels
            .iter()
            .find(|c| c["address"] == address)
            .unwrap_or_else(|| panic!("a channel for `{address}`"))
    };
    let operation = |id: &str| {
        operations
            .iter()
            .find(|o| o["id"] == id)
            .unwrap_or_else(|| panic!("operation `{id}`"))
    };
    let (mut actors, mut subscriptions, mut types) = (0, 0, BTreeSet::new());
    for loaded in &deployment.nodes {
        for actor in loaded.node.actors() {
            actors += 1;
            // Its topic: one owner, this actor, carrying its types.
            let owned = channel(&actor.output);
            assert_eq!(owned["owner"]["actor"], actor.name.as_str());
            assert_eq!(owned["owner"]["node"], loaded.node.name());
            // Each store's changelog: the actor's too, carrying its
            // changes.
            for store in &actor.stores {
                let changelog = channel(&store.changelog);
                assert_eq!(changelog["owner"]["actor"], actor.name.as_str());
                let change = format!("{}.{}.state", actor.name, store.name);
                assert_eq!(changelog["messages"], serde_json::json!([change]));
                types.insert(change);
            }
            let mut written: Vec<String> = actor
                .output_schemas
                .iter()
                .map(scribe::codec::full_name)
                .collect();
            if written.is_empty() {
                // JSON text: one message saying so.
                written.push(format!("{}.json", actor.name));
                assert_eq!(
                    owned["contentTypes"],
                    serde_json::json!(["application/json"])
                );
                types.insert(written[0].clone());
            }
            let carried: BTreeSet<&str> = owned["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect();
            assert_eq!(carried, written.iter().map(String::as_str).collect());
            for (at, schema) in actor.output_schemas.iter().enumerate() {
                types.insert(written[at].clone());
                let index = owned["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|m| *m == written[at].as_str())
                    .unwrap();
                let fields = owned["fields"][index].as_array().unwrap();
                let apache_avro::Schema::Record(record) = schema else {
                    panic!("records are Avro records")
                };
                assert_eq!(
                    fields
                        .iter()
                        .map(|f| f.as_str().unwrap())
                        .collect::<Vec<_>>(),
                    record
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>(),
                    "{}: the Avro fields, as the parser read them",
                    written[at]
                );
            }
            let send = operation(&format!("{}.send", actor.name));
            assert_eq!(send["action"], "send");
            assert_eq!(send["channels"], serde_json::json!([actor.output]));
            assert_eq!(send["actor"], actor.name.as_str());
            // Each subscription: a receive operation on its channel.
            for sub in &actor.subscriptions {
                subscriptions += 1;
                let id = match sub.binding {
                    scribe::Binding::Every | scribe::Binding::Foreign => {
                        format!("{}.receive.{}", actor.name, sub.topic)
                    }
                    _ => format!("{}.receive.{}.{}", actor.name, sub.topic, sub.record_type),
                };
                let receive = operation(&id.replace(
                    |c: char| !c.is_ascii_alphanumeric() && !".-_".contains(c),
                    "_",
                ));
                assert_eq!(receive["action"], "receive");
                assert_eq!(receive["actor"], actor.name.as_str());
                if sub.pattern {
                    let patterned = channels
                        .iter()
                        .find(|c| c["pattern"] == sub.topic.as_str())
                        .expect("a channel for the pattern");
                    assert!(patterned["address"].is_null(), "no fixed address");
                    if sub.binding == scribe::Binding::Foreign {
                        // Outside bytes, read by the actor's own function.
                        let message = &patterned["messages"][0];
                        types.insert(message.as_str().unwrap().to_owned());
                        assert_eq!(receive["messages"], serde_json::json!([message]));
                        assert_eq!(
                            patterned["contentTypes"],
                            serde_json::json!(["application/octet-stream"])
                        );
                    }
                } else {
                    assert_eq!(receive["channels"], serde_json::json!([sub.topic]));
                    let read_from = channel(&sub.topic);
                    let carried = read_from["messages"].as_array().unwrap();
                    assert_eq!(receive["messages"].as_array().unwrap().len(), 1);
                    assert!(carried.contains(&receive["messages"][0]));
                    types.insert(receive["messages"][0].as_str().unwrap().to_owned());
                }
            }
            if let Some(dlq) = &actor.dead_letter_topic {
                assert_eq!(channel(dlq)["owner"]["actor"], actor.name.as_str());
                assert_eq!(
                    operation(&format!("{}.dead-letter", actor.name))["action"],
                    "send"
                );
            }
        }
    }
    // The gateway: its request topic is its own, and its operation's
    // reply comes on the responder's topic, in the responder's type.
    assert_eq!(channel("summaries.asked")["owner"]["gateway"], "ops");
    let ask = operation("ops.ask");
    assert_eq!(ask["action"], "send");
    assert_eq!(ask["channels"], serde_json::json!(["summaries.asked"]));
    assert_eq!(
        ask["messages"],
        serde_json::json!(["scribe.metrics.MetricSummary"])
    );
    assert_eq!(ask["reply"]["channel"], "alarms.asked");
    assert_eq!(
        ask["reply"]["messages"],
        serde_json::json!(["scribe.control.Alarm"])
    );
    // The topic no actor here owns is outside: no owner.
    let outside = channel("summaries.from-elsewhere");
    assert!(outside["owner"].is_null());
    assert_eq!(
        outside["messages"],
        serde_json::json!(["scribe.metrics.MetricSummary"])
    );
    // Every message name the parser saw is a type of the deployment (or
    // the dead letter).
    let seen: BTreeSet<String> = channels
        .iter()
        .flat_map(|c| c["messages"].as_array().unwrap().iter())
        .map(|m| m.as_str().unwrap().to_owned())
        .filter(|m| m != "scribe.DeadLetter")
        .collect();
    assert!(seen.is_subset(&types), "{seen:?} within {types:?}");
    println!(
        "asyncapi: {actors} actors, {subscriptions} subscriptions, {} channels, {} operations, {} record types; the parser read them all back",
        channels.len(),
        operations.len(),
        types.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
