//! Seed 001's IoT telemetry, field for field:
//!
//! ```json
//! {"eventId":"b81d241f-5187-40b0-ab2a-940faf9757c0",
//!  "complexData":{"moreData0":57.73972601334325, … ,"moreData22":…},
//!  "value":49.02278128887753,"deviceId":"contoso-device-id-000154",
//!  "deviceSequenceNumber":0,"type":"CO2","createdAt":"2019-05-16T17:16:40.000003Z"}
//! ```

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

use super::{json, timestamp_type, EventBuilder, Profile, Rng};

/// Number of `moreDataN` fields in `complexData`.
pub const MORE_DATA: usize = 23;
/// Sensor types, with how often each is reported.
pub const TYPES: &[&str] = &["CO2", "TEMP", "HUMIDITY", "PRESSURE"];
const TYPE_WEIGHTS: &[f64] = &[0.4, 0.3, 0.2, 0.1];

/// One telemetry reading.
#[derive(Clone, Debug)]
pub struct IotEvent {
    event_id: [u8; 36],
    more_data: [f64; MORE_DATA],
    value: f64,
    device: u32,
    sequence: i64,
    kind: u8,
    created_us: i64,
}

/// The `iot` profile: `devices` devices, each with its own sequence counter.
pub struct Iot {
    sequences: Vec<i64>,
}

impl Iot {
    /// A fleet of `devices` devices.
    pub fn new(devices: u32) -> Self {
        Iot {
            sequences: vec![0; devices as usize],
        }
    }
}

fn more_data_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| (0..MORE_DATA).map(|i| format!("moreData{i}")).collect())
}

fn complex_fields() -> Fields {
    more_data_names()
        .iter()
        .map(|n| Field::new(n, DataType::Float64, false))
        .collect()
}

fn device_id(device: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(b"contoso-device-id-");
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(device);
    for _ in digits.len()..6 {
        out.push(b'0');
    }
    out.extend_from_slice(digits.as_bytes());
}

impl Profile for Iot {
    type Event = IotEvent;
    type Builder = IotBuilder;
    const NAME: &'static str = "iot";
    const KEY_FIELDS: &'static [&'static str] = &["deviceId", "eventId", "type"];
    const DEFAULT_KEY: &'static str = "deviceId";
    const NUMERIC_FIELD: &'static str = "value";

    fn schema() -> SchemaRef {
        static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                Arc::new(Schema::new(vec![
                    Field::new("eventId", DataType::Utf8, false),
                    Field::new("complexData", DataType::Struct(complex_fields()), false),
                    Field::new("value", DataType::Float64, false),
                    Field::new("deviceId", DataType::Utf8, false),
                    Field::new("deviceSequenceNumber", DataType::Int64, false),
                    Field::new("type", DataType::Utf8, false),
                    Field::new("createdAt", timestamp_type(), false),
                ]))
            })
            .clone()
    }

    fn next_event(&mut self, rng: &mut Rng, ts_us: i64) -> IotEvent {
        let device = rng.below(self.sequences.len() as u64) as u32;
        let sequence = self.sequences[device as usize];
        self.sequences[device as usize] += 1;
        let mut more_data = [0.0; MORE_DATA];
        for v in more_data.iter_mut() {
            *v = rng.uniform(0.0, 100.0);
        }
        IotEvent {
            event_id: rng.uuid(),
            more_data,
            value: rng.uniform(0.0, 100.0),
            device,
            sequence,
            kind: rng.weighted(TYPE_WEIGHTS) as u8,
            created_us: ts_us,
        }
    }

    fn set_time(event: &mut IotEvent, ts_us: i64) {
        event.created_us = ts_us;
    }

    fn write_json(e: &IotEvent, out: &mut Vec<u8>) {
        out.reserve(900);
        out.push(b'{');
        json::key(out, "eventId", true);
        out.push(b'"');
        out.extend_from_slice(&e.event_id);
        out.push(b'"');
        json::key(out, "complexData", false);
        out.push(b'{');
        for (i, (name, v)) in more_data_names().iter().zip(e.more_data).enumerate() {
            json::key(out, name, i == 0);
            json::float(out, v);
        }
        out.push(b'}');
        json::key(out, "value", false);
        json::float(out, e.value);
        json::key(out, "deviceId", false);
        out.push(b'"');
        device_id(e.device, out);
        out.push(b'"');
        json::key(out, "deviceSequenceNumber", false);
        json::int(out, e.sequence);
        json::key(out, "type", false);
        json::string(out, TYPES[e.kind as usize]);
        json::key(out, "createdAt", false);
        json::rfc3339_micros(out, e.created_us);
        out.push(b'}');
    }

    fn write_key(e: &IotEvent, field: usize, out: &mut Vec<u8>) {
        match field {
            0 => device_id(e.device, out),
            1 => out.extend_from_slice(&e.event_id),
            _ => out.extend_from_slice(TYPES[e.kind as usize].as_bytes()),
        }
    }

    fn builder(capacity: usize) -> IotBuilder {
        IotBuilder {
            event_id: StringBuilder::with_capacity(capacity, capacity * 36),
            more_data: (0..MORE_DATA)
                .map(|_| Float64Builder::with_capacity(capacity))
                .collect(),
            value: Float64Builder::with_capacity(capacity),
            device_id: StringBuilder::with_capacity(capacity, capacity * 24),
            sequence: Int64Builder::with_capacity(capacity),
            kind: StringBuilder::with_capacity(capacity, capacity * 4),
            created: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            scratch: Vec::with_capacity(32),
        }
    }
}

