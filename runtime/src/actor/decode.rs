//! How a subscription's records become handler calls: a [`Route`] per
//! subscription decodes a record (single-object Avro, the actor's own
//! function for a topic written outside scribe, or any type as JSON) into
//! something to [`Deliver`] to the actor; a [`SwitchRoute`] picks the
//! binding of each record on a topic of several types.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, Context, Handler};

use super::info::{Binding, SubscriptionInfo};
use crate::delivery::inbound::{Inbound, Meta};
use crate::error::{ActorError, Result};
use crate::wire::codec::{DecodeError, Decoder, Fingerprint, SchemaRegistry, full_name};
use crate::wire::record::Record;
use crate::wire::records::AnyRecord;

pub(super) fn make_route<A, T>(registry: &SchemaRegistry) -> Result<Box<dyn Route<A>>>
where
    T: Record,
    A: Actor<Context = Context<A>> + Handler<Inbound<T>, Result = Result<(), ActorError>>,
{
    Ok(Box::new(DecodeRoute(Decoder::<T>::new(registry.clone())?)))
}

pub(super) fn make_any_route<A>(registry: &SchemaRegistry) -> Result<Box<dyn Route<A>>>
where
    A: Actor<Context = Context<A>> + Handler<Inbound<AnyRecord>, Result = Result<(), ActorError>>,
{
    Ok(Box::new(DecodeRoute(AsJson(registry.clone()))))
}

/// Decodes one subscription's records for actor `A`.
pub(crate) trait Route<A: Actor<Context = Context<A>>>: Send + Sync {
    fn decode(
        &self,
        payload: &[u8],
        meta: Meta,
    ) -> std::result::Result<Box<dyn Deliver<A>>, DecodeError>;
}

/// Turns a value's bytes into what a subscription hands its actor.
trait Decode: Send + Sync {
    type Value: 'static;
    fn decode(&self, payload: &[u8]) -> std::result::Result<Self::Value, DecodeError>;
}

/// Single-object Avro, resolved to the subscription's type.
impl<T: Record> Decode for Decoder<T> {
    type Value = T;
    fn decode(&self, payload: &[u8]) -> std::result::Result<T, DecodeError> {
        Decoder::decode(self, payload)
    }
}

/// Turns a value written outside scribe into a `T`, or says why not.
pub(super) type ForeignFn<T> = dyn Fn(&[u8]) -> std::result::Result<T, String> + Send + Sync;

/// A topic written outside scribe, read with the actor's own function.
pub(super) struct Foreign<T>(pub(super) Arc<ForeignFn<T>>);

impl<T: Record> Decode for Foreign<T> {
    type Value = T;
    fn decode(&self, payload: &[u8]) -> std::result::Result<T, DecodeError> {
        (self.0)(payload).map_err(DecodeError::Foreign)
    }
}

/// Any record whose writer schema the node knows, as JSON.
struct AsJson(SchemaRegistry);

impl Decode for AsJson {
    type Value = AnyRecord;
    fn decode(&self, payload: &[u8]) -> std::result::Result<AnyRecord, DecodeError> {
        let (record_type, value) = crate::wire::codec::decode_json(&self.0, payload)?;
        Ok(AnyRecord { record_type, value })
    }
}

/// The route of one subscription: its decoding, then its handler.
pub(super) struct DecodeRoute<D>(pub(super) D);

impl<A, D> Route<A> for DecodeRoute<D>
where
    D: Decode,
    A: Actor<Context = Context<A>> + Handler<Inbound<D::Value>, Result = Result<(), ActorError>>,
{
    fn decode(
        &self,
        payload: &[u8],
        meta: Meta,
    ) -> std::result::Result<Box<dyn Deliver<A>>, DecodeError> {
        let value = self.0.decode(payload)?;
        Ok(Box::new(Inbound::shared(value, meta)))
    }
}

/// The routes of one topic that carries several record types: a record
/// goes to the binding of its type, else to the longest prefix of its
/// type's name, else it is skipped (or dead-lettered, when the actor asked).
pub(crate) struct SwitchRoute<A: Actor<Context = Context<A>>> {
    registry: SchemaRegistry,
    routes: Vec<Box<dyn Route<A>>>,
    /// Each type binding: its full name and route.
    typed: Vec<(String, usize)>,
    /// Each prefix binding and its route, longest first.
    prefixes: Vec<(String, usize)>,
    /// Where a record goes, by its writer's fingerprint, for every schema
    /// the node knows: decided once, so that a record costs one lookup
    /// (no name is made or compared per record).
    known: HashMap<Fingerprint, Target>,
    dead_letter_unhandled: bool,
}

