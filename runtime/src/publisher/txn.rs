//! An exactly-once actor's transactions: begin, commit with the input
//! offsets, abort, and what a failed step means.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;

use crate::error::{Error, Result};

use super::producer::ActorProducer;
use super::sink::Sink;
use crate::delivery::consumed::Position;

/// The state of an exactly-once actor's transactions.
#[derive(Debug)]
pub(super) struct Transaction {
    id: String,
    open: AtomicBool,
    /// How long a step waits for the broker before its outcome is unknown.
    timeout: Duration,
}

impl Transaction {
    /// Opens a transaction unless one is open.
    fn ensure_open(&self, producer: &ActorProducer) -> rdkafka::error::KafkaResult<()> {
        if !self.open.load(Ordering::Acquire) {
            producer.begin_transaction()?;
            self.open.store(true, Ordering::Release);
        }
        Ok(())
    }
}

/// How many times a transaction commit whose outcome is unknown is retried
/// before the producer is rebuilt.
const COMMIT_TRIES: u32 = 5;

/// Why a transaction did not commit, and what must follow.
#[derive(Debug)]
pub(crate) enum TxnFailure {
    /// Failed for sure: abort it; its records are handled again.
    Abortable(String),
    /// Its outcome is unknown after every retry: never abort it. Drop the
    /// producer: the next one, with the same transactional id, makes the
    /// broker finish it (committed or not) before going on.
    Unknown(String),
    /// Fenced by a newer instance with the same transactional id, or
    /// otherwise fatal: this instance must stop.
    Fatal(String),
}

impl TxnFailure {
    /// What failed, and why.
    pub(crate) fn reason(&self) -> &str {
        match self {
            TxnFailure::Abortable(reason)
            | TxnFailure::Unknown(reason)
            | TxnFailure::Fatal(reason) => reason,
        }
    }
}

impl Transaction {
    /// The transactions of producer `id`, each step waiting up to
    /// `timeout` for the broker.
    pub(super) fn new(id: String, timeout: Duration) -> Self {
        Self {
            id,
            open: AtomicBool::new(false),
            timeout,
        }
    }

    /// Whether a transaction is open.
    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Registers the transactional id with the broker: fences any older
    /// instance and finishes its open transaction.
    pub(super) fn init(&self, sink: &Sink) -> Result<()> {
        let Some(producer) = sink.producer() else {
            return Ok(());
        };
        retry(&self.id, "init", || {
            producer.init_transactions(self.timeout)
        })
        .map(|_| ())
        .map_err(|failure| Error::Transaction {
            reason: failure.reason().to_owned(),
        })
    }

    /// Opens a transaction unless one is open.
    pub(super) fn begin(&self, sink: &Sink) -> Result<()> {
        match sink {
            Sink::Kafka(producer) => self.ensure_open(producer).map_err(|e| {
                Error::kafka(format!("cannot begin a transaction as `{}`", self.id), e)
            }),
            #[cfg(feature = "testing")]
            Sink::Dyn(sink) => {
                sink.begin_txn();
                self.open.store(true, Ordering::Release);
                Ok(())
            }
        }
    }

    /// Commits the open transaction with `offsets` (the input positions
    /// of every record handled in it) in the consumer group of `group`,
    /// opening one if only offsets are new. A step whose outcome is unknown
    /// is retried, never aborted. Returns whether a transaction was
    /// committed and how many steps were retried.
    pub(super) fn commit(
        &self,
        sink: &Sink,
        offsets: &[Position],
        group: Option<&ConsumerGroupMetadata>,
    ) -> std::result::Result<(bool, u32), TxnFailure> {
        if offsets.is_empty() && !self.is_open() {
            return Ok((false, 0));
        }
        let retries = match sink {
            Sink::Kafka(producer) => commit_on_kafka(self, producer, offsets, group)?,
            #[cfg(feature = "testing")]
            Sink::Dyn(sink) => {
                sink.begin_txn();
                sink.commit_txn(offsets).map_err(|reason| {
                    TxnFailure::Abortable(format!(
                        "cannot commit the transaction of `{}`: {reason}",
                        self.id
                    ))
                })?;
                0
            }
        };
        self.open.store(false, Ordering::Release);
        Ok((true, retries))
    }

    /// Aborts the open transaction, if one is open: what it wrote is never
    /// read by a `read_committed` consumer. Returns whether one was.
    pub(super) fn abort(&self, sink: &Sink) -> bool {
        if !self.open.swap(false, Ordering::AcqRel) {
            return false;
        }
        match sink {
            Sink::Kafka(producer) => {
                if let Err(error) = producer.abort_transaction(self.timeout) {
                    // The next producer with this id aborts it on the broker.
                    tracing::warn!(transactional_id = %self.id, %error, "cannot abort the transaction");
                }
            }
            #[cfg(feature = "testing")]
            Sink::Dyn(sink) => {
                sink.abort_txn();
            }
        }
        true
    }
}

