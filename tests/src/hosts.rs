//! Host metrics for the standard actors' state tests: hosts that send a
//! sample a second, hot (mean CPU above 50 %) for a run of windows and
//! cool otherwise, and the summaries an uninterrupted windowed aggregator
//! writes for them.

use std::collections::BTreeMap;

use scribe_schemas::HostMetrics;

/// The windows the tests aggregate over.
pub const WINDOW_MS: i64 = 10_000;
/// The first sample's time: a multiple of the window.
pub const BASE_MS: i64 = 1_700_000_000_000;

/// Host `h`'s sample at second `t`: hot (CPU about 73 %) in windows
/// `3 + h % 4` to `12 + h % 3`, cool (about 12 %) otherwise.
pub fn sample(h: i64, t: i64) -> HostMetrics {
    let window = t / 10;
    let hot = (3 + h % 4..13 + h % 3).contains(&window);
    HostMetrics {
        host: format!("host-{h}"),
        cpu_percent: if hot {
            70.0 + (t % 7) as f64
        } else {
            10.0 + (t % 5) as f64
        },
        mem_used_percent: 40.0 + h as f64,
        load1: (t % 3) as f64,
        sampled_at_ms: BASE_MS + t * 1000,
    }
}

/// The samples of `hosts` hosts over `seconds`, second by second, host by
/// host.
pub fn samples(hosts: i64, seconds: std::ops::Range<i64>) -> Vec<HostMetrics> {
    seconds
        .flat_map(|t| (0..hosts).map(move |h| sample(h, t)))
        .collect()
}

/// A summary as compared: host, metric, window start.
pub type SummaryId = (String, String, i64);
/// A summary's figures as compared: count, min, max.
pub type Figures = (i64, f64, f64);

/// What an uninterrupted aggregator writes for the samples of `hosts`
/// hosts from second 0 to `last_t`: every window closed by a later sample
/// of its host (all but the last).
pub fn expected_summaries(hosts: i64, last_t: i64) -> BTreeMap<SummaryId, Figures> {
    let mut windows: BTreeMap<(String, i64), Vec<[f64; 3]>> = BTreeMap::new();
    for t in 0..=last_t {
        for h in 0..hosts {
            let s = sample(h, t);
            let start = s.sampled_at_ms.div_euclid(WINDOW_MS) * WINDOW_MS;
            windows.entry((s.host.clone(), start)).or_default().push([
                s.cpu_percent,
                s.mem_used_percent,
                s.load1,
            ]);
        }
    }
    let open_start = (BASE_MS + last_t * 1000).div_euclid(WINDOW_MS) * WINDOW_MS;
    let mut expected = BTreeMap::new();
    for ((host, start), values) in windows {
        if start == open_start {
            continue;
        }
        for (i, metric) in ["cpu_percent", "mem_used_percent", "load1"]
            .iter()
            .enumerate()
        {
            let column: Vec<f64> = values.iter().map(|v| v[i]).collect();
            let min = column.iter().copied().fold(f64::INFINITY, f64::min);
            let max = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            expected.insert(
                (host.clone(), (*metric).to_owned(), start),
                (column.len() as i64, min, max),
            );
        }
    }
    expected
}

/// A summary's id and figures, as [`expected_summaries`] gives them.
pub fn summary_of(s: &scribe_schemas::MetricSummary) -> (SummaryId, Figures) {
    (
        (s.host.clone(), s.metric.clone(), s.window_start_ms),
        (s.count, s.min, s.max),
    )
}

/// Writes `samples` to `topic`, each keyed by its host, and waits for them.
pub fn produce_samples(kafka: &crate::TestKafka, topic: &str, samples: &[HostMetrics]) {
    let encoder = scribe::codec::Encoder::<HostMetrics>::new().expect("schema");
    let encoded: Vec<(String, Vec<u8>)> = samples
        .iter()
        .map(|s| {
            let mut bytes = Vec::new();
            encoder.encode(s, &mut bytes).expect("encodes");
            (s.host.clone(), bytes)
        })
        .collect();
    let raw: Vec<_> = encoded
        .iter()
        .map(|(key, bytes)| (Some(key.as_str()), bytes.clone(), vec![]))
        .collect();
    kafka.produce_raw(topic, &raw);
}

/// Received against expected: (received, lost, duplicates, wrong).
pub fn compare<K: Ord + Clone, V: PartialEq>(
    got: &[(K, V)],
    expected: &BTreeMap<K, V>,
) -> (usize, usize, usize, usize) {
    let distinct: std::collections::BTreeSet<&K> = got.iter().map(|(k, _)| k).collect();
    let lost = expected.keys().filter(|k| !distinct.contains(k)).count();
    let wrong = got
        .iter()
        .filter(|(k, v)| expected.get(k) != Some(v))
        .count();
    (got.len(), lost, got.len() - distinct.len(), wrong)
}
