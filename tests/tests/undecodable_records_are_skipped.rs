//! Garbage, an unknown fingerprint and an incompatible schema do not stop an
//! actor: each is counted and skipped, and the next good record is handled.

use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use scribe::codec::{Fingerprint, SINGLE_OBJECT_MARKER};
use scribe_tests::actors::{Relay, RelayArgs, encode_numbers, numbers_in};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

/// Same full name as `scribe.test.Number`, but `key` is a long.
const CLASH: &str = r#"{"type": "record", "name": "Number", "namespace": "scribe.test",
  "fields": [{"name": "key", "type": "long"}]}"#;

fn incompatible_record() -> Vec<u8> {
    let schema = Schema::parse_str(CLASH).unwrap();
    let mut bytes = SINGLE_OBJECT_MARKER.to_vec();
    bytes.extend_from_slice(&Fingerprint::of(&schema).0);
    let value = Value::Record(vec![("key".into(), Value::Long(7))]);
    #[allow(deprecated)]
    bytes.extend(apache_avro::to_avro_datum(&schema, value).unwrap());
    bytes
}

#[actix::test]
async fn undecodable_records_are_counted_and_skipped() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    let good = encode_numbers((0..2).map(|seq| Number {
        key: "k".into(),
        seq,
    }));
    let mut unknown = SINGLE_OBJECT_MARKER.to_vec();
    unknown.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 2, 0x6b]);
    kafka.produce_raw(
        &input,
        &[
            (Some("k"), good[0].1.clone(), vec![]),
            (Some("k"), b"\x00\x01 definitely not avro".to_vec(), vec![]),
            (Some("k"), unknown, vec![]),
            (Some("k"), incompatible_record(), vec![]),
            (Some("k"), good[1].1.clone(), vec![]),
        ],
    );

    let node = kafka
        .node("skips")
        .schema("clash.avsc", CLASH)
        .actor::<Relay>(&actor, &output, RelayArgs::reading(&input))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = kafka.read(&output, 2, Duration::from_secs(30)).await;
    assert!(
        TestKafka::eventually(Duration::from_secs(10), || node
            .stats(&actor)
            .unwrap()
            .undecodable
            == 3)
        .await
    );
    let stats = node.stats(&actor).unwrap();
    node.shutdown().await.unwrap();

    let seqs: Vec<i64> = numbers_in(&out).iter().map(|n| n.seq).collect();
    assert_eq!(seqs, vec![0, 1], "both good records handled, in order");
    assert_eq!(stats.undecodable, 3, "{stats:?}");
    assert_eq!(stats.handled, 2, "{stats:?}");
    assert_eq!(stats.restarts, 0, "skipping needs no restart: {stats:?}");
}
