//! Event Hubs Capture-format Avro (seed 004): a sink that writes Avro
//! container files with Capture's `EventData` record schema in Capture's
//! folder layout, and a reader that turns such files (kafkalake's or real
//! Capture output) into Arrow.
//!
//! Layout: `<root>/<namespace>/<event hub>/<partition>/<YYYY>/<MM>/<DD>/<hh>/<mm>/<ss>-<start>.avro`.
//! The folders are Capture's default archive name format, the time is the
//! first message's in the file (Capture's window start); the file name adds
//! where the file's offset range starts (20 digits) to Capture's `<ss>`, and
//! the header's metadata records the range (`kafkalake.first_offset`,
//! `kafkalake.last_offset`), the progress record of [`super::files`]. Both
//! name parts come from the messages, so two workers writing the same range
//! race for one name.
//!
//! Fields: `SequenceNumber` is the Kafka offset, `Offset` its decimal string
//! (Event Hubs' own byte offset does not exist on other brokers),
//! `EnqueuedTimeUtc` the Kafka timestamp as Capture writes it
//! (`6/25/2020 3:47:29 PM`), `SystemProperties` holds `x-opt-enqueued-time`
//! (milliseconds) and, for keyed messages, `x-opt-kafka-key` (what Event
//! Hubs records for Kafka keys), `Properties` the Kafka headers (bytes), and
//! `Body` the value.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use apache_avro::types::Value;
use apache_avro::{Codec, DeflateSettings, Reader, Schema, Writer};
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, Int64Array, Int64Builder, MapBuilder,
    RecordBatch, StringBuilder, TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema as ArrowSchema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::delta::OFFSET_COLUMN;
use super::files::{start_suffix, FileFormat, FileSink, FIRST_OFFSET_KEY, LAST_OFFSET_KEY};
use super::storage::Location;
use super::PartitionChunk;
use crate::decode::{headers_array, headers_type, RawMessage};
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// Event Hubs Capture's record schema, as found in Capture's files.
pub const CAPTURE_SCHEMA: &str = r#"{"type":"record","name":"EventData","namespace":"Microsoft.ServiceBus.Messaging","fields":[{"name":"SequenceNumber","type":"long"},{"name":"Offset","type":"string"},{"name":"EnqueuedTimeUtc","type":"string"},{"name":"SystemProperties","type":{"type":"map","values":["long","double","string","bytes"]}},{"name":"Properties","type":{"type":"map","values":["long","double","string","bytes","null"]}},{"name":"Body","type":["null","bytes"]}]}"#;

/// Capture's `EnqueuedTimeUtc` format (.NET's `M/d/yyyy h:mm:ss tt`).
const ENQUEUED_FORMAT: &str = "%-m/%-d/%Y %-I:%M:%S %p";

fn capture_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::parse_str(CAPTURE_SCHEMA).expect("the Capture schema parses"))
}

/// Columns of the raw batches the Capture sink takes.
pub const RAW_TIMESTAMP: &str = "_timestamp";
/// Key bytes.
pub const RAW_KEY: &str = "_key";
/// Headers (`map<string, binary>`).
pub const RAW_HEADERS: &str = "_headers";
/// Value bytes.
pub const RAW_VALUE: &str = "_value";

/// The Avro block codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureCodec {
    /// No compression (what Capture writes by default).
    Null,
    /// Raw deflate (Capture's `AvroDeflate` encoding).
    Deflate,
}

/// Where and how Capture files are written.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Root directory or container prefix.
    pub location: Location,
    /// The `{Namespace}` folder.
    pub namespace: String,
    /// The `{EventHub}` folder (default: the topic).
    pub eventhub: Option<String>,
    /// Block codec.
    pub codec: CaptureCodec,
}

/// Capture Avro files in Capture's folder layout.
pub struct CaptureFiles {
    opts: CaptureOptions,
}

/// Writes Capture files.
pub type CaptureSink = FileSink<CaptureFiles>;

/// Open the Capture sink described by `opts`.
pub fn sink(opts: CaptureOptions) -> Result<CaptureSink> {
    let location = opts.location.clone();
    FileSink::new(CaptureFiles { opts }, location)
}

fn partition_prefix(opts: &CaptureOptions, topic: &str, partition: i32) -> Path {
    let hub = opts.eventhub.as_deref().unwrap_or(topic);
    Path::from(format!("{}/{hub}/{partition}", opts.namespace))
}

