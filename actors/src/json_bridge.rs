//! JSON bridges at the edge: where a system built with scribe meets topics
//! written outside it in JSON, and readers outside it that want JSON. The
//! topics scribe owns stay Avro.
//!
//! [`JsonIn`] (config kinds `json-in.<record>`, for instance
//! `json-in.host-metrics`):
//! - Reads: JSON objects from a topic it does not own, by name (`topic`)
//!   or by pattern (`pattern`, like `acapy-inbound-.*`).
//! - Writes: each as the typed Avro record `T`, to its own topic. Each
//!   field of `T`'s schema is taken from the object's key of the same name,
//!   or from where `fields` says (a key, or a JSON pointer such as
//!   `/metrics/cpu`); a missing field takes its schema default. Numbers
//!   widen (an integer is read into a `double` field), strings name enum
//!   symbols.
//! - A value that is not JSON, not an object, or does not fit `T` is
//!   dead-lettered at once with the reason, naming the field.
//! - Keys by: the record's key, kept.
//!
//! [`JsonOut`] (config kind `json-out`):
//! - Reads: every record of one topic scribe owns, whatever its types.
//! - Writes: each as JSON text to its own topic, with the record's key and
//!   headers (its `ce_id` and `ce_type` too), the metadata as CloudEvents
//!   headers unless its `envelope` says otherwise: its readers are outside
//!   scribe. Readers in scribe take its topic only with
//!   `Subscriptions::subscribe_foreign`.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use apache_avro::Schema;
use scribe::prelude::*;
use scribe::{AnyRecord, Record};
use serde_json::Value;

/// Parameters of a [`JsonIn`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonInArgs {
    /// The topic to read. Give this or `pattern`.
    #[serde(default)]
    pub topic: Option<String>,
    /// The topics to read: a regular expression matched from the start of
    /// each topic name. Give this or `topic`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Where each field of the record is found in the JSON, when not under
    /// its own name: a key of the object, or a JSON pointer (`/a/b`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// Publishes typed Avro records of type `T` made from JSON written outside
/// scribe.
#[derive(Debug)]
pub struct JsonIn<T: Record> {
    out: Publisher<T>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Record + Unpin> Actor for JsonIn<T> {
    type Context = Context<Self>;
}

impl<T: Record + Unpin> TopicActor for JsonIn<T> {
    type Output = T;
    type Args = JsonInArgs;

    fn subscriptions(args: &JsonInArgs, subs: &mut Subscriptions<Self>) {
        let mapping = Mapping::<T>::new(&args.fields);
        let decode = move |bytes: &[u8]| mapping.read(bytes);
        match (&args.topic, &args.pattern) {
            (Some(topic), _) => subs.subscribe_foreign(topic.as_str(), decode),
            (None, Some(pattern)) => subs.subscribe_foreign_matching(pattern.as_str(), decode),
            // Refused by `validate`.
            (None, None) => subs,
        };
    }

    fn validate(args: &JsonInArgs) -> Result<(), ActorError> {
        match (&args.topic, &args.pattern) {
            (Some(_), Some(_)) => return Err("give `topic` or `pattern`, not both".into()),
            (None, None) => return Err("give `topic` or `pattern`: what to read".into()),
            _ => {}
        }
        let schema = T::get_schema();
        let Schema::Record(record) = &schema else {
            return Err(format!(
                "`{}` is not an Avro record",
                scribe::codec::full_name(&schema)
            )
            .into());
        };
        for field in args.fields.keys() {
            if !record.fields.iter().any(|f| &f.name == field) {
                return Err(format!(
                    "fields.{field}: `{}` has no field `{field}`",
                    scribe::codec::full_name(&schema)
                )
                .into());
            }
        }
        Ok(())
    }

