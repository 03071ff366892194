//! The Delta Lake sink, exactly once.
//!
//! Every commit carries, in the same atomic commit as the data files, one
//! `txn` action per Kafka partition: app id `<ingest>-<topic>-<partition>`,
//! version = the last offset written. The Delta log, not the consumer group,
//! is the source of truth: on start and on every assignment the consumer
//! resumes at the stored version + 1, and a chunk whose offsets are already
//! stored is dropped. When two workers race on a partition (a rebalance), the
//! loser's commit fails Delta's conflict check on the shared app id; it
//! reloads the stored versions, drops what the winner wrote and retries.
//! Appends of different partitions never conflict.

mod conform;

pub use conform::{check_compatible, conform_to};

use std::collections::{BTreeMap, HashMap};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitData, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use parquet::basic::Compression;

use super::storage::Location;
use super::{PartitionChunk, Pending, Sink, WriteOutcome};
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// How the table is written.
#[derive(Clone, Debug)]
pub struct DeltaOptions {
    /// The table.
    pub location: Location,
    /// The ingest's name: part of every txn app id.
    pub app_name: String,
    /// Partition columns of a created table.
    pub partition_by: Vec<String>,
    /// Delta table properties of a created table (`quality = "bronze"`).
    pub table_properties: HashMap<String, String>,
    /// Target size of data files, bytes (`None`: one file per partition value and flush).
    pub target_file_size: Option<u64>,
    /// Write a checkpoint at every table version that is a multiple of
    /// this (0: never), whoever wrote the versions in between.
    pub checkpoint_interval: u64,
    /// Compact small files at every table version that is a multiple of
    /// this (0: never).
    pub compact_interval: u64,
    /// Which files compaction rewrites.
    pub compact: super::compact::CompactOptions,
}

/// The txn app id of one partition.
pub fn app_id(app: &str, topic: &str, partition: i32) -> String {
    format!("{app}-{topic}-{partition}")
}

pub(crate) fn delta_err(what: &str, e: DeltaTableError) -> Error {
    match e {
        DeltaTableError::ObjectStore { source } => Error::Storage(format!("{what}: {source}")),
        other => Error::Delta(format!("{what}: {other}")),
    }
}

/// The directory of a local location (a path or `file://` URL).
fn local_path(uri: &str) -> Option<std::path::PathBuf> {
    match uri.split_once("://") {
        None => Some(std::path::PathBuf::from(uri)),
        Some(("file", _)) => url::Url::parse(uri).ok()?.to_file_path().ok(),
        Some(_) => None,
    }
}

/// Whether the location holds anything at all (a non-table directory must
/// not be turned into a table silently).
async fn is_empty(location: &Location) -> Result<bool> {
    let store = location.store()?;
    let mut list = store.list(None);
    match list.next().await {
        None => Ok(true),
        Some(Ok(_)) => Ok(false),
        Some(Err(e)) => Err(Error::Storage(format!(
            "cannot list '{}': {e}",
            location.uri
        ))),
    }
}

/// Open the table at `location`, or `None` if there is no table and the
/// location is empty. A non-empty location without a Delta log is an error.
pub fn open(location: &Location) -> Result<Option<DeltaTable>> {
    // A local directory that does not exist holds no table; looking must
    // not create it (resolving a local URL does).
    if let Some(dir) = local_path(&location.uri) {
        if !dir.exists() {
            return Ok(None);
        }
    }
    block_on(async {
        let url = location.url()?;
        let builder = DeltaTableBuilder::from_url(url)
            .map_err(|e| delta_err(&format!("bad table location '{}'", location.uri), e))?
            .with_storage_options(location.options.clone());
        match builder.load().await {
            Ok(t) => Ok(Some(t)),
            Err(DeltaTableError::NotATable(_)) => {
                if is_empty(location).await? {
                    Ok(None)
                } else {
                    Err(Error::Table(format!(
                        "'{}' holds files but is not a Delta table (no _delta_log); \
                         choose an empty or new location",
                        location.uri
                    )))
                }
            }
            Err(e) => Err(delta_err(
                &format!("cannot open the Delta table at '{}'", location.uri),
                e,
            )),
        }
    })
}

/// The data files of the table's current snapshot.
pub(crate) async fn data_files(
    table: &DeltaTable,
) -> Result<Vec<deltalake::kernel::LogicalFileView>> {
    use futures::TryStreamExt;
    let snapshot = table.snapshot().map_err(|e| delta_err("snapshot", e))?;
    let log_store = table.log_store();
    snapshot
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .try_collect()
        .await
        .map_err(|e| delta_err("listing the table's files", e))
}

/// A Parquet reader of the table's data file at `path` (as its snapshot
/// lists it).
pub(crate) async fn read_data_file(
    table: &DeltaTable,
    path: &str,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder<bytes::Bytes>> {
    use object_store::ObjectStoreExt;
    let err = |e: &dyn std::fmt::Display| Error::Storage(format!("reading '{path}': {e}"));
    let bytes = table
        .object_store()
        .get(&object_store::path::Path::from(path))
        .await
        .map_err(|e| err(&e))?
        .bytes()
        .await
        .map_err(|e| err(&e))?;
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| err(&e))
}

/// The table's schema as Arrow.
pub fn arrow_schema(table: &DeltaTable) -> Result<SchemaRef> {
    let writer = RecordBatchWriter::for_table(table).map_err(|e| delta_err("table schema", e))?;
    Ok(writer.arrow_schema())
}

/// Create the table with `schema`.
pub fn create(
    location: &Location,
    schema: &SchemaRef,
    partition_by: &[String],
) -> Result<DeltaTable> {
    create_with(location, schema, partition_by, &HashMap::new())
}

