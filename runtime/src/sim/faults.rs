//! Faults the simulator injects by itself, drawn from the seed.

use std::time::Duration;

/// How often the simulator injects faults by itself. Each is decided from
/// the seed before each delivery, so a seed replays its faults too. The
/// default injects none.
///
/// ```
/// # use std::time::Duration;
/// let faults = scribe::sim::Faults {
///     crash: 0.01,
///     redeliver: 0.02,
///     delay: 0.01,
///     ..Default::default()
/// };
/// # let _ = faults;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Chance that one running instance crashes (what it had not committed
    /// is delivered again); its actor restarts after `restart_after`.
    pub crash: f64,
    /// Chance that one instance is rewound, on one of its partitions, to
    /// the committed offset: the duplicate deliveries a consumer sees after
    /// a lost commit or a seek.
    pub redeliver: f64,
    /// Chance that one partition is held back from every consumer for up
    /// to `max_delay`.
    pub delay: f64,
    /// Chance, for each record published, that the broker never
    /// acknowledges it: the publish fails, the offset of the record that
    /// caused it is not committed, and that record is handled again after
    /// a restart.
    pub lose_ack: f64,
    /// Chance, for each record published, that its acknowledgement comes
    /// up to `max_delay` late. Records after it on its partition wait for
    /// it; other partitions' acknowledgements overtake it.
    pub delay_ack: f64,
    /// Chance, for each instance at each commit interval, that its commit
    /// fails; its offsets stay stored for the next.
    pub fail_commit: f64,
    /// Chance, for each transaction an exactly-once actor commits, that
    /// the commit fails and the transaction is aborted: what it wrote is
    /// never read, and its records are handled again after a restart.
    pub abort_txn: f64,
    /// The longest delay, of a partition or an acknowledgement. The
    /// default is 2 s.
    pub max_delay: Duration,
    /// How long a crashed instance stays down. The default is 1 s.
    pub restart_after: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            crash: 0.0,
            redeliver: 0.0,
            delay: 0.0,
            lose_ack: 0.0,
            delay_ack: 0.0,
            fail_commit: 0.0,
            abort_txn: 0.0,
            max_delay: Duration::from_secs(2),
            restart_after: Duration::from_secs(1),
        }
    }
}

/// How many faults the simulator injected by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultCounts {
    /// Instances crashed.
    pub crashes: u64,
    /// Partitions rewound.
    pub redeliveries: u64,
    /// Partitions delayed.
    pub delays: u64,
    /// Records the broker never acknowledged.
    pub lost_acks: u64,
    /// Acknowledgements that came late.
    pub delayed_acks: u64,
    /// Periodic commits that failed.
    pub failed_commits: u64,
    /// Transaction commits that failed (their transactions aborted).
    pub aborted_txns: u64,
}
