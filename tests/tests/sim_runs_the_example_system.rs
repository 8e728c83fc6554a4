//! The example system under the simulator: an hour in virtual time, and
//! crashes of each actor along the way.

use std::time::Duration;

use scribe::sim::{Simulation, seeds};
use scribe_cli::settings::NodeConfig;
use scribe_schemas::{Command, CommandAction, HostMetrics, JournalEntry, MetricSummary};

/// The example config, with the journal kept quiet.
fn example() -> scribe::Node {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/host-monitor.toml");
    let mut config = NodeConfig::load(file).expect("example config loads");
    for actor in config.actors.iter_mut().filter(|a| a.kind == "journal") {
        actor.params["print"] = false.into();
    }
    config
        .node(&scribe_cli::settings::Registry::standard())
        .expect("example config is valid")
}

#[test]
fn an_hour_of_the_example_config_passes_in_virtual_time() {
    let mut sim = Simulation::builder(example())
        .seed(1)
        .build()
        .expect("starts");
    let start = scribe::clock::millis_of(sim.now());
    sim.run_for(Duration::from_secs(3600));
    assert_eq!(sim.elapsed(), Duration::from_secs(3600));

    let samples = sim
        .records::<HostMetrics>("metrics.host")
        .expect("readable");
    assert_eq!(samples.len(), 3600, "one sample a virtual second");
    for (i, sample) in samples.iter().enumerate() {
        let at = start + 1000 * (i as i64 + 1);
        assert_eq!(
            sample.sampled_at_ms, at,
            "sample {i} read the virtual clock"
        );
        assert_eq!(
            sample.timestamp_ms(),
            Some(at),
            "sample {i} is stamped with it"
        );
    }
    // 5-second windows close when a later sample arrives: 720 closed
    // windows (the last one is still open), 3 metrics each.
    let summaries = sim
        .records::<MetricSummary>("metrics.summary")
        .expect("readable");
    assert_eq!(summaries.len(), 720 * 3);
    let journal = sim.record_count("journal.lines").expect("known");
    let alarms = sim.record_count("alarms.cpu").expect("known");
    let commands = sim.record_count("commands.host").expect("known");
    assert_eq!(journal, summaries.len() + alarms + commands);
    let lines = sim
        .records::<JournalEntry>("journal.lines")
        .expect("readable");
    assert!(
        lines
            .iter()
            .all(|l| l.at_ms >= start && l.at_ms <= start + 3_600_000)
    );
    sim.assert_invariants();
}

/// Samples `from..to` of `web-1`, one a second from `t0`: hot for the
/// first 20 s, then cool.
fn inject_hot_then_cool(sim: &mut Simulation, t0: i64, from: i64, to: i64) {
    for s in from..to {
        let sample = HostMetrics {
            host: "web-1".into(),
            cpu_percent: if s < 20 { 90.0 } else { 10.0 },
            mem_used_percent: 40.0,
            load1: 1.0,
            sampled_at_ms: t0 + s * 1000,
        };
        sim.inject("metrics.host", "web-1", &sample)
            .expect("injected");
    }
}

#[test]
fn the_example_survives_a_crash_of_each_actor() {
    for seed in seeds(4) {
        let mut sim = Simulation::builder(example())
            .seed(seed)
            .build()
            .expect("starts");
        let t0 = scribe::clock::millis_of(sim.now());
        let actors = [
            "aggregator",
            "cpu-alarm",
            "controller",
            "journal",
            "sampler",
        ];
        for (i, actor) in actors.iter().enumerate() {
            let i = i as i64;
            // Half committed, half handled but not yet committed when the
            // actor dies.
            inject_hot_then_cool(&mut sim, t0, i * 8, i * 8 + 4);
            sim.run_for(Duration::from_millis(700));
            inject_hot_then_cool(&mut sim, t0, i * 8 + 4, i * 8 + 8);
            sim.run_until_idle();
            sim.crash(actor).expect("known actor");
            sim.run_for(Duration::from_secs(2));
            sim.restart(actor).expect("known actor");
        }
        sim.run_for(Duration::from_secs(30));
        sim.assert_invariants();
        let duplicates: u64 = sim.check_invariants().iter().map(|r| r.duplicates).sum();
        assert!(
            duplicates > 0,
            "the crashes redelivered uncommitted records"
        );
        // Duplicates may repeat a command; the decisions are the same.
        let mut actions: Vec<CommandAction> = sim
            .values::<Command>("commands.host", "web-1")
            .expect("readable")
            .iter()
            .map(|c| c.action)
            .collect();
        actions.dedup();
        assert_eq!(
            actions,
            [CommandAction::Throttle, CommandAction::Resume],
            "seed {seed}"
        );
    }
}
