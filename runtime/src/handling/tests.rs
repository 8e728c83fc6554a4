//! One record through [`Dispatch::process`](super::Dispatch::process)
//! under each failure policy outcome, with the simulator's in-memory
//! topics as the sink.

use std::sync::Mutex;

use actix::{Actor, Handler};
use scribe_schemas::MetricSummary;

use super::*;
use crate::delivery::attempts::Attempts;
use crate::delivery::inbound::Inbound;
use crate::delivery::policy::{Exhausted, FailurePolicy};
use crate::publisher::{Publisher, Sink};
use crate::sim::Outlet;
use crate::sim::World;
use crate::wire::codec::{Encoder, SchemaRegistry};
use crate::wire::headers::Headers;
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
        let mut world = World::new(0);
        let out = world.create_topic("out", 1);
        world.create_topic("out.dlq", 1);
        let world = Arc::new(Mutex::new(world));
        let stats = Arc::new(ActorStats::default());
        let sink = Sink::Dyn(Box::new(Outlet {
            world: world.clone(),
            instance: 0,
            topic: out,
            stats: stats.clone(),
            actor: 0,
            group: 0,
            transactional: false,
        }));
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
            key: Some(Arc::from(&b"k"[..])),
            value: Arc::from(value),
            headers: Arc::default(),
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

    /// The dead letters, once the broker acknowledged what was sent.
    fn dead_letters(&self) -> Vec<Headers> {
        self.core
            .flush(std::time::Duration::ZERO)
            .expect("the simulated broker answers");
        let world = crate::sim::lock(&self.world);
        let index = world.index["out.dlq"];
        world.logs[index].partitions[0]
            .iter()
            .map(|r| Headers::clone(&r.headers))
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
    let mut tracker = crate::delivery::tracker::OffsetTracker::default();
    tracker.track(&Position::new("in".into(), 0, 7), slot);
    assert!(
        tracker.collect().offsets.is_empty(),
        "the slot waits for the dead letter's acknowledgement"
    );
    let letters = rig.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].get(headers::DLQ_ATTEMPTS), Some(&b"3"[..]));
    assert_eq!(letters[0].get(headers::DLQ_OFFSET), Some(&b"7"[..]));
    assert_eq!(letters[0].get(headers::DLQ_ERROR), Some(&b"no"[..]));
    assert_eq!(rig.stats.snapshot().retried, 2);
    // The handler returned and the dead letter was acknowledged.
    assert!(!tracker.collect().offsets.is_empty());
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
