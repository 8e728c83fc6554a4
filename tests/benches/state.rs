//! What state costs: a write per record, and a restore.
//!
//! 1. **A state write per record.** The tests' `Tally` (a count and a sum
//!    per key, kept in a store whose changes go to a changelog) against
//!    `FieldTally`, the same actor keeping its tallies in a `HashMap`
//!    field (what a crash loses). Both read the same N numbers over 1 000
//!    keys and publish a tally per number; each is run twice, alternating,
//!    and timed from its first record handled to its last output
//!    acknowledged. Printed: records/s and the process's CPU time per
//!    record, then the median difference in CPU per record: what one state
//!    write (a read, a put, a changelog record) costs.
//! 2. **A restore.** The `Tally`'s changelog is filled with K distinct keys
//!    (four partitions), then a node is started with one number waiting on
//!    each input partition: timed from `start()` until the four are handled
//!    (each partition's state is restored before its first record), against
//!    the same start with an empty changelog; and the restore's own time,
//!    from the first partition's restore starting to the last one's end
//!    (read from the runtime's log events).
//!
//! `cargo bench -p scribe-tests --bench state [-- --records N] [--keys K]`
//! (defaults 100 000 and 1 000 000).
//!
//! The broker is `SCRIBE_TEST_BOOTSTRAP` when set, otherwise an embedded
//! mock cluster in this process (whose CPU time is then counted too).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use scribe::prelude::*;
use scribe::{Broker, TopicSpec};
use scribe_tests::actors::{Tally, TallyArgs, encode_numbers, keyed_numbers};
use scribe_tests::bench::BenchBroker;
use scribe_tests::load::cpu_time;
use scribe_tests::records::{Number, Tallied};
use scribe_tests::unique;

const PARTITIONS: i32 = 4;
const KEYS: i64 = 1000;

fn main() {
    let arg = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let records: u64 = arg("--records")
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let keys: u64 = arg("--keys")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    // What each restore applied, in the log (to stderr), and when the
    // restores began and ended.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("warn,scribe::feed=info"))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(RestoreSpan)
        .init();
    let broker = BenchBroker::from_env();
    println!(
        "bench state records={records} keys={keys} partitions={PARTITIONS} broker={}",
        broker.name()
    );

    let input = broker.create_topic("state-in", PARTITIONS);
    produce(
        &broker.bootstrap,
        &input,
        &encode_numbers(keyed_numbers(0..records as i64, KEYS)),
    );
    let mut cpu = (Vec::new(), Vec::new());
    for round in 0..2 {
        for stateful in [round % 2 == 0, round % 2 != 0] {
            let measured = write_run(&broker, &input, records, stateful);
            let name = if stateful { "store" } else { "fields" };
            println!(
                "bench state write {name:<6} records/s={:.0} cpu_us/record={:.2} wall_s={:.2}",
                records as f64 / measured.0.as_secs_f64(),
                measured.1.as_secs_f64() * 1e6 / records as f64,
                measured.0.as_secs_f64(),
            );
            let per_record = measured.1.as_secs_f64() * 1e6 / records as f64;
            if stateful {
                cpu.0.push(per_record);
            } else {
                cpu.1.push(per_record);
            }
        }
    }
    println!(
        "bench state write cost cpu_us/record store={:.2} fields={:.2} difference={:.2}",
        median(&cpu.0),
        median(&cpu.1),
        median(&cpu.0) - median(&cpu.1)
    );

    let (empty, _) = restore_run(&broker, 0);
    let (full, restoring) = restore_run(&broker, keys);
    println!(
        "bench state restore keys={keys} restore_s={:.2} keys/s={:.0} first_records_s={:.2} with_empty_changelog_s={:.2}",
        restoring.as_secs_f64(),
        keys as f64 / restoring.as_secs_f64().max(1e-3),
        full.as_secs_f64(),
        empty.as_secs_f64(),
    );
}

/// When the first restore of a node began and its last ended, from the
/// runtime's log events (`scribe::feed::restoring`).
static RESTORES: std::sync::Mutex<Option<(Instant, Instant)>> = std::sync::Mutex::new(None);

/// A tracing layer noting [`RESTORES`].
struct RestoreSpan;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RestoreSpan {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "scribe::feed::restoring" {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let now = Instant::now();
        let mut span = RESTORES.lock().unwrap();
        if message.0.starts_with("restoring") {
            span.get_or_insert((now, now));
        } else if message.0.starts_with("state restored")
            && let Some((_, end)) = span.as_mut()
        {
            *end = now;
        }
    }
}

