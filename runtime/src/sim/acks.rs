//! What the simulated broker does to the records published and to the
//! transactions committed: each fate drawn from a seeded stream, or
//! decided by the test.

use rand::Rng as _;
use rand_chacha::ChaCha8Rng;

/// What the simulated broker does to acknowledgements: each record's fate
/// is drawn from its own seeded stream when it is sent.
#[derive(Debug)]
pub(crate) struct Acks {
    pub(crate) rng: ChaCha8Rng,
    /// Chance that a record is lost.
    pub(crate) lose: f64,
    /// Chance that an acknowledgement comes late, and by up to how long.
    pub(crate) delay: f64,
    pub(crate) max_delay: std::time::Duration,
    /// Records to lose on purpose: by topic, the how-manieth record sent
    /// to it (counted in `sent`).
    pub(crate) targeted: Vec<(usize, u64)>,
    /// Records sent so far, by topic index.
    pub(crate) sent: Vec<u64>,
    /// Records lost and delayed so far.
    pub(crate) lost: u64,
    pub(crate) delayed: u64,
    /// Chance that a transaction commit fails and the transaction must be
    /// aborted.
    pub(crate) abort_txn: f64,
    /// Actors (by index) whose next transaction commit fails on purpose.
    pub(crate) abort_targeted: Vec<usize>,
    /// Transaction commits failed so far.
    pub(crate) aborted_txns: u64,
}

impl Acks {
    pub(crate) fn new(rng: ChaCha8Rng) -> Self {
        Self {
            rng,
            lose: 0.0,
            delay: 0.0,
            max_delay: std::time::Duration::ZERO,
            targeted: Vec::new(),
            sent: Vec::new(),
            lost: 0,
            delayed: 0,
            abort_txn: 0.0,
            abort_targeted: Vec::new(),
            aborted_txns: 0,
        }
    }

    /// Whether the commit of a transaction of `actor` fails now.
    pub(super) fn commit_fails(&mut self, actor: usize) -> bool {
        if let Some(i) = self.abort_targeted.iter().position(|&a| a == actor) {
            self.abort_targeted.swap_remove(i);
            self.aborted_txns += 1;
            return true;
        }
        if self.abort_txn > 0.0 && self.rng.random_bool(self.abort_txn.min(1.0)) {
            self.aborted_txns += 1;
            return true;
        }
        false
    }

    /// Whether a record sent to `topic` now is lost, and when its
    /// acknowledgement is due.
    pub(super) fn fate(&mut self, topic: usize) -> (bool, Option<tokio::time::Instant>) {
        if self.sent.len() <= topic {
            self.sent.resize(topic + 1, 0);
        }
        let this = self.sent[topic];
        self.sent[topic] += 1;
        if let Some(i) = self.targeted.iter().position(|&t| t == (topic, this)) {
            self.targeted.swap_remove(i);
            self.lost += 1;
            return (true, None);
        }
        // Each chance is drawn only when set, so runs without these faults
        // draw nothing.
        if self.lose > 0.0 && self.rng.random_bool(self.lose.min(1.0)) {
            self.lost += 1;
            return (true, None);
        }
        if self.delay > 0.0 && self.rng.random_bool(self.delay.min(1.0)) {
            let longest = u64::try_from(self.max_delay.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            self.delayed += 1;
            let ms = self.rng.random_range(1..=longest);
            let due = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
            return (false, Some(due));
        }
        (false, None)
    }
}
