//! `scribe run` drains on SIGTERM: it exits 0, and a restart in the same
//! group handles every record exactly once (none lost, none repeated).

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::{Decoder, Encoder};
use scribe_schemas::{JournalEntry, MetricSummary};
use scribe_tests::{TestKafka, terminate, unique};

/// Enough that the first run is still going when SIGTERM comes.
const RECORDS: usize = 50_000;

fn start(config: &std::path::Path, bootstrap: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(["run", config.to_str().unwrap()])
        .env("SCRIBE__KAFKA__BOOTSTRAP_SERVERS", bootstrap)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("scribe starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_and_a_restart_handles_each_record_once() {
    let kafka = TestKafka::from_env();
    let id = unique("term");
    let (input, output) = (format!("{id}.summaries"), format!("{id}.journal"));
    // Topics exist beforehand, so the node needs no topic creation.
    kafka.create_topic(&input, 6).await;
    kafka.create_topic(&output, 6).await;
    // The mock cluster has no CreateTopics for the node to make its
    // dead-letter topic with.
    kafka.create_topic(&format!("{output}.dlq"), 1).await;
    let encoder = Encoder::<MetricSummary>::new().unwrap();
    let encoded: Vec<(String, Vec<u8>)> = (0..RECORDS)
        .map(|i| {
            let summary = MetricSummary {
                host: format!("h{i}"),
                metric: "cpu_percent".into(),
                window_start_ms: 0,
                window_end_ms: 1,
                count: 1,
                min: 1.0,
                max: 1.0,
                mean: 1.0,
                p95: 1.0,
            };
            let mut bytes = Vec::new();
            encoder.encode(&summary, &mut bytes).unwrap();
            (summary.host, bytes)
        })
        .collect();
    let raw: Vec<_> = encoded
        .iter()
        .map(|(k, v)| (Some(k.as_str()), v.clone(), vec![]))
        .collect();
    kafka.produce_raw(&input, &raw);

    let config = std::env::temp_dir().join(format!("{id}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[node]
name = "{id}"
commit_interval = "100ms"

[kafka.consumer]
"session.timeout.ms" = "3000"
"heartbeat.interval.ms" = "300"

[[actors]]
name = "{id}-journal"
kind = "journal"
output = "{output}"
params = {{ summaries = "{input}" }}
"#
        ),
    )
    .unwrap();

    // First run: SIGTERM as soon as output appears.
    let first = start(&config, kafka.bootstrap());
    for _ in 0..300 {
        if !kafka
            .read(&output, 1, Duration::from_millis(100))
            .await
            .is_empty()
        {
            break;
        }
    }
    assert!(terminate(first), "the first run exits 0 on SIGTERM");
    let after_first = kafka
        .read(&output, RECORDS, Duration::from_secs(3))
        .await
        .len();

    // Second run: the rest, then SIGTERM again.
    let second = start(&config, kafka.bootstrap());
    kafka.read(&output, RECORDS, Duration::from_secs(120)).await;
    assert!(terminate(second), "the second run exits 0 on SIGTERM");
    let out = kafka
        .read(&output, RECORDS + 1, Duration::from_secs(5))
        .await;

    let decoder = Decoder::<JournalEntry>::new(SchemaRegistry::new()).unwrap();
    let keys: HashSet<String> = out
        .iter()
        .map(|r| decoder.decode(&r.value).unwrap().key)
        .collect();
    let (lost, duplicates) = (RECORDS - keys.len(), out.len() - keys.len());
    println!(
        "sent={RECORDS} first_run={after_first} received={} lost={lost} duplicates={duplicates}",
        out.len()
    );
    assert_eq!((lost, duplicates), (0, 0));
}
