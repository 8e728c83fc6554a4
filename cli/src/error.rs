//! The command line's error type: what only the command line makes (a
//! broken node file, a tail that waited in vain, an admin endpoint that
//! does not answer), and the runtime's own errors.

use std::time::Duration;

/// Everything a `scribe` command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file is unreadable, malformed or invalid; the message
    /// names the actor and field.
    #[error("{file}: {message}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong, and where in the file.
        message: String,
    },
    /// `scribe tail -n N` waited for records that did not come.
    #[error("only {printed} of {wanted} records from `{topic}`: none came for {idle:?}")]
    TailTimedOut {
        /// The topic tailed.
        topic: String,
        /// Records printed.
        printed: usize,
        /// Records asked for.
        wanted: usize,
        /// How long it waited for the next one.
        idle: Duration,
    },
    /// A node's admin endpoint could not be read (`scribe status`).
    #[error("cannot read the admin endpoint at {url}: {reason}")]
    AdminUnreachable {
        /// The address asked.
        url: String,
        /// Why: no answer, or what the endpoint said.
        reason: String,
    },
    /// What the runtime failed with.
    #[error(transparent)]
    Runtime(#[from] scribe::Error),
}

/// A `Result` whose error defaults to the command line's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the error is in what the user gave (a file, a setting), so
    /// the command exits 2 rather than 1.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Config { .. }
                | Error::Runtime(
                    scribe::Error::KafkaProperty { .. } | scribe::Error::Security { .. }
                )
        )
    }
}
