//! Kafka headers every record carries, after the CloudEvents Kafka binding.
//!
//! | header | value |
//! |---|---|
//! | `ce_specversion` | `1.0` |
//! | `ce_id` | a fresh UUID per record |
//! | `ce_type` | the Avro full name of the value's schema |
//! | `ce_source` | `<node>/<actor>` that published the record |
//! | `ce_time` | RFC 3339 time of publication |
//! | `content-type` | [`CONTENT_TYPE_AVRO`] |
//! | `correlation_id` | carried unchanged along a chain of actors |
//! | `causation_id` | the `ce_id` of the record being handled when this one was published |

use rdkafka::message::{BorrowedHeaders, Header, Headers as _, OwnedHeaders};

/// Header carrying the CloudEvents spec version.
pub const CE_SPECVERSION: &str = "ce_specversion";
/// Header carrying the event id.
pub const CE_ID: &str = "ce_id";
/// Header carrying the event type (the Avro full name).
pub const CE_TYPE: &str = "ce_type";
/// Header carrying the event source (`node/actor`).
pub const CE_SOURCE: &str = "ce_source";
/// Header carrying the event time (RFC 3339).
pub const CE_TIME: &str = "ce_time";
/// Header carrying the content type.
pub const CONTENT_TYPE: &str = "content-type";
/// Header carrying the correlation id shared by a whole chain.
pub const CORRELATION_ID: &str = "correlation_id";
/// Header carrying the `ce_id` of the record that caused this one.
pub const CAUSATION_ID: &str = "causation_id";
/// The CloudEvents spec version scribe writes.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of every value: Avro single-object encoding.
pub const CONTENT_TYPE_AVRO: &str = "application/avro";

/// The headers of an inbound record, with the well-known ones parsed out.
///
/// Records from producers that are not scribe nodes may lack any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    id: Option<String>,
    ty: Option<String>,
    source: Option<String>,
    time: Option<String>,
    spec_version: Option<String>,
    content_type: Option<String>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    other: Vec<(String, Vec<u8>)>,
}

impl Headers {
    pub(crate) fn from_kafka(headers: Option<&BorrowedHeaders>) -> Self {
        let mut out = Headers::default();
        let Some(headers) = headers else { return out };
        for header in headers.iter() {
            let value = header.value.unwrap_or_default();
            let text = || String::from_utf8_lossy(value).into_owned();
            match header.key {
                CE_ID => out.id = Some(text()),
                CE_TYPE => out.ty = Some(text()),
                CE_SOURCE => out.source = Some(text()),
                CE_TIME => out.time = Some(text()),
                CE_SPECVERSION => out.spec_version = Some(text()),
                CONTENT_TYPE => out.content_type = Some(text()),
                CORRELATION_ID => out.correlation_id = Some(text()),
                CAUSATION_ID => out.causation_id = Some(text()),
                key => out.other.push((key.to_owned(), value.to_vec())),
            }
        }
        out
    }

    /// `ce_id`: this record's unique id.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    /// `ce_type`: the Avro full name of the writer's schema.
    pub fn ce_type(&self) -> Option<&str> {
        self.ty.as_deref()
    }
    /// `ce_source`: `node/actor` that published the record.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }
    /// `ce_time`: when the record was published (RFC 3339).
    pub fn time(&self) -> Option<&str> {
        self.time.as_deref()
    }
    /// `ce_specversion`.
    pub fn spec_version(&self) -> Option<&str> {
        self.spec_version.as_deref()
    }
    /// `content-type`.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }
    /// `correlation_id`: shared by every record of one chain.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }
    /// `causation_id`: the `ce_id` of the record whose handling published this one.
    pub fn causation_id(&self) -> Option<&str> {
        self.causation_id.as_deref()
    }
    /// Any other header, by key (the first one when repeated).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.other
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// The values a publisher writes into the headers of one record.
pub(crate) struct Outbound<'a> {
    pub(crate) id: &'a str,
    pub(crate) ty: &'a str,
    pub(crate) source: &'a str,
    pub(crate) time: &'a str,
    pub(crate) correlation_id: &'a str,
    pub(crate) causation_id: Option<&'a str>,
}

impl Outbound<'_> {
    pub(crate) fn to_kafka(&self) -> OwnedHeaders {
        let pairs = [
            (CE_SPECVERSION, Some(SPEC_VERSION)),
            (CE_ID, Some(self.id)),
            (CE_TYPE, Some(self.ty)),
            (CE_SOURCE, Some(self.source)),
            (CE_TIME, Some(self.time)),
            (CONTENT_TYPE, Some(CONTENT_TYPE_AVRO)),
            (CORRELATION_ID, Some(self.correlation_id)),
            (CAUSATION_ID, self.causation_id),
        ];
        pairs
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .fold(OwnedHeaders::new_with_capacity(8), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value),
                })
            })
    }
}
