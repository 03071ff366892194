//! Where each assigned partition starts, decided inside librdkafka's
//! rebalance callback before any of its messages is fetched (see the
//! module above), and the assignment state the poll loop reads.

use super::*;

#[derive(Default)]
pub(super) struct Assignment {
    /// Assigned partitions.
    pub(super) current: HashSet<(String, i32)>,
    /// Set by each rebalance, so buffers of revoked partitions are dropped.
    pub(super) generation: u64,
    /// Whether any assignment has happened yet.
    pub(super) assigned_once: bool,
    /// Everything was revoked and the next assignment has not come yet
    /// (a rebalance in progress, or a rejoin): nothing can be caught up.
    pub(super) between: bool,
    /// An error from the rebalance callback, raised by the main loop.
    pub(super) error: Option<Error>,
    /// Partitions (re)assigned since the main loop last looked: their start
    /// was chosen afresh, so whatever is buffered for them will come again.
    pub(super) reset: HashSet<(String, i32)>,
}

pub(super) struct Context {
    pub(super) lookup: Option<Arc<Mutex<dyn OffsetLookup>>>,
    pub(super) start: StartFrom,
    pub(super) timeout: Duration,
    pub(super) state: Arc<Mutex<Assignment>>,
    /// Mirrors `Assignment::generation`, readable without the lock.
    pub(super) generation: Arc<AtomicU64>,
    /// Explicit starts apply once; later assignments resume from the group.
    pub(super) started: Mutex<HashSet<(String, i32)>>,
    /// The queue assigned partitions' messages are forwarded to (see
    /// [`FetchQueue`]); null until it exists and once it is gone.
    pub(super) fetch_queue: Arc<AtomicPtr<rdsys::rd_kafka_queue_t>>,
    /// The topics' partitions when the consumer subscribed: a "latest"
    /// start applies to them only. Partitions added to a topic later start
    /// at their beginning (as Spark does), or what was produced to them
    /// before they were discovered would be skipped.
    pub(super) existing: Arc<Mutex<HashSet<(String, i32)>>>,
}

/// Forward the messages of `partitions` to `queue` (nothing when null).
///
/// # Safety
/// `native` is a live consumer handle and `queue` null or a live queue of it.
pub(super) unsafe fn forward_partitions<'a>(
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
pub(super) fn first_start(start: &StartFrom, key: &(String, i32), existed: bool) -> Offset {
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
    pub(super) fn existed(&self, key: &(String, i32)) -> bool {
        self.existing.lock().map_or(true, |e| e.contains(key))
    }

    /// Fill in the start offset of each newly assigned partition.
    pub(super) fn choose_offsets(
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

/// The message of an `rd_kafka_error_t` (which is destroyed), if any.
///
/// # Safety
/// `e` is null or an error librdkafka returned and nobody destroyed.
unsafe fn error_of(e: *mut rdsys::rd_kafka_error_t) -> Option<String> {
    if e.is_null() {
        return None;
    }
    let text = CStr::from_ptr(rdsys::rd_kafka_error_string(e))
        .to_string_lossy()
        .into_owned();
    rdsys::rd_kafka_error_destroy(e);
    Some(text)
}

/// The message of an error code, if it is one.
fn code_of(code: RDKafkaRespErr) -> Option<String> {
    (code != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .then(|| RDKafkaErrorCode::from(code).to_string())
}

impl Context {
    /// A rebalance step librdkafka refused: the consumer would go on
    /// without reading (or while still holding) the partitions, so the
    /// next poll fails with it instead.
    fn fail_on(&self, outcome: Option<String>, what: &str) {
        let Some(text) = outcome else {
            return;
        };
        if let Ok(mut s) = self.state.lock() {
            s.error.get_or_insert(Error::Kafka(format!(
                "{what} after a consumer-group rebalance failed: {text}"
            )));
        }
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
                    let outcome = if cooperative {
                        error_of(rdsys::rd_kafka_incremental_assign(native, tpl.ptr()))
                    } else {
                        code_of(rdsys::rd_kafka_assign(native, tpl.ptr()))
                    };
                    self.fail_on(outcome, "taking the assigned partitions");
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
                    let outcome = if cooperative {
                        error_of(rdsys::rd_kafka_incremental_unassign(native, tpl.ptr()))
                    } else {
                        code_of(rdsys::rd_kafka_assign(native, std::ptr::null()))
                    };
                    self.fail_on(outcome, "giving up the revoked partitions");
                }
            }
        }
    }
}