/// [`create`] with Delta table properties (`quality = "silver"`, `delta.…`).
/// Another worker may create the table at the same moment: then the table
/// as it is now is returned, which may already hold that worker's commits.
pub fn create_with(
    location: &Location,
    schema: &SchemaRef,
    partition_by: &[String],
    properties: &HashMap<String, String>,
) -> Result<DeltaTable> {
    match create_new(location, schema, partition_by, properties)? {
        Some(t) => Ok(t),
        None => open(location)?.ok_or_else(|| {
            Error::Table(format!(
                "the Delta table at '{}' was reported created but cannot be opened",
                location.uri
            ))
        }),
    }
}

/// Create the table at version 0, or `None` if it exists already (another
/// writer created it first). A writer that decided what to commit on
/// finding no table must not commit on one it did not create: the other
/// writer's commits may already hold the same rows.
pub fn create_new(
    location: &Location,
    schema: &SchemaRef,
    partition_by: &[String],
    properties: &HashMap<String, String>,
) -> Result<Option<DeltaTable>> {
    for key in properties.keys() {
        if key.starts_with("delta.") && key.parse::<deltalake::TableProperty>().is_err() {
            return Err(Error::InvalidArgument(format!(
                "table property '{key}' is not a Delta table property (keys under 'delta.' \
                 are Delta's own: delta.appendOnly, delta.logRetentionDuration, …); \
                 name your own without the 'delta.' prefix"
            )));
        }
    }
    for p in partition_by {
        if schema.field_with_name(p).is_err() {
            return Err(Error::InvalidArgument(format!(
                "partition column '{p}' is not a column of the data"
            )));
        }
    }
    let kernel: StructType = schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| Error::Table(format!("the data's schema cannot be a Delta schema: {e}")))?;
    let created = block_on(async {
        let url = location.url()?;
        DeltaTableBuilder::from_url(url)
            .map_err(|e| delta_err("bad table location", e))?
            .with_storage_options(location.options.clone())
            .build()
            .map_err(|e| delta_err("bad table location", e))?
            .create()
            .with_columns(kernel.fields().cloned())
            .with_partition_columns(partition_by.iter().cloned())
            .with_configuration(properties.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
            // Delta's own keys were checked above; others (`quality`) are the user's.
            .with_raise_if_key_not_exists(false)
            .with_save_mode(SaveMode::ErrorIfExists)
            .await
            .map_err(|e| {
                delta_err(
                    &format!("cannot create the Delta table at '{}'", location.uri),
                    e,
                )
            })
    });
    match created {
        Ok(t) => Ok(Some(t)),
        // It exists (found there, or version 0 written by another writer
        // between the look and the commit): not this call's table.
        Err(e) => match open(location) {
            Ok(Some(_)) => Ok(None),
            _ => Err(e),
        },
    }
}

/// A Delta table receiving ingested rows.
pub struct DeltaSink {
    table: DeltaTable,
    opts: DeltaOptions,
    schema: SchemaRef,
    /// The version of the last upkeep started: the table's state is read
    /// whole at it (see [`upkeep`]), and the next is due an interval later.
    read_at: u64,
    /// The table's latest version as this sink knows it: its state's, or a
    /// later one it committed (or read while committing) since. Every
    /// version up to it has been seen by this sink.
    head: u64,
    /// Whether commits go straight to the log ([`commit_after`]) rather
    /// than through delta-rs' commit (see [`direct_commits`]).
    direct: bool,
    /// Upkeep running off the commit path (see [`upkeep`]): the version it
    /// is for, and its task.
    upkeep: Option<(u64, tokio::task::JoinHandle<Result<DeltaTableState>>)>,
    /// The stored txn versions this sink knows, and the table version they
    /// hold at (see [`Txns`]).
    txns: Txns,
    /// How many times the txn versions were read from the log.
    #[cfg(test)]
    txn_reads: u64,
}

/// Stored txn versions (by app id; `None`: the table has none for it) as of
/// one table version: read from the table, then carried forward by this
/// sink's own commits. A write whose partitions are all known commits
/// without reading the log first: reading it lists the whole `_delta_log`
/// and replays every commit since the last checkpoint once per partition,
/// a cost that grows with the table. Nothing is lost by not looking: a
/// commit another writer made in the meantime takes the version this
/// commit wanted, and the commit then fails if that writer stored any of
/// the same partitions ([`commit_after`], or delta-rs' conflict check);
/// the write then reads the log and skips what is stored.
#[derive(Default)]
struct Txns {
    at: Option<u64>,
    versions: HashMap<String, Option<i64>>,
}

impl Txns {
    /// The stored versions of `apps`, if known at table version `version`.
    fn known(&self, version: u64, apps: &[(i32, String)]) -> Option<BTreeMap<i32, i64>> {
        if self.at != Some(version) {
            return None;
        }
        let mut out = BTreeMap::new();
        for (p, app) in apps {
            if let Some(v) = self.versions.get(app)? {
                out.insert(*p, *v);
            }
        }
        Some(out)
    }

    /// Versions read from the table at `version`.
    fn read(&mut self, version: u64, found: impl IntoIterator<Item = (String, Option<i64>)>) {
        if self.at != Some(version) {
            self.versions.clear();
            self.at = Some(version);
        }
        self.versions.extend(found);
    }

    /// This sink committed `version` over `before`: what it knew at
    /// `before` still holds, with `written`, if nobody else committed in
    /// between; otherwise it is forgotten.
    fn committed(
        &mut self,
        before: Option<u64>,
        version: u64,
        written: impl IntoIterator<Item = (String, i64)>,
    ) {
        if before.is_some() && self.at == before && before.map(|b| b + 1) == Some(version) {
            self.at = Some(version);
            self.versions
                .extend(written.into_iter().map(|(app, v)| (app, Some(v))));
        } else {
            self.at = None;
            self.versions.clear();
        }
    }
}

/// Whether a commit lost to a concurrent one and may be retried on the
/// reloaded table: a writer of the same partitions (its `txn`), or another
/// worker's schema change (new columns) committed first.
pub(crate) fn is_conflict(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(
                CommitConflictError::ConcurrentTransaction | CommitConflictError::MetadataChanged
            ) | TransactionError::MaxCommitAttempts(_)
        } | DeltaTableError::VersionAlreadyExists(_)
    )
}

