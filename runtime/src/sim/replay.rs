//! Replaying an actor's dead letters in a simulation: the production
//! feed's replay (`Reading::DeadLetters`) over the simulated log, started,
//! restarted and ended by the scheduler as a node's replay is by its
//! supervisor.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::SimEnv;
use super::driver::{Driver, SimActor, SimInstance, stop};
use super::world::lock;
use crate::error::{Error, Result};
use crate::feed::{Exit, ReadSet, Reading};
use crate::node::Replayed;
use crate::policy::OverBudget;
use crate::stats::ActorStats;
use crate::supervisor::{Restarter, Then};

/// A replay of one actor's dead letters under way.
pub(crate) struct Replaying {
    /// Its running instance, if one runs (none between a failure and its
    /// restart).
    pub(super) instance: Option<SimInstance>,
    /// The dead-letter topic's index.
    topic: usize,
    /// The consumer group its progress commits in.
    pub(super) group: usize,
    /// Each partition's end offset when the replay began, for partitions
    /// holding records.
    ends: BTreeMap<i32, i64>,
    /// The dead letters read, across restarts.
    read: ReadSet,
    /// What the replay did (the actor's own counts are left alone).
    stats: Arc<ActorStats>,
    /// Its restart policy: the actor's, stopping the replay past its
    /// budget.
    restarter: Restarter,
    restart_at: Option<Instant>,
    started_at: Instant,
    /// How it ended; `None` while it runs.
    pub(super) outcome: Option<std::result::Result<(), String>>,
}

impl SimActor {
    /// Whether instance `id` is the actor's replay.
    pub(super) fn is_replaying(&self, id: u64) -> bool {
        self.replay
            .as_ref()
            .and_then(|r| r.instance.as_ref())
            .is_some_and(|i| i.id == id)
    }
}

impl Driver {
    /// The consumer group of `actor`'s replays (its live group is its
    /// index).
    fn replay_group(&self, actor: usize) -> usize {
        self.actors.len() + actor
    }

    /// Sends `actor`'s dead letters back to it, up to the end each
    /// partition of its dead-letter topic had when the replay began, and
    /// runs until the replay is over; see
    /// [`crate::Node::replay_dead_letters`], which this mirrors.
    pub(super) async fn replay(&mut self, actor: usize) -> Result<Replayed> {
        let name = self.actors[actor].name.clone();
        let failed = |reason: String| Error::Replay {
            actor: name.clone(),
            reason,
        };
        let Some(dead_letter) = self.actors[actor].failures.dead_letter.clone() else {
            return Err(failed(
                "it has no dead-letter topic: it reads nothing, or its failure policy stops it instead"
                    .into(),
            ));
        };
        let topic = self.topic(&dead_letter)?;
        let ends = {
            let world = lock(&self.world);
            (0..world.logs[topic].partitions.len() as i32)
                .map(|p| (p, world.stable_end(topic, p)))
                .filter(|&(_, end)| end > 0)
                .collect()
        };
        let mut policy = (*self.actors[actor].failures.policy).clone();
        policy.over_budget = OverBudget::StopNode;
        let stats = Arc::new(ActorStats::default());
        self.actors[actor].replay = Some(Replaying {
            instance: None,
            topic,
            group: self.replay_group(actor),
            ends,
            read: ReadSet::default(),
            restarter: Restarter::new(name.clone(), Arc::new(policy), stats.clone()),
            stats,
            restart_at: None,
            started_at: Instant::now(),
            outcome: None,
        });
        tracing::info!(actor = %name, topic = %dead_letter, "replaying dead letters");
        if let Err(error) = self.start_replay(actor) {
            self.actors[actor].replay = None;
            return Err(error);
        }
        while self.actors[actor]
            .replay
            .as_ref()
            .is_some_and(|r| r.outcome.is_none())
        {
            self.run(None).await;
        }
        let replay = self.actors[actor].replay.take().expect("checked above");
        if let Some(Err(reason)) = replay.outcome {
            return Err(failed(format!(
                "it stopped before the end ({reason}); what it finished is committed"
            )));
        }
        let stats = replay.stats.snapshot();
        let waiting = replay.read.lock().map_or(0, |read| read.len() as u64);
        Ok(Replayed {
            actor: name,
            topic: dead_letter.to_string(),
            waiting,
            handled: stats.handled,
            dead_lettered: stats.dead_lettered,
            restarts: stats.restarts,
        })
    }

