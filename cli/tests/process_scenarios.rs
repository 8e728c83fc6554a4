//! Node processes killed mid-stream: `scribe run` with a relay, SIGKILL,
//! and a restart or a second process sharing the group. Every input record
//! carries a sequence number; each scenario prints its counts (sent,
//! received, lost, duplicates) and asserts them.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::{Decoder, Encoder};
use scribe_schemas::MetricSummary;
use scribe_tests::{RawRecord, TestKafka, terminate, unique};

const KEYS: i64 = 12;

struct Scenario {
    kafka: TestKafka,
    input: String,
    output: String,
    sent: usize,
    /// The relay's `delivery`.
    delivery: &'static str,
}

impl Scenario {
    /// Topics with `partitions` partitions and `sent` records on the input.
    async fn new(partitions: i32, sent: usize) -> Self {
        let kafka = TestKafka::from_env();
        let id = unique("kill");
        let (input, output) = (format!("{id}.in"), format!("{id}.out"));
        kafka.create_topic(&input, partitions).await;
        kafka.create_topic(&output, partitions).await;
        // The mock cluster has no CreateTopics for the node's dead-letter topic.
        kafka.create_topic(&format!("{output}.dlq"), 1).await;
        let mut scenario = Self {
            kafka,
            input,
            output,
            sent: 0,
            delivery: "at-least-once",
        };
        scenario.produce(sent);
        scenario
    }

    /// Sends `count` more numbered records.
    fn produce(&mut self, count: usize) {
        let encoder = Encoder::<MetricSummary>::new().unwrap();
        let from = self.sent as i64;
        let encoded: Vec<(String, Vec<u8>)> = (from..from + count as i64)
            .map(|seq| {
                let host = format!("host-{}", seq % KEYS);
                let summary = MetricSummary {
                    host: host.clone(),
                    metric: "seq".into(),
                    window_start_ms: 0,
                    window_end_ms: 1,
                    count: seq,
                    min: 0.0,
                    max: 0.0,
                    mean: 0.0,
                    p95: 0.0,
                };
                let mut bytes = Vec::new();
                encoder.encode(&summary, &mut bytes).unwrap();
                (host, bytes)
            })
            .collect();
        let raw: Vec<_> = encoded
            .iter()
            .map(|(k, v)| (Some(k.as_str()), v.clone(), vec![]))
            .collect();
        self.kafka.produce_raw(&self.input, &raw);
        self.sent += count;
    }

    /// A config file for node `node` running the relay (one consumer group
    /// whatever the node).
    fn config(&self, node: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("{}-{node}.toml", self.input));
        let pattern = regex_escape(&self.input);
        std::fs::write(
            &path,
            format!(
                r#"
[node]
name = "{node}"
commit_interval = "200ms"

[kafka.consumer]
"session.timeout.ms" = "3000"
"heartbeat.interval.ms" = "300"

[[actors]]
name = "{input}-relay"
kind = "relay.metric-summary"
output = "{output}"
params = {{ pattern = "{pattern}$" }}
delivery = "{delivery}"
"#,
                input = self.input,
                output = self.output,
                delivery = self.delivery,
            ),
        )
        .unwrap();
        path
    }

    fn start(&self, node: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_scribe"))
            .args(["run", self.config(node).to_str().unwrap()])
            .env("SCRIBE__KAFKA__BOOTSTRAP_SERVERS", self.kafka.bootstrap())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("scribe starts")
    }

    async fn output(&self, at_least: usize, timeout: Duration) -> Vec<RawRecord> {
        self.kafka.read(&self.output, at_least, timeout).await
    }

    /// Waits until every sequence number is on the output, then counts.
    async fn count(&self) -> Counts {
        let mut out = Vec::new();
        for _ in 0..24 {
            out = self.output(usize::MAX, Duration::from_secs(5)).await;
            if distinct(&out).len() >= self.sent {
                break;
            }
        }
        let received = out.len();
        let firsts = first_occurrences(&out);
        let seen: usize = firsts.values().map(Vec::len).sum();
        let in_order = firsts
            .values()
            .all(|seqs| seqs.windows(2).all(|w| w[0] < w[1]));
        Counts {
            sent: self.sent,
            received,
            lost: self.sent - seen,
            duplicates: received - seen,
            in_order,
            sources: sources(&out),
        }
    }
}

