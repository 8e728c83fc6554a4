//! What a test writes to and reads from a simulation's topics: records
//! injected as an outside producer would ([`Injected`]), records read as
//! a `read_committed` consumer would, and the expectations over them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::simulation::Simulation;
use super::world::{Stored, lock};
use crate::delivery::inbound::Inbound;
use crate::error::{Error, Result};
use crate::ops::stats::StatsSnapshot;
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::headers::{Headers, Outbound};
use crate::wire::record::Record;

/// A record's key and value bytes.
pub type RawRecord = (Option<Vec<u8>>, Vec<u8>);

/// Where an injected record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// A record to inject, with everything a producer could set.
#[derive(Debug, Clone)]
pub struct Injected<T> {
    /// The value.
    pub value: T,
    /// The key; records with one key keep their order.
    pub key: Option<Vec<u8>>,
    /// Extra headers; the CloudEvents ones are added unless given here.
    pub headers: Vec<(String, Vec<u8>)>,
    /// A partition to write to instead of the key's.
    pub partition: Option<i32>,
}

impl<T> Injected<T> {
    /// An unkeyed record with the standard headers.
    pub fn new(value: T) -> Self {
        Self {
            value,
            key: None,
            headers: Vec::new(),
            partition: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.key = Some(key.as_ref().to_vec());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((key.into(), value.as_ref().to_vec()));
        self
    }

    /// Writes to `partition` whatever the key.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
}

impl Simulation {
    /// Appends `value` under `key` to `topic`, as a producer outside the
    /// node would, with fresh CloudEvents headers.
    pub fn inject<T: Record>(
        &mut self,
        topic: &str,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<Appended> {
        let (ty, bytes) = self.encode(topic, value)?;
        let record = Injected::new(()).key(key);
        self.append(topic, &ty, bytes, record)
    }

    /// Appends a record with a key, headers or partition of the test's choosing.
    pub fn inject_record<T: Record>(
        &mut self,
        topic: &str,
        record: Injected<T>,
    ) -> Result<Appended> {
        let (ty, bytes) = self.encode(topic, &record.value)?;
        let Injected {
            key,
            headers,
            partition,
            ..
        } = record;
        let record = Injected {
            value: (),
            key,
            headers,
            partition,
        };
        self.append(topic, &ty, bytes, record)
    }

    /// Appends bytes that need not be Avro (to test undecodable records).
    pub fn inject_raw(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Appended> {
        let topic_index = self.driver.topic(topic)?;
        let stored = Stored {
            key: key.map(Arc::from),
            value: Arc::from(value),
            headers: Arc::default(),
            timestamp_ms: crate::wire::clock::millis_of(self.now()),
            tombstone: false,
            aborted: false,
        };
        let (partition, offset) = lock(&self.driver.world).append(topic_index, None, stored);
        Ok(Appended { partition, offset })
    }

    /// Encodes with one encoder per type, built on first use (building
    /// one validates its schema, which costs more than encoding).
    /// Returns the type's Avro full name and the encoded value.
    fn encode<T: Record>(&mut self, topic: &str, value: &T) -> Result<(Arc<str>, Vec<u8>)> {
        let encoder = match self.encoders.entry(std::any::TypeId::of::<T>()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Box::new(Encoder::<T>::new()?))
            }
        };
        let encoder = encoder
            .downcast_ref::<Encoder<T>>()
            .expect("encoders are keyed by their type");
        let mut bytes = Vec::new();
        encoder
            .encode(value, &mut bytes)
            .map_err(|source| Error::Encode {
                topic: topic.to_owned(),
                source,
            })?;
        Ok((encoder.full_name().clone(), bytes))
    }

