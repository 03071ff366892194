//! The Parquet sink (seed 002): one file per partition and flush, named after
//! the topic, partition and offset range it holds:
//!
//! `<root>/<topic>/partition=<p>/<topic>-<p>-<first offset>-<last offset>.parquet`
//!
//! The names are the progress record (see [`super::files`]).

use arrow::array::RecordBatch;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};

use super::delta::OFFSET_COLUMN;
use super::files::{range_suffix, FileFormat, FileSink};
use super::storage::Location;
use super::PartitionChunk;
use crate::error::{Error, Result};

/// Parquet files, zstd-compressed, in `<topic>/partition=<p>/` folders.
pub struct ParquetFiles {
    compression: Compression,
}

/// A directory (or object-store prefix) of Parquet files.
pub type ParquetSink = FileSink<ParquetFiles>;

/// Open the Parquet sink at `location`.
pub fn sink(location: Location) -> Result<ParquetSink> {
    let format = ParquetFiles {
        compression: Compression::ZSTD(ZstdLevel::default()),
    };
    FileSink::new(format, location)
}

/// The file holding `partition`'s offsets `first..=last`.
pub fn file_path(topic: &str, partition: i32, first: i64, last: i64) -> Path {
    Path::from(format!(
        "{topic}/partition={partition}/{topic}-{partition}{}",
        range_suffix(first, last, ParquetFiles::EXTENSION)
    ))
}

impl ParquetFiles {
    fn encode(&self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 2 + 1024);
        let props = super::writer_properties(
            &batch.schema(),
            self.compression,
            std::slice::from_ref(batch),
        );
        let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))
            .map_err(|e| Error::Storage(format!("encoding Parquet: {e}")))?;
        w.write(batch)
            .map_err(|e| Error::Storage(format!("encoding Parquet: {e}")))?;
        w.close()
            .map_err(|e| Error::Storage(format!("encoding Parquet: {e}")))?;
        Ok(buf)
    }
}

impl FileFormat for ParquetFiles {
    const EXTENSION: &'static str = "parquet";
    const KIND: &'static str = "Parquet files";

    fn partition_prefix(&self, topic: &str, partition: i32) -> Path {
        Path::from(format!("{topic}/partition={partition}"))
    }

    fn file(&self, topic: &str, chunk: &PartitionChunk) -> Result<(Path, Vec<u8>)> {
        let bytes = self.encode(&without_offset_column(&chunk.batch))?;
        let path = file_path(
            topic,
            chunk.partition,
            chunk.first_offset,
            chunk.last_offset,
        );
        Ok((path, bytes))
    }
}

/// `batch` without kafkalake's internal offset column.
fn without_offset_column(batch: &RecordBatch) -> RecordBatch {
    let mut b = batch.clone();
    if let Ok(i) = batch.schema().index_of(OFFSET_COLUMN) {
        b.remove_column(i);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::super::files::parse_range;
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = file_path("my-topic", 3, 10, 99);
        assert_eq!(
            p.as_ref(),
            "my-topic/partition=3/my-topic-3-00000000000000000010-00000000000000000099.parquet"
        );
        assert_eq!(
            parse_range(p.filename().unwrap(), "parquet"),
            Some((10, 99))
        );
        assert_eq!(parse_range("other.parquet", "parquet"), None);
    }
}
