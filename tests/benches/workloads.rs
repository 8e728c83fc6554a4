//! The two workloads beside the pipelines (`pipelines.rs`), scribe against
//! hand-written rust-rdkafka + apache-avro, on one broker:
//!
//! - `produce`: one writer sends N ~200-byte Avro records as fast as it
//!   can (scribe: an actor publishing from `started`; hand-written: a
//!   producer loop), counted until the broker acknowledged the last;
//! - `fanout`: one topic read by four actors (four consumer groups), each
//!   decoding every record and writing it on to a topic of its own. Once
//!   a warm-up record went through all four (every group joined), N
//!   records are written as fast as they can be; counted from then to the
//!   last of the 4N writes acknowledged.
//!
//! Each side runs in a child process of its own (scribe through `scribe
//! run`'s log subscriber at its default level), which reports records/s,
//! its CPU time per record (from its first record on) and its peak RSS.
//! The ratios come last:
//!
//! `bench ratio produce scribe/handwritten throughput=X cpu=Y`
//! `bench ratio fanout4 scribe/handwritten throughput=X cpu=Y`
//!
//! `cargo bench -p scribe-tests --bench workloads [-- --records N] [--only produce|fanout]`
//!
//! The broker is `SCRIBE_TEST_BOOTSTRAP` when set, otherwise an embedded
//! mock cluster in this (the parent) process.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apache_avro::{SpecificSingleObjectReader, SpecificSingleObjectWriter};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use scribe::prelude::*;
use scribe::{Broker, TopicSpec};
use scribe_tests::bench::{BenchBroker, Hop, HopArgs};
use scribe_tests::load::cpu_time;
use scribe_tests::records::Payload;
use scribe_tests::unique;

const PARTITIONS: i32 = 4;
const READERS: usize = 4;
const SIDES: [&str; 2] = ["scribe", "handwritten"];

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    if let Some(side) = arg("--child") {
        return child(&side, &arg("--workload").expect("--workload"));
    }
    let records: u64 = arg("--records")
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    let only = arg("--only");
    let broker = BenchBroker::from_env();
    println!(
        "bench workloads records={records} value_bytes~{} partitions={PARTITIONS} broker={}",
        encode(&payload(0)).len(),
        broker.name()
    );
    for workload in ["produce", "fanout"] {
        if only.as_deref().is_some_and(|only| only != workload) {
            continue;
        }
        let name = if workload == "fanout" {
            format!("fanout{READERS}")
        } else {
            workload.to_owned()
        };
        let runs: Vec<Report> = SIDES
            .iter()
            .map(|side| {
                let report = run(&broker, workload, side, records);
                println!(
                    "bench {name} {side:<11} records/s={:.0} cpu_us/record={:.2} peak_rss_mb={:.1}",
                    report.per_second,
                    report.cpu_us,
                    report.rss_kb as f64 / 1024.0
                );
                report
            })
            .collect();
        println!(
            "bench ratio {name} scribe/handwritten throughput={:.3} cpu={:.3}",
            runs[0].per_second / runs[1].per_second,
            runs[0].cpu_us / runs[1].cpu_us,
        );
    }
}

/// What one child measured.
struct Report {
    per_second: f64,
    cpu_us: f64,
    rss_kb: u64,
}