/// Arrow builder for [`IotEvent`]s.
pub struct IotBuilder {
    event_id: StringBuilder,
    more_data: Vec<Float64Builder>,
    value: Float64Builder,
    device_id: StringBuilder,
    sequence: Int64Builder,
    kind: StringBuilder,
    created: TimestampMicrosecondBuilder,
    scratch: Vec<u8>,
}

impl EventBuilder<IotEvent> for IotBuilder {
    fn append(&mut self, e: &IotEvent) {
        self.event_id
            .append_value(std::str::from_utf8(&e.event_id).expect("uuid is ascii"));
        for (b, v) in self.more_data.iter_mut().zip(e.more_data) {
            b.append_value(v);
        }
        self.value.append_value(e.value);
        self.scratch.clear();
        device_id(e.device, &mut self.scratch);
        self.device_id
            .append_value(std::str::from_utf8(&self.scratch).expect("ascii"));
        self.sequence.append_value(e.sequence);
        self.kind.append_value(TYPES[e.kind as usize]);
        self.created.append_value(e.created_us);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let children: Vec<ArrayRef> = self
            .more_data
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let complex = StructArray::new(complex_fields(), children, None);
        vec![
            Arc::new(self.event_id.finish()),
            Arc::new(complex),
            Arc::new(self.value.finish()),
            Arc::new(self.device_id.finish()),
            Arc::new(self.sequence.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.created.finish()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::super::{new_source, GeneratorOptions};
    use std::collections::HashMap;

    #[test]
    fn seed_001_shape() {
        let mut src = new_source(
            "iot",
            GeneratorOptions {
                duplicate_ratio: Some(0.0),
                ..Default::default()
            },
        )
        .unwrap();
        let mut last: HashMap<String, i64> = HashMap::new();
        for _ in 0..3000 {
            let (mut k, mut v) = (Vec::new(), Vec::new());
            assert!(src.next_message(&mut k, &mut v));
            let m: serde_json::Value = serde_json::from_slice(&v).unwrap();
            let obj = m.as_object().unwrap();
            let order = [
                "eventId",
                "complexData",
                "value",
                "deviceId",
                "deviceSequenceNumber",
                "type",
                "createdAt",
            ];
            assert_eq!(obj.len(), order.len());
            let text = std::str::from_utf8(&v).unwrap();
            let pos: Vec<usize> = order
                .iter()
                .map(|k| text.find(&format!("\"{k}\":")).unwrap())
                .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "seed field order");
            assert_eq!(m["complexData"].as_object().unwrap().len(), 23);
            assert!(m["complexData"]["moreData22"].is_f64());
            let dev = m["deviceId"].as_str().unwrap();
            assert_eq!(k, dev.as_bytes());
            assert!(dev.starts_with("contoso-device-id-") && dev.len() == 24);
            let seq = m["deviceSequenceNumber"].as_i64().unwrap();
            if let Some(prev) = last.insert(dev.to_string(), seq) {
                assert_eq!(seq, prev + 1, "monotonic per device");
            }
            let ts = m["createdAt"].as_str().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok()
                    && ts.ends_with('Z')
                    && ts.len() == 27
            );
        }
        assert!(
            last.len() > 900 && last.len() <= 1000,
            "1000 devices by default"
        );
    }
}
