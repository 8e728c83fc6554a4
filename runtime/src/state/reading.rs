//! Reading changelogs to restore partitions: the seam under the restore.
//!
//! A [`Restorer`] restores the partitions an instance is assigned, each
//! store's changelog partition read from its start to its end as a
//! `read_committed` reader sees it, while the instance goes on handling
//! the partitions it holds. On Kafka ([`ChangelogReading::Kafka`]) each
//! store has a consumer of its own on a thread of its own (so that the end
//! of a partition, which librdkafka reports by partition number only,
//! names one changelog); at-least-once, it asks the actor's consumer group
//! for the committed offsets of the partition's inputs first. What is done
//! with each record is written once, in
//! [`Restoring`](super::restore::Restoring), so that a simulated changelog
//! (not there yet: the simulator refuses actors with stores) needs only a
//! reader of its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::Poll;

use futures::StreamExt as _;
use futures::channel::mpsc as channel;

use super::kafka_reader::{Command, Part, Reader, ReaderOf, kafka_reader};
use super::restore::Restored;
use super::stores::StoreSpec;
use crate::error::Result;
use crate::kafka::settings::ClientSettings;
use crate::ops::stats::ActorStats;

/// How an instance reads its changelogs.
#[derive(Clone)]
pub(crate) enum ChangelogReading {
    /// Kafka consumers with the node's client settings, in the actor's
    /// consumer group `group` (only to read its committed offsets: they
    /// are assigned, never subscribed).
    Kafka {
        settings: ClientSettings,
        group: String,
    },
}

impl std::fmt::Debug for ChangelogReading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangelogReading::Kafka { group, .. } => {
                f.debug_struct("Kafka").field("group", group).finish()
            }
        }
    }
}

/// What restoring a partition came to: its shards, one per store in
/// order, or the error that stopped it.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) partition: i32,
    pub(crate) outcome: Result<Vec<Restored>>,
}

/// Restores the partitions of one instance, store by store.
pub(crate) struct Restorer {
    readers: Vec<Reader>,
    parts: channel::UnboundedReceiver<Part>,
    /// Partitions being restored: the restore's round, and each store's
    /// part so far.
    restoring: BTreeMap<i32, (u64, Vec<Option<Restored>>)>,
    stores: usize,
    /// The last restore's round.
    rounds: u64,
}

impl std::fmt::Debug for Restorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restorer")
            .field("restoring", &self.restoring.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Restorer {
    /// Starts the readers of `specs`, the stores of actor `actor`
    /// (exactly-once when `transactional`: every committed change applies).
    /// Its progress shows in `stats` (`/ready`, `/metrics`).
    pub(crate) fn start(
        reading: &ChangelogReading,
        actor: &str,
        specs: &[StoreSpec],
        transactional: bool,
        stats: &Arc<ActorStats>,
    ) -> Result<Self> {
        let (parts_tx, parts) = channel::unbounded();
        let readers = specs
            .iter()
            .enumerate()
            .map(|(store, spec)| match reading {
                ChangelogReading::Kafka { settings, group } => kafka_reader(
                    settings,
                    group,
                    actor,
                    ReaderOf {
                        store,
                        spec: spec.clone(),
                        transactional,
                        parts: parts_tx.clone(),
                        stats: stats.clone(),
                    },
                ),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            readers,
            parts,
            restoring: BTreeMap::new(),
            stores: specs.len(),
            rounds: 0,
        })
    }

    /// Starts restoring `partition`, whose inputs are `inputs`.
    pub(crate) fn restore(&mut self, partition: i32, inputs: Vec<Arc<str>>) {
        self.rounds += 1;
        let round = self.rounds;
        self.restoring
            .insert(partition, (round, (0..self.stores).map(|_| None).collect()));
        for reader in &self.readers {
            reader.send(Command::Restore {
                partition,
                inputs: inputs.clone(),
                round,
            });
        }
    }

    /// Stops restoring `partition`, if it is being restored.
    pub(crate) fn forget(&mut self, partition: i32) {
        if self.restoring.remove(&partition).is_some() {
            for reader in &self.readers {
                reader.send(Command::Forget(partition));
            }
        }
    }

    /// The next partition whose restore ended, once every store's part of
    /// it is in (or one failed).
    pub(crate) fn poll_done(&mut self, task: &mut std::task::Context<'_>) -> Poll<Done> {
        while let Poll::Ready(Some(Part {
            store,
            partition,
            round,
            outcome,
        })) = self.parts.poll_next_unpin(task)
        {
            let Some((_, parts)) = self
                .restoring
                .get_mut(&partition)
                .filter(|(current, _)| *current == round)
            else {
                // Forgotten meanwhile, or an earlier restore's.
                continue;
            };
            match outcome {
                Err(error) => {
                    self.forget(partition);
                    return Poll::Ready(Done {
                        partition,
                        outcome: Err(error),
                    });
                }
                Ok(restored) => parts[store] = Some(restored),
            }
            if parts.iter().all(Option::is_some) {
                let (_, parts) = self.restoring.remove(&partition).unwrap_or_default();
                return Poll::Ready(Done {
                    partition,
                    outcome: Ok(parts.into_iter().flatten().collect()),
                });
            }
        }
        Poll::Pending
    }
}
