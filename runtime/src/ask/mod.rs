//! Asking: request and reply over Kafka. A [`gateway`] asks an actor from
//! code that is not an actor; a [`requester`] asks from inside a handler;
//! both read replies the same way ([`replies`]).
//!
//! Owns: matching replies to requests, their bounds and timeouts, and the
//! asking record held until its reply is dealt with. May import: `error`,
//! `wire`, `kafka`, `delivery`, `publisher`. Imported by: `supervisor` (an
//! instance's requesters) and `node` (gateways).

pub(crate) mod gateway;
pub(crate) mod replies;
pub(crate) mod requester;
