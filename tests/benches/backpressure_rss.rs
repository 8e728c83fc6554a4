//! Memory under overload: a relay of ~200-byte records whose handler takes
//! `--delay-us` (default 1000 µs) per record runs in a process of its own
//! (`slow_node`, so the broker's storage is not counted), while this
//! process feeds it 1x and then 10x what it can handle for `--secs`
//! seconds (default 20). Prints the node process's peak RSS for each, the
//! records sent and handled, and the backlog left in Kafka. Nothing is
//! dropped: the backlog waits in the topic, and the consumer stops fetching
//! once 16 MiB wait in its local queue (`--queue-kbytes N` changes that,
//! to compare: librdkafka's own default is 65536).
//!
//! `cargo bench -p scribe-tests --bench backpressure_rss [-- --secs N] [--delay-us N] [--queue-kbytes N]`
//!
//! The last lines are `bench backpressure load=1x ... peak_rss_mb=N` and
//! `bench backpressure load=10x ... peak_rss_mb=N`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use scribe::EmbeddedBroker;
use scribe_tests::load::feed_payloads;
use scribe_tests::unique;

/// Enough that the mock cluster's 5 MiB per partition holds the backlog.
const PARTITIONS: i32 = 16;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let secs: u64 = arg("--secs").and_then(|n| n.parse().ok()).unwrap_or(20);
    let delay_us: u64 = arg("--delay-us")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let capacity = 1_000_000 / delay_us;
    let mut lines = Vec::new();
    for factor in [1u64, 10] {
        let (input, output) = (unique("bp-in"), unique("bp-out"));
        for topic in [&input, &output, &format!("{output}.dlq")] {
            broker.create_topic(topic, PARTITIONS, 1).expect("topic");
        }
        let mut child = spawn_node(broker.bootstrap_servers(), &input, &output, delay_us);
        std::thread::sleep(Duration::from_secs(4)); // the group forms
        let rate = capacity * factor;
        let (sent, peak_kb) = feed_payloads(
            broker.bootstrap_servers(),
            &input,
            rate,
            Duration::from_secs(secs),
            child.id(),
        );
        let handled = end_offsets(broker.bootstrap_servers(), &output);
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let line = format!(
            "bench backpressure load={factor}x input_rate={rate}/s secs={secs} sent={sent} handled={handled} backlog={} peak_rss_mb={:.1}",
            sent.saturating_sub(handled),
            peak_kb as f64 / 1024.0
        );
        println!("{line}");
        lines.push(line);
    }
    println!("handler: {delay_us} µs per record (about {capacity} records/s)");
    for line in lines {
        println!("{line}");
    }
}

fn spawn_node(bootstrap: &str, input: &str, output: &str, delay_us: u64) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slow_node"));
    command.args([
        "--bootstrap",
        bootstrap,
        "--input",
        input,
        "--output",
        output,
        "--actor",
        &format!("{input}-relay"),
        "--delay-us",
        &delay_us.to_string(),
    ]);
    if let Some(kbytes) = arg("--queue-kbytes") {
        command.args(["--queue-kbytes", &kbytes]);
    }
    command
        .stdout(Stdio::null())
        .spawn()
        .expect("slow_node starts")
}

fn end_offsets(bootstrap: &str, topic: &str) -> u64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "backpressure-bench-reader")
        .create()
        .expect("consumer");
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .map_or(0, |(_, high)| high.max(0) as u64)
        })
        .sum()
}
