//! Journal records: readable lines about other records.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// One readable line a journal wrote about a record it read (`journal_entry.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "scribe.journal")]
pub struct JournalEntry {
    /// The topic the record came from.
    pub topic: String,
    /// The record's key as text (empty when it had none).
    pub key: String,
    /// The readable line.
    pub line: String,
    /// When the journal wrote it, milliseconds since the Unix epoch.
    pub at_ms: i64,
}
