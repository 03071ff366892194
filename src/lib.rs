//! kafkalake's engine: synthetic event streams, a rate-controlled Kafka
//! producer and an embedded Kafka cluster, driven from Python through the
//! binding layer in [`python`] (feature `python`), or from Rust directly.
#![deny(missing_docs)]

pub mod decode;
pub mod error;
pub mod generate;
pub mod histogram;
pub mod ingest;
pub mod kafka;
pub mod memory;
pub mod runtime;
pub mod sink;
pub mod stage;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
