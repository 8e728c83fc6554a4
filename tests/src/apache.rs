//! Apache Kafka itself, run by `tests/kafka/cluster.sh`: the suite's shared
//! cluster (named by `SCRIBE_TEST_KAFKA_DIR`), or a cluster of a test's own
//! for scenarios that kill brokers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the directory of the cluster the suite
/// runs against (`cluster.sh start --dir DIR`); set, tests run on Apache
/// Kafka and those that need it run too.
pub const KAFKA_DIR_VAR: &str = "SCRIBE_TEST_KAFKA_DIR";

/// A listener of the test clusters (see `tests/kafka/cluster.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// No authentication; a super user, never refused.
    Plaintext,
    /// SASL (PLAIN, SCRAM-SHA-256/512) over TLS.
    SaslSsl,
    /// SASL without TLS.
    SaslPlaintext,
    /// Mutual TLS: a client certificate is required; the principal is its CN.
    Ssl,
    /// SASL over TLS with a certificate for another host name.
    Misnamed,
}

impl Listener {
    fn key(self) -> &'static str {
        match self {
            Listener::Plaintext => "KAFKA_PLAINTEXT_BOOTSTRAP",
            Listener::SaslSsl => "KAFKA_SASL_SSL_BOOTSTRAP",
            Listener::SaslPlaintext => "KAFKA_SASL_PLAINTEXT_BOOTSTRAP",
            Listener::Ssl => "KAFKA_SSL_BOOTSTRAP",
            Listener::Misnamed => "KAFKA_MISNAMED_BOOTSTRAP",
        }
    }
}

/// An Apache Kafka cluster started by `tests/kafka/cluster.sh`.
#[derive(Debug)]
pub struct ApacheKafka {
    dir: PathBuf,
    env: HashMap<String, String>,
    /// Started by this handle, and stopped when it is dropped.
    owned: bool,
    /// Held while a cluster of a test's own runs: one at a time, so two
    /// tests killing brokers do not also starve each other of CPU.
    _turn: Option<std::sync::MutexGuard<'static, ()>>,
}

static OWN_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The cluster script.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/cluster.sh")
}

impl ApacheKafka {
    /// The suite's cluster, when `SCRIBE_TEST_KAFKA_DIR` names one.
    pub fn shared() -> Option<Self> {
        let dir = std::env::var(KAFKA_DIR_VAR).ok()?;
        let dir = PathBuf::from(dir.trim());
        (!dir.as_os_str().is_empty()).then(|| Self::open(dir, false))
    }

    /// The suite's cluster for a test that needs Apache Kafka (its
    /// listeners, its authorizer), or `None` outside the Apache Kafka pass,
    /// saying so.
    pub fn required(test: &str) -> Option<Self> {
        let cluster = Self::shared();
        if cluster.is_none() {
            eprintln!(
                "{test}: needs Apache Kafka (set {KAFKA_DIR_VAR} to a directory of \
                 tests/kafka/cluster.sh); runs in the Apache Kafka pass, skipped here"
            );
        }
        cluster
    }

    /// A new cluster of `brokers` brokers for this test alone, stopped on
    /// drop; `None` outside the Apache Kafka pass (saying so), where the
    /// broker jars may not be at hand.
    pub fn start_own(test: &str, brokers: u32) -> Option<Self> {
        Self::required(test)?;
        let turn = OWN_CLUSTER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = std::env::temp_dir().join(crate::unique("scribe-kafka"));
        let out = Command::new("bash")
            .arg(script())
            .args(["start", "--brokers", &brokers.to_string(), "--dir"])
            .arg(&dir)
            .output()
            .expect("cluster.sh runs");
        assert!(
            out.status.success(),
            "cluster.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cluster = Self::open(dir, true);
        cluster._turn = Some(turn);
        Some(cluster)
    }

    fn open(dir: PathBuf, owned: bool) -> Self {
        let text = std::fs::read_to_string(dir.join("cluster.env"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join("cluster.env").display()));
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self {
            dir,
            env,
            owned,
            _turn: None,
        }
    }

    fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("cluster.env has no {key}"))
    }

    /// The bootstrap list of one listener.
    pub fn bootstrap(&self, listener: Listener) -> &str {
        self.get(listener.key())
    }

    /// How many brokers the cluster has.
    pub fn brokers(&self) -> u32 {
        self.get("KAFKA_BROKERS").parse().expect("a number")
    }

    /// A file of the cluster's throwaway PKI: `ca.pem`, `other-ca.pem` (a CA
    /// nobody trusts), `client.pem` and `client.key`.
    pub fn tls_file(&self, name: &str) -> PathBuf {
        Path::new(self.get("KAFKA_TLS_DIR")).join(name)
    }

    /// The PLAIN user the brokers know, and its password.
    pub fn plain_user(&self) -> (&str, &str) {
        (
            self.get("KAFKA_PLAIN_USER"),
            self.get("KAFKA_PLAIN_PASSWORD"),
        )
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(script())
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .output()
            .expect("cluster.sh runs");
        assert!(
            out.status.success(),
            "cluster.sh {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates (or resets) a SCRAM-SHA-256 and -512 user.
    pub fn scram_user(&self, name: &str, password: &str) {
        self.run(&["scram-user", name, password]);
    }

    /// Lets `principal` do everything with every topic and group: for tests
    /// about getting in, not about what is allowed (that is `scribe acls`).
    pub fn allow_all(&self, principal: &str) {
        self.acls(&[
            "--add",
            "--allow-principal",
            principal,
            "--operation",
            "All",
            "--topic",
            "*",
            "--group",
            "*",
        ]);
    }

    /// Runs Kafka's own `kafka-acls` tool as a super user.
    pub fn acls(&self, args: &[&str]) -> String {
        let mut all = vec!["acls"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// SIGKILLs broker `id` (1-based) and waits until it is gone.
    pub fn kill(&self, id: u32) {
        self.run(&["kill", &id.to_string()]);
    }

    /// Starts broker `id` again and waits until it answers.
    pub fn restart(&self, id: u32) {
        self.run(&["restart", &id.to_string()]);
    }

    /// The id of the broker leading `topic`'s `partition`.
    pub fn leader(&self, topic: &str, partition: i32) -> u32 {
        let out = self.run(&["leader", topic, &partition.to_string()]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no leader for {topic}/{partition}: {out:?}"))
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        if self.owned && std::thread::panicking() {
            // The test failed: show what the brokers said before they go.
            for id in 1..=self.brokers() {
                let log = self.dir.join(format!("broker-{id}/server.log"));
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- broker {id} log (last 40 lines, newest first):");
                for line in tail {
                    eprintln!("{line}");
                }
            }
        }
        if self.owned {
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .arg("--dir")
                .arg(&self.dir)
                .status();
        }
    }
}
