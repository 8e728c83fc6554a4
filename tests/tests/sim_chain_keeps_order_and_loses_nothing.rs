//! The simulator runs a chain of actors over its in-memory bus: every
//! record arrives, per key in order, whatever the seed, and faults cost
//! only the duplicates at-least-once allows.

use scribe::Node;
use scribe::sim::{FaultCounts, Faults, Simulation, seeds};
use scribe_tests::actors::{Relay, RelayArgs};
use scribe_tests::records::Number;

const KEYS: usize = 7;

/// `in` → a → `one` → b → `two` → c → `three`.
fn chain() -> Node {
    Node::builder("sim-chain")
        .actor::<Relay>("a", "one", RelayArgs::reading("in"))
        .actor::<Relay>("b", "two", RelayArgs::reading("one"))
        .actor::<Relay>("c", "three", RelayArgs::reading("two"))
        .build()
        .expect("valid topology")
}

fn key(k: usize) -> String {
    format!("key-{k}")
}

fn inject(sim: &mut Simulation, seqs: std::ops::Range<i64>) {
    for seq in seqs {
        for k in 0..KEYS {
            let number = Number { key: key(k), seq };
            sim.inject("in", key(k), &number).expect("injected");
        }
    }
}

fn expect_all_in_order(sim: &Simulation, topic: &str, count: i64) {
    for k in 0..KEYS {
        let expected: Vec<Number> = (0..count).map(|seq| Number { key: key(k), seq }).collect();
        sim.expect_values(topic, &key(k), &expected);
    }
}

#[test]
fn every_record_arrives_in_key_order_for_every_seed() {
    for seed in seeds(8) {
        let mut sim = Simulation::builder(chain())
            .seed(seed)
            .build()
            .expect("starts");
        inject(&mut sim, 0..50);
        sim.run_until_idle();
        expect_all_in_order(&sim, "three", 50);
        sim.assert_invariants();
        for report in sim.check_invariants() {
            assert_eq!(report.inputs, 50 * KEYS as u64, "{report}");
            assert_eq!(report.duplicates, 0, "no fault, no duplicate: {report}");
        }
        assert_eq!(sim.stats("c").expect("actor c").handled, 50 * KEYS as u64);
    }
}

#[test]
fn a_seed_reproduces_its_run_exactly_and_seeds_differ() {
    let run = |seed: u64| {
        let mut sim = Simulation::builder(chain())
            .seed(seed)
            .build()
            .expect("starts");
        inject(&mut sim, 0..20);
        sim.run_until_idle();
        sim.records::<Number>("three")
            .expect("readable")
            .into_iter()
            .map(|r| {
                let headers: Vec<(String, Vec<u8>)> = r
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_vec()))
                    .collect();
                (
                    r.partition(),
                    r.offset(),
                    r.timestamp_ms(),
                    r.key().map(<[u8]>::to_vec),
                    r.into_value(),
                    headers,
                )
            })
            .collect::<Vec<_>>()
    };
    let first = run(11);
    assert_eq!(
        first,
        run(11),
        "the same seed gives the same records, headers included"
    );
    let others: Vec<_> = (12..16).map(run).collect();
    assert!(
        others.iter().any(|o| o != &first),
        "different seeds interleave differently"
    );
}

#[test]
fn a_crashed_actor_gets_its_uncommitted_records_again_after_restart() {
    for seed in seeds(4) {
        let mut sim = Simulation::builder(chain())
            .seed(seed)
            .build()
            .expect("starts");
        inject(&mut sim, 0..10);
        // Past one commit interval: the first ten per key are committed.
        sim.run_for(std::time::Duration::from_secs(1));
        inject(&mut sim, 10..20);
        sim.run_until_idle();
        // Handled but not yet committed when b dies.
        sim.crash("b").expect("b exists");
        inject(&mut sim, 20..30);
        sim.run_until_idle();
        sim.expect_count("two", 20 * KEYS);
        sim.restart("b").expect("b exists");
        sim.run_until_idle();
        let reports = sim.check_invariants();
        let b = reports
            .iter()
            .find(|r| r.actor == "b")
            .expect("report of b");
        assert_eq!(
            b.duplicates,
            10 * KEYS as u64,
            "the uncommitted ten per key come again: {b}"
        );
        sim.assert_invariants();
        // Duplicates reach `two`, then `three`; each key stays in order
        // once repeats are set aside.
        for k in 0..KEYS {
            let mut firsts = Vec::new();
            for n in sim.values::<Number>("three", &key(k)).expect("readable") {
                if !firsts.contains(&n.seq) {
                    firsts.push(n.seq);
                }
            }
            assert_eq!(firsts, (0..30).collect::<Vec<_>>(), "key {k}");
        }
    }
}

#[test]
fn random_faults_from_the_seed_never_break_the_invariants_and_replay_exactly() {
    let faults = Faults {
        crash: 0.01,
        redeliver: 0.01,
        delay: 0.01,
        lose_ack: 0.002,
        delay_ack: 0.02,
        fail_commit: 0.05,
        ..Faults::default()
    };
    let run = |seed: u64| {
        let mut sim = Simulation::builder(chain())
            .seed(seed)
            .faults(faults)
            .build()
            .expect("starts");
        inject(&mut sim, 0..30);
        sim.run_for(std::time::Duration::from_secs(2));
        inject(&mut sim, 30..60);
        sim.run_until_idle();
        sim.assert_invariants();
        let three: Vec<(i32, i64, Number)> = sim
            .records::<Number>("three")
            .expect("readable")
            .into_iter()
            .map(|r| (r.partition(), r.offset(), r.into_value()))
            .collect();
        (sim, three)
    };
    let mut total = FaultCounts::default();
    for seed in seeds(8) {
        let (sim, three) = run(seed);
        let injected = sim.faults_injected();
        total.crashes += injected.crashes;
        total.redeliveries += injected.redeliveries;
        total.delays += injected.delays;
        total.lost_acks += injected.lost_acks;
        total.delayed_acks += injected.delayed_acks;
        total.failed_commits += injected.failed_commits;
        for k in 0..KEYS {
            let mut firsts = Vec::new();
            for n in three.iter().map(|(_, _, n)| n).filter(|n| n.key == key(k)) {
                if !firsts.contains(&n.seq) {
                    firsts.push(n.seq);
                }
            }
            assert_eq!(firsts, (0..60).collect::<Vec<_>>(), "seed {seed}, key {k}");
        }
        let (again, three_again) = run(seed);
        assert_eq!(three, three_again, "seed {seed} replays its faults exactly");
        assert_eq!(injected, again.faults_injected());
    }
    println!("faults injected over all seeds: {total:?}");
    assert!(
        total.crashes > 0 && total.redeliveries > 0 && total.delays > 0,
        "{total:?}"
    );
    assert!(
        total.lost_acks > 0 && total.delayed_acks > 0 && total.failed_commits > 0,
        "{total:?}"
    );
}