#[derive(Debug)]
struct Counts {
    sent: usize,
    received: usize,
    lost: usize,
    duplicates: usize,
    in_order: bool,
    sources: BTreeMap<String, usize>,
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape = !c.is_ascii_alphanumeric() && c != '-' && c != '_';
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect::<String>()
        .replace('\\', "\\\\")
}

fn decode(out: &[RawRecord]) -> Vec<MetricSummary> {
    let decoder = Decoder::<MetricSummary>::new(SchemaRegistry::new()).unwrap();
    out.iter()
        .map(|r| decoder.decode(&r.value).unwrap())
        .collect()
}

fn distinct(out: &[RawRecord]) -> std::collections::HashSet<i64> {
    decode(out).into_iter().map(|s| s.count).collect()
}

/// Per key, the sequence numbers in output order, repeats set aside.
fn first_occurrences(out: &[RawRecord]) -> BTreeMap<String, Vec<i64>> {
    let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut by_partition: BTreeMap<i32, Vec<&RawRecord>> = BTreeMap::new();
    for r in out {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for records in by_partition.values() {
        let mut sorted = records.clone();
        sorted.sort_by_key(|r| r.offset);
        let owned: Vec<RawRecord> = sorted.into_iter().cloned().collect();
        for s in decode(&owned) {
            if seen.insert(s.count) {
                per_key.entry(s.host).or_default().push(s.count);
            }
        }
    }
    per_key
}

/// How many output records each node wrote (its `ce_source`).
fn sources(out: &[RawRecord]) -> BTreeMap<String, usize> {
    let mut sources = BTreeMap::new();
    for r in out {
        *sources.entry(r.header("ce_source").to_owned()).or_default() += 1;
    }
    sources
}

/// Output partitions that node-a wrote to and node-b then wrote records
/// sent after `after` to: partitions the survivor took over.
fn taken_over(out: &[RawRecord], after: i64) -> usize {
    let summaries = decode(out);
    let mut a_wrote = std::collections::BTreeSet::new();
    let mut b_wrote_late = std::collections::BTreeSet::new();
    for (r, s) in out.iter().zip(&summaries) {
        let source = r.header("ce_source");
        if source.starts_with("node-a/") {
            a_wrote.insert(r.partition);
        } else if source.starts_with("node-b/") && s.count >= after {
            b_wrote_late.insert(r.partition);
        }
    }
    a_wrote.intersection(&b_wrote_late).count()
}

fn kill(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_nothing_after_a_restart() {
    let s = Scenario::new(3, 20_000).await;
    let mut first = s.start("node");
    let before = s.output(500, Duration::from_secs(60)).await.len();
    kill(&mut first);
    let second = s.start("node");
    let counts = s.count().await;
    terminate(second);
    println!("sigkill then restart: killed after {before} outputs; {counts:?}");
    assert!(
        before >= 500 && before < s.sent,
        "killed mid-stream: {before}"
    );
    assert_eq!(counts.lost, 0, "{counts:?}");
    assert_eq!(
        counts.received,
        counts.sent + counts.duplicates,
        "{counts:?}"
    );
    assert!(counts.in_order, "per-key order kept: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_an_actor_and_the_survivor_takes_over_the_killed_ones_partitions() {
    let mut s = Scenario::new(6, 2_000).await;
    let mut a = s.start("node-a");
    let b = s.start("node-b");
    // Both in the group and working before one dies. Records keep coming
    // until both have written: node-a alone may drain a fixed preload
    // before node-b has joined, on a busy machine.
    let mut both = false;
    for _ in 0..120 {
        let out = s.output(usize::MAX, Duration::from_millis(500)).await;
        if sources(&out).len() == 2 {
            both = true;
            break;
        }
        s.produce(200);
    }
    let before_kill = s.sent as i64;
    kill(&mut a);
    // Records on every partition, node-a's former ones included.
    s.produce(10_000);
    let counts = s.count().await;
    terminate(b);
    println!("two nodes, one killed: {counts:?}");
    assert!(
        both,
        "both nodes handled records before the kill: {counts:?}"
    );
    assert_eq!(counts.lost, 0, "the survivor took over: {counts:?}");
    assert!(counts.in_order, "per-key order kept: {counts:?}");
    assert_eq!(
        counts.received,
        counts.sent + counts.duplicates,
        "{counts:?}"
    );
    assert_eq!(counts.sources.len(), 2, "{counts:?}");
    let out = s.output(usize::MAX, Duration::from_secs(5)).await;
    let taken = taken_over(&out, before_kill);
    println!("partitions taken over by the survivor: {taken}");
    assert!(
        taken > 0,
        "node-b wrote records sent after the kill to partitions node-a had: {counts:?}"
    );
}

/// On Apache Kafka only: the mock stores no transactional offsets, so a
/// restarted exactly-once instance there starts over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exactly_once_node_killed_mid_transaction_resumes_from_its_committed_offsets() {
    if scribe_tests::ApacheKafka::required("an_exactly_once_node_killed").is_none() {
        return;
    }
    let mut s = Scenario::new(3, 20_000).await;
    s.delivery = "exactly-once";
    let mut first = s.start("node");
    // Outputs show to a read_committed reader once their transaction commits.
    let before = s.output(500, Duration::from_secs(60)).await.len();
    kill(&mut first);
    // Same node, same transactional id: the new instance's registration
    // settles the killed one's open transaction before it goes on.
    let second = s.start("node");
    let counts = s.count().await;
    terminate(second);
    println!(
        "exactly-once, sigkill mid-transaction then restart: killed after {before} committed outputs; {counts:?}"
    );
    assert!(
        before >= 500 && before < s.sent,
        "killed mid-stream: {before}"
    );
    assert_eq!((counts.lost, counts.duplicates), (0, 0), "{counts:?}");
    assert!(counts.in_order, "per-key order kept: {counts:?}");
}

/// Duplicates are asserted on Apache Kafka only (see the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_two_nodes_loses_and_repeats_nothing() {
    let mut s = Scenario::new(6, 10_000).await;
    let a = s.start("node-a");
    let b = s.start("node-b");
    s.output(1_000, Duration::from_secs(60)).await;
    // SIGTERM drains and commits; the other node takes over meanwhile.
    assert!(terminate(a), "node-a drains and exits 0");
    s.produce(5_000);
    let a = s.start("node-a");
    s.output(12_000, Duration::from_secs(60)).await;
    assert!(terminate(b), "node-b drains and exits 0");
    s.produce(5_000);
    let b = s.start("node-b");
    let counts = s.count().await;
    assert!(terminate(a) && terminate(b), "both drain and exit 0");
    println!("rolling restart of two nodes: {counts:?}");
    assert_eq!(counts.lost, 0, "{counts:?}");
    assert!(counts.in_order, "per-key order kept: {counts:?}");
    // Each node, when a rebalance takes partitions from it, first commits
    // what it handled of them. Kafka takes that commit while the group
    // rebalances; the mock refuses it (RebalanceInProgress), so there the
    // next owner repeats what was handled since the last commit.
    if s.kafka.is_mock() {
        println!("visible only on the mock: {} duplicates", counts.duplicates);
    } else {
        assert_eq!(counts.duplicates, 0, "{counts:?}");
    }
}
