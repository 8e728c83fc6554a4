//! Several record types on one topic, routed by type and by name, as the
//! systems scribe replaces route `test.return` to the handler bound to
//! `return` under `test`.
//!
//! A [`Runner`] runs each [`RunTest`] it reads and writes what happened on
//! the one topic it owns: a [`Started`], then a [`Returned`] (the
//! [`TestEvent`] set). Two actors read that topic:
//! - the [`Scoreboard`] binds a handler to `Returned` only
//!   ([`Subscriptions::on`]); the `Started` records are skipped and counted;
//! - the [`Audit`] binds one handler to every name under `module.test.`
//!   ([`Subscriptions::on_prefix`]) and reads each record as JSON with its
//!   type's name.
//!
//! ```text
//! test.requests ──▶ runner ──test.events (Started | Returned)──▶ scoreboard (on Returned) ──test.scores
//!                                     └──────────────────────────▶ audit (on module.test.*) ──test.audit
//! ```

use std::collections::HashMap;

use apache_avro::AvroSchema;
use scribe::prelude::*;
use serde::{Deserialize, Serialize};

/// Please run a test of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "module.test")]
pub struct RunTest {
    /// The run's id.
    pub run: String,
    /// The suite it belongs to; a suite named `...-failing` fails.
    pub suite: String,
}

/// A test run began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "module.test")]
pub struct Started {
    /// The run's id.
    pub run: String,
    /// Its suite.
    pub suite: String,
}

/// A test run returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "module.test")]
pub struct Returned {
    /// The run's id.
    pub run: String,
    /// Its suite.
    pub suite: String,
    /// Whether it passed.
    pub passed: bool,
}

scribe::records! {
    /// What the runner writes on its topic: two record types, each with
    /// its own schema and `ce_type`.
    #[derive(Debug, Clone, PartialEq)]
    pub enum TestEvent {
        /// A run began.
        Started(Started),
        /// A run returned.
        Returned(Returned),
    }
}

/// A suite's score so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "module.score")]
pub struct Score {
    /// The suite.
    pub suite: String,
    /// Runs that passed.
    pub passed: i64,
    /// Runs that failed.
    pub failed: i64,
}

/// One line of the audit trail: an event's name and its fields as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "module.audit")]
pub struct AuditLine {
    /// The event's type (`module.test.Started`).
    pub event: String,
    /// Its value, as JSON text.
    pub fields: String,
}

/// The topics of the system.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Run requests, from outside.
    pub requests: String,
    /// The runner's events: `Started` and `Returned`.
    pub events: String,
    /// The scoreboard's scores.
    pub scores: String,
    /// The audit trail.
    pub audit: String,
}

impl Topics {
    /// The topics `{prefix}.requests`, `{prefix}.events`, `{prefix}.scores`
    /// and `{prefix}.audit`.
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            requests: format!("{prefix}.requests"),
            events: format!("{prefix}.events"),
            scores: format!("{prefix}.scores"),
            audit: format!("{prefix}.audit"),
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Self::prefixed("test")
    }
}

/// Runs tests: for each request, a `Started` then a `Returned`, both on
/// its one topic, under the request's run id as key (so in order).
#[derive(Debug)]
pub struct Runner {
    out: Publisher<TestEvent>,
}

impl Actor for Runner {
    type Context = Context<Self>;
}

impl TopicActor for Runner {
    type Output = TestEvent;
    type Args = Topics;
    fn subscriptions(topics: &Topics, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<RunTest>(topics.requests.as_str());
    }
    fn create(_: Topics, out: Publisher<TestEvent>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<RunTest>> for Runner {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<RunTest>, _: &mut Context<Self>) -> Self::Result {
        let (run, suite) = (m.run.clone(), m.suite.clone());
        self.out.publish(
            &run,
            TestEvent::from(Started {
                run: run.clone(),
                suite: suite.clone(),
            }),
        )?;
        let passed = !suite.ends_with("-failing");
        self.out.publish(
            &run,
            TestEvent::from(Returned {
                run: run.clone(),
                suite,
                passed,
            }),
        )?;
        Ok(())
    }
}

/// Keeps each suite's score from the `Returned` events; never sees a
/// `Started`. (Its tally lives in memory: a restart starts it again.)
#[derive(Debug)]
pub struct Scoreboard {
    out: Publisher<Score>,
    scores: HashMap<String, (i64, i64)>,
}

impl Actor for Scoreboard {
    type Context = Context<Self>;
}

impl TopicActor for Scoreboard {
    type Output = Score;
    type Args = Topics;
    fn subscriptions(topics: &Topics, subs: &mut Subscriptions<Self>) {
        subs.on::<Returned>(topics.events.as_str());
    }
    fn create(_: Topics, out: Publisher<Score>) -> Result<Self, ActorError> {
        Ok(Self {
            out,
            scores: HashMap::new(),
        })
    }
}

impl Handler<Inbound<Returned>> for Scoreboard {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Returned>, _: &mut Context<Self>) -> Self::Result {
        let (passed, failed) = self.scores.entry(m.suite.clone()).or_default();
        if m.passed {
            *passed += 1;
        } else {
            *failed += 1;
        }
        let score = Score {
            suite: m.suite.clone(),
            passed: *passed,
            failed: *failed,
        };
        self.out.publish(&m.suite, score)?;
        Ok(())
    }
}

/// Writes a line for every event under `module.test.`, whatever its type.
#[derive(Debug)]
pub struct Audit {
    out: Publisher<AuditLine>,
}

impl Actor for Audit {
    type Context = Context<Self>;
}

impl TopicActor for Audit {
    type Output = AuditLine;
    type Args = Topics;
    fn subscriptions(topics: &Topics, subs: &mut Subscriptions<Self>) {
        subs.on_prefix(topics.events.as_str(), "module.test.");
    }
    fn create(_: Topics, out: Publisher<AuditLine>) -> Result<Self, ActorError> {
        Ok(Self { out })
    }
}

impl Handler<Inbound<AnyRecord>> for Audit {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<AnyRecord>, _: &mut Context<Self>) -> Self::Result {
        let line = AuditLine {
            event: m.record_type.clone(),
            fields: m.value.to_string(),
        };
        self.out.publish(m.key().unwrap_or_default(), line)?;
        Ok(())
    }
}

/// Adds the runner, the scoreboard and the audit to `node`, on `topics`.
pub fn system(node: NodeBuilder, topics: &Topics) -> NodeBuilder {
    node.actor::<Runner>("runner", topics.events.as_str(), topics.clone())
        .actor::<Scoreboard>("scoreboard", topics.scores.as_str(), topics.clone())
        .actor::<Audit>("audit", topics.audit.as_str(), topics.clone())
}
