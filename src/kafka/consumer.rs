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
use std::ffi::{c_char, CStr, CString};
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

use super::admin::check_topics;
use super::config::KafkaConfig;
use crate::decode::RawMessage;
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

#[derive(Default)]
struct Assignment {
    /// Assigned partitions.
    current: HashSet<(String, i32)>,
    /// Set by each rebalance, so buffers of revoked partitions are dropped.
    generation: u64,
    /// Whether any assignment has happened yet.
    assigned_once: bool,
    /// Everything was revoked and the next assignment has not come yet
    /// (a rebalance in progress, or a rejoin): nothing can be caught up.
    between: bool,
    /// An error from the rebalance callback, raised by the main loop.
    error: Option<Error>,
    /// Partitions (re)assigned since the main loop last looked: their start
    /// was chosen afresh, so whatever is buffered for them will come again.
    reset: HashSet<(String, i32)>,
}

struct Context {
    lookup: Option<Arc<Mutex<dyn OffsetLookup>>>,
    start: StartFrom,
    timeout: Duration,
    state: Arc<Mutex<Assignment>>,
    /// Mirrors `Assignment::generation`, readable without the lock.
    generation: Arc<AtomicU64>,
    /// Explicit starts apply once; later assignments resume from the group.
    started: Mutex<HashSet<(String, i32)>>,
    /// The queue assigned partitions' messages are forwarded to (see
    /// [`FetchQueue`]); null until it exists and once it is gone.
    fetch_queue: Arc<AtomicPtr<rdsys::rd_kafka_queue_t>>,
    /// The topics' partitions when the consumer subscribed: a "latest"
    /// start applies to them only. Partitions added to a topic later start
    /// at their beginning (as Spark does), or what was produced to them
    /// before they were discovered would be skipped.
    existing: Arc<Mutex<HashSet<(String, i32)>>>,
}

/// A queue of the consumer's own that assigned partitions' messages are
/// forwarded to, away from the consumer queue: it holds nothing but
/// messages (and partition ends), so they can be taken many at a time
/// (`rd_kafka_consume_batch_queue`, one call per up to [`DRAIN`] messages)
/// instead of one event each. Rebalances, commits and errors stay on the
/// consumer queue, served by polling it as before; a message that reaches
/// it anyway (fetched before its partition was forwarded) is taken there.
struct FetchQueue {
    queue: *mut rdsys::rd_kafka_queue_t,
    shared: Arc<AtomicPtr<rdsys::rd_kafka_queue_t>>,
}

// SAFETY: librdkafka queues may be used from any thread, at once too.
unsafe impl Send for FetchQueue {}
unsafe impl Sync for FetchQueue {}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        self.shared.store(std::ptr::null_mut(), Ordering::Release);
        // SAFETY: created by rd_kafka_queue_new and destroyed once, before
        // the client (it is declared before the consumer).
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue) };
    }
}

/// Room for the messages of one `rd_kafka_consume_batch_queue` call
/// (empty between calls).
struct Drained(Vec<*mut rdsys::rd_kafka_message_t>);

// SAFETY: it holds no message between calls; librdkafka messages may be
// destroyed from any thread.
unsafe impl Send for Drained {}
// SAFETY: only touched through `&mut`.
unsafe impl Sync for Drained {}

/// A message from the consumer queue, copied out so the consumer can be
/// borrowed again (rare: most messages come through the [`FetchQueue`]).
struct Owned {
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Option<Vec<(String, Option<Vec<u8>>)>>,
    topic: String,
}

impl Owned {
    fn of(m: &BorrowedMessage<'_>, headers: bool) -> Self {
        Owned {
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: headers.then(|| m.headers()).flatten().map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            }),
            topic: m.topic().to_string(),
        }
    }

    fn push_into(self, c: &mut BatchingConsumer, now: &mut Instant) -> Result<()> {
        let topic = self.topic;
        c.push(
            self.partition,
            self.offset,
            self.timestamp_ms,
            self.key.as_deref(),
            self.value.as_deref(),
            self.headers,
            || topic,
            now,
        )
    }
}

