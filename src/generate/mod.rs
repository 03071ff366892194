//! Synthetic event streams modelled on the seed labs.
//!
//! A [`Profile`] knows one event shape (IoT telemetry, click-stream, grocery
//! searches, North Carolina postal codes): how to draw the next event, how to
//! write it as JSON and how to append it to Arrow builders. [`Generator`] adds
//! what every profile shares: a seeded random stream, a virtual clock, exact
//! re-sends (duplicates), late events and malformed messages. The same seed and
//! options always give the same bytes.

pub mod clickstream;
pub mod geo;
pub mod iot;
pub mod json;
pub mod rate;
pub mod rng;
pub mod search;

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
pub use rng::Rng;

/// Names of the built-in profiles.
pub const PROFILES: &[&str] = &["clickstream", "geo", "iot", "search"];

/// How many earlier events a duplicate may repeat.
const DUPLICATE_WINDOW: usize = 1024;

/// Which field of an event becomes the Kafka message key.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum KeyChoice {
    /// The profile's usual key (e.g. `deviceId` for `iot`).
    #[default]
    Default,
    /// No key: librdkafka spreads messages over partitions.
    None,
    /// A named top-level field.
    Field(String),
}

/// Knobs shared by every profile.
#[derive(Clone, Debug)]
pub struct GeneratorOptions {
    /// Fixes the whole stream.
    pub seed: u64,
    /// Event time of the first event, microseconds since the Unix epoch (UTC).
    pub start_time_us: i64,
    /// Virtual-clock step between consecutive events, in microseconds.
    pub event_interval_us: f64,
    /// Fraction of messages that are exact re-sends of an earlier event;
    /// `None` takes the profile's default (0.1 % for `iot`, else 0).
    pub duplicate_ratio: Option<f64>,
    /// Fraction of events whose event time lags the clock (out of order).
    pub late_ratio: f64,
    /// The largest lag of a late event, in microseconds.
    pub max_lateness_us: i64,
    /// Fraction of messages that are malformed (invalid JSON, wrong type,
    /// not an object). JSON output only.
    pub malformed_ratio: f64,
    /// The message key.
    pub key: KeyChoice,
    /// Number of distinct devices (`iot`).
    pub devices: u32,
    /// The `sender` field of `geo` events (default `kafkalake`).
    pub sender: Option<String>,
}

impl Default for GeneratorOptions {
    fn default() -> Self {
        GeneratorOptions {
            seed: 0,
            // 2026-01-01T00:00:00Z: a fixed default keeps generate() reproducible.
            start_time_us: 1_767_225_600_000_000,
            event_interval_us: 1_000.0,
            duplicate_ratio: None,
            late_ratio: 0.0,
            max_lateness_us: 60_000_000,
            malformed_ratio: 0.0,
            key: KeyChoice::Default,
            devices: 1000,
            sender: None,
        }
    }
}

fn check_ratio(name: &str, v: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&v) {
        return Err(Error::InvalidArgument(format!(
            "{name} must be between 0 and 1 (a fraction of messages), got {v}"
        )));
    }
    Ok(())
}

impl GeneratorOptions {
    /// Check every knob; called before any work starts.
    pub fn validate(&self) -> Result<()> {
        if let Some(d) = self.duplicate_ratio {
            check_ratio("duplicate_ratio", d)?;
        }
        check_ratio("late_ratio", self.late_ratio)?;
        check_ratio("malformed_ratio", self.malformed_ratio)?;
        // Event times stay within what RFC 3339 and Arrow can hold: no lab
        // needs events a year late or a day apart.
        const YEAR_US: i64 = 365 * 24 * 3600 * 1_000_000;
        if !(0..=YEAR_US).contains(&self.max_lateness_us) {
            return Err(Error::InvalidArgument(format!(
                "max_lateness must be between 0 and a year (31536000 s), got {} s",
                self.max_lateness_us as f64 / 1e6
            )));
        }
        if !(self.event_interval_us.is_finite()
            && (0.0..=86_400e6).contains(&self.event_interval_us))
        {
            return Err(Error::InvalidArgument(format!(
                "the event interval must be between 0 and a day (86400 s), got {} s",
                self.event_interval_us / 1e6
            )));
        }
        if self.devices == 0 {
            return Err(Error::InvalidArgument("devices must be at least 1".into()));
        }
        Ok(())
    }
}

