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

    /// SASL authentication failed (wrong user or password, unknown user,
    /// mechanism not offered).
    #[error(
        "Kafka authentication failed at {servers} for user '{user}': {detail}; check \
         sasl.mechanism, sasl.username and sasl.password (for Event Hubs: the connection \
         string's key and key name)"
    )]
    Authentication {
        /// The bootstrap servers.
        servers: String,
        /// `sasl.username` (never the password).
        user: String,
        /// librdkafka's own words.
        detail: String,
    },

    /// The TLS handshake failed (untrusted or mismatched certificate).
    #[error(
        "TLS connection to {servers} failed: {detail}; if the broker's certificate is \
         signed by a private CA, pass its PEM file as ssl.ca.location in config"
    )]
    Tls {
        /// The bootstrap servers.
        servers: String,
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

    /// A run that could not do all it was asked (partitions left behind).
    #[error("{0}")]
    Incomplete(String),

    /// A stage's expectation with `on_violation = "fail"` failed.
    #[error("{0}")]
    Expectation(String),

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
        || k.contains("account_key")
        || k.contains("access_key")
        || k.contains("sas_")
        || k.ends_with("_key")
        || k == "key"
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

/// Secret values seen in settings and storage options, masked in every
/// message that leaves the core (an object store or librdkafka may quote a
/// URL or a setting back).
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Remember `value` as a secret to mask in messages.
pub fn register_secret(value: &str) {
    let v = value.trim();
    if v.len() < 4 {
        return;
    }
    if let Ok(mut s) = SECRETS.lock() {
        if !s.iter().any(|x| x == v) {
            s.push(v.to_string());
        }
    }
}

/// Register the values of the secret keys among `settings`.
pub fn register_secrets<'a>(settings: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (k, v) in settings {
        if is_secret_key(k) {
            register_secret(v);
        }
    }
}

/// `text` with registered secrets and URL signatures (`sig=…`) masked.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    if let Ok(secrets) = SECRETS.lock() {
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
    }
    // SAS signatures in URLs: sig=<value> up to the next delimiter.
    let mut masked = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("sig=") {
        masked.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let end = rest
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace() || c == ')')
            .unwrap_or(rest.len());
        if end > 0 {
            masked.push_str("***");
        }
        rest = &rest[end..];
    }
    masked.push_str(rest);
    masked
}

impl Error {
    /// The message for users: secrets masked, and for storage errors a
    /// hint at the likely cause.
    pub fn user_message(&self) -> String {
        let text = redact(&self.to_string());
        match self {
            Error::Storage(_) | Error::Delta(_) => match storage_hint(&text) {
                Some(h) => format!("{text}\nhint: {h}"),
                None => text,
            },
            _ => text,
        }
    }
}

/// What a storage failure most likely means, from the service's words.
fn storage_hint(text: &str) -> Option<&'static str> {
    let has = |s: &str| text.contains(s);
    if has("ContainerNotFound") {
        Some("the container does not exist: create it (portal, `az storage container create`) or fix the container name in the URI")
    } else if has("AuthorizationPermissionMismatch") || has("AuthorizationResourceTypeMismatch") {
        Some("the credential may read but not write here: a SAS token needs read, write, delete and list permissions (sp=rwdl) on the container; a service principal needs the 'Storage Blob Data Contributor' role")
    } else if has("AuthenticationFailed") || has("AuthorizationFailure") || has("403 Forbidden") {
        Some("the storage account refused the credentials: check azure_storage_account_name and azure_storage_account_key, that the SAS token (azure_storage_sas_token) is complete and not expired, or the service principal's client id/secret/tenant")
    } else if has("Invalid Access Key") {
        Some("azure_storage_account_key is not a valid base64 key: copy it again from the portal (Access keys)")
    } else if has("did not match any known pattern")
        || has("Unknown scheme")
        || has("Unknown url scheme")
    {
        Some("Azure locations look like az://<container>/<path>, abfss://<container>@<account>.dfs.core.windows.net/<path> or https://<account>.blob.core.windows.net/<container>/<path>")
    } else if has("Account must be specified") {
        Some("name the storage account: azure_storage_account_name in storage_options, AZURE_STORAGE_ACCOUNT_NAME, or an abfss://<container>@<account>.dfs.core.windows.net URI")
    } else if has("error sending request")
        || has("Connection refused")
        || has("deadline has elapsed")
        || has("operation timed out")
    {
        Some("the storage endpoint did not answer: check the account name / endpoint and the network; bound the wait with the storage options timeout, connect_timeout, max_retries and retry_timeout (e.g. '10s', '3')")
    } else {
        None
    }
}

/// Shorthand for results in the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_and_signatures_are_masked() {
        register_secret("s3cr3t-key-value");
        let text = redact(
            "PUT https://a.blob.core.windows.net/c/x?sv=2021&sig=AbC%2Fd&se=1 failed, key s3cr3t-key-value",
        );
        assert_eq!(
            text,
            "PUT https://a.blob.core.windows.net/c/x?sv=2021&sig=***&se=1 failed, key ***"
        );
        let e = Error::Storage("GET …: 404 Not Found <Code>ContainerNotFound</Code>".into());
        assert!(e
            .user_message()
            .contains("hint: the container does not exist"));
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact_value("sasl.password", "hunter2"), "***");
        assert_eq!(redact_value("ssl.key.password", "x"), "***");
        assert_eq!(redact_value("ssl.key.pem", "x"), "***");
        assert_eq!(redact_value("client.id", "me"), "me");
    }
}
