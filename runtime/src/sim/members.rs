//! The simulated node's supervisors: each member of an actor's group is
//! the node's own `supervise` loop (the one a node runs), started on the
//! simulation's thread with a [`SimLauncher`] in place of Kafka clients. It
//! starts, restarts (after the policy's backoff, in virtual time) and stops
//! its instance; the scheduler follows what it does through the world:
//! an instance that starts joins the group and is assigned partitions, one
//! that ends leaves it.

use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use tokio::sync::watch;

use super::driver::{Driver, Member, SimInstance, expose};
use super::instance::SimLauncher;
use super::world::lock;
use crate::delivery::policy::FailurePolicy;
use crate::error::{Error, Result};
use crate::ops::stats::ActorStats;
use crate::supervisor::{Launch, NodeControl, Reads, Supervision, supervise};

impl Driver {
    /// The consumer group of `actor`'s dead-letter replays (its live group
    /// is its index).
    pub(super) fn replay_group(&self, actor: usize) -> usize {
        self.actors.len() + actor
    }

    /// Starts a supervisor of `actor` reading `mode` under `policy`,
    /// counting in `stats`; returns it and its first start's outcome.
    pub(super) fn supervisor(
        &mut self,
        actor: usize,
        mode: Reads,
        policy: Arc<FailurePolicy>,
        stats: Arc<ActorStats>,
    ) -> (Member, oneshot::Receiver<Result<()>>) {
        let tag = self.next_member;
        self.next_member += 1;
        let (stop_tx, stop_rx) = watch::channel(false);
        let control = Arc::new(NodeControl {
            stop: stop_tx,
            halted: Mutex::default(),
        });
        let a = &self.actors[actor];
        let launcher = SimLauncher {
            world: self.world.clone(),
            node: self.node.as_str().into(),
            registry: Arc::new(self.registry.clone()),
            actor,
            replay_group: self.replay_group(actor),
            member: tag,
            commit_interval: self.commit_interval,
            stats: stats.clone(),
            envelope: a.envelope,
        };
        let supervision = Supervision {
            factory: a.factory.clone(),
            launch: Launch::Dyn(Box::new(launcher)),
            stats,
            policy,
            dead_letter: a.dead_letter.clone(),
            delivery: a.delivery,
            control: control.clone(),
            mode,
        };
        let (started_tx, started) = oneshot::channel();
        let world = self.world.clone();
        let task = actix::spawn(async move {
            supervise(supervision, stop_rx, started_tx).await;
            // The scheduler sees a supervisor end.
            let mut world = lock(&world);
            world.membership += 1;
            world.changed();
        });
        (Member { tag, control, task }, started)
    }

