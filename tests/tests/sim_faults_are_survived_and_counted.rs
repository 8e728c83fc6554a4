//! The simulator's faults: duplicates, delays, rebalances, failing
//! handlers; and invariant checks that catch a broken actor.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use scribe::Node;
use scribe::prelude::*;
use scribe::sim::{Faults, Simulation, seeds};
use scribe_tests::actors::{Relay, RelayArgs};
use scribe_tests::records::Number;

mod sim_common;
use sim_common::{inject, seqs};

fn relay(args: RelayArgs) -> Node {
    Node::builder("sim-faults")
        .actor::<Relay>("relay", "out", args)
        .build()
        .expect("valid topology")
}

/// The sequence numbers the relay wrote under `key`, in order.
fn out_seqs(sim: &Simulation, key: &str) -> Vec<i64> {
    seqs(sim, "out", key)
}

#[test]
fn a_redelivered_partition_gives_allowed_duplicates_only() {
    for seed in seeds(4) {
        let mut sim = Simulation::builder(relay(RelayArgs::reading("in")))
            .seed(seed)
            .build()
            .expect("starts");
        let at = sim
            .inject(
                "in",
                "k",
                &Number {
                    key: "k".into(),
                    seq: 0,
                },
            )
            .expect("injected");
        for seq in 1..10 {
            sim.inject(
                "in",
                "k",
                &Number {
                    key: "k".into(),
                    seq,
                },
            )
            .expect("injected");
        }
        sim.run_until_idle();
        sim.redeliver("relay", "in", at.partition, 4)
            .expect("known partition");
        sim.run_until_idle();
        let seqs: Vec<i64> = out_seqs(&sim, "k");
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4, 5, 6, 7, 8, 9]);
        let report = &sim.check_invariants()[0];
        assert_eq!(
            (report.duplicates, report.allowed_duplicates),
            (6, 6),
            "{report}"
        );
        sim.assert_invariants();
    }
}

#[test]
fn a_delayed_partition_is_held_back_for_its_virtual_delay() {
    let mut sim = Simulation::builder(relay(RelayArgs::reading("in")))
        .seed(3)
        .build()
        .expect("starts");
    let at = sim
        .inject(
            "in",
            "k",
            &Number {
                key: "k".into(),
                seq: 0,
            },
        )
        .expect("injected");
    sim.delay_partition("in", at.partition, Duration::from_secs(30))
        .expect("known partition");
    sim.run_for(Duration::from_secs(29));
    sim.expect_count("out", 0);
    sim.run_until_idle();
    sim.expect_count("out", 1);
    assert_eq!(sim.elapsed(), Duration::from_secs(30));
    let out = &sim.records::<Number>("out").expect("readable")[0];
    assert_eq!(
        out.timestamp_ms(),
        Some(scribe::clock::millis_of(sim.now())),
        "records are stamped with the virtual time they were published at"
    );
}

#[test]
fn partitions_move_between_instances_without_loss_or_disorder() {
    for seed in seeds(4) {
        let mut sim = Simulation::builder(relay(RelayArgs::reading("in")))
            .seed(seed)
            .build()
            .expect("starts");
        assert_eq!(sim.assignment("relay").expect("known").len(), 1);
        sim.scale("relay", 2).expect("known");
        let assignment = sim.assignment("relay").expect("known");
        assert_eq!(assignment.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        inject(&mut sim, 9, 0..20);
        sim.run_for(Duration::from_millis(600));
        inject(&mut sim, 9, 20..40);
        sim.run_until_idle();
        sim.rebalance("relay").expect("known");
        let moved = sim.assignment("relay").expect("known");
        assert_ne!(moved, assignment, "every partition changed owner");
        inject(&mut sim, 9, 40..60);
        sim.run_until_idle();
        let report = &sim.check_invariants()[0];
        assert_eq!(report.inputs, 9 * 60);
        assert_eq!(
            report.duplicates,
            9 * 20,
            "what was handled since the last commit is redelivered: {report}"
        );
        sim.assert_invariants();
        sim.scale("relay", 1).expect("known");
        inject(&mut sim, 9, 60..61);
        sim.run_until_idle();
        sim.assert_invariants();
    }
}

#[test]
fn a_panicking_handler_restarts_after_its_backoff_and_gets_the_record_again() {
    let args = RelayArgs {
        panic_once_at: Some(5),
        panicked: Arc::new(AtomicBool::new(false)),
        ..RelayArgs::reading("in")
    };
    let mut sim = Simulation::builder(relay(args))
        .seed(5)
        .build()
        .expect("starts");
    for seq in 0..10 {
        sim.inject(
            "in",
            "k",
            &Number {
                key: "k".into(),
                seq,
            },
        )
        .expect("injected");
    }
    sim.run_until_idle();
    let seqs: Vec<i64> = out_seqs(&sim, "k");
    assert_eq!(
        seqs,
        (0..10).collect::<Vec<_>>(),
        "the failed record came again, in order"
    );
    let stats = sim.stats("relay").expect("known");
    assert_eq!(
        (stats.restarts, stats.handler_failures, stats.handled),
        (1, 1, 10)
    );
    assert_eq!(
        sim.elapsed(),
        Duration::from_millis(100),
        "the first backoff, in virtual time"
    );
    // The failure drained: 0..5 were committed before the restart.
    let committed = sim.committed("relay").expect("known");
    assert!(committed.values().any(|&o| o >= 5), "{committed:?}");
    sim.assert_invariants();
}

#[test]
fn undecodable_records_are_skipped_and_counted() {
    let mut sim = Simulation::builder(relay(RelayArgs::reading("in")))
        .seed(1)
        .build()
        .expect("starts");
    sim.inject_raw("in", Some(b"k"), b"not avro")
        .expect("injected");
    sim.inject(
        "in",
        "k",
        &Number {
            key: "k".into(),
            seq: 1,
        },
    )
    .expect("injected");
    sim.run_until_idle();
    sim.expect_count("out", 1);
    assert_eq!(sim.stats("relay").expect("known").undecodable, 1);
    sim.assert_invariants();
}

/// Holds each record back and forwards it after the next one: reorders.
struct Swapper {
    held: Option<Inbound<Number>>,
    out: Publisher<Number>,
}

impl Actor for Swapper {
    type Context = Context<Self>;
}

impl TopicActor for Swapper {
    type Output = Number;
    type Args = ();
    fn subscriptions(_: &(), subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Number>("in");
    }
    fn create(_: (), out: Publisher<Number>) -> Result<Self, ActorError> {
        Ok(Self { held: None, out })
    }
}

impl Handler<Inbound<Number>> for Swapper {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Number>, _: &mut Context<Self>) -> Self::Result {
        match self.held.take() {
            None => self.held = Some(m),
            Some(earlier) => {
                self.out.forward(&m)?;
                self.out.forward(&earlier)?;
            }
        }
        Ok(())
    }
}

