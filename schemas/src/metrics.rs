//! Measurement records: samples and window summaries.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// One sample of a host's CPU, memory and load (`host_metrics.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.metrics")]
pub struct HostMetrics {
    /// Host name.
    pub host: String,
    /// CPU busy over the last interval, 0-100.
    pub cpu_percent: f64,
    /// Memory in use (total minus available), 0-100.
    pub mem_used_percent: f64,
    /// One-minute load average (added in version 2; 0.0 when read from version 1).
    #[avro(default = "0.0")]
    #[serde(default)]
    pub load1: f64,
    /// Sample time, milliseconds since the Unix epoch.
    pub sampled_at_ms: i64,
}

/// Statistics of one metric of one host over one tumbling window
/// (`metric_summary.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.metrics")]
pub struct MetricSummary {
    /// Host name.
    pub host: String,
    /// Metric name, e.g. `cpu_percent`.
    pub metric: String,
    /// Window start, inclusive, milliseconds since the Unix epoch.
    pub window_start_ms: i64,
    /// Window end, exclusive, milliseconds since the Unix epoch.
    pub window_end_ms: i64,
    /// Samples in the window.
    pub count: i64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
}

/// The samples of one host's open window, as the windowed aggregator
/// keeps them in its store (`open_window.avsc`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.metrics")]
pub struct OpenWindow {
    /// Window start, inclusive, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// The window's CPU samples, in arrival order.
    pub cpu_percent: Vec<f64>,
    /// Its memory samples.
    pub mem_used_percent: Vec<f64>,
    /// Its load samples.
    pub load1: Vec<f64>,
}

/// Earlier versions, kept so records in their shape can be written and read.
pub mod v1 {
    use apache_avro::AvroSchema;
    use serde::{Deserialize, Serialize};

    /// `scribe.metrics.HostMetrics` version 1, without `load1`
    /// (`host_metrics.v1.avsc`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
    #[avro(namespace = "scribe.metrics")]
    pub struct HostMetrics {
        /// Host name.
        pub host: String,
        /// CPU busy over the last interval, 0-100.
        pub cpu_percent: f64,
        /// Memory in use, 0-100.
        pub mem_used_percent: f64,
        /// Sample time, milliseconds since the Unix epoch.
        pub sampled_at_ms: i64,
    }
}
