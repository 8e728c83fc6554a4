//! One topic carrying two record types (a `records!` set): each reader
//! takes the types it binds, by type or by name prefix, and passes over
//! the rest, counted; a reader that asks dead-letters them instead.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix::{Actor, Context, Handler};
use scribe::codec::{Decoder, Encoder};
use scribe::prelude::*;
use scribe::{SchemaRegistry, headers};
use scribe_examples::test_events::{
    self, AuditLine, Returned, RunTest, Runner, Score, Started, Topics,
};
use scribe_tests::{RawRecord, TestKafka, unique};

const RUNS: usize = 60;
const SUITES: [&str; 3] = ["parser", "codec", "network-failing"];

fn requests() -> Vec<RunTest> {
    (0..RUNS)
        .map(|i| RunTest {
            run: format!("run-{i:03}"),
            suite: SUITES[i % SUITES.len()].to_owned(),
        })
        .collect()
}

async fn send_requests(kafka: &TestKafka, topics: &Topics) {
    kafka.create_topic(&topics.requests, 3).await;
    let encoder = Encoder::<RunTest>::new().unwrap();
    let encoded: Vec<(String, Vec<u8>)> = requests()
        .into_iter()
        .map(|r| {
            let mut bytes = Vec::new();
            encoder.encode(&r, &mut bytes).unwrap();
            (r.run, bytes)
        })
        .collect();
    let raw: Vec<_> = encoded
        .iter()
        .map(|(key, bytes)| (Some(key.as_str()), bytes.clone(), vec![]))
        .collect();
    kafka.produce_raw(&topics.requests, &raw);
}

fn decode<T: scribe::Record>(records: &[RawRecord]) -> Vec<T> {
    let decoder = Decoder::<T>::new(SchemaRegistry::new()).unwrap();
    records
        .iter()
        .map(|r| decoder.decode(&r.value).expect("decodes"))
        .collect()
}

