//! Timers in the simulator, on virtual time: the standard controller holds
//! a RESUME back for the rest of its cooldown on a wall-clock timer kept
//! in its stores. Crashed, restarted, rebalanced or with its transaction
//! aborted while the command waits, it still sends it, once (exactly
//! once; at least once, a repeat is the same command).

use std::time::Duration;

use scribe::sim::{Simulation, seeds};
use scribe::{Delivery, Node};
use scribe_actors::{Controller, ControllerArgs};
use scribe_schemas::{Alarm, AlarmState, Command, CommandAction};

const HOSTS: usize = 6;
const COOLDOWN: Duration = Duration::from_secs(10);

fn node(delivery: Delivery) -> Node {
    scribe_tests::init_tracing();
    Node::builder("sim-timers")
        .actor::<Controller>(
            "controller",
            "commands",
            ControllerArgs {
                input: "alarms".into(),
                cooldown: COOLDOWN,
            },
        )
        .delivery("controller", delivery)
        .commit_interval(Duration::from_millis(500))
        .build()
        .expect("valid topology")
}

fn alarm(host: &str, state: AlarmState) -> Alarm {
    Alarm {
        host: host.to_owned(),
        metric: "cpu_percent".into(),
        state,
        value: 0.0,
        threshold: 0.0,
        at_ms: 0,
    }
}

/// Raises every host, clears it a second later (inside the cooldown: the
/// RESUME is held back), does `meanwhile`, then runs past the cooldown.
/// Returns each host's commands, in order.
fn run(sim: &mut Simulation, meanwhile: impl FnOnce(&mut Simulation)) -> Vec<Vec<CommandAction>> {
    let hosts: Vec<String> = (0..HOSTS).map(|h| format!("web-{h}")).collect();
    for host in &hosts {
        sim.inject("alarms", host, &alarm(host, AlarmState::Raised))
            .expect("injected");
    }
    sim.run_for(Duration::from_secs(1));
    for host in &hosts {
        sim.inject("alarms", host, &alarm(host, AlarmState::Cleared))
            .expect("injected");
    }
    sim.run_for(Duration::from_secs(1));
    meanwhile(sim);
    sim.run_for(COOLDOWN * 2);
    hosts
        .iter()
        .map(|host| {
            sim.values::<Command>("commands", host)
                .expect("readable")
                .into_iter()
                .map(|c| c.action)
                .collect()
        })
        .collect()
}

/// Each host's commands against THROTTLE then RESUME: (lost, duplicates),
/// printed.
fn count(label: &str, seed: u64, commands: &[Vec<CommandAction>]) -> (usize, usize) {
    use CommandAction::*;
    let mut lost = 0;
    let mut duplicates = 0;
    for actions in commands {
        let mut distinct = actions.clone();
        distinct.dedup();
        assert_eq!(
            distinct.first(),
            Some(&Throttle),
            "{label}: a THROTTLE first: {actions:?}"
        );
        lost += usize::from(!distinct.contains(&Resume)) + usize::from(distinct.is_empty());
        assert!(
            distinct.len() <= 2,
            "{label}: THROTTLE then RESUME: {actions:?}"
        );
        duplicates += actions.len() - distinct.len();
    }
    println!(
        "{label} seed {seed}: hosts={HOSTS} sent={} lost={lost} duplicates={duplicates}",
        commands.iter().map(Vec::len).sum::<usize>()
    );
    (lost, duplicates)
}

/// Runs the controller through `fault` under both guarantees and several
/// seeds: no command is lost, none repeats exactly once.
fn survives(label: &str, fault: impl Fn(&mut Simulation)) {
    for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
        for seed in seeds(4) {
            let mut sim = Simulation::builder(node(delivery))
                .seed(seed)
                .build()
                .expect("starts");
            let commands = run(&mut sim, &fault);
            let (lost, duplicates) = count(&format!("{label} {delivery:?}"), seed, &commands);
            let fired = sim.stats("controller").expect("known actor").timers_fired;
            println!("{label} {delivery:?} seed {seed}: timers fired={fired}");
            // Each host's held-back RESUME went out from its timer.
            assert!(fired >= HOSTS as u64, "{fired} timers fired");
            assert_eq!(lost, 0);
            if delivery == Delivery::ExactlyOnce {
                assert_eq!(duplicates, 0);
            }
            sim.assert_invariants();
        }
    }
}

