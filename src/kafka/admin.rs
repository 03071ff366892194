//! Reaching the cluster, making sure a topic exists, and the topic
//! administration of the concepts labs (create with configs, list, describe,
//! delete).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;

use super::config::{KafkaConfig, WatchErrors};
use super::embedded;
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// Partitions of a topic kafkalake creates on a real cluster unless told
/// otherwise (seed 001's layout).
pub const DEFAULT_PARTITIONS: i32 = 4;

/// How a missing topic is handled.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    /// Create it if missing.
    pub create: bool,
    /// Partitions of a created topic; `None` takes the embedded cluster's
    /// default, or [`DEFAULT_PARTITIONS`] on a real cluster.
    pub partitions: Option<i32>,
    /// Replication factor of a created topic.
    pub replication_factor: i32,
    /// Topic configs of a created topic (`retention.ms`, `cleanup.policy`, …).
    pub configs: Vec<(String, String)>,
}

impl Default for TopicSpec {
    fn default() -> Self {
        TopicSpec {
            create: true,
            partitions: None,
            replication_factor: 1,
            configs: Vec::new(),
        }
    }
}

/// One partition of a described topic.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    /// Partition id.
    pub id: i32,
    /// The leader's broker id (-1: none).
    pub leader: i32,
    /// Broker ids holding a replica.
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub isr: Vec<i32>,
    /// The earliest offset still in the log.
    pub log_start: i64,
    /// The offset the next message will get.
    pub log_end: i64,
}

/// A described topic.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Its partitions, by id.
    pub partitions: Vec<PartitionInfo>,
    /// Its configs as the broker reports them (`None`: the broker does not
    /// describe configs).
    pub configs: Option<Vec<(String, String)>>,
}

/// Metadata for `topic` (or all topics), or a clear error if no broker
/// answers within the configured timeout. A TLS or SASL failure (which
/// librdkafka would retry until the timeout) fails at once, in its own words.
pub fn fetch_metadata<C: ClientContext + WatchErrors>(
    client: &Client<C>,
    cfg: &KafkaConfig,
    topic: Option<&str>,
) -> Result<Metadata> {
    let deadline = Instant::now() + cfg.connect_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let step = left
            .min(Duration::from_millis(250))
            .max(Duration::from_millis(1));
        match client.fetch_metadata(topic, step) {
            Ok(md) => return Ok(md),
            Err(e) => {
                let ctx = client.context();
                if let Some((code, reason)) = ctx.errors().fatal_for_connect() {
                    return Err(connect_failure(cfg, code, &reason));
                }
                if Instant::now() >= deadline {
                    let detail = match ctx.errors().last() {
                        Some((_, reason)) => format!("{e}; last error: {reason}"),
                        None => e.to_string(),
                    };
                    return Err(Error::BrokerUnreachable {
                        servers: cfg.bootstrap_servers.clone(),
                        timeout: cfg.connect_timeout,
                        detail,
                    });
                }
            }
        }
    }
}

/// A client context that only watches errors, so a TLS or SASL failure is
/// named at once ([`check_topics`], the group and topic calls).
#[derive(Default)]
pub(crate) struct Watcher {
    errors: super::config::ClientErrors,
}

impl ClientContext for Watcher {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.record(&error, reason);
    }
}

impl WatchErrors for Watcher {
    fn errors(&self) -> &super::config::ClientErrors {
        &self.errors
    }
}

impl rdkafka::consumer::ConsumerContext for Watcher {}

