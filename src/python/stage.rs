//! Delta → Delta stages from Python: one call runs one stage to the end of
//! its source; the pipeline file is read by `kafkalake/pipeline.py`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pyo3_arrow::PyTable;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::IntoPyResult;
use crate::error::Error;
use crate::sink::storage::Location;
use crate::stage::{
    self, Aggregate, Dedupe, Expectation, Gold, OnViolation, RowsFn, Silver, StageOptions,
    Transform, Window,
};

/// What a stage does, as one dict built and checked from the pipeline
/// file by `kafkalake.pipeline` (`StageArgs` in the stub).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct StageArgs {
    sql: Option<String>,
    where_clause: Option<String>,
    dedupe_key: Option<Vec<String>>,
    dedupe_time: Option<String>,
    dedupe_within_us: Option<i64>,
    window_time: Option<String>,
    window_size_us: Option<i64>,
    window_watermark_us: Option<i64>,
    keep_late: bool,
    group_by: Vec<String>,
    aggregates: Vec<(String, String)>,
    expectations: Vec<(String, String, String)>,
    table_properties: HashMap<String, String>,
    partition_by: Vec<String>,
    max_versions: u64,
}

/// Run one stage until its target holds every source version there is at
/// the start; a dict report.
#[pyfunction]
#[pyo3(signature = (name, *, source, target, storage_options, kind, args, transform=None))]
#[allow(clippy::too_many_arguments)]
pub fn run_stage<'py>(
    py: Python<'py>,
    name: String,
    source: String,
    target: String,
    storage_options: HashMap<String, String>,
    kind: &str,
    args: StageArgs,
    transform: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let StageArgs {
        sql,
        where_clause,
        dedupe_key,
        dedupe_time,
        dedupe_within_us,
        window_time,
        window_size_us,
        window_watermark_us,
        keep_late,
        group_by,
        aggregates,
        expectations,
        table_properties,
        partition_by,
        max_versions,
    } = args;
    let stage_name = name.clone();
    let rows_fn = transform.map(|f| {
        RowsFn(Arc::new(
            move |batches: Vec<RecordBatch>, schema: SchemaRef| {
                Python::attach(|py| -> PyResult<Vec<RecordBatch>> {
                    let table = PyTable::try_new(batches, schema)?;
                    let out = f.call1(py, (table,))?;
                    let table: PyTable = out.extract(py)?;
                    Ok(table.into_inner().0)
                })
                .map_err(|e| {
                    Error::Table(format!("stage '{stage_name}': its transform raised {e}"))
                })
            },
        ))
    });
    let transform = match kind {
        "silver" => Transform::Silver(Silver {
            sql,
            filter: where_clause,
            dedupe: dedupe_key.map(|key| Dedupe {
                key,
                time: dedupe_time.map(|t| (t, dedupe_within_us.unwrap_or(0))),
            }),
        }),
        "gold" => Transform::Gold(Gold {
            window: match (window_time, window_size_us) {
                (Some(time), Some(size_us)) => Some(Window {
                    time,
                    size_us,
                    watermark_us: window_watermark_us.unwrap_or(0),
                    keep_late,
                }),
                _ => None,
            },
            group_by,
            aggregates: aggregates
                .iter()
                .map(|(n, e)| Aggregate::parse(n, e))
                .collect::<crate::Result<_>>()
                .py()?,
        }),
        other => {
            return Err(Error::InvalidArgument(format!(
                "a stage is 'silver' or 'gold', got '{other}'"
            )))
            .py()
        }
    };
    let expectations = expectations
        .into_iter()
        .map(|(name, check, action)| {
            Ok(Expectation {
                name,
                check,
                on_violation: OnViolation::parse(&action)?,
            })
        })
        .collect::<crate::Result<Vec<_>>>()
        .py()?;
    let opts = StageOptions {
        name,
        source: Location {
            uri: source,
            options: storage_options.clone(),
        },
        target: Location {
            uri: target,
            options: storage_options,
        },
        transform,
        expectations,
        table_properties,
        partition_by,
        max_versions,
        rows_fn,
    };
    let report = py.detach(|| stage::run(&opts)).py()?;
    let d = PyDict::new(py);
    d.set_item("name", &report.name)?;
    d.set_item("versions", report.versions)?;
    d.set_item("rows_in", report.rows_in)?;
    d.set_item("rows_out", report.rows_out)?;
    d.set_item("deduplicated", report.deduplicated)?;
    d.set_item("target_rows_read", report.target_rows_read)?;
    d.set_item("late", report.late)?;
    d.set_item("quarantined", report.quarantined)?;
    d.set_item("commits", report.commits)?;
    d.set_item("target_version", report.target_version)?;
    d.set_item("seconds", report.seconds)?;
    let exp: Vec<(String, &str, u64)> = report
        .expectations
        .iter()
        .map(|(n, a, c)| (n.clone(), a.as_str(), *c))
        .collect();
    d.set_item("expectations", exp)?;
    Ok(d)
}
