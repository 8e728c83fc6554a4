//! Asking in the simulator, on the same code as on Kafka: an actor asks
//! its responder from inside its handler, and a gateway asks from outside;
//! the requests go through the simulated broker as any record, and the
//! replies come back through the simulated log. The responder crashes in
//! between. Every job ends with exactly one outcome (answered, or timed out
//! while the responder was down), every asking record commits, and a run is
//! the same for the same seed.

use std::time::Duration;

use scribe::prelude::*;
use scribe::sim::{Simulation, seeds};
use scribe::{Error, GatewayOptions, GatewayStats};
use scribe_tests::asking::{Asker, AskerArgs, Doubler, Probe};
use scribe_tests::records::{Doubled, Number};

/// How long the asker waits for a reply.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `jobs` -> `asker` (asks on `asks`) <-> `doubler` (answers on `answers`).
fn node(probe: &Probe) -> Node {
    let args = AskerArgs {
        jobs: "jobs".into(),
        answers: "answers".into(),
        options: |o| o.timeout(TIMEOUT),
        probe: probe.clone(),
    };
    Node::builder("sim-ask")
        .actor::<Asker>("asker", "asks", args)
        .actor::<Doubler>("doubler", "answers", ("asks".into(), None))
        .commit_interval(Duration::from_millis(200))
        .build()
        .expect("valid topology")
}

fn jobs(sim: &mut Simulation, seqs: std::ops::Range<i64>) {
    for seq in seqs {
        let key = format!("k{}", seq % 8);
        sim.inject(
            "jobs",
            &key,
            &Number {
                key: key.clone(),
                seq,
            },
        )
        .expect("injected");
    }
}

/// Each job's outcomes on the asker's topic: `(seq, value)`, in order.
fn outcomes(sim: &Simulation) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = sim
        .records_of::<Doubled>("asks")
        .expect("readable")
        .into_iter()
        .map(|r| (r.seq, r.value))
        .collect();
    out.sort_unstable();
    out
}

/// What one run of the scenario did.
#[derive(Debug, PartialEq)]
struct Run {
    outcomes: Vec<(i64, i64)>,
    requests: usize,
    committed: Vec<((String, i32), i64)>,
    stats: GatewayStats,
}

/// 40 jobs answered; 20 more while the responder is down for less than
/// the timeout, answered once it is back; 20 more while it is down for
/// longer, timed out.
fn scenario(seed: u64) -> Run {
    let probe = Probe::default();
    let mut sim = Simulation::builder(node(&probe))
        .seed(seed)
        .build()
        .expect("starts");
    jobs(&mut sim, 0..40);
    sim.run_until_idle();
    assert_eq!(outcomes(&sim).len(), 40, "seed {seed}: the first jobs");

    sim.crash("doubler").expect("known actor");
    jobs(&mut sim, 40..60);
    sim.run_for(TIMEOUT / 2);
    assert_eq!(
        outcomes(&sim).len(),
        40,
        "seed {seed}: no answer while down"
    );
    sim.restart("doubler").expect("known actor");
    sim.run_until_idle();
    assert_eq!(outcomes(&sim).len(), 60, "seed {seed}: answered once back");

    sim.crash("doubler").expect("known actor");
    jobs(&mut sim, 60..80);
    sim.run_for(TIMEOUT * 2);
    sim.restart("doubler").expect("known actor");
    sim.run_until_idle();
    sim.run_for(TIMEOUT);
    sim.assert_invariants();

    let requests = sim.records_of::<Number>("asks").expect("readable").len();
    let committed = sim
        .committed("asker")
        .expect("known actor")
        .into_iter()
        .collect();
    let stats = *probe.stats.lock().unwrap();
    Run {
        outcomes: outcomes(&sim),
        requests,
        committed,
        stats,
    }
}

