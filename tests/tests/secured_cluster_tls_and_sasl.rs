//! A node on Apache Kafka through each secured listener: SCRAM-SHA-256,
//! SCRAM-SHA-512 and PLAIN over TLS, SCRAM without TLS, and mutual TLS
//! with a client certificate. Each runs a relay end to end (every record
//! relayed). Wrong credentials and certificates stop the node before any
//! actor starts, each with its own cause. The users are made here, the
//! certificates by `tests/kafka/cluster.sh` at cluster start.

use std::time::{Duration, Instant};

use scribe::Secret;
use scribe::{Broker, ConnectFailure, Error, Node, Protocol, SaslMechanism, Security};
use scribe_tests::actors::{Relay, RelayArgs, keyed_numbers, numbers_in, produce_numbers};
use scribe_tests::{ApacheKafka, Listener, TestKafka, unique};

/// Runs a relay through `listener` with `security`: 200 records in, 200 out.
async fn relay_through(
    kafka: &TestKafka,
    cluster: &ApacheKafka,
    listener: Listener,
    security: Security,
) {
    let (input, output, actor) = (unique("in"), unique("out"), unique("secure"));
    kafka.create_topic(&input, 2).await;
    produce_numbers(kafka, &input, keyed_numbers(0..200, 4));
    let node = kafka
        .node("secured")
        .broker(Broker::bootstrap(cluster.bootstrap(listener)))
        .security(security)
        .actor::<Relay>(&actor, &output, RelayArgs::reading(&input))
        .build()
        .expect("valid topology")
        .start()
        .await
        .expect("node starts through the secured listener");
    let out = kafka.read(&output, 200, Duration::from_secs(60)).await;
    node.shutdown().await.expect("clean shutdown");
    let mut seqs: Vec<i64> = numbers_in(&out).iter().map(|n| n.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    println!(
        "{listener:?}: sent=200 received={} distinct={}",
        out.len(),
        seqs.len()
    );
    assert_eq!(seqs, (0..200).collect::<Vec<_>>(), "{listener:?}");
}

#[actix::test]
async fn a_node_runs_end_to_end_through_sasl_and_mutual_tls() {
    let Some(cluster) = ApacheKafka::required("a_node_runs_end_to_end_through_sasl") else {
        return;
    };
    let kafka = TestKafka::from_env();
    let (user, password) = (unique("user"), unique("pw"));
    cluster.scram_user(&user, &password);
    let (plain_user, plain_password) = cluster.plain_user();
    for principal in [
        format!("User:{user}"),
        format!("User:{plain_user}"),
        "User:scribe-client".to_owned(),
    ] {
        cluster.allow_all(&principal);
    }
    let ca = cluster.tls_file("ca.pem");
    let secret = || Secret::new(password.clone());
    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        let security = Security::tls(&ca).sasl(mechanism, &user, secret());
        relay_through(&kafka, &cluster, Listener::SaslSsl, security).await;
    }
    let plain = Security::tls(&ca).sasl(
        SaslMechanism::Plain,
        plain_user,
        Secret::new(plain_password),
    );
    relay_through(&kafka, &cluster, Listener::SaslSsl, plain).await;
    let cleartext = Security::default().sasl(SaslMechanism::ScramSha512, &user, secret());
    assert_eq!(cleartext.protocol, Protocol::SaslPlaintext);
    relay_through(&kafka, &cluster, Listener::SaslPlaintext, cleartext).await;
    let mutual = Security::tls(&ca).client_certificate(
        cluster.tls_file("client.pem"),
        cluster.tls_file("client.key"),
    );
    relay_through(&kafka, &cluster, Listener::Ssl, mutual).await;
}

/// Starts a node through `listener` with `security`; returns its error and
/// how long it took to fail.
async fn refused(
    cluster: &ApacheKafka,
    listener: Listener,
    security: Security,
) -> (Error, Duration) {
    let started = Instant::now();
    let outcome = Node::builder("refused")
        .broker(Broker::bootstrap(cluster.bootstrap(listener)))
        .security(security)
        .actor::<Relay>(&unique("never"), &unique("out"), RelayArgs::reading("in"))
        .build()
        .expect("valid topology")
        .start()
        .await;
    let Err(error) = outcome else {
        panic!("the node started");
    };
    (error, started.elapsed())
}

#[actix::test]
async fn wrong_password_untrusted_certificate_and_wrong_host_name_stop_the_node_saying_which() {
    let Some(cluster) = ApacheKafka::required("wrong_password_untrusted_certificate") else {
        return;
    };
    let (user, password) = (unique("user"), unique("pw"));
    cluster.scram_user(&user, &password);
    let ca = cluster.tls_file("ca.pem");
    let sasl = |ca: &std::path::Path, password: &str| {
        Security::tls(ca).sasl(SaslMechanism::ScramSha256, &user, Secret::new(password))
    };

    let mut seen = Vec::new();
    let (error, took) = refused(&cluster, Listener::SaslSsl, sasl(&ca, "not-the-password")).await;
    println!("wrong password after {took:?}: {error}");
    seen.push((error.to_string(), took));
    assert!(
        matches!(
            &error,
            Error::Connect {
                cause: ConnectFailure::Authentication(_),
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("authentication failed"),
        "{error}"
    );

    let other_ca = cluster.tls_file("other-ca.pem");
    let (error, took) = refused(&cluster, Listener::SaslSsl, sasl(&other_ca, &password)).await;
    println!("untrusted certificate after {took:?}: {error}");
    seen.push((error.to_string(), took));
    assert!(
        matches!(
            &error,
            Error::Connect {
                cause: ConnectFailure::UntrustedCertificate(_),
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("certificate not trusted"),
        "{error}"
    );

    let (error, took) = refused(&cluster, Listener::Misnamed, sasl(&ca, &password)).await;
    println!("wrong host name after {took:?}: {error}");
    seen.push((error.to_string(), took));
    assert!(
        matches!(
            &error,
            Error::Connect {
                cause: ConnectFailure::HostnameMismatch(_),
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("mismatch"), "{error}");

    for (error, took) in seen {
        assert!(took < Duration::from_secs(30), "{error} took {took:?}");
        assert!(!error.contains(&password), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }
}
