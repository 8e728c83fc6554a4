//! Windowed aggregator: count, min, max, mean and p95 per host and metric
//! over tumbling windows.
//!
//! - Reads: `scribe.metrics.HostMetrics` from `input`.
//! - Writes: `scribe.metrics.MetricSummary`, one per host and metric
//!   (`cpu_percent`, `mem_used_percent`, `load1`) for each closed window.
//! - Keys by: host name.
//! - Parameters: [`WindowedAggregatorArgs`].
//!
//! Windows follow the samples' own time (`sampled_at_ms`): a host's window
//! closes when a sample of that host falls into a later window, or, for a
//! host that stopped reporting, on a wall-clock timer set when the window
//! opened: `grace` after the window's end would come by the clock (the
//! window's end minus its first sample's time, plus `grace`, from when
//! that sample was handled). A sample older than the host's open window,
//! or of a window closed by its timer, is late; it is logged and left out.
//!
//! Each host's open window is kept in the store `windows` (its changelog
//! `<output>.windows.changelog`) and its timer in the timer set `closing`,
//! so a window open when the node stops, crashes or gives the host's
//! partition to another node is summarised whole by whoever holds the
//! host's partition next.

use std::time::Duration;

use scribe::prelude::*;
use scribe_schemas::{HostMetrics, MetricSummary, OpenWindow};

/// Parameters of a [`WindowedAggregator`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowedAggregatorArgs {
    /// The topic of host metrics to read.
    pub input: String,
    /// The length of a window, e.g. `"10s"`. The default is 10 s.
    #[serde(default = "ten_seconds", with = "humantime_serde")]
    pub window: Duration,
    /// How long after its end, by the wall clock, a window of a host that
    /// sent no later sample is closed, e.g. `"5s"`. The default is the
    /// window's length.
    #[serde(default, with = "humantime_serde")]
    pub grace: Option<Duration>,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl WindowedAggregatorArgs {
    /// Reads `input` with the default 10 s window.
    pub fn reading(input: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            window: Duration::from_secs(10),
            grace: None,
        }
    }
}

/// The store of each host's open window.
const WINDOWS: &str = "windows";
/// The timers that close a window of a host that stopped reporting.
const CLOSING: &str = "closing";

/// Summarises host metrics over tumbling windows.
#[derive(Debug)]
pub struct WindowedAggregator {
    length_ms: i64,
    grace_ms: i64,
    /// Each host's open window (empty once closed by its timer).
    windows: Store<String, OpenWindow>,
    closing: Timers<String>,
    out: Publisher<MetricSummary>,
}

impl Actor for WindowedAggregator {
    type Context = Context<Self>;
}

impl TopicActor for WindowedAggregator {
    type Output = MetricSummary;
    type Args = WindowedAggregatorArgs;

    fn subscriptions(args: &WindowedAggregatorArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<HostMetrics>(args.input.as_str())
            .store::<String, OpenWindow>(WINDOWS)
            .timers::<String>(CLOSING, TimerClock::Wall);
    }

    fn validate(args: &WindowedAggregatorArgs) -> Result<(), ActorError> {
        if args.window < std::time::Duration::from_millis(1) {
            return Err("window must be at least 1 ms".into());
        }
        Ok(())
    }

    fn create(
        args: WindowedAggregatorArgs,
        out: Publisher<MetricSummary>,
    ) -> Result<Self, ActorError> {
        Self::validate(&args)?;
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Ok(Self {
            length_ms: millis(args.window),
            grace_ms: millis(args.grace.unwrap_or(args.window)),
            windows: out.store(WINDOWS)?,
            closing: out.timers(CLOSING)?,
            out,
        })
    }
}

impl Handler<Inbound<HostMetrics>> for WindowedAggregator {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, m: Inbound<HostMetrics>, _: &mut Context<Self>) -> Self::Result {
        let open = self.windows.get(&m.host)?;
        let Some((window, closed)) = add(open, &m, self.length_ms) else {
            tracing::debug!(host = %m.host, sampled_at_ms = m.sampled_at_ms, "late sample left out");
            return Ok(());
        };
        if window.cpu_percent.len() == 1 {
            // A window opened: it closes `grace` after its end, by the
            // clock, unless a later sample closes it first.
            let end_ms = window.start_ms.saturating_add(self.length_ms);
            let wait = end_ms.saturating_sub(m.sampled_at_ms).max(0);
            let at = crate::now_ms()
                .saturating_add(wait)
                .saturating_add(self.grace_ms);
            self.closing.set(&m.host, at)?;
        }
        self.windows.put(&m.host, &window)?;
        for summary in closed {
            self.out.publish(&summary.host, &summary)?;
        }
        Ok(())
    }
}

impl Handler<Fired<String>> for WindowedAggregator {
    type Result = Result<(), ActorError>;

    /// The host sent nothing since its window's grace ended: the window is
    /// summarised, and kept empty, so that a late sample of it is left out.
    fn handle(&mut self, timer: Fired<String>, _: &mut Context<Self>) -> Self::Result {
        let host = timer.key;
        let Some(open) = self.windows.get(&host)? else {
            return Ok(());
        };
        let closed = OpenWindow {
            start_ms: open.start_ms,
            ..OpenWindow::default()
        };
        for summary in summarise(&host, open, self.length_ms) {
            self.out.publish(&summary.host, &summary)?;
        }
        self.windows.put(&host, &closed)?;
        Ok(())
    }
}

const METRICS: [&str; 3] = ["cpu_percent", "mem_used_percent", "load1"];

