//! librdkafka client configuration.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::{redact_value, Error, Result};

/// Where the cluster is and how to talk to it.
#[derive(Clone, Default)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// librdkafka settings, dotted keys as they are (`security.protocol`, …).
    pub settings: Vec<(String, String)>,
    /// How long to wait for the cluster to answer before giving up.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={}", redact_value(k, v)))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("settings", &settings)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl KafkaConfig {
    /// Check what can be checked without the network.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "bootstrap_servers is empty; pass 'host:port' of at least one broker".into(),
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "connect_timeout must be positive".into(),
            ));
        }
        for (k, _) in &self.settings {
            if k == "bootstrap.servers" {
                return Err(Error::InvalidArgument(
                    "pass the brokers as bootstrap_servers, not as 'bootstrap.servers' in config"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// A librdkafka config: kafkalake's defaults, then the user's settings,
    /// which win.
    pub fn client_config(&self, defaults: &[(&str, String)]) -> ClientConfig {
        crate::error::register_secrets(self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        // Fail connections in step with the stated timeout rather than
        // librdkafka's 30 s socket default.
        let ms = self.connect_timeout.as_millis().max(1000).to_string();
        c.set("socket.connection.setup.timeout.ms", &ms);
        for (k, v) in defaults {
            c.set(*k, v);
        }
        for (k, v) in &self.settings {
            c.set(k, v);
        }
        c
    }

    /// The value a setting will have, if the user gave it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The last error librdkafka reported through its error callback: what a
/// connection attempt ran into (TLS handshake, SASL), which a metadata
/// timeout alone does not say.
#[derive(Default, Debug)]
pub struct ClientErrors {
    last: Mutex<Option<(RDKafkaErrorCode, String)>>,
    /// The last TLS or SASL failure, kept apart: librdkafka follows it with
    /// "all brokers are down", which says less.
    fatal: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl ClientErrors {
    /// Record an error from `ClientContext::error`.
    pub fn record(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
        let entry = Some((code, reason.to_string()));
        if matches!(
            code,
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::SSL
        ) {
            if let Ok(mut f) = self.fatal.lock() {
                *f = entry.clone();
            }
        }
        if let Ok(mut l) = self.last.lock() {
            *l = entry;
        }
    }

    /// The last error seen, if any.
    pub fn last(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// An error that no retry will fix (bad credentials, an untrusted
    /// certificate): worth failing on at once instead of at the timeout.
    pub fn fatal_for_connect(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }
}

/// A client context that keeps librdkafka's errors for [`ClientErrors`].
pub trait WatchErrors {
    /// The errors seen by this client.
    fn errors(&self) -> &ClientErrors;
}
