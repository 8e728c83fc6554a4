//! The test-events example under the simulator: a topic of two record
//! types, read by type and by name prefix, with the audit crashed halfway.

use std::collections::BTreeMap;
use std::time::Duration;

use scribe::Node;
use scribe::sim::{Simulation, seeds};
use scribe_examples::test_events::{self, AuditLine, Returned, RunTest, Score, Started, Topics};

const RUNS: usize = 40;

fn inject(sim: &mut Simulation, topics: &Topics, runs: std::ops::Range<usize>) {
    for i in runs {
        let request = RunTest {
            run: format!("run-{i:03}"),
            suite: if i % 4 == 0 { "net-failing" } else { "unit" }.into(),
        };
        sim.inject(&topics.requests, request.run.clone(), &request)
            .expect("injected");
    }
}

#[test]
fn each_reader_takes_its_types_across_a_crash_in_virtual_time() {
    let topics = Topics::default();
    for seed in seeds(6) {
        let node = test_events::system(Node::builder("tests"), &topics)
            .build()
            .expect("valid topology");
        let mut sim = Simulation::builder(node)
            .seed(seed)
            .build()
            .expect("starts");
        sim.create_topic(&topics.requests, 3).expect("created");
        inject(&mut sim, &topics, 0..RUNS / 2);
        // Past the commit interval: the first half is committed.
        sim.run_for(Duration::from_secs(10));
        inject(&mut sim, &topics, RUNS / 2..RUNS / 2 + 4);
        sim.run_until_idle();
        sim.crash("audit").expect("crashed");
        inject(&mut sim, &topics, RUNS / 2 + 4..RUNS);
        sim.run_until_idle();
        sim.restart("audit").expect("restarted");
        sim.run_until_idle();

        let started = sim.records_of::<Started>(&topics.events).unwrap();
        let returned = sim.records_of::<Returned>(&topics.events).unwrap();
        let scores = sim.records::<Score>(&topics.scores).unwrap();
        let audit = sim.records::<AuditLine>(&topics.audit).unwrap();
        let scoreboard = sim.stats("scoreboard").unwrap();
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for line in &audit {
            let fields: serde_json::Value = serde_json::from_str(&line.fields).unwrap();
            let run = fields["run"].as_str().unwrap().to_owned();
            *seen.entry((run, line.event.clone())).or_default() += 1;
        }
        let lost = 2 * RUNS - seen.len();
        let duplicates = audit.len() - seen.len();
        println!(
            "seed {seed}: sent {RUNS}; Started {}, Returned {}; scores {}; audit {} \
             (lost {lost}, duplicates {duplicates}); scoreboard handled {} skipped {}",
            started.len(),
            returned.len(),
            scores.len(),
            audit.len(),
            scoreboard.handled,
            scoreboard.skipped
        );
        assert_eq!((started.len(), returned.len()), (RUNS, RUNS), "seed {seed}");
        assert_eq!(scores.len(), RUNS, "seed {seed}: one score per Returned");
        assert_eq!(
            (scoreboard.handled, scoreboard.skipped),
            (RUNS as u64, RUNS as u64),
            "seed {seed}: every Started passed over"
        );
        let last = scores.last().unwrap();
        assert_eq!(lost, 0, "seed {seed}: every event audited");
        // At-least-once: what the crash left uncommitted (the 4 runs after
        // the commit, 8 events) may be audited again, never lost.
        assert!(
            duplicates <= 8,
            "seed {seed}: {duplicates} duplicates, at most what was uncommitted"
        );
        assert!(last.passed + last.failed > 0);
        sim.assert_invariants();
    }
}