/// Messages taken from the [`FetchQueue`] per call.
const DRAIN: usize = 1024;

/// Forward the messages of `partitions` to `queue` (nothing when null).
///
/// # Safety
/// `native` is a live consumer handle and `queue` null or a live queue of it.
unsafe fn forward_partitions<'a>(
    native: *mut rdsys::rd_kafka_t,
    queue: *mut rdsys::rd_kafka_queue_t,
    partitions: impl Iterator<Item = (&'a str, i32)>,
) {
    if queue.is_null() {
        return;
    }
    for (topic, p) in partitions {
        let Ok(topic) = CString::new(topic) else {
            continue;
        };
        let pq = rdsys::rd_kafka_queue_get_partition(native, topic.as_ptr(), p);
        if !pq.is_null() {
            rdsys::rd_kafka_queue_forward(pq, queue);
            rdsys::rd_kafka_queue_destroy(pq);
        }
    }
}

/// Where a partition with nothing stored and no group offset starts
/// (`existed`: it was there when the consumer subscribed). A timestamp
/// start is resolved afterwards; until then it is the beginning.
fn first_start(start: &StartFrom, key: &(String, i32), existed: bool) -> Offset {
    match start {
        StartFrom::Earliest | StartFrom::Timestamp(_) => Offset::Beginning,
        StartFrom::Latest if existed => Offset::End,
        // Added to the topic since: all of it is new.
        StartFrom::Latest => Offset::Beginning,
        StartFrom::Offsets(m) => m.get(key).map_or(Offset::Beginning, |o| Offset::Offset(*o)),
    }
}

impl ClientContext for Context {}

impl Context {
    /// Whether the partition was there when the consumer subscribed.
    fn existed(&self, key: &(String, i32)) -> bool {
        self.existing.lock().map_or(true, |e| e.contains(key))
    }

