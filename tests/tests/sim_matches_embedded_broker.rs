//! Parity: one scenario of the example system, run on the simulator and on
//! a Kafka-protocol broker (the embedded mock cluster, or the broker named
//! by `SCRIBE_TEST_BOOTSTRAP`), leaves the same records on every topic.
//!
//! Compared per topic and partition: keys and values, in offset order,
//! the changelogs of the aggregator's and the alarm's stores included.
//! Two things legitimately differ between any two runs, even two on one
//! broker, and are set aside: the `at_ms` of commands and journal entries
//! (the wall clock when they were written), and the interleaving of the
//! journal's three inputs within a partition (the journal's partitions are
//! compared as multisets). Each host is chosen to have a partition of its
//! own, so every other topic's order is fully determined by per-key order.

use std::collections::BTreeMap;
use std::time::Duration;

use scribe::sim::Simulation;
use scribe::{Node, NodeBuilder, SchemaRegistry, partition_for_key};
use scribe_examples::{HostMonitor, host_monitor, topics};
use scribe_schemas::HostMetrics;
use scribe_tests::{TestKafka, unique};

/// Per partition: each record's key and value (as JSON), in offset order.
type Contents = BTreeMap<i32, Vec<(String, serde_json::Value)>>;

const PARTITIONS: i32 = 3;
const T0: i64 = 1_767_225_600_000;

fn settings(prefix: &str) -> HostMonitor {
    HostMonitor {
        // The sampler reads this machine: keep it out of the scenario.
        sample_every: Duration::from_secs(86_400),
        // Windows close on later samples only: a wall-clock grace timer
        // would fire at a different point of the scenario on the
        // simulator's virtual clock and on the broker's real one.
        grace: Some(Duration::from_secs(3600)),
        cooldown: Duration::from_secs(3),
        print: false,
        topic_prefix: prefix.to_owned(),
        ..HostMonitor::default()
    }
}

fn node(builder: NodeBuilder, prefix: &str) -> Node {
    host_monitor(builder, &settings(prefix))
        .build()
        .expect("valid topology")
}

/// Three hosts, one per partition: one runs hot then cools (throttle, then
/// a resume held back by the cooldown), one stays hot, one stays cool.
fn samples() -> Vec<(String, HostMetrics)> {
    let mut hosts: Vec<Option<String>> = vec![None; PARTITIONS as usize];
    for i in 0.. {
        let host = format!("web-{i}");
        let p = partition_for_key(host.as_bytes(), PARTITIONS) as usize;
        hosts[p].get_or_insert(host);
        if hosts.iter().all(Option::is_some) {
            break;
        }
    }
    let hosts: Vec<String> = hosts.into_iter().flatten().collect();
    let mut out = Vec::new();
    for s in 0..30i64 {
        for (h, host) in hosts.iter().enumerate() {
            let cpu = match h {
                0 if s < 12 => 95.0,
                0 => 5.0,
                1 => 80.0 + (s % 7) as f64,
                _ => 10.0 + (s % 3) as f64,
            };
            let sample = HostMetrics {
                host: host.clone(),
                cpu_percent: cpu,
                mem_used_percent: 30.0 + s as f64,
                load1: 0.5 * h as f64,
                sampled_at_ms: T0 + s * 1000,
            };
            out.push((host.clone(), sample));
        }
    }
    out
}

fn normalize(topic: &str, mut value: serde_json::Value) -> serde_json::Value {
    if (topic.ends_with(topics::COMMANDS) || topic.ends_with(topics::JOURNAL))
        && let Some(fields) = value.as_object_mut()
    {
        fields.remove("at_ms");
    }
    value
}

fn contents<'a>(
    registry: &SchemaRegistry,
    topic: &str,
    records: impl IntoIterator<Item = (i32, Option<&'a [u8]>, &'a [u8])>,
) -> Contents {
    let mut out = Contents::new();
    for (partition, key, value) in records {
        // A changelog's tombstone (a key deleted) has no value.
        let json = if value.is_empty() {
            serde_json::Value::Null
        } else {
            scribe::codec::decode_json(registry, value)
                .expect("decodable")
                .1
        };
        let key = String::from_utf8_lossy(key.unwrap_or_default()).into_owned();
        out.entry(partition)
            .or_default()
            .push((key, normalize(topic, json)));
    }
    if topic.ends_with(topics::JOURNAL) {
        for records in out.values_mut() {
            records.sort_by_key(|(k, v)| (k.clone(), v.to_string()));
        }
    }
    out
}

