//! `scribe produce` encodes JSON lines with the topic owner's schema and
//! reports the lines that do not fit; `scribe tail` decodes them back to
//! JSON, and gives up when fewer records come than asked for; `scribe
//! topics` lists owners, types, the cluster's partition counts and end
//! offsets.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use scribe_tests::{TestKafka, unique};

fn scribe(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scribe runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A node file whose actor `{id}-alarm` (a threshold alarm) owns `topic`.
fn alarm_node(kafka: &TestKafka, id: &str, topic: &str) -> std::path::PathBuf {
    let config = std::env::temp_dir().join(format!("{id}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[node]
name = "{id}"
[kafka]
bootstrap_servers = "{bootstrap}"
[[actors]]
name = "{id}-alarm"
kind = "threshold-alarm"
output = "{topic}"
params = {{ input = "{id}.summaries", metric = "cpu_percent", high = 80.0, low = 60.0 }}
"#,
            bootstrap = kafka.bootstrap()
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn produce_then_tail_round_trips_json_through_avro() {
    let kafka = TestKafka::from_env();
    let id = unique("cli");
    let topic = format!("{id}.alarms");
    kafka.create_topic(&topic, 1).await;
    let config = alarm_node(&kafka, &id, &topic);
    let config = config.to_str().unwrap();

    // The topic has an owner: writing there unasked is refused.
    let second_writer = scribe(&["produce", config, &topic], "");
    let refusal = String::from_utf8_lossy(&second_writer.stderr);
    assert_eq!(second_writer.status.code(), Some(2), "{refusal}");
    assert!(
        refusal.contains(&format!("owned by actor `{id}-alarm`")) && refusal.contains("--as-owner"),
        "{refusal}"
    );

    let lines = [
        r#"{"key": "h1", "value": {"host": "h1", "metric": "cpu_percent", "state": "RAISED", "value": 90.5, "threshold": 80, "at_ms": 1}}"#,
        r#"{"key": "h2", "value": {"host": "h2", "metric": "cpu_percent", "state": "MAYBE", "value": 1.0, "threshold": 80, "at_ms": 2}}"#,
        r#"this is not json"#,
        r#"{"key": "h1", "value": {"host": "h1", "metric": "cpu_percent", "state": "CLEARED", "value": 55.0, "threshold": 60.0, "at_ms": 3}}"#,
    ];
    let produced = scribe(
        &["produce", config, &topic, "--as-owner"],
        &(lines.join("\n") + "\n"),
    );
    let stderr = String::from_utf8_lossy(&produced.stderr);
    assert_eq!(
        produced.status.code(),
        Some(1),
        "two lines are rejected: {stderr}"
    );
    assert!(
        stderr.contains("line 2: does not fit `scribe.control.Alarm`"),
        "{stderr}"
    );
    assert!(stderr.contains("line 3: not JSON"), "{stderr}");
    assert!(
        !stderr.contains("line 1:") && !stderr.contains("line 4:"),
        "{stderr}"
    );

    let tailed = scribe(&["tail", config, &topic, "--from-beginning", "-n", "2"], "");
    assert!(
        tailed.status.success(),
        "{}",
        String::from_utf8_lossy(&tailed.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&tailed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("tail prints JSON lines"))
        .collect();
    assert_eq!(records.len(), 2);
    let (first, second) = (&records[0], &records[1]);
    assert_eq!(first["key"], "h1");
    assert_eq!(first["type"], "scribe.control.Alarm");
    assert_eq!(first["headers"]["ce_type"], "scribe.control.Alarm");
    assert_eq!(
        first["headers"]["ce_source"],
        format!("{id}/scribe-produce")
    );
    assert_eq!(first["value"]["state"], "RAISED");
    assert_eq!(first["value"]["value"].as_f64(), Some(90.5));
    assert_eq!(
        first["value"]["threshold"].as_f64(),
        Some(80.0),
        "an integer widened to a double"
    );
    assert_eq!(second["value"]["state"], "CLEARED");
    assert_eq!(second["value"]["at_ms"], 3);

    // More than there are: it gives up once none came for the timeout.
    let short = scribe(
        &[
            "tail",
            config,
            &topic,
            "--from-beginning",
            "-n",
            "5",
            "--timeout",
            "2s",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert_eq!(short.status.code(), Some(1), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&short.stdout).lines().count(), 2);
    assert!(
        stderr.contains(&format!(
            "only 2 of 5 records from `{topic}`: none came for 2s"
        )),
        "{stderr}"
    );

    let topics = scribe(&["topics", config], "");
    let table = String::from_utf8_lossy(&topics.stdout);
    assert!(
        topics.status.success(),
        "{}",
        String::from_utf8_lossy(&topics.stderr)
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&topic))
        .expect("the owned topic is listed");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..4],
        [
            topic.as_str(),
            &format!("{id}-alarm"),
            "scribe.control.Alarm",
            "1"
        ],
        "the cluster's partition count, not the config's: {table}"
    );
    let notes = String::from_utf8_lossy(&topics.stderr);
    assert!(
        notes.contains(&format!(
            "topic `{topic}` has 1 partitions on the cluster; the node's config says 3"
        )),
        "{notes}"
    );
    assert_eq!(cells[4], "2", "two records were sent: {table}");
    let external = table
        .lines()
        .find(|l| l.starts_with(&format!("{id}.summaries")))
        .expect("{table}");
    let cells: Vec<&str> = external.split_whitespace().collect();
    assert_eq!(
        cells[cells.len() - 2..],
        ["-", "-"],
        "not on the cluster: {table}"
    );
    assert!(external.contains("(external)"), "{table}");
}

/// A record another client wrote with a header key that is not UTF-8:
/// `scribe tail` prints it (its readable headers too) and says which
/// header it left out, without a panic. Needs `kcat` (CI installs it).
#[tokio::test]
async fn tail_prints_a_record_whose_header_key_is_not_utf8_and_names_the_header() {
    use std::os::unix::ffi::OsStrExt;
    let kafka = TestKafka::from_env();
    let id = unique("cli-poison");
    let topic = format!("{id}.alarms");
    kafka.create_topic(&topic, 1).await;
    let config = alarm_node(&kafka, &id, &topic);
    let config = config.to_str().unwrap();
    let value = std::env::temp_dir().join(format!("{id}.value"));
    std::fs::write(&value, br#"{"plain": "json"}"#).unwrap();
    let written = Command::new("kcat")
        .args([
            "-P",
            "-b",
            kafka.bootstrap(),
            "-t",
            &topic,
            "-p",
            "0",
            "-k",
            "h1",
            "-H",
        ])
        .arg(std::ffi::OsStr::from_bytes(b"\xffnot-utf8=x"))
        .args(["-H", "kept=yes"])
        .arg(&value)
        .status();
    match written {
        Ok(status) => assert!(status.success(), "kcat could not write the record"),
        Err(_) => {
            let required = std::env::var("SCRIBE_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
            assert!(!required, "SCRIBE_REQUIRE_INTEROP=1 but there is no kcat");
            eprintln!("skipped: no kcat (apt-get install kcat)");
            return;
        }
    }
    let tailed = scribe(&["tail", config, &topic, "--from-beginning", "-n", "1"], "");
    let stderr = String::from_utf8_lossy(&tailed.stderr);
    let stdout = String::from_utf8_lossy(&tailed.stdout);
    println!("stdout: {stdout}\nstderr: {stderr}");
    assert!(tailed.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(r"header 0 (`\xffnot-utf8`) left out"),
        "{stderr}"
    );
    let record: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("one record")).unwrap();
    assert_eq!(record["key"], "h1", "{record}");
    assert_eq!(record["headers"]["kept"], "yes", "{record}");
}
