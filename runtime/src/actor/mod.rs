//! [`TopicActor`]: an actix actor that owns one topic and declares its subscriptions.

use std::fmt;

use actix::{Actor, Context, Handler};
use apache_avro::Schema;

use crate::codec::{DecodeError, Decoder, SchemaRegistry, full_name};
use crate::error::{ActorError, Result};
use crate::inbound::{Inbound, Meta};
use crate::publisher::Publisher;
use crate::record::Record;

mod pattern;
mod routes;

pub(crate) use pattern::pattern_regex;
pub(crate) use routes::Routes;

/// An actix actor that writes one record type to the one topic it owns and
/// reads the topics it subscribes to.
///
/// The node gives the actor its [`Publisher`] when it is created and
/// delivers every record of its subscriptions to its
/// `Handler<Inbound<T>>`, one at a time, in partition order.
///
/// ```
/// use actix::{Actor, Context, Handler};
/// use apache_avro::AvroSchema;
/// use scribe::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, AvroSchema)]
/// #[avro(namespace = "demo")]
/// struct Reading { sensor: String, value: f64 }
///
/// #[derive(Debug, Clone, Serialize, Deserialize, AvroSchema)]
/// #[avro(namespace = "demo")]
/// struct Alarm { sensor: String, value: f64 }
///
/// /// Raises an alarm for every reading above a threshold.
/// struct Threshold { limit: f64, out: Publisher<Alarm> }
///
/// impl Actor for Threshold { type Context = Context<Self>; }
///
/// impl TopicActor for Threshold {
///     type Output = Alarm;
///     type Args = f64;
///     fn subscriptions(_: &f64, subs: &mut Subscriptions<Self>) {
///         subs.subscribe::<Reading>("readings");
///     }
///     fn create(limit: f64, out: Publisher<Alarm>) -> Result<Self, ActorError> {
///         Ok(Self { limit, out })
///     }
/// }
///
/// impl Handler<Inbound<Reading>> for Threshold {
///     type Result = Result<(), ActorError>;
///     fn handle(&mut self, m: Inbound<Reading>, _: &mut Context<Self>) -> Self::Result {
///         if m.value > self.limit {
///             self.out.publish(&m.sensor, Alarm { sensor: m.sensor.clone(), value: m.value })?;
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait TopicActor: Actor<Context = Context<Self>> {
    /// The one record type this actor writes to its topic.
    type Output: Record;
    /// What the actor is built from; cloned for every (re)start.
    type Args: Clone + Send + Sync + 'static;

    /// Declares the topics this actor reads and the record type of each.
    ///
    /// The default declares none: a source actor that only publishes (from
    /// intervals started in `Actor::started`, for instance).
    fn subscriptions(args: &Self::Args, subs: &mut Subscriptions<Self>) {
        let _ = (args, subs);
    }

    /// Checks the arguments when the node is built, before anything
    /// touches Kafka, so that `scribe check` refuses what `create` would
    /// (an empty window, bounds in the wrong order). The error names the
    /// actor. The default accepts any arguments.
    fn validate(args: &Self::Args) -> Result<(), ActorError> {
        let _ = args;
        Ok(())
    }

    /// Builds the actor. Called again after every restart.
    fn create(args: Self::Args, out: Publisher<Self::Output>) -> Result<Self, ActorError>;
}

/// What a subscription reads: its topic and the Avro record type expected there.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionInfo {
    /// The subscribed topic, or with `pattern`, a regular expression that
    /// topic names must match from their start.
    pub topic: String,
    /// Whether `topic` is a pattern (see [`Subscriptions::subscribe_matching`]).
    pub pattern: bool,
    /// Avro full name of the record type the actor reads it as.
    pub record_type: String,
    /// The schema the actor reads it with.
    pub schema: Schema,
}

impl SubscriptionInfo {
    /// Whether this subscription reads `topic`: the same name, or a name
    /// its pattern matches (a pattern that does not compile reads nothing;
    /// [`NodeBuilder::build`](crate::NodeBuilder::build) refuses it).
    pub fn reads(&self, topic: &str) -> bool {
        if self.pattern {
            pattern_regex(&self.topic).is_ok_and(|re| re.is_match(topic))
        } else {
            self.topic == topic
        }
    }
}

type MakeRoute<A> = fn(&SchemaRegistry) -> Result<Box<dyn Route<A>>>;

pub(crate) struct Subscription<A> {
    pub(crate) info: SubscriptionInfo,
    pub(crate) make_route: MakeRoute<A>,
}

/// The subscriptions an actor declares in [`TopicActor::subscriptions`].
pub struct Subscriptions<A> {
    pub(crate) entries: Vec<Subscription<A>>,
}

