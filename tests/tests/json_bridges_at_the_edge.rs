//! The JSON bridges: outside producers' JSON events on `acapy-inbound-*`
//! topics come in as typed Avro records the bridge owns (what does not fit
//! is dead-lettered with the field named), and a mirror writes that owned
//! topic back out as JSON, key and metadata kept, for outside readers
//! (Python's confluent-kafka among them, when `SCRIBE_PYTHON` has it).

use std::collections::BTreeMap;
use std::time::Duration;

use scribe::codec::Decoder;
use scribe::{Envelope, SchemaRegistry, headers};
use scribe_actors::{JsonIn, JsonInArgs, JsonOut, JsonOutArgs};
use scribe_schemas::HostMetrics;
use scribe_tests::{RawRecord, TestKafka, unique};

const PER_TOPIC: usize = 25;

/// An outside producer's event: the fields under other names and nested.
fn event(host: &str, i: usize) -> String {
    serde_json::json!({
        "host": host,
        "cpu": i,                   // an integer, read into a double
        "mem_used_percent": 40.5,
        "load": {"one": 1.5},       // nested: `/load/one`
        "sampled_at_ms": 1_000 + i,
        "agent": "acapy",           // no such field: ignored
    })
    .to_string()
}

/// What does not fit, and the words its dead letter's reason must hold.
fn broken() -> Vec<(String, &'static str)> {
    vec![
        ("<event/>".into(), "the value is not JSON"),
        ("[1, 2]".into(), "the value is JSON but not an object"),
        (
            r#"{"cpu": 1, "mem_used_percent": 1, "load": {"one": 1}, "sampled_at_ms": 1}"#.into(),
            "field `host` of `scribe.metrics.HostMetrics`: no `host` in the value",
        ),
        (
            r#"{"host": "x", "cpu": "hot", "mem_used_percent": 1, "load": {"one": 1}, "sampled_at_ms": 1}"#
                .into(),
            "field `cpu_percent` of `scribe.metrics.HostMetrics` (from `cpu`): \"hot\" does not fit",
        ),
    ]
}

