//! Pushes N records (default 100000, ~200-byte Avro) through a 2-hop actor
//! pipeline and, on the same broker and input, through a hand-written
//! rust-rdkafka + apache-avro pipeline doing the same work; prints records/s
//! and CPU time per record for both. A third run, `handwritten_headers`,
//! is the hand-written pipeline also reading and writing the eight
//! CloudEvents headers scribe puts on every record, so the cost of the
//! headers and the cost of the framework can be told apart.
//!
//! `cargo bench -p scribe-tests --bench pipeline2 [-- --records N] [--only scribe|scribe_exactly_once|handwritten|handwritten_headers]`
//!
//! `scribe_exactly_once` is the scribe pipeline with both actors in
//! exactly-once mode (embedded broker only), timed until the last output's
//! transaction commits.
//!
//! `--only` runs one pipeline (for profiling) and prints no ratio.
//! `--admin` runs the scribe pipelines with the admin endpoint on: handling
//! and end-to-end latencies measured per record, librdkafka's statistics
//! every 5 s (what `/metrics` costs when nobody scrapes it).
//! `--tracing` runs the scribe pipelines with tracing on: a span per
//! record per hop, every trace sampled, through the OpenTelemetry SDK's
//! batch processor to an exporter that drops them (what tracing costs
//! scribe and the SDK, without a collector's network and CPU).
//! `--log LEVEL` installs a formatting subscriber at that level writing to
//! a sink, as `scribe run` does, to count what logging and spans cost.
//! The last line is `bench pipeline2 ratio scribe/handwritten throughput=X cpu=Y`.
//!
//! The broker is `SCRIBE_TEST_BOOTSTRAP` when set, otherwise an embedded
//! mock cluster in this process (whose CPU time is then counted too, for
//! both pipelines alike). CPU time is the whole process's user + system time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apache_avro::{SpecificSingleObjectReader, SpecificSingleObjectWriter};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use scribe::prelude::*;
use scribe::{Broker, Delivery, EmbeddedBroker, TopicSpec};
use scribe_tests::bench::BenchBroker;
use scribe_tests::load::cpu_time;
use scribe_tests::records::Payload;
use scribe_tests::unique;

const PARTITIONS: i32 = 16;

fn main() {
    let arg = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let records: u64 = arg("--records")
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let only = arg("--only");
    if let Some(level) = arg("--log") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_writer(std::io::sink)
            .init();
    }
    let topics = BenchBroker::from_env();
    let (bootstrap, embedded, broker_name) = (&topics.bootstrap, &topics.embedded, topics.name());
    let body = "x".repeat(180);
    let sample = encode(&Payload {
        seq: 0,
        hops: 0,
        body: body.clone(),
    });
    println!(
        "bench pipeline2 records={records} value_bytes={} partitions={PARTITIONS} broker={broker_name}",
        sample.len()
    );
    let input = topics.create_topic("bench-in", PARTITIONS);
    produce_input(bootstrap, &input, records, &body);

    let run = |name: &str| only.as_deref().is_none_or(|only| only == name);
    let scribe_with =
        |delivery| run_scribe(bootstrap, embedded, &topics, &input, records, delivery);
    let scribe = run("scribe").then(|| scribe_with(Delivery::AtLeastOnce));
    // Transactions need EndTxn, which tansu 0.6 lacks: the embedded broker only.
    let exactly_once = (run("scribe_exactly_once") && embedded.is_some())
        .then(|| scribe_with(Delivery::ExactlyOnce));
    let handwritten =
        run("handwritten").then(|| run_handwritten(bootstrap, &topics, &input, records, false));
    let with_headers = run("handwritten_headers")
        .then(|| run_handwritten(bootstrap, &topics, &input, records, true));
    for (name, m) in [
        ("scribe", &scribe),
        ("scribe_exactly_once", &exactly_once),
        ("handwritten", &handwritten),
        ("handwritten_headers", &with_headers),
    ] {
        if let Some(m) = m {
            m.print(name, records);
        }
    }
    if let (Some(scribe), Some(exactly_once)) = (&scribe, &exactly_once) {
        println!(
            "bench pipeline2 ratio exactly_once/at_least_once throughput={:.3} cpu={:.3}",
            scribe.wall.as_secs_f64() / exactly_once.wall.as_secs_f64(),
            exactly_once.cpu.as_secs_f64() / scribe.cpu.as_secs_f64()
        );
    }
    let (Some(scribe), Some(handwritten)) = (scribe, handwritten) else {
        return;
    };
    if let Some(with_headers) = &with_headers {
        println!(
            "bench pipeline2 ratio scribe/handwritten_headers throughput={:.3} cpu={:.3}",
            with_headers.wall.as_secs_f64() / scribe.wall.as_secs_f64(),
            scribe.cpu.as_secs_f64() / with_headers.cpu.as_secs_f64()
        );
    }
    println!(
        "bench pipeline2 ratio scribe/handwritten throughput={:.3} cpu={:.3}",
        (records as f64 / scribe.wall.as_secs_f64())
            / (records as f64 / handwritten.wall.as_secs_f64()),
        scribe.cpu.as_secs_f64() / handwritten.cpu.as_secs_f64()
    );
}

