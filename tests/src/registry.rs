//! A schema registry server for tests: `tests/registry/Registry.java`, the
//! Confluent Schema Registry endpoints scribe and confluent-kafka use, run
//! with Java on Apache Avro's library (`tests/registry/fetch.sh` fetches it).
//!
//! Without Java or the jars a test says so and passes, unless
//! `SCRIBE_REQUIRE_REGISTRY=1` (CI sets it), when it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running registry server; stopped when dropped.
pub struct RegistryServer {
    child: Child,
    url: String,
    credentials: Option<(String, String)>,
    ca: Option<PathBuf>,
    /// The TLS files, removed when dropped.
    dir: Option<PathBuf>,
}

/// How a [`RegistryServer`] is started.
#[derive(Debug, Default, Clone)]
pub struct RegistryOptions {
    /// HTTP basic authentication every request must carry.
    pub credentials: Option<(String, String)>,
    /// Serve HTTPS, with a certificate for 127.0.0.1 from a throwaway CA.
    pub tls: bool,
}

fn libs() -> PathBuf {
    let cache = std::env::var("SCRIBE_CACHE").map_or_else(
        |_| Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cache/scribe"),
        PathBuf::from,
    );
    let version = std::env::var("SCRIBE_AVRO_VERSION").unwrap_or_else(|_| "1.12.1".into());
    cache.join(format!("avro-{version}/libs"))
}

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("registry/Registry.java")
}

impl RegistryServer {
    /// Starts a registry, or returns `None` (the test then skips) when Java
    /// or the Avro jars are missing and `SCRIBE_REQUIRE_REGISTRY` is not 1.
    pub fn start(options: RegistryOptions) -> Option<Self> {
        let available = libs().join(".complete").exists()
            && Command::new("java")
                .arg("-version")
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !available {
            let required = std::env::var("SCRIBE_REQUIRE_REGISTRY").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "SCRIBE_REQUIRE_REGISTRY=1 but Java or the Avro jars are missing \
                 (run tests/registry/fetch.sh)"
            );
            eprintln!("skipped: no schema registry (Java, and tests/registry/fetch.sh)");
            return None;
        }
        let mut command = Command::new("java");
        command
            .args([
                "-Xmx128m",
                "-XX:TieredStopAtLevel=1",
                "-Dslf4j.internal.verbosity=ERROR",
                "-cp",
            ])
            .arg(format!("{}/*", libs().display()))
            .arg(source());
        if let Some((user, password)) = &options.credentials {
            command.args(["--user", user, "--password", password]);
        }
        let (dir, ca) = if options.tls {
            let dir = std::env::temp_dir().join(crate::unique("scribe-registry-tls"));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            let (keystore, ca) = certificates(&dir);
            command
                .arg("--keystore")
                .arg(keystore)
                .args(["--keystore-password", "changeit"]);
            (Some(dir), Some(ca))
        } else {
            (None, None)
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("java starts");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the registry prints where it listens");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the registry did not start: {line:?}"))
            .to_owned();
        Some(Self {
            child,
            url,
            credentials: options.credentials,
            ca,
            dir,
        })
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PEM file of the CA that signed its certificate, when it serves
    /// HTTPS.
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// Settings that reach it: its URL, credentials and CA.
    pub fn settings(&self) -> scribe::RegistrySettings {
        let mut settings = scribe::RegistrySettings::new(&self.url);
        if let Some((user, password)) = &self.credentials {
            settings = settings.basic_auth(user, scribe::Secret::new(password));
        }
        if let Some(ca) = &self.ca {
            settings = settings.ca_location(ca);
        }
        settings
    }
}

impl std::fmt::Debug for RegistryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryServer")
            .field("url", &self.url)
            .field("tls", &self.ca.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it, as a PKCS#12
/// keystore (password `changeit`) Java serves with; returns the keystore
/// and the CA's PEM file.
fn certificates(dir: &Path) -> (PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=scribe registry CA",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("written");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    run(&[
        "pkcs12",
        "-export",
        "-in",
        "server.pem",
        "-inkey",
        "server.key",
        "-out",
        "server.p12",
        "-passout",
        "pass:changeit",
    ]);
    (dir.join("server.p12"), dir.join("ca.pem"))
}
