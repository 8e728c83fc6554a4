//! Per-actor counters.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

/// Live counters of one actor, shared by its instances across restarts.
#[derive(Debug, Default)]
pub(crate) struct ActorStats {
    pub(crate) handled: AtomicU64,
    pub(crate) undecodable: AtomicU64,
    pub(crate) handler_failures: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) publish_failures: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    /// Records passed over on purpose (see [`StatsSnapshot::skipped`]).
    pub(crate) skipped: AtomicU64,
    /// Error replies sent for requests it could not answer.
    pub(crate) error_replies: AtomicU64,
    pub(crate) transactions: AtomicU64,
    pub(crate) transactions_aborted: AtomicU64,
    /// Timers whose handler returned `Ok`.
    pub(crate) timers_fired: AtomicU64,
    pub(crate) commit_retries: AtomicU64,
    pub(crate) publish_stalls: AtomicU64,
    pub(crate) publish_stalled_ms: AtomicU64,
    /// Stopped by its failure policy or restart budget.
    pub(crate) unhealthy: std::sync::atomic::AtomicBool,
    /// Why the actor stopped for good, once it has.
    pub(crate) stopped_because: std::sync::Mutex<Option<String>>,
    /// Why its handler last failed, if it ever did (for `GET /actors` and
    /// `scribe status`; written on failures only).
    pub(crate) last_error: std::sync::Mutex<Option<String>>,
    /// Where its supervisor is: an [`ActorState`] as a number.
    pub(crate) state: AtomicU8,
    /// Assignments its running instance's consumer has taken (none yet: it
    /// has not joined its group).
    pub(crate) assignments: AtomicU64,
    /// Partitions assigned to its running instance now.
    pub(crate) partitions: AtomicI64,
    /// Whether the actor is to take no records (the admin endpoint's
    /// pause); it outlives restarts and rebalances.
    pub(crate) paused: std::sync::atomic::AtomicBool,
    /// Whether its running instance's consumer is paused as `paused` asks.
    pub(crate) pause_applied: std::sync::atomic::AtomicBool,
    /// Wakes the running instance's feed to apply a pause or resume.
    pub(crate) feed: futures::task::AtomicWaker,
    /// Records taken from the consumer whose offsets cannot be committed
    /// yet (handling, retrying, or their publishes unacknowledged).
    pub(crate) in_flight: AtomicU64,
    /// What librdkafka's statistics said last, when they are on.
    pub(crate) kafka: std::sync::Mutex<KafkaStats>,
    /// Whether handling times are measured (the admin endpoint is on):
    /// off, a record costs one load of this flag.
    pub(crate) timed: std::sync::atomic::AtomicBool,
    /// The restores of its running instance under way, by store and
    /// partition (written by the restore threads now and then, read by
    /// `/ready` and `/metrics`).
    pub(crate) restoring:
        std::sync::Mutex<std::collections::BTreeMap<(String, i32), RestoreProgress>>,
    /// The state of its running instance, read by the admin endpoint
    /// (none for an actor without stores, or before its first instance).
    pub(crate) state_view:
        std::sync::Mutex<Option<std::sync::Arc<dyn super::state_query::StateQuery>>>,
    /// How long the handler took, per record handled.
    pub(crate) handling: Histogram,
    /// From the record's timestamp to the end of its handling.
    pub(crate) end_to_end: Histogram,
}

/// Upper bounds of the latency histograms' buckets, in microseconds
/// (100 µs to 10 s; the last bucket takes the rest).
pub(crate) const LATENCY_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A latency histogram of fixed buckets, filled without a lock.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Per bucket of [`LATENCY_BOUNDS_US`], and one past the last.
    counts: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one observation of `micros`.
    pub(crate) fn observe(&self, micros: u64) {
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// Its buckets as (upper bound in seconds, count in it), the last
    /// bound `f64::MAX`; the sum in seconds; the count.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // read by the admin endpoint
    pub(crate) fn read(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut buckets = Vec::with_capacity(self.counts.len());
        let mut count = 0;
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            count += n;
            let bound = LATENCY_BOUNDS_US
                .get(i)
                .map_or(f64::MAX, |us| *us as f64 / 1e6);
            buckets.push((bound, n));
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, sum, count)
    }
}

