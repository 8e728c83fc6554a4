//! A node launched from a configuration file, with the standard actors of
//! the registry, moves records end to end: samples, summaries, alarms,
//! commands and journal lines (on a topic and in a JSON-lines file).

use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::Decoder;
use scribe_cli::settings::NodeConfig;
use scribe_schemas::CommandAction;
use scribe_tests::{TestKafka, unique};

#[actix::test]
async fn a_config_file_node_moves_records_through_the_standard_actors() {
    let kafka = TestKafka::from_env();
    let id = unique("cfg");
    let journal_file = std::env::temp_dir().join(format!("{id}.jsonl"));
    let journal_path = journal_file.display();
    let config = format!(
        r#"
[node]
name = "{id}"

[[actors]]
name = "{id}-sampler"
kind = "host-sampler"
output = "{id}.metrics"
params = {{ interval = "100ms" }}

[[actors]]
name = "{id}-aggregator"
kind = "windowed-aggregator"
output = "{id}.summaries"
params = {{ input = "{id}.metrics", window = "500ms" }}

[[actors]]
name = "{id}-alarm"
kind = "threshold-alarm"
output = "{id}.alarms"
params = {{ input = "{id}.summaries", metric = "cpu_percent", statistic = "max", high = -1.0, low = -2.0 }}

[[actors]]
name = "{id}-controller"
kind = "controller"
output = "{id}.commands"
params = {{ input = "{id}.alarms", cooldown = "1s" }}

[[actors]]
name = "{id}-journal"
kind = "journal"
output = "{id}.journal"
params = {{ summaries = "{id}.summaries", alarms = "{id}.alarms", commands = "{id}.commands", file = "{journal_path}" }}
"#
    );
    let path = std::env::temp_dir().join(format!("{id}.toml"));
    std::fs::write(&path, config).unwrap();
    let loaded = NodeConfig::load(&path).expect("valid config");
    let builder = loaded
        .builder(&scribe_cli::settings::Registry::standard())
        .expect("known kinds and valid params");
    let node = kafka
        .configure(builder)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();

    let kinds = ["summary", "ALARM", "COMMAND"];
    let lines = kafka
        .journal_lines_until(&format!("{id}.journal"), &kinds)
        .await;
    let commands = kafka
        .read(&format!("{id}.commands"), 1, Duration::from_secs(10))
        .await;
    node.shutdown().await.unwrap();

    for kind in kinds {
        assert!(
            lines.iter().any(|l| l.starts_with(kind)),
            "no {kind} line in {lines:?}"
        );
    }
    let command = Decoder::<scribe_schemas::Command>::new(SchemaRegistry::new())
        .unwrap()
        .decode(&commands.first().expect("a command").value)
        .unwrap();
    assert_eq!(command.action, CommandAction::Throttle);
    let file = std::fs::read_to_string(&journal_file).expect("the journal file exists");
    let in_file: Vec<String> = file
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("a JSON line")["line"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for line in &lines {
        assert!(
            in_file.contains(line),
            "the topic has a line the file lacks: {line}"
        );
    }
}
