//! An in-process Kafka cluster: librdkafka's mock cluster.
//!
//! It speaks the Kafka protocol on a loopback port, so any client in the
//! process (or outside it) can use it, but it is a test double: no
//! CreateTopics API (kafkalake creates topics through the mock's own call,
//! which [`create_topic`] routes to), and each partition keeps only its last
//! 100,000 messages or 5 MiB, whichever is smaller; older messages are gone.
//! Good for demos and notebooks; integration tests use a real broker.
//!
//! The mock cluster's handle cannot move between threads, so it lives on a
//! thread of its own that takes commands over a channel.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;

use crate::error::{Error, Result};

/// Messages a mock partition keeps.
pub const RETENTION_MESSAGES: u64 = 100_000;
/// Bytes a mock partition keeps.
pub const RETENTION_BYTES: u64 = 5 * 1024 * 1024;

enum Command {
    CreateTopic(String, Option<i32>, Sender<Result<()>>),
    Stop,
}

/// Running clusters of this process, by bootstrap servers.
fn registry() -> &'static Mutex<HashMap<String, Sender<Command>>> {
    static REG: OnceLock<Mutex<HashMap<String, Sender<Command>>>> = OnceLock::new();
    REG.get_or_init(Default::default)
}

/// Whether `bootstrap_servers` is an embedded cluster of this process.
pub fn is_embedded(bootstrap_servers: &str) -> bool {
    registry()
        .lock()
        .is_ok_and(|r| r.contains_key(bootstrap_servers))
}

/// If `bootstrap_servers` is an embedded cluster of this process, create the
/// topic there and return the outcome; otherwise `None`.
/// `None` partitions take the cluster's default.
pub fn create_topic(
    bootstrap_servers: &str,
    topic: &str,
    partitions: Option<i32>,
) -> Option<Result<()>> {
    let tx = registry().lock().ok()?.get(bootstrap_servers)?.clone();
    let (reply, rx) = channel();
    if tx
        .send(Command::CreateTopic(topic.to_string(), partitions, reply))
        .is_err()
    {
        return Some(Err(Error::Kafka(
            "the embedded Kafka cluster has stopped".into(),
        )));
    }
    Some(rx.recv().unwrap_or_else(|_| {
        Err(Error::Kafka(
            "the embedded Kafka cluster has stopped".into(),
        ))
    }))
}

/// A running embedded cluster; stops when dropped.
pub struct EmbeddedCluster {
    bootstrap_servers: String,
    tx: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedCluster {
    /// Start a cluster of `brokers` brokers whose topics have `partitions`
    /// partitions unless created with another count.
    pub fn start(brokers: i32, partitions: i32) -> Result<Self> {
        if brokers < 1 {
            return Err(Error::InvalidArgument(format!(
                "brokers must be at least 1, got {brokers}"
            )));
        }
        if partitions < 1 {
            return Err(Error::InvalidArgument(format!(
                "partitions must be at least 1, got {partitions}"
            )));
        }
        let (tx, rx) = channel::<Command>();
        let (ready_tx, ready_rx) = channel::<Result<String>>();
        let thread = std::thread::Builder::new()
            .name("kafkalake-embedded".into())
            .spawn(move || {
                let default_partitions = partitions;
                let cluster = match MockCluster::new(brokers) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Kafka(format!(
                            "could not start the embedded Kafka cluster: {e}"
                        ))));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                while let Ok(cmd) = rx.recv() {
                    match cmd {
                        Command::CreateTopic(topic, partitions, reply) => {
                            // A topic that exists is there to use, as with
                            // the admin API: two jobs of this process may
                            // both make sure of it.
                            let r = match cluster.create_topic(
                                &topic,
                                partitions.unwrap_or(default_partitions),
                                1,
                            ) {
                                Ok(())
                                | Err(KafkaError::MockCluster(
                                    RDKafkaErrorCode::TopicAlreadyExists,
                                )) => Ok(()),
                                Err(e) => Err(Error::Kafka(format!(
                                    "could not create topic '{topic}': {e}"
                                ))),
                            };
                            let _ = reply.send(r);
                        }
                        Command::Stop => break,
                    }
                }
            })?;
        let bootstrap_servers = ready_rx
            .recv()
            .map_err(|_| Error::Kafka("the embedded Kafka cluster failed to start".into()))??;
        registry()
            .lock()
            .expect("registry lock")
            .insert(bootstrap_servers.clone(), tx.clone());
        Ok(EmbeddedCluster {
            bootstrap_servers,
            tx,
            thread: Some(thread),
        })
    }

    /// `host:port,…` of the brokers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Create a topic (replication 1); `None` partitions take the default.
    pub fn create_topic(&self, topic: &str, partitions: Option<i32>) -> Result<()> {
        if let Some(p) = partitions.filter(|p| *p < 1) {
            return Err(Error::InvalidArgument(format!(
                "partitions must be at least 1, got {p}"
            )));
        }
        create_topic(&self.bootstrap_servers, topic, partitions).unwrap_or_else(|| {
            Err(Error::Kafka(
                "the embedded Kafka cluster has stopped".into(),
            ))
        })
    }

    /// Stop the cluster; idempotent.
    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            if let Ok(mut reg) = registry().lock() {
                reg.remove(&self.bootstrap_servers);
            }
            let _ = self.tx.send(Command::Stop);
            let _ = t.join();
        }
    }

    /// Whether the cluster is running.
    pub fn is_running(&self) -> bool {
        self.thread.is_some()
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two jobs of one process (a producer and an ingest started together)
    /// both make sure their topic exists: whichever comes second must find
    /// it there, not fail.
    #[test]
    fn creating_a_topic_that_exists_succeeds() {
        let cluster = EmbeddedCluster::start(1, 2).unwrap();
        let servers = cluster.bootstrap_servers().to_string();
        let creators: Vec<_> = (0..4)
            .map(|_| {
                let servers = servers.clone();
                std::thread::spawn(move || create_topic(&servers, "shared", None).unwrap())
            })
            .collect();
        for c in creators {
            c.join().unwrap().unwrap();
        }
        cluster.create_topic("shared", Some(2)).unwrap();
    }
}
