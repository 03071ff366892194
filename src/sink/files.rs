//! Sinks of files that record their own progress: each file holds one
//! partition's offsets `first..=last` and says so in its name
//! (`…-<first>-<last>.<extension>`, 20 digits each). On start and on every
//! assignment the consumer resumes after the highest last offset found under
//! the partition's folder, so a batch cut off by a crash is written again
//! under the same name (an overwrite, never a duplicate). Uploads are single
//! atomic puts; Kafka offsets are committed only after them. The Parquet and
//! Capture Avro sinks are this with their own layout and encoding.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::delta::skip_stored;
use super::storage::Location;
use super::{PartitionChunk, Sink, WriteOutcome};
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// A file format and folder layout for [`FileSink`].
pub trait FileFormat: Send {
    /// File name extension, without the dot.
    const EXTENSION: &'static str;
    /// What the files are, for messages ("Parquet files").
    const KIND: &'static str;

    /// The folder holding `partition`'s files (everything under it is listed).
    fn partition_prefix(&self, topic: &str, partition: i32) -> Path;

    /// Where `chunk` goes (ending in [`range_suffix`]) and its encoded bytes.
    fn file(&self, topic: &str, chunk: &PartitionChunk) -> Result<(Path, Vec<u8>)>;
}

/// `-<first>-<last>.<extension>`: the end of every file name.
pub fn range_suffix(first: i64, last: i64, extension: &str) -> String {
    format!("-{first:020}-{last:020}.{extension}")
}

/// `(first, last)` from a name ending in [`range_suffix`].
pub fn parse_range(name: &str, extension: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    let mut parts = stem.rsplitn(3, '-');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    Some((first, last))
}

/// Files of format `F` under a directory or object-store prefix.
pub struct FileSink<F> {
    format: F,
    location: Location,
    store: Arc<dyn ObjectStore>,
    /// Last offset stored per (topic, partition) (`None`: none), as listed
    /// at the last assignment and moved by each write since: a write does
    /// not list the partition's whole history again.
    last: HashMap<(String, i32), Option<i64>>,
}

impl<F: FileFormat> FileSink<F> {
    /// Open (creating a local directory if needed).
    pub fn new(format: F, location: Location) -> Result<Self> {
        let store = location.store()?;
        Ok(FileSink {
            format,
            location,
            store,
            last: HashMap::new(),
        })
    }
}

impl<F: FileFormat> Sink for FileSink<F> {
    /// Lists each partition's folder (called at every assignment: another
    /// worker may have written files since this one last held it).
    fn stored_offsets(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        let mut out = BTreeMap::new();
        for p in partitions {
            let prefix = self.format.partition_prefix(topic, *p);
            let files: Vec<_> = block_on(self.store.list(Some(&prefix)).try_collect())
                .map_err(|e| Error::Storage(format!("listing '{}': {e}", self.location.uri)))?;
            let last = files
                .iter()
                .filter_map(|m| m.location.filename())
                .filter_map(|name| parse_range(name, F::EXTENSION).map(|(_, l)| l))
                .max();
            if let Some(last) = last {
                out.insert(*p, last);
            }
            self.last.insert((topic.to_string(), *p), last);
        }
        Ok(out)
    }

    fn write(&mut self, topic: &str, chunks: Vec<PartitionChunk>) -> Result<WriteOutcome> {
        let unknown: Vec<i32> = chunks
            .iter()
            .map(|c| c.partition)
            .filter(|p| !self.last.contains_key(&(topic.to_string(), *p)))
            .collect();
        if !unknown.is_empty() {
            self.stored_offsets(topic, &unknown)?;
        }
        let stored: BTreeMap<i32, i64> = chunks
            .iter()
            .filter_map(|c| {
                let last = self.last.get(&(topic.to_string(), c.partition))?;
                last.map(|l| (c.partition, l))
            })
            .collect();
        let mut outcome = WriteOutcome::default();
        for c in skip_stored(chunks, &stored)? {
            // Written even when empty (all dead letters): the file records the progress.
            let (path, bytes) = self.format.file(topic, &c)?;
            block_on(self.store.put(&path, PutPayload::from(bytes))).map_err(|e| {
                Error::Storage(format!(
                    "writing '{path}' under '{}': {e}",
                    self.location.uri
                ))
            })?;
            self.last
                .insert((topic.to_string(), c.partition), Some(c.last_offset));
            outcome.rows += c.batch.num_rows() as u64;
            outcome.files += 1;
        }
        Ok(outcome)
    }

    fn describe(&self) -> String {
        format!("{} under {}", F::KIND, self.location.uri)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions,
        PutOptions, PutResult,
    };

    use super::*;

    /// An in-memory store that counts its listings.
    #[derive(Debug, Default)]
    struct Counting {
        inner: InMemory,
        lists: AtomicUsize,
    }

    impl std::fmt::Display for Counting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Counting")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Counting {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.lists.fetch_add(1, Ordering::Relaxed);
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.lists.fetch_add(1, Ordering::Relaxed);
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    /// Files holding nothing but their name.
    struct Names;

    impl FileFormat for Names {
        const EXTENSION: &'static str = "bin";
        const KIND: &'static str = "test files";

        fn partition_prefix(&self, topic: &str, partition: i32) -> Path {
            Path::from(format!("{topic}/{partition}"))
        }

        fn file(&self, topic: &str, c: &PartitionChunk) -> Result<(Path, Vec<u8>)> {
            let name = format!(
                "{topic}/{}/f{}",
                c.partition,
                range_suffix(c.first_offset, c.last_offset, Self::EXTENSION)
            );
            Ok((Path::from(name), Vec::new()))
        }
    }

    fn chunk(partition: i32, first: i64, last: i64) -> PartitionChunk {
        PartitionChunk {
            partition,
            first_offset: first,
            last_offset: last,
            batch: arrow::array::RecordBatch::new_empty(
                Arc::new(arrow::datatypes::Schema::empty()),
            ),
            dead_letters: Vec::new(),
        }
    }

    #[test]
    fn a_partition_is_listed_once_not_at_every_write() {
        let store = Arc::new(Counting::default());
        let mut sink = FileSink {
            format: Names,
            location: Location::default(),
            store: store.clone(),
            last: HashMap::new(),
        };
        for i in 0..50 {
            sink.write("t", vec![chunk(0, i * 10, i * 10 + 9)]).unwrap();
        }
        assert_eq!(store.lists.load(Ordering::Relaxed), 1);
        // A write of what is stored is dropped without a listing.
        let out = sink.write("t", vec![chunk(0, 480, 499)]).unwrap();
        assert_eq!(out.files, 0);
        assert_eq!(store.lists.load(Ordering::Relaxed), 1);
        // An assignment lists again: another worker may have written since.
        let stored = sink.stored_offsets("t", &[0, 1]).unwrap();
        assert_eq!(stored, BTreeMap::from([(0, 499)]));
        assert_eq!(store.lists.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn ranges_round_trip() {
        let name = format!("t-3{}", range_suffix(10, 99, "parquet"));
        assert_eq!(parse_range(&name, "parquet"), Some((10, 99)));
        assert_eq!(parse_range(&name, "avro"), None);
        assert_eq!(parse_range("other.parquet", "parquet"), None);
    }
}
