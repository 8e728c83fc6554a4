//! Writing values: an [`Encoder`] per record type, the [`Encoders`] of a
//! set of types, and JSON written as Avro ([`encode_json`]).

use std::fmt;
use std::sync::Arc;

use apache_avro::{Schema, SpecificSingleObjectWriter};

use super::fingerprint::{Fingerprint, SINGLE_OBJECT_MARKER};
use super::schema::full_name;
use crate::error::{Error, Result};
use crate::wire::record::Record;

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
