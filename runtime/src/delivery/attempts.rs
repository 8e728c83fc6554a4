//! Carrying out an actor's [`FailurePolicy`] on the records it handles:
//! retries, dead letters, and which failures restart or stop it. Shared by
//! the Kafka feed and the simulator's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::delivery::consumed::Position;

use crate::delivery::policy::FailurePolicy;

/// Failures per record that restarted the actor (panics, and under
/// exactly-once handler errors after publishing), kept by the supervisor
/// across restarts: a record that keeps failing that way is dead-lettered
/// once its retries are used.
/// Empty nearly always; `len` keeps the common case off the lock.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    panics: Mutex<HashMap<Position, (u32, String)>>,
    len: AtomicUsize,
}

impl Attempts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Position, (u32, String)>> {
        self.panics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The panics recorded for `key` so far, and the last one's message.
    pub(crate) fn get(&self, key: &Position) -> Option<(u32, String)> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.lock().get(key).cloned()
    }

    /// Forgets `key` (it was handled or dead-lettered).
    pub(crate) fn forget(&self, key: &Position) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut panics = self.lock();
        if panics.remove(key).is_some() {
            self.len.store(panics.len(), Ordering::Release);
        }
    }

    /// Counts a panic on `key`.
    pub(crate) fn panicked(&self, key: Position, reason: &str) {
        let mut panics = self.lock();
        let entry = panics.entry(key).or_insert((0, String::new()));
        entry.0 += 1;
        entry.1 = reason.to_owned();
        self.len.store(panics.len(), Ordering::Release);
    }
}

/// An actor's failure policy, as its feeds carry it out.
#[derive(Debug, Clone)]
pub(crate) struct Failures {
    pub(crate) policy: Arc<FailurePolicy>,
    pub(crate) attempts: Arc<Attempts>,
    pub(crate) dead_letter: Option<Arc<str>>,
    /// Exactly-once: outputs and offsets commit in transactions, so a
    /// failed attempt that published anything cannot simply be retried.
    pub(crate) transactional: bool,
    /// Why the brokers refused the actor's writes for good (a missing
    /// permission, fenced by a newer instance), once they have: set by its
    /// producers, read by its supervisor, which then stops it for good.
    pub(crate) refused: Arc<std::sync::OnceLock<String>>,
}

impl Default for Failures {
    fn default() -> Self {
        Self {
            policy: Arc::new(FailurePolicy::default()),
            attempts: Arc::default(),
            dead_letter: None,
            transactional: false,
            refused: Arc::default(),
        }
    }
}
