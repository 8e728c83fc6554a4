//! A pipeline of stages (3 by default; consume, decode, transform, encode,
//! produce, commit after delivery; ~200-byte Avro records; 4 partitions)
//! written five ways and measured side by side on one broker:
//!
//! - `scribe`: three actors of one node, as users run it: through
//!   `scribe run`'s own log subscriber at its default level, the metadata
//!   in the default compact envelope (one header);
//! - `scribe_cloudevents`: the same, the metadata as the eight CloudEvents
//!   headers (`envelope = "cloudevents"`);
//! - `handwritten`: three rust-rdkafka + apache-avro stages on threads of
//!   one process, storing each input offset once its output is delivered
//!   (the floor: no headers);
//! - `handwritten_headers`: the same, also reading and writing the eight
//!   CloudEvents headers scribe writes;
//! - `python`: confluent-kafka + fastavro, one process per stage
//!   (`pipeline_stage.py`), with the interpreter `SCRIBE_PYTHON` names
//!   (`.ci/run` makes a virtual environment with both); skipped without it.
//!
//! Each pipeline runs in a child process of its own, so its figures are
//! its own: client CPU time per record and peak RSS of the child process
//! (the broker and the driving producer and reader excluded); records/s
//! from the first input produced to the last output read, once a warm-up
//! record went through (every stage joined); and end-to-end latency
//! (stamped at produce, read at the last topic; HdrHistogram) in a second
//! run paced at half the measured rate. Ratios come last:
//!
//! `bench ratio pipeline3 scribe/handwritten throughput=X cpu=Y p99_added_ms=Z`
//! `bench ratio pipeline3 scribe/python throughput=X cpu=Y`
//!
//! then the envelopes against the hand-written pipelines
//! (`scribe/handwritten_headers`, `scribe_cloudevents/handwritten_headers`,
//! `scribe_cloudevents/handwritten`). `p99_added_ms` is scribe's p99 minus
//! the hand-written one, per stage.
//!
//! `cargo bench -p scribe-tests --bench pipelines [-- --records N] [--only NAME] [--rate R] [--stages N]`
//!
//! `--rate` paces the latency runs at R records/s instead; `--stages 1`
//! measures one hop (the lines then say `pipeline1`).
//!
//! `SCRIBE_BENCH_WRAP="perf record -e cpu-clock -g -o FILE --"` runs each
//! throughput run's child under that command: a profile of the pipeline
//! alone.
//!
//! The broker is `SCRIBE_TEST_BOOTSTRAP` when set, otherwise an embedded
//! mock cluster in this (the parent) process.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apache_avro::{SpecificSingleObjectReader, SpecificSingleObjectWriter};
use hdrhistogram::Histogram;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use scribe::prelude::*;
use scribe::{Broker, Envelope, TopicSpec};
use scribe_tests::bench::{BenchBroker, Hop, HopArgs};
use scribe_tests::load::cpu_time;
use scribe_tests::records::Payload;
use scribe_tests::unique;

