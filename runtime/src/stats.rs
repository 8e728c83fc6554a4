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
    pub(crate) transactions: AtomicU64,
    pub(crate) transactions_aborted: AtomicU64,
    pub(crate) commit_retries: AtomicU64,
    pub(crate) publish_stalls: AtomicU64,
    pub(crate) publish_stalled_ms: AtomicU64,
    /// Stopped by its failure policy or restart budget.
    pub(crate) unhealthy: std::sync::atomic::AtomicBool,
    /// Why the actor stopped for good, once it has.
    pub(crate) stopped_because: std::sync::Mutex<Option<String>>,
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
    const ALL: [ActorState; 5] = [
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

    /// Every state, in order.
    pub(crate) fn all() -> [ActorState; 5] {
        Self::ALL
    }
}

impl std::fmt::Display for ActorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ActorStats {
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
    pub(crate) fn ask_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        self.feed.wake();
    }

    /// Whether the running instance applied what [`ActorStats::ask_paused`]
    /// asked last.
    pub(crate) fn pause_settled(&self) -> bool {
        self.pause_applied.load(Ordering::Acquire) == self.paused.load(Ordering::Acquire)
    }

    /// Notes an assignment its consumer took: `partitions` assigned now.
    pub(crate) fn assigned(&self, partitions: usize) {
        self.assignments.fetch_add(1, Ordering::AcqRel);
        self.partitions.store(
            i64::try_from(partitions).unwrap_or(i64::MAX),
            Ordering::Release,
        );
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
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
            transactions: get(&self.transactions),
            transactions_aborted: get(&self.transactions_aborted),
            commit_retries: get(&self.commit_retries),
            publish_stalls: get(&self.publish_stalls),
            publish_stalled_ms: get(&self.publish_stalled_ms),
            unhealthy: self.unhealthy.load(Ordering::Relaxed),
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
    /// Exactly-once: transactions committed.
    pub transactions: u64,
    /// Exactly-once: transactions aborted (their records are handled again).
    pub transactions_aborted: u64,
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
}
