//! Seed 004's zip-code events, as its producer sends them to Event Hubs:
//!
//! ```json
//! {"location":{"type":"Point","coordinates":[-80.733927,35.303614]},
//!  "postal_cd":"28223","country_cd":"US","city_name":"Charlotte","state_abbrv":"NC",
//!  "latitude":35.303614,"longitude":-80.733927,"pk":"28223","seq":1,
//!  "timestamp":"2020-06-25 15:46:20","epoch":1593099980,"sender":"kafkalake"}
//! ```
//!
//! Postal codes, cities and coordinates are the 748 active standard North
//! Carolina zip codes of the PyPI package `zipcodes` 3.0.0 (MIT licence, see
//! `data/LICENSE-zipcodes.txt`). `seq` counts events from 1; `timestamp` is
//! the seed's `YYYY-MM-DD HH:MM:SS` (UTC) and `epoch` the same instant in
//! seconds. `sender` is `kafkalake` unless the options name another (seed
//! 004's own producer sends `python_kafka_sdk`).

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Float64Array, Float64Builder, Int64Builder, ListArray, StringArray, StringBuilder,
    StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

use super::{json, timestamp_type, EventBuilder, Profile, Rng};

const CSV: &str = include_str!("data/nc_zipcodes.csv");
/// Default value of `sender`.
pub const SENDER: &str = "kafkalake";

/// One North Carolina postal code.
#[derive(Debug)]
pub struct ZipCode {
    /// Five digits.
    pub postal_cd: &'static str,
    /// City name.
    pub city_name: &'static str,
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east (negative: west).
    pub longitude: f64,
}

/// All postal codes the profile draws from.
pub fn zip_codes() -> &'static [ZipCode] {
    static ZIPS: OnceLock<Vec<ZipCode>> = OnceLock::new();
    ZIPS.get_or_init(|| {
        CSV.lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|line| {
                let mut f = line.split(',');
                let mut next = || f.next().expect("4 columns in nc_zipcodes.csv");
                ZipCode {
                    postal_cd: next(),
                    city_name: next(),
                    latitude: next().parse().expect("latitude"),
                    longitude: next().parse().expect("longitude"),
                }
            })
            .collect()
    })
}

/// One event.
#[derive(Clone, Debug)]
pub struct GeoEvent {
    zip: u16,
    seq: i64,
    ts_us: i64,
    sender: Arc<str>,
}

/// The `geo` profile.
pub struct Geo {
    seq: i64,
    sender: Arc<str>,
}

impl Geo {
    /// The profile; `seq` starts at 1; `sender` defaults to [`SENDER`].
    pub fn new(sender: Option<&str>) -> Self {
        Geo {
            seq: 0,
            sender: Arc::from(sender.unwrap_or(SENDER)),
        }
    }
}

fn location_fields() -> Fields {
    Fields::from(vec![
        Field::new("type", DataType::Utf8, false),
        Field::new(
            "coordinates",
            DataType::List(Arc::new(Field::new_list_field(DataType::Float64, false))),
            false,
        ),
    ])
}

