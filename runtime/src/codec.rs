//! Avro single-object encoding, the schema registry and schema resolution.
//!
//! Every value on the bus is encoded as the Avro specification's
//! *single-object encoding*: the two marker bytes `C3 01`, the schema's
//! 8-byte CRC-64-AVRO fingerprint (little-endian), then the binary datum.
//! A reader looks the writer's schema up by that fingerprint in a
//! [`SchemaRegistry`] and, when it differs from its own, applies Avro schema
//! resolution.
//!
//! A topic may instead carry the Confluent Schema Registry's framing
//! ([`crate::confluent`]): byte `0`, a 4-byte schema id, the datum. The two
//! framings never collide (`C3` against `0`), so every reader takes both:
//! it maps the id to the schema's fingerprint with the ids the node learnt
//! at start, and asks the registry server once for any id it has not seen.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::{Schema, SpecificSingleObjectWriter, rabin::Rabin};

use crate::Record;
use crate::error::{Error, Result};

/// The two bytes that open every single-object encoded value.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
const HEADER_LEN: usize = 10;

/// The CRC-64-AVRO (Rabin) fingerprint of a schema's parsing canonical form,
/// as the 8 little-endian bytes the single-object header carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 8]);

impl Fingerprint {
    /// Computes the fingerprint of a schema.
    pub fn of(schema: &Schema) -> Self {
        let bytes = schema.fingerprint::<Rabin>().bytes;
        let mut out = [0u8; 8];
        out.copy_from_slice(&bytes[..8]);
        Fingerprint(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a record's bytes could not be turned into the subscriber's type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The value is shorter than a single-object header.
    #[error("value of {len} bytes is too short for avro single-object encoding")]
    Truncated {
        /// Length of the value.
        len: usize,
    },
    /// The value starts neither with the single-object marker `C3 01` nor
    /// with the schema registry's magic byte `0`.
    #[error(
        "value does not start with the avro single-object marker (nor with the schema registry's magic byte)"
    )]
    NoMarker,
    /// The value is in the schema registry's framing, but the node has no
    /// registry to look its schema id up in (`[registry]`).
    #[error("schema registry id {0}, and no schema registry is configured to look it up")]
    UnknownSchemaId(u32),
    /// The schema registry could not say which schema an id is.
    #[error("schema registry id {id}: {reason}")]
    Registry {
        /// The schema id the value carries.
        id: u32,
        /// Why it could not be looked up.
        reason: String,
    },
    /// The writer's schema fingerprint is not in the registry.
    #[error("unknown writer schema fingerprint {0}")]
    UnknownFingerprint(Fingerprint),
    /// The writer's schema cannot be read with the subscriber's schema.
    #[error("writer schema `{writer}` cannot be read as `{reader}`: {reason}")]
    Incompatible {
        /// Full name of the writer's schema.
        writer: String,
        /// Full name of the reader's schema.
        reader: String,
        /// What schema resolution objected to.
        reason: String,
    },
    /// The datum does not match the writer's schema.
    #[error("malformed avro datum")]
    Datum(#[source] apache_avro::Error),
    /// Bytes were left over after the datum.
    #[error("{0} bytes left over after the avro datum")]
    TrailingBytes(usize),
    /// A header's key is not UTF-8 (written by a client that is not
    /// scribe); the record is dead-lettered without that header.
    #[error("header {index} has a key that is not UTF-8")]
    HeaderKey {
        /// Its position among the record's headers, from 0.
        index: usize,
    },
    /// The record's `scribe_envelope` header has the envelope schema's
    /// fingerprint but cannot be read; the dead letter keeps it as it came.
    #[error("its scribe_envelope header cannot be read: {0}")]
    Envelope(String),
    /// The record's topic matches none of the actor's subscriptions as
    /// scribe reads them, though the consumer fetched it.
    #[error("no subscription of the actor matches topic `{0}`")]
    Unrouted(String),
    /// The record's type is one no binding of the actor takes, on a topic
    /// whose unhandled types the actor dead-letters
    /// ([`Subscriptions::dead_letter_unhandled`](crate::Subscriptions::dead_letter_unhandled)).
    #[error("no handler of the actor takes records of type `{0}`")]
    Unhandled(String),
    /// A value written outside scribe that the actor's own reader
    /// ([`Subscriptions::subscribe_foreign`](crate::Subscriptions::subscribe_foreign))
    /// refused, with its reason.
    #[error("{0}")]
    Foreign(String),
    /// A dead letter that cannot be replayed to its actor.
    #[error("cannot replay the dead letter: {0}")]
    Unreplayable(String),
}

/// Schemas live for the whole process once seen: decoders borrow them, and a
/// program registers a bounded set of schemas.
fn intern(schema: Schema) -> (&'static Schema, Fingerprint) {
    static INTERNED: OnceLock<Mutex<HashMap<Fingerprint, &'static Schema>>> = OnceLock::new();
    let fingerprint = Fingerprint::of(&schema);
    let mut table = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let schema = *table
        .entry(fingerprint)
        .or_insert_with(|| Box::leak(Box::new(schema)));
    (schema, fingerprint)
}

/// The full name (`namespace.name`) of a named schema, or its canonical form.
pub fn full_name(schema: &Schema) -> String {
    match schema.name() {
        Some(name) => name.fullname(None),
        None => schema.canonical_form(),
    }
}

/// Writer schemas known to a node, looked up by fingerprint.
///
/// A node's registry holds the schema of every record type its actors write
/// or read, plus any older versions added with [`SchemaRegistry::register`]
/// (typically every `.avsc` file of a schemas crate), so records written by
/// older producers can still be resolved.
#[derive(Clone, Default)]
pub struct SchemaRegistry {
    schemas: Arc<HashMap<Fingerprint, &'static Schema>>,
    /// Schema registry ids known without asking it: the node's own
    /// registrations and what it read at start.
    ids: Arc<HashMap<u32, Fingerprint>>,
    /// The schema registry server, for ids seen only later.
    remote: Option<Arc<Remote>>,
}

/// The schema registry server, and the ids asked of it so far.
struct Remote {
    client: crate::confluent::RegistryClient,
    /// Each id found, or that the registry does not have it.
    fetched: Mutex<HashMap<u32, Option<(Fingerprint, &'static Schema)>>>,
}

impl Remote {
    /// What schema `id` is: from the ids asked before, else from the
    /// registry (one call per id; a failed call is not remembered, so the
    /// next record asks again).
    fn fetch(&self, id: u32) -> std::result::Result<(Fingerprint, &'static Schema), DecodeError> {
        let fetched = |found: Option<(Fingerprint, &'static Schema)>| {
            found.ok_or_else(|| DecodeError::Registry {
                id,
                reason: format!("the registry at {} has no such schema", self.client.url()),
            })
        };
        if let Some(known) = self.lock().get(&id) {
            return fetched(*known);
        }
        let found = match self.client.schema(id) {
            Ok(schema) => schema.map(intern).map(|(schema, fp)| (fp, schema)),
            Err(error) => {
                return Err(DecodeError::Registry {
                    id,
                    reason: error.to_string(),
                });
            }
        };
        if let Some((_, schema)) = found {
            tracing::info!(id, schema = %full_name(schema), "schema registry id looked up");
        }
        self.lock().insert(id, found);
        fetched(found)
    }

