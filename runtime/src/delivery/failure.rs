//! [`Failure`]: why an actor instance failed or stopped, from where it
//! happened (a handler, a delivery, a transaction, the supervisor) to the
//! restart budget and [`crate::RunningNode::stopped_because`].

use std::fmt;

use crate::delivery::consumed::Position;

/// Why an actor instance failed (it restarts) or was stopped for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The handler panicked on a record.
    Panicked { at: Position, message: String },
    /// Under exactly-once, the handler returned an error after publishing:
    /// only an abort takes back what it published.
    FailedAfterPublishing { at: Position, reason: String },
    /// A record's tries are used up and there is no dead-letter topic.
    Exhausted {
        at: Position,
        attempts: u32,
        reason: String,
    },
    /// A record could not be written to the dead-letter topic.
    NotDeadLettered { at: Position, reason: String },
    /// Records published while handling a record were not delivered.
    Undelivered { at: Position },
    /// A transaction did not commit (see `TxnFailure`).
    Transaction(String),
    /// The brokers refused the actor's writes for good: not authorized, or
    /// fenced by a newer instance.
    Refused(String),
    /// The consumer could not do what the feed needed (rewind, give up
    /// revoked partitions).
    Consumer(String),
    /// A new instance could not be built or started.
    Start(String),
    /// A partition's state could not be restored.
    Restore(String),
    /// A timer's handler failed or panicked (the timer fires again).
    Timer(String),
    /// The instance's thread ended without saying why, or its drain took
    /// too long.
    Lost(String),
}

impl Failure {
    /// The record the failure is about, when there is one.
    pub(crate) fn at(&self) -> Option<&Position> {
        match self {
            Failure::Panicked { at, .. }
            | Failure::FailedAfterPublishing { at, .. }
            | Failure::Exhausted { at, .. }
            | Failure::NotDeadLettered { at, .. }
            | Failure::Undelivered { at } => Some(at),
            _ => None,
        }
    }

    /// Whether `other` is this failure again: the same kind on the same
    /// record. A run of these is a loop, however far apart they come.
    pub(crate) fn repeats(&self, other: &Failure) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.at().is_some()
            && self.at() == other.at()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Panicked { at, message } => write!(f, "handler panicked on {at}: {message}"),
            Failure::FailedAfterPublishing { at, reason } => write!(
                f,
                "handler failed on {at} after publishing; the transaction is aborted: {reason}"
            ),
            Failure::Exhausted {
                at,
                attempts,
                reason,
            } => write!(f, "cannot handle {at} after {attempts} attempts: {reason}"),
            Failure::NotDeadLettered { at, reason } => {
                write!(f, "cannot dead-letter {at}: {reason}")
            }
            Failure::Undelivered { at } => {
                write!(
                    f,
                    "records published while handling {at} were not delivered"
                )
            }
            Failure::Transaction(reason)
            | Failure::Refused(reason)
            | Failure::Consumer(reason)
            | Failure::Start(reason)
            | Failure::Restore(reason)
            | Failure::Timer(reason)
            | Failure::Lost(reason) => f.write_str(reason),
        }
    }
}
