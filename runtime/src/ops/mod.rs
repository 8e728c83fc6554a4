//! Operations: what a running node shows of itself. Per-actor counters
//! ([`stats`]), one trace across a chain of actors ([`trace`]), and the
//! admin endpoint that serves health, readiness, metrics and the live
//! page over HTTP (`admin`, feature `admin`).
//!
//! Owns: observing, never deciding. May import: `error`, `wire`, `kafka`
//! (secrets), `delivery` (a record's position). Imported by: `publisher`,
//! `handling`, `feed`, `supervisor` (counters and spans), `node` (the
//! endpoint).

#[cfg(feature = "admin")]
pub(crate) mod admin;
pub(crate) mod state_query;
pub(crate) mod stats;
pub mod trace;
