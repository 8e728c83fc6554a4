//! Node configuration files: what a node runs, loaded and validated before
//! anything touches Kafka.
//!
//! ```toml
//! [node]
//! name = "host-monitor"
//!
//! [kafka]
//! bootstrap_servers = "embedded"     # or "kafka-1:9092,kafka-2:9092"
//!
//! [topic_defaults]
//! partitions = 3
//!
//! [[topics]]
//! name = "metrics.host"
//! partitions = 6
//! retention = "7days"
//!
//! [[actors]]
//! name = "sampler"
//! kind = "host-sampler"
//! output = "metrics.host"
//! params = { interval = "1s" }
//! ```
//!
//! Every key can be overridden from the environment: `SCRIBE__` followed by
//! the path in upper case with `__` between levels, for instance
//! `SCRIBE__KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092`.

mod file;
mod registry;
mod text;

pub use file::{ActorSection, KafkaSection, NodeConfig, NodeSection, TopicSection};
pub use registry::Registry;
pub use scribe::Security;
pub use scribe::{Properties, Secret};
