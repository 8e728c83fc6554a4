//! Dispatch one fetched record: decoding it by its topic's route, handing
//! it to the actor under a panic guard, and carrying out the actor's
//! failure policy when that fails (a retry, a dead letter, a restart or a
//! stop). Shared by the Kafka feed and the simulator's.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use actix::Context;

use crate::actor::{Deliver, Meta, Routes, TopicActor};
use crate::codec::DecodeError;
use crate::consumed::{Fetched, Position};
use crate::error::chain as error_chain;
use crate::failure::Failure;
use crate::failures::Failures;
use crate::headers;
use crate::publisher::{Cause, PublisherCore};
use crate::stats::ActorStats;
use crate::tracker::AckSlot;

/// Decodes `raw`, the record at `at`, by its route.
pub(crate) fn decode<A: TopicActor>(routes: &Routes<A>, at: Position, raw: &Fetched) -> Decoded<A> {
    let meta = Meta {
        topic: at.topic.clone(),
        partition: at.partition,
        offset: at.offset,
        timestamp: raw.timestamp,
        key: raw.key.clone(),
        headers: raw.headers.clone(),
    };
    let body = match raw.route {
        Some(route) => routes.route(route).decode(&raw.value, meta),
        None => Err(crate::codec::DecodeError::NoMarker),
    };
    Decoded { at, body }
}

/// A consumed record, decoded (or not) for the actor's routes.
pub(crate) struct Decoded<A: TopicActor> {
    pub(crate) at: Position,
    pub(crate) body: Result<Box<dyn Deliver<A>>, DecodeError>,
}

/// What a feed does next with a record.
#[derive(Debug)]
pub(crate) enum Next {
    /// It is handled (or dead-lettered): go on.
    Done,
    /// Try it again after the wait; this will be attempt `attempt`.
    Retry { after: Duration, attempt: u32 },
    /// Rebuild the actor and deliver it again (a panic, a failure after
    /// publishing under exactly-once, a dead letter that cannot be written).
    Restart(Failure),
    /// The policy says stop the actor, without a restart.
    Halt(Failure),
}

/// The parts of a feed the policy needs.
pub(crate) struct Dispatch<'a, A: TopicActor> {
    pub(crate) actor: &'a str,
    pub(crate) core: &'a PublisherCore,
    pub(crate) stats: &'a ActorStats,
    pub(crate) routes: &'a Routes<A>,
    pub(crate) failures: &'a Failures,
}

