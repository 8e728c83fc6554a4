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
//! later alarm made it moot. A held-back command is published from a timer,
//! not while handling the alarm, so it carries no `causation_id`, and the
//! alarm's offset does not wait for it: if the node stops during the
//! cooldown, the held-back command is not sent.

use std::collections::BTreeMap;
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

/// Sends throttle and resume commands in response to alarms.
#[derive(Debug)]
pub struct Controller {
    cooldown: Cooldown,
    out: Publisher<Command>,
}

impl Actor for Controller {
    type Context = Context<Self>;
}

impl TopicActor for Controller {
    type Output = Command;
    type Args = ControllerArgs;

    fn subscriptions(args: &ControllerArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Alarm>(args.input.as_str());
    }

    fn create(args: ControllerArgs, out: Publisher<Command>) -> Result<Self, ActorError> {
        let cooldown_ms = i64::try_from(args.cooldown.as_millis()).unwrap_or(i64::MAX);
        Ok(Self {
            cooldown: Cooldown::new(cooldown_ms),
            out,
        })
    }
}

impl Controller {
    fn send(
        &self,
        target: &str,
        action: CommandAction,
        reason: String,
        at_ms: i64,
    ) -> Result<(), ActorError> {
        let command = Command {
            target: target.to_owned(),
            action,
            reason,
            at_ms,
        };
        self.out.publish(target, command)?;
        Ok(())
    }

    fn send_due(&mut self) {
        let now = now_ms();
        for (target, action) in self.cooldown.due(now) {
            let reason = "held back by the cooldown".to_owned();
            if let Err(error) = self.send(&target, action, reason, now) {
                tracing::error!(%target, %error, "cannot send a held-back command");
            }
        }
    }
}

impl Handler<Inbound<Alarm>> for Controller {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, m: Inbound<Alarm>, ctx: &mut Context<Self>) -> Self::Result {
        let action = match m.state {
            AlarmState::Raised => CommandAction::Throttle,
            AlarmState::Cleared => CommandAction::Resume,
        };
        let now = now_ms();
        match self.cooldown.request(&m.host, action, now) {
            Decision::Send => {
                let reason = format!(
                    "{} {:?} at {:.1} (threshold {:.1})",
                    m.metric, m.state, m.value, m.threshold
                );
                self.send(&m.host, action, reason, now)?;
            }
            Decision::Hold { until_ms } => {
                let wait = Duration::from_millis(until_ms.saturating_sub(now).max(0) as u64);
                ctx.run_later(wait, |this, _| this.send_due());
            }
            Decision::Nothing => {}
        }
        Ok(())
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

/// The last command per target and any held back.
#[derive(Debug)]
struct Cooldown {
    period_ms: i64,
    last: BTreeMap<String, (CommandAction, i64)>,
    held: BTreeMap<String, CommandAction>,
}

impl Cooldown {
    fn new(period_ms: i64) -> Self {
        Self {
            period_ms,
            last: BTreeMap::new(),
            held: BTreeMap::new(),
        }
    }

    fn request(&mut self, target: &str, action: CommandAction, now_ms: i64) -> Decision {
        match self.last.get(target).copied() {
            Some((last, _)) if last == action => {
                // Already in that state; a held-back reversal is moot.
                self.held.remove(target);
                Decision::Nothing
            }
            Some((_, at)) if now_ms - at < self.period_ms => {
                self.held.insert(target.to_owned(), action);
                Decision::Hold {
                    until_ms: at.saturating_add(self.period_ms),
                }
            }
            _ => {
                self.held.remove(target);
                self.last.insert(target.to_owned(), (action, now_ms));
                Decision::Send
            }
        }
    }

    /// Held-back commands whose cooldown has ended; they count as sent.
    fn due(&mut self, now_ms: i64) -> Vec<(String, CommandAction)> {
        let ready: Vec<String> = self
            .held
            .keys()
            .filter(|t| {
                self.last
                    .get(*t)
                    .is_none_or(|(_, at)| now_ms - at >= self.period_ms)
            })
            .cloned()
            .collect();
        ready
            .into_iter()
            .filter_map(|target| {
                let action = self.held.remove(&target)?;
                self.last.insert(target.clone(), (action, now_ms));
                Some((target, action))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommandAction::*;

    #[test]
    fn a_reversal_within_the_cooldown_is_held_then_sent() {
        let mut c = Cooldown::new(1000);
        assert_eq!(c.request("h", Throttle, 0), Decision::Send);
        assert_eq!(
            c.request("h", Resume, 400),
            Decision::Hold { until_ms: 1000 }
        );
        assert!(c.due(900).is_empty());
        assert_eq!(c.due(1000), vec![("h".to_owned(), Resume)]);
        assert_eq!(c.request("h", Resume, 1100), Decision::Nothing);
    }

    #[test]
    fn a_held_command_reversed_again_is_dropped() {
        let mut c = Cooldown::new(1000);
        c.request("h", Throttle, 0);
        c.request("h", Resume, 100);
        assert_eq!(c.request("h", Throttle, 200), Decision::Nothing);
        assert!(c.due(5000).is_empty());
    }

    #[test]
    fn targets_cool_down_independently() {
        let mut c = Cooldown::new(1000);
        assert_eq!(c.request("a", Throttle, 0), Decision::Send);
        assert_eq!(c.request("b", Throttle, 10), Decision::Send);
        assert_eq!(c.request("a", Resume, 2000), Decision::Send);
    }
}
