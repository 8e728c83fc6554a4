//! What the benchmarks share: their broker and topics, the headers
//! scribe writes, sending through a full queue, reading reports.

/// The eight headers scribe writes, the causing record's read as scribe reads them.
pub fn cloud_events(
    inbound: &rdkafka::message::BorrowedMessage<'_>,
) -> rdkafka::message::OwnedHeaders {
    use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
    let (mut cause, mut correlation) = (None, None);
    for h in inbound.headers().into_iter().flat_map(|h| h.iter()) {
        let value = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
        match h.key {
            "ce_id" => cause = Some(value),
            "correlation_id" => correlation = Some(value),
            _ => {}
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let correlation = correlation.unwrap_or_else(|| id.clone());
    let mut pairs = vec![
        ("ce_specversion", "1.0"),
        ("ce_id", id.as_str()),
        ("ce_type", "scribe.bench.Payload"),
        ("ce_source", "bench/hand"),
        ("ce_time", time.as_str()),
        ("content-type", "application/avro"),
        ("correlation_id", correlation.as_str()),
    ];
    if let Some(cause) = &cause {
        pairs.push(("causation_id", cause.as_str()));
    }
    pairs
        .into_iter()
        .fold(OwnedHeaders::new_with_capacity(8), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        })
}

/// Sends `record`, waiting a millisecond at a time while the producer's
/// queue is full.
pub fn send_retrying<C, K, P>(
    producer: &rdkafka::producer::ThreadedProducer<C>,
    mut record: rdkafka::producer::BaseRecord<'_, K, P, C::DeliveryOpaque>,
) where
    C: rdkafka::producer::ProducerContext + 'static,
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                record = back;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}

/// The number after `name=` in a `key=value` report line.
pub fn field(report: &str, name: &str) -> f64 {
    report
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in `{report}`"))
}

/// The broker a benchmark runs against: `SCRIBE_TEST_BOOTSTRAP` when set,
/// otherwise an embedded mock cluster in this process.
#[derive(Debug)]
pub struct BenchBroker {
    /// Its bootstrap servers.
    pub bootstrap: String,
    /// The embedded broker, when it is one.
    pub embedded: Option<scribe::EmbeddedBroker>,
}

impl BenchBroker {
    /// `SCRIBE_TEST_BOOTSTRAP`'s broker, else a new embedded one.
    pub fn from_env() -> Self {
        match std::env::var("SCRIBE_TEST_BOOTSTRAP") {
            Ok(bootstrap) if !bootstrap.is_empty() => Self {
                bootstrap,
                embedded: None,
            },
            _ => {
                let broker = scribe::EmbeddedBroker::start().expect("embedded broker");
                Self {
                    bootstrap: broker.bootstrap_servers().to_owned(),
                    embedded: Some(broker),
                }
            }
        }
    }

    /// How the figures name it.
    pub fn name(&self) -> &str {
        if self.embedded.is_some() {
            "embedded-mock"
        } else {
            &self.bootstrap
        }
    }

    /// Creates a topic named after `prefix` with `partitions`, and its
    /// dead-letter topic (which a scribe node in another process could not
    /// create on the embedded mock cluster); returns its name.
    pub fn create_topic(&self, prefix: &str, partitions: i32) -> String {
        let name = crate::unique(prefix);
        self.create_named(&name, partitions);
        self.create_named(&format!("{name}.dlq"), partitions);
        name
    }

    fn create_named(&self, name: &str, partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        if let Some(broker) = &self.embedded {
            broker
                .create_topic(name, partitions, 1)
                .expect("topic created");
            return;
        }
        let admin: AdminClient<_> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .expect("admin client");
        let spec = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for created in runtime
            .block_on(admin.create_topics([&spec], &AdminOptions::new()))
            .expect("create topics")
        {
            created.expect("topic created");
        }
    }
}

/// Sends `record` through a `BaseProducer`, serving its events while its
/// queue is full, then serves what is ready.
pub fn produce_retrying<C, K, P>(
    producer: &rdkafka::producer::BaseProducer<C>,
    mut record: rdkafka::producer::BaseRecord<'_, K, P, C::DeliveryOpaque>,
) where
    C: rdkafka::producer::ProducerContext,
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((_, back)) => {
                record = back;
                producer.poll(std::time::Duration::from_millis(5));
            }
        }
    }
    producer.poll(std::time::Duration::ZERO);
}

/// A stage of the benchmarks' scribe pipelines: reads `input`, adds one
/// hop to each [`Payload`](crate::records::Payload) and publishes it under
/// the same key, telling `seen` each record's sequence number first.
pub struct Hop {
    out: scribe::Publisher<crate::records::Payload>,
    seen: Seen,
}

/// What a [`Hop`] tells of each record it reads.
pub type Seen = std::sync::Arc<dyn Fn(i64) + Send + Sync>;

impl std::fmt::Debug for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hop")
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for HopArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HopArgs")
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}

/// What a [`Hop`] reads, and whom it tells.
#[derive(Clone)]
pub struct HopArgs {
    /// The topic it reads.
    pub input: String,
    /// Told each record's sequence number before it is handled.
    pub seen: Seen,
}

impl actix::Actor for Hop {
    type Context = actix::Context<Self>;
}

impl scribe::TopicActor for Hop {
    type Output = crate::records::Payload;
    type Args = HopArgs;
    fn subscriptions(args: &HopArgs, subs: &mut scribe::Subscriptions<Self>) {
        subs.subscribe::<crate::records::Payload>(args.input.as_str());
    }
    fn create(
        args: HopArgs,
        out: scribe::Publisher<crate::records::Payload>,
    ) -> Result<Self, scribe::ActorError> {
        Ok(Self {
            out,
            seen: args.seen,
        })
    }
}

impl actix::Handler<scribe::Inbound<crate::records::Payload>> for Hop {
    type Result = Result<(), scribe::ActorError>;
    fn handle(
        &mut self,
        m: scribe::Inbound<crate::records::Payload>,
        _: &mut actix::Context<Self>,
    ) -> Self::Result {
        (self.seen)(m.seq);
        let (mut next, key) = m.into_value_and_key();
        next.hops += 1;
        self.out.publish(key.as_deref().unwrap_or_default(), next)?;
        Ok(())
    }
}
