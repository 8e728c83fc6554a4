//! Parity with failures, a rebalance and a replay: a relay whose handler
//! errors on one record past its retries, fails on others while a
//! dependency is down (both dead-lettered), and panics once (the instance
//! restarts), then gets a second instance in its group (a rebalance), and
//! finally, the dependency back, has its dead letters replayed. Run on the
//! simulator and on the broker of the pass (the embedded mock cluster, or
//! Apache Kafka), it leaves the same records: on its output, per key, the
//! same records in the same order (first occurrences: at-least-once may
//! repeat some, differently on each); on its dead-letter topic, the same
//! dead letters with the same coordinates, attempts and error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use scribe::sim::Simulation;
use scribe::{FailurePolicy, Node, NodeBuilder, Replayed, TopicSpec};
use scribe_tests::actors::{Relay, RelayArgs, numbers_in, produce_numbers};
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

const KEYS: usize = 3;
/// Sequence numbers per key, in each of the two phases.
const SEQS: i64 = 20;
/// Fails every time: dead-lettered after its retries, and again when
/// replayed.
const FAILS: i64 = 7;
/// Panics the first time (one key only): the instance restarts.
const PANICS: i64 = 13;
/// While the dependency is down, every seq `n` with `n % OUTAGE == 1`
/// fails (1 in the first phase, 26 in the second): dead-lettered, then
/// handled when replayed.
const OUTAGE: i64 = 25;

struct Names {
    input: String,
    output: String,
    actor: String,
}

/// What the relay's instances share wherever they run: whether the panic
/// happened, and whether the dependency is down.
#[derive(Default, Clone)]
struct Shared {
    panicked: Arc<AtomicBool>,
    outage: Arc<AtomicI64>,
}

impl Shared {
    fn new() -> Self {
        let shared = Self::default();
        shared.outage.store(OUTAGE, Ordering::SeqCst);
        shared
    }
}

