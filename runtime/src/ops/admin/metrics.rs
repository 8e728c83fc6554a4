//! `/metrics`: the actors' counters, states and Kafka statistics at one
//! scrape, in the OpenMetrics text format, read from the counters the
//! actors keep anyway.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::node::Admin;
use crate::ops::stats::{ActorState, BrokerStats, KafkaStats, RestoreProgress, StatsSnapshot};

/// One actor at one scrape.
#[derive(Debug)]
struct Scraped {
    name: String,
    counters: StatsSnapshot,
    state: ActorState,
    paused: bool,
    partitions: i64,
    in_flight: u64,
    kafka: KafkaStats,
    /// Restores under way, by store and partition.
    restores: Vec<((String, i32), RestoreProgress)>,
    /// (buckets, sum, count) of the handling and end-to-end histograms.
    handling: (Vec<(f64, u64)>, f64, u64),
    end_to_end: (Vec<(f64, u64)>, f64, u64),
}

/// The actors' counters and states at one scrape.
#[derive(Debug)]
pub(super) struct Snapshot {
    actors: Vec<Scraped>,
}

impl Snapshot {
    pub(super) fn of(admin: &Admin) -> Self {
        Self {
            actors: admin
                .actors
                .iter()
                .map(|a| Scraped {
                    name: a.name.clone(),
                    counters: a.stats.snapshot(),
                    state: a.stats.state(),
                    paused: a.paused(),
                    partitions: a
                        .stats
                        .partitions
                        .load(std::sync::atomic::Ordering::Acquire),
                    in_flight: a.stats.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                    kafka: a.stats.kafka.lock().map(|k| k.clone()).unwrap_or_default(),
                    restores: a.stats.restores(),
                    handling: a.stats.handling.read(),
                    end_to_end: a.stats.end_to_end.read(),
                })
                .collect(),
        }
    }
}

/// A per-actor counter: its name (`scribe_` before it, `_total` after it
/// in the exposition), its help, and where it is in a snapshot.
type Counter = (&'static str, &'static str, fn(&StatsSnapshot) -> u64);

/// Every per-actor counter.
const COUNTERS: &[Counter] = &[
    (
        "records_handled",
        "Records whose handler returned Ok.",
        |s| s.handled,
    ),
    (
        "records_published",
        "Records the actor published that the broker acknowledged.",
        |s| s.published,
    ),
    (
        "records_undecodable",
        "Records that could not be decoded.",
        |s| s.undecodable,
    ),
    (
        "records_dead_lettered",
        "Records written to the actor's dead-letter topic.",
        |s| s.dead_lettered,
    ),
    (
        "records_skipped",
        "Records passed over on purpose: types the actor does not handle, and error replies meant for a gateway.",
        |s| s.skipped,
    ),
    (
        "error_replies",
        "Gateway requests the actor could not handle, answered with an error reply.",
        |s| s.error_replies,
    ),
    (
        "handler_failures",
        "Handler calls that returned an error or panicked.",
        |s| s.handler_failures,
    ),
    (
        "handler_retries",
        "Handler calls repeated after the handler returned an error.",
        |s| s.retried,
    ),
    (
        "publish_failures",
        "Records the actor published that the broker never acknowledged.",
        |s| s.publish_failures,
    ),
    (
        "publish_stalls",
        "Publishes that found the producer's queue full and waited.",
        |s| s.publish_stalls,
    ),
    (
        "actor_restarts",
        "Times the supervisor restarted the actor.",
        |s| s.restarts,
    ),
    (
        "transactions",
        "Exactly-once transactions committed.",
        |s| s.transactions,
    ),
    (
        "transactions_aborted",
        "Exactly-once transactions aborted (their records are handled again).",
        |s| s.transactions_aborted,
    ),
    (
        "timers_fired",
        "Timers fired whose handler returned Ok.",
        |s| s.timers_fired,
    ),
];

/// A per-actor gauge: its name, its help, and its value at a scrape.
type Gauge = (&'static str, &'static str, fn(&Scraped) -> i64);