/// Adds sample `m` to its host's `open` window (windows `length_ms` long):
/// the window it is in afterwards, and the summaries of the window it
/// closed, if any. `None` when the sample is late (older than the open
/// window, or of a window its timer closed: kept empty).
fn add(
    open: Option<OpenWindow>,
    m: &HostMetrics,
    length_ms: i64,
) -> Option<(OpenWindow, Vec<MetricSummary>)> {
    let start_ms = m.sampled_at_ms.div_euclid(length_ms) * length_ms;
    let fresh = || OpenWindow {
        start_ms,
        ..OpenWindow::default()
    };
    let (mut window, closed) = match open {
        None => (fresh(), Vec::new()),
        Some(open) if start_ms < open.start_ms => return None,
        Some(open) if start_ms > open.start_ms => (fresh(), summarise(&m.host, open, length_ms)),
        // Closed by its timer: the sample is late.
        Some(open) if open.cpu_percent.is_empty() => return None,
        Some(open) => (open, Vec::new()),
    };
    window.cpu_percent.push(m.cpu_percent);
    window.mem_used_percent.push(m.mem_used_percent);
    window.load1.push(m.load1);
    Some((window, closed))
}

/// The summaries of a closed window: one per metric it has samples of.
fn summarise(host: &str, window: OpenWindow, length_ms: i64) -> Vec<MetricSummary> {
    let values = [window.cpu_percent, window.mem_used_percent, window.load1];
    METRICS
        .iter()
        .zip(values)
        .filter(|(_, values)| !values.is_empty())
        .map(|(metric, mut values)| {
            values.sort_by(f64::total_cmp);
            let count = values.len();
            let rank = ((0.95 * count as f64).ceil() as usize).clamp(1, count);
            MetricSummary {
                host: host.to_owned(),
                metric: (*metric).to_owned(),
                window_start_ms: window.start_ms,
                window_end_ms: window.start_ms + length_ms,
                count: count as i64,
                min: values[0],
                max: values[count - 1],
                // Rounding can push a sum's quotient just outside [min, max].
                mean: (values.iter().sum::<f64>() / count as f64)
                    .clamp(values[0], values[count - 1]),
                p95: values[rank - 1],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(host: &str, at: i64, cpu: f64) -> HostMetrics {
        HostMetrics {
            host: host.into(),
            cpu_percent: cpu,
            mem_used_percent: 50.0,
            load1: 1.0,
            sampled_at_ms: at,
        }
    }

    /// Each host's open window, as the store keeps them.
    struct Windows {
        length_ms: i64,
        open: std::collections::HashMap<String, OpenWindow>,
    }

    impl Windows {
        fn new(length_ms: i64) -> Self {
            Self {
                length_ms,
                open: Default::default(),
            }
        }

        fn add(&mut self, m: &HostMetrics) -> Vec<MetricSummary> {
            let open = self.open.get(&m.host).cloned();
            match add(open, m, self.length_ms) {
                Some((window, closed)) => {
                    self.open.insert(m.host.clone(), window);
                    closed
                }
                None => Vec::new(),
            }
        }
    }

    #[test]
    fn a_window_closes_when_a_later_sample_arrives() {
        let mut windows = Windows::new(1000);
        for (i, cpu) in (1..=20).map(f64::from).enumerate() {
            assert!(
                windows
                    .add(&sample("a", 2000 + i as i64 * 10, cpu))
                    .is_empty()
            );
        }
        let closed = windows.add(&sample("a", 3000, 99.0));
        let cpu = closed.iter().find(|s| s.metric == "cpu_percent").unwrap();
        assert_eq!((cpu.window_start_ms, cpu.window_end_ms), (2000, 3000));
        assert_eq!(
            (cpu.count, cpu.min, cpu.max, cpu.mean),
            (20, 1.0, 20.0, 10.5)
        );
        assert_eq!(cpu.p95, 19.0, "nearest rank: the 19th of 20");
        assert_eq!(closed.len(), 3);
    }

    #[test]
    fn the_mean_stays_within_min_and_max_despite_rounding() {
        let mut windows = Windows::new(1000);
        for at in [0, 10, 20] {
            windows.add(&sample("a", at, 1.69));
        }
        let closed = windows.add(&sample("a", 1000, 0.0));
        let cpu = closed.iter().find(|s| s.metric == "cpu_percent").unwrap();
        assert!(cpu.min <= cpu.mean && cpu.mean <= cpu.max, "{cpu:?}");
        assert_eq!(cpu.mean, 1.69);
    }

    #[test]
    fn hosts_have_windows_of_their_own_and_late_samples_are_left_out() {
        let mut windows = Windows::new(1000);
        windows.add(&sample("a", 5000, 1.0));
        windows.add(&sample("b", 5100, 2.0));
        assert!(windows.add(&sample("a", 4000, 3.0)).is_empty(), "late");
        let closed = windows.add(&sample("a", 6000, 4.0));
        let cpu = closed.iter().find(|s| s.metric == "cpu_percent").unwrap();
        assert_eq!((cpu.host.as_str(), cpu.count, cpu.max), ("a", 1, 1.0));
    }

    #[test]
    fn a_window_closed_by_its_timer_takes_no_late_sample() {
        let closed = OpenWindow {
            start_ms: 1000,
            ..OpenWindow::default()
        };
        assert!(add(Some(closed.clone()), &sample("a", 1500, 1.0), 1000).is_none());
        let (window, summaries) = add(Some(closed), &sample("a", 2100, 1.0), 1000).unwrap();
        assert!(summaries.is_empty(), "it was summarised when it closed");
        assert_eq!((window.start_ms, window.cpu_percent.len()), (2000, 1));
    }
}
