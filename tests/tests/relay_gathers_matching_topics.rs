//! A relay forwards every topic matching its pattern into its own topic,
//! keeping each record's key and headers, and leaves other topics alone.

use std::collections::BTreeSet;
use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::{Decoder, Encoder};
use scribe_actors::{Relay, RelayArgs};
use scribe_schemas::HostMetrics;
use scribe_tests::{TestKafka, unique};

fn sample(host: &str) -> Vec<u8> {
    let metrics = HostMetrics {
        host: host.into(),
        cpu_percent: 1.0,
        mem_used_percent: 2.0,
        load1: 3.0,
        sampled_at_ms: 4,
    };
    let mut bytes = Vec::new();
    Encoder::<HostMetrics>::new()
        .unwrap()
        .encode(&metrics, &mut bytes)
        .unwrap();
    bytes
}

#[actix::test]
async fn a_relay_gathers_matching_topics_keeping_keys_and_headers() {
    let kafka = TestKafka::from_env();
    let id = unique("relay");
    let (a, b, other, gathered) = (
        format!("{id}-inbound-a"),
        format!("{id}-inbound-b"),
        format!("{id}-other"),
        format!("{id}.gathered"),
    );
    for topic in [&a, &b] {
        kafka.create_topic(topic, 2).await;
    }
    kafka.create_topic(&other, 1).await;
    for (topic, prefix) in [(&a, "a"), (&b, "b"), (&other, "x")] {
        let hosts: Vec<String> = (0..5).map(|i| format!("{prefix}{i}")).collect();
        let traces: Vec<String> = hosts.iter().map(|h| format!("trace-{h}")).collect();
        let ids: Vec<String> = hosts.iter().map(|h| format!("id-{h}")).collect();
        let records: Vec<_> = hosts
            .iter()
            .zip(&traces)
            .zip(&ids)
            .map(|((host, trace), id)| {
                (
                    Some(host.as_str()),
                    sample(host),
                    vec![("ce_id", id.as_str()), ("trace", trace.as_str())],
                )
            })
            .collect();
        kafka.produce_raw(topic, &records);
    }

    let actor = unique("relay");
    let pattern = format!("{id}-inbound-.*");
    let node = kafka
        .node("relay")
        .actor::<Relay<HostMetrics>>(&actor, &gathered, RelayArgs { pattern })
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = kafka.read(&gathered, 10, Duration::from_secs(30)).await;
    let extra = kafka.read(&gathered, 11, Duration::from_secs(2)).await;
    node.shutdown().await.unwrap();

    assert_eq!(
        (out.len(), extra.len()),
        (10, 10),
        "only the 10 matching records are relayed"
    );
    let decoder = Decoder::<HostMetrics>::new(SchemaRegistry::new()).unwrap();
    let mut hosts = BTreeSet::new();
    for record in &out {
        let value = decoder.decode(&record.value).unwrap();
        assert_eq!(record.key_str(), value.host, "the key is kept");
        assert_eq!(
            record.header("ce_id"),
            format!("id-{}", value.host),
            "ce_id is kept"
        );
        assert_eq!(
            record.header("trace"),
            format!("trace-{}", value.host),
            "other headers are kept"
        );
        assert_eq!(
            record.header("ce_type"),
            "scribe.metrics.HostMetrics",
            "a missing ce_type is added"
        );
        assert_eq!(record.header("ce_source"), format!("relay/{actor}"));
        hosts.insert(value.host);
    }
    let expected: BTreeSet<String> = ["a", "b"]
        .iter()
        .flat_map(|p| (0..5).map(move |i| format!("{p}{i}")))
        .collect();
    assert_eq!(hosts, expected);
}
