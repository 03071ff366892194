//! Ingest and the batch consumer, for Python.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::{PySchema, PyTable};

use super::errors::{to_exception, IntoPyResult};
use crate::decode::{DecodeOptions, JsonDecoder, RawMessage};
use crate::error::{Error, Result};
use crate::ingest::{
    DateColumn, Ingest, IngestMetrics, IngestOptions, IngestReport, RunMode, SinkSpec,
};
use crate::kafka::config::KafkaConfig;
use crate::kafka::consumer::{BatchLimits, BatchingConsumer, ConsumerOptions, StartFrom};
use crate::sink::capture::{CaptureCodec, CaptureOptions};
use crate::sink::compact::CompactOptions;
use crate::sink::delta::DeltaOptions;
use crate::sink::storage::Location;

/// Seconds as a duration; more than a year is refused (no timer, latency or
/// run length needs it, and instants that far ahead do not exist).
pub(crate) fn secs(name: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| *d <= crate::runtime::MAX_WAIT)
        .ok_or_else(|| {
            super::errors::to_py_err(Error::InvalidArgument(format!(
                "{name} must be a number of seconds between 0 and {} (a year), got {s}",
                crate::runtime::MAX_WAIT.as_secs()
            )))
        })
}

/// The cluster and client settings as Python passes them (settings in key
/// order, so equal settings make equal configs), for every binding.
pub(crate) fn kafka_config(
    bootstrap_servers: String,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
) -> PyResult<KafkaConfig> {
    let mut settings: Vec<(String, String)> = config.into_iter().collect();
    settings.sort();
    Ok(KafkaConfig {
        bootstrap_servers,
        settings,
        connect_timeout: secs("connect_timeout", connect_timeout_s)?,
    })
}

/// Where and how to consume, as one dict built and checked by
/// `kafkalake.ingest` (`ConsumerArgs` in the stub): for `ingest` and
/// `BatchConsumer` alike.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct ConsumerArgs {
    bootstrap_servers: String,
    topics: Vec<String>,
    group_id: String,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
    start: String,
    start_offsets: Option<HashMap<(String, i32), i64>>,
    start_timestamp_ms: Option<i64>,
    max_rows: usize,
    max_bytes: usize,
    max_latency_s: f64,
}

impl ConsumerArgs {
    fn options(self) -> PyResult<ConsumerOptions> {
        let kafka = kafka_config(self.bootstrap_servers, self.config, self.connect_timeout_s)?;
        let start = match self.start.as_str() {
            "earliest" => StartFrom::Earliest,
            "latest" => StartFrom::Latest,
            "offsets" => StartFrom::Offsets(self.start_offsets.unwrap_or_default()),
            "timestamp" => StartFrom::Timestamp(self.start_timestamp_ms.unwrap_or(0)),
            other => {
                return Err(super::errors::to_py_err(Error::InvalidArgument(format!(
                    "start must be 'earliest', 'latest', offsets or a datetime; got {other:?}"
                ))))
            }
        };
        Ok(ConsumerOptions {
            kafka,
            topics: self.topics,
            group_id: self.group_id,
            start,
            limits: BatchLimits {
                max_rows: self.max_rows,
                max_bytes: self.max_bytes,
                max_latency: secs("max_latency", self.max_latency_s)?,
            },
            // Set by whoever decodes the messages: only they know if headers are kept.
            headers: false,
        })
    }
}

/// How `BatchConsumer` decodes, as one dict (`DecodeArgs` in the stub).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct DecodeArgs {
    schema: Option<PySchema>,
    metadata_columns: bool,
    flatten: bool,
    max_message_bytes: usize,
}

/// What `ingest` writes where and for how long, as one dict built and
/// checked by `kafkalake.ingest` (`IngestArgs` in the stub).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct IngestArgs {
    sink: String,
    uri: String,
    storage_options: HashMap<String, String>,
    name: String,
    partition_by: Vec<String>,
    date_column: Option<(String, String)>,
    target_file_size: Option<u64>,
    checkpoint_interval: u64,
    schema: Option<PySchema>,
    metadata_columns: bool,
    flatten: bool,
    max_message_bytes: usize,
    dead_letter_uri: String,
    mode: String,
    duration_s: Option<f64>,
    capture: Option<(String, Option<String>, bool)>,
    evolve_schema: bool,
    compact: Option<(u64, u64, usize)>,
    caught_up_timeout_s: Option<f64>,
    max_columns: usize,
    table_properties: HashMap<String, String>,
}

