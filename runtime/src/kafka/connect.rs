//! A node's first contact with its cluster: a metadata request through a
//! client with the node's settings, and, when it fails for a reason retrying
//! cannot mend, which reason (refused credentials, an untrusted certificate,
//! a certificate for another host) in one line.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};

use crate::error::{ConnectFailure, Error, Result};
use crate::kafka::settings::ClientSettings;

/// How long a node's first contact with its cluster may take before the
/// node gives up, saying why.
pub const FIRST_CONTACT: Duration = Duration::from_secs(20);

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

/// [`first_contact`] for a node about to start (or replay) on an external
/// cluster, off the async runtime's threads; nothing on an embedded broker.
pub(crate) async fn first_contact_of(settings: &ClientSettings) -> Result<()> {
    if settings.embedded {
        return Ok(());
    }
    let (config, servers) = (settings.admin(), settings.bootstrap.clone());
    tokio::task::spawn_blocking(move || first_contact(&config, &servers, FIRST_CONTACT))
        .await
        .map_err(|e| Error::Connect {
            bootstrap: settings.bootstrap.clone(),
            cause: ConnectFailure::Unreachable(FIRST_CONTACT, format!("the check ended: {e}")),
        })?
}

/// The node's first contact with its cluster: a metadata request through a
/// client with the node's settings, tried until it is answered, a failure
/// that retrying cannot mend is reported, or `timeout` passes. Blocks.
pub fn first_contact(config: &ClientConfig, bootstrap: &str, timeout: Duration) -> Result<()> {
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