    fn create(_: JsonInArgs, out: Publisher<T>) -> Result<Self, ActorError> {
        Ok(Self {
            out,
            _type: PhantomData,
        })
    }
}

impl<T: Record + Unpin> Handler<Inbound<T>> for JsonIn<T> {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, m: Inbound<T>, _: &mut Context<Self>) -> Self::Result {
        match m.key() {
            Some(key) => {
                let key = key.to_vec();
                self.out.publish(&key, m.into_value())?;
            }
            None => self.out.publish_unkeyed(m.into_value())?,
        }
        Ok(())
    }
}

/// How a JSON object becomes a `T`: where each of its fields is.
struct Mapping<T> {
    schema: Schema,
    name: String,
    /// Each field: its name, where it is in the JSON, whether it has a
    /// default, and its schema.
    fields: Vec<(String, String, bool, Schema)>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Record> Mapping<T> {
    fn new(renames: &BTreeMap<String, String>) -> Self {
        let schema = T::get_schema();
        let name = scribe::codec::full_name(&schema);
        let fields = match &schema {
            Schema::Record(record) => record
                .fields
                .iter()
                .map(|f| {
                    let source = renames.get(&f.name).unwrap_or(&f.name).clone();
                    (
                        f.name.clone(),
                        source,
                        f.default.is_some(),
                        f.schema.clone(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        Self {
            schema,
            name,
            fields,
            _type: PhantomData,
        }
    }

    /// Reads one value, or says what is wrong with it.
    fn read(&self, bytes: &[u8]) -> Result<T, String> {
        let json: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the value is not JSON: {e}"))?;
        if !json.is_object() {
            return Err(format!(
                "the value is JSON but not an object: {}",
                excerpt(&json)
            ));
        }
        let mut object = serde_json::Map::new();
        for (field, source, has_default, schema) in &self.fields {
            let found = if source.starts_with('/') {
                json.pointer(source)
            } else {
                json.get(source)
            };
            match found {
                Some(value) => {
                    // Checked one by one first, so the error names the field.
                    apache_avro::types::Value::try_from(value.clone())
                        .and_then(|v| v.resolve(schema))
                        .map_err(|e| {
                            format!(
                                "field `{field}` of `{}` (from `{source}`): {} does not fit: {e}",
                                self.name,
                                excerpt(value)
                            )
                        })?;
                    object.insert(field.clone(), value.clone());
                }
                // Schema resolution fills it in.
                None if *has_default => {}
                None => {
                    return Err(format!(
                        "field `{field}` of `{}`: no `{source}` in the value, and the field has no default",
                        self.name
                    ));
                }
            }
        }
        let value = apache_avro::types::Value::try_from(Value::Object(object))
            .and_then(|v| v.resolve(&self.schema))
            .map_err(|e| format!("the value does not fit `{}`: {e}", self.name))?;
        apache_avro::from_value::<T>(&value)
            .map_err(|e| format!("the value does not fit `{}`: {e}", self.name))
    }
}

/// A value as JSON text, cut short for an error message.
fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// Parameters of a [`JsonOut`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonOutArgs {
    /// The topic to mirror: one a scribe actor owns.
    pub topic: String,
}

/// Mirrors an owned topic to JSON for readers outside scribe.
#[derive(Debug)]
pub struct JsonOut {
    out: Publisher<AnyRecord>,
}

impl Actor for JsonOut {
    type Context = Context<Self>;
}

impl TopicActor for JsonOut {
    type Output = AnyRecord;
    type Args = JsonOutArgs;

    fn subscriptions(args: &JsonOutArgs, subs: &mut Subscriptions<Self>) {
        // Every type the topic carries, read with its writer's schema.
        subs.on_prefix(args.topic.as_str(), "");
    }

    /// Its readers are outside scribe: the metadata as plain headers.
    fn envelope() -> Option<scribe::Envelope> {
        Some(scribe::Envelope::CloudEvents)
    }

    fn create(_: JsonOutArgs, out: Publisher<AnyRecord>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<AnyRecord>> for JsonOut {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, m: Inbound<AnyRecord>, _: &mut Context<Self>) -> Self::Result {
        self.out.forward(&m)?;
        Ok(())
    }
}