const TOPICS: [&str; 7] = [
    topics::METRICS,
    topics::SUMMARIES,
    topics::ALARMS,
    topics::COMMANDS,
    topics::JOURNAL,
    // What the aggregator and the alarm remember: their stores' changes.
    WINDOWS_CHANGELOG,
    RAISED_CHANGELOG,
];
const WINDOWS_CHANGELOG: &str = "metrics.summary.windows.changelog";
const RAISED_CHANGELOG: &str = "alarms.cpu.raised.changelog";

#[actix::test]
async fn the_example_system_leaves_the_same_records_on_both() {
    let prefix = unique("parity") + ".";
    let registry = node(Node::builder("parity"), &prefix).schema_registry();

    // The simulator.
    let sim_contents: Vec<Contents> = std::thread::spawn({
        let (prefix, registry) = (prefix.clone(), registry.clone());
        move || {
            let mut sim = Simulation::builder(node(Node::builder("parity"), &prefix))
                .seed(scribe::sim::seeds(1)[0])
                .build()
                .expect("starts");
            for (key, sample) in samples() {
                sim.inject(&format!("{prefix}{}", topics::METRICS), &key, &sample)
                    .expect("injected");
            }
            sim.run_until_idle();
            sim.run_for(Duration::from_secs(5));
            sim.assert_invariants();
            TOPICS
                .iter()
                .map(|t| {
                    let topic = format!("{prefix}{t}");
                    let raw = sim.raw(&topic).expect("known topic");
                    let records = raw.iter().enumerate().flat_map(|(p, records)| {
                        records
                            .iter()
                            .map(move |(k, v)| (p as i32, k.as_deref(), v.as_slice()))
                    });
                    contents(&registry, &topic, records)
                })
                .collect()
        }
    })
    .join()
    .expect("simulation thread");

    // The broker.
    let kafka = TestKafka::from_env();
    let running = node(kafka.node("parity"), &prefix)
        .start()
        .await
        .expect("node starts");
    let encoder = scribe::codec::Encoder::<HostMetrics>::new().expect("schema");
    let encoded: Vec<(String, Vec<u8>)> = samples()
        .into_iter()
        .map(|(key, sample)| {
            let mut bytes = Vec::new();
            encoder.encode(&sample, &mut bytes).expect("encodes");
            (key, bytes)
        })
        .collect();
    let raw: Vec<_> = encoded
        .iter()
        .map(|(k, v)| (Some(k.as_str()), v.clone(), vec![]))
        .collect();
    kafka.produce_raw(&format!("{prefix}{}", topics::METRICS), &raw);
    let mut broker_contents = Vec::new();
    for (t, expected) in TOPICS.iter().zip(&sim_contents) {
        let topic = format!("{prefix}{t}");
        let count: usize = expected.values().map(Vec::len).sum();
        let mut records = kafka.read(&topic, count, Duration::from_secs(30)).await;
        if records.len() == count {
            // Anything more would be a difference too. A second reader
            // that has not caught up within the look (a busy machine) is
            // no evidence either way: only more records replace these.
            let again = kafka.read(&topic, count + 1, Duration::from_secs(2)).await;
            if again.len() > count {
                records = again;
            }
        }
        let records = records
            .iter()
            .map(|r| (r.partition, r.key.as_deref(), r.value.as_slice()));
        broker_contents.push(contents(&registry, &topic, records));
    }
    running.shutdown().await.expect("clean shutdown");

    for ((t, sim), broker) in TOPICS.iter().zip(&sim_contents).zip(&broker_contents) {
        let count: usize = sim.values().map(Vec::len).sum();
        println!(
            "{t}: simulator {count} records, broker {} records",
            broker.values().map(Vec::len).sum::<usize>()
        );
        assert!(count > 0, "the scenario writes to {t}");
        assert_eq!(
            sim, broker,
            "topic {t} differs between the simulator and the broker"
        );
    }
}