    /// A schema fetched before, by fingerprint.
    fn get(&self, fingerprint: &Fingerprint) -> Option<&'static Schema> {
        self.lock()
            .values()
            .flatten()
            .find(|(fp, _)| fp == fingerprint)
            .map(|(_, schema)| *schema)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u32, Option<(Fingerprint, &'static Schema)>>> {
        self.fetched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.schemas.iter().map(|(fp, s)| (fp, full_name(s))))
            .finish()
    }
}

impl SchemaRegistry {
    /// Creates an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses and registers a schema given as Avro JSON (an `.avsc` file's
    /// text); `origin` names it in errors.
    pub fn register(&mut self, origin: &str, avsc: &str) -> Result<Fingerprint> {
        let schema = Schema::parse_str(avsc).map_err(|source| Error::Schema {
            origin: origin.to_owned(),
            source,
        })?;
        Ok(self.insert(schema))
    }

    /// Registers the schema of a Rust record type.
    pub fn register_type<T: Record>(&mut self) -> Fingerprint {
        self.insert(T::get_schema())
    }

    pub(crate) fn insert(&mut self, schema: Schema) -> Fingerprint {
        let (schema, fingerprint) = intern(schema);
        Arc::make_mut(&mut self.schemas).insert(fingerprint, schema);
        fingerprint
    }