impl<A: TopicActor> Dispatch<'_, A> {
    /// Decodes `raw` again, for a retry.
    pub(crate) fn redecode(&self, at: &Position, raw: &Fetched) -> Decoded<A> {
        decode(self.routes, at.clone(), raw)
    }

    /// Handles one record under the policy. `attempt` is 1 for the first
    /// try. `slot` completes once the record is handled or dead-lettered.
    pub(crate) fn process(
        &self,
        act: &mut A,
        ctx: &mut Context<A>,
        arrival: Decoded<A>,
        raw: &Fetched,
        attempt: u32,
        slot: &Arc<AckSlot>,
    ) -> Next {
        let key = arrival.at;
        let (topic, partition, offset) = (key.topic.clone(), key.partition, key.offset);
        let policy = &self.failures.policy;
        if attempt == 1
            && let Some((panics, reason)) = self.failures.attempts.get(&key)
            && panics > policy.retries
        {
            self.failures.attempts.forget(&key);
            return self.exhausted(&key, raw, &reason, panics, slot);
        }
        let record = match arrival.body {
            Ok(record) => record,
            Err(source) => {
                let error = crate::Error::Decode {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    source,
                };
                let reason = error_chain(&error);
                ActorStats::add(&self.stats.undecodable, 1);
                return self.exhausted(&key, raw, &reason, 0, slot);
            }
        };
        let sent = self.core.sent();
        match deliver(
            self.actor,
            self.core,
            self.stats,
            act,
            ctx,
            &key,
            record,
            slot.clone(),
        ) {
            Ok(()) => {
                self.failures.attempts.forget(&key);
                Next::Done
            }
            // Exactly-once: what the failed attempt published is in the
            // open transaction; only an abort takes it back, and the
            // record is tried again by the next instance, like a panic's.
            Err(Failed::Error(reason))
                if self.failures.transactional && self.core.sent() != sent =>
            {
                self.failures.attempts.panicked(key.clone(), &reason);
                Next::Restart(Failure::FailedAfterPublishing { at: key, reason })
            }
            Err(Failed::Error(reason)) if attempt <= policy.retries => {
                ActorStats::add(&self.stats.retried, 1);
                tracing::warn!(
                    actor = self.actor, %topic, partition, offset, attempt, %reason,
                    "handler failed; retrying the record"
                );
                Next::Retry {
                    after: policy.backoff_for(attempt),
                    attempt: attempt + 1,
                }
            }
            Err(Failed::Error(reason)) => self.exhausted(&key, raw, &reason, attempt, slot),
            Err(Failed::Panic(reason)) => {
                self.failures.attempts.panicked(key.clone(), &reason);
                Next::Restart(Failure::Panicked {
                    at: key,
                    message: reason,
                })
            }
        }
    }

    /// The record cannot be handled: dead-letter it, or stop.
    fn exhausted(
        &self,
        key: &Position,
        raw: &Fetched,
        reason: &str,
        attempts: u32,
        slot: &Arc<AckSlot>,
    ) -> Next {
        let (topic, partition, offset) = (&key.topic, key.partition, key.offset);
        let Some(dead_letter) = &self.failures.dead_letter else {
            return Next::Halt(Failure::Exhausted {
                at: key.clone(),
                attempts,
                reason: reason.to_owned(),
            });
        };
        let partition_text = partition.to_string();
        let offset_text = offset.to_string();
        let attempts_text = attempts.to_string();
        let extra = [
            (headers::DLQ_ERROR, reason.as_bytes()),
            (headers::DLQ_ATTEMPTS, attempts_text.as_bytes()),
            (headers::DLQ_ACTOR, self.actor.as_bytes()),
            (headers::DLQ_TOPIC, topic.as_bytes()),
            (headers::DLQ_PARTITION, partition_text.as_bytes()),
            (headers::DLQ_OFFSET, offset_text.as_bytes()),
        ];
        match self.core.dead_letter(dead_letter, raw, &extra, slot) {
            Ok(()) => {
                ActorStats::add(&self.stats.dead_lettered, 1);
                tracing::warn!(
                    actor = self.actor, %topic, partition, offset, attempts, %reason,
                    dead_letter_topic = %dead_letter,
                    "record dead-lettered"
                );
                // Handled, as far as the input is concerned: its offset
                // commits once the dead letter is acknowledged.
                slot.done();
                Next::Done
            }
            Err(error) => Next::Restart(Failure::NotDeadLettered {
                at: key.clone(),
                reason: error_chain(&error),
            }),
        }
    }
}
/// The log target of the per-record `handle` span (see
/// `docs/semantics.md`): `RUST_LOG=info,scribe::handle=warn` turns it off.
pub(crate) const HANDLE_TARGET: &str = "scribe::handle";

/// Why a handler did not handle its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failed {
    /// It returned an error (the text of its chain).
    Error(String),
    /// It panicked (the panic's message).
    Panic(String),
}

