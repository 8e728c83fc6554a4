//! Runnable scribe systems.
//!
//! [`ask`] asks an actor from an HTTP handler through a gateway.
//!
//! [`test_events`] writes two record types on one topic and routes them by
//! type and by name.
//!
//! [`host_monitor`] wires the example control-and-measurement system: a
//! sampler reads this host's CPU, memory and load every second, an
//! aggregator summarises each metric over tumbling windows, an alarm watches
//! CPU with hysteresis, a controller turns alarms into throttle and resume
//! commands, and a journal prints a readable line for each summary, alarm
//! and command.
//!
//! ```text
//! sampler ──metrics.host──▶ aggregator ──metrics.summary──▶ cpu-alarm ──alarms.cpu──▶ controller
//!                                │                               │                       │
//!                                └──────────────┬────────────────┴───────────commands.host
//!                                               ▼
//!                                  journal ──journal.lines
//! ```

pub mod ask;
pub mod test_events;

use std::time::Duration;

use scribe::NodeBuilder;
use scribe_actors::{
    Controller, ControllerArgs, HostSampler, HostSamplerArgs, Journal, JournalArgs, Statistic,
    ThresholdAlarm, ThresholdAlarmArgs, WindowedAggregator, WindowedAggregatorArgs,
};

/// Topic names of the host monitor.
pub mod topics {
    /// Host samples, owned by the sampler.
    pub const METRICS: &str = "metrics.host";
    /// Window summaries, owned by the aggregator.
    pub const SUMMARIES: &str = "metrics.summary";
    /// CPU alarms, owned by the alarm.
    pub const ALARMS: &str = "alarms.cpu";
    /// Commands, owned by the controller.
    pub const COMMANDS: &str = "commands.host";
    /// Readable lines, owned by the journal.
    pub const JOURNAL: &str = "journal.lines";
}

/// Settings of the host monitor.
#[derive(Debug, Clone)]
pub struct HostMonitor {
    /// Time between samples. The default is 1 s.
    pub sample_every: Duration,
    /// Length of a summary window. The default is 5 s.
    pub window: Duration,
    /// How long after its end a window of a host that stopped sampling is
    /// closed, by the clock. The default, `None`, is the window's length.
    pub grace: Option<Duration>,
    /// Raise the CPU alarm when a window's mean CPU goes above this. The default is 50.
    pub cpu_high: f64,
    /// Clear the CPU alarm when a window's mean CPU goes below this. The default is 30.
    pub cpu_low: f64,
    /// Least time between two commands to one host. The default is 10 s.
    pub cooldown: Duration,
    /// Whether the journal prints to standard output. The default is true.
    pub print: bool,
    /// Put before every topic name, to run several monitors on one
    /// cluster. The default is none.
    pub topic_prefix: String,
}

impl Default for HostMonitor {
    fn default() -> Self {
        Self {
            sample_every: Duration::from_secs(1),
            window: Duration::from_secs(5),
            grace: None,
            cpu_high: 50.0,
            cpu_low: 30.0,
            cooldown: Duration::from_secs(10),
            print: true,
            topic_prefix: String::new(),
        }
    }
}

/// Adds the host monitor's five actors to `node`.
pub fn host_monitor(node: NodeBuilder, settings: &HostMonitor) -> NodeBuilder {
    let topic = |name: &str| format!("{}{name}", settings.topic_prefix);
    let (metrics, summaries) = (topic(topics::METRICS), topic(topics::SUMMARIES));
    let (alarms, commands) = (topic(topics::ALARMS), topic(topics::COMMANDS));
    node.actor::<HostSampler>(
        "sampler",
        metrics.as_str(),
        HostSamplerArgs {
            interval: settings.sample_every,
            host: None,
        },
    )
    .actor::<WindowedAggregator>(
        "aggregator",
        summaries.as_str(),
        WindowedAggregatorArgs {
            input: metrics.clone(),
            window: settings.window,
            grace: settings.grace,
        },
    )
    .actor::<ThresholdAlarm>(
        "cpu-alarm",
        alarms.as_str(),
        ThresholdAlarmArgs {
            input: summaries.clone(),
            metric: "cpu_percent".into(),
            statistic: Statistic::Mean,
            high: settings.cpu_high,
            low: settings.cpu_low,
        },
    )
    .actor::<Controller>(
        "controller",
        commands.as_str(),
        ControllerArgs {
            input: alarms.clone(),
            cooldown: settings.cooldown,
        },
    )
    .actor::<Journal>(
        "journal",
        topic(topics::JOURNAL),
        JournalArgs {
            summaries: Some(summaries),
            alarms: Some(alarms),
            commands: Some(commands),
            print: settings.print,
            ..JournalArgs::default()
        },
    )
}
