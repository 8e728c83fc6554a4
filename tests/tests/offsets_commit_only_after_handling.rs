//! Offsets commit only after handling: a node dropped mid-stream without a
//! graceful shutdown loses nothing when it starts again in the same groups.

use std::collections::HashSet;
use std::time::Duration;

use scribe_tests::actors::{RelayArgs, numbers_in, produce_numbers, start_relay};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

const KEYS: i64 = 6;
const PER_KEY: i64 = 50;

#[actix::test]
async fn a_dropped_node_restarted_in_its_group_loses_no_record() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 3).await;
    let numbers = (0..PER_KEY).flat_map(|seq| {
        (0..KEYS).map(move |k| Number {
            key: format!("k{k}"),
            seq,
        })
    });
    produce_numbers(&kafka, &input, numbers);
    let total = (KEYS * PER_KEY) as usize;

    // First run: slow handling; dropped (no drain, no final commit) once
    // the broker holds some of its commits.
    let slow = RelayArgs {
        delay: Duration::from_millis(10),
        ..RelayArgs::reading(&input)
    };
    let first = start_relay(&kafka, "crashy", &actor, &output, slow).await;
    let mut committed = 0;
    for _ in 0..300 {
        committed = kafka.committed(&actor, &input).await;
        if committed >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every record is published once: a committed offset must stand for a
    // record handled and acknowledged.
    let acknowledged = first.stats(&actor).unwrap().published;
    assert!(
        committed >= 30,
        "the first run commits as it goes ({committed})"
    );
    assert!(
        committed as u64 <= acknowledged,
        "committed {committed} offsets but only {acknowledged} records were handled and acknowledged"
    );
    let handled_first = first.stats(&actor).unwrap().handled;
    drop(first);
    assert!(
        handled_first < total as u64,
        "dropped part way ({handled_first} of {total})"
    );

    // Second run, same actor name (same consumer group).
    let second = start_relay(
        &kafka,
        "crashy",
        &actor,
        &output,
        RelayArgs::reading(&input),
    )
    .await;
    let mut seen = HashSet::new();
    let mut received = 0;
    for _ in 0..60 {
        let out = kafka
            .read(&output, usize::MAX, Duration::from_millis(1500))
            .await;
        received = out.len();
        seen = numbers_in(&out)
            .into_iter()
            .map(|n| (n.key, n.seq))
            .collect();
        if seen.len() == total {
            break;
        }
    }
    let handled_second = second.stats(&actor).unwrap().handled;
    second.shutdown().await.unwrap();
    let lost = total - seen.len();
    println!(
        "sent={total} received={received} distinct={} lost={lost} duplicates={} \
         (first run handled {handled_first}, second {handled_second})",
        seen.len(),
        received - seen.len()
    );
    assert_eq!(lost, 0, "every input record reaches the output");
    assert!(
        handled_second < total as u64,
        "the second run resumed from committed offsets instead of starting over"
    );
}

/// A handler that ignores a refused publish and returns `Ok` must not get
/// its record committed with the output lost: the record is handled again.
#[actix::test]
async fn a_publish_the_producer_refuses_is_not_committed_past_and_is_handled_again() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    let total = 20;
    produce_numbers(
        &kafka,
        &input,
        scribe_tests::actors::keyed_numbers(0..total, 1),
    );
    let args = RelayArgs {
        refused_once_at: Some(7),
        ..RelayArgs::reading(&input)
    };
    let failures = args.failures.clone();
    let node = start_relay(&kafka, "careless", &actor, &output, args).await;
    let out = kafka
        .read(&output, total as usize, Duration::from_secs(60))
        .await;
    let mut committed = 0;
    for _ in 0..600 {
        committed = kafka.committed(&actor, &input).await;
        if committed >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = node.stats(&actor).unwrap();
    node.shutdown().await.unwrap();
    let seen: HashSet<i64> = numbers_in(&out).into_iter().map(|n| n.seq).collect();
    let lost = total as usize - seen.len();
    println!(
        "sent={total} received={} lost={lost} duplicates={} refusals={} restarts={} committed={committed}",
        out.len(),
        out.len() - seen.len(),
        failures.load(std::sync::atomic::Ordering::SeqCst),
        stats.restarts,
    );
    assert_eq!(
        lost, 0,
        "the record whose publish was refused is handled again"
    );
    assert!(seen.contains(&7));
    assert!(stats.restarts >= 1, "the instance restarted: {stats:?}");
    assert_eq!(committed, total, "every offset commits in the end");
}
