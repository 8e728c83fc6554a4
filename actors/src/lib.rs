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

/// Milliseconds since the Unix epoch, now: the simulated time when running
/// in scribe's simulator.
pub(crate) fn now_ms() -> i64 {
    scribe::clock::now_ms()
}
