//! The ingest loop: consume → decode → write (dead letters first, then the
//! data, each with its offsets) → commit offsets to the consumer group.
//!
//! Everything a restart needs is in the sink: the consumer resumes at the
//! stored offsets + 1, and a batch cut short by a crash is written again
//! (Delta: skipped up to the stored txn version; Parquet: the same file
//! name). The group commit afterwards is for lag tools only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

mod dead_letters;
mod schema;

use dead_letters::*;
pub use dead_letters::{dead_letter_rows, dead_letter_schema};
use schema::*;

use crate::decode::{
    infer_schema, is_new_field, merge_additive, DeadLetter, DecodeOptions, Early, EarlyRows,
    JsonDecoder, RawMessage, METADATA_COLUMNS,
};
use crate::error::{Error, Result};
use crate::histogram::Histogram;
use crate::kafka::consumer::{BatchingConsumer, ConsumedBatch, ConsumerOptions, OffsetLookup};
use crate::memory::AllocatorTuning;
use crate::sink::capture::{self, CaptureOptions};
use crate::sink::delta::{self, DeltaOptions, DeltaSink, OFFSET_COLUMN};
use crate::sink::parquet;
use crate::sink::storage::Location;
use crate::sink::{PartitionChunk, Sink};

/// Where the rows go.
#[derive(Clone, Debug)]
pub enum SinkSpec {
    /// A Delta table.
    Delta(DeltaOptions),
    /// Parquet files under a directory or prefix.
    Parquet(Location),
    /// Event Hubs Capture-format Avro files (values kept as bytes).
    Capture(CaptureOptions),
}

/// When the ingest stops.
#[derive(Clone, Debug, PartialEq)]
pub enum RunMode {
    /// Until cancelled.
    Forever,
    /// For this long (then what is buffered is written).
    For(Duration),
    /// Until every assigned partition is read up to its high watermark.
    UntilCaughtUp,
}

/// A column derived from event time, e.g. a `date` to partition by.
#[derive(Clone, Debug)]
pub struct DateColumn {
    /// Timestamp column it is derived from.
    pub source: String,
    /// Name of the new `date` column.
    pub name: String,
}

/// Everything an ingest needs.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// The consumer.
    pub consumer: ConsumerOptions,
    /// Schema of the JSON values (else the table's, else inferred).
    pub schema: Option<SchemaRef>,
    /// Decoding.
    pub decode: DecodeOptions,
    /// A date column derived from event time.
    pub date_column: Option<DateColumn>,
    /// The sink.
    pub sink: SinkSpec,
    /// The dead-letter Delta table.
    pub dead_letters: Location,
    /// When to stop.
    pub mode: RunMode,
    /// With [`RunMode::UntilCaughtUp`]: how long partitions held by other
    /// members may make no progress towards their ends before the run
    /// fails naming them (`None`: the group watch's takeover time + 60 s).
    pub caught_up_timeout: Option<Duration>,
    /// The most columns (leaves, nested fields counted) schema evolution
    /// may grow the table to; messages whose new fields would pass it are
    /// dead letters.
    pub max_columns: usize,
}

/// What "caught up" waits for beyond this worker's own partitions: every
/// partition of the topics stored up to the end its log had at start,
/// whichever member of the group writes it.
struct Completion {
    /// `(topic, partition) -> (log start, log end)` at start.
    targets: BTreeMap<(String, i32), (i64, i64)>,
    /// Partitions behind at the last look, and how far each had got.
    behind: BTreeMap<(String, i32), i64>,
    /// The last time anything moved (own partitions read, others stored).
    progress_at: Instant,
    next_look: Instant,
    timeout: Duration,
}

impl Completion {
    /// Note the partitions behind now (`key -> next offset stored`); whether
    /// any moved since the last look.
    fn observe(&mut self, behind: BTreeMap<(String, i32), i64>, now: Instant) {
        let moved = behind.len() < self.behind.len()
            || behind
                .iter()
                .any(|(k, have)| self.behind.get(k).is_none_or(|old| have > old));
        if moved {
            self.progress_at = now;
        }
        self.behind = behind;
    }

