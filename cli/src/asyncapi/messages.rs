//! The pieces of an AsyncAPI document that `document` puts together:
//! ids and JSON pointers, the metadata headers, and each record type as a
//! message under `components.messages`, once (with the reply a gateway
//! awaits, and messages for values that are not Avro).

use serde_json::{Value, json};

/// The schema format of every payload: Avro, as AsyncAPI names it.
pub(super) const AVRO: &str = "application/vnd.apache.avro;version=1.9.0";
/// The Kafka bindings' version.
pub(super) const KAFKA_BINDING: &str = "0.5.0";

/// A name usable as an AsyncAPI component or channel id (letters, digits,
/// `.`, `-`, `_`).
pub(super) fn id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A JSON pointer segment (`/` and `~` escaped).
pub(super) fn pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The headers every record carries: the compact envelope, or the
/// CloudEvents ones (see `docs/envelope.md`).
fn headers() -> Value {
    json!({
        "type": "object",
        "description": "Every record's metadata: in one `scribe_envelope` header (an Avro `scribe.Envelope`, the default), or as CloudEvents Kafka headers (`envelope = \"cloudevents\"`). See docs/envelope.md.",
        "properties": {
            "scribe_envelope": {"type": "string", "contentEncoding": "binary", "description": "The compact envelope: id, type, source, time, correlation and causation ids, trace context."},
            "ce_id": {"type": "string", "description": "The record's unique id."},
            "ce_type": {"type": "string", "description": "The Avro full name of its value's schema."},
            "ce_source": {"type": "string", "description": "node/actor that published it."},
            "ce_time": {"type": "string", "format": "date-time"},
            "correlation_id": {"type": "string", "description": "Shared by a whole chain of records."},
            "causation_id": {"type": "string", "description": "The ce_id of the record whose handling published this one."},
            "traceparent": {"type": "string", "description": "W3C trace context."}
        }
    })
}

/// How an owner frames its values: `None` for single-object encoding,
/// else the subject strategy it registers its schemas under.
pub(super) fn framing(actor: &scribe::ActorInfo) -> Option<scribe::SubjectStrategy> {
    (actor.encoding == scribe::Encoding::Confluent).then_some(actor.subject_strategy)
}

/// The key of record type `name`'s message in `framing`.
pub(super) fn message_key(name: &str, framing: Option<scribe::SubjectStrategy>) -> String {
    match framing {
        None => id(name),
        Some(strategy) => id(&format!("{name}.confluent-{strategy}")),
    }
}

/// Adds record type `name`, framed as `framing` says, to `messages` once;
/// returns its key there.
pub(super) fn message(
    messages: &mut serde_json::Map<String, Value>,
    name: &str,
    schema: &apache_avro::Schema,
    framing: Option<scribe::SubjectStrategy>,
) -> String {
    let key = message_key(name, framing);
    messages.entry(key.clone()).or_insert_with(|| {
        // The full schema, as the writer declares it (docs included).
        let schema = serde_json::to_value(schema).unwrap_or_else(|_| json!(schema.canonical_form()));
        let mut message = json!({
            "name": name,
            "title": name,
            "contentType": "application/avro",
            "summary": format!("`{name}` in Avro single-object encoding (2-byte marker, 8-byte schema fingerprint, datum)."),
            "headers": headers(),
            "correlationId": {"location": "$message.header#/correlation_id"},
            "payload": {"schemaFormat": AVRO, "schema": schema},
        });
        if let Some(strategy) = framing {
            let lookup = match strategy {
                scribe::SubjectStrategy::RecordName => "RecordNameStrategy",
                scribe::SubjectStrategy::TopicRecordName => "TopicRecordNameStrategy",
                _ => "TopicNameStrategy",
            };
            message["summary"] = json!(format!(
                "`{name}` in the Confluent Schema Registry's framing (byte 0, 4-byte schema id, datum), registered under {lookup}."
            ));
            message["bindings"] = json!({"kafka": {
                "schemaIdLocation": "payload",
                "schemaIdPayloadEncoding": "confluent",
                "schemaLookupStrategy": lookup,
                "bindingVersion": KAFKA_BINDING,
            }});
        }
        message
    });
    key
}

/// The reply of a request `responder` answers: on its channel, the
/// message of `reply_type` when one is named, else of each type it writes.
pub(super) fn reply(responder: &scribe::ActorInfo, reply_type: Option<&str>) -> Value {
    let channel = id(&responder.output);
    let names: Vec<String> = responder
        .output_schemas
        .iter()
        .map(scribe::codec::full_name)
        .filter(|name| reply_type.is_none_or(|wanted| wanted == name))
        .collect();
    let mut keys: Vec<String> = names
        .iter()
        .map(|name| message_key(name, framing(responder)))
        .collect();
    if responder.output_schemas.is_empty() {
        // JSON: the one message its channel carries.
        keys.push(id(&format!("{}.json", responder.name)));
    }
    let messages: Vec<Value> = keys
        .iter()
        .map(|key| json!({"$ref": format!("#/channels/{}/messages/{}", pointer(&channel), pointer(key))}))
        .collect();
    json!({
        "channel": {"$ref": format!("#/channels/{}", pointer(&channel))},
        "messages": messages,
    })
}

/// Adds a message for values that are not Avro once (JSON a mirror
/// writes, or what an outside producer writes to a topic read with the
/// reader's own function); returns its key there.
pub(super) fn outside_message(
    messages: &mut serde_json::Map<String, Value>,
    name: &str,
    content_type: &str,
    summary: String,
) -> String {
    let key = id(name);
    messages.entry(key.clone()).or_insert_with(|| {
        json!({
            "name": name,
            "title": name,
            "contentType": content_type,
            "summary": summary,
        })
    });
    key
}