/// The file holding `partition`'s offsets from `start`, whose first message is from `time`.
pub fn file_path(
    opts: &CaptureOptions,
    topic: &str,
    partition: i32,
    time: DateTime<Utc>,
    start: i64,
) -> Path {
    Path::from(format!(
        "{}/{:04}/{:02}/{:02}/{:02}/{:02}/{:02}{}",
        partition_prefix(opts, topic, partition),
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        start_suffix(start, CaptureFiles::EXTENSION),
    ))
}

/// Messages as they are (offset, timestamp, key, headers, value bytes): what
/// the Capture sink takes instead of decoded rows.
pub fn raw_batch(msgs: &[RawMessage]) -> Result<RecordBatch> {
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new(OFFSET_COLUMN, DataType::Int64, false),
        Field::new(
            RAW_TIMESTAMP,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new(RAW_KEY, DataType::Binary, true),
        Field::new(RAW_HEADERS, headers_type(), true),
        Field::new(RAW_VALUE, DataType::Binary, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(msgs.iter().map(|m| m.offset))),
        Arc::new(
            TimestampMillisecondArray::from_iter(msgs.iter().map(|m| m.timestamp_ms))
                .with_timezone("UTC"),
        ),
        Arc::new(BinaryArray::from_iter(
            msgs.iter().map(|m| m.key.as_deref()),
        )),
        headers_array(msgs.iter()),
        Arc::new(BinaryArray::from_iter(
            msgs.iter().map(|m| m.value.as_deref()),
        )),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// A column of `batch` by name, or an internal error naming it.
fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::InvalidArgument(format!("raw batch without column '{name}'")))
}

/// One Avro file of `batch`'s rows (raw columns: offset, timestamp, key, headers, value).
pub fn encode(
    batch: &RecordBatch,
    codec: CaptureCodec,
    metadata: &[(&str, String)],
) -> Result<Vec<u8>> {
    let offsets = column(batch, OFFSET_COLUMN)?.as_primitive::<Int64Type>();
    let times =
        column(batch, RAW_TIMESTAMP)?.as_primitive::<arrow::datatypes::TimestampMillisecondType>();
    let keys = column(batch, RAW_KEY)?.as_binary::<i32>();
    let headers = column(batch, RAW_HEADERS)?.as_map();
    let values = column(batch, RAW_VALUE)?.as_binary::<i32>();
    let header_keys = headers.keys().as_string::<i32>();
    let header_values = headers.values().as_binary::<i32>();

    let codec = match codec {
        CaptureCodec::Null => Codec::Null,
        CaptureCodec::Deflate => Codec::Deflate(DeflateSettings::default()),
    };
    let avro_err = |e: apache_avro::Error| Error::Storage(format!("encoding Avro: {e}"));
    let mut w = Writer::with_codec(capture_schema(), Vec::new(), codec);
    for (k, v) in metadata {
        w.add_user_metadata((*k).to_string(), v.as_bytes())
            .map_err(avro_err)?;
    }
    for i in 0..batch.num_rows() {
        let offset = offsets.value(i);
        let ms = (!times.is_null(i)).then(|| times.value(i));
        let enqueued = ms
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .map(|t| t.format(ENQUEUED_FORMAT).to_string())
            .unwrap_or_default();
        let mut system = HashMap::with_capacity(2);
        if let Some(ms) = ms {
            system.insert(
                "x-opt-enqueued-time".to_string(),
                Value::Union(0, Box::new(Value::Long(ms))),
            );
        }
        if !keys.is_null(i) {
            system.insert(
                "x-opt-kafka-key".to_string(),
                Value::Union(3, Box::new(Value::Bytes(keys.value(i).to_vec()))),
            );
        }
        let mut props = HashMap::new();
        if !headers.is_null(i) {
            let (start, end) = (
                headers.value_offsets()[i] as usize,
                headers.value_offsets()[i + 1] as usize,
            );
            for j in start..end {
                let v = if header_values.is_null(j) {
                    Value::Union(4, Box::new(Value::Null))
                } else {
                    Value::Union(3, Box::new(Value::Bytes(header_values.value(j).to_vec())))
                };
                props.insert(header_keys.value(j).to_string(), v);
            }
        }
        let body = if values.is_null(i) {
            Value::Union(0, Box::new(Value::Null))
        } else {
            Value::Union(1, Box::new(Value::Bytes(values.value(i).to_vec())))
        };
        let record = Value::Record(vec![
            ("SequenceNumber".into(), Value::Long(offset)),
            ("Offset".into(), Value::String(offset.to_string())),
            ("EnqueuedTimeUtc".into(), Value::String(enqueued)),
            ("SystemProperties".into(), Value::Map(system)),
            ("Properties".into(), Value::Map(props)),
            ("Body".into(), body),
        ]);
        w.append_value_ref(&record).map_err(avro_err)?;
    }
    w.into_inner().map_err(avro_err)
}

