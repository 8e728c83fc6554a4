//! Records written by clients that are not scribe, which rust-rdkafka
//! cannot read as they are, never stall a partition nor restart an actor:
//! each is dead-lettered with what can be kept, and the records behind it
//! are handled.
//!
//! Needs `kcat` (CI installs it): a header key that is not UTF-8 cannot
//! be written through Rust's rdkafka, whose keys are `&str`, nor Python's
//! confluent-kafka, which writes a `bytes` key as its `repr`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scribe_tests::actors::{Relay, RelayArgs, encode_numbers, numbers_in};
use scribe_tests::records::Number;
use scribe_tests::{RawRecord, TestKafka, unique};

/// Writes `value` to partition 0 of `topic` under key `k` with `kcat`, with
/// a header whose key is not UTF-8, then a readable one. False when there
/// is no `kcat`.
fn produce_poison_with_kcat(bootstrap: &str, topic: &str, value: &[u8]) -> bool {
    let file = std::env::temp_dir().join(format!("{topic}.poison"));
    std::fs::write(&file, value).unwrap();
    let status = Command::new("kcat")
        .args([
            "-P", "-b", bootstrap, "-t", topic, "-p", "0", "-k", "k", "-H",
        ])
        .arg(OsStr::from_bytes(b"\xffnot-utf8=x"))
        .args(["-H", "kept=yes"])
        .arg(&file)
        .status();
    match status {
        Ok(status) => {
            assert!(status.success(), "kcat could not write the record");
            true
        }
        Err(_) => false,
    }
}

/// Counts the panics of this process from now on (a panic caught inside
/// scribe still runs the hook, which prints it).
fn count_panics() -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    count
}

/// Runs a relay from `input` to `output` until `outputs` records are out
/// and one is on its dead-letter topic; returns the outputs' sequence
/// numbers, the dead letters and the relay's stats.
async fn relay(
    kafka: &TestKafka,
    node: &str,
    input: &str,
    output: &str,
    actor: &str,
    outputs: usize,
) -> (Vec<i64>, Vec<RawRecord>, scribe::StatsSnapshot) {
    let node = kafka
        .node(node)
        .actor::<Relay>(actor, output, RelayArgs::reading(input))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = kafka.read(output, outputs, Duration::from_secs(60)).await;
    let dead = kafka
        .read(&format!("{output}.dlq"), 1, Duration::from_secs(30))
        .await;
    let stats = node.stats(actor).unwrap();
    node.shutdown().await.unwrap();
    let seqs = numbers_in(&out).iter().map(|n| n.seq).collect();
    (seqs, dead, stats)
}

#[actix::test]
async fn a_header_key_that_is_not_utf8_dead_letters_the_record_without_a_restart() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    let values: Vec<Vec<u8>> = encode_numbers((0..5).map(|seq| Number {
        key: "k".into(),
        seq,
    }))
    .into_iter()
    .map(|(_, v)| v)
    .collect();
    let raw = |range: std::ops::Range<usize>| -> Vec<_> {
        values[range]
            .iter()
            .map(|v| (Some("k"), v.clone(), vec![]))
            .collect()
    };
    kafka.produce_raw(&input, &raw(0..2));
    if !produce_poison_with_kcat(kafka.bootstrap(), &input, &values[2]) {
        let required = std::env::var("SCRIBE_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
        assert!(!required, "SCRIBE_REQUIRE_INTEROP=1 but there is no kcat");
        eprintln!("skipped: no kcat (apt-get install kcat)");
        return;
    }
    kafka.produce_raw(&input, &raw(3..5));
    let panics = count_panics();
    let (seqs, dead, stats) = relay(&kafka, "poison", &input, &output, &actor, 4).await;
    let panicked = panics.load(Ordering::SeqCst);
    println!(
        "sent=5 handled={} dead_lettered={} restarts={} panics={panicked} outputs={seqs:?}",
        stats.handled,
        dead.len(),
        stats.restarts
    );
    assert_eq!(panicked, 0, "reading the header panicked");
    assert_eq!(seqs, vec![0, 1, 3, 4], "the records around it are handled");
    assert_eq!(dead.len(), 1, "{stats:?}");
    let letter = &dead[0];
    assert_eq!(
        letter.value, values[2],
        "the dead letter is the record as it came"
    );
    assert!(
        letter
            .header("scribe_dlq_error")
            .contains(r"header 0 has a key that is not UTF-8 (`\xffnot-utf8`)"),
        "{:?}",
        letter.headers
    );
    assert_eq!(letter.header("kept"), "yes", "readable headers are kept");
    assert_eq!(letter.header("scribe_dlq_offset"), "2");
    assert_eq!(stats.restarts, 0, "no restart: {stats:?}");
}

/// A record the broker accepted but scribe's producer cannot copy whole
/// (librdkafka's `message.max.bytes` is below the broker's limit) goes to
/// the dead-letter topic as much of it as fits, saying so.
#[actix::test]
async fn a_record_too_large_to_copy_is_dead_lettered_in_part_without_a_restart() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    kafka.create_topic(&input, 1).await;
    let good = encode_numbers((0..2).map(|seq| Number {
        key: "k".into(),
        seq,
    }));
    // Not Avro in either framing (its first byte is neither 0xC3 nor 0),
    // and over librdkafka's default message.max.bytes once the
    // dead-letter headers are added; under the broker's own limit.
    let huge: Vec<u8> = (1..=1_040_000u32).map(|i| (i % 251) as u8).collect();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    for value in [&good[0].1, &huge, &good[1].1] {
        producer
            .send(
                BaseRecord::to(&input)
                    .key("k")
                    .payload(value.as_slice())
                    .partition(0),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        producer.flush(Duration::from_secs(30)).unwrap();
    }
    let (seqs, dead, stats) = relay(&kafka, "too-large", &input, &output, &actor, 2).await;
    println!(
        "sent=3 handled={} dead_lettered={} restarts={} outputs={seqs:?}",
        stats.handled,
        dead.len(),
        stats.restarts
    );
    assert_eq!(seqs, vec![0, 1], "the records around it are handled");
    assert_eq!(dead.len(), 1, "{stats:?}");
    let letter = &dead[0];
    let note = letter.header("scribe_dlq_truncated");
    assert!(
        note.starts_with("value ") && note.ends_with(" of 1040000 bytes"),
        "{note}"
    );
    assert!(
        letter.value.len() > 900_000,
        "as much as fits: {}",
        letter.value.len()
    );
    assert!(huge.starts_with(&letter.value), "the start of the value");
    assert_eq!(letter.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(letter.header("scribe_dlq_offset"), "1");
    assert!(
        letter
            .header("scribe_dlq_error")
            .contains("single-object marker")
    );
    assert_eq!(stats.restarts, 0, "no restart: {stats:?}");
}
