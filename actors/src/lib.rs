//! Ready-made control and measurement actors for scribe.
//!
//! Each actor lives in its own file, which opens with what it reads, what
//! it writes, what it keys by and its parameters.

mod aggregator;
mod controller;
mod host_sampler;
mod journal;
mod json_bridge;
mod relay;
mod threshold_alarm;

pub use aggregator::{WindowedAggregator, WindowedAggregatorArgs};
pub use controller::{Controller, ControllerArgs};
pub use host_sampler::{HostSampler, HostSamplerArgs};
pub use journal::{Journal, JournalArgs};
pub use json_bridge::{JsonIn, JsonInArgs, JsonOut, JsonOutArgs};
pub use relay::{Relay, RelayArgs};
pub use threshold_alarm::{Statistic, ThresholdAlarm, ThresholdAlarmArgs};

/// A registry of the standard actor kinds: `host-sampler`,
/// `windowed-aggregator`, `threshold-alarm`, `controller`, `journal`; per
/// standard record type a relay (`relay.host-metrics`,
/// `relay.metric-summary`, `relay.alarm`, `relay.command`,
/// `relay.journal-entry`) and a JSON bridge in (`json-in.host-metrics`, ...);
/// and the JSON mirror `json-out`. Every node built with it knows every
/// schema of `scribe-schemas`, older versions included.
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
        .register::<Relay<JournalEntry>>("relay.journal-entry")
        .register::<JsonIn<HostMetrics>>("json-in.host-metrics")
        .register::<JsonIn<MetricSummary>>("json-in.metric-summary")
        .register::<JsonIn<Alarm>>("json-in.alarm")
        .register::<JsonIn<Command>>("json-in.command")
        .register::<JsonIn<JournalEntry>>("json-in.journal-entry")
        .register::<JsonOut>("json-out");
    for (file, avsc) in scribe_schemas::AVSC {
        registry
            .schema(file, avsc)
            .expect("the schemas crate's files parse (its tests say so)");
    }
    registry
}

/// Milliseconds since the Unix epoch, now: the simulated time when running
/// in scribe's simulator.
pub(crate) fn now_ms() -> i64 {
    scribe::clock::now_ms()
}
