//! Threshold alarm with hysteresis: raised above `high`, cleared below `low`.
//!
//! - Reads: `scribe.metrics.MetricSummary` from `input`.
//! - Writes: `scribe.control.Alarm` when a host's alarm changes state.
//! - Keys by: host name.
//! - Parameters: [`ThresholdAlarmArgs`].
//!
//! Only summaries of the configured `metric` count; the configured
//! [`Statistic`] of each is compared with the thresholds.

use std::collections::HashSet;

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

/// Raises and clears alarms on a metric, with hysteresis.
#[derive(Debug)]
pub struct ThresholdAlarm {
    args: ThresholdAlarmArgs,
    hysteresis: Hysteresis,
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
            hysteresis: Hysteresis::new(args.high, args.low),
            args,
            out,
        })
    }
}

impl ThresholdAlarm {
    /// The alarm state change this summary causes, if any.
    fn observe(&mut self, summary: &MetricSummary) -> Option<(AlarmState, f64, f64)> {
        if summary.metric != self.args.metric {
            return None;
        }
        let value = match self.args.statistic {
            Statistic::Mean => summary.mean,
            Statistic::P95 => summary.p95,
            Statistic::Max => summary.max,
        };
        self.hysteresis.observe(&summary.host, value)
    }
}

/// Which hosts are raised; raises above `high`, clears below `low`.
#[derive(Debug)]
struct Hysteresis {
    high: f64,
    low: f64,
    raised: HashSet<String>,
}

impl Hysteresis {
    fn new(high: f64, low: f64) -> Self {
        Self {
            high,
            low,
            raised: HashSet::new(),
        }
    }

    /// The new state, value and crossed threshold when `value` changes `host`'s state.
    fn observe(&mut self, host: &str, value: f64) -> Option<(AlarmState, f64, f64)> {
        if !self.raised.contains(host) && value > self.high {
            self.raised.insert(host.to_owned());
            Some((AlarmState::Raised, value, self.high))
        } else if self.raised.contains(host) && value < self.low {
            self.raised.remove(host);
            Some((AlarmState::Cleared, value, self.low))
        } else {
            None
        }
    }
}

impl Handler<Inbound<MetricSummary>> for ThresholdAlarm {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, m: Inbound<MetricSummary>, _: &mut Context<Self>) -> Self::Result {
        if let Some((state, value, threshold)) = self.observe(&m) {
            let alarm = Alarm {
                host: m.host.clone(),
                metric: m.metric.clone(),
                state,
                value,
                threshold,
                at_ms: m.window_end_ms,
            };
            self.out.publish(&m.host, alarm)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_raises_above_high_and_clears_below_low_only() {
        use AlarmState::*;
        let mut h = Hysteresis::new(80.0, 60.0);
        let got: Vec<_> = [50.0, 85.0, 90.0, 70.0, 81.0, 59.0, 65.0, 81.0]
            .into_iter()
            .map(|v| h.observe("h", v).map(|(state, _, _)| state))
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
        let mut h = Hysteresis::new(10.0, 5.0);
        assert!(h.observe("a", 11.0).is_some());
        assert!(h.observe("b", 9.0).is_none());
        assert_eq!(h.observe("a", 4.0), Some((AlarmState::Cleared, 4.0, 5.0)));
    }
}
