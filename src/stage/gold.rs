//! Gold: aggregates per group and, optionally, per event-time tumbling
//! window, kept up to date incrementally.
//!
//! Each run aggregates only the new rows, then merges those partial results
//! with the target's rows for the same windows and groups: the target files
//! that can hold them (for windows, by the files' `window_start` statistics;
//! without windows, all of them: one row per group) are read, merged with
//! the new partials and replaced in the same commit. `count`, `sum`, `min`
//! and `max` merge as themselves; `avg(x)` keeps its state in two more
//! columns, `_<name>_sum` and `_<name>_count`.
//!
//! Windows: the watermark is the latest event time seen before the run
//! minus `watermark`. A new row whose window ended at or before it is late:
//! counted (and kept in `<target>_late` if asked), never folded into a
//! window that was already final. Windows closed by the new watermark are
//! written to files of their own, which later runs never need to read again.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::Remove;
use deltalake::DeltaTable;

use super::prune::may_hold;
use super::silver::micros;
use super::{collect, event_time_app_id, expect, quote, txn_version, Output, StageOptions};
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// Name of a windowed gold table's window start column.
pub const WINDOW_START: &str = "window_start";
/// Name of a windowed gold table's window end column.
pub const WINDOW_END: &str = "window_end";
/// Column of the gold input saying a row is within the watermark.
const ON_TIME: &str = "__kafkalake_on_time";

/// A gold stage's transform.
#[derive(Debug, Clone, Default)]
pub struct Gold {
    /// Event-time tumbling windows (none: one row per group).
    pub window: Option<Window>,
    /// Grouping columns.
    pub group_by: Vec<String>,
    /// Output columns: name and aggregate.
    pub aggregates: Vec<Aggregate>,
}

/// Tumbling windows on an event-time column.
#[derive(Debug, Clone)]
pub struct Window {
    /// The event-time column.
    pub time: String,
    /// Window length, microseconds.
    pub size_us: i64,
    /// How late a row may be behind the latest event time seen, microseconds.
    pub watermark_us: i64,
    /// Keep late rows in `<target>_late`.
    pub keep_late: bool,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `count(*)` or `count(x)`.
    Count,
    /// `sum(x)`.
    Sum,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
    /// `avg(x)`.
    Avg,
}

/// One output column of a gold stage: `name = "function(argument)"`.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// Output column.
    pub name: String,
    /// The function.
    pub function: Function,
    /// Its argument, a SQL expression (`None`: `*`).
    pub argument: Option<String>,
}

impl Aggregate {
    /// Parse `count(*)`, `sum(value)`, `avg(price * quantity)`, ….
    pub fn parse(name: &str, expr: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "aggregate '{name}' = {expr:?}: write one of count(*), count(x), sum(x), \
                 min(x), max(x), avg(x) (x a column or SQL expression over the source's columns)"
            ))
        };
        let e = expr.trim();
        let open = e.find('(').ok_or_else(bad)?;
        if !e.ends_with(')') {
            return Err(bad());
        }
        let function = match e[..open].trim().to_ascii_lowercase().as_str() {
            "count" => Function::Count,
            "sum" => Function::Sum,
            "min" => Function::Min,
            "max" => Function::Max,
            "avg" | "mean" => Function::Avg,
            _ => return Err(bad()),
        };
        let arg = e[open + 1..e.len() - 1].trim();
        if arg.is_empty() || arg.to_ascii_lowercase().starts_with("distinct ") {
            return Err(bad());
        }
        let argument = if arg == "*" {
            if function != Function::Count {
                return Err(bad());
            }
            None
        } else {
            Some(arg.to_string())
        };
        Ok(Aggregate {
            name: name.to_string(),
            function,
            argument,
        })
    }

    fn arg(&self) -> String {
        self.argument.clone().unwrap_or_else(|| "*".into())
    }

    /// State columns: (name, SQL over new rows, SQL merging states).
    fn states(&self) -> Vec<(String, String, String)> {
        let n = &self.name;
        let a = self.arg();
        match self.function {
            Function::Count => vec![(
                n.clone(),
                format!("count({a})"),
                format!("sum({})", quote(n)),
            )],
            Function::Sum => vec![(n.clone(), format!("sum({a})"), format!("sum({})", quote(n)))],
            Function::Min => vec![(n.clone(), format!("min({a})"), format!("min({})", quote(n)))],
            Function::Max => vec![(n.clone(), format!("max({a})"), format!("max({})", quote(n)))],
            Function::Avg => {
                let (s, c) = (format!("_{n}_sum"), format!("_{n}_count"));
                vec![
                    (
                        s.clone(),
                        format!("sum(CAST({a} AS DOUBLE))"),
                        format!("sum({})", quote(&s)),
                    ),
                    (
                        c.clone(),
                        format!("count({a})"),
                        format!("sum({})", quote(&c)),
                    ),
                ]
            }
        }
    }
}

