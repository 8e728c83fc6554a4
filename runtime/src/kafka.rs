//! Kafka client settings and topic creation.

use std::time::{Duration, Instant};

use std::sync::Mutex;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::broker::EmbeddedBroker;
use crate::error::{ConnectFailure, Error, Result};
use crate::topic::TopicSpec;

/// How long a node's first contact with its cluster may take before the
/// node gives up, saying why.
pub(crate) const FIRST_CONTACT: Duration = Duration::from_secs(20);

/// How long topic creation waits for a new topic to appear in metadata.
const TOPIC_WAIT: Duration = Duration::from_secs(30);

/// The transactional id of exactly-once actor `actor` of node `node`.
pub(crate) fn transactional_id(node: &str, actor: &str) -> String {
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
                        let reason = if crate::settings::is_secret_key(&key) {
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

/// How many partitions `topic` has, as the broker says; `UnknownTopic` if
/// it has none.
pub(crate) fn partition_count(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<i32> {
    use rdkafka::consumer::Consumer as _;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| Error::kafka(format!("cannot read metadata of `{topic}`"), e))?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(Error::UnknownTopic {
            topic: topic.to_owned(),
        }),
    }
}

/// Creates every topic in `topics` that does not exist yet.
pub(crate) async fn ensure_topics(
    settings: &ClientSettings,
    embedded: Option<&EmbeddedBroker>,
    topics: &[(String, TopicSpec)],
) -> Result<()> {
    if let Some(broker) = embedded {
        for (name, spec) in topics {
            broker.create_topic(name, spec.partitions, spec.replication)?;
        }
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = settings
        .admin()
        .create()
        .map_err(|e| Error::kafka("cannot create admin client", e))?;
    // Ask first: creating only what is missing needs no admin rights when
    // everything exists.
    let existing: Vec<String> = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| Error::kafka("cannot fetch metadata", e))?
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.name().to_owned())
        .collect();
    let topics: Vec<&(String, TopicSpec)> = topics
        .iter()
        .filter(|(name, _)| !existing.contains(name))
        .collect();
    if topics.is_empty() {
        return Ok(());
    }
    let retention: Vec<Option<String>> = topics
        .iter()
        .map(|(_, spec)| spec.retention_ms.map(|ms| ms.to_string()))
        .collect();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&retention)
        .map(|((name, spec), retention)| {
            let topic = NewTopic::new(
                name,
                spec.partitions,
                TopicReplication::Fixed(spec.replication),
            );
            match retention {
                Some(ms) => topic.set("retention.ms", ms),
                None => topic,
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new.iter(), &options)
        .await
        .map_err(|e| Error::kafka("create topics", e))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((
                name,
                RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed,
            )) => {
                return Err(Error::CreateTopic {
                    topic: name,
                    reason: "topic authorization failed: this node's principal may neither see \
                             nor create it (the cluster's ACLs, see `scribe acls`)"
                        .into(),
                });
            }
            Err((name, code)) => {
                return Err(Error::CreateTopic {
                    topic: name,
                    reason: code.to_string(),
                });
            }
        }
    }
    for (name, _) in topics {
        wait_for_topic(&admin, name).await?;
    }
    Ok(())
}