    /// Looks a writer schema up by fingerprint: among those registered,
    /// then among those fetched from the schema registry server.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<&'static Schema> {
        match self.schemas.get(fingerprint) {
            Some(schema) => Some(*schema),
            None => self.remote.as_ref().and_then(|r| r.get(fingerprint)),
        }
    }

    /// Knows `schema` as the schema registry's `id` from now on, without
    /// asking the registry.
    pub fn register_id(&mut self, id: u32, schema: Schema) -> Fingerprint {
        let fingerprint = self.insert(schema);
        Arc::make_mut(&mut self.ids).insert(id, fingerprint);
        fingerprint
    }

    /// Looks schema ids it does not know up in the schema registry that
    /// `client` reaches.
    pub fn with_remote(mut self, client: crate::confluent::RegistryClient) -> Self {
        self.remote = Some(Arc::new(Remote {
            client,
            fetched: Mutex::new(HashMap::new()),
        }));
        self
    }

    /// Splits a value in either framing into its writer schema's
    /// fingerprint and the datum: single-object encoding, or the schema
    /// registry's (whose id is mapped to the schema's fingerprint).
    pub fn split<'a>(
        &self,
        bytes: &'a [u8],
    ) -> std::result::Result<(Fingerprint, &'a [u8]), DecodeError> {
        if bytes.first() != Some(&crate::confluent::MAGIC) {
            return split_header(bytes);
        }
        let (id, datum) =
            crate::confluent::split(bytes).ok_or(DecodeError::Truncated { len: bytes.len() })?;
        if let Some(fingerprint) = self.ids.get(&id) {
            return Ok((*fingerprint, datum));
        }
        match &self.remote {
            Some(remote) => Ok((remote.fetch(id)?.0, datum)),
            None => Err(DecodeError::UnknownSchemaId(id)),
        }
    }

    /// Adds every schema of `other` to this registry.
    pub fn extend(&mut self, other: &SchemaRegistry) {
        let mine = Arc::make_mut(&mut self.schemas);
        for (fp, schema) in other.schemas.iter() {
            mine.insert(*fp, schema);
        }
        if !other.ids.is_empty() {
            let ids = Arc::make_mut(&mut self.ids);
            ids.extend(other.ids.iter().map(|(id, fp)| (*id, *fp)));
        }
        if self.remote.is_none() {
            self.remote = other.remote.clone();
        }
    }

    /// Every schema registered, with its fingerprint.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Fingerprint, &'static Schema)> + '_ {
        self.schemas.iter().map(|(fp, schema)| (*fp, *schema))
    }

    /// Number of schemas registered.
    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    /// Whether no schema is registered.
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

/// Encodes values of one record type as single-object Avro.
pub struct Encoder<T: Record> {
    writer: SpecificSingleObjectWriter<T>,
    full_name: Arc<str>,
    fingerprint: Fingerprint,
}