fn median(figures: &[f64]) -> f64 {
    let mut sorted = figures.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn node_broker(broker: &BenchBroker) -> Broker {
    match &broker.embedded {
        Some(b) => Broker::InProcess(b.clone()),
        None => Broker::bootstrap(&broker.bootstrap),
    }
}

/// Tallies every number of `input`, with a store or with fields; returns
/// the wall and CPU time from the first record handled to the last
/// output acknowledged.
fn write_run(
    broker: &BenchBroker,
    input: &str,
    records: u64,
    stateful: bool,
) -> (Duration, Duration) {
    let output = broker.create_topic("state-out", PARTITIONS);
    let actor = unique("tally");
    let args = TallyArgs {
        input: input.to_owned(),
        also: Vec::new(),
    };
    actix::System::new().block_on(async {
        let builder = scribe::Node::builder("bench-state")
            .broker(node_broker(broker))
            .default_topic(TopicSpec::new(PARTITIONS, 1));
        let builder = if stateful {
            builder.actor::<Tally>(&actor, &output, args)
        } else {
            builder.actor::<FieldTally>(&actor, &output, args)
        };
        let node = builder.build().unwrap().start().await.unwrap();
        while node.stats(&actor).unwrap().handled == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (t0, cpu0) = (Instant::now(), cpu_time());
        // Every output acknowledged, and with a store every changelog
        // record too (one per number: `published` counts both).
        let published = if stateful { 2 * records } else { records };
        while node.stats(&actor).unwrap().published < published {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let measured = (t0.elapsed(), cpu_time() - cpu0);
        node.shutdown().await.unwrap();
        measured
    })
}

/// Starts a `Tally` whose changelog holds `keys` keys and whose input
/// holds one number per partition; returns the time from `start()` until
/// the four are handled, and from its first restore's start to its last
/// restore's end.
fn restore_run(broker: &BenchBroker, keys: u64) -> (Duration, Duration) {
    let input = broker.create_topic("restore-in", PARTITIONS);
    let output = unique("restore-out");
    let actor = unique("tally");
    let start = |run: bool| {
        actix::System::new().block_on(async {
            let node = scribe::Node::builder("bench-state")
                .broker(node_broker(broker))
                .default_topic(TopicSpec::new(PARTITIONS, 1))
                .actor::<Tally>(
                    &actor,
                    &output,
                    TallyArgs {
                        input: input.clone(),
                        also: Vec::new(),
                    },
                )
                .build()
                .unwrap();
            let t0 = Instant::now();
            let node = node.start().await.unwrap();
            if run {
                while node.stats(&actor).unwrap().handled < PARTITIONS as u64 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let elapsed = t0.elapsed();
            node.shutdown().await.unwrap();
            elapsed
        })
    };
    // A first start creates the output and the changelog (compacted, with
    // the input's partitions), then the changelog is filled from outside.
    start(false);
    let changelog = scribe::state::changelog_topic(&output, "tallies");
    fill_changelog(&broker.bootstrap, &changelog, keys);
    let numbers: Vec<Number> = (0..PARTITIONS as i64)
        .map(|p| Number {
            key: format!("k{p}"),
            seq: p,
        })
        .collect();
    // One number on each partition.
    let encoded = encode_numbers(numbers);
    let producer = producer(&broker.bootstrap);
    for (partition, (key, value)) in encoded.iter().enumerate() {
        scribe_tests::bench::produce_retrying(
            &producer,
            BaseRecord::to(&input)
                .partition(partition as i32)
                .key(key)
                .payload(value),
        );
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    *RESTORES.lock().unwrap() = None;
    let first_records = start(true);
    let (began, ended) = RESTORES.lock().unwrap().expect("the node restored");
    (first_records, ended - began)
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap()
}

fn produce(bootstrap: &str, topic: &str, records: &[(String, Vec<u8>)]) {
    let producer = producer(bootstrap);
    for (key, value) in records {
        scribe_tests::bench::produce_retrying(
            &producer,
            BaseRecord::to(topic).key(key).payload(value),
        );
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// Writes `keys` distinct keys to `changelog`, spread over its partitions,
/// as a restore's repairs are written (header `scribe_state_input:
/// restored`, which always applies).
fn fill_changelog(bootstrap: &str, changelog: &str, keys: u64) {
    let producer = producer(bootstrap);
    let values = scribe::codec::Encoder::<scribe_tests::records::Tally>::new().unwrap();
    let keys_encoder = scribe::codec::Encoder::<String>::new().unwrap();
    let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: "scribe_state_input",
        value: Some("restored"),
    });
    let (mut key, mut value) = (Vec::new(), Vec::new());
    for n in 0..keys {
        key.clear();
        value.clear();
        // A store's key is the Avro datum of its key type (a string here):
        // its single-object encoding without the 10-byte header.
        keys_encoder.encode(&format!("key-{n}"), &mut key).unwrap();
        key.drain(..10);
        values
            .encode(
                &scribe_tests::records::Tally {
                    count: 1,
                    sum: n as i64,
                },
                &mut value,
            )
            .unwrap();
        scribe_tests::bench::produce_retrying(
            &producer,
            BaseRecord::to(changelog)
                .partition((n % PARTITIONS as u64) as i32)
                .key(&key)
                .payload(&value)
                .headers(headers.clone()),
        );
    }
    producer.flush(Duration::from_secs(300)).unwrap();
}

/// `Tally` with its tallies in a field: what state costs, left out (and
/// what a crash loses).
struct FieldTally {
    tallies: HashMap<String, scribe_tests::records::Tally>,
    out: Publisher<Tallied>,
}

impl Actor for FieldTally {
    type Context = Context<Self>;
}

impl TopicActor for FieldTally {
    type Output = Tallied;
    type Args = TallyArgs;
    fn subscriptions(args: &TallyArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Number>(args.input.as_str());
    }
    fn create(_: TallyArgs, out: Publisher<Tallied>) -> Result<Self, ActorError> {
        Ok(Self {
            tallies: HashMap::new(),
            out,
        })
    }
}

impl Handler<Inbound<Number>> for FieldTally {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Number>, _: &mut Context<Self>) -> Self::Result {
        let tally = self.tallies.entry(m.key.clone()).or_default();
        tally.count += 1;
        tally.sum += m.seq;
        let tallied = Tallied {
            key: m.key.clone(),
            seq: m.seq,
            count: tally.count,
            sum: tally.sum,
        };
        self.out.publish(&m.key, tallied)?;
        Ok(())
    }
}
