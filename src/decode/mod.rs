//! Kafka message bytes → Arrow record batches.
//!
//! JSON values are decoded straight into Arrow columns, a whole batch at a
//! time: by a decoder specialised to the schema ([`FastDecoder`]) when the
//! batch is of the shapes it covers, else by arrow-json's tape decoder,
//! which is the reference (the fast one gives up rather than differ). A message that does not fit (invalid
//! JSON, not an object, a value of the wrong type, a missing required field,
//! too large, no value at all) must not sink the batch: when the batch fails,
//! each message is tried alone, the bad ones become [`DeadLetter`]s with the
//! reason, and the good ones are decoded again together. Bad input is rare,
//! so the slow path costs nothing in the common case.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Array, Int64Array, MapBuilder, MapFieldNames, RecordBatch,
    StringArray, StringBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::json::reader::{infer_json_schema_from_iterator, Decoder, ReaderBuilder};

use bytes::Bytes;

use crate::error::{Error, Result};

mod early;
mod fast;
pub use early::{widen_to, Early, EarlyRows};
pub use fast::{FastDecoder, FastRows};
#[cfg(test)]
mod fuzz;

/// A message as consumed.
#[derive(Clone, Debug)]
pub struct RawMessage {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Kafka timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Key bytes.
    pub key: Option<Bytes>,
    /// Value bytes (`None` for a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order (`None` when the message has none).
    pub headers: Option<Vec<(String, Option<Vec<u8>>)>>,
}

/// A message that could not be decoded, and why.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The message, bytes untouched.
    pub message: RawMessage,
    /// What was wrong with it.
    pub error: String,
}

/// Names of the optional Kafka metadata columns.
pub const METADATA_COLUMNS: &[&str] = &[
    "_topic",
    "_partition",
    "_offset",
    "_timestamp",
    "_key",
    "_headers",
];

/// How messages become rows.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Append `_topic`, `_partition`, `_offset`, `_timestamp`, `_key`, `_headers`.
    pub metadata_columns: bool,
    /// Flatten nested structs into `parent.child` columns.
    pub flatten: bool,
    /// Messages larger than this go to the dead letters.
    pub max_message_bytes: usize,
    /// Report fields the schema lacks (as [`is_new_field`] errors) instead of
    /// ignoring them, so the caller can widen the schema.
    pub evolve: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            metadata_columns: false,
            flatten: false,
            max_message_bytes: 8 * 1024 * 1024,
            evolve: false,
        }
    }
}

/// Decodes JSON messages of one topic with a fixed schema.
#[derive(Clone, Debug)]
pub struct JsonDecoder {
    topic: Arc<str>,
    /// Schema of the JSON values.
    value_schema: SchemaRef,
    /// Schema of the output (values, possibly flattened, plus metadata).
    output_schema: SchemaRef,
    opts: DecodeOptions,
    /// The schema-specialised fast path, when the schema allows one.
    fast: Option<Arc<FastDecoder>>,
    /// Whether the values have integer fields (see [`integer_problem`]).
    integers: bool,
}

fn metadata_fields() -> Vec<Field> {
    vec![
        Field::new("_topic", DataType::Utf8, false),
        Field::new("_partition", DataType::Int32, false),
        Field::new("_offset", DataType::Int64, false),
        Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("_key", DataType::Binary, true),
        Field::new("_headers", headers_type(), true),
    ]
}

/// Whether a decode error says the value has a field the schema lacks
/// (with [`DecodeOptions::evolve`]).
pub fn is_new_field(error: &str) -> bool {
    error.contains("missing from schema")
}