/// Commits `txn` on Kafka: sends `offsets` for `group`'s consumer group
/// (when both are given), then commits; returns how many steps were
/// retried.
fn commit_on_kafka(
    txn: &Transaction,
    producer: &ActorProducer,
    offsets: &[Position],
    group: Option<&ConsumerGroupMetadata>,
) -> std::result::Result<u32, TxnFailure> {
    txn.ensure_open(producer)
        .map_err(|e| classify(&txn.id, "begin", &e))?;
    let mut retries = 0;
    if let Some(group) = group.filter(|_| !offsets.is_empty()) {
        let offsets = crate::delivery::consumed::partition_list(offsets);
        retries += retry(&txn.id, "send offsets to", || {
            producer.send_offsets_to_transaction(&offsets, group, txn.timeout)
        })?;
    }
    retries += retry(&txn.id, "commit", || {
        producer.commit_transaction(txn.timeout)
    })?;
    Ok(retries)
}

/// Calls a transaction step, again while its outcome is unknown and
/// librdkafka says it may be retried; returns how many times it was called
/// again.
fn retry(
    id: &str,
    step: &str,
    call: impl Fn() -> rdkafka::error::KafkaResult<()>,
) -> std::result::Result<u32, TxnFailure> {
    let mut tries = 0;
    loop {
        tries += 1;
        let Err(error) = call() else {
            return Ok(tries - 1);
        };
        let retriable = matches!(&error, KafkaError::Transaction(e) if e.is_retriable());
        match classify(id, step, &error) {
            TxnFailure::Unknown(reason) if retriable && tries < COMMIT_TRIES => {
                tracing::warn!(transactional_id = %id, tries, %reason, "transaction outcome unknown; retrying");
                std::thread::sleep(Duration::from_millis(100) * tries);
            }
            failure => return Err(failure),
        }
    }
}

/// What a failed transaction step means, after librdkafka's flags.
fn classify(id: &str, step: &str, error: &KafkaError) -> TxnFailure {
    let what = match step {
        "init" => format!("cannot init transactions as `{id}`"),
        step => format!("cannot {step} the transaction of `{id}`"),
    };
    let KafkaError::Transaction(e) = error else {
        // Not from the transaction API (a closed producer, a local state
        // error): nothing says the transaction failed, so no abort.
        return TxnFailure::Unknown(format!("{what}: {error}"));
    };
    let step = Step {
        code: e.code(),
        fatal: e.is_fatal(),
        requires_abort: e.txn_requires_abort(),
    };
    step.failure(&what, &e.to_string())
}

/// What librdkafka says of a failed transaction step.
#[derive(Debug, Clone, Copy)]
struct Step {
    code: RDKafkaErrorCode,
    fatal: bool,
    requires_abort: bool,
}

impl Step {
    /// What the failure means: `what` failed, librdkafka said `said`.
    fn failure(self, what: &str, said: &str) -> TxnFailure {
        use RDKafkaErrorCode as Code;
        match self.code {
            Code::ProducerFenced | Code::InvalidProducerEpoch => TxnFailure::Fatal(format!(
                "{what}: fenced: another instance of the actor runs with this transactional \
                 id ({said})"
            )),
            Code::UnsupportedFeature | Code::UnsupportedVersion => TxnFailure::Fatal(format!(
                "{what}: the broker does not support transactions ({said})"
            )),
            _ if self.fatal => TxnFailure::Fatal(format!("{what}: {said}")),
            _ if self.requires_abort => TxnFailure::Abortable(format!("{what}: {said}")),
            // Retriable (a timeout: the broker may have done it), or neither
            // retriable nor abortable: either way the outcome is not known.
            _ => TxnFailure::Unknown(format!("{what}: {said}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(code: RDKafkaErrorCode, fatal: bool, requires_abort: bool) -> TxnFailure {
        Step {
            code,
            fatal,
            requires_abort,
        }
        .failure("cannot commit the transaction of `t`", "said")
    }

    #[test]
    fn a_fenced_producer_stops_for_good_whatever_the_flags() {
        for code in [
            RDKafkaErrorCode::ProducerFenced,
            RDKafkaErrorCode::InvalidProducerEpoch,
        ] {
            let failure = step(code, false, true);
            assert!(
                matches!(&failure, TxnFailure::Fatal(r) if r.contains("fenced")),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn a_broker_without_transactions_is_named() {
        let failure = step(RDKafkaErrorCode::UnsupportedVersion, false, false);
        assert!(
            matches!(&failure, TxnFailure::Fatal(r) if r.contains("does not support transactions")),
            "{failure:?}"
        );
    }

    #[test]
    fn fatal_beats_abortable_and_abortable_beats_unknown() {
        let code = RDKafkaErrorCode::InvalidTransactionalState;
        assert!(matches!(step(code, true, true), TxnFailure::Fatal(_)));
        assert!(matches!(step(code, false, true), TxnFailure::Abortable(_)));
    }

    #[test]
    fn a_step_neither_fatal_nor_abortable_has_an_unknown_outcome_and_is_never_aborted() {
        let failure = step(RDKafkaErrorCode::RequestTimedOut, false, false);
        assert!(matches!(&failure, TxnFailure::Unknown(_)), "{failure:?}");
        assert_eq!(
            failure.reason(),
            "cannot commit the transaction of `t`: said"
        );
    }

    #[test]
    fn an_error_outside_the_transaction_api_has_an_unknown_outcome() {
        let error = KafkaError::ClientCreation("closed".into());
        let failure = classify("t", "init", &error);
        assert!(
            matches!(&failure, TxnFailure::Unknown(r) if r.starts_with("cannot init transactions as `t`")),
            "{failure:?}"
        );
    }
}
