//! Simulator throughput: N records (default 200000) injected into a chain
//! of three relays (`in` → a → `one` → b → `two` → c → `three`), run until
//! idle on one thread. A record-hop is one record handled by one actor
//! (decoded, handed to its handler, republished, encoded, appended), so the
//! run makes 3N hops. Prints hops per second of wall time and CPU time per
//! hop; the injection is not timed.
//!
//! `cargo bench -p scribe-tests --bench sim_hops [-- --records N] [--max-batch N]`
//!
//! Then, in the same run, the codec alone: the same records encoded and
//! decoded (Avro single-object encoding, scribe's codec) on one thread,
//! and the simulator's cost per hop in units of that encode-plus-decode.
//!
//! The last lines are `bench sim hops_per_sec=N`, `bench codec
//! ns_per_encode_decode=N` and `bench ratio sim/codec cost_per_hop=X`.

use std::time::Instant;

use scribe::Node;
use scribe::sim::Simulation;
use scribe_tests::actors::{Relay, RelayArgs};
use scribe_tests::load::cpu_time;
use scribe_tests::records::Number;

const KEYS: u64 = 64;

fn main() {
    let arg = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let records: u64 = arg("--records")
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let max_batch: usize = arg("--max-batch")
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let node = Node::builder("sim-bench")
        .actor::<Relay>("a", "one", RelayArgs::reading("in"))
        .actor::<Relay>("b", "two", RelayArgs::reading("one"))
        .actor::<Relay>("c", "three", RelayArgs::reading("two"))
        .build()
        .expect("valid topology");
    let mut sim = Simulation::builder(node)
        .seed(1)
        .max_batch(max_batch)
        .build()
        .expect("starts");
    for seq in 0..records {
        let key = format!("key-{}", seq % KEYS);
        let number = Number {
            key: key.clone(),
            seq: (seq / KEYS) as i64,
        };
        sim.inject("in", &key, &number).expect("injected");
    }

    let cpu_before = cpu_time();
    let started = Instant::now();
    sim.run_until_idle();
    let wall = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);

    let out = sim.record_count("three").expect("known topic") as u64;
    assert_eq!(out, records, "every record made all three hops");
    let hops = 3 * records;
    let per_sec = hops as f64 / wall.as_secs_f64();
    println!(
        "sim chain of 3 relays: records={records} hops={hops} max_batch={max_batch} wall={wall:?} cpu={cpu:?}"
    );
    println!(
        "sim cpu_ns_per_hop={:.0} wall_ns_per_hop={:.0}",
        cpu.as_nanos() as f64 / hops as f64,
        wall.as_nanos() as f64 / hops as f64
    );
    println!("bench sim hops_per_sec={per_sec:.0}");

    // The codec alone, over the same records.
    let encoder = scribe::codec::Encoder::<Number>::new().expect("schema");
    let mut registry = scribe::codec::SchemaRegistry::new();
    registry.register_type::<Number>();
    let decoder = scribe::codec::Decoder::<Number>::new(registry).expect("schema");
    let numbers: Vec<Number> = (0..records)
        .map(|seq| Number {
            key: format!("key-{}", seq % KEYS),
            seq: (seq / KEYS) as i64,
        })
        .collect();
    let mut buf = Vec::with_capacity(64);
    let mut check = 0i64;
    let cpu_before = cpu_time();
    let started = Instant::now();
    for number in &numbers {
        buf.clear();
        encoder.encode(number, &mut buf).expect("encodable");
        check = check.wrapping_add(decoder.decode(&buf).expect("decodable").seq);
    }
    let codec_wall = started.elapsed();
    let codec_cpu = cpu_time().saturating_sub(cpu_before);
    assert_eq!(
        check,
        numbers.iter().map(|n| n.seq).sum::<i64>(),
        "every record decoded as encoded"
    );
    let codec_ns = codec_wall.as_nanos() as f64 / records as f64;
    println!("codec encode+decode: records={records} wall={codec_wall:?} cpu={codec_cpu:?}");
    println!("bench codec ns_per_encode_decode={codec_ns:.0}");
    println!(
        "bench ratio sim/codec cost_per_hop={:.2}",
        (wall.as_nanos() as f64 / hops as f64) / codec_ns
    );
}
