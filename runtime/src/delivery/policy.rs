//! [`FailurePolicy`]: what an actor's supervisor does when handling fails;
//! [`Delivery`]: what its outputs and offsets guarantee.

use crate::delivery::failure::Failure;
use std::time::Duration;

use serde::Deserialize;

/// What happens when an actor's handler fails, per actor.
///
/// - A handler that returns `Err` is called again with the same record
///   after `backoff` (doubling up to `max_backoff`), up to `retries` times;
///   the actor's other records wait, so partition order holds.
/// - A handler that panics is not trusted with its state: the actor is
///   rebuilt through its constructor and the record delivered again, up to
///   `retries` times as well.
/// - A record whose retries are used up, or that cannot be decoded, is
///   dead-lettered (`then = "dead-letter"`, the default) and the actor goes
///   on, or the actor stops (`then = "stop"`).
/// - Restarts are budgeted: more than `max_restarts` within
///   `restart_window` stops the actor and reports it unhealthy
///   (`over_budget = "stop-actor"`, the default) or stops the node
///   (`"stop-node"`).
///
/// In a node config file it is the `failure` table of an `[[actors]]` entry:
///
/// ```toml
/// [[actors]]
/// name = "aggregator"
/// kind = "windowed-aggregator"
/// output = "metrics.summary"
/// failure = { retries = 5, backoff = "200ms", then = "dead-letter", max_restarts = 3, restart_window = "1m" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailurePolicy {
    /// How many times a failing record is tried again. The default is 3.
    pub retries: u32,
    /// The wait before the first retry of a handler error. The default is 100 ms.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// The longest wait between retries. The default is 10 s.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// What happens to a record whose retries are used up, or that cannot
    /// be decoded. The default is dead-lettering it.
    pub then: Exhausted,
    /// The dead-letter topic. The default is `<output topic>.dlq`.
    pub dead_letter_topic: Option<String>,
    /// Most restarts allowed within `restart_window`. The default is 5.
    pub max_restarts: u32,
    /// The window restarts are counted over. The default is 1 minute.
    #[serde(with = "humantime_serde")]
    pub restart_window: Duration,
    /// What happens past the restart budget. The default is stopping the actor.
    pub over_budget: OverBudget,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            then: Exhausted::DeadLetter,
            dead_letter_topic: None,
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
            over_budget: OverBudget::StopActor,
        }
    }
}

impl FailurePolicy {
    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn backoff_for(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// The dead-letter topic of an actor writing `output`, if records are
    /// dead-lettered at all.
    pub fn dead_letter_topic_for(&self, output: &str) -> Option<String> {
        match self.then {
            Exhausted::DeadLetter => Some(
                self.dead_letter_topic
                    .clone()
                    .unwrap_or_else(|| format!("{output}.dlq")),
            ),
            Exhausted::Stop => None,
        }
    }
}

/// An actor's recent failures, counted against its restart budget. Generic
/// over the clock: the supervisor's real one and the simulator's virtual one.
#[derive(Debug)]
pub(crate) struct Restarts<I> {
    failures: std::collections::VecDeque<I>,
    /// The last failure, and how many times in a row it came.
    last: Option<(Failure, u32)>,
}

impl<I> Default for Restarts<I> {
    fn default() -> Self {
        Self {
            failures: std::collections::VecDeque::new(),
            last: None,
        }
    }
}

impl<I: Copy + std::ops::Sub<Output = Duration>> Restarts<I> {
    /// Counts a failure at `now`. Returns why the actor must not restart
    /// when the failures within the window exceed the budget, or when the
    /// same failure on the same record came more often in a row than the
    /// budget allows, however far apart: that is a loop, which a restart
    /// does not mend.
    pub(crate) fn spent(
        &mut self,
        now: I,
        policy: &FailurePolicy,
        actor: &str,
        failure: &Failure,
    ) -> Option<String> {
        let in_a_row = match &self.last {
            Some((last, n)) if last.repeats(failure) => n + 1,
            _ => 1,
        };
        self.last = Some((failure.clone(), in_a_row));
        self.failures.push_back(now);
        while self
            .failures
            .front()
            .is_some_and(|at| now - *at > policy.restart_window)
        {
            self.failures.pop_front();
        }
        if self.failures.len() > policy.max_restarts as usize {
            return Some(format!(
                "actor `{actor}` failed {} times within {:?} (its budget is {}): {failure}",
                self.failures.len(),
                policy.restart_window,
                policy.max_restarts
            ));
        }
        (in_a_row > policy.max_restarts).then(|| {
            format!(
                "actor `{actor}` failed {in_a_row} times in a row on the same record (its budget \
                 is {}): {failure}",
                policy.max_restarts
            )
        })
    }
}

/// What happens to a record that cannot be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Exhausted {
    /// Write it to the actor's dead-letter topic and go on.
    DeadLetter,
    /// Stop the actor (the record stays uncommitted).
    Stop,
}

