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

    /// The work the sink runs beside its writes (a Delta table's
    /// checkpoint), handed over so a run that returns has waited for it and
    /// left nothing half done: waited for outside any lock the sink is
    /// under (an ingest's group watch reads the sink's offsets meanwhile).
    /// What it would have brought the sink (a Delta table's state read
    /// whole again) is dropped: the run is over. `None` when nothing runs.
    fn pending(&mut self) -> Option<Pending> {
        None
    }
}

/// Work a sink runs beside its writes, taken out of it by [`Sink::pending`]:
/// call it to wait for the work, and get its failure.
pub type Pending = Box<dyn FnOnce() -> Result<()> + Send>;

/// Parquet writer settings for ingested rows: dictionary encoding only for
/// string columns (hashing every value of a float column costs CPU and
/// saves nothing on measurements that rarely repeat), and not for those
/// whose values in `sample` hardly repeat either (event ids: the dictionary
/// fills up and is given up after a megabyte of hashing). With Snappy,
/// fixed-width columns whose values in `sample` do not compress (random
/// readings of 17 significant digits) are stored uncompressed: Snappy
/// would cost CPU for every page and save nothing.
pub fn writer_properties(
    schema: &Schema,
    compression: Compression,
    sample: &[RecordBatch],
) -> WriterProperties {
    struct Choices {
        snappy: bool,
        dictionary: Vec<ColumnPath>,
        uncompressed: Vec<ColumnPath>,
    }
    fn leaves(prefix: &[String], field: &Field, column: Option<&dyn Array>, out: &mut Choices) {
        let mut path = prefix.to_vec();
        path.push(field.name().clone());
        match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                if !column.is_some_and(mostly_distinct) =>
            {
                out.dictionary.push(ColumnPath::new(path))
            }
            DataType::Struct(children) => {
                let parent = column.and_then(|c| c.as_struct_opt());
                for (i, c) in children.iter().enumerate() {
                    let child = parent
                        .filter(|p| p.num_columns() == children.len())
                        .map(|p| p.column(i).as_ref());
                    leaves(&path, c, child, out);
                }
            }
            t if out.snappy
                && t.primitive_width().is_some()
                && column.is_some_and(snappy_saves_nothing) =>
            {
                out.uncompressed.push(ColumnPath::new(path))
            }
            _ => {}
        }
    }
    let first = sample
        .iter()
        .find(|b| b.num_rows() > 0 && b.schema().fields() == schema.fields());
    let mut choices = Choices {
        snappy: compression == Compression::SNAPPY,
        dictionary: Vec::new(),
        uncompressed: Vec::new(),
    };
    for (i, f) in schema.fields().iter().enumerate() {
        leaves(&[], f, first.map(|b| b.column(i).as_ref()), &mut choices);
    }
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_dictionary_enabled(false);
    for p in choices.dictionary {
        b = b.set_column_dictionary_enabled(p, true);
    }
    for p in choices.uncompressed {
        b = b.set_column_compression(p, Compression::UNCOMPRESSED);
    }
    b.build()
}

/// Whether Snappy leaves the values of the first thousand rows of a
/// fixed-width `column` at 97 % of their size or more.
fn snappy_saves_nothing(column: &dyn Array) -> bool {
    let data = column.to_data();
    let Some(width) = data.data_type().primitive_width() else {
        return false;
    };
    let rows = data.len().min(1000);
    let Some(values) = data.buffers().first() else {
        return false;
    };
    let Some(raw) = values
        .as_slice()
        .get(data.offset() * width..(data.offset() + rows) * width)
    else {
        return false;
    };
    if rows < 64 {
        return false;
    }
    let packed = snap::raw::Encoder::new()
        .compress_vec(raw)
        .map_or(usize::MAX, |c| c.len());
    packed.saturating_mul(100) >= raw.len() * 97
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

    #[test]
    fn snappy_only_where_it_saves_something() {
        let n = 2_000;
        // Readings of 17 significant digits (a fixed LCG, not a pattern Snappy sees).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let readings: ArrayRef = Arc::new(Float64Array::from_iter_values((0..n).map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 11) as f64 / (1u64 << 53) as f64 * 100.0
        })));
        let steps: ArrayRef = Arc::new(Float64Array::from_iter_values(
            (0..n).map(|i| (i % 10) as f64 * 0.5),
        ));
        let counters: ArrayRef = Arc::new(arrow::array::Int64Array::from_iter_values(0..n as i64));
        let inner = StructArray::from(vec![(
            Arc::new(Field::new("reading", DataType::Float64, false)),
            readings.clone(),
        )]);
        let batch = RecordBatch::try_from_iter(vec![
            ("reading", readings),
            ("step", steps),
            ("counter", counters),
            ("nested", Arc::new(inner) as ArrayRef),
        ])
        .unwrap();
        let path = |p: &[&str]| ColumnPath::new(p.iter().map(|s| s.to_string()).collect());
        let sample = std::slice::from_ref(&batch);
        let props = writer_properties(&batch.schema(), Compression::SNAPPY, sample);
        assert_eq!(
            props.compression(&path(&["reading"])),
            Compression::UNCOMPRESSED
        );
        assert_eq!(
            props.compression(&path(&["nested", "reading"])),
            Compression::UNCOMPRESSED
        );
        assert_eq!(props.compression(&path(&["step"])), Compression::SNAPPY);
        assert_eq!(props.compression(&path(&["counter"])), Compression::SNAPPY);
        // Other codecs are left as asked (zstd does shrink such readings a little).
        let zstd = Compression::ZSTD(Default::default());
        let props = writer_properties(&batch.schema(), zstd, sample);
        assert_eq!(props.compression(&path(&["reading"])), zstd);
        // Without data to look at, every column is compressed.
        let blind = writer_properties(&batch.schema(), Compression::SNAPPY, &[]);
        assert_eq!(blind.compression(&path(&["reading"])), Compression::SNAPPY);
    }
}
