//! Writer schemas: the [`SchemaRegistry`] of every schema a node knows,
//! by fingerprint and by schema registry id, and how a value in either
//! framing names its writer's schema.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use apache_avro::Schema;

use super::decode_error::DecodeError;
use super::fingerprint::{Fingerprint, HEADER_LEN, SINGLE_OBJECT_MARKER};
use crate::error::{Error, Result};
use crate::wire::record::Record;

/// Schemas live for the whole process once seen: decoders borrow them, and a
/// program registers a bounded set of schemas.
pub(crate) fn intern(schema: Schema) -> (&'static Schema, Fingerprint) {
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

/// Where a [`SchemaRegistry`] looks up the schemas of registry ids it
/// did not learn at start: the schema registry's REST client
/// (`scribe::confluent::RegistryClient`, feature `registry`), or any other
/// source of schemas by id.
pub trait SchemaLookup: Send + Sync + 'static {
    /// Where it looks, for messages (never with credentials).
    fn url(&self) -> &str;

    /// The schema registered with `id`; `None` when there is no such id.
    fn schema(&self, id: u32) -> Result<Option<Schema>>;
}

/// The schema registry server, and the ids asked of it so far.
struct Remote {
    client: Box<dyn SchemaLookup>,
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
    pub fn with_remote(mut self, client: impl SchemaLookup) -> Self {
        self.remote = Some(Arc::new(Remote {
            client: Box::new(client),
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
        if bytes.first() != Some(&crate::wire::framing::MAGIC) {
            return split_header(bytes);
        }
        let (id, datum) = crate::wire::framing::split(bytes)
            .ok_or(DecodeError::Truncated { len: bytes.len() })?;
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