impl FileFormat for CaptureFiles {
    const EXTENSION: &'static str = "avro";
    const KIND: &'static str = "Capture Avro files";

    fn partition_prefix(&self, topic: &str, partition: i32) -> Path {
        partition_prefix(&self.opts, topic, partition)
    }

    fn file(&self, topic: &str, start: i64, c: &PartitionChunk) -> Result<(Path, Vec<u8>)> {
        let times = column(&c.batch, RAW_TIMESTAMP)?
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        // Capture names a file after its window's start: here the first
        // event's time (the epoch when no message has one), so that the
        // name depends on the messages only, never on when it is written.
        let time = times
            .iter()
            .flatten()
            .next()
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .unwrap_or(DateTime::UNIX_EPOCH);
        let metadata = [
            ("kafkalake.topic", topic.to_string()),
            ("kafkalake.partition", c.partition.to_string()),
            (FIRST_OFFSET_KEY, start.to_string()),
            (LAST_OFFSET_KEY, c.last_offset.to_string()),
        ];
        let bytes = encode(&c.batch, self.opts.codec, &metadata)?;
        Ok((
            file_path(&self.opts, topic, c.partition, time, start),
            bytes,
        ))
    }

    /// From the header: its first 64 KiB, all of the file if that was too little.
    fn recorded_last(
        &self,
        file: &ObjectMeta,
        read: &dyn Fn(std::ops::Range<u64>) -> Result<Bytes>,
    ) -> Result<i64> {
        let header = |bytes: Bytes| -> std::result::Result<Option<i64>, String> {
            let reader = Reader::new(&bytes[..]).map_err(|e| e.to_string())?;
            Ok(reader
                .user_metadata()
                .get(LAST_OFFSET_KEY)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()))
        };
        let size = file.size;
        let found = match header(read(0..size.min(64 * 1024))?) {
            Err(_) if size > 64 * 1024 => header(read(0..size)?),
            other => other,
        };
        let why = match found {
            Ok(Some(last)) => return Ok(last),
            Ok(None) => format!("no {LAST_OFFSET_KEY} in its header"),
            Err(e) => e,
        };
        Err(Error::Storage(format!(
            "'{}' has no readable kafkalake offset range ({why}); \
             move files kafkalake did not write out of its folders",
            file.location
        )))
    }
}

/// The schema of what [`read`] returns.
pub fn read_schema() -> SchemaRef {
    Arc::new(ArrowSchema::new(vec![
        Field::new("SequenceNumber", DataType::Int64, false),
        Field::new("Offset", DataType::Utf8, false),
        Field::new(
            "EnqueuedTimeUtc",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("SystemProperties", properties_type(), false),
        Field::new("Properties", properties_type(), false),
        Field::new("Body", DataType::Binary, true),
        Field::new("_file", DataType::Utf8, false),
    ]))
}

fn properties_type() -> DataType {
    crate::decode::headers_type()
}

/// A property value as bytes: strings and bytes as they are, numbers as
/// decimal text, null as null.
fn property_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Union(_, inner) => property_bytes(inner),
        Value::Null => None,
        Value::Bytes(b) | Value::Fixed(_, b) => Some(b.clone()),
        Value::String(s) | Value::Enum(_, s) => Some(s.as_bytes().to_vec()),
        Value::Long(n) => Some(n.to_string().into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        Value::Double(x) => Some(x.to_string().into_bytes()),
        Value::Float(x) => Some(x.to_string().into_bytes()),
        Value::Boolean(b) => Some(b.to_string().into_bytes()),
        other => Some(format!("{other:?}").into_bytes()),
    }
}

