//! Replaying an actor's dead letters in a simulation: the node's own
//! replay (a supervisor reading `Reads::Replay`) started on the
//! simulation's thread, beside the actor's live members, as
//! [`crate::Node::replay_dead_letters`] starts it on a cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::driver::Driver;
use super::world::lock;
use crate::delivery::policy::OverBudget;
use crate::error::{Error, Result};
use crate::node::Replayed;
use crate::ops::stats::ActorStats;
use crate::supervisor::{Reads, Replay};

impl Driver {
    /// Sends `actor`'s dead letters back to it, up to the end each
    /// partition of its dead-letter topic had when the replay began, and
    /// runs until the replay is over.
    pub(super) async fn replay(&mut self, actor: usize) -> Result<Replayed> {
        let name = self.actors[actor].name.clone();
        let failed = |reason: String| Error::Replay {
            actor: name.clone(),
            reason,
        };
        let Some(dead_letter) = self.actors[actor].dead_letter.clone() else {
            return Err(failed(
                "it has no dead-letter topic: it reads nothing, or its failure policy stops it instead"
                    .into(),
            ));
        };
        let topic = self.topic(&dead_letter)?;
        let group = self.replay_group(actor);
        let (ranges, span) = {
            let world = lock(&self.world);
            let committed = world.committed.get(&group);
            let mut ranges = BTreeMap::new();
            let mut span = 0;
            for partition in 0..world.logs[topic].partitions.len() as i32 {
                let end = world.stable_end(topic, partition);
                if end > 0 {
                    ranges.insert(partition, (0, end));
                    let start = committed.and_then(|c| c.get(&(topic, partition)));
                    span += (end - start.copied().unwrap_or(0)).max(0);
                }
            }
            (ranges, span)
        };
        let replay = Replay {
            topic: dead_letter.clone(),
            group: format!("{name}.dlq-replay"),
            ranges,
            read: Arc::default(),
        };
        tracing::info!(actor = %name, topic = %dead_letter, offsets = span, "replaying dead letters");
        let stats = Arc::new(ActorStats::default());
        if span > 0 {
            // Past its budget the replay stops, saying why.
            let mut policy = (*self.actors[actor].policy).clone();
            policy.over_budget = OverBudget::StopNode;
            let mode = Reads::Replay(Arc::new(replay.clone()));
            let (member, started) = self.supervisor(actor, mode, Arc::new(policy), stats.clone());
            let control = member.control.clone();
            self.replaying = Some((actor, member));
            let outcome = started.await;
            while self
                .replaying
                .as_ref()
                .is_some_and(|(_, m)| !m.task.is_finished())
            {
                self.run(None).await;
            }
            self.replaying = None;
            self.sync();
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err(failed("its supervisor ended before starting it".into())),
            }
            if let Some(why) = control.halted.lock().ok().and_then(|h| h.clone()) {
                return Err(failed(format!(
                    "it stopped before the end ({why}); what it finished is committed in group `{}`",
                    replay.group
                )));
            }
        }
        let stats = stats.snapshot();
        let waiting = replay.read.lock().map_or(0, |read| read.len() as u64);
        Ok(Replayed {
            actor: name,
            topic: dead_letter,
            waiting,
            handled: stats.handled,
            dead_lettered: stats.dead_lettered,
            restarts: stats.restarts,
        })
    }
}
