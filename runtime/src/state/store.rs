//! [`Store`]: an actor's typed view of one of its stores.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use apache_avro::reader::datum::GenericDatumReader;

use super::stores::Stores;
use crate::error::{Error, Result};
use crate::wire::codec::{Decoder, Encoder, SINGLE_OBJECT_HEADER_LEN};
use crate::wire::record::Record;

/// Keyed state of an actor that survives what its records survive: a
/// crash, a restart, a rebalance, an aborted transaction.
///
/// Declared in [`TopicActor::subscriptions`](crate::TopicActor::subscriptions)
/// with [`Subscriptions::store`](crate::Subscriptions::store) and taken in
/// `create` with [`Publisher::store`](crate::Publisher::store). Keys and
/// values are Avro (any [`Record`] type, `String` and the other Avro
/// primitives too).
///
/// The state is sharded by input partition: a handler reads and writes the
/// shard of the partition of the record it handles, so the state moves with
/// its partition from node to node. Every change goes to the store's
/// changelog, a compacted topic the actor owns, from which a partition's
/// shard is restored before its first record is handled.
///
/// A handler's changes take effect when it returns `Ok`, counted with its
/// outputs: at-least-once, the input offset commits only once they are
/// acknowledged; exactly-once, they are in the transaction that commits it.
/// A handler that fails or panics changes nothing (its own reads see its
/// own changes meanwhile). Outside a handler the store refuses every call.
///
/// ```
/// use actix::{Actor, Context, Handler};
/// use scribe::prelude::*;
///
/// /// Counts the readings of each sensor; writes each new count.
/// struct Counter { counts: Store<String, i64>, out: Publisher<i64> }
///
/// impl Actor for Counter { type Context = Context<Self>; }
///
/// impl TopicActor for Counter {
///     type Output = i64;
///     type Args = ();
///     fn subscriptions(_: &(), subs: &mut Subscriptions<Self>) {
///         subs.subscribe::<String>("readings").store::<String, i64>("counts");
///     }
///     fn create(_: (), out: Publisher<i64>) -> Result<Self, ActorError> {
///         Ok(Self { counts: out.store("counts")?, out })
///     }
/// }
///
/// impl Handler<Inbound<String>> for Counter {
///     type Result = Result<(), ActorError>;
///     fn handle(&mut self, sensor: Inbound<String>, _: &mut Context<Self>) -> Self::Result {
///         let count = self.counts.get(&sensor)?.unwrap_or(0) + 1;
///         self.counts.put(&sensor, &count)?;
///         self.out.publish(sensor.as_str(), count)?;
///         Ok(())
///     }
/// }
/// ```
pub struct Store<K: Record, V: Record> {
    stores: Arc<Stores>,
    index: usize,
    keys: Encoder<K>,
    key_reader: GenericDatumReader<'static>,
    values: Encoder<V>,
    decoder: Decoder<V>,
    buf: RefCell<Vec<u8>>,
}

impl<K: Record, V: Record> fmt::Debug for Store<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = &self.stores.specs()[self.index].info;
        f.debug_struct("Store")
            .field("name", &info.name)
            .field("changelog", &info.changelog)
            .finish()
    }
}

impl<K: Record, V: Record> Store<K, V> {
    /// The view of store `index` of `stores`, whose declared types the
    /// caller checked to be `K` and `V`.
    pub(crate) fn new(stores: Arc<Stores>, index: usize) -> Result<Self> {
        let key_schema = crate::wire::codec::intern(K::get_schema()).0;
        let key_reader = GenericDatumReader::builder(key_schema)
            .build()
            .map_err(|source| Error::Schema {
                origin: format!("of the keys of store `{}`", stores.specs()[index].info.name),
                source,
            })?;
        let decoder = Decoder::new(stores.registry().clone())?;
        Ok(Self {
            index,
            keys: Encoder::new()?,
            key_reader,
            values: Encoder::new()?,
            decoder,
            buf: RefCell::new(Vec::with_capacity(64)),
            stores,
        })
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.stores.specs()[self.index].info.name
    }

    fn refused(&self, reason: String) -> Error {
        Error::State {
            actor: self.stores.actor().to_owned(),
            store: self.name().to_owned(),
            reason,
        }
    }

    /// Runs `with` on the key's datum (encoded into the reused buffer).
    fn with_key<R>(&self, key: &K, with: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        let mut buf = self.buf.borrow_mut();
        buf.clear();
        self.keys
            .encode(key, &mut buf)
            .map_err(|e| self.refused(format!("cannot encode a key: {e}")))?;
        with(&buf[SINGLE_OBJECT_HEADER_LEN..])
    }

    fn decode(&self, value: &[u8]) -> Result<V> {
        self.decoder
            .decode(value)
            .map_err(|e| self.refused(format!("a value does not decode: {e}")))
    }

    /// The value of `key` in the shard of the record being handled.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let found = self.with_key(key, |key| self.stores.get(self.index, key))?;
        found.map(|value| self.decode(&value)).transpose()
    }

    /// Sets `key` to `value`, from the moment the handler returns `Ok`.
    pub fn put(&self, key: &K, value: &V) -> Result<()> {
        let mut encoded = Vec::with_capacity(64);
        self.values
            .encode(value, &mut encoded)
            .map_err(|e| self.refused(format!("cannot encode a value: {e}")))?;
        let value: Arc<[u8]> = encoded.into();
        self.with_key(key, |key| {
            self.stores.set(self.index, key.to_vec(), Some(value))
        })
    }

    /// Deletes `key`, from the moment the handler returns `Ok`.
    pub fn delete(&self, key: &K) -> Result<()> {
        self.with_key(key, |key| self.stores.set(self.index, key.to_vec(), None))
    }

    /// Every key of the record's shard with its value, in the order of the
    /// keys' Avro encodings.
    pub fn scan(&self) -> Result<Vec<(K, V)>> {
        self.stores
            .scan(self.index)?
            .into_iter()
            .map(|(key, value)| {
                let key = self
                    .key_reader
                    .read_deser::<K>(&mut key.as_slice())
                    .map_err(|e| self.refused(format!("a key does not decode: {e}")))?;
                Ok((key, self.decode(&value)?))
            })
            .collect()
    }
}