impl IngestArgs {
    fn options(self, consumer: ConsumerOptions) -> PyResult<IngestOptions> {
        let a = self;
        let location = Location {
            uri: a.uri,
            options: a.storage_options.clone(),
        };
        let sink = match a.sink.as_str() {
            "delta" => SinkSpec::Delta(DeltaOptions {
                location,
                app_name: a.name,
                partition_by: a.partition_by,
                table_properties: a.table_properties,
                target_file_size: a.target_file_size,
                checkpoint_interval: a.checkpoint_interval,
                compact_interval: a.compact.map_or(0, |c| c.0),
                compact: a
                    .compact
                    .map_or_else(Default::default, |(_, size, min_files)| CompactOptions {
                        target_file_size: size,
                        min_files,
                    }),
            }),
            "capture" => {
                let (namespace, eventhub, deflate) = a.capture.unwrap_or_default();
                SinkSpec::Capture(CaptureOptions {
                    location,
                    namespace,
                    eventhub,
                    codec: if deflate {
                        CaptureCodec::Deflate
                    } else {
                        CaptureCodec::Null
                    },
                })
            }
            "parquet" => SinkSpec::Parquet(location),
            other => {
                return Err(super::errors::to_py_err(Error::InvalidArgument(format!(
                    "format must be 'delta', 'parquet' or 'capture', got {other:?}"
                ))))
            }
        };
        let mode = match (a.mode.as_str(), a.duration_s) {
            ("duration", Some(d)) => RunMode::For(secs("duration", d)?),
            ("available", _) => RunMode::UntilCaughtUp,
            _ => RunMode::Forever,
        };
        Ok(IngestOptions {
            consumer,
            schema: a.schema.map(|s| s.into_inner()),
            decode: DecodeOptions {
                metadata_columns: a.metadata_columns,
                flatten: a.flatten,
                max_message_bytes: a.max_message_bytes,
                evolve: a.evolve_schema,
            },
            date_column: a
                .date_column
                .map(|(source, name)| DateColumn { source, name }),
            sink,
            dead_letters: Location {
                uri: a.dead_letter_uri,
                options: a.storage_options,
            },
            mode,
            caught_up_timeout: a
                .caught_up_timeout_s
                .map(|s| secs("caught_up_timeout", s))
                .transpose()?,
            max_columns: a.max_columns,
        })
    }
}

type Outcome = Result<IngestReport>;

/// A latency histogram as Prometheus takes it: cumulative `(le, count)`
/// buckets, the count and the sum in seconds.
type Histogram = (Vec<(f64, u64)>, u64, f64);

/// An ingest run on its own thread.
#[pyclass(module = "kafkalake._kafkalake", frozen)]
pub struct RawIngest {
    metrics: Arc<IngestMetrics>,
    ingest: Mutex<Option<Ingest>>,
    thread: Mutex<Option<JoinHandle<Outcome>>>,
}

fn report_dict<'py>(
    py: Python<'py>,
    r: &IngestReport,
    m: &IngestMetrics,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("messages", r.messages)?;
    d.set_item("rows", r.rows)?;
    d.set_item("dead_letters", r.dead_letters)?;
    d.set_item("commits", r.commits)?;
    d.set_item("elapsed_seconds", r.elapsed)?;
    d.set_item("interrupted", r.interrupted)?;
    d.set_item("bytes", m.bytes.load(Ordering::Relaxed))?;
    d.set_item("batches", m.batches.load(Ordering::Relaxed))?;
    d.set_item("files", m.files.load(Ordering::Relaxed))?;
    d.set_item("group_rejoins", m.group_rejoins.load(Ordering::Relaxed))?;
    let h = &m.commit_latency;
    d.set_item("commit_p50_seconds", h.quantile(0.5).unwrap_or(0.0))?;
    d.set_item("commit_p99_seconds", h.quantile(0.99).unwrap_or(0.0))?;
    let e = &m.end_to_end_latency;
    d.set_item("end_to_end_p50_seconds", e.quantile(0.5))?;
    d.set_item("end_to_end_p99_seconds", e.quantile(0.99))?;
    Ok(d)
}

