//! The node as the admin endpoint sees it: each actor ([`AdminActor`],
//! whether it is ready and why not), and what the endpoint serves
//! ([`Admin`]), with the rates it measures.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::kafka::secret::Secret;
use crate::ops::stats::{ActorState, ActorStats};

/// One actor as the endpoint reports it.
#[derive(Debug)]
pub(crate) struct AdminActor {
    pub(crate) name: String,
    /// The topic it owns.
    pub(crate) output: String,
    /// What it reads: topics, and patterns as `/REGEX/`. None for an
    /// actor that only publishes (it has no group to join).
    pub(crate) subscriptions: Vec<String>,
    /// The names of its stores (its timer sets among them).
    pub(crate) stores: Vec<String>,
    pub(crate) stats: Arc<ActorStats>,
}

impl AdminActor {
    /// Why the actor is not ready, or `None` when it is.
    pub(super) fn not_ready(&self) -> Option<String> {
        let state = self.stats.state();
        match state {
            ActorState::Running if self.paused() => {
                Some("paused through the admin endpoint".into())
            }
            ActorState::Running
                if !self.subscriptions.is_empty()
                    && self
                        .stats
                        .assignments
                        .load(std::sync::atomic::Ordering::Acquire)
                        == 0 =>
            {
                Some("its consumer has not been assigned partitions yet".into())
            }
            ActorState::Running => {
                let restores = self.stats.restores();
                if restores.is_empty() {
                    return None;
                }
                let partitions: std::collections::BTreeSet<i32> =
                    restores.iter().map(|((_, p), _)| *p).collect();
                let left: u64 = restores.iter().map(|(_, r)| r.records_left).sum();
                Some(format!(
                    "restoring the state of partitions {partitions:?} ({left} changelog records left)"
                ))
            }
            ActorState::Starting => Some("its first instance is starting".into()),
            ActorState::Restarting => Some("it failed and waits to be restarted".into()),
            ActorState::Unhealthy => Some(
                self.stats
                    .stopped_because
                    .lock()
                    .ok()
                    .and_then(|why| why.clone())
                    .unwrap_or_else(|| "stopped by its failure policy".into()),
            ),
            ActorState::Stopped => Some("stopped by a shutdown".into()),
        }
    }

    pub(super) fn paused(&self) -> bool {
        self.stats.paused.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Its state as reported: `paused` for a running actor that is.
    pub(super) fn shown_state(&self) -> &'static str {
        match self.stats.state() {
            ActorState::Running if self.paused() => "paused",
            state => state.as_str(),
        }
    }
}

/// What the endpoint serves: the node's actors, and the token it asks
/// for, if any.
#[derive(Debug)]
pub(crate) struct Admin {
    pub(crate) node: String,
    pub(crate) actors: Vec<AdminActor>,
    pub(crate) token: Option<Secret>,
    /// Each actor's counters sampled at most once a second by `GET
    /// /actors`: what its rates are measured against, whoever asks.
    pub(crate) rates: std::sync::Mutex<HashMap<String, Rates>>,
}

/// Two samples of an actor's (handled, published) counters, at least a
/// second apart: rates are measured from the older, so two clients asking
/// in turn both get rates over a second or more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    older: (Instant, u64, u64),
    newer: (Instant, u64, u64),
}

impl Rates {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            older: (now, 0, 0),
            newer: (now, 0, 0),
        }
    }

    /// Records per second handled and published, and over how many
    /// seconds, with the counters at `now`.
    pub(super) fn at(&mut self, now: Instant, handled: u64, published: u64) -> (f64, f64, f64) {
        if now.duration_since(self.newer.0) >= Duration::from_secs(1) {
            self.older = self.newer;
            self.newer = (now, handled, published);
        }
        let (since, h, p) = self.older;
        let seconds = now
            .duration_since(since)
            .max(Duration::from_millis(1))
            .as_secs_f64();
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
        (rate(handled, h), rate(published, p), seconds)
    }
}

impl Admin {
    /// The endpoint for `node`'s `actors`, asking for `token` if any.
    pub(crate) fn new(node: String, actors: Vec<AdminActor>, token: Option<Secret>) -> Self {
        let now = Instant::now();
        let rates = actors
            .iter()
            .map(|a| (a.name.clone(), Rates::new(now)))
            .collect();
        Self {
            node,
            actors,
            token,
            rates: std::sync::Mutex::new(rates),
        }
    }

    pub(super) fn actor(&self, name: &str) -> Option<&AdminActor> {
        self.actors.iter().find(|a| a.name == name)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn admin(state: ActorState, assignments: u64) -> Admin {
        let stats = Arc::new(ActorStats::default());
        stats.set_state(state);
        for _ in 0..assignments {
            stats.assigned(3);
        }
        ActorStats::add(&stats.handled, 7);
        Admin::new(
            "n".into(),
            vec![AdminActor {
                name: "relay".into(),
                output: "out".into(),
                subscriptions: vec!["in".into()],
                stores: Vec::new(),
                stats,
            }],
            None,
        )
    }

    #[test]
    fn a_running_actor_is_not_ready_until_its_consumer_is_assigned() {
        let waiting = admin(ActorState::Running, 0);
        assert_eq!(
            waiting.actors[0].not_ready().as_deref(),
            Some("its consumer has not been assigned partitions yet")
        );
        assert_eq!(admin(ActorState::Running, 1).actors[0].not_ready(), None);
    }

    #[test]
    fn an_unhealthy_actor_stays_unhealthy() {
        let stats = ActorStats::default();
        stats.set_state(ActorState::Unhealthy);
        stats.set_state(ActorState::Stopped);
        assert_eq!(stats.state(), ActorState::Unhealthy);
    }
}
