//! `scribe dlq list` shows an actor's dead letters readably: where each
//! came from, how many attempts, why, and its value (decoded when it can);
//! `scribe dlq replay` sends them back to the actor.

use std::process::Command;
use std::time::Duration;

use scribe_cli::settings::NodeConfig;
use scribe_tests::{TestKafka, unique};

#[actix::test]
async fn dlq_list_shows_where_each_dead_letter_came_from_and_why() {
    let kafka = TestKafka::from_env();
    let id = unique("dlq");
    let (input, output) = (format!("{id}.summaries"), format!("{id}.journal"));
    kafka.create_topic(&input, 1).await;
    kafka.create_topic(&output, 1).await;
    kafka.create_topic(&format!("{output}.dlq"), 1).await;
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
name = "{id}-journal"
kind = "journal"
output = "{output}"
params = {{ summaries = "{input}", print = false }}
"#,
            bootstrap = kafka.bootstrap()
        ),
    )
    .unwrap();
    kafka.produce_raw(
        &input,
        &[(
            Some("web-1"),
            b"not a summary".to_vec(),
            vec![("origin", "test")],
        )],
    );
    let node = NodeConfig::load(&config)
        .unwrap()
        .builder(&scribe_cli::settings::Registry::standard())
        .map(|b| kafka.configure(b))
        .unwrap()
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let dead = kafka
        .read(&format!("{output}.dlq"), 1, Duration::from_secs(30))
        .await;
    node.shutdown().await.unwrap();
    assert_eq!(dead.len(), 1);

    let out = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args([
            "dlq",
            "list",
            config.to_str().unwrap(),
            &format!("{id}-journal"),
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("scribe runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 dead letters"), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let letter = &lines[0];
    assert_eq!(letter["from"]["topic"], input.as_str());
    assert_eq!(letter["from"]["partition"], 0);
    assert_eq!(letter["from"]["offset"], 0);
    assert_eq!(letter["attempts"], 0);
    assert_eq!(letter["actor"], format!("{id}-journal").as_str());
    assert_eq!(letter["key"], "web-1");
    assert_eq!(
        letter["value"], "not a summary",
        "undecodable: shown as text"
    );
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("single-object marker"),
        "{letter}"
    );

    // Replayed, it fails again (it still is not a summary): dead-lettered
    // anew after the end, with its original coordinates.
    let scribe = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_scribe"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("scribe runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let actor = format!("{id}-journal");
    let config_path = config.to_str().unwrap();
    let replayed = scribe(&["dlq", "replay", config_path, &actor]);
    assert_eq!(
        replayed.trim(),
        format!(
            "replayed 1 dead letters of `{actor}` from `{output}.dlq`: \
             0 handled, 1 dead-lettered again, 0 restarts"
        )
    );
    let listed = scribe(&["dlq", "list", config_path, &actor]);
    let lines: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert_eq!(lines[1]["from"], lines[0]["from"], "{listed}");
    assert_eq!(lines[1]["error"], lines[0]["error"], "{listed}");
    assert_eq!(lines[1]["value"], "not a summary");
    // The next replay takes only what the last one dead-lettered anew.
    let again = scribe(&["dlq", "replay", config_path, &actor]);
    assert!(again.starts_with("replayed 1 dead letters"), "{again}");

    let unknown = Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(["dlq", "list", config.to_str().unwrap(), "nobody"])
        .output()
        .expect("scribe runs");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no actor named `nobody`"));
}
