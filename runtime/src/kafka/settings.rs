//! [`ClientSettings`]: the settings every Kafka client of a node is made
//! from (its producers, consumers and admin client), and the ids scribe
//! gives them on the cluster.

use std::time::Duration;

use rdkafka::ClientConfig;

use crate::error::{Error, Result};

/// The transactional id of exactly-once actor `actor` of node `node`.
pub fn transactional_id(node: &str, actor: &str) -> String {
    format!("scribe.{node}.{actor}")
}

/// Settings every Kafka client of a node is built from.
#[derive(Clone)]
pub(crate) struct ClientSettings {
    pub(crate) bootstrap: String,
    pub(crate) node: String,
    pub(crate) embedded: bool,
    pub(crate) commit_interval: Duration,
    /// How long a transaction step waits before its outcome is unknown.
    pub(crate) transaction_timeout: Duration,
    pub(crate) common: Vec<(String, String)>,
    pub(crate) consumer: Vec<(String, String)>,
    pub(crate) producer: Vec<(String, String)>,
}

impl ClientSettings {
    fn base(&self, actor: Option<&str>) -> ClientConfig {
        let mut config = ClientConfig::new();
        let client_id = match actor {
            Some(actor) => format!("{}.{}", self.node, actor),
            None => self.node.clone(),
        };
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", client_id);
        config
    }

    fn overrides(config: &mut ClientConfig, pairs: &[(String, String)]) {
        for (key, value) in pairs {
            config.set(key, value);
        }
    }

    /// The transactional id of an exactly-once actor: its identity on the
    /// cluster, the same for every process running this node's actor.
    pub(crate) fn transactional_id(&self, actor: &str) -> String {
        transactional_id(&self.node, actor)
    }

    /// The producer of an actor: idempotent, keys partitioned like the Java
    /// client's default partitioner (murmur2), a few milliseconds of linger
    /// so records travel in batches; transactional with `transactional_id`.
    pub(crate) fn producer(&self, actor: &str, transactional_id: Option<&str>) -> ClientConfig {
        let mut config = self.base(Some(actor));
        if let Some(id) = transactional_id {
            config.set("transactional.id", id);
        }
        config
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            // A handler publishing faster than the broker acknowledges
            // blocks once this much waits (librdkafka's default is 1 GiB).
            .set("queue.buffering.max.kbytes", "65536");
        Self::overrides(&mut config, &self.common);
        Self::overrides(&mut config, &self.producer);
        config
    }

    /// The consumer of an actor: its group is the actor's name; offsets are
    /// stored by the runtime only when complete and committed in the
    /// background every commit interval; a new group starts at the earliest
    /// record.
    /// An exactly-once (`transactional`) actor's offsets go through its
    /// producer's transactions instead.
    pub(crate) fn consumer(&self, actor: &str, transactional: bool) -> ClientConfig {
        let mut config = self.base(Some(actor));
        config
            .set("group.id", actor)
            .set("enable.auto.commit", "true")
            .set(
                "auto.commit.interval.ms",
                self.commit_interval.as_millis().to_string(),
            )
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // Backpressure: the feed takes a record only when the actor is
            // ready for it, and librdkafka stops fetching once this much is
            // waiting (its defaults are 64 MiB and 100 000 per partition).
            .set("queued.max.messages.kbytes", "16384")
            .set("queued.min.messages", "10000")
            // How long a partition waits before fetching again once over
            // those bounds: librdkafka's 1 s default stalls a busy actor.
            .set("fetch.queue.backoff.ms", "10")
            .set(
                "fetch.wait.max.ms",
                if self.embedded { "10" } else { "100" },
            )
            // librdkafka's default too: records of aborted or open
            // transactions are never handed to an actor.
            .set("isolation.level", "read_committed");
        if transactional {
            config.set("enable.auto.commit", "false");
        }
        Self::overrides(&mut config, &self.common);
        Self::overrides(&mut config, &self.consumer);
        config
    }

    /// Checks every property of the node's producers and consumers with
    /// librdkafka itself, without creating a client or connecting; those of
    /// exactly-once actors too if the node has any.
    pub(crate) fn validate(&self, exactly_once: bool) -> Result<()> {
        let mut configs = vec![self.producer("check", None), self.consumer("check", false)];
        if exactly_once {
            configs.push(self.producer("check", Some("check")));
            configs.push(self.consumer("check", true));
        }
        for config in configs {
            if let Err(error) = config.create_native_config() {
                return Err(match error {
                    rdkafka::error::KafkaError::ClientConfig(_, desc, key, _) => {
                        let reason = if crate::kafka::secret::is_secret_key(&key) {
                            "invalid value".to_owned()
                        } else {
                            desc
                        };
                        Error::KafkaProperty { key, reason }
                    }
                    other => Error::kafka("invalid client configuration", other),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn admin(&self) -> ClientConfig {
        let mut config = self.base(None);
        Self::overrides(&mut config, &self.common);
        config
    }
}
