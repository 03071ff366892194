//! A batching consumer: consumer-group subscription, per-partition buffers,
//! and batches that close on whichever comes first of rows, bytes or latency.
//!
//! Where each partition starts is decided at assignment time, inside
//! librdkafka's rebalance callback, before any message of it is fetched:
//! the offset stored with the data (by a sink; see [`OffsetLookup`]) + 1,
//! else the requested start (earliest, latest, an offset or a timestamp).
//! `auto.offset.reset` is `error`, so a stored offset beyond the end of the
//! log stops the consumer with a clear error instead of silently skipping
//! or re-reading data.
//!
//! With a sink, a [`GroupWatch`] also looks out for partitions nobody in the
//! group reads: a member that dies without leaving keeps its partitions until
//! the coordinator expires it, and some brokers (tansu 0.6) then drop it
//! without a rebalance, so its partitions would stay unread for good.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

mod assign;
mod intake;
mod watch;

use assign::*;
use intake::*;
use watch::*;

use super::admin::check_topics;
use super::config::KafkaConfig;
use crate::decode::RawMessage;
use crate::decode::{EarlyRows, FastDecoder};
use crate::error::{Error, Result};

/// Where partitions without stored offsets start.
#[derive(Clone, Debug, PartialEq)]
pub enum StartFrom {
    /// The oldest message still in the log.
    Earliest,
    /// Only messages produced from now on.
    Latest,
    /// Explicit offsets per (topic, partition); others start at the earliest.
    Offsets(HashMap<(String, i32), i64>),
    /// The first message at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// Gives the offset last stored with the data, per partition.
pub trait OffsetLookup: Send {
    /// Last stored offset of each of `partitions` of `topic` that has one.
    fn stored(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>>;
}

/// When a batch closes.
#[derive(Clone, Debug)]
pub struct BatchLimits {
    /// Rows (messages).
    pub max_rows: usize,
    /// Bytes of keys, values and headers.
    pub max_bytes: usize,
    /// Age of the oldest buffered message.
    pub max_latency: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_rows: 100_000,
            max_bytes: 64 * 1024 * 1024,
            max_latency: Duration::from_secs(5),
        }
    }
}

/// Consumer settings.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// The cluster.
    pub kafka: KafkaConfig,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// Start of partitions with nothing stored.
    pub start: StartFrom,
    /// Batch limits.
    pub limits: BatchLimits,
    /// Whether messages keep their headers (metadata columns, Capture):
    /// reading them costs an allocation per message even when there are none.
    pub headers: bool,
}

/// Messages of one partition, in offset order.
#[derive(Debug, Default)]
pub struct PartitionBuffer {
    /// The messages.
    pub messages: Vec<RawMessage>,
    /// Bytes of keys, values and headers.
    pub bytes: usize,
    /// Rows of the values decoded as they were taken, when the topic's
    /// values are (see [`BatchingConsumer::decode_early`]); those messages
    /// are kept without their value.
    pub early: Option<EarlyRows>,
}

impl PartitionBuffer {
    /// What the `i`th message counts towards `max_bytes`, its value too
    /// when that was decoded and not kept.
    fn size_of(&self, i: usize) -> usize {
        message_size(&self.messages[i]) + self.early.as_ref().map_or(0, |e| e.value_len(i))
    }
}

/// A closed batch: messages per (topic, partition).
#[derive(Debug, Default)]
pub struct ConsumedBatch {
    /// Buffers by topic and partition.
    pub partitions: BTreeMap<(String, i32), PartitionBuffer>,
}

impl ConsumedBatch {
    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.partitions.values().map(|b| b.messages.len()).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// First offset per (topic, partition).
    pub fn first_offsets(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|((t, p), b)| b.messages.first().map(|m| (t.clone(), *p, m.offset)))
            .collect()
    }

    /// Last offset per (topic, partition).
    pub fn last_offsets(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|((t, p), b)| b.messages.last().map(|m| (t.clone(), *p, m.offset)))
            .collect()
    }
}

