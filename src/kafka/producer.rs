//! Rate-controlled production of a [`MessageSource`] to one topic.
//!
//! The send loop runs on the caller's thread; librdkafka's own threads batch,
//! compress and send, and a [`ThreadedProducer`] thread delivers the delivery
//! reports into shared counters that another thread (the Python progress
//! display) can read at any time through [`ProduceState`]. With a delivery
//! log, the same thread records where each message went (partition, offset,
//! timestamp), and the report carries it as one Arrow batch in send order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{
    Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};

use super::admin::{ensure_topic, TopicSpec};
use super::config::{ClientErrors, KafkaConfig, WatchErrors};
use super::messages::MessageSource;
use crate::error::{Error, Result};
use crate::generate::rate::RateLimiter;

/// How long a cancelled run waits for outstanding deliveries.
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// Compression codecs librdkafka offers.
pub const COMPRESSIONS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

/// What to produce and how.
#[derive(Clone, Debug)]
pub struct ProduceOptions {
    /// The cluster.
    pub kafka: KafkaConfig,
    /// The topic.
    pub topic: String,
    /// Missing-topic policy.
    pub topic_spec: TopicSpec,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Messages per second; `None` for as fast as possible.
    pub rate: Option<f64>,
    /// Idempotent producer (no duplicates from retries, order kept).
    pub idempotent: bool,
    /// `compression.type`.
    pub compression: String,
    /// How long to wait at the end for outstanding deliveries.
    pub flush_timeout: Duration,
    /// Send every message to this partition (`None`: by key, as Kafka's
    /// default partitioner does).
    pub partition: Option<i32>,
    /// Record where each message went (see [`delivery_log_schema`]).
    pub delivery_log: bool,
}

impl ProduceOptions {
    /// Check the arguments before connecting anywhere.
    pub fn validate(&self) -> Result<()> {
        self.kafka.validate()?;
        if self.topic.is_empty() {
            return Err(Error::InvalidArgument("topic is empty".into()));
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "rate must be a positive number of events per second (or None for unlimited), got {r}"
                )));
            }
        }
        if self.count == Some(0) {
            return Err(Error::InvalidArgument("count must be positive".into()));
        }
        if let Some(d) = self.duration {
            if d.is_zero() {
                return Err(Error::InvalidArgument("duration must be positive".into()));
            }
        }
        if let Some(p) = self.partition {
            if p < 0 {
                return Err(Error::InvalidArgument(format!(
                    "partition must be a partition number (0 or more), got {p}"
                )));
            }
        }
        if !COMPRESSIONS.contains(&self.compression.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "compression '{}' is not one of: {}",
                self.compression,
                COMPRESSIONS.join(", ")
            )));
        }
        Ok(())
    }
}

/// Live counters of one produce run, shared with observers.
#[derive(Debug, Default)]
pub struct ProduceState {
    /// Messages handed to librdkafka.
    pub sent: AtomicU64,
    /// Messages the broker acknowledged.
    pub acknowledged: AtomicU64,
    /// Messages that failed (after librdkafka's retries).
    pub failed: AtomicU64,
    /// Payload bytes acknowledged.
    pub bytes: AtomicU64,
    /// Set to stop the run early (Ctrl-C); what was sent is still flushed.
    pub cancel: AtomicBool,
    errors: Mutex<BTreeMap<String, u64>>,
    done: Mutex<bool>,
    done_cv: Condvar,
    started: Mutex<Option<Instant>>,
    log: Mutex<Vec<Delivery>>,
}

/// Where one message went.
#[derive(Debug)]
struct Delivery {
    /// Position in send order, from 0.
    message: u64,
    partition: i32,
    offset: Option<i64>,
    timestamp_ms: Option<i64>,
    error: Option<String>,
}

/// Columns of a produce run's delivery log, one row per message in send order:
/// `message` (its position, from 0), `partition`, `offset` and `timestamp`
/// (the record's, as the broker stored it) — null for a message that failed —
/// and `error` (why it failed, else null).
pub fn delivery_log_schema() -> Schema {
    Schema::new(vec![
        Field::new("message", DataType::UInt64, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, true),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("error", DataType::Utf8, true),
    ])
}

