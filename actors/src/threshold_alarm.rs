//! Threshold alarm with hysteresis: raised above `high`, cleared below `low`.
//!
//! - Reads: `scribe.metrics.MetricSummary` from `input`.
//! - Writes: `scribe.control.Alarm` when a host's alarm changes state.
//! - Keys by: host name.
//! - Parameters: [`ThresholdAlarmArgs`].
//!
//! Only summaries of the configured `metric` count; the configured
//! [`Statistic`] of each is compared with the thresholds.
//!
//! The hosts raised are kept in the store `raised` (host to the alarm that
//! raised it; its changelog `<output>.raised.changelog`), so a host raised
//! before a crash, a restart or a rebalance is cleared by whoever handles
//! its next summary.

use scribe::prelude::*;
use scribe_schemas::{Alarm, AlarmState, MetricSummary};

/// Which figure of a window summary an alarm watches (`mean`, `p95`, `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    #[default]
    /// The mean.
    Mean,
    /// The 95th percentile.
    P95,
    /// The maximum.
    Max,
}

/// Parameters of a [`ThresholdAlarm`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdAlarmArgs {
    /// The topic of window summaries to read.
    pub input: String,
    /// The metric to watch, e.g. `cpu_percent`.
    pub metric: String,
    /// Which figure of each summary to compare. The default is [`Statistic::Mean`].
    #[serde(default)]
    pub statistic: Statistic,
    /// Raise the alarm when the figure goes above this.
    pub high: f64,
    /// Clear the alarm when the figure goes below this; at most `high`.
    pub low: f64,
}

/// The store of the hosts raised.
const RAISED: &str = "raised";

/// Raises and clears alarms on a metric, with hysteresis.
#[derive(Debug)]
pub struct ThresholdAlarm {
    args: ThresholdAlarmArgs,
    /// Each host raised, with the alarm that raised it.
    raised: Store<String, Alarm>,
    out: Publisher<Alarm>,
}

impl Actor for ThresholdAlarm {
    type Context = Context<Self>;
}

impl TopicActor for ThresholdAlarm {
    type Output = Alarm;
    type Args = ThresholdAlarmArgs;

    fn subscriptions(args: &ThresholdAlarmArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<MetricSummary>(args.input.as_str());
        subs.store::<String, Alarm>(RAISED);
    }

    fn validate(args: &ThresholdAlarmArgs) -> Result<(), ActorError> {
        if !args.low.is_finite() || !args.high.is_finite() {
            return Err(format!(
                "low ({}) and high ({}) must be numbers",
                args.low, args.high
            )
            .into());
        }
        if args.low > args.high {
            return Err(format!("low ({}) must not exceed high ({})", args.low, args.high).into());
        }
        Ok(())
    }

    fn create(args: ThresholdAlarmArgs, out: Publisher<Alarm>) -> Result<Self, ActorError> {
        Self::validate(&args)?;
        Ok(Self {
            raised: out.store(RAISED)?,
            args,
            out,
        })
    }
}

impl ThresholdAlarm {
    /// The figure of `summary` this alarm compares, if it watches its metric.
    fn figure(&self, summary: &MetricSummary) -> Option<f64> {
        (summary.metric == self.args.metric).then_some(match self.args.statistic {
            Statistic::Mean => summary.mean,
            Statistic::P95 => summary.p95,
            Statistic::Max => summary.max,
        })
    }
}

/// The state change, and the threshold crossed, when a host that is
/// `raised` (or not) shows `value`; raises above `high`, clears below
/// `low`.
fn crossing(raised: bool, value: f64, high: f64, low: f64) -> Option<(AlarmState, f64)> {
    if !raised && value > high {
        Some((AlarmState::Raised, high))
    } else if raised && value < low {
        Some((AlarmState::Cleared, low))
    } else {
        None
    }
}

impl Handler<Inbound<MetricSummary>> for ThresholdAlarm {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, m: Inbound<MetricSummary>, _: &mut Context<Self>) -> Self::Result {
        let Some(value) = self.figure(&m) else {
            return Ok(());
        };
        let raised = self.raised.get(&m.host)?.is_some();
        let Some((state, threshold)) = crossing(raised, value, self.args.high, self.args.low)
        else {
            return Ok(());
        };
        let alarm = Alarm {
            host: m.host.clone(),
            metric: m.metric.clone(),
            state,
            value,
            threshold,
            at_ms: m.window_end_ms,
        };
        match state {
            AlarmState::Raised => self.raised.put(&m.host, &alarm)?,
            AlarmState::Cleared => self.raised.delete(&m.host)?,
        }
        self.out.publish(&m.host, alarm)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The hosts raised, as the store keeps them.
    fn observe(raised: &mut BTreeSet<String>, host: &str, value: f64) -> Option<AlarmState> {
        let (state, _) = crossing(raised.contains(host), value, 80.0, 60.0)?;
        match state {
            AlarmState::Raised => raised.insert(host.to_owned()),
            AlarmState::Cleared => raised.remove(host),
        };
        Some(state)
    }

    #[test]
    fn hysteresis_raises_above_high_and_clears_below_low_only() {
        use AlarmState::*;
        let mut raised = BTreeSet::new();
        let got: Vec<_> = [50.0, 85.0, 90.0, 70.0, 81.0, 59.0, 65.0, 81.0]
            .into_iter()
            .map(|v| observe(&mut raised, "h", v))
            .collect();
        assert_eq!(
            got,
            vec![
                None,
                Some(Raised),
                None,
                None,
                None,
                Some(Cleared),
                None,
                Some(Raised)
            ]
        );
    }

    #[test]
    fn hosts_are_alarmed_independently() {
        let mut raised = BTreeSet::new();
        assert!(observe(&mut raised, "a", 81.0).is_some());
        assert!(observe(&mut raised, "b", 79.0).is_none());
        assert_eq!(
            crossing(raised.contains("a"), 59.0, 80.0, 60.0),
            Some((AlarmState::Cleared, 60.0))
        );
    }
}