fn encode(p: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    SpecificSingleObjectWriter::<Payload>::new()
        .unwrap()
        .write_ref(p, &mut out)
        .unwrap();
    out
}

fn produce_input(bootstrap: &str, topic: &str, records: u64, body: &str) {
    let producer: rdkafka::producer::BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let writer = SpecificSingleObjectWriter::<Payload>::new().unwrap();
    let mut buf = Vec::with_capacity(256);
    for seq in 0..records as i64 {
        buf.clear();
        writer
            .write_ref(
                &Payload {
                    seq,
                    hops: 0,
                    body: body.to_owned(),
                },
                &mut buf,
            )
            .unwrap();
        let key = (seq % 1000).to_string();
        scribe_tests::bench::produce_retrying(
            &producer,
            BaseRecord::to(topic).key(&key).payload(&buf),
        );
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

struct Measured {
    wall: Duration,
    cpu: Duration,
}

impl Measured {
    fn print(&self, name: &str, records: u64) {
        println!(
            "bench pipeline2 {name:<19} records/s={:.0} cpu_us/record={:.2} wall_s={:.2} cpu_s={:.2}",
            records as f64 / self.wall.as_secs_f64(),
            self.cpu.as_secs_f64() * 1e6 / records as f64,
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
        );
    }
}

/// A moment, and the process's CPU time then.
type Mark = std::sync::OnceLock<(Instant, Duration)>;

fn mark(at: &Mark) {
    at.get_or_init(|| (Instant::now(), cpu_time()));
}

/// When the first record was handled and when the last was acknowledged.
#[derive(Default)]
struct Marks {
    start: Mark,
    end: Mark,
}

/// Runs `work`, which marks when it handles its first record and when its
/// last record is acknowledged. The figures cover that span, leaving out
/// client start-up, the consumer groups' join (a fixed delay) and shutdown.
fn measure(work: impl FnOnce(&Marks)) -> Measured {
    let marks = Marks::default();
    work(&marks);
    let (t0, cpu0) = *marks.start.get().expect("a record was handled");
    let (t1, cpu1) = *marks.end.get().expect("the last record was acknowledged");
    Measured {
        wall: t1 - t0,
        cpu: cpu1 - cpu0,
    }
}

/// One hop of the scribe pipeline.
struct Hop {
    out: Publisher<Payload>,
}

impl Actor for Hop {
    type Context = Context<Self>;
}

impl TopicActor for Hop {
    type Output = Payload;
    type Args = String;
    fn subscriptions(input: &String, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Payload>(input.as_str());
    }
    fn create(_: String, out: Publisher<Payload>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<Payload>> for Hop {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Payload>, _: &mut Context<Self>) -> Self::Result {
        let key = m.key().unwrap_or_default().to_vec();
        let mut next = m.into_value();
        next.hops += 1;
        self.out.publish(&key, next)?;
        Ok(())
    }
}

fn run_scribe(
    bootstrap: &str,
    embedded: &Option<EmbeddedBroker>,
    topics: &BenchBroker,
    input: &str,
    records: u64,
    delivery: Delivery,
) -> Measured {
    let mid = topics.create_topic("bench-scribe-mid", PARTITIONS);
    let out = topics.create_topic("bench-scribe-out", PARTITIONS);
    let broker = match embedded {
        Some(b) => Broker::InProcess(b.clone()),
        None => Broker::bootstrap(bootstrap),
    };
    let (first, second) = (unique("hop1"), unique("hop2"));
    measure(|marks| {
        actix::System::new().block_on(async {
            let mut node = Node::builder("bench")
                .broker(broker)
                .default_topic(TopicSpec::new(PARTITIONS, 1))
                .actor::<Hop>(&first, &mid, input.to_owned())
                .actor::<Hop>(&second, &out, mid.clone())
                .delivery(&first, delivery)
                .delivery(&second, delivery);
            if std::env::args().any(|a| a == "--admin") {
                node = node.admin("127.0.0.1:0".parse().expect("an address"));
            }
            let traced = std::env::args().any(|a| a == "--tracing").then(|| {
                let exported = Arc::new(AtomicU64::new(0));
                let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                    .with_batch_exporter(Dropped(exported.clone()))
                    .build();
                (provider, exported)
            });
            if let Some((provider, _)) = &traced {
                node = node.tracer_provider(provider.clone());
            }
            let node = node.build().unwrap().start().await.unwrap();
            while node.stats(&first).unwrap().handled == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            mark(&marks.start);
            while node.stats(&second).unwrap().published < records {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if delivery == Delivery::ExactlyOnce {
                // Readers see the outputs once their transaction commits.
                let committed = node.stats(&second).unwrap().transactions;
                while node.stats(&second).unwrap().transactions == committed {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            mark(&marks.end);
            node.shutdown().await.unwrap();
            if let Some((provider, exported)) = traced {
                provider.shutdown().expect("tracing shut down");
                println!(
                    "bench pipeline2 tracing spans_exported={} (the SDK's queue drops the rest)",
                    exported.load(Ordering::Relaxed)
                );
            }
        })
    })
}

/// A span exporter that counts spans and drops them.
#[derive(Debug)]
struct Dropped(Arc<AtomicU64>);

impl opentelemetry_sdk::trace::SpanExporter for Dropped {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

struct Count(Arc<AtomicU64>);
impl ClientContext for Count {}
impl ProducerContext for Count {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One hand-written hop: consume, decode, transform, encode, produce. With
/// `headers`, it also reads the inbound CloudEvents headers and writes the
/// eight scribe writes.
#[allow(clippy::too_many_arguments)]
fn handwritten_hop(
    bootstrap: &str,
    group: &str,
    input: &str,
    output: &str,
    records: u64,
    marks: &Marks,
    first: bool,
    headers: bool,
) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    consumer.subscribe(&[input]).unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let producer: ThreadedProducer<Count> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(Count(delivered.clone()))
        .unwrap();
    let reader = SpecificSingleObjectReader::<Payload>::new().unwrap();
    let writer = SpecificSingleObjectWriter::<Payload>::new().unwrap();
    let mut buf = Vec::with_capacity(256);
    let mut handled = 0;
    while handled < records {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        if first {
            mark(&marks.start);
        }
        let mut payload = reader.read(&mut m.payload().unwrap_or_default()).unwrap();
        payload.hops += 1;
        buf.clear();
        writer.write_ref(&payload, &mut buf).unwrap();
        let key = m.key().unwrap_or_default();
        let mut record = BaseRecord::to(output).key(key).payload(&buf);
        if headers {
            record = record.headers(scribe_tests::bench::cloud_events(&m));
        }
        scribe_tests::bench::send_retrying(&producer, record);
        handled += 1;
    }
    while delivered.load(Ordering::Relaxed) < records {
        std::thread::sleep(Duration::from_millis(5));
    }
    if !first {
        mark(&marks.end);
    }
}

fn run_handwritten(
    bootstrap: &str,
    topics: &BenchBroker,
    input: &str,
    records: u64,
    headers: bool,
) -> Measured {
    let mid = topics.create_topic("bench-hand-mid", PARTITIONS);
    let out = topics.create_topic("bench-hand-out", PARTITIONS);
    measure(|marks| {
        std::thread::scope(|s| {
            s.spawn(|| {
                handwritten_hop(
                    bootstrap,
                    &unique("hand1"),
                    input,
                    &mid,
                    records,
                    marks,
                    true,
                    headers,
                )
            });
            s.spawn(|| {
                handwritten_hop(
                    bootstrap,
                    &unique("hand2"),
                    &mid,
                    &out,
                    records,
                    marks,
                    false,
                    headers,
                )
            });
        });
    })
}
