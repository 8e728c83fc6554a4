//! Helpers for scribe's end-to-end tests: the broker under test, unique
//! names, and raw access to topics through an ordinary Kafka client.
//!
//! Every test runs against the broker chosen by the environment:
//! `SCRIBE_TEST_KAFKA_DIR` names an Apache Kafka cluster started by
//! `tests/kafka/cluster.sh` (CI's second pass); else `SCRIBE_TEST_BOOTSTRAP`
//! names any Kafka-protocol broker (e.g. `127.0.0.1:9092`); else each test
//! gets an embedded mock cluster of its own.

pub mod actors;
pub mod apache;
pub mod asking;
pub mod asyncapi;
pub mod bench;
pub mod hosts;
pub mod layers;
pub mod load;
pub mod records;
pub mod registry;

/// The simulator guide, `docs/testing.md`, whose example runs as a doc test.
#[doc = include_str!("../../docs/testing.md")]
pub mod testing_guide {}

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use scribe::{Broker, EmbeddedBroker, Node, NodeBuilder};

pub use apache::{ApacheKafka, KAFKA_DIR_VAR, Listener};

/// The environment variable naming an external broker to test against.
pub const BOOTSTRAP_VAR: &str = "SCRIBE_TEST_BOOTSTRAP";

/// The environment variable that turns on librdkafka debug contexts
/// (e.g. `cgrp,fetch`) for every client of the nodes under test.
pub const DEBUG_VAR: &str = "SCRIBE_TEST_KAFKA_DEBUG";

/// The Kafka-protocol broker one test runs against.
#[derive(Debug)]
pub struct TestKafka {
    bootstrap: String,
    embedded: Option<EmbeddedBroker>,
}

/// A record to write raw: key, value bytes and headers.
pub type Outgoing<'a> = (Option<&'a str>, Vec<u8>, Vec<(&'a str, &'a str)>);

/// A record as read raw from a topic.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its headers as UTF-8 text, as scribe reads them: its metadata under
    /// the CloudEvents names (`ce_id`, ...), whether it came in a compact
    /// envelope or as CloudEvents headers, then the others.
    pub headers: HashMap<String, String>,
    /// Which form its metadata came in.
    pub envelope: scribe::Envelope,
}

impl RawRecord {
    /// The key as text.
    pub fn key_str(&self) -> &str {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
            .unwrap_or("")
    }

    /// A header's value (empty when absent).
    pub fn header(&self, key: &str) -> &str {
        self.headers.get(key).map_or("", String::as_str)
    }
}

/// A short random suffix that makes topic and group names unique per test.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Logs to the test's output when `RUST_LOG` asks for it.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

impl TestKafka {
    /// The Apache Kafka cluster named by `SCRIBE_TEST_KAFKA_DIR`, else the
    /// broker named by `SCRIBE_TEST_BOOTSTRAP`, else a new embedded one.
    pub fn from_env() -> Self {
        init_tracing();
        if let Some(cluster) = ApacheKafka::shared() {
            return Self {
                bootstrap: cluster.bootstrap(Listener::Plaintext).to_owned(),
                embedded: None,
            };
        }
        match std::env::var(BOOTSTRAP_VAR) {
            Ok(bootstrap) if !bootstrap.trim().is_empty() => Self {
                bootstrap,
                embedded: None,
            },
            _ => {
                let broker = EmbeddedBroker::start().expect("embedded broker starts");
                Self {
                    bootstrap: broker.bootstrap_servers().to_owned(),
                    embedded: Some(broker),
                }
            }
        }
    }

    /// The broker at `bootstrap` (a cluster a test started for itself).
    pub fn external(bootstrap: &str) -> Self {
        init_tracing();
        Self {
            bootstrap: bootstrap.to_owned(),
            embedded: None,
        }
    }

