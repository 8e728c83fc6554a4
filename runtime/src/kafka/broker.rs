//! Where a node's Kafka is: an embedded mock cluster or a real cluster.

use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::error::{Error, Result};

/// The Kafka cluster a node talks to.
#[derive(Debug, Clone, Default)]
pub enum Broker {
    /// Start a Kafka-protocol broker inside the process (librdkafka's mock
    /// cluster) when the node starts, and stop it with the node. The default.
    #[default]
    Embedded,
    /// Use the cluster at these bootstrap servers (`host:port,host:port`).
    Bootstrap(String),
    /// Use an embedded broker started beforehand, which outlives the node
    /// (tests restart nodes against one broker this way).
    InProcess(EmbeddedBroker),
}

impl Broker {
    /// A real cluster at `servers` (`host:port,host:port`).
    pub fn bootstrap(servers: impl Into<String>) -> Self {
        Broker::Bootstrap(servers.into())
    }
}

enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        replication: i32,
        reply: mpsc::Sender<Result<(), String>>,
    },
    BrokerDown(i32, mpsc::Sender<Result<(), String>>),
    BrokerUp(i32, mpsc::Sender<Result<(), String>>),
    RequestErrors(
        RDKafkaApiKey,
        Vec<RDKafkaRespErr>,
        mpsc::Sender<Result<(), String>>,
    ),
    ClearRequestErrors(RDKafkaApiKey, mpsc::Sender<Result<(), String>>),
    RoundTripTime(i32, Duration, mpsc::Sender<Result<(), String>>),
}

struct Inner {
    bootstrap: String,
    brokers: i32,
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the broker thread, which drops the cluster.
        self.commands.lock().map(|mut c| c.take()).ok();
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

/// A Kafka-protocol broker running inside this process: librdkafka's mock
/// cluster, listening on loopback TCP.
///
/// Any Kafka client can connect to [`EmbeddedBroker::bootstrap_servers`]
/// (kcat, Python, another node). It lives until the last clone of this
/// handle is dropped. It keeps records in memory, has no `CreateTopics` API
/// (topics are created through this handle) and offers fault injection.
#[derive(Clone)]
pub struct EmbeddedBroker {
    inner: Arc<Inner>,
}

impl fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap", &self.inner.bootstrap)
            .field("brokers", &self.inner.brokers)
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts a one-broker embedded cluster.
    pub fn start() -> Result<Self> {
        Self::with_brokers(1)
    }

    /// Starts an embedded cluster of `brokers` brokers (ids `1..=brokers`).
    pub fn with_brokers(brokers: i32) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let thread = std::thread::Builder::new()
            .name("scribe-embedded-broker".into())
            .spawn(move || {
                let cluster = match MockCluster::new(brokers) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                serve(&cluster, rx);
            })
            .map_err(|e| Error::Embedded(format!("cannot spawn broker thread: {e}")))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| Error::Embedded("broker thread ended before starting".into()))?
            .map_err(|e| Error::Embedded(format!("cannot start mock cluster: {e}")))?;
        tracing::info!(%bootstrap, brokers, "embedded kafka broker started");
        Ok(Self {
            inner: Arc::new(Inner {
                bootstrap,
                brokers,
                commands: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The `bootstrap.servers` string to connect to it.
    pub fn bootstrap_servers(&self) -> &str {
        &self.inner.bootstrap
    }

    /// Number of brokers in the cluster.
    pub fn brokers(&self) -> i32 {
        self.inner.brokers
    }

    /// Creates a topic (the replication factor is capped at the number of
    /// brokers). A topic that exists already is left as it is.
    pub fn create_topic(&self, name: &str, partitions: i32, replication: i32) -> Result<()> {
        let replication = replication.clamp(1, self.inner.brokers);
        self.call(|reply| Command::CreateTopic {
            name: name.to_owned(),
            partitions,
            replication,
            reply,
        })
        .map_err(|reason| Error::CreateTopic {
            topic: name.to_owned(),
            reason,
        })
    }

    /// Takes broker `id` down: its connections close and it refuses new ones.
    pub fn broker_down(&self, id: i32) -> Result<()> {
        self.call(|reply| Command::BrokerDown(id, reply))
            .map_err(Error::Embedded)
    }

    /// Brings broker `id` back up.
    pub fn broker_up(&self, id: i32) -> Result<()> {
        self.call(|reply| Command::BrokerUp(id, reply))
            .map_err(Error::Embedded)
    }

    /// Makes the next requests of kind `api` (`Produce`, `Fetch`,
    /// `OffsetCommit`...) fail, one per error, in order, whichever client
    /// sends them. `RD_KAFKA_RESP_ERR__TRANSPORT` disconnects the client
    /// instead of answering.
    pub fn fail_requests(&self, api: RDKafkaApiKey, errors: &[RDKafkaRespErr]) -> Result<()> {
        let errors = errors.to_vec();
        self.call(|reply| Command::RequestErrors(api, errors, reply))
            .map_err(Error::Embedded)
    }

    /// Forgets the errors still queued for requests of kind `api`.
    pub fn clear_request_errors(&self, api: RDKafkaApiKey) -> Result<()> {
        self.call(|reply| Command::ClearRequestErrors(api, reply))
            .map_err(Error::Embedded)
    }

    /// Delays every answer of broker `id` (`-1`: every broker) by `delay`,
    /// as a slow network would. `Duration::ZERO` takes the delay away.
    pub fn set_round_trip_time(&self, id: i32, delay: Duration) -> Result<()> {
        self.call(|reply| Command::RoundTripTime(id, delay, reply))
            .map_err(Error::Embedded)
    }

    fn call(
        &self,
        command: impl FnOnce(mpsc::Sender<Result<(), String>>) -> Command,
    ) -> std::result::Result<(), String> {
        let (reply, answer) = mpsc::channel();
        let commands = self.inner.commands.lock().map_err(|e| e.to_string())?;
        commands
            .as_ref()
            .ok_or("broker stopped")?
            .send(command(reply))
            .map_err(|_| "broker thread is gone".to_owned())?;
        drop(commands);
        answer
            .recv()
            .map_err(|_| "broker thread is gone".to_owned())?
    }
}

fn serve<C: rdkafka::ClientContext>(
    cluster: &MockCluster<'_, C>,
    commands: mpsc::Receiver<Command>,
) {
    let text = |r: rdkafka::error::KafkaResult<()>| r.map_err(|e| e.to_string());
    for command in commands {
        match command {
            Command::CreateTopic {
                name,
                partitions,
                replication,
                reply,
            } => {
                let created = match cluster.create_topic(&name, partitions, replication) {
                    Err(KafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
                    other => other,
                };
                let _ = reply.send(text(created));
            }
            Command::BrokerDown(id, reply) => {
                let _ = reply.send(text(cluster.broker_down(id)));
            }
            Command::BrokerUp(id, reply) => {
                let _ = reply.send(text(cluster.broker_up(id)));
            }
            Command::RequestErrors(api, errors, reply) => {
                cluster.request_errors(api, &errors);
                let _ = reply.send(Ok(()));
            }
            Command::ClearRequestErrors(api, reply) => {
                cluster.clear_request_errors(api);
                let _ = reply.send(Ok(()));
            }
            Command::RoundTripTime(id, delay, reply) => {
                let _ = reply.send(text(cluster.broker_round_trip_time(id, delay)));
            }
        }
    }
}