/// Parse Capture's `EnqueuedTimeUtc` (`6/25/2020 3:47:29 PM`, or ISO 8601).
pub fn parse_enqueued(text: &str) -> Option<i64> {
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%m/%d/%Y %I:%M:%S %p") {
        return Some(t.and_utc().timestamp_millis());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

struct ReadBuilders {
    seq: Int64Builder,
    offset: StringBuilder,
    enqueued: TimestampMillisecondBuilder,
    system: MapBuilder<StringBuilder, BinaryBuilder>,
    props: MapBuilder<StringBuilder, BinaryBuilder>,
    body: BinaryBuilder,
    file: StringBuilder,
}

use crate::decode::string_binary_map_builder as map_builder;

impl ReadBuilders {
    fn new() -> Self {
        ReadBuilders {
            seq: Int64Builder::new(),
            offset: StringBuilder::new(),
            enqueued: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            system: map_builder(),
            props: map_builder(),
            body: BinaryBuilder::new(),
            file: StringBuilder::new(),
        }
    }

    fn append(&mut self, file: &str, record: Value) -> Result<()> {
        let Value::Record(fields) = record else {
            return Err(Error::InvalidArgument(format!(
                "'{file}' does not hold Capture records (EventData): found {record:?}"
            )));
        };
        let (mut seq, mut offset, mut enqueued, mut body) = (None, None, None, None);
        let (mut system, mut props) = (Vec::new(), Vec::new());
        for (name, v) in fields {
            let v = match v {
                Value::Union(_, inner) => *inner,
                v => v,
            };
            match (name.as_str(), v) {
                ("SequenceNumber", Value::Long(n)) => seq = Some(n),
                ("Offset", Value::String(s)) => offset = Some(s),
                ("EnqueuedTimeUtc", Value::String(s)) => enqueued = parse_enqueued(&s),
                ("SystemProperties", Value::Map(m)) => system = sorted(m),
                ("Properties", Value::Map(m)) => props = sorted(m),
                ("Body", Value::Bytes(b)) => body = Some(b),
                ("Body", Value::Null) => body = None,
                _ => {}
            }
        }
        let (Some(seq), Some(offset)) = (seq, offset) else {
            return Err(Error::InvalidArgument(format!(
                "'{file}' is not a Capture file: its records lack SequenceNumber/Offset"
            )));
        };
        self.seq.append_value(seq);
        self.offset.append_value(offset);
        self.enqueued.append_option(enqueued);
        for (b, entries) in [(&mut self.system, system), (&mut self.props, props)] {
            for (k, v) in entries {
                b.keys().append_value(k);
                b.values().append_option(property_bytes(&v));
            }
            b.append(true).expect("keys and values appended in pairs");
        }
        self.body.append_option(body);
        self.file.append_value(file);
        Ok(())
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.enqueued.finish()),
            Arc::new(self.system.finish()),
            Arc::new(self.props.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.file.finish()),
        ];
        Ok(RecordBatch::try_new(read_schema(), cols)?)
    }
}

fn sorted(m: HashMap<String, Value>) -> Vec<(String, Value)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Decode one Avro container file into a batch.
pub fn decode_file(name: &str, bytes: &[u8]) -> Result<RecordBatch> {
    let bad = |e: apache_avro::Error| {
        Error::InvalidArgument(format!("'{name}' is not a readable Avro file: {e}"))
    };
    let reader = Reader::new(bytes).map_err(bad)?;
    let mut b = ReadBuilders::new();
    for record in reader {
        b.append(name, record.map_err(bad)?)?;
    }
    b.finish()
}

/// Every `.avro` file under `location` (or the one file it names), in path
/// order, one batch per file.
pub fn read(location: &Location) -> Result<Vec<RecordBatch>> {
    let (dir, single) = match location.uri.trim_end_matches('/').rsplit_once('/') {
        Some((parent, file)) if file.ends_with(".avro") => (
            Location {
                uri: parent.to_string(),
                options: location.options.clone(),
            },
            Some(file.to_string()),
        ),
        _ => (location.clone(), None),
    };
    let store = dir.store()?;
    block_on(async {
        let paths: Vec<Path> = match &single {
            Some(f) => vec![Path::from(f.as_str())],
            None => {
                let mut v: Vec<Path> = store
                    .list(None)
                    .map_ok(|m| m.location)
                    .try_filter(|p| std::future::ready(p.as_ref().ends_with(".avro")))
                    .try_collect()
                    .await
                    .map_err(|e| Error::Storage(format!("listing '{}': {e}", dir.uri)))?;
                v.sort();
                v
            }
        };
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            let bytes = store
                .get(&p)
                .await
                .map_err(|e| Error::Storage(format!("reading '{p}' under '{}': {e}", dir.uri)))?
                .bytes()
                .await
                .map_err(|e| Error::Storage(format!("reading '{p}' under '{}': {e}", dir.uri)))?;
            out.push(decode_file(p.as_ref(), &bytes)?);
        }
        Ok(out)
    })
}