impl ProduceState {
    /// Failure reasons and how often each occurred.
    pub fn errors(&self) -> Vec<(String, u64)> {
        self.errors
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    fn fail(&self, reason: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// Seconds since sending started.
    pub fn elapsed(&self) -> f64 {
        self.started
            .lock()
            .ok()
            .and_then(|s| *s)
            .map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    fn take_log(&self) -> Result<RecordBatch> {
        let mut log = self
            .log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        log.sort_unstable_by_key(|d| d.message);
        let batch = RecordBatch::try_new(
            Arc::new(delivery_log_schema()),
            vec![
                Arc::new(UInt64Array::from_iter_values(log.iter().map(|d| d.message))),
                Arc::new(Int32Array::from_iter_values(
                    log.iter().map(|d| d.partition),
                )),
                Arc::new(Int64Array::from_iter(log.iter().map(|d| d.offset))),
                Arc::new(
                    TimestampMillisecondArray::from_iter(log.iter().map(|d| d.timestamp_ms))
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from_iter(
                    log.iter().map(|d| d.error.as_deref()),
                )),
            ],
        )?;
        Ok(batch)
    }

    /// Mark the run finished and wake waiters.
    pub fn finish(&self) {
        if let Ok(mut d) = self.done.lock() {
            *d = true;
        }
        self.done_cv.notify_all();
    }

    /// Wait up to `timeout` for the run to finish; true if it has.
    pub fn wait(&self, timeout: Duration) -> bool {
        let Ok(guard) = self.done.lock() else {
            return true;
        };
        match self
            .done_cv
            .wait_timeout_while(guard, timeout, |done| !*done)
        {
            Ok((done, _)) => *done,
            Err(_) => true,
        }
    }
}

/// The outcome of a produce run.
#[derive(Clone, Debug, Default)]
pub struct ProduceReport {
    /// The topic.
    pub topic: String,
    /// Messages handed to librdkafka.
    pub sent: u64,
    /// Messages acknowledged by the broker.
    pub acknowledged: u64,
    /// Messages that failed.
    pub failed: u64,
    /// Failure reasons with counts.
    pub errors: Vec<(String, u64)>,
    /// Payload bytes acknowledged.
    pub bytes: u64,
    /// Seconds spent sending (the rate's denominator).
    pub send_seconds: f64,
    /// Seconds in all, including the final flush.
    pub elapsed_seconds: f64,
    /// Requested rate.
    pub target_rate: Option<f64>,
    /// Stopped early by a cancel (Ctrl-C).
    pub interrupted: bool,
    /// Partitions of the topic.
    pub partitions: usize,
    /// Where each message went, in send order (with `delivery_log`).
    pub delivery_log: Option<RecordBatch>,
}

impl ProduceReport {
    /// Messages sent per second while sending.
    pub fn rate(&self) -> f64 {
        if self.send_seconds > 0.0 {
            self.sent as f64 / self.send_seconds
        } else {
            0.0
        }
    }
}

struct DeliveryCounter {
    state: Arc<ProduceState>,
    errors: ClientErrors,
    log: bool,
}

impl ClientContext for DeliveryCounter {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.record(&error, reason);
    }
}

impl WatchErrors for DeliveryCounter {
    fn errors(&self) -> &ClientErrors {
        &self.errors
    }
}

impl ProducerContext for DeliveryCounter {
    /// The message's position in send order.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, message: usize) {
        match result {
            Ok(m) => {
                self.state.acknowledged.fetch_add(1, Ordering::Relaxed);
                self.state
                    .bytes
                    .fetch_add(m.payload_len() as u64, Ordering::Relaxed);
            }
            Err((e, _)) => self.state.fail(e.to_string()),
        }
        if self.log {
            let entry = match result {
                Ok(m) => Delivery {
                    message: message as u64,
                    partition: m.partition(),
                    offset: Some(m.offset()),
                    timestamp_ms: m.timestamp().to_millis(),
                    error: None,
                },
                Err((e, m)) => Delivery {
                    message: message as u64,
                    partition: m.partition(),
                    offset: None,
                    timestamp_ms: None,
                    error: Some(e.to_string()),
                },
            };
            if let Ok(mut log) = self.state.log.lock() {
                log.push(entry);
            }
        }
    }
}

/// kafkalake's producer defaults; each can be overridden in the settings.
fn producer_defaults(opts: &ProduceOptions) -> Vec<(&'static str, String)> {
    vec![
        // No duplicates or reordering from librdkafka's own retries (implies acks=all).
        ("enable.idempotence", opts.idempotent.to_string()),
        ("compression.type", opts.compression.clone()),
        // Same key → same partition as the Java client and Spark producers.
        ("partitioner", "murmur2_random".into()),
        // Larger batches: throughput over single-message latency.
        ("linger.ms", "5".into()),
        ("batch.num.messages", "10000".into()),
        // kafkalake creates topics itself (or says they are missing).
        ("allow.auto.create.topics", "false".into()),
    ]
}

/// Produce `source` to the topic; `state` is updated throughout and marked
/// finished at the end. A failure to start is an `Err`; a failure part-way
/// comes back with the report of what was delivered up to then.
pub fn produce(
    source: &mut dyn MessageSource,
    opts: &ProduceOptions,
    state: &Arc<ProduceState>,
) -> Result<(ProduceReport, Option<Error>)> {
    let outcome = run(source, opts, state);
    state.finish();
    outcome
}

fn run(
    source: &mut dyn MessageSource,
    opts: &ProduceOptions,
    state: &Arc<ProduceState>,
) -> Result<(ProduceReport, Option<Error>)> {
    opts.validate()?;
    let config = opts.kafka.client_config(&producer_defaults(opts));
    let producer: ThreadedProducer<DeliveryCounter> =
        config.create_with_context(DeliveryCounter {
            state: state.clone(),
            errors: ClientErrors::default(),
            log: opts.delivery_log,
        })?;
    let partitions = ensure_topic(
        producer.client(),
        &opts.kafka,
        &opts.topic,
        &opts.topic_spec,
    )?;
    if let Some(p) = opts.partition {
        if p as usize >= partitions {
            return Err(Error::InvalidArgument(format!(
                "partition {p} does not exist: topic '{}' has {partitions} partition(s), 0 to {}",
                opts.topic,
                partitions.saturating_sub(1)
            )));
        }
    }
    let max_bytes: usize = opts
        .kafka
        .get("message.max.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);

    let started = Instant::now();
    if let Ok(mut s) = state.started.lock() {
        *s = Some(started);
    }
    let mut limiter = RateLimiter::new(opts.rate);
    let (mut key, mut value) = (Vec::with_capacity(64), Vec::with_capacity(1024));
    let mut sent: u64 = 0;
    let mut fatal: Option<Error> = None;
    // Grant at most this many per step so cancellation and the duration are checked often.
    let step: u64 = 1000;
    'outer: loop {
        if state.cancel.load(Ordering::Relaxed) {
            break;
        }
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let want = opts.count.map_or(step, |c| (c - sent).min(step));
        if want == 0 {
            break;
        }
        let granted = limiter.acquire(want);
        for _ in 0..granted {
            key.clear();
            value.clear();
            let has_key = match source.next_message(&mut key, &mut value) {
                Ok(Some(k)) => k,
                Ok(None) => break 'outer,
                Err(e) => {
                    fatal = Some(e);
                    break 'outer;
                }
            };
            if value.len() > max_bytes {
                fatal = Some(Error::MessageTooLarge {
                    position: sent,
                    size: value.len(),
                    limit: max_bytes,
                });
                break 'outer;
            }
            let mut record =
                BaseRecord::with_opaque_to(&opts.topic, sent as usize).payload(&value[..]);
            if has_key {
                record = record.key(&key[..]);
            }
            if let Some(p) = opts.partition {
                record = record.partition(p);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // librdkafka's queue is full: wait for deliveries to drain it.
                        record = r;
                        if state.cancel.load(Ordering::Relaxed) {
                            break 'outer;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((
                        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                        _,
                    )) => {
                        fatal = Some(Error::MessageTooLarge {
                            position: sent,
                            size: value.len(),
                            limit: max_bytes,
                        });
                        break 'outer;
                    }
                    Err((e, _)) => {
                        fatal = Some(Error::Kafka(format!(
                            "could not enqueue message {sent}: {e}"
                        )));
                        break 'outer;
                    }
                }
            }
            sent += 1;
            state.sent.store(sent, Ordering::Relaxed);
        }
    }
    let send_seconds = started.elapsed().as_secs_f64();

    // Deliver what was handed over; what cannot be delivered in time is
    // purged, which reports it as failed rather than losing count of it.
    let flush_timeout = if state.cancel.load(Ordering::Relaxed) {
        // Stopping on request: give deliveries a short grace, not the full timeout.
        opts.flush_timeout.min(CANCEL_GRACE)
    } else {
        opts.flush_timeout
    };
    if producer.flush(flush_timeout).is_err() {
        producer.purge(PurgeConfig::default().queue().inflight());
        let _ = producer.flush(Duration::from_secs(5));
    }
    let report = ProduceReport {
        topic: opts.topic.clone(),
        sent,
        acknowledged: state.acknowledged.load(Ordering::Relaxed),
        failed: state.failed.load(Ordering::Relaxed),
        errors: state.errors(),
        bytes: state.bytes.load(Ordering::Relaxed),
        send_seconds,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        target_rate: opts.rate,
        interrupted: state.cancel.load(Ordering::Relaxed),
        partitions,
        delivery_log: if opts.delivery_log {
            Some(state.take_log()?)
        } else {
            None
        },
    };
    Ok((report, fatal))
}
