//! The [`Record`] trait: what may travel on a topic.

use apache_avro::AvroSchema;
use serde::{Serialize, de::DeserializeOwned};

/// A typed Avro record that can be written to and read from a topic.
///
/// Implemented for every type that derives `serde::Serialize`,
/// `serde::Deserialize` and `apache_avro::AvroSchema`; there is nothing to
/// implement by hand. The Avro full name of the schema (namespace and name)
/// is the record's CloudEvents `ce_type`.
///
/// ```
/// use apache_avro::AvroSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, AvroSchema)]
/// #[avro(namespace = "demo")]
/// struct Reading {
///     sensor: String,
///     value: f64,
/// }
///
/// fn assert_record<T: scribe::Record>() {}
/// assert_record::<Reading>();
/// ```
pub trait Record: AvroSchema + Serialize + DeserializeOwned + Send + 'static {}

impl<T> Record for T where T: AvroSchema + Serialize + DeserializeOwned + Send + 'static {}
