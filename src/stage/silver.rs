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

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast, concat_batches, interleave_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, Rows, SortField};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::prelude::{ident, Expr, SessionContext};
use deltalake::datafusion::scalar::ScalarValue;
use deltalake::DeltaTable;

use super::prune::{may_hold, time_filter};
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
    // Without SQL or a filter the new rows are the output as they are: no
    // query, no copy.
    let (out_schema, batches) = if s.sql.is_none() && s.filter.is_none() {
        (schema, rows)
    } else {
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
        let df =
            block_on(ctx.sql(&sql)).map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))?;
        let out_schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        (out_schema, collect(df, &what)?)
    };
    let mut deduplicated = 0;
    let mut target_rows_read = 0;
    let mut rows = batches;
    if let Some(d) = &s.dedupe {
        let before: usize = rows.iter().map(RecordBatch::num_rows).sum();
        let (kept, read) = dedupe(stage, d, ctx, &out_schema, &rows, target)?;
        deduplicated = (before - kept.num_rows()) as u64;
        target_rows_read = read;
        rows = vec![kept];
    }
    let checked = expect::apply(stage, &opts.expectations, &out_schema, rows)?;
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

/// The event times a key was seen at: almost always one.
enum Times {
    One(Option<i64>),
    Many(Vec<Option<i64>>),
}

impl Times {
    fn any(&self, f: impl Fn(Option<i64>) -> bool) -> bool {
        match self {
            Times::One(t) => f(*t),
            Times::Many(ts) => ts.iter().any(|t| f(*t)),
        }
    }

    fn push(&mut self, t: Option<i64>) {
        match self {
            Times::One(first) => *self = Times::Many(vec![*first, t]),
            Times::Many(ts) => ts.push(t),
        }
    }
}

/// Keys (in arrow's row format, borrowed from the converted rows) and the
/// times they were seen at.
type Seen<'a> = HashMap<&'a [u8], Times, foldhash::fast::RandomState>;

fn remember<'a>(seen: &mut Seen<'a>, key: &'a [u8], t: Option<i64>) {
    match seen.get_mut(key) {
        Some(times) => times.push(t),
        None => {
            seen.insert(key, Times::One(t));
        }
    }
}

