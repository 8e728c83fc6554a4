//! `scribe acls` on Apache Kafka with the StandardAuthorizer and
//! `allow.everyone.if.no.acl.found=false`: with only the bindings it
//! derives, a two-node deployment runs end to end through SASL_SSL; a node
//! edited to publish into a topic the other node owns is refused by the
//! brokers (the actor stops for good, unhealthy, saying why; nothing
//! written), and one edited to write a topic it has no rights on at all
//! cannot start; `scribe produce` as that node's principal is refused too.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use scribe::codec::Encoder;
use scribe_cli::settings::NodeConfig;
use scribe_schemas::MetricSummary;
use scribe_tests::{ApacheKafka, Listener, TestKafka, unique};

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

/// A node file reaching the cluster as `user` through SASL_SSL.
fn node_file(
    cluster: &ApacheKafka,
    name: &str,
    user: &str,
    password: &str,
    actors: &str,
) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{name}.toml"));
    write(
        &path,
        &format!(
            r#"
[node]
name = "{name}"
commit_interval = "200ms"
[kafka]
bootstrap_servers = "{bootstrap}"
[kafka.security]
protocol = "sasl_ssl"
ca_file = "{ca}"
sasl_mechanism = "SCRAM-SHA-256"
sasl_username = "{user}"
sasl_password = "{password}"
[kafka.consumer]
"session.timeout.ms" = "3000"
"heartbeat.interval.ms" = "300"
{actors}
"#,
            bootstrap = cluster.bootstrap(Listener::SaslSsl),
            ca = cluster.tls_file("ca.pem").display(),
        ),
    )
}

/// A relay of alarms from the topics matching `pattern` to `output`.
fn relay(name: &str, pattern: &str, output: &str, extra: &str) -> String {
    format!(
        r#"
[[actors]]
name = "{name}"
kind = "relay.alarm"
output = "{output}"
params = {{ pattern = "{pattern}" }}
{extra}
"#
    )
}

fn scribe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("scribe runs")
}

/// CPU summaries of host `h` whose means swing across the alarm's
/// thresholds `swings` times: an alarm raised or cleared on each.
fn swings(kafka: &TestKafka, topic: &str, from: i64, swings: i64) {
    let encoder = Encoder::<MetricSummary>::new().unwrap();
    let raw: Vec<(String, Vec<u8>)> = (from..from + swings)
        .map(|i| {
            let cpu = if i % 2 == 0 { 95.0 } else { 10.0 };
            let summary = MetricSummary {
                host: "h".into(),
                metric: "cpu_percent".into(),
                window_start_ms: i * 1000,
                window_end_ms: i * 1000 + 1000,
                count: 1,
                min: cpu,
                max: cpu,
                mean: cpu,
                p95: cpu,
            };
            let mut bytes = Vec::new();
            encoder.encode(&summary, &mut bytes).unwrap();
            ("h".to_owned(), bytes)
        })
        .collect();
    let records: Vec<_> = raw
        .iter()
        .map(|(k, v)| (Some(k.as_str()), v.clone(), vec![]))
        .collect();
    kafka.produce_raw(topic, &records);
}

async fn start(file: &Path) -> scribe::Result<scribe::RunningNode> {
    NodeConfig::load(file)
        .unwrap()
        .node(&scribe_cli::settings::Registry::standard())
        .unwrap()
        .start()
        .await
}

