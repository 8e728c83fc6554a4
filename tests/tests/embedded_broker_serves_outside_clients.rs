//! With no bootstrap servers configured the node starts its own broker, and
//! ordinary Kafka clients can read from it. A source actor publishes from an
//! actix interval.
//!
//! This test always uses the embedded broker, whatever `SCRIBE_TEST_BOOTSTRAP` says.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};
use scribe::SchemaRegistry;
use scribe::codec::Decoder;
use scribe::prelude::*;
use scribe_tests::records::Number;
use scribe_tests::{init_tracing, unique};

/// Publishes one number every 20 ms.
struct Ticker {
    out: Publisher<Number>,
    seq: i64,
}

impl Actor for Ticker {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_millis(20), |this, _| {
            let number = Number {
                key: "tick".into(),
                seq: this.seq,
            };
            this.out.publish("tick", number).expect("published");
            this.seq += 1;
        });
    }
}

impl TopicActor for Ticker {
    type Output = Number;
    type Args = ();
    fn create(_: (), out: Publisher<Number>) -> Result<Self, ActorError> {
        Ok(Self { out, seq: 0 })
    }
}

#[actix::test]
async fn an_embedded_node_serves_records_to_an_ordinary_kafka_client() {
    init_tracing();
    let topic = unique("ticks");
    let node = Node::builder("embedded")
        .actor::<Ticker>("ticker", &topic, ())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let bootstrap = node.bootstrap_servers().to_owned();
    assert!(node.embedded_broker().is_some());
    assert!(
        bootstrap.starts_with("127.0.0.1:") || bootstrap.starts_with("localhost:"),
        "{bootstrap}"
    );

    let read = {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", "outsider")
                .set("auto.offset.reset", "earliest")
                .create()
                .unwrap();
            consumer.subscribe(&[&topic]).unwrap();
            let decoder = Decoder::<Number>::new(SchemaRegistry::new()).unwrap();
            let mut seqs = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while seqs.len() < 5 && std::time::Instant::now() < deadline {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    seqs.push(decoder.decode(m.payload().unwrap()).unwrap().seq);
                }
            }
            seqs
        })
        .await
        .unwrap()
    };
    node.shutdown().await.unwrap();
    assert_eq!(read, vec![0, 1, 2, 3, 4]);
}
