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
