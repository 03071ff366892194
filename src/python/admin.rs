//! Topics and consumer groups (lag, replay), for Python.

use std::collections::HashMap;

use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::ingest::kafka_config;
use crate::error::Error;
use crate::kafka::admin::{self, TopicSpec};
use crate::kafka::groups::{self, PartitionOffsets, ResetTo};

type Row = (String, i32, Option<i64>, i64, i64);

fn rows(parts: Vec<PartitionOffsets>) -> Vec<Row> {
    parts
        .into_iter()
        .map(|p| (p.topic, p.partition, p.committed, p.log_start, p.log_end))
        .collect()
}

/// `(topic, partition, committed or None, log start, log end)` per partition.
#[pyfunction]
#[pyo3(signature = (bootstrap_servers, group, topics, config, connect_timeout_s))]
pub fn group_offsets(
    py: Python<'_>,
    bootstrap_servers: String,
    group: String,
    topics: Vec<String>,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
) -> PyResult<Vec<Row>> {
    let cfg = kafka_config(bootstrap_servers, config, connect_timeout_s)?;
    py.detach(|| groups::group_offsets(&cfg, &group, &topics))
        .map(rows)
        .py()
}

/// Move a group's offsets; `to` is earliest, latest, offset or timestamp.
#[pyfunction]
#[pyo3(signature = (bootstrap_servers, group, topics, config, connect_timeout_s, to, value=None))]
#[allow(clippy::too_many_arguments)]
pub fn reset_offsets(
    py: Python<'_>,
    bootstrap_servers: String,
    group: String,
    topics: Vec<String>,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
    to: &str,
    value: Option<i64>,
) -> PyResult<Vec<Row>> {
    let cfg = kafka_config(bootstrap_servers, config, connect_timeout_s)?;
    let to = match (to, value) {
        ("earliest", _) => ResetTo::Earliest,
        ("latest", _) => ResetTo::Latest,
        ("offset", Some(n)) => ResetTo::Offset(n),
        ("timestamp", Some(ms)) => ResetTo::Timestamp(ms),
        (other, _) => {
            return Err(super::errors::to_py_err(Error::InvalidArgument(format!(
                "reset to 'earliest', 'latest', an offset or a datetime; got {other:?}"
            ))))
        }
    };
    py.detach(|| groups::reset_offsets(&cfg, &group, &topics, to))
        .map(rows)
        .py()
}

/// Create a topic with partitions and configs.
#[pyfunction]
#[pyo3(signature = (bootstrap_servers, topic, config, connect_timeout_s, partitions, replication_factor, topic_config))]
#[allow(clippy::too_many_arguments)]
pub fn create_topic(
    py: Python<'_>,
    bootstrap_servers: String,
    topic: String,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
    partitions: Option<i32>,
    replication_factor: i32,
    topic_config: Vec<(String, String)>,
) -> PyResult<()> {
    let cfg = kafka_config(bootstrap_servers, config, connect_timeout_s)?;
    let spec = TopicSpec {
        create: true,
        partitions,
        replication_factor,
        configs: topic_config,
    };
    py.detach(|| {
        cfg.validate()?;
        admin::create_topic(&cfg, &topic, &spec)
    })
    .py()
}

/// `(name, partitions)` of every topic.
#[pyfunction]
pub fn list_topics(
    py: Python<'_>,
    bootstrap_servers: String,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
) -> PyResult<Vec<(String, usize)>> {
    let cfg = kafka_config(bootstrap_servers, config, connect_timeout_s)?;
    py.detach(|| admin::list_topics(&cfg)).py()
}

type PartitionRow = (i32, i32, Vec<i32>, Vec<i32>, i64, i64);
type TopicConfigs = Option<Vec<(String, String)>>;

/// `(partitions as (id, leader, replicas, isr, log start, log end), configs or None)`.
#[pyfunction]
pub fn describe_topic(
    py: Python<'_>,
    bootstrap_servers: String,
    topic: String,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
) -> PyResult<(Vec<PartitionRow>, TopicConfigs)> {
    let cfg = kafka_config(bootstrap_servers, config, connect_timeout_s)?;
    let info = py.detach(|| admin::describe_topic(&cfg, &topic)).py()?;
    let parts = info
        .partitions
        .into_iter()
        .map(|p| (p.id, p.leader, p.replicas, p.isr, p.log_start, p.log_end))
        .collect();
    Ok((parts, info.configs))
}

/// Delete topics.
#[pyfunction]
pub fn delete_topics(
    py: Python<'_>,
    bootstrap_servers: String,
    topics: Vec<String>,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
) -> PyResult<()> {
    let cfg = kafka_config(bootstrap_servers, config, connect_timeout_s)?;
    py.detach(|| admin::delete_topics(&cfg, &topics)).py()
}

/// A member: `(member id, client id, host, [(topic, partition)])`.
type MemberRow = (String, String, String, Vec<(String, i32)>);
/// A group: `(group, state, protocol type, protocol, members)`.
type GroupRow = (String, String, String, String, Vec<MemberRow>);

/// The cluster's consumer groups (or only `group`) with members and assignments.
#[pyfunction]
#[pyo3(signature = (bootstrap_servers, group, config, connect_timeout_s))]
pub fn list_groups(
    py: Python<'_>,
    bootstrap_servers: String,
    group: Option<String>,
    config: HashMap<String, String>,
    connect_timeout_s: f64,
) -> PyResult<Vec<GroupRow>> {
    let cfg = kafka_config(bootstrap_servers, config, connect_timeout_s)?;
    let groups = py
        .detach(|| groups::list_groups(&cfg, group.as_deref()))
        .py()?;
    Ok(groups
        .into_iter()
        .map(|g| {
            let members = g
                .members
                .into_iter()
                .map(|m| (m.member_id, m.client_id, m.client_host, m.assignment))
                .collect();
            (g.group, g.state, g.protocol_type, g.protocol, members)
        })
        .collect())
}

/// The `(topic, partition)` pairs of a consumer protocol assignment.
#[pyfunction]
pub fn parse_assignment(data: &[u8]) -> Vec<(String, i32)> {
    groups::parse_assignment(data)
}
