//! Where the Confluent Schema Registry is and how to reach it
//! ([`RegistrySettings`], `[registry]` in a node file). The client that
//! calls it is `registry_client` (feature `registry`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::kafka::secret::Secret;

/// Where the schema registry is and how to reach it (`[registry]` in a
/// node file). `Debug` never shows the password.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// Its base URL, `http://` or `https://`, without credentials.
    pub url: String,
    /// The user for HTTP basic authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// The password for HTTP basic authentication.
    #[serde(default)]
    pub password: Option<Secret>,
    /// PEM file of the certificate authorities to trust for `https://`,
    /// instead of the system's.
    #[serde(default)]
    pub ca_location: Option<PathBuf>,
    /// How long one HTTP call may take, in all (default 10 s).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl RegistrySettings {
    /// A registry at `url`, without authentication.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// With HTTP basic authentication.
    pub fn basic_auth(mut self, username: impl Into<String>, password: Secret) -> Self {
        self.username = Some(username.into());
        self.password = Some(password);
        self
    }

    /// Trusting the certificate authorities in a PEM file.
    pub fn ca_location(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_location = Some(path.into());
        self
    }

    /// What is wrong with the settings, before any call.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let url = self.url.trim_end_matches('/');
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!("url `{url}` has no scheme (http:// or https://)"));
        };
        if scheme != "http" && scheme != "https" {
            return Err(format!("url scheme `{scheme}` is neither http nor https"));
        }
        if rest.contains('@') {
            return Err("url carries credentials; give them as username and password".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("password given without username".into());
        }
        if self.ca_location.is_some() && scheme != "https" {
            return Err("ca_location given for a url that is not https".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_refuse_credentials_in_the_url_and_never_show_the_password() {
        let settings =
            RegistrySettings::new("http://registry:8081").basic_auth("me", Secret::new("hunter2"));
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(RegistrySettings::new("registry:8081").validate().is_err());
        let inline = RegistrySettings::new("https://me:hunter2@registry:8081");
        let why = inline.validate().unwrap_err();
        assert!(why.contains("credentials"), "{why}");
        assert!(!why.contains("hunter2"), "{why}");
    }
}