/// One actor's clients as librdkafka's statistics (`statistics.interval.ms`)
/// last described them.
#[derive(Debug, Default, Clone)]
pub(crate) struct KafkaStats {
    /// Consumer lag per assigned (topic, partition): records between the
    /// consumer's position and the partition's end.
    pub(crate) lag: std::collections::BTreeMap<(String, i32), i64>,
    /// Records in the producer's queue, not yet acknowledged by a broker.
    pub(crate) producer_queue: u64,
    /// Per (client, broker): what the client measured talking to it.
    pub(crate) brokers: std::collections::BTreeMap<(&'static str, String), BrokerStats>,
}

/// What a client measured of one broker.
#[derive(Debug, Default, Clone, Copy)]
#[cfg_attr(not(feature = "admin"), allow(dead_code))] // read by the admin endpoint
pub(crate) struct BrokerStats {
    /// Request round trip, average and 99th percentile, in microseconds.
    pub(crate) rtt_avg_us: i64,
    pub(crate) rtt_p99_us: i64,
    /// Requests that failed to go out or to come back, and timed out.
    pub(crate) request_errors: u64,
    /// Connections made and lost.
    pub(crate) connects: i64,
    pub(crate) disconnects: i64,
}

impl KafkaStats {
    fn brokers(&mut self, client: &'static str, statistics: &rdkafka::Statistics) {
        self.brokers.retain(|(c, _), _| *c != client);
        for broker in statistics.brokers.values() {
            // The bootstrap entries (no id) stand for brokers listed again
            // under their ids.
            if broker.nodeid < 0 {
                continue;
            }
            let rtt = broker.rtt.as_ref();
            self.brokers.insert(
                (client, broker.name.clone()),
                BrokerStats {
                    rtt_avg_us: rtt.map_or(0, |w| w.avg),
                    rtt_p99_us: rtt.map_or(0, |w| w.p99),
                    request_errors: broker.txerrs + broker.rxerrs + broker.req_timeouts,
                    connects: broker.connects.unwrap_or(0),
                    disconnects: broker.disconnects.unwrap_or(0),
                },
            );
        }
    }
}

/// Where an actor's supervisor is, as the admin endpoint reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActorState {
    /// Its first instance is starting (or joining its group).
    Starting,
    /// An instance runs.
    Running,
    /// It failed and waits to be started again.
    Restarting,
    /// Stopped for good by its failure policy or restart budget.
    Unhealthy,
    /// Stopped by a shutdown.
    Stopped,
}

impl ActorState {
    /// Every state, in order.
    pub(crate) const ALL: [ActorState; 5] = [
        ActorState::Starting,
        ActorState::Running,
        ActorState::Restarting,
        ActorState::Unhealthy,
        ActorState::Stopped,
    ];

    /// Its lowercase name: `starting`, `running`, `restarting`,
    /// `unhealthy`, `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorState::Starting => "starting",
            ActorState::Running => "running",
            ActorState::Restarting => "restarting",
            ActorState::Unhealthy => "unhealthy",
            ActorState::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ActorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far the restore of one partition of one store is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RestoreProgress {
    /// Changelog records between what was read and the end the restore
    /// reads to.
    pub(crate) records_left: u64,
    /// Changelog records read so far.
    pub(crate) records_read: u64,
    /// Bytes of keys and values read so far.
    pub(crate) bytes_read: u64,
}

impl ActorStats {
    /// Notes how far the restore of `store`'s `partition` is; `None`: it
    /// ended (or was given up).
    pub(crate) fn restore_progress(
        &self,
        store: &str,
        partition: i32,
        progress: Option<RestoreProgress>,
    ) {
        let mut restoring = self.restoring.lock().unwrap_or_else(|p| p.into_inner());
        match progress {
            Some(progress) => {
                restoring.insert((store.to_owned(), partition), progress);
            }
            None => {
                restoring.remove(&(store.to_owned(), partition));
            }
        }
    }

