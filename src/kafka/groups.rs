//! Consumer groups seen from outside: the groups a cluster has, with their
//! members and the partitions each member is assigned; the offsets a group
//! has committed against each partition's log bounds (lag, for any group,
//! kafkalake's or not); and resetting a group's offsets to an offset or a
//! time (replay). None of these joins the group: offsets are read and
//! written with the group's id by a client that never subscribes.

use std::collections::BTreeMap;
use std::time::Instant;

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

/// One member of a group, as the group's coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The id the coordinator gave the member.
    pub member_id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host, as the coordinator saw it.
    pub client_host: String,
    /// The partitions assigned to the member (consumer groups only).
    pub assignment: Vec<(String, i32)>,
}

/// One consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group: String,
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty` or `Dead`.
    pub state: String,
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// The assignor the members agreed on (`range`, `roundrobin`, …).
    pub protocol: String,
    /// Members, by member id.
    pub members: Vec<GroupMember>,
}

/// The groups the cluster knows (or only `group`), with members and their
/// assignments, in group order. A broker that does not report members or
/// assignments gives empty lists, never invented ones.
pub fn list_groups(cfg: &KafkaConfig, group: Option<&str>) -> Result<Vec<GroupDescription>> {
    cfg.validate()?;
    if group == Some("") {
        return Err(Error::InvalidArgument("the group id is empty".into()));
    }
    if super::embedded::is_embedded(&cfg.bootstrap_servers) {
        return Err(Error::InvalidArgument(
            "the embedded cluster does not describe consumer groups (librdkafka's test \
             cluster has no ListGroups); a kafkalake job's metrics() show the partitions \
             it reads, and lag() works there"
                .into(),
        ));
    }
    let consumer: BaseConsumer<Watcher> = cfg
        .client_config(&[("enable.auto.commit", "false".to_string())])
        .create_with_context(Watcher::default())?;
    // Reach the cluster first, so an unreachable one fails in its own words.
    fetch_metadata(consumer.client(), cfg, None)?;
    let deadline = Instant::now() + cfg.connect_timeout;
    let list = consumer
        .client()
        .fetch_group_list(group, deadline.saturating_duration_since(Instant::now()))
        .map_err(|e| Error::Kafka(format!("could not list the consumer groups: {e}")))?;
    let mut out: Vec<GroupDescription> = list
        .groups()
        .iter()
        .map(|g| {
            let mut members: Vec<GroupMember> = g
                .members()
                .iter()
                .map(|m| GroupMember {
                    member_id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    client_host: m.client_host().to_string(),
                    assignment: if g.protocol_type() == "consumer" {
                        m.assignment().map(parse_assignment).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
            GroupDescription {
                group: g.name().to_string(),
                state: g.state().to_string(),
                protocol_type: g.protocol_type().to_string(),
                protocol: g.protocol().to_string(),
                members,
            }
        })
        .filter(|g| group.is_some() || !g.group.is_empty())
        .collect();
    out.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(out)
}

/// The partitions in a consumer protocol `Assignment` (Kafka's
/// `ConsumerProtocolAssignment`: version, then per topic its name and
/// partitions, then user data), in topic and partition order. Bytes that do
/// not parse give what parsed before them: a display, not a decision.
pub fn parse_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            (self.0.len() >= n).then(|| {
                let (head, tail) = self.0.split_at(n);
                self.0 = tail;
                head
            })
        }
        fn i16(&mut self) -> Option<i16> {
            self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
        }
        fn i32(&mut self) -> Option<i32> {
            self.take(4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
    }
    let mut r = Reader(bytes);
    let mut out = Vec::new();
    let parse = |r: &mut Reader<'_>, out: &mut Vec<(String, i32)>| -> Option<()> {
        r.i16()?; // version
        let topics = r.i32()?;
        for _ in 0..topics.max(0) {
            let len = usize::try_from(r.i16()?).ok()?;
            let topic = String::from_utf8_lossy(r.take(len)?).into_owned();
            let n = r.i32()?;
            for _ in 0..n.max(0) {
                out.push((topic.clone(), r.i32()?));
            }
        }
        Some(())
    };
    let _ = parse(&mut r, &mut out);
    out.sort();
    out
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

    fn assignment_bytes(version: i16, topics: &[(&str, &[i32])], user_data: &[u8]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((user_data.len() as i32).to_be_bytes());
        b.extend(user_data);
        b
    }

    #[test]
    fn assignment_parses_topics_and_partitions_in_order() {
        let b = assignment_bytes(3, &[("telemetry", &[2, 0]), ("clicks", &[1])], b"x");
        assert_eq!(
            parse_assignment(&b),
            vec![
                ("clicks".to_string(), 1),
                ("telemetry".to_string(), 0),
                ("telemetry".to_string(), 2)
            ]
        );
    }

    #[test]
    fn truncated_assignment_gives_what_parsed() {
        let b = assignment_bytes(0, &[("a", &[0, 1]), ("b", &[5])], b"");
        assert_eq!(
            parse_assignment(&b[..b.len() - 10]),
            vec![("a".to_string(), 0), ("a".to_string(), 1)]
        );
        assert!(parse_assignment(&[]).is_empty());
        assert!(parse_assignment(&[0, 0, 0xff, 0xff, 0xff, 0xff]).is_empty());
    }
}