#[pymethods]
impl RawIngest {
    /// Check and prepare everything (raises before any data moves).
    #[new]
    fn new(py: Python<'_>, consumer: ConsumerArgs, ingest: IngestArgs) -> PyResult<Self> {
        let opts = ingest.options(consumer.options()?)?;
        let metrics = Arc::new(IngestMetrics::default());
        let m = metrics.clone();
        let ingest = py.detach(move || Ingest::new(opts, m)).py()?;
        Ok(RawIngest {
            metrics,
            ingest: Mutex::new(Some(ingest)),
            thread: Mutex::new(None),
        })
    }

    /// Start the loop on a background thread.
    fn start(&self) -> PyResult<()> {
        let mut ingest = self
            .ingest
            .lock()
            .map_err(|_| PyRuntimeError::new_err("lock poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this ingest was already started"))?;
        let handle = std::thread::Builder::new()
            .name("kafkalake-ingest".into())
            .spawn(move || ingest.run())
            .map_err(|e| {
                PyRuntimeError::new_err(format!("could not start the ingest thread: {e}"))
            })?;
        *self
            .thread
            .lock()
            .map_err(|_| PyRuntimeError::new_err("lock poisoned"))? = Some(handle);
        Ok(())
    }

    /// Wait up to `timeout_s` (GIL released); true once finished.
    fn wait(&self, py: Python<'_>, timeout_s: f64) -> PyResult<bool> {
        let guard = self
            .thread
            .lock()
            .map_err(|_| PyRuntimeError::new_err("lock poisoned"))?;
        let Some(h) = guard.as_ref() else {
            return Ok(true);
        };
        if h.is_finished() {
            return Ok(true);
        }
        drop(guard);
        let t = crate::runtime::clamped_wait(timeout_s);
        py.detach(|| {
            let step = Duration::from_millis(10);
            let start = std::time::Instant::now();
            while start.elapsed() < t {
                if self
                    .thread
                    .lock()
                    .map(|g| g.as_ref().is_none_or(|h| h.is_finished()))
                    .unwrap_or(true)
                {
                    return true;
                }
                std::thread::sleep(step);
            }
            false
        });
        Ok(self
            .thread
            .lock()
            .map(|g| g.as_ref().is_none_or(|h| h.is_finished()))
            .unwrap_or(true))
    }

    /// Ask the loop to stop after writing what it has.
    fn cancel(&self) {
        self.metrics.cancel.store(true, Ordering::Relaxed);
    }

    /// Counters so far.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.metrics;
        let d = report_dict(py, &m.snapshot(), m)?;
        let partitions = m.lag();
        let lag: Vec<(String, i32, i64)> = partitions
            .iter()
            .map(|(t, p, n, h)| (t.clone(), *p, (h - n).max(0)))
            .collect();
        d.set_item("lag", lag)?;
        // (topic, partition, next offset to read, log end offset).
        d.set_item("partitions", partitions)?;
        Ok(d)
    }

    /// Latency histograms for Prometheus: name → (cumulative buckets as
    /// `(le, count)`, count, sum in seconds).
    fn histograms(&self) -> HashMap<&'static str, Histogram> {
        let m = &self.metrics;
        let one = |h: &crate::histogram::Histogram| (h.prometheus_buckets(), h.count(), h.sum());
        HashMap::from([
            ("commit_latency_seconds", one(&m.commit_latency)),
            ("end_to_end_latency_seconds", one(&m.end_to_end_latency)),
        ])
    }

    /// Join: `(report, error or None)`.
    fn result<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, PyAny>>)> {
        let handle = self
            .thread
            .lock()
            .map_err(|_| PyRuntimeError::new_err("lock poisoned"))?
            .take()
            .ok_or_else(|| {
                PyRuntimeError::new_err("this ingest was not started, or its result was taken")
            })?;
        let outcome = py
            .detach(|| handle.join())
            .map_err(|_| PyRuntimeError::new_err("the ingest thread panicked"))?;
        let m = &self.metrics;
        match outcome {
            Ok(r) => Ok((report_dict(py, &r, m)?, None)),
            Err(e) => Ok((
                report_dict(py, &m.snapshot(), m)?,
                Some(to_exception(py, &e)?),
            )),
        }
    }
}

