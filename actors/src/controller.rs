//! Controller: turns alarms into commands, at most one per target per cooldown.
//!
//! - Reads: `scribe.control.Alarm` from `input`.
//! - Writes: `scribe.control.Command`: `THROTTLE` when an alarm is raised,
//!   `RESUME` when it clears.
//! - Keys by: target (the alarm's host).
//! - Parameters: [`ControllerArgs`].
//!
//! A command that would follow the previous one to the same target sooner
//! than `cooldown` is held back and sent when the cooldown ends, unless a
//! later alarm made it moot.
//!
//! What it remembers is in stores, so a crash, a restart or a rebalance
//! changes nothing it does: the last command sent to each target
//! (`last`), the command held back for each (`held`), and a wall-clock
//! timer per held-back command (`cooldowns`). A held-back command is
//! published when its timer fires, through the same path as a record: it
//! carries no `causation_id`, and it counts as sent once acknowledged.

use std::time::Duration;

use scribe::prelude::*;
use scribe_schemas::{Alarm, AlarmState, Command, CommandAction};

use crate::now_ms;

/// Parameters of a [`Controller`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerArgs {
    /// The topic of alarms to read.
    pub input: String,
    /// The least time between two commands to one target, e.g. `"30s"`.
    /// The default is 30 s.
    #[serde(default = "thirty_seconds", with = "humantime_serde")]
    pub cooldown: Duration,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

impl ControllerArgs {
    /// Reads `input` with the default 30 s cooldown.
    pub fn reading(input: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// The store of the last command sent to each target.
const LAST: &str = "last";
/// The store of the command held back for each target.
const HELD: &str = "held";
/// The timers that end each target's cooldown.
const COOLDOWNS: &str = "cooldowns";

/// Sends throttle and resume commands in response to alarms.
#[derive(Debug)]
pub struct Controller {
    period_ms: i64,
    last: Store<String, Command>,
    held: Store<String, Command>,
    cooldowns: Timers<String>,
    out: Publisher<Command>,
}

impl Actor for Controller {
    type Context = Context<Self>;
}

impl TopicActor for Controller {
    type Output = Command;
    type Args = ControllerArgs;

    fn subscriptions(args: &ControllerArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Alarm>(args.input.as_str())
            .store::<String, Command>(LAST)
            .store::<String, Command>(HELD)
            .timers::<String>(COOLDOWNS, TimerClock::Wall);
    }

    fn create(args: ControllerArgs, out: Publisher<Command>) -> Result<Self, ActorError> {
        Ok(Self {
            period_ms: i64::try_from(args.cooldown.as_millis()).unwrap_or(i64::MAX),
            last: out.store(LAST)?,
            held: out.store(HELD)?,
            cooldowns: out.timers(COOLDOWNS)?,
            out,
        })
    }
}

impl Controller {
    /// Publishes `command` and remembers it as `target`'s last.
    fn send(&self, target: &str, command: Command) -> Result<(), ActorError> {
        self.last.put(&target.to_owned(), &command)?;
        self.out.publish(target, command)?;
        Ok(())
    }
}

impl Handler<Inbound<Alarm>> for Controller {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, m: Inbound<Alarm>, _: &mut Context<Self>) -> Self::Result {
        let action = match m.state {
            AlarmState::Raised => CommandAction::Throttle,
            AlarmState::Cleared => CommandAction::Resume,
        };
        let now = now_ms();
        let target = m.host.clone();
        let last = self.last.get(&target)?.map(|c| (c.action, c.at_ms));
        let command = Command {
            target: target.clone(),
            action,
            reason: format!(
                "{} {:?} at {:.1} (threshold {:.1})",
                m.metric, m.state, m.value, m.threshold
            ),
            at_ms: now,
        };
        match decide(last, action, now, self.period_ms) {
            Decision::Send => {
                self.held.delete(&target)?;
                self.cooldowns.cancel(&target)?;
                self.send(&target, command)?;
            }
            Decision::Hold { until_ms } => {
                self.held.put(&target, &command)?;
                self.cooldowns.set(&target, until_ms)?;
            }
            Decision::Nothing => {
                // Already in that state; a held-back reversal is moot.
                self.held.delete(&target)?;
                self.cooldowns.cancel(&target)?;
            }
        }
        Ok(())
    }
}

impl Handler<Fired<String>> for Controller {
    type Result = Result<(), ActorError>;

    /// A cooldown ended: the command held back for its target goes out.
    fn handle(&mut self, timer: Fired<String>, _: &mut Context<Self>) -> Self::Result {
        let target = timer.key;
        let Some(held) = self.held.get(&target)? else {
            return Ok(());
        };
        self.held.delete(&target)?;
        let command = Command {
            reason: "held back by the cooldown".to_owned(),
            at_ms: now_ms(),
            ..held
        };
        self.send(&target, command)
    }
}

/// What to do with a requested command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Send it now.
    Send,
    /// Send it when the cooldown ends.
    Hold { until_ms: i64 },
    /// The target is, or will be, in that state already.
    Nothing,
}

/// What to do with `action` for a target whose last command was `last`
/// (its action and when), at `now_ms`, with cooldowns `period_ms` long.
fn decide(
    last: Option<(CommandAction, i64)>,
    action: CommandAction,
    now_ms: i64,
    period_ms: i64,
) -> Decision {
    match last {
        Some((last, _)) if last == action => Decision::Nothing,
        Some((_, at)) if now_ms - at < period_ms => Decision::Hold {
            until_ms: at.saturating_add(period_ms),
        },
        _ => Decision::Send,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommandAction::*;

    #[test]
    fn a_reversal_within_the_cooldown_is_held_until_it_ends() {
        assert_eq!(decide(None, Throttle, 0, 1000), Decision::Send);
        assert_eq!(
            decide(Some((Throttle, 0)), Resume, 400, 1000),
            Decision::Hold { until_ms: 1000 }
        );
        assert_eq!(
            decide(Some((Throttle, 0)), Resume, 1000, 1000),
            Decision::Send
        );
    }

    #[test]
    fn a_command_repeating_the_last_is_moot() {
        assert_eq!(
            decide(Some((Resume, 0)), Resume, 1100, 1000),
            Decision::Nothing
        );
        assert_eq!(
            decide(Some((Throttle, 0)), Throttle, 200, 1000),
            Decision::Nothing
        );
    }

    #[test]
    fn targets_cool_down_independently() {
        // Each target's last command is its own.
        assert_eq!(decide(None, Throttle, 10, 1000), Decision::Send);
        assert_eq!(
            decide(Some((Throttle, 0)), Resume, 2000, 1000),
            Decision::Send
        );
    }
}
