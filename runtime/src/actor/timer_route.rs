//! How a timer that came due reaches its actor's handler: the key decoded
//! as the set's key type, the timer taken out of its store (the handler
//! may set it again), and the actor's `Handler<Fired<K>>` called.

use std::sync::Arc;

use actix::{Actor, Context, Handler};
use apache_avro::reader::datum::GenericDatumReader;

use super::decode::Deliver;
use crate::error::{ActorError, Error, Result};
use crate::state::Fired;
use crate::state::stores::Stores;
use crate::wire::record::Record;

/// A timer to hand over: its set's store, its key (as the store keeps
/// it), when it was due, and its partition.
pub(crate) struct Due {
    pub(crate) stores: Arc<Stores>,
    pub(crate) index: usize,
    pub(crate) key: Vec<u8>,
    pub(crate) at_ms: i64,
    pub(crate) partition: i32,
}

/// Builds the message of a timer of one set.
type Fire<A> = fn(Due) -> Result<Box<dyn Deliver<A>>>;

/// The timers of one set an actor declares, and how they reach it.
pub(crate) struct TimerRoute<A> {
    /// The set's name (its store's).
    pub(crate) name: String,
    pub(crate) fire: Fire<A>,
}

impl<A: Actor<Context = Context<A>>> TimerRoute<A> {
    /// The route of set `name`, keyed by `K`.
    pub(crate) fn of<K: Record>(name: String) -> Self
    where
        A: Handler<Fired<K>, Result = std::result::Result<(), ActorError>>,
    {
        Self {
            name,
            fire: fire::<A, K>,
        }
    }
}

impl<A: Actor<Context = Context<A>>> Clone for TimerRoute<A> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            fire: self.fire,
        }
    }
}

fn fire<A, K>(due: Due) -> Result<Box<dyn Deliver<A>>>
where
    K: Record,
    A: Actor<Context = Context<A>>
        + Handler<Fired<K>, Result = std::result::Result<(), ActorError>>,
{
    let spec = &due.stores.specs()[due.index];
    let broken = |reason: String| Error::State {
        actor: due.stores.actor().to_owned(),
        store: spec.info.name.clone(),
        reason,
    };
    let key = GenericDatumReader::builder(&spec.info.key_schema)
        .build()
        .and_then(|reader| reader.read_deser::<K>(&mut due.key.as_slice()))
        .map_err(|e| broken(format!("a timer's key does not decode: {e}")))?;
    let fired = Fired {
        timers: spec.info.name.clone(),
        key,
        at_ms: due.at_ms,
        partition: due.partition,
    };
    Ok(Box::new(Firing { due, fired }))
}

/// A timer on its way to its handler.
struct Firing<K> {
    due: Due,
    fired: Fired<K>,
}

impl<A, K> Deliver<A> for Firing<K>
where
    K: 'static,
    A: Actor<Context = Context<A>>
        + Handler<Fired<K>, Result = std::result::Result<(), ActorError>>,
{
    fn deliver(
        self: Box<Self>,
        act: &mut A,
        ctx: &mut Context<A>,
    ) -> std::result::Result<(), ActorError> {
        let Firing { due, fired } = *self;
        // Fired: gone, unless the handler sets it again.
        due.stores.set(due.index, due.key, None)?;
        <A as Handler<Fired<K>>>::handle(act, fired, ctx)
    }
}