    /// A new embedded broker, whatever `SCRIBE_TEST_BOOTSTRAP` says: for
    /// tests that inject faults through it.
    pub fn embedded() -> Self {
        init_tracing();
        let broker = EmbeddedBroker::start().expect("embedded broker starts");
        Self {
            bootstrap: broker.bootstrap_servers().to_owned(),
            embedded: Some(broker),
        }
    }

    /// A new embedded broker for a test that drives the embedded broker's
    /// own fault injection or measures memory apart from the broker, or
    /// `None` in a pass against an external broker, which then skips it,
    /// saying `why`: the embedded pass runs it.
    pub fn embedded_only(test: &str, why: &str) -> Option<Self> {
        if Self::external_pass() {
            eprintln!("{test}: runs in the embedded-broker pass only ({why}); skipped here");
            return None;
        }
        Some(Self::embedded())
    }

    /// Whether this pass runs against an external broker.
    pub fn external_pass() -> bool {
        ApacheKafka::shared().is_some()
            || std::env::var(BOOTSTRAP_VAR).is_ok_and(|b| !b.trim().is_empty())
    }

    /// Whether this is the embedded mock cluster, which stores no
    /// transactional offsets, writes no abort markers and fences nobody
    /// (docs/semantics.md): what a real broker guarantees about
    /// transactions is asserted only elsewhere.
    pub fn is_mock(&self) -> bool {
        self.embedded.is_some()
    }

    /// The embedded broker, when this is one.
    pub fn embedded_broker(&self) -> Option<&EmbeddedBroker> {
        self.embedded.as_ref()
    }

    /// Whether this is an external broker process.
    pub fn is_external(&self) -> bool {
        self.embedded.is_none()
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The [`Broker`] setting a node uses to reach it.
    pub fn broker(&self) -> Broker {
        match &self.embedded {
            Some(broker) => Broker::InProcess(broker.clone()),
            None => Broker::bootstrap(&self.bootstrap),
        }
    }

    /// A node builder on this broker, with settings that keep tests quick:
    /// short group sessions, frequent commits.
    pub fn node(&self, name: &str) -> NodeBuilder {
        self.configure(Node::builder(name))
    }

    /// Points `builder` (from code or a config file) at this broker, with
    /// the same quick test settings as [`TestKafka::node`].
    pub fn configure(&self, builder: NodeBuilder) -> NodeBuilder {
        let mut builder = builder;
        if let Ok(contexts) = std::env::var(DEBUG_VAR) {
            builder = builder.kafka_property("debug", contexts);
        }
        builder
            .broker(self.broker())
            .commit_interval(Duration::from_millis(100))
            .consumer_property("session.timeout.ms", "3000")
            .consumer_property("heartbeat.interval.ms", "300")
            .consumer_property("fetch.wait.max.ms", "20")
            .producer_property("linger.ms", "2")
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    /// Creates a topic (outside any node) and waits until it is usable.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        match &self.embedded {
            Some(broker) => broker
                .create_topic(name, partitions, 1)
                .expect("topic created"),
            None => create_external(&self.bootstrap, name, partitions).await,
        }
    }

