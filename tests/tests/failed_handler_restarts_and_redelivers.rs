//! A handler that panics does not lose its record: the supervisor restarts
//! the actor and the record is delivered again.

use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::Decoder;
use scribe_tests::actors::{Relay, RelayArgs, encode_numbers};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

#[actix::test]
async fn a_panicking_handler_is_restarted_and_its_record_redelivered() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    let raw: Vec<_> = encode_numbers((0..20).map(|seq| Number {
        key: "k".into(),
        seq,
    }))
    .into_iter()
    .map(|(_, bytes)| (Some("k"), bytes, vec![]))
    .collect();
    kafka.produce_raw(&input, &raw);

    let args = RelayArgs {
        panic_once_at: Some(7),
        ..RelayArgs::reading(&input)
    };
    let node = kafka
        .node("panicky")
        .actor::<Relay>(&actor, &output, args)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let decoder = Decoder::<Number>::new(SchemaRegistry::new()).unwrap();
    let mut seqs = Vec::new();
    for _ in 0..30 {
        let out = kafka
            .read(&output, usize::MAX, Duration::from_millis(1000))
            .await;
        seqs = out
            .iter()
            .map(|r| decoder.decode(&r.value).unwrap().seq)
            .collect();
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