/// `base` widened by the fields of `extra` it lacks (nullable, appended),
/// recursively inside structs; fields `base` has keep their type. `None`
/// when nothing is new.
pub fn merge_additive(base: &Schema, extra: &Schema) -> Option<Schema> {
    fn merge_fields(base: &Fields, extra: &Fields) -> Option<Fields> {
        let mut out: Vec<Field> = Vec::with_capacity(base.len());
        let mut changed = false;
        for f in base.iter() {
            match (
                f.data_type(),
                extra.find(f.name()).map(|(_, e)| e.data_type()),
            ) {
                (DataType::Struct(b), Some(DataType::Struct(e))) => match merge_fields(b, e) {
                    Some(m) => {
                        changed = true;
                        out.push(f.as_ref().clone().with_data_type(DataType::Struct(m)));
                    }
                    None => out.push(f.as_ref().clone()),
                },
                _ => out.push(f.as_ref().clone()),
            }
        }
        for e in extra.iter() {
            // Only nulls seen so far: no type to add the column with yet.
            let typed = match e.data_type() {
                DataType::Null => false,
                DataType::Struct(c) => !c.is_empty(),
                _ => true,
            };
            if typed && base.find(e.name()).is_none() {
                changed = true;
                out.push(e.as_ref().clone().with_nullable(true));
            }
        }
        changed.then(|| out.into())
    }
    merge_fields(base.fields(), extra.fields())
        .map(|f| Schema::new_with_metadata(f, base.metadata().clone()))
}

/// Kafka headers as Arrow: `map<string, binary>`, with Delta's field names
/// (`key_value`, `key`, `value`) so the column round-trips through a table.
pub fn headers_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "key_value",
            DataType::Struct(
                vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Binary, true),
                ]
                .into(),
            ),
            false,
        )),
        false,
    )
}

/// A builder of [`headers_type`] columns.
pub fn string_binary_map_builder() -> MapBuilder<StringBuilder, BinaryBuilder> {
    let names = MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    };
    MapBuilder::new(Some(names), StringBuilder::new(), BinaryBuilder::new())
        .with_keys_field(Arc::new(Field::new("key", DataType::Utf8, false)))
        .with_values_field(Arc::new(Field::new("value", DataType::Binary, true)))
}

/// The `_headers` column of `messages` (null where a message has none).
pub fn headers_array<'a>(messages: impl Iterator<Item = &'a RawMessage>) -> ArrayRef {
    let mut b = string_binary_map_builder();
    for m in messages {
        match &m.headers {
            Some(hs) => {
                for (k, v) in hs {
                    b.keys().append_value(k);
                    b.values().append_option(v.as_deref());
                }
                b.append(true).expect("keys and values appended in pairs");
            }
            None => b.append(false).expect("keys and values appended in pairs"),
        }
    }
    Arc::new(b.finish())
}

fn flatten_schema(schema: &SchemaRef) -> Result<SchemaRef> {
    let empty = RecordBatch::new_empty(schema.clone());
    Ok(empty.normalize(".", None)?.schema())
}

impl JsonDecoder {
    /// A decoder for values of `value_schema`.
    pub fn new(topic: &str, value_schema: SchemaRef, opts: DecodeOptions) -> Result<Self> {
        let mut fields: Vec<Field> = if opts.flatten {
            flatten_schema(&value_schema)?
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect()
        } else {
            value_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect()
        };
        if opts.metadata_columns {
            for f in metadata_fields() {
                if fields.iter().any(|g| g.name() == f.name()) {
                    return Err(Error::InvalidArgument(format!(
                        "the data already has a column '{}'; turn metadata columns off",
                        f.name()
                    )));
                }
                fields.push(f);
            }
        }
        Ok(JsonDecoder {
            topic: topic.into(),
            fast: FastDecoder::new(value_schema.clone(), opts.evolve).map(Arc::new),
            integers: has_integers(value_schema.fields()),
            value_schema,
            output_schema: Arc::new(Schema::new(fields)),
            opts,
        })
    }

    /// The schema of decoded batches.
    pub fn schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// The schema of the JSON values alone.
    pub fn value_schema(&self) -> SchemaRef {
        self.value_schema.clone()
    }

    fn arrow_decoder(&self, rows: usize) -> Result<Decoder> {
        Ok(ReaderBuilder::new(self.value_schema.clone())
            .with_batch_size(rows.max(1))
            .with_strict_mode(self.opts.evolve)
            .build_decoder()?)
    }

    /// Decode one message alone: its single row, or why it cannot be one
    /// (the reason cut to a readable length; the raw bytes are kept anyway).
    fn check_one(&self, value: &[u8]) -> std::result::Result<(), String> {
        self.check_one_full(value).map_err(|mut e| {
            if e.len() > 300 {
                let mut cut = 300;
                while !e.is_char_boundary(cut) {
                    cut -= 1;
                }
                e.truncate(cut);
                e.push('…');
            }
            e
        })
    }

