//! Expectations: named SQL checks on a stage's output rows, each with what
//! happens to a row that fails it (a check that is NULL fails: write
//! `x IS NULL OR …` to let nulls through).

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, ListBuilder, RecordBatch, StringBuilder};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::datasource::MemTable;

use super::{collect, quote};
use crate::error::{Error, Result};

/// What happens to a row that fails an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnViolation {
    /// Keep the row; count it.
    Warn,
    /// Leave the row out; count it.
    Drop,
    /// Stop the run before anything is committed.
    Fail,
    /// Move the row to `<target>_quarantine`, with the names of the checks it failed.
    Quarantine,
}

impl OnViolation {
    /// As written in a pipeline file.
    pub fn as_str(self) -> &'static str {
        match self {
            OnViolation::Warn => "warn",
            OnViolation::Drop => "drop",
            OnViolation::Fail => "fail",
            OnViolation::Quarantine => "quarantine",
        }
    }

    /// From a pipeline file's word.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "warn" => OnViolation::Warn,
            "drop" => OnViolation::Drop,
            "fail" => OnViolation::Fail,
            "quarantine" => OnViolation::Quarantine,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "on_violation must be 'warn', 'drop', 'fail' or 'quarantine', got '{other}'"
                )))
            }
        })
    }
}

/// A named check.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// Its name (in reports, commit info and quarantined rows).
    pub name: String,
    /// A SQL boolean expression over the output's columns.
    pub check: String,
    /// What happens to a failing row.
    pub on_violation: OnViolation,
}

/// Name of the quarantine table's column listing the checks a row failed.
pub const FAILED_COLUMN: &str = "_failed_expectations";

/// Rows kept, rows quarantined and failures per expectation.
pub(crate) struct Checked {
    pub kept: Vec<RecordBatch>,
    pub quarantine: Vec<RecordBatch>,
    pub failed: Vec<u64>,
}

/// Apply `expectations` to `rows` (all with `schema`).
pub(crate) fn apply(
    stage: &str,
    expectations: &[Expectation],
    schema: &SchemaRef,
    rows: Vec<RecordBatch>,
) -> Result<Checked> {
    if expectations.is_empty() {
        return Ok(Checked {
            kept: rows,
            quarantine: Vec::new(),
            failed: Vec::new(),
        });
    }
    let ctx = super::new_context();
    let table = MemTable::try_new(schema.clone(), vec![rows])
        .map_err(|e| Error::Table(format!("stage '{stage}': {e}")))?;
    ctx.register_table("rows", Arc::new(table))
        .map_err(|e| Error::Table(format!("stage '{stage}': {e}")))?;
    let columns: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
    let checks: Vec<String> = expectations
        .iter()
        .enumerate()
        .map(|(i, e)| format!("({}) AS \"__kafkalake_check_{i}\"", e.check))
        .collect();
    let sql = format!(
        "SELECT {}, {} FROM rows",
        columns.join(", "),
        checks.join(", ")
    );
    let what = format!("stage '{stage}': evaluating its expectations");
    let df = crate::runtime::block_on(ctx.sql(&sql)).map_err(|e| {
        Error::InvalidArgument(format!(
            "{what} ({}): {e}",
            expectations
                .iter()
                .map(|x| format!("{} = {:?}", x.name, x.check))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let batches = collect(df, &what)?;
    let n = schema.fields().len();
    let mut failed = vec![0u64; expectations.len()];
    let mut kept = Vec::new();
    let mut quarantine = Vec::new();
    for batch in batches {
        let data = batch.project(&(0..n).collect::<Vec<_>>())?;
        let data = RecordBatch::try_new(schema.clone(), data.columns().to_vec())?;
        let passes: Vec<BooleanArray> = (0..expectations.len())
            .map(|i| {
                let c = batch.column(n + i);
                match c.data_type() {
                    DataType::Boolean => Ok(c
                        .as_boolean()
                        .iter()
                        .map(|v| Some(v == Some(true)))
                        .collect()),
                    other => Err(Error::InvalidArgument(format!(
                        "stage '{stage}': expectation '{}' ({}) is {other}, not a boolean",
                        expectations[i].name, expectations[i].check
                    ))),
                }
            })
            .collect::<Result<_>>()?;
        let rows = data.num_rows();
        let mut keep = vec![true; rows];
        let mut to_quarantine = vec![false; rows];
        let mut names = ListBuilder::new(StringBuilder::new());
        for r in 0..rows {
            for (i, e) in expectations.iter().enumerate() {
                if passes[i].value(r) {
                    continue;
                }
                failed[i] += 1;
                match e.on_violation {
                    OnViolation::Warn => {}
                    OnViolation::Drop => keep[r] = false,
                    OnViolation::Quarantine => {
                        keep[r] = false;
                        to_quarantine[r] = true;
                    }
                    OnViolation::Fail => {
                        return Err(Error::Expectation(format!(
                            "stage '{stage}': expectation '{}' ({}) failed, so nothing was \
                             committed; a failing row: {}",
                            e.name,
                            e.check,
                            row_json(&data, r)
                        )));
                    }
                }
            }
            if to_quarantine[r] {
                for (i, e) in expectations.iter().enumerate() {
                    if !passes[i].value(r) {
                        names.values().append_value(&e.name);
                    }
                }
                names.append(true);
            }
        }
        kept.push(filter_record_batch(&data, &BooleanArray::from(keep))?);
        if to_quarantine.iter().any(|q| *q) {
            let q = filter_record_batch(&data, &BooleanArray::from(to_quarantine))?;
            let names = Arc::new(names.finish());
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new(FAILED_COLUMN, names.data_type().clone(), true));
            let mut cols = q.columns().to_vec();
            cols.push(names);
            quarantine.push(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?);
        }
    }
    Ok(Checked {
        kept,
        quarantine,
        failed,
    })
}

/// Row `r` of `batch` as one line of JSON (for error messages).
fn row_json(batch: &RecordBatch, r: usize) -> String {
    let one = batch.slice(r, 1);
    let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
    if w.write(&one).is_err() || w.finish().is_err() {
        return "(not printable)".into();
    }
    let out = String::from_utf8_lossy(&w.into_inner()).trim().to_string();
    match out.char_indices().nth(1000) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out,
    }
}
