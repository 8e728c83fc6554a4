//! A store's changelog is the actor's topic in every view of the
//! deployment, without touching Kafka: `check` says what the actor
//! remembers and where, `graph` draws the changelog as a topic the actor
//! writes, `acls` lets the node write, read, create and describe it (and
//! its configuration), and `asyncapi` gives it a channel the actor owns,
//! with the store's value schema, accepted by the official parser.

use std::process::Command;

use serde_json::Value;

const NODE: &str = r#"
[node]
name = "counting"

[kafka]
bootstrap_servers = "localhost:9092"

[kafka.security]
principal = "User:counting"

[[actors]]
name = "tally"
kind = "test.tally"
output = "tallies"
params = { input = "numbers" }
"#;

const CHANGELOG: &str = "tallies.tallies.changelog";

fn scribe(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_scribe-test-node"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "scribe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_view_of_a_deployment_shows_a_changelog_as_its_actors() {
    let dir = std::env::temp_dir().join(scribe_tests::unique("changelog-views"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("counting.toml");
    std::fs::write(&file, NODE).unwrap();
    let file = file.to_str().unwrap();

    let check = scribe(&["check", file]);
    println!("{check}");
    assert!(
        check.contains(&format!(
            "    remembers tallies (string -> scribe.test.Tally) in {CHANGELOG}"
        )),
        "{check}"
    );

    let graph = scribe(&["graph", file]);
    let topic = format!("t_{}", CHANGELOG.replace('.', "_"));
    assert!(
        graph.contains(&format!("a_tally -- \"state tallies\" --> {topic}"))
            && graph.contains(&format!("{topic}[(\"{CHANGELOG}\")]")),
        "{graph}"
    );

    let acls = scribe(&["acls", file]);
    let line = acls
        .lines()
        .find(|l| l.contains(&format!("--topic {CHANGELOG}")))
        .unwrap_or_else(|| panic!("a binding for the changelog:\n{acls}"));
    println!("{line}");
    for op in ["Read", "Write", "Create", "Describe", "DescribeConfigs"] {
        assert!(line.contains(&format!("--operation {op} ")), "{op}: {line}");
    }

    let document = scribe(&["asyncapi", file]);
    let written: Value = serde_json::from_str(&document).unwrap();
    let channel = &written["channels"][CHANGELOG];
    assert_eq!(channel["x-scribe-owner"]["actor"], "tally", "{channel}");
    let message = &written["components"]["messages"]["tally.tallies.state"];
    assert_eq!(
        message["payload"]["schema"]["name"], "Tally",
        "the store's value schema: {message}"
    );
    let Some(parser) = scribe_tests::asyncapi::parser_dir() else {
        println!("the parser is not installed: not validated");
        return;
    };
    let path = dir.join("asyncapi.json");
    std::fs::write(&path, &document).unwrap();
    let read = scribe_tests::asyncapi::parse(&parser, &path);
    println!(
        "parsed: {}",
        read["channels"].as_array().map_or(0, Vec::len)
    );
}
