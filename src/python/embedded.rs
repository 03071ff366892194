//! The embedded Kafka cluster, for demos and notebooks.

use std::sync::Mutex;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::errors::IntoPyResult;
use crate::kafka::embedded::{EmbeddedCluster, RETENTION_BYTES, RETENTION_MESSAGES};

/// librdkafka's in-process mock cluster.
#[pyclass(module = "kafkalake._kafkalake", frozen)]
pub struct RawEmbeddedKafka {
    cluster: Mutex<EmbeddedCluster>,
    servers: String,
}

#[pymethods]
impl RawEmbeddedKafka {
    /// Start a cluster with `brokers` brokers and `partitions` partitions per topic by default.
    #[new]
    fn new(py: Python<'_>, brokers: i32, partitions: i32) -> PyResult<Self> {
        let cluster = py
            .detach(|| EmbeddedCluster::start(brokers, partitions))
            .py()?;
        Ok(RawEmbeddedKafka {
            servers: cluster.bootstrap_servers().to_string(),
            cluster: Mutex::new(cluster),
        })
    }

    /// `host:port,…` of the brokers.
    #[getter]
    fn bootstrap_servers(&self) -> String {
        self.servers.clone()
    }

    /// Create a topic.
    #[pyo3(signature = (topic, partitions=None))]
    fn create_topic(&self, py: Python<'_>, topic: &str, partitions: Option<i32>) -> PyResult<()> {
        let guard = self
            .cluster
            .lock()
            .map_err(|_| PyRuntimeError::new_err("lock poisoned"))?;
        if !guard.is_running() {
            return Err(PyRuntimeError::new_err(
                "the embedded Kafka cluster is stopped",
            ));
        }
        py.detach(|| guard.create_topic(topic, partitions)).py()
    }

    /// Stop the cluster; idempotent.
    fn stop(&self, py: Python<'_>) {
        if let Ok(mut c) = self.cluster.lock() {
            let cluster: &mut EmbeddedCluster = &mut c;
            py.detach(|| cluster.stop());
        }
    }

    /// Whether it is running.
    #[getter]
    fn running(&self) -> bool {
        self.cluster.lock().map(|c| c.is_running()).unwrap_or(false)
    }

    /// (messages, bytes) a partition keeps before dropping the oldest.
    #[staticmethod]
    fn retention() -> (u64, u64) {
        (RETENTION_MESSAGES, RETENTION_BYTES)
    }
}
