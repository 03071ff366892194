//! Compaction of small files in a Delta table: streaming ingest writes one
//! file per partition value and batch, and many small files make every read
//! slower. Small files of the same partition value are rewritten into larger
//! ones in a commit that removes the old files and adds the new ones, all
//! with `dataChange = false`, so streaming readers see no new data and the
//! rows (and the ingest's `txn` versions) are unchanged.
//!
//! The commit touches only files, so ingest commits that run at the same time
//! (which only add files) do not conflict with it; if two compactions pick
//! the same files, the later one loses the conflict and is skipped.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{new_null_array, ArrayRef, RecordBatch, StringArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::SchemaRef;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::DeltaTable;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

use super::delta::{arrow_schema, delta_err, is_conflict};
use crate::error::{Error, Result};

/// Which files to compact.
#[derive(Clone, Copy, Debug)]
pub struct CompactOptions {
    /// Files under this size are small.
    pub target_file_size: u64,
    /// Compact a partition value only when it has at least this many small files.
    pub min_files: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_file_size: 128 * 1024 * 1024,
            min_files: 8,
        }
    }
}

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactOutcome {
    /// Files removed (rewritten).
    pub files_removed: u64,
    /// Files added.
    pub files_added: u64,
    /// Rows rewritten.
    pub rows: u64,
    /// The new table version, if anything was committed.
    pub version: Option<i64>,
}

struct SmallFile {
    path: String,
    size: i64,
    remove: Remove,
}

/// Rewrite the small files of `table` (reloaded first); returns what was done.
pub async fn compact(table: &mut DeltaTable, opts: CompactOptions) -> Result<CompactOutcome> {
    if opts.min_files < 2 {
        return Err(Error::InvalidArgument(
            "compaction needs min_files of at least 2".into(),
        ));
    }
    table
        .update_incremental(None)
        .await
        .map_err(|e| delta_err("reload", e))?;
    let snapshot = table.snapshot().map_err(|e| delta_err("snapshot", e))?;
    let partition_columns = snapshot.metadata().partition_columns().to_vec();
    let log_store = table.log_store();
    let views: Vec<_> = snapshot
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .try_collect()
        .await
        .map_err(|e| delta_err("listing the table's files", e))?;
    // Small files, grouped by partition value.
    let mut groups: BTreeMap<Vec<(String, Option<String>)>, Vec<SmallFile>> = BTreeMap::new();
    for v in &views {
        if v.size() as u64 >= opts.target_file_size / 2 || v.deletion_vector_descriptor().is_some()
        {
            continue;
        }
        let mut key: Vec<(String, Option<String>)> = v.partition_values_map().into_iter().collect();
        key.sort();
        groups.entry(key).or_default().push(SmallFile {
            path: v.path().to_string(),
            size: v.size(),
            remove: v.remove_action(false),
        });
    }
    let schema = arrow_schema(table)?;
    let store = table.object_store();
    let mut actions: Vec<Action> = Vec::new();
    let mut outcome = CompactOutcome::default();
    for (values, mut files) in groups {
        if files.len() < opts.min_files {
            continue;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        // Bins of up to the target size, each becoming one file.
        let mut bins: Vec<Vec<SmallFile>> = vec![Vec::new()];
        let mut bin_size = 0u64;
        for f in files {
            if bin_size + f.size as u64 > opts.target_file_size && !bins.last().unwrap().is_empty()
            {
                bins.push(Vec::new());
                bin_size = 0;
            }
            bin_size += f.size as u64;
            bins.last_mut().expect("one bin at least").push(f);
        }
        let values: HashMap<String, Option<String>> = values.into_iter().collect();
        for bin in bins.into_iter().filter(|b| b.len() >= 2) {
            let mut batches = Vec::new();
            for f in &bin {
                let bytes = store
                    .get(&Path::from(f.path.as_str()))
                    .await
                    .map_err(|e| Error::Storage(format!("reading '{}': {e}", f.path)))?
                    .bytes()
                    .await
                    .map_err(|e| Error::Storage(format!("reading '{}': {e}", f.path)))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .and_then(|b| b.build())
                    .map_err(|e| Error::Storage(format!("reading '{}': {e}", f.path)))?;
                for b in reader {
                    let b = b?;
                    batches.push(with_table_columns(
                        &b,
                        &schema,
                        &partition_columns,
                        &values,
                    )?);
                }
            }
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let mut writer = RecordBatchWriter::for_table(table)
                .map_err(|e| delta_err("compaction writer", e))?
                .with_writer_properties(super::writer_properties(
                    &schema,
                    Compression::SNAPPY,
                    &batches,
                ));
            if !batches.is_empty() {
                writer
                    .write(concat_batches(&schema, &batches)?)
                    .await
                    .map_err(|e| delta_err("rewriting small files", e))?;
            }
            let adds: Vec<Add> = writer
                .flush()
                .await
                .map_err(|e| delta_err("rewriting small files", e))?;
            outcome.files_added += adds.len() as u64;
            outcome.files_removed += bin.len() as u64;
            outcome.rows += rows as u64;
            actions.extend(adds.into_iter().map(|mut a| {
                a.data_change = false;
                Action::Add(a)
            }));
            actions.extend(bin.into_iter().map(|f| Action::Remove(f.remove)));
        }
    }
    if actions.is_empty() {
        return Ok(outcome);
    }
    let op = DeltaOperation::Optimize {
        predicate: None,
        target_size: opts.target_file_size as i64,
    };
    let snapshot = table.snapshot().map_err(|e| delta_err("snapshot", e))?;
    let result = CommitBuilder::from(CommitProperties::default().with_create_checkpoint(false))
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), op)
        .await;
    match result {
        Ok(done) => {
            outcome.version = Some(done.version() as i64);
            table
                .update_incremental(None)
                .await
                .map_err(|e| delta_err("reload", e))?;
            Ok(outcome)
        }
        // Another compaction took some of these files first: nothing lost,
        // the files written here are simply not referenced.
        Err(e) if is_conflict(&e) => Ok(CompactOutcome::default()),
        Err(e) => Err(delta_err("committing the compaction", e)),
    }
}

/// `batch` (a data file's rows, without partition columns) in the table's
/// column order, with the partition columns filled from `values`.
fn with_table_columns(
    batch: &RecordBatch,
    schema: &SchemaRef,
    partition_columns: &[String],
    values: &HashMap<String, Option<String>>,
) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let col = if partition_columns.contains(f.name()) {
            match values.get(f.name()).cloned().flatten() {
                Some(v) => cast(&StringArray::from(vec![v; n]), f.data_type())?,
                None => new_null_array(f.data_type(), n),
            }
        } else {
            match batch.column_by_name(f.name()) {
                Some(c) if c.data_type() == f.data_type() => c.clone(),
                Some(c) => cast(c, f.data_type())?,
                None => new_null_array(f.data_type(), n),
            }
        };
        cols.push(col);
    }
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}