/// A consumer handing decoded batches to Python.
#[pyclass(module = "kafkalake._kafkalake")]
pub struct RawBatchConsumer {
    consumer: Option<BatchingConsumer>,
    schema: Option<arrow::datatypes::SchemaRef>,
    decode: DecodeOptions,
    decoders: HashMap<String, JsonDecoder>,
}

type Polled = (PyTable, PyTable, Vec<(String, i32, i64)>);

#[pymethods]
impl RawBatchConsumer {
    /// Subscribe (raises on bad arguments or a missing topic).
    #[new]
    fn new(py: Python<'_>, consumer: ConsumerArgs, decode: DecodeArgs) -> PyResult<Self> {
        let mut opts = consumer.options()?;
        opts.headers = decode.metadata_columns;
        let consumer = py.detach(|| BatchingConsumer::new(opts, None)).py()?;
        Ok(RawBatchConsumer {
            consumer: Some(consumer),
            schema: decode.schema.map(|s| s.into_inner()),
            decode: DecodeOptions {
                metadata_columns: decode.metadata_columns,
                flatten: decode.flatten,
                max_message_bytes: decode.max_message_bytes,
                evolve: false,
            },
            decoders: HashMap::new(),
        })
    }

    /// The next batch within `timeout_s`: (rows, dead letters, last offsets), or None.
    fn poll(&mut self, py: Python<'_>, timeout_s: f64) -> PyResult<Option<Polled>> {
        let consumer = self
            .consumer
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("the consumer is closed"))?;
        let wait = secs("timeout", timeout_s)?;
        let batch = py.detach(|| consumer.poll_batch(wait, false)).py()?;
        if batch.is_empty() {
            return Ok(None);
        }
        let firsts = batch.first_offsets();
        let decoded = self.decode(batch);
        if decoded.is_err() {
            // Nothing of the batch reached the caller: read it again next
            // time, so a caller that goes on after the error skips nothing.
            if let Some(c) = self.consumer.as_mut() {
                py.detach(|| c.rewind(&firsts)).py()?;
            }
        }
        decoded.map(Some)
    }

    /// Commit `offsets` (last per partition) to the group.
    fn commit(&self, py: Python<'_>, offsets: Vec<(String, i32, i64)>) -> PyResult<()> {
        let consumer = self
            .consumer
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the consumer is closed"))?;
        py.detach(|| consumer.commit(&offsets)).py()
    }

    /// Assigned (topic, partition) pairs.
    fn assignment(&self) -> Vec<(String, i32)> {
        self.consumer
            .as_ref()
            .map(|c| c.assignment())
            .unwrap_or_default()
    }

    /// Leave the group.
    fn close(&mut self, py: Python<'_>) {
        if let Some(c) = self.consumer.take() {
            py.detach(move || drop(c));
        }
    }
}

