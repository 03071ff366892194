//! `generate()`: events straight into Arrow, handed over through the Arrow
//! PyCapsule interface without a copy.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3_arrow::{PySchema, PyTable};

use super::errors::IntoPyResult;
use crate::generate::{
    message_batch, message_schema, new_source, GeneratorOptions, KeyChoice, PROFILES,
};

/// The event knobs of `generate` and `produce`, as one dict built and
/// checked by `kafkalake.generate.event_options` (`EventOptions` in the stub).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct EventArgs {
    seed: u64,
    start_time_us: Option<i64>,
    event_interval_s: f64,
    duplicate_ratio: Option<f64>,
    late_ratio: f64,
    max_lateness_s: f64,
    malformed_ratio: f64,
    key_field: Option<String>,
    no_key: bool,
    devices: u32,
    sender: Option<String>,
}

impl From<EventArgs> for GeneratorOptions {
    fn from(a: EventArgs) -> Self {
        let defaults = GeneratorOptions::default();
        GeneratorOptions {
            seed: a.seed,
            start_time_us: a.start_time_us.unwrap_or(defaults.start_time_us),
            event_interval_us: a.event_interval_s * 1e6,
            duplicate_ratio: a.duplicate_ratio,
            late_ratio: a.late_ratio,
            max_lateness_us: (a.max_lateness_s * 1e6) as i64,
            malformed_ratio: a.malformed_ratio,
            key: match (a.no_key, a.key_field) {
                (true, _) => KeyChoice::None,
                (false, Some(f)) => KeyChoice::Field(f),
                (false, None) => KeyChoice::Default,
            },
            devices: a.devices,
            sender: a.sender,
        }
    }
}

/// Names of the built-in profiles.
#[pyfunction]
pub fn profiles() -> Vec<&'static str> {
    PROFILES.to_vec()
}

/// The Arrow schema of a profile's typed output.
#[pyfunction]
pub fn profile_schema(profile: &str) -> PyResult<PySchema> {
    let src = new_source(profile, GeneratorOptions::default()).py()?;
    Ok(PySchema::new(src.schema()))
}

/// A message as Python bytes: (key or None, value).
type KeyValue = (Option<Py<PyBytes>>, Py<PyBytes>);

/// The first `n` messages of `profile` as `(key, value)` byte pairs: for
/// samples and small displays only (one Python object per message).
#[pyfunction]
#[pyo3(signature = (profile, n, *, seed=0))]
pub fn sample_messages(
    py: Python<'_>,
    profile: &str,
    n: usize,
    seed: u64,
) -> PyResult<Vec<KeyValue>> {
    let mut src = new_source(
        profile,
        GeneratorOptions {
            seed,
            ..Default::default()
        },
    )
    .py()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut k, mut v) = (Vec::new(), Vec::new());
        let has_key = src.next_message(&mut k, &mut v);
        let key = has_key.then(|| PyBytes::new(py, &k).unbind());
        out.push((key, PyBytes::new(py, &v).unbind()));
    }
    Ok(out)
}

/// Generate `n` events of `profile` as an Arrow table (typed columns, or
/// `key`/`value` message bytes when `as_messages`).
#[pyfunction]
#[pyo3(signature = (profile, n, events, *, as_messages, batch_size))]
pub fn generate(
    py: Python<'_>,
    profile: &str,
    n: u64,
    events: EventArgs,
    as_messages: bool,
    batch_size: usize,
) -> PyResult<PyTable> {
    let mut src = new_source(profile, events.into()).py()?;
    let batch_size = batch_size.max(1);
    let schema = if as_messages {
        message_schema()
    } else {
        src.schema()
    };
    let batches = py
        .detach(|| {
            let mut out = Vec::new();
            let mut left = n;
            while left > 0 {
                let take = left.min(batch_size as u64) as usize;
                out.push(if as_messages {
                    message_batch(src.as_mut(), take)?
                } else {
                    src.next_batch(take)?
                });
                left -= take as u64;
            }
            Ok(out)
        })
        .py()?;
    PyTable::try_new(batches, schema)
}
