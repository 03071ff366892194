//! The Parquet sink (seed 002): one file per partition and flush, named after
//! the topic, partition and where its offset range starts:
//!
//! `<root>/<topic>/partition=<p>/<topic>-<p>-<start>.parquet`
//!
//! The range (`kafkalake.first_offset`, `kafkalake.last_offset`) is in the
//! footer's key-value metadata; names and ranges are the progress record
//! (see [`super::files`]).

use std::ops::Range;

use arrow::array::RecordBatch;
use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectMeta;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, PageIndexPolicy, ParquetMetaDataReader};

use super::delta::OFFSET_COLUMN;
use super::files::{start_suffix, FileFormat, FileSink, FIRST_OFFSET_KEY, LAST_OFFSET_KEY};
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

/// The file holding `partition`'s offsets from `start`.
pub fn file_path(topic: &str, partition: i32, start: i64) -> Path {
    Path::from(format!(
        "{topic}/partition={partition}/{topic}-{partition}{}",
        start_suffix(start, ParquetFiles::EXTENSION)
    ))
}

/// How much of a file's end is read first for its footer.
const FOOTER_GUESS: u64 = 64 * 1024;

impl ParquetFiles {
    fn encode(&self, batch: &RecordBatch, range: [(&str, i64); 2]) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 2 + 1024);
        let props = super::writer_properties(
            &batch.schema(),
            self.compression,
            std::slice::from_ref(batch),
        );
        let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))
            .map_err(|e| Error::Storage(format!("encoding Parquet: {e}")))?;
        for (key, offset) in range {
            w.append_key_value_metadata(KeyValue::new(key.to_string(), offset.to_string()));
        }
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

    fn file(&self, topic: &str, start: i64, chunk: &PartitionChunk) -> Result<(Path, Vec<u8>)> {
        let range = [
            (FIRST_OFFSET_KEY, start),
            (LAST_OFFSET_KEY, chunk.last_offset),
        ];
        let bytes = self.encode(&without_offset_column(&chunk.batch), range)?;
        Ok((file_path(topic, chunk.partition, start), bytes))
    }

    /// From the footer: its end first, all of it if that was too little.
    fn recorded_last(
        &self,
        file: &ObjectMeta,
        read: &dyn Fn(Range<u64>) -> Result<Bytes>,
    ) -> Result<i64> {
        let bad = |why: String| {
            Error::Storage(format!(
                "'{}' has no readable kafkalake offset range ({why}); \
                 move files kafkalake did not write out of its folders",
                file.location
            ))
        };
        let size = file.size;
        let mut reader = ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Skip);
        let tail = read(size.saturating_sub(FOOTER_GUESS)..size)?;
        match reader.try_parse_sized(&tail, size) {
            Ok(()) => {}
            Err(ParquetError::NeedMoreData(needed)) => {
                let tail = read(size.saturating_sub(needed as u64)..size)?;
                reader
                    .try_parse_sized(&tail, size)
                    .map_err(|e| bad(e.to_string()))?;
            }
            Err(e) => return Err(bad(e.to_string())),
        }
        let metadata = reader.finish().map_err(|e| bad(e.to_string()))?;
        metadata
            .file_metadata()
            .key_value_metadata()
            .into_iter()
            .flatten()
            .find(|kv| kv.key == LAST_OFFSET_KEY)
            .and_then(|kv| kv.value.as_deref()?.parse().ok())
            .ok_or_else(|| bad(format!("no {LAST_OFFSET_KEY} in its footer")))
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
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::super::files::parse_name;
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = file_path("my-topic", 3, 10);
        assert_eq!(
            p.as_ref(),
            "my-topic/partition=3/my-topic-3-00000000000000000010.parquet"
        );
        assert_eq!(
            parse_name(p.filename().unwrap(), "parquet"),
            Some((10, None))
        );
    }

    #[test]
    fn the_footer_records_the_range() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            OFFSET_COLUMN,
            DataType::Int64,
            false,
        )]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![12, 13]))]).unwrap();
        let chunk = PartitionChunk {
            partition: 0,
            first_offset: 12,
            last_offset: 13,
            batch,
            dead_letters: Vec::new(),
        };
        let format = ParquetFiles {
            compression: Compression::UNCOMPRESSED,
        };
        let (location, bytes) = format.file("t", 10, &chunk).unwrap();
        let bytes = Bytes::from(bytes);
        let meta = ObjectMeta {
            location,
            last_modified: chrono::Utc::now(),
            size: bytes.len() as u64,
            e_tag: None,
            version: None,
        };
        let reads = std::cell::Cell::new(0);
        let read = |r: Range<u64>| {
            reads.set(reads.get() + 1);
            Ok(bytes.slice(r.start as usize..r.end as usize))
        };
        assert_eq!(format.recorded_last(&meta, &read).unwrap(), 13);
        assert_eq!(reads.get(), 1);
        let garbage = Bytes::from_static(b"not parquet at all");
        let meta = ObjectMeta {
            size: garbage.len() as u64,
            ..meta
        };
        let read = |r: Range<u64>| Ok(garbage.slice(r.start as usize..r.end as usize));
        let err = format.recorded_last(&meta, &read).unwrap_err().to_string();
        assert!(err.contains("no readable kafkalake offset range"), "{err}");
    }
}