impl DeltaSink {
    /// A sink over an open table.
    pub fn new(table: DeltaTable, opts: DeltaOptions) -> Result<Self> {
        let schema = arrow_schema(&table)?;
        Ok(DeltaSink {
            read_at: table.version().unwrap_or(0),
            head: table.version().unwrap_or(0),
            direct: direct_commits(&table),
            table,
            opts,
            schema,
            txns: Txns::default(),
            upkeep: None,
            #[cfg(test)]
            txn_reads: 0,
        })
    }

    /// The table's Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The table (for reading it back).
    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// Stored txn versions of `topic`'s partitions, after catching up with the log.
    pub fn stored_versions(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>> {
        let app = self.opts.app_name.clone();
        block_on(async {
            let before = self.table.version();
            self.table
                .update_incremental(None)
                .await
                .map_err(|e| delta_err("reload", e))?;
            if self.table.version() != before {
                // Another worker may have added columns.
                self.schema = arrow_schema(&self.table)?;
            }
            self.reloaded();
            let snapshot = self
                .table
                .snapshot()
                .map_err(|e| delta_err("snapshot", e))?;
            let store = self.table.log_store();
            let mut out = BTreeMap::new();
            let mut found = Vec::with_capacity(partitions.len());
            for p in partitions {
                let app = app_id(&app, topic, *p);
                let v = snapshot
                    .transaction_version(store.as_ref(), &app)
                    .await
                    .map_err(|e| delta_err("reading txn versions", e))?;
                if let Some(v) = v {
                    out.insert(*p, v);
                }
                found.push((app, v));
            }
            self.txns.read(snapshot.version(), found);
            #[cfg(test)]
            {
                self.txn_reads += 1;
            }
            Ok(out)
        })
    }

    /// Stored txn versions of `topic`'s partitions: known without reading
    /// the log if this sink has followed the table since it last read them
    /// (see [`Txns`]), else read.
    fn txn_versions(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        let apps: Vec<(i32, String)> = partitions
            .iter()
            .map(|p| (*p, app_id(&self.opts.app_name, topic, *p)))
            .collect();
        let known = self.txns.known(self.head, &apps);
        match known {
            Some(known) => Ok(known),
            None => self.stored_versions(topic, partitions),
        }
    }

    /// Rows of `batch` in the table's column order and types. Only what
    /// keeps every value is done (columns the data lacks become nulls,
    /// timestamps take the table's unit); any other difference is an error
    /// naming the column, never a changed value. (Decoders follow the
    /// table's schema, so this does not happen in normal operation.)
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        conform_to(&self.opts.location.uri, &self.schema, batch)
    }

