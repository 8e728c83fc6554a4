//! How a store's keys are read from text and its values written as JSON
//! ([`StoreJson`]), made where the store's types are known, for reading
//! an actor's state from outside the actor (`view`).

// Read by the admin endpoint only.
#![cfg_attr(not(feature = "admin"), allow(dead_code))]

use crate::error::Result;
use crate::wire::codec::{Decoder, Encoder, SINGLE_OBJECT_HEADER_LEN, SchemaRegistry};
use crate::wire::record::Record;

/// Turns a key given as text into a store's key bytes.
type KeyOfText = Box<dyn Fn(&str) -> std::result::Result<Vec<u8>, String> + Send + Sync>;
/// Turns a store's value bytes into JSON.
type ValueJson = Box<dyn Fn(&[u8]) -> std::result::Result<serde_json::Value, String> + Send + Sync>;

/// A store's keys from text and values to JSON, for reading it from
/// outside the actor.
pub(crate) struct StoreJson {
    pub(super) key: KeyOfText,
    pub(super) value: ValueJson,
}

/// The [`StoreJson`] of a store of `K` to `V`, its values read with the
/// schemas of `registry`. A key is the text as JSON of `K` (`42`,
/// `{"host":"a"}`), or, when that does not parse, the text itself as a
/// string (`web-1` for a `String` key). The codecs are made per query
/// (queries are rare, and `K` and `V` need not be `Sync`); made once here,
/// so that a type without a schema fails the instance's start.
pub(crate) fn store_json<K: Record, V: Record>(registry: &SchemaRegistry) -> Result<StoreJson> {
    Encoder::<K>::new()?;
    Decoder::<V>::new(registry.clone())?;
    let registry = registry.clone();
    Ok(StoreJson {
        key: Box::new(|text| {
            let keys = Encoder::<K>::new().map_err(|e| e.to_string())?;
            let key: K = serde_json::from_str(text)
                .or_else(|_| serde_json::from_value(serde_json::Value::String(text.to_owned())))
                .map_err(|e| e.to_string())?;
            let mut bytes = Vec::new();
            keys.encode(&key, &mut bytes)
                .map_err(|e| format!("cannot encode the key `{text}`: {e}"))?;
            Ok(bytes.split_off(SINGLE_OBJECT_HEADER_LEN))
        }),
        value: Box::new(move |bytes| {
            let decoder = Decoder::<V>::new(registry.clone()).map_err(|e| e.to_string())?;
            let value = decoder
                .decode(bytes)
                .map_err(|e| format!("a value does not decode: {e}"))?;
            serde_json::to_value(&value).map_err(|e| format!("a value has no JSON form: {e}"))
        }),
    })
}