    /// Its running instance's state is read through `view` from now on.
    pub(crate) fn show_state(&self, view: std::sync::Arc<dyn super::state_query::StateQuery>) {
        *self.state_view.lock().unwrap_or_else(|p| p.into_inner()) = Some(view);
    }

    /// How its running instance's state is read, if it has stores.
    #[cfg(feature = "admin")]
    pub(crate) fn state_view(&self) -> Option<std::sync::Arc<dyn super::state_query::StateQuery>> {
        self.state_view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The restores under way, by store and partition.
    #[cfg(feature = "admin")]
    pub(crate) fn restores(&self) -> Vec<((String, i32), RestoreProgress)> {
        self.restoring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(at, progress)| (at.clone(), *progress))
            .collect()
    }

    /// Moves the actor to `state`; an unhealthy actor stays unhealthy.
    pub(crate) fn set_state(&self, state: ActorState) {
        let new = state as u8;
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                (old != ActorState::Unhealthy as u8).then_some(new)
            });
        if state != ActorState::Running {
            self.assignments.store(0, Ordering::Release);
            self.partitions.store(0, Ordering::Release);
        }
    }

    /// Where the actor is now.
    pub(crate) fn state(&self) -> ActorState {
        let n = self.state.load(Ordering::Acquire);
        ActorState::ALL
            .into_iter()
            .find(|s| *s as u8 == n)
            .unwrap_or(ActorState::Starting)
    }

    /// Asks the actor to pause (or resume), waking its feed to do it.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // read by the admin endpoint
    pub(crate) fn ask_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        self.feed.wake();
    }

    /// Whether the running instance applied what [`ActorStats::ask_paused`]
    /// asked last.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // read by the admin endpoint
    pub(crate) fn pause_settled(&self) -> bool {
        self.pause_applied.load(Ordering::Acquire) == self.paused.load(Ordering::Acquire)
    }

    /// Keeps what the consumer's statistics say: lag per assigned
    /// partition, and its brokers.
    pub(crate) fn consumer_statistics(&self, statistics: &rdkafka::Statistics) {
        let Ok(mut kafka) = self.kafka.lock() else {
            return;
        };
        kafka.lag.clear();
        for topic in statistics.topics.values() {
            for partition in topic.partitions.values() {
                // librdkafka reports -1 for partitions it does not fetch
                // (not assigned, or its internal unassigned partition).
                if partition.partition >= 0 && partition.consumer_lag >= 0 {
                    kafka.lag.insert(
                        (topic.topic.clone(), partition.partition),
                        partition.consumer_lag,
                    );
                }
            }
        }
        kafka.brokers("consumer", statistics);
    }

    /// Keeps what the producer's statistics say: its queue, its brokers.
    pub(crate) fn producer_statistics(&self, statistics: &rdkafka::Statistics) {
        let Ok(mut kafka) = self.kafka.lock() else {
            return;
        };
        kafka.producer_queue = statistics.msg_cnt;
        kafka.brokers("producer", statistics);
    }

    /// Notes one handling that began at `started`, of a record stamped
    /// `timestamp` (milliseconds since the epoch).
    pub(crate) fn time(&self, started: std::time::Instant, timestamp: Option<i64>) {
        self.handling
            .observe(started.elapsed().as_micros().try_into().unwrap_or(u64::MAX));
        if let Some(stamped) = timestamp.and_then(|ms| u64::try_from(ms).ok()) {
            let now = crate::wire::clock::millis_of(crate::wire::clock::now());
            if let Ok(now) = u64::try_from(now) {
                self.end_to_end
                    .observe(now.saturating_sub(stamped).saturating_mul(1000));
            }
        }
    }

    /// Notes an assignment its consumer took: `partitions` assigned now.
    pub(crate) fn assigned(&self, partitions: usize) {
        self.assignments.fetch_add(1, Ordering::AcqRel);
        self.partitions.store(
            i64::try_from(partitions).unwrap_or(i64::MAX),
            Ordering::Release,
        );
    }

    /// Notes a revocation: `partitions` are left.
    pub(crate) fn holding(&self, partitions: usize) {
        self.partitions.store(
            i64::try_from(partitions).unwrap_or(i64::MAX),
            Ordering::Release,
        );
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Notes why handling last failed.
    pub(crate) fn failed_with(&self, reason: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(reason.to_owned());
        }
    }

    /// Why the actor stopped for good, else why its handler last failed.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // read by the admin endpoint
    pub(crate) fn last_error(&self) -> Option<String> {
        let stopped = self.stopped_because.lock().ok().and_then(|w| w.clone());
        stopped.or_else(|| self.last_error.lock().ok().and_then(|w| w.clone()))
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            handled: get(&self.handled),
            undecodable: get(&self.undecodable),
            handler_failures: get(&self.handler_failures),
            published: get(&self.published),
            publish_failures: get(&self.publish_failures),
            restarts: get(&self.restarts),
            retried: get(&self.retried),
            dead_lettered: get(&self.dead_lettered),
            skipped: get(&self.skipped),
            error_replies: get(&self.error_replies),
            transactions: get(&self.transactions),
            transactions_aborted: get(&self.transactions_aborted),
            timers_fired: get(&self.timers_fired),
            commit_retries: get(&self.commit_retries),
            publish_stalls: get(&self.publish_stalls),
            publish_stalled_ms: get(&self.publish_stalled_ms),
            unhealthy: self.unhealthy.load(Ordering::Relaxed),
            assigned_partitions: self.partitions.load(Ordering::Relaxed).max(0) as u64,
        }
    }
}

