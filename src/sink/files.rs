//! Sinks of files that record their own progress. A partition's files form
//! one chain: each holds the partition's offsets from one past the previous
//! file's last offset (0 for the first file) up to its own last offset, its
//! name ends in `-<start>.<extension>` (20 digits) and its contents record
//! that range. On start and on every assignment the consumer resumes after
//! the last offset of the partition's newest file.
//!
//! Every file is created with a put that fails if the name exists, and the
//! name is decided by the chain alone: two workers that both believe they
//! own a partition (one of them stale, its partition handed over after a
//! poll interval was exceeded or by the group watch) race for the same
//! name. One put wins; the other worker reads the winner's range, drops what
//! it holds of it and writes only what follows, under the next name. Files
//! never overlap and never leave a gap, whoever writes them. A batch cut off
//! by a crash was never stored (puts are atomic) and is written by whoever
//! resumes. Kafka offsets are committed only after the put. The Parquet and
//! Capture Avro sinks are this with their own layout and encoding.
//!
//! Files written by earlier versions, named `-<first>-<last>.<extension>`,
//! are read as part of the chain.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::delta::skip_stored;
use super::storage::Location;
use super::{PartitionChunk, Sink, WriteOutcome};
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// Metadata key of the first offset of a file's range, in every format.
pub const FIRST_OFFSET_KEY: &str = "kafkalake.first_offset";
/// Metadata key of the last offset of a file's range, in every format.
pub const LAST_OFFSET_KEY: &str = "kafkalake.last_offset";

/// A file format and folder layout for [`FileSink`].
pub trait FileFormat: Send {
    /// File name extension, without the dot.
    const EXTENSION: &'static str;
    /// What the files are, for messages ("Parquet files").
    const KIND: &'static str;

    /// The folder holding `partition`'s files (everything under it is listed).
    fn partition_prefix(&self, topic: &str, partition: i32) -> Path;

    /// Where the file holding `chunk` goes when its range starts at `start`
    /// (a name ending in [`start_suffix`], decided by `start` and `chunk`'s
    /// messages only), and its encoded bytes, which record `start` and
    /// `chunk.last_offset` under [`FIRST_OFFSET_KEY`] and [`LAST_OFFSET_KEY`].
    fn file(&self, topic: &str, start: i64, chunk: &PartitionChunk) -> Result<(Path, Vec<u8>)>;

    /// The last offset recorded in `file`, read from as little of it as
    /// the format allows (`read` fetches a byte range).
    fn recorded_last(
        &self,
        file: &ObjectMeta,
        read: &dyn Fn(Range<u64>) -> Result<Bytes>,
    ) -> Result<i64>;
}

/// `-<start>.<extension>`: the end of every file name.
pub fn start_suffix(start: i64, extension: &str) -> String {
    format!("-{start:020}.{extension}")
}

/// Where a file's range starts, and its last offset if the name says so
/// (names of earlier versions, `-<first>-<last>.<extension>`), from a name
/// ending in [`start_suffix`].
pub fn parse_name(name: &str, extension: &str) -> Option<(i64, Option<i64>)> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    let (rest, number) = stem.rsplit_once('-')?;
    let offset = |s: &str| (s.len() == 20).then(|| s.parse::<i64>().ok()).flatten();
    let number = offset(number)?;
    match rest.rsplit_once('-').and_then(|(_, first)| offset(first)) {
        Some(first) => Some((first, Some(number))),
        None => Some((number, None)),
    }
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

    fn storage_error(&self, what: &str, path: &Path, e: object_store::Error) -> Error {
        Error::Storage(format!(
            "{what} '{path}' under '{}': {e}",
            self.location.uri
        ))
    }

    /// The last offset of `partition`'s newest file (`None`: no files).
    fn list_last(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        let prefix = self.format.partition_prefix(topic, partition);
        let files: Vec<ObjectMeta> = block_on(self.store.list(Some(&prefix)).try_collect())
            .map_err(|e| self.storage_error("listing", &prefix, e))?;
        let newest = files
            .iter()
            .filter_map(|m| Some((parse_name(m.location.filename()?, F::EXTENSION)?, m)))
            .max_by_key(|((start, _), _)| *start);
        let Some(((_, named_last), file)) = newest else {
            return Ok(None);
        };
        if let Some(last) = named_last {
            return Ok(Some(last));
        }
        let read = |range: Range<u64>| {
            block_on(self.store.get_range(&file.location, range))
                .map_err(|e| self.storage_error("reading", &file.location, e))
        };
        self.format.recorded_last(file, &read).map(Some)
    }

    /// Create `path` unless it exists; `false` if it does.
    fn create(&self, path: &Path, bytes: Vec<u8>) -> Result<bool> {
        let opts = PutOptions::from(PutMode::Create);
        match block_on(self.store.put_opts(path, PutPayload::from(bytes), opts)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.storage_error("writing", path, e)),
        }
    }
}

