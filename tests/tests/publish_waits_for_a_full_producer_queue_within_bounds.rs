//! A handler publishing faster than the broker acknowledges waits for room
//! in the producer's queue: the wait is counted and bounded by the
//! producer's `message.timeout.ms`, after which the publish fails and the
//! record is handled again. Nothing is lost.

use std::collections::HashSet;
use std::time::Duration;

use scribe::FailurePolicy;
use scribe_tests::actors::{Relay, RelayArgs, numbers_in, produce_numbers};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

#[actix::test]
async fn a_full_producer_queue_stalls_publishes_within_a_bound_and_loses_nothing() {
    let Some(kafka) = TestKafka::embedded_only(
        "a_full_producer_queue_stalls_publishes",
        "it slows the broker's answers with the embedded broker's fault injection",
    ) else {
        return;
    };
    let broker = kafka.embedded_broker().unwrap();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    let total = 300;
    produce_numbers(
        &kafka,
        &input,
        (0..total).map(|seq| Number {
            key: format!("k{}", seq % 3),
            seq,
        }),
    );
    let node = kafka
        .node("stalled")
        .producer_property("queue.buffering.max.messages", "4")
        .producer_property("message.timeout.ms", "1500")
        .actor::<Relay>(&actor, &output, RelayArgs::reading(&input))
        .failure_policy(
            &actor,
            FailurePolicy {
                max_restarts: 1000,
                ..FailurePolicy::default()
            },
        )
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    // Once it is under way, the broker answers slowly until a publish has
    // waited past the bound.
    let running = TestKafka::eventually(Duration::from_secs(60), || {
        node.stats(&actor).unwrap().published > 0
    });
    assert!(running.await, "the relay publishes");
    broker
        .set_round_trip_time(-1, Duration::from_millis(2500))
        .unwrap();
    let stalled = TestKafka::eventually(Duration::from_secs(120), || {
        let stats = node.stats(&actor).unwrap();
        stats.publish_stalls > 0 && stats.handler_failures + stats.publish_failures > 0
    });
    let waited = stalled.await;
    broker.set_round_trip_time(-1, Duration::ZERO).unwrap();
    let mut seen = HashSet::new();
    let mut received = 0;
    for _ in 0..60 {
        let out = kafka
            .read(&output, usize::MAX, Duration::from_secs(2))
            .await;
        received = out.len();
        seen = numbers_in(&out).into_iter().map(|n| n.seq).collect();
        if seen.len() == total as usize {
            break;
        }
    }
    let stats = node.stats(&actor).unwrap();
    node.shutdown().await.unwrap();
    println!(
        "sent={total} received={received} lost={} duplicates={} stalls={} stalled_ms={} \
         handler_failures={} publish_failures={} restarts={}",
        total as usize - seen.len(),
        received - seen.len(),
        stats.publish_stalls,
        stats.publish_stalled_ms,
        stats.handler_failures,
        stats.publish_failures,
        stats.restarts
    );
    assert!(
        waited,
        "a publish waited for room and then failed: {stats:?}"
    );
    assert!(stats.publish_stalled_ms >= 1000, "{stats:?}");
    assert_eq!(seen.len(), total as usize, "nothing lost: {stats:?}");
}