fn node(builder: NodeBuilder, names: &Names, shared: &Shared) -> Node {
    let args = RelayArgs {
        fail_at: Some((FAILS, u32::MAX)),
        panic_once_at: Some(PANICS),
        panicked: shared.panicked.clone(),
        outage: shared.outage.clone(),
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

/// The numbers of one phase: seqs `phase * SEQS..(phase + 1) * SEQS` of
/// each key.
fn numbers(phase: i64) -> Vec<Number> {
    (phase * SEQS..(phase + 1) * SEQS)
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

/// What each key's output must be: both phases without what was
/// dead-lettered, then what the replay handled.
fn expected_outputs() -> Vec<i64> {
    let dead = |s: i64| s == FAILS || s % OUTAGE == 1;
    let mut seqs: Vec<i64> = (0..2 * SEQS).filter(|&s| !dead(s)).collect();
    seqs.extend((0..2 * SEQS).filter(|&s| s != FAILS && s % OUTAGE == 1));
    seqs
}

/// A dead letter: key, seq, original partition and offset, attempts, error.
type Letter = (String, i64, String, String, String, String);

/// What one run left: outputs per key, the distinct dead letters, records
/// on the output and on the dead-letter topic, and the replay's account.
struct Outcome {
    outputs: BTreeMap<String, Vec<i64>>,
    letters: BTreeSet<Letter>,
    records: usize,
    dead_records: usize,
    replayed: Replayed,
}

fn simulate(names: &Names, dead_letter_topic: &str) -> (Outcome, (u64, u64)) {
    let shared = Shared::new();
    let mut sim = Simulation::builder(node(Node::builder("parity-failures"), names, &shared))
        .seed(scribe::sim::seeds(1)[0])
        .build()
        .expect("starts");
    for number in numbers(0) {
        sim.inject(&names.input, number.key.clone(), &number)
            .expect("injected");
    }
    sim.run_until_idle();
    // A second instance joins the group: the partitions are spread anew.
    sim.scale(&names.actor, 2).expect("known actor");
    for number in numbers(1) {
        sim.inject(&names.input, number.key.clone(), &number)
            .expect("injected");
    }
    sim.run_until_idle();
    sim.run_for(Duration::from_secs(5));
    sim.assert_invariants();
    let stats = sim.stats(&names.actor).expect("known actor");
    // The dependency is back: the dead letters go round again.
    shared.outage.store(0, Ordering::SeqCst);
    let replayed = sim.replay_dead_letters(&names.actor).expect("replays");
    sim.run_until_idle();
    let out = sim.records::<Number>(&names.output).expect("known topic");
    let dead = sim
        .records::<Number>(dead_letter_topic)
        .expect("known topic");
    let letters = dead
        .iter()
        .map(|r| {
            let h = |key: &str| {
                String::from_utf8_lossy(r.headers().get(key).unwrap_or_default()).into_owned()
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
    let outcome = Outcome {
        records: out.len(),
        dead_records: dead.len(),
        outputs: firsts(out.into_iter().map(|r| r.into_value())),
        letters,
        replayed,
    };
    (outcome, (stats.restarts, stats.dead_lettered))
}

/// Reads the output and the dead-letter topic until `done` says they hold
/// what is awaited (or a minute of reads passed).
async fn read_until(
    kafka: &TestKafka,
    names: &Names,
    dead_letter_topic: &str,
    done: impl Fn(&BTreeMap<String, Vec<i64>>, &BTreeSet<Letter>, usize) -> bool,
) -> (BTreeMap<String, Vec<i64>>, BTreeSet<Letter>, usize, usize) {
    let mut state = Default::default();
    for _ in 0..60 {
        let out = kafka
            .read(&names.output, usize::MAX, Duration::from_millis(500))
            .await;
        let dead = kafka
            .read(dead_letter_topic, usize::MAX, Duration::from_millis(500))
            .await;
        let letters: BTreeSet<Letter> = dead
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
        state = (firsts(numbers_in(&out)), letters, out.len(), dead.len());
        if done(&state.0, &state.1, state.3) {
            break;
        }
    }
    state
}

#[actix::test]
async fn failures_dead_letters_a_rebalance_and_a_replay_leave_the_same_records_on_the_simulator_and_the_broker()
 {
    let names = Names {
        input: unique("in"),
        output: unique("out"),
        actor: unique("relay"),
    };
    let dead_letter_topic = format!("{}.dlq", names.output);
    // Per key: FAILS and 1 in the first phase, 26 in the second.
    let expected_letters = 3 * KEYS;

    // The simulator, on a thread of its own (it runs its own runtime).
    let (sim, (sim_restarts, sim_dead)) = std::thread::spawn({
        let names = Names {
            input: names.input.clone(),
            output: names.output.clone(),
            actor: names.actor.clone(),
        };
        let dead_letter_topic = dead_letter_topic.clone();
        move || simulate(&names, &dead_letter_topic)
    })
    .join()
    .expect("simulation thread");

    // The broker.
    let kafka = TestKafka::from_env();
    kafka
        .create_topic(&names.input, TopicSpec::default().partitions)
        .await;
    let shared = Shared::new();
    let first = node(kafka.node("parity-failures"), &names, &shared)
        .start()
        .await
        .expect("node starts");
    produce_numbers(&kafka, &names.input, numbers(0));
    let phase_one = (SEQS as usize - 2) * KEYS;
    read_until(&kafka, &names, &dead_letter_topic, |out, letters, _| {
        out.values().map(Vec::len).sum::<usize>() >= phase_one && letters.len() >= 2 * KEYS
    })
    .await;
    // A second node joins with the same actor: the group rebalances.
    let second = node(kafka.node("parity-failures-b"), &names, &shared)
        .start()
        .await
        .expect("second node starts");
    produce_numbers(&kafka, &names.input, numbers(1));
    let before_replay = phase_one + (SEQS as usize - 1) * KEYS;
    read_until(&kafka, &names, &dead_letter_topic, |out, letters, _| {
        out.values().map(Vec::len).sum::<usize>() >= before_replay
            && letters.len() >= expected_letters
    })
    .await;
    let broker_stats = [
        first.stats(&names.actor).expect("the relay's stats"),
        second.stats(&names.actor).expect("the relay's stats"),
    ];
    // The live nodes stop before the dependency comes back, so that what
    // the replay writes is all that follows (a rebalance may still hand
    // them records again, which fail as before).
    first.shutdown().await.expect("clean shutdown");
    second.shutdown().await.expect("clean shutdown");
    shared.outage.store(0, Ordering::SeqCst);
    let replayed = node(kafka.node("parity-failures-replay"), &names, &shared)
        .replay_dead_letters(&names.actor)
        .await
        .expect("replays");
    let all = expected_outputs().len() * KEYS;
    let (broker_out, broker_letters, broker_records, broker_dead) =
        read_until(&kafka, &names, &dead_letter_topic, |out, _, dead| {
            out.values().map(Vec::len).sum::<usize>() >= all
                && dead as u64 >= replayed.waiting + replayed.dead_lettered
        })
        .await;
    let broker_restarts: u64 = broker_stats.iter().map(|s| s.restarts).sum();
    let broker_dead_lettered: u64 = broker_stats.iter().map(|s| s.dead_lettered).sum();

    println!(
        "sent={} simulator: records={} restarts={sim_restarts} dead_lettered={sim_dead} \
         dead-letter records={} replay: waiting={} handled={} dead_lettered={}; \
         broker: records={broker_records} restarts={broker_restarts} \
         dead_lettered={broker_dead_lettered} dead-letter records={broker_dead} \
         replay: waiting={} handled={} dead_lettered={}",
        2 * KEYS * SEQS as usize,
        sim.records,
        sim.dead_records,
        sim.replayed.waiting,
        sim.replayed.handled,
        sim.replayed.dead_lettered,
        replayed.waiting,
        replayed.handled,
        replayed.dead_lettered,
    );
    for (key, seqs) in &sim.outputs {
        assert_eq!(seqs, &expected_outputs(), "simulator, key {key}");
    }
    assert_eq!(sim.outputs.len(), KEYS);
    assert_eq!(
        sim.outputs, broker_out,
        "the same outputs, per key in order"
    );
    assert_eq!(sim.letters.len(), expected_letters, "{:?}", sim.letters);
    assert_eq!(
        sim.letters, broker_letters,
        "the same dead letters, with the same coordinates, attempts and error"
    );
    // The simulator's replay, exactly: each dead letter read once, those
    // of the outage handled, FAILS dead-lettered anew after the end.
    assert_eq!(sim.replayed.waiting, expected_letters as u64);
    assert_eq!(sim.replayed.dead_lettered, KEYS as u64);
    assert_eq!(sim.replayed.restarts, 0);
    assert_eq!(sim.dead_records, expected_letters + KEYS);
    // The broker's, at least as much (a rebalance may repeat a record,
    // and with it a dead letter).
    assert!(replayed.waiting >= expected_letters as u64, "{replayed:?}");
    assert!(replayed.dead_lettered >= KEYS as u64, "{replayed:?}");
    assert_eq!(
        sim_restarts, 1,
        "the panic restarted the simulated relay once"
    );
    assert_eq!(broker_restarts, 1, "and the relay on the broker once");
}