impl rdkafka::producer::ProducerContext for Watcher {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// Reach the cluster and check that every topic exists, with a client whose
/// errors are served as they happen (a consumer only reports them from its
/// poll loop, without librdkafka's explanation), so a TLS or SASL failure
/// is named at once.
pub fn check_topics(cfg: &KafkaConfig, topics: &[String]) -> Result<()> {
    use rdkafka::producer::Producer;
    let probe: rdkafka::producer::ThreadedProducer<Watcher> = cfg
        .client_config(&[])
        .create_with_context(Watcher::default())?;
    for t in topics {
        if partition_count(probe.client(), cfg, t)?.is_none() {
            return Err(Error::TopicNotFound {
                topic: t.clone(),
                servers: cfg.bootstrap_servers.clone(),
            });
        }
    }
    Ok(())
}

/// The error for a connection that failed on TLS or SASL.
pub fn connect_failure(cfg: &KafkaConfig, code: RDKafkaErrorCode, reason: &str) -> Error {
    match code {
        RDKafkaErrorCode::SSL => Error::Tls {
            servers: cfg.bootstrap_servers.clone(),
            detail: reason.to_string(),
        },
        _ => Error::Authentication {
            servers: cfg.bootstrap_servers.clone(),
            user: cfg.get("sasl.username").unwrap_or("").to_string(),
            detail: reason.to_string(),
        },
    }
}

/// Partition count of `topic`, or `None` if the cluster does not know it.
pub fn partition_count<C: ClientContext + WatchErrors>(
    client: &Client<C>,
    cfg: &KafkaConfig,
    topic: &str,
) -> Result<Option<usize>> {
    let md = fetch_metadata(client, cfg, Some(topic))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match t.error() {
        None if !t.partitions().is_empty() => Ok(Some(t.partitions().len())),
        None => Ok(None),
        Some(code) => match RDKafkaErrorCode::from(code) {
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => Ok(None),
            RDKafkaErrorCode::LeaderNotAvailable => Ok(None),
            other => Err(Error::Kafka(format!(
                "metadata for topic '{topic}': {other}"
            ))),
        },
    }
}

/// Make sure `topic` exists (creating it if `spec.create`); returns its
/// partition count.
pub fn ensure_topic<C: ClientContext + WatchErrors>(
    client: &Client<C>,
    cfg: &KafkaConfig,
    topic: &str,
    spec: &TopicSpec,
) -> Result<usize> {
    if let Some(n) = partition_count(client, cfg, topic)? {
        return Ok(n);
    }
    if !spec.create {
        return Err(Error::TopicNotFound {
            topic: topic.to_string(),
            servers: cfg.bootstrap_servers.clone(),
        });
    }
    create_topic(cfg, topic, spec)?;
    // Metadata lags creation on some brokers: wait until it shows.
    let deadline = Instant::now() + cfg.connect_timeout;
    loop {
        if let Some(n) = partition_count(client, cfg, topic)? {
            return Ok(n);
        }
        if Instant::now() > deadline {
            return Err(Error::Kafka(format!(
                "topic '{topic}' was created but did not appear in the metadata within {:.1} s",
                cfg.connect_timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What to do instead of deleting a topic of an embedded cluster.
const EMBEDDED_DELETE: &str = "librdkafka's test cluster has no topic deletion: \
    use a new topic name or a new EmbeddedKafka, or a real broker";

/// Admin requests wait at most the connect timeout, on the broker and in
/// the client (whose own default is a minute).
fn admin_options(cfg: &KafkaConfig) -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(cfg.connect_timeout))
        .request_timeout(Some(cfg.connect_timeout))
}

/// An admin request that failed, in words that say what to do. A request
/// that times out although the cluster answers metadata is one it does not
/// serve: librdkafka's mock cluster (an embedded cluster reached from
/// another process) has no topic administration.
fn admin_error(cfg: &KafkaConfig, what: &str, embedded_hint: &str, e: KafkaError) -> Error {
    match e {
        KafkaError::AdminOp(
            RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut,
        ) => Error::Kafka(format!(
            "the cluster at {} did not answer the request to {what} within {:.1} s. \
             A cluster without topic administration never answers it: an embedded \
             cluster reached from another process is one ({embedded_hint}). Otherwise \
             raise connect_timeout.",
            cfg.bootstrap_servers,
            cfg.connect_timeout.as_secs_f64()
        )),
        other => Error::from(other),
    }
}

/// Create `topic` with the admin API (or the embedded cluster's own call).
pub fn create_topic(cfg: &KafkaConfig, topic: &str, spec: &TopicSpec) -> Result<()> {
    if let Some(p) = spec.partitions.filter(|p| *p < 1) {
        return Err(Error::InvalidArgument(format!(
            "partitions must be at least 1, got {p}"
        )));
    }
    if !spec.configs.is_empty() && embedded::is_embedded(&cfg.bootstrap_servers) {
        return Err(Error::InvalidArgument(
            "the embedded cluster keeps no topic configs (it is librdkafka's test \
             cluster); use a real broker for retention and cleanup settings"
                .into(),
        ));
    }
    if let Some(result) = embedded::create_topic(&cfg.bootstrap_servers, topic, spec.partitions) {
        return result;
    }
    let admin: AdminClient<DefaultClientContext> = cfg.client_config(&[]).create()?;
    let partitions = spec.partitions.unwrap_or(DEFAULT_PARTITIONS);
    let mut new = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(spec.replication_factor),
    );
    for (k, v) in &spec.configs {
        new = new.set(k, v);
    }
    let what = format!("create topic '{topic}'");
    let results = block_on(admin.create_topics([&new], &admin_options(cfg))).map_err(|e| {
        admin_error(
            cfg,
            &what,
            "create its topics in the process that runs it, with EmbeddedKafka.create_topic",
            e,
        )
    })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::Kafka(format!(
                    "could not create topic '{name}': {code}"
                )))
            }
        }
    }
    Ok(())
}

