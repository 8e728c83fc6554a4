//! Garbage, an unknown fingerprint and an incompatible schema do not stop an
//! actor: each goes to the actor's dead-letter topic as it came, with
//! headers saying why and where from, and the next good record is handled.

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
async fn undecodable_records_are_dead_lettered_as_they_came() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    let good = encode_numbers((0..2).map(|seq| Number {
        key: "k".into(),
        seq,
    }));
    let mut unknown = SINGLE_OBJECT_MARKER.to_vec();
    unknown.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 2, 0x6b]);
    // Framed for a schema registry (byte 0, schema id 7), on a node that
    // has none to ask.
    let framed = [&[0u8, 0, 0, 0, 7][..], &[2, 0x6b]].concat();
    let broken = [
        b"\x01\x00 definitely not avro".to_vec(),
        unknown,
        incompatible_record(),
        framed,
    ];
    kafka.produce_raw(
        &input,
        &[
            (Some("k"), good[0].1.clone(), vec![]),
            (Some("k"), broken[0].clone(), vec![("origin", "test")]),
            (Some("k"), broken[1].clone(), vec![]),
            (Some("k"), broken[2].clone(), vec![]),
            (Some("k"), broken[3].clone(), vec![]),
            (Some("k"), good[1].1.clone(), vec![]),
        ],
    );

    let node = kafka
        .node("dead-letters")
        .schema("clash.avsc", CLASH)
        .actor::<Relay>(&actor, &output, RelayArgs::reading(&input))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = kafka.read(&output, 2, Duration::from_secs(30)).await;
    let dead = kafka
        .read(&format!("{output}.dlq"), 4, Duration::from_secs(30))
        .await;
    let stats = node.stats(&actor).unwrap();
    node.shutdown().await.unwrap();

    let seqs: Vec<i64> = numbers_in(&out).iter().map(|n| n.seq).collect();
    assert_eq!(seqs, vec![0, 1], "both good records handled, in order");
    assert_eq!(dead.len(), 4, "{stats:?}");
    let reasons = [
        "single-object marker",
        "unknown writer schema",
        "cannot be read as",
        "schema registry id 7, and no schema registry is configured",
    ];
    for (i, letter) in dead.iter().enumerate() {
        assert_eq!(
            letter.value, broken[i],
            "dead letter {i} carries the bytes as they came"
        );
        assert_eq!(letter.key_str(), "k");
        assert_eq!(letter.header("scribe_dlq_topic"), input);
        assert_eq!(letter.header("scribe_dlq_partition"), "0");
        assert_eq!(letter.header("scribe_dlq_offset"), (i + 1).to_string());
        assert_eq!(
            letter.header("scribe_dlq_attempts"),
            "0",
            "never handed to the handler"
        );
        assert_eq!(letter.header("scribe_dlq_actor"), actor);
        assert!(
            letter.header("scribe_dlq_error").contains(reasons[i]),
            "{}",
            letter.header("scribe_dlq_error")
        );
    }
    assert_eq!(
        dead[0].header("origin"),
        "test",
        "the original headers are kept"
    );
    assert_eq!(
        (stats.undecodable, stats.dead_lettered, stats.handled),
        (4, 4, 2),
        "{stats:?}"
    );
    assert_eq!(
        stats.restarts, 0,
        "dead-lettering needs no restart: {stats:?}"
    );
}

#[actix::test]
async fn one_record_in_a_hundred_undecodable_all_dead_lettered_the_rest_handled() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 3).await;
    let sent = 1000;
    let good = encode_numbers((0..sent).map(|seq| Number {
        key: format!("k{}", seq % 7),
        seq,
    }));
    let raw: Vec<_> = good
        .iter()
        .enumerate()
        .map(|(i, (key, bytes))| {
            let value = if i % 100 == 99 {
                format!("garbage {i}").into_bytes()
            } else {
                bytes.clone()
            };
            (Some(key.as_str()), value, vec![])
        })
        .collect();
    kafka.produce_raw(&input, &raw);
    let node = kafka
        .node("one-in-a-hundred")
        .actor::<Relay>(&actor, &output, RelayArgs::reading(&input))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = kafka.read(&output, 990, Duration::from_secs(60)).await;
    let dead = kafka
        .read(&format!("{output}.dlq"), 10, Duration::from_secs(30))
        .await;
    node.shutdown().await.unwrap();

    let mut handled: Vec<i64> = numbers_in(&out).iter().map(|n| n.seq).collect();
    handled.sort_unstable();
    handled.dedup();
    let mut lettered: Vec<String> = dead
        .iter()
        .map(|d| String::from_utf8_lossy(&d.value).into_owned())
        .collect();
    lettered.sort();
    let mut expected: Vec<String> = (0..sent)
        .filter(|i| i % 100 == 99)
        .map(|i| format!("garbage {i}"))
        .collect();
    expected.sort();
    let lost = sent as usize - handled.len() - lettered.len();
    println!(
        "sent={sent} handled={} dead_lettered={} lost={lost} duplicates={}",
        handled.len(),
        lettered.len(),
        out.len() - handled.len()
    );
    assert_eq!(
        lettered, expected,
        "every undecodable record is in the dead-letter topic"
    );
    assert_eq!(handled.len(), 990, "every other record is handled");
    assert_eq!(lost, 0);
}
