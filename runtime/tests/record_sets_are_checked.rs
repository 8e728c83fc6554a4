//! A topic of several record types (a `records!` set) is checked against
//! every reader when the node is built: a binding by type needs that type
//! in the set, readable; a prefix needs a type it matches; a reader of
//! every record cannot take a topic of several types.

use scribe::prelude::*;
use scribe::{Broker, Error};
use scribe_schemas::{Alarm, HostMetrics, MetricSummary};

scribe::records! {
    /// What the writer writes: two types.
    #[derive(Debug)]
    enum Observation {
        Alarm(Alarm),
        Sample(HostMetrics),
    }
}

/// Two variants of one type, written by hand (`records!` refuses it at
/// compile time, with two `From<Alarm>`): readers could not tell them apart.
#[derive(Debug)]
#[allow(dead_code)] // only its schemas are checked; no value is made
enum Twice {
    First(Alarm),
}

impl Records for Twice {
    fn schemas() -> Vec<apache_avro::Schema> {
        vec![
            <Alarm as apache_avro::AvroSchema>::get_schema(),
            <Alarm as apache_avro::AvroSchema>::get_schema(),
        ]
    }
    fn encoders() -> scribe::Result<scribe::codec::Encoders> {
        let mut encoders = scribe::codec::Encoders::new();
        encoders.push::<Alarm>()?;
        encoders.push::<Alarm>()?;
        Ok(encoders)
    }
    fn encode(
        &self,
        encoders: &scribe::codec::Encoders,
        out: &mut Vec<u8>,
    ) -> Result<usize, apache_avro::Error> {
        let Self::First(alarm) = self;
        encoders.encode(0, alarm, out)
    }
}

struct Writer<T: Records> {
    _out: Publisher<T>,
}

impl<T: Records + Unpin> Actor for Writer<T> {
    type Context = Context<Self>;
}

impl<T: Records + Unpin> TopicActor for Writer<T> {
    type Output = T;
    type Args = ();
    fn create(_: (), out: Publisher<T>) -> Result<Self, ActorError> {
        Ok(Self { _out: out })
    }
}

/// How the reader binds the writer's topic, `observations`.
#[derive(Clone)]
enum Bind {
    Every,
    OnAlarm,
    OnSummary,
    Prefix(&'static str),
    OnAlarmTwice,
    EveryAndOn,
}

struct Reader {
    _out: Publisher<MetricSummary>,
}

impl Actor for Reader {
    type Context = Context<Self>;
}

impl TopicActor for Reader {
    type Output = MetricSummary;
    type Args = Bind;
    fn subscriptions(bind: &Bind, subs: &mut Subscriptions<Self>) {
        let topic = "observations";
        match bind {
            Bind::Every => {
                subs.subscribe::<Alarm>(topic);
            }
            Bind::OnAlarm => {
                subs.on::<Alarm>(topic);
            }
            Bind::OnSummary => {
                subs.on::<Alarm>(topic).on::<MetricSummary>(topic);
            }
            Bind::Prefix(prefix) => {
                subs.on_prefix(topic, *prefix);
            }
            Bind::OnAlarmTwice => {
                subs.on::<Alarm>(topic).on::<Alarm>(topic);
            }
            Bind::EveryAndOn => {
                subs.subscribe::<Alarm>(topic).on::<HostMetrics>(topic);
            }
        }
    }
    fn create(_: Bind, out: Publisher<MetricSummary>) -> Result<Self, ActorError> {
        Ok(Self { _out: out })
    }
}

macro_rules! ignores {
    ($($t:ty),+) => {$(
        impl Handler<Inbound<$t>> for Reader {
            type Result = Result<(), ActorError>;
            fn handle(&mut self, _: Inbound<$t>, _: &mut Context<Self>) -> Self::Result {
                Ok(())
            }
        }
    )+};
}
ignores!(Alarm, HostMetrics, MetricSummary, AnyRecord);

/// A broker nobody listens on: a build that tried to connect would hang or fail.
fn build(bind: Bind) -> Result<Node, Error> {
    Node::builder("n")
        .broker(Broker::bootstrap("127.0.0.1:1"))
        .actor::<Writer<Observation>>("writer", "observations", ())
        .actor::<Reader>("reader", "summaries", bind)
        .build()
}

#[test]
fn bindings_to_types_the_writer_writes_are_accepted() {
    for bind in [
        Bind::OnAlarm,
        Bind::Prefix("scribe."),
        Bind::Prefix("scribe.metrics.HostMetrics"),
    ] {
        let node = build(bind).expect("valid topology");
        let writer = node
            .actors()
            .into_iter()
            .find(|a| a.name == "writer")
            .unwrap();
        assert_eq!(
            writer.output_type,
            "scribe.control.Alarm | scribe.metrics.HostMetrics"
        );
        assert_eq!(writer.output_schemas.len(), 2);
    }
}

#[test]
fn a_reader_of_every_record_is_refused_a_topic_of_several_types() {
    let err = build(Bind::Every).unwrap_err();
    assert_eq!(
        err.to_string(),
        "actor `reader` reads topic `observations` as `scribe.control.Alarm` but its owner \
         `writer` writes `scribe.control.Alarm | scribe.metrics.HostMetrics`, which that cannot \
         read: the topic carries 2 record types (`scribe.control.Alarm`, \
         `scribe.metrics.HostMetrics`); take each with `Subscriptions::on` or `on_prefix`"
    );
}

#[test]
fn a_binding_to_a_type_the_writer_does_not_write_is_refused() {
    let err = build(Bind::OnSummary).unwrap_err();
    assert!(
        matches!(&err, Error::SchemaMismatch(m) if m.reader_type == "scribe.metrics.MetricSummary"),
        "{err:?}"
    );
    assert!(
        err.to_string().ends_with(
            "no type it writes has that name (it writes `scribe.control.Alarm`, \
             `scribe.metrics.HostMetrics`)"
        ),
        "{err}"
    );
}

#[test]
fn a_prefix_that_matches_no_type_is_refused() {
    let err = build(Bind::Prefix("module.test.")).unwrap_err();
    assert!(
        err.to_string()
            .contains("no type it writes has a name that starts with `module.test.`"),
        "{err}"
    );
}

#[test]
fn binding_one_type_twice_or_every_record_and_a_type_is_refused() {
    for bind in [Bind::OnAlarmTwice, Bind::EveryAndOn] {
        let err = build(bind).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateSubscription { actor, topic }
                if actor == "reader" && topic == "observations"),
            "{err:?}"
        );
    }
}

