//! Invariant checks over what a simulation did.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::driver::Driver;
use super::world::{World, lock};

/// A record's coordinates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// One actor's run measured against the invariants, with its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvariantReport {
    /// The actor.
    pub actor: String,
    /// Records on the partitions it reads.
    pub inputs: u64,
    /// Times a record was handled (or skipped as undecodable), duplicates included.
    pub handled: u64,
    /// Handlings beyond each record's first.
    pub duplicates: u64,
    /// Duplicates the simulated faults allow: records redelivered after a
    /// crash, a failure, a rebalance or a rewind.
    pub allowed_duplicates: u64,
    /// Reading records never handled: lost, unless the run stopped before
    /// they were due.
    pub unhandled: Vec<RecordId>,
    /// Records handled more often than the faults explain.
    pub excess_duplicates: Vec<RecordId>,
    /// Records of one key published out of the order of their inputs.
    pub out_of_order: Vec<String>,
}

impl InvariantReport {
    /// Whether every invariant holds.
    pub fn holds(&self) -> bool {
        self.unhandled.is_empty()
            && self.excess_duplicates.is_empty()
            && self.out_of_order.is_empty()
    }

    /// What is broken, readably (empty when everything holds).
    pub fn violations(&self) -> String {
        let mut out = Vec::new();
        let list = |ids: &[RecordId]| {
            let shown: Vec<String> = ids.iter().take(10).map(ToString::to_string).collect();
            let more = ids.len().saturating_sub(10);
            if more > 0 {
                format!("{} and {more} more", shown.join(", "))
            } else {
                shown.join(", ")
            }
        };
        if !self.unhandled.is_empty() {
            out.push(format!(
                "actor `{}` never handled {} input records: {}",
                self.actor,
                self.unhandled.len(),
                list(&self.unhandled)
            ));
        }
        if !self.excess_duplicates.is_empty() {
            out.push(format!(
                "actor `{}` handled {} records more often than at-least-once allows: {}",
                self.actor,
                self.excess_duplicates.len(),
                list(&self.excess_duplicates)
            ));
        }
        for violation in self.out_of_order.iter().take(10) {
            out.push(format!("actor `{}`: {violation}", self.actor));
        }
        out.join("\n")
    }
}

impl fmt::Display for InvariantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "actor `{}`: inputs={} handled={} lost={} duplicates={} (allowed {}) out_of_order={}",
            self.actor,
            self.inputs,
            self.handled,
            self.unhandled.len(),
            self.duplicates,
            self.allowed_duplicates,
            self.out_of_order.len()
        )
    }
}

pub(super) fn check(driver: &Driver) -> Vec<InvariantReport> {
    (0..driver.actors.len())
        .map(|actor| check_actor(driver, actor))
        .collect()
}

fn check_actor(driver: &Driver, actor: usize) -> InvariantReport {
    let inputs = driver.inputs(actor);
    let a = &driver.actors[actor];
    let world = lock(&driver.world);
    let mut report = InvariantReport {
        actor: a.name.clone(),
        inputs: 0,
        handled: 0,
        duplicates: 0,
        allowed_duplicates: 0,
        unhandled: Vec::new(),
        excess_duplicates: Vec::new(),
        out_of_order: Vec::new(),
    };
    // Each input record's coordinates by its `ce_id`, to follow outputs back.
    let mut causes: HashMap<&str, (usize, i32, i64)> = HashMap::new();
    for &(t, p) in &inputs {
        let log = &world.logs[t];
        let records = &log.partitions[p as usize];
        let counts = world.handled.get(&(actor, t, p));
        let exposures = a.exposures.get(&(t, p));
        for (offset, record) in records.iter().enumerate() {
            if record.aborted {
                // Never read by anyone.
                continue;
            }
            let offset = offset as i64;
            if let Some(id) = record.headers.id() {
                causes.entry(id).or_insert((t, p, offset));
            }
            report.inputs += 1;
            let count = counts
                .and_then(|c| c.get(offset as usize))
                .copied()
                .unwrap_or(0) as u64;
            let allowed = exposures.map_or(0, |ranges| {
                ranges
                    .iter()
                    .filter(|(from, to)| (*from..*to).contains(&offset))
                    .count() as u64
            });
            let id = || RecordId {
                topic: log.name.to_string(),
                partition: p,
                offset,
            };
            report.handled += count;
            report.allowed_duplicates += allowed;
            match count {
                0 => report.unhandled.push(id()),
                n => {
                    report.duplicates += n - 1;
                    if n - 1 > allowed {
                        report.excess_duplicates.push(id());
                    }
                }
            }
        }
    }
    check_order(&world, a.factory.output(), &causes, &mut report);
    report
}

/// Per key and input partition, an actor's outputs (on `output`) must
/// follow its inputs' offsets; repeats of records already seen are the
/// allowed duplicates. `causes` finds each input by its `ce_id`.
fn check_order(
    world: &World,
    output: &str,
    causes: &HashMap<&str, (usize, i32, i64)>,
    report: &mut InvariantReport,
) {
    let output = world.index.get(output).copied();
    if let Some(out) = output {
        let log = &world.logs[out];
        for (partition, records) in log.partitions.iter().enumerate() {
            let mut last: HashMap<(Option<&[u8]>, usize, i32), i64> = HashMap::new();
            let mut seen: HashSet<(usize, i32, i64)> = HashSet::new();
            for (offset, record) in records.iter().enumerate() {
                if record.aborted {
                    continue;
                }
                let cause = record
                    .headers
                    .causation_id()
                    .and_then(|c| causes.get(c))
                    .or_else(|| record.headers.id().and_then(|id| causes.get(id)));
                let Some(&(t, p, o)) = cause else { continue };
                if !seen.insert((t, p, o)) {
                    continue;
                }
                let key = record.key.as_deref();
                if let Some(previous) = last.insert((key, t, p), o)
                    && previous > o
                {
                    report.out_of_order.push(format!(
                            "{}/{partition}@{offset} (key {:?}) comes from {}/{p}@{o}, published after a record from offset {previous}",
                            log.name,
                            key.map(String::from_utf8_lossy),
                            world.logs[t].name,
                        ));
                }
            }
        }
    }
}
