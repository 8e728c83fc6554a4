//! Reading a topic from its end, without a consumer group: every record
//! written to any of its partitions from now on, handed to an [`OnRecord`]
//! as a `read_committed` consumer reads it. What askers read their replies
//! with (`ask::replies`).
//!
//! The seam under that reader: a Kafka consumer on a thread of its own
//! ([`TailReading::Kafka`]), or, with the `testing` feature, any
//! [`DynTail`] (the simulator's in-memory log, which the runtime does not
//! name). What is done with each record is written once, in the
//! [`OnRecord`] the asker gives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Error, Result};
use crate::kafka::settings::ClientSettings;
use crate::kafka::topics::partition_count;
use crate::wire::headers::Headers;

/// How long a metadata or watermark request waits for the broker.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// What a tail hands each record to.
pub(crate) trait OnRecord: Send + Sync + 'static {
    /// One record of the topic: its headers, value, and where it is.
    fn record(&self, headers: &Headers, value: &[u8], partition: i32, offset: i64);
}

/// How a tail reads its topic.
#[derive(Clone)]
pub(crate) enum TailReading {
    /// A Kafka consumer with the node's client settings, assigned every
    /// partition at its end, on a thread of its own.
    Kafka(ClientSettings),
    /// A reader the runtime reaches through a trait object (the
    /// simulator's).
    #[cfg(feature = "testing")]
    Dyn(Arc<dyn DynTail>),
}

impl std::fmt::Debug for TailReading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TailReading::Kafka(settings) => f.debug_tuple("Kafka").field(&settings.node).finish(),
            #[cfg(feature = "testing")]
            TailReading::Dyn(_) => f.write_str("Dyn"),
        }
    }
}

/// A tail defined outside the runtime (the simulator's) implements this.
#[cfg(feature = "testing")]
pub(crate) trait DynTail: Send + Sync {
    /// Hands `on` every record written to `topic` from now on, in each
    /// partition's order, until the returned guard is dropped.
    fn start(&self, topic: &str, on: Arc<dyn OnRecord>) -> Result<Box<dyn Send + Sync>>;
}

/// A running tail: stopped when closed or dropped.
pub(crate) struct Tail {
    running: Running,
}

enum Running {
    Kafka {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
    #[cfg(feature = "testing")]
    Dyn(#[allow(dead_code)] Box<dyn Send + Sync>),
    Stopped,
}

impl TailReading {
    /// Starts reading `topic` from the end of every partition (so every
    /// record written from now on is seen), for `name`, handing each record
    /// to `on`. On Kafka, blocks on the broker's metadata.
    pub(crate) fn start(&self, name: &str, topic: &str, on: Arc<dyn OnRecord>) -> Result<Tail> {
        let running = match self {
            TailReading::Kafka(settings) => kafka(settings, name, topic, on)?,
            #[cfg(feature = "testing")]
            TailReading::Dyn(tail) => Running::Dyn(tail.start(topic, on)?),
        };
        Ok(Tail { running })
    }
}

impl Tail {
    /// Stops reading; on Kafka, waits (off the caller's thread) until the
    /// reader's thread is gone.
    pub(crate) async fn close(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Kafka { stop, thread } => {
                stop.store(true, Ordering::Release);
                if let Some(thread) = thread {
                    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
                }
            }
            #[cfg(feature = "testing")]
            Running::Dyn(guard) => drop(guard),
            Running::Stopped => {}
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        if let Running::Kafka { stop, .. } = &self.running {
            stop.store(true, Ordering::Release);
        }
    }
}

/// A consumer of every partition of `topic` at its end, on a thread of its
/// own handing each record to `on`.
fn kafka(
    settings: &ClientSettings,
    name: &str,
    topic: &str,
    on: Arc<dyn OnRecord>,
) -> Result<Running> {
    let instance = crate::wire::clock::new_id().simple().to_string();
    let mut config = settings.consumer(&format!("{name}.{instance}"), false);
    // No group: it reads every partition, and never commits.
    config
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest");
    if settings.embedded {
        // The embedded mock cluster answers a fetch only when its wait
        // is over, even when a record came meanwhile (a broker answers
        // at once): a record would wait out up to the whole wait.
        config.set("fetch.wait.max.ms", "1");
    }
    let consumer: BaseConsumer = config.create().map_err(|e| {
        Error::kafka(
            format!("cannot create the reader of `{topic}` for `{name}`"),
            e,
        )
    })?;
    let partitions = partition_count(&consumer, topic, METADATA_TIMEOUT)?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|e| {
                Error::kafka(format!("cannot read the end of `{topic}`/{partition}"), e)
            })?;
        list.add_partition_offset(topic, partition, Offset::Offset(high))
            .map_err(|e| Error::kafka(format!("cannot assign the partitions of `{topic}`"), e))?;
    }
    consumer
        .assign(&list)
        .map_err(|e| Error::kafka(format!("cannot assign the partitions of `{topic}`"), e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("tail-{name}"))
            .spawn(move || read(&consumer, &*on, &stop))
            .map_err(|e| Error::Gateway {
                gateway: name.to_owned(),
                reason: format!("cannot start the reader of `{topic}`: {e}"),
            })?
    };
    Ok(Running::Kafka {
        stop,
        thread: Some(thread),
    })
}

/// The reader's loop, until `stop`.
fn read(consumer: &BaseConsumer, on: &dyn OnRecord, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        match message {
            Ok(message) => {
                let (headers, _) = Headers::from_kafka(&message);
                on.record(
                    &headers,
                    message.payload().unwrap_or_default(),
                    message.partition(),
                    message.offset(),
                );
            }
            Err(error) => tracing::warn!(%error, "reader of a reply topic"),
        }
    }
}
