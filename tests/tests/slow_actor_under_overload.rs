//! An actor ten times slower than its input for a minute, in a node process
//! of its own: its memory stays bounded (the consumer stops fetching once
//! its local queue is full; the backlog waits in Kafka), and nothing is
//! lost: once it stops, a fast instance in the same group handles the rest.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::Decoder;
use scribe_tests::load::feed_payloads;
use scribe_tests::records::Payload;
use scribe_tests::{TestKafka, terminate, unique};

/// The slow handler's time per record: about 200 records a second.
const DELAY_US: u64 = 5000;

/// The sequence number of the record that shows the node is consuming,
/// outside the count.
const WARM_UP: i64 = -1;

fn node(kafka: &TestKafka, input: &str, output: &str, delay_us: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_slow_node"))
        .args([
            "--bootstrap",
            kafka.bootstrap(),
            "--input",
            input,
            "--output",
            output,
        ])
        .args([
            "--actor",
            &format!("{input}-relay"),
            "--delay-us",
            &delay_us.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("slow_node starts")
}

#[actix::test]
async fn an_actor_ten_times_slower_than_its_input_keeps_memory_bounded_and_loses_nothing() {
    // The node runs in a process of its own, so its memory is its own.
    let kafka = TestKafka::from_env();
    let (input, output) = (unique("overload-in"), unique("overload-out"));
    for topic in [&input, &output, &format!("{output}.dlq")] {
        // 16 partitions: the mock cluster keeps at most 5 MiB of each.
        kafka.create_topic(topic, 16).await;
    }
    let slow = node(&kafka, &input, &output, DELAY_US);
    // The node has joined its group and handles records once a first one,
    // outside the count (sequence number -1), comes out the other side.
    let mut warm_up = Vec::new();
    scribe::codec::Encoder::<Payload>::new()
        .unwrap()
        .encode(
            &Payload {
                seq: WARM_UP,
                hops: 0,
                body: String::new(),
            },
            &mut warm_up,
        )
        .unwrap();
    kafka.produce_raw(&input, &[(Some("warm-up"), warm_up, vec![])]);
    let first = kafka.read(&output, 1, Duration::from_secs(120)).await;
    assert_eq!(first.len(), 1, "the slow node handles records");
    let rate = 10 * 1_000_000 / DELAY_US;
    let bootstrap = kafka.bootstrap().to_owned();
    let (input_for_feed, pid) = (input.clone(), slow.id());
    let (sent, peak_kb) = tokio::task::spawn_blocking(move || {
        feed_payloads(
            &bootstrap,
            &input_for_feed,
            rate,
            Duration::from_secs(60),
            pid,
        )
    })
    .await
    .expect("feeder");
    // The warm-up record is one of them.
    let during = kafka
        .read(&output, usize::MAX, Duration::from_secs(2))
        .await
        .len()
        - 1;
    assert!(terminate(slow), "the slow node drains and exits 0");

    let fast = node(&kafka, &input, &output, 0);
    let decoder = Decoder::<Payload>::new(SchemaRegistry::new()).unwrap();
    let out: Vec<i64> = kafka
        .read(&output, sent as usize + 1, Duration::from_secs(180))
        .await
        .iter()
        .map(|r| decoder.decode(&r.value).unwrap().seq)
        .filter(|seq| *seq != WARM_UP)
        .collect();
    assert!(terminate(fast), "the fast node exits 0");
    let seqs: HashSet<i64> = out.iter().copied().collect();
    let lost = sent as usize - seqs.len();
    let duplicates = out.len() - seqs.len();
    let peak_mb = peak_kb as f64 / 1024.0;
    println!(
        "input {rate}/s for 60 s against ~{}/s: sent={sent} handled_while_slow={during} received={} lost={lost} duplicates={duplicates} peak_rss_mb={peak_mb:.1}",
        1_000_000 / DELAY_US,
        out.len()
    );
    assert!(
        during < sent as usize / 5,
        "the actor really was the bottleneck: {during}"
    );
    assert_eq!(lost, 0);
    assert!(
        peak_mb < 64.0,
        "the slow node's memory stayed bounded: {peak_mb:.1} MiB"
    );
}