/// What happens when an actor restarts more often than its budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum OverBudget {
    /// Stop the actor and report it unhealthy; the node's other actors go on.
    StopActor,
    /// Stop the whole node (drained).
    StopNode,
}

impl TryFrom<String> for Exhausted {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "dead-letter" => Ok(Exhausted::DeadLetter),
            "stop" => Ok(Exhausted::Stop),
            other => Err(format!(
                "unknown variant `{other}`, expected `dead-letter` or `stop`"
            )),
        }
    }
}

impl TryFrom<String> for OverBudget {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "stop-actor" => Ok(OverBudget::StopActor),
            "stop-node" => Ok(OverBudget::StopNode),
            other => Err(format!(
                "unknown variant `{other}`, expected `stop-actor` or `stop-node`"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = FailurePolicy {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            ..FailurePolicy::default()
        };
        let waits: Vec<u128> = (1..=5).map(|a| policy.backoff_for(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
    }

    #[test]
    fn the_dead_letter_topic_defaults_to_the_output_with_dlq() {
        let policy = FailurePolicy::default();
        assert_eq!(
            policy.dead_letter_topic_for("out").as_deref(),
            Some("out.dlq")
        );
        let stop = FailurePolicy {
            then: Exhausted::Stop,
            ..policy
        };
        assert_eq!(stop.dead_letter_topic_for("out"), None);
    }

    fn undelivered(offset: i64) -> Failure {
        Failure::Undelivered {
            at: crate::delivery::consumed::Position::new("in".into(), 0, offset),
        }
    }

    #[test]
    fn failures_within_the_window_spend_the_budget() {
        let policy = FailurePolicy {
            max_restarts: 2,
            restart_window: Duration::from_secs(60),
            ..FailurePolicy::default()
        };
        let mut restarts = Restarts::default();
        let at = |s: u64| Duration::from_secs(s);
        assert!(
            restarts
                .spent(at(0), &policy, "a", &undelivered(1))
                .is_none()
        );
        assert!(
            restarts
                .spent(at(1), &policy, "a", &undelivered(2))
                .is_none()
        );
        let spent = restarts
            .spent(at(2), &policy, "a", &undelivered(3))
            .unwrap();
        assert!(spent.contains("failed 3 times within 60s"), "{spent}");
    }

    #[test]
    fn the_same_failure_on_the_same_record_is_a_loop_however_far_apart() {
        let policy = FailurePolicy {
            max_restarts: 2,
            restart_window: Duration::from_secs(60),
            ..FailurePolicy::default()
        };
        let mut restarts = Restarts::default();
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert!(
            restarts
                .spent(hours(0), &policy, "a", &undelivered(7))
                .is_none()
        );
        assert!(
            restarts
                .spent(hours(1), &policy, "a", &undelivered(7))
                .is_none()
        );
        let spent = restarts
            .spent(hours(2), &policy, "a", &undelivered(7))
            .unwrap();
        assert!(
            spent.contains("failed 3 times in a row on the same record")
                && spent.contains("in/0@7"),
            "{spent}"
        );
        // Another record, or a failure without one, starts the count again.
        let mut restarts = Restarts::default();
        for (h, failure) in [
            (0, undelivered(7)),
            (1, undelivered(8)),
            (2, undelivered(7)),
            (3, Failure::Lost("gone".into())),
            (4, Failure::Lost("gone".into())),
            (5, Failure::Lost("gone".into())),
        ] {
            assert!(restarts.spent(hours(h), &policy, "a", &failure).is_none());
        }
    }
}

/// What an actor's outputs and input offsets guarantee, per actor.
///
/// In a node config file it is the `delivery` key of an `[[actors]]`
/// entry: `delivery = "exactly-once"`. `docs/semantics.md` says what each
/// costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Delivery {
    /// Offsets commit once the records a handler published are
    /// acknowledged: after a failure, records are handled again and their
    /// outputs may be written twice. Nothing is lost. The default.
    #[default]
    AtLeastOnce,
    /// Outputs, dead letters and input offsets commit together in a Kafka
    /// transaction (`transactional.id` = `scribe.<node>.<actor>`): a reader
    /// with `isolation.level=read_committed` (every scribe consumer) sees
    /// each record's outputs once, whatever failed. A second live instance
    /// with the same identity fences the first.
    ExactlyOnce,
}

impl Delivery {
    /// Its name in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::AtLeastOnce => "at-least-once",
            Delivery::ExactlyOnce => "exactly-once",
        }
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Delivery {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "at-least-once" => Ok(Delivery::AtLeastOnce),
            "exactly-once" => Ok(Delivery::ExactlyOnce),
            other => Err(format!(
                "unknown variant `{other}`, expected `at-least-once` or `exactly-once`"
            )),
        }
    }
}