impl Profile for Geo {
    type Event = GeoEvent;
    type Builder = GeoBuilder;
    const NAME: &'static str = "geo";
    const KEY_FIELDS: &'static [&'static str] = &["postal_cd", "city_name", "sender"];
    const DEFAULT_KEY: &'static str = "postal_cd";
    const NUMERIC_FIELD: &'static str = "latitude";

    fn schema() -> SchemaRef {
        static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                let s = |n: &str| Field::new(n, DataType::Utf8, false);
                Arc::new(Schema::new(vec![
                    Field::new("location", DataType::Struct(location_fields()), false),
                    s("postal_cd"),
                    s("country_cd"),
                    s("city_name"),
                    s("state_abbrv"),
                    Field::new("latitude", DataType::Float64, false),
                    Field::new("longitude", DataType::Float64, false),
                    s("pk"),
                    Field::new("seq", DataType::Int64, false),
                    Field::new("timestamp", timestamp_type(), false),
                    Field::new("epoch", DataType::Int64, false),
                    s("sender"),
                ]))
            })
            .clone()
    }

    fn next_event(&mut self, rng: &mut Rng, ts_us: i64) -> GeoEvent {
        self.seq += 1;
        GeoEvent {
            zip: rng.below(zip_codes().len() as u64) as u16,
            seq: self.seq,
            // The seed's timestamps have whole seconds.
            ts_us: ts_us.div_euclid(1_000_000) * 1_000_000,
            sender: self.sender.clone(),
        }
    }

    fn set_time(event: &mut GeoEvent, ts_us: i64) {
        event.ts_us = ts_us.div_euclid(1_000_000) * 1_000_000;
    }

    fn write_json(e: &GeoEvent, out: &mut Vec<u8>) {
        let z = &zip_codes()[e.zip as usize];
        out.extend_from_slice(b"{\"location\":{\"type\":\"Point\",\"coordinates\":[");
        json::float(out, z.longitude);
        out.push(b',');
        json::float(out, z.latitude);
        out.extend_from_slice(b"]}");
        json::key(out, "postal_cd", false);
        json::string(out, z.postal_cd);
        json::key(out, "country_cd", false);
        json::string(out, "US");
        json::key(out, "city_name", false);
        json::string(out, z.city_name);
        json::key(out, "state_abbrv", false);
        json::string(out, "NC");
        json::key(out, "latitude", false);
        json::float(out, z.latitude);
        json::key(out, "longitude", false);
        json::float(out, z.longitude);
        json::key(out, "pk", false);
        json::string(out, z.postal_cd);
        json::key(out, "seq", false);
        json::int(out, e.seq);
        json::key(out, "timestamp", false);
        json::sql_seconds(out, e.ts_us);
        json::key(out, "epoch", false);
        json::int(out, e.ts_us.div_euclid(1_000_000));
        json::key(out, "sender", false);
        json::string(out, &e.sender);
        out.push(b'}');
    }

    fn write_key(e: &GeoEvent, field: usize, out: &mut Vec<u8>) {
        let z = &zip_codes()[e.zip as usize];
        let v = match field {
            0 => z.postal_cd,
            1 => z.city_name,
            _ => &*e.sender,
        };
        out.extend_from_slice(v.as_bytes());
    }

    fn builder(capacity: usize) -> GeoBuilder {
        GeoBuilder {
            zips: Vec::with_capacity(capacity),
            seq: Int64Builder::with_capacity(capacity),
            ts: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            epoch: Int64Builder::with_capacity(capacity),
            sender: Arc::from(SENDER),
        }
    }
}

/// Arrow builder for [`GeoEvent`]s.
pub struct GeoBuilder {
    zips: Vec<u16>,
    seq: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    epoch: Int64Builder,
    sender: Arc<str>,
}

impl EventBuilder<GeoEvent> for GeoBuilder {
    fn append(&mut self, e: &GeoEvent) {
        if self.zips.is_empty() {
            self.sender = e.sender.clone();
        }
        self.zips.push(e.zip);
        self.seq.append_value(e.seq);
        self.ts.append_value(e.ts_us);
        self.epoch.append_value(e.ts_us.div_euclid(1_000_000));
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let zips = std::mem::take(&mut self.zips);
        let n = zips.len();
        let all = zip_codes();
        let z = |i: &u16| &all[*i as usize];
        let mut lat = Float64Builder::with_capacity(n);
        let mut lon = Float64Builder::with_capacity(n);
        let mut coords = Float64Builder::with_capacity(2 * n);
        let mut postal = StringBuilder::with_capacity(n, 5 * n);
        let mut city = StringBuilder::with_capacity(n, 12 * n);
        for zip in zips.iter().map(z) {
            lat.append_value(zip.latitude);
            lon.append_value(zip.longitude);
            coords.append_value(zip.longitude);
            coords.append_value(zip.latitude);
            postal.append_value(zip.postal_cd);
            city.append_value(zip.city_name);
        }
        let constant = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
        let coordinates = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, false)),
            OffsetBuffer::from_lengths(std::iter::repeat_n(2, n)),
            Arc::new(Float64Array::from(coords.finish())),
            None,
        );
        let location = StructArray::new(
            location_fields(),
            vec![constant("Point"), Arc::new(coordinates)],
            None,
        );
        let postal: ArrayRef = Arc::new(postal.finish());
        vec![
            Arc::new(location),
            postal.clone(),
            constant("US"),
            Arc::new(city.finish()),
            constant("NC"),
            Arc::new(lat.finish()),
            Arc::new(lon.finish()),
            postal,
            Arc::new(self.seq.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.epoch.finish()),
            constant(&self.sender),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_loads() {
        let z = zip_codes();
        assert_eq!(z.len(), 748);
        assert!(z
            .iter()
            .any(|z| z.postal_cd == "28226" && z.city_name == "Charlotte"));
        assert!(z
            .iter()
            .all(|z| (33.0..37.0).contains(&z.latitude) && (-85.0..-75.0).contains(&z.longitude)));
    }
}
