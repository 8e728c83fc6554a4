//! What an actor's file needs: `use scribe::prelude::*;`.

pub use crate::state::{Fired, TimerClock, Timers};
pub use crate::{
    ActorError, Answered, AnyRecord, Broker, Inbound, Node, NodeBuilder, Publisher, Record,
    Records, Requester, RequesterOptions, Store, Subscriptions, TopicActor, TopicSpec,
};
// Continuing with a reply: `ctx.spawn(pending.into_actor(self).map(..))`.
pub use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};
