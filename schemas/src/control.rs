//! Control records: alarms and commands.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// Whether an alarm is raised (`RAISED`: the value went above the high
/// threshold) or cleared (`CLEARED`: it went back below the low one).
///
/// The variants carry no doc comments: the Avro derive does not allow them.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.control")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Raised,
    Cleared,
}

/// A threshold alarm changing state (`alarm.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.control")]
pub struct Alarm {
    /// Host name.
    pub host: String,
    /// Metric name.
    pub metric: String,
    /// The new state.
    pub state: AlarmState,
    /// The value that changed the state.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// What a command asks for: `THROTTLE` (reduce load on the target) or
/// `RESUME` (return it to normal operation).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.control")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandAction {
    Throttle,
    Resume,
}

/// An instruction from a controller (`command.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.control")]
pub struct Command {
    /// What the command is for, e.g. a host name.
    pub target: String,
    /// What to do.
    pub action: CommandAction,
    /// Why, in words.
    pub reason: String,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: i64,
}
