//! The Parquet sink (seed 002): one file per partition and flush, named after
//! the topic, partition and offset range it holds:
//!
//! `<root>/<topic>/partition=<p>/<topic>-<p>-<first offset>-<last offset>.parquet`
//!
//! The files themselves record progress: on start and on every assignment the
//! consumer resumes after the highest last offset found under the partition's
//! directory, so a batch cut off by a crash is written again under the same
//! name (an overwrite, never a duplicate). Uploads are single atomic puts;
//! Kafka offsets are committed only after them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};

use super::delta::{skip_stored, OFFSET_COLUMN};
use super::storage::Location;
use super::{last_offset_in_names, PartitionChunk, Sink, WriteOutcome};
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// A directory (or object-store prefix) of Parquet files.
pub struct ParquetSink {
    location: Location,
    store: Arc<dyn ObjectStore>,
    compression: Compression,
}

/// The file holding `partition`'s offsets `first..=last`.
pub fn file_path(topic: &str, partition: i32, first: i64, last: i64) -> Path {
    Path::from(format!(
        "{topic}/partition={partition}/{topic}-{partition}-{first:020}-{last:020}.parquet"
    ))
}

/// `(first, last)` from a file name written by [`file_path`].
fn parse_range(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(".parquet")?;
    let mut parts = stem.rsplitn(3, '-');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    Some((first, last))
}

impl ParquetSink {
    /// Open (creating a local directory if needed).
    pub fn new(location: Location) -> Result<Self> {
        let store = location.store()?;
        Ok(ParquetSink {
            location,
            store,
            compression: Compression::ZSTD(ZstdLevel::default()),
        })
    }

    fn encode(&self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 2 + 1024);
        let props = super::writer_properties(&batch.schema(), self.compression);
        let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))
            .map_err(|e| Error::Storage(format!("encoding Parquet: {e}")))?;
        w.write(batch)
            .map_err(|e| Error::Storage(format!("encoding Parquet: {e}")))?;
        w.close()
            .map_err(|e| Error::Storage(format!("encoding Parquet: {e}")))?;
        Ok(buf)
    }
}

/// `batch` without kafkalake's internal offset column.
fn without_offset_column(batch: &RecordBatch) -> Result<RecordBatch> {
    match batch.schema().index_of(OFFSET_COLUMN) {
        Ok(i) => {
            let mut b = batch.clone();
            b.remove_column(i);
            Ok(b)
        }
        Err(_) => Ok(batch.clone()),
    }
}

impl Sink for ParquetSink {
    fn stored_offsets(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        let mut out = BTreeMap::new();
        for p in partitions {
            let prefix = Path::from(format!("{topic}/partition={p}"));
            if let Some(last) = last_offset_in_names(
                self.store.as_ref(),
                &prefix,
                &self.location.uri,
                parse_range,
            )? {
                out.insert(*p, last);
            }
        }
        Ok(out)
    }

    fn write(&mut self, topic: &str, chunks: Vec<PartitionChunk>) -> Result<WriteOutcome> {
        let partitions: Vec<i32> = chunks.iter().map(|c| c.partition).collect();
        let stored = self.stored_offsets(topic, &partitions)?;
        let chunks = skip_stored(chunks, &stored);
        let mut outcome = WriteOutcome::default();
        for c in chunks {
            let batch = without_offset_column(&c.batch)?;
            // Written even when empty (all dead letters): the file records the progress.
            let bytes = self.encode(&batch)?;
            let path = file_path(topic, c.partition, c.first_offset, c.last_offset);
            block_on(self.store.put(&path, PutPayload::from(bytes))).map_err(|e| {
                Error::Storage(format!(
                    "writing '{path}' under '{}': {e}",
                    self.location.uri
                ))
            })?;
            outcome.rows += batch.num_rows() as u64;
            outcome.files += 1;
        }
        Ok(outcome)
    }

    fn describe(&self) -> String {
        format!("Parquet files under {}", self.location.uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = file_path("my-topic", 3, 10, 99);
        assert_eq!(
            p.as_ref(),
            "my-topic/partition=3/my-topic-3-00000000000000000010-00000000000000000099.parquet"
        );
        assert_eq!(parse_range(p.filename().unwrap()), Some((10, 99)));
        assert_eq!(parse_range("other.parquet"), None);
    }
}