/// Consumes, buffers and cuts batches.
pub struct BatchingConsumer {
    /// Declared first: destroyed before the client it belongs to.
    fetch: FetchQueue,
    /// When assigned partitions were last forwarded to `fetch` again.
    forwarded_at: Instant,
    consumer: BaseConsumer<Context>,
    opts: ConsumerOptions,
    state: Arc<Mutex<Assignment>>,
    shared_generation: Arc<AtomicU64>,
    generation: u64,
    buffers: BTreeMap<(String, i32), PartitionBuffer>,
    /// Key of the last message's partition (consecutive messages mostly share it).
    last_key: Option<(String, i32)>,
    rows: usize,
    bytes: usize,
    oldest: Option<Instant>,
    /// High watermark per partition when first seen (for "until caught up").
    start_hwm: HashMap<(String, i32), i64>,
    /// Next offset to consume per partition.
    next: HashMap<(String, i32), i64>,
    /// Where consumed keys and values are copied: one allocation for many
    /// messages instead of one each (they share it, counted by reference).
    arena: BytesMut,
    /// Topics whose values are decoded as they are taken, and how.
    early: HashMap<String, (Arc<FastDecoder>, usize)>,
    /// Looks out for partitions nobody reads (with a sink only).
    watch: Option<GroupWatch>,
    /// Since when the cluster has been out of reach (a broker restart, a
    /// network outage), while it is.
    brokers_down: Option<Instant>,
    /// When reachability was last probed during an outage.
    probed_at: Instant,
}

/// How long the cluster may stay out of reach during a run before the
/// consumer gives up with [`Error::BrokerUnreachable`].
pub const OUTAGE_LIMIT: Duration = Duration::from_secs(300);

/// Every (topic, partition) of `topics`, from the cluster's metadata.
fn partitions_of(
    consumer: &BaseConsumer<Context>,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<(String, i32)>> {
    let mut all = Vec::new();
    for topic in topics {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| Error::Kafka(format!("reading the partitions of '{topic}': {e}")))?;
        for t in md.topics() {
            all.extend(
                t.partitions()
                    .iter()
                    .map(|p| (t.name().to_string(), p.id())),
            );
        }
    }
    Ok(all)
}

impl BatchingConsumer {
    /// Connect, check the topics exist, and subscribe.
    pub fn new(
        opts: ConsumerOptions,
        lookup: Option<Arc<Mutex<dyn OffsetLookup>>>,
    ) -> Result<Self> {
        opts.kafka.validate()?;
        if opts.topics.is_empty() {
            return Err(Error::InvalidArgument("give at least one topic".into()));
        }
        if opts.group_id.is_empty() {
            return Err(Error::InvalidArgument("group_id is empty".into()));
        }
        if opts.limits.max_rows == 0
            || opts.limits.max_bytes == 0
            || opts.limits.max_latency.is_zero()
        {
            return Err(Error::InvalidArgument(
                "max_rows, max_bytes and max_latency must all be positive".into(),
            ));
        }
        if opts.limits.max_latency > crate::runtime::MAX_WAIT {
            return Err(Error::InvalidArgument(format!(
                "max_latency must be at most {} s (a year), got {:.0} s",
                crate::runtime::MAX_WAIT.as_secs(),
                opts.limits.max_latency.as_secs_f64()
            )));
        }
        let watch = lookup.is_some().then(|| GroupWatch::new(&opts));
        let state = Arc::new(Mutex::new(Assignment::default()));
        let shared_generation = Arc::new(AtomicU64::new(0));
        let context = Context {
            generation: shared_generation.clone(),
            lookup,
            start: opts.start.clone(),
            timeout: opts.kafka.connect_timeout,
            state: state.clone(),
            started: Mutex::new(HashSet::new()),
            fetch_queue: Arc::new(AtomicPtr::new(std::ptr::null_mut())),
            existing: Arc::new(Mutex::new(HashSet::new())),
        };
        let existing = context.existing.clone();
        let shared_queue = context.fetch_queue.clone();
        let defaults = [
            ("group.id", opts.group_id.clone()),
            // Offsets are committed by kafkalake after the data is durable.
            ("enable.auto.commit", "false".to_string()),
            ("enable.auto.offset.store", "false".to_string()),
            // Starts are chosen explicitly; an out-of-range stored offset is an error.
            ("auto.offset.reset", "error".to_string()),
            // Some brokers hold a fetch for the full wait even when data is there.
            ("fetch.wait.max.ms", "10".to_string()),
            // While a batch is written the local queue fills up and
            // librdkafka pauses fetching; by default for a whole second,
            // long after the queue has been drained again.
            ("fetch.queue.backoff.ms", "10".to_string()),
            ("enable.partition.eof", "true".to_string()),
            ("allow.auto.create.topics", "false".to_string()),
        ];
        let mut defaults: Vec<(&str, String)> =
            defaults.iter().map(|(k, v)| (*k, v.clone())).collect();
        // The embedded cluster's coordinator, after the last member of a
        // group leaves, keeps the group rebalancing for the session timeout
        // (45 s) under the classic protocol: the next ingest of a notebook
        // would wait that long to join. Its KIP-848 coordinator does not, so
        // consumers of the embedded cluster use that protocol unless told
        // otherwise (classic-only settings keep the classic one).
        let classic_only = [
            "group.protocol",
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "partition.assignment.strategy",
        ];
        if super::embedded::is_embedded(&opts.kafka.bootstrap_servers)
            && classic_only.iter().all(|k| opts.kafka.get(k).is_none())
        {
            defaults.push(("group.protocol", "consumer".to_string()));
        }
        let config = opts.kafka.client_config(&defaults);
        let consumer: BaseConsumer<Context> = config.create_with_context(context)?;
        // SAFETY: a live client handle.
        let queue = unsafe { rdsys::rd_kafka_queue_new(consumer.client().native_ptr()) };
        if queue.is_null() {
            return Err(Error::Kafka(
                "could not create the consumer's fetch queue".into(),
            ));
        }
        shared_queue.store(queue, Ordering::Release);
        let fetch = FetchQueue {
            queue,
            shared: shared_queue,
        };
        check_topics(&opts.kafka, &opts.topics)?;
        if opts.start == StartFrom::Latest {
            let partitions = partitions_of(&consumer, &opts.topics, opts.kafka.connect_timeout)?;
            existing
                .lock()
                .map_err(|_| Error::Kafka("lock poisoned".into()))?
                .extend(partitions);
        }
        let topics: Vec<&str> = opts.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(BatchingConsumer {
            fetch,
            forwarded_at: Instant::now(),
            consumer,
            opts,
            state,
            shared_generation,
            generation: 0,
            buffers: BTreeMap::new(),
            last_key: None,
            rows: 0,
            bytes: 0,
            oldest: None,
            start_hwm: HashMap::new(),
            next: HashMap::new(),
            arena: BytesMut::new(),
            early: HashMap::new(),
            watch,
            brokers_down: None,
            probed_at: Instant::now(),
        })
    }

