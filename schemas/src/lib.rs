//! Avro schemas of scribe's standard records, as `.avsc` files and as Rust types.
//!
//! Each type derives `AvroSchema`, and a test proves its schema has the same
//! parsing canonical form as its `.avsc` file. Older versions of a schema are
//! kept as `.avsc` files (`*.v1.avsc`) and listed in [`AVSC`], so a node that
//! registers them can read records written by older producers.

pub mod control;
pub mod journal;
pub mod metrics;

pub use control::{Alarm, AlarmState, Command, CommandAction};
pub use journal::JournalEntry;
pub use metrics::{HostMetrics, MetricSummary, OpenWindow};

/// Every schema file of this crate, current and historical, as
/// `(file name, Avro JSON)`.
pub const AVSC: &[(&str, &str)] = &[
    (
        "host_metrics.avsc",
        include_str!("../avro/host_metrics.avsc"),
    ),
    (
        "host_metrics.v1.avsc",
        include_str!("../avro/host_metrics.v1.avsc"),
    ),
    (
        "metric_summary.avsc",
        include_str!("../avro/metric_summary.avsc"),
    ),
    ("open_window.avsc", include_str!("../avro/open_window.avsc")),
    ("alarm.avsc", include_str!("../avro/alarm.avsc")),
    ("command.avsc", include_str!("../avro/command.avsc")),
    (
        "journal_entry.avsc",
        include_str!("../avro/journal_entry.avsc"),
    ),
];

/// The Avro JSON of schema file `name` (for example `"alarm.avsc"`).
pub fn avsc(name: &str) -> Option<&'static str> {
    AVSC.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