/// The Arrow type of every event-time column: microseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Collects events of one profile into Arrow arrays.
pub trait EventBuilder<E> {
    /// Append one event.
    fn append(&mut self, event: &E);
    /// The columns built so far (in schema order); the builder is reset.
    fn finish(&mut self) -> Vec<ArrayRef>;
}

/// One kind of event.
pub trait Profile: Send + 'static {
    /// The event as drawn, before serialisation.
    type Event: Clone + Send + 'static;
    /// Its Arrow builder.
    type Builder: EventBuilder<Self::Event> + Send;
    /// The profile's name.
    const NAME: &'static str;
    /// Top-level fields usable as the message key.
    const KEY_FIELDS: &'static [&'static str];
    /// The default key field.
    const DEFAULT_KEY: &'static str;
    /// A numeric field that malformed messages give a string value.
    const NUMERIC_FIELD: &'static str;

    /// The Arrow schema of [`Profile::Builder`]'s output.
    fn schema() -> SchemaRef;
    /// Draw the next event at event time `ts_us`.
    fn next_event(&mut self, rng: &mut Rng, ts_us: i64) -> Self::Event;
    /// Move an event to another event time (late events).
    fn set_time(event: &mut Self::Event, ts_us: i64);
    /// Write the event as one JSON object.
    fn write_json(event: &Self::Event, out: &mut Vec<u8>);
    /// Write the bytes of key field `KEY_FIELDS[field]`.
    fn write_key(event: &Self::Event, field: usize, out: &mut Vec<u8>);
    /// A new, empty builder.
    fn builder(capacity: usize) -> Self::Builder;
}

/// A profile-independent stream of events: what the producer and the Python
/// layer use.
pub trait EventSource: Send {
    /// The profile's name.
    fn profile(&self) -> &'static str;
    /// Arrow schema of [`EventSource::next_batch`].
    fn schema(&self) -> SchemaRef;
    /// Write the next message; returns whether it has a key.
    fn next_message(&mut self, key: &mut Vec<u8>, value: &mut Vec<u8>) -> bool;
    /// The next `n` events as typed Arrow columns.
    fn next_batch(&mut self, n: usize) -> Result<RecordBatch>;
    /// Events drawn so far.
    fn position(&self) -> u64;
}

/// Schema of messages as bytes: what would be sent to Kafka.
pub fn message_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, false),
    ]))
}

/// The next `n` messages of `source` as a `key`/`value` binary batch.
pub fn message_batch(source: &mut dyn EventSource, n: usize) -> Result<RecordBatch> {
    let mut keys = BinaryBuilder::with_capacity(n, n * 24);
    let mut values = BinaryBuilder::with_capacity(n, n * 512);
    let (mut k, mut v) = (Vec::new(), Vec::new());
    for _ in 0..n {
        k.clear();
        v.clear();
        if source.next_message(&mut k, &mut v) {
            keys.append_value(&k);
        } else {
            keys.append_null();
        }
        values.append_value(&v);
    }
    let cols: Vec<ArrayRef> = vec![Arc::new(keys.finish()), Arc::new(values.finish())];
    Ok(RecordBatch::try_new(message_schema(), cols)?)
}

/// Shared machinery around one profile.
pub struct Generator<P: Profile> {
    profile: P,
    rng: Rng,
    opts: GeneratorOptions,
    duplicate_ratio: f64,
    key_field: Option<usize>,
    clock_us: f64,
    drawn: u64,
    recent: VecDeque<P::Event>,
}

