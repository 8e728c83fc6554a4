//! The single-writer rule is checked when a node is built, before anything
//! touches Kafka: the error names the topic and the actors involved.

use scribe::prelude::*;
use scribe::{Broker, Error};
use scribe_schemas::{Alarm, HostMetrics};

struct Writer {
    _out: Publisher<Alarm>,
}

impl Actor for Writer {
    type Context = Context<Self>;
}

impl TopicActor for Writer {
    type Output = Alarm;
    type Args = Option<String>;
    fn subscriptions(input: &Option<String>, subs: &mut Subscriptions<Self>) {
        if let Some(input) = input {
            subs.subscribe::<HostMetrics>(input.as_str());
        }
    }
    fn create(_: Option<String>, out: Publisher<Alarm>) -> Result<Self, ActorError> {
        Ok(Self { _out: out })
    }
}

impl Handler<Inbound<HostMetrics>> for Writer {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, _: Inbound<HostMetrics>, _: &mut Context<Self>) -> Self::Result {
        Ok(())
    }
}

/// A broker nobody listens on: a build that tried to connect would hang or fail.
fn unreachable() -> Broker {
    Broker::bootstrap("127.0.0.1:1")
}

#[test]
fn two_actors_owning_one_topic_are_refused_naming_both() {
    let err = Node::builder("n")
        .broker(unreachable())
        .actor::<Writer>("first-alarm", "alarms", None)
        .actor::<Writer>("second-alarm", "alarms", None)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::TopicOwnedTwice { topic, first, second }
            if topic == "alarms" && first == "first-alarm" && second == "second-alarm"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "topic `alarms` is owned by actor `first-alarm` and claimed again by actor `second-alarm`"
    );
}

#[test]
fn an_actor_subscribing_to_its_own_output_is_refused() {
    let err = Node::builder("n")
        .broker(unreachable())
        .actor::<Writer>("loop", "alarms", Some("alarms".into()))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::SubscribesToOwnOutput { actor, topic } if actor == "loop" && topic == "alarms"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "actor `loop` subscribes to its own output topic `alarms`"
    );
}

#[test]
fn duplicate_actor_names_are_refused() {
    let err = Node::builder("n")
        .actor::<Writer>("same", "a", None)
        .actor::<Writer>("same", "b", None)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "actor name `same` is used twice");
}

#[test]
fn illegal_topic_names_are_refused() {
    let err = Node::builder("n")
        .actor::<Writer>("w", "no spaces allowed", None)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid topic name `no spaces allowed`"),
        "{err}"
    );
}

#[test]
fn a_valid_topology_describes_its_actors() {
    let node = Node::builder("n")
        .actor::<Writer>("alarm", "alarms", Some("metrics".into()))
        .build()
        .unwrap();
    let actors = node.actors();
    assert_eq!(actors.len(), 1);
    assert_eq!(actors[0].output, "alarms");
    assert_eq!(actors[0].output_type, "scribe.control.Alarm");
    assert_eq!(actors[0].subscriptions[0].topic, "metrics");
    assert_eq!(
        actors[0].subscriptions[0].record_type,
        "scribe.metrics.HostMetrics"
    );
}

#[test]
fn a_subscriber_that_cannot_read_the_owners_records_is_refused_naming_both() {
    // `reader` reads `alarms` as HostMetrics, but `writer` writes Alarm there.
    let err = Node::builder("n")
        .actor::<Writer>("writer", "alarms", None)
        .actor::<Writer>("reader", "other", Some("alarms".into()))
        .build()
        .unwrap_err();
    let Error::SchemaMismatch(m) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (m.topic.as_str(), m.writer.as_str(), m.reader.as_str()),
        ("alarms", "writer", "reader")
    );
    assert_eq!(
        (m.writer_type.as_str(), m.reader_type.as_str()),
        ("scribe.control.Alarm", "scribe.metrics.HostMetrics")
    );
    assert!(err.to_string().starts_with(
        "actor `reader` reads topic `alarms` as `scribe.metrics.HostMetrics` but its owner `writer` writes `scribe.control.Alarm`"
    ), "{err}");
}