/// Hands one decoded record to the actor, linking what it publishes to the
/// record through `slot`, in a span naming the record. Shared by the Kafka
/// feed and the simulator's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn deliver<A: TopicActor>(
    actor: &str,
    core: &PublisherCore,
    stats: &ActorStats,
    act: &mut A,
    ctx: &mut Context<A>,
    at: &Position,
    record: Box<dyn Deliver<A>>,
    slot: Arc<AckSlot>,
) -> Result<(), Failed> {
    let ce_id = record.headers().id().map(str::to_owned);
    let correlation_id = record
        .headers()
        .correlation_id()
        .map(str::to_owned)
        .or_else(|| ce_id.clone());
    // A stable target, whatever module this lives in: users filter on it.
    let span = tracing::info_span!(
        target: HANDLE_TARGET,
        "handle",
        actor,
        topic = &*at.topic,
        partition = at.partition,
        offset = at.offset,
        ce_id = ce_id.as_deref().unwrap_or(""),
    );
    let _entered = span.enter();
    core.begin(Cause {
        ce_id,
        correlation_id,
        slot: slot.clone(),
    });
    let outcome = catch_unwind(AssertUnwindSafe(|| record.deliver(act, ctx)));
    core.end();
    match outcome {
        Ok(Ok(())) => {
            ActorStats::add(&stats.handled, 1);
            slot.done();
            Ok(())
        }
        Ok(Err(error)) => {
            ActorStats::add(&stats.handler_failures, 1);
            let reason = error_chain(&*error);
            tracing::error!(%reason, "handler failed");
            Err(Failed::Error(reason))
        }
        Err(panic) => {
            ActorStats::add(&stats.handler_failures, 1);
            let reason = panic_message(&*panic);
            tracing::error!(%reason, "handler panicked; the actor restarts and the record is redelivered");
            Err(Failed::Panic(reason))
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

/// One record through [`Dispatch::process`] under each failure policy
/// outcome, with the simulator's in-memory topics as the sink.
#[cfg(all(test, feature = "testing"))]
mod tests {
    use std::sync::Mutex;

    use actix::{Actor, Handler};
    use rand::SeedableRng;
    use scribe_schemas::MetricSummary;

    use super::*;
    use crate::codec::{Encoder, SchemaRegistry};
    use crate::failures::Attempts;
    use crate::headers::Headers;
    use crate::inbound::Inbound;
    use crate::policy::{Exhausted, FailurePolicy};
    use crate::publisher::{Publisher, Sink};
    use crate::sim::Outlet;
    use crate::sim::World;
    use crate::{ActorError, Subscriptions};

    /// Fails every record the way it is told to.
    struct Failing {
        out: Publisher<MetricSummary>,
        how: How,
    }

    #[derive(Clone, Copy)]
    enum How {
        Error,
        Panic,
        PublishThenError,
    }

    impl Actor for Failing {
        type Context = Context<Self>;
    }

    impl TopicActor for Failing {
        type Output = MetricSummary;
        type Args = How;
        fn subscriptions(_: &How, subs: &mut Subscriptions<Self>) {
            subs.subscribe::<MetricSummary>("in");
        }
        fn create(how: How, out: Publisher<MetricSummary>) -> Result<Self, ActorError> {
            Ok(Self { out, how })
        }
    }

    impl Handler<Inbound<MetricSummary>> for Failing {
        type Result = Result<(), ActorError>;
        fn handle(&mut self, m: Inbound<MetricSummary>, _: &mut Context<Self>) -> Self::Result {
            match self.how {
                How::Error => Err("no".into()),
                How::Panic => panic!("boom"),
                How::PublishThenError => {
                    self.out.publish("k", m.value())?;
                    Err("after publishing".into())
                }
            }
        }
    }

    struct Rig {
        world: Arc<Mutex<World>>,
        core: Arc<PublisherCore>,
        stats: Arc<ActorStats>,
        routes: Routes<Failing>,
        failures: Failures,
        actor: Failing,
        ctx: Context<Failing>,
    }

    impl Rig {
        fn new(how: How, policy: FailurePolicy, dead_letter: bool, transactional: bool) -> Self {
            let mut world = World::new(rand_chacha::ChaCha8Rng::seed_from_u64(0));
            let out = world.create_topic("out", 1);
            world.create_topic("out.dlq", 1);
            let world = Arc::new(Mutex::new(world));
            let stats = Arc::new(ActorStats::default());
            let sink = Sink::Sim(Outlet {
                world: world.clone(),
                topic: out,
                stats: stats.clone(),
            });
            let core = Arc::new(PublisherCore::new(sink, "out".into(), "n/failing".into()));
            let mut registry = SchemaRegistry::new();
            registry.register_type::<MetricSummary>();
            let mut routes = Routes::new();
            for sub in Subscriptions::<Failing>::of(&how).entries {
                routes
                    .add(&sub.info, (sub.make_route)(&registry).unwrap())
                    .unwrap();
            }
            let actor = Failing {
                out: Publisher::new(core.clone()).unwrap(),
                how,
            };
            Self {
                world,
                core,
                stats,
                routes,
                failures: Failures {
                    policy: Arc::new(policy),
                    attempts: Arc::new(Attempts::default()),
                    dead_letter: dead_letter.then(|| "out.dlq".into()),
                    transactional,
                    refused: Arc::default(),
                },
                actor,
                ctx: Context::new(),
            }
        }

        /// The record at in/0@7, and what it was fetched as.
        fn fetched(&self, value: &[u8]) -> (Decoded<Failing>, Fetched) {
            let raw = Fetched {
                key: Some(b"k".to_vec()),
                value: Arc::from(value),
                headers: Headers::default(),
                timestamp: Some(1),
                route: Some(0),
            };
            let at = Position::new("in".into(), 0, 7);
            (decode(&self.routes, at, &raw), raw)
        }

        fn process(&mut self, value: &[u8], attempt: u32, slot: &Arc<AckSlot>) -> Next {
            let (decoded, raw) = self.fetched(value);
            let dispatch = Dispatch {
                actor: "failing",
                core: &self.core,
                stats: &self.stats,
                routes: &self.routes,
                failures: &self.failures,
            };
            dispatch.process(&mut self.actor, &mut self.ctx, decoded, &raw, attempt, slot)
        }

        fn dead_letters(&self) -> Vec<Headers> {
            let world = crate::sim::lock(&self.world);
            let index = world.index["out.dlq"];
            world.logs[index].partitions[0]
                .iter()
                .map(|r| r.headers.clone())
                .collect()
        }
    }

    fn summary() -> Vec<u8> {
        let value = MetricSummary {
            host: "h".into(),
            metric: "m".into(),
            window_start_ms: 0,
            window_end_ms: 1,
            count: 1,
            min: 0.0,
            max: 0.0,
            mean: 0.0,
            p95: 0.0,
        };
        let mut bytes = Vec::new();
        Encoder::<MetricSummary>::new()
            .unwrap()
            .encode(&value, &mut bytes)
            .unwrap();
        bytes
    }

    fn retries(retries: u32) -> FailurePolicy {
        FailurePolicy {
            retries,
            ..FailurePolicy::default()
        }
    }

    #[test]
    fn a_handler_error_is_retried_then_dead_lettered_and_its_slot_completes() {
        let mut rig = Rig::new(How::Error, retries(2), true, false);
        let slot = AckSlot::new();
        let value = summary();
        for attempt in 1..=2 {
            let next = rig.process(&value, attempt, &slot);
            assert!(
                matches!(next, Next::Retry { attempt: a, .. } if a == attempt + 1),
                "{next:?}"
            );
        }
        assert!(matches!(rig.process(&value, 3, &slot), Next::Done));
        let letters = rig.dead_letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].get(headers::DLQ_ATTEMPTS), Some(&b"3"[..]));
        assert_eq!(letters[0].get(headers::DLQ_OFFSET), Some(&b"7"[..]));
        assert_eq!(letters[0].get(headers::DLQ_ERROR), Some(&b"no"[..]));
        assert_eq!(rig.stats.snapshot().retried, 2);
        // Only the handler's own count held the slot: it is complete.
        let mut tracker = crate::tracker::OffsetTracker::default();
        tracker.track(&Position::new("in".into(), 0, 7), slot);
        assert!(tracker.collect().offsets.is_some());
    }

    #[test]
    fn an_undecodable_record_is_dead_lettered_without_calling_the_handler() {
        let mut rig = Rig::new(How::Panic, retries(3), true, false);
        let next = rig.process(b"not avro", 1, &AckSlot::new());
        assert!(matches!(next, Next::Done), "{next:?}");
        let letters = rig.dead_letters();
        assert_eq!(letters[0].get(headers::DLQ_ATTEMPTS), Some(&b"0"[..]));
        assert_eq!(rig.stats.snapshot().undecodable, 1);
        assert_eq!(rig.stats.snapshot().handler_failures, 0);
    }

    #[test]
    fn a_panic_restarts_and_a_record_that_keeps_panicking_is_dead_lettered() {
        let mut rig = Rig::new(How::Panic, retries(1), true, false);
        let value = summary();
        for _ in 0..2 {
            // Each restart hands the record over again as a first attempt.
            let next = rig.process(&value, 1, &AckSlot::new());
            assert!(
                matches!(&next, Next::Restart(r) if r.to_string().contains("in/0@7: boom")),
                "{next:?}"
            );
        }
        let next = rig.process(&value, 1, &AckSlot::new());
        assert!(matches!(next, Next::Done), "{next:?}");
        let letters = rig.dead_letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].get(headers::DLQ_ATTEMPTS), Some(&b"2"[..]));
    }

    #[test]
    fn without_a_dead_letter_topic_an_exhausted_record_stops_the_actor() {
        let policy = FailurePolicy {
            then: Exhausted::Stop,
            ..retries(0)
        };
        let mut rig = Rig::new(How::Error, policy, false, false);
        let next = rig.process(&summary(), 1, &AckSlot::new());
        assert!(
            matches!(&next, Next::Halt(r) if r.to_string().contains("cannot handle in/0@7 after 1 attempts")),
            "{next:?}"
        );
        assert!(rig.dead_letters().is_empty());
    }

    #[test]
    fn under_exactly_once_a_failure_after_publishing_restarts_instead_of_retrying() {
        let mut rig = Rig::new(How::PublishThenError, retries(3), true, true);
        let next = rig.process(&summary(), 1, &AckSlot::new());
        assert!(
            matches!(&next, Next::Restart(r) if r.to_string().contains("after publishing")),
            "{next:?}"
        );
    }
}
