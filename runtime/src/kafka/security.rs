//! How a node's clients reach a secured cluster: TLS (with an optional
//! client certificate) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
//!
//! One type serves `[kafka.security]` in a node file and
//! [`crate::NodeBuilder::security`] in code. [`Security::check`] refuses an
//! incomplete or contradictory setting, naming the field, before any
//! connection; the node's first contact with the cluster then tells an
//! authentication failure, an untrusted certificate and a host name
//! mismatch apart (see [`crate::Error::Connect`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::kafka::secret::Secret;

/// The protocol between a node's clients and the brokers
/// (librdkafka's `security.protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Neither encryption nor authentication. The default.
    #[default]
    Plaintext,
    /// TLS; with a client certificate, mutual TLS.
    Ssl,
    /// SASL without TLS: credentials cross the network in the clear with
    /// PLAIN.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// A SASL mechanism (librdkafka's `sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// User name and password as they are; use it over TLS only.
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// `[kafka.security]`: TLS and SASL settings for every client of a node.
///
/// ```toml
/// [kafka.security]
/// protocol = "sasl_ssl"
/// ca_file = "/etc/scribe/ca.pem"
/// sasl_mechanism = "SCRAM-SHA-512"
/// sasl_username = "orders-node"
/// sasl_password = "..."          # or SCRIBE__KAFKA__SECURITY__SASL_PASSWORD
/// ```
///
/// `Debug` shows no password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`. The default is
    /// `plaintext`.
    #[serde(default)]
    pub protocol: Protocol,
    /// The CA certificates (PEM) that brokers' certificates must chain to.
    /// The default is the system's trust store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The client certificate (PEM), for mutual TLS; with `key_file`.
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// The client certificate's private key (PEM); with `certificate_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The password of `key_file`, if it is encrypted.
    #[serde(default)]
    pub key_password: Option<Secret>,
    /// Whether a broker's certificate must name the host connected to.
    /// The default is `true`; turning it off lets anyone holding a
    /// certificate from the same CA pose as a broker.
    #[serde(default = "yes")]
    pub verify_hostname: bool,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required by the SASL
    /// protocols.
    #[serde(default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// The SASL user; required by the SASL protocols.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// The SASL password; required by the SASL protocols.
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// The node's principal as the brokers know it (`User:NAME`), for
    /// `scribe acls`; not sent anywhere. The default is `User:` and the
    /// SASL user name. With mutual TLS, set it to what the brokers map the
    /// client certificate to.
    #[serde(default)]
    pub principal: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for Security {
    fn default() -> Self {
        Self {
            protocol: Protocol::Plaintext,
            ca_file: None,
            certificate_file: None,
            key_file: None,
            key_password: None,
            verify_hostname: true,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            principal: None,
        }
    }
}

impl Security {
    /// TLS to the brokers, trusting the CA certificates in `ca_file`.
    pub fn tls(ca_file: impl Into<PathBuf>) -> Self {
        Self {
            protocol: Protocol::Ssl,
            ca_file: Some(ca_file.into()),
            ..Self::default()
        }
    }

    /// Adds SASL with `mechanism` as `username`: over TLS when TLS was
    /// set, else in plaintext.
    pub fn sasl(
        mut self,
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: Secret,
    ) -> Self {
        self.protocol = if self.protocol.tls() {
            Protocol::SaslSsl
        } else {
            Protocol::SaslPlaintext
        };
        self.sasl_mechanism = Some(mechanism);
        self.sasl_username = Some(username.into());
        self.sasl_password = Some(password);
        self
    }

