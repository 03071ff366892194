//! The group watch: partitions assigned to other members that stand still
//! with messages waiting (a member gone without the coordinator noticing)
//! make this consumer leave and rejoin, so they are assigned again. Also the
//! log bounds and group offsets the ingest reports read.

use super::*;

/// Watches partitions assigned to other members of the group: one whose
/// committed offset has not moved for longer than the session timeout (plus
/// slack for a batch being written) while it has unread messages means its
/// member is gone without the coordinator reassigning it. This consumer then
/// leaves and rejoins the group, which makes the coordinator rebalance.
///
/// Only used with a sink, whose ingest commits to the group after every
/// write; a rejoin that was not needed costs one rebalance, never data (each
/// partition restarts from the offsets stored with the data).
pub(super) struct GroupWatch {
    /// How often to look.
    pub(super) every: Duration,
    /// How long an offset may stand still with messages behind it.
    pub(super) stall_after: Duration,
    pub(super) next_check: Instant,
    /// The assignment generation the observations belong to.
    pub(super) generation: u64,
    /// Committed offset of each partition assigned elsewhere, and since when.
    pub(super) seen: HashMap<(String, i32), (i64, Instant)>,
    /// Since when a revoke has had no assignment after it (or, before the
    /// first assignment, since the watch started).
    pub(super) unassigned_since: Option<Instant>,
    /// Times this consumer rejoined the group.
    pub(super) rejoins: u64,
}

impl GroupWatch {
    pub(super) fn new(opts: &ConsumerOptions) -> Self {
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

impl BatchingConsumer {
    /// Times this consumer left and rejoined its group because partitions
    /// assigned elsewhere stood still (see [`GroupWatch`]).
    pub fn rejoins(&self) -> u64 {
        self.watch.as_ref().map_or(0, |w| w.rejoins)
    }

    /// Look at the partitions assigned to other members (when due) and
    /// rejoin the group if one of them has stood still with messages behind
    /// its committed offset for too long. Best effort: a request that fails
    /// is tried again at the next look.
    pub(super) fn watch_group(&mut self, now: Instant) -> Result<()> {
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
    pub(super) fn rejoin(&mut self) -> Result<()> {
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
    pub(super) fn log_ends<'a>(
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
    pub(super) fn commit_idle_positions(
        &self,
        mine: &HashSet<(String, i32)>,
        committed: &TopicPartitionList,
    ) {
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
}
