//! Broker-backed faults, through the embedded mock cluster's fault
//! injection: request errors, added latency and a 10-second outage. A relay
//! node rides all three out without a restart; every record arrives, in
//! key order.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use scribe_tests::actors::{RelayArgs, numbers_in, produce_numbers, start_relay};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

const KEYS: i64 = 5;

fn numbers(seqs: std::ops::Range<i64>) -> impl Iterator<Item = Number> {
    seqs.flat_map(|seq| {
        (0..KEYS).map(move |k| Number {
            key: format!("k{k}"),
            seq,
        })
    })
}

#[actix::test]
async fn a_node_rides_out_request_errors_latency_and_a_broker_outage() {
    let Some(kafka) = TestKafka::embedded_only(
        "a_node_rides_out_request_errors",
        "it drives the embedded broker's request errors and latency; the Apache Kafka \
         pass kills real brokers instead",
    ) else {
        return;
    };
    let broker = kafka.embedded_broker().expect("embedded").clone();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 3).await;
    let node = start_relay(
        &kafka,
        "faulty",
        &actor,
        &output,
        RelayArgs::reading(&input),
    )
    .await;

    produce_numbers(&kafka, &input, numbers(0..40));
    // Retriable errors on the next produce and fetch requests, whoever sends them.
    use RDKafkaRespErr::*;
    broker
        .fail_requests(
            RDKafkaApiKey::Produce,
            &[RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 4],
        )
        .expect("errors queued");
    broker
        .fail_requests(
            RDKafkaApiKey::Fetch,
            &[RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 4],
        )
        .expect("errors queued");
    broker
        .set_round_trip_time(-1, Duration::from_millis(150))
        .expect("latency set");
    produce_numbers(&kafka, &input, numbers(40..80));
    broker
        .set_round_trip_time(-1, Duration::ZERO)
        .expect("latency removed");
    produce_numbers(&kafka, &input, numbers(80..120));
    // Records sent while the only broker is down wait in the producer.
    broker.broker_down(1).expect("broker down");
    std::thread::scope(|s| {
        s.spawn(|| produce_numbers(&kafka, &input, numbers(120..160)));
        std::thread::sleep(Duration::from_secs(10));
        broker.broker_up(1).expect("broker up");
    });

    let sent = (160 * KEYS) as usize;
    let mut received = Vec::new();
    for _ in 0..60 {
        let out = kafka.read(&output, sent, Duration::from_secs(1)).await;
        received = numbers_in(&out);
        if received.len() >= sent {
            break;
        }
    }
    let stats = node.stats(&actor).expect("known actor");
    node.shutdown().await.expect("clean shutdown");

    let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for n in &received {
        per_key.entry(n.key.clone()).or_default().push(n.seq);
    }
    let mut distinct = 0;
    for (key, seqs) in &per_key {
        let mut firsts: Vec<i64> = Vec::new();
        for &s in seqs {
            if !firsts.contains(&s) {
                firsts.push(s);
            }
        }
        assert_eq!(
            firsts,
            (0..160).collect::<Vec<_>>(),
            "key {key}: lost or reordered"
        );
        distinct += firsts.len();
    }
    let lost = sent - distinct;
    let duplicates = received.len() - distinct;
    println!(
        "sent={sent} received={} lost={lost} duplicates={duplicates} stats={stats:?}",
        received.len()
    );
    assert_eq!(lost, 0);
    assert_eq!(stats.restarts, 0, "rode out without a restart: {stats:?}");
}