impl Gold {
    pub(super) fn validate(&self) -> std::result::Result<(), String> {
        if self.aggregates.is_empty() {
            return Err("a gold stage needs at least one aggregate".into());
        }
        if let Some(w) = &self.window {
            if w.size_us <= 0 {
                return Err("window size must be positive".into());
            }
            if w.watermark_us < 0 {
                return Err("window watermark must not be negative".into());
            }
            for reserved in [WINDOW_START, WINDOW_END] {
                if self.group_by.iter().any(|g| g == reserved) {
                    return Err(format!(
                        "'{reserved}' is the window's column; do not group by it"
                    ));
                }
            }
        }
        let mut names: std::collections::HashSet<String> = self.keys().into_iter().collect();
        for a in &self.aggregates {
            for (state, _, _) in a.states() {
                if !names.insert(state.clone()) {
                    return Err(format!("output column '{state}' is named twice"));
                }
            }
        }
        Ok(())
    }

    /// Key columns of the output: the window's, then the groups.
    fn keys(&self) -> Vec<String> {
        let mut k = Vec::new();
        if self.window.is_some() {
            k.push(WINDOW_START.to_string());
            k.push(WINDOW_END.to_string());
        }
        k.extend(self.group_by.iter().cloned());
        k
    }
}

fn register(
    ctx: &SessionContext,
    stage: &str,
    name: &str,
    schema: SchemaRef,
    rows: Vec<RecordBatch>,
) -> Result<()> {
    let _ = ctx.deregister_table(name);
    let table = MemTable::try_new(schema, vec![rows])
        .map_err(|e| Error::Table(format!("stage '{stage}': {e}")))?;
    ctx.register_table(name, Arc::new(table))
        .map_err(|e| Error::Table(format!("stage '{stage}': {e}")))?;
    Ok(())
}

fn query(
    ctx: &SessionContext,
    stage: &str,
    sql: &str,
    what: &str,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let what = format!("stage '{stage}': {what} ({sql})");
    let df = block_on(ctx.sql(sql)).map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    Ok((schema, collect(df, &what)?))
}

