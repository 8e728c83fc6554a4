//! Test actors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use scribe::prelude::*;

use scribe::RunningNode;

use crate::records::Number;
use crate::{RawRecord, TestKafka};

/// How a [`Relay`] behaves.
#[derive(Debug, Clone, Default)]
pub struct RelayArgs {
    /// The topic it reads.
    pub input: String,
    /// How long each record takes to handle.
    pub delay: Duration,
    /// Panic the first time this sequence number is handled.
    pub panic_once_at: Option<i64>,
    /// Set once the panic happened (shared across restarts).
    pub panicked: Arc<AtomicBool>,
    /// Return an error when handling this sequence number, the first this
    /// many times (`u32::MAX`: every time).
    pub fail_at: Option<(i64, u32)>,
    /// Panic every time this sequence number is handled.
    pub panic_always_at: Option<i64>,
    /// Handler calls that failed on purpose so far (shared across restarts).
    pub failures: Arc<AtomicU32>,
    /// Publish, then return an error, the first time this sequence number
    /// is handled.
    pub fail_after_publishing_at: Option<i64>,
    /// Called when handling this sequence number, before publishing.
    pub hook: Hook,
    /// While above 1, return an error for every sequence number `n` with
    /// `n % outage == 1`: a dependency those records need is down.
    pub outage: Arc<AtomicI64>,
    /// The first time this sequence number is handled, publish it under a
    /// key larger than the producer accepts, ignore the refusal and return
    /// `Ok` (a careless handler).
    pub refused_once_at: Option<i64>,
    /// Return an error every time this sequence number is handled, and the
    /// first time, right after, panic outside the handler (in a timer of
    /// the actor's own, where no guard catches it).
    pub fail_then_panic_outside_at: Option<i64>,
}

/// Something a test does from inside a handler, at one sequence number.
#[derive(Clone, Default)]
pub struct Hook(pub Option<(i64, Arc<dyn Fn() + Send + Sync>)>);

impl Hook {
    /// Calls `f` when handling sequence number `seq`.
    pub fn at(seq: i64, f: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Some((seq, Arc::new(f))))
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Hook")
            .field(&self.0.as_ref().map(|(seq, _)| seq))
            .finish()
    }
}

impl RelayArgs {
    /// Reads `input`, nothing else special.
    pub fn reading(input: &str) -> Self {
        Self {
            input: input.to_owned(),
            ..Self::default()
        }
    }
}

/// Republishes every [`Number`] it reads, under the same key.
#[derive(Debug)]
pub struct Relay {
    args: RelayArgs,
    out: Publisher<Number>,
}

impl Actor for Relay {
    type Context = Context<Self>;
}

impl TopicActor for Relay {
    type Output = Number;
    type Args = RelayArgs;
    fn subscriptions(args: &RelayArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Number>(args.input.as_str());
    }
    fn create(args: RelayArgs, out: Publisher<Number>) -> Result<Self, ActorError> {
        Ok(Self { args, out })
    }
}

impl Handler<Inbound<Number>> for Relay {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Number>, ctx: &mut Context<Self>) -> Self::Result {
        if self.args.fail_then_panic_outside_at == Some(m.seq) {
            if !self.args.panicked.swap(true, Ordering::SeqCst) {
                ctx.run_later(Duration::ZERO, |_, _| {
                    panic!("injected panic outside a handler")
                });
            }
            return Err(format!("injected error at seq {}", m.seq).into());
        }
        if !self.args.delay.is_zero() {
            std::thread::sleep(self.args.delay);
        }
        if self.args.panic_once_at == Some(m.seq)
            && !self.args.panicked.swap(true, Ordering::SeqCst)
        {
            panic!("injected failure at seq {}", m.seq);
        }
        if self.args.panic_always_at == Some(m.seq) {
            self.args.failures.fetch_add(1, Ordering::SeqCst);
            panic!("injected panic at seq {}", m.seq);
        }
        if let Some((seq, hook)) = &self.args.hook.0
            && *seq == m.seq
        {
            hook();
        }
        let outage = self.args.outage.load(Ordering::SeqCst);
        if outage > 1 && m.seq % outage == 1 {
            return Err(format!("dependency of seq {} is down", m.seq).into());
        }
        if let Some((seq, times)) = self.args.fail_at
            && seq == m.seq
            && self.args.failures.fetch_add(1, Ordering::SeqCst) < times
        {
            return Err(format!("injected error at seq {seq}").into());
        }
        if self.args.refused_once_at == Some(m.seq)
            && self.args.failures.fetch_add(1, Ordering::SeqCst) == 0
        {
            let huge = vec![b'k'; 2_000_000];
            let refused = self.out.publish(&huge, m.value());
            assert!(refused.is_err(), "the producer refuses a 2 MB key");
            return Ok(());
        }
        self.out.publish(m.key().unwrap_or_default(), m.value())?;
        if self.args.fail_after_publishing_at == Some(m.seq)
            && self.args.failures.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Err(format!("injected error after publishing seq {}", m.seq).into());
        }
        Ok(())
    }
}

