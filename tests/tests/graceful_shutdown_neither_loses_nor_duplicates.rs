//! A graceful shutdown finishes what it handled, flushes and commits, so a
//! restart in the same group neither loses nor repeats a record.

use std::collections::HashSet;
use std::time::Duration;

use scribe_tests::actors::{RelayArgs, numbers_in, produce_numbers, start_relay};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

#[actix::test]
async fn shutdown_then_restart_handles_every_record_exactly_once() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 3).await;
    let total = 240;
    let numbers = (0..total).map(|seq| Number {
        key: format!("k{}", seq % 8),
        seq,
    });
    produce_numbers(&kafka, &input, numbers);

    let slow = RelayArgs {
        delay: Duration::from_millis(4),
        ..RelayArgs::reading(&input)
    };
    let first = start_relay(&kafka, "graceful", &actor, &output, slow).await;
    assert!(
        TestKafka::eventually(Duration::from_secs(30), || first
            .stats(&actor)
            .unwrap()
            .handled
            >= 40)
        .await
    );
    first.shutdown().await.unwrap();

    let second = start_relay(
        &kafka,
        "graceful",
        &actor,
        &output,
        RelayArgs::reading(&input),
    )
    .await;
    let out = kafka
        .read(&output, total as usize, Duration::from_secs(60))
        .await;
    // Give a duplicate, if any, the time to show up. A second reader that
    // has not caught up within the look (a busy machine) shows nothing
    // either way: the first read stands then.
    let out_after = kafka
        .read(&output, total as usize + 1, Duration::from_secs(2))
        .await;
    let out_after = if out_after.len() >= out.len() {
        out_after
    } else {
        out.clone()
    };
    second.shutdown().await.unwrap();

    let distinct: HashSet<i64> = numbers_in(&out_after).iter().map(|n| n.seq).collect();
    let lost = total as usize - distinct.len();
    let duplicates = out_after.len() - distinct.len();
    println!(
        "sent={total} received={} lost={lost} duplicates={duplicates}",
        out_after.len()
    );
    assert_eq!(out.len(), total as usize);
    assert_eq!((lost, duplicates), (0, 0));
}
