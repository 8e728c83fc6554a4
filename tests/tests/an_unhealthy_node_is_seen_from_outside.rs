//! A node whose actor its restart budget stopped (`over_budget =
//! "stop-actor"`) keeps running; another process sees it: `scribe status`
//! exits 3 naming the actor `unhealthy` with the reason, `/ready` answers
//! 503 naming it, and `/health` stays 200, while the healthy actor beside it
//! shows as running.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use scribe_tests::actors::produce_numbers;
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

fn node_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scribe-test-node"));
    command.env(
        "RUST_LOG",
        std::env::var("NODE_LOG").unwrap_or("warn".into()),
    );
    command
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut answer = agent.get(url).call().expect("the endpoint answers");
    let status = answer.status().as_u16();
    (status, answer.body_mut().read_to_string().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_an_actor_stopped_by_its_budget_is_seen_unhealthy_from_outside() {
    let kafka = TestKafka::from_env();
    let id = unique("outside");
    let (input, crasher, sampler) = (
        format!("{id}.in"),
        format!("{id}-crasher"),
        format!("{id}-sampler"),
    );
    for topic in [&input, &format!("{id}.out"), &format!("{id}.out.dlq")] {
        kafka.create_topic(topic, 1).await;
    }
    kafka.create_topic(&format!("{id}.host"), 1).await;
    produce_numbers(
        &kafka,
        &input,
        (0..10).map(|seq| Number {
            key: "k".into(),
            seq,
        }),
    );
    let port = free_port();
    let config = std::env::temp_dir().join(format!("{id}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[node]
name = "{id}"
admin = "127.0.0.1:{port}"

[kafka.consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[[actors]]
name = "{crasher}"
kind = "test.crasher"
output = "{id}.out"
params = {{ input = "{input}", panic_at = 4 }}
failure = {{ retries = 10, max_restarts = 1, restart_window = "10m", over_budget = "stop-actor" }}

[[actors]]
name = "{sampler}"
kind = "host-sampler"
output = "{id}.host"
params = {{ interval = "1s" }}
"#
        ),
    )
    .unwrap();
    let node = Killed(
        node_command()
            .args(["run", config.to_str().unwrap()])
            .env("SCRIBE__KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the node starts"),
    );

    // From another process: `scribe status` until it reports the crasher
    // unhealthy (the bound only keeps a broken build from hanging CI).
    let status = |args: &[&str]| -> Output {
        node_command()
            .args(["status", config.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let began = Instant::now();
    let seen = loop {
        let out = status(&[]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.code() == Some(3) && text.contains("unhealthy") {
            break text;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "never reported unhealthy; last: {:?} {text} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("{seen}");
    let crasher_line = seen
        .lines()
        .find(|l| l.starts_with(&crasher))
        .expect("a line for the crasher");
    assert!(crasher_line.contains("unhealthy"), "{crasher_line}");
    assert!(
        crasher_line.contains("injected panic at seq 4"),
        "the last error says why: {crasher_line}"
    );
    let sampler_line = seen
        .lines()
        .find(|l| l.starts_with(&sampler))
        .expect("a line for the sampler");
    assert!(sampler_line.contains("running"), "{sampler_line}");

    let base = format!("http://127.0.0.1:{port}");
    let (code, body) = get(&format!("{base}/ready"));
    assert_eq!(code, 503, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    let not_ready = ready["not_ready"].as_array().unwrap();
    assert_eq!(not_ready.len(), 1, "{body}");
    assert_eq!(not_ready[0]["actor"], crasher.as_str());
    assert_eq!(not_ready[0]["state"], "unhealthy");
    assert_eq!(
        get(&format!("{base}/health")).0,
        200,
        "the process is alive"
    );

    // `--admin` reaches the same endpoint without the file saying where.
    let direct = status(&["--admin", &base]);
    assert_eq!(direct.status.code(), Some(3));
    drop(node);
    // Once the node is gone, status says it cannot reach it: exit 1.
    let gone = status(&[]);
    assert_eq!(gone.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(
        stderr.contains(&format!("cannot read the admin endpoint at {base}")),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&config);
}