/// The numbers `seqs`, keyed `k0` to `k{keys - 1}` in turn.
pub fn keyed_numbers(seqs: std::ops::Range<i64>, keys: i64) -> impl Iterator<Item = Number> {
    seqs.map(move |seq| Number {
        key: format!("k{}", seq % keys),
        seq,
    })
}

/// Writes numbers to `topic`, each keyed by its key, and waits for them.
pub fn produce_numbers(kafka: &TestKafka, topic: &str, numbers: impl IntoIterator<Item = Number>) {
    let encoded = encode_numbers(numbers);
    let raw: Vec<_> = encoded
        .iter()
        .map(|(key, bytes)| (Some(key.as_str()), bytes.clone(), vec![]))
        .collect();
    kafka.produce_raw(topic, &raw);
}

/// Starts a node called `node` holding one [`Relay`].
pub async fn start_relay(
    kafka: &TestKafka,
    node: &str,
    actor: &str,
    output: &str,
    args: RelayArgs,
) -> RunningNode {
    kafka
        .node(node)
        .actor::<Relay>(actor, output, args)
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts")
}

/// Decodes records holding numbers.
pub fn numbers_in(records: &[RawRecord]) -> Vec<Number> {
    let decoder =
        scribe::codec::Decoder::<Number>::new(scribe::SchemaRegistry::new()).expect("schema");
    records
        .iter()
        .map(|r| decoder.decode(&r.value).expect("a number"))
        .collect()
}

/// Encodes numbers as single-object Avro, keyed by their key.
pub fn encode_numbers(numbers: impl IntoIterator<Item = Number>) -> Vec<(String, Vec<u8>)> {
    let encoder = scribe::codec::Encoder::<Number>::new().expect("schema");
    numbers
        .into_iter()
        .map(|n| {
            let mut bytes = Vec::new();
            encoder.encode(&n, &mut bytes).expect("encodes");
            (n.key, bytes)
        })
        .collect()
}

/// How a [`PayloadRelay`] behaves.
#[derive(Debug, Clone, Default)]
pub struct PayloadRelayArgs {
    /// The topic it reads.
    pub input: String,
    /// How long each record takes to handle.
    pub delay: Duration,
}

/// Republishes every [`Payload`](crate::records::Payload) it reads, one hop
/// further, under the same key, taking `delay` for each.
#[derive(Debug)]
pub struct PayloadRelay {
    delay: Duration,
    out: Publisher<crate::records::Payload>,
}

impl Actor for PayloadRelay {
    type Context = Context<Self>;
}

impl TopicActor for PayloadRelay {
    type Output = crate::records::Payload;
    type Args = PayloadRelayArgs;
    fn subscriptions(args: &PayloadRelayArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<crate::records::Payload>(args.input.as_str());
    }
    fn create(
        args: PayloadRelayArgs,
        out: Publisher<crate::records::Payload>,
    ) -> Result<Self, ActorError> {
        Ok(Self {
            delay: args.delay,
            out,
        })
    }
}

impl Handler<Inbound<crate::records::Payload>> for PayloadRelay {
    type Result = Result<(), ActorError>;
    fn handle(
        &mut self,
        m: Inbound<crate::records::Payload>,
        _: &mut Context<Self>,
    ) -> Self::Result {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let mut next = m.value().clone();
        next.hops += 1;
        self.out.publish(m.key().unwrap_or_default(), next)?;
        Ok(())
    }
}

/// How a [`Crasher`] behaves (its `params` in a node file).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrasherArgs {
    /// The topic of [`Number`]s it reads.
    pub input: String,
    /// It panics every time it handles this sequence number.
    pub panic_at: i64,
}

/// Republishes the [`Number`]s it reads, and panics on one of them every
/// time: an actor that keeps failing, for node processes.
#[derive(Debug)]
pub struct Crasher {
    args: CrasherArgs,
    out: Publisher<Number>,
}

impl Actor for Crasher {
    type Context = Context<Self>;
}

impl TopicActor for Crasher {
    type Output = Number;
    type Args = CrasherArgs;
    fn subscriptions(args: &CrasherArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Number>(args.input.as_str());
    }
    fn create(args: CrasherArgs, out: Publisher<Number>) -> Result<Self, ActorError> {
        Ok(Self { args, out })
    }
}

impl Handler<Inbound<Number>> for Crasher {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Number>, _: &mut Context<Self>) -> Self::Result {
        if m.seq == self.args.panic_at {
            panic!("injected panic at seq {}", m.seq);
        }
        self.out.publish(m.key().unwrap_or_default(), m.value())?;
        Ok(())
    }
}