impl<A> fmt::Debug for Subscriptions<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|s| &s.info))
            .finish()
    }
}

impl<A: TopicActor> Subscriptions<A> {
    pub(crate) fn of(args: &A::Args) -> Self {
        let mut subs = Self {
            entries: Vec::new(),
        };
        A::subscriptions(args, &mut subs);
        subs
    }

    /// Subscribes to `topic`, whose records are read as `T`.
    ///
    /// The actor must implement `Handler<Inbound<T>>` returning
    /// `Result<(), ActorError>`; without it this does not compile:
    ///
    /// ```compile_fail
    /// use apache_avro::AvroSchema;
    /// use scribe::prelude::*;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Clone, Serialize, Deserialize, AvroSchema)]
    /// struct Reading { value: f64 }
    ///
    /// struct Deaf { out: Publisher<Reading> }
    /// impl Actor for Deaf { type Context = Context<Self>; }
    /// impl TopicActor for Deaf {
    ///     type Output = Reading;
    ///     type Args = ();
    ///     fn subscriptions(_: &(), subs: &mut Subscriptions<Self>) {
    ///         subs.subscribe::<Reading>("readings"); // no Handler<Inbound<Reading>>
    ///     }
    ///     fn create(_: (), out: Publisher<Reading>) -> Result<Self, ActorError> {
    ///         Ok(Self { out })
    ///     }
    /// }
    /// ```
    pub fn subscribe<T: Record>(&mut self, topic: impl Into<String>) -> &mut Self
    where
        A: Handler<Inbound<T>, Result = Result<(), ActorError>>,
    {
        self.push::<T>(topic.into(), false)
    }

    /// Subscribes to every topic whose name matches `pattern`, a regular
    /// expression matched from the start of the name (`acapy-inbound-.*`),
    /// reading each as `T`. Topics created after the node starts are picked
    /// up at the consumer's next metadata refresh
    /// (`topic.metadata.refresh.interval.ms`).
    pub fn subscribe_matching<T: Record>(&mut self, pattern: impl Into<String>) -> &mut Self
    where
        A: Handler<Inbound<T>, Result = Result<(), ActorError>>,
    {
        self.push::<T>(pattern.into(), true)
    }

    fn push<T: Record>(&mut self, topic: String, pattern: bool) -> &mut Self
    where
        A: Handler<Inbound<T>, Result = Result<(), ActorError>>,
    {
        let schema = T::get_schema();
        self.entries.push(Subscription {
            info: SubscriptionInfo {
                topic,
                pattern,
                record_type: full_name(&schema),
                schema,
            },
            make_route: make_route::<A, T>,
        });
        self
    }

    /// What the actor subscribes to.
    pub fn infos(&self) -> impl Iterator<Item = &SubscriptionInfo> {
        self.entries.iter().map(|s| &s.info)
    }
}

fn make_route<A, T>(registry: &SchemaRegistry) -> Result<Box<dyn Route<A>>>
where
    T: Record,
    A: TopicActor + Handler<Inbound<T>, Result = Result<(), ActorError>>,
{
    Ok(Box::new(TypedRoute::<T> {
        decoder: Decoder::new(registry.clone())?,
    }))
}

/// Decodes one subscription's records for actor `A`.
pub(crate) trait Route<A: TopicActor>: Send + Sync {
    fn decode(
        &self,
        payload: &[u8],
        meta: Meta,
    ) -> std::result::Result<Box<dyn Deliver<A>>, DecodeError>;
}

struct TypedRoute<T: Record> {
    decoder: Decoder<T>,
}

impl<A, T> Route<A> for TypedRoute<T>
where
    T: Record,
    A: TopicActor + Handler<Inbound<T>, Result = Result<(), ActorError>>,
{
    fn decode(
        &self,
        payload: &[u8],
        meta: Meta,
    ) -> std::result::Result<Box<dyn Deliver<A>>, DecodeError> {
        let value = self.decoder.decode(payload)?;
        Ok(Box::new(Inbound::shared(value, meta)))
    }
}

/// A decoded record ready to be handed to actor `A`.
pub(crate) trait Deliver<A: TopicActor> {
    fn deliver(self: Box<Self>, act: &mut A, ctx: &mut Context<A>) -> Result<(), ActorError>;
}

impl<A, T> Deliver<A> for Inbound<T>
where
    T: Record,
    A: TopicActor + Handler<Inbound<T>, Result = Result<(), ActorError>>,
{
    fn deliver(self: Box<Self>, act: &mut A, ctx: &mut Context<A>) -> Result<(), ActorError> {
        <A as Handler<Inbound<T>>>::handle(act, *self, ctx)
    }
}
