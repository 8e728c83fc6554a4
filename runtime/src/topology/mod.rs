//! Rules over a whole topology: one node's actors, or every node of a
//! deployment (several config files). What each actor is, as the rules see
//! it ([`ActorInfo`]); one writer per topic and readers that fit their
//! writers ([`check`]); gateways and their responders
//! ([`check_gateways`]); the asks actors declare ([`check_asks`]).
//!
//! Owns: refusing a topology before it runs. May import: `error`, `wire`,
//! `delivery`, `actor`, `ask`. Imported by: `node`, `sim`, and the
//! command line (`scribe check`).

mod actors;
mod asks;
mod gateways;
mod writers;

pub use crate::actor::AskInfo;
pub use actors::ActorInfo;
pub use asks::check_asks;
pub(crate) use gateways::check_opened_gateway;
pub use gateways::{GatewayInfo, check_gateway_types, check_gateways};
pub use writers::{ExternalTopic, SchemaMismatch, check};