/// Runs `side` of `workload` over `records` records in a child process.
fn run(broker: &BenchBroker, workload: &str, side: &str, records: u64) -> Report {
    let input = broker.create_topic(&format!("{workload}-in"), PARTITIONS);
    let outputs: Vec<String> = match workload {
        "fanout" => (0..READERS)
            .map(|i| broker.create_topic(&format!("fanout-out{i}"), PARTITIONS))
            .collect(),
        _ => vec![input.clone()],
    };
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    if workload == "fanout" {
        write(&producer, &input, -1..0);
    }
    let mut child = Command::new(std::env::current_exe().expect("this benchmark"))
        .args(["--child", side, "--workload", workload])
        .args(["--bootstrap", &broker.bootstrap, "--input", &input])
        .args(["--outputs", &outputs.join(",")])
        .args(["--records", &records.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("child process");
    let mut lines = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok);
    if workload == "fanout" {
        lines
            .find(|line| line == "warm")
            .expect("the warm-up record came through every reader");
        write(&producer, &input, 0..records as i64);
    }
    let report = lines
        .find(|line| line.starts_with("child "))
        .expect("the child reports");
    assert!(
        child.wait().expect("child ends").success(),
        "{workload} {side} failed"
    );
    let field = |name: &str| scribe_tests::bench::field(&report, name);
    let total = match workload {
        "fanout" => records * READERS as u64,
        _ => records,
    };
    Report {
        per_second: total as f64 / field("elapsed_s").max(1e-9),
        cpu_us: field("cpu_s") * 1e6 / total as f64,
        rss_kb: field("maxrss_kb") as u64,
    }
}

/// Writes the records numbered `seqs` to `topic` and waits for them.
fn write(producer: &BaseProducer, topic: &str, seqs: std::ops::Range<i64>) {
    for seq in seqs {
        let value = encode(&payload(seq));
        let key = (seq % 1000).to_string();
        scribe_tests::bench::produce_retrying(
            producer,
            BaseRecord::to(topic).key(&key).payload(&value),
        );
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("input written");
}

fn payload(seq: i64) -> Payload {
    Payload {
        seq,
        hops: 0,
        body: "x".repeat(180),
    }
}

fn encode(p: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    SpecificSingleObjectWriter::<Payload>::new()
        .expect("writer")
        .write_ref(p, &mut out)
        .expect("encodable");
    out
}

/// The child: runs one side of one workload and reports.
fn child(side: &str, workload: &str) {
    let bootstrap = arg("--bootstrap").expect("--bootstrap");
    let input = arg("--input").expect("--input");
    let outputs: Vec<String> = arg("--outputs")
        .expect("--outputs")
        .split(',')
        .map(str::to_owned)
        .collect();
    let records: u64 = arg("--records")
        .and_then(|n| n.parse().ok())
        .expect("--records");
    let clock = Arc::new(Clock::default());
    match side {
        "scribe" => scribe_side(&bootstrap, workload, &input, &outputs, records, &clock),
        "handwritten" => hand_side(&bootstrap, workload, &input, &outputs, records, &clock),
        other => panic!("unknown side `{other}`"),
    }
    let (cpu, wall) = clock.started.get().copied().expect("a record was sent");
    println!(
        "child cpu_s={:.6} elapsed_s={:.6} maxrss_kb={}",
        cpu_time().saturating_sub(cpu).as_secs_f64(),
        clock
            .done
            .get()
            .copied()
            .expect("every record was acknowledged")
            .duration_since(wall)
            .as_secs_f64(),
        scribe_tests::load::peak_rss_kb()
    );
}

/// When the measured run began (CPU time and wall clock), and when the
/// last record was acknowledged.
#[derive(Default)]
struct Clock {
    started: std::sync::OnceLock<(Duration, Instant)>,
    done: std::sync::OnceLock<Instant>,
    /// Readers that handled the warm-up record.
    warm: AtomicU64,
}

impl Clock {
    fn start(&self) {
        self.started.get_or_init(|| (cpu_time(), Instant::now()));
    }

    /// A reader read record `seq`: the run begins once the warm-up record
    /// (-1) came through every reader, which the parent hears.
    fn read(&self, seq: i64) {
        if seq < 0 && self.warm.fetch_add(1, Ordering::AcqRel) + 1 == READERS as u64 {
            self.start();
            println!("warm");
        }
    }
}

/// The scribe side: an actor publishing from `started`, or four actors
/// reading one topic.
fn scribe_side(
    bootstrap: &str,
    workload: &str,
    input: &str,
    outputs: &[String],
    records: u64,
    clock: &Arc<Clock>,
) {
    scribe_cli::init_logging();
    let mut builder = Node::builder("workloads")
        .broker(Broker::bootstrap(bootstrap))
        .default_topic(TopicSpec::new(PARTITIONS, 1))
        .consumer_property("fetch.wait.max.ms", "5");
    let mut names = Vec::new();
    if workload == "produce" {
        let name = unique("writer");
        let args = WriterArgs {
            records,
            clock: clock.clone(),
        };
        builder = builder.actor::<Writer>(&name, input, args);
        names.push(name);
    } else {
        for output in outputs {
            let name = unique("reader");
            let clock = clock.clone();
            let args = HopArgs {
                input: input.to_owned(),
                seen: Arc::new(move |seq| clock.read(seq)),
            };
            builder = builder.actor::<Hop>(&name, output, args);
            names.push(name);
        }
    }
    actix::System::new().block_on(async {
        let node = builder
            .build()
            .expect("valid")
            .start()
            .await
            .expect("starts");
        // Every 5 ms, so that the end is timed closely enough; the wait
        // itself costs next to nothing. A reader writes the warm-up too.
        let each = if workload == "fanout" {
            records + 1
        } else {
            records
        };
        while names
            .iter()
            .map(|name| node.stats(name).expect("known").published)
            .sum::<u64>()
            < each * names.len() as u64
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        clock.done.get_or_init(Instant::now);
        node.shutdown().await.expect("drains");
    });
}

/// Publishes its records as fast as it can once started.
struct Writer {
    out: Publisher<Payload>,
    args: WriterArgs,
}

#[derive(Clone)]
struct WriterArgs {
    records: u64,
    clock: Arc<Clock>,
}

impl Actor for Writer {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.args.clock.start();
        let mut value = payload(0);
        for seq in 0..self.args.records {
            value.seq = seq as i64;
            let key = (seq % 1000).to_string();
            self.out.publish(&key, &value).expect("published");
        }
    }
}

impl TopicActor for Writer {
    type Output = Payload;
    type Args = WriterArgs;
    fn create(args: WriterArgs, out: Publisher<Payload>) -> Result<Self, ActorError> {
        Ok(Self { out, args })
    }
}

/// Counts the broker's acknowledgements.
struct Acks {
    acked: Arc<AtomicU64>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        result.as_ref().expect("delivered");
        self.acked.fetch_add(1, Ordering::Relaxed);
    }
}