async fn wait_for_topic(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let found = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| {
                m.topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .map(|t| t.error().is_none() && !t.partitions().is_empty())
            })
            .unwrap_or(false);
        if found {
            return Ok(());
        }
        if started.elapsed() > TOPIC_WAIT {
            return Err(Error::CreateTopic {
                topic: topic.to_owned(),
                reason: format!("not in the broker's metadata after {TOPIC_WAIT:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client context that keeps the first failure the client reports that
/// retrying cannot mend: refused credentials, a certificate that does not
/// verify. Anything else is logged as usual.
#[derive(Debug, Default)]
struct FirstContact {
    failure: Mutex<Option<ConnectFailure>>,
}

impl ClientContext for FirstContact {
    // What goes wrong here is reported once, as the node's error: the
    // client's own lines about it are for debugging.
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(target: "librdkafka", "first contact: {fac}: {message}");
        // A failed connection is logged each time, but raised as an error
        // event only now and then: read both.
        if fac == "FAIL" {
            self.note(classify(None, message));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match classify(error.rdkafka_error_code(), reason) {
            Some(failure) => self.note(Some(failure)),
            None => tracing::debug!(%error, reason, "kafka client error during first contact"),
        }
    }
}

impl FirstContact {
    fn note(&self, failure: Option<ConnectFailure>) {
        if let (Some(failure), Ok(mut first)) = (failure, self.failure.lock()) {
            first.get_or_insert(failure);
        }
    }
}

impl rdkafka::consumer::ConsumerContext for FirstContact {}

/// What a client error or `FAIL` log line says about the connection, when
/// it is one that retrying cannot mend. librdkafka's reasons never hold the
/// password.
fn classify(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<ConnectFailure> {
    let lower = reason.to_ascii_lowercase();
    // From the broker on (`sasl_ssl://127.0.0.1:9093/bootstrap: ...`),
    // without the log line's thread (`[thrd:...]: `).
    let detail = reason
        .strip_prefix("[thrd:")
        .and_then(|rest| rest.split_once("]: "))
        .map_or(reason, |(_, rest)| rest)
        .trim()
        .to_owned();
    if matches!(
        code,
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed)
    ) || lower.contains("sasl authentication error")
    {
        return Some(ConnectFailure::Authentication(detail));
    }
    let tls = code == Some(RDKafkaErrorCode::SSL)
        || lower.contains("ssl handshake failed")
        || lower.contains("ssl routines");
    if tls {
        if lower.contains("hostname mismatch") || lower.contains("ip address mismatch") {
            return Some(ConnectFailure::HostnameMismatch(detail));
        }
        if lower.contains("certificate verify failed")
            || lower.contains("unable to get local issuer")
            || lower.contains("self-signed certificate")
            || lower.contains("self signed certificate")
        {
            return Some(ConnectFailure::UntrustedCertificate(detail));
        }
        return Some(ConnectFailure::Tls(detail));
    }
    None
}

/// The node's first contact with its cluster: a metadata request through a
/// client with the node's settings, tried until it is answered, a failure
/// that retrying cannot mend is reported, or `timeout` passes. Blocks.
pub(crate) fn first_contact(
    config: &ClientConfig,
    bootstrap: &str,
    timeout: Duration,
) -> Result<()> {
    let client: BaseConsumer<FirstContact> = config
        .create_with_context(FirstContact::default())
        .map_err(|e| Error::kafka("cannot create a client", e))?;
    let started = Instant::now();
    let failed = |cause| Error::Connect {
        bootstrap: bootstrap.to_owned(),
        cause,
    };
    loop {
        let answer = client.fetch_metadata(None, Duration::from_millis(500));
        if answer.is_ok() {
            return Ok(());
        }
        // Errors reach the context when the client is polled.
        let _ = client.poll(Duration::ZERO);
        if let Some(failure) = client.context().failure.lock().ok().and_then(|f| f.clone()) {
            return Err(failed(diagnose(failure, config)));
        }
        if started.elapsed() >= timeout {
            let last = answer.err().map_or_else(String::new, |e| e.to_string());
            return Err(failed(ConnectFailure::Unreachable(timeout, last)));
        }
    }
}

/// librdkafka says "certificate verify failed" whether the certificate
/// chains to no trusted CA or names another host. Repeating the handshake
/// with OpenSSL (no credentials are sent) tells which, in OpenSSL's words.
fn diagnose(failure: ConnectFailure, config: &ClientConfig) -> ConnectFailure {
    let ConnectFailure::UntrustedCertificate(detail) = &failure else {
        return failure;
    };
    let Some(address) = failed_broker(detail, config) else {
        return failure;
    };
    match verify_certificate(&address, config) {
        Some(reason) if reason.contains("mismatch") => {
            ConnectFailure::HostnameMismatch(format!("{address}: {reason}"))
        }
        Some(reason) => ConnectFailure::UntrustedCertificate(format!("{address}: {reason}")),
        None => failure,
    }
}

/// The `host:port` the failure names (`sasl_ssl://HOST:PORT/bootstrap: ...`),
/// else the first bootstrap server.
fn failed_broker(detail: &str, config: &ClientConfig) -> Option<String> {
    let named = detail
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(address, _)| address.to_owned());
    named.or_else(|| {
        config
            .get("bootstrap.servers")?
            .split(',')
            .next()
            .map(|s| s.trim().to_owned())
    })
}

/// The verification error of `address`'s certificate under the client's
/// CA file and host name check, or `None` if it verifies (or cannot be
/// reached to say).
fn verify_certificate(address: &str, config: &ClientConfig) -> Option<String> {
    use openssl::ssl::{SslConnector, SslMethod};
    let (host, _) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
    if let Some(ca) = config.get("ssl.ca.location") {
        builder.set_ca_file(ca).ok()?;
    }
    let connector = builder.build();
    let mut tls = connector.configure().ok()?;
    let check_host = config.get("ssl.endpoint.identification.algorithm") != Some("none");
    tls.set_verify_hostname(check_host);
    let stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    match tls.connect(host, stream) {
        Ok(_) => None,
        Err(openssl::ssl::HandshakeError::Failure(mid)) => {
            let result = mid.ssl().verify_result();
            (result != openssl::x509::X509VerifyResult::OK)
                .then(|| result.error_string().to_owned())
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_retrying_cannot_mend_are_told_apart_from_the_log_lines() {
        let untrusted = "[thrd:sasl_ssl://127.0.0.1:9093/bootstrap]: sasl_ssl://127.0.0.1:9093/bootstrap: \
             ../ssl/statem/statem_clnt.c:1889:tls_post_process_server_certificate \
             error:0A000086:SSL routines::certificate verify failed";
        match classify(None, untrusted) {
            Some(ConnectFailure::UntrustedCertificate(detail)) => {
                assert!(
                    detail.starts_with("sasl_ssl://127.0.0.1:9093/bootstrap: "),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        let refused = "sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: \
             Authentication failed during authentication due to invalid credentials";
        assert!(matches!(
            classify(None, refused),
            Some(ConnectFailure::Authentication(_))
        ));
        let down =
            "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused";
        assert_eq!(classify(None, down), None, "retrying may mend it");
    }
}