#[actix::test]
async fn each_reader_takes_the_types_it_binds_and_passes_over_the_rest() {
    let kafka = TestKafka::from_env();
    let topics = Topics::prefixed(&unique("several"));
    send_requests(&kafka, &topics).await;
    let node = test_events::system(kafka.node(&unique("test-events")), &topics)
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");

    let timeout = Duration::from_secs(60);
    let events = kafka.read(&topics.events, 2 * RUNS, timeout).await;
    let scores = kafka.read(&topics.scores, RUNS, timeout).await;
    let audit = kafka.read(&topics.audit, 2 * RUNS, timeout).await;
    // Counted once the last record it passed over is behind it.
    let skipped_all = TestKafka::eventually(timeout, || {
        node.stats("scoreboard")
            .is_some_and(|s| s.skipped == RUNS as u64)
    })
    .await;
    let scoreboard = node.stats("scoreboard").unwrap();
    let audited = node.stats("audit").unwrap();
    node.shutdown().await.expect("clean shutdown");

    // The runner's topic: each record says its type, and is that type's
    // own single-object encoding.
    let mut by_type: BTreeMap<&str, Vec<RawRecord>> = BTreeMap::new();
    for record in &events {
        by_type
            .entry(record.header(headers::CE_TYPE))
            .or_default()
            .push(record.clone());
    }
    let started: Vec<Started> = decode(&by_type["module.test.Started"]);
    let returned: Vec<Returned> = decode(&by_type["module.test.Returned"]);
    let runs = |names: Vec<&String>| names.into_iter().collect::<BTreeSet<_>>().len();
    println!(
        "sent {RUNS} requests; events {} (Started {}, Returned {}); scores {}; audit lines {}; \
         scoreboard handled {} skipped {} dead-lettered {}; audit handled {} skipped {}",
        events.len(),
        started.len(),
        returned.len(),
        scores.len(),
        audit.len(),
        scoreboard.handled,
        scoreboard.skipped,
        scoreboard.dead_lettered,
        audited.handled,
        audited.skipped,
    );
    assert_eq!(started.len(), RUNS, "one Started per request");
    assert_eq!(returned.len(), RUNS, "one Returned per request");
    assert_eq!(runs(started.iter().map(|s| &s.run).collect()), RUNS);
    assert_eq!(runs(returned.iter().map(|r| &r.run).collect()), RUNS);

    // The scoreboard took every Returned, once, and passed over every
    // Started on purpose: skipped, not dead-lettered.
    assert!(skipped_all, "the scoreboard skipped {}", scoreboard.skipped);
    assert_eq!(
        (
            scoreboard.handled,
            scoreboard.skipped,
            scoreboard.dead_lettered
        ),
        (RUNS as u64, RUNS as u64, 0)
    );
    let mut last: BTreeMap<String, Score> = BTreeMap::new();
    for score in decode::<Score>(&scores) {
        last.insert(score.suite.clone(), score);
    }
    for (i, suite) in SUITES.iter().enumerate() {
        let runs = (RUNS / SUITES.len()) as i64;
        let expected = if suite.ends_with("-failing") {
            (0, runs)
        } else {
            (runs, 0)
        };
        let score = &last[*suite];
        assert_eq!(
            (score.passed, score.failed),
            expected,
            "suite {i} `{suite}`: its last score counts every run once"
        );
    }

    // The audit took both types by their names' prefix, as JSON, and in
    // each run's order: Started before Returned.
    assert_eq!(
        (audited.handled, audited.skipped, audited.dead_lettered),
        ((2 * RUNS) as u64, 0, 0)
    );
    let lines = decode::<AuditLine>(&audit);
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in &lines {
        let fields: serde_json::Value = serde_json::from_str(&line.fields).unwrap();
        let run = fields["run"]
            .as_str()
            .expect("the run id, as JSON")
            .to_owned();
        order.entry(run).or_default().push(line.event.clone());
    }
    assert_eq!(order.len(), RUNS, "every run audited");
    for (run, events) in &order {
        assert_eq!(
            events,
            &["module.test.Started", "module.test.Returned"],
            "{run}: both events, once each, in order"
        );
    }
    let lost = 2 * RUNS - lines.len().min(2 * RUNS);
    let duplicates = lines.len().saturating_sub(2 * RUNS);
    println!("audit: lost {lost}, duplicates {duplicates}");
    assert_eq!((lost, duplicates), (0, 0));
}

/// Takes only `Started`, and dead-letters what it does not handle.
struct StartsOnly {
    out: Publisher<Started>,
}

impl Actor for StartsOnly {
    type Context = Context<Self>;
}

