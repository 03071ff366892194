//! Kafka: client configuration, topic checks, the rate-controlled producer and
//! the embedded (in-process) cluster.
//!
//! librdkafka does the protocol work. Settings are its own dotted keys,
//! passed through untouched; kafkalake adds only the defaults documented in
//! [`config`]. librdkafka reports errors in two places: synchronously when a
//! message is enqueued (queue full, message too large) and asynchronously in
//! delivery reports; the producer counts both.

pub mod admin;
pub mod config;
pub mod consumer;
pub mod embedded;
pub mod groups;
pub mod messages;
pub mod producer;