impl<F: FileFormat> Sink for FileSink<F> {
    /// Lists each partition's folder (called at every assignment: another
    /// worker may have written files since this one last held it).
    fn stored_offsets(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        let mut out = BTreeMap::new();
        for p in partitions {
            let last = self.list_last(topic, *p)?;
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
        let mut outcome = WriteOutcome::default();
        for chunk in chunks {
            let key = (topic.to_string(), chunk.partition);
            let mut pending = Some(chunk);
            while let Some(c) = pending.take() {
                let stored = self.last[&key];
                let done: BTreeMap<i32, i64> =
                    stored.map(|l| (c.partition, l)).into_iter().collect();
                let Some(c) = skip_stored(vec![c], &done)?.pop() else {
                    break;
                };
                let start = stored.map_or(0, |l| l + 1);
                // Written even when empty (all dead letters): the file records the progress.
                let (path, bytes) = self.format.file(topic, start, &c)?;
                if self.create(&path, bytes)? {
                    self.last.insert(key.clone(), Some(c.last_offset));
                    outcome.rows += c.batch.num_rows() as u64;
                    outcome.files += 1;
                    continue;
                }
                // Another worker holding this partition stored from `start`
                // first: keep only what follows its file.
                let now = self.list_last(topic, c.partition)?;
                if now <= stored {
                    return Err(Error::Storage(format!(
                        "'{path}' under '{}' exists but the listing of partition {} of '{topic}' \
                         does not show it; is the storage listing consistent?",
                        self.location.uri, c.partition
                    )));
                }
                self.last.insert(key.clone(), now);
                pending = Some(c);
            }
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

    /// Files holding nothing but their last offset, in decimal.
    struct Names;

    impl FileFormat for Names {
        const EXTENSION: &'static str = "bin";
        const KIND: &'static str = "test files";

        fn partition_prefix(&self, topic: &str, partition: i32) -> Path {
            Path::from(format!("{topic}/{partition}"))
        }

        fn file(&self, topic: &str, start: i64, c: &PartitionChunk) -> Result<(Path, Vec<u8>)> {
            let name = format!(
                "{topic}/{}/f{}",
                c.partition,
                start_suffix(start, Self::EXTENSION)
            );
            Ok((Path::from(name), c.last_offset.to_string().into_bytes()))
        }

        fn recorded_last(
            &self,
            file: &ObjectMeta,
            read: &dyn Fn(Range<u64>) -> Result<Bytes>,
        ) -> Result<i64> {
            let bytes = read(0..file.size)?;
            Ok(std::str::from_utf8(&bytes).unwrap().parse().unwrap())
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
        let mut sink = sink(store.clone());
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

    fn sink(store: Arc<Counting>) -> FileSink<Names> {
        FileSink {
            format: Names,
            location: Location::default(),
            store,
            last: HashMap::new(),
        }
    }

    /// (start, last) of each file of partition 0 of topic `t`.
    fn ranges(store: &Counting) -> Vec<(i64, i64)> {
        let files: Vec<ObjectMeta> =
            block_on(store.inner.list(Some(&Path::from("t/0"))).try_collect()).unwrap();
        let mut out: Vec<(i64, i64)> = files
            .iter()
            .map(|m| {
                let (start, _) = parse_name(m.location.filename().unwrap(), "bin").unwrap();
                let bytes = block_on(store.inner.get_range(&m.location, 0..m.size)).unwrap();
                (start, std::str::from_utf8(&bytes).unwrap().parse().unwrap())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_stale_writer_never_overlaps_the_new_owner() {
        let store = Arc::new(Counting::default());
        let (mut stale, mut owner) = (sink(store.clone()), sink(store.clone()));
        // Both hold partition 0 and found nothing stored.
        stale.stored_offsets("t", &[0]).unwrap();
        owner.stored_offsets("t", &[0]).unwrap();
        owner.write("t", vec![chunk(0, 0, 9)]).unwrap();
        // The stale worker's batch reaches further: only what follows is written.
        let out = stale.write("t", vec![chunk(0, 0, 14)]).unwrap();
        assert_eq!(out.files, 1);
        owner.write("t", vec![chunk(0, 10, 19)]).unwrap();
        // A batch another worker stored whole is dropped.
        let out = stale.write("t", vec![chunk(0, 15, 19)]).unwrap();
        assert_eq!(out.files, 0);
        stale.write("t", vec![chunk(0, 20, 29)]).unwrap();
        assert_eq!(ranges(&store), vec![(0, 9), (10, 14), (15, 19), (20, 29)]);
        // Either worker resumes after the chain's end.
        assert_eq!(
            owner.stored_offsets("t", &[0]).unwrap(),
            BTreeMap::from([(0, 29)])
        );
    }

    #[test]
    fn names_round_trip() {
        let name = format!("t-3{}", start_suffix(10, "parquet"));
        assert_eq!(name, "t-3-00000000000000000010.parquet");
        assert_eq!(parse_name(&name, "parquet"), Some((10, None)));
        assert_eq!(parse_name(&name, "avro"), None);
        assert_eq!(parse_name("other.parquet", "parquet"), None);
        // Names of earlier versions carry their last offset.
        let old = "t-3-00000000000000000010-00000000000000000099.parquet";
        assert_eq!(parse_name(old, "parquet"), Some((10, Some(99))));
        assert_eq!(
            parse_name("29-00000000000000000005.avro", "avro"),
            Some((5, None))
        );
    }
}
