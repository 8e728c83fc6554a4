//! Carrying out an actor's [`FailurePolicy`] on the records it handles:
//! retries, dead letters, and which failures restart or stop it. Shared by
//! the Kafka feed and the simulator's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Context;

use crate::actor::{Meta, Routes, TopicActor};
use crate::feed::{Arrival, Failed, deliver};
use crate::headers::{self, Headers};
use crate::policy::FailurePolicy;
use crate::publisher::PublisherCore;
use crate::stats::ActorStats;
use crate::tracker::AckSlot;

/// A consumed record as it came: what a retry decodes again and what a
/// dead letter carries.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub(crate) key: Option<Vec<u8>>,
    /// Shared, so a retry or a dead letter copies no bytes.
    pub(crate) value: Arc<[u8]>,
    pub(crate) headers: Headers,
    pub(crate) timestamp: Option<i64>,
    /// The route that decodes it, if its topic has one.
    pub(crate) route: Option<usize>,
}

/// A record's coordinates.
type RecordKey = (Arc<str>, i32, i64);

/// Decodes `raw`, the record at `topic`/`partition`@`offset`, by its route.
pub(crate) fn decode<A: TopicActor>(
    routes: &Routes<A>,
    (topic, partition, offset): RecordKey,
    raw: &Raw,
) -> Arrival<A> {
    let meta = Meta {
        topic: topic.clone(),
        partition,
        offset,
        timestamp: raw.timestamp,
        key: raw.key.clone(),
        headers: raw.headers.clone(),
    };
    let body = match raw.route {
        Some(route) => routes.route(route).decode(&raw.value, meta),
        None => Err(crate::codec::DecodeError::NoMarker),
    };
    Arrival {
        topic,
        partition,
        offset,
        body,
    }
}

/// Failures per record that restarted the actor (panics, and under
/// exactly-once handler errors after publishing), kept by the supervisor
/// across restarts: a record that keeps failing that way is dead-lettered
/// once its retries are used.
/// Empty nearly always; `len` keeps the common case off the lock.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    panics: Mutex<HashMap<RecordKey, (u32, String)>>,
    len: AtomicUsize,
}

impl Attempts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RecordKey, (u32, String)>> {
        self.panics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The panics recorded for `key` so far, and the last one's message.
    fn get(&self, key: &RecordKey) -> Option<(u32, String)> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.lock().get(key).cloned()
    }

    /// Forgets `key` (it was handled or dead-lettered).
    fn forget(&self, key: &RecordKey) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut panics = self.lock();
        if panics.remove(key).is_some() {
            self.len.store(panics.len(), Ordering::Release);
        }
    }

    /// Counts a panic on `key`.
    fn panicked(&self, key: RecordKey, reason: &str) {
        let mut panics = self.lock();
        let entry = panics.entry(key).or_insert((0, String::new()));
        entry.0 += 1;
        entry.1 = reason.to_owned();
        self.len.store(panics.len(), Ordering::Release);
    }
}

/// What a feed does next with a record.
#[derive(Debug)]
pub(crate) enum Next {
    /// It is handled (or dead-lettered): go on.
    Done,
    /// Try it again after the wait; this will be attempt `attempt`.
    Retry { after: Duration, attempt: u32 },
    /// The handler panicked: rebuild the actor and deliver it again.
    Restart(String),
    /// The policy says stop the actor, without a restart.
    Halt(String),
}

/// An actor's failure policy, as its feeds carry it out.
#[derive(Debug, Clone)]
pub(crate) struct Failures {
    pub(crate) policy: Arc<FailurePolicy>,
    pub(crate) attempts: Arc<Attempts>,
    pub(crate) dead_letter: Option<Arc<str>>,
    /// Exactly-once: outputs and offsets commit in transactions, so a
    /// failed attempt that published anything cannot simply be retried.
    pub(crate) transactional: bool,
    /// Why the brokers refused the actor's writes for good (a missing
    /// permission, fenced by a newer instance), once they have: set by its
    /// producers, read by its supervisor, which then stops it for good.
    pub(crate) refused: Arc<std::sync::OnceLock<String>>,
}

impl Default for Failures {
    fn default() -> Self {
        Self {
            policy: Arc::new(FailurePolicy::default()),
            attempts: Arc::default(),
            dead_letter: None,
            transactional: false,
            refused: Arc::default(),
        }
    }
}

/// The parts of a feed the policy needs.
pub(crate) struct Handling<'a, A: TopicActor> {
    pub(crate) actor: &'a str,
    pub(crate) core: &'a PublisherCore,
    pub(crate) stats: &'a ActorStats,
    pub(crate) routes: &'a Routes<A>,
    pub(crate) failures: &'a Failures,
}

impl<A: TopicActor> Handling<'_, A> {
    /// Decodes `raw` again, for a retry.
    pub(crate) fn redecode(
        &self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        raw: &Raw,
    ) -> Arrival<A> {
        decode(self.routes, (topic.clone(), partition, offset), raw)
    }

    /// Handles one record under the policy. `attempt` is 1 for the first
    /// try. `slot` completes once the record is handled or dead-lettered.
    pub(crate) fn process(
        &self,
        act: &mut A,
        ctx: &mut Context<A>,
        arrival: Arrival<A>,
        raw: &Raw,
        attempt: u32,
        slot: &Arc<AckSlot>,
    ) -> Next {
        let (topic, partition, offset) = (arrival.topic.clone(), arrival.partition, arrival.offset);
        let key: RecordKey = (topic.clone(), partition, offset);
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
                let reason = crate::feed::error_chain(&error);
                ActorStats::add(&self.stats.undecodable, 1);
                return self.exhausted(&key, raw, &reason, 0, slot);
            }
        };
        let at = (&*topic, partition, offset);
        let sent = self.core.sent();
        match deliver(
            self.actor,
            self.core,
            self.stats,
            act,
            ctx,
            at,
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
                self.failures.attempts.panicked(key, &reason);
                Next::Restart(format!(
                    "handler failed on {topic}/{partition}@{offset} after publishing; \
                     the transaction is aborted: {reason}"
                ))
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
                self.failures.attempts.panicked(key, &reason);
                Next::Restart(format!(
                    "handler panicked on {topic}/{partition}@{offset}: {reason}"
                ))
            }
        }
    }

    /// The record cannot be handled: dead-letter it, or stop.
    fn exhausted(
        &self,
        key: &RecordKey,
        raw: &Raw,
        reason: &str,
        attempts: u32,
        slot: &Arc<AckSlot>,
    ) -> Next {
        let (topic, partition, offset) = (&key.0, key.1, key.2);
        let Some(dead_letter) = &self.failures.dead_letter else {
            return Next::Halt(format!(
                "cannot handle {topic}/{partition}@{offset} after {attempts} attempts: {reason}"
            ));
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
            Err(error) => Next::Restart(format!(
                "cannot dead-letter {topic}/{partition}@{offset}: {}",
                crate::feed::error_chain(&error)
            )),
        }
    }
}
