//! [`Inbound`]: a decoded record delivered to an actor's handler.

use std::ops::Deref;
use std::sync::Arc;

use crate::error::ActorError;
use crate::wire::headers::Headers;

/// The parts of an inbound record other than its value.
pub(crate) struct Meta {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: Option<i64>,
    pub(crate) key: Option<Arc<[u8]>>,
    pub(crate) headers: Arc<Headers>,
}

/// A record read from a subscribed topic, decoded into `T`, with its Kafka
/// coordinates, key and headers.
///
/// It dereferences to the value, so a handler reads `m.field` directly.
/// Actors implement `Handler<Inbound<T>>` for each record type they
/// subscribe to.
#[derive(Debug, Clone)]
pub struct Inbound<T> {
    value: T,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Arc<[u8]>>,
    headers: Arc<Headers>,
}

impl<T> Inbound<T> {
    /// Assembles an inbound record (the runtime and the simulator do this).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        value: T,
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<Vec<u8>>,
        headers: Headers,
    ) -> Self {
        Self {
            value,
            topic,
            partition,
            offset,
            timestamp,
            key: key.map(Arc::from),
            headers: Arc::new(headers),
        }
    }

    /// An inbound record whose key and headers it shares with the record
    /// as fetched.
    pub(crate) fn shared(value: T, meta: Meta) -> Self {
        Self {
            value,
            topic: meta.topic,
            partition: meta.partition,
            offset: meta.offset,
            timestamp: meta.timestamp,
            key: meta.key,
            headers: meta.headers,
        }
    }

    /// The decoded value.
    pub fn value(&self) -> &T {
        &self.value
    }
    /// Takes the decoded value out.
    pub fn into_value(self) -> T {
        self.value
    }
    /// Takes the decoded value and the key out, the key not copied: what
    /// a handler needs to publish a changed value under the same key.
    pub fn into_value_and_key(self) -> (T, Option<Arc<[u8]>>) {
        (self.value, self.key)
    }
    /// The topic the record was read from.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The partition the record was read from.
    pub fn partition(&self) -> i32 {
        self.partition
    }
    /// The record's offset in its partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }
    /// The record's Kafka timestamp, in milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp
    }
    /// The record's key, as bytes.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }
    /// The record's key as UTF-8 text, if it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key().and_then(|k| std::str::from_utf8(k).ok())
    }
    /// The record's headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl<T> Deref for Inbound<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: 'static> actix::Message for Inbound<T> {
    type Result = Result<(), ActorError>;
}
