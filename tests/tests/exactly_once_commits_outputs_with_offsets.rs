//! `delivery = "exactly-once"`: outputs and input offsets commit in one
//! transaction; a commit whose outcome is unknown is retried, never
//! aborted; a handler that fails after publishing aborts the transaction
//! and its record is handled again by a fresh instance.
//!
//! On Apache Kafka a `read_committed` reader sees each output once, and
//! each test asserts 0 duplicates. The embedded mock stores no
//! transactional offsets and writes no abort markers, so there the
//! duplicates are printed, not asserted (docs/semantics.md).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use scribe::{Delivery, RunningNode};
use scribe_tests::actors::{Hook, Relay, RelayArgs, keyed_numbers, numbers_in, produce_numbers};
use scribe_tests::{TestKafka, unique};

struct Setup {
    kafka: TestKafka,
    input: String,
    output: String,
    actor: String,
    sent: i64,
}

async fn setup(kafka: TestKafka, sent: i64) -> Setup {
    let (input, output, actor) = (unique("in"), unique("out"), unique("eos"));
    kafka.create_topic(&input, 3).await;
    produce_numbers(&kafka, &input, keyed_numbers(0..sent, 10));
    Setup {
        kafka,
        input,
        output,
        actor,
        sent,
    }
}

impl Setup {
    async fn start(&self, args: RelayArgs) -> RunningNode {
        self.kafka
            .node("eos")
            .actor::<Relay>(&self.actor, &self.output, args)
            .delivery(&self.actor, Delivery::ExactlyOnce)
            .build()
            .expect("valid topology")
            .start()
            .await
            .expect("node starts")
    }

    /// Reads the output until every input is there; prints and returns
    /// (lost, duplicates), checking per-key order on the way.
    async fn counts(&self) -> (usize, usize) {
        let mut seen = BTreeMap::new();
        for _ in 0..60 {
            let out = self
                .kafka
                .read(&self.output, usize::MAX, Duration::from_secs(2))
                .await;
            seen.clear();
            let mut last: BTreeMap<String, i64> = BTreeMap::new();
            for n in numbers_in(&out) {
                if let Some(before) = last.insert(n.key.clone(), n.seq) {
                    assert!(before < n.seq || seen.contains_key(&n.seq), "key order");
                }
                *seen.entry(n.seq).or_insert(0usize) += 1;
            }
            if seen.len() as i64 == self.sent {
                break;
            }
        }
        let lost = (0..self.sent).filter(|s| !seen.contains_key(s)).count();
        let duplicates = seen.values().map(|n| n - 1).sum();
        println!(
            "sent={} received={} lost={lost} duplicates={duplicates}",
            self.sent,
            seen.len()
        );
        (lost, duplicates)
    }
}

#[actix::test]
async fn outputs_and_input_offsets_commit_in_one_transaction() {
    let kafka = TestKafka::from_env();
    let s = setup(kafka, 3000).await;
    let node = s.start(RelayArgs::reading(&s.input)).await;
    assert_eq!(s.counts().await, (0, 0));
    let stats = node.stats(&s.actor).unwrap();
    node.shutdown().await.expect("clean shutdown");
    println!(
        "transactions={} handled={} restarts={}",
        stats.transactions, stats.handled, stats.restarts
    );
    assert_eq!((stats.handled, stats.restarts), (3000, 0));
    // Batched: one transaction per commit interval, not one per record.
    assert!(
        (1..100).contains(&stats.transactions),
        "{} transactions",
        stats.transactions
    );
    // The input offsets go to each transaction (TxnOffsetCommit); the mock
    // answers those requests but stores nothing, so where a restarted
    // instance resumes cannot be checked here (docs/semantics.md).
}