pub(super) fn run(
    opts: &StageOptions,
    g: &Gold,
    ctx: &SessionContext,
    source_schema: SchemaRef,
    rows: Vec<RecordBatch>,
    target: Option<&DeltaTable>,
) -> Result<Output> {
    let stage = &opts.name;
    let schema = rows.first().map(|b| b.schema()).unwrap_or(source_schema);
    let mut late = Vec::new();
    let mut max_event_time = None;
    let mut closed_before = None;
    // Batch by batch, without copying the columns: the window of each row
    // and whether it is on time become columns of their own, and the query
    // reads only the columns it needs.
    let (input_schema, inputs, on_time_only) = match &g.window {
        None => (schema, rows, String::new()),
        Some(w) => {
            let prior = match target {
                Some(t) => txn_version(t, &event_time_app_id(stage, &opts.source))?,
                None => None,
            };
            let watermark = prior.map(|m| m.saturating_sub(w.watermark_us));
            let time_index = schema.index_of(&w.time).map_err(|_| {
                Error::InvalidArgument(format!(
                    "stage '{stage}': the window's time column '{}' is not in the source",
                    w.time
                ))
            })?;
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
            fields.push(Field::new(WINDOW_START, ts.clone(), true));
            fields.push(Field::new(WINDOW_END, ts, true));
            fields.push(Field::new(ON_TIME, DataType::Boolean, false));
            let with_windows = Arc::new(Schema::new(fields));
            let start = |t: i64| t.div_euclid(w.size_us) * w.size_us;
            let mut inputs = Vec::with_capacity(rows.len());
            let mut newest = prior;
            for b in rows {
                let times = micros(stage, &w.time, b.column(time_index))?;
                let starts: TimestampMicrosecondArray =
                    times.iter().map(|t| t.map(start)).collect();
                let ends: TimestampMicrosecondArray = times
                    .iter()
                    .map(|t| t.map(|t| start(t).saturating_add(w.size_us)))
                    .collect();
                // Late: in a window the watermark closed, or with no event time.
                let is_late: BooleanArray = ends
                    .iter()
                    .map(|e| Some(e.is_none_or(|e| watermark.is_some_and(|wm| e <= wm))))
                    .collect();
                if is_late.true_count() > 0 {
                    late.push(filter_record_batch(&b, &is_late)?);
                }
                newest = times.iter().flatten().copied().chain(newest).max();
                let mut cols: Vec<ArrayRef> = b.columns().to_vec();
                cols.push(Arc::new(starts.with_timezone("UTC")));
                cols.push(Arc::new(ends.with_timezone("UTC")));
                cols.push(Arc::new(arrow::compute::not(&is_late)?));
                inputs.push(RecordBatch::try_new(with_windows.clone(), cols)?);
            }
            max_event_time = newest;
            closed_before = max_event_time.map(|m| m.saturating_sub(w.watermark_us));
            (with_windows, inputs, format!(" WHERE {}", quote(ON_TIME)))
        }
    };

    // Partial aggregates of the new rows, in the target's state columns.
    register(ctx, stage, "gold_input", input_schema, inputs)?;
    let keys = g.keys();
    let key_list = keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let states: Vec<(String, String, String)> =
        g.aggregates.iter().flat_map(|a| a.states()).collect();
    let partial_cols: Vec<String> = states
        .iter()
        .map(|(name, new, _)| format!("{new} AS {}", quote(name)))
        .collect();
    let group = if keys.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {key_list}")
    };
    let select_keys = if keys.is_empty() {
        String::new()
    } else {
        format!("{key_list}, ")
    };
    let (partial_schema, partials) = query(
        ctx,
        stage,
        &format!(
            "SELECT {select_keys}{} FROM gold_input{on_time_only}{group}",
            partial_cols.join(", ")
        ),
        "aggregating the new rows",
    )?;

    // The target files that may hold the same windows and groups.
    let (previous, removes) = match target {
        Some(t) => previous_rows(stage, ctx, t, g, &partials)?,
        None => (Vec::new(), Vec::new()),
    };
    let target_rows_read = previous.iter().map(|b| b.num_rows() as u64).sum();
    let previous: Vec<RecordBatch> = previous
        .into_iter()
        .map(|b| {
            crate::sink::delta::conform_to(
                &format!("the target of stage '{stage}'"),
                &partial_schema,
                &b,
            )
        })
        .collect::<Result<_>>()?;
    register(
        ctx,
        stage,
        "gold_partials",
        partial_schema.clone(),
        partials,
    )?;
    register(
        ctx,
        stage,
        "gold_previous",
        partial_schema.clone(),
        previous,
    )?;
    let merge_cols: Vec<String> = states
        .iter()
        .map(|(name, _, merge)| format!("{merge} AS {}", quote(name)))
        .collect();
    let mut outputs: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    for a in &g.aggregates {
        outputs.push(match a.function {
            Function::Avg => {
                let (s, c) = (
                    quote(&format!("_{}_sum", a.name)),
                    quote(&format!("_{}_count", a.name)),
                );
                format!(
                    "CASE WHEN {c} > 0 THEN {s} / CAST({c} AS DOUBLE) END AS {}",
                    quote(&a.name)
                )
            }
            _ => quote(&a.name),
        });
    }
    for a in g.aggregates.iter().filter(|a| a.function == Function::Avg) {
        outputs.push(quote(&format!("_{}_sum", a.name)));
        outputs.push(quote(&format!("_{}_count", a.name)));
    }
    let order = if g.window.is_some() {
        format!(" ORDER BY {}", quote(WINDOW_START))
    } else {
        String::new()
    };
    let (out_schema, merged) = query(
        ctx,
        stage,
        &format!(
            "SELECT {} FROM (SELECT {select_keys}{} FROM \
             (SELECT * FROM gold_partials UNION ALL SELECT * FROM gold_previous){group}) AS m{order}",
            outputs.join(", "),
            merge_cols.join(", ")
        ),
        "merging with the target's rows",
    )?;
    let checked = expect::apply(stage, &opts.expectations, &out_schema, merged)?;
    let all = concat_batches(&out_schema, &checked.kept)?;
    // Windows the new watermark closed go to files of their own.
    let rows = match (closed_before, all.column_by_name(WINDOW_END)) {
        (Some(wm), Some(ends)) => {
            let ends = micros(stage, WINDOW_END, ends)?;
            let closed: BooleanArray = ends
                .iter()
                .map(|e| Some(e.is_some_and(|e| e <= wm)))
                .collect();
            let open = arrow::compute::not(&closed)?;
            vec![
                filter_record_batch(&all, &closed)?,
                filter_record_batch(&all, &open)?,
            ]
        }
        _ => vec![all],
    };
    Ok(Output {
        schema: out_schema,
        rows,
        removes,
        deduplicated: 0,
        target_rows_read,
        failed: checked.failed,
        quarantine: checked.quarantine,
        late: late.into_iter().filter(|b| b.num_rows() > 0).collect(),
        max_event_time,
    })
}