    /// Starts members of `actor` until it has as many as it wants.
    pub(super) async fn start_instances(&mut self, actor: usize) -> Result<()> {
        while self.actors[actor].members.len() < self.actors[actor].wanted {
            let a = &self.actors[actor];
            let (policy, stats) = (a.policy.clone(), a.stats.clone());
            let (member, started) = self.supervisor(actor, Reads::Live, policy, stats);
            self.actors[actor].members.push(member);
            let outcome = started.await.unwrap_or_else(|_| {
                Err(Error::ActorStart {
                    actor: self.actors[actor].name.clone(),
                    source: "its supervisor ended before starting it".into(),
                })
            });
            self.sync();
            outcome?;
        }
        self.rebalance(actor);
        // Let the new actors run their `started` hooks.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Brings the scheduler up to date with what the supervisors did:
    /// instances that started join their actor's group (or read their
    /// replay); instances that ended leave it, committing what they stored,
    /// as a draining node does; a supervisor that stopped the node (its
    /// restart budget spent) stops every other.
    pub(super) fn sync(&mut self) {
        let mut joined = Vec::new();
        let mut ended = Vec::new();
        {
            let world = lock(&self.world);
            if world.membership == self.membership {
                return;
            }
            self.membership = world.membership;
            for (&id, slot) in &world.slots {
                let known = self.actors[slot.actor].instances.iter().any(|i| i.id == id);
                if !slot.exited && !known {
                    joined.push((
                        slot.actor,
                        SimInstance {
                            id,
                            member: slot.member,
                            replay: slot.replay.is_some(),
                            position: slot.replay.clone().unwrap_or_default(),
                        },
                    ));
                }
            }
            for (a, actor) in self.actors.iter().enumerate() {
                for instance in &actor.instances {
                    if world.slots.get(&instance.id).is_none_or(|s| s.exited) {
                        ended.push((a, instance.id));
                    }
                }
            }
        }
        for (actor, id) in ended {
            self.remove_instance(actor, id, false);
        }
        for (actor, instance) in joined {
            let member = !instance.replay;
            if let Some(slot) = lock(&self.world).slots.get_mut(&instance.id)
                && !member
            {
                slot.assigned = instance.position.keys().copied().collect();
            }
            self.actors[actor].instances.push(instance);
            if member {
                self.rebalance(actor);
            }
        }
        if self.halted.is_none() {
            let halted = self
                .actors
                .iter()
                .flat_map(|a| &a.members)
                .find_map(|m| m.control.halted.lock().ok().and_then(|h| h.clone()));
            if let Some(reason) = halted {
                self.halted = Some(reason);
                for member in self.actors.iter().flat_map(|a| &a.members) {
                    let _ = member.control.stop.send(true);
                }
            }
        }
    }

    /// Takes instance `id` of `actor` out of the scheduler. A crash loses
    /// what it had not committed; otherwise (a failure, a graceful leave)
    /// it commits first, as a draining node does.
    pub(super) fn remove_instance(&mut self, actor: usize, id: u64, crash: bool) {
        let replay_group = self.replay_group(actor);
        let a = &mut self.actors[actor];
        let Some(index) = a.instances.iter().position(|i| i.id == id) else {
            return;
        };
        let instance = a.instances.remove(index);
        {
            let mut world = lock(&self.world);
            let group = if instance.replay { replay_group } else { actor };
            if crash {
                // What it sent and the broker had not acknowledged is lost
                // with it.
                world.in_flight.retain(|r| r.instance != instance.id);
            } else {
                world.commit(group, instance.id);
            }
            // Its open transaction, if any, is aborted, as the next
            // producer with its transactional id makes the broker do.
            world.abort_txn(instance.id);
            if !instance.replay {
                let committed = world.committed.entry(actor).or_default();
                for (tp, &position) in &instance.position {
                    let committed = committed.get(tp).copied().unwrap_or(0);
                    expose(&mut a.exposures, *tp, committed, position);
                }
            }
            world.slots.remove(&instance.id);
            world.broken.retain(|(i, _, _)| *i != instance.id);
        }
        if !instance.replay {
            self.rebalance(actor);
        }
    }

    /// Kills member `tag` of `actor` with its instance, as a killed
    /// process: no drain, nothing more committed.
    pub(super) async fn crash_member(&mut self, actor: usize, tag: u64) {
        let members = &mut self.actors[actor].members;
        let Some(index) = members.iter().position(|m| m.tag == tag) else {
            return;
        };
        let member = members.remove(index);
        member.task.abort();
        // Dropped with its supervisor, the instance's stop switch ends its
        // feed at once.
        let _ = member.task.await;
        let ids: Vec<u64> = self.actors[actor]
            .instances
            .iter()
            .filter(|i| i.member == tag)
            .map(|i| i.id)
            .collect();
        for id in ids {
            self.exited(id).await;
            self.remove_instance(actor, id, true);
        }
    }

    /// Kills every member of `actor`.
    pub(super) async fn crash(&mut self, actor: usize) {
        let tags: Vec<u64> = self.actors[actor].members.iter().map(|m| m.tag).collect();
        for tag in tags {
            self.crash_member(actor, tag).await;
        }
    }

    /// Stops member `index` of `actor` gracefully (its instance drains)
    /// and waits until it has.
    async fn stop_member(&mut self, actor: usize, index: usize) {
        let member = self.actors[actor].members.remove(index);
        let _ = member.control.stop.send(true);
        let _ = member.task.await;
        self.sync();
    }

    pub(super) async fn scale(&mut self, actor: usize) -> Result<()> {
        while self.actors[actor].members.len() > self.actors[actor].wanted {
            let last = self.actors[actor].members.len() - 1;
            self.stop_member(actor, last).await;
        }
        self.start_instances(actor).await
    }

    /// Waits until instance `id` has ended.
    pub(super) async fn exited(&self, id: u64) {
        std::future::poll_fn(|cx| {
            let mut world = lock(&self.world);
            match world.slots.get(&id) {
                Some(slot) if !slot.exited => {
                    world.driver = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
                _ => std::task::Poll::Ready(()),
            }
        })
        .await;
    }

    /// A crashed member of `actor` could not start again (its constructor
    /// failed, as a node that cannot start): the actor stays down,
    /// unhealthy, saying why.
    pub(super) fn cannot_restart(&mut self, actor: usize, error: &Error) {
        let a = &mut self.actors[actor];
        let reason = format!(
            "cannot start again after a crash: {}",
            crate::error::chain(error)
        );
        tracing::error!(actor = %a.name, %reason, "simulated actor stays down");
        a.down = true;
        a.members.retain(|m| !m.task.is_finished());
        a.stats
            .unhealthy
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut why) = a.stats.stopped_because.lock() {
            why.get_or_insert(reason);
        }
    }
}
