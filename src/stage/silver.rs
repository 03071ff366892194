//! Silver: SQL over the new rows (`sql`, `where`), then dedupe by key within
//! an event-time horizon, then expectations.
//!
//! Dedupe drops a row whose key is already in the target, or earlier in the
//! run, with an event time at most `within` away. It reads only the target
//! rows whose time lies within `within` of the new rows' times (a filter the
//! table's file statistics prune), and only their key and time columns.
//! Without a time, it reads the key columns of the whole target.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, SortField};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::prelude::{ident, Expr, SessionContext};
use deltalake::DeltaTable;

use super::prune::may_hold;
use super::{collect, expect, Output, StageOptions};
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// A silver stage's transform.
#[derive(Debug, Clone, Default)]
pub struct Silver {
    /// SQL over the new rows, as the table `source` (default `SELECT * FROM source`).
    pub sql: Option<String>,
    /// A SQL boolean expression rows must meet.
    pub filter: Option<String>,
    /// Drop rows whose key was seen within a time horizon.
    pub dedupe: Option<Dedupe>,
}

/// Dedupe by key.
#[derive(Debug, Clone)]
pub struct Dedupe {
    /// Key columns (empty: every column of the output, `distinct`).
    pub key: Vec<String>,
    /// Event-time column, with the horizon in microseconds.
    pub time: Option<(String, i64)>,
}

impl Silver {
    pub(super) fn validate(&self) -> std::result::Result<(), String> {
        if let Some(sql) = &self.sql {
            if sql.trim().is_empty() {
                return Err("sql is empty".into());
            }
        }
        if let Some(d) = &self.dedupe {
            if let Some((time, within)) = &d.time {
                if *within <= 0 {
                    return Err(format!("dedupe: within must be positive for time '{time}'"));
                }
            }
        }
        Ok(())
    }
}

pub(super) fn run(
    opts: &StageOptions,
    s: &Silver,
    ctx: &SessionContext,
    source_schema: SchemaRef,
    rows: Vec<RecordBatch>,
    target: Option<&DeltaTable>,
) -> Result<Output> {
    let stage = &opts.name;
    let schema = rows.first().map(|b| b.schema()).unwrap_or(source_schema);
    let table = MemTable::try_new(schema, vec![rows])
        .map_err(|e| Error::Table(format!("stage '{stage}': {e}")))?;
    ctx.register_table("source", Arc::new(table))
        .map_err(|e| Error::Table(format!("stage '{stage}': {e}")))?;
    let base = s
        .sql
        .clone()
        .unwrap_or_else(|| "SELECT * FROM source".into());
    let sql = match &s.filter {
        Some(w) => format!("SELECT * FROM ({base}) AS s WHERE {w}"),
        None => base,
    };
    let what = format!("stage '{stage}': running its SQL ({sql})");
    let df = block_on(ctx.sql(&sql)).map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))?;
    let out_schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = collect(df, &what)?;
    let mut rows = concat_batches(&out_schema, &batches)?;
    let mut deduplicated = 0;
    let mut target_rows_read = 0;
    if let Some(d) = &s.dedupe {
        let before = rows.num_rows();
        (rows, target_rows_read) = dedupe(stage, d, ctx, &rows, target)?;
        deduplicated = (before - rows.num_rows()) as u64;
    }
    let checked = expect::apply(stage, &opts.expectations, &out_schema, vec![rows])?;
    let kept = concat_batches(&out_schema, &checked.kept)?;
    Ok(Output {
        schema: out_schema,
        rows: vec![kept],
        removes: Vec::new(),
        deduplicated,
        target_rows_read,
        failed: checked.failed,
        quarantine: checked.quarantine,
        late: Vec::new(),
        max_event_time: None,
    })
}

/// `column` as microseconds since the epoch (timestamps and dates).
pub(crate) fn micros(stage: &str, name: &str, column: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let as_us = match column.data_type() {
        DataType::Timestamp(_, tz) => cast(
            column,
            &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        )?,
        DataType::Date32 | DataType::Date64 => {
            cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "stage '{stage}': the time column '{name}' is {other}, not a timestamp or date"
            )))
        }
    };
    let ints = cast(&as_us, &DataType::Int64)?;
    Ok(ints.as_primitive::<Int64Type>().iter().collect())
}