const PARTITIONS: i32 = 4;
/// Characters of the payload's body; the first 20 are the produce time.
const BODY: usize = 180;
const PIPELINES: [&str; 5] = [
    "scribe",
    "scribe_cloudevents",
    "handwritten",
    "handwritten_headers",
    "python",
];

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    if let Some(pipeline) = arg("--child") {
        return child(&pipeline);
    }
    let records: u64 = arg("--records")
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let only = arg("--only");
    let stages: usize = arg("--stages")
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3);
    let bench = format!("pipeline{stages}");
    let topics = BenchBroker::from_env();
    println!(
        "bench {bench} records={records} value_bytes~{} partitions={PARTITIONS} broker={}",
        encode(&payload(0)).len(),
        topics.name()
    );
    if topics.embedded.is_none() {
        // A broker just started is slower for its first runs (its JIT
        // compiles): whichever pipeline ran first paid for it.
        run(&topics, "handwritten", stages, records, None);
        println!("bench {bench} warm-up: one unmeasured hand-written run");
    }
    let mut results = Vec::new();
    for pipeline in PIPELINES {
        if only.as_deref().is_some_and(|only| only != pipeline) {
            continue;
        }
        if pipeline == "python" && std::env::var_os("SCRIBE_PYTHON").is_none() {
            println!(
                "bench {bench} python skipped: set SCRIBE_PYTHON to a Python with \
                 confluent-kafka and fastavro (.ci/run makes one)"
            );
            continue;
        }
        let peak = run(&topics, pipeline, stages, records, None);
        let rate = arg("--rate")
            .and_then(|r| r.parse().ok())
            .unwrap_or(peak.per_second / 2.0);
        let paced = run(&topics, pipeline, stages, records / 2, Some(rate));
        let latency = paced
            .latency
            .as_ref()
            .expect("a paced run measures latency");
        println!(
            "bench {bench} {pipeline:<19} records/s={:.0} cpu_us/record={:.2} peak_rss_mb={:.1} \
             latency_ms at {rate:.0}/s: p50={:.2} p99={:.2} p999={:.2}",
            peak.per_second,
            peak.cpu_us,
            peak.rss_kb as f64 / 1024.0,
            ms(latency.value_at_quantile(0.5)),
            ms(latency.value_at_quantile(0.99)),
            ms(latency.value_at_quantile(0.999)),
        );
        results.push((pipeline, peak, paced));
    }
    let find = |name: &str| results.iter().find(|(p, _, _)| *p == name);
    if let (Some((_, scribe, scribe_paced)), Some((_, hand, hand_paced))) =
        (find("scribe"), find("handwritten"))
    {
        let p99 = |r: &Run| ms(r.latency.as_ref().expect("paced").value_at_quantile(0.99));
        println!(
            "bench ratio {bench} scribe/handwritten throughput={:.3} cpu={:.3} p99_added_ms={:.3}",
            scribe.per_second / hand.per_second,
            scribe.cpu_us / hand.cpu_us,
            (p99(scribe_paced) - p99(hand_paced)) / stages as f64,
        );
    }
    if let (Some((_, scribe, _)), Some((_, python, _))) = (find("scribe"), find("python")) {
        println!(
            "bench ratio {bench} scribe/python throughput={:.3} cpu={:.3}",
            scribe.per_second / python.per_second,
            scribe.cpu_us / python.cpu_us,
        );
    }
    for (ours, theirs) in [
        ("scribe", "handwritten_headers"),
        ("scribe_cloudevents", "handwritten_headers"),
        ("scribe_cloudevents", "handwritten"),
    ] {
        if let (Some((_, ours_run, _)), Some((_, theirs_run, _))) = (find(ours), find(theirs)) {
            println!(
                "bench ratio {bench} {ours}/{theirs} throughput={:.3} cpu={:.3}",
                ours_run.per_second / theirs_run.per_second,
                ours_run.cpu_us / theirs_run.cpu_us,
            );
        }
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A payload whose body starts with its produce time, in microseconds.
fn payload(seq: i64) -> Payload {
    let mut body = format!("{:020}", now_micros());
    body.extend(std::iter::repeat_n('x', BODY - body.len()));
    Payload { seq, hops: 0, body }
}

fn encode(p: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    SpecificSingleObjectWriter::<Payload>::new()
        .expect("writer")
        .write_ref(p, &mut out)
        .expect("encodable");
    out
}

/// What one run of one pipeline measured.
struct Run {
    per_second: f64,
    cpu_us: f64,
    rss_kb: u64,
    latency: Option<Histogram<u64>>,
}

/// Runs `pipeline` over `records` fresh records, produced once a warm-up
/// record came through: as fast as they can be (`rate` none: throughput),
/// or paced at `rate` per second (latency).
fn run(
    topics: &BenchBroker,
    pipeline: &str,
    stages: usize,
    records: u64,
    rate: Option<f64>,
) -> Run {
    let names: Vec<String> = (0..=stages)
        .map(|i| topics.create_topic(&format!("bench3-{i}"), PARTITIONS))
        .collect();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &topics.bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let produce = |seq: i64| {
        let value = encode(&payload(seq));
        let key = (seq % 1000).to_string();
        scribe_tests::bench::produce_retrying(
            &producer,
            BaseRecord::to(&names[0]).key(&key).payload(&value),
        );
    };
    // A warm-up record first: the clock starts once it came through, so
    // every stage has joined its group and fetches.
    let total = records + 1;
    let mut child = child_command(rate.is_none())
        .args(["--child", pipeline, "--bootstrap", &topics.bootstrap])
        .args([
            "--records",
            &total.to_string(),
            "--topics",
            &names.join(","),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("child process");
    // The collector reads the last topic on a thread of its own, while
    // the input is produced.
    let collector = Collector::new(&topics.bootstrap, &names[stages]);
    let (warm_tx, warm_rx) = std::sync::mpsc::channel();
    let collecting = std::thread::spawn(move || {
        collector.wait_for(1);
        let _ = warm_tx.send(());
        collector.wait_for(records)
    });
    produce(-1);
    producer
        .flush(Duration::from_secs(10))
        .expect("warm-up written");
    warm_rx.recv().expect("the warm-up record came through");
    let started = Instant::now();
    for seq in 0..records {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(seq as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                producer.poll(wait);
            }
        }
        produce(seq as i64);
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("input written");
    let outputs = collecting.join().expect("the collector read every record");
    let report = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
        .find(|line| line.starts_with("child "))
        .expect("the child reports");
    assert!(
        child.wait().expect("child ends").success(),
        "{pipeline} failed"
    );
    let field = |name: &str| scribe_tests::bench::field(&report, name);
    // From the first input record produced to the last output read.
    let span = outputs.last.duration_since(started).as_secs_f64();
    Run {
        per_second: outputs.count as f64 / span.max(1e-9),
        cpu_us: field("cpu_s") * 1e6 / total as f64,
        rss_kb: field("maxrss_kb") as u64,
        latency: rate.map(|_| outputs.latency),
    }
}

/// Reads the last topic: how many records came, when, and how late.
struct Collector {
    consumer: BaseConsumer,
    reader: SpecificSingleObjectReader<Payload>,
}

struct Outputs {
    count: u64,
    last: Instant,
    latency: Histogram<u64>,
}

impl Collector {
    fn new(bootstrap: &str, topic: &str) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", unique("collector"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()
            .expect("collector");
        let mut list = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            list.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&list).expect("assigned");
        Self {
            consumer,
            reader: SpecificSingleObjectReader::new().expect("reader"),
        }
    }

    /// Reads until `count` records came (none for 120 s: the run failed).
    fn wait_for(&self, count: u64) -> Outputs {
        let mut outputs = Outputs {
            count: 0,
            last: Instant::now(),
            latency: Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram"),
        };
        let mut idle = Instant::now();
        while outputs.count < count {
            let Some(message) = self.consumer.poll(Duration::from_millis(100)) else {
                assert!(
                    idle.elapsed() < Duration::from_secs(120),
                    "only {} of {count} records came",
                    outputs.count
                );
                continue;
            };
            let message = message.expect("collector reads");
            let now = Instant::now();
            idle = now;
            outputs.last = now;
            outputs.count += 1;
            let payload = self
                .reader
                .read(&mut message.payload().unwrap_or_default())
                .expect("a payload");
            if payload.seq >= 0 {
                let stamp: u64 = payload.body[..20].parse().expect("a stamp");
                let late = now_micros().saturating_sub(stamp).max(1);
                outputs.latency.saturating_record(late);
            }
        }
        outputs
    }
}

/// The child: runs one pipeline until its last stage has published
/// `--records` records and the broker acknowledged them, then prints its
/// CPU time since the first record and its peak RSS.
/// This benchmark run as a child; a throughput run (`peak`) behind the
/// command `SCRIBE_BENCH_WRAP` names when set, a profiler such as
/// `perf record -e cpu-clock -g -o FILE --`.
fn child_command(peak: bool) -> Command {
    let exe = std::env::current_exe().expect("this benchmark");
    let wrap = match std::env::var("SCRIBE_BENCH_WRAP") {
        Ok(wrap) if peak => wrap,
        _ => String::new(),
    };
    let mut words = wrap.split_whitespace();
    let Some(program) = words.next() else {
        return Command::new(exe);
    };
    let mut command = Command::new(program);
    command.args(words).arg(exe);
    command
}

fn child(pipeline: &str) {
    let bootstrap = arg("--bootstrap").expect("--bootstrap");
    let records: u64 = arg("--records")
        .and_then(|n| n.parse().ok())
        .expect("--records");
    let topics: Vec<String> = arg("--topics")
        .expect("--topics")
        .split(',')
        .map(str::to_owned)
        .collect();
    if pipeline == "python" {
        return python_pipeline(&bootstrap, &topics, records);
    }
    let started = Arc::new(std::sync::OnceLock::new());
    match pipeline {
        "scribe" => scribe_pipeline(&bootstrap, &topics, records, &started, Envelope::Compact),
        "scribe_cloudevents" => scribe_pipeline(
            &bootstrap,
            &topics,
            records,
            &started,
            Envelope::CloudEvents,
        ),
        "handwritten" => handwritten_pipeline(&bootstrap, &topics, records, &started, false),
        "handwritten_headers" => handwritten_pipeline(&bootstrap, &topics, records, &started, true),
        other => panic!("unknown pipeline `{other}`"),
    }
    let ended = Duration::from_nanos(ENDED.load(Ordering::Acquire));
    let cpu = ended.saturating_sub(*started.get().expect("a record was handled"));
    println!(
        "child cpu_s={:.6} maxrss_kb={}",
        cpu.as_secs_f64(),
        scribe_tests::load::peak_rss_kb()
    );
}

/// The process's CPU time when the last stage's last output was
/// delivered, in nanoseconds: the figure ends there, before the clients
/// are closed (each side closes its own way).
static ENDED: AtomicU64 = AtomicU64::new(0);

/// Notes that a stage delivered its last output.
fn ended() {
    ENDED.fetch_max(cpu_time().as_nanos() as u64, Ordering::AcqRel);
}

fn scribe_pipeline(
    bootstrap: &str,
    topics: &[String],
    records: u64,
    started: &Arc<std::sync::OnceLock<Duration>>,
    envelope: Envelope,
) {
    // As users run it: `scribe run`'s own log subscriber.
    scribe_cli::init_logging();
    let mut builder = Node::builder("bench3")
        .broker(Broker::bootstrap(bootstrap))
        .default_envelope(envelope)
        // The hand-written stages' fetch wait: the mock cluster answers a
        // fetch only once that wait is over (Kafka as soon as records are
        // there), and the child cannot tell which broker it is.
        .consumer_property("fetch.wait.max.ms", "5")
        .default_topic(TopicSpec::new(PARTITIONS, 1));
    let last = unique("stage");
    let stages = topics.len() - 1;
    for stage in 0..stages {
        let name = if stage + 1 == stages {
            last.clone()
        } else {
            unique("stage")
        };
        let started = started.clone();
        let args = HopArgs {
            input: topics[stage].clone(),
            seen: Arc::new(move |_| {
                started.get_or_init(cpu_time);
            }),
        };
        builder = builder.actor::<Hop>(&name, &topics[stage + 1], args);
    }
    actix::System::new().block_on(async {
        let node = builder
            .build()
            .expect("valid")
            .start()
            .await
            .expect("starts");
        // Every 20 ms: the wait's own wake-ups stay out of the figures.
        while node.stats(&last).expect("known").published < records {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ended();
        node.shutdown().await.expect("drains");
    });
}

/// Counts deliveries and stores each delivered record's input offset.
struct Stored {
    delivered: Arc<AtomicU64>,
    consumer: Arc<BaseConsumer>,
    input: String,
}

impl ClientContext for Stored {}

impl ProducerContext for Stored {
    /// The input record's partition and offset.
    type DeliveryOpaque = Box<(i32, i64)>;
    fn delivery(&self, result: &DeliveryResult<'_>, at: Box<(i32, i64)>) {
        if result.is_ok() {
            let (partition, offset) = *at;
            // Commit after delivery: the input offset is stored only now.
            let _ = self.consumer.store_offset(&self.input, partition, offset);
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn handwritten_pipeline(
    bootstrap: &str,
    topics: &[String],
    records: u64,
    started: &Arc<std::sync::OnceLock<Duration>>,
    headers: bool,
) {
    std::thread::scope(|s| {
        for stage in 0..topics.len() - 1 {
            let (input, output) = (&topics[stage], &topics[stage + 1]);
            s.spawn(move || {
                handwritten_stage(bootstrap, input, output, records, started, headers);
            });
        }
    });
}

/// One hand-written stage: consume, decode, transform, encode, produce;
/// each input offset is stored for the periodic commit once its output is
/// delivered. Ends once `records` outputs are delivered.
fn handwritten_stage(
    bootstrap: &str,
    input: &str,
    output: &str,
    records: u64,
    started: &std::sync::OnceLock<Duration>,
    headers: bool,
) {
    let consumer: Arc<BaseConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", unique("hand"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", "5")
            .create()
            .expect("consumer"),
    );
    consumer.subscribe(&[input]).expect("subscribed");
    let delivered = Arc::new(AtomicU64::new(0));
    let producer: ThreadedProducer<Stored> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(Stored {
            delivered: delivered.clone(),
            consumer: consumer.clone(),
            input: input.to_owned(),
        })
        .expect("producer");
    let reader = SpecificSingleObjectReader::<Payload>::new().expect("reader");
    let writer = SpecificSingleObjectWriter::<Payload>::new().expect("writer");
    let mut buf = Vec::with_capacity(256);
    let mut handled = 0;
    while handled < records {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        started.get_or_init(cpu_time);
        let mut payload = reader
            .read(&mut m.payload().unwrap_or_default())
            .expect("a payload");
        payload.hops += 1;
        buf.clear();
        writer.write_ref(&payload, &mut buf).expect("encodable");
        let key = m.key().unwrap_or_default();
        let mut record = BaseRecord::with_opaque_to(output, Box::new((m.partition(), m.offset())))
            .key(key)
            .payload(&buf);
        if headers {
            record = record.headers(scribe_tests::bench::cloud_events(&m));
        }
        scribe_tests::bench::send_retrying(&producer, record);
        handled += 1;
    }
    while delivered.load(Ordering::Relaxed) < records {
        std::thread::sleep(Duration::from_millis(2));
    }
    ended();
}

/// The pipeline in Python: one process per stage (`pipeline_stage.py`);
/// prints their CPU time and peak RSS, summed.
fn python_pipeline(bootstrap: &str, topics: &[String], records: u64) {
    use apache_avro::AvroSchema as _;
    let python = std::env::var("SCRIBE_PYTHON").expect("SCRIBE_PYTHON");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pipeline_stage.py");
    let schema = Payload::get_schema().canonical_form();
    let stages: Vec<_> = (0..topics.len() - 1)
        .map(|stage| {
            Command::new(&python)
                .arg(script)
                .args(["--bootstrap", bootstrap, "--group", &unique("py")])
                .args(["--input", &topics[stage], "--output", &topics[stage + 1]])
                .args(["--records", &records.to_string(), "--schema", &schema])
                .stdout(Stdio::piped())
                .spawn()
                .expect("a Python stage")
        })
        .collect();
    let (mut cpu, mut rss) = (0.0, 0);
    for stage in stages {
        let out = stage.wait_with_output().expect("the stage ends");
        assert!(out.status.success(), "a Python stage failed");
        let report = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| scribe_tests::bench::field(&report, name);
        cpu += field("cpu_s");
        rss += field("maxrss_kb") as u64;
    }
    println!("child cpu_s={cpu:.6} maxrss_kb={rss}");
}
