//! `scribe produce`: JSON lines in, Avro records out, as the topic's owner
//! would write them.

use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use uuid::Uuid;

use scribe::codec::{encode_json, full_name};
use scribe::headers::Outbound;
use scribe::{Error, Result};

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
        let producer: BaseProducer<Deliveries> = self
            .client()?
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .create_with_context(Deliveries::default())
            .map_err(|e| Error::kafka("cannot create producer", e))?;
        let ty = full_name(&owner.output_schema);
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
                .and_then(|(key, value)| {
                    encode_json(&owner.output_schema, value)
                        .map(|bytes| (key, bytes))
                        .map_err(|e| format!("does not fit `{ty}`: {}", scribe::error_chain(&e)))
                });
            let (key, bytes) = match encoded {
                Ok(encoded) => encoded,
                Err(reason) => {
                    eprintln!("line {number}: {reason}");
                    rejected += 1;
                    continue;
                }
            };
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
                        return Err(Error::Publish {
                            topic: topic.to_owned(),
                            source: e,
                        });
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        producer
            .flush(deadline.saturating_duration_since(Instant::now()))
            .map_err(|e| Error::Publish {
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
            return Err(Error::Publish {
                topic: topic.to_owned(),
                source: first,
            });
        }
        Ok(rejected)
    }
}

/// Splits `{"key": ..., "value": ...}` into its parts.
fn envelope(
    json: serde_json::Value,
) -> std::result::Result<(Option<String>, serde_json::Value), String> {
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
    Ok((key, value))
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
