//! Dispatch one fetched record: decoding it by its topic's route, handing
//! it to the actor under a panic guard, and carrying out the actor's
//! failure policy when that fails (a retry, a dead letter, a restart or a
//! stop). Shared by the Kafka feed and the simulator's.
//!
//! Owns: what becomes of one record between its bytes and its handler's
//! outcome. May import: `error`, `wire`, `delivery`, `ops`, `publisher`,
//! `actor`. Imported by: `feed`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use actix::Context;

use crate::actor::{Deliver, Routes, TopicActor};
use crate::delivery::attempts::Failures;
use crate::delivery::consumed::{Fetched, Position};
use crate::delivery::failure::Failure;
use crate::delivery::inbound::Meta;
use crate::delivery::tracker::AckSlot;
use crate::error::chain as error_chain;
use crate::ops::stats::ActorStats;
use crate::publisher::{Cause, PublisherCore, Sending};
use crate::wire::codec::DecodeError;
use crate::wire::headers::{self, Headers};

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
        None => Err(crate::wire::codec::DecodeError::NoMarker),
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
        // An error reply a responder wrote for a gateway: no record for
        // anyone else. Passed over, counted.
        if raw.headers.get(headers::REPLY_ERROR).is_some() {
            ActorStats::add(&self.stats.skipped, 1);
            slot.done();
            return Next::Done;
        }
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
        // A type the actor does not handle, on a topic of several types.
        if record.skipped() {
            ActorStats::add(&self.stats.skipped, 1);
            self.failures.attempts.forget(&key);
            slot.done();
            return Next::Done;
        }
        let sent = self.core.sent();
        let timed = self
            .stats
            .timed
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(std::time::Instant::now);
        let outcome = deliver(
            self.actor,
            self.core,
            self.stats,
            act,
            ctx,
            &key,
            record,
            raw.headers.clone(),
            slot.clone(),
        );
        if let Some(started) = timed {
            self.stats.time(started, raw.timestamp);
        }
        self.follow(outcome, key, raw, attempt, sent, slot)
    }

    /// What follows a handler's outcome on the record at `key`, its
    /// `attempt`-th try, under the failure policy: done, a retry, a dead
    /// letter, a restart. `sent` is how many records the publisher had sent
    /// before the handler ran.
    fn follow(
        &self,
        outcome: std::result::Result<(), Failed>,
        key: Position,
        raw: &Fetched,
        attempt: u32,
        sent: u64,
        slot: &Arc<AckSlot>,
    ) -> Next {
        let policy = &self.failures.policy;
        match outcome {
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
                    actor = self.actor, topic = %key.topic, partition = key.partition,
                    offset = key.offset, attempt, %reason,
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
        let written = self
            .core
            .dead_letter(dead_letter, raw, &extra, slot)
            .and_then(|()| self.answer_failure(raw, reason, slot));
        match written {
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

    /// When `raw` is a gateway's request, answers it on the actor's own
    /// topic with an error reply saying `reason`: a record with no value,
    /// whose `causation_id` is the request's id and whose
    /// [`REPLY_ERROR`](headers::REPLY_ERROR) header says why. `slot`
    /// completes once it is acknowledged, as with the dead letter.
    fn answer_failure(
        &self,
        raw: &Fetched,
        reason: &str,
        slot: &Arc<AckSlot>,
    ) -> crate::Result<()> {
        if raw.headers.get(headers::EXPECTS_REPLY).is_none() {
            return Ok(());
        }
        let mut id_buf = [0u8; 36];
        let id: &str = crate::wire::clock::new_id()
            .hyphenated()
            .encode_lower(&mut id_buf);
        let now = crate::wire::clock::now();
        let time = humantime::format_rfc3339_millis(now).to_string();
        let outbound = headers::Outbound {
            id,
            ty: headers::REPLY_ERROR_TYPE,
            source: &self.core.source,
            time: &time,
            correlation_id: raw
                .headers
                .correlation_id()
                .or(raw.headers.id())
                .unwrap_or(id),
            causation_id: raw.headers.id(),
            traceparent: raw.headers.traceparent(),
            tracestate: raw.headers.tracestate(),
        };
        let extra = [(headers::REPLY_ERROR, reason.as_bytes())];
        let record = Sending {
            topic: &self.core.topic,
            partition: None,
            key: raw.key.as_deref(),
            value: Some(&[]),
            headers: headers::Outgoing::Answer(&outbound, &extra),
            timestamp: Some(crate::wire::clock::millis_of(now)),
        };
        self.core
            .send(record, &mut Vec::new(), slot)
            .inspect_err(|_| slot.fail())?;
        ActorStats::add(&self.stats.error_replies, 1);
        Ok(())
    }
}
/// The log target of the per-record `handle` span (see
/// `docs/semantics.md`): a `debug` span, so `RUST_LOG=info,scribe::handle=debug`
/// turns it on. At the default level nothing listens and it costs nothing.
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
    headers: Arc<Headers>,
    slot: Arc<AckSlot>,
) -> Result<(), Failed> {
    // A stable target, whatever module this lives in: users filter on it.
    // Debug, not info: a span per record that a subscriber at `info`
    // formats costs more than the rest of the handling (docs/BENCHMARKS.md).
    let span = tracing::debug_span!(
        target: HANDLE_TARGET,
        "handle",
        actor,
        topic = &*at.topic,
        partition = at.partition,
        offset = at.offset,
        ce_id = headers.id().unwrap_or(""),
    );
    let _entered = span.enter();
    // With tracing on, the OpenTelemetry span of this handling: the parent
    // of everything the handler publishes. Ended when dropped, at return.
    let mut traced = core
        .tracer
        .as_ref()
        .map(|tracer| tracer.handle(actor, at, &headers));
    core.begin(Cause {
        headers,
        slot: slot.clone(),
        trace: traced.as_ref().map(|span| span.parent),
    });
    if let Some(stores) = &core.stores {
        stores.begin(at);
    }
    let mut outcome = catch_unwind(AssertUnwindSafe(|| record.deliver(act, ctx)));
    core.end();
    match (&outcome, &core.stores) {
        // The state changes go with the outputs; a refused one fails the
        // record as a refused publish does.
        (Ok(Ok(())), Some(_)) => {
            if let Err(error) = core.write_changes(&slot) {
                outcome = Ok(Err(Box::new(error)));
            }
        }
        (_, Some(stores)) => stores.discard(),
        (_, None) => {}
    }
    match outcome {
        Ok(Ok(())) => {
            ActorStats::add(&stats.handled, 1);
            slot.done();
            Ok(())
        }
        Ok(Err(error)) => {
            ActorStats::add(&stats.handler_failures, 1);
            let reason = error_chain(&*error);
            stats.failed_with(&reason);
            if let Some(span) = &mut traced {
                span.failed(&reason);
            }
            tracing::error!(
                actor, topic = &*at.topic, partition = at.partition, offset = at.offset, %reason,
                "handler failed"
            );
            Err(Failed::Error(reason))
        }
        Err(panic) => {
            ActorStats::add(&stats.handler_failures, 1);
            let reason = panic_message(&*panic);
            stats.failed_with(&reason);
            if let Some(span) = &mut traced {
                span.failed(&reason);
            }
            tracing::error!(
                actor, topic = &*at.topic, partition = at.partition, offset = at.offset, %reason,
                "handler panicked; the actor restarts and the record is redelivered"
            );
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

#[cfg(all(test, feature = "testing"))]
mod tests;