/// The target's rows in files that may hold the windows of `partials`
/// (all files without windows), and the removes that replace those files.
fn previous_rows(
    stage: &str,
    ctx: &SessionContext,
    target: &DeltaTable,
    g: &Gold,
    partials: &[RecordBatch],
) -> Result<(Vec<RecordBatch>, Vec<Remove>)> {
    let range = match g.window {
        None => None,
        Some(_) => {
            let mut lo = i64::MAX;
            let mut hi = i64::MIN;
            for b in partials {
                if let Some(c) = b.column_by_name(WINDOW_START) {
                    for t in micros(stage, WINDOW_START, c)?.into_iter().flatten() {
                        lo = lo.min(t);
                        hi = hi.max(t);
                    }
                }
            }
            if lo > hi {
                return Ok((Vec::new(), Vec::new()));
            }
            Some((lo, hi))
        }
    };
    let files = block_on(crate::sink::delta::data_files(target))?;
    let mut paths = Vec::new();
    let mut removes = Vec::new();
    for f in files {
        if let Some((lo, hi)) = range {
            if !may_hold(f.stats().as_deref(), WINDOW_START, lo, hi) {
                continue;
            }
        }
        paths.push(f.path().to_string());
        removes.push(f.remove_action(true));
    }
    if paths.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let provider = block_on(target.table_provider().with_file_paths(paths).build())
        .map_err(|e| Error::Delta(format!("stage '{stage}': reading the target: {e}")))?;
    let df = ctx
        .read_table(Arc::new(provider))
        .map_err(|e| Error::Delta(format!("stage '{stage}': reading the target: {e}")))?;
    let rows = collect(df, &format!("stage '{stage}': reading the target"))?;
    Ok((rows, removes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_parse_or_say_what_is_allowed() {
        let a = Aggregate::parse("n", "COUNT(*)").unwrap();
        assert_eq!((a.function, a.argument), (Function::Count, None));
        let a = Aggregate::parse("v", " avg( value * 2 ) ").unwrap();
        assert_eq!(
            (a.function, a.argument.as_deref()),
            (Function::Avg, Some("value * 2"))
        );
        for bad in ["median(x)", "sum(*)", "count(DISTINCT x)", "count", "sum()"] {
            let e = Aggregate::parse("x", bad).unwrap_err().to_string();
            assert!(e.contains("write one of count(*)"), "{bad}: {e}");
        }
    }
}
