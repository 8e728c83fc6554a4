//! `scribe produce`: JSON lines in, Avro records out, as the topic's owner
//! would write them.

use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use uuid::Uuid;

use crate::error::{Error, Result};
use scribe::codec::{encode_json, full_name};
use scribe::headers::Outbound;

use super::Tool;

impl Tool {
    /// `scribe produce`: returns how many lines were rejected.
    pub(crate) fn produce(
        &self,
        topic: &str,
        as_owner: bool,
        input: impl BufRead,
    ) -> Result<usize> {
        let owner = self
            .node
            .actors()
            .into_iter()
            .find(|a| a.output == topic)
            .ok_or_else(|| Error::Config {
                file: self.file.clone(),
                message: format!(
                    "no actor owns topic `{topic}`, so there is no schema to encode with"
                ),
            })?;
        if !as_owner {
            return Err(Error::Config {
                file: self.file.clone(),
                message: format!(
                    "topic `{topic}` is owned by actor `{}`: writing there makes a second \
                     writer; pass --as-owner if that is meant",
                    owner.name
                ),
            });
        }
        // In the registry's framing: each type's id, registered (or found)
        // under the owner's subject, as the owner does when it starts.
        let mut frames = std::collections::HashMap::new();
        if owner.encoding == scribe::Encoding::Confluent {
            let settings = self
                .node
                .schema_registry_settings()
                .ok_or_else(|| Error::Config {
                    file: self.file.clone(),
                    message: "encoding confluent needs [registry]".into(),
                })?;
            let client = scribe::confluent::RegistryClient::new(settings)?;
            for (subject, schema) in owner.subjects() {
                let id = client.register(&subject, schema)?;
                frames.insert(full_name(schema), scribe::confluent::header(id));
            }
        }
        let producer: BaseProducer<Deliveries> = self
            .client()?
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .create_with_context(Deliveries::default())
            .map_err(|e| scribe::Error::kafka("cannot create producer", e))?;
        let source = format!("{}/scribe-produce", self.node.name());
        let mut rejected = 0;
        let mut envelope_buf = Vec::new();
        for (number, line) in input.lines().enumerate() {
            let number = number + 1;
            let line = line.map_err(|e| Error::Config {
                file: "<stdin>".into(),
                message: format!("line {number}: {e}"),
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let encoded = serde_json::from_str::<serde_json::Value>(&line)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(envelope)
                .and_then(|(key, ty, value)| {
                    let schema = schema_of(&owner.output_schemas, ty.as_deref())?;
                    let ty = full_name(schema);
                    encode_json(schema, value)
                        .map(|bytes| (key, ty.clone(), bytes))
                        .map_err(|e| format!("does not fit `{ty}`: {}", scribe::error_chain(&e)))
                });
            let (key, ty, mut bytes) = match encoded {
                Ok(encoded) => encoded,
                Err(reason) => {
                    eprintln!("line {number}: {reason}");
                    rejected += 1;
                    continue;
                }
            };
            if let Some(frame) = frames.get(&ty) {
                scribe::confluent::reframe(&mut bytes, frame);
            }
            let id = Uuid::new_v4().to_string();
            let now = SystemTime::now();
            let time = humantime::format_rfc3339_millis(now).to_string();
            let outbound = Outbound {
                id: &id,
                ty: &ty,
                source: &source,
                time: &time,
                correlation_id: &id,
                causation_id: None,
                traceparent: None,
                tracestate: None,
            };
            let headers = outbound.to_kafka(owner.envelope, &mut envelope_buf);
            let mut record = BaseRecord::to(topic).payload(&bytes).headers(headers);
            if let Some(key) = &key {
                record = record.key(key.as_str());
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull,
                        ),
                        back,
                    )) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => {
                        return Err(scribe::Error::Publish {
                            topic: topic.to_owned(),
                            source: e,
                        }
                        .into());
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        producer
            .flush(deadline.saturating_duration_since(Instant::now()))
            .map_err(|e| scribe::Error::Publish {
                topic: topic.to_owned(),
                source: e,
            })?;
        // Flushed is not delivered: each record's report says.
        let failures = producer.context().failures.lock().map_or(0, |f| f.0);
        if let Some(first) = producer
            .context()
            .failures
            .lock()
            .ok()
            .and_then(|f| f.1.clone())
        {
            eprintln!("{failures} records were not delivered");
            return Err(scribe::Error::Publish {
                topic: topic.to_owned(),
                source: first,
            }
            .into());
        }
        Ok(rejected)
    }
}

/// The schema a line's value is encoded with: the one its `type` names
/// among those the owner writes, or the owner's only one.
fn schema_of<'a>(
    written: &'a [apache_avro::Schema],
    ty: Option<&str>,
) -> std::result::Result<&'a apache_avro::Schema, String> {
    let names = || {
        written
            .iter()
            .map(|s| format!("`{}`", full_name(s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (written, ty) {
        ([], _) => {
            Err("the topic's owner writes JSON, not Avro; there is no schema to encode with".into())
        }
        ([only], None) => Ok(only),
        (_, None) => Err(format!(
            "the topic carries several types ({}): say which with \"type\"",
            names()
        )),
        (_, Some(ty)) => written
            .iter()
            .find(|s| full_name(s) == ty)
            .ok_or_else(|| format!("type `{ty}` is not one the owner writes ({})", names())),
    }
}

/// Splits `{"key": ..., "type": ..., "value": ...}` into its parts.
fn envelope(
    json: serde_json::Value,
) -> std::result::Result<(Option<String>, Option<String>, serde_json::Value), String> {
    let serde_json::Value::Object(mut fields) = json else {
        return Err("expected an object {\"key\": ..., \"value\": {...}}".into());
    };
    let value = fields
        .remove("value")
        .ok_or("missing `value` (each line is {\"key\": ..., \"value\": {...}})")?;
    let key = match fields.remove("key") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(key)) => Some(key),
        Some(other) => Some(other.to_string()),
    };
    let ty = match fields.remove("type") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(ty)) => Some(ty),
        Some(other) => return Err(format!("`type` must be a string, not {other}")),
    };
    Ok((key, ty, value))
}

