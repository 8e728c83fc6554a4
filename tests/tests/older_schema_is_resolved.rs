//! An actor built with a newer schema version reads records written with an
//! older compatible one, found by fingerprint among the registered `.avsc` files.

use std::time::Duration;

use scribe::SchemaRegistry;
use scribe::codec::{Decoder, Encoder};
use scribe::prelude::*;
use scribe_schemas::HostMetrics;
use scribe_schemas::metrics::v1;
use scribe_tests::{TestKafka, unique};

/// Forwards host metrics as the current version.
struct Forward {
    out: Publisher<HostMetrics>,
}

impl Actor for Forward {
    type Context = Context<Self>;
}

impl TopicActor for Forward {
    type Output = HostMetrics;
    type Args = String;
    fn subscriptions(input: &String, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<HostMetrics>(input.as_str());
    }
    fn create(_: String, out: Publisher<HostMetrics>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<HostMetrics>> for Forward {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<HostMetrics>, _: &mut Context<Self>) -> Self::Result {
        self.out.publish(&m.host, m.value())?;
        Ok(())
    }
}

#[actix::test]
async fn a_newer_actor_reads_records_written_with_an_older_schema() {
    let kafka = TestKafka::from_env();
    let (input, output) = (unique("metrics-v1"), unique("metrics-v2"));
    kafka.create_topic(&input, 1).await;
    let old = v1::HostMetrics {
        host: "old-node".into(),
        cpu_percent: 55.5,
        mem_used_percent: 20.0,
        sampled_at_ms: 1234,
    };
    let mut bytes = Vec::new();
    Encoder::<v1::HostMetrics>::new()
        .unwrap()
        .encode(&old, &mut bytes)
        .unwrap();
    kafka.produce_raw(&input, &[(Some("old-node"), bytes, vec![])]);

    let mut registry = SchemaRegistry::new();
    for (file, avsc) in scribe_schemas::AVSC {
        registry.register(file, avsc).unwrap();
    }
    let actor = unique("forward");
    let node = kafka
        .node("evolution")
        .schemas(&registry)
        .actor::<Forward>(&actor, &output, input.clone())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let out = kafka.read(&output, 1, Duration::from_secs(30)).await;
    let stats = node.stats(&actor).unwrap();
    node.shutdown().await.unwrap();

    assert_eq!(out.len(), 1, "{stats:?}");
    let new = Decoder::<HostMetrics>::new(SchemaRegistry::new())
        .unwrap()
        .decode(&out[0].value)
        .unwrap();
    assert_eq!(
        new,
        HostMetrics {
            host: "old-node".into(),
            cpu_percent: 55.5,
            mem_used_percent: 20.0,
            load1: 0.0,
            sampled_at_ms: 1234,
        }
    );
    assert_eq!(stats.undecodable, 0);
}
