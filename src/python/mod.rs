//! The binding layer: raw classes and functions that the typed Python package
//! (`python/kafkalake/`) wraps. pyo3 appears only below this module.

mod admin;
mod embedded;
mod errors;
mod generate;
mod ingest;
mod producer;
mod stage;

use pyo3::prelude::*;

/// The `kafkalake._kafkalake` extension module: registration only.
#[pymodule]
fn _kafkalake(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(generate::generate, m)?)?;
    m.add_function(wrap_pyfunction!(generate::profile_schema, m)?)?;
    m.add_function(wrap_pyfunction!(generate::profiles, m)?)?;
    m.add_function(wrap_pyfunction!(generate::sample_messages, m)?)?;
    m.add_class::<producer::RawProduceJob>()?;
    m.add_class::<embedded::RawEmbeddedKafka>()?;
    m.add_class::<ingest::RawIngest>()?;
    m.add_function(wrap_pyfunction!(ingest::read_capture, m)?)?;
    m.add_function(wrap_pyfunction!(ingest::compact_table, m)?)?;
    m.add_class::<ingest::RawBatchConsumer>()?;
    m.add_function(wrap_pyfunction!(stage::run_stage, m)?)?;
    m.add_function(wrap_pyfunction!(admin::group_offsets, m)?)?;
    m.add_function(wrap_pyfunction!(admin::reset_offsets, m)?)?;
    m.add_function(wrap_pyfunction!(admin::create_topic, m)?)?;
    m.add_function(wrap_pyfunction!(admin::list_topics, m)?)?;
    m.add_function(wrap_pyfunction!(admin::describe_topic, m)?)?;
    m.add_function(wrap_pyfunction!(admin::delete_topics, m)?)?;
    m.add_function(wrap_pyfunction!(admin::list_groups, m)?)?;
    m.add_function(wrap_pyfunction!(admin::parse_assignment, m)?)?;
    Ok(())
}