impl<P: Profile> Generator<P> {
    /// Wrap `profile`; options must already be validated.
    pub fn new(profile: P, opts: GeneratorOptions, default_duplicates: f64) -> Result<Self> {
        opts.validate()?;
        let key_field = match &opts.key {
            KeyChoice::Default => P::KEY_FIELDS.iter().position(|f| *f == P::DEFAULT_KEY),
            KeyChoice::None => None,
            KeyChoice::Field(name) => Some(
                P::KEY_FIELDS
                    .iter()
                    .position(|f| f == name)
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "key field '{name}' is not a key field of the '{}' profile; choose one of: {}",
                            P::NAME,
                            P::KEY_FIELDS.join(", ")
                        ))
                    })?,
            ),
        };
        Ok(Generator {
            profile,
            rng: Rng::new(opts.seed),
            duplicate_ratio: opts.duplicate_ratio.unwrap_or(default_duplicates),
            clock_us: opts.start_time_us as f64,
            key_field,
            opts,
            drawn: 0,
            recent: VecDeque::with_capacity(DUPLICATE_WINDOW),
        })
    }

    /// The next event and whether it is a re-send of an earlier one.
    fn draw(&mut self) -> (P::Event, bool) {
        self.drawn += 1;
        if !self.recent.is_empty() && self.rng.chance(self.duplicate_ratio) {
            let i = self.rng.below(self.recent.len() as u64) as usize;
            return (self.recent[i].clone(), true);
        }
        let now = self.clock_us as i64;
        self.clock_us += self.opts.event_interval_us;
        let mut event = self.profile.next_event(&mut self.rng, now);
        if self.rng.chance(self.opts.late_ratio) {
            let lag = self.rng.below(self.opts.max_lateness_us as u64 + 1) as i64;
            P::set_time(&mut event, now.saturating_sub(lag));
        }
        if self.duplicate_ratio > 0.0 {
            if self.recent.len() == DUPLICATE_WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back(event.clone());
        }
        (event, false)
    }

    /// Corrupt a valid JSON message in one of three ways a consumer must survive.
    fn corrupt(&mut self, value: &mut Vec<u8>) {
        match self.rng.below(3) {
            // Invalid JSON: cut off mid-object.
            0 => value.truncate(value.len() / 2),
            // Valid JSON, wrong type: a numeric field holds a string.
            1 => {
                let needle = format!("\"{}\":", P::NUMERIC_FIELD);
                if let Some(at) = find(value, needle.as_bytes()) {
                    let start = at + needle.len();
                    let end = value[start..]
                        .iter()
                        .position(|b| matches!(b, b',' | b'}'))
                        .map_or(value.len(), |p| start + p);
                    value.splice(start..end, b"\"not-a-number\"".iter().copied());
                }
            }
            // Valid JSON, not an object.
            _ => {
                value.insert(0, b'[');
                value.push(b']');
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<P: Profile> EventSource for Generator<P> {
    fn profile(&self) -> &'static str {
        P::NAME
    }

    fn schema(&self) -> SchemaRef {
        P::schema()
    }

    fn next_message(&mut self, key: &mut Vec<u8>, value: &mut Vec<u8>) -> bool {
        let (event, duplicate) = self.draw();
        P::write_json(&event, value);
        if !duplicate && self.rng.chance(self.opts.malformed_ratio) {
            self.corrupt(value);
        }
        match self.key_field {
            Some(f) => {
                P::write_key(&event, f, key);
                true
            }
            None => false,
        }
    }

    fn next_batch(&mut self, n: usize) -> Result<RecordBatch> {
        if self.opts.malformed_ratio > 0.0 {
            return Err(Error::InvalidArgument(
                "malformed messages exist only as bytes; generate with format='json' \
                 (or produce them) to get them, or set malformed_ratio=0 for typed Arrow"
                    .into(),
            ));
        }
        let mut builder = P::builder(n);
        for _ in 0..n {
            let (event, _) = self.draw();
            builder.append(&event);
        }
        Ok(RecordBatch::try_new(P::schema(), builder.finish())?)
    }

    fn position(&self) -> u64 {
        self.drawn
    }
}

/// A generator for the named profile.
pub fn new_source(profile: &str, opts: GeneratorOptions) -> Result<Box<dyn EventSource>> {
    opts.validate()?;
    if opts.sender.is_some() && profile != "geo" {
        return Err(Error::InvalidArgument(format!(
            "sender is a field of the geo profile only; the {profile} profile has none"
        )));
    }
    Ok(match profile {
        "iot" => Box::new(Generator::new(iot::Iot::new(opts.devices), opts, 0.001)?),
        "clickstream" => Box::new(Generator::new(clickstream::Clickstream::new(), opts, 0.0)?),
        "search" => Box::new(Generator::new(search::Search::new(), opts, 0.0)?),
        "geo" => Box::new(Generator::new(
            geo::Geo::new(opts.sender.as_deref()),
            opts,
            0.0,
        )?),
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown profile '{other}'; choose one of: {}",
                PROFILES.join(", ")
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(profile: &str, opts: GeneratorOptions, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut src = new_source(profile, opts).unwrap();
        (0..n)
            .map(|_| {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                src.next_message(&mut k, &mut v);
                (k, v)
            })
            .collect()
    }

    #[test]
    fn every_profile_is_deterministic_and_valid_json() {
        for p in PROFILES {
            let a = messages(
                p,
                GeneratorOptions {
                    seed: 5,
                    ..Default::default()
                },
                500,
            );
            let b = messages(
                p,
                GeneratorOptions {
                    seed: 5,
                    ..Default::default()
                },
                500,
            );
            let c = messages(
                p,
                GeneratorOptions {
                    seed: 6,
                    ..Default::default()
                },
                500,
            );
            assert_eq!(a, b, "{p}: same seed, same bytes");
            assert_ne!(a, c, "{p}: another seed, other bytes");
            for (_, v) in &a {
                let parsed: serde_json::Value = serde_json::from_slice(v).unwrap();
                assert!(parsed.is_object(), "{p}");
            }
        }
    }

    #[test]
    fn arrow_batches_match_schema() {
        for p in PROFILES {
            let mut src = new_source(p, GeneratorOptions::default()).unwrap();
            let batch = src.next_batch(300).unwrap();
            assert_eq!(batch.num_rows(), 300);
            assert_eq!(batch.schema(), src.schema());
        }
    }

    #[test]
    fn malformed_messages_are_not_valid_events() {
        let opts = GeneratorOptions {
            malformed_ratio: 1.0,
            ..Default::default()
        };
        for p in PROFILES {
            for (_, v) in messages(p, opts.clone(), 60) {
                let bad = match serde_json::from_slice::<serde_json::Value>(&v) {
                    Err(_) => true,
                    Ok(serde_json::Value::Object(m)) => m.values().any(|x| x == "not-a-number"),
                    Ok(_) => true,
                };
                assert!(bad, "{p}: {}", String::from_utf8_lossy(&v));
            }
        }
    }

    #[test]
    fn duplicates_are_exact_resends() {
        let opts = GeneratorOptions {
            duplicate_ratio: Some(0.2),
            ..Default::default()
        };
        let msgs = messages("iot", opts, 5000);
        let mut seen = std::collections::HashSet::new();
        let dups = msgs.iter().filter(|m| !seen.insert((*m).clone())).count();
        assert!(
            (800..1200).contains(&dups),
            "{dups} duplicates of 5000 at 20 %"
        );
    }

    #[test]
    fn bad_options_are_rejected() {
        let bad = [
            GeneratorOptions {
                late_ratio: -0.1,
                ..Default::default()
            },
            GeneratorOptions {
                malformed_ratio: 1.5,
                ..Default::default()
            },
            GeneratorOptions {
                duplicate_ratio: Some(f64::NAN),
                ..Default::default()
            },
            GeneratorOptions {
                key: KeyChoice::Field("nope".into()),
                ..Default::default()
            },
        ];
        for o in bad {
            assert!(matches!(
                new_source("iot", o),
                Err(Error::InvalidArgument(_))
            ));
        }
        let err = new_source("bogus", GeneratorOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("choose one of"));
    }
}