#[actix::test]
async fn a_commit_whose_outcome_is_unknown_is_retried_not_aborted() {
    let Some(kafka) = TestKafka::embedded_only(
        "a_commit_whose_outcome_is_unknown",
        "a handler takes the embedded broker down mid-transaction",
    ) else {
        return;
    };
    let broker = kafka.embedded_broker().expect("embedded").clone();
    let s = setup(kafka, 300).await;
    // Handling record 150 takes the only broker down for 2 s: the open
    // transaction's commit cannot reach it, and its outcome is unknown
    // each time the actor's 500 ms wait ends.
    let args = RelayArgs {
        hook: Hook::at(150, move || {
            broker.broker_down(1).expect("broker down");
            let broker = broker.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                broker.broker_up(1).expect("broker up");
            });
        }),
        ..RelayArgs::reading(&s.input)
    };
    let node = s
        .kafka
        .node("eos")
        .actor::<Relay>(&s.actor, &s.output, args)
        .delivery(&s.actor, Delivery::ExactlyOnce)
        .transaction_timeout(Duration::from_millis(500))
        // The group outlives the outage: no rebalance (whose rewind would
        // abort a later transaction) muddles what is measured here.
        .consumer_property("session.timeout.ms", "10000")
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");
    let counts = s.counts().await;
    // The mock shows records of open transactions to read_committed
    // readers too: wait for the commit itself.
    let mut stats = node.stats(&s.actor).unwrap();
    for _ in 0..120 {
        if stats.transactions > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        stats = node.stats(&s.actor).unwrap();
    }
    node.shutdown().await.expect("clean shutdown");
    println!(
        "transactions={} commit_retries={} aborted={} restarts={} handled={}",
        stats.transactions,
        stats.commit_retries,
        stats.transactions_aborted,
        stats.restarts,
        stats.handled
    );
    assert_eq!(counts, (0, 0));
    assert!(stats.commit_retries > 0, "some outcome was unknown");
    assert_eq!(
        (stats.transactions_aborted, stats.restarts),
        (0, 0),
        "never aborted, never restarted"
    );
    assert_eq!(stats.handled, 300, "each record handled once");
}

#[actix::test]
async fn a_handler_failing_after_publishing_aborts_and_is_tried_again() {
    let kafka = TestKafka::from_env();
    let s = setup(kafka, 300).await;
    let args = RelayArgs {
        fail_after_publishing_at: Some(150),
        ..RelayArgs::reading(&s.input)
    };
    let failures = args.failures.clone();
    let node = s.start(args).await;
    let (lost, duplicates) = s.counts().await;
    let stats = node.stats(&s.actor).unwrap();
    node.shutdown().await.expect("clean shutdown");
    println!(
        "calls_at_150={} restarts={} retried={}",
        failures.load(std::sync::atomic::Ordering::SeqCst),
        stats.restarts,
        stats.retried
    );
    assert_eq!(lost, 0);
    // Not retried in place, which would publish its output twice in one
    // transaction: aborted, and handled again by a new instance.
    assert_eq!((stats.restarts, stats.retried), (1, 0));
    // The new instance handles again what the aborted transaction held.
    // On Kafka a read_committed reader sees each output once. On the mock
    // that shows as duplicates: it stores no transactional offsets (the new
    // instance starts over) and writes no abort markers.
    if s.kafka.is_mock() {
        println!("visible only on the mock: {duplicates} duplicates");
    } else {
        assert_eq!(
            duplicates, 0,
            "an aborted transaction's outputs are invisible"
        );
    }
}