    /// Add the columns of `chunks`' rows the table lacks (fields that
    /// appeared since the table was read, e.g. new nested fields of a
    /// flattened table), so none is dropped.
    fn add_missing_columns(&mut self, chunks: &[PartitionChunk]) -> Result<()> {
        let missing = |b: &RecordBatch| {
            b.schema().fields().iter().any(|f| {
                f.name() != OFFSET_COLUMN && self.schema.field_with_name(f.name()).is_err()
            })
        };
        let Some(batch) = chunks.iter().map(|c| &c.batch).find(|b| missing(b)) else {
            return Ok(());
        };
        let fields: Vec<arrow::datatypes::Field> = batch
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name() != OFFSET_COLUMN)
            .map(|f| f.as_ref().clone())
            .collect();
        self.add_columns(&std::sync::Arc::new(arrow::datatypes::Schema::new(fields)))
    }

    /// Take what finished upkeep produced (waiting for it if `wait`): the
    /// table's state read whole from a checkpoint (brought up to the latest
    /// version when commits go through delta-rs, which commits over it).
    /// Upkeep that failed fails here, naming what it was doing.
    fn collect_upkeep(&mut self, wait: bool) -> Result<()> {
        match &self.upkeep {
            Some((_, task)) if wait || task.is_finished() => {}
            _ => return Ok(()),
        }
        let Some((at, task)) = self.upkeep.take() else {
            return Ok(());
        };
        let whole = block_on(task).map_err(|e| upkeep_stopped(at, e))??;
        let version = self.table.version();
        if version.is_some_and(|v| v > at) && self.direct {
            // Read again since (a conflict, new columns): newer already.
            return Ok(());
        }
        let mut fresh = self.table.clone();
        fresh.state = Some(whole);
        // Through delta-rs' commit, the state must be at the latest version
        // (a commit is made over it); committing directly, it may lag.
        if !self.direct && version != Some(at) {
            block_on(fresh.update_incremental(version))
                .map_err(|e| delta_err("catching up with the table's latest commits", e))?;
        }
        self.table.state = fresh.state;
        Ok(())
    }

    /// After the state was read from the log again: it is the latest.
    fn reloaded(&mut self) {
        if let Some(v) = self.table.version() {
            self.head = self.head.max(v);
        }
        self.direct = direct_commits(&self.table);
    }

    /// One commit: data files plus a txn per partition. `Ok(None)` on a
    /// conflict with a concurrent writer of the same partitions.
    fn commit(&mut self, topic: &str, chunks: &[PartitionChunk]) -> Result<Option<WriteOutcome>> {
        self.collect_upkeep(false)?;
        let batches: Vec<RecordBatch> = chunks
            .iter()
            .filter(|c| c.batch.num_rows() > 0)
            .map(|c| self.conform(&c.batch))
            .collect::<Result<_>>()?;
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let before = self.head;
        let written: Vec<(String, i64)> = chunks
            .iter()
            .map(|c| {
                (
                    app_id(&self.opts.app_name, topic, c.partition),
                    c.last_offset,
                )
            })
            .collect();
        let txns: Vec<Action> = chunks
            .iter()
            .map(|c| {
                Action::Txn(Transaction::new_with_last_update(
                    app_id(&self.opts.app_name, topic, c.partition),
                    c.last_offset,
                    Some(now_ms),
                ))
            })
            .collect();
        let target = self.opts.target_file_size;
        let (direct, head) = (self.direct, self.head);
        let ours: std::collections::HashSet<String> =
            written.iter().map(|(app, _)| app.clone()).collect();
        let result = block_on(async {
            let mut actions: Vec<Action> = Vec::new();
            if !batches.is_empty() {
                let mut writer = RecordBatchWriter::for_table(&self.table)?.with_writer_properties(
                    super::writer_properties(&self.schema, Compression::SNAPPY, &batches),
                );
                if let Some(t) = target {
                    writer = writer.with_target_file_size(t);
                }
                for b in batches {
                    writer.write(b).await?;
                }
                actions.extend(writer.flush().await?.into_iter().map(Action::Add));
            }
            let files = actions.len() as u64;
            actions.extend(txns);
            let snapshot = self.table.snapshot()?;
            let partition_by = snapshot.metadata().partition_columns().to_vec();
            let op = DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: (!partition_by.is_empty()).then_some(partition_by),
                predicate: None,
            };
            if direct {
                let entry = CommitData::new(actions, op, HashMap::new(), Vec::new()).get_bytes()?;
                let store = self.table.log_store().object_store(None);
                let landed = commit_after(store.as_ref(), head, entry, &ours).await?;
                return Ok::<_, DeltaTableError>(
                    landed.map(|(version, seen)| (version, Committed::Direct(seen), files)),
                );
            }
            let finalized = CommitBuilder::from(commit_properties().with_max_retries(10))
                .with_actions(actions)
                .build(Some(snapshot), self.table.log_store(), op)
                .await?;
            Ok(Some((
                finalized.version(),
                Committed::Delta(finalized.snapshot()),
                files,
            )))
        });
        match result {
            Ok(None) => Ok(None),
            Ok(Some((version, committed, files))) => {
                match committed {
                    Committed::Delta(snapshot) => {
                        self.table.state = Some(snapshot);
                        self.txns.committed(Some(before), version, written);
                    }
                    Committed::Direct(seen) => {
                        // Other writers' commits this one went past: none
                        // touched these partitions, and their txns are known.
                        let mut at = before;
                        for (v, txns) in seen {
                            self.txns.committed(Some(at), v, txns);
                            at = v;
                        }
                        self.txns.committed(Some(at), version, written);
                    }
                }
                self.head = version;
                // Decided by the table's version, as Spark does, not by this
                // run's commits: a table fed by many short runs (or several
                // workers) gets them too, each from one writer.
                let due = |every: u64| every > 0 && version % every == 0;
                // Once per checkpoint interval, whichever worker wrote the
                // checkpoint: the state read whole again from it. Both off
                // the commit path. A checkpoint due while the previous one
                // is still being written is left to the next interval:
                // commits never wait for one.
                let every = self.opts.checkpoint_interval;
                let write_checkpoint = due(every);
                if (write_checkpoint || (every > 0 && version >= self.read_at + every))
                    && self.upkeep.is_none()
                {
                    let table = self.table.clone();
                    let task =
                        crate::runtime::runtime().spawn(upkeep(table, version, write_checkpoint));
                    self.upkeep = Some((version, task));
                    self.read_at = version;
                }
                if due(self.opts.compact_interval) {
                    // Compaction reads the table's files: the state at the head.
                    if self.table.version() != Some(version) {
                        block_on(self.table.update_incremental(Some(version)))
                            .map_err(|e| delta_err("reading the table before compaction", e))?;
                    }
                    block_on(super::compact::compact(&mut self.table, self.opts.compact))?;
                    // Compaction moves no txn: known versions still hold if
                    // its commit was the only one since.
                    if let Some(after) = self.table.version() {
                        self.txns.committed(Some(version), after, []);
                        self.head = self.head.max(after);
                    }
                }
                Ok(Some(WriteOutcome {
                    rows,
                    files,
                    version: Some(version as i64),
                }))
            }
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(delta_err(
                &format!("writing to the Delta table at '{}'", self.opts.location.uri),
                e,
            )),
        }
    }
}

/// How a commit landed.
enum Committed {
    /// Through delta-rs: the table's state after it.
    Delta(DeltaTableState),
    /// Straight to the log: the versions other writers took first, each
    /// with the txns it stored (see [`commit_after`]).
    Direct(Vec<(u64, Vec<(String, i64)>)>),
}

/// Whether an ingest commits straight to the log ([`commit_after`]): on
/// tables of writer version 2 or less (appends need no table feature) in
/// stores that commit with a conditional put (local disk, Azure). Other
/// tables commit through delta-rs, which checks their features.
fn direct_commits(table: &DeltaTable) -> bool {
    let Ok(snapshot) = table.snapshot() else {
        return false;
    };
    snapshot.protocol().min_writer_version() <= 2 && table.log_store().name() == "DefaultLogStore"
}

