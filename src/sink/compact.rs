//! Compaction of small files in a Delta table: streaming ingest writes one
//! file per partition value and batch, and many small files make every read
//! slower. Small files of the same partition value are rewritten into larger
//! ones in a commit that removes the old files and adds the new ones, all
//! with `dataChange = false`, so streaming readers see no new data and the
//! rows (and the ingest's `txn` versions) are unchanged.
//!
//! The commit touches only files, so ingest commits that run at the same time
//! (which only add files) do not conflict with it. Two compactions that pick
//! the same files would: Delta's conflict check lets removes without data
//! change through, and both commits would land, every rewritten row twice.
//! So the commit is tried at exactly the next version, and when another
//! commit got there first, the files are looked up again: if any of them is
//! gone (rewritten by the other compaction), this one gives up; its new
//! files are left unreferenced (a VACUUM removes them).

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{new_null_array, ArrayRef, RecordBatch, StringArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::SchemaRef;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add, Remove};
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::DeltaTable;
use parquet::basic::Compression;

use super::delta::{arrow_schema, data_files, delta_err, is_conflict, read_data_file};
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
    match plan(table, opts).await? {
        Some(rewrite) => rewrite.commit(table).await,
        None => Ok(CompactOutcome::default()),
    }
}

/// A compaction written but not committed: new files, and the actions that
/// swap them for the small ones.
pub struct Rewrite {
    actions: Vec<Action>,
    /// Paths of the files rewritten, as the snapshot lists them.
    removed: HashSet<String>,
    op: DeltaOperation,
    outcome: CompactOutcome,
}

/// Reload `table`, pick its small files and write them again into larger
/// ones; `None` when there is nothing to compact.
pub async fn plan(table: &mut DeltaTable, opts: CompactOptions) -> Result<Option<Rewrite>> {
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
    let views = data_files(table).await?;
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
    let mut actions: Vec<Action> = Vec::new();
    // Paths of the files rewritten, as the snapshot lists them.
    let mut removed: HashSet<String> = HashSet::new();
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
                let reader = read_data_file(table, &f.path)
                    .await?
                    .build()
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
            for f in bin {
                removed.insert(f.path);
                actions.push(Action::Remove(f.remove));
            }
        }
    }
    if actions.is_empty() {
        return Ok(None);
    }
    let op = DeltaOperation::Optimize {
        predicate: None,
        target_size: opts.target_file_size as i64,
    };
    Ok(Some(Rewrite {
        actions,
        removed,
        op,
        outcome,
    }))
}

impl Rewrite {
    /// Commit it at exactly the version after the table's snapshot; after
    /// each commit that got there first, only if every file it rewrites is
    /// still in the table. What was done, or nothing if another compaction
    /// rewrote any of the same files first.
    pub async fn commit(self, table: &mut DeltaTable) -> Result<CompactOutcome> {
        let mut outcome = self.outcome;
        for _ in 0..100 {
            let snapshot = table.snapshot().map_err(|e| delta_err("snapshot", e))?;
            // No retries inside: Delta's own conflict check would let the
            // removes of another compaction's files through.
            let result = CommitBuilder::from(super::delta::commit_properties().with_max_retries(0))
                .with_actions(self.actions.clone())
                .build(Some(snapshot), table.log_store(), self.op.clone())
                .await;
            match result {
                Ok(done) => {
                    outcome.version = Some(done.version() as i64);
                    table
                        .update_incremental(None)
                        .await
                        .map_err(|e| delta_err("reload", e))?;
                    return Ok(outcome);
                }
                Err(e) if is_conflict(&e) => {
                    table
                        .update_incremental(None)
                        .await
                        .map_err(|e| delta_err("reload", e))?;
                    if !all_present(table, &self.removed).await? {
                        // Rewritten by another compaction first: nothing
                        // lost, the files written here are not referenced.
                        return Ok(CompactOutcome::default());
                    }
                }
                Err(e) => return Err(delta_err("committing the compaction", e)),
            }
        }
        Err(Error::Delta(
            "gave up committing a compaction after 100 concurrent commits got there first".into(),
        ))
    }
}

/// Whether every file of `paths` is in the table's current snapshot.
async fn all_present(table: &DeltaTable, paths: &HashSet<String>) -> Result<bool> {
    let present = data_files(table)
        .await?
        .iter()
        .filter(|v| paths.contains(&v.path().to_string()))
        .count();
    Ok(present == paths.len())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::runtime::block_on;
    use crate::sink::delta;
    use crate::sink::delta::testing::{chunk, new_table, sink};
    use crate::sink::storage::Location;
    use crate::sink::Sink;

    /// A table of `files` small files, one row each, in a fresh directory.
    fn small_files(name: &str, files: i64) -> Location {
        let (location, schema) = new_table(name);
        let mut s = sink(&location);
        for i in 0..files {
            s.write("t", vec![chunk(0, i, &schema)]).unwrap();
        }
        location
    }

    fn rows(location: &Location) -> i64 {
        let table = delta::open(location).unwrap().unwrap();
        block_on(delta::data_files(&table))
            .unwrap()
            .iter()
            .map(|v| v.num_records().unwrap_or_default() as i64)
            .sum()
    }

    #[test]
    fn two_compactions_of_the_same_files_rewrite_them_once() {
        let location = small_files("compact-race", 10);
        assert_eq!(rows(&location), 10);
        let opts = CompactOptions {
            target_file_size: 1 << 20,
            min_files: 2,
        };
        // Two compactions planned on the same snapshot, as two workers (or a
        // worker and `compact()`) would.
        let mut a = delta::open(&location).unwrap().unwrap();
        let mut b = delta::open(&location).unwrap().unwrap();
        let plan_a = block_on(plan(&mut a, opts)).unwrap().unwrap();
        let plan_b = block_on(plan(&mut b, opts)).unwrap().unwrap();
        let done_a = block_on(plan_a.commit(&mut a)).unwrap();
        assert_eq!(done_a.files_removed, 10);
        assert!(done_a.version.is_some());
        let done_b = block_on(plan_b.commit(&mut b)).unwrap();
        assert_eq!(done_b, CompactOutcome::default(), "the second one gives up");
        assert_eq!(rows(&location), 10, "every row once");
    }

    #[test]
    fn a_compaction_goes_on_after_an_unrelated_commit() {
        let location = small_files("compact-append", 6);
        let opts = CompactOptions {
            target_file_size: 1 << 20,
            min_files: 2,
        };
        let mut a = delta::open(&location).unwrap().unwrap();
        let planned = block_on(plan(&mut a, opts)).unwrap().unwrap();
        // An ingest appends meanwhile: the compaction's files are all still
        // there, so it commits after it.
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        sink(&location)
            .write("t", vec![chunk(0, 6, &schema)])
            .unwrap();
        let done = block_on(planned.commit(&mut a)).unwrap();
        assert_eq!(done.files_removed, 6);
        assert_eq!(rows(&location), 7);
    }
}