    /// Adds a client certificate and its key (mutual TLS).
    pub fn client_certificate(
        mut self,
        certificate_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Self {
        self.certificate_file = Some(certificate_file.into());
        self.key_file = Some(key_file.into());
        self
    }

    /// Whether this is the default: plaintext, nothing else set.
    pub fn is_plaintext(&self) -> bool {
        *self == Self::default()
    }

    /// Refuses an incomplete or contradictory setting, naming the field
    /// (`sasl_password: missing: protocol `sasl_ssl` needs it`), and files
    /// that cannot be read. Touches no network.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let protocol = self.protocol;
        if protocol.sasl() {
            let missing = |field: &'static str| {
                (
                    field,
                    format!("missing: protocol `{}` needs it", protocol.name()),
                )
            };
            if self.sasl_mechanism.is_none() {
                return Err(missing("sasl_mechanism"));
            }
            if self.sasl_username.as_deref().is_none_or(str::is_empty) {
                return Err(missing("sasl_username"));
            }
            if self.sasl_password.is_none() {
                return Err(missing("sasl_password"));
            }
        } else {
            let set = [
                ("sasl_mechanism", self.sasl_mechanism.is_some()),
                ("sasl_username", self.sasl_username.is_some()),
                ("sasl_password", self.sasl_password.is_some()),
            ];
            if let Some((field, _)) = set.iter().find(|(_, set)| *set) {
                return Err((
                    field,
                    format!(
                        "set, but protocol `{}` has no SASL (use `sasl_ssl` or `sasl_plaintext`)",
                        protocol.name()
                    ),
                ));
            }
        }
        let files = [
            ("ca_file", &self.ca_file),
            ("certificate_file", &self.certificate_file),
            ("key_file", &self.key_file),
        ];
        if !protocol.tls() {
            if let Some((field, _)) = files.iter().find(|(_, f)| f.is_some()) {
                return Err((
                    field,
                    format!(
                        "set, but protocol `{}` has no TLS (use `ssl` or `sasl_ssl`)",
                        protocol.name()
                    ),
                ));
            }
            if !self.verify_hostname {
                return Err((
                    "verify_hostname",
                    format!("set, but protocol `{}` has no TLS", protocol.name()),
                ));
            }
        }
        match (&self.certificate_file, &self.key_file) {
            (Some(_), None) => {
                return Err(("key_file", "missing: certificate_file needs it".into()));
            }
            (None, Some(_)) => {
                return Err(("certificate_file", "missing: key_file needs it".into()));
            }
            _ => {}
        }
        if let Some(principal) = &self.principal {
            let valid = principal
                .split_once(':')
                .is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty());
            if !valid {
                return Err((
                    "principal",
                    format!("`{principal}` is not `TYPE:NAME` (e.g. `User:orders`)"),
                ));
            }
        }
        if self.key_password.is_some() && self.key_file.is_none() {
            return Err(("key_password", "set, but there is no key_file".into()));
        }
        for (field, file) in files {
            if let Some(path) = file {
                readable(path).map_err(|reason| (field, reason))?;
            }
        }
        Ok(())
    }

    /// The librdkafka properties this setting stands for.
    pub(crate) fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.is_plaintext() {
            return out;
        }
        out.push(("security.protocol", self.protocol.name().to_owned()));
        let path = |p: &Path| p.display().to_string();
        if let Some(ca) = &self.ca_file {
            out.push(("ssl.ca.location", path(ca)));
        }
        if let Some(cert) = &self.certificate_file {
            out.push(("ssl.certificate.location", path(cert)));
        }
        if let Some(key) = &self.key_file {
            out.push(("ssl.key.location", path(key)));
        }
        if let Some(password) = &self.key_password {
            out.push(("ssl.key.password", password.expose().to_owned()));
        }
        if self.protocol.tls() {
            let check = if self.verify_hostname {
                "https"
            } else {
                "none"
            };
            out.push(("ssl.endpoint.identification.algorithm", check.to_owned()));
        }
        if let Some(mechanism) = self.sasl_mechanism {
            out.push(("sasl.mechanism", mechanism.name().to_owned()));
        }
        if let Some(user) = &self.sasl_username {
            out.push(("sasl.username", user.clone()));
        }
        if let Some(password) = &self.sasl_password {
            out.push(("sasl.password", password.expose().to_owned()));
        }
        out
    }
}

fn readable(path: &Path) -> Result<(), String> {
    match std::fs::File::open(path) {
        Ok(_) if path.is_file() => Ok(()),
        Ok(_) => Err(format!("`{}` is not a file", path.display())),
        Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl_ssl() -> Security {
        Security {
            protocol: Protocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha256),
            sasl_username: Some("alice".into()),
            sasl_password: Some(Secret::new("hunter2")),
            ..Security::default()
        }
    }

    #[test]
    fn sasl_without_a_password_is_refused_naming_the_field() {
        let mut s = sasl_ssl();
        s.sasl_password = None;
        let (field, reason) = s.check().unwrap_err();
        assert_eq!(field, "sasl_password");
        assert_eq!(reason, "missing: protocol `sasl_ssl` needs it");
    }

    #[test]
    fn credentials_on_a_protocol_without_sasl_are_refused() {
        let s = Security {
            protocol: Protocol::Ssl,
            ..sasl_ssl()
        };
        assert_eq!(s.check().unwrap_err().0, "sasl_mechanism");
    }

    #[test]
    fn a_missing_ca_file_is_refused_with_its_path() {
        let s = Security {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..sasl_ssl()
        };
        let (field, reason) = s.check().unwrap_err();
        assert_eq!(field, "ca_file");
        assert!(reason.contains("/nonexistent/ca.pem"), "{reason}");
    }

    #[test]
    fn a_certificate_needs_its_key() {
        let s = Security {
            protocol: Protocol::Ssl,
            certificate_file: Some("/etc/hostname".into()),
            ..Security::default()
        };
        assert_eq!(s.check().unwrap_err().0, "key_file");
    }

    #[test]
    fn hostname_verification_is_on_by_default() {
        let props = Security::tls("/etc/hostname").properties();
        assert!(props.contains(&("ssl.endpoint.identification.algorithm", "https".into())));
        assert!(props.contains(&("security.protocol", "ssl".into())));
    }

    #[test]
    fn the_password_is_not_in_debug() {
        assert!(!format!("{:?}", sasl_ssl()).contains("hunter2"));
    }
}
