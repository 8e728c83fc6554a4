//! Records flow through a chain of three actors with their types, keys,
//! metadata (correlation carried, causation linked) and per-key order
//! intact; the first two write the compact envelope, the last CloudEvents
//! headers, and the links hold across the two.

use std::collections::HashMap;
use std::time::Duration;

use scribe::codec::Decoder;
use scribe::prelude::*;
use scribe::{Envelope, Record, SchemaRegistry};
use scribe_tests::records::{Doubled, Labeled, Number};
use scribe_tests::{RawRecord, TestKafka, unique};

const KEYS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
const PER_KEY: i64 = 40;

/// A source: publishes `PER_KEY` numbers for each key when it starts.
struct Numbers {
    out: Publisher<Number>,
}

impl Actor for Numbers {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        for seq in 0..PER_KEY {
            for key in KEYS {
                let number = Number {
                    key: key.into(),
                    seq,
                };
                self.out.publish(key, number).expect("published");
            }
        }
    }
}

impl TopicActor for Numbers {
    type Output = Number;
    type Args = ();
    fn create(_: (), out: Publisher<Number>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

struct Doubler {
    out: Publisher<Doubled>,
}

impl Actor for Doubler {
    type Context = Context<Self>;
}

impl TopicActor for Doubler {
    type Output = Doubled;
    type Args = String;
    fn subscriptions(input: &String, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Number>(input.as_str());
    }
    fn create(_: String, out: Publisher<Doubled>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<Number>> for Doubler {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Number>, _: &mut Context<Self>) -> Self::Result {
        let key = m.key_str().ok_or("numbers must be keyed")?;
        let doubled = Doubled {
            key: m.key.clone(),
            seq: m.seq,
            value: m.seq * 2,
        };
        self.out.publish(key, doubled)?;
        Ok(())
    }
}

struct Labeler {
    out: Publisher<Labeled>,
}

impl Actor for Labeler {
    type Context = Context<Self>;
}

impl TopicActor for Labeler {
    type Output = Labeled;
    type Args = String;
    fn subscriptions(input: &String, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Doubled>(input.as_str());
    }
    fn create(_: String, out: Publisher<Labeled>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<Doubled>> for Labeler {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Doubled>, _: &mut Context<Self>) -> Self::Result {
        let labeled = Labeled {
            key: m.key.clone(),
            seq: m.seq,
            value: m.value,
            label: format!("{}#{}", m.key, m.seq),
        };
        self.out.publish(m.key_str().unwrap_or_default(), labeled)?;
        Ok(())
    }
}

fn decode<T: Record>(records: &[RawRecord]) -> Vec<(T, &RawRecord)> {
    let decoder = Decoder::<T>::new(SchemaRegistry::new()).unwrap();
    records
        .iter()
        .map(|r| (decoder.decode(&r.value).expect("decodes"), r))
        .collect()
}

#[actix::test]
async fn chain_keeps_types_keys_headers_and_order() {
    let kafka = TestKafka::from_env();
    let [numbers, doubled, labeled] = ["numbers", "doubled", "labeled"].map(unique);
    let labeler = unique("labeler");
    let node = kafka
        .node("chain")
        .actor::<Numbers>(unique("numbers"), &numbers, ())
        .actor::<Doubler>(unique("doubler"), &doubled, numbers.clone())
        .actor::<Labeler>(&labeler, &labeled, doubled.clone())
        .envelope(&labeler, Envelope::CloudEvents)
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts");

    let total = KEYS.len() * PER_KEY as usize;
    let wait = Duration::from_secs(60);
    let out = kafka.read(&labeled, total, wait).await;
    let mid = kafka.read(&doubled, total, wait).await;
    let inp = kafka.read(&numbers, total, wait).await;
    node.shutdown().await.expect("clean shutdown");
    assert_eq!((inp.len(), mid.len(), out.len()), (total, total, total));

    let inputs: HashMap<(String, i64), &RawRecord> = decode::<Number>(&inp)
        .into_iter()
        .map(|(n, r)| ((n.key, n.seq), r))
        .collect();
    let middles: HashMap<(String, i64), &RawRecord> = decode::<Doubled>(&mid)
        .into_iter()
        .map(|(d, r)| ((d.key, d.seq), r))
        .collect();
    let outputs = decode::<Labeled>(&out);

    let mut last_seq: HashMap<String, (i32, i64)> = HashMap::new();
    let mut by_partition: Vec<_> = outputs.iter().collect();
    by_partition.sort_by_key(|(_, r)| (r.partition, r.offset));
    for (value, raw) in by_partition {
        // Type, value and key.
        assert_eq!(raw.header("ce_type"), "scribe.test.Labeled");
        assert_eq!(value.label, format!("{}#{}", value.key, value.seq));
        assert_eq!(value.value, value.seq * 2);
        assert_eq!(raw.key_str(), value.key);
        // CloudEvents headers from the last actor, the compact envelope
        // from the others.
        assert_eq!(raw.envelope, Envelope::CloudEvents);
        assert_eq!(raw.header("ce_specversion"), "1.0");
        assert_eq!(raw.header("content-type"), "application/avro");
        assert_eq!(raw.header("ce_source"), format!("chain/{labeler}"));
        assert!(uuid::Uuid::parse_str(raw.header("ce_id")).is_ok());
        assert!(
            humantime::parse_rfc3339(raw.header("ce_time")).is_ok(),
            "{}",
            raw.header("ce_time")
        );
        // Causation links each record to the one handled when it was published;
        // correlation is the source record's id, carried along the chain.
        let middle = middles[&(value.key.clone(), value.seq)];
        let input = inputs[&(value.key.clone(), value.seq)];
        assert_eq!(middle.envelope, Envelope::Compact);
        assert_eq!(input.envelope, Envelope::Compact);
        assert_eq!(
            middle.header("ce_specversion"),
            "",
            "implied by the envelope"
        );
        assert!(middle.header("ce_source").starts_with("chain/doubler"));
        assert!(uuid::Uuid::parse_str(middle.header("ce_id")).is_ok());
        assert_eq!(raw.header("causation_id"), middle.header("ce_id"));
        assert_eq!(middle.header("causation_id"), input.header("ce_id"));
        assert_eq!(
            input.header("causation_id"),
            "",
            "a source record has no cause"
        );
        assert_eq!(input.header("correlation_id"), input.header("ce_id"));
        assert_eq!(middle.header("correlation_id"), input.header("ce_id"));
        assert_eq!(raw.header("correlation_id"), input.header("ce_id"));
        // Per-key order: one partition per key, sequence numbers ascending.
        if let Some((partition, seq)) = last_seq.get(&value.key) {
            assert_eq!(
                *partition, raw.partition,
                "key {} changed partition",
                value.key
            );
            assert!(
                value.seq > *seq,
                "key {} out of order: {} after {}",
                value.key,
                value.seq,
                seq
            );
        }
        last_seq.insert(value.key.clone(), (raw.partition, value.seq));
    }
    assert_eq!(last_seq.len(), KEYS.len());
    assert!(last_seq.values().all(|(_, seq)| *seq == PER_KEY - 1));
}
