//! `scribe::partition_for_key` predicts exactly where the producer puts a
//! keyed record (the simulator relies on it for parity with the broker).

use std::time::Duration;

use scribe::partition_for_key;
use scribe::prelude::*;
use scribe_tests::records::Number;
use scribe_tests::{TestKafka, unique};

const KEYS: usize = 200;
const PARTITIONS: i32 = 7;

/// Publishes one number under each of `KEYS` keys when it starts.
struct Spread {
    out: Publisher<Number>,
}

impl Actor for Spread {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        for i in 0..KEYS {
            let key = format!("key-{i}");
            self.out
                .publish(
                    &key,
                    Number {
                        key: key.clone(),
                        seq: i as i64,
                    },
                )
                .expect("published");
        }
    }
}

impl TopicActor for Spread {
    type Output = Number;
    type Args = ();
    fn create(_: (), out: Publisher<Number>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

#[actix::test]
async fn every_key_lands_on_the_partition_the_partitioner_predicts() {
    let kafka = TestKafka::from_env();
    let topic = unique("spread");
    let node = kafka
        .node("spread")
        .topic(&topic, TopicSpec::new(PARTITIONS, 1))
        .actor::<Spread>(unique("spread"), &topic, ())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let records = kafka.read(&topic, KEYS, Duration::from_secs(30)).await;
    node.shutdown().await.unwrap();

    assert_eq!(records.len(), KEYS);
    let used: std::collections::BTreeSet<i32> = records.iter().map(|r| r.partition).collect();
    assert_eq!(
        used.len(),
        PARTITIONS as usize,
        "200 keys reach every partition"
    );
    for record in &records {
        let key = record.key.as_deref().unwrap();
        assert_eq!(
            record.partition,
            partition_for_key(key, PARTITIONS),
            "key {}",
            record.key_str()
        );
    }
}
