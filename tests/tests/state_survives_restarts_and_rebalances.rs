//! A stateful actor (the tests' `Tally`: a count and a sum per key, kept
//! in a store) stopped mid-stream and started again, dropped without a
//! drain, and joined by a second node that takes part of its partitions:
//! each number's tally is what an uninterrupted run gives, so the state
//! came back exactly as the committed input left it. Each scenario prints
//! sent, received, wrong and duplicates, and asserts them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use scribe::RunningNode;
use scribe_tests::actors::{
    Tally, TallyArgs, decode_tallied, expected_tallies, keyed_numbers, produce_numbers,
};
use scribe_tests::records::{Number, Tallied};
use scribe_tests::{RawRecord, TestKafka, unique};

const KEYS: i64 = 10;

struct Scenario {
    kafka: TestKafka,
    input: String,
    output: String,
    actor: String,
    numbers: Vec<Number>,
    sent: usize,
}

impl Scenario {
    async fn new(total: i64) -> Self {
        let kafka = TestKafka::from_env();
        let id = unique("tally");
        let (input, output) = (format!("{id}.in"), format!("{id}.out"));
        kafka.create_topic(&input, 4).await;
        Self {
            kafka,
            input,
            output,
            actor: format!("{id}-tally"),
            numbers: keyed_numbers(0..total, KEYS).collect(),
            sent: 0,
        }
    }

    /// Sends the next `count` numbers.
    fn produce(&mut self, count: usize) {
        let next = &self.numbers[self.sent..self.sent + count];
        produce_numbers(&self.kafka, &self.input, next.iter().cloned());
        self.sent += count;
    }

    async fn start(&self, node: &str) -> RunningNode {
        self.kafka
            .node(node)
            .actor::<Tally>(
                &self.actor,
                &self.output,
                TallyArgs {
                    input: self.input.clone(),
                    also: Vec::new(),
                },
            )
            .build()
            .expect("valid topology")
            .start()
            .await
            .expect("node starts")
    }

    async fn output(&self) -> Vec<RawRecord> {
        self.kafka
            .read(&self.output, usize::MAX, Duration::from_secs(1))
            .await
    }

    /// Waits until the output holds at least `count` distinct numbers.
    async fn wait_for(&self, count: usize) -> Vec<Tallied> {
        let mut tallied = Vec::new();
        for _ in 0..120 {
            tallied = decode_tallied(&self.output().await);
            let distinct: BTreeSet<i64> = tallied.iter().map(|t| t.seq).collect();
            if distinct.len() >= count {
                break;
            }
        }
        tallied
    }

    /// Checks every output against an uninterrupted run's.
    fn count(&self, tallied: &[Tallied]) -> Counts {
        let expected = expected_tallies(self.numbers[..self.sent].iter().cloned());
        let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
        let mut wrong = Vec::new();
        for t in tallied {
            *seen.entry(t.seq).or_default() += 1;
            if expected.get(&t.seq) != Some(t) {
                wrong.push((t.clone(), expected.get(&t.seq).cloned()));
            }
        }
        let counts = Counts {
            sent: self.sent,
            received: tallied.len(),
            lost: self.sent - seen.len(),
            duplicates: tallied.len() - seen.len(),
            wrong: wrong.len(),
        };
        println!(
            "sent={} received={} lost={} duplicates={} wrong={}",
            counts.sent, counts.received, counts.lost, counts.duplicates, counts.wrong
        );
        if let Some((got, want)) = wrong.first() {
            println!("first wrong: {got:?}, uninterrupted: {want:?}");
        }
        counts
    }
}

struct Counts {
    sent: usize,
    received: usize,
    lost: usize,
    duplicates: usize,
    wrong: usize,
}

#[actix::test]
async fn a_tally_stopped_and_started_again_goes_on_counting() {
    let mut s = Scenario::new(2000).await;
    s.produce(1000);
    let first = s.start("tally-a").await;
    s.wait_for(1000).await;
    first.shutdown().await.expect("drained");
    s.produce(1000);
    let second = s.start("tally-a").await;
    let tallied = s.wait_for(2000).await;
    second.shutdown().await.expect("drained");
    let counts = s.count(&tallied);
    assert_eq!(
        counts.received, counts.sent,
        "a drain commits what it handled"
    );
    assert_eq!((counts.lost, counts.duplicates, counts.wrong), (0, 0, 0));
}

#[actix::test]
async fn a_tally_dropped_mid_stream_restores_what_committed() {
    let mut s = Scenario::new(3000).await;
    s.produce(3000);
    let first = s.start("tally-b").await;
    // Mid-stream: some numbers handled, their offsets not all committed.
    assert!(
        TestKafka::eventually(Duration::from_secs(60), || first
            .stats(&s.actor)
            .is_some_and(|stats| stats.handled >= 500))
        .await,
        "the first node handles records"
    );
    drop(first);
    let second = s.start("tally-b").await;
    let tallied = s.wait_for(3000).await;
    second.shutdown().await.expect("drained");
    let counts = s.count(&tallied);
    assert_eq!((counts.lost, counts.wrong), (0, 0));
}

#[actix::test]
async fn a_second_node_takes_partitions_with_their_state() {
    let mut s = Scenario::new(4000).await;
    s.produce(2000);
    let first = s.start("tally-c1").await;
    s.wait_for(1000).await;
    let second = s.start("tally-c2").await;
    // Once the group has split the partitions, the rest follows: some of
    // it on partitions the first node held, with their state.
    let split = TestKafka::eventually(Duration::from_secs(60), || {
        let held = |node: &RunningNode| {
            node.stats(&s.actor)
                .map_or(0, |stats| stats.assigned_partitions)
        };
        held(&first) > 0 && held(&second) > 0 && held(&first) + held(&second) == 4
    })
    .await;
    assert!(split, "the group gives the second node partitions");
    s.produce(2000);
    let tallied = s.wait_for(4000).await;
    let handled_by_second = second.stats(&s.actor).map_or(0, |stats| stats.handled);
    first.shutdown().await.expect("drained");
    second.shutdown().await.expect("drained");
    let counts = s.count(&tallied);
    println!("handled by the second node: {handled_by_second}");
    assert!(handled_by_second > 0, "the second node took partitions");
    assert_eq!((counts.lost, counts.wrong), (0, 0));
}

/// Collects what is logged, for the test to read.
#[derive(Clone, Default)]
struct Logged(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logged {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix::test]
async fn exactly_once_state_is_warned_of_on_the_embedded_broker_only() {
    let s = Scenario::new(0).await;
    let logged = Logged::default();
    let writer = logged.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let node = {
        let _guard = tracing::subscriber::set_default(subscriber);
        s.kafka
            .node("tally-w")
            .actor::<Tally>(
                &s.actor,
                &s.output,
                TallyArgs {
                    input: s.input.clone(),
                    also: Vec::new(),
                },
            )
            .delivery(&s.actor, scribe::Delivery::ExactlyOnce)
            .build()
            .expect("valid topology")
            .start()
            .await
            .expect("node starts")
    };
    node.shutdown().await.expect("drained");
    let log = String::from_utf8(logged.0.lock().unwrap().clone()).unwrap();
    let warned = log
        .lines()
        .any(|l| l.contains("exactly-once state on the embedded broker") && l.contains(&s.actor));
    println!("embedded={} warned={warned}", s.kafka.is_mock());
    assert_eq!(warned, s.kafka.is_mock(), "{log}");
}
