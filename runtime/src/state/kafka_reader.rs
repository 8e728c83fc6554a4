//! A store's changelog reader on Kafka: a consumer of the changelog, on a
//! thread of its own, that restores the partitions its
//! [`Restorer`](super::reading::Restorer) asks for, reports how far it is
//! into the actor's stats, and hands each partition's [`Restored`] back.
//! What it is asked and what it answers are [`Command`] and [`Part`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use futures::channel::mpsc as channel;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::changelog::{ChangeRecord, STATE_INPUT};
use super::restore::{Committed, Restored, Restoring};
use super::stores::StoreSpec;
use crate::error::{Error, Result};
use crate::kafka::settings::ClientSettings;
use crate::ops::stats::{ActorStats, RestoreProgress};

/// How long a broker call of a restore (offsets, watermarks) waits.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restore thread waits for a record before looking at its
/// commands again.
const POLL: Duration = Duration::from_millis(100);
/// How many records a restore reads between two reports of its progress.
const PROGRESS_EVERY: u64 = 4096;

/// What a store's reader is asked.
pub(super) enum Command {
    /// Restore `partition`, whose inputs are these topics, as restore
    /// number `round` of the instance.
    Restore {
        partition: i32,
        inputs: Vec<Arc<str>>,
        round: u64,
    },
    /// `partition` is no longer the instance's: stop restoring it.
    Forget(i32),
}

/// One store's part of a partition's restore, as its reader reports it.
pub(super) struct Part {
    pub(super) store: usize,
    pub(super) partition: i32,
    /// The restore it belongs to: a part of an earlier restore of the
    /// partition (reported before its `Forget` arrived) is not this one's.
    pub(super) round: u64,
    pub(super) outcome: Result<Restored>,
}

/// One store's reader: a consumer of its changelog on a thread of its own.
pub(super) struct Reader {
    commands: mpsc::Sender<Command>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    pub(super) fn send(&self, command: Command) {
        // A reader whose thread ended has reported why.
        let _ = self.commands.send(command);
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The thread notices within a poll; it is not waited for.
        drop(self.thread.take());
    }
}

/// What a store's reader reads, and where it reports.
pub(super) struct ReaderOf {
    /// The store's index in the actor's declaration.
    pub(super) store: usize,
    pub(super) spec: StoreSpec,
    /// Exactly-once: every committed change applies.
    pub(super) transactional: bool,
    pub(super) parts: channel::UnboundedSender<Part>,
    pub(super) stats: Arc<ActorStats>,
}

/// Starts the reader of one store: a consumer of its changelog on a
/// thread of its own.
pub(super) fn kafka_reader(
    settings: &ClientSettings,
    group: &str,
    actor: &str,
    of: ReaderOf,
) -> Result<Reader> {
    let mut config = settings.consumer(group, false);
    config
        .set("client.id", format!("{}.{actor}.restore", settings.node))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer<RestoreContext> =
        config.create_with_context(RestoreContext).map_err(|e| {
            Error::kafka(
                format!(
                    "cannot create the reader of changelog `{}` for actor `{actor}`",
                    of.spec.info.changelog
                ),
                e,
            )
        })?;
    let (commands, received) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        let mut reader = KafkaReader {
            consumer,
            of,
            active: BTreeMap::new(),
        };
        std::thread::Builder::new()
            .name(format!("restore-{actor}"))
            .spawn(move || reader.run(&received, &stop))
            .map_err(|e| Error::State {
                actor: actor.to_owned(),
                store: String::new(),
                reason: format!("cannot start a restore thread: {e}"),
            })?
    };
    Ok(Reader {
        commands,
        stop,
        thread: Some(thread),
    })
}

/// A restore consumer's context: the end of a partition, which a restore
/// asks for, is no error to log.
struct RestoreContext;

impl ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!(%error, reason, "changelog reader error");
        }
    }
}

impl ConsumerContext for RestoreContext {}

/// The state of a store's reader on Kafka.
struct KafkaReader {
    consumer: BaseConsumer<RestoreContext>,
    of: ReaderOf,
    /// The partitions being read.
    active: BTreeMap<i32, Active>,
}

/// A partition being read.
struct Active {
    /// The restore it is part of.
    round: u64,
    restoring: Restoring,
    /// The partition's end when the restore began: what it reads to, at
    /// least (the end of partition a later read reports ends it).
    end: i64,
    /// Records read since the last progress report.
    unreported: u64,
}

impl Active {
    fn progress(&self, next: i64) -> RestoreProgress {
        let counts = self.restoring.counts();
        RestoreProgress {
            records_left: u64::try_from(self.end - next).unwrap_or(0),
            records_read: counts.applied + counts.dropped,
            bytes_read: counts.bytes,
        }
    }
}

impl KafkaReader {
    fn run(&mut self, commands: &mpsc::Receiver<Command>, stop: &AtomicBool) {
        self.serve(commands, stop);
        // Its restores end with it: none shows as under way any more.
        let partitions: Vec<i32> = self.active.keys().copied().collect();
        for partition in partitions {
            self.end(partition);
        }
    }