    /// The assignment generation applied: it changes with every partition
    /// assigned or revoked.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Drop buffered messages of partitions no longer assigned.
    fn sync_assignment(&mut self) -> Result<()> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| Error::Kafka("lock poisoned".into()))?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        if s.generation != self.generation {
            self.generation = s.generation;
            let current = s.current.clone();
            let reset = std::mem::take(&mut s.reset);
            drop(s);
            // Revoked partitions are someone else's now; re-assigned ones
            // restart from the stored offsets, so what is buffered for them
            // (not yet written) will be delivered again: keeping it would
            // write it twice.
            let keep = |k: &(String, i32)| current.contains(k) && !reset.contains(k);
            self.buffers.retain(|k, _| keep(k));
            self.next.retain(|k, _| keep(k));
            self.rows = self.buffers.values().map(|b| b.messages.len()).sum();
            self.bytes = self.buffers.values().map(|b| b.bytes).sum();
            if self.rows == 0 {
                self.oldest = None;
            }
        }
        Ok(())
    }

    fn is_full(&self, now: Instant) -> bool {
        self.rows >= self.opts.limits.max_rows
            || self.bytes >= self.opts.limits.max_bytes
            || self
                .oldest
                .is_some_and(|t| now.duration_since(t) >= self.opts.limits.max_latency)
    }

    fn cached_high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.cached_watermarks(topic, partition)
            .map(|(_, high)| high)
    }

    /// The low and high watermarks librdkafka last heard of.
    fn cached_watermarks(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        let c_topic = std::ffi::CString::new(topic).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: valid client pointer and out-parameters.
        let err = unsafe {
            rdsys::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                c_topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            .then_some((low.max(0), high))
    }

    /// Whether every assigned partition has been read up to the high
    /// watermark it had when first seen (Spark's AvailableNow).
    pub fn caught_up(&mut self) -> bool {
        // An assignment the poll loop has not applied yet: not known.
        if self.shared_generation.load(Ordering::Acquire) != self.generation {
            return false;
        }
        let Ok(s) = self.state.lock() else {
            return false;
        };
        if !s.assigned_once || s.between {
            return false;
        }
        let current: Vec<(String, i32)> = s.current.iter().cloned().collect();
        drop(s);
        current.iter().all(|k| {
            if !self.start_hwm.contains_key(k) {
                if let Some(h) = self.cached_high_watermark(&k.0, k.1) {
                    self.start_hwm.insert(k.clone(), h);
                }
            }
            let buffered = self
                .buffers
                .get(k)
                .and_then(|b| b.messages.last())
                .map(|m| m.offset + 1);
            let next = buffered.max(self.next.get(k).copied());
            match (self.start_hwm.get(k), next) {
                (Some(&h), Some(n)) => n >= h,
                _ => false,
            }
        })
    }

    /// The next batch, once it is closed by rows, bytes or latency: blocks up
    /// to `wait` for that, and returns an empty batch (buffers kept) if it
    /// has not happened by then. `force` closes the batch regardless.
    pub fn poll_batch(&mut self, wait: Duration, force: bool) -> Result<ConsumedBatch> {
        let mut now = Instant::now();
        self.check_brokers(now)?;
        if !force {
            self.watch_group(now)?;
        }
        let deadline = now + wait;
        self.reforward(now);
        // The clock is read after a poll that waited and every 64 messages
        // (read per message, it shows in profiles).
        let (mut waited, mut unclocked) = (false, 0usize);
        while !force && !self.is_full(now) {
            if waited || unclocked >= 64 {
                now = Instant::now();
                (waited, unclocked) = (false, 0);
                if now >= deadline {
                    break;
                }
            }
            // Messages, many at a time, from the fetch queue.
            let drained = self.drain(0, &mut now)?;
            unclocked += drained;
            // Rebalances, errors, commits (and any message that reached the
            // consumer queue before its partition was forwarded).
            match self.consumer.poll(Duration::ZERO) {
                Some(item) => {
                    unclocked += 1;
                    let item = item.map(|m| Owned::of(&m, self.opts.headers));
                    let item = item.map(|m| m.push_into(self, &mut now));
                    self.take_result(item)?;
                    continue;
                }
                None if drained > 0 => continue,
                None => {}
            }
            // Nothing anywhere: wait for messages (rebalances are served
            // after the short step).
            waited = true;
            let step = (deadline - now).min(Duration::from_millis(50));
            self.drain(step.as_millis() as i32, &mut now)?;
        }
        self.sync_assignment()?;
        let mut batch = ConsumedBatch::default();
        if !force && !self.is_full(Instant::now()) {
            return Ok(batch);
        }
        std::mem::swap(&mut batch.partitions, &mut self.buffers);
        self.rows = 0;
        self.bytes = 0;
        self.oldest = None;
        // Messages are taken from librdkafka many at a time, so a batch can
        // hold more than max_bytes (a few large keys): the rest waits for
        // the next batch.
        if !force {
            self.carry_over(&mut batch);
        }
        for (k, b) in &batch.partitions {
            if let Some(last) = b.messages.last() {
                // Never behind a partition end noted meanwhile (markers).
                let next = self.next.entry(k.clone()).or_insert(last.offset + 1);
                *next = (*next).max(last.offset + 1);
            }
        }
        Ok(batch)
    }

    /// Decode `topic`'s values as their messages are taken, with `decoder`
    /// (a fast decoder and the largest value it may take): a value it takes
    /// is not copied, and its row waits in the partition's buffer
    /// ([`PartitionBuffer::early`]). Rows already decoded keep the schema
    /// they were decoded with.
    pub fn decode_early(&mut self, topic: &str, decoder: (Arc<FastDecoder>, usize)) {
        if self
            .early
            .get(topic)
            .is_some_and(|(d, max)| Arc::ptr_eq(d, &decoder.0) && *max == decoder.1)
        {
            return;
        }
        let (d, max) = &decoder;
        for ((t, _), buf) in self.buffers.iter_mut() {
            if t != topic {
                continue;
            }
            match buf.early.as_mut() {
                Some(e) => e.set_decoder(d.clone(), *max),
                None => buf.early = Some(EarlyRows::new(d.clone(), *max, buf.messages.len())),
            }
        }
        self.early.insert(topic.to_string(), decoder);
    }

    /// Keep in the buffers what of `batch` is past `max_bytes` (at least
    /// one message stays in the batch; a partition's messages are cut after
    /// a prefix, so their order holds).
    fn carry_over(&mut self, batch: &mut ConsumedBatch) {
        let max = self.opts.limits.max_bytes;
        if batch.partitions.values().map(|b| b.bytes).sum::<usize>() <= max {
            return;
        }
        let mut used = 0usize;
        let mut any = false;
        for (k, buf) in batch.partitions.iter_mut() {
            let mut take = 0;
            for i in 0..buf.messages.len() {
                let size = buf.size_of(i);
                if any && used + size > max {
                    break;
                }
                used += size;
                take += 1;
                any = true;
            }
            if take < buf.messages.len() {
                let bytes: usize = (take..buf.messages.len()).map(|i| buf.size_of(i)).sum();
                let rest = PartitionBuffer {
                    messages: buf.messages.split_off(take),
                    bytes,
                    early: buf.early.as_mut().map(|e| e.split_off(take)),
                };
                buf.bytes -= bytes;
                self.rows += rest.messages.len();
                self.bytes += bytes;
                self.buffers.insert(k.clone(), rest);
            }
        }
        batch.partitions.retain(|_, b| !b.messages.is_empty());
        if self.rows > 0 {
            self.oldest = Some(Instant::now());
        }
    }

    /// During an outage (librdkafka reported the brokers out of reach), ask
    /// the cluster for metadata every few seconds: once it answers, the
    /// outage is over; if it has not answered for [`OUTAGE_LIMIT`], fail.
    /// Meanwhile the consumer keeps polling and librdkafka reconnects.
    fn check_brokers(&mut self, now: Instant) -> Result<()> {
        let Some(since) = self.brokers_down else {
            return Ok(());
        };
        if now.duration_since(self.probed_at) < Duration::from_secs(2) {
            return Ok(());
        }
        self.probed_at = now;
        let timeout = self.opts.kafka.connect_timeout.min(Duration::from_secs(5));
        match self.consumer.fetch_metadata(None, timeout) {
            Ok(_) => {
                self.brokers_down = None;
                Ok(())
            }
            Err(e) if now.duration_since(since) >= OUTAGE_LIMIT => Err(Error::BrokerUnreachable {
                servers: self.opts.kafka.bootstrap_servers.clone(),
                timeout: OUTAGE_LIMIT,
                detail: format!("the cluster went out of reach during the run: {e}"),
            }),
            Err(_) => Ok(()),
        }
    }

    /// Read the partitions of a batch that was taken but not used again from
    /// its `firsts` (first offset per partition), as if it had not been
    /// taken. Partitions no longer assigned are left to their new owner.
    pub fn rewind(&mut self, firsts: &[(String, i32, i64)]) -> Result<()> {
        let mine: HashSet<(String, i32)> = self.assignment().into_iter().collect();
        for (t, p, o) in firsts {
            let key = (t.clone(), *p);
            if !mine.contains(&key) {
                continue;
            }
            // Whatever was buffered after the batch comes again too.
            if let Some(b) = self.buffers.remove(&key) {
                self.rows -= b.messages.len();
                self.bytes -= b.bytes;
            }
            self.consumer
                .seek(t, *p, Offset::Offset(*o), self.opts.kafka.connect_timeout)
                .map_err(|e| Error::Kafka(format!("rewinding {t}[{p}] to offset {o}: {e}")))?;
            self.next.insert(key, *o);
        }
        if self.rows == 0 {
            self.oldest = None;
        }
        Ok(())
    }

    /// Commit `offsets` (last processed per partition) to the consumer group.
    pub fn commit(&self, offsets: &[(String, i32, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(o + 1))
                .map_err(Error::from)?;
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| Error::Kafka(format!("committing offsets: {e}")))
    }

    /// Partitions currently assigned.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        let mut v: Vec<_> = self
            .state
            .lock()
            .map(|s| s.current.iter().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Lag per assigned partition: (topic, partition, next offset, high watermark).
    pub fn lag(&self) -> Vec<(String, i32, i64, i64)> {
        self.assignment()
            .into_iter()
            .filter_map(|(t, p)| {
                let h = self.cached_high_watermark(&t, p)?;
                let n = self.next.get(&(t.clone(), p)).copied().unwrap_or(0);
                Some((t, p, n, h))
            })
            .collect()
    }

    /// The options it runs with.
    pub fn options(&self) -> &ConsumerOptions {
        &self.opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_starts_partitions_added_later_at_their_beginning() {
        let key = ("t".to_string(), 3);
        assert_eq!(first_start(&StartFrom::Latest, &key, true), Offset::End);
        assert_eq!(
            first_start(&StartFrom::Latest, &key, false),
            Offset::Beginning
        );
        assert_eq!(
            first_start(&StartFrom::Earliest, &key, true),
            Offset::Beginning
        );
        let explicit = StartFrom::Offsets(HashMap::from([(key.clone(), 42)]));
        assert_eq!(first_start(&explicit, &key, true), Offset::Offset(42));
        assert_eq!(
            first_start(&explicit, &("t".to_string(), 0), true),
            Offset::Beginning
        );
    }
}
