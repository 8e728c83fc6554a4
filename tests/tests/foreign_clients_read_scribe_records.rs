//! Records on the bus are plain Avro single-object encoding that clients
//! scribe did not write can read: Python's confluent-kafka consumes them and
//! fastavro checks the marker and fingerprint and decodes the datum, and
//! the record's metadata in either envelope: the compact one (itself an
//! Avro record, decoded the same way) and CloudEvents headers.
//!
//! Needs a Python with `fastavro` and `confluent-kafka`: `SCRIBE_PYTHON`
//! names it (default `python3`). Without them the test says so and passes,
//! unless `SCRIBE_REQUIRE_INTEROP=1` (CI sets it), when it fails.

use std::process::Command;
use std::time::Duration;

use scribe::Envelope;
use scribe::prelude::*;
use scribe_schemas::HostMetrics;
use scribe_tests::actors::{RunEvent, Runs};
use scribe_tests::{TestKafka, unique};

/// Publishes three fixed samples when it starts.
struct Samples {
    out: Publisher<HostMetrics>,
}

impl Actor for Samples {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        for i in 0..3 {
            let sample = HostMetrics {
                host: format!("host-{i}"),
                cpu_percent: 12.5 * f64::from(i),
                mem_used_percent: 40.25,
                load1: 0.5,
                sampled_at_ms: 1_700_000_000_000 + i64::from(i),
            };
            self.out.publish(&sample.host, &sample).expect("published");
        }
    }
}

impl TopicActor for Samples {
    type Output = HostMetrics;
    type Args = ();
    fn create(_: (), out: Publisher<HostMetrics>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

fn python() -> String {
    std::env::var("SCRIBE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn interop_available() -> bool {
    Command::new(python())
        .args(["-c", "import fastavro, confluent_kafka"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the Python clients are missing, so the test skips (which it
/// may not when `SCRIBE_REQUIRE_INTEROP=1`).
fn skip() -> bool {
    if interop_available() {
        return false;
    }
    let required = std::env::var("SCRIBE_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "SCRIBE_REQUIRE_INTEROP=1 but `{}` lacks fastavro or confluent-kafka",
        python()
    );
    eprintln!(
        "skipped: `{}` lacks fastavro or confluent-kafka (pip install fastavro confluent-kafka)",
        python()
    );
    true
}

#[actix::test]
async fn python_fastavro_reads_what_scribe_writes() {
    if skip() {
        return;
    }
    let kafka = TestKafka::from_env();
    // One actor in each envelope: the default compact one, and CloudEvents.
    let (compact, events) = (unique("interop"), unique("interop-ce"));
    let events_actor = unique("samples-ce");
    let node = kafka
        .node("interop")
        .actor::<Samples>(unique("samples"), &compact, ())
        .actor::<Samples>(&events_actor, &events, ())
        .envelope(&events_actor, Envelope::CloudEvents)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    for (topic, form) in [(&compact, "compact"), (&events, "cloudevents")] {
        assert_eq!(kafka.read(topic, 3, Duration::from_secs(30)).await.len(), 3);
        let host_metrics = format!(
            "{}/../schemas/avro/host_metrics.avsc",
            env!("CARGO_MANIFEST_DIR")
        );
        let stdout = read_with_fastavro(kafka.bootstrap(), topic, &[host_metrics], 3).await;
        let mut hosts: Vec<&str> = stdout
            .lines()
            .map(|l| {
                assert!(l.contains(&format!(r#""envelope": "{form}""#)), "{l}");
                assert!(
                    l.contains(r#""ce_type": "scribe.metrics.HostMetrics""#),
                    "{l}"
                );
                assert!(l.contains(r#""ce_source": "interop/samples"#), "{l}");
                assert!(l.contains(r#""mem_used_percent": 40.25"#), "{l}");
                let start = l.find(r#""key": ""#).expect("a key") + 8;
                &l[start..start + 6]
            })
            .collect();
        hosts.sort();
        assert_eq!(hosts, ["host-0", "host-1", "host-2"], "{stdout}");
    }
    node.shutdown().await.unwrap();
}

#[actix::test]
async fn python_fastavro_reads_a_topic_of_two_record_types_by_fingerprint() {
    if skip() {
        return;
    }
    let kafka = TestKafka::from_env();
    let topic = unique("interop-events");
    let node = kafka
        .node("interop-events")
        .actor::<Runs>(unique("runs"), &topic, 3)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(
        kafka.read(&topic, 6, Duration::from_secs(30)).await.len(),
        6
    );
    // Each type's schema as an .avsc file, as another team would have it.
    let dir = std::env::temp_dir().join(&topic);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for schema in <RunEvent as scribe::Records>::schemas() {
        let file = dir.join(format!("{}.avsc", scribe::codec::full_name(&schema)));
        std::fs::write(&file, serde_json::to_string(&schema).unwrap()).unwrap();
        files.push(file.display().to_string());
    }
    let stdout = read_with_fastavro(kafka.bootstrap(), &topic, &files, 6).await;
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |ty: &str| {
        lines
            .iter()
            .filter(|l| l["headers"]["ce_type"] == ty)
            .collect::<Vec<_>>()
    };
    let (started, returned) = (of("module.test.Started"), of("module.test.Returned"));
    println!(
        "fastavro read {} records: {} Started, {} Returned",
        lines.len(),
        started.len(),
        returned.len()
    );
    assert_eq!((started.len(), returned.len()), (3, 3), "{stdout}");
    for line in &returned {
        assert!(line["value"]["passed"].is_boolean(), "{line}");
        assert_eq!(line["key"], line["value"]["run"], "{line}");
    }
}

/// What `read_with_fastavro.py` prints for `count` records of `topic`,
/// each read with the one of `schemas` (`.avsc` files) its fingerprint
/// names; fails the test when it refuses one.
async fn read_with_fastavro(
    bootstrap: &str,
    topic: &str,
    schemas: &[String],
    count: usize,
) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = tokio::task::spawn_blocking({
        let bootstrap = bootstrap.to_owned();
        let topic = topic.to_owned();
        let schemas = schemas.to_vec();
        move || {
            let mut command = Command::new(python());
            command
                .arg(format!("{root}/tests/interop/read_with_fastavro.py"))
                .args(["--bootstrap", &bootstrap, "--topic", &topic])
                .args(["--count", &count.to_string()])
                .args([
                    "--envelope-schema",
                    &format!("{root}/runtime/avro/envelope.avsc"),
                ]);
            for schema in &schemas {
                command.args(["--schema", schema]);
            }
            command.output().expect("python runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "fastavro refused a record of {topic}: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