#[test]
fn the_invariant_checks_catch_reordering_and_loss() {
    let node = Node::builder("sim-broken")
        .actor::<Swapper>("swapper", "out", ())
        .build()
        .expect("valid topology");
    let mut sim = Simulation::builder(node).seed(2).build().expect("starts");
    for seq in 0..4 {
        sim.inject(
            "in",
            "k",
            &Number {
                key: "k".into(),
                seq,
            },
        )
        .expect("injected");
    }
    sim.run_until_idle();
    let report = &sim.check_invariants()[0];
    assert!(!report.out_of_order.is_empty(), "{report}");
    assert!(
        report.violations().contains("published after"),
        "{}",
        report.violations()
    );

    // A crashed actor that never comes back leaves records unhandled.
    sim.crash("swapper").expect("known");
    sim.inject(
        "in",
        "k",
        &Number {
            key: "k".into(),
            seq: 4,
        },
    )
    .expect("injected");
    sim.run_until_idle();
    let report = &sim.check_invariants()[0];
    assert_eq!(report.unhandled.len(), 1, "{report}");
    let broken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.assert_invariants()))
        .expect_err("broken invariants fail the test");
    let message = broken.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("SCRIBE_SIM_SEED=2"), "{message}");
}

#[test]
fn two_simulations_on_one_thread_keep_their_own_clocks() {
    let mut first = Simulation::builder(relay(RelayArgs::reading("in")))
        .seed(1)
        .build()
        .expect("starts");
    let mut second = Simulation::builder(relay(RelayArgs::reading("in")))
        .seed(1)
        .build()
        .expect("starts");
    first.run_for(Duration::from_secs(10));
    second.run_for(Duration::from_secs(1));
    first
        .inject(
            "in",
            "k",
            &Number {
                key: "k".into(),
                seq: 0,
            },
        )
        .expect("injected");
    first.run_until_idle();
    let out = &first.records::<Number>("out").expect("readable")[0];
    assert_eq!(
        out.timestamp_ms(),
        Some(scribe::clock::millis_of(first.now())),
        "stamped with the first simulation's time"
    );
    assert_eq!(first.elapsed(), Duration::from_secs(10));
    assert_eq!(second.elapsed(), Duration::from_secs(1));
}

