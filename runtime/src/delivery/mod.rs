//! Delivery bookkeeping: what becomes of each record an actor consumes.
//! Where it is and what it was when fetched ([`consumed`]), how it reaches
//! a handler ([`inbound`]), which offsets may commit ([`tracker`]), what the
//! actor's failure policy and delivery guarantee are ([`policy`]), the
//! failures a record has met so far ([`attempts`]), and why an instance
//! ended ([`failure`]).
//!
//! Owns: per-record and per-instance state of delivery, as values; no
//! client, no actor. May import: `error`, `wire`. Imported by: `ops`,
//! `publisher`, `actor`, `handling`, `feed`, `supervisor`, `node`, `sim`.

pub(crate) mod attempts;
pub(crate) mod consumed;
pub(crate) mod failure;
pub(crate) mod inbound;
pub(crate) mod policy;
pub(crate) mod tracker;
