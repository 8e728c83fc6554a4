//! A client of the Confluent Schema Registry, for the few REST calls
//! scribe makes (feature `registry`).
//!
//! Schema ids are registered when the node starts and looked up once per
//! id, never per record ([`SchemaRegistry`](crate::SchemaRegistry) keeps
//! them; it asks this client through [`SchemaLookup`]). The client is
//! blocking (HTTP/1.1 with `ureq`); the node calls it off the actors'
//! threads at start, and a reader calls it only for an id it has not seen.

use std::fmt;
use std::time::Duration;

use apache_avro::Schema;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::kafka::registry::RegistrySettings;
use crate::kafka::secret::Secret;
use crate::wire::codec::SchemaLookup;

/// What the registry answered to a compatibility check of one schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compatibility {
    /// The subject does not exist: the schema would be its first version.
    NewSubject,
    /// The schema is already the subject's or may follow its latest
    /// version under the subject's level.
    Compatible {
        /// The subject's compatibility level (`BACKWARD`, `FULL`, ...).
        level: String,
    },
    /// Registering the schema would be refused.
    Incompatible {
        /// The subject's compatibility level.
        level: String,
        /// What the registry says breaks.
        messages: Vec<String>,
    },
}

/// A blocking client of the Confluent Schema Registry REST API.
#[derive(Clone)]
pub struct RegistryClient {
    agent: ureq::Agent,
    base: String,
    auth: Option<Secret>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.base)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// An error body of the registry.
#[derive(Deserialize)]
struct ErrorBody {
    error_code: i64,
    message: String,
}

/// A registry answer that is not a success: its HTTP status, the
/// registry's error code and message.
struct Refused {
    status: u16,
    code: i64,
    message: String,
}

/// Subject not found (`40401`).
const SUBJECT_NOT_FOUND: i64 = 40401;
/// Schema not found (`40403`).
const SCHEMA_NOT_FOUND: i64 = 40403;

impl RegistryClient {
    /// A client for `settings`; reads the CA file now.
    pub fn new(settings: &RegistrySettings) -> Result<Self> {
        let base = settings.url.trim_end_matches('/').to_owned();
        let fail = |reason: String| Error::Registry {
            url: without_credentials(&base),
            call: "settings".into(),
            reason,
        };
        settings.validate().map_err(fail)?;
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::NativeTls);
        tls = tls.root_certs(ureq::tls::RootCerts::PlatformVerifier);
        if let Some(path) = &settings.ca_location {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read ca_location {}: {e}", path.display())))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| fail(format!("ca_location {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(fail(format!(
                    "ca_location {} holds no certificate",
                    path.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(settings.timeout.unwrap_or(Duration::from_secs(10))))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build()
            .into();
        let auth = settings.username.as_ref().map(|user| {
            use base64::Engine as _;
            let pair = format!(
                "{user}:{}",
                settings.password.as_ref().map_or("", |p| p.expose())
            );
            Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        });
        Ok(Self { agent, base, auth })
    }

    /// The registry's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn error(&self, call: &str, reason: impl Into<String>) -> Error {
        Error::Registry {
            url: self.base.clone(),
            call: call.to_owned(),
            reason: reason.into(),
        }
    }

    /// One call; the body of a 2xx answer, or what the registry refused.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<std::result::Result<serde_json::Value, Refused>> {
        let url = format!("{}/{path}", self.base);
        let call = format!("{method} /{path}");
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", "application/vnd.schemaregistry.v1+json")
            .header("Content-Type", "application/vnd.schemaregistry.v1+json");
        let request = match &self.auth {
            Some(auth) => request.header("Authorization", auth.expose()),
            None => request,
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = request
            .body(body)
            .map_err(|e| self.error(&call, e.to_string()))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| self.error(&call, e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.error(&call, format!("reading the answer: {e}")))?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .map(Ok)
                .map_err(|e| self.error(&call, format!("answer is not json: {e}")));
        }
        let refused = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Refused {
                status,
                code: body.error_code,
                message: body.message,
            },
            Err(_) => Refused {
                status,
                code: i64::from(status),
                message: text.chars().take(200).collect(),
            },
        };
        if status == 401 || status == 403 {
            return Err(self.error(
                &call,
                format!("refused credentials (http {status}): {}", refused.message),
            ));
        }
        Ok(Err(refused))
    }

    fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        self.call(method, path, body)?
            .map_err(|refused| self.refused(&format!("{method} /{path}"), &refused))
    }

    fn refused(&self, call: &str, refused: &Refused) -> Error {
        self.error(
            call,
            format!(
                "http {} (error {}): {}",
                refused.status, refused.code, refused.message
            ),
        )
    }

    fn schema_body(schema: &Schema) -> Result<serde_json::Value> {
        let text = serde_json::to_string(schema).map_err(|e| Error::Registry {
            url: String::new(),
            call: "encoding a schema".into(),
            reason: e.to_string(),
        })?;
        Ok(serde_json::json!({ "schema": text }))
    }

    /// Registers `schema` under `subject` (or finds it there) and returns
    /// its id. Fails, with the registry's reason, when the subject's
    /// compatibility level refuses it.
    pub fn register(&self, subject: &str, schema: &Schema) -> Result<u32> {
        let path = format!("subjects/{}/versions", encode(subject));
        let answer = self.expect("POST", &path, Some(&Self::schema_body(schema)?))?;
        id_of(&answer).ok_or_else(|| self.error(&format!("POST /{path}"), "answer has no id"))
    }

    /// The schema registered with `id`; `None` when the registry has no
    /// such id.
    pub fn schema(&self, id: u32) -> Result<Option<Schema>> {
        let path = format!("schemas/ids/{id}");
        match self.call("GET", &path, None)? {
            Ok(answer) => self.parse(&format!("GET /{path}"), &answer).map(Some),
            Err(refused) if refused.code == SCHEMA_NOT_FOUND => Ok(None),
            Err(refused) => Err(self.refused(&format!("GET /{path}"), &refused)),
        }
    }

    fn parse(&self, call: &str, answer: &serde_json::Value) -> Result<Schema> {
        let text = answer
            .get("schema")
            .and_then(|s| s.as_str())
            .ok_or_else(|| self.error(call, "answer has no schema"))?;
        Schema::parse_str(text).map_err(|e| self.error(call, format!("schema does not parse: {e}")))
    }

    /// Every version registered under `subject`, as `(id, schema)`; empty
    /// when the subject does not exist.
    pub fn versions(&self, subject: &str) -> Result<Vec<(u32, Schema)>> {
        let path = format!("subjects/{}/versions", encode(subject));
        let numbers = match self.call("GET", &path, None)? {
            Ok(numbers) => numbers,
            Err(refused) if refused.code == SUBJECT_NOT_FOUND => return Ok(Vec::new()),
            Err(refused) => return Err(self.refused(&format!("GET /{path}"), &refused)),
        };
        let numbers: Vec<u64> = serde_json::from_value(numbers)
            .map_err(|e| self.error(&format!("GET /{path}"), e.to_string()))?;
        numbers
            .into_iter()
            .map(|n| {
                let path = format!("subjects/{}/versions/{n}", encode(subject));
                let answer = self.expect("GET", &path, None)?;
                let call = format!("GET /{path}");
                let id = id_of(&answer).ok_or_else(|| self.error(&call, "answer has no id"))?;
                Ok((id, self.parse(&call, &answer)?))
            })
            .collect()
    }

    /// The compatibility level that applies to `subject`.
    pub fn level(&self, subject: &str) -> Result<String> {
        let path = format!("config/{}?defaultToGlobal=true", encode(subject));
        let answer = self.expect("GET", &path, None)?;
        answer
            .get("compatibilityLevel")
            .or_else(|| answer.get("compatibility"))
            .and_then(|l| l.as_str())
            .map(str::to_owned)
            .ok_or_else(|| self.error(&format!("GET /{path}"), "answer has no level"))
    }

    /// Whether `schema` could be registered under `subject` now.
    pub fn check(&self, subject: &str, schema: &Schema) -> Result<Compatibility> {
        let path = format!(
            "compatibility/subjects/{}/versions/latest?verbose=true",
            encode(subject)
        );
        let answer = match self.call("POST", &path, Some(&Self::schema_body(schema)?))? {
            Ok(answer) => answer,
            Err(refused) if refused.code == SUBJECT_NOT_FOUND => {
                return Ok(Compatibility::NewSubject);
            }
            Err(refused) => return Err(self.refused(&format!("POST /{path}"), &refused)),
        };
        let level = self.level(subject)?;
        let compatible = answer
            .get("is_compatible")
            .and_then(|c| c.as_bool())
            .ok_or_else(|| self.error(&format!("POST /{path}"), "answer has no is_compatible"))?;
        Ok(if compatible {
            Compatibility::Compatible { level }
        } else {
            let messages = answer
                .get("messages")
                .and_then(|m| m.as_array())
                .map(|m| {
                    m.iter()
                        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Compatibility::Incompatible { level, messages }
        })
    }
}

impl SchemaLookup for RegistryClient {
    fn url(&self) -> &str {
        &self.base
    }

    fn schema(&self, id: u32) -> Result<Option<Schema>> {
        RegistryClient::schema(self, id)
    }
}

/// `url` without any `user:password@` it carries.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://<redacted>@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn id_of(answer: &serde_json::Value) -> Option<u32> {
    answer
        .get("id")
        .and_then(|id| id.as_u64())
        .and_then(|id| u32::try_from(id).ok())
}

/// A subject as one URL path segment.
fn encode(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for b in subject.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_never_shows_the_password_nor_a_url_with_credentials() {
        let inline = RegistrySettings::new("https://me:hunter2@registry:8081");
        let why = RegistryClient::new(&inline).unwrap_err().to_string();
        assert!(why.contains("credentials"), "{why}");
        assert!(!why.contains("hunter2"), "{why}");
        let settings =
            RegistrySettings::new("http://registry:8081").basic_auth("me", Secret::new("hunter2"));
        let client = RegistryClient::new(&settings).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn subjects_are_escaped_as_one_path_segment() {
        assert_eq!(encode("a/b c-value"), "a%2Fb%20c-value");
    }
}