/// Every per-actor gauge with one value per actor.
const GAUGES: &[Gauge] = &[
    (
        "actor_paused",
        "1 while the actor is paused through the admin endpoint.",
        |a| i64::from(a.paused),
    ),
    (
        "actor_assigned_partitions",
        "Partitions assigned to the actor's consumer in this node.",
        |a| a.partitions,
    ),
    (
        "records_in_flight",
        "Records taken from the consumer whose offsets cannot be committed yet.",
        |a| i64::try_from(a.in_flight).unwrap_or(i64::MAX),
    ),
    (
        "producer_queue_records",
        "Records in the producer's queue not yet acknowledged by a broker (librdkafka's statistics).",
        |a| i64::try_from(a.kafka.producer_queue).unwrap_or(i64::MAX),
    ),
];

/// A per-actor histogram: its name, its help, and its buckets, sum and
/// count at a scrape.
type Histogram = (
    &'static str,
    &'static str,
    fn(&Scraped) -> &(Vec<(f64, u64)>, f64, u64),
);

/// Every per-actor histogram.
const HISTOGRAMS: &[Histogram] = &[
    (
        "handling_seconds",
        "How long the handler took per record.",
        |a| &a.handling,
    ),
    (
        "end_to_end_seconds",
        "From a record's timestamp to the end of its handling.",
        |a| &a.end_to_end,
    ),
];

type Encoded = std::result::Result<(), std::fmt::Error>;

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Encoded {
        for (name, help, value) in COUNTERS {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for actor in &self.actors {
                let labels = [("actor", actor.name.as_str())];
                ConstCounter::new(value(&actor.counters)).encode(metric.encode_family(&labels)?)?;
            }
        }
        self.encode_states(&mut encoder)?;
        for (name, help, value) in GAUGES {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for actor in &self.actors {
                let labels = [("actor", actor.name.as_str())];
                ConstGauge::new(value(actor)).encode(metric.encode_family(&labels)?)?;
            }
        }
        self.encode_lag(&mut encoder)?;
        self.encode_restores(&mut encoder)?;
        for (name, help, which) in HISTOGRAMS {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for actor in &self.actors {
                let (buckets, sum, count) = which(actor);
                let labels = [("actor", actor.name.as_str())];
                metric
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
            }
        }
        self.encode_brokers(&mut encoder)
    }
}

