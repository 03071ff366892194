//! The producer as a background job: Python starts it, polls its counters for
//! the progress display while waiting with the GIL released, and can cancel
//! it (Ctrl-C) and still collect the report of what was delivered.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;

use super::errors::{to_exception, IntoPyResult};
use super::generate::EventArgs;
use crate::error::{Error, Result};
use crate::generate::new_source;
use crate::kafka::admin::TopicSpec;
use crate::kafka::messages::{ArrowRows, MessageSource};
use crate::kafka::producer::{produce, ProduceOptions, ProduceReport, ProduceState};

type Outcome = Result<(ProduceReport, Option<Error>)>;

/// A produce run on its own thread.
#[pyclass(module = "kafkalake._kafkalake", frozen)]
pub struct RawProduceJob {
    opts: ProduceOptions,
    state: Arc<ProduceState>,
    source: Mutex<Option<Box<dyn MessageSource>>>,
    thread: Mutex<Option<JoinHandle<Outcome>>>,
}

fn seconds(name: &str, s: f64) -> PyResult<Duration> {
    super::ingest::secs(name, s)
}

/// The options of `produce` and `produce_arrow`, as one dict built and
/// checked by `kafkalake.producer` (`ProduceArgs` in the stub).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct ProduceArgs {
    bootstrap_servers: String,
    topic: String,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
    create_topic: bool,
    partitions: Option<i32>,
    replication_factor: i32,
    count: Option<u64>,
    duration_s: Option<f64>,
    rate: Option<f64>,
    idempotent: bool,
    compression: String,
    flush_timeout_s: f64,
    partition: Option<i32>,
    delivery_log: bool,
}

impl ProduceArgs {
    fn options(self) -> PyResult<ProduceOptions> {
        let opts = ProduceOptions {
            kafka: super::ingest::kafka_config(
                self.bootstrap_servers,
                self.config,
                self.connect_timeout_s,
            )?,
            topic: self.topic,
            topic_spec: TopicSpec {
                create: self.create_topic,
                partitions: self.partitions,
                replication_factor: self.replication_factor,
                configs: Vec::new(),
            },
            count: self.count,
            duration: self
                .duration_s
                .map(|d| seconds("duration", d))
                .transpose()?,
            rate: self.rate,
            idempotent: self.idempotent,
            compression: self.compression,
            flush_timeout: seconds("flush_timeout", self.flush_timeout_s)?,
            partition: self.partition,
            delivery_log: self.delivery_log,
        };
        opts.validate().py()?;
        Ok(opts)
    }
}

fn report_dict<'py>(py: Python<'py>, r: &ProduceReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("topic", &r.topic)?;
    d.set_item("sent", r.sent)?;
    d.set_item("acknowledged", r.acknowledged)?;
    d.set_item("failed", r.failed)?;
    d.set_item("errors", r.errors.clone())?;
    d.set_item("bytes", r.bytes)?;
    d.set_item("send_seconds", r.send_seconds)?;
    d.set_item("elapsed_seconds", r.elapsed_seconds)?;
    d.set_item("rate", r.rate())?;
    d.set_item("target_rate", r.target_rate)?;
    d.set_item("interrupted", r.interrupted)?;
    d.set_item("partitions", r.partitions)?;
    let log = r
        .delivery_log
        .clone()
        .map(|b| PyTable::try_new(vec![b.clone()], b.schema()))
        .transpose()?;
    d.set_item("delivery_log", log)?;
    Ok(d)
}

impl RawProduceJob {
    fn new(opts: ProduceOptions, source: Box<dyn MessageSource>) -> Self {
        RawProduceJob {
            opts,
            state: Arc::new(ProduceState::default()),
            source: Mutex::new(Some(source)),
            thread: Mutex::new(None),
        }
    }
}

#[pymethods]
impl RawProduceJob {
    /// A job producing generated events of `profile`.
    #[staticmethod]
    fn for_profile(profile: &str, produce: ProduceArgs, events: EventArgs) -> PyResult<Self> {
        let opts = produce.options()?;
        let source = new_source(profile, events.into()).py()?;
        Ok(Self::new(opts, Box::new(source)))
    }

    /// A job producing one message per row of an Arrow table or stream.
    #[staticmethod]
    #[pyo3(signature = (data, produce, *, key_column, value_column))]
    fn for_arrow(
        data: AnyRecordBatch,
        produce: ProduceArgs,
        key_column: Option<String>,
        value_column: Option<String>,
    ) -> PyResult<Self> {
        let opts = produce.options()?;
        let rows = ArrowRows::new(data.into_reader()?, key_column, value_column).py()?;
        Ok(Self::new(opts, Box::new(rows)))
    }

    /// Start producing on a background thread.
    fn start(&self) -> PyResult<()> {
        let mut source = self
            .source
            .lock()
            .map_err(|_| PyRuntimeError::new_err("job lock poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this produce job was already started"))?;
        let opts = self.opts.clone();
        let state = self.state.clone();
        let handle = std::thread::Builder::new()
            .name("kafkalake-produce".into())
            .spawn(move || produce(source.as_mut(), &opts, &state))
            .map_err(|e| {
                PyRuntimeError::new_err(format!("could not start the producer thread: {e}"))
            })?;
        *self
            .thread
            .lock()
            .map_err(|_| PyRuntimeError::new_err("job lock poisoned"))? = Some(handle);
        Ok(())
    }

    /// Wait up to `timeout_s` with the GIL released; true once finished.
    fn wait(&self, py: Python<'_>, timeout_s: f64) -> bool {
        let state = self.state.clone();
        let t = crate::runtime::clamped_wait(timeout_s);
        py.detach(move || state.wait(t))
    }

    /// Ask the run to stop; what was sent is still flushed and reported.
    fn cancel(&self) {
        self.state.cancel.store(true, Ordering::Relaxed);
    }

    /// Counters so far: (sent, acknowledged, failed, bytes, elapsed seconds).
    fn progress(&self) -> (u64, u64, u64, u64, f64) {
        let s = &self.state;
        (
            s.sent.load(Ordering::Relaxed),
            s.acknowledged.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            s.bytes.load(Ordering::Relaxed),
            s.elapsed(),
        )
    }

    /// Join the run: `(report, error or None)`. Raises if it never started
    /// sending (bad config, unreachable broker, missing topic).
    fn result<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, PyAny>>)> {
        let handle = self
            .thread
            .lock()
            .map_err(|_| PyRuntimeError::new_err("job lock poisoned"))?
            .take()
            .ok_or_else(|| {
                PyRuntimeError::new_err("this produce job was not started, or its result was taken")
            })?;
        let outcome = py
            .detach(|| handle.join())
            .map_err(|_| PyRuntimeError::new_err("the producer thread panicked"))?;
        let (report, error) = outcome.py()?;
        let exc = error.map(|e| to_exception(py, &e)).transpose()?;
        Ok((report_dict(py, &report)?, exc))
    }
}
