//! Ready-made control and measurement actors for scribe.
//!
//! Each actor lives in its own file, which opens with what it reads, what
//! it writes, what it keys by and its parameters.

mod aggregator;
mod controller;
mod host_sampler;
mod journal;
mod relay;
mod threshold_alarm;

pub use aggregator::{WindowedAggregator, WindowedAggregatorArgs};
pub use controller::{Controller, ControllerArgs};
pub use host_sampler::{HostSampler, HostSamplerArgs};
pub use journal::{Journal, JournalArgs};
pub use relay::{Relay, RelayArgs};
pub use threshold_alarm::{Statistic, ThresholdAlarm, ThresholdAlarmArgs};

/// A registry of the standard actor kinds: `host-sampler`,
/// `windowed-aggregator`, `threshold-alarm`, `controller`, `journal`, and a
/// relay per standard record type: `relay.host-metrics`,
/// `relay.metric-summary`, `relay.alarm`, `relay.command` and
/// `relay.journal-entry`.
pub fn registry() -> scribe_cli::settings::Registry {
    use scribe_schemas::{Alarm, Command, HostMetrics, JournalEntry, MetricSummary};
    let mut registry = scribe_cli::settings::Registry::new();
    registry
        .register::<HostSampler>("host-sampler")
        .register::<WindowedAggregator>("windowed-aggregator")
        .register::<ThresholdAlarm>("threshold-alarm")
        .register::<Controller>("controller")
        .register::<Journal>("journal")
        .register::<Relay<HostMetrics>>("relay.host-metrics")
        .register::<Relay<MetricSummary>>("relay.metric-summary")
        .register::<Relay<Alarm>>("relay.alarm")
        .register::<Relay<Command>>("relay.command")
        .register::<Relay<JournalEntry>>("relay.journal-entry");
    registry
}

/// Milliseconds since the Unix epoch, now: the simulated time when running
/// in scribe's simulator.
pub(crate) fn now_ms() -> i64 {
    scribe::clock::now_ms()
}