    /// Fill in the start offset of each newly assigned partition.
    fn choose_offsets(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
    ) -> Result<()> {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for e in tpl.elements() {
            by_topic
                .entry(e.topic().to_string())
                .or_default()
                .push(e.partition());
        }
        let mut started = self
            .started
            .lock()
            .map_err(|_| Error::Kafka("lock poisoned".into()))?;
        let mut by_time = TopicPartitionList::new();
        // Without a sink, the group's committed offsets are where this
        // consumer left off (earliest/latest apply only where there are none).
        // With one, they are where a "latest" start was pinned when nothing
        // was stored yet (see `GroupWatch`): starting at the end again after
        // a rebalance would skip what came in meanwhile.
        let mut committed: HashMap<(String, i32), i64> = HashMap::new();
        let use_committed = match self.start {
            StartFrom::Latest => true,
            StartFrom::Earliest => self.lookup.is_none(),
            _ => false,
        };
        if use_committed {
            let mut q = TopicPartitionList::new();
            for (topic, parts) in &by_topic {
                for p in parts {
                    q.add_partition(topic, *p);
                }
            }
            for e in consumer.committed_offsets(q, self.timeout)?.elements() {
                if let Offset::Offset(o) = e.offset() {
                    committed.insert((e.topic().to_string(), e.partition()), o);
                }
            }
        }
        for (topic, parts) in &by_topic {
            let stored = match &self.lookup {
                Some(l) => l
                    .lock()
                    .map_err(|_| Error::Kafka("lock poisoned".into()))?
                    .stored(topic, parts)?,
                None => BTreeMap::new(),
            };
            for p in parts {
                let key = (topic.clone(), *p);
                let offset = if let Some(o) = stored.get(p) {
                    // The sink remembers offsets the log must still have: a
                    // topic deleted and created again (or truncated) has fewer.
                    let (_, high) = consumer.fetch_watermarks(topic, *p, self.timeout)?;
                    if o + 1 > high {
                        return Err(Error::Kafka(format!(
                            "the data already holds {topic}[{p}] up to offset {o}, beyond the \
                             end of the topic's log (next offset {high}): the topic was deleted \
                             and created again, or truncated; write to a new table or \
                             directory, or use another ingest name"
                        )));
                    }
                    Offset::Offset(o + 1)
                } else if let Some(o) = committed.get(&key) {
                    Offset::Offset(*o)
                } else if self.lookup.is_none() && started.contains(&key) {
                    // No sink: the group's committed offset, as any consumer.
                    Offset::Stored
                } else {
                    if let StartFrom::Timestamp(ts) = &self.start {
                        by_time
                            .add_partition_offset(topic, *p, Offset::Offset(*ts))
                            .map_err(Error::from)?;
                    }
                    first_start(&self.start, &key, self.existed(&key))
                };
                tpl.set_partition_offset(topic, *p, offset)
                    .map_err(Error::from)?;
                started.insert(key);
            }
        }
        if by_time.count() > 0 {
            let found = consumer.offsets_for_times(by_time, self.timeout)?;
            for e in found.elements() {
                // No message at or after the time: start at the end.
                let o = match e.offset() {
                    Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                    _ => Offset::End,
                };
                tpl.set_partition_offset(e.topic(), e.partition(), o)
                    .map_err(Error::from)?;
            }
        }
        Ok(())
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let native = consumer.client().native_ptr();
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = self.choose_offsets(consumer, tpl) {
                    if let Ok(mut s) = self.state.lock() {
                        s.error = Some(e);
                    }
                }
                if let Ok(mut s) = self.state.lock() {
                    for e in tpl.elements() {
                        let key = (e.topic().to_string(), e.partition());
                        s.current.insert(key.clone());
                        s.reset.insert(key);
                    }
                    s.generation += 1;
                    s.assigned_once = true;
                    s.between = false;
                    self.generation.store(s.generation, Ordering::Release);
                }
                // SAFETY: the client and list are valid for the whole callback.
                unsafe {
                    // Before the fetch starts, so none of it goes elsewhere.
                    forward_partitions(
                        native,
                        self.fetch_queue.load(Ordering::Acquire),
                        tpl.elements().iter().map(|e| (e.topic(), e.partition())),
                    );
                    if cooperative {
                        rdsys::rd_kafka_incremental_assign(native, tpl.ptr());
                    } else {
                        rdsys::rd_kafka_assign(native, tpl.ptr());
                    }
                }
            }
            _ => {
                if let Ok(mut s) = self.state.lock() {
                    for e in tpl.elements() {
                        s.current.remove(&(e.topic().to_string(), e.partition()));
                    }
                    s.between = s.current.is_empty();
                    s.generation += 1;
                    self.generation.store(s.generation, Ordering::Release);
                }
                // SAFETY: as above.
                unsafe {
                    if cooperative {
                        rdsys::rd_kafka_incremental_unassign(native, tpl.ptr());
                    } else {
                        rdsys::rd_kafka_assign(native, std::ptr::null());
                    }
                }
            }
        }
    }
}

/// Watches partitions assigned to other members of the group: one whose
/// committed offset has not moved for longer than the session timeout (plus
/// slack for a batch being written) while it has unread messages means its
/// member is gone without the coordinator reassigning it. This consumer then
/// leaves and rejoins the group, which makes the coordinator rebalance.
///
/// Only used with a sink, whose ingest commits to the group after every
/// write; a rejoin that was not needed costs one rebalance, never data (each
/// partition restarts from the offsets stored with the data).
struct GroupWatch {
    /// How often to look.
    every: Duration,
    /// How long an offset may stand still with messages behind it.
    stall_after: Duration,
    next_check: Instant,
    /// The assignment generation the observations belong to.
    generation: u64,
    /// Committed offset of each partition assigned elsewhere, and since when.
    seen: HashMap<(String, i32), (i64, Instant)>,
    /// Since when a revoke has had no assignment after it (or, before the
    /// first assignment, since the watch started).
    unassigned_since: Option<Instant>,
    /// Times this consumer rejoined the group.
    rejoins: u64,
}