/// A copy of one actor's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Records whose handler returned `Ok`.
    pub handled: u64,
    /// Records that could not be decoded (dead-lettered, or stopping the
    /// actor when its policy says so).
    pub undecodable: u64,
    /// Handler calls that returned an error or panicked.
    pub handler_failures: u64,
    /// Records the actor published and the broker acknowledged.
    pub published: u64,
    /// Records the actor published that the broker never acknowledged.
    pub publish_failures: u64,
    /// Times the supervisor restarted the actor.
    pub restarts: u64,
    /// Handler calls repeated after the handler returned an error.
    pub retried: u64,
    /// Records written to the actor's dead-letter topic.
    pub dead_lettered: u64,
    /// Records read and passed over on purpose: records of a type no
    /// binding of the actor takes, on a topic of several types
    /// ([`Subscriptions::on`](crate::Subscriptions::on)), and error replies
    /// a responder wrote on its topic for a [`Gateway`](crate::Gateway),
    /// which carry no record for other readers.
    pub skipped: u64,
    /// Error replies it sent: requests from a gateway it could not answer
    /// (dead-lettered), answered with the reason instead of silence.
    pub error_replies: u64,
    /// Exactly-once: transactions committed.
    pub transactions: u64,
    /// Exactly-once: transactions aborted (their records are handled again).
    pub transactions_aborted: u64,
    /// Timers fired whose handler returned `Ok` (under exactly-once, an
    /// aborted transaction's timers fire again and count again).
    pub timers_fired: u64,
    /// Exactly-once: transaction steps tried again because their outcome
    /// was unknown.
    pub commit_retries: u64,
    /// Publishes that found the producer's queue full and waited for room
    /// (the broker is not keeping up with the actor).
    pub publish_stalls: u64,
    /// Milliseconds spent in those waits, in all.
    pub publish_stalled_ms: u64,
    /// Whether the actor was stopped by its failure policy or restart
    /// budget (it is not running).
    pub unhealthy: bool,
    /// Partitions its running instance holds now (of the topics it reads).
    pub assigned_partitions: u64,
}
