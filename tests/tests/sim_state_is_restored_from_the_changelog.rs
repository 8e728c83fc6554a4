//! A stateful actor in the simulator: its store's changes go to a
//! simulated changelog, and every crash, rebalance, redelivery, lost
//! acknowledgement and aborted transaction is met by a restore from it,
//! so that each number's tally is what an uninterrupted run gives.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use scribe::sim::{Faults, Simulation, seeds};
use scribe::{Delivery, Node};
use scribe_tests::actors::{Tally, TallyArgs, expected_tallies, keyed_numbers};
use scribe_tests::records::Tallied;

/// How many numbers each scenario sends, over how many keys.
const SENT: i64 = 600;
const KEYS: i64 = 7;
/// A commit interval longer than a part of the run: a crash or a
/// rebalance meets records handled and not committed.
const LONG_COMMIT: Duration = Duration::from_secs(2);

/// `in` (3 partitions) -> `tally` -> `out`, its store's changelog
/// `out.tallies.changelog`, committing every `commit`.
fn node(delivery: Delivery, commit: Duration) -> Node {
    scribe_tests::init_tracing();
    Node::builder("sim-state")
        .actor::<Tally>(
            "tally",
            "out",
            TallyArgs {
                input: "in".into(),
                also: Vec::new(),
            },
        )
        .delivery("tally", delivery)
        .commit_interval(commit)
        .build()
        .expect("valid topology")
}

/// What came out against an uninterrupted run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    received: usize,
    lost: usize,
    duplicates: usize,
    wrong: usize,
}

fn send(sim: &mut Simulation, seqs: std::ops::Range<i64>) {
    for number in keyed_numbers(seqs, KEYS) {
        sim.inject("in", number.key.clone(), &number)
            .expect("injected");
    }
}

fn counts(sim: &Simulation) -> Counts {
    let expected = expected_tallies(keyed_numbers(0..SENT, KEYS));
    let out: Vec<Tallied> = sim
        .records::<Tallied>("out")
        .expect("readable")
        .into_iter()
        .map(scribe::Inbound::into_value)
        .collect();
    let seen: BTreeSet<i64> = out.iter().map(|t| t.seq).collect();
    Counts {
        received: out.len(),
        lost: expected.keys().filter(|seq| !seen.contains(seq)).count(),
        duplicates: out.len() - seen.len(),
        wrong: out
            .iter()
            .filter(|t| expected.get(&t.seq) != Some(t))
            .count(),
    }
}

/// Sends the numbers to `sim` in 12 parts, a part per 350 ms of virtual
/// time (a commit interval and more), with `between` done after the
/// fourth and the eighth; prints and returns the counts.
fn run(
    sim: &mut Simulation,
    label: &str,
    mut between: impl FnMut(&mut Simulation, usize),
) -> Counts {
    const PARTS: i64 = 12;
    let per_part = SENT / PARTS;
    for part in 0..PARTS {
        send(sim, part * per_part..(part + 1) * per_part);
        sim.run_for(Duration::from_millis(350));
        match part {
            3 => between(sim, 0),
            7 => between(sim, 1),
            _ => {}
        }
    }
    sim.run_until_idle();
    let counts = counts(sim);
    let stats = sim.stats("tally").expect("known actor");
    println!(
        "{label} seed {}: sent={SENT} received={} lost={} duplicates={} wrong={} \
         restarts={} transactions={} aborted={} faults={:?}",
        sim.seed(),
        counts.received,
        counts.lost,
        counts.duplicates,
        counts.wrong,
        stats.restarts,
        stats.transactions,
        stats.transactions_aborted,
        sim.faults_injected(),
    );
    counts
}