    fn append(
        &mut self,
        topic: &str,
        ty: &str,
        value: Vec<u8>,
        record: Injected<()>,
    ) -> Result<Appended> {
        let index = self.driver.topic(topic)?;
        if let Some(partition) = record.partition {
            self.driver.check_partition(index, partition)?;
        }
        let driver = &self.driver;
        let _entered = self.clock.enter();
        let (partition, offset) = self.runner.block_on(async {
            let now = crate::wire::clock::now();
            let id = crate::wire::clock::new_id().to_string();
            let time = humantime::format_rfc3339_millis(now).to_string();
            let source = format!("{}/test", driver.node);
            let outbound = Outbound {
                id: &id,
                ty,
                source: &source,
                time: &time,
                correlation_id: &id,
                causation_id: None,
                traceparent: None,
                tracestate: None,
            };
            let given: Vec<&str> = record.headers.iter().map(|(k, _)| k.as_str()).collect();
            let headers = Headers::from_pairs(
                outbound.pairs().filter(|(k, _)| !given.contains(k)).chain(
                    record
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_slice())),
                ),
            );
            let stored = Stored {
                key: record.key.map(Arc::from),
                value: value.into(),
                headers: Arc::new(headers),
                timestamp_ms: crate::wire::clock::millis_of(now),
                tombstone: false,
                aborted: false,
            };
            lock(&driver.world).append(index, record.partition, stored)
        });
        Ok(Appended { partition, offset })
    }

    /// Every record of `topic` a `read_committed` consumer reads (none of
    /// an aborted or still open transaction), decoded as `T`, in partition
    /// then offset order.
    pub fn records<T: Record>(&self, topic: &str) -> Result<Vec<Inbound<T>>> {
        self.read::<T>(topic, false)
    }

    /// The records of type `T` on `topic`, a topic of several record types
    /// ([`records!`](crate::records)), as [`records`](Self::records) reads
    /// them; records of other types (by `ce_type`) are passed over.
    pub fn records_of<T: Record>(&self, topic: &str) -> Result<Vec<Inbound<T>>> {
        self.read::<T>(topic, true)
    }

    fn read<T: Record>(&self, topic: &str, only_t: bool) -> Result<Vec<Inbound<T>>> {
        let name = crate::wire::codec::full_name(&T::get_schema());
        let index = self.driver.topic(topic)?;
        let decoder = Decoder::<T>::new(self.driver.registry.clone())?;
        let world = lock(&self.driver.world);
        let log = &world.logs[index];
        let mut out = Vec::new();
        for partition in 0..log.partitions.len() {
            for (offset, stored) in world.readable(index, partition as i32) {
                if only_t && stored.headers.ce_type().is_some_and(|t| t != name) {
                    continue;
                }
                let value = decoder
                    .decode(&stored.value)
                    .map_err(|source| Error::Decode {
                        topic: topic.to_owned(),
                        partition: partition as i32,
                        offset,
                        source,
                    })?;
                out.push(Inbound::shared(
                    value,
                    crate::delivery::inbound::Meta {
                        topic: log.name.clone(),
                        partition: partition as i32,
                        offset,
                        timestamp: Some(stored.timestamp_ms),
                        key: stored.key.clone(),
                        headers: stored.headers.clone(),
                    },
                ));
            }
        }
        Ok(out)
    }

    /// The values of `topic` published under `key`, in order.
    pub fn values<T: Record>(&self, topic: &str, key: &str) -> Result<Vec<T>> {
        Ok(self
            .records::<T>(topic)?
            .into_iter()
            .filter(|r| r.key() == Some(key.as_bytes()))
            .map(Inbound::into_value)
            .collect())
    }

    /// Every partition of `topic`: the key and value bytes of each record
    /// a `read_committed` consumer reads, in offset order.
    pub fn raw(&self, topic: &str) -> Result<Vec<Vec<RawRecord>>> {
        let index = self.driver.topic(topic)?;
        let world = lock(&self.driver.world);
        Ok((0..world.logs[index].partitions.len() as i32)
            .map(|p| {
                world
                    .readable(index, p)
                    .map(|(_, r)| (r.key.as_deref().map(<[u8]>::to_vec), r.value.to_vec()))
                    .collect()
            })
            .collect())
    }

    /// Number of records on `topic` a `read_committed` consumer reads.
    pub fn record_count(&self, topic: &str) -> Result<usize> {
        let index = self.driver.topic(topic)?;
        let world = lock(&self.driver.world);
        Ok((0..world.logs[index].partitions.len() as i32)
            .map(|p| world.readable(index, p).count())
            .sum())
    }

    /// The names of the simulation's topics.
    pub fn topics(&self) -> Vec<String> {
        lock(&self.driver.world).index.keys().cloned().collect()
    }

    /// Creates a topic the node does not declare (for pattern
    /// subscriptions, or a second input); an existing one is left as it is.
    pub fn create_topic(&mut self, topic: &str, partitions: i32) -> Result<()> {
        crate::kafka::topics::check_name("topic", topic)?;
        lock(&self.driver.world).create_topic(topic, partitions);
        for actor in 0..self.driver.actors.len() {
            self.driver.rebalance(actor);
        }
        Ok(())
    }

    /// The offsets `actor`'s group has committed: the next offset to read,
    /// per topic and partition.
    pub fn committed(&self, actor: &str) -> Result<BTreeMap<(String, i32), i64>> {
        let a = self.driver.actor(actor)?;
        let world = lock(&self.driver.world);
        Ok(world
            .committed
            .get(&a)
            .into_iter()
            .flatten()
            .map(|(&(t, p), &o)| ((world.logs[t].name.to_string(), p), o))
            .collect())
    }

    /// `actor`'s counters, as a running node reports them.
    pub fn stats(&self, actor: &str) -> Result<StatsSnapshot> {
        let a = self.driver.actor(actor)?;
        Ok(self.driver.actors[a].stats.snapshot())
    }

    /// The partitions each running instance of `actor` owns.
    pub fn assignment(&self, actor: &str) -> Result<Vec<Vec<(String, i32)>>> {
        let a = self.driver.actor(actor)?;
        let world = lock(&self.driver.world);
        Ok(self.driver.actors[a]
            .instances
            .iter()
            .filter(|i| !i.replay)
            .map(|i| {
                i.position
                    .keys()
                    .map(|&(t, p)| (world.logs[t].name.to_string(), p))
                    .collect()
            })
            .collect())
    }

    /// Asserts that `topic` holds exactly `count` records.
    #[track_caller]
    pub fn expect_count(&self, topic: &str, count: usize) {
        let found = self.record_count(topic).unwrap_or_else(|e| self.fail(&e));
        if found != count {
            self.fail(&format!(
                "expected {count} records on `{topic}`, found {found}"
            ));
        }
    }

    /// Asserts that the values published on `topic` under `key` are
    /// `expected`, in that order.
    #[track_caller]
    pub fn expect_values<T>(&self, topic: &str, key: &str, expected: &[T])
    where
        T: Record + PartialEq + fmt::Debug,
    {
        let found = self
            .values::<T>(topic, key)
            .unwrap_or_else(|e| self.fail(&e));
        if found != expected {
            self.fail(&format!(
                "expected on `{topic}` under key `{key}`:\n  {expected:?}\nfound:\n  {found:?}"
            ));
        }
    }

    /// Asserts that some record of `topic` satisfies `what`, described as `description`.
    #[track_caller]
    pub fn expect_any<T>(&self, topic: &str, description: &str, what: impl Fn(&Inbound<T>) -> bool)
    where
        T: Record + fmt::Debug,
    {
        let records = self.records::<T>(topic).unwrap_or_else(|e| self.fail(&e));
        if !records.iter().any(&what) {
            let found: Vec<_> = records.iter().map(|r| (r.key_str(), r.value())).collect();
            self.fail(&format!(
                "expected a record on `{topic}` that {description}; found {} records: {found:?}",
                records.len()
            ));
        }
    }
}