impl TopicActor for StartsOnly {
    type Output = Started;
    type Args = String;
    fn subscriptions(events: &String, subs: &mut Subscriptions<Self>) {
        subs.on::<Started>(events.as_str())
            .dead_letter_unhandled(events.as_str());
    }
    fn create(_: String, out: Publisher<Started>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<Started>> for StartsOnly {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Started>, _: &mut Context<Self>) -> Self::Result {
        let run = m.run.clone();
        self.out.publish(&run, m.into_value())?;
        Ok(())
    }
}

#[actix::test]
async fn a_reader_that_asks_dead_letters_the_types_it_does_not_handle() {
    let kafka = TestKafka::from_env();
    let topics = Topics::prefixed(&unique("strict"));
    send_requests(&kafka, &topics).await;
    let (runner, starts) = (unique("runner"), unique("starts-only"));
    let output = format!("{}.starts", topics.events);
    let node = kafka
        .node(&unique("strict"))
        .actor::<Runner>(&runner, topics.events.as_str(), topics.clone())
        .actor::<StartsOnly>(&starts, output.as_str(), topics.events.clone())
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let timeout = Duration::from_secs(60);
    let copied = kafka.read(&output, RUNS, timeout).await;
    let dead = kafka.read(&format!("{output}.dlq"), RUNS, timeout).await;
    let stats = node.stats(&starts).unwrap();
    node.shutdown().await.expect("clean shutdown");

    println!(
        "sent {RUNS} requests; copied {} Started; dead-lettered {} (stats: handled {}, \
         skipped {}, dead-lettered {})",
        copied.len(),
        dead.len(),
        stats.handled,
        stats.skipped,
        stats.dead_lettered
    );
    assert_eq!(decode::<Started>(&copied).len(), RUNS);
    assert_eq!(dead.len(), RUNS, "every Returned dead-lettered");
    for letter in &dead {
        assert_eq!(letter.header(headers::CE_TYPE), "module.test.Returned");
        assert!(
            letter
                .header(headers::DLQ_ERROR)
                .contains("no handler of the actor takes records of type `module.test.Returned`"),
            "the reason names the type: {}",
            letter.header(headers::DLQ_ERROR)
        );
    }
    assert_eq!(decode::<Returned>(&dead).len(), RUNS, "kept as they came");
    assert_eq!(stats.skipped, 0, "nothing passed over");
}

/// A gateway asks the runner, whose topic carries two types: the `Started`
/// the runner writes first for each request is passed over, and the
/// `Returned` is the reply.
#[actix::test]
async fn a_gateway_awaits_its_reply_type_among_the_responders_types() {
    let kafka = TestKafka::from_env();
    let topics = Topics::prefixed(&unique("asked"));
    let node = kafka
        .node(&unique("asked"))
        .actor::<Runner>(&unique("runner"), topics.events.as_str(), topics.clone())
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let gateway = node
        .gateway::<RunTest, Returned>(
            scribe::GatewayOptions::new("tests", &topics.requests, &topics.events)
                .timeout(Duration::from_secs(60)),
        )
        .await
        .expect("the runner writes Returned");
    let mut answers = Vec::new();
    for i in 0..10 {
        let run = format!("run-{i}");
        let suite = if i % 2 == 0 { "unit" } else { "net-failing" };
        let request = RunTest {
            run: run.clone(),
            suite: suite.into(),
        };
        answers.push((i, gateway.ask(&run, &request).await.expect("answered")));
    }
    let stats = gateway.stats();
    println!("asked 10 runs: {stats:?}");
    for (i, answer) in &answers {
        assert_eq!(answer.run, format!("run-{i}"));
        assert_eq!(answer.passed, i % 2 == 0);
    }
    assert_eq!((stats.answered, stats.undecodable), (10, 0));
    assert_eq!(stats.others, 10, "each Started passed over");
    gateway.close().await;
    node.shutdown().await.expect("clean shutdown");
}

/// The runner and the scoreboard on two nodes: the scoreboard's node knows
/// no `Started` schema, so it tells those records apart by their
/// `ce_type`, and still passes them over.
#[actix::test]
async fn a_reader_on_another_node_passes_over_types_it_does_not_know() {
    let kafka = TestKafka::from_env();
    let topics = Topics::prefixed(&unique("apart"));
    send_requests(&kafka, &topics).await;
    let runner = kafka
        .node(&unique("runner-node"))
        .actor::<Runner>(&unique("runner"), topics.events.as_str(), topics.clone())
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let scoreboard = unique("scoreboard");
    let scores = kafka
        .node(&unique("score-node"))
        .actor::<test_events::Scoreboard>(&scoreboard, topics.scores.as_str(), topics.clone())
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let timeout = Duration::from_secs(60);
    let written = kafka.read(&topics.scores, RUNS, timeout).await;
    let skipped_all = TestKafka::eventually(timeout, || {
        scores
            .stats(&scoreboard)
            .is_some_and(|s| s.skipped == RUNS as u64)
    })
    .await;
    let stats = scores.stats(&scoreboard).unwrap();
    scores.shutdown().await.expect("clean shutdown");
    runner.shutdown().await.expect("clean shutdown");
    println!(
        "two nodes: scores {}; scoreboard handled {} skipped {} dead-lettered {} undecodable {}",
        written.len(),
        stats.handled,
        stats.skipped,
        stats.dead_lettered,
        stats.undecodable
    );
    assert!(skipped_all, "skipped {}", stats.skipped);
    assert_eq!(decode::<Score>(&written).len(), RUNS);
    assert_eq!(
        (stats.handled, stats.skipped, stats.dead_lettered),
        (RUNS as u64, RUNS as u64, 0)
    );
}
