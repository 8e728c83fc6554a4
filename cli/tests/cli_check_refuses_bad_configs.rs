//! `scribe check` validates configuration files before anything touches
//! Kafka: each mistake gives a one-line error naming the file (and the actor
//! and field where there is one) and a non-zero exit.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The bootstrap address of every file here: a listener nobody should
/// reach. A check, or a refused run, that tried to connect would leave its
/// connection in the listener's backlog ([`assert_untouched`]).
fn nowhere() -> &'static str {
    &watched().1
}

fn watched() -> &'static (TcpListener, String) {
    static WATCHED: OnceLock<(TcpListener, String)> = OnceLock::new();
    WATCHED.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("its address").to_string();
        (listener, address)
    })
}

/// Asserts that nothing connected to [`nowhere`] so far.
fn assert_untouched(name: &str) {
    match watched().0.accept() {
        Ok((_, peer)) => {
            panic!("{name}: something connected to the bootstrap address, from {peer}")
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => panic!("{name}: cannot look at the bootstrap address: {e}"),
    }
}

fn scribe(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scribe"));
    command.args(args).env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("scribe runs")
}

/// Asserts that `scribe` succeeded (showing its errors if not) and returns
/// what it printed.
fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(name: &str, text: &str) -> PathBuf {
    write_bytes(name, text.as_bytes())
}

fn write_bytes(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scribe-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn node(actors: &str) -> String {
    let nowhere = nowhere();
    format!("[node]\nname = \"n\"\n[kafka]\nbootstrap_servers = \"{nowhere}\"\n{actors}")
}

const SAMPLER: &str = r#"
[[actors]]
name = "sampler"
kind = "host-sampler"
output = "metrics.host"
"#;

const AGGREGATOR: &str = r#"
[[actors]]
name = "agg"
kind = "windowed-aggregator"
output = "metrics.summary"
params = { input = "metrics.host" }
"#;

/// Runs `scribe check` on a file holding `text` and returns its error line.
fn refused(name: &str, text: &str) -> String {
    let path = write(name, text);
    let out = scribe(&["check", path.to_str().unwrap()], &[]);
    assert_untouched(name);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(out.stdout.is_empty(), "{name} printed a summary");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(lines.len(), 1, "{name}: one error line expected: {stderr}");
    assert!(
        lines[0].contains(path.to_str().unwrap()),
        "{name}: the error names the file: {}",
        lines[0]
    );
    lines[0].to_owned()
}

fn assert_refused(name: &str, text: &str, expected: &[&str]) {
    let line = refused(name, text);
    for part in expected {
        assert!(line.contains(part), "{name}: expected `{part}` in: {line}");
    }
}

#[test]
fn an_unreadable_file_is_refused() {
    let out = scribe(&["check", "/nonexistent/node.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/node.toml: cannot read the file"),
        "{stderr}"
    );
}

/// What `scribe check` says of the file at `path`: its whole standard
/// error, which must be one line naming the file, with no control
/// character.
fn refused_in_one_line(path: &std::path::Path) -> String {
    let out = scribe(&["check", path.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{} bytes: {stderr}", stderr.len());
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
    assert!(
        !stderr.trim_end().chars().any(char::is_control),
        "no control character: {stderr:?}"
    );
    stderr
}

#[test]
fn a_binary_file_is_refused_in_one_short_line() {
    // What a mistyped path to a compiled program gives: bytes of every
    // value, the first that is not UTF-8 at column 28.
    let mut bytes = b"\x7fELF\x02\x01\x01\x00".to_vec();
    bytes.extend((0..2400u32).map(|i| (i * 7 % 256) as u8));
    let path = write_bytes("binary.toml", &bytes);
    let stderr = refused_in_one_line(&path);
    assert!(stderr.len() < 400, "short: {} bytes", stderr.len());
    assert!(
        stderr.contains("line 1, column 28: not valid UTF-8 (byte 0x85)"),
        "{stderr}"
    );
}

#[test]
fn a_value_that_is_not_utf8_is_refused_naming_its_line() {
    let mut bytes = node("").into_bytes();
    let at = bytes.windows(3).position(|w| w == b"\"n\"").unwrap() + 1;
    bytes.splice(at..at + 1, *b"n\xff\xfe");
    let path = write_bytes("latin.toml", &bytes);
    let stderr = refused_in_one_line(&path);
    assert!(
        stderr.contains("line 2, column 10: not valid UTF-8 (byte 0xff)"),
        "{stderr}"
    );
}

#[test]
fn a_text_file_with_a_control_character_is_refused_naming_its_place() {
    let path = write("nul.toml", "[node]\nname = \"n\0\"\n");
    let stderr = refused_in_one_line(&path);
    assert!(
        stderr.contains("line 2, column 10: control character 0x00"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_file_is_refused_in_one_line() {
    let path = write("malformed-lines.toml", "[node\nname = ");
    let stderr = refused_in_one_line(&path);
    assert!(
        stderr.contains("malformed: TOML parse error at line 1, column 6: unclosed table"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_file_is_refused() {
    assert_refused("malformed.toml", "[node\nname = ", &["malformed"]);
}

#[test]
fn an_unknown_top_level_key_is_refused() {
    assert_refused(
        "extra-key.toml",
        &format!("{}\n[nodes]\nx = 1\n", node("")),
        &["unknown field `nodes`"],
    );
}

#[test]
fn an_unknown_kind_is_refused_listing_the_known_ones() {
    let actor = "[[actors]]\nname = \"x\"\nkind = \"teleporter\"\noutput = \"t\"\n";
    assert_refused(
        "kind.toml",
        &node(actor),
        &["actor `x`", "unknown kind `teleporter`", "host-sampler"],
    );
}

#[test]
fn a_duplicate_actor_name_is_refused() {
    let twice = format!("{SAMPLER}{}", SAMPLER.replace("metrics.host", "other"));
    assert_refused(
        "dup.toml",
        &node(&twice),
        &["actor name `sampler` is used twice"],
    );
}

#[test]
fn two_owners_of_one_topic_are_refused() {
    let second = SAMPLER.replace("\"sampler\"", "\"sampler-2\"");
    assert_refused(
        "owners.toml",
        &node(&format!("{SAMPLER}{second}")),
        &[
            "topic `metrics.host` is owned by actor `sampler` and claimed again by actor `sampler-2`",
        ],
    );
}

#[test]
fn a_missing_parameter_is_refused() {
    let actor = AGGREGATOR.replace("params = { input = \"metrics.host\" }", "");
    assert_refused(
        "missing.toml",
        &node(&actor),
        &["actor `agg`", "params", "missing field `input`"],
    );
}

#[test]
fn an_extra_parameter_is_refused() {
    let actor = AGGREGATOR.replace(
        "input = \"metrics.host\"",
        "input = \"metrics.host\", colour = \"red\"",
    );
    assert_refused(
        "extra.toml",
        &node(&actor),
        &["actor `agg`", "unknown field `colour`"],
    );
}

#[test]
fn a_mistyped_parameter_is_refused_naming_the_field() {
    let actor = r#"
[[actors]]
name = "alarm"
kind = "threshold-alarm"
output = "alarms"
params = { input = "s", metric = "cpu_percent", high = "very", low = 1.0 }
"#;
    assert_refused(
        "mistyped.toml",
        &node(actor),
        &["actor `alarm`", "params.high", "invalid type"],
    );
}

#[test]
fn a_malformed_duration_is_refused_naming_the_field() {
    let actor = SAMPLER.replace(
        "output = \"metrics.host\"",
        "output = \"metrics.host\"\nparams = { interval = \"soon\" }",
    );
    assert_refused(
        "duration.toml",
        &node(&actor),
        &["actor `sampler`", "params.interval"],
    );
}

#[test]
fn an_unknown_librdkafka_property_is_refused() {
    let text = format!(
        "{}\n[kafka.properties]\n\"no.such.property\" = \"1\"\n",
        node(SAMPLER)
    );
    assert_refused(
        "property.toml",
        &text,
        &["kafka property `no.such.property`"],
    );
}

#[test]
fn a_subscriber_that_cannot_read_the_owners_records_is_refused() {
    let reader = r#"
[[actors]]
name = "alarm"
kind = "threshold-alarm"
output = "alarms"
params = { input = "metrics.host", metric = "cpu_percent", high = 2.0, low = 1.0 }
"#;
    assert_refused(
        "schemas.toml",
        &node(&format!("{SAMPLER}{reader}")),
        &[
            "actor `alarm` reads topic `metrics.host` as `scribe.metrics.MetricSummary`",
            "its owner `sampler` writes `scribe.metrics.HostMetrics`",
        ],
    );
}

#[test]
fn the_single_writer_rule_holds_across_files() {
    let a = write("deploy-a.toml", &node(SAMPLER));
    let b = write(
        "deploy-b.toml",
        &node(&SAMPLER.replace("\"sampler\"", "\"other-sampler\""))
            .replace("name = \"n\"", "name = \"m\""),
    );
    let out = scribe(&["check", a.to_str().unwrap(), b.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("topic `metrics.host` is owned by actor `sampler` and claimed again by actor `other-sampler`"), "{stderr}");
}

#[test]
fn a_valid_deployment_is_summarised_and_external_topics_reported() {
    let path = write("valid.toml", &node(AGGREGATOR));
    let out = scribe(&["check", path.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    succeeded(&out);
    assert!(
        stdout.contains("agg [windowed-aggregator] writes metrics.summary"),
        "{stdout}"
    );
    assert!(
        stdout.contains("external: `metrics.host` (scribe.metrics.HostMetrics), read by `agg`"),
        "{stdout}"
    );
    assert!(stdout.ends_with("ok: 1 files, 1 actors\n"), "{stdout}");
}

#[test]
fn environment_overrides_win_over_the_file() {
    let path = write("env.toml", &node(SAMPLER));
    let out = scribe(
        &["check", path.to_str().unwrap()],
        &[
            ("SCRIBE__KAFKA__BOOTSTRAP_SERVERS", "10.1.2.3:9092"),
            ("SCRIBE__NODE__NAME", "from-env"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    succeeded(&out);
    assert!(stdout.contains("node `from-env`"), "{stdout}");
    assert!(stdout.contains("kafka 10.1.2.3:9092"), "{stdout}");
}

#[test]
fn secrets_appear_in_no_output_error_or_debug() {
    let secure = "\n[kafka.security]\nprotocol = \"sasl_plaintext\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"svc\"\nsasl_password = \"hunter2-secret\"\n";
    let ok = write("secret-ok.toml", &format!("{}{secure}", node(SAMPLER)));
    let out = scribe(&["check", ok.to_str().unwrap()], &[]);
    succeeded(&out);
    let bad = write(
        "secret-bad.toml",
        &format!(
            "{}{secure}[kafka.properties]\n\"ssl.key.password\" = \"hunter2-secret\"\n\"no.such\" = \"x\"\n",
            node(SAMPLER)
        ),
    );
    let failed = scribe(&["check", bad.to_str().unwrap()], &[]);
    assert_eq!(failed.status.code(), Some(2));
    for output in [&out, &failed] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!all.contains("hunter2"), "a secret leaked: {all}");
    }
    let config = scribe_cli::settings::NodeConfig::load(&bad).unwrap();
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("<redacted>"),
        "{debug}"
    );
}

#[test]
fn graph_of_the_example_matches_the_checked_in_files() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/host-monitor.toml");
    for (format, golden) in [
        ("mermaid", include_str!("golden/host-monitor.mmd")),
        ("dot", include_str!("golden/host-monitor.dot")),
    ] {
        let out = scribe(&["graph", "--format", format, example], &[]);
        succeeded(&out);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            golden,
            "{format} output changed"
        );
    }
}

#[test]
fn a_yaml_file_is_read_like_toml() {
    let nowhere = nowhere();
    let yaml = format!(
        "node:\n  name: n\nkafka:\n  bootstrap_servers: \"{nowhere}\"\nactors:\n  - name: agg\n    kind: windowed-aggregator\n    output: metrics.summary\n    params:\n      input: metrics.host\n      window: 2s\n"
    );
    let path = write("node.yaml", &yaml);
    let out = scribe(&["check", path.to_str().unwrap()], &[]);
    succeeded(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("agg [windowed-aggregator] writes metrics.summary")
    );
}

const RELAY: &str = r#"
[[actors]]
name = "relay"
kind = "relay.host-metrics"
output = "metrics.all"
params = { pattern = "PATTERN" }
"#;

#[test]
fn an_invalid_relay_pattern_is_refused() {
    assert_refused(
        "relay-regex.toml",
        &node(&RELAY.replace("PATTERN", "metrics-(")),
        &["invalid subscription pattern `metrics-(`"],
    );
}

/// librdkafka subscribes with the pattern (POSIX regular expressions) and
/// scribe routes records by it (Rust's `regex`): a pattern the two read
/// differently would read records it cannot route, or miss topics.
#[test]
fn a_relay_pattern_librdkafka_reads_differently_is_refused() {
    for (pattern, why) in [
        (
            "metrics\\\\.h\\\\d",
            "write it as a bracket class like `[0-9]`",
        ),
        ("(?i)metrics", "flags like `(?i)`"),
        ("(?:metrics|logs)\\\\..*", "only plain groups"),
        ("metrics.*?", "lazy repetitions"),
    ] {
        assert_refused(
            "relay-portable.toml",
            &node(&RELAY.replace("PATTERN", pattern)),
            &["invalid subscription pattern", why],
        );
    }
}

#[test]
fn a_relay_pattern_matching_its_own_topic_is_refused() {
    assert_refused(
        "relay-loop.toml",
        &node(&RELAY.replace("PATTERN", "metrics\\\\..*")),
        &["actor `relay` subscribes to its own output topic"],
    );
}

#[test]
fn a_relay_over_matching_owned_topics_is_accepted() {
    let path = write(
        "relay-ok.toml",
        &node(&format!(
            "{SAMPLER}{}",
            RELAY.replace("PATTERN", "metrics\\\\.h.*")
        )),
    );
    let out = scribe(&["check", path.to_str().unwrap()], &[]);
    succeeded(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("relay [relay.host-metrics] writes metrics.all")
    );
}

#[test]
fn an_unknown_failure_action_is_refused_naming_the_field() {
    let actor = AGGREGATOR.replace(
        "params = { input = \"metrics.host\" }",
        "params = { input = \"metrics.host\" }\nfailure = { retries = 2, then = \"explode\" }",
    );
    assert_refused(
        "failure.toml",
        &node(&actor),
        &[
            "actors[0].failure.then",
            "unknown variant `explode`",
            "dead-letter",
        ],
    );
}

#[test]
fn an_output_named_like_another_actors_dead_letter_topic_is_refused() {
    let thief = r#"
[[actors]]
name = "thief"
kind = "host-sampler"
output = "metrics.summary.dlq"
"#;
    assert_refused(
        "dlq-owner.toml",
        &node(&format!("{SAMPLER}{AGGREGATOR}{thief}")),
        &["topic `metrics.summary.dlq`", "`thief`", "`agg`"],
    );
}

#[test]
fn an_unknown_delivery_mode_is_refused_naming_the_field() {
    let actor = AGGREGATOR.replace(
        "params = { input = \"metrics.host\" }",
        "params = { input = \"metrics.host\" }\ndelivery = \"twice\"",
    );
    assert_refused(
        "delivery.toml",
        &node(&actor),
        &[
            "actors[0].delivery",
            "unknown variant `twice`",
            "`at-least-once` or `exactly-once`",
        ],
    );
}

#[test]
fn an_unknown_envelope_is_refused_naming_the_field() {
    let actor = AGGREGATOR.replace(
        "params = { input = \"metrics.host\" }",
        "params = { input = \"metrics.host\" }\nenvelope = \"json\"",
    );
    assert_refused(
        "envelope.toml",
        &node(&actor),
        &[
            "actors[0].envelope",
            "unknown variant `json`",
            "`compact` or `cloudevents`",
        ],
    );
}

#[test]
fn a_cloudevents_envelope_is_accepted_per_actor_or_node_and_shown() {
    let actor = AGGREGATOR.replace(
        "params = { input = \"metrics.host\" }",
        "params = { input = \"metrics.host\" }\nenvelope = \"cloudevents\"",
    );
    let path = write("cloudevents.toml", &node(&format!("{SAMPLER}{actor}")));
    let summary = succeeded(&scribe(&["check", path.to_str().unwrap()], &[]));
    let agg = summary
        .lines()
        .find(|l| l.contains("writes metrics.summary"))
        .unwrap_or_default();
    assert!(agg.ends_with("; cloudevents envelope"), "{summary}");
    assert_eq!(
        summary.matches("; cloudevents envelope").count(),
        1,
        "{summary}"
    );
    // The node's default, for every actor.
    let text = node(&format!("{SAMPLER}{AGGREGATOR}")).replace(
        "name = \"n\"\n",
        "name = \"n\"\nenvelope = \"cloudevents\"\n",
    );
    let path = write("cloudevents-node.toml", &text);
    let summary = succeeded(&scribe(&["check", path.to_str().unwrap()], &[]));
    assert_eq!(
        summary.matches("; cloudevents envelope").count(),
        2,
        "{summary}"
    );
}

#[test]
fn exactly_once_delivery_is_accepted_and_shown() {
    let actor = AGGREGATOR.replace(
        "params = { input = \"metrics.host\" }",
        "params = { input = \"metrics.host\" }\ndelivery = \"exactly-once\"",
    );
    let text = node(&format!("{SAMPLER}{actor}")).replace(
        "name = \"n\"\n",
        "name = \"n\"\ntransaction_timeout = \"5s\"\n",
    );
    let path = write("exactly-once.toml", &text);
    let summary = succeeded(&scribe(&["check", path.to_str().unwrap()], &[]));
    assert!(
        summary.contains("agg [windowed-aggregator] writes metrics.summary")
            && summary.contains("; exactly-once"),
        "{summary}"
    );
    let sampler = summary.lines().find(|l| l.contains("sampler [")).unwrap();
    assert!(
        !sampler.contains("exactly-once"),
        "the default is not shown: {sampler}"
    );
}

#[test]
fn a_failure_policy_is_accepted() {
    let actor = AGGREGATOR.replace(
        "params = { input = \"metrics.host\" }",
        "params = { input = \"metrics.host\" }\nfailure = { retries = 5, backoff = \"200ms\", then = \"stop\", max_restarts = 3, restart_window = \"2m\", over_budget = \"stop-node\" }",
    );
    let path = write("policy.toml", &node(&format!("{SAMPLER}{actor}")));
    succeeded(&scribe(&["check", path.to_str().unwrap()], &[]));
}

/// `scribe run` refuses `text` with the same line as `scribe check`, exit
/// code 2, before it touches Kafka (nothing listens at the bootstrap
/// address; the embedded broker is never started).
fn run_refuses_like_check(name: &str, text: &str, expected: &[&str]) {
    let line = refused(name, text);
    for part in expected {
        assert!(line.contains(part), "{name}: expected `{part}` in: {line}");
    }
    let path = write(name, text);
    let out = scribe(&["run", path.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: `scribe run`: {stderr}");
    assert_untouched(name);
    assert!(
        stderr.lines().any(|l| l == line),
        "{name}: `run` says what `check` says ({line}): {stderr}"
    );
}

#[test]
fn a_partition_count_out_of_range_is_refused_by_check_and_run() {
    for (file, section) in [
        (
            "partitions-huge.toml",
            "[topic_defaults]\npartitions = 2000000000\n",
        ),
        ("partitions-zero.toml", "[topic_defaults]\npartitions = 0\n"),
    ] {
        let text = node(SAMPLER).replacen("[kafka]", &format!("{section}[kafka]"), 1);
        let text = text.replace(nowhere(), "embedded");
        run_refuses_like_check(
            file,
            &text,
            &["topic_defaults.partitions", "is out of range (1 to 10000)"],
        );
    }
    let topic = format!(
        "{}\n[[topics]]\nname = \"metrics.host\"\nreplication = 0\n",
        node(SAMPLER)
    );
    run_refuses_like_check(
        "replication-zero.toml",
        &topic,
        &["topic `metrics.host`: replication", "0 is out of range"],
    );
}

#[test]
fn zero_intervals_are_refused() {
    for field in ["commit_interval", "transaction_timeout"] {
        let text = node(SAMPLER).replacen(
            "name = \"n\"",
            &format!("name = \"n\"\n{field} = \"0s\""),
            1,
        );
        run_refuses_like_check(
            &format!("zero-{field}.toml"),
            &text,
            &[&format!("node.{field}: must be more than zero")],
        );
    }
}

#[test]
fn a_dead_letter_topic_the_actor_writes_or_reads_is_refused() {
    for (file, topic, why) in [
        (
            "dlq-output.toml",
            "metrics.summary",
            "it is the actor's own output",
        ),
        ("dlq-input.toml", "metrics.host", "the actor reads it"),
    ] {
        let actor = format!("{AGGREGATOR}failure = {{ dead_letter_topic = \"{topic}\" }}\n");
        run_refuses_like_check(
            file,
            &node(&actor),
            &[
                &format!("actor `agg`: failure.dead_letter_topic `{topic}`"),
                why,
            ],
        );
    }
}

#[test]
fn an_actors_own_parameter_rules_are_checked_naming_file_and_actor() {
    let empty_window = AGGREGATOR.replace(
        "params = { input = \"metrics.host\" }",
        "params = { input = \"metrics.host\", window = \"0s\" }",
    );
    run_refuses_like_check(
        "empty-window.toml",
        &node(&empty_window),
        &["actor `agg`: params: window must be at least 1 ms"],
    );
    let alarm = r#"
[[actors]]
name = "alarm"
kind = "threshold-alarm"
output = "alarms"
params = { input = "s", metric = "cpu_percent", high = 1.0, low = 2.0 }
"#;
    run_refuses_like_check(
        "bounds.toml",
        &node(alarm),
        &["actor `alarm`: params: low (2) must not exceed high (1)"],
    );
}

#[test]
fn two_files_with_one_node_name_are_refused() {
    let a = write("same-name-a.toml", &node(SAMPLER));
    let b = write("same-name-b.toml", &node(AGGREGATOR));
    let out = scribe(&["check", a.to_str().unwrap(), b.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: node.name: `n` is also the name of the node in {}",
            b.display(),
            a.display()
        )),
        "{stderr}"
    );
}

#[test]
fn unusable_tracing_settings_are_refused_by_check_and_run() {
    for (file, section, expected) in [
        (
            "tracing-https.toml",
            "[node.tracing]\notlp = \"https://collector:4318\"\n",
            "node.tracing: `otlp` is `https://collector:4318`: scribe posts spans over plain HTTP only",
        ),
        (
            "tracing-bare.toml",
            "[node.tracing]\notlp = \"collector:4318\"\n",
            "node.tracing: `otlp` is `collector:4318`: expected the collector's OTLP/HTTP address",
        ),
        (
            "tracing-ratio.toml",
            "[node.tracing]\notlp = \"http://collector:4318\"\nsampling = 2.0\n",
            "node.tracing: `sampling` is 2: it must be between 0 and 1",
        ),
    ] {
        let text = node(SAMPLER)
            .replacen("[kafka]", &format!("{section}[kafka]"), 1)
            .replace(nowhere(), "embedded");
        run_refuses_like_check(file, &text, &[expected]);
    }
    let unknown = node(SAMPLER).replacen(
        "[kafka]",
        "[node.tracing]\notlp = \"http://c:4318\"\nratio = 0.5\n[kafka]",
        1,
    );
    assert_refused("tracing-unknown.toml", &unknown, &["unknown field `ratio`"]);
}

const ASKED: &str = r#"
[[actors]]
name = "asked"
kind = "threshold-alarm"
output = "alarms.asked"
params = { input = "summaries.asked", metric = "cpu_percent", high = 90.0, low = 70.0 }
"#;

#[test]
fn a_gateway_is_checked_as_the_one_writer_of_its_requests_and_paired_with_its_responder() {
    let gateway = |requests: &str, replies: &str| {
        format!(
            "\n[[gateways]]\nname = \"ops\"\nrequests = \"{requests}\"\nreplies = \"{replies}\"\n"
        )
    };
    // Paired: the responder reads the requests and owns the replies.
    let path = write(
        "gateway-ok.toml",
        &node(&format!(
            "{ASKED}{}",
            gateway("summaries.asked", "alarms.asked")
        )),
    );
    let summary = succeeded(&scribe(&["check", path.to_str().unwrap()], &[]));
    assert!(
        summary.contains(
            "gateway ops (node `n`) asks on summaries.asked, answered by asked on alarms.asked"
        ),
        "{summary}"
    );
    let graph = succeeded(&scribe(&["graph", path.to_str().unwrap()], &[]));
    assert!(
        graph.contains("g_ops{{\"ops<br/><i>gateway</i>\"}}"),
        "{graph}"
    );
    assert!(
        graph.contains("g_ops -- \"request\" --> t_summaries_asked"),
        "{graph}"
    );
    assert!(
        graph.contains("t_alarms_asked -- \"reply\" --> g_ops"),
        "{graph}"
    );

    assert_refused(
        "gateway-second-writer.toml",
        &node(&format!(
            "{ASKED}{}",
            gateway("alarms.asked", "summaries.asked")
        )),
        &[
            "gateway `ops` cannot publish to `alarms.asked`: actor `asked` writes it (one writer per topic)",
        ],
    );
    assert_refused(
        "gateway-nobody-answers.toml",
        &node(&format!(
            "{ASKED}{}",
            gateway("summaries.asked", "alarms.elsewhere")
        )),
        &["no actor owns its reply topic `alarms.elsewhere`, so nothing answers"],
    );
    assert_refused(
        "gateway-responder-deaf.toml",
        &node(&format!(
            "{ASKED}{}",
            gateway("summaries.other", "alarms.asked")
        )),
        &["actor `asked` owns its reply topic `alarms.asked` but does not read `summaries.other`"],
    );

    // Declared types are checked against the responder, by name.
    let typed = |request: &str, reply: &str| {
        format!(
            "{}request_type = \"{request}\"\nreply_type = \"{reply}\"\n",
            gateway("summaries.asked", "alarms.asked")
        )
    };
    let path = write(
        "gateway-typed.toml",
        &node(&format!(
            "{ASKED}{}",
            typed("scribe.metrics.MetricSummary", "scribe.control.Alarm")
        )),
    );
    succeeded(&scribe(&["check", path.to_str().unwrap()], &[]));
    assert_refused(
        "gateway-wrong-request-type.toml",
        &node(&format!(
            "{ASKED}{}",
            typed("scribe.metrics.HostMetrics", "scribe.control.Alarm")
        )),
        &[
            "gateway `ops`",
            "its request type `scribe.metrics.HostMetrics` is not what actor `asked` reads there (`scribe.metrics.MetricSummary`)",
        ],
    );
    assert_refused(
        "gateway-wrong-reply-type.toml",
        &node(&format!(
            "{ASKED}{}",
            typed("scribe.metrics.MetricSummary", "scribe.control.Command")
        )),
        &[
            "its reply type `scribe.control.Command` is not what actor `asked` writes (`scribe.control.Alarm`)",
        ],
    );
    assert_refused(
        "gateway-half-typed.toml",
        &node(&format!(
            "{ASKED}{}request_type = \"scribe.metrics.MetricSummary\"\n",
            gateway("summaries.asked", "alarms.asked")
        )),
        &["gateway `ops`: give request_type and reply_type together"],
    );
}

const BRIDGE_IN: &str = r#"
[[actors]]
name = "acapy-in"
kind = "json-in.host-metrics"
output = "metrics.bridged"
params = { pattern = "acapy-inbound-.*", fields = { cpu_percent = "cpu", load1 = "/load/one" } }
"#;

const BRIDGE_OUT: &str = r#"
[[actors]]
name = "mirror"
kind = "json-out"
output = "metrics.bridged.json"
params = { topic = "metrics.bridged" }
"#;

#[test]
fn json_bridges_read_and_write_outside_topics_without_schema_checks() {
    let path = write("bridges.toml", &node(&format!("{BRIDGE_IN}{BRIDGE_OUT}")));
    let summary = succeeded(&scribe(&["check", path.to_str().unwrap()], &[]));
    assert!(
        summary.contains(
            "mirror [json-out] writes metrics.bridged.json (json); reads metrics.bridged (*); \
             cloudevents envelope"
        ),
        "{summary}"
    );
    assert!(
        summary.contains(
            "external: `acapy-inbound-.*` (scribe.metrics.HostMetrics), read by `acapy-in`"
        ),
        "{summary}"
    );
    // The outside pattern is drawn at the edge; owned topics are not.
    let graph = succeeded(&scribe(&["graph", path.to_str().unwrap()], &[]));
    assert!(graph.contains("<i>outside</i>"), "{graph}");
    assert_eq!(graph.matches("<i>outside</i>").count(), 1, "{graph}");
    assert!(
        graph.contains("t_metrics_bridged[(\"metrics.bridged\")]"),
        "{graph}"
    );

    // An Avro reader of the mirror's JSON is refused, naming the way out.
    let relay = r#"
[[actors]]
name = "gather"
kind = "relay.host-metrics"
output = "metrics.gathered"
params = { pattern = "metrics[.]bridged[.]json" }
"#;
    assert_refused(
        "bridges-avro-reader.toml",
        &node(&format!("{BRIDGE_IN}{BRIDGE_OUT}{relay}")),
        &[
            "actor `gather` reads topic `metrics.bridged.json`",
            "it writes json there, not Avro; read it with `Subscriptions::subscribe_foreign`",
        ],
    );
    // Mistakes in the bridge's parameters, named.
    assert_refused(
        "bridges-no-such-field.toml",
        &node(&BRIDGE_IN.replace("cpu_percent = \"cpu\"", "cpu = \"cpu\"")),
        &[
            "actor `acapy-in`",
            "fields.cpu: `scribe.metrics.HostMetrics` has no field `cpu`",
        ],
    );
    assert_refused(
        "bridges-nothing-to-read.toml",
        &node(&BRIDGE_IN.replace("pattern = \"acapy-inbound-.*\", ", "")),
        &[
            "actor `acapy-in`",
            "give `topic` or `pattern`: what to read",
        ],
    );
}

#[test]
fn a_confluent_encoding_without_a_usable_registry_is_refused() {
    let confluent = SAMPLER.replace(
        "output = \"metrics.host\"",
        "output = \"metrics.host\"\nencoding = \"confluent\"",
    );
    assert_refused(
        "confluent-no-registry.toml",
        &node(&confluent),
        &[
            "actor `sampler`: encoding",
            "needs a schema registry ([registry] url)",
        ],
    );
    assert_refused(
        "confluent-bad-strategy.toml",
        &node(&format!("{confluent}subject_strategy = \"by_topic\"\n")),
        &["actors[0].subject_strategy", "by_topic"],
    );
    // Credentials go in username and password; the URL's are not repeated.
    let line = refused(
        "registry-url-credentials.toml",
        &format!(
            "{}[registry]\nurl = \"https://svc:hunter2-registry@registry.internal:8081\"\n",
            node(&confluent)
        ),
    );
    assert!(line.contains("registry: url carries credentials"), "{line}");
    assert!(!line.contains("hunter2"), "{line}");
    // With a registry, the file checks; its password is in no output.
    let path = write(
        "confluent-ok.toml",
        &format!(
            "{}[registry]\nurl = \"https://registry.internal:8081\"\nusername = \"svc\"\npassword = \"hunter2-registry\"\n",
            node(&confluent)
        ),
    );
    let summary = succeeded(&scribe(&["check", path.to_str().unwrap()], &[]));
    assert!(
        summary.contains("confluent encoding, topic_name subjects"),
        "{summary}"
    );
    let config = scribe_cli::settings::NodeConfig::load(&path).unwrap();
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("hunter2") && !summary.contains("hunter2"),
        "{debug}"
    );
}

/// Two node files (two nodes) that both run `actors`: the same actor in
/// both is one actor scaled out over the two nodes.
fn two_nodes(a_actors: &str, b_actors: &str, name: &str) -> (PathBuf, PathBuf) {
    let a = write(&format!("{name}-a.toml"), &node(a_actors));
    let b = write(
        &format!("{name}-b.toml"),
        &node(b_actors).replace("name = \"n\"", "name = \"m\""),
    );
    (a, b)
}

#[test]
fn an_actor_copied_alike_in_two_files_is_one_actor_scaled_out() {
    let both = format!("{SAMPLER}{AGGREGATOR}");
    let (a, b) = two_nodes(&both, &both, "copies-alike");
    let out = scribe(&["check", a.to_str().unwrap(), b.to_str().unwrap()], &[]);
    let summary = succeeded(&out);
    assert!(summary.contains("node `m`, 2 actors"), "{summary}");
}

#[test]
fn copies_of_an_actor_that_differ_are_refused_naming_both_files_and_the_difference() {
    let window = |w: &str| {
        AGGREGATOR.replace(
            "params = { input = \"metrics.host\" }",
            &format!("params = {{ input = \"metrics.host\", window = \"{w}\" }}"),
        )
    };
    let other_output =
        AGGREGATOR.replace("output = \"metrics.summary\"", "output = \"metrics.other\"");
    let exactly_once = AGGREGATOR.replace(
        "output = \"metrics.summary\"",
        "output = \"metrics.summary\"\ndelivery = \"exactly-once\"",
    );
    let relay = AGGREGATOR
        .replace(
            "kind = \"windowed-aggregator\"",
            "kind = \"relay.host-metrics\"",
        )
        .replace(
            "params = { input = \"metrics.host\" }",
            "params = { pattern = \"metrics[.]host\" }",
        );
    for (name, b_actor, expected) in [
        ("copies-window", window("7s"), "params.window is `\"5s\"`"),
        (
            "copies-output",
            other_output,
            "output is `\"metrics.summary\"`",
        ),
        (
            "copies-delivery",
            exactly_once,
            "delivery is `\"at-least-once\"`",
        ),
        ("copies-kind", relay, "kind is `\"windowed-aggregator\"`"),
    ] {
        let a_actor = if name == "copies-window" {
            window("5s")
        } else {
            AGGREGATOR.to_owned()
        };
        let (a, b) = two_nodes(
            &format!("{SAMPLER}{a_actor}"),
            &format!("{SAMPLER}{b_actor}"),
            name,
        );
        let out = scribe(&["check", a.to_str().unwrap(), b.to_str().unwrap()], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{name}: {stderr}");
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{}, {}: actor `agg` is in both files",
                a.display(),
                b.display()
            )),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("its copies differ"), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected `{expected}` in {stderr}"
        );
        assert!(
            stderr.contains(&format!("in {}", a.display()))
                && stderr.contains(&format!("in {}", b.display())),
            "{name}: {stderr}"
        );
    }
}