/// The hand-written side: a producer loop, or four consumer threads.
fn hand_side(
    bootstrap: &str,
    workload: &str,
    input: &str,
    outputs: &[String],
    records: u64,
    clock: &Arc<Clock>,
) {
    let producer = |acked: &Arc<AtomicU64>| -> BaseProducer<Acks> {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create_with_context(Acks {
                acked: acked.clone(),
            })
            .expect("producer")
    };
    let writers: Vec<(String, Option<String>)> = if workload == "produce" {
        vec![(input.to_owned(), None)]
    } else {
        outputs
            .iter()
            .map(|o| (o.clone(), Some(input.to_owned())))
            .collect()
    };
    std::thread::scope(|scope| {
        for (output, reading) in &writers {
            let acked = Arc::new(AtomicU64::new(0));
            let producer = producer(&acked);
            scope.spawn(move || {
                let writer = SpecificSingleObjectWriter::<Payload>::new().expect("writer");
                let mut buf = Vec::with_capacity(256);
                let mut send = |key: &[u8], value: &Payload| {
                    buf.clear();
                    writer.write_ref(value, &mut buf).expect("encodable");
                    scribe_tests::bench::produce_retrying(
                        &producer,
                        BaseRecord::to(output).key(key).payload(&buf),
                    );
                };
                match reading {
                    None => {
                        clock.start();
                        let mut value = payload(0);
                        for seq in 0..records {
                            value.seq = seq as i64;
                            send((seq % 1000).to_string().as_bytes(), &value);
                        }
                    }
                    Some(input) => {
                        let consumer: BaseConsumer = ClientConfig::new()
                            .set("bootstrap.servers", bootstrap)
                            .set("group.id", unique("hand"))
                            .set("auto.offset.reset", "earliest")
                            .set("fetch.wait.max.ms", "5")
                            .create()
                            .expect("consumer");
                        consumer.subscribe(&[input]).expect("subscribed");
                        let reader = SpecificSingleObjectReader::<Payload>::new().expect("reader");
                        let mut read = 0;
                        // The warm-up record too.
                        while read < records + 1 {
                            let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                                continue;
                            };
                            let mut value = reader
                                .read(&mut m.payload().unwrap_or_default())
                                .expect("decodable");
                            clock.read(value.seq);
                            value.hops += 1;
                            send(m.key().unwrap_or_default(), &value);
                            read += 1;
                        }
                    }
                }
                let each = if reading.is_some() {
                    records + 1
                } else {
                    records
                };
                while acked.load(Ordering::Relaxed) < each {
                    producer.poll(Duration::from_millis(5));
                }
            });
        }
    });
    clock.done.get_or_init(Instant::now);
}