    /// Writes raw records (key, value, headers) and waits for their acknowledgement.
    pub fn produce_raw(&self, topic: &str, records: &[Outgoing<'_>]) {
        let mut config = self.client();
        // Keys land where Kafka's Java client and scribe put them, not
        // where librdkafka's default (CRC32) would.
        config.set("partitioner", "murmur2_random");
        let producer: BaseProducer = config.create().expect("producer");
        for (key, value, headers) in records {
            let headers = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                })
            });
            let mut record = BaseRecord::to(topic).payload(value).headers(headers);
            if let Some(key) = key {
                record = record.key(*key);
            }
            producer.send(record).map_err(|(e, _)| e).expect("enqueued");
        }
        // Long enough to outlast a broker restart in the scenario tests.
        producer
            .flush(Duration::from_secs(120))
            .expect("acknowledged");
    }

    /// Reads every record of `topic` from the beginning until `count` have
    /// arrived or `timeout` passes, without a consumer group.
    pub async fn read(&self, topic: &str, count: usize, timeout: Duration) -> Vec<RawRecord> {
        let bootstrap = self.bootstrap.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            read_blocking(&bootstrap, &topic, count, timeout, "read_committed")
        })
        .await
        .expect("reader thread")
    }

    /// As [`read`](Self::read), but also what open or aborted transactions
    /// wrote: what a handler produced before its transaction committed.
    pub async fn read_uncommitted(
        &self,
        topic: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<RawRecord> {
        let bootstrap = self.bootstrap.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            read_blocking(&bootstrap, &topic, count, timeout, "read_uncommitted")
        })
        .await
        .expect("reader thread")
    }

    /// The sum over `topic`'s partitions of the offsets `group` has
    /// committed (0 for a partition without a commit), as the broker says.
    pub async fn committed(&self, group: &str, topic: &str) -> i64 {
        let (bootstrap, group, topic) =
            (self.bootstrap.clone(), group.to_owned(), topic.to_owned());
        tokio::task::spawn_blocking(move || {
            // Asking for a group's offsets does not join it.
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", &group)
                .create()
                .expect("consumer");
            let mut list = TopicPartitionList::new();
            for p in 0..partition_count(&consumer, &topic) {
                list.add_partition(&topic, p);
            }
            let committed = consumer
                .committed_offsets(list, Duration::from_secs(10))
                .expect("committed offsets");
            committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .sum()
        })
        .await
        .expect("offset reader thread")
    }

    /// Reads the journal lines on `topic` until one starting with each of
    /// `kinds` is there, or 30 s pass; returns every line read.
    pub async fn journal_lines_until(&self, topic: &str, kinds: &[&str]) -> Vec<String> {
        let decoder = scribe::codec::Decoder::<scribe_schemas::JournalEntry>::new(
            scribe::SchemaRegistry::new(),
        )
        .expect("schema");
        let mut lines: Vec<String> = Vec::new();
        for _ in 0..30 {
            let journal = self.read(topic, usize::MAX, Duration::from_secs(1)).await;
            lines = journal
                .iter()
                .map(|r| decoder.decode(&r.value).expect("a journal entry").line)
                .collect();
            if kinds.iter().all(|k| lines.iter().any(|l| l.starts_with(k))) {
                break;
            }
        }
        lines
    }

    /// Polls `done` every 50 ms until it is true or `timeout` passes.
    pub async fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        done()
    }
}

fn read_blocking(
    bootstrap: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
    isolation: &str,
) -> Vec<RawRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("isolation.level", isolation)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..partition_count(&consumer, topic) {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let (read, _) = scribe::Headers::from_kafka(&m);
            let headers = read
                .iter()
                .map(|(key, value)| {
                    let value = String::from_utf8_lossy(value);
                    (key.to_owned(), value.into_owned())
                })
                .collect();
            out.push(RawRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
                headers,
                envelope: read.envelope(),
            });
        }
    }
    out
}

fn partition_count(consumer: &BaseConsumer, topic: &str) -> i32 {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len() as i32)
}

async fn create_external(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let spec = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let results = admin
        .create_topics([&spec], &AdminOptions::new())
        .await
        .expect("create topics");
    for result in results {
        result.expect("topic created");
    }
}

/// One HTTP request (with a bearer `token` when given), off the caller's
/// runtime: the status and the body as text. Every status is an answer;
/// a request that gets none panics, naming the URL.
pub async fn http_request(method: &str, url: String, token: Option<&str>) -> (u16, String) {
    let method = method.to_owned();
    let token = token.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut request = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(&url);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = agent
            .run(request.body(()).expect("a request"))
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let body = response.body_mut().read_to_string().expect("a text body");
        (response.status().as_u16(), body)
    })
    .await
    .expect("the request ran")
}

/// Sends SIGTERM to a node process and waits for it to exit (at most 60 s,
/// so a broken build cannot hang CI); true when it exited 0.
pub fn terminate(mut child: std::process::Child) -> bool {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM failed");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status.success();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node did not exit within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