/// Commit `entry` (an append: files and txns) as the version after `head`,
/// with a conditional put, as delta-rs' own commit does in the same stores,
/// but without reading the table first or after: delta-rs lists the log to
/// find its latest version before a commit and updates its state from the
/// log after one, both at a cost that grows with the table (the listing
/// with its log files, the state with its data files). If another writer
/// took the version, its commit is read: a txn for one of `ours` (another
/// worker stored these partitions) or a change of schema or protocol ends
/// the attempt with `None`, and the caller reads the table again; anything
/// else (other partitions, compaction) is an append's concern to nobody,
/// and the put is tried at the next version. The version committed, and
/// the versions gone past with their txns.
async fn commit_after(
    store: &dyn object_store::ObjectStore,
    mut head: u64,
    entry: bytes::Bytes,
    ours: &std::collections::HashSet<String>,
) -> std::result::Result<Option<(u64, Vec<(u64, Vec<(String, i64)>)>)>, DeltaTableError> {
    use deltalake::logstore::commit_uri_from_version;
    use object_store::{ObjectStoreExt, PutMode, PutOptions};
    let path = |v: u64| commit_uri_from_version(Some(v));
    let mut seen = Vec::new();
    for _attempt in 0..100 {
        let put = PutOptions::from(PutMode::Create);
        match store
            .put_opts(&path(head + 1), entry.clone().into(), put)
            .await
        {
            Ok(_) => return Ok(Some((head + 1, seen))),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // Every version taken since `head`, in order.
        loop {
            let taken = match store.get(&path(head + 1)).await {
                Ok(got) => got.bytes().await?,
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            let mut txns = Vec::new();
            for line in taken.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                match serde_json::from_slice::<Action>(line) {
                    Ok(Action::Txn(t)) if ours.contains(&t.app_id) => return Ok(None),
                    Ok(Action::Txn(t)) => txns.push((t.app_id, t.version)),
                    Ok(Action::Metadata(_) | Action::Protocol(_)) => return Ok(None),
                    Ok(_) => {}
                    // An action this version does not know: let delta-rs judge.
                    Err(_) => return Ok(None),
                }
            }
            head += 1;
            seen.push((head, txns));
        }
    }
    Ok(None)
}

/// The properties of every commit kafkalake makes: neither a checkpoint nor
/// a log cleanup inside the commit. delta-rs' default cleanup lists the
/// whole `_delta_log` at every commit, a cost that grows with the table's
/// age (thousands of entries, pages of listings on Azure); [`checkpoint`]
/// cleans up instead, as Spark does.
pub(crate) fn commit_properties() -> CommitProperties {
    CommitProperties::default()
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false))
}

/// Write a checkpoint at the table's version, then remove the log files it
/// makes expired: older than `delta.logRetentionDuration` (30 days by
/// default) and before a checkpoint, unless the table turns
/// `delta.enableExpiredLogCleanup` off.
pub(crate) fn checkpoint(table: &DeltaTable) -> Result<()> {
    block_on(write_checkpoint(table))
}

async fn write_checkpoint(table: &DeltaTable) -> Result<()> {
    use deltalake::table::config::TablePropertiesExt;
    async {
        deltalake::checkpoints::create_checkpoint(table, None).await?;
        let cleanup = table
            .snapshot()?
            .table_config()
            .enable_expired_log_cleanup();
        if cleanup {
            deltalake::checkpoints::cleanup_metadata(table, None).await?;
        }
        Ok::<_, DeltaTableError>(())
    }
    .await
    .map_err(|e| {
        delta_err(
            &format!("writing a checkpoint of version {:?}", table.version()),
            e,
        )
    })
}

/// The error of an upkeep task that did not run to its end (a panic).
fn upkeep_stopped(at: u64, e: impl std::fmt::Display) -> Error {
    Error::Delta(format!("the table upkeep of version {at} stopped: {e}"))
}

/// An ingest's table upkeep, run beside its commits: the checkpoint of the
/// table's version (if `checkpoint`), then the state read whole from the
/// latest checkpoint (see [`reread`]). Both take time that grows with the
/// table's files (a checkpoint lists every one), which a commit would
/// otherwise wait for once per interval.
async fn upkeep(mut table: DeltaTable, version: u64, checkpoint: bool) -> Result<DeltaTableState> {
    // A state behind `version` (direct commits) is read whole at it: one
    // read serves the checkpoint and the state handed back. A state at it
    // (commits through delta-rs) is checkpointed, then read whole.
    let behind = table.version() != Some(version);
    if behind {
        read_whole(&mut table, Some(version)).await?;
    }
    if checkpoint {
        write_checkpoint(&table).await?;
    }
    if !behind {
        read_whole(&mut table, Some(version)).await?;
    }
    table
        .state
        .ok_or_else(|| Error::Delta("the table's state was not read".into()))
}

/// Read the table's state whole again, from its latest checkpoint. Kept up
/// to date commit by commit, delta-rs' state holds a batch of file actions
/// per commit and every commit's upkeep walks them all, so commits grow
/// slower with every commit (4× in 400 commits: `cargo bench --bench
/// commits`); read from a checkpoint, it is a few batches again.
pub(crate) fn reread(table: &mut DeltaTable) -> Result<()> {
    let version = table.version();
    block_on(read_whole(table, version))
}

/// The table's state read whole at `version` (the latest if `None`), from
/// the checkpoint before it; on failure the state is left as it was.
async fn read_whole(table: &mut DeltaTable, version: Option<u64>) -> Result<()> {
    let kept = table.state.take();
    table.update_incremental(version).await.map_err(|e| {
        table.state = kept;
        delta_err("reading the table's state from its checkpoint", e)
    })
}

