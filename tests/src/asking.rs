//! Actors that ask and answer, for the asking tests on a broker and in the
//! simulator: an [`Asker`] that asks a [`Doubler`] to double each of its
//! jobs and writes each job's outcome on its own topic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use scribe::prelude::*;
use scribe::{Error, GatewayStats};

use crate::records::{Doubled, Number};

scribe::records! {
    /// What the asker writes on its one topic: its requests, and the
    /// outcome of each job.
    pub enum AskerOut {
        /// A request: the job to double.
        Ask(Number),
        /// A job's outcome.
        Done(Doubled),
    }
}

/// What the test sees of an asker instance.
#[derive(Clone, Default, Debug)]
pub struct Probe {
    /// Its requester's counts after the last continuation.
    pub stats: Arc<Mutex<GatewayStats>>,
    /// The most requests it had pending at once.
    pub max_pending: Arc<AtomicUsize>,
}

/// What an [`Asker`] is built from.
#[derive(Clone, Debug)]
pub struct AskerArgs {
    /// The topic of its jobs.
    pub jobs: String,
    /// The responder's topic, where the replies come.
    pub answers: String,
    /// How its requester waits.
    pub options: fn(RequesterOptions) -> RequesterOptions,
    /// What the test sees of it.
    pub probe: Probe,
}

/// For each job (a `Number`), asks the responder to double it and writes
/// the outcome as a `Doubled`: the reply's value, or -1 when the responder
/// refused, -2 when too many requests were pending, -3 on a timeout.
#[derive(Debug)]
pub struct Asker {
    out: Publisher<AskerOut>,
    requester: Requester<Number>,
    probe: Probe,
}

impl Actor for Asker {
    type Context = Context<Self>;
}

impl TopicActor for Asker {
    type Output = AskerOut;
    type Args = AskerArgs;
    fn subscriptions(args: &AskerArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Number>(args.jobs.as_str())
            .asks::<Number, Number>(args.answers.as_str());
    }
    fn create(args: AskerArgs, out: Publisher<AskerOut>) -> Result<Self, ActorError> {
        let requester = out.requester((args.options)(RequesterOptions::new(&args.answers)))?;
        Ok(Self {
            out,
            requester,
            probe: args.probe,
        })
    }
}

/// The outcome of `job`: a `Doubled` with `value`.
pub fn outcome(job: &Number, value: i64) -> AskerOut {
    AskerOut::from(Doubled {
        key: job.key.clone(),
        seq: job.seq,
        value,
    })
}

impl Handler<Inbound<Number>> for Asker {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, job: Inbound<Number>, ctx: &mut Context<Self>) -> Self::Result {
        let job = job.into_value();
        let pending = match self
            .out
            .ask(&self.requester, &job.key, AskerOut::from(job.clone()))
        {
            Ok(pending) => pending,
            Err(Error::TooManyPending { .. }) => {
                self.out.publish(&job.key, outcome(&job, -2))?;
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        self.probe
            .max_pending
            .fetch_max(self.requester.pending(), Ordering::SeqCst);
        ctx.spawn(
            pending
                .into_actor(self)
                .map(move |answered: Answered<Number>, act, _| {
                    let value = match answered.reply() {
                        Ok(reply) => reply.seq,
                        Err(Error::Refused { .. }) => -1,
                        Err(Error::AskTimedOut { .. }) => -3,
                        Err(other) => panic!("unexpected: {other}"),
                    };
                    act.out
                        .publish_answered(&answered, &job.key, outcome(&job, value))
                        .expect("published");
                    *act.probe.stats.lock().unwrap() = act.requester.stats();
                }),
        );
        Ok(())
    }
}

/// Answers each request on the asker's topic with twice its number, on
/// its own topic; fails every time on `fails_at`.
#[derive(Debug)]
pub struct Doubler {
    out: Publisher<Number>,
    fails_at: Option<i64>,
}

impl Actor for Doubler {
    type Context = Context<Self>;
}

impl TopicActor for Doubler {
    type Output = Number;
    type Args = (String, Option<i64>);
    fn subscriptions((asks, _): &(String, Option<i64>), subs: &mut Subscriptions<Self>) {
        subs.on::<Number>(asks.as_str());
    }
    fn create(
        (_, fails_at): (String, Option<i64>),
        out: Publisher<Number>,
    ) -> Result<Self, ActorError> {
        Ok(Self { out, fails_at })
    }
}

impl Handler<Inbound<Number>> for Doubler {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, ask: Inbound<Number>, _: &mut Context<Self>) -> Self::Result {
        if self.fails_at == Some(ask.seq) {
            return Err(format!("cannot double {}", ask.seq).into());
        }
        let reply = Number {
            key: ask.key.clone(),
            seq: ask.seq * 2,
        };
        self.out.publish(&ask.key, &reply)?;
        Ok(())
    }
}
