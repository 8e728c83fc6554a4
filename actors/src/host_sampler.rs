//! Host sampler: this host's CPU, memory and load, every interval.
//!
//! - Reads: nothing (a source); samples `/proc/stat`, `/proc/meminfo` and
//!   `/proc/loadavg`.
//! - Writes: `scribe.metrics.HostMetrics`, one record per interval.
//! - Keys by: host name.
//! - Parameters: [`HostSamplerArgs`].

use std::time::Duration;

use scribe::prelude::*;
use scribe_schemas::HostMetrics;

use crate::now_ms;

/// Parameters of a [`HostSampler`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostSamplerArgs {
    /// Time between samples, e.g. `"1s"`. The default is 1 s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The host name to report. The default is this host's name from
    /// `/proc/sys/kernel/hostname`.
    pub host: Option<String>,
}

impl Default for HostSamplerArgs {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            host: None,
        }
    }
}

/// Samples this host from `/proc` and publishes [`HostMetrics`].
#[derive(Debug)]
pub struct HostSampler {
    host: String,
    interval: Duration,
    last_cpu: Option<CpuTimes>,
    out: Publisher<HostMetrics>,
}

impl Actor for HostSampler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The first sample only primes the CPU counters.
        self.last_cpu = read_cpu().ok();
        ctx.run_interval(self.interval, |this, _| {
            if let Err(error) = this.sample() {
                tracing::warn!(%error, "cannot sample host metrics");
            }
        });
    }
}

impl TopicActor for HostSampler {
    type Output = HostMetrics;
    type Args = HostSamplerArgs;

    fn validate(args: &HostSamplerArgs) -> Result<(), ActorError> {
        if args.interval < std::time::Duration::from_millis(1) {
            return Err("interval must be at least 1 ms".into());
        }
        Ok(())
    }

    fn create(args: HostSamplerArgs, out: Publisher<HostMetrics>) -> Result<Self, ActorError> {
        Self::validate(&args)?;
        let host = match args.host {
            Some(host) => host,
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".into()),
        };
        Ok(Self {
            host,
            interval: args.interval,
            last_cpu: None,
            out,
        })
    }
}

impl HostSampler {
    fn sample(&mut self) -> Result<(), ActorError> {
        let cpu = read_cpu()?;
        let cpu_percent = self
            .last_cpu
            .map_or(0.0, |last| cpu.busy_percent_since(&last));
        self.last_cpu = Some(cpu);
        let metrics = HostMetrics {
            host: self.host.clone(),
            cpu_percent,
            mem_used_percent: parse_mem_used_percent(&std::fs::read_to_string("/proc/meminfo")?)?,
            load1: parse_load1(&std::fs::read_to_string("/proc/loadavg")?)?,
            sampled_at_ms: now_ms(),
        };
        self.out.publish(&self.host, metrics)?;
        Ok(())
    }
}

/// Cumulative CPU time counters from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuTimes {
    total: u64,
    idle: u64,
}

impl CpuTimes {
    fn busy_percent_since(&self, earlier: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        let idle = self.idle.saturating_sub(earlier.idle);
        if total == 0 {
            0.0
        } else {
            100.0 * (total - idle.min(total)) as f64 / total as f64
        }
    }
}

fn read_cpu() -> Result<CpuTimes, ActorError> {
    parse_cpu(&std::fs::read_to_string("/proc/stat")?)
}

fn parse_cpu(stat: &str) -> Result<CpuTimes, ActorError> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("/proc/stat has no `cpu` line")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if fields.len() < 5 {
        return Err("/proc/stat `cpu` line has fewer than 5 counters".into());
    }
    // user nice system idle iowait irq softirq steal (guest time is
    // already counted in user and nice).
    let total = fields.iter().take(8).sum();
    let idle = fields[3] + fields[4];
    Ok(CpuTimes { total, idle })
}

fn parse_mem_used_percent(meminfo: &str) -> Result<f64, ActorError> {
    let field = |name: &str| -> Result<f64, ActorError> {
        let line = meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| format!("/proc/meminfo has no `{name}`"))?;
        let value = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| format!("/proc/meminfo `{name}` has no value"))?;
        Ok(value.parse::<f64>()?)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    if total <= 0.0 {
        return Err("/proc/meminfo reports no memory".into());
    }
    Ok(100.0 * (total - available) / total)
}

fn parse_load1(loadavg: &str) -> Result<f64, ActorError> {
    Ok(loadavg
        .split_whitespace()
        .next()
        .ok_or("/proc/loadavg is empty")?
        .parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_busy_share_is_computed_from_counter_deltas() {
        let before = parse_cpu("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4 5\n").unwrap();
        let after = parse_cpu("cpu  150 0 150 750 150 0 0 0 0 0\n").unwrap();
        // 200 ticks passed, 100 of them idle or waiting.
        assert_eq!(after.busy_percent_since(&before), 50.0);
        assert_eq!(after.busy_percent_since(&after), 0.0);
    }

    #[test]
    fn memory_in_use_is_total_minus_available() {
        let meminfo = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n";
        assert_eq!(parse_mem_used_percent(meminfo).unwrap(), 75.0);
        assert!(
            parse_mem_used_percent("MemTotal: 5 kB\n")
                .unwrap_err()
                .to_string()
                .contains("MemAvailable")
        );
    }

    #[test]
    fn load_is_the_first_loadavg_field() {
        assert_eq!(parse_load1("0.42 0.30 0.20 1/123 4567\n").unwrap(), 0.42);
    }

    #[test]
    fn this_hosts_proc_files_parse() {
        if std::path::Path::new("/proc/stat").exists() {
            read_cpu().unwrap();
            parse_mem_used_percent(&std::fs::read_to_string("/proc/meminfo").unwrap()).unwrap();
            parse_load1(&std::fs::read_to_string("/proc/loadavg").unwrap()).unwrap();
        }
    }
}