/// Drop from `chunks` what is already stored (offsets ≤ the stored version).
pub fn skip_stored(
    chunks: Vec<PartitionChunk>,
    stored: &BTreeMap<i32, i64>,
) -> Result<Vec<PartitionChunk>> {
    let mut out = Vec::with_capacity(chunks.len());
    for mut c in chunks {
        if let Some(&done) = stored.get(&c.partition) {
            if c.last_offset <= done {
                continue;
            }
            if c.first_offset <= done {
                // Part of it is stored: keep the rows after `done`.
                c.dead_letters.retain(|d| d.message.offset > done);
                c.first_offset = done + 1;
                c.batch = filter_offsets(&c.batch, |o| o > done)?;
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// Rows of `batch` whose offset (the [`OFFSET_COLUMN`] batches carry until
/// they are written) passes `keep`; all of them without that column.
pub(crate) fn filter_offsets(
    batch: &RecordBatch,
    keep: impl Fn(i64) -> bool,
) -> Result<RecordBatch> {
    let Some(offsets) = batch
        .column_by_name(OFFSET_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
    else {
        return Ok(batch.clone());
    };
    let mask: arrow::array::BooleanArray =
        offsets.values().iter().map(|&o| Some(keep(o))).collect();
    Ok(arrow::compute::filter_record_batch(batch, &mask)?)
}

/// Name of the offset column every chunk batch carries until it is written.
pub const OFFSET_COLUMN: &str = "__kafkalake_offset";

impl DeltaSink {
    /// Add the columns of `wanted` the table lacks (see [`add_columns`]).
    fn add_columns(&mut self, wanted: &SchemaRef) -> Result<()> {
        self.schema = add_columns(&mut self.table, wanted, &self.opts.location.uri)?;
        self.reloaded();
        Ok(())
    }
}

/// Add the columns of `wanted` that `table` (at `uri`) lacks, in a commit of
/// their own (retried if another writer commits first; a no-op if it
/// already has them); the table's schema after. Existing columns keep their
/// types: additive evolution only, at the table's protocol.
pub fn add_columns(table: &mut DeltaTable, wanted: &SchemaRef, uri: &str) -> Result<SchemaRef> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
    use deltalake::kernel::{MetadataExt, StructType};
    for _ in 0..10 {
        block_on(table.update_incremental(None)).map_err(|e| delta_err("reload", e))?;
        let current = arrow_schema(table)?;
        let Some(merged) = crate::decode::merge_additive(&current, wanted) else {
            return Ok(current);
        };
        let added: Vec<String> = merged
            .fields()
            .iter()
            .filter(|f| current.field_with_name(f.name()).is_err())
            .map(|f| f.name().clone())
            .collect();
        let result = block_on(async {
            let kernel: StructType = (&merged).try_into_kernel()?;
            let snapshot = table.snapshot()?;
            let metadata = snapshot.metadata().clone().with_schema(&kernel)?;
            let fields: Vec<_> = kernel
                .fields()
                .filter(|f| added.contains(f.name()))
                .cloned()
                .collect();
            CommitBuilder::from(commit_properties())
                .with_actions(vec![Action::Metadata(metadata)])
                .build(
                    Some(snapshot),
                    table.log_store(),
                    DeltaOperation::AddColumn { fields },
                )
                .await
                .map(|_| ())
        });
        match result {
            Ok(()) => continue, // reload and confirm on the next turn
            Err(e) if is_conflict(&e) => continue,
            Err(e) => {
                return Err(delta_err(
                    &format!("adding new columns to the Delta table at '{uri}'"),
                    e,
                ))
            }
        }
    }
    Err(Error::Delta(format!(
        "could not add new columns to '{uri}' after 10 attempts (concurrent schema changes)"
    )))
}

impl DeltaSink {
    /// The offsets of `topic`'s `partition` within `lo..=hi` that rows of
    /// the table hold, from its `topic`, `partition` and `offset` columns
    /// (the dead-letter table's): which messages an earlier run made dead
    /// letters. Reads every data file's three columns (dead-letter tables
    /// are small, and this is only needed after a crash).
    pub fn offsets_in(
        &mut self,
        topic: &str,
        partition: i32,
        lo: i64,
        hi: i64,
    ) -> Result<std::collections::HashSet<i64>> {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{Int32Type, Int64Type};
        use parquet::arrow::ProjectionMask;

        block_on(self.table.update_incremental(None)).map_err(|e| delta_err("reload", e))?;
        self.reloaded();
        block_on(async {
            let mut out = std::collections::HashSet::new();
            for v in data_files(&self.table).await? {
                let path = v.path().to_string();
                let builder = read_data_file(&self.table, &path).await?;
                let mask = ProjectionMask::columns(
                    builder.parquet_schema(),
                    ["topic", "partition", "offset"],
                );
                let reader = builder
                    .with_projection(mask)
                    .build()
                    .map_err(|e| Error::Storage(format!("reading '{path}': {e}")))?;
                for b in reader {
                    let b = b?;
                    let (Some(t), Some(p), Some(o)) = (
                        b.column_by_name("topic")
                            .and_then(|c| c.as_string_opt::<i32>()),
                        b.column_by_name("partition")
                            .and_then(|c| c.as_primitive_opt::<Int32Type>()),
                        b.column_by_name("offset")
                            .and_then(|c| c.as_primitive_opt::<Int64Type>()),
                    ) else {
                        continue;
                    };
                    for i in 0..b.num_rows() {
                        let offset = o.value(i);
                        if t.is_valid(i)
                            && t.value(i) == topic
                            && p.value(i) == partition
                            && (lo..=hi).contains(&offset)
                        {
                            out.insert(offset);
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    /// Commit `chunk` without dropping what the stored offsets cover (its
    /// `last_offset` is the txn version written, so it must not be below
    /// the stored one): dead letters of messages an earlier run wrote as
    /// rows, whose data commit never landed.
    pub fn append_over(&mut self, topic: &str, chunk: PartitionChunk) -> Result<()> {
        let chunks = [chunk];
        for _attempt in 0..20 {
            self.stored_versions(topic, &[chunks[0].partition])?;
            if self.commit(topic, &chunks)?.is_some() {
                return Ok(());
            }
        }
        Err(Error::Delta(format!(
            "gave up after 20 commit conflicts on the Delta table at '{}'",
            self.opts.location.uri
        )))
    }
}

impl Sink for DeltaSink {
    fn stored_offsets(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        self.stored_versions(topic, partitions)
    }

    fn write(&mut self, topic: &str, chunks: Vec<PartitionChunk>) -> Result<WriteOutcome> {
        let mut chunks = chunks;
        self.add_missing_columns(&chunks)?;
        for attempt in 0..20 {
            let partitions: Vec<i32> = chunks.iter().map(|c| c.partition).collect();
            // After a lost commit, always from the log.
            let stored = if attempt == 0 {
                self.txn_versions(topic, &partitions)?
            } else {
                self.stored_versions(topic, &partitions)?
            };
            chunks = skip_stored(chunks, &stored)?;
            if chunks.is_empty() {
                return Ok(WriteOutcome::default());
            }
            if let Some(outcome) = self.commit(topic, &chunks)? {
                return Ok(outcome);
            }
        }
        Err(Error::Delta(format!(
            "gave up after 20 commit conflicts on the Delta table at '{}'",
            self.opts.location.uri
        )))
    }

    fn evolve_schema(&mut self, wanted: &SchemaRef) -> Result<()> {
        self.add_columns(wanted)
    }

    fn pending(&mut self) -> Option<Pending> {
        let (at, task) = self.upkeep.take()?;
        Some(Box::new(move || {
            block_on(task).map_err(|e| upkeep_stopped(at, e))??;
            Ok(())
        }))
    }

    fn describe(&self) -> String {
        format!("Delta table {}", self.opts.location.uri)
    }
}

/// Local tables for the sinks' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

    use super::{create, open, DeltaOptions, DeltaSink};
    use crate::sink::storage::Location;
    use crate::sink::PartitionChunk;

    /// A new table with one `n: int64` column in a fresh directory.
    pub fn new_table(name: &str) -> (Location, SchemaRef) {
        let dir = std::env::temp_dir().join(format!("kafkalake-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let location = Location {
            uri: dir.to_string_lossy().into_owned(),
            options: Default::default(),
        };
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        create(&location, &schema, &[]).unwrap();
        (location, schema)
    }

    /// A sink of the table at `location` (opened now, so it may go stale).
    pub fn sink(location: &Location) -> DeltaSink {
        let opts = DeltaOptions {
            location: location.clone(),
            app_name: "test".into(),
            partition_by: Vec::new(),
            table_properties: std::collections::HashMap::new(),
            target_file_size: None,
            checkpoint_interval: 0,
            compact_interval: 0,
            compact: Default::default(),
        };
        DeltaSink::new(open(location).unwrap().unwrap(), opts).unwrap()
    }

    /// Offset `offset` of partition `partition` as a one-row chunk of `batch`'s schema.
    pub fn chunk(partition: i32, offset: i64, schema: &SchemaRef) -> PartitionChunk {
        let cols = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Int64 => Arc::new(Int64Array::from(vec![offset])) as _,
                t => arrow::array::new_null_array(t, 1),
            })
            .collect();
        PartitionChunk {
            partition,
            first_offset: offset,
            last_offset: offset,
            batch: RecordBatch::try_new(schema.clone(), cols).unwrap(),
            dead_letters: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};

    use super::testing::{chunk, new_table, sink};
    use super::*;

    fn with_column(name: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new(name, DataType::Int64, true),
        ]))
    }

    #[test]
    fn a_write_racing_another_workers_new_column_is_retried() {
        let (location, schema) = new_table("evolve-race");
        let mut a = sink(&location);
        let mut b = sink(&location);
        a.evolve_schema(&with_column("extra")).unwrap();
        // b's snapshot predates the new column: its commit conflicts, and is
        // retried on the reloaded table.
        let out = b.write("t", vec![chunk(0, 0, &schema)]).unwrap();
        assert_eq!(out.rows, 1);
        assert!(b.schema().field_with_name("extra").is_ok());
        // Both add the same column: the second finds it there.
        let mut c = sink(&location);
        a.evolve_schema(&with_column("more")).unwrap();
        c.evolve_schema(&with_column("more")).unwrap();
        // And again after it landed (a retry after a lost response).
        c.evolve_schema(&with_column("more")).unwrap();
        let wide = c.schema();
        assert_eq!(wide.fields().len(), 3, "{wide:?}");
        c.write("t", vec![chunk(0, 1, &wide)]).unwrap();
        assert_eq!(
            c.stored_versions("t", &[0]).unwrap(),
            BTreeMap::from([(0, 1)])
        );
    }

    #[test]
    fn a_writer_reads_the_txn_versions_only_when_another_may_have_moved_them() {
        let (location, schema) = new_table("txn-cache");
        let mut a = sink(&location);
        a.write("t", vec![chunk(0, 0, &schema), chunk(1, 0, &schema)])
            .unwrap();
        assert_eq!(a.txn_reads, 1);
        // Its own commits carry what it knows forward.
        for o in 1..5 {
            let out = a
                .write("t", vec![chunk(0, o, &schema), chunk(1, o, &schema)])
                .unwrap();
            assert_eq!(out.rows, 2);
        }
        assert_eq!(a.txn_reads, 1);
        // A partition it has not seen is read.
        a.write("t", vec![chunk(2, 0, &schema)]).unwrap();
        assert_eq!(a.txn_reads, 2);
        // Another writer took the version a wanted, for another partition:
        // a commits after it, and learns what it stored on the way.
        let mut b = sink(&location);
        b.write("t", vec![chunk(3, 0, &schema)]).unwrap();
        a.write("t", vec![chunk(0, 5, &schema)]).unwrap();
        let again = a.write("t", vec![chunk(3, 0, &schema)]).unwrap();
        assert_eq!(again.rows, 0, "partition 3's offset 0 is stored");
        assert_eq!(a.txn_reads, 2);
        // A writer of the same partition: a's commit loses, and it reads.
        b.write("t", vec![chunk(0, 6, &schema)]).unwrap();
        let out = a
            .write("t", vec![chunk(0, 6, &schema), chunk(0, 7, &schema)])
            .unwrap();
        assert_eq!(out.rows, 1, "offset 6 was b's");
        assert_eq!(a.txn_reads, 3);
        assert_eq!(
            sink(&location).stored_versions("t", &[0, 1, 2, 3]).unwrap(),
            BTreeMap::from([(0, 7), (1, 4), (2, 0), (3, 0)])
        );
    }

    #[test]
    fn a_stale_writer_never_writes_what_another_stored_since() {
        let (location, schema) = new_table("txn-cache-stale");
        let mut old = sink(&location);
        old.write("t", vec![chunk(0, 0, &schema)]).unwrap();
        // The partition moved to another worker, which stored two more
        // offsets; the old owner, not told yet, writes them again, with a
        // partition nobody else wrote.
        let mut new = sink(&location);
        new.write("t", vec![chunk(0, 1, &schema)]).unwrap();
        new.write("t", vec![chunk(0, 2, &schema)]).unwrap();
        let out = old
            .write(
                "t",
                vec![
                    chunk(0, 1, &schema),
                    chunk(0, 2, &schema),
                    chunk(1, 0, &schema),
                ],
            )
            .unwrap();
        assert_eq!(out.rows, 1, "only partition 1's row is new");
        let table = open(&location).unwrap().unwrap();
        let rows: usize = block_on(async {
            let mut n = 0;
            for f in data_files(&table).await.unwrap() {
                let reader = read_data_file(&table, f.path().as_ref())
                    .await
                    .unwrap()
                    .build()
                    .unwrap();
                n += reader.map(|b| b.unwrap().num_rows()).sum::<usize>();
            }
            n
        });
        assert_eq!(rows, 4);
    }

    #[test]
    fn tables_asking_for_writer_features_commit_through_delta_rs() {
        let (location, schema) = new_table("writer-features");
        let _ = std::fs::remove_dir_all(&location.uri);
        let props = HashMap::from([("delta.minWriterVersion".to_string(), "4".to_string())]);
        create_with(&location, &schema, &[], &props).unwrap();
        let mut old = sink(&location);
        assert!(!old.direct);
        assert!(sink(&new_table("plain").0).direct);
        old.write("t", vec![chunk(0, 0, &schema)]).unwrap();
        // The same guarantees: a stale writer stores nothing twice.
        let mut new = sink(&location);
        new.write("t", vec![chunk(0, 1, &schema)]).unwrap();
        let out = old
            .write("t", vec![chunk(0, 1, &schema), chunk(1, 0, &schema)])
            .unwrap();
        assert_eq!(out.rows, 1);
        assert_eq!(
            sink(&location).stored_versions("t", &[0, 1]).unwrap(),
            BTreeMap::from([(0, 1), (1, 0)])
        );
    }

    #[test]
    fn the_checkpoint_being_written_is_handed_over_to_be_waited_for() {
        let (location, schema) = new_table("pending-upkeep");
        let log = std::path::Path::new(&location.uri).join("_delta_log");
        let mut s = sink(&location);
        s.opts.checkpoint_interval = 3;
        assert!(s.pending().is_none(), "nothing runs before the commits");
        for i in 1..=3 {
            s.write("t", vec![chunk(0, i, &schema)]).unwrap();
        }
        let wait = s
            .pending()
            .expect("the checkpoint of version 3 is being written");
        assert!(s.upkeep.is_none());
        // The sink answers meanwhile: no lock on it is needed for the wait.
        assert_eq!(
            s.stored_versions("t", &[0]).unwrap(),
            BTreeMap::from([(0, 3)])
        );
        wait().unwrap();
        assert!(log.join("00000000000000000003.checkpoint.parquet").exists());
        // It goes on writing with the state it had.
        s.write("t", vec![chunk(0, 4, &schema)]).unwrap();
        assert_eq!(
            sink(&location).stored_versions("t", &[0]).unwrap(),
            BTreeMap::from([(0, 4)])
        );
    }

    #[test]
    fn checkpoints_remove_the_log_files_they_make_expired() {
        let (location, schema) = new_table("log-cleanup");
        let _ = std::fs::remove_dir_all(&location.uri);
        let props = HashMap::from([(
            "delta.logRetentionDuration".to_string(),
            "interval 0 seconds".to_string(),
        )]);
        create_with(&location, &schema, &[], &props).unwrap();
        let mut s = sink(&location);
        s.opts.checkpoint_interval = 5;
        let log = std::path::Path::new(&location.uri).join("_delta_log");
        for i in 1..=4 {
            s.write("t", vec![chunk(0, i, &schema)]).unwrap();
        }
        // No checkpoint yet: commits alone remove nothing.
        assert!(log.join("00000000000000000000.json").exists());
        s.write("t", vec![chunk(0, 5, &schema)]).unwrap();
        // Written beside the commits; a sink that goes on writing takes
        // its result at the next commit, or now when asked to wait.
        s.collect_upkeep(true).unwrap();
        assert!(s.upkeep.is_none());
        assert!(log.join("00000000000000000005.checkpoint.parquet").exists());
        assert!(!log.join("00000000000000000000.json").exists());
        assert!(!log.join("00000000000000000004.json").exists());
        let reopened = sink(&location).stored_versions("t", &[0]).unwrap();
        assert_eq!(reopened, BTreeMap::from([(0, 5)]));
        // The writer's state, read again from the checkpoint, is whole.
        assert_eq!(s.read_at, 5);
        s.write("t", vec![chunk(0, 6, &schema)]).unwrap();
        // The writer's own state is the one read from the checkpoint: its
        // direct commits since need not be in it.
        let files = |t: &DeltaTable| t.snapshot().unwrap().log_data().num_files();
        assert_eq!(s.table().version(), Some(5));
        assert_eq!(files(s.table()), 5);
        assert_eq!(files(&open(&location).unwrap().unwrap()), 6);
        assert_eq!(
            s.stored_versions("t", &[0]).unwrap(),
            BTreeMap::from([(0, 6)])
        );
        assert_eq!(files(s.table()), 6);
    }

    #[test]
    fn values_are_never_changed_to_fit() {
        let (location, _) = new_table("conform");
        let mut s = sink(&location);
        let floats = Arc::new(Schema::new(vec![Field::new("n", DataType::Float64, true)]));
        let batch = RecordBatch::try_new(
            floats,
            vec![Arc::new(arrow::array::Float64Array::from(vec![2.7]))],
        )
        .unwrap();
        let c = PartitionChunk {
            partition: 0,
            first_offset: 0,
            last_offset: 0,
            batch,
            dead_letters: Vec::new(),
        };
        let e = s.write("t", vec![c]).unwrap_err().to_string();
        assert!(
            e.contains("column 'n' is Int64") && e.contains("Float64"),
            "{e}"
        );
        assert!(s.stored_versions("t", &[0]).unwrap().is_empty());
    }
}
