//! What follows an instance's end: the restart policy a supervisor
//! applies, on tokio's clock (real time on a node, virtual time when the
//! simulator runs the supervisor).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::delivery::failure::Failure;
use crate::delivery::policy::{FailurePolicy, OverBudget, Restarts};
use crate::feed::Exit;
use crate::ops::stats::ActorStats;

/// First delay before restarting a failed actor; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest delay before a restart.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An instance that ran this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// What to do once an instance ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Then {
    /// Nothing more: it stopped, or stopped for good (reported unhealthy).
    Done,
    /// Start a new instance after this backoff.
    Restart(Duration),
    /// The restart budget is spent and the policy says stop the node; why.
    StopNode(String),
}

/// One actor's restart policy and the state it keeps across restarts.
pub(crate) struct Restarter {
    name: String,
    policy: Arc<FailurePolicy>,
    stats: Arc<ActorStats>,
    backoff: Duration,
    restarts: Restarts<Instant>,
}

impl Restarter {
    pub(crate) fn new(name: String, policy: Arc<FailurePolicy>, stats: Arc<ActorStats>) -> Self {
        Self {
            name,
            policy,
            stats,
            backoff: MIN_BACKOFF,
            restarts: Restarts::default(),
        }
    }

    /// An instance that ran for `ran` ended with `exit`. `stopping`: the
    /// node asked it to stop. `refused`: why the brokers refused its
    /// writes for good, if they did; a failure then is not restarted (a
    /// restart would be refused again, or, fenced, would fence its
    /// replacement).
    pub(crate) fn after(
        &mut self,
        exit: Exit,
        ran: Duration,
        stopping: bool,
        refused: Option<&String>,
    ) -> Then {
        let name = &self.name;
        let exit = match (exit, refused) {
            (Exit::Failed(_), Some(refused)) => Exit::Halted(Failure::Refused(refused.clone())),
            (exit, _) => exit,
        };
        match exit {
            Exit::Stopped => {
                tracing::info!(actor = %name, "actor stopped");
                Then::Done
            }
            Exit::Failed(reason) | Exit::Halted(reason) if stopping => {
                tracing::error!(actor = %name, %reason, "actor failed while stopping");
                Then::Done
            }
            Exit::Halted(reason) => {
                self.unhealthy(reason.to_string());
                tracing::error!(actor = %name, %reason, "actor stopped for good; it is not restarted");
                Then::Done
            }
            Exit::Failed(reason) => {
                if ran > HEALTHY_AFTER {
                    self.backoff = MIN_BACKOFF;
                }
                let now = Instant::now();
                if let Some(budget) = self.restarts.spent(now, &self.policy, name, &reason) {
                    self.unhealthy(budget.clone());
                    return match self.policy.over_budget {
                        OverBudget::StopActor => {
                            tracing::error!(actor = %name, %budget, "restart budget spent; the actor stays stopped");
                            Then::Done
                        }
                        OverBudget::StopNode => {
                            tracing::error!(actor = %name, %budget, "restart budget spent; stopping the node");
                            Then::StopNode(budget)
                        }
                    };
                }
                let backoff = self.backoff;
                tracing::warn!(actor = %name, %reason, ?backoff, "actor failed; restarting");
                ActorStats::add(&self.stats.restarts, 1);
                self.backoff = (backoff * 2).min(MAX_BACKOFF);
                Then::Restart(backoff)
            }
        }
    }

    /// Reports the actor unhealthy, keeping the first reason.
    fn unhealthy(&self, why: String) {
        self.stats.unhealthy.store(true, Ordering::Relaxed);
        self.stats
            .set_state(crate::ops::stats::ActorState::Unhealthy);
        if let Ok(mut stopped) = self.stats.stopped_because.lock() {
            stopped.get_or_insert(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restarter(over_budget: OverBudget) -> (Restarter, Arc<ActorStats>) {
        let stats = Arc::new(ActorStats::default());
        let policy = FailurePolicy {
            max_restarts: 2,
            over_budget,
            ..FailurePolicy::default()
        };
        let restarter = Restarter::new("a".into(), Arc::new(policy), stats.clone());
        (restarter, stats)
    }

    fn failed(offset: i64) -> Exit {
        Exit::Failed(Failure::Undelivered {
            at: crate::delivery::consumed::Position::new("t".into(), 0, offset),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn failures_restart_with_a_doubling_backoff_until_the_budget_is_spent() {
        let (mut restarter, stats) = restarter(OverBudget::StopActor);
        let ran = Duration::from_secs(1);
        assert_eq!(
            restarter.after(failed(1), ran, false, None),
            Then::Restart(MIN_BACKOFF)
        );
        assert_eq!(
            restarter.after(failed(2), ran, false, None),
            Then::Restart(MIN_BACKOFF * 2)
        );
        assert_eq!(restarter.after(failed(3), ran, false, None), Then::Done);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.restarts, 2);
        assert!(snapshot.unhealthy);
        let why = stats.stopped_because.lock().unwrap().clone().unwrap();
        assert!(why.contains("budget is 2"), "{why}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_stops_the_node_when_the_policy_says_so() {
        let (mut restarter, _) = restarter(OverBudget::StopNode);
        let ran = Duration::from_secs(1);
        for offset in 0..2 {
            restarter.after(failed(offset), ran, false, None);
        }
        assert!(matches!(
            restarter.after(failed(9), ran, false, None),
            Then::StopNode(why) if why.contains("actor `a` failed 3 times")
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_run_resets_the_backoff_and_a_refusal_is_never_restarted() {
        let (mut restarter, stats) = restarter(OverBudget::StopActor);
        restarter.after(failed(1), Duration::from_secs(1), false, None);
        assert_eq!(
            restarter.after(failed(2), HEALTHY_AFTER * 2, false, None),
            Then::Restart(MIN_BACKOFF)
        );
        let refused = "not authorized".to_owned();
        assert_eq!(
            restarter.after(failed(3), Duration::ZERO, false, Some(&refused)),
            Then::Done
        );
        assert!(stats.snapshot().unhealthy);
        // Stopping is not a failure, whatever the exit.
        assert_eq!(
            restarter.after(failed(4), Duration::ZERO, true, None),
            Then::Done
        );
    }
}
