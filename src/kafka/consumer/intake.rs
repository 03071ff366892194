//! Taking messages in: the consumer's own fetch queue, drained many
//! messages at a time, each message's bytes copied into shared chunks and
//! buffered per partition; partition ends and consumer errors.

use super::*;

/// A queue of the consumer's own that assigned partitions' messages are
/// forwarded to, away from the consumer queue: it holds nothing but
/// messages (and partition ends), so they can be taken many at a time
/// (one `rd_kafka_consume_callback_queue` call for up to [`DRAIN`]
/// messages) instead of one event each. Rebalances, commits and errors
/// stay on the consumer queue, served by polling it as before; a message
/// that reaches it anyway (fetched before its partition was forwarded) is
/// taken there.
///
/// Why the callback call and not `rd_kafka_consume_batch_queue`: the batch
/// call moves each partition's position to the returned event's offset + 1,
/// partition ends included, so a partition read to its end stood one past
/// it. Consumer-group rebalances of the KIP-848 protocol (the embedded
/// cluster's) pause and resume every assigned partition from its position:
/// out of range, and with `auto.offset.reset=error` the worker stopped. The
/// callback call moves positions for messages only, as a single poll does.
/// librdkafka marks the callback calls deprecated, with no replacement that
/// takes many messages without the flaw; the two-worker test of the
/// embedded cluster (tests/test_jobs.py) fails should a new version change
/// either.
pub(super) struct FetchQueue {
    pub(super) queue: *mut rdsys::rd_kafka_queue_t,
    pub(super) shared: Arc<AtomicPtr<rdsys::rd_kafka_queue_t>>,
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

/// One drain of the fetch queue, handed to [`take_one`] by librdkafka.
struct Drain<'a> {
    consumer: &'a mut BatchingConsumer,
    client: *mut rdsys::rd_kafka_t,
    now: &'a mut Instant,
    room: usize,
    taken: usize,
    outcome: Result<()>,
}

/// librdkafka's callback for each event of the fetch queue: the message is
/// copied into the buffers (librdkafka destroys it on return). Once the
/// drain's room is used up, or on an error, the rest of the queue is left
/// where it is (`rd_kafka_yield` puts it back at the head).
///
/// # Safety
/// `opaque` is the [`Drain`] of the running `drain` call and `m` a live
/// message of its consumer.
unsafe extern "C" fn take_one(m: *mut rdsys::rd_kafka_message_t, opaque: *mut c_void) {
    let d = &mut *(opaque as *mut Drain<'_>);
    if d.outcome.is_ok() {
        // A panic must not unwind into librdkafka.
        let taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            d.consumer.take_native(&*m, d.now)
        }));
        d.outcome = taken.unwrap_or_else(|_| {
            Err(Error::Kafka(
                "internal error while taking a message (a bug: please report it)".into(),
            ))
        });
    }
    d.taken += 1;
    if d.taken >= d.room || d.outcome.is_err() {
        rdsys::rd_kafka_yield(d.client);
    }
}

/// A message from the consumer queue, copied out so the consumer can be
/// borrowed again (rare: most messages come through the [`FetchQueue`]).
pub(super) struct Owned {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) timestamp_ms: Option<i64>,
    pub(super) key: Option<Vec<u8>>,
    pub(super) value: Option<Vec<u8>>,
    pub(super) headers: Option<Vec<(String, Option<Vec<u8>>)>>,
    pub(super) topic: String,
}