#[test]
fn a_set_naming_one_type_twice_is_refused() {
    let err = Node::builder("n")
        .broker(Broker::bootstrap("127.0.0.1:1"))
        .actor::<Writer<Twice>>("writer", "observations", ())
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "actor `writer`: output: its record types name `scribe.control.Alarm` twice; readers \
         tell them apart by name"
    );
}

/// `encoding = "confluent"` is checked when the node is built, before any
/// registry or broker is reached: it needs a registry, an Avro output, and
/// a subject per type when the topic carries several.
#[test]
fn confluent_encoding_needs_a_registry_and_a_subject_per_type() {
    use scribe::{Encoding, RegistrySettings, SubjectStrategy};
    let writer = |strategy: Option<SubjectStrategy>, registry: bool| {
        let mut builder = Node::builder("n")
            .broker(Broker::bootstrap("127.0.0.1:1"))
            .actor::<Writer<Observation>>("writer", "observations", ())
            .encoding("writer", Encoding::Confluent);
        if let Some(strategy) = strategy {
            builder = builder.subject_strategy("writer", strategy);
        }
        if registry {
            builder = builder.schema_registry(RegistrySettings::new("http://127.0.0.1:1"));
        }
        builder.build()
    };
    let refusal = |result: Result<Node, Error>| result.expect_err("refused").to_string();
    let why = refusal(writer(Some(SubjectStrategy::RecordName), false));
    assert!(
        why.contains("actor `writer`: encoding") && why.contains("[registry]"),
        "{why}"
    );
    let why = refusal(writer(None, true));
    assert!(why.contains("several record types"), "{why}");
    assert!(why.contains("record_name or topic_record_name"), "{why}");
    for strategy in [
        SubjectStrategy::RecordName,
        SubjectStrategy::TopicRecordName,
    ] {
        let node = writer(Some(strategy), true).expect("one subject per type");
        let subjects: Vec<String> = node.actors()[0]
            .subjects()
            .into_iter()
            .map(|(subject, _)| subject)
            .collect();
        let expected = match strategy {
            SubjectStrategy::RecordName => {
                ["scribe.control.Alarm", "scribe.metrics.HostMetrics"].map(String::from)
            }
            _ => [
                "observations-scribe.control.Alarm",
                "observations-scribe.metrics.HostMetrics",
            ]
            .map(String::from),
        };
        assert_eq!(subjects, expected);
    }
    // JSON has no schema to register.
    let why = refusal(
        Node::builder("n")
            .broker(Broker::bootstrap("127.0.0.1:1"))
            .actor::<Writer<AnyRecord>>("json", "mirror", ())
            .encoding("json", Encoding::Confluent)
            .schema_registry(RegistrySettings::new("http://127.0.0.1:1"))
            .build(),
    );
    assert!(why.contains("writes JSON"), "{why}");
    // Credentials belong in username and password, not in the URL; the
    // refusal does not repeat them.
    let why = refusal(
        Node::builder("n")
            .broker(Broker::bootstrap("127.0.0.1:1"))
            .schema_registry(RegistrySettings::new("https://me:hunter2@registry:8081"))
            .build(),
    );
    assert!(
        why.contains("registry") && !why.contains("hunter2"),
        "{why}"
    );
}