/// Rows of `rows` (sorted by time) whose key was not seen within the
/// horizon, and the number of target rows read to know that.
fn dedupe(
    stage: &str,
    d: &Dedupe,
    ctx: &SessionContext,
    rows: &RecordBatch,
    target: Option<&DeltaTable>,
) -> Result<(RecordBatch, u64)> {
    let schema = rows.schema();
    let key: Vec<String> = if d.key.is_empty() {
        schema.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        d.key.clone()
    };
    let column = |name: &str| {
        rows.column_by_name(name).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "stage '{stage}': dedupe column '{name}' is not in the output ({})",
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    };
    let key_columns: Vec<ArrayRef> = key.iter().map(|k| column(k)).collect::<Result<_>>()?;
    let converter = RowConverter::new(
        key_columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?;
    let new_keys = converter.convert_columns(&key_columns)?;
    let times: Option<Vec<Option<i64>>> = match &d.time {
        Some((t, _)) => Some(micros(stage, t, &column(t)?)?),
        None => None,
    };
    let within = d.time.as_ref().map(|(_, w)| *w).unwrap_or(0);

    // Keys already in the target, with their times, from the files whose
    // statistics reach the horizon around the new rows' times (all files
    // without a time, or when a new row has none: nulls match nulls).
    let mut seen: HashMap<Box<[u8]>, Vec<Option<i64>>> = HashMap::new();
    let mut read = 0;
    if let Some(table) = target.filter(|_| rows.num_rows() > 0) {
        let horizon = match (&d.time, &times) {
            (Some((t, _)), Some(ts)) if ts.iter().all(Option::is_some) => {
                let lo = ts.iter().flatten().min().copied().unwrap_or(0);
                let hi = ts.iter().flatten().max().copied().unwrap_or(0);
                Some((t, lo.saturating_sub(within), hi.saturating_add(within)))
            }
            _ => None,
        };
        let paths: Vec<String> = block_on(crate::sink::delta::data_files(table))?
            .into_iter()
            .filter(|f| horizon.is_none_or(|(t, lo, hi)| may_hold(f.stats().as_deref(), t, lo, hi)))
            .map(|f| f.path().to_string())
            .collect();
        let what = format!("stage '{stage}': reading the target's keys");
        let batches = if paths.is_empty() {
            Vec::new()
        } else {
            let provider = block_on(table.table_provider().with_file_paths(paths).build())
                .map_err(|e| Error::Delta(format!("stage '{stage}': reading the target: {e}")))?;
            let planning = |e: DataFusionError| Error::InvalidArgument(format!("{what}: {e}"));
            let mut select: Vec<Expr> = key.iter().map(ident).collect();
            if let Some((t, _)) = &d.time {
                select.push(ident(t));
            }
            let df = ctx
                .read_table(Arc::new(provider))
                .and_then(|df| df.select(select))
                .map_err(planning)?;
            collect(df, &what)?
        };
        for b in batches {
            read += b.num_rows() as u64;
            let cols: Vec<ArrayRef> = (0..key.len())
                .map(|i| cast(b.column(i), key_columns[i].data_type()))
                .collect::<std::result::Result<_, _>>()?;
            let ks = converter.convert_columns(&cols)?;
            let ts = match &d.time {
                Some((t, _)) => micros(stage, t, b.column(key.len()))?,
                None => vec![None; b.num_rows()],
            };
            for (i, k) in ks.iter().enumerate() {
                // Rows of a read file outside the horizon cannot match.
                if let (Some((_, lo, hi)), Some(t)) = (horizon, ts[i]) {
                    if !(lo..=hi).contains(&t) {
                        continue;
                    }
                }
                seen.entry(k.as_ref().into()).or_default().push(ts[i]);
            }
        }
    }

    // New rows in time order; each is checked against the target and the
    // rows kept before it.
    let mut order: Vec<u32> = (0..rows.num_rows() as u32).collect();
    if let Some(times) = &times {
        order.sort_by_key(|&i| (times[i as usize].unwrap_or(i64::MIN), i));
    }
    let near = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => a.abs_diff(b) <= within as u64,
        (None, None) => true,
        _ => d.time.is_none(),
    };
    let mut keep: Vec<u32> = Vec::with_capacity(order.len());
    for i in order {
        let k = new_keys.row(i as usize);
        let t = times.as_ref().and_then(|ts| ts[i as usize]);
        let prior = seen.entry(k.as_ref().into()).or_default();
        if prior.iter().any(|p| near(*p, t)) {
            continue;
        }
        prior.push(t);
        keep.push(i);
    }
    Ok((take_record_batch(rows, &UInt32Array::from(keep))?, read))
}
