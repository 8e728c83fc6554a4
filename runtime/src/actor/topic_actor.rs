//! [`TopicActor`]: an actix actor that owns one topic, and the
//! [`Subscriptions`] it declares.

use std::fmt;
use std::sync::Arc;

use actix::{Actor, Context, Handler};
use apache_avro::Schema;

use super::decode::{DecodeRoute, Foreign, ForeignFn, Route, make_any_route, make_route};
use super::info::{AskInfo, Binding, SubscriptionInfo};
use crate::delivery::inbound::Inbound;
use crate::error::{ActorError, Result};
use crate::publisher::Publisher;
use crate::state::StoreInfo;
use crate::state::stores::ValueCheck;
use crate::wire::codec::{SchemaRegistry, full_name};
use crate::wire::record::Record;
use crate::wire::records::{AnyRecord, Records};

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
    /// What this actor writes to its topic: one [`Record`] type, or a
    /// closed set of them made with [`records!`](crate::records).
    type Output: Records;
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

    /// How this kind of actor writes its records' metadata when the node
    /// sets nothing for the actor itself (`envelope` in its `[[actors]]`
    /// section, [`NodeBuilder::envelope`](crate::NodeBuilder::envelope)):
    /// a kind whose readers are outside scribe (a JSON mirror) wants
    /// CloudEvents headers whatever the node's default is. The default,
    /// `None`, takes the node's default.
    fn envelope() -> Option<crate::Envelope> {
        None
    }

    /// Builds the actor. Called again after every restart.
    fn create(args: Self::Args, out: Publisher<Self::Output>) -> Result<Self, ActorError>;
}

type MakeRoute<A> = Box<dyn Fn(&SchemaRegistry) -> Result<Box<dyn Route<A>>> + Send + Sync>;

pub(crate) struct Subscription<A> {
    pub(crate) info: SubscriptionInfo,
    pub(crate) make_route: MakeRoute<A>,
}

/// The subscriptions an actor declares in [`TopicActor::subscriptions`].
pub struct Subscriptions<A> {
    pub(crate) entries: Vec<Subscription<A>>,
    /// Topics whose records of unhandled types are dead-lettered rather
    /// than skipped.
    pub(crate) dead_letter_unhandled: Vec<String>,
    /// The requests the actor declares it asks.
    pub(crate) asks: Vec<AskInfo>,
    /// The stores it declares (its timer sets among them).
    pub(crate) stores: Vec<StoreDecl>,
    /// Its timer sets, and how their timers reach it.
    pub(crate) timers: Vec<super::TimerRoute<A>>,
}

/// A store an actor declares: what it is (its changelog not named yet),
/// and how its values are checked once the node's schemas are known.
pub(crate) struct StoreDecl {
    pub(crate) info: StoreInfo,
    pub(crate) check: fn(&SchemaRegistry) -> Result<ValueCheck>,
    /// A timer set's clock.
    pub(crate) clock: Option<crate::state::TimerClock>,
    /// How its keys and values are read from outside the actor.
    pub(crate) json: fn(&SchemaRegistry) -> Result<crate::state::json::StoreJson>,
}

