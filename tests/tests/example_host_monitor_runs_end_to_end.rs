//! The example system runs end to end: samples become summaries, a CPU
//! alarm raises, the controller throttles, and the journal records each.

use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::Decoder;
use scribe_examples::{HostMonitor, host_monitor, topics};
use scribe_schemas::{Command, CommandAction, MetricSummary};
use scribe_tests::TestKafka;

#[actix::test]
async fn samples_become_summaries_alarms_commands_and_journal_lines() {
    let kafka = TestKafka::from_env();
    let settings = HostMonitor {
        sample_every: Duration::from_millis(100),
        window: Duration::from_millis(500),
        // Any CPU use at all raises the alarm.
        cpu_high: -1.0,
        cpu_low: -2.0,
        print: false,
        ..HostMonitor::default()
    };
    let node = host_monitor(kafka.node("host-monitor"), &settings)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let wait = Duration::from_secs(30);
    let summaries = kafka.read(topics::SUMMARIES, 3, wait).await;
    let commands = kafka.read(topics::COMMANDS, 1, wait).await;
    let kinds = ["summary", "ALARM", "COMMAND"];
    let lines = kafka.journal_lines_until(topics::JOURNAL, &kinds).await;
    node.shutdown().await.unwrap();

    let summary = Decoder::<MetricSummary>::new(SchemaRegistry::new()).unwrap();
    for raw in &summaries {
        let s = summary.decode(&raw.value).unwrap();
        assert!(
            s.count > 0 && s.min <= s.mean && s.mean <= s.max && s.p95 <= s.max,
            "{s:?}"
        );
        assert_eq!(s.window_end_ms - s.window_start_ms, 500);
        assert_eq!(raw.key_str(), s.host);
    }
    let command = Decoder::<Command>::new(SchemaRegistry::new())
        .unwrap()
        .decode(&commands.first().expect("a command").value)
        .unwrap();
    assert_eq!(command.action, CommandAction::Throttle);
    for kind in kinds {
        assert!(
            lines.iter().any(|l| l.starts_with(kind)),
            "no {kind} line in {lines:?}"
        );
    }
}