#[test]
fn a_held_back_command_is_sent_after_a_crash() {
    survives("crash", |sim| {
        sim.crash("controller").expect("known actor");
        sim.run_for(Duration::from_secs(1));
        sim.restart("controller").expect("restarts");
    });
}

#[test]
fn a_held_back_command_moves_with_its_partition() {
    survives("rebalance", |sim| {
        sim.scale("controller", 2).expect("scales");
        sim.run_for(Duration::from_secs(1));
        sim.rebalance("controller").expect("rebalances");
    });
}

#[test]
fn a_timer_fired_in_an_aborted_transaction_fires_again() {
    for seed in seeds(4) {
        let mut sim = Simulation::builder(node(Delivery::ExactlyOnce))
            .seed(seed)
            .build()
            .expect("starts");
        let commands = run(&mut sim, |sim| {
            // The transaction the RESUMEs go out in is the next but one:
            // the first commits the held-back state, the next aborts.
            sim.abort_transaction("controller").expect("exactly-once");
        });
        let stats = sim.stats("controller").expect("known actor");
        let (lost, duplicates) = count("abort", seed, &commands);
        assert!(stats.transactions_aborted >= 1, "{stats:?}");
        assert_eq!((lost, duplicates), (0, 0));
        sim.assert_invariants();
    }
}

/// The aggregator closes the last window of a host that stopped sampling
/// on its grace timer, on virtual time, whether or not it crashed in
/// between: each window summarised (once, exactly once), with every sample
/// in it, and a late sample of a window so closed left out.
#[test]
fn the_last_window_of_a_silent_host_is_summarised_after_its_grace() {
    use scribe_actors::{WindowedAggregator, WindowedAggregatorArgs};
    use scribe_schemas::{HostMetrics, MetricSummary};
    for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
        for crash in [false, true] {
            for seed in seeds(2) {
                let node = Node::builder("sim-grace")
                    .actor::<WindowedAggregator>(
                        "aggregator",
                        "summaries",
                        WindowedAggregatorArgs {
                            input: "samples".into(),
                            window: Duration::from_secs(10),
                            grace: Some(Duration::from_secs(5)),
                        },
                    )
                    .delivery("aggregator", delivery)
                    .commit_interval(Duration::from_millis(500))
                    .build()
                    .expect("valid topology");
                let mut sim = Simulation::builder(node)
                    .seed(seed)
                    .build()
                    .expect("starts");
                let now = scribe::clock::millis_of(sim.now());
                let base = now - now.rem_euclid(10_000);
                let sample = |host: &str, t: i64| HostMetrics {
                    host: host.to_owned(),
                    cpu_percent: t as f64,
                    mem_used_percent: 50.0,
                    load1: 1.0,
                    sampled_at_ms: base + t * 1000,
                };
                // Three windows of each host, the last with 5 samples: no
                // later sample ever closes it.
                for t in 0..25 {
                    for host in ["a", "b", "c"] {
                        sim.inject("samples", host, &sample(host, t))
                            .expect("injected");
                    }
                }
                sim.run_for(Duration::from_secs(2));
                if crash {
                    sim.crash("aggregator").expect("known actor");
                    sim.run_for(Duration::from_secs(1));
                    sim.restart("aggregator").expect("restarts");
                }
                sim.run_for(Duration::from_secs(30));
                // Late: its window was closed by its timer.
                sim.inject("samples", "a", &sample("a", 29))
                    .expect("injected");
                sim.run_for(Duration::from_secs(5));
                let summaries: Vec<MetricSummary> = sim
                    .records::<MetricSummary>("summaries")
                    .expect("readable")
                    .into_iter()
                    .map(scribe::Inbound::into_value)
                    .filter(|s| s.metric == "cpu_percent")
                    .collect();
                let mut windows: Vec<(String, i64, i64)> = summaries
                    .iter()
                    .map(|s| (s.host.clone(), (s.window_start_ms - base) / 1000, s.count))
                    .collect();
                let received = windows.len();
                windows.dedup();
                windows.sort();
                windows.dedup();
                let duplicates = received - windows.len();
                println!(
                    "grace {delivery:?} crash={crash} seed {seed}: windows={} received={received} \
                     duplicates={duplicates}",
                    windows.len()
                );
                let expected: Vec<(String, i64, i64)> = ["a", "b", "c"]
                    .iter()
                    .flat_map(|h| {
                        [
                            (h.to_string(), 0, 10),
                            (h.to_string(), 10, 10),
                            (h.to_string(), 20, 5),
                        ]
                    })
                    .collect();
                assert_eq!(windows, expected, "every window, the last after its grace");
                if delivery == Delivery::ExactlyOnce {
                    assert_eq!(duplicates, 0);
                }
                sim.assert_invariants();
            }
        }
    }
}