impl GroupWatch {
    fn new(opts: &ConsumerOptions) -> Self {
        // librdkafka's default session timeout.
        let session = opts
            .kafka
            .get("session.timeout.ms")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(45_000)
            // librdkafka's own upper bound (it refuses more).
            .min(3_600_000);
        let session = Duration::from_millis(session);
        GroupWatch {
            every: (session / 3).clamp(Duration::from_secs(1), Duration::from_secs(10)),
            stall_after: session
                .saturating_add(opts.limits.max_latency.saturating_mul(2))
                .saturating_add(Duration::from_secs(5)),
            next_check: Instant::now(),
            generation: u64::MAX,
            seen: HashMap::new(),
            unassigned_since: None,
            rejoins: 0,
        }
    }
}

/// Consumes, buffers and cuts batches.
pub struct BatchingConsumer {
    /// Declared first: destroyed before the client it belongs to.
    fetch: FetchQueue,
    /// When assigned partitions were last forwarded to `fetch` again.
    forwarded_at: Instant,
    /// Messages taken from `fetch`, destroyed as soon as they are copied.
    drained: Drained,
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

/// What a message counts towards `max_bytes`: everything copied of it,
/// its key and headers as well as its value.
fn message_size(m: &RawMessage) -> usize {
    m.value.as_ref().map_or(0, Bytes::len)
        + m.key.as_ref().map_or(0, Bytes::len)
        + m.headers.as_ref().map_or(0, |hs| {
            hs.iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                .sum()
        })
}

/// Size of the chunks [`BatchingConsumer`] copies message bytes into.
const ARENA_CHUNK: usize = 1 << 20;

/// `bytes` copied into `arena` (which gets a fresh chunk when full).
fn copy_into(arena: &mut BytesMut, bytes: &[u8]) -> Bytes {
    if arena.capacity() < bytes.len() {
        *arena = BytesMut::with_capacity(ARENA_CHUNK.max(bytes.len()));
    }
    arena.extend_from_slice(bytes);
    arena.split().freeze()
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
            drained: Drained(Vec::with_capacity(DRAIN)),
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

    /// Times this consumer left and rejoined its group because partitions
    /// assigned elsewhere stood still (see [`GroupWatch`]).
    pub fn rejoins(&self) -> u64 {
        self.watch.as_ref().map_or(0, |w| w.rejoins)
    }

    /// Look at the partitions assigned to other members (when due) and
    /// rejoin the group if one of them has stood still with messages behind
    /// its committed offset for too long. Best effort: a request that fails
    /// is tried again at the next look.
    fn watch_group(&mut self, now: Instant) -> Result<()> {
        let Some(w) = self.watch.as_mut() else {
            return Ok(());
        };
        if now < w.next_check {
            return Ok(());
        }
        w.next_check = now + w.every;
        let Ok(s) = self.state.lock() else {
            return Ok(());
        };
        let settled = s.assigned_once
            && !s.between
            && s.generation == self.generation
            && self.shared_generation.load(Ordering::Acquire) == self.generation;
        let unassigned = !s.assigned_once || s.between;
        let mine = s.current.clone();
        drop(s);
        if unassigned {
            // A rebalance that never ends (a coordinator waiting on a member
            // that is gone) leaves this consumer with nothing to read, for
            // good: joining again starts a new one.
            let since = *w.unassigned_since.get_or_insert(now);
            if now.duration_since(since) >= w.stall_after {
                return self.rejoin();
            }
            return Ok(());
        }
        w.unassigned_since = None;
        if !settled {
            return Ok(());
        }
        if w.generation != self.generation {
            // Observations from before a rebalance say nothing about now.
            w.seen.clear();
            w.generation = self.generation;
        }
        let timeout = self.opts.kafka.connect_timeout;
        let Ok(partitions) = partitions_of(&self.consumer, &self.opts.topics, timeout) else {
            return Ok(());
        };
        let mut all = TopicPartitionList::new();
        for (t, p) in &partitions {
            all.add_partition(t, *p);
        }
        let Ok(committed) = self.consumer.committed_offsets(all, timeout) else {
            return Ok(());
        };
        self.commit_idle_positions(&mine, &committed);
        let Some(w) = self.watch.as_mut() else {
            return Ok(());
        };
        let mut present = HashSet::new();
        let mut stalled = Vec::new();
        for e in committed.elements() {
            let key = (e.topic().to_string(), e.partition());
            if mine.contains(&key) || e.error().is_err() {
                continue;
            }
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            present.insert(key.clone());
            match w.seen.get(&key) {
                Some(&(o, since)) if o == offset => {
                    if now.duration_since(since) >= w.stall_after {
                        stalled.push((key, offset));
                    }
                }
                _ => {
                    w.seen.insert(key, (offset, now));
                }
            }
        }
        w.seen.retain(|k, _| present.contains(k));
        if stalled.is_empty() {
            return Ok(());
        }
        // Standing still is fine where there is nothing to read. One request
        // for the ends of all stalled partitions (and one for the starts of
        // those with nothing committed), not one per partition.
        let Some(high) = self.log_ends(stalled.iter().map(|(k, _)| k), Offset::End) else {
            return Ok(());
        };
        let Some(low) = self.log_ends(
            stalled.iter().filter(|(_, o)| *o < 0).map(|(k, _)| k),
            Offset::Beginning,
        ) else {
            return Ok(());
        };
        let Some(w) = self.watch.as_mut() else {
            return Ok(());
        };
        let mut behind = false;
        for (key, offset) in stalled {
            let Some(&h) = high.get(&key) else { continue };
            let from = if offset < 0 {
                low.get(&key).copied()
            } else {
                Some(offset)
            };
            match from {
                Some(from) if h > from => behind = true,
                Some(_) => {
                    w.seen.insert(key, (offset, now));
                }
                None => {}
            }
        }
        if behind {
            return self.rejoin();
        }
        Ok(())
    }

    /// Every partition of the subscribed topics with the start and end of
    /// its log now: `(topic, partition) -> (low, high)`.
    pub fn log_bounds(&self) -> Result<BTreeMap<(String, i32), (i64, i64)>> {
        let timeout = self.opts.kafka.connect_timeout;
        let all = partitions_of(&self.consumer, &self.opts.topics, timeout)?;
        let failed = || {
            Error::Kafka(format!(
                "could not read the ends of the partitions of {} within {:.0} s",
                self.opts.topics.join(", "),
                timeout.as_secs_f64()
            ))
        };
        let high = self.log_ends(all.iter(), Offset::End).ok_or_else(failed)?;
        let low = self
            .log_ends(all.iter(), Offset::Beginning)
            .ok_or_else(failed)?;
        Ok(all
            .into_iter()
            .filter_map(|k| {
                let h = *high.get(&k)?;
                let l = low.get(&k).copied().unwrap_or(0);
                Some((k, (l, h)))
            })
            .collect())
    }

    /// The consumer group's committed offsets (the next offset to read) of
    /// `partitions` that have one.
    pub fn group_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), i64>> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let committed = self
            .consumer
            .committed_offsets(tpl, self.opts.kafka.connect_timeout)
            .map_err(|e| Error::Kafka(format!("reading the group's committed offsets: {e}")))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match (e.error(), e.offset()) {
                (Ok(()), Offset::Offset(o)) => Some(((e.topic().to_string(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }

    /// How long partitions of another member may stand still with messages
    /// waiting before this consumer rejoins the group to take them over
    /// (see [`GroupWatch`]); `None` without a sink.
    pub fn takeover_after(&self) -> Option<Duration> {
        self.watch.as_ref().map(|w| w.stall_after)
    }

    /// Leave the group and join it again, which makes the coordinator
    /// rebalance (see [`GroupWatch`]).
    fn rejoin(&mut self) -> Result<()> {
        if let Some(w) = self.watch.as_mut() {
            w.seen.clear();
            w.unassigned_since = None;
            w.rejoins += 1;
        }
        self.consumer.unsubscribe();
        let topics: Vec<&str> = self.opts.topics.iter().map(String::as_str).collect();
        self.consumer.subscribe(&topics)?;
        Ok(())
    }

    /// The log end (`Offset::End`) or start (`Offset::Beginning`) of each
    /// partition, in one ListOffsets round trip per leader; `None` if the
    /// request failed (an empty map for no partitions).
    fn log_ends<'a>(
        &self,
        partitions: impl Iterator<Item = &'a (String, i32)>,
        which: Offset,
    ) -> Option<HashMap<(String, i32), i64>> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition_offset(t, *p, which).ok()?;
        }
        if tpl.count() == 0 {
            return Some(HashMap::new());
        }
        let found = self
            .consumer
            .offsets_for_times(tpl, self.opts.kafka.connect_timeout)
            .ok()?;
        Some(
            found
                .elements()
                .iter()
                .filter_map(|e| match (e.error(), e.offset()) {
                    (Ok(()), Offset::Offset(o)) => {
                        Some(((e.topic().to_string(), e.partition()), o))
                    }
                    _ => None,
                })
                .collect(),
        )
    }

    /// Own partitions with nothing buffered have had everything before their
    /// position written (a batch is written before the next poll): their
    /// group offset moves there, so partitions with nothing to write (a
    /// "latest" start, a commit lost in a rebalance, a transaction marker
    /// last in the log) do not look stalled to the other members.
    fn commit_idle_positions(&self, mine: &HashSet<(String, i32)>, committed: &TopicPartitionList) {
        let group: HashMap<(String, i32), i64> = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                _ => None,
            })
            .collect();
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        let mut advance = TopicPartitionList::new();
        for e in positions.elements() {
            let key = (e.topic().to_string(), e.partition());
            if !mine.contains(&key)
                || self
                    .buffers
                    .get(&key)
                    .is_some_and(|b| !b.messages.is_empty())
            {
                continue;
            }
            // Nothing consumed yet (a "latest" start): where the end was
            // when this consumer first reached it.
            // The position is capped at the log end: batch consumption
            // counts a partition-end event as a message and moves the
            // position one past it.
            let pos = match e.offset() {
                Offset::Offset(pos) => Some(match self.cached_high_watermark(&key.0, key.1) {
                    Some(high) => pos.min(high),
                    None => pos,
                }),
                _ => self.next.get(&key).copied(),
            };
            if let Some(pos) = pos.filter(|&p| group.get(&key).is_none_or(|&c| p > c)) {
                let _ = advance.add_partition_offset(&key.0, key.1, Offset::Offset(pos));
            }
        }
        if advance.count() > 0 {
            let _ = self.consumer.commit(&advance, CommitMode::Async);
        }
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
        (err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
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

    /// Forward the assigned partitions to the fetch queue again, once a
    /// second: stopping a partition's fetch (a revoke) clears its
    /// forwarding, and should that land after the next assignment
    /// forwarded it, its messages would otherwise wait where nobody looks.
    fn reforward(&mut self, now: Instant) {
        if now.duration_since(self.forwarded_at) < Duration::from_secs(1) {
            return;
        }
        self.forwarded_at = now;
        let Ok(s) = self.state.lock() else {
            return;
        };
        let current: Vec<(String, i32)> = s.current.iter().cloned().collect();
        drop(s);
        // SAFETY: live client and queue (the queue outlives this call).
        unsafe {
            forward_partitions(
                self.consumer.client().native_ptr(),
                self.fetch.queue,
                current.iter().map(|(t, p)| (t.as_str(), *p)),
            );
        }
    }

    /// Take up to [`DRAIN`] messages from the fetch queue, waiting up to
    /// `timeout_ms` for the first; how many. No more than the batch has
    /// room for: all of its rows, and as many messages as its bytes (at
    /// the average size so far).
    fn drain(&mut self, timeout_ms: i32) -> usize {
        let limits = &self.opts.limits;
        let mut room = limits.max_rows.saturating_sub(self.rows).clamp(1, DRAIN);
        if self.rows > 0 && self.bytes > 0 {
            let average = (self.bytes / self.rows).max(1);
            room = room.min(limits.max_bytes.saturating_sub(self.bytes) / average + 1);
        }
        let d = &mut self.drained.0;
        d.clear();
        d.reserve(DRAIN);
        // SAFETY: the array has room for `room` <= DRAIN pointers;
        // librdkafka fills the first `n`, destroyed by `take_drained`.
        unsafe {
            let n = rdsys::rd_kafka_consume_batch_queue(
                self.fetch.queue,
                timeout_ms,
                d.as_mut_ptr(),
                room,
            );
            let n = n.max(0) as usize;
            d.set_len(n);
            n
        }
    }

    /// Buffer the drained messages (each destroyed right after its bytes
    /// are copied).
    fn take_drained(&mut self, now: &mut Instant) -> Result<()> {
        let drained = std::mem::take(&mut self.drained.0);
        let mut outcome = Ok(());
        for &m in &drained {
            if outcome.is_ok() {
                // SAFETY: a message returned by librdkafka and not yet destroyed.
                outcome = unsafe { self.take_native(&*m, now) };
            }
            // SAFETY: as above; destroyed once.
            unsafe { rdsys::rd_kafka_message_destroy(m) };
        }
        self.drained.0 = drained;
        self.drained.0.clear();
        outcome
    }

    /// One message straight from librdkafka's struct.
    ///
    /// # Safety
    /// `m` is a live message of this consumer.
    unsafe fn take_native(
        &mut self,
        m: &rdsys::rd_kafka_message_t,
        now: &mut Instant,
    ) -> Result<()> {
        if m.err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF {
            // The end of a partition, with its topic and the offset where it
            // ends (past any transaction markers).
            let topic = CStr::from_ptr(rdsys::rd_kafka_topic_name(m.rkt))
                .to_string_lossy()
                .into_owned();
            return self.note_end(topic, m.partition, Some(m.offset));
        }
        if m.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            return self.take_result(Err(KafkaError::MessageConsumption(m.err.into())));
        }
        let bytes = |p: *mut std::ffi::c_void, len: usize| {
            (!p.is_null()).then(|| std::slice::from_raw_parts(p as *const u8, len))
        };
        let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        let ts = rdsys::rd_kafka_message_timestamp(m, &mut kind);
        let timestamp_ms = (kind
            != rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
            .then_some(ts);
        let mut hdrs: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
        let headers = (self.opts.headers
            && rdsys::rd_kafka_message_headers(m, &mut hdrs)
                == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
            && !hdrs.is_null())
        .then(|| {
            let mut out = Vec::new();
            let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0usize);
            while rdsys::rd_kafka_header_get_all(hdrs, out.len(), &mut name, &mut value, &mut size)
                == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                let key = CStr::from_ptr(name as *const c_char)
                    .to_string_lossy()
                    .into_owned();
                let value = (!value.is_null())
                    .then(|| std::slice::from_raw_parts(value as *const u8, size).to_vec());
                out.push((key, value));
            }
            out
        });
        let topic = || {
            let t = rdsys::rd_kafka_topic_name(m.rkt);
            CStr::from_ptr(t).to_string_lossy().into_owned()
        };
        self.push(
            m.partition,
            m.offset,
            timestamp_ms,
            bytes(m.key, m.key_len),
            bytes(m.payload, m.len),
            headers,
            topic,
            now,
        )
    }

    /// Buffer a message, its key and value copied (the caller frees it).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn push(
        &mut self,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<Vec<(String, Option<Vec<u8>>)>>,
        topic: impl FnOnce() -> String,
        now: &mut Instant,
    ) -> Result<()> {
        // With one topic subscribed (no patterns), the partition says it
        // all: reading the name costs a strlen and a UTF-8 check per message.
        if self.opts.topics.len() == 1 {
            if !matches!(&self.last_key, Some((_, p)) if *p == partition) {
                self.last_key = Some((self.opts.topics[0].clone(), partition));
            }
        } else {
            let name = topic();
            if !matches!(&self.last_key, Some((t, p)) if *p == partition && *t == name) {
                self.last_key = Some((name, partition));
            }
        }
        let raw = RawMessage {
            partition,
            offset,
            timestamp_ms,
            key: key.map(|k| copy_into(&mut self.arena, k)),
            value: value.map(|v| copy_into(&mut self.arena, v)),
            headers,
        };
        if self.shared_generation.load(Ordering::Acquire) != self.generation {
            self.sync_assignment()?;
        }
        let len = message_size(&raw);
        let key = self.last_key.as_ref().expect("set above");
        let buf = match self.buffers.get_mut(key) {
            Some(b) => b,
            None => self.buffers.entry(key.clone()).or_default(),
        };
        buf.messages.push(raw);
        buf.bytes += len;
        self.rows += 1;
        self.bytes += len;
        if self.oldest.is_none() {
            *now = Instant::now();
            self.oldest = Some(*now);
        }
        Ok(())
    }

    /// The end of `topic`'s `partition` was reached at offset `end` (else
    /// the cached high watermark): everything before it has been consumed,
    /// so the partition's position is there, past any transaction markers
    /// and aborted records, which are never delivered as messages.
    fn note_end(&mut self, topic: String, partition: i32, end: Option<i64>) -> Result<()> {
        // Apply a new assignment first, or the end recorded here would be
        // dropped with the partition's old state.
        if self.shared_generation.load(Ordering::Acquire) != self.generation {
            self.sync_assignment()?;
        }
        let Some(end) = end
            .filter(|&o| o >= 0)
            .or_else(|| self.cached_high_watermark(&topic, partition))
        else {
            return Ok(());
        };
        let key = (topic, partition);
        self.start_hwm.entry(key.clone()).or_insert(end);
        let next = self.next.entry(key).or_insert(end);
        *next = (*next).max(end);
        Ok(())
    }

    /// A consumed message's outcome (already buffered when `Ok`), or an
    /// error: partition ends are noted, the rest fail the poll.
    fn take_result(&mut self, item: std::result::Result<Result<()>, KafkaError>) -> Result<()> {
        match item {
            Ok(r) => r,
            // At the end of a partition (from the consumer queue, which
            // names no topic: rare, most ends come through the fetch queue).
            Err(KafkaError::PartitionEOF(p)) if self.opts.topics.len() == 1 => {
                self.note_end(self.opts.topics[0].clone(), p, None)
            }
            Err(KafkaError::PartitionEOF(_)) => Ok(()),
            Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset,
            )) => Err(Error::Kafka(
                "an offset stored with the data is beyond the end of the topic's log \
                 (the topic was deleted, recreated or truncated); write to a new table \
                 or directory, or use another ingest name"
                    .into(),
            )),
            // The connection to the cluster is gone for now: librdkafka
            // reconnects by itself (see `check_brokers`).
            Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition,
            )) => {
                self.brokers_down.get_or_insert_with(Instant::now);
                Ok(())
            }
            Err(e) => Err(Error::Kafka(format!("consuming: {e}"))),
        }
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
            let drained = self.drain(0);
            if drained > 0 {
                unclocked += drained;
                self.take_drained(&mut now)?;
            }
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
            if self.drain(step.as_millis() as i32) > 0 {
                self.take_drained(&mut now)?;
            }
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
            for m in &buf.messages {
                let size = message_size(m);
                if any && used + size > max {
                    break;
                }
                used += size;
                take += 1;
                any = true;
            }
            if take < buf.messages.len() {
                let rest = buf.messages.split_off(take);
                let bytes: usize = rest.iter().map(message_size).sum();
                buf.bytes -= bytes;
                self.rows += rest.len();
                self.bytes += bytes;
                self.buffers.insert(
                    k.clone(),
                    PartitionBuffer {
                        messages: rest,
                        bytes,
                    },
                );
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