impl RawBatchConsumer {
    /// The rows, dead letters and last offsets of a consumed batch.
    fn decode(&mut self, batch: crate::kafka::consumer::ConsumedBatch) -> PyResult<Polled> {
        let offsets = batch.last_offsets();
        let mut rows = Vec::new();
        let mut dead = Vec::new();
        let mut schema = None;
        for ((topic, _), buf) in batch.partitions {
            if !self.decoders.contains_key(&topic) {
                let s = match &self.schema {
                    Some(s) => Some(s.clone()),
                    None => crate::decode::infer_schema(
                        buf.messages.iter().filter_map(|m| m.value.as_deref()),
                    )
                    .py()?,
                };
                if let Some(s) = s {
                    self.decoders.insert(
                        topic.clone(),
                        JsonDecoder::new(&topic, s, self.decode.clone()).py()?,
                    );
                }
            }
            match self.decoders.get(&topic) {
                Some(d) => {
                    let early = buf.early.map(crate::decode::EarlyRows::finish);
                    let (b, dl) = d.decode_with(&buf.messages, early.as_ref()).py()?;
                    // From now on the topic's values are decoded as they are taken.
                    if let (Some(c), Some(e)) = (self.consumer.as_mut(), d.early()) {
                        c.decode_early(&topic, e);
                    }
                    schema.get_or_insert_with(|| b.schema());
                    rows.push(b);
                    dead.extend(dl.into_iter().map(|d| (topic.clone(), d)));
                }
                None => dead.extend(buf.messages.into_iter().map(|m: RawMessage| {
                    (
                        topic.clone(),
                        crate::decode::DeadLetter {
                            message: m,
                            error: "not a JSON object".into(),
                        },
                    )
                })),
            }
        }
        let schema: arrow::datatypes::SchemaRef =
            schema.unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
        if let Some(other) = rows.iter().find(|b| b.schema().fields() != schema.fields()) {
            return Err(super::errors::to_py_err(Error::InvalidArgument(format!(
                "the topics' values have different schemas ({} and {}), which cannot be one \
                 table of rows; pass schema= covering both, or use one BatchConsumer per topic",
                schema,
                other.schema()
            ))));
        }
        let dead_batches = dead_letter_batches(&dead).py()?;
        Ok((
            PyTable::try_new(rows, schema)?,
            PyTable::try_new(dead_batches, crate::ingest::dead_letter_schema())?,
            offsets,
        ))
    }
}

fn dead_letter_batches(
    dead: &[(String, crate::decode::DeadLetter)],
) -> Result<Vec<arrow::array::RecordBatch>> {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<crate::decode::DeadLetter>> =
        Default::default();
    for (t, d) in dead {
        by_topic.entry(t.as_str()).or_default().push(d.clone());
    }
    by_topic
        .into_iter()
        .map(|(t, ds)| {
            let b = crate::ingest::dead_letter_rows(t, &ds)?;
            Ok(b)
        })
        .collect()
}

/// Read Capture-format Avro files under `uri` (or the one file it names)
/// into a table; with `decode_body`, the JSON bodies become columns.
#[pyfunction]
#[pyo3(signature = (uri, *, storage_options, decode_body, body_schema, flatten))]
pub fn read_capture(
    py: Python<'_>,
    uri: String,
    storage_options: HashMap<String, String>,
    decode_body: bool,
    body_schema: Option<PySchema>,
    flatten: bool,
) -> PyResult<PyTable> {
    let location = Location {
        uri,
        options: storage_options,
    };
    let schema = body_schema.map(|s| s.into_inner());
    let (schema, batches) = py
        .detach(move || {
            let batches = crate::sink::capture::read(&location)?;
            if decode_body {
                let opts = DecodeOptions {
                    flatten,
                    ..DecodeOptions::default()
                };
                crate::sink::capture::decode_bodies(batches, schema, opts)
            } else {
                Ok((crate::sink::capture::read_schema(), batches))
            }
        })
        .py()?;
    PyTable::try_new(batches, schema)
}

/// Compact the small files of the Delta table at `uri`:
/// `(files removed, files added, rows, new version)`.
#[pyfunction]
#[pyo3(signature = (uri, *, storage_options, target_file_size, min_files))]
pub fn compact_table(
    py: Python<'_>,
    uri: String,
    storage_options: HashMap<String, String>,
    target_file_size: u64,
    min_files: usize,
) -> PyResult<(u64, u64, u64, Option<i64>)> {
    let location = Location {
        uri,
        options: storage_options,
    };
    let out = py
        .detach(move || {
            let mut table = crate::sink::delta::open(&location)?
                .ok_or_else(|| Error::Table(format!("'{}' is not a Delta table", location.uri)))?;
            crate::runtime::block_on(crate::sink::compact::compact(
                &mut table,
                CompactOptions {
                    target_file_size,
                    min_files,
                },
            ))
        })
        .py()?;
    Ok((out.files_removed, out.files_added, out.rows, out.version))
}
