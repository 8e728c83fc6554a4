//! Exactly-once actors in the simulator: their outputs and input offsets
//! commit together in simulated transactions, and what an aborted
//! transaction wrote is never read downstream.

use std::time::Duration;

use scribe::sim::{Faults, Simulation, seeds};
use scribe::{Delivery, Node};
use scribe_tests::actors::{Relay, RelayArgs};
use scribe_tests::records::Number;

mod sim_common;
use sim_common::{inject, seqs};

/// `in` -> `relay` (exactly-once) -> `mid` -> `down` (at-least-once) ->
/// `out`.
fn chain(relay: RelayArgs) -> Node {
    Node::builder("sim-eos")
        .actor::<Relay>("relay", "mid", relay)
        .actor::<Relay>("down", "out", RelayArgs::reading("mid"))
        .delivery("relay", Delivery::ExactlyOnce)
        .commit_interval(Duration::from_millis(400))
        .build()
        .expect("valid topology")
}

#[test]
fn an_aborted_transactions_outputs_are_never_seen_downstream() {
    for seed in seeds(4) {
        let mut sim = Simulation::builder(chain(RelayArgs::reading("in")))
            .seed(seed)
            .build()
            .expect("starts");
        sim.abort_transaction("relay")
            .expect("the relay is exactly-once");
        inject(&mut sim, 1, 0..20);
        sim.run_until_idle();

        let relay = sim.stats("relay").expect("known actor");
        let down = sim.stats("down").expect("known actor");
        let mid = sim.records::<Number>("mid").expect("readable");
        // The aborted records took the first offsets of `mid`: the first
        // record a reader gets comes after them.
        let first_read = mid.first().map(|r| r.offset()).expect("records read");
        println!(
            "seed {seed}: sent=20 relay handled={} transactions={} aborted={} restarts={}; \
             mid read={} (first at offset {first_read}); down handled={} out={}",
            relay.handled,
            relay.transactions,
            relay.transactions_aborted,
            relay.restarts,
            mid.len(),
            down.handled,
            sim.record_count("out").expect("known topic"),
        );
        assert_eq!(sim.faults_injected().aborted_txns, 1);
        assert_eq!(relay.transactions_aborted, 1);
        assert_eq!(relay.restarts, 1, "the failed commit restarts the relay");
        assert!(
            relay.handled > 20,
            "the aborted records are handled again: {}",
            relay.handled
        );
        assert!(first_read > 0, "aborted records take offsets, unread");
        assert_eq!(seqs(&sim, "mid", "k0"), (0..20).collect::<Vec<_>>());
        assert_eq!(down.handled, 20, "downstream handles each record once");
        assert_eq!(seqs(&sim, "out", "k0"), (0..20).collect::<Vec<_>>());
        let committed: i64 = sim.committed("relay").expect("known actor").values().sum();
        assert_eq!(
            committed, 20,
            "the input offsets committed with the outputs"
        );
        sim.assert_invariants();
    }
}

#[test]
fn a_panic_inside_a_transaction_publishes_nothing_twice() {
    for seed in seeds(4) {
        let mut sim = Simulation::builder(chain(RelayArgs {
            panic_once_at: Some(7),
            ..RelayArgs::reading("in")
        }))
        .seed(seed)
        .build()
        .expect("starts");
        inject(&mut sim, 1, 0..15);
        sim.run_until_idle();
        let relay = sim.stats("relay").expect("known actor");
        println!(
            "seed {seed}: sent=15 relay handled={} aborted={} restarts={} mid={}",
            relay.handled,
            relay.transactions_aborted,
            relay.restarts,
            sim.record_count("mid").expect("known topic")
        );
        assert_eq!(relay.restarts, 1);
        assert_eq!(seqs(&sim, "mid", "k0"), (0..15).collect::<Vec<_>>());
        assert_eq!(seqs(&sim, "out", "k0"), (0..15).collect::<Vec<_>>());
        sim.assert_invariants();
    }
}

