//! Replaying an actor's dead letters: each goes back to the actor as the
//! record it was; what fails again is dead-lettered anew after the end (so
//! a replay ends); progress is committed, so the next replay starts after
//! the last one; in the end every record is handled exactly once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use scribe::{Delivery, FailurePolicy, Node, Replayed};
use scribe_tests::actors::{Relay, RelayArgs, keyed_numbers, numbers_in, produce_numbers};
use scribe_tests::{RawRecord, TestKafka, unique};

const RECORDS: i64 = 100;

struct Setup {
    kafka: TestKafka,
    input: String,
    output: String,
    dead_letters: String,
    actor: String,
    outage: Arc<AtomicI64>,
    delivery: Delivery,
}

/// Topics and `RECORDS` numbers on the input; every odd record fails
/// while the node runs.
async fn setup(kafka: TestKafka, delivery: Delivery) -> Setup {
    let (input, output, actor) = (unique("in"), unique("out"), unique("relay"));
    let dead_letters = format!("{output}.dlq");
    kafka.create_topic(&input, 1).await;
    kafka.create_topic(&output, 2).await;
    kafka.create_topic(&dead_letters, 2).await;
    produce_numbers(&kafka, &input, keyed_numbers(0..RECORDS, 4));
    Setup {
        kafka,
        input,
        output,
        dead_letters,
        actor,
        outage: Arc::new(AtomicI64::new(2)),
        delivery,
    }
}

impl Setup {
    /// The node holding the relay, as its config would build it.
    fn node(&self) -> Node {
        let args = RelayArgs {
            outage: self.outage.clone(),
            ..RelayArgs::reading(&self.input)
        };
        self.kafka
            .node("replay")
            .actor::<Relay>(&self.actor, &self.output, args)
            .failure_policy(
                &self.actor,
                FailurePolicy {
                    retries: 1,
                    backoff: Duration::from_millis(10),
                    ..FailurePolicy::default()
                },
            )
            .delivery(&self.actor, self.delivery)
            .build()
            .expect("valid topology")
    }

    /// Runs the node until every odd record is dead-lettered and every
    /// even one handled; returns the dead letters.
    async fn live_run(&self) -> Vec<RawRecord> {
        let running = self.node().start().await.expect("node starts");
        let dead = self
            .kafka
            .read(&self.dead_letters, 50, Duration::from_secs(30))
            .await;
        let handled = self.outputs(50).await;
        running.shutdown().await.expect("clean shutdown");
        println!(
            "live run: sent={RECORDS} handled={} dead_lettered={}",
            handled.len(),
            dead.len()
        );
        assert_eq!(dead.len(), 50, "every odd record dead-lettered");
        assert!(handled.keys().all(|seq| seq % 2 == 0) && handled.len() == 50);
        dead
    }

    /// Prints and returns (lost, duplicates) on the output.
    async fn counts(&self) -> (usize, usize) {
        let seen = self.outputs(RECORDS as usize).await;
        let lost = (0..RECORDS).filter(|seq| !seen.contains_key(seq)).count();
        let duplicates: usize = seen.values().map(|n| n - 1).sum();
        println!(
            "after replays: sent={RECORDS} received={} lost={lost} duplicates={duplicates}",
            seen.len()
        );
        (lost, duplicates)
    }

    async fn replay(&self) -> Replayed {
        let replayed = self
            .node()
            .replay_dead_letters(&self.actor)
            .await
            .expect("replay runs");
        println!("{replayed:?}");
        replayed
    }

    /// Every sequence number on the output, with how often it is there.
    async fn outputs(&self, expected: usize) -> BTreeMap<i64, usize> {
        let out = self
            .kafka
            .read(&self.output, expected, Duration::from_secs(20))
            .await;
        let mut seen = BTreeMap::new();
        for n in numbers_in(&out) {
            *seen.entry(n.seq).or_default() += 1;
        }
        seen
    }
}

#[actix::test]
async fn replayed_dead_letters_are_handled_or_dead_lettered_anew() {
    let kafka = TestKafka::from_env();
    let s = setup(kafka, Delivery::AtLeastOnce).await;
    let dead = s.live_run().await;
    let mut first_ends = BTreeMap::new();
    for letter in &dead {
        *first_ends.entry(letter.partition).or_insert(0) += 1;
    }

    // Half of what failed still fails: seq % 4 == 1.
    s.outage.store(4, Ordering::SeqCst);
    let first = s.replay().await;
    assert_eq!(
        (first.waiting, first.handled, first.dead_lettered),
        (50, 25, 25)
    );
    let dead = s
        .kafka
        .read(&s.dead_letters, 75, Duration::from_secs(20))
        .await;
    assert_eq!(dead.len(), 75);
    // The dead letters past each partition's end before the replay.
    let anew: Vec<_> = dead
        .iter()
        .filter(|r| r.offset >= first_ends.get(&r.partition).copied().unwrap_or(0))
        .collect();
    assert_eq!(anew.len(), 25, "the ones that failed again");
    for letter in &anew {
        let seq: i64 = letter.header("scribe_dlq_offset").parse().unwrap();
        // Dead-lettered anew as the record it was: its original
        // coordinates, key and value, the latest failure's error.
        assert_eq!(seq % 4, 1, "{letter:?}");
        assert_eq!(letter.header("scribe_dlq_topic"), s.input);
        assert_eq!(letter.header("scribe_dlq_partition"), "0");
        assert_eq!(letter.header("scribe_dlq_attempts"), "2");
        assert!(
            letter
                .header("scribe_dlq_error")
                .contains(&format!("dependency of seq {seq} is down")),
            "{letter:?}"
        );
        assert_eq!(letter.key_str(), format!("k{}", seq % 4));
        assert_eq!(numbers_in(&[(*letter).clone()])[0].seq, seq);
    }

    s.outage.store(0, Ordering::SeqCst);
    let second = s.replay().await;
    assert_eq!(
        (second.waiting, second.handled, second.dead_lettered),
        (25, 25, 0),
        "only what the last replay dead-lettered anew"
    );
    let third = s.replay().await;
    assert_eq!((third.waiting, third.handled), (0, 0), "nothing left");

    assert_eq!(s.counts().await, (0, 0));
    assert_eq!(
        s.kafka
            .committed(&format!("{}.dlq-replay", s.actor), &s.dead_letters)
            .await,
        75,
        "the replay group committed every dead letter it read"
    );
}

#[actix::test]
async fn replay_refuses_an_embedded_broker_and_an_unknown_actor() {
    let node = || {
        Node::builder("n")
            .actor::<Relay>("relay", "out", RelayArgs::reading("in"))
            .build()
            .unwrap()
    };
    let embedded = node().replay_dead_letters("relay").await.unwrap_err();
    assert!(
        embedded.to_string().contains("embedded"),
        "says why: {embedded}"
    );
    let unknown = node().replay_dead_letters("nobody").await.unwrap_err();
    assert_eq!(unknown.to_string(), "no actor named `nobody`");
}

#[actix::test]
async fn an_exactly_once_actor_replays_its_dead_letters_in_transactions() {
    let kafka = TestKafka::from_env();
    let s = setup(kafka, Delivery::ExactlyOnce).await;
    s.live_run().await;
    s.outage.store(0, Ordering::SeqCst);
    let replayed = s.replay().await;
    assert_eq!(
        (
            replayed.waiting,
            replayed.handled,
            replayed.dead_lettered,
            replayed.restarts
        ),
        (50, 50, 0, 0)
    );
    assert_eq!(s.counts().await, (0, 0));
}
