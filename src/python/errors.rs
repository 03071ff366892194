//! One mapping from the core's [`Error`] to the exception tree defined in
//! `kafkalake/exceptions.py` (defined in Python so that each exception can
//! also derive from the closest built-in, e.g. `ValueError`).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::error::Error;

fn class_name(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument(_) => "InvalidArgumentError",
        Error::Config(_) => "ConfigError",
        Error::BrokerUnreachable { .. } => "BrokerUnreachableError",
        Error::Authentication { .. } => "AuthenticationError",
        Error::Tls { .. } => "TlsError",
        Error::TopicNotFound { .. } => "TopicNotFoundError",
        Error::MessageTooLarge { .. } => "MessageTooLargeError",
        Error::Kafka(_) => "KafkaError",
        Error::Arrow(_) => "ArrowError",
        Error::Io(_) => "KafkalakeIOError",
        Error::Table(_) => "TableError",
        Error::Incomplete(_) => "IncompleteError",
        Error::Expectation(_) => "ExpectationError",
        Error::Delta(_) => "DeltaError",
        Error::Storage(_) => "StorageError",
    }
}

/// The Python exception instance for `e` (not raised).
pub fn to_exception<'py>(py: Python<'py>, e: &Error) -> PyResult<Bound<'py, PyAny>> {
    let module = py.import("kafkalake.exceptions")?;
    let cls = module.getattr(class_name(e))?;
    cls.call1(PyTuple::new(py, [e.user_message()])?)
}

/// `e` as a `PyErr`, ready to raise.
pub fn to_py_err(e: Error) -> PyErr {
    Python::attach(|py| match to_exception(py, &e) {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyRuntimeError::new_err(e.user_message()),
    })
}

/// `?`-friendly conversion for binding functions.
pub trait IntoPyResult<T> {
    /// Map the core's error to the Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for crate::error::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