#[test]
fn exactly_once_holds_under_random_faults_and_rebalances() {
    let (keys, per_key) = (4, 60);
    let mut totals = (0, 0, 0, 0, 0);
    for seed in seeds(8) {
        let faults = Faults {
            crash: 0.01,
            delay: 0.02,
            lose_ack: 0.002,
            delay_ack: 0.05,
            fail_commit: 0.05,
            abort_txn: 0.1,
            max_delay: Duration::from_millis(300),
            ..Faults::default()
        };
        let mut sim = Simulation::builder(chain(RelayArgs::reading("in")))
            .seed(seed)
            .faults(faults)
            .max_batch(8)
            .build()
            .expect("starts");
        inject(&mut sim, keys, 0..per_key / 2);
        sim.run_for(Duration::from_millis(700));
        sim.scale("relay", 2).expect("known actor");
        inject(&mut sim, keys, per_key / 2..per_key);
        sim.run_for(Duration::from_millis(500));
        sim.rebalance("relay").expect("known actor");
        sim.run_until_idle();
        sim.run_for(Duration::from_secs(30));

        let injected = sim.faults_injected();
        let relay = sim.stats("relay").expect("known actor");
        let mut read = 0;
        for k in 0..keys {
            let key = format!("k{k}");
            let mid = seqs(&sim, "mid", &key);
            read += mid.len();
            assert_eq!(
                mid,
                (0..per_key).collect::<Vec<_>>(),
                "seed {seed}: key {key} reads each output once, in order"
            );
        }
        println!(
            "seed {seed}: sent={} relay handled={} transactions={} aborted={} restarts={} \
             mid read={read} lost=0 duplicates=0; faults: crashes={} lost_acks={} \
             delayed_acks={} failed_commits={} aborted_txns={}",
            keys as i64 * per_key,
            relay.handled,
            relay.transactions,
            relay.transactions_aborted,
            relay.restarts,
            injected.crashes,
            injected.lost_acks,
            injected.delayed_acks,
            injected.failed_commits,
            injected.aborted_txns,
        );
        assert_eq!(read as i64, keys as i64 * per_key);
        sim.assert_invariants();
        totals.0 += injected.aborted_txns;
        totals.1 += injected.crashes;
        totals.2 += injected.lost_acks;
        totals.3 += relay.transactions_aborted;
        totals.4 += relay.handled - (keys as u64 * per_key as u64);
    }
    println!(
        "over all seeds: aborted_txns={} crashes={} lost_acks={} transactions aborted={} \
         records handled again={}",
        totals.0, totals.1, totals.2, totals.3, totals.4
    );
    if seeds(8).len() == 8 {
        assert!(totals.0 > 0 && totals.3 > 0, "the faults hit transactions");
        assert!(totals.4 > 0, "aborted records were handled again");
    }
}

#[test]
fn dead_letters_of_an_exactly_once_actor_are_replayed_once_past_aborted_ones() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    for seed in seeds(4) {
        // While the dependency is down, seqs 1, 6, 11 and 16 fail and are
        // dead-lettered, inside the relay's transactions.
        let outage = Arc::new(AtomicI64::new(5));
        let node = Node::builder("sim-eos-replay")
            .actor::<Relay>(
                "relay",
                "mid",
                RelayArgs {
                    outage: outage.clone(),
                    ..RelayArgs::reading("in")
                },
            )
            .delivery("relay", Delivery::ExactlyOnce)
            .failure_policy(
                "relay",
                scribe::FailurePolicy {
                    retries: 1,
                    backoff: Duration::from_millis(10),
                    ..scribe::FailurePolicy::default()
                },
            )
            .build()
            .expect("valid topology");
        let mut sim = Simulation::builder(node)
            .seed(seed)
            .build()
            .expect("starts");
        // The first transaction, dead letters included, is aborted: they
        // are written again by the next one.
        sim.abort_transaction("relay").expect("exactly-once");
        inject(&mut sim, 1, 0..20);
        sim.run_until_idle();
        let letters = sim.record_count("mid.dlq").expect("known topic");
        assert_eq!(
            letters, 4,
            "seed {seed}: each failing record dead-lettered once"
        );
        let first_letter = sim.records::<Number>("mid.dlq").expect("readable")[0].offset();
        assert!(
            first_letter > 0,
            "seed {seed}: the aborted transaction's dead letters take offsets, unread"
        );

        outage.store(0, Ordering::SeqCst);
        let replayed = sim.replay_dead_letters("relay").expect("replays");
        sim.run_until_idle();
        let mid = seqs(&sim, "mid", "k0");
        println!(
            "seed {seed}: sent=20 dead letters={letters} (first at offset {first_letter}) \
             replay: waiting={} handled={} dead_lettered={} restarts={}; mid={}",
            replayed.waiting,
            replayed.handled,
            replayed.dead_lettered,
            replayed.restarts,
            mid.len()
        );
        assert_eq!(replayed.waiting, 4);
        assert_eq!(replayed.handled, 4);
        assert_eq!(replayed.dead_lettered, 0);
        let mut expected: Vec<i64> = (0..20).filter(|s| s % 5 != 1).collect();
        expected.extend([1, 6, 11, 16]);
        assert_eq!(
            mid, expected,
            "each record's output once: live, then replayed"
        );
        // A second replay starts after the first: nothing is left.
        let again = sim.replay_dead_letters("relay").expect("replays");
        assert_eq!((again.waiting, again.handled), (0, 0));
    }
}