#[test]
fn subscriptions_to_topics_nobody_owns_are_reported_as_external() {
    let node = Node::builder("n")
        .actor::<Writer>("alarm", "alarms", Some("metrics".into()))
        .build()
        .unwrap();
    let external = scribe::topology::check(&node.actors()).unwrap();
    assert_eq!(external.len(), 1);
    assert_eq!(
        (external[0].topic.as_str(), external[0].reader.as_str()),
        ("metrics", "alarm")
    );
}

/// Reads alarms from every topic matching a pattern.
struct Gatherer {
    _out: Publisher<Alarm>,
}

impl Actor for Gatherer {
    type Context = Context<Self>;
}

impl TopicActor for Gatherer {
    type Output = Alarm;
    type Args = String;
    fn subscriptions(pattern: &String, subs: &mut Subscriptions<Self>) {
        subs.subscribe_matching::<Alarm>(pattern.as_str());
    }
    fn create(_: String, out: Publisher<Alarm>) -> Result<Self, ActorError> {
        Ok(Self { _out: out })
    }
}

impl Handler<Inbound<Alarm>> for Gatherer {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, _: Inbound<Alarm>, _: &mut Context<Self>) -> Self::Result {
        Ok(())
    }
}

#[test]
fn a_pattern_matching_the_actors_own_topic_is_refused() {
    let err = Node::builder("n")
        .actor::<Gatherer>("gather", "alarms.all", "alarms\\..*".into())
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::SubscribesToOwnOutput { actor, .. } if actor == "gather"),
        "{err:?}"
    );
}

/// Writes host metrics (a source).
struct MetricsWriter {
    _out: Publisher<HostMetrics>,
}

impl Actor for MetricsWriter {
    type Context = Context<Self>;
}

impl TopicActor for MetricsWriter {
    type Output = HostMetrics;
    type Args = ();
    fn create(_: (), out: Publisher<HostMetrics>) -> Result<Self, ActorError> {
        Ok(Self { _out: out })
    }
}

#[test]
fn a_pattern_is_checked_against_the_schemas_of_every_topic_it_matches() {
    // Every topic the pattern matches carries alarms: accepted.
    let ok = Node::builder("n")
        .actor::<Writer>("writer", "alarms.x", None)
        .actor::<Gatherer>("gather", "gathered", "alarms\\..*".into())
        .build();
    assert!(ok.is_ok(), "{ok:?}");
    // One matched topic carries host metrics, which cannot be read as alarms.
    let err = Node::builder("n")
        .actor::<Writer>("writer", "alarms.x", None)
        .actor::<MetricsWriter>("sampler", "alarms.metrics", ())
        .actor::<Gatherer>("gather", "gathered", "alarms\\..*".into())
        .build()
        .unwrap_err();
    let Error::SchemaMismatch(m) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (m.topic.as_str(), m.writer.as_str(), m.reader.as_str()),
        ("alarms.metrics", "sampler", "gather")
    );
}

#[test]
fn an_invalid_pattern_is_refused() {
    let err = Node::builder("n")
        .actor::<Gatherer>("gather", "gathered", "alarms(".into())
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid subscription pattern `alarms(`"),
        "{err}"
    );
}

#[test]
fn patterns_matching_no_owned_topic_are_reported_external_and_not_created() {
    let node = Node::builder("n")
        .actor::<Gatherer>("gather", "gathered", "inbound-.*".into())
        .build()
        .unwrap();
    let external = scribe::topology::check(&node.actors()).unwrap();
    assert_eq!(external[0].topic, "inbound-.*");
    assert!(node.actors()[0].subscriptions[0].pattern);
    assert_eq!(
        node.topics().keys().collect::<Vec<_>>(),
        ["gathered", "gathered.dlq"],
        "a pattern names no topic to create (the other is the actor's dead-letter topic)"
    );
}
