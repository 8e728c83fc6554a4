//! Reading values: a [`Decoder`] per record type, resolving older or
//! newer writer schemas, and any value read as JSON ([`decode_json`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::SchemaCompatibility;

use super::decode_error::DecodeError;
use super::fingerprint::Fingerprint;
use super::schema::{SchemaRegistry, full_name, intern};
use crate::error::{Error, Result};
use crate::wire::record::Record;

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