/// The rows of `batches` whose key was not seen within the horizon, in time
/// order as one batch, and the number of target rows read to know that.
fn dedupe(
    stage: &str,
    d: &Dedupe,
    ctx: &SessionContext,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    target: Option<&DeltaTable>,
) -> Result<(RecordBatch, u64)> {
    let key: Vec<String> = if d.key.is_empty() {
        schema.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        d.key.clone()
    };
    let index = |name: &str| {
        schema.index_of(name).map_err(|_| {
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
    let key_index: Vec<usize> = key.iter().map(|k| index(k)).collect::<Result<_>>()?;
    let time_index = d.time.as_ref().map(|(t, _)| index(t)).transpose()?;
    let key_types: Vec<DataType> = key_index
        .iter()
        .map(|&i| schema.field(i).data_type().clone())
        .collect();
    let converter = RowConverter::new(key_types.iter().cloned().map(SortField::new).collect())?;
    let new_keys: Vec<Rows> = batches
        .iter()
        .map(|b| {
            let cols: Vec<ArrayRef> = key_index.iter().map(|&i| b.column(i).clone()).collect();
            converter.convert_columns(&cols)
        })
        .collect::<std::result::Result<_, _>>()?;
    let times: Option<Vec<Vec<Option<i64>>>> = match (&d.time, time_index) {
        (Some((t, _)), Some(i)) => Some(
            batches
                .iter()
                .map(|b| micros(stage, t, b.column(i)))
                .collect::<Result<_>>()?,
        ),
        _ => None,
    };
    let within = d.time.as_ref().map(|(_, w)| *w).unwrap_or(0);
    let new_rows: usize = batches.iter().map(RecordBatch::num_rows).sum();

    // Keys already in the target, with their times, from the files whose
    // statistics reach the horizon around the new rows' times (all files
    // without a time, or when a new row has none: nulls match nulls).
    let mut target_keys: Vec<(Rows, Vec<Option<i64>>)> = Vec::new();
    let mut read = 0;
    let mut horizon = None;
    if let Some(table) = target.filter(|_| new_rows > 0) {
        horizon = match (&d.time, &times) {
            (Some((t, _)), Some(ts)) if ts.iter().flatten().all(Option::is_some) => {
                let all = || ts.iter().flatten().flatten();
                let lo = all().min().copied().unwrap_or(0);
                let hi = all().max().copied().unwrap_or(0);
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
        let found = if paths.is_empty() {
            Vec::new()
        } else {
            let provider = block_on(table.table_provider().with_file_paths(paths).build())
                .map_err(|e| Error::Delta(format!("stage '{stage}': reading the target: {e}")))?;
            let planning = |e: DataFusionError| Error::InvalidArgument(format!("{what}: {e}"));
            let target_schema = crate::sink::delta::arrow_schema(table)?;
            // A column the source gained since the target was written is
            // null in the target's rows (as any Delta reader shows them).
            let column = |name: &String, data_type: &DataType| -> Result<Expr> {
                if target_schema.field_with_name(name).is_ok() {
                    return Ok(ident(name));
                }
                let null = ScalarValue::try_from(data_type)
                    .map_err(|e| Error::InvalidArgument(format!("{what}: column '{name}': {e}")))?;
                Ok(Expr::Literal(null, None).alias(name))
            };
            let mut select: Vec<Expr> = key
                .iter()
                .zip(&key_types)
                .map(|(k, t)| column(k, t))
                .collect::<Result<_>>()?;
            if let Some((t, _)) = &d.time {
                let i = time_index.expect("set with the dedupe time");
                select.push(column(t, schema.field(i).data_type())?);
            }
            // Only the rows within the horizon: the scan skips row groups
            // outside it by their statistics.
            let within_horizon = horizon.and_then(|(t, lo, hi)| {
                time_filter(
                    t,
                    target_schema.field_with_name(t).ok()?.data_type(),
                    lo,
                    hi,
                )
            });
            let mut df = ctx.read_table(Arc::new(provider)).map_err(planning)?;
            if let Some(f) = within_horizon {
                df = df.filter(f).map_err(planning)?;
            }
            let df = df.select(select).map_err(planning)?;
            collect(df, &what)?
        };
        for b in found {
            read += b.num_rows() as u64;
            let cols: Vec<ArrayRef> = (0..key.len())
                .map(|i| cast(b.column(i), &key_types[i]))
                .collect::<std::result::Result<_, _>>()?;
            let ts = match &d.time {
                Some((t, _)) => micros(stage, t, b.column(key.len()))?,
                None => vec![None; b.num_rows()],
            };
            target_keys.push((converter.convert_columns(&cols)?, ts));
        }
    }
    let mut seen: Seen<'_> = HashMap::with_capacity_and_hasher(
        new_rows + read as usize,
        foldhash::fast::RandomState::default(),
    );
    for (ks, ts) in &target_keys {
        for (i, k) in ks.iter().enumerate() {
            // Rows of a read file outside the horizon cannot match.
            if let (Some((_, lo, hi)), Some(t)) = (horizon, ts[i]) {
                if !(lo..=hi).contains(&t) {
                    continue;
                }
            }
            remember(&mut seen, k.data(), ts[i]);
        }
    }

    // New rows in time order; each is checked against the target and the
    // rows kept before it.
    let mut order: Vec<(u32, u32)> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| (0..batch.num_rows() as u32).map(move |i| (b as u32, i)))
        .collect();
    if let Some(times) = &times {
        order.sort_by_key(|&(b, i)| (times[b as usize][i as usize].unwrap_or(i64::MIN), b, i));
    }
    let near = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => a.abs_diff(b) <= within as u64,
        (None, None) => true,
        _ => d.time.is_none(),
    };
    let mut keep: Vec<(usize, usize)> = Vec::with_capacity(order.len());
    for (b, i) in order {
        let k = new_keys[b as usize].row(i as usize).data();
        let t = times.as_ref().and_then(|ts| ts[b as usize][i as usize]);
        match seen.get_mut(k) {
            Some(prior) if prior.any(|p| near(p, t)) => continue,
            Some(prior) => prior.push(t),
            None => {
                seen.insert(k, Times::One(t));
            }
        }
        keep.push((b as usize, i as usize));
    }
    let kept = if batches.is_empty() {
        RecordBatch::new_empty(schema.clone())
    } else {
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        interleave_record_batch(&refs, &keep)?
    };
    Ok((kept, read))
}
