//! Parity with failures: a relay whose handler errors on one record past
//! its retries (so it is dead-lettered) and panics once on another (so the
//! instance restarts), run on the simulator and on the broker of the pass
//! (the embedded mock cluster, or Apache Kafka), leaves the same records:
//! on its output, per key, the same records in the same order (first
//! occurrences: at-least-once may repeat some, differently on each); on its
//! dead-letter topic, the same dead letters with the same coordinates,
//! attempts and error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use scribe::sim::Simulation;
use scribe::{FailurePolicy, Node, NodeBuilder, TopicSpec};
use scribe_tests::actors::{Relay, RelayArgs, numbers_in, produce_numbers};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

const KEYS: usize = 3;
const SEQS: i64 = 20;
/// Fails every time: dead-lettered after its retries.
const FAILS: i64 = 7;
/// Panics the first time (one key only): the instance restarts.
const PANICS: i64 = 13;

struct Names {
    input: String,
    output: String,
    actor: String,
}

fn node(builder: NodeBuilder, names: &Names) -> Node {
    let args = RelayArgs {
        fail_at: Some((FAILS, u32::MAX)),
        panic_once_at: Some(PANICS),
        panicked: Arc::new(AtomicBool::new(false)),
        ..RelayArgs::reading(&names.input)
    };
    builder
        .topic(&names.input, TopicSpec::default())
        .actor::<Relay>(&names.actor, &names.output, args)
        .failure_policy(
            &names.actor,
            FailurePolicy {
                retries: 2,
                backoff: Duration::from_millis(20),
                ..FailurePolicy::default()
            },
        )
        .build()
        .expect("valid topology")
}

fn numbers() -> Vec<Number> {
    (0..SEQS)
        .flat_map(|seq| {
            (0..KEYS).map(move |k| Number {
                key: format!("k{k}"),
                seq,
            })
        })
        .collect()
}

/// Per key, the sequence numbers in the order they first appear.
fn firsts(numbers: impl IntoIterator<Item = Number>) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for n in numbers {
        let seqs = out.entry(n.key).or_default();
        if !seqs.contains(&n.seq) {
            seqs.push(n.seq);
        }
    }
    out
}

/// A dead letter: key, seq, original partition and offset, attempts, error.
type Letter = (String, i64, String, String, String, String);

#[actix::test]
async fn failures_and_dead_letters_leave_the_same_records_on_the_simulator_and_the_broker() {
    let names = Names {
        input: unique("in"),
        output: unique("out"),
        actor: unique("relay"),
    };
    let dead_letter_topic = format!("{}.dlq", names.output);
    let expected_letters = KEYS;
    let expected_outputs = KEYS * SEQS as usize - KEYS;

    // The simulator.
    let (sim_out, sim_letters, sim_counts) = std::thread::spawn({
        let names = Names {
            input: names.input.clone(),
            output: names.output.clone(),
            actor: names.actor.clone(),
        };
        let dead_letter_topic = dead_letter_topic.clone();
        move || {
            let mut sim = Simulation::builder(node(Node::builder("parity-failures"), &names))
                .seed(scribe::sim::seeds(1)[0])
                .build()
                .expect("starts");
            for number in numbers() {
                sim.inject(&names.input, number.key.clone(), &number)
                    .expect("injected");
            }
            sim.run_until_idle();
            sim.run_for(Duration::from_secs(5));
            sim.assert_invariants();
            let out = sim.records::<Number>(&names.output).expect("known topic");
            let letters: BTreeSet<Letter> = sim
                .records::<Number>(&dead_letter_topic)
                .expect("known topic")
                .into_iter()
                .map(|r| {
                    let h = |key: &str| {
                        String::from_utf8_lossy(r.headers().get(key).unwrap_or_default())
                            .into_owned()
                    };
                    (
                        r.key_str().unwrap_or_default().to_owned(),
                        r.value().seq,
                        h("scribe_dlq_partition"),
                        h("scribe_dlq_offset"),
                        h("scribe_dlq_attempts"),
                        h("scribe_dlq_error"),
                    )
                })
                .collect();
            let stats = sim.stats(&names.actor).expect("known actor");
            let counts = (out.len(), stats.restarts, stats.dead_lettered);
            (
                firsts(out.into_iter().map(|r| r.into_value())),
                letters,
                counts,
            )
        }
    })
    .join()
    .expect("simulation thread");

    // The broker.
    let kafka = TestKafka::from_env();
    kafka
        .create_topic(&names.input, TopicSpec::default().partitions)
        .await;
    let running = node(kafka.node("parity-failures"), &names)
        .start()
        .await
        .expect("node starts");
    produce_numbers(&kafka, &names.input, numbers());
    let mut broker_out = BTreeMap::new();
    let mut broker_letters = BTreeSet::new();
    let mut broker_records = 0;
    for _ in 0..60 {
        let out = kafka
            .read(&names.output, usize::MAX, Duration::from_millis(500))
            .await;
        broker_records = out.len();
        broker_out = firsts(numbers_in(&out));
        let dead = kafka
            .read(&dead_letter_topic, usize::MAX, Duration::from_millis(500))
            .await;
        broker_letters = dead
            .iter()
            .zip(numbers_in(&dead))
            .map(|(r, n)| {
                (
                    n.key,
                    n.seq,
                    r.header("scribe_dlq_partition").to_owned(),
                    r.header("scribe_dlq_offset").to_owned(),
                    r.header("scribe_dlq_attempts").to_owned(),
                    r.header("scribe_dlq_error").to_owned(),
                )
            })
            .collect();
        let outputs: usize = broker_out.values().map(Vec::len).sum();
        if outputs >= expected_outputs && broker_letters.len() >= expected_letters {
            break;
        }
    }
    let broker_stats = running.stats(&names.actor).expect("the relay's stats");
    running.shutdown().await.expect("clean shutdown");

    let (sim_records, sim_restarts, sim_dead) = sim_counts;
    println!(
        "sent={} simulator: records={sim_records} restarts={sim_restarts} dead_lettered={sim_dead}; \
         broker: records={broker_records} restarts={} dead_lettered={}",
        KEYS * SEQS as usize,
        broker_stats.restarts,
        broker_stats.dead_lettered
    );
    let expected: Vec<i64> = (0..SEQS).filter(|&s| s != FAILS).collect();
    for (key, seqs) in &sim_out {
        assert_eq!(seqs, &expected, "simulator, key {key}");
    }
    assert_eq!(sim_out.len(), KEYS);
    assert_eq!(sim_out, broker_out, "the same outputs, per key in order");
    assert_eq!(sim_letters.len(), expected_letters, "{sim_letters:?}");
    assert_eq!(
        sim_letters, broker_letters,
        "the same dead letters, with the same coordinates, attempts and error"
    );
    assert_eq!(
        sim_restarts, 1,
        "the panic restarted the simulated relay once"
    );
    assert_eq!(broker_stats.restarts, 1, "and the relay on the broker once");
}