/// Sets a stream-time reminder 5 s after the first number of each key;
/// when it fires, publishes the key's number with `seq` = the reminder's
/// time.
struct Reminder {
    reminders: scribe::state::Timers<String>,
    out: scribe::Publisher<scribe_tests::records::Number>,
}

impl actix::Actor for Reminder {
    type Context = actix::Context<Self>;
}

impl scribe::TopicActor for Reminder {
    type Output = scribe_tests::records::Number;
    type Args = ();
    fn subscriptions(_: &(), subs: &mut scribe::Subscriptions<Self>) {
        subs.subscribe::<scribe_tests::records::Number>("in")
            .timers::<String>("reminders", scribe::state::TimerClock::Stream);
    }
    fn create(
        _: (),
        out: scribe::Publisher<scribe_tests::records::Number>,
    ) -> Result<Self, scribe::ActorError> {
        Ok(Self {
            reminders: out.timers("reminders")?,
            out,
        })
    }
}

impl actix::Handler<scribe::Inbound<scribe_tests::records::Number>> for Reminder {
    type Result = Result<(), scribe::ActorError>;
    fn handle(
        &mut self,
        m: scribe::Inbound<scribe_tests::records::Number>,
        _: &mut actix::Context<Self>,
    ) -> Self::Result {
        if self.reminders.get(&m.key)?.is_none() {
            let at = m.timestamp_ms().unwrap_or_default() + 5000;
            self.reminders.set(&m.key, at)?;
        }
        Ok(())
    }
}

impl actix::Handler<scribe::state::Fired<String>> for Reminder {
    type Result = Result<(), scribe::ActorError>;
    fn handle(
        &mut self,
        timer: scribe::state::Fired<String>,
        _: &mut actix::Context<Self>,
    ) -> Self::Result {
        let number = scribe_tests::records::Number {
            key: timer.key.clone(),
            seq: timer.at_ms,
        };
        self.out.publish(&timer.key, number)?;
        Ok(())
    }
}

/// Stream time moves only with records of the timer's partition: a
/// reminder waits through a minute of silence, and fires once a later
/// record of its partition comes, after a crash too.
#[test]
fn a_stream_timer_fires_when_its_partition_reaches_its_time() {
    for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
        for seed in seeds(2) {
            let node = Node::builder("sim-stream-timers")
                .topic(
                    "in",
                    scribe::TopicSpec {
                        partitions: 1,
                        ..Default::default()
                    },
                )
                .actor::<Reminder>("reminder", "out", ())
                .delivery("reminder", delivery)
                .commit_interval(Duration::from_millis(500))
                .build()
                .expect("valid topology");
            let mut sim = Simulation::builder(node)
                .seed(seed)
                .build()
                .expect("starts");
            let number = |key: &str, seq| scribe_tests::records::Number {
                key: key.to_owned(),
                seq,
            };
            let first = scribe::clock::millis_of(sim.now());
            sim.inject("in", "a", &number("a", 0)).expect("injected");
            sim.run_for(Duration::from_secs(60));
            let silent = sim.record_count("out").expect("known topic");
            sim.crash("reminder").expect("known actor");
            sim.restart("reminder").expect("restarts");
            sim.inject("in", "b", &number("b", 1)).expect("injected");
            sim.run_for(Duration::from_secs(1));
            let fired: Vec<i64> = sim
                .values::<scribe_tests::records::Number>("out", "a")
                .expect("readable")
                .iter()
                .map(|n| n.seq)
                .collect();
            println!(
                "stream {delivery:?} seed {seed}: out after a silent minute={silent}, \
                 reminders of a={fired:?}"
            );
            assert_eq!(silent, 0, "no record, no stream time");
            assert_eq!(fired, vec![first + 5000], "fired once, at its time");
            // b's reminder waits for a record 5 s after b's.
            assert!(
                sim.values::<scribe_tests::records::Number>("out", "b")
                    .unwrap()
                    .is_empty()
            );
            sim.assert_invariants();
        }
    }
}