    fn error(&self, group: &str) -> Error {
        let parts: Vec<String> = self
            .behind
            .iter()
            .map(|(k, have)| {
                let (low, high) = self.targets.get(k).copied().unwrap_or((0, 0));
                format!(
                    "{}[{}] ({} of {} messages stored)",
                    k.0,
                    k.1,
                    (have - low).max(0),
                    high - low
                )
            })
            .collect();
        Error::Incomplete(format!(
            "not caught up: {} {} behind the end of the log seen at start and made no \
             progress for {:.0} s: {}. They are assigned to another member of consumer group \
             '{group}' that is not writing them. Stop that member (a worker killed without \
             leaving the group is taken over once the group expires it) and run again, or \
             raise caught_up_timeout",
            self.behind.len(),
            if self.behind.len() == 1 {
                "partition is"
            } else {
                "partitions are"
            },
            self.timeout.as_secs_f64(),
            parts.join(", ")
        ))
    }
}

/// Live counters, readable from any thread.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Messages consumed.
    pub messages: AtomicU64,
    /// Rows written.
    pub rows: AtomicU64,
    /// Value bytes consumed.
    pub bytes: AtomicU64,
    /// Batches written.
    pub batches: AtomicU64,
    /// Sink commits (Delta versions, Parquet flushes).
    pub commits: AtomicU64,
    /// Files written.
    pub files: AtomicU64,
    /// Messages sent to the dead-letter table.
    pub dead_letters: AtomicU64,
    /// Times the consumer rejoined its group because partitions assigned
    /// elsewhere stood still (a member gone without leaving).
    pub group_rejoins: AtomicU64,
    /// Stop requested.
    pub cancel: AtomicBool,
    /// Seconds from a batch's first message in hand to its rows committed.
    pub commit_latency: Histogram,
    /// Seconds from each message's Kafka timestamp to its row committed.
    pub end_to_end_latency: Histogram,
    /// (topic, partition, next offset, high watermark).
    lag: Mutex<Vec<(String, i32, i64, i64)>>,
    started: Mutex<Option<Instant>>,
}

