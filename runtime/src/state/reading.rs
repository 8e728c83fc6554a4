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
//! [`Restoring`](super::restore::Restoring); a simulated changelog
//! ([`ChangelogReading::Dyn`], with the `testing` feature) is read through
//! [`DynChangelogs`] at once, on the simulation's one thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::Poll;

use futures::StreamExt as _;
use futures::channel::mpsc as channel;

use super::kafka_reader::{Command, Part, Reader, ReaderOf, kafka_reader};
use super::restore::Restored;
#[cfg(feature = "testing")]
use super::restore::{Committed, Restoring};
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
    /// Changelogs the runtime reaches through a trait object: the
    /// simulator's in-memory log.
    #[cfg(feature = "testing")]
    Dyn(Arc<dyn DynChangelogs>),
}

/// Changelogs defined outside the runtime (the simulator's), read whole
/// and at once.
#[cfg(feature = "testing")]
pub(crate) trait DynChangelogs: Send + Sync + 'static {
    /// The records of `topic`'s `partition` that a `read_committed`
    /// reader sees, in order, up to the partition's last stable offset.
    fn records(&self, topic: &str, partition: i32) -> Result<Vec<super::changelog::ChangeRecord>>;

    /// What the instance's consumer group committed for `partition` of
    /// each of `inputs`.
    fn committed(&self, inputs: &[Arc<str>], partition: i32) -> Committed;
}

impl std::fmt::Debug for ChangelogReading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangelogReading::Kafka { group, .. } => {
                f.debug_struct("Kafka").field("group", group).finish()
            }
            #[cfg(feature = "testing")]
            ChangelogReading::Dyn(_) => f.write_str("Dyn"),
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
    readers: Readers,
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

/// Who reads an instance's changelogs.
enum Readers {
    /// A reader thread per store.
    Threads(Vec<Reader>),
    /// Changelogs read whole and at once, each restore's parts reported
    /// as it begins.
    #[cfg(feature = "testing")]
    Dyn {
        changelogs: Arc<dyn DynChangelogs>,
        specs: Vec<StoreSpec>,
        transactional: bool,
        parts: channel::UnboundedSender<Part>,
    },
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
        let readers = match reading {
            ChangelogReading::Kafka { settings, group } => Readers::Threads(
                specs
                    .iter()
                    .enumerate()
                    .map(|(store, spec)| {
                        kafka_reader(
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
                        )
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            #[cfg(feature = "testing")]
            ChangelogReading::Dyn(changelogs) => Readers::Dyn {
                changelogs: changelogs.clone(),
                specs: specs.to_vec(),
                transactional,
                parts: parts_tx,
            },
        };
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
        match &self.readers {
            Readers::Threads(readers) => {
                for reader in readers {
                    reader.send(Command::Restore {
                        partition,
                        inputs: inputs.clone(),
                        round,
                    });
                }
            }
            #[cfg(feature = "testing")]
            Readers::Dyn {
                changelogs,
                specs,
                transactional,
                parts,
            } => {
                let committed = Arc::new(if *transactional {
                    Committed::keep_all()
                } else {
                    changelogs.committed(&inputs, partition)
                });
                for (store, spec) in specs.iter().enumerate() {
                    let outcome = restore_whole(&**changelogs, spec, partition, &committed);
                    let _ = parts.unbounded_send(Part {
                        store,
                        partition,
                        round,
                        outcome,
                    });
                }
            }
        }
    }

    /// Stops restoring `partition`, if it is being restored.
    pub(crate) fn forget(&mut self, partition: i32) {
        if self.restoring.remove(&partition).is_some()
            && let Readers::Threads(readers) = &self.readers
        {
            for reader in readers {
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

/// Restores `partition` of `spec`'s store from its whole changelog
/// partition as `changelogs` has it, dropping as `committed` says.
#[cfg(feature = "testing")]
fn restore_whole(
    changelogs: &dyn DynChangelogs,
    spec: &StoreSpec,
    partition: i32,
    committed: &Arc<Committed>,
) -> Result<Restored> {
    let topic: Arc<str> = Arc::from(spec.info.changelog.as_str());
    let mut restoring = Restoring::new(
        topic.clone(),
        partition,
        spec.check.clone(),
        committed.clone(),
    );
    for record in changelogs.records(&topic, partition)? {
        restoring.apply(record)?;
    }
    Ok(restoring.finish())
}