#[actix::test]
async fn json_events_come_in_typed_and_go_out_as_json() {
    let kafka = TestKafka::from_env();
    let id = unique("edge");
    let inbound: Vec<String> = ["a", "b"]
        .iter()
        .map(|s| format!("{id}-acapy-inbound-{s}"))
        .collect();
    let (bridged, mirrored) = (format!("{id}.metrics"), format!("{id}.metrics.json"));
    let mut sent = 0;
    for topic in &inbound {
        kafka.create_topic(topic, 2).await;
        let hosts: Vec<String> = (0..PER_TOPIC).map(|i| format!("{topic}/h{i}")).collect();
        let events: Vec<String> = hosts.iter().enumerate().map(|(i, h)| event(h, i)).collect();
        let mut records: Vec<_> = hosts
            .iter()
            .zip(&events)
            .map(|(host, event)| (Some(host.as_str()), event.as_bytes().to_vec(), vec![]))
            .collect();
        records.extend(
            broken()
                .into_iter()
                .map(|(value, _)| (Some("broken"), value.into_bytes(), vec![])),
        );
        sent += records.len();
        kafka.produce_raw(topic, &records);
    }

    let (bridge, mirror) = (unique("acapy-in"), unique("mirror"));
    let node = kafka
        .node(&unique("edge"))
        .actor::<JsonIn<HostMetrics>>(
            &bridge,
            bridged.as_str(),
            JsonInArgs {
                topic: None,
                pattern: Some(format!("{id}-acapy-inbound-.*")),
                fields: BTreeMap::from([
                    ("cpu_percent".into(), "cpu".into()),
                    ("load1".into(), "/load/one".into()),
                ]),
            },
        )
        .actor::<JsonOut>(
            &mirror,
            mirrored.as_str(),
            JsonOutArgs {
                topic: bridged.clone(),
            },
        )
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let good = 2 * PER_TOPIC;
    let bad = 2 * broken().len();
    let timeout = Duration::from_secs(60);
    let typed = kafka.read(&bridged, good, timeout).await;
    let dead = kafka.read(&format!("{bridged}.dlq"), bad, timeout).await;
    let json = kafka.read(&mirrored, good, timeout).await;
    let stats = node.stats(&bridge).unwrap();
    node.shutdown().await.expect("clean shutdown");

    let decoder = Decoder::<HostMetrics>::new(SchemaRegistry::new()).unwrap();
    let metrics: BTreeMap<String, (HostMetrics, &RawRecord)> = typed
        .iter()
        .map(|r| {
            let m = decoder.decode(&r.value).expect("typed Avro");
            (m.host.clone(), (m, r))
        })
        .collect();
    let mirrored_json: BTreeMap<String, (serde_json::Value, &RawRecord)> = json
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.value).expect("JSON text");
            (v["host"].as_str().unwrap().to_owned(), (v, r))
        })
        .collect();
    let lost = good - metrics.len().min(good);
    let duplicates = typed.len() - metrics.len();
    println!(
        "sent {sent} ({good} events, {bad} broken); bridged {} (lost {lost}, duplicates \
         {duplicates}); dead-lettered {}; mirrored {} ({} distinct); bridge retried {}",
        typed.len(),
        dead.len(),
        json.len(),
        mirrored_json.len(),
        stats.retried
    );
    assert_eq!((typed.len(), lost, duplicates), (good, 0, 0));
    assert_eq!(dead.len(), bad, "every broken event dead-lettered");
    assert_eq!((json.len(), mirrored_json.len()), (good, good));
    assert_eq!(stats.retried, 0, "a value that does not fit is not retried");

    for (host, (m, record)) in &metrics {
        let i: usize = host.rsplit_once("/h").unwrap().1.parse().unwrap();
        assert_eq!(record.key_str(), host, "the key is kept");
        assert_eq!(
            m.cpu_percent, i as f64,
            "`cpu` renamed, the integer widened"
        );
        assert_eq!(m.load1, 1.5, "from the pointer `/load/one`");
        assert_eq!(
            (m.mem_used_percent, m.sampled_at_ms),
            (40.5, 1_000 + i as i64)
        );
        assert_eq!(
            record.header(headers::CE_TYPE),
            "scribe.metrics.HostMetrics"
        );

        // The mirror: the same record as JSON, same key, same event id and
        // type, as CloudEvents headers an outside reader can read (the
        // kind's own envelope; the node set none).
        let (value, out) = &mirrored_json[host];
        assert_eq!(out.key_str(), host);
        assert_eq!(out.envelope, Envelope::CloudEvents);
        assert_eq!(out.header(headers::CE_ID), record.header(headers::CE_ID));
        assert_eq!(out.header(headers::CE_TYPE), "scribe.metrics.HostMetrics");
        assert_eq!(
            value,
            &serde_json::json!({
                "host": m.host, "cpu_percent": m.cpu_percent,
                "mem_used_percent": m.mem_used_percent, "load1": m.load1,
                "sampled_at_ms": m.sampled_at_ms,
            })
        );
    }
    // `scribe tail` prints the mirror's JSON as it is, typed by `ce_type`.
    let config = std::env::temp_dir().join(format!("{id}.toml"));
    std::fs::write(
        &config,
        format!(
            "[node]\nname = \"tail\"\n[kafka]\nbootstrap_servers = \"{}\"\n",
            kafka.bootstrap()
        ),
    )
    .unwrap();
    let tailed = std::process::Command::new(env!("CARGO_BIN_EXE_scribe-test-node"))
        .args([
            "tail",
            config.to_str().unwrap(),
            &mirrored,
            "--from-beginning",
            "-n",
        ])
        .arg(good.to_string())
        .output()
        .expect("scribe tail runs");
    let _ = std::fs::remove_file(&config);
    assert!(
        tailed.status.success(),
        "{}",
        String::from_utf8_lossy(&tailed.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&tailed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), good);
    for line in &lines {
        assert_eq!(line["type"], "scribe.metrics.HostMetrics", "{line}");
        let host = line["value"]["host"].as_str().unwrap();
        assert_eq!(line["value"], mirrored_json[host].0);
    }

    // Python's confluent-kafka, a client scribe did not write, reads the
    // mirror: JSON values, CloudEvents headers, the same ids.
    if let Some(python) = python_with_confluent_kafka() {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/interop/read_json_mirror.py"
        );
        let read = std::process::Command::new(python)
            .arg(script)
            .args(["--bootstrap", kafka.bootstrap(), "--topic", &mirrored])
            .args(["--count", &good.to_string()])
            .output()
            .expect("python runs");
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&read.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), good);
        for line in &lines {
            let host = line["key"].as_str().unwrap();
            let (value, record) = &mirrored_json[host];
            assert_eq!(&line["value"], value);
            assert_eq!(line["ce_id"], record.header(headers::CE_ID));
            assert_eq!(line["ce_type"], "scribe.metrics.HostMetrics");
        }
        println!(
            "python confluent-kafka read {} mirrored records",
            lines.len()
        );
    }

    // Each broken event, as it came, with a reason naming what is wrong.
    let reasons: Vec<&str> = dead.iter().map(|d| d.header(headers::DLQ_ERROR)).collect();
    for (value, expected) in broken() {
        let letters: Vec<&RawRecord> = dead
            .iter()
            .filter(|d| d.value == value.as_bytes())
            .collect();
        assert_eq!(letters.len(), 2, "`{value}` from both topics: {reasons:?}");
        for letter in letters {
            assert!(
                letter.header(headers::DLQ_ERROR).contains(expected),
                "`{value}`: expected `{expected}` in `{}`",
                letter.header(headers::DLQ_ERROR)
            );
            assert_eq!(letter.header(headers::DLQ_ATTEMPTS), "0");
            assert!(inbound.contains(&letter.header(headers::DLQ_TOPIC).to_owned()));
        }
    }
}

/// A Python with confluent-kafka (`SCRIBE_PYTHON`, default `python3`), or
/// `None` to skip that part, which `SCRIBE_REQUIRE_INTEROP=1` (CI) forbids.
fn python_with_confluent_kafka() -> Option<String> {
    let python = std::env::var("SCRIBE_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = std::process::Command::new(&python)
        .args(["-c", "import confluent_kafka"])
        .output()
        .is_ok_and(|o| o.status.success());
    let required = std::env::var("SCRIBE_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        found || !required,
        "SCRIBE_REQUIRE_INTEROP=1 but `{python}` lacks confluent-kafka"
    );
    if !found {
        eprintln!("skipped the Python reader: `{python}` lacks confluent-kafka");
    }
    found.then_some(python)
}