/// Counts the records `scribe produce` sent that the brokers did not take,
/// keeping the first reason.
#[derive(Default)]
struct Deliveries {
    failures: std::sync::Mutex<(usize, Option<rdkafka::error::KafkaError>)>,
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let (Err((error, _)), Ok(mut failures)) = (result, self.failures.lock()) {
            failures.0 += 1;
            failures.1.get_or_insert_with(|| error.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::Schema;

    fn record(name: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"{name}","namespace":"module.test","fields":[{{"name":"run","type":"string"}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_line_names_its_type_when_the_owner_writes_several() {
        let written = [record("Started"), record("Returned")];
        let line = serde_json::json!({"key": "r1", "type": "module.test.Returned", "value": {"run": "r1"}});
        let (key, ty, value) = envelope(line).unwrap();
        assert_eq!(
            (key.as_deref(), ty.as_deref()),
            (Some("r1"), Some("module.test.Returned"))
        );
        assert_eq!(
            full_name(schema_of(&written, ty.as_deref()).unwrap()),
            "module.test.Returned"
        );
        assert_eq!(value["run"], "r1");
        assert_eq!(
            schema_of(&written, None).unwrap_err(),
            "the topic carries several types (`module.test.Started`, `module.test.Returned`): \
             say which with \"type\""
        );
        assert_eq!(
            schema_of(&written, Some("module.test.Skipped")).unwrap_err(),
            "type `module.test.Skipped` is not one the owner writes (`module.test.Started`, \
             `module.test.Returned`)"
        );
    }

    #[test]
    fn a_line_may_leave_out_the_type_of_a_topic_of_one_type() {
        let written = [record("Started")];
        assert_eq!(
            full_name(schema_of(&written, None).unwrap()),
            "module.test.Started"
        );
        let line = serde_json::json!({"type": 3, "value": {}});
        assert_eq!(
            envelope(line).unwrap_err(),
            "`type` must be a string, not 3"
        );
        assert_eq!(
            schema_of(&[], None).unwrap_err(),
            "the topic's owner writes JSON, not Avro; there is no schema to encode with"
        );
    }
}
