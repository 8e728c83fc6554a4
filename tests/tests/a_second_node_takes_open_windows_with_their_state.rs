//! The standard windowed aggregator on one node, joined mid-window by a
//! second node that takes part of its partitions: the windows the second
//! node takes over (opened on the first, restored from their changelog)
//! come out complete, under both delivery guarantees.
//!
//! Eight hosts over four partitions send a sample a second. The first
//! node handles the first 63 s (window [60 s, 70 s) open for every host,
//! three samples in); the second node joins and the group splits the
//! partitions; then the next 63 s are sent. Every window of the 126 s but
//! the last is summarised with every sample in it, once (exactly once) or
//! at least once. (Exactly once runs on Apache Kafka only: the embedded
//! broker stores no transactional offsets.) The aggregator's grace is an hour: windows close on
//! later samples only, so nothing depends on the wall clock.

use std::time::Duration;

use scribe::{Delivery, RunningNode, SchemaRegistry};
use scribe_actors::{WindowedAggregator, WindowedAggregatorArgs};
use scribe_schemas::MetricSummary;
use scribe_tests::hosts::{compare, expected_summaries, produce_samples, samples, summary_of};
use scribe_tests::{TestKafka, unique};

const PARTITIONS: i32 = 4;
const HOSTS: i64 = 8;
/// Seconds of samples sent before the second node joins, and after.
const PART_S: i64 = 63;

struct Scenario {
    kafka: TestKafka,
    metrics: String,
    summaries: String,
    actor: String,
    delivery: Delivery,
}

impl Scenario {
    async fn new(delivery: Delivery) -> Self {
        let kafka = TestKafka::from_env();
        let id = unique("takeover");
        let scenario = Self {
            metrics: format!("{id}.metrics"),
            summaries: format!("{id}.summary"),
            actor: format!("{id}-aggregator"),
            kafka,
            delivery,
        };
        scenario
            .kafka
            .create_topic(&scenario.metrics, PARTITIONS)
            .await;
        scenario
    }

    async fn start(&self, node: &str) -> RunningNode {
        let mut args = WindowedAggregatorArgs::reading(&self.metrics);
        args.grace = Some(Duration::from_secs(3600));
        self.kafka
            .node(node)
            .commit_interval(Duration::from_millis(200))
            .actor::<WindowedAggregator>(&self.actor, &self.summaries, args)
            .delivery(&self.actor, self.delivery)
            .build()
            .expect("valid topology")
            .start()
            .await
            .expect("node starts")
    }

    async fn summaries_out(&self) -> Vec<MetricSummary> {
        let decoder =
            scribe::codec::Decoder::<MetricSummary>::new(SchemaRegistry::new()).expect("schema");
        self.kafka
            .read(&self.summaries, usize::MAX, Duration::from_secs(1))
            .await
            .iter()
            .map(|r| decoder.decode(&r.value).expect("a summary"))
            .collect()
    }

    /// Waits until every window closed by the first `seconds` seconds is
    /// summarised (at most two minutes).
    async fn wait_for(&self, seconds: i64) -> Vec<MetricSummary> {
        let wanted = expected_summaries(HOSTS, seconds - 1);
        let mut out = Vec::new();
        for _ in 0..120 {
            out = self.summaries_out().await;
            let ids: std::collections::BTreeSet<_> = out.iter().map(|s| summary_of(s).0).collect();
            if wanted.keys().all(|k| ids.contains(k)) {
                break;
            }
        }
        out
    }
}

fn held(node: &RunningNode, actor: &str) -> u64 {
    node.stats(actor).map_or(0, |s| s.assigned_partitions)
}

async fn taken_over_mid_window(delivery: Delivery) {
    let s = Scenario::new(delivery).await;
    produce_samples(&s.kafka, &s.metrics, &samples(HOSTS, 0..PART_S));
    let first = s.start("takeover-1").await;
    // Every sample of the first part handled: window [60 s, 70 s) is open
    // on the first node for every host.
    let handled_all = TestKafka::eventually(Duration::from_secs(120), || {
        first
            .stats(&s.actor)
            .is_some_and(|stats| stats.handled >= (HOSTS * PART_S) as u64)
    })
    .await;
    assert!(handled_all, "the first node handles the first part");

    let second = s.start("takeover-2").await;
    let split = TestKafka::eventually(Duration::from_secs(60), || {
        let (a, b) = (held(&first, &s.actor), held(&second, &s.actor));
        a > 0 && b > 0 && a + b == PARTITIONS as u64
    })
    .await;
    assert!(split, "the group gives the second node partitions");
    let moved = held(&second, &s.actor);

    produce_samples(&s.kafka, &s.metrics, &samples(HOSTS, PART_S..2 * PART_S));
    let out = s.wait_for(2 * PART_S).await;
    let by_second = second.stats(&s.actor).map_or(0, |stats| stats.handled);
    first.shutdown().await.expect("drained");
    second.shutdown().await.expect("drained");

    let expected = expected_summaries(HOSTS, 2 * PART_S - 1);
    let got: Vec<_> = out.iter().map(summary_of).collect();
    let (received, lost, duplicates, wrong) = compare(&got, &expected);
    // The windows open when the second node joined, summarised after.
    let open_start = scribe_tests::hosts::BASE_MS + 60_000;
    let taken: Vec<_> = got
        .iter()
        .filter(|((_, _, start), _)| *start == open_start)
        .collect();
    let whole = taken
        .iter()
        .filter(|(id, figures)| expected.get(id) == Some(figures))
        .count();
    println!(
        "{delivery:?}: partitions moved={moved} handled by the second node={by_second} \
         summaries expected={} received={received} lost={lost} duplicates={duplicates} \
         wrong={wrong}; open at the join: summaries={} whole={whole}",
        expected.len(),
        taken.len()
    );
    for (id, figures) in got
        .iter()
        .filter(|(id, f)| expected.get(id) != Some(f))
        .take(3)
    {
        println!(
            "wrong: {id:?} {figures:?}, uninterrupted: {:?}",
            expected.get(id)
        );
    }
    assert!(by_second > 0, "the second node handled samples");
    assert_eq!((lost, wrong), (0, 0), "every window whole");
    assert_eq!(
        whole,
        taken.len(),
        "the windows open at the join came out whole"
    );
    assert_eq!(
        expected.len() as i64,
        HOSTS * 12 * 3,
        "12 windows closed per host"
    );
    if delivery == Delivery::ExactlyOnce {
        assert_eq!(duplicates, 0, "exactly once");
    }
}

#[actix::test]
async fn at_least_once_windows_taken_over_mid_window_come_out_whole() {
    taken_over_mid_window(Delivery::AtLeastOnce).await;
}

#[actix::test]
async fn exactly_once_windows_taken_over_mid_window_come_out_whole() {
    if TestKafka::from_env().is_mock() {
        eprintln!(
            "exactly_once_windows_taken_over_mid_window_come_out_whole: runs on Apache Kafka \
             only (the embedded broker stores no transactional offsets, so the second node \
             reads from the start); the simulator's rebalance covers it in this pass"
        );
        return;
    }
    taken_over_mid_window(Delivery::ExactlyOnce).await;
}
