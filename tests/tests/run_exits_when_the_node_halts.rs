//! `scribe run` exits promptly and non-zero when an actor's restart budget
//! stops the node (`over_budget = "stop-node"`), naming the actor and why,
//! instead of waiting for a signal and exiting 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scribe_tests::actors::produce_numbers;
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_by_a_restart_budget_exits_non_zero_naming_the_actor() {
    let kafka = TestKafka::from_env();
    let (input, output, actor) = (unique("in"), unique("out"), unique("crasher"));
    kafka.create_topic(&input, 1).await;
    kafka.create_topic(&output, 1).await;
    kafka.create_topic(&format!("{output}.dlq"), 1).await;
    produce_numbers(
        &kafka,
        &input,
        (0..10).map(|seq| Number {
            key: "k".into(),
            seq,
        }),
    );
    let config = std::env::temp_dir().join(format!("{actor}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[node]
name = "halting"

# The embedded broker keeps a restarted instance's previous consumer in the
# group until its session times out.
[kafka.consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[[actors]]
name = "{actor}"
kind = "test.crasher"
output = "{output}"
params = {{ input = "{input}", panic_at = 4 }}
failure = {{ retries = 10, max_restarts = 1, restart_window = "10m", over_budget = "stop-node" }}
"#
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scribe-test-node"))
        .args(["run", config.to_str().unwrap()])
        .env("SCRIBE__KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap())
        .env(
            "RUST_LOG",
            std::env::var("NODE_LOG").unwrap_or("warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the node starts");
    // Two panics (backoff 100 ms) spend a budget of one restart; no signal
    // is ever sent. The bound only keeps a broken build from hanging CI.
    let began = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if began.elapsed() > Duration::from_secs(120) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(status) = status else {
        child.kill().unwrap();
        panic!("`scribe run` still runs after its node stopped itself");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    if std::env::var("NODE_LOG").is_ok() {
        eprintln!("{stderr}");
    }
    let last = stderr.lines().last().unwrap_or_default();
    println!(
        "exited with {status:?} after {:?}; last line: {last}",
        began.elapsed()
    );
    assert!(!status.success(), "non-zero exit: {status:?}\n{stderr}");
    assert!(
        last.starts_with("error: the node stopped:") && last.contains(&actor),
        "the last line names the actor: {last}"
    );
    assert!(last.contains("injected panic at seq 4"), "and why: {last}");
}
