//! The standard windowed aggregator, threshold alarm and controller, in
//! one node process, keep what they remember in stores: their node
//! drained, then SIGKILLed mid-window, then started again gives what an
//! uninterrupted run gives. (The aggregator's grace is an hour: windows
//! close on later samples only, so nothing depends on the wall clock.)
//!
//! Eight hosts send a sample a second for 189 s of sample time, in three
//! parts of 63 s, so that a 10 s window is open at each part's end:
//!
//! 1. the node handles part 1 and drains on SIGTERM (window [60 s, 70 s)
//!    open, three samples in);
//! 2. started again with an hour-long commit interval, it handles part 2
//!    and is SIGKILLed (window [120 s, 130 s) open; nothing of the run
//!    committed);
//! 3. started again, it handles part 3 and drains.
//!
//! Every host is hot (mean CPU above the alarm's `high`) for a few
//! windows that close in part 1 or 2, and cools down (below `low`) in
//! part 3: the alarm raised before the crash must be cleared after it, and
//! the controller must send each host THROTTLE, then RESUME (held back by
//! its 2 s cooldown on a timer when it comes sooner).
//!
//! Each test prints summaries and alarms expected, received, lost,
//! duplicates and wrong, and asserts them; nothing is decided by timing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::Decoder;
use scribe_schemas::{Alarm, AlarmState, CommandAction, HostMetrics, MetricSummary};
use scribe_tests::hosts::{self, Figures, SummaryId, compare, samples};
use scribe_tests::{RawRecord, TestKafka, unique};

const PARTITIONS: i32 = 4;
const HOSTS: i64 = 8;
/// Seconds of samples per part, and parts.
const PART_S: i64 = 63;
const PARTS: i64 = 3;
const HIGH: f64 = 50.0;
const LOW: f64 = 30.0;

/// Part `n`'s samples, second by second, host by host.
fn part(n: i64) -> Vec<HostMetrics> {
    samples(HOSTS, n * PART_S..(n + 1) * PART_S)
}

/// What an uninterrupted aggregator writes for the first `parts` parts.
fn expected_summaries(parts: i64) -> BTreeMap<SummaryId, Figures> {
    hosts::expected_summaries(HOSTS, parts * PART_S - 1)
}

/// What an uninterrupted alarm on mean CPU writes for `summaries`:
/// (host, state, window end).
fn expected_alarms(summaries: &[MetricSummary]) -> BTreeSet<(String, String, i64)> {
    let mut ordered: Vec<&MetricSummary> = summaries
        .iter()
        .filter(|s| s.metric == "cpu_percent")
        .collect();
    ordered.sort_by_key(|s| (s.host.clone(), s.window_start_ms));
    ordered.dedup_by_key(|s| (s.host.clone(), s.window_start_ms));
    let mut raised = BTreeSet::new();
    let mut alarms = BTreeSet::new();
    for s in ordered {
        if !raised.contains(&s.host) && s.mean > HIGH {
            raised.insert(s.host.clone());
            alarms.insert((s.host.clone(), "RAISED".to_owned(), s.window_end_ms));
        } else if raised.contains(&s.host) && s.mean < LOW {
            raised.remove(&s.host);
            alarms.insert((s.host.clone(), "CLEARED".to_owned(), s.window_end_ms));
        }
    }
    alarms
}

struct Run {
    kafka: TestKafka,
    id: String,
    delivery: &'static str,
}

impl Run {
    async fn new(delivery: &'static str) -> Self {
        let kafka = TestKafka::from_env();
        let id = unique("std-state");
        let run = Self {
            kafka,
            id,
            delivery,
        };
        run.kafka.create_topic(&run.metrics(), PARTITIONS).await;
        if run.kafka.is_mock() {
            // The embedded broker, reached from another process, has no
            // CreateTopics: what the node would create is there already.
            for topic in [
                run.summaries(),
                run.alarms(),
                format!("{}.windows.changelog", run.summaries()),
                format!("{}.raised.changelog", run.alarms()),
                format!("{}.closing.changelog", run.summaries()),
                run.commands(),
                format!("{}.last.changelog", run.commands()),
                format!("{}.held.changelog", run.commands()),
                format!("{}.cooldowns.changelog", run.commands()),
            ] {
                run.kafka.create_topic(&topic, PARTITIONS).await;
            }
            for dlq in [run.summaries(), run.alarms(), run.commands()] {
                run.kafka.create_topic(&format!("{dlq}.dlq"), 1).await;
            }
        }
        run
    }

    fn metrics(&self) -> String {
        format!("{}.metrics", self.id)
    }

    fn summaries(&self) -> String {
        format!("{}.summary", self.id)
    }

    fn alarms(&self) -> String {
        format!("{}.alarms", self.id)
    }