/// Replace the `Body` column of `batches` by the JSON fields it holds,
/// decoded with `schema` (else inferred from the bodies). A body that does not
/// decode is an error naming the file and sequence number: nothing is
/// dropped silently (read with bodies as bytes to look at it).
pub fn decode_bodies(
    batches: Vec<RecordBatch>,
    schema: Option<SchemaRef>,
    opts: crate::decode::DecodeOptions,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use crate::decode::{infer_schema, JsonDecoder};
    let body_of = |b: &RecordBatch| b.column(5).as_binary::<i32>().clone();
    let schema = match schema {
        Some(s) => s,
        None => {
            let bodies: Vec<_> = batches.iter().map(body_of).collect();
            infer_schema(bodies.iter().flat_map(|a| a.iter().flatten()))?.ok_or_else(|| {
                Error::InvalidArgument(
                    "no Body holds a JSON object to infer a schema from; read the bodies as \
                     bytes, or pass body_schema"
                        .into(),
                )
            })?
        }
    };
    let decoder = JsonDecoder::new("capture", schema, opts)?;
    let mut out = Vec::with_capacity(batches.len());
    let mut out_schema = None;
    for b in batches {
        let bodies = body_of(&b);
        let seq = b.column(0).as_primitive::<Int64Type>();
        let msgs: Vec<RawMessage> = (0..b.num_rows())
            .map(|i| RawMessage {
                partition: 0,
                offset: seq.value(i),
                timestamp_ms: None,
                key: None,
                value: (!bodies.is_null(i)).then(|| Bytes::copy_from_slice(bodies.value(i))),
                headers: None,
            })
            .collect();
        let (rows, dead) = decoder.decode(&msgs)?;
        if let Some(d) = dead.first() {
            let file = b.column(6).as_string::<i32>();
            return Err(Error::InvalidArgument(format!(
                "{} Body value(s) in '{}' are not JSON of the schema (first: SequenceNumber {}: \
                 {}); read with the bodies as bytes to inspect them",
                dead.len(),
                file.value(0),
                d.message.offset,
                d.error
            )));
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (i, f) in b.schema().fields().iter().enumerate() {
            if i != 5 {
                fields.push(f.as_ref().clone());
                cols.push(b.column(i).clone());
            }
        }
        for (f, c) in rows.schema().fields().iter().zip(rows.columns()) {
            if fields.iter().any(|g| g.name() == f.name()) {
                return Err(Error::InvalidArgument(format!(
                    "the Body field '{}' clashes with a Capture column; read the bodies as bytes",
                    f.name()
                )));
            }
            fields.push(f.as_ref().clone());
            cols.push(c.clone());
        }
        let s = Arc::new(ArrowSchema::new(fields));
        out.push(RecordBatch::try_new(s.clone(), cols)?);
        out_schema = Some(s);
    }
    let out_schema = match out_schema {
        Some(s) => s,
        None => {
            let mut fields: Vec<Field> = read_schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 5)
                .map(|(_, f)| f.as_ref().clone())
                .collect();
            fields.extend(decoder.schema().fields().iter().map(|f| f.as_ref().clone()));
            Arc::new(ArrowSchema::new(fields))
        }
    };
    Ok((out_schema, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_records_the_range_and_the_name_depends_on_the_messages_only() {
        let msg = |offset: i64, size: usize| RawMessage {
            partition: 1,
            offset,
            timestamp_ms: Some(1_593_100_049_000),
            key: None,
            value: Some(Bytes::from(vec![b'x'; size])),
            headers: None,
        };
        let format = CaptureFiles {
            opts: CaptureOptions {
                location: Location::default(),
                namespace: "ns".into(),
                eventhub: None,
                codec: CaptureCodec::Null,
            },
        };
        // A body larger than the part read first: the header is still at the start.
        let msgs = vec![msg(20, 10), msg(21, 100_000)];
        let chunk = PartitionChunk {
            partition: 1,
            first_offset: 20,
            last_offset: 21,
            batch: raw_batch(&msgs).unwrap(),
            dead_letters: Vec::new(),
        };
        let (path, bytes) = format.file("hub", 18, &chunk).unwrap();
        let (again, _) = format.file("hub", 18, &chunk).unwrap();
        assert_eq!(path, again);
        assert_eq!(
            path.as_ref(),
            "ns/hub/1/2020/06/25/15/47/29-00000000000000000018.avro"
        );
        let bytes = Bytes::from(bytes);
        let meta = ObjectMeta {
            location: path,
            last_modified: Utc::now(),
            size: bytes.len() as u64,
            e_tag: None,
            version: None,
        };
        let reads = std::cell::Cell::new(0);
        let read = |r: std::ops::Range<u64>| {
            reads.set(reads.get() + 1);
            Ok(bytes.slice(r.start as usize..r.end as usize))
        };
        assert_eq!(format.recorded_last(&meta, &read).unwrap(), 21);
        assert_eq!(reads.get(), 1);
    }

    #[test]
    fn round_trip_through_avro() {
        let msgs = vec![
            RawMessage {
                partition: 3,
                offset: 252,
                timestamp_ms: Some(1_593_100_049_000),
                key: Some(Bytes::from_static(b"28557")),
                value: Some(Bytes::from_static(br#"{"city_name":"Morehead City"}"#)),
                headers: Some(vec![
                    ("source".into(), Some(b"geo".to_vec())),
                    ("empty".into(), None),
                ]),
            },
            RawMessage {
                partition: 3,
                offset: 253,
                timestamp_ms: None,
                key: None,
                value: None,
                headers: None,
            },
        ];
        for codec in [CaptureCodec::Null, CaptureCodec::Deflate] {
            let bytes = encode(
                &raw_batch(&msgs).unwrap(),
                codec,
                &[("kafkalake.topic", "t".into())],
            )
            .unwrap();
            let reader = Reader::new(&bytes[..]).unwrap();
            assert_eq!(reader.user_metadata().get("kafkalake.topic").unwrap(), b"t");
            let b = decode_file("f.avro", &bytes).unwrap();
            assert_eq!(b.num_rows(), 2);
            let seq = b.column(0).as_primitive::<Int64Type>();
            assert_eq!((seq.value(0), seq.value(1)), (252, 253));
            assert_eq!(b.column(1).as_string::<i32>().value(0), "252");
            let t = b
                .column(2)
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
            assert_eq!(t.value(0), 1_593_100_049_000);
            assert!(t.is_null(1));
            let body = b.column(5).as_binary::<i32>();
            assert_eq!(body.value(0), br#"{"city_name":"Morehead City"}"#);
            assert!(body.is_null(1));
            let props = b.column(4).as_map();
            let keys: Vec<&str> = props.keys().as_string::<i32>().iter().flatten().collect();
            assert_eq!(keys, ["empty", "source"]);
            assert!(props.values().is_null(0));
            let sys = b.column(3).as_map();
            let skeys: Vec<&str> = sys.keys().as_string::<i32>().iter().flatten().collect();
            assert_eq!(skeys, ["x-opt-enqueued-time", "x-opt-kafka-key"]);
        }
    }

    #[test]
    fn enqueued_time_format_matches_capture() {
        let t = DateTime::<Utc>::from_timestamp_millis(1_593_100_049_000).unwrap();
        assert_eq!(
            t.format(ENQUEUED_FORMAT).to_string(),
            "6/25/2020 3:47:29 PM"
        );
        assert_eq!(
            parse_enqueued("6/25/2020 3:47:29 PM"),
            Some(1_593_100_049_000)
        );
    }

    #[test]
    fn names_round_trip() {
        let opts = CaptureOptions {
            location: Location::default(),
            namespace: "ns".into(),
            eventhub: None,
            codec: CaptureCodec::Null,
        };
        let t = DateTime::<Utc>::from_timestamp_millis(1_593_100_049_000).unwrap();
        let p = file_path(&opts, "dev", 7, t, 5);
        assert_eq!(
            p.as_ref(),
            "ns/dev/7/2020/06/25/15/47/29-00000000000000000005.avro"
        );
        assert_eq!(
            super::super::files::parse_name(p.filename().unwrap(), "avro"),
            Some((5, None))
        );
    }
}