/// Where records of one writer schema go.
enum Target {
    /// To this route.
    Route(usize),
    /// Nowhere: a type no binding takes, by its full name.
    Unhandled(Arc<str>),
}

impl<A: Actor<Context = Context<A>>> SwitchRoute<A> {
    pub(crate) fn new(registry: &SchemaRegistry, dead_letter_unhandled: bool) -> Self {
        Self {
            registry: registry.clone(),
            routes: Vec::new(),
            typed: Vec::new(),
            prefixes: Vec::new(),
            known: HashMap::new(),
            dead_letter_unhandled,
        }
    }

    /// Adds the route of one binding.
    pub(crate) fn add(&mut self, info: &SubscriptionInfo, route: Box<dyn Route<A>>) {
        let index = self.routes.len();
        self.routes.push(route);
        match &info.binding {
            Binding::Prefix(prefix) => {
                let at = self
                    .prefixes
                    .iter()
                    .position(|(p, _)| p.len() < prefix.len())
                    .unwrap_or(self.prefixes.len());
                self.prefixes.insert(at, (prefix.clone(), index));
            }
            // Bindings of a whole topic never share it with others.
            Binding::Type | Binding::Every | Binding::Foreign => {
                self.typed.push((info.record_type.clone(), index));
            }
        }
    }

    /// Decides, for every schema the node knows, where its records go.
    pub(crate) fn finish(mut self) -> Self {
        let known = self
            .registry
            .iter()
            .map(|(fingerprint, schema)| {
                let name = full_name(schema);
                let target = match self.named(&name) {
                    Some(index) => Target::Route(index),
                    None => Target::Unhandled(name.into()),
                };
                (fingerprint, target)
            })
            .collect();
        self.known = known;
        self
    }

    /// The route of records of type `name`.
    fn named(&self, name: &str) -> Option<usize> {
        let typed = self.typed.iter().find(|(n, _)| n == name);
        match typed {
            Some((_, index)) => Some(*index),
            None => self
                .prefixes
                .iter()
                .find(|(prefix, _)| name.starts_with(prefix.as_str()))
                .map(|(_, index)| *index),
        }
    }

    fn unhandled(&self, name: &str) -> std::result::Result<Box<dyn Deliver<A>>, DecodeError> {
        if self.dead_letter_unhandled {
            return Err(DecodeError::Unhandled(name.to_owned()));
        }
        Ok(Box::new(Skipped))
    }
}

impl<A: Actor<Context = Context<A>>> Route<A> for SwitchRoute<A> {
    fn decode(
        &self,
        payload: &[u8],
        meta: Meta,
    ) -> std::result::Result<Box<dyn Deliver<A>>, DecodeError> {
        let (fingerprint, _) = self.registry.split(payload)?;
        match self.known.get(&fingerprint) {
            Some(Target::Route(index)) => self.routes[*index].decode(payload, meta),
            Some(Target::Unhandled(name)) => self.unhandled(name),
            None => {
                // Not known when the route was built: a schema the
                // registry server named since, by its own name; else what
                // the writer says it is.
                let fetched = self.registry.get(&fingerprint).map(full_name);
                let name = fetched.as_deref().or(meta.headers.ce_type());
                match name {
                    Some(name) => match self.named(name) {
                        Some(index) => self.routes[index].decode(payload, meta),
                        None => self.unhandled(name),
                    },
                    None => Err(DecodeError::UnknownFingerprint(fingerprint)),
                }
            }
        }
    }
}

/// A record of a type the actor does not handle, passed over on purpose.
struct Skipped;

impl<A: Actor<Context = Context<A>>> Deliver<A> for Skipped {
    fn deliver(self: Box<Self>, _: &mut A, _: &mut Context<A>) -> Result<(), ActorError> {
        Ok(())
    }

    fn skipped(&self) -> bool {
        true
    }
}

/// A decoded record ready to be handed to actor `A`.
pub(crate) trait Deliver<A: Actor<Context = Context<A>>> {
    fn deliver(self: Box<Self>, act: &mut A, ctx: &mut Context<A>) -> Result<(), ActorError>;

    /// Whether the record is passed over rather than handled.
    fn skipped(&self) -> bool {
        false
    }
}

impl<A, T> Deliver<A> for Inbound<T>
where
    T: 'static,
    A: Actor<Context = Context<A>> + Handler<Inbound<T>, Result = Result<(), ActorError>>,
{
    fn deliver(self: Box<Self>, act: &mut A, ctx: &mut Context<A>) -> Result<(), ActorError> {
        <A as Handler<Inbound<T>>>::handle(act, *self, ctx)
    }
}
