//! Consumer groups seen from outside: the offsets a group has committed
//! against each partition's log bounds (lag, for any group, kafkalake's or
//! not), and resetting a group's offsets to an offset or a time (replay).
//! Neither joins the group: offsets are read and written with the group's
//! id by a client that never subscribes.

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::admin::{fetch_metadata, Watcher};
use super::config::KafkaConfig;
use crate::error::{Error, Result};

/// One partition as a group sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset (the next message it will read), if any.
    pub committed: Option<i64>,
    /// The earliest offset still in the log.
    pub log_start: i64,
    /// The offset the next message produced will get.
    pub log_end: i64,
}

impl PartitionOffsets {
    /// Messages the group has yet to read (all of the log if it committed nothing).
    pub fn lag(&self) -> i64 {
        (self.log_end - self.committed.unwrap_or(self.log_start).max(self.log_start)).max(0)
    }
}

/// Where [`reset_offsets`] moves a group.
#[derive(Debug, Clone, Copy)]
pub enum ResetTo {
    /// The earliest offset still in each partition.
    Earliest,
    /// The end of each partition (skip everything there is).
    Latest,
    /// This offset in every partition.
    Offset(i64),
    /// The first message at or after this time (milliseconds since the epoch).
    Timestamp(i64),
}

fn client(cfg: &KafkaConfig, group: &str) -> Result<BaseConsumer<Watcher>> {
    cfg.validate()?;
    if group.is_empty() {
        return Err(Error::InvalidArgument("the group id is empty".into()));
    }
    Ok(cfg
        .client_config(&[
            ("group.id", group.to_string()),
            ("enable.auto.commit", "false".to_string()),
        ])
        .create_with_context(Watcher::default())?)
}

/// Partitions of `topics` (every topic but the broker's internal ones when
/// empty), in topic and partition order.
fn partitions(
    consumer: &BaseConsumer<Watcher>,
    cfg: &KafkaConfig,
    topics: &[String],
) -> Result<BTreeMap<String, Vec<i32>>> {
    let md = fetch_metadata(consumer.client(), cfg, None)?;
    let mut out = BTreeMap::new();
    for t in md.topics() {
        let wanted = if topics.is_empty() {
            !t.name().starts_with("__")
        } else {
            topics.iter().any(|w| w == t.name())
        };
        if wanted && !t.partitions().is_empty() {
            let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ps.sort_unstable();
            out.insert(t.name().to_string(), ps);
        }
    }
    if let Some(missing) = topics.iter().find(|t| !out.contains_key(*t)) {
        return Err(Error::TopicNotFound {
            topic: missing.clone(),
            servers: cfg.bootstrap_servers.clone(),
        });
    }
    Ok(out)
}

/// The group's committed offset and the log bounds of every partition of
/// `topics`; with no topics, of every topic the group has committed
/// offsets in.
pub fn group_offsets(
    cfg: &KafkaConfig,
    group: &str,
    topics: &[String],
) -> Result<Vec<PartitionOffsets>> {
    let consumer = client(cfg, group)?;
    let all = partitions(&consumer, cfg, topics)?;
    let mut tpl = TopicPartitionList::new();
    for (t, ps) in &all {
        for p in ps {
            tpl.add_partition(t, *p);
        }
    }
    let committed = consumer
        .committed_offsets(tpl, cfg.connect_timeout)
        .map_err(|e| {
            Error::Kafka(format!(
                "reading the committed offsets of group '{group}': {e}"
            ))
        })?;
    let mut by_topic: BTreeMap<String, Vec<(i32, Option<i64>)>> = BTreeMap::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(n) if n >= 0 => Some(n),
            _ => None,
        };
        by_topic
            .entry(e.topic().to_string())
            .or_default()
            .push((e.partition(), offset));
    }
    let mut out = Vec::new();
    for (topic, mut parts) in by_topic {
        if topics.is_empty() && parts.iter().all(|(_, c)| c.is_none()) {
            continue;
        }
        parts.sort_unstable();
        for (partition, committed) in parts {
            let (log_start, log_end) = consumer
                .fetch_watermarks(&topic, partition, cfg.connect_timeout)
                .map_err(|e| {
                    Error::Kafka(format!("reading the log end of {topic}[{partition}]: {e}"))
                })?;
            out.push(PartitionOffsets {
                topic: topic.clone(),
                partition,
                committed,
                log_start,
                log_end,
            });
        }
    }
    Ok(out)
}

