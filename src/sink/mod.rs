//! Where ingested rows land: Delta tables ([`delta`]) and Parquet files
//! ([`parquet`]), on local disk or any object store deltalake can reach
//! ([`storage`]). Both keep, with the data itself, the last Kafka offset
//! written per partition, which is what makes ingest exactly-once.

pub mod capture;
pub mod compact;
pub mod delta;
pub mod files;
pub mod parquet;
pub mod storage;

use std::collections::BTreeMap;

use ::parquet::basic::Compression;
use ::parquet::file::properties::WriterProperties;
use ::parquet::schema::types::ColumnPath;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};

use crate::decode::DeadLetter;
use crate::error::Result;

/// The rows of one flush that came from one partition.
#[derive(Debug)]
pub struct PartitionChunk {
    /// Partition.
    pub partition: i32,
    /// First offset consumed for this chunk.
    pub first_offset: i64,
    /// Last offset consumed for this chunk (good rows and dead letters alike).
    pub last_offset: i64,
    /// The decoded rows.
    pub batch: RecordBatch,
    /// Messages that could not be decoded.
    pub dead_letters: Vec<DeadLetter>,
}

/// What a sink reports after a write.
#[derive(Debug, Default, Clone)]
pub struct WriteOutcome {
    /// Rows written.
    pub rows: u64,
    /// Files written.
    pub files: u64,
    /// Delta table version (Delta sink only).
    pub version: Option<i64>,
}

/// A destination that stores rows together with the offsets they came from.
pub trait Sink: Send {
    /// The last offset stored per partition of `topic` among `partitions`
    /// (partitions with none are absent).
    fn stored_offsets(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>>;

    /// Write the chunks of `topic` and their offsets, durably and atomically
    /// per the sink's guarantee. Chunks whose offsets are already stored are
    /// skipped (a retry after a crash or a rebalance).
    fn write(&mut self, topic: &str, chunks: Vec<PartitionChunk>) -> Result<WriteOutcome>;

    /// Where it writes, for messages.
    fn describe(&self) -> String;

    /// Widen the sink's schema with the columns of `wanted` it lacks (new
    /// fields seen in the data). Sinks without a schema of their own (files)
    /// take any schema and need nothing.
    fn evolve_schema(&mut self, _wanted: &arrow::datatypes::SchemaRef) -> Result<()> {
        Ok(())
    }
}

/// Parquet writer settings for ingested rows: dictionary encoding only for
/// string columns (hashing every value of a float column costs CPU and
/// saves nothing on measurements that rarely repeat).
pub fn writer_properties(schema: &Schema, compression: Compression) -> WriterProperties {
    fn strings(prefix: &[String], field: &Field, out: &mut Vec<ColumnPath>) {
        let mut path = prefix.to_vec();
        path.push(field.name().clone());
        match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                out.push(ColumnPath::new(path))
            }
            DataType::Struct(children) => {
                for c in children {
                    strings(&path, c, out);
                }
            }
            _ => {}
        }
    }
    let mut paths = Vec::new();
    for f in schema.fields() {
        strings(&[], f, &mut paths);
    }
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_dictionary_enabled(false);
    for p in paths {
        b = b.set_column_dictionary_enabled(p, true);
    }
    b.build()
}
