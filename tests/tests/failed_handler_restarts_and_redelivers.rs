//! A handler that panics does not lose its record: the supervisor restarts
//! the actor and the record is delivered again.

use std::time::Duration;

use scribe_tests::actors::{RelayArgs, numbers_in, produce_numbers, start_relay};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

#[actix::test]
async fn a_panicking_handler_is_restarted_and_its_record_redelivered() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    produce_numbers(
        &kafka,
        &input,
        (0..20).map(|seq| Number {
            key: "k".into(),
            seq,
        }),
    );

    let args = RelayArgs {
        panic_once_at: Some(7),
        ..RelayArgs::reading(&input)
    };
    let node = start_relay(&kafka, "panicky", &actor, &output, args).await;
    let mut seqs = Vec::new();
    for _ in 0..30 {
        let out = kafka
            .read(&output, usize::MAX, Duration::from_millis(1000))
            .await;
        seqs = numbers_in(&out).iter().map(|n| n.seq).collect();
        if seqs.last() == Some(&19) {
            break;
        }
    }
    let stats = node.stats(&actor).unwrap();
    node.shutdown().await.unwrap();

    let mut distinct = seqs.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        (0..20).collect::<Vec<_>>(),
        "nothing lost, order kept: {seqs:?} {stats:?}"
    );
    assert_eq!(stats.handler_failures, 1, "{stats:?}");
    assert_eq!(stats.restarts, 1, "{stats:?}");
}
