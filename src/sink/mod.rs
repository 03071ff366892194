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
use arrow::array::{Array, AsArray, RecordBatch};
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
/// saves nothing on measurements that rarely repeat), and not for those
/// whose values in `sample` hardly repeat either (event ids: the dictionary
/// fills up and is given up after a megabyte of hashing).
pub fn writer_properties(
    schema: &Schema,
    compression: Compression,
    sample: &[RecordBatch],
) -> WriterProperties {
    fn strings(
        prefix: &[String],
        field: &Field,
        column: Option<&dyn Array>,
        out: &mut Vec<ColumnPath>,
    ) {
        let mut path = prefix.to_vec();
        path.push(field.name().clone());
        match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                if !column.is_some_and(mostly_distinct) =>
            {
                out.push(ColumnPath::new(path))
            }
            DataType::Struct(children) => {
                let parent = column.and_then(|c| c.as_struct_opt());
                for (i, c) in children.iter().enumerate() {
                    let child = parent
                        .filter(|p| p.num_columns() == children.len())
                        .map(|p| p.column(i).as_ref());
                    strings(&path, c, child, out);
                }
            }
            _ => {}
        }
    }
    let first = sample
        .iter()
        .find(|b| b.num_rows() > 0 && b.schema().fields() == schema.fields());
    let mut paths = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        strings(&[], f, first.map(|b| b.column(i).as_ref()), &mut paths);
    }
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_dictionary_enabled(false);
    for p in paths {
        b = b.set_column_dictionary_enabled(p, true);
    }
    b.build()
}

/// Whether nearly all of the first thousand strings of `column` differ.
fn mostly_distinct(column: &dyn Array) -> bool {
    let Some(strings) = column.as_string_opt::<i32>() else {
        return false;
    };
    let head = strings.slice(0, strings.len().min(1000));
    let values: std::collections::HashSet<&str> = head.iter().flatten().collect();
    let present = head.len() - head.null_count();
    present >= 64 && values.len() * 10 >= present * 9
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, StringArray, StructArray};

    use super::*;

    #[test]
    fn dictionaries_only_for_strings_that_repeat() {
        let n = 500;
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("id-{i}")),
        ));
        let kinds: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| ["CO2", "TEMP"][i % 2]),
        ));
        let values: ArrayRef = Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64)));
        let inner = StructArray::from(vec![
            (
                Arc::new(Field::new("tag", DataType::Utf8, false)),
                ids.clone(),
            ),
            (
                Arc::new(Field::new("kind", DataType::Utf8, false)),
                kinds.clone(),
            ),
        ]);
        let batch = RecordBatch::try_from_iter(vec![
            ("id", ids),
            ("kind", kinds),
            ("value", values),
            ("nested", Arc::new(inner) as ArrayRef),
        ])
        .unwrap();
        let path = |p: &[&str]| ColumnPath::new(p.iter().map(|s| s.to_string()).collect());
        let props = writer_properties(
            &batch.schema(),
            Compression::SNAPPY,
            std::slice::from_ref(&batch),
        );
        assert!(!props.dictionary_enabled(&path(&["id"])));
        assert!(props.dictionary_enabled(&path(&["kind"])));
        assert!(!props.dictionary_enabled(&path(&["value"])));
        assert!(!props.dictionary_enabled(&path(&["nested", "tag"])));
        assert!(props.dictionary_enabled(&path(&["nested", "kind"])));
        // Without data to look at, every string column gets one.
        let blind = writer_properties(&batch.schema(), Compression::SNAPPY, &[]);
        assert!(blind.dictionary_enabled(&path(&["id"])));
        assert!(blind.dictionary_enabled(&path(&["nested", "tag"])));
        assert!(!blind.dictionary_enabled(&path(&["value"])));
    }
}