#[test]
fn a_crashed_stateful_actor_restores_its_state_before_its_first_record() {
    for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
        for seed in seeds(4) {
            let mut sim = Simulation::builder(node(delivery, LONG_COMMIT))
                .seed(seed)
                .build()
                .expect("starts");
            let counts = run(&mut sim, &format!("crash {delivery:?}"), |sim, _| {
                sim.crash("tally").expect("known actor");
                sim.run_for(Duration::from_millis(100));
                sim.restart("tally").expect("restarts");
            });
            assert_eq!(counts.lost, 0, "{counts:?}");
            assert_eq!(counts.wrong, 0, "{counts:?}");
            match delivery {
                Delivery::ExactlyOnce => assert_eq!(counts.duplicates, 0, "{counts:?}"),
                // Handled again after the crash, each with the tally it
                // had: their first changes were dropped by the restore.
                _ => assert!(counts.duplicates > 0, "{counts:?}"),
            }
            // The changelog holds every key's last tally.
            let changelog = sim.raw("out.tallies.changelog").expect("a changelog");
            assert_eq!(changelog.len(), 3, "as many partitions as `in`");
            assert!(changelog.iter().map(Vec::len).sum::<usize>() >= SENT as usize);
            sim.assert_invariants();
        }
    }
}

#[test]
fn partitions_moving_between_instances_take_their_state_along() {
    for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
        for seed in seeds(4) {
            let mut sim = Simulation::builder(node(delivery, LONG_COMMIT))
                .seed(seed)
                .build()
                .expect("starts");
            let counts = run(
                &mut sim,
                &format!("rebalance {delivery:?}"),
                |sim, part| match part {
                    0 => sim.scale("tally", 2).expect("scales"),
                    _ => sim.rebalance("tally").expect("rebalances"),
                },
            );
            assert_eq!(counts.lost, 0, "{counts:?}");
            assert_eq!(counts.wrong, 0, "{counts:?}");
            if delivery == Delivery::ExactlyOnce {
                assert_eq!(counts.duplicates, 0, "{counts:?}");
            }
            sim.assert_invariants();
        }
    }
}

#[test]
fn state_stays_right_through_random_faults_in_both_delivery_modes() {
    let mut totals: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
        for seed in seeds(6) {
            let faults = Faults {
                crash: 0.02,
                redeliver: 0.03,
                lose_ack: 0.001,
                delay_ack: 0.05,
                fail_commit: 0.1,
                abort_txn: 0.1,
                ..Faults::default()
            };
            let mut sim = Simulation::builder(node(delivery, Duration::from_millis(300)))
                .seed(seed)
                .faults(faults)
                .build()
                .expect("starts");
            let counts = run(&mut sim, &format!("faults {delivery:?}"), |_, _| {});
            assert_eq!(counts.lost, 0, "{counts:?}");
            assert_eq!(counts.wrong, 0, "{counts:?}");
            if delivery == Delivery::ExactlyOnce {
                assert_eq!(counts.duplicates, 0, "{counts:?}");
            }
            let injected = sim.faults_injected();
            let total = totals.entry(format!("{delivery:?}")).or_default();
            total.0 += injected.crashes as usize + injected.redeliveries as usize;
            total.1 += injected.aborted_txns as usize;
            sim.assert_invariants();
        }
    }
    println!("faults injected (crashes+redeliveries, aborted transactions): {totals:?}");
    if scribe::sim::seeds(2).len() > 1 {
        // Over every seed, the faults were there to survive.
        assert!(totals.values().all(|(c, _)| *c > 0), "{totals:?}");
        assert!(totals["ExactlyOnce"].1 > 0, "{totals:?}");
    }
}

#[test]
fn an_aborted_transaction_leaves_no_trace_in_the_state() {
    for seed in seeds(4) {
        let mut sim = Simulation::builder(node(Delivery::ExactlyOnce, Duration::from_millis(300)))
            .seed(seed)
            .build()
            .expect("starts");
        let counts = run(&mut sim, "abort", |sim, _| {
            sim.abort_transaction("tally").expect("exactly-once");
        });
        let stats = sim.stats("tally").expect("known actor");
        assert_eq!(stats.transactions_aborted, 2, "{stats:?}");
        assert_eq!(
            counts,
            Counts {
                received: SENT as usize,
                ..Counts::default()
            }
        );
        sim.assert_invariants();
    }
}