#[actix::test]
async fn generated_acls_run_the_deployment_and_the_brokers_refuse_a_second_writer() {
    let Some(cluster) = ApacheKafka::required("generated_acls_run_the_deployment") else {
        return;
    };
    let kafka = TestKafka::from_env();
    let id = unique("acl");
    let (user_a, user_b, password) = (format!("{id}-a"), format!("{id}-b"), unique("pw"));
    cluster.scram_user(&user_a, &password);
    cluster.scram_user(&user_b, &password);
    let (summaries, alarms) = (format!("{id}.summaries"), format!("{id}.alarms"));
    let (copies, copies2) = (format!("{id}.copies"), format!("{id}.copies2"));
    // Node a raises alarms; node b relays them twice over.
    let a = node_file(
        &cluster,
        &format!("{id}-a"),
        &user_a,
        &password,
        &format!(
            r#"
[[actors]]
name = "{id}-alarm"
kind = "threshold-alarm"
output = "{alarms}"
params = {{ input = "{summaries}", metric = "cpu_percent", high = 80.0, low = 60.0 }}
"#
        ),
    );
    let second = relay(
        &format!("{id}-relay2"),
        &format!(r"{id}\\.copies$"),
        &copies2,
        &format!(r#"failure = {{ dead_letter_topic = "{id}.relay2.dlq" }}"#),
    );
    let b_actors = relay(
        &format!("{id}-relay"),
        &format!(r"{id}\\.alarms$"),
        &copies,
        "",
    ) + &second;
    let b = node_file(&cluster, &format!("{id}-b"), &user_b, &password, &b_actors);

    let out = scribe(&["acls", a.to_str().unwrap(), b.to_str().unwrap()]);
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{lines}");
    let commands: Vec<Vec<&str>> = lines
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let words: Vec<&str> = l.split("   #").next().unwrap().split_whitespace().collect();
            assert_eq!(&words[..2], ["kafka-acls.sh", "--bootstrap-server"], "{l}");
            words[3..].to_vec()
        })
        .collect();
    // Node b may write only the topics its actors own, and their dead letters.
    let mut b_writes: Vec<&str> = commands
        .iter()
        .filter(|c| c.contains(&format!("User:{user_b}").as_str()) && c.contains(&"Write"))
        .filter_map(|c| c.iter().position(|w| *w == "--topic").map(|i| c[i + 1]))
        .collect();
    b_writes.sort_unstable();
    let mut expected = vec![
        copies.clone(),
        format!("{copies}.dlq"),
        copies2.clone(),
        format!("{id}.relay2.dlq"),
    ];
    expected.sort_unstable();
    assert_eq!(b_writes, expected, "{lines}");
    for command in &commands {
        cluster.acls(command);
    }

    // The deployment runs with those bindings and nothing more.
    kafka.create_topic(&summaries, 1).await;
    let node_a = start(&a).await.expect("node a starts");
    let node_b = start(&b).await.expect("node b starts");
    swings(&kafka, &summaries, 0, 4);
    let relayed = kafka.read(&copies2, 4, Duration::from_secs(60)).await;
    println!(
        "with the generated acls: 4 alarms relayed twice by node b: {}",
        relayed.len()
    );
    assert_eq!(relayed.len(), 4);
    node_b.shutdown().await.expect("clean shutdown");

    // Node b, edited so its second relay publishes into node a's alarms
    // (a topic it may read, so it sees it): the brokers refuse the write,
    // the actor stops for good, unhealthy, and nothing is written there.
    let edited_text = std::fs::read_to_string(&b).unwrap().replace(
        &format!("output = \"{copies2}\""),
        &format!("output = \"{alarms}\""),
    );
    let edited = write(
        &std::env::temp_dir().join(format!("{id}-b-edited.toml")),
        &edited_text,
    );
    let second_writer = start(&edited).await.expect("the edited node starts");
    swings(&kafka, &summaries, 4, 2);
    let actor = format!("{id}-relay2");
    let unhealthy = TestKafka::eventually(Duration::from_secs(60), || {
        second_writer.stats(&actor).is_some_and(|s| s.unhealthy)
    })
    .await;
    let stats = second_writer.stats(&actor).unwrap();
    let why = second_writer.stopped_because(&actor).unwrap_or_default();
    let after = kafka.read(&alarms, 6, Duration::from_secs(30)).await;
    let extra = kafka.read(&alarms, 7, Duration::from_secs(3)).await;
    second_writer.shutdown().await.ok();
    let sources: Vec<&str> = extra.iter().map(|r| r.header("ce_source")).collect();
    println!(
        "second writer: unhealthy={unhealthy} publish_failures={} because: {why}; \
         {alarms} holds {} records",
        stats.publish_failures,
        extra.len()
    );
    assert!(unhealthy, "the refused actor is reported unhealthy");
    assert!(
        why.contains("authorization failed") && why.contains(&alarms),
        "{why}"
    );
    assert_eq!(
        (after.len(), extra.len()),
        (6, 6),
        "only node a's six alarms"
    );
    assert!(
        sources.iter().all(|s| s.starts_with(&format!("{id}-a/"))),
        "{sources:?}"
    );

    // Edited to write a topic nobody granted it: it may not even see it,
    // so it cannot start.
    let unseen_text = std::fs::read_to_string(&b).unwrap().replace(
        &format!("output = \"{copies2}\""),
        &format!("output = \"{id}.elsewhere\""),
    );
    let unseen = write(
        &std::env::temp_dir().join(format!("{id}-b-unseen.toml")),
        &unseen_text,
    );
    let refused = start(&unseen)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    println!("a topic it has no rights on: {refused}");
    assert!(
        refused.contains(&format!("{id}.elsewhere")) && refused.contains("authorization failed"),
        "{refused}"
    );
    node_a.shutdown().await.expect("clean shutdown");

    // `scribe produce` as node b's principal into node a's alarms.
    let produce = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(["produce", edited.to_str().unwrap(), &alarms, "--as-owner"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = produce.stdin.as_ref().unwrap();
        writeln!(
            stdin,
            r#"{{"key": "h", "value": {{"host": "h", "metric": "cpu_percent", "state": "RAISED", "value": 99.0, "threshold": 80, "at_ms": 1}}}}"#
        )
        .unwrap();
    }
    let refused = produce.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!("scribe produce as node b: {}", stderr.trim());
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("authorization failed"),
        "{stderr}"
    );
    assert_eq!(
        kafka.read(&alarms, 7, Duration::from_secs(3)).await.len(),
        6
    );
}