impl<T: Record> fmt::Debug for Encoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("type", &self.full_name)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl<T: Record> Encoder<T> {
    /// Creates an encoder for `T`'s schema.
    pub fn new() -> Result<Self> {
        let schema = T::get_schema();
        let full_name: Arc<str> = full_name(&schema).into();
        let fingerprint = Fingerprint::of(&schema);
        let writer = SpecificSingleObjectWriter::<T>::new().map_err(|source| Error::Schema {
            origin: format!("of type `{full_name}`"),
            source,
        })?;
        Ok(Self {
            writer,
            full_name,
            fingerprint,
        })
    }

    /// Appends the single-object encoding of `value` to `out`.
    pub fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), apache_avro::Error> {
        self.writer.write_ref(value, out).map(|_| ())
    }

    /// The Avro full name of `T`'s schema.
    pub fn full_name(&self) -> &Arc<str> {
        &self.full_name
    }

    /// The fingerprint written in every header.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// One [`Encoder`] per record type of a [`Records`](crate::Records) set, in
/// its order: what a [`Publisher`](crate::Publisher) encodes with.
#[derive(Default)]
pub struct Encoders {
    /// Each type's `Encoder<V>`, and its full name.
    slots: Vec<(Box<dyn std::any::Any + Send>, Arc<str>, Fingerprint)>,
}

impl fmt::Debug for Encoders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.slots.iter().map(|(_, name, _)| name))
            .finish()
    }
}

impl Encoders {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an encoder for `V`, as the next index.
    pub fn push<V: Record>(&mut self) -> Result<()> {
        let encoder = Encoder::<V>::new()?;
        let (name, fingerprint) = (encoder.full_name().clone(), encoder.fingerprint());
        self.slots.push((Box::new(encoder), name, fingerprint));
        Ok(())
    }

    /// Appends the single-object encoding of `value` to `out` with the
    /// encoder at `index`, and returns `index`.
    ///
    /// # Panics
    ///
    /// When the encoder at `index` is not `V`'s: a
    /// [`Records`](crate::Records) implementation that encodes with
    /// another order than it built its encoders in.
    pub fn encode<V: Record>(
        &self,
        index: usize,
        value: &V,
        out: &mut Vec<u8>,
    ) -> Result<usize, apache_avro::Error> {
        let encoder = self.slots[index]
            .0
            .downcast_ref::<Encoder<V>>()
            .expect("a Records set encodes in the order it built its encoders");
        encoder.encode(value, out).map(|()| index)
    }

    /// The Avro full name of the type at `index`.
    pub fn full_name(&self, index: usize) -> &Arc<str> {
        &self.slots[index].1
    }

    /// The full names of every type, in order.
    pub fn full_names(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|(_, name, _)| &**name)
    }

    /// The fingerprint of the type at `index`.
    pub fn fingerprint(&self, index: usize) -> Fingerprint {
        self.slots[index].2
    }

    /// The number of types.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no type.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Splits a single-object encoded value into its writer's fingerprint and
/// the datum.
pub(crate) fn split_header(bytes: &[u8]) -> std::result::Result<(Fingerprint, &[u8]), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { len: bytes.len() });
    }
    if bytes[..2] != SINGLE_OBJECT_MARKER {
        return Err(DecodeError::NoMarker);
    }
    let mut fingerprint = [0u8; 8];
    fingerprint.copy_from_slice(&bytes[2..HEADER_LEN]);
    Ok((Fingerprint(fingerprint), &bytes[HEADER_LEN..]))
}

type Resolved = std::result::Result<Arc<GenericDatumReader<'static>>, (String, String)>;

