//! Load for overload tests and benchmarks: a steady stream of records, a
//! process's resident memory, and this process's CPU time.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::records::Payload;

/// Produces `rate` ~200-byte [`Payload`]s a second to `topic` for `span`,
/// keyed over 64 keys and numbered from 0, while sampling the resident
/// memory of process `watched` every 100 ms. Returns the records sent and
/// the peak RSS seen, in KiB.
pub fn feed_payloads(
    bootstrap: &str,
    topic: &str,
    rate: u64,
    span: Duration,
    watched: u32,
) -> (u64, u64) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let encoder = scribe::codec::Encoder::<Payload>::new().expect("schema");
    let body = "x".repeat(160);
    let mut bytes = Vec::new();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut peak = 0u64;
    let mut next_sample = Instant::now();
    while started.elapsed() < span {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let key = format!("k{}", sent % 64);
            bytes.clear();
            let payload = Payload {
                seq: sent as i64,
                hops: 0,
                body: body.clone(),
            };
            encoder.encode(&payload, &mut bytes).expect("encodes");
            match producer.send(BaseRecord::to(topic).key(&key).payload(&bytes)) {
                Ok(()) => sent += 1,
                // The local queue is full: let the broker catch up.
                Err(_) => producer.poll(Duration::from_millis(5)),
            }
        }
        producer.poll(Duration::ZERO);
        if Instant::now() >= next_sample {
            peak = peak.max(rss_kb(watched));
            next_sample += Duration::from_millis(100);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every record acknowledged");
    (sent, peak.max(rss_kb(watched)))
}

/// The resident memory of process `pid`, in KiB (0 when it is gone).
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// This process's user + system CPU time.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After the name: state, ppid, ..., utime (14th field overall), stime (15th).
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // USER_HZ is 100 on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// This process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
