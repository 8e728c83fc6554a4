//! The `scribe` command on Apache Kafka through a SASL_SSL listener
//! (SCRAM-SHA-512, a CA made at cluster start): `run` refuses wrong
//! credentials and certificates before any actor starts, saying which, and
//! every tool (`topics`, `produce`, `tail`, `dlq list`, `dlq replay`) works
//! through `[kafka.security]`. The password shows in no output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use scribe_cli::settings::NodeConfig;
use scribe_tests::{ApacheKafka, Listener, TestKafka, unique};

/// A node file for a journal of `{id}.summaries` reaching the cluster
/// through `listener` as `user` with `password`, trusting `ca`.
fn config(id: &str, bootstrap: &str, ca: &Path, user: &str, password: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{id}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[node]
name = "{id}"
[kafka]
bootstrap_servers = "{bootstrap}"
[kafka.security]
protocol = "sasl_ssl"
ca_file = "{ca}"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "{user}"
sasl_password = "{password}"
[kafka.consumer]
"session.timeout.ms" = "3000"
"heartbeat.interval.ms" = "300"
[[actors]]
name = "{id}-journal"
kind = "journal"
output = "{id}.journal"
params = {{ summaries = "{id}.summaries", print = false }}
"#,
            ca = ca.display()
        ),
    )
    .unwrap();
    path
}

fn scribe(args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(args)
        .env("RUST_LOG", "info")
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

/// Both streams of `out`, asserting the password is in neither.
fn text(out: &Output, password: &str) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains(password) && !stderr.contains(password),
        "the password shows: {stdout}{stderr}"
    );
    (stdout, stderr)
}

/// A SCRAM user allowed everything on topics and groups.
fn user(cluster: &ApacheKafka) -> (String, String) {
    let (user, password) = (unique("cli-user"), unique("secret"));
    cluster.scram_user(&user, &password);
    cluster.allow_all(&format!("User:{user}"));
    (user, password)
}

#[test]
fn scribe_run_stops_before_any_actor_naming_a_wrong_password_certificate_or_host() {
    let Some(cluster) = ApacheKafka::required("scribe_run_stops_before_any_actor") else {
        return;
    };
    let (user, password) = user(&cluster);
    let ca = cluster.tls_file("ca.pem");
    let cases = [
        (
            "wrong password",
            config(
                &unique("pw"),
                cluster.bootstrap(Listener::SaslSsl),
                &ca,
                &user,
                "not-it",
            ),
            "authentication failed",
            "not-it",
        ),
        (
            "untrusted certificate",
            config(
                &unique("ca"),
                cluster.bootstrap(Listener::SaslSsl),
                &cluster.tls_file("other-ca.pem"),
                &user,
                &password,
            ),
            "certificate not trusted",
            password.as_str(),
        ),
        (
            "wrong host name",
            config(
                &unique("host"),
                cluster.bootstrap(Listener::Misnamed),
                &ca,
                &user,
                &password,
            ),
            "hostname mismatch",
            password.as_str(),
        ),
    ];
    for (case, file, cause, secret) in cases {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_scribe"))
            .args(["run", file.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("scribe runs");
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{case}: scribe run still running after 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let took = started.elapsed();
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out, secret);
        let last = stderr.lines().last().unwrap_or_default();
        println!(
            "{case}: exit {:?} after {took:?}: {last}",
            out.status.code()
        );
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(took < Duration::from_secs(30), "{case}: took {took:?}");
        assert!(
            last.starts_with("error: cannot connect to") && last.contains(cause),
            "{case}: {stderr}"
        );
        assert!(
            !stderr.contains("node started") && !stdout.contains("node started"),
            "{case}: no actor started: {stderr}"
        );
    }
}

#[actix::test]
async fn every_tool_works_through_sasl_ssl() {
    let Some(cluster) = ApacheKafka::required("every_tool_works_through_sasl_ssl") else {
        return;
    };
    let kafka = TestKafka::from_env();
    let (user, password) = user(&cluster);
    let id = unique("tools");
    let ca = cluster.tls_file("ca.pem");
    let file = config(
        &id,
        cluster.bootstrap(Listener::SaslSsl),
        &ca,
        &user,
        &password,
    );
    let file = file.to_str().unwrap();
    let (summaries, journal, actor) = (
        format!("{id}.summaries"),
        format!("{id}.journal"),
        format!("{id}-journal"),
    );

    // The node itself, through the secured listener, dead-letters a record
    // that is not a summary.
    kafka.create_topic(&summaries, 1).await;
    kafka.produce_raw(
        &summaries,
        &[(Some("web-1"), b"not a summary".to_vec(), vec![])],
    );
    let node = NodeConfig::load(file)
        .unwrap()
        .node(&scribe_cli::settings::Registry::standard())
        .unwrap()
        .start()
        .await
        .expect("node starts through SASL_SSL");
    let dead = kafka
        .read(&format!("{journal}.dlq"), 1, Duration::from_secs(30))
        .await;
    node.shutdown().await.unwrap();
    assert_eq!(dead.len(), 1, "dead-lettered through SASL_SSL");

    let (table, _) = text(&scribe(&["topics", file], ""), &password);
    let row = table
        .lines()
        .find(|l| l.starts_with(&journal))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.split_whitespace()
            .last()
            .unwrap()
            .parse::<i64>()
            .is_ok(),
        "end offsets: {table}"
    );

    let entry =
        r#"{"key": "k", "value": {"topic": "t", "key": "k", "line": "by hand", "at_ms": 1}}"#;
    let produced = scribe(
        &["produce", file, &journal, "--as-owner"],
        &format!("{entry}\n"),
    );
    let (_, stderr) = text(&produced, &password);
    assert!(produced.status.success(), "{stderr}");

    let tailed = scribe(&["tail", file, &journal, "--from-beginning", "-n", "1"], "");
    let (tail, stderr) = text(&tailed, &password);
    assert!(tailed.status.success(), "{stderr}");
    assert!(tail.contains("by hand"), "{tail}");

    let listed = scribe(&["dlq", "list", file, &actor], "");
    let (letters, stderr) = text(&listed, &password);
    assert!(listed.status.success(), "{stderr}");
    assert_eq!(letters.lines().count(), 1, "{letters}");
    assert!(letters.contains("not a summary"), "{letters}");

    let replayed = scribe(&["dlq", "replay", file, &actor], "");
    let (said, stderr) = text(&replayed, &password);
    assert!(replayed.status.success(), "{stderr}");
    assert!(said.starts_with("replayed 1 dead letters"), "{said}");
    println!("through SASL_SSL: topics, produce, tail, dlq list, dlq replay: {said}");
}