#[test]
fn every_ask_has_one_outcome_across_a_responder_crash_and_runs_alike_from_a_seed() {
    for seed in seeds(4) {
        let run = scenario(seed);
        let answered = run.outcomes.iter().filter(|(s, v)| *v == s * 2).count();
        let timed_out = run.outcomes.iter().filter(|(_, v)| *v == -3).count();
        let seqs: Vec<i64> = run.outcomes.iter().map(|(s, _)| *s).collect();
        let mut distinct = seqs.clone();
        distinct.dedup();
        println!(
            "seed {seed}: jobs=80 requests={} outcomes={} answered={answered} timed_out={timed_out} \
             duplicates={} lost={} late={} others={}",
            run.requests,
            run.outcomes.len(),
            seqs.len() - distinct.len(),
            80 - distinct.len(),
            run.stats.late,
            run.stats.others,
        );
        assert_eq!(
            distinct,
            (0..80).collect::<Vec<_>>(),
            "seed {seed}: one outcome per job"
        );
        assert_eq!(seqs.len(), 80, "seed {seed}: no job has two outcomes");
        assert_eq!(answered + timed_out, 80, "seed {seed}: {:?}", run.outcomes);
        assert!(
            run.outcomes[..60].iter().all(|(s, v)| *v == s * 2),
            "seed {seed}: a crash shorter than the timeout loses no answer: {:?}",
            &run.outcomes[..60]
        );
        assert!(
            run.outcomes[60..].iter().all(|(_, v)| *v == -3),
            "seed {seed}: a crash longer than the timeout times every ask out: {:?}",
            &run.outcomes[60..]
        );
        let jobs_committed: i64 = run
            .committed
            .iter()
            .filter(|((topic, _), _)| topic == "jobs")
            .map(|(_, offset)| offset)
            .sum();
        assert_eq!(
            jobs_committed, 80,
            "seed {seed}: every asking record committed"
        );
        assert_eq!(run, scenario(seed), "seed {seed}: the same run again");
    }
}

#[test]
fn a_gateway_asks_in_the_simulator_and_times_out_while_the_responder_is_down() {
    for seed in seeds(4) {
        let probe = Probe::default();
        let mut sim = Simulation::builder(node(&probe))
            .seed(seed)
            .build()
            .expect("starts");
        // Refused as a running node refuses it: the asker owns `asks`.
        let refused = sim
            .gateway::<Number, Number>(GatewayOptions::new("ops", "asks", "answers"))
            .expect_err("a topic an actor writes is no gateway's");
        println!("seed {seed}: refused: {refused}");
        assert!(matches!(refused, Error::GatewayTopic { .. }), "{refused}");

        // A node whose doubler reads the gateway's topic, `questions`.
        let node = Node::builder("sim-gateway")
            .actor::<Doubler>("doubler", "answers", ("questions".into(), None))
            .commit_interval(Duration::from_millis(200))
            .build()
            .expect("valid topology");
        let mut sim = Simulation::builder(node)
            .seed(seed)
            .build()
            .expect("starts");
        let gateway = sim
            .gateway::<Number, Number>(
                GatewayOptions::new("ops", "questions", "answers").timeout(TIMEOUT),
            )
            .expect("the doubler answers on `answers`");
        let ask = |sim: &mut Simulation, seq: i64| {
            let key = format!("k{seq}");
            sim.ask(
                &gateway,
                &key,
                &Number {
                    key: key.clone(),
                    seq,
                },
            )
        };
        let before = sim.now();
        let first = ask(&mut sim, 1).expect("answered");
        assert_eq!(first.seq, 2);
        // Past a commit: the doubler will not handle the first request again.
        sim.run_for(Duration::from_secs(1));
        sim.crash("doubler").expect("known actor");
        let asked = sim.now();
        let down = ask(&mut sim, 2).expect_err("no answer while down");
        let waited = sim.now().duration_since(asked).unwrap();
        assert!(matches!(down, Error::AskTimedOut { .. }), "{down}");
        assert!(waited >= TIMEOUT, "waited {waited:?} of virtual time");
        sim.restart("doubler").expect("known actor");
        let again = ask(&mut sim, 3).expect("answered once back");
        assert_eq!(again.seq, 6);
        sim.run_until_idle();
        let stats = gateway.stats();
        println!(
            "seed {seed}: asked=3 sent={} answered={} timed_out={} late={} in {:?} of virtual time",
            stats.sent,
            stats.answered,
            stats.timed_out,
            stats.late,
            sim.now().duration_since(before).unwrap()
        );
        assert_eq!((stats.sent, stats.answered, stats.timed_out), (3, 2, 1));
        // The timed-out request is answered once the doubler is back: late.
        assert_eq!(stats.late, 1, "{stats:?}");
    }
}
