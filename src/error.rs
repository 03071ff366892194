//! The one error type of the core. The binding layer maps each variant to a
//! Python exception in `kafkalake.exceptions`; nothing here knows about Python.

use std::time::Duration;

/// Everything that can go wrong in kafkalake's core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad argument, caught before any work starts.
    #[error("{0}")]
    InvalidArgument(String),

    /// A librdkafka setting that librdkafka refuses (unknown key, bad value).
    #[error("{0}")]
    Config(String),

    /// No broker answered within the stated timeout.
    #[error(
        "no Kafka broker reachable at {servers} within {:.1} s ({detail}); \
         check bootstrap_servers, that the broker is running, and network/TLS/SASL settings",
        timeout.as_secs_f64()
    )]
    BrokerUnreachable {
        /// The bootstrap servers tried.
        servers: String,
        /// How long we waited.
        timeout: Duration,
        /// librdkafka's own words.
        detail: String,
    },

    /// The topic does not exist and creating it was not asked for.
    #[error(
        "topic '{topic}' does not exist on {servers}; create it first or pass \
         create_topic=True (with partitions=N) to have kafkalake create it"
    )]
    TopicNotFound {
        /// The missing topic.
        topic: String,
        /// Where we looked.
        servers: String,
    },

    /// A message larger than the client's or the broker's limit.
    #[error(
        "message {position} is {size} bytes, over the limit of {limit} bytes \
         (librdkafka 'message.max.bytes'); raise 'message.max.bytes' in config \
         (and the topic's 'max.message.bytes' on the broker) or send smaller messages"
    )]
    MessageTooLarge {
        /// Which message (row number or event index).
        position: u64,
        /// Its size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// A table that cannot be used as asked (schema conflict, not a table).
    #[error("{0}")]
    Table(String),

    /// A Delta Lake error.
    #[error("Delta Lake error: {0}")]
    Delta(String),

    /// Object storage could not be reached or refused the request.
    #[error("storage error: {0}")]
    Storage(String),

    /// Any other error reported by librdkafka.
    #[error("Kafka error: {0}")]
    Kafka(String),

    /// An Arrow error (schema mismatch, encoding).
    #[error("Arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rdkafka::error::KafkaError> for Error {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        use rdkafka::error::KafkaError as K;
        match e {
            K::ClientConfig(_, desc, key, value) => Error::Config(format!(
                "librdkafka rejected setting '{key}' = '{}': {desc}; see \
                 https://docs.confluent.io/platform/current/clients/librdkafka/html/md_CONFIGURATION.html \
                 for the valid keys",
                redact_value(&key, &value)
            )),
            K::ClientCreation(msg) => Error::Config(format!(
                "librdkafka could not create the client: {msg}; check the security, TLS and \
                 SASL settings in config"
            )),
            other => Error::Kafka(other.to_string()),
        }
    }
}

/// Keys whose values are secrets and never appear in messages.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.contains("token")
        || k.ends_with(".key")
        || k.contains("key.pem")
        || k.contains("connection_string")
        || k.contains("connectionstring")
        || k == "sasl.oauthbearer.config"
}

/// The value to show for a setting: itself, or a placeholder if it is a secret.
pub fn redact_value<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret_key(key) {
        "***"
    } else {
        value
    }
}

/// Shorthand for results in the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact_value("sasl.password", "hunter2"), "***");
        assert_eq!(redact_value("ssl.key.password", "x"), "***");
        assert_eq!(redact_value("ssl.key.pem", "x"), "***");
        assert_eq!(redact_value("client.id", "me"), "me");
    }
}