#[actix::test]
async fn instances_sharing_the_group_rewind_on_rebalance_and_lose_nothing() {
    let kafka = TestKafka::from_env();
    let mut s = setup(kafka, 2000).await;
    // Busy: a transaction is open most of the time.
    let mut busy = RelayArgs {
        delay: Duration::from_millis(2),
        ..RelayArgs::reading(&s.input)
    };
    // On Kafka the first node, while its transaction holds records, waits
    // at record 300 until the broker says the group is rebalancing: the
    // second node's join lands on an open transaction, not by luck.
    let reached = Arc::new(AtomicBool::new(false));
    if !s.kafka.is_mock() {
        let (bootstrap, group, reached) = (
            s.kafka.bootstrap().to_owned(),
            s.actor.clone(),
            reached.clone(),
        );
        busy.hook = Hook::at(300, move || {
            if !reached.swap(true, Ordering::SeqCst) {
                await_group_state(&bootstrap, &group, "PreparingRebalance");
            }
        });
    }
    // And on every broker, no transaction commits for a long while: the
    // first node's transaction is still open whenever the join lands, on
    // a busy machine too (the default interval let the join fall between
    // two transactions there, and nothing was aborted).
    let start = |node: &str, args: RelayArgs| {
        s.kafka
            .node(node)
            .commit_interval(Duration::from_secs(20))
            .actor::<Relay>(&s.actor, &s.output, args)
            .delivery(&s.actor, Delivery::ExactlyOnce)
            .build()
            .expect("valid topology")
            .start()
    };
    let first = start("eos-a", busy.clone())
        .await
        .expect("first node starts");
    // On Kafka, until the first node holds record 300 (counting records
    // handled is not enough: they may all be of other partitions); on the
    // mock, until it is under way.
    let mock = s.kafka.is_mock();
    let under_way = TestKafka::eventually(Duration::from_secs(60), || {
        if mock {
            first.stats(&s.actor).unwrap().handled >= 300
        } else {
            reached.load(Ordering::SeqCst)
        }
    });
    assert!(under_way.await, "the first node handles records");
    // A second node with its own transactional id joins the actor's group:
    // the first is rebalanced while its transaction holds records. Only the
    // first node waits at record 300.
    let second = start(
        "eos-b",
        RelayArgs {
            hook: Hook::default(),
            ..busy.clone()
        },
    )
    .await
    .expect("second node starts");
    produce_numbers(&s.kafka, &s.input, keyed_numbers(2000..4000, 10));
    s.sent = 4000;
    let (lost, duplicates) = s.counts().await;
    let (a, b) = (
        first.stats(&s.actor).unwrap(),
        second.stats(&s.actor).unwrap(),
    );
    first.shutdown().await.expect("clean shutdown");
    second.shutdown().await.expect("clean shutdown");
    println!(
        "first: handled={} transactions={} aborted={} restarts={}; \
         second: handled={} transactions={} aborted={} restarts={}",
        a.handled,
        a.transactions,
        a.transactions_aborted,
        a.restarts,
        b.handled,
        b.transactions,
        b.transactions_aborted,
        b.restarts
    );
    assert_eq!(lost, 0);
    assert_eq!((a.restarts, b.restarts), (0, 0), "rewound, not restarted");
    assert!(b.handled > 0, "the second node took partitions");
    assert!(
        a.transactions_aborted > 0,
        "the first node's open transaction was aborted and rewound"
    );
    // What a rewind handles again repeats on the mock, which stores no
    // transactional offsets (the rewind goes back to the beginning) and
    // writes no abort markers; on Kafka nothing repeats.
    if s.kafka.is_mock() {
        println!("visible only on the mock: {duplicates} duplicates");
    } else {
        assert_eq!(duplicates, 0, "nothing is written twice");
    }
}

#[actix::test]
async fn a_second_instance_with_the_same_transactional_id_fences_the_first() {
    // The mock does not fence: Kafka's brokers do.
    let Some(_cluster) = scribe_tests::ApacheKafka::required("a_second_instance_fences") else {
        return;
    };
    let mut s = setup(TestKafka::from_env(), 2000).await;
    let busy = RelayArgs {
        delay: Duration::from_millis(2),
        ..RelayArgs::reading(&s.input)
    };
    // Same node name, same actor: the same transactional id, as when a
    // node thought dead (a zombie) still runs beside its replacement.
    let first = s.start(busy.clone()).await;
    for _ in 0..600 {
        if first.stats(&s.actor).unwrap().handled >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = s.start(busy).await;
    produce_numbers(&s.kafka, &s.input, keyed_numbers(2000..4000, 10));
    s.sent = 4000;
    let fenced = TestKafka::eventually(Duration::from_secs(60), || {
        first.stats(&s.actor).is_some_and(|st| st.unhealthy)
    })
    .await;
    let (lost, duplicates) = s.counts().await;
    let why = first.stopped_because(&s.actor).unwrap_or_default();
    let (a, b) = (
        first.stats(&s.actor).unwrap(),
        second.stats(&s.actor).unwrap(),
    );
    first.shutdown().await.ok();
    second.shutdown().await.expect("clean shutdown");
    println!(
        "zombie: handled={} unhealthy={} stopped because: {why}; replacement: handled={} unhealthy={}",
        a.handled, a.unhealthy, b.handled, b.unhealthy
    );
    assert!(fenced, "the fenced instance is reported unhealthy");
    assert!(why.contains("fenced"), "says it was fenced: {why}");
    assert!(!b.unhealthy, "the replacement runs on");
    assert_eq!(
        (lost, duplicates),
        (0, 0),
        "nothing lost, nothing written twice"
    );
}

/// Blocks until the broker reports `group` in `state` (60 s at most).
fn await_group_state(bootstrap: &str, group: &str, state: &str) {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let found = client
            .fetch_group_list(Some(group), Duration::from_secs(5))
            .is_ok_and(|list| list.groups().iter().any(|g| g.state() == state));
        if found {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("group `{group}` never reached state {state}");
}