/// Move `group`'s committed offsets in every partition of `topics`. The
/// group must have no active members (stop its consumers first): the broker
/// refuses commits from outside a live group. Returns the new offsets.
pub fn reset_offsets(
    cfg: &KafkaConfig,
    group: &str,
    topics: &[String],
    to: ResetTo,
) -> Result<Vec<PartitionOffsets>> {
    if topics.is_empty() {
        return Err(Error::InvalidArgument(
            "name the topics whose offsets to reset".into(),
        ));
    }
    let consumer = client(cfg, group)?;
    let all = partitions(&consumer, cfg, topics)?;
    let mut bounds = BTreeMap::new();
    for (t, ps) in &all {
        for p in ps {
            let b = consumer
                .fetch_watermarks(t, *p, cfg.connect_timeout)
                .map_err(|e| Error::Kafka(format!("reading the log bounds of {t}[{p}]: {e}")))?;
            bounds.insert((t.clone(), *p), b);
        }
    }
    let mut targets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    match to {
        ResetTo::Timestamp(ms) => {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in bounds.keys() {
                tpl.add_partition_offset(t, *p, Offset::Offset(ms))?;
            }
            let found = consumer
                .offsets_for_times(tpl, cfg.connect_timeout)
                .map_err(|e| Error::Kafka(format!("looking up offsets for a time: {e}")))?;
            for e in found.elements() {
                let key = (e.topic().to_string(), e.partition());
                let end = bounds.get(&key).map_or(0, |b| b.1);
                // No message at or after the time: the end of the log.
                let n = match e.offset() {
                    Offset::Offset(n) if n >= 0 => n,
                    _ => end,
                };
                targets.insert(key, n);
            }
        }
        _ => {
            for (key, (lo, hi)) in &bounds {
                let n = match to {
                    ResetTo::Earliest => *lo,
                    ResetTo::Latest => *hi,
                    ResetTo::Offset(n) => {
                        if !(*lo..=*hi).contains(&n) {
                            return Err(Error::InvalidArgument(format!(
                                "offset {n} is outside {}[{}]'s log ({lo}..{hi})",
                                key.0, key.1
                            )));
                        }
                        n
                    }
                    ResetTo::Timestamp(_) => unreachable!("handled above"),
                };
                targets.insert(key.clone(), n);
            }
        }
    }
    let mut tpl = TopicPartitionList::new();
    for ((t, p), n) in &targets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*n))?;
    }
    consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
        Error::Kafka(format!(
            "could not reset the offsets of group '{group}' ({e}); a group with live \
             members refuses commits from outside: stop its consumers and try again"
        ))
    })?;
    Ok(targets
        .into_iter()
        .map(|((topic, partition), n)| {
            let (log_start, log_end) = bounds[&(topic.clone(), partition)];
            PartitionOffsets {
                topic,
                partition,
                committed: Some(n),
                log_start,
                log_end,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_offset_or_the_log_start() {
        let p = |committed, log_start, log_end| PartitionOffsets {
            topic: "t".into(),
            partition: 0,
            committed,
            log_start,
            log_end,
        };
        assert_eq!(p(Some(40), 0, 100).lag(), 60);
        assert_eq!(p(None, 10, 100).lag(), 90);
        // Committed below what retention kept: the rest of the log.
        assert_eq!(p(Some(5), 10, 100).lag(), 90);
        assert_eq!(p(Some(100), 0, 100).lag(), 0);
    }
}