scribe::records! {
    /// Both types of the test-events example, on one topic.
    pub enum RunEvent {
        /// A run started.
        Started(scribe_examples::test_events::Started),
        /// A run returned.
        Returned(scribe_examples::test_events::Returned),
    }
}

/// Publishes `count` runs when it starts, a `Started` and a `Returned`
/// each (`run-000` onwards, keyed by run; even runs pass): a topic of two
/// record types.
#[derive(Debug)]
pub struct Runs {
    out: Publisher<RunEvent>,
    count: usize,
}

impl Actor for Runs {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        use scribe_examples::test_events::{Returned, Started};
        for i in 0..self.count {
            let (run, suite) = (format!("run-{i:03}"), "runs".to_owned());
            let started = Started {
                run: run.clone(),
                suite: suite.clone(),
            };
            self.out
                .publish(&run, RunEvent::from(started))
                .expect("published");
            let returned = Returned {
                run: run.clone(),
                suite,
                passed: i % 2 == 0,
            };
            self.out
                .publish(&run, RunEvent::from(returned))
                .expect("published");
        }
    }
}

impl TopicActor for Runs {
    type Output = RunEvent;
    type Args = usize;
    fn create(count: usize, out: Publisher<RunEvent>) -> Result<Self, ActorError> {
        Ok(Self { out, count })
    }
}

/// How a [`Tally`] behaves (its `params` in a node file).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TallyArgs {
    /// The topic of [`Number`]s it reads.
    pub input: String,
    /// More topics of [`Number`]s it counts into the same tallies.
    #[serde(default)]
    pub also: Vec<String>,
}

/// Counts the [`Number`]s of each key and sums their sequence numbers, in
/// a store; publishes each number with its key's tally so far. Whatever
/// crashes or rebalances meet it, each number's tally is what an
/// uninterrupted run gives.
#[derive(Debug)]
pub struct Tally {
    tallies: Store<String, crate::records::Tally>,
    out: Publisher<crate::records::Tallied>,
}

impl Actor for Tally {
    type Context = Context<Self>;
}

impl TopicActor for Tally {
    type Output = crate::records::Tallied;
    type Args = TallyArgs;
    fn subscriptions(args: &TallyArgs, subs: &mut Subscriptions<Self>) {
        subs.subscribe::<Number>(args.input.as_str());
        for topic in &args.also {
            subs.subscribe::<Number>(topic.as_str());
        }
        subs.store::<String, crate::records::Tally>("tallies");
    }
    fn create(_: TallyArgs, out: Publisher<crate::records::Tallied>) -> Result<Self, ActorError> {
        Ok(Self {
            tallies: out.store("tallies")?,
            out,
        })
    }
}

impl Handler<Inbound<Number>> for Tally {
    type Result = Result<(), ActorError>;
    fn handle(&mut self, m: Inbound<Number>, _: &mut Context<Self>) -> Self::Result {
        let mut tally = self.tallies.get(&m.key)?.unwrap_or_default();
        tally.count += 1;
        tally.sum += m.seq;
        self.tallies.put(&m.key, &tally)?;
        let tallied = crate::records::Tallied {
            key: m.key.clone(),
            seq: m.seq,
            count: tally.count,
            sum: tally.sum,
        };
        self.out.publish(&m.key, tallied)?;
        Ok(())
    }
}

/// The [`Tallied`](crate::records::Tallied) records a [`Tally`] wrote,
/// decoded from the raw records of its output.
pub fn decode_tallied(records: &[crate::RawRecord]) -> Vec<crate::records::Tallied> {
    let decoder =
        scribe::codec::Decoder::<crate::records::Tallied>::new(scribe::SchemaRegistry::new())
            .expect("schema");
    records
        .iter()
        .map(|r| decoder.decode(&r.value).expect("a tally"))
        .collect()
}

/// The tally an uninterrupted [`Tally`] gives each of `numbers`, by
/// sequence number: numbers of one key are counted in the order given.
pub fn expected_tallies(
    numbers: impl IntoIterator<Item = Number>,
) -> std::collections::BTreeMap<i64, crate::records::Tallied> {
    let mut so_far: std::collections::BTreeMap<String, crate::records::Tally> =
        std::collections::BTreeMap::new();
    numbers
        .into_iter()
        .map(|n| {
            let tally = so_far.entry(n.key.clone()).or_default();
            tally.count += 1;
            tally.sum += n.seq;
            let tallied = crate::records::Tallied {
                key: n.key,
                seq: n.seq,
                count: tally.count,
                sum: tally.sum,
            };
            (n.seq, tallied)
        })
        .collect()
}