    /// Starts an instance of `actor`'s replay from where its group
    /// stands; with nothing left before the ends, the replay is over.
    fn start_replay(&mut self, actor: usize) -> Result<()> {
        let id = self.next_id;
        let a = &self.actors[actor];
        let Some(replay) = &a.replay else {
            return Ok(());
        };
        let (topic, group) = (replay.topic, replay.group);
        let starts: BTreeMap<i32, i64> = {
            let world = lock(&self.world);
            let committed = world.committed.get(&group);
            replay
                .ends
                .iter()
                .map(|(&p, _)| {
                    let at = committed.and_then(|c| c.get(&(topic, p))).copied();
                    (p, at.unwrap_or(0))
                })
                .collect()
        };
        let left: BTreeMap<i32, i64> = replay
            .ends
            .iter()
            .filter(|(p, end)| starts[p] < **end)
            .map(|(&p, &end)| (p, end))
            .collect();
        if left.is_empty() {
            if let Some(replay) = &mut self.actors[actor].replay {
                replay.outcome = Some(Ok(()));
            }
            return Ok(());
        }
        let env = SimEnv {
            world: &self.world,
            node: &self.node,
            registry: &self.registry,
            id,
            actor,
            group,
            commit_interval: self.commit_interval,
            input: Reading::DeadLetters {
                ends: left.clone(),
                read: replay.read.clone(),
            },
            stats: &replay.stats,
        };
        let spawned = a.factory.spawn_sim(&env, &a.failures)?;
        self.next_id += 1;
        let position = left.keys().map(|&p| ((topic, p), starts[&p])).collect();
        if let Some(slot) = lock(&self.world).slots.get_mut(&id) {
            slot.assigned = left.keys().map(|&p| (topic, p)).collect();
        }
        let replay = self.actors[actor].replay.as_mut().expect("checked above");
        replay.instance = Some(SimInstance {
            id,
            position,
            spawned,
        });
        replay.started_at = Instant::now();
        Ok(())
    }

    /// `actor`'s replay instance ended with `exit`: done at its ends, or
    /// failed and restarted (or stopped past its budget) by its policy.
    pub(super) async fn replay_ended(&mut self, actor: usize, exit: Exit) {
        let Some(replay) = self.actors[actor].replay.as_mut() else {
            return;
        };
        let Some(mut instance) = replay.instance.take() else {
            return;
        };
        stop(&self.world, &mut instance, true).await;
        {
            let mut world = lock(&self.world);
            world.commit(replay.group, instance.id);
            world.abort_txn(instance.id);
            world.slots.remove(&instance.id);
            world.broken.retain(|(id, _, _)| *id != instance.id);
        }
        let reason = match &exit {
            Exit::Stopped => {
                replay.outcome = Some(Ok(()));
                return;
            }
            Exit::Failed(reason) | Exit::Halted(reason) => reason.to_string(),
        };
        let now = Instant::now();
        match replay
            .restarter
            .after(exit, now.duration_since(replay.started_at), false, None)
        {
            Then::Restart(backoff) => replay.restart_at = Some(now + backoff),
            Then::Done => replay.outcome = Some(Err(reason)),
            Then::StopNode(budget) => replay.outcome = Some(Err(budget)),
        }
    }

    /// Restarts `actor`'s replay if its backoff is over.
    pub(super) fn restart_replay(&mut self, actor: usize, now: Instant) {
        let Some(replay) = self.actors[actor].replay.as_mut() else {
            return;
        };
        if replay.outcome.is_some() || replay.restart_at.is_none_or(|at| at > now) {
            return;
        }
        replay.restart_at = None;
        if let Err(error) = self.start_replay(actor)
            && let Some(replay) = self.actors[actor].replay.as_mut()
        {
            replay.outcome = Some(Err(format!(
                "cannot build a new instance: {}",
                crate::error::chain(&error)
            )));
        }
    }
}