/// Decodes single-object Avro into one record type, resolving older or
/// newer writer schemas found in a [`SchemaRegistry`].
pub struct Decoder<T: Record> {
    schema: &'static Schema,
    fingerprint: Fingerprint,
    full_name: String,
    own: GenericDatumReader<'static>,
    registry: SchemaRegistry,
    resolved: Mutex<HashMap<Fingerprint, Resolved>>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Record> fmt::Debug for Decoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("type", &self.full_name)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl<T: Record> Decoder<T> {
    /// Creates a decoder for `T` that looks writer schemas up in `registry`.
    pub fn new(registry: SchemaRegistry) -> Result<Self> {
        let (schema, fingerprint) = intern(T::get_schema());
        let full_name = full_name(schema);
        let own = GenericDatumReader::builder(schema)
            .build()
            .map_err(|source| Error::Schema {
                origin: format!("of type `{full_name}`"),
                source,
            })?;
        Ok(Self {
            schema,
            fingerprint,
            full_name,
            own,
            registry,
            resolved: Mutex::new(HashMap::new()),
            _type: std::marker::PhantomData,
        })
    }

    /// Decodes one value, single-object encoded or in the schema
    /// registry's framing.
    pub fn decode(&self, bytes: &[u8]) -> std::result::Result<T, DecodeError> {
        let (fingerprint, mut datum) = self.registry.split(bytes)?;
        let value = if fingerprint == self.fingerprint {
            self.own
                .read_deser::<T>(&mut datum)
                .map_err(DecodeError::Datum)?
        } else {
            let reader = self.resolving_reader(fingerprint)?;
            let value = reader.read_value(&mut datum).map_err(DecodeError::Datum)?;
            apache_avro::from_value::<T>(&value).map_err(DecodeError::Datum)?
        };
        if !datum.is_empty() {
            return Err(DecodeError::TrailingBytes(datum.len()));
        }
        Ok(value)
    }

    fn resolving_reader(
        &self,
        fingerprint: Fingerprint,
    ) -> std::result::Result<Arc<GenericDatumReader<'static>>, DecodeError> {
        let mut cache = self
            .resolved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = match cache.entry(fingerprint) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let writer = self
                    .registry
                    .get(&fingerprint)
                    .ok_or(DecodeError::UnknownFingerprint(fingerprint))?;
                let resolved = match SchemaCompatibility::can_read(writer, self.schema) {
                    Ok(_) => GenericDatumReader::builder(writer)
                        .reader_schema(self.schema)
                        .build()
                        .map(Arc::new)
                        .map_err(|e| (full_name(writer), e.to_string())),
                    Err(e) => Err((full_name(writer), e.to_string())),
                };
                entry.insert(resolved)
            }
        };
        match entry {
            Ok(reader) => Ok(reader.clone()),
            Err((writer, reason)) => Err(DecodeError::Incompatible {
                writer: writer.clone(),
                reader: self.full_name.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// The Avro full name of `T`'s schema.
    pub fn full_name(&self) -> &str {
        &self.full_name
    }
}

/// Encodes a JSON value as single-object Avro with `schema`: JSON is read
/// by Avro schema resolution, so integers widen to doubles, strings name
/// enum symbols and missing fields take their defaults.
pub fn encode_json(
    schema: &Schema,
    json: serde_json::Value,
) -> Result<Vec<u8>, apache_avro::Error> {
    let value = apache_avro::types::Value::try_from(json)?.resolve(schema)?;
    let mut out = SINGLE_OBJECT_MARKER.to_vec();
    out.extend_from_slice(&Fingerprint::of(schema).0);
    #[allow(deprecated)]
    out.extend(apache_avro::to_avro_datum(schema, value)?);
    Ok(out)
}

/// Decodes any value whose writer schema `registry` knows (either
/// framing) into JSON, with the writer schema's full name.
pub fn decode_json(
    registry: &SchemaRegistry,
    bytes: &[u8],
) -> std::result::Result<(String, serde_json::Value), DecodeError> {
    let (fingerprint, mut datum) = registry.split(bytes)?;
    let writer = registry
        .get(&fingerprint)
        .ok_or(DecodeError::UnknownFingerprint(fingerprint))?;
    let value = GenericDatumReader::builder(writer)
        .build()
        .and_then(|reader| reader.read_value(&mut datum))
        .map_err(DecodeError::Datum)?;
    if !datum.is_empty() {
        return Err(DecodeError::TrailingBytes(datum.len()));
    }
    let json = serde_json::Value::try_from(value).map_err(DecodeError::Datum)?;
    Ok((full_name(writer), json))
}
