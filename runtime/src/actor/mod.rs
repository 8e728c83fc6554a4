//! Actors: [`TopicActor`], an actix actor that owns one topic and declares
//! its subscriptions ([`topic_actor`]); what it declares, as data
//! ([`info`]); how its records are decoded and handed to it ([`decode`]);
//! which route a topic's records take ([`routes`]), and a fired timer
//! ([`timer_route`]); and subscription
//! patterns both librdkafka and Rust read alike ([`pattern`]).
//!
//! Owns: the actor's side of the contract, from a record's bytes to its
//! handler. May import: `error`, `wire`, `delivery`, `state`, `publisher`
//! (the publisher an actor is created with). Imported by: `topology`, `handling`,
//! `feed`, `supervisor`, `node`, `sim`.

mod decode;
mod info;
mod pattern;
mod routes;
mod timer_route;
mod topic_actor;

pub(crate) use decode::{Deliver, SwitchRoute};
pub use info::{AskInfo, Binding, SubscriptionInfo};
pub(crate) use pattern::pattern_regex;
pub(crate) use routes::Routes;
pub(crate) use timer_route::{Due, TimerRoute};
pub use topic_actor::{Subscriptions, TopicActor};
