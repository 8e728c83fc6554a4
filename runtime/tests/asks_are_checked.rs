//! The request/reply pairing an actor declares (`Subscriptions::asks`) is
//! checked when the node is built, like a gateway's: the request is a type
//! the asker writes, the replies come on another actor's topic, and that
//! actor reads the asker's topic in a type that reads the request and
//! writes what the reply type reads.

use scribe::prelude::*;
use scribe::{Broker, Error};
use scribe_schemas::{Alarm, Command, HostMetrics};

scribe::records! {
    /// The asker's topic: its requests and its results.
    enum Asking {
        Ask(HostMetrics),
        Done(Command),
    }
}

/// What the asker declares.
#[derive(Clone, Copy)]
enum Declares {
    /// `HostMetrics` asked, `Alarm` expected back on `alarms`.
    Fitting,
    /// Asks with a type it does not write.
    UnwrittenRequest,
    /// Expects back a type the responder does not write.
    WrongReply,
    /// Expects the replies on its own topic.
    OwnTopic,
}

struct Asker {
    _out: Publisher<Asking>,
}

impl Actor for Asker {
    type Context = Context<Self>;
}

impl TopicActor for Asker {
    type Output = Asking;
    type Args = Declares;
    fn subscriptions(declares: &Declares, subs: &mut Subscriptions<Self>) {
        match declares {
            Declares::Fitting => subs.asks::<HostMetrics, Alarm>("alarms"),
            Declares::UnwrittenRequest => subs.asks::<Alarm, Alarm>("alarms"),
            Declares::WrongReply => subs.asks::<HostMetrics, Command>("alarms"),
            Declares::OwnTopic => subs.asks::<HostMetrics, Alarm>("asking"),
        };
    }
    fn create(_: Declares, out: Publisher<Asking>) -> Result<Self, ActorError> {
        Ok(Self { _out: out })
    }
}

/// Answers each `HostMetrics` on `asking` with an `Alarm` on its own topic,
/// or reads another topic when `deaf`.
struct Responder {
    _out: Publisher<Alarm>,
}

impl Actor for Responder {
    type Context = Context<Self>;
}

impl TopicActor for Responder {
    type Output = Alarm;
    type Args = bool;
    fn subscriptions(deaf: &bool, subs: &mut Subscriptions<Self>) {
        subs.on::<HostMetrics>(if *deaf { "elsewhere" } else { "asking" });
    }
    fn create(_: bool, out: Publisher<Alarm>) -> Result<Self, ActorError> {
        Ok(Self { _out: out })
    }
}

impl Handler<Inbound<HostMetrics>> for Responder {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, _: Inbound<HostMetrics>, _: &mut Context<Self>) -> Self::Result {
        Ok(())
    }
}

/// A broker nobody listens on: a build that tried to connect would fail.
fn build(declares: Declares, deaf: bool) -> Result<Node, Error> {
    Node::builder("n")
        .broker(Broker::bootstrap("127.0.0.1:1"))
        .actor::<Asker>("asker", "asking", declares)
        .actor::<Responder>("responder", "alarms", deaf)
        .build()
}

#[test]
fn a_fitting_pairing_is_accepted_and_described() {
    let node = build(Declares::Fitting, false).expect("fits");
    let asker = &node.actors()[0];
    assert_eq!(asker.asks.len(), 1);
    assert_eq!(asker.asks[0].replies, "alarms");
    assert_eq!(asker.asks[0].request_type, "scribe.metrics.HostMetrics");
    assert_eq!(asker.asks[0].reply_type, "scribe.control.Alarm");
}

#[test]
fn pairings_that_do_not_fit_are_refused_naming_what_is_wrong() {
    let refusal = |declares, deaf| build(declares, deaf).expect_err("refused").to_string();
    for (declares, deaf, expected) in [
        (
            Declares::UnwrittenRequest,
            false,
            "it asks with `scribe.control.Alarm`, which it does not write",
        ),
        (Declares::WrongReply, false, "scribe.control.Command"),
        (
            Declares::OwnTopic,
            false,
            "the replies come on the responder's topic, not the asker's own",
        ),
        (
            Declares::Fitting,
            true,
            "takes no `scribe.metrics.HostMetrics` from `asking`",
        ),
    ] {
        let why = refusal(declares, deaf);
        println!("{why}");
        assert!(why.contains("actor `asker`: asks"), "{why}");
        assert!(why.contains(expected), "expected `{expected}` in: {why}");
    }
}