/// Names and partition counts of the cluster's topics (internal ones, whose
/// names start with `__`, left out), by name.
pub fn list_topics(cfg: &KafkaConfig) -> Result<Vec<(String, usize)>> {
    cfg.validate()?;
    let probe: rdkafka::consumer::BaseConsumer<Watcher> = cfg
        .client_config(&[])
        .create_with_context(Watcher::default())?;
    let md = fetch_metadata(probe.client(), cfg, None)?;
    let mut out: Vec<(String, usize)> = md
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__") && t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect();
    out.sort();
    Ok(out)
}

/// Partitions (leader, replicas, in-sync replicas, log bounds) and configs
/// of `topic`.
pub fn describe_topic(cfg: &KafkaConfig, topic: &str) -> Result<TopicInfo> {
    use rdkafka::admin::ResourceSpecifier;

    cfg.validate()?;
    let probe: rdkafka::consumer::BaseConsumer<Watcher> = cfg
        .client_config(&[])
        .create_with_context(Watcher::default())?;
    if partition_count(probe.client(), cfg, topic)?.is_none() {
        return Err(Error::TopicNotFound {
            topic: topic.to_string(),
            servers: cfg.bootstrap_servers.clone(),
        });
    }
    let md = fetch_metadata(probe.client(), cfg, Some(topic))?;
    let mut partitions = Vec::new();
    if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
        for p in t.partitions() {
            let (log_start, log_end) = probe
                .fetch_watermarks(topic, p.id(), cfg.connect_timeout)
                .map_err(|e| {
                Error::Kafka(format!(
                    "reading the log bounds of {topic}[{}]: {e}",
                    p.id()
                ))
            })?;
            partitions.push(PartitionInfo {
                id: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
                log_start,
                log_end,
            });
        }
    }
    partitions.sort_by_key(|p| p.id);
    let configs = if embedded::is_embedded(&cfg.bootstrap_servers) {
        None
    } else {
        let admin: AdminClient<DefaultClientContext> = cfg.client_config(&[]).create()?;
        let opts = AdminOptions::new().request_timeout(Some(cfg.connect_timeout));
        match block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts)) {
            Ok(results) => results.into_iter().next().and_then(|r| r.ok()).map(|r| {
                let mut v: Vec<(String, String)> = r
                    .entries
                    .into_iter()
                    .filter(|e| !e.is_sensitive)
                    .filter_map(|e| e.value.map(|v| (e.name, v)))
                    .collect();
                v.sort();
                v
            }),
            Err(_) => None,
        }
    };
    Ok(TopicInfo {
        name: topic.to_string(),
        partitions,
        configs,
    })
}

/// Delete `topics` (all their messages). A topic that does not exist is an
/// error naming it; nothing is deleted before every name is checked.
pub fn delete_topics(cfg: &KafkaConfig, topics: &[String]) -> Result<()> {
    cfg.validate()?;
    if topics.is_empty() {
        return Err(Error::InvalidArgument("name the topics to delete".into()));
    }
    if embedded::is_embedded(&cfg.bootstrap_servers) {
        return Err(Error::InvalidArgument(format!(
            "the embedded cluster cannot delete topics ({EMBEDDED_DELETE})"
        )));
    }
    check_topics(cfg, topics)?;
    let admin: AdminClient<DefaultClientContext> = cfg.client_config(&[]).create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let what = format!("delete {}", names.join(", "));
    let results = block_on(admin.delete_topics(&names, &admin_options(cfg)))
        .map_err(|e| admin_error(cfg, &what, EMBEDDED_DELETE, e))?;
    for r in results {
        if let Err((name, code)) = r {
            return Err(Error::Kafka(format!(
                "could not delete topic '{name}': {code}"
            )));
        }
    }
    Ok(())
}