    fn check_one_full(&self, value: &[u8]) -> std::result::Result<(), String> {
        let mut d = self.arrow_decoder(2).map_err(|e| e.to_string())?;
        if d.decode(value).map_err(|e| e.to_string())? != value.len() {
            return Err("the message holds more than one JSON value".into());
        }
        d.decode(b"\n").map_err(|e| e.to_string())?;
        match d.flush() {
            Ok(Some(b)) if b.num_rows() == 1 => Ok(()),
            Ok(Some(b)) => Err(format!("expected one JSON object, found {}", b.num_rows())),
            Ok(None) => Err("empty message: no JSON value".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// One row per value, by the fast decoder where it can, else arrow-json.
    fn decode_values(&self, values: &[&[u8]]) -> Result<RecordBatch> {
        match self.fast.as_ref().and_then(|f| f.decode(values)) {
            Some(batch) => Ok(batch),
            None => self.arrow_values(values),
        }
    }

    /// Which values the fast decoder takes (each alone); none without one.
    fn vouched(&self, values: &[&[u8]]) -> Vec<bool> {
        match &self.fast {
            Some(f) => f.accepted(values),
            None => vec![false; values.len()],
        }
    }

    /// One row per value, by arrow-json.
    fn arrow_values(&self, values: &[&[u8]]) -> Result<RecordBatch> {
        // Room for one row more than the messages: a message holding two
        // JSON values must not fill the batch and leave the next unread.
        let mut d = self.arrow_decoder(values.len() + 1)?;
        for v in values {
            if d.decode(v)? != v.len() {
                return Err(Error::Arrow(arrow::error::ArrowError::JsonError(
                    "a message holds more than one JSON value".into(),
                )));
            }
            // Separate values, so two messages can never merge into one row.
            d.decode(b"\n")?;
        }
        let batch = d
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(self.value_schema.clone()));
        if batch.num_rows() != values.len() {
            return Err(Error::Arrow(arrow::error::ArrowError::JsonError(format!(
                "{} messages gave {} rows",
                values.len(),
                batch.num_rows()
            ))));
        }
        Ok(batch)
    }

    /// Decode `messages`: the rows of the good ones (in order) and the bad
    /// ones as dead letters.
    pub fn decode(&self, messages: &[RawMessage]) -> Result<(RecordBatch, Vec<DeadLetter>)> {
        self.decode_with(messages, None)
    }

    /// The fast decoder, for rows decoded as messages are taken (see
    /// [`EarlyRows`]), with the largest value it may take.
    pub fn early(&self) -> Option<(Arc<FastDecoder>, usize)> {
        self.fast
            .as_ref()
            .map(|f| (f.clone(), self.opts.max_message_bytes))
    }

    /// [`Self::decode`] of `messages` of which `early` says which were
    /// decoded as they were taken (their values are not kept): the others
    /// are decoded here and the rows of both put back in message order.
    pub fn decode_with(
        &self,
        messages: &[RawMessage],
        early: Option<&Early>,
    ) -> Result<(RecordBatch, Vec<DeadLetter>)> {
        let early = early.filter(|e| e.decoded.iter().any(|&d| d));
        let mut dead = Vec::new();
        let mut good: Vec<&RawMessage> = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            if early.is_some_and(|e| e.decoded[i]) {
                continue;
            }
            match &m.value {
                None => dead.push(DeadLetter {
                    message: m.clone(),
                    error: "message has no value (tombstone)".into(),
                }),
                Some(v) if v.len() > self.opts.max_message_bytes => dead.push(DeadLetter {
                    message: m.clone(),
                    error: format!(
                        "message of {} bytes is over max_message_bytes ({})",
                        v.len(),
                        self.opts.max_message_bytes
                    ),
                }),
                Some(_) => good.push(m),
            }
        }
        let values: Vec<&[u8]> = good
            .iter()
            .map(|m| m.value.as_deref().unwrap_or_default())
            .collect();
        // The fast decoder, else arrow-json; but arrow-json reads 2.7 into
        // an integer column as 2, so a batch with such a value (among those
        // the fast decoder does not vouch for) goes to the slow path, where
        // it becomes a dead letter.
        let mut vouched = None;
        let whole = match self.fast.as_ref().and_then(|f| f.decode(&values)) {
            Some(b) => Some(b),
            None => {
                let changes = self.integers && {
                    let ok = vouched.insert(self.vouched(&values));
                    values.iter().zip(ok.iter()).any(|(v, ok)| {
                        !ok && integer_problem(v, self.value_schema.fields()).is_some()
                    })
                };
                if changes {
                    None
                } else {
                    self.arrow_values(&values).ok()
                }
            }
        };
        let batch = match whole {
            Some(b) => b,
            None => {
                // Slow path: find the culprits one by one. What the fast
                // decoder takes is fine; arrow-json judges the rest.
                let fast_ok = vouched.unwrap_or_else(|| self.vouched(&values));
                let mut keep = Vec::with_capacity(good.len());
                for (m, fast_ok) in good.into_iter().zip(fast_ok) {
                    if fast_ok {
                        keep.push(m);
                        continue;
                    }
                    let value = m.value.as_deref().unwrap_or_default();
                    let checked = self.check_one(value).and_then(|()| {
                        match integer_problem(value, self.value_schema.fields()) {
                            Some(problem) => Err(problem),
                            None => Ok(()),
                        }
                    });
                    match checked {
                        Ok(()) => keep.push(m),
                        Err(error) => dead.push(DeadLetter {
                            message: m.clone(),
                            error,
                        }),
                    }
                }
                good = keep;
                let values: Vec<&[u8]> = good
                    .iter()
                    .map(|m| m.value.as_deref().unwrap_or_default())
                    .collect();
                self.decode_values(&values)?
            }
        };
        let (batch, good) = match early {
            Some(e) => self.merge(messages, e, batch, good)?,
            None => (batch, good),
        };
        let batch = if self.opts.flatten {
            batch.normalize(".", None)?
        } else {
            batch
        };
        let batch = if self.opts.metadata_columns {
            let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
            let n = good.len();
            cols.push(Arc::new(StringArray::from(vec![&*self.topic; n])));
            cols.push(Arc::new(Int32Array::from_iter_values(
                good.iter().map(|m| m.partition),
            )));
            cols.push(Arc::new(Int64Array::from_iter_values(
                good.iter().map(|m| m.offset),
            )));
            cols.push(Arc::new(
                TimestampMillisecondArray::from(
                    good.iter().map(|m| m.timestamp_ms).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ));
            let mut keys = BinaryBuilder::new();
            for m in &good {
                keys.append_option(m.key.as_deref());
            }
            cols.push(Arc::new(keys.finish()));
            cols.push(headers_array(good.iter().copied()));
            RecordBatch::try_new(self.output_schema.clone(), cols)?
        } else {
            RecordBatch::try_new(self.output_schema.clone(), batch.columns().to_vec())?
        };
        dead.sort_by_key(|d| (d.message.partition, d.message.offset));
        Ok((batch, dead))
    }
}

impl JsonDecoder {
    /// The rows of `early` and `late` (the rows of `late_messages`, the
    /// messages decoded here that became rows) in the order of `messages`.
    fn merge<'m>(
        &self,
        messages: &'m [RawMessage],
        early: &Early,
        late: RecordBatch,
        late_messages: Vec<&'m RawMessage>,
    ) -> Result<(RecordBatch, Vec<&'m RawMessage>)> {
        let pieces = early
            .rows
            .iter()
            .map(|r| widen_to(r, &self.value_schema))
            .collect::<Result<Vec<_>>>()?;
        let early_rows = match pieces.as_slice() {
            [one] => one.clone(),
            _ => arrow::compute::concat_batches(&self.value_schema, &pieces)?,
        };
        let mut order = Vec::with_capacity(messages.len());
        let mut merged = Vec::with_capacity(messages.len());
        let (mut e, mut l) = (0, 0);
        for (m, &decoded) in messages.iter().zip(&early.decoded) {
            if decoded {
                order.push((0, e));
                e += 1;
            } else if late_messages.get(l).is_some_and(|x| std::ptr::eq(*x, m)) {
                order.push((1, l));
                l += 1;
            } else {
                continue;
            }
            merged.push(m);
        }
        if e != early_rows.num_rows() || l != late.num_rows() {
            return Err(Error::Arrow(arrow::error::ArrowError::ComputeError(
                format!(
                    "{} rows decoded early and {} later for {e} and {l} messages",
                    early_rows.num_rows(),
                    late.num_rows()
                ),
            )));
        }
        if l == 0 {
            return Ok((early_rows, merged));
        }
        let columns = (0..early_rows.num_columns())
            .map(|c| {
                arrow::compute::interleave(
                    &[early_rows.column(c).as_ref(), late.column(c).as_ref()],
                    &order,
                )
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((
            RecordBatch::try_new(self.value_schema.clone(), columns)?,
            merged,
        ))
    }
}

/// Whether `fields` has an integer column, at any depth.
fn has_integers(fields: &Fields) -> bool {
    fn integer(t: &DataType) -> bool {
        match t {
            t if t.is_integer() => true,
            DataType::Struct(f) => has_integers(f),
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                integer(f.data_type())
            }
            _ => false,
        }
    }
    fields.iter().any(|f| integer(f.data_type()))
}

/// Why a value of `value` (a JSON object) does not fit an integer column of
/// `fields` without changing: a number with a fraction (arrow-json would
/// cut 2.7 to 2), or one beyond 64 bits. `None` when every such value fits,
/// or when `value` is not JSON (judged elsewhere).
pub fn integer_problem(value: &[u8], fields: &Fields) -> Option<String> {
    use serde_json::Value;
    fn check(v: &Value, t: &DataType, path: &str) -> Option<String> {
        match (v, t) {
            (Value::Number(n), t) if t.is_integer() => {
                if n.is_i64() || n.is_u64() {
                    return None;
                }
                let f = n.as_f64()?;
                let whole = f.is_finite() && f.fract() == 0.0;
                (!whole || f.abs() >= 2f64.powi(63)).then(|| {
                    format!(
                        "field '{path}': {n} does not fit the column's type {t} without \
                         changing (not a whole number, or out of range)"
                    )
                })
            }
            (Value::String(x), t) if t.is_integer() => {
                let f: f64 = x.trim().parse().ok()?;
                (f.fract() != 0.0).then(|| {
                    format!("field '{path}': \"{x}\" is not a whole number, the column is {t}")
                })
            }
            (Value::Object(m), DataType::Struct(fs)) => fields_of(m, fs, path),
            (
                Value::Array(items),
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _),
            ) => items
                .iter()
                .find_map(|x| check(x, f.data_type(), &format!("{path}[]"))),
            _ => None,
        }
    }
    fn fields_of(
        m: &serde_json::Map<String, Value>,
        fields: &Fields,
        prefix: &str,
    ) -> Option<String> {
        fields.iter().find_map(|f| {
            let v = m.get(f.name())?;
            let path = if prefix.is_empty() {
                f.name().clone()
            } else {
                format!("{prefix}.{}", f.name())
            };
            check(v, f.data_type(), &path)
        })
    }
    match serde_json::from_slice::<Value>(value).ok()? {
        Value::Object(m) => fields_of(&m, fields, ""),
        _ => None,
    }
}

/// Messages parsed to infer a schema.
const INFERENCE_SAMPLE: usize = 2000;

/// Infer a schema from sample JSON values: nested objects become structs,
/// strings that are all RFC 3339 timestamps become `timestamp[us, UTC]`.
/// Fields are nullable, in the order they first appear.
pub fn infer_schema<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<SchemaRef>> {
    // A sample spread over the whole batch is enough, and parsing every
    // message into a JSON tree would cost more than decoding the batch.
    let values: Vec<&[u8]> = values.collect();
    let stride = values.len().div_ceil(INFERENCE_SAMPLE).max(1);
    let parsed: Vec<serde_json::Value> = values
        .into_iter()
        .step_by(stride)
        .filter_map(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
        .filter(|v| v.is_object())
        .collect();
    if parsed.is_empty() {
        return Ok(None);
    }
    // A few malformed messages (a string where a number belongs) must not
    // decide the schema: infer from the messages whose fields all have their
    // field's most common JSON type.
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Null => 0u8,
        serde_json::Value::Bool(_) => 1,
        serde_json::Value::Number(_) => 2,
        serde_json::Value::String(_) => 3,
        serde_json::Value::Array(_) => 4,
        serde_json::Value::Object(_) => 5,
    };
    let mut counts: std::collections::HashMap<&str, [usize; 6]> = std::collections::HashMap::new();
    for v in &parsed {
        for (k, x) in v.as_object().into_iter().flatten() {
            counts.entry(k.as_str()).or_default()[kind(x) as usize] += 1;
        }
    }
    let majority: std::collections::HashMap<&str, u8> = counts
        .iter()
        .map(|(k, c)| (*k, (1..6).max_by_key(|i| c[*i as usize]).unwrap_or(0)))
        .collect();
    let typical: Vec<&serde_json::Value> = parsed
        .iter()
        .filter(|v| {
            v.as_object().into_iter().flatten().all(|(k, x)| {
                let kx = kind(x);
                kx == 0 || majority.get(k.as_str()) == Some(&kx)
            })
        })
        .collect();
    let sample: Vec<&serde_json::Value> = if typical.is_empty() {
        parsed.iter().collect()
    } else {
        typical
    };
    let schema = infer_json_schema_from_iterator(sample.iter().map(|v| Ok(*v)))?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let is_ts = f.data_type() == &DataType::Utf8
                && sample.iter().all(|v| match v.get(f.name()) {
                    Some(serde_json::Value::String(s)) => {
                        chrono::DateTime::parse_from_rfc3339(s).is_ok()
                    }
                    Some(serde_json::Value::Null) | None => true,
                    _ => false,
                })
                && sample
                    .iter()
                    .any(|v| v.get(f.name()).is_some_and(|x| x.is_string()));
            if is_ts {
                Field::new(
                    f.name(),
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    true,
                )
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Ok(Some(Arc::new(Schema::new(fields))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{new_source, GeneratorOptions};

    fn msgs(values: &[&[u8]]) -> Vec<RawMessage> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| RawMessage {
                partition: 0,
                offset: i as i64,
                timestamp_ms: Some(1000),
                key: None,
                value: Some(Bytes::copy_from_slice(v)),
                headers: None,
            })
            .collect()
    }

    #[test]
    fn generated_iot_decodes_with_its_own_schema() {
        let mut src = new_source("iot", GeneratorOptions::default()).unwrap();
        let values: Vec<Vec<u8>> = (0..500)
            .map(|_| {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                src.next_message(&mut k, &mut v);
                v
            })
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        let dec = JsonDecoder::new("t", src.schema(), DecodeOptions::default()).unwrap();
        let (batch, dead) = dec.decode(&msgs(&refs)).unwrap();
        assert!(dead.is_empty());
        assert_eq!(batch.num_rows(), 500);
        let typed = new_source("iot", GeneratorOptions::default())
            .unwrap()
            .next_batch(500)
            .unwrap();
        assert_eq!(
            batch, typed,
            "JSON round trip equals the typed generator output"
        );
    }

    #[test]
    fn a_message_of_two_json_values_is_a_dead_letter_and_takes_no_other_row() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let dec = JsonDecoder::new("t", schema, DecodeOptions::default()).unwrap();
        let batches: [&[&[u8]]; 3] = [
            &[br#"{"a":1}{"a":2}"#, br#"{"a":3}"#],
            &[br#"{"a":3}"#, br#"{"a":4} "tail""#],
            &[br#"{"a":4} {"a":5}"#],
        ];
        for values in batches {
            let messages = msgs(values);
            let (rows, dead) = dec.decode(&messages).unwrap();
            let a: Vec<i64> = rows
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec();
            let dead: Vec<i64> = dead.iter().map(|d| d.message.offset).collect();
            let whole: Vec<i64> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| serde_json::from_slice::<serde_json::Value>(v).is_ok())
                .map(|(i, _)| i as i64)
                .collect();
            assert_eq!(rows.num_rows(), whole.len(), "{values:?}: rows {a:?}");
            assert_eq!(
                dead.len() + whole.len(),
                values.len(),
                "{values:?}: dead {dead:?}"
            );
            assert!(whole.iter().all(|o| !dead.contains(o)), "{values:?}");
            if values[0].starts_with(br#"{"a":3}"#) {
                assert_eq!(a, vec![3]);
            }
        }
    }

    #[test]
    fn bad_messages_become_dead_letters_and_the_rest_survives() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ]));
        let dec = JsonDecoder::new(
            "t",
            schema,
            DecodeOptions {
                metadata_columns: true,
                max_message_bytes: 40,
                ..Default::default()
            },
        )
        .unwrap();
        let mut m = msgs(&[
            br#"{"a":1,"b":"x"}"#,
            br#"{"a":2,"b":"y""#, // truncated
            br#"{"a":"three"}"#,  // wrong type
            br#"[1,2]"#,          // not an object
            br#"{"b":"no a"}"#,   // missing required
            br#"{"a":6,"b":"this one is far too long to be accepted here"}"#, // oversized
            br#"{"a":7}{"a":8}"#, // two values
            br#"{"a":9,"extra":true}"#,
        ]);
        m.push(RawMessage {
            value: None,
            ..m[0].clone()
        });
        let (batch, dead) = dec.decode(&m).unwrap();
        let a: Vec<i64> = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec();
        assert_eq!(a, vec![1, 9]);
        let offsets: Vec<i64> = batch
            .column_by_name("_offset")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec();
        assert_eq!(offsets, vec![0, 7]);
        let dead_offsets: Vec<i64> = dead.iter().map(|d| d.message.offset).collect();
        assert_eq!(dead_offsets, vec![0, 1, 2, 3, 4, 5, 6]);
        assert!(dead.iter().any(|d| d.error.contains("max_message_bytes")));
        assert!(dead.iter().any(|d| d.error.contains("tombstone")));
    }

    #[test]
    fn inference_keeps_structs_order_and_finds_timestamps() {
        let values: Vec<&[u8]> = vec![
            br#"{"id":1,"nested":{"x":1.5},"at":"2026-01-01T00:00:00.000001Z","s":"hi"}"#,
            br#"{"id":2,"nested":{"x":2.5},"at":"2026-01-01T00:00:01Z","s":"yo"}"#,
            b"not json",
            br#"{"id":"three","nested":{"x":3.5},"at":"2026-01-01T00:00:02Z","s":"hi"}"#,
        ];
        let schema = infer_schema(values.into_iter()).unwrap().unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "nested", "at", "s"]);
        assert!(matches!(schema.field(1).data_type(), DataType::Struct(_)));
        assert!(matches!(
            schema.field(2).data_type(),
            DataType::Timestamp(TimeUnit::Microsecond, _)
        ));
        assert_eq!(schema.field(3).data_type(), &DataType::Utf8);
    }

    #[test]
    fn numbers_that_would_change_are_dead_letters() {
        let inner = Fields::from(vec![Field::new("x", DataType::Int64, true)]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("extra", DataType::Struct(inner), true),
            Field::new(
                "xs",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                true,
            ),
            Field::new("f", DataType::Float64, true),
        ]));
        let d = JsonDecoder::new("t", schema, DecodeOptions::default()).unwrap();
        let (rows, dead) = d
            .decode(&msgs(&[
                br#"{"id":1,"extra":{"x":1},"xs":[1],"f":2.5}"#,
                br#"{"id":2.7,"extra":{"x":2}}"#,
                br#"{"id":3,"extra":{"x":0.5}}"#,
                br#"{"id":4,"xs":[1,2.25]}"#,
                br#"{"id":5.0,"extra":{"x":1e2},"f":7}"#,
                br#"{"id":"6.5"}"#,
            ]))
            .unwrap();
        let offsets: Vec<i64> = dead.iter().map(|d| d.message.offset).collect();
        assert_eq!(offsets, vec![1, 2, 3, 5], "{dead:?}");
        assert!(
            dead[0].error.contains("field 'id': 2.7"),
            "{}",
            dead[0].error
        );
        assert!(
            dead[1].error.contains("field 'extra.x'"),
            "{}",
            dead[1].error
        );
        assert!(dead[2].error.contains("field 'xs[]'"), "{}", dead[2].error);
        // Whole numbers written as 5.0 or 1e2 keep their value.
        let ids = rows
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.values().to_vec(), vec![1, 5]);
    }
}
