//! Values that must never be printed.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// A password or key: readable by the program, never shown in `Debug`,
/// logs or errors.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself, to hand to the Kafka client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Whether a librdkafka property holds a secret (`sasl.password`,
/// `ssl.key.password`, `ssl.key.pem`, `sasl.oauthbearer.client.secret`, ...).
pub(crate) fn is_secret_key(key: &str) -> bool {
    [
        "password",
        "secret",
        ".pem",
        "sasl.oauthbearer.config",
        "ssl_key",
        "ssl.key",
    ]
    .iter()
    .any(|marker| key.contains(marker))
}

/// librdkafka properties passed through as they are; `Debug` redacts the
/// values of secret ones.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Properties(pub BTreeMap<String, String>);

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown: &dyn fmt::Debug = if is_secret_key(k) { &"<redacted>" } else { v };
                (k, shown)
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
        let props = Properties(
            [
                ("sasl.password", "hunter2"),
                ("ssl.key.pem", "-----BEGIN"),
                ("linger.ms", "5"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        let shown = format!("{props:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("BEGIN"),
            "{shown}"
        );
        assert!(shown.contains(r#""linger.ms": "5""#), "{shown}");
    }
}