    fn serve(&mut self, commands: &mpsc::Receiver<Command>, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) {
            let command = if self.active.is_empty() {
                match commands.recv_timeout(POLL) {
                    Ok(command) => Some(command),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            } else {
                commands.try_recv().ok()
            };
            match command {
                Some(Command::Restore {
                    partition,
                    inputs,
                    round,
                }) => {
                    if let Err(error) = self.begin(partition, &inputs, round) {
                        self.report(partition, round, Err(error));
                    }
                    continue;
                }
                Some(Command::Forget(partition)) => {
                    if self.active.remove(&partition).is_some() {
                        self.unassign(partition);
                        self.of
                            .stats
                            .restore_progress(&self.of.spec.info.name, partition, None);
                    }
                    continue;
                }
                None if self.active.is_empty() => continue,
                None => {}
            }
            self.read();
        }
    }

    fn topic(&self) -> &str {
        &self.of.spec.info.changelog
    }

    /// Starts reading `partition` from its start, after reading the
    /// committed offsets of its inputs (at-least-once).
    fn begin(&mut self, partition: i32, inputs: &[Arc<str>], round: u64) -> Result<()> {
        let (start, end) = self
            .consumer
            .fetch_watermarks(self.topic(), partition, BROKER_TIMEOUT)
            .map_err(|e| {
                Error::kafka(
                    format!(
                        "cannot read the end of changelog `{}`/{partition}",
                        self.topic()
                    ),
                    e,
                )
            })?;
        if end <= start {
            // Nothing to read (a first start, a partition that never held
            // state): restored at once, without waiting for a fetch to
            // report the partition's end.
            self.report(partition, round, Ok(Restored::default()));
            return Ok(());
        }
        let committed = if self.of.transactional {
            Committed::keep_all()
        } else {
            self.committed(partition, inputs)?
        };
        let restoring = Restoring::new(
            Arc::from(self.topic()),
            partition,
            self.of.spec.check.clone(),
            Arc::new(committed),
        );
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(self.topic(), partition, Offset::Beginning)
            .and_then(|()| self.consumer.incremental_assign(&list))
            .map_err(|e| {
                Error::kafka(
                    format!("cannot read changelog `{}`/{partition}", self.topic()),
                    e,
                )
            })?;
        let active = Active {
            round,
            restoring,
            end,
            unreported: 0,
        };
        self.of.stats.restore_progress(
            &self.of.spec.info.name,
            partition,
            Some(active.progress(start)),
        );
        self.active.insert(partition, active);
        Ok(())
    }

    /// What the actor's group committed for `partition` of each input.
    fn committed(&self, partition: i32, inputs: &[Arc<str>]) -> Result<Committed> {
        let mut list = TopicPartitionList::new();
        for input in inputs {
            list.add_partition(input, partition);
        }
        let offsets = self
            .consumer
            .committed_offsets(list, BROKER_TIMEOUT)
            .map_err(|e| {
                Error::kafka(
                    format!(
                        "cannot read the committed offsets of partition {partition} of the input"
                    ),
                    e,
                )
            })?;
        let mut committed = Committed::default();
        for e in offsets.elements() {
            let offset = match e.offset() {
                Offset::Offset(at) => Some(at),
                _ => None,
            };
            committed.insert(e.topic(), e.partition(), offset);
        }
        Ok(committed)
    }

    /// Reads what is there, until a poll waits in vain.
    fn read(&mut self) {
        let Some(message) = self.consumer.poll(POLL) else {
            return;
        };
        match message {
            Ok(message) => {
                let partition = message.partition();
                let Some(active) = self.active.get_mut(&partition) else {
                    return;
                };
                // Read without panicking on a header key that is not UTF-8.
                let (headers, _) = crate::wire::headers::Headers::from_kafka(&message);
                let record = ChangeRecord {
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(Arc::from),
                    input: headers.get(STATE_INPUT).map(<[u8]>::to_vec),
                };
                let offset = record.offset;
                if let Err(error) = active.restoring.apply(record) {
                    let round = active.round;
                    self.end(partition);
                    self.report(partition, round, Err(error));
                    return;
                }
                active.unreported += 1;
                if active.unreported >= PROGRESS_EVERY {
                    active.unreported = 0;
                    let progress = active.progress(offset + 1);
                    self.of.stats.restore_progress(
                        &self.of.spec.info.name,
                        partition,
                        Some(progress),
                    );
                }
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                if let Some(active) = self.end(partition) {
                    self.report(partition, active.round, Ok(active.restoring.finish()));
                }
            }
            Err(error) => {
                tracing::warn!(changelog = %self.topic(), %error, "reading a changelog to restore");
            }
        }
    }

    /// Stops reading `partition`: its restore ended.
    fn end(&mut self, partition: i32) -> Option<Active> {
        let active = self.active.remove(&partition)?;
        self.unassign(partition);
        self.of
            .stats
            .restore_progress(&self.of.spec.info.name, partition, None);
        Some(active)
    }

    fn unassign(&self, partition: i32) {
        let mut list = TopicPartitionList::new();
        list.add_partition(self.topic(), partition);
        if let Err(error) = self.consumer.incremental_unassign(&list) {
            tracing::debug!(changelog = %self.topic(), partition, %error, "cannot stop reading a changelog partition");
        }
    }

    fn report(&self, partition: i32, round: u64, outcome: Result<Restored>) {
        let _ = self.of.parts.unbounded_send(Part {
            store: self.of.store,
            partition,
            round,
            outcome,
        });
    }
}