    fn commands(&self) -> String {
        format!("{}.commands", self.id)
    }

    fn produce(&self, n: i64) {
        hosts::produce_samples(&self.kafka, &self.metrics(), &part(n));
    }

    /// Starts the node with `commit_interval`; its log is read on a thread.
    fn start(&self, commit_interval: &str) -> Node {
        let config = std::env::temp_dir().join(format!("{}-{commit_interval}.toml", self.id));
        std::fs::write(
            &config,
            format!(
                r#"
[node]
name = "{id}"
commit_interval = "{commit_interval}"

[kafka.consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[topic_defaults]
partitions = {PARTITIONS}

[[actors]]
name = "{id}-aggregator"
kind = "windowed-aggregator"
output = "{summaries}"
params = {{ input = "{metrics}", window = "10s", grace = "1h" }}
delivery = "{delivery}"

[[actors]]
name = "{id}-alarm"
kind = "threshold-alarm"
output = "{alarms}"
params = {{ input = "{summaries}", metric = "cpu_percent", high = {HIGH:.1}, low = {LOW:.1} }}
delivery = "{delivery}"

[[actors]]
name = "{id}-controller"
kind = "controller"
output = "{commands}"
params = {{ input = "{alarms}", cooldown = "2s" }}
delivery = "{delivery}"
"#,
                id = self.id,
                summaries = self.summaries(),
                metrics = self.metrics(),
                alarms = self.alarms(),
                commands = self.commands(),
                delivery = self.delivery,
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_scribe-test-node"))
            .args(["run", config.to_str().unwrap()])
            .env("SCRIBE__KAFKA__BOOTSTRAP_SERVERS", self.kafka.bootstrap())
            .env("RUST_LOG", "warn,scribe::feed=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the node starts");
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            log
        });
        Node { child, log }
    }

    async fn summaries_out(&self, uncommitted: bool) -> Vec<MetricSummary> {
        let records = if uncommitted {
            self.kafka
                .read_uncommitted(&self.summaries(), usize::MAX, Duration::from_secs(1))
                .await
        } else {
            self.kafka
                .read(&self.summaries(), usize::MAX, Duration::from_secs(1))
                .await
        };
        decode(&records)
    }

    async fn alarms_out(&self) -> Vec<Alarm> {
        decode(
            &self
                .kafka
                .read(&self.alarms(), usize::MAX, Duration::from_secs(1))
                .await,
        )
    }

    /// Each host's commands, in the order sent.
    async fn commands_out(&self) -> BTreeMap<String, Vec<CommandAction>> {
        let commands: Vec<scribe_schemas::Command> = decode(
            &self
                .kafka
                .read(&self.commands(), usize::MAX, Duration::from_secs(1))
                .await,
        );
        let mut by_host: BTreeMap<String, Vec<CommandAction>> = BTreeMap::new();
        for c in commands {
            by_host.entry(c.target).or_default().push(c.action);
        }
        by_host
    }

    /// Waits until every host has its RESUME (at most two minutes).
    async fn wait_for_resumes(&self, node: &mut Node) {
        for _ in 0..120 {
            let resumed = self
                .commands_out()
                .await
                .values()
                .filter(|actions| actions.contains(&CommandAction::Resume))
                .count();
            if resumed as i64 == HOSTS {
                return;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("the node exited ({status}) before every host was resumed");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("not every host resumed after two minutes");
    }

    /// Waits until every summary of the first `parts` parts is out,
    /// counting what open transactions wrote too, and (unless the
    /// aggregator's transactions hide them from it) the alarms they cause
    /// (at most two minutes, so a broken build cannot hang CI).
    async fn wait_for(&self, parts: i64, node: &mut Node, alarms_too: bool) {
        let wanted = expected_summaries(parts);
        for _ in 0..120 {
            let out = self.summaries_out(true).await;
            let ids: BTreeSet<SummaryId> = out.iter().map(|s| hosts::summary_of(s).0).collect();
            let alarms_done = !alarms_too || {
                let wanted = expected_alarms(&out);
                let got: BTreeSet<_> = self.alarms_out().await.iter().map(alarm_id).collect();
                wanted.is_subset(&got)
            };
            if wanted.keys().all(|k| ids.contains(k)) && alarms_done {
                return;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("the node exited ({status}) before part {parts} was summarised");
            }
        }
        panic!("part {parts} not summarised after two minutes");
    }
}

fn decode<T: scribe::Record>(records: &[RawRecord]) -> Vec<T> {
    let decoder = Decoder::<T>::new(SchemaRegistry::new()).expect("schema");
    records
        .iter()
        .map(|r| decoder.decode(&r.value).expect("decodes"))
        .collect()
}

fn alarm_id(a: &Alarm) -> (String, String, i64) {
    let state = match a.state {
        AlarmState::Raised => "RAISED",
        AlarmState::Cleared => "CLEARED",
    };
    (a.host.clone(), state.to_owned(), a.at_ms)
}

struct Node {
    child: Child,
    log: std::thread::JoinHandle<String>,
}

impl Node {
    /// SIGTERM: the node drains, commits and exits 0. Returns its log.
    fn drain(self) -> String {
        let drained = scribe_tests::terminate(self.child);
        let log = self.log.join().unwrap_or_default();
        assert!(drained, "the node drains on SIGTERM; its log:\n{log}");
        log
    }

    /// SIGKILL: nothing more is committed.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        let _ = self.log.join();
    }
}

async fn drained_killed_and_restarted(delivery: &'static str) {
    let run = Run::new(delivery).await;
    let exactly_once = delivery == "exactly-once";

    run.produce(0);
    let mut first = run.start("500ms");
    run.wait_for(1, &mut first, true).await;
    first.drain();

    run.produce(1);
    let mut second = run.start("1h");
    // Exactly once, the alarm cannot read what the aggregator's open
    // transaction wrote.
    run.wait_for(2, &mut second, !exactly_once).await;
    second.kill();
    let committed = run
        .kafka
        .committed(&format!("{}-aggregator", run.id), &run.metrics())
        .await;
    assert_eq!(
        committed,
        PART_S * HOSTS,
        "the killed run committed nothing of its own"
    );

    run.produce(2);
    let mut third = run.start("500ms");
    run.wait_for(PARTS, &mut third, true).await;
    run.wait_for_resumes(&mut third).await;
    let log = third.drain();

    let summaries = run.summaries_out(false).await;
    let expected = expected_summaries(PARTS);
    let got: Vec<(SummaryId, Figures)> = summaries.iter().map(hosts::summary_of).collect();
    let (received, lost, duplicates, wrong) = compare(&got, &expected);
    println!(
        "{delivery}: summaries expected={} received={received} lost={lost} \
         duplicates={duplicates} wrong={wrong}",
        expected.len()
    );
    let alarms = run.alarms_out().await;
    let expected_alarms: BTreeMap<_, ()> = expected_alarms(&summaries)
        .into_iter()
        .map(|a| (a, ()))
        .collect();
    let got_alarms: Vec<_> = alarms.iter().map(|a| (alarm_id(a), ())).collect();
    let (a_received, a_lost, a_duplicates, a_wrong) = compare(&got_alarms, &expected_alarms);
    let cleared = expected_alarms
        .keys()
        .filter(|(_, state, _)| state == "CLEARED")
        .count();
    println!(
        "{delivery}: alarms expected={} (cleared={cleared}) received={a_received} \
         lost={a_lost} duplicates={a_duplicates} wrong={a_wrong}",
        expected_alarms.len()
    );
    let commands = run.commands_out().await;
    let sent: usize = commands.values().map(Vec::len).sum();
    let mut command_duplicates = 0;
    let mut wrong_commands = 0;
    for actions in commands.values() {
        let mut distinct = actions.clone();
        distinct.dedup();
        command_duplicates += actions.len() - distinct.len();
        if distinct != [CommandAction::Throttle, CommandAction::Resume] {
            wrong_commands += 1;
        }
    }
    println!(
        "{delivery}: commands expected={} received={sent} duplicates={command_duplicates} \
         wrong={wrong_commands}",
        2 * HOSTS
    );
    assert_eq!(
        (lost, wrong),
        (0, 0),
        "every window whole; third log:\n{log}"
    );
    assert_eq!(
        (commands.len() as i64, wrong_commands),
        (HOSTS, 0),
        "each host throttled, then resumed: {commands:?}"
    );
    assert_eq!(expected.len() as i64, HOSTS * 18 * 3, "18 windows closed");
    assert_eq!(
        (a_lost, a_wrong),
        (0, 0),
        "every alarm raised before the crash is cleared after it"
    );
    assert_eq!(cleared as i64, HOSTS, "each host raised and cleared once");
    if exactly_once {
        assert_eq!(
            (duplicates, a_duplicates, command_duplicates),
            (0, 0, 0),
            "exactly once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_standard_actors_remember_across_a_sigkill() {
    drained_killed_and_restarted("at-least-once").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_standard_actors_remember_across_a_sigkill() {
    let kafka = TestKafka::from_env();
    if kafka.is_mock() {
        eprintln!(
            "exactly_once_standard_actors_remember_across_a_sigkill: runs on Apache Kafka \
             only (the embedded broker stores no transactional offsets); skipped here"
        );
        return;
    }
    drained_killed_and_restarted("exactly-once").await;
}