impl IngestMetrics {
    /// Seconds since the ingest started.
    pub fn elapsed(&self) -> f64 {
        self.started
            .lock()
            .ok()
            .and_then(|s| *s)
            .map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    /// The counters so far, as a report.
    pub fn snapshot(&self) -> IngestReport {
        IngestReport {
            messages: self.messages.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            elapsed: self.elapsed(),
            interrupted: self.cancel.load(Ordering::Relaxed),
        }
    }

    /// Lag per partition.
    pub fn lag(&self) -> Vec<(String, i32, i64, i64)> {
        self.lag.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Sinks answer the consumer's "where was I?" at every assignment.
struct SinkLookup(Arc<Mutex<Box<dyn Sink>>>);

impl OffsetLookup for SinkLookup {
    fn stored(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        self.0
            .lock()
            .map_err(|_| Error::Kafka("sink lock poisoned".into()))?
            .stored_offsets(topic, partitions)
    }
}

/// The outcome of an ingest run.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Messages consumed.
    pub messages: u64,
    /// Rows written.
    pub rows: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Sink commits.
    pub commits: u64,
    /// Seconds.
    pub elapsed: f64,
    /// Stopped by a cancel.
    pub interrupted: bool,
}

/// A running (or ready) ingest.
pub struct Ingest {
    opts: IngestOptions,
    consumer: BatchingConsumer,
    sink: Arc<Mutex<Box<dyn Sink>>>,
    dead: Option<DeltaSink>,
    /// Partitions whose offsets were checked against the dead-letter table
    /// since the consumer's assignment generation (the first of the pair):
    /// see [`Ingest::write_dead_letters`].
    dead_checked: (u64, std::collections::HashSet<(String, i32)>),
    decoders: BTreeMap<String, JsonDecoder>,
    metrics: Arc<IngestMetrics>,
    /// Schema of rows as written (Delta: the table's), once known.
    table_schema: Option<SchemaRef>,
    delta_pending_create: bool,
}

impl Ingest {
    /// Check everything that can be checked, open or prepare the sink, and
    /// subscribe. Nothing is written yet.
    pub fn new(mut opts: IngestOptions, metrics: Arc<IngestMetrics>) -> Result<Self> {
        // A schema given by the user is the schema: fields outside it are ignored.
        if opts.schema.is_some() {
            opts.decode.evolve = false;
        }
        // Only the `_headers` metadata column and Capture's Properties use them.
        opts.consumer.headers =
            opts.decode.metadata_columns || matches!(opts.sink, SinkSpec::Capture(_));
        if let Some(d) = &opts.date_column {
            if let Some(s) = &opts.schema {
                match s.field_with_name(&d.source).map(|f| f.data_type().clone()) {
                    Ok(DataType::Timestamp(_, _)) | Ok(DataType::Date32) => {}
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "date column source '{}' must be a timestamp column of the schema",
                            d.source
                        )))
                    }
                }
            }
        }
        if let SinkSpec::Capture(c) = &opts.sink {
            if let (Some(hub), true) = (&c.eventhub, opts.consumer.topics.len() > 1) {
                return Err(Error::InvalidArgument(format!(
                    "capture_eventhub='{hub}' would put the files of {} topics in one \
                     '{}/{hub}/<partition>' folder, where their offsets collide; ingest \
                     each topic with its own capture_eventhub, or leave it unset (each \
                     topic then gets its own folder)",
                    opts.consumer.topics.len(),
                    c.namespace
                )));
            }
        }
        // Credentials, container and permissions, before anything is consumed.
        match &opts.sink {
            SinkSpec::Delta(d) => d.location.check_access()?,
            SinkSpec::Parquet(l) => l.check_access()?,
            SinkSpec::Capture(c) => c.location.check_access()?,
        }
        let mut table_schema = None;
        let mut delta_pending_create = false;
        let sink: Box<dyn Sink> = match &opts.sink {
            SinkSpec::Delta(d) => match delta::open(&d.location)? {
                Some(table) => {
                    let s = DeltaSink::new(table, d.clone())?;
                    table_schema = Some(s.schema());
                    Box::new(s)
                }
                None => {
                    delta_pending_create = true;
                    Box::new(PendingDelta(d.clone()))
                }
            },
            SinkSpec::Parquet(loc) => Box::new(parquet::sink(loc.clone())?),
            SinkSpec::Capture(c) => Box::new(capture::sink(c.clone())?),
        };
        let mut decoders = BTreeMap::new();
        let derived: Vec<&str> = opts.date_column.iter().map(|d| d.name.as_str()).collect();
        let value_schema = match (&opts.schema, &table_schema) {
            (Some(s), Some(t)) => {
                let wanted = output_schema(s, &opts)?;
                delta::check_compatible(&location_of(&opts.sink), t, &wanted)?;
                Some(s.clone())
            }
            (Some(s), None) => Some(s.clone()),
            (None, Some(t)) if !opts.decode.flatten => {
                let mut drop: Vec<&str> = METADATA_COLUMNS.to_vec();
                drop.extend(&derived);
                Some(strip_columns(t, &drop))
            }
            _ => None,
        };
        if let Some(vs) = &value_schema {
            for t in &opts.consumer.topics {
                decoders.insert(
                    t.clone(),
                    JsonDecoder::new(t, vs.clone(), opts.decode.clone())?,
                );
            }
        }
        let dead = match delta::open(&opts.dead_letters)? {
            Some(t) => {
                delta::check_compatible(
                    &opts.dead_letters.uri,
                    &delta::arrow_schema(&t)?,
                    &dead_letter_schema(),
                )?;
                Some(DeltaSink::new(t, dead_letter_options(&opts))?)
            }
            None => None,
        };
        let sink = Arc::new(Mutex::new(sink));
        let lookup: Arc<Mutex<dyn OffsetLookup>> = Arc::new(Mutex::new(SinkLookup(sink.clone())));
        let consumer = BatchingConsumer::new(opts.consumer.clone(), Some(lookup))?;
        Ok(Ingest {
            opts,
            consumer,
            sink,
            dead,
            dead_checked: (u64::MAX, Default::default()),
            decoders,
            metrics,
            table_schema,
            delta_pending_create,
        })
    }

    /// Run until the mode says stop (or cancel); returns what was done.
    pub fn run(&mut self) -> Result<IngestReport> {
        // Batch after batch reuses the memory the previous one freed.
        let _allocator = AllocatorTuning::hold();
        let started = Instant::now();
        if let Ok(mut s) = self.metrics.started.lock() {
            *s = Some(started);
        }
        let m = self.metrics.clone();
        let mut completion = match self.opts.mode {
            RunMode::UntilCaughtUp => Some(Completion {
                targets: self.consumer.log_bounds()?,
                behind: BTreeMap::new(),
                progress_at: started,
                next_look: started,
                timeout: self.opts.caught_up_timeout.unwrap_or_else(|| {
                    self.consumer.takeover_after().unwrap_or_default() + Duration::from_secs(60)
                }),
            }),
            _ => None,
        };
        loop {
            let stop = m.cancel.load(Ordering::Relaxed)
                || matches!(self.opts.mode, RunMode::For(d) if started.elapsed() >= d);
            let batch = self.consumer.poll_batch(Duration::from_millis(200), stop)?;
            if let Ok(mut l) = m.lag.lock() {
                *l = self.consumer.lag();
            }
            m.group_rejoins
                .store(self.consumer.rejoins(), Ordering::Relaxed);
            if !batch.is_empty() {
                self.write(batch)?;
            }
            if stop {
                break;
            }
            if let Some(c) = completion.as_mut() {
                let now = Instant::now();
                if !self.consumer.caught_up() {
                    c.progress_at = now;
                    continue;
                }
                if now < c.next_look {
                    continue;
                }
                c.next_look = now + Duration::from_secs(1);
                let behind = self.behind(&c.targets)?;
                if behind.is_empty() {
                    let rest = self.consumer.poll_batch(Duration::ZERO, true)?;
                    if !rest.is_empty() {
                        self.write(rest)?;
                    }
                    break;
                }
                c.observe(behind, now);
                if now.duration_since(c.progress_at) >= c.timeout {
                    // What this worker read is written before it gives up.
                    let rest = self.consumer.poll_batch(Duration::ZERO, true)?;
                    if !rest.is_empty() {
                        self.write(rest)?;
                    }
                    return Err(c.error(&self.opts.consumer.group_id));
                }
            }
        }
        // Checkpoints written beside the commits are done when it returns;
        // waited for outside the sink's lock, which the group watch takes.
        let pending = self
            .sink
            .lock()
            .map_err(|_| Error::Kafka("sink lock poisoned".into()))?
            .pending();
        if let Some(wait) = pending {
            wait()?;
        }
        if let Some(wait) = self.dead.as_mut().and_then(|d| d.pending()) {
            wait()?;
        }
        Ok(m.snapshot())
    }

    /// Partitions of the topics assigned to other members (or to nobody)
    /// that the sink does not hold up to `targets`' ends: `key -> the next
    /// offset stored`. A partition counts as done when the sink stores its
    /// last offset, or when the group's committed offset (moved by the
    /// member writing it once the data is durable, also past transaction
    /// markers the sink never sees) has reached the end.
    fn behind(
        &mut self,
        targets: &BTreeMap<(String, i32), (i64, i64)>,
    ) -> Result<BTreeMap<(String, i32), i64>> {
        let mine: std::collections::HashSet<(String, i32)> =
            self.consumer.assignment().into_iter().collect();
        let others: Vec<(String, i32)> = targets
            .iter()
            .filter(|(k, (low, high))| high > low && !mine.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        if others.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in &others {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        let mut stored: BTreeMap<(String, i32), i64> = BTreeMap::new();
        {
            let mut sink = self
                .sink
                .lock()
                .map_err(|_| Error::Kafka("sink lock poisoned".into()))?;
            for (t, parts) in by_topic {
                for (p, o) in sink.stored_offsets(t, &parts)? {
                    stored.insert((t.to_string(), p), o + 1);
                }
            }
        }
        // Best effort: without the group's offsets, the sink's decide.
        let group = self.consumer.group_offsets(&others).unwrap_or_default();
        let mut behind = BTreeMap::new();
        for k in others {
            let (low, high) = targets[&k];
            let have = stored
                .get(&k)
                .copied()
                .unwrap_or(low)
                .max(group.get(&k).copied().unwrap_or(low));
            if have < high {
                behind.insert(k, have);
            }
        }
        Ok(behind)
    }

    /// Columns of the table that do not come from the JSON values.
    fn non_value_columns(&self) -> Vec<&str> {
        let mut drop: Vec<&str> = METADATA_COLUMNS.to_vec();
        drop.extend(self.opts.date_column.iter().map(|d| d.name.as_str()));
        drop
    }

    /// The decoder of `topic`'s values: the user's schema, else the table's
    /// (which decides every column's type; fields it lacks are added as
    /// they come), else one inferred from `messages`. `None` when there is
    /// nothing to learn a schema from (no JSON object).
    fn decoder_for(
        &mut self,
        topic: &str,
        messages: &[&RawMessage],
    ) -> Result<Option<JsonDecoder>> {
        if let Some(d) = self.decoders.get(topic) {
            return Ok(Some(d.clone()));
        }
        let schema = match &self.table_schema {
            Some(t) if !self.opts.decode.flatten => {
                Some(strip_columns(t, &self.non_value_columns()))
            }
            _ => infer_schema(messages.iter().filter_map(|m| m.value.as_deref()))?,
        };
        schema.map(|s| self.new_decoder(topic, &s)).transpose()
    }

    /// The decoder of `topic` for values of `schema` (inferred, or the
    /// table's), fitted to the table and to `max_columns`, and kept.
    fn new_decoder(&mut self, topic: &str, schema: &SchemaRef) -> Result<JsonDecoder> {
        let schema = match &self.table_schema {
            Some(t) if !self.opts.decode.flatten => strip_columns(t, &self.non_value_columns()),
            // Flattened: the table's `a.b` columns give the types of the
            // values' nested fields.
            Some(t) => align_flattened(schema, t),
            None => schema.clone(),
        };
        let schema = prune_to(&schema, self.opts.max_columns);
        let d = JsonDecoder::new(topic, schema, self.opts.decode.clone())?;
        self.decoders.insert(topic.to_string(), d.clone());
        Ok(d)
    }

    /// Decode, write dead letters, write rows, commit offsets.
    fn write(&mut self, batch: ConsumedBatch) -> Result<()> {
        let m = self.metrics.clone();
        let offsets = batch.last_offsets();
        let n = batch.len() as u64;
        m.messages.fetch_add(n, Ordering::Relaxed);
        m.bytes.fetch_add(
            batch.partitions.values().map(|b| b.bytes as u64).sum(),
            Ordering::Relaxed,
        );
        let mut by_topic: BTreeMap<String, Vec<Part>> = BTreeMap::new();
        for ((t, partition), buf) in batch.partitions {
            by_topic.entry(t).or_default().push(Part {
                partition,
                messages: buf.messages,
                early: buf.early.map(EarlyRows::finish),
            });
        }
        let stamps: Vec<i64> = by_topic
            .values()
            .flatten()
            .flat_map(|part| part.messages.iter().filter_map(|m| m.timestamp_ms))
            .collect();
        let t0 = Instant::now();
        let raw = matches!(self.opts.sink, SinkSpec::Capture(_));
        for (topic, parts) in by_topic {
            if raw {
                let chunks = parts
                    .iter()
                    .filter(|part| !part.messages.is_empty())
                    .map(
                        |Part {
                             partition,
                             messages: msgs,
                             ..
                         }| {
                            Ok(PartitionChunk {
                                partition: *partition,
                                first_offset: msgs[0].offset,
                                last_offset: msgs[msgs.len() - 1].offset,
                                batch: capture::raw_batch(msgs)?,
                                dead_letters: Vec::new(),
                            })
                        },
                    )
                    .collect::<Result<Vec<_>>>()?;
                self.write_to_sink(&topic, chunks)?;
                continue;
            }
            let all: Vec<&RawMessage> = parts.iter().flat_map(|p| p.messages.iter()).collect();
            if self.delta_pending_create {
                self.create_table(&topic, &all)?;
            }
            let decoder = self.decoder_for(&topic, &all)?;
            let mut decoded = decode_parts(decoder.as_ref(), &parts)?;
            if let Some(mut current) = decoder {
                // Each round widens by the new fields the last one revealed;
                // fields seen only as null end it with a lenient decode.
                for _ in 0..4 {
                    let Some(wider) = self.widen(&topic, &current, &mut decoded)? else {
                        break;
                    };
                    decoded = decode_parts(Some(&wider), &parts)?;
                    current = wider;
                }
            }
            let mut chunks = Vec::with_capacity(parts.len());
            for (
                Part {
                    partition: p,
                    messages: msgs,
                    ..
                },
                (rows, dead),
            ) in parts.iter().zip(decoded)
            {
                let (Some(first), Some(last)) = (msgs.first(), msgs.last()) else {
                    continue;
                };
                let rows = self.add_derived(rows)?;
                let offsets_col = offsets_of(&rows, msgs, &dead);
                let rows = with_offsets(&rows, offsets_col.into_iter())?;
                chunks.push(PartitionChunk {
                    partition: *p,
                    first_offset: first.offset,
                    last_offset: last.offset,
                    batch: rows,
                    dead_letters: dead,
                });
            }
            self.write_dead_letters(&topic, &mut chunks)?;
            if self.delta_pending_create {
                // Only dead letters so far: no schema to create the table with.
                continue;
            }
            self.write_to_sink(&topic, chunks)?;
            // From now on the topic's values are decoded as they are taken.
            if let Some(d) = self.decoders.get(&topic).and_then(JsonDecoder::early) {
                self.consumer.decode_early(&topic, d);
            }
        }
        m.batches.fetch_add(1, Ordering::Relaxed);
        m.commit_latency.observe(t0.elapsed().as_secs_f64());
        let now = chrono::Utc::now().timestamp_millis();
        m.end_to_end_latency
            .observe_all(stamps.iter().map(|&ts| (now - ts) as f64 / 1000.0));
        // The data is durable: let lag tools see the progress. A failure here
        // loses nothing (the sink is the source of truth), so it is not fatal.
        let _ = self.consumer.commit(&offsets);
        Ok(())
    }

    /// One sink write, counted in the metrics.
    fn write_to_sink(&mut self, topic: &str, chunks: Vec<PartitionChunk>) -> Result<()> {
        let outcome = self
            .sink
            .lock()
            .map_err(|_| Error::Kafka("sink lock poisoned".into()))?
            .write(topic, chunks)?;
        let m = &self.metrics;
        m.rows.fetch_add(outcome.rows, Ordering::Relaxed);
        m.files.fetch_add(outcome.files, Ordering::Relaxed);
        m.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Additive schema evolution: if values of `topic` have fields the
    /// decoder's schema lacks, the schema widened by them (types inferred
    /// from those values), with the sink's table widened to match; `None`
    /// when nothing is new (or evolution is off).
    fn widen(
        &mut self,
        topic: &str,
        decoder: &JsonDecoder,
        decoded: &mut [(RecordBatch, Vec<DeadLetter>)],
    ) -> Result<Option<JsonDecoder>> {
        if !self.opts.decode.evolve {
            return Ok(None);
        }
        let with_new: Vec<&[u8]> = decoded
            .iter()
            .flat_map(|(_, dead)| dead.iter())
            .filter(|d| is_new_field(&d.error))
            .filter_map(|d| d.message.value.as_deref())
            .collect();
        if with_new.is_empty() {
            return Ok(None);
        }
        let merged = infer_schema(with_new.into_iter())?
            .and_then(|seen| merge_additive(&decoder.value_schema(), &seen));
        let Some(merged) = merged else {
            // New fields without a usable type (only nulls, inside lists):
            // decode this batch ignoring them rather than dead-lettering it.
            let lenient = DecodeOptions {
                evolve: false,
                ..self.opts.decode.clone()
            };
            return Ok(Some(JsonDecoder::new(
                topic,
                decoder.value_schema(),
                lenient,
            )?));
        };
        let columns = leaf_count(merged.fields());
        if columns > self.opts.max_columns {
            // Keys that keep changing (ids as keys) would add columns
            // forever: these messages wait in the dead letters instead.
            let reason = format!(
                "its new fields would make {columns} columns, over max_columns ({}): keys \
                 that vary from message to message (ids, dates as keys) belong in a map \
                 column; pass a schema with a map<string, …> field for them, or raise \
                 max_columns",
                self.opts.max_columns
            );
            for d in decoded.iter_mut().flat_map(|(_, dead)| dead.iter_mut()) {
                if is_new_field(&d.error) {
                    d.error = format!("{}; {reason}", d.error);
                }
            }
            return Ok(None);
        }
        let merged: SchemaRef = Arc::new(merged);
        let wider = JsonDecoder::new(topic, merged.clone(), self.opts.decode.clone())?;
        if !self.delta_pending_create {
            let wanted = output_schema(&merged, &self.opts)?;
            self.sink
                .lock()
                .map_err(|_| Error::Kafka("sink lock poisoned".into()))?
                .evolve_schema(&wanted)?;
        }
        self.decoders.insert(topic.to_string(), wider.clone());
        Ok(Some(wider))
    }

    fn add_derived(&self, rows: RecordBatch) -> Result<RecordBatch> {
        let Some(d) = &self.opts.date_column else {
            return Ok(rows);
        };
        if rows.num_columns() == 0 {
            return Ok(rows);
        }
        let src = rows.column_by_name(&d.source).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "date column source '{}' is not a column of the data",
                d.source
            ))
        })?;
        let date = cast(src, &DataType::Date32)?;
        let mut fields: Vec<Field> = rows
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(&d.name, DataType::Date32, true));
        let mut cols = rows.columns().to_vec();
        cols.push(date);
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
    }

    /// Write the chunks' dead letters (before their rows: the dead-letter
    /// commit's `txn` covers each chunk's last offset). Offsets that an
    /// earlier run already classified (the dead-letter table's `txn` is
    /// ahead of the data: killed between the two commits) keep that
    /// classification, whatever this run makes of them, so every offset
    /// ends in exactly one of the two tables: rows already in the
    /// dead-letter table are dropped from the data, and messages that are
    /// dead letters now but were not then are added to it. Only a
    /// partition's first chunk after an assignment can start there: while
    /// this worker holds the partition, only it moves that `txn`.
    fn write_dead_letters(&mut self, topic: &str, chunks: &mut [PartitionChunk]) -> Result<()> {
        let generation = self.consumer.generation();
        if self.dead_checked.0 != generation {
            self.dead_checked = (generation, Default::default());
        }
        let fresh: Vec<i32> = chunks
            .iter()
            .map(|c| c.partition)
            .filter(|p| self.dead_checked.1.insert((topic.to_string(), *p)))
            .collect();
        if let (Some(dead), false) = (self.dead.as_mut(), fresh.is_empty()) {
            let stored = dead.stored_offsets(topic, &fresh)?;
            for c in chunks.iter_mut() {
                let Some(&done) = stored.get(&c.partition) else {
                    continue;
                };
                if c.first_offset > done {
                    continue;
                }
                let hi = c.last_offset.min(done);
                let known = dead.offsets_in(topic, c.partition, c.first_offset, hi)?;
                if !known.is_empty() {
                    c.batch = delta::filter_offsets(&c.batch, |o| !known.contains(&o))?;
                }
                let (before, after): (Vec<DeadLetter>, Vec<DeadLetter>) =
                    std::mem::take(&mut c.dead_letters)
                        .into_iter()
                        .partition(|d| d.message.offset <= hi);
                c.dead_letters = after;
                let late: Vec<DeadLetter> = before
                    .into_iter()
                    .filter(|d| !known.contains(&d.message.offset))
                    .collect();
                if !late.is_empty() {
                    dead.append_over(
                        topic,
                        PartitionChunk {
                            partition: c.partition,
                            first_offset: c.first_offset,
                            last_offset: done,
                            batch: dead_letter_batch(topic, &late)?,
                            dead_letters: Vec::new(),
                        },
                    )?;
                    self.metrics
                        .dead_letters
                        .fetch_add(late.len() as u64, Ordering::Relaxed);
                }
            }
        }
        let dead_chunks: Vec<PartitionChunk> = chunks
            .iter()
            .filter(|c| !c.dead_letters.is_empty())
            .map(|c| {
                Ok(PartitionChunk {
                    partition: c.partition,
                    first_offset: c.first_offset,
                    last_offset: c.last_offset,
                    batch: dead_letter_batch(topic, &c.dead_letters)?,
                    dead_letters: Vec::new(),
                })
            })
            .collect::<Result<_>>()?;
        if dead_chunks.is_empty() {
            return Ok(());
        }
        let count: usize = chunks.iter().map(|c| c.dead_letters.len()).sum();
        if self.dead.is_none() {
            let table = delta::create(&self.opts.dead_letters, &dead_letter_schema(), &[])?;
            self.dead = Some(DeltaSink::new(table, dead_letter_options(&self.opts))?);
        }
        if let Some(d) = self.dead.as_mut() {
            d.write(topic, dead_chunks)?;
        }
        self.metrics
            .dead_letters
            .fetch_add(count as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Create the Delta table (it is new) from the schema of `topic`'s
    /// values: the user's, else one inferred from `messages`. Another worker
    /// may create it at the same moment from its own messages: the table as
    /// created is what counts, and decoders are then built from its schema,
    /// so every value is decoded to the table's types.
    fn create_table(&mut self, topic: &str, messages: &[&RawMessage]) -> Result<()> {
        let SinkSpec::Delta(d) = &self.opts.sink else {
            return Ok(());
        };
        let value_schema = match self.decoders.get(topic) {
            Some(dec) => Some(dec.value_schema()),
            None => infer_schema(messages.iter().filter_map(|m| m.value.as_deref()))?,
        };
        let Some(value_schema) = value_schema.map(|s| prune_to(&s, self.opts.max_columns)) else {
            // Nothing but undecodable messages: no schema to create it with.
            return Ok(());
        };
        let wanted = output_schema(&value_schema, &self.opts)?;
        let table = delta::create_with(&d.location, &wanted, &d.partition_by, &d.table_properties)?;
        let sink = DeltaSink::new(table, d.clone())?;
        let schema = sink.schema();
        if self.opts.schema.is_some() {
            delta::check_compatible(&d.location.uri, &schema, &wanted)?;
        }
        self.table_schema = Some(schema);
        if self.opts.schema.is_none() {
            // Decoders follow the table as created, this topic's from the
            // schema just inferred.
            self.decoders.clear();
            self.new_decoder(topic, &value_schema)?;
        }
        *self
            .sink
            .lock()
            .map_err(|_| Error::Kafka("sink lock poisoned".into()))? = Box::new(sink);
        self.delta_pending_create = false;
        Ok(())
    }

    /// The consumer (for lag and assignment).
    pub fn consumer(&self) -> &BatchingConsumer {
        &self.consumer
    }
}

/// One partition's messages of a batch, and the rows of those decoded as
/// they were taken (their values are not kept).
struct Part {
    partition: i32,
    messages: Vec<RawMessage>,
    early: Option<Early>,
}

/// Decode each partition's messages (all dead when there is no decoder: no
/// JSON object to learn a schema from).
fn decode_parts(
    decoder: Option<&JsonDecoder>,
    parts: &[Part],
) -> Result<Vec<(RecordBatch, Vec<DeadLetter>)>> {
    parts
        .iter()
        .map(
            |Part {
                 messages: msgs,
                 early,
                 ..
             }| match decoder {
                Some(d) => d.decode_with(msgs, early.as_ref()),
                None => Ok((
                    RecordBatch::new_empty(Arc::new(Schema::empty())),
                    msgs.iter()
                        .map(|m| DeadLetter {
                            message: m.clone(),
                            error: "not a JSON object".into(),
                        })
                        .collect(),
                )),
            },
        )
        .collect()
}

/// The offset of each decoded row: the messages that did not become dead letters, in order.
fn offsets_of(rows: &RecordBatch, msgs: &[RawMessage], dead: &[DeadLetter]) -> Vec<i64> {
    if dead.is_empty() {
        return msgs.iter().map(|m| m.offset).collect();
    }
    let dead: std::collections::HashSet<i64> = dead.iter().map(|d| d.message.offset).collect();
    let v: Vec<i64> = msgs
        .iter()
        .map(|m| m.offset)
        .filter(|o| !dead.contains(o))
        .collect();
    debug_assert_eq!(v.len(), rows.num_rows());
    v
}

fn location_of(sink: &SinkSpec) -> String {
    match sink {
        SinkSpec::Delta(d) => d.location.uri.clone(),
        SinkSpec::Parquet(l) => l.uri.clone(),
        SinkSpec::Capture(c) => c.location.uri.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inferred_schemas_are_cut_to_max_columns() {
        let users: Vec<Field> = (0..10)
            .map(|i| Field::new(format!("user{i}"), DataType::Int64, true))
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("counts", DataType::Struct(users.into()), true),
            Field::new("at", DataType::Utf8, true),
        ]));
        assert_eq!(leaf_count(schema.fields()), 12);
        assert!(Arc::ptr_eq(&prune_to(&schema, 12), &schema));
        let cut = prune_to(&schema, 4);
        assert_eq!(leaf_count(cut.fields()), 4);
        let DataType::Struct(kept) = cut.field_with_name("counts").unwrap().data_type() else {
            panic!("counts is a struct");
        };
        let names: Vec<&str> = kept.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["user0", "user1", "user2"]);
        assert!(cut.field_with_name("at").is_err());
    }

    #[test]
    fn flattened_tables_give_nested_fields_their_types() {
        let inferred: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new(
                "extra",
                DataType::Struct(
                    vec![
                        Field::new("x", DataType::Int64, true),
                        Field::new("new", DataType::Utf8, true),
                    ]
                    .into(),
                ),
                true,
            ),
        ]));
        let table: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Float64, true),
            Field::new("extra.x", DataType::Float64, true),
        ]));
        let aligned = align_flattened(&inferred, &table);
        assert_eq!(
            aligned.field_with_name("id").unwrap().data_type(),
            &DataType::Float64
        );
        let DataType::Struct(extra) = aligned.field_with_name("extra").unwrap().data_type() else {
            panic!("extra is a struct");
        };
        assert_eq!(extra[0].data_type(), &DataType::Float64);
        assert_eq!(
            extra[1].data_type(),
            &DataType::Utf8,
            "new fields keep theirs"
        );
    }
}
