//! Relay: gathers every topic matching a pattern into one topic.
//!
//! - Reads: records of type `T` from every topic whose name matches
//!   `pattern` (a regular expression matched from the start of the name,
//!   like `acapy-inbound-.*`), each read by Avro schema resolution.
//! - Writes: the same records, as `T`, to its own topic, with their key and
//!   all their headers kept (`ce_id` stays the original event's).
//! - Keys by: the original key.
//! - Parameters: [`RelayArgs`].
//!
//! The config kinds are `relay.<record>` per record type, for instance
//! `relay.host-metrics` for `scribe.metrics.HostMetrics`.

use std::marker::PhantomData;

use scribe::Record;
use scribe::prelude::*;

/// Parameters of a [`Relay`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayArgs {
    /// The topics to gather: a regular expression matched from the start of
    /// each topic name. It must not match the relay's own topic.
    pub pattern: String,
}

/// Forwards records of type `T` from every topic matching a pattern.
#[derive(Debug)]
pub struct Relay<T: Record> {
    out: Publisher<T>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Record + Unpin> Actor for Relay<T> {
    type Context = Context<Self>;
}

impl<T: Record + Unpin> TopicActor for Relay<T> {
    type Output = T;
    type Args = RelayArgs;

    fn subscriptions(args: &RelayArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe_matching::<T>(args.pattern.as_str());
    }

    fn create(_: RelayArgs, out: Publisher<T>) -> Result<Self, ActorError> {
        Ok(Self {
            out,
            _type: PhantomData,
        })
    }
}

impl<T: Record + Unpin> Handler<Inbound<T>> for Relay<T> {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, m: Inbound<T>, _: &mut Context<Self>) -> Self::Result {
        self.out.forward(&m)?;
        Ok(())
    }
}