/// Checks values as `V`, resolved from their writers' schemas in `registry`.
fn value_check<V: Record>(registry: &SchemaRegistry) -> Result<ValueCheck> {
    let decoder = crate::wire::codec::Decoder::<V>::new(registry.clone())?;
    Ok(Arc::new(move |bytes| decoder.decode(bytes).map(drop)))
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
            dead_letter_unhandled: Vec::new(),
            asks: Vec::new(),
            stores: Vec::new(),
            timers: Vec::new(),
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
        self.push::<T>(topic.into(), false, Binding::Every)
    }

    /// Reads `topic`, written by a client that is not scribe (the JSON
    /// events of another system, a legacy producer's bytes), turning each
    /// value into `T` with `decode`. A value `decode` refuses is
    /// dead-lettered at once, with the reason it gives, without retries
    /// (as an undecodable Avro record is). `scribe check` checks no schema
    /// against the topic: its writer is outside.
    ///
    /// The standard `json-in.<record>` actors are built on it.
    pub fn subscribe_foreign<T, F>(&mut self, topic: impl Into<String>, decode: F) -> &mut Self
    where
        T: Record,
        F: Fn(&[u8]) -> std::result::Result<T, String> + Send + Sync + 'static,
        A: Handler<Inbound<T>, Result = Result<(), ActorError>>,
    {
        self.push_foreign(topic.into(), false, decode)
    }

    /// [`subscribe_foreign`](Self::subscribe_foreign) for every topic whose
    /// name matches `pattern` (see
    /// [`subscribe_matching`](Self::subscribe_matching)).
    pub fn subscribe_foreign_matching<T, F>(
        &mut self,
        pattern: impl Into<String>,
        decode: F,
    ) -> &mut Self
    where
        T: Record,
        F: Fn(&[u8]) -> std::result::Result<T, String> + Send + Sync + 'static,
        A: Handler<Inbound<T>, Result = Result<(), ActorError>>,
    {
        self.push_foreign(pattern.into(), true, decode)
    }

    fn push_foreign<T, F>(&mut self, topic: String, pattern: bool, decode: F) -> &mut Self
    where
        T: Record,
        F: Fn(&[u8]) -> std::result::Result<T, String> + Send + Sync + 'static,
        A: Handler<Inbound<T>, Result = Result<(), ActorError>>,
    {
        let decode: Arc<ForeignFn<T>> = Arc::new(decode);
        self.entry::<T>(
            topic,
            pattern,
            Binding::Foreign,
            Box::new(move |_| Ok(Box::new(DecodeRoute(Foreign(decode.clone()))))),
        )
    }

    /// Declares that the actor asks with `Q` (a type it writes) and awaits
    /// `R` on `replies`, the responder's topic, through a
    /// [`Requester`](crate::Requester). Nothing is read here: the requester
    /// reads the replies. Declared, the pairing is checked like a
    /// gateway's (the owner of `replies` must read the actor's topic in a
    /// type that reads `Q`, and write a type `R` reads), and `scribe graph`
    /// draws the reply arrow.
    pub fn asks<Q: Record, R: Record>(&mut self, replies: impl Into<String>) -> &mut Self {
        let (request, reply) = (Q::get_schema(), R::get_schema());
        self.asks.push(AskInfo {
            replies: replies.into(),
            request_type: full_name(&request),
            request,
            reply_type: full_name(&reply),
            reply,
        });
        self
    }

    /// Declares store `name`: keyed state with keys of type `K` and values
    /// of type `V` (see [`Store`](crate::Store)), which the actor takes in
    /// `create` with [`Publisher::store`](crate::Publisher::store). Its
    /// changelog, `<output>.<name>.changelog`, is a compacted topic the
    /// actor owns, created with as many partitions as its input.
    ///
    /// The name is 1 to 64 of `[a-z0-9_-]`, unique within the actor. An
    /// actor with stores reads named topics (no patterns), all with one
    /// partition count: state is sharded by input partition.
    pub fn store<K: Record, V: Record>(&mut self, name: impl Into<String>) -> &mut Self {
        let (key_schema, value_schema) = (K::get_schema(), V::get_schema());
        self.stores.push(StoreDecl {
            info: StoreInfo {
                name: name.into(),
                changelog: String::new(),
                key_type: type_name(&key_schema),
                key_schema,
                value_type: type_name(&value_schema),
                value_schema,
            },
            check: value_check::<V>,
            clock: None,
            json: crate::state::json::store_json::<K, V>,
        });
        self
    }

    /// Declares timer set `name`: at most one timer per key of type `K`,
    /// on `clock` (see [`Timers`](crate::state::Timers)), which the actor
    /// takes in `create` with [`Publisher::timers`](crate::Publisher::timers)
    /// and handles as [`Fired`](crate::state::Fired) messages. The timers
    /// are kept in a store of that name, with a changelog of its own, so
    /// they survive what state survives and move with their partition.
    pub fn timers<K: Record>(
        &mut self,
        name: impl Into<String>,
        clock: crate::state::TimerClock,
    ) -> &mut Self
    where
        A: Handler<crate::state::Fired<K>, Result = Result<(), ActorError>>,
    {
        let name = name.into();
        self.store::<K, crate::state::due::TimerDue>(name.clone());
        if let Some(decl) = self.stores.last_mut() {
            decl.clock = Some(clock);
        }
        self.timers.push(super::TimerRoute::of::<K>(name));
        self
    }

    /// Handles the records of type `T` on `topic`, a topic that may carry
    /// several types (its owner's output is a [`records!`](crate::records)
    /// set). Call it once per type the actor cares about; records are told
    /// apart by their writer's schema (its fingerprint, then its full name,
    /// then the `ce_type` header), so an older or newer version of `T` is
    /// resolved as with [`subscribe`](Self::subscribe). Records of a type
    /// no binding of the actor takes are skipped and counted
    /// ([`StatsSnapshot::skipped`](crate::StatsSnapshot::skipped)), unless
    /// [`dead_letter_unhandled`](Self::dead_letter_unhandled) says
    /// otherwise. `scribe check` refuses a `T` the owner does not write.
    pub fn on<T: Record>(&mut self, topic: impl Into<String>) -> &mut Self
    where
        A: Handler<Inbound<T>, Result = Result<(), ActorError>>,
    {
        self.push::<T>(topic.into(), false, Binding::Type)
    }

    /// Handles the records on `topic` whose type's full name starts with
    /// `prefix` (`module.test.` takes `module.test.Started` and
    /// `module.test.Returned`), as [`AnyRecord`]s: the type's name and the
    /// value as JSON, read with the writer's schema, which the node must
    /// know (a type one of its actors reads or writes, or one given to
    /// [`NodeBuilder::schema`](crate::NodeBuilder::schema)). A binding by type
    /// ([`on`](Self::on)) wins over a prefix; a longer prefix wins over a
    /// shorter one.
    pub fn on_prefix(&mut self, topic: impl Into<String>, prefix: impl Into<String>) -> &mut Self
    where
        A: Handler<Inbound<AnyRecord>, Result = Result<(), ActorError>>,
    {
        let prefix = prefix.into();
        self.entries.push(Subscription {
            info: SubscriptionInfo {
                topic: topic.into(),
                pattern: false,
                record_type: format!("{prefix}*"),
                schema: Schema::Null,
                binding: Binding::Prefix(prefix),
            },
            make_route: Box::new(make_any_route::<A>),
        });
        self
    }

    /// Dead-letters the records on `topic` of a type no binding of the
    /// actor takes ([`on`](Self::on), [`on_prefix`](Self::on_prefix)),
    /// with the reason, instead of skipping them.
    pub fn dead_letter_unhandled(&mut self, topic: impl Into<String>) -> &mut Self {
        self.dead_letter_unhandled.push(topic.into());
        self
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
        self.push::<T>(pattern.into(), true, Binding::Every)
    }

    fn push<T: Record>(&mut self, topic: String, pattern: bool, binding: Binding) -> &mut Self
    where
        A: Handler<Inbound<T>, Result = Result<(), ActorError>>,
    {
        self.entry::<T>(topic, pattern, binding, Box::new(make_route::<A, T>))
    }

    /// Adds a subscription whose records are read as `T` by `make_route`.
    fn entry<T: Record>(
        &mut self,
        topic: String,
        pattern: bool,
        binding: Binding,
        make_route: MakeRoute<A>,
    ) -> &mut Self {
        let schema = T::get_schema();
        self.entries.push(Subscription {
            info: SubscriptionInfo {
                topic,
                pattern,
                record_type: full_name(&schema),
                schema,
                binding,
            },
            make_route,
        });
        self
    }

    /// What the actor subscribes to.
    pub fn infos(&self) -> impl Iterator<Item = &SubscriptionInfo> {
        self.entries.iter().map(|s| &s.info)
    }
}

/// A store's key or value type as people write it: a named type's full
/// name, a primitive's name without the quotes of its canonical form.
fn type_name(schema: &apache_avro::Schema) -> String {
    full_name(schema).trim_matches('"').to_owned()
}