impl Owned {
    pub(super) fn of(m: &BorrowedMessage<'_>, headers: bool) -> Self {
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

    pub(super) fn push_into(self, c: &mut BatchingConsumer, now: &mut Instant) -> Result<()> {
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
pub(super) const DRAIN: usize = 1024;

/// What a message counts towards `max_bytes`: everything copied of it,
/// its key and headers as well as its value.
pub(super) fn message_size(m: &RawMessage) -> usize {
    m.value.as_ref().map_or(0, Bytes::len)
        + m.key.as_ref().map_or(0, Bytes::len)
        + m.headers.as_ref().map_or(0, |hs| {
            hs.iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                .sum()
        })
}

/// Size of the chunks [`BatchingConsumer`] copies message bytes into.
pub(super) const ARENA_CHUNK: usize = 1 << 20;

/// `bytes` copied into `arena` (which gets a fresh chunk when full).
pub(super) fn copy_into(arena: &mut BytesMut, bytes: &[u8]) -> Bytes {
    if arena.capacity() < bytes.len() {
        *arena = BytesMut::with_capacity(ARENA_CHUNK.max(bytes.len()));
    }
    arena.extend_from_slice(bytes);
    arena.split().freeze()
}

impl BatchingConsumer {
    /// Forward the assigned partitions to the fetch queue again, once a
    /// second: stopping a partition's fetch (a revoke) clears its
    /// forwarding, and should that land after the next assignment
    /// forwarded it, its messages would otherwise wait where nobody looks.
    pub(super) fn reforward(&mut self, now: Instant) {
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

    /// Take up to [`DRAIN`] messages from the fetch queue into the
    /// buffers, waiting up to `timeout_ms` for the first; how many. No more
    /// than the batch has room for: all of its rows, and as many messages
    /// as its bytes (at the average size so far).
    pub(super) fn drain(&mut self, timeout_ms: i32, now: &mut Instant) -> Result<usize> {
        let limits = &self.opts.limits;
        let mut room = limits.max_rows.saturating_sub(self.rows).clamp(1, DRAIN);
        if self.rows > 0 && self.bytes > 0 {
            let average = (self.bytes / self.rows).max(1);
            room = room.min(limits.max_bytes.saturating_sub(self.bytes) / average + 1);
        }
        let queue = self.fetch.queue;
        let client = self.consumer.client().native_ptr();
        let mut d = Drain {
            consumer: self,
            client,
            now,
            room,
            taken: 0,
            outcome: Ok(()),
        };
        // SAFETY: a live queue of this consumer; `d` outlives the call and
        // is reached only through the callback meanwhile.
        unsafe {
            rdsys::rd_kafka_consume_callback_queue(
                queue,
                timeout_ms,
                Some(take_one),
                &mut d as *mut Drain<'_> as *mut c_void,
            );
        }
        d.outcome.map(|()| d.taken)
    }

    /// One message straight from librdkafka's struct.
    ///
    /// # Safety
    /// `m` is a live message of this consumer.
    pub(super) unsafe fn take_native(
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
        if matches!(
            m.err,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE
                | RDKafkaRespErr::RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET
        ) && !m.rkt.is_null()
        {
            let topic = CStr::from_ptr(rdsys::rd_kafka_topic_name(m.rkt))
                .to_string_lossy()
                .into_owned();
            return Err(self.out_of_range(Some((topic, m.partition, m.offset))));
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
    pub(super) fn push(
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
        if self.shared_generation.load(Ordering::Acquire) != self.generation {
            self.sync_assignment()?;
        }
        let slot = self.last_key.as_ref().expect("set above");
        let buf = match self.buffers.get_mut(slot) {
            Some(b) => b,
            None => self.buffers.entry(slot.clone()).or_insert(PartitionBuffer {
                early: self
                    .early
                    .get(&slot.0)
                    .map(|(d, max)| EarlyRows::new(d.clone(), *max, 0)),
                ..Default::default()
            }),
        };
        // Decoded here, the value need not be copied (see `decode_early`).
        let decoded = buf.early.as_mut().is_some_and(|e| e.take(value));
        let raw = RawMessage {
            partition,
            offset,
            timestamp_ms,
            key: key.map(|k| copy_into(&mut self.arena, k)),
            value: value
                .filter(|_| !decoded)
                .map(|v| copy_into(&mut self.arena, v)),
            headers,
        };
        let len = message_size(&raw)
            + if decoded {
                value.map_or(0, <[u8]>::len)
            } else {
                0
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
    pub(super) fn note_end(
        &mut self,
        topic: String,
        partition: i32,
        end: Option<i64>,
    ) -> Result<()> {
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

    /// The position to read a partition from (where known: topic,
    /// partition, offset) is outside its log, and `auto.offset.reset` is
    /// `error` so that nothing is skipped or read twice unnoticed. Either
    /// the messages were deleted before they were read, or the offset
    /// comes from an earlier life of the topic.
    pub(super) fn out_of_range(&self, at: Option<(String, i32, i64)>) -> Error {
        let place = match &at {
            Some((t, p, o)) => {
                let range = self
                    .cached_watermarks(t, *p)
                    .map(|(low, high)| format!(" (it holds offsets {low} to {})", high - 1))
                    .unwrap_or_default();
                if *o >= 0 {
                    format!("offset {o} of {t}[{p}] is outside the partition's log{range}")
                } else {
                    format!(
                        "the position to read {t}[{p}] from is outside the partition's log{range}"
                    )
                }
            }
            None => "the position to read a partition from is outside its log".to_string(),
        };
        let embedded = if super::super::embedded::is_embedded(&self.opts.kafka.bootstrap_servers) {
            format!(
                " (the embedded cluster keeps only a partition's last {} messages or {} MiB: \
                 start the ingest before or with the producer)",
                super::super::embedded::RETENTION_MESSAGES,
                super::super::embedded::RETENTION_BYTES >> 20
            )
        } else {
            String::new()
        };
        Error::Kafka(format!(
            "{place}: either its messages were deleted by retention before they were \
             read{embedded}, or the offset stored with the data is from before the topic \
             was deleted and created again, or truncated. Nothing is skipped silently: to \
             go on from what the log holds now, write to a new table or directory, or use \
             another ingest name"
        ))
    }

    /// A consumed message's outcome (already buffered when `Ok`), or an
    /// error: partition ends are noted, the rest fail the poll.
    pub(super) fn take_result(
        &mut self,
        item: std::result::Result<Result<()>, KafkaError>,
    ) -> Result<()> {
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
            )) => Err(self.out_of_range(None)),
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
}