impl Snapshot {
    /// One gauge per actor and state: 1 for the state it is in.
    fn encode_states(&self, encoder: &mut DescriptorEncoder) -> Encoded {
        let mut metric = encoder.encode_descriptor(
            "actor_state",
            "1 for the state the actor is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for actor in &self.actors {
            for state in ActorState::ALL {
                let labels = [("actor", actor.name.as_str()), ("state", state.as_str())];
                ConstGauge::new(i64::from(state == actor.state))
                    .encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    /// The consumer lag of each actor, per topic and partition.
    fn encode_lag(&self, encoder: &mut DescriptorEncoder) -> Encoded {
        let mut metric = encoder.encode_descriptor(
            "consumer_lag",
            "Records between the consumer's position and the partition's end (librdkafka's statistics).",
            None,
            MetricType::Gauge,
        )?;
        for actor in &self.actors {
            for ((topic, partition), lag) in &actor.kafka.lag {
                let partition = partition.to_string();
                let labels = [
                    ("actor", actor.name.as_str()),
                    ("topic", topic.as_str()),
                    ("partition", partition.as_str()),
                ];
                ConstGauge::new(*lag).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// A figure of a restore under way: its name, help, and where it is.
type RestoreFigure = (&'static str, &'static str, fn(&RestoreProgress) -> u64);

/// What `/metrics` shows of each restore under way.
const RESTORE_FIGURES: &[RestoreFigure] = &[
    (
        "state_restore_records_left",
        "Changelog records a partition's restore has still to read, per store and partition (only while it restores).",
        |r| r.records_left,
    ),
    (
        "state_restore_records_read",
        "Changelog records a partition's restore has read so far, per store and partition (only while it restores).",
        |r| r.records_read,
    ),
    (
        "state_restore_bytes_read",
        "Bytes of keys and values a partition's restore has read so far, per store and partition (only while it restores).",
        |r| r.bytes_read,
    ),
];

impl Snapshot {
    /// How far each restore under way is, per actor, store and partition.
    fn encode_restores(&self, encoder: &mut DescriptorEncoder) -> Encoded {
        for (name, help, value) in RESTORE_FIGURES {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for actor in &self.actors {
                for ((store, partition), progress) in &actor.restores {
                    let partition = partition.to_string();
                    let labels = [
                        ("actor", actor.name.as_str()),
                        ("store", store.as_str()),
                        ("partition", partition.as_str()),
                    ];
                    let value = i64::try_from(value(progress)).unwrap_or(i64::MAX);
                    ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

/// A per-broker figure: its name, help, type, and where it is.
type BrokerFigure = (
    &'static str,
    &'static str,
    MetricType,
    fn(&BrokerStats) -> f64,
);

/// What each client measured of each broker (librdkafka's statistics).
const BROKER_FIGURES: &[BrokerFigure] = &[
    (
        "kafka_rtt_avg_seconds",
        "Average request round trip to the broker.",
        MetricType::Gauge,
        |b| b.rtt_avg_us as f64 / 1e6,
    ),
    (
        "kafka_rtt_p99_seconds",
        "99th percentile of the request round trip to the broker.",
        MetricType::Gauge,
        |b| b.rtt_p99_us as f64 / 1e6,
    ),
    (
        "kafka_request_errors",
        "Requests to the broker that failed to go out or come back, or timed out.",
        MetricType::Counter,
        |b| b.request_errors as f64,
    ),
    (
        "kafka_connects",
        "Connections made to the broker.",
        MetricType::Counter,
        |b| b.connects as f64,
    ),
    (
        "kafka_disconnects",
        "Connections to the broker lost.",
        MetricType::Counter,
        |b| b.disconnects as f64,
    ),
];

impl Snapshot {
    /// What each client of each actor measured of each broker.
    fn encode_brokers(&self, encoder: &mut DescriptorEncoder) -> Encoded {
        for (name, help, kind, value) in BROKER_FIGURES {
            let mut metric = encoder.encode_descriptor(name, help, None, *kind)?;
            for actor in &self.actors {
                for ((client, broker), figures) in &actor.kafka.brokers {
                    let labels = [
                        ("actor", actor.name.as_str()),
                        ("client", client),
                        ("broker", broker.as_str()),
                    ];
                    let family = metric.encode_family(&labels)?;
                    match kind {
                        MetricType::Counter => {
                            ConstCounter::new(value(figures) as u64).encode(family)?
                        }
                        _ => ConstGauge::new(value(figures)).encode(family)?,
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::super::node::tests::admin;
    use super::*;

    #[test]
    fn metrics_name_each_counter_and_state_per_actor() {
        let admin = admin(ActorState::Running, 1);
        let mut registry = Registry::with_prefix("scribe");
        registry.register_collector(Box::new(Snapshot::of(&admin)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("scribe_records_handled_total{actor=\"relay\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("scribe_actor_state{actor=\"relay\",state=\"running\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("scribe_actor_state{actor=\"relay\",state=\"unhealthy\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("scribe_actor_assigned_partitions{actor=\"relay\"} 3"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_restore_under_way_shows_per_store_and_partition_and_makes_the_actor_not_ready() {
        let admin = admin(ActorState::Running, 1);
        let progress = RestoreProgress {
            records_left: 900,
            records_read: 100,
            bytes_read: 4096,
        };
        admin.actors[0]
            .stats
            .restore_progress("counts", 2, Some(progress));
        let mut registry = Registry::with_prefix("scribe");
        registry.register_collector(Box::new(Snapshot::of(&admin)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "scribe_state_restore_records_left{actor=\"relay\",store=\"counts\",partition=\"2\"} 900",
            "scribe_state_restore_records_read{actor=\"relay\",store=\"counts\",partition=\"2\"} 100",
            "scribe_state_restore_bytes_read{actor=\"relay\",store=\"counts\",partition=\"2\"} 4096",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert_eq!(
            admin.actors[0].not_ready().as_deref(),
            Some("restoring the state of partitions {2} (900 changelog records left)")
        );
        admin.actors[0].stats.restore_progress("counts", 2, None);
        assert_eq!(admin.actors[0].not_ready(), None, "restored: ready");
    }
}