#[test]
fn the_failure_policy_retries_in_virtual_time_and_dead_letters() {
    let args = RelayArgs {
        fail_at: Some((3, 2)),
        panic_always_at: Some(6),
        ..RelayArgs::reading("in")
    };
    let node = Node::builder("sim-policy")
        .actor::<Relay>("relay", "out", args)
        .failure_policy(
            "relay",
            scribe::FailurePolicy {
                retries: 2,
                ..scribe::FailurePolicy::default()
            },
        )
        .build()
        .expect("valid topology");
    let mut sim = Simulation::builder(node).seed(4).build().expect("starts");
    for seq in 0..10 {
        sim.inject(
            "in",
            "k",
            &Number {
                key: "k".into(),
                seq,
            },
        )
        .expect("injected");
    }
    sim.inject_raw("in", Some(b"k"), b"not avro")
        .expect("injected");
    sim.run_until_idle();

    let seqs: Vec<i64> = out_seqs(&sim, "k");
    let expected: Vec<i64> = (0..10).filter(|&q| q != 6).collect();
    assert_eq!(
        seqs, expected,
        "3 succeeded on its third try; 6 was given up on"
    );
    let dead: Vec<Vec<u8>> = sim
        .raw("out.dlq")
        .expect("known")
        .into_iter()
        .flatten()
        .map(|(_, value)| value)
        .collect();
    assert_eq!(dead.len(), 2, "the panicking record and the garbage");
    let decoder = scribe::codec::Decoder::<Number>::new(scribe::SchemaRegistry::new()).unwrap();
    let letters: Vec<Option<i64>> = dead
        .iter()
        .map(|v| decoder.decode(v).ok().map(|n| n.seq))
        .collect();
    assert!(letters.contains(&Some(6)), "{letters:?}");
    assert!(
        dead.iter().any(|v| v == b"not avro"),
        "the undecodable record is dead-lettered too"
    );
    let stats = sim.stats("relay").expect("known");
    assert_eq!(
        (
            stats.retried,
            stats.restarts,
            stats.dead_lettered,
            stats.undecodable
        ),
        (2, 3, 2, 1),
        "{stats:?}"
    );
    // Two retries (100 ms, 200 ms) and three restarts (100, 200, 400 ms), in virtual time.
    assert_eq!(sim.elapsed(), Duration::from_millis(1000));
    sim.assert_invariants();
}

#[test]
fn a_lost_acknowledgement_keeps_its_records_offset_uncommitted_until_it_is_handled_again() {
    let mut sim = Simulation::builder(relay(RelayArgs::reading("in")))
        .seed(3)
        .build()
        .expect("starts");
    inject(&mut sim, 1, 0..10);
    let partition = sim.records::<Number>("in").expect("readable")[0].partition();
    // The output of record 4 (the fifth the relay publishes) is lost.
    sim.lose_ack("out", 4).expect("known topic");
    let committed = |sim: &Simulation| {
        sim.committed("relay")
            .expect("known")
            .get(&("in".to_owned(), partition))
            .copied()
            .unwrap_or(0)
    };
    let mut steps = 0;
    while sim.stats("relay").expect("known").restarts == 0 {
        sim.run_for(Duration::from_millis(10));
        assert!(
            committed(&sim) <= 4,
            "the offset after record 4 committed before it was handled again"
        );
        steps += 1;
        assert!(steps < 1000, "the relay never restarted");
    }
    sim.run_until_idle();
    let stats = sim.stats("relay").expect("known");
    let reports = sim.check_invariants();
    println!(
        "sent=10 published={} publish_failures={} restarts={} handled={} duplicates={} committed={}",
        stats.published,
        stats.publish_failures,
        stats.restarts,
        stats.handled,
        reports[0].duplicates,
        committed(&sim)
    );
    assert_eq!(stats.restarts, 1);
    assert!(stats.publish_failures >= 1, "{stats:?}");
    assert!(
        reports[0].duplicates >= 1,
        "record 4 was handled twice: {reports:?}"
    );
    // Nothing lost, nothing out of order, nothing written twice: what was
    // lost was never appended, and what was appended was not redone.
    let seqs: Vec<i64> = out_seqs(&sim, "k0");
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    // The next commit interval commits it all.
    sim.run_for(Duration::from_secs(10));
    assert_eq!(committed(&sim), 10);
    sim.assert_invariants();
}

#[test]
fn a_rebalance_takes_partitions_whose_outputs_are_still_in_flight_without_loss_or_disorder() {
    for seed in seeds(4) {
        let faults = Faults {
            // Every acknowledgement comes late, up to a second.
            delay_ack: 1.0,
            max_delay: Duration::from_secs(1),
            ..Faults::default()
        };
        let mut sim = Simulation::builder(relay(RelayArgs::reading("in")))
            .seed(seed)
            .faults(faults)
            .build()
            .expect("starts");
        sim.scale("relay", 2).expect("known");
        inject(&mut sim, 9, 0..20);
        // Records are handled at once; their outputs wait for the broker.
        sim.run_for(Duration::from_millis(50));
        let before = sim.stats("relay").expect("known");
        assert!(
            before.handled > before.published,
            "outputs in flight at the rebalance: {before:?}"
        );
        sim.rebalance("relay").expect("known");
        inject(&mut sim, 9, 20..40);
        sim.run_until_idle();
        sim.run_for(Duration::from_secs(5));
        let report = &sim.check_invariants()[0];
        let after = sim.stats("relay").expect("known");
        println!(
            "seed {seed}: sent={} in flight at the rebalance={} handled={} duplicates={} published={}",
            9 * 40,
            before.handled - before.published,
            after.handled,
            report.duplicates,
            after.published
        );
        for k in 0..9 {
            let mut firsts: Vec<i64> = Vec::new();
            for seq in out_seqs(&sim, &format!("k{k}")) {
                if !firsts.contains(&seq) {
                    firsts.push(seq);
                }
            }
            assert_eq!(firsts, (0..40).collect::<Vec<_>>(), "seed {seed}, key k{k}");
        }
        let committed: i64 = sim.committed("relay").expect("known").values().sum();
        assert_eq!(committed, 9 * 40, "every record committed in the end");
        sim.assert_invariants();
    }
}
