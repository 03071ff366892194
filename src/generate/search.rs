//! Seed 002's grocery searches: `id`, `content_search`, `lat`, `long`, plus
//! the event `timestamp`. Item names are Portuguese grocery words, several
//! of them non-ASCII ("Chá", "Feijão", "Açúcar"), as in the seed, whose silver
//! layer filters out "Chá". `id` identifies the searcher and repeats, so the
//! seed's gold layer (count of searches per `id`) has something to count.
//! Searches come from around five cities of Brazil and Portugal.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{json, timestamp_type, EventBuilder, Profile, Rng};

/// The grocery items searched for.
pub const ITEMS: &[&str] = &[
    "Arroz",
    "Feijão",
    "Café",
    "Chá",
    "Açúcar",
    "Leite",
    "Pão",
    "Maçã",
    "Banana",
    "Tomate",
    "Queijo",
    "Manteiga",
    "Ovos",
    "Frango",
    "Macarrão",
    "Azeite",
    "Sal",
    "Cebola",
    "Alho",
    "Batata",
    "Cenoura",
    "Laranja",
    "Limão",
    "Iogurte",
    "Chocolate",
    "Água com gás",
    "Pão de queijo",
    "Farinha",
    "Biscoito",
    "Sabão",
];

const CITIES: &[(f64, f64, f64)] = &[
    (-23.5505, -46.6333, 0.35), // São Paulo
    (-22.9068, -43.1729, 0.25), // Rio de Janeiro
    (-19.9167, -43.9345, 0.15), // Belo Horizonte
    (38.7223, -9.1393, 0.15),   // Lisboa
    (41.1579, -8.6291, 0.10),   // Porto
];

const SEARCHERS: u64 = 1000;

/// One search.
#[derive(Clone, Debug)]
pub struct SearchEvent {
    id: i64,
    item: u8,
    lat: f64,
    long: f64,
    ts_us: i64,
}

/// The `search` profile.
#[derive(Default)]
pub struct Search;

impl Search {
    /// The profile.
    pub fn new() -> Self {
        Search
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

impl Profile for Search {
    type Event = SearchEvent;
    type Builder = SearchBuilder;
    const NAME: &'static str = "search";
    const KEY_FIELDS: &'static [&'static str] = &["id", "content_search"];
    const DEFAULT_KEY: &'static str = "id";
    const NUMERIC_FIELD: &'static str = "lat";

    fn schema() -> SchemaRef {
        static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                Arc::new(Schema::new(vec![
                    Field::new("id", DataType::Int64, false),
                    Field::new("content_search", DataType::Utf8, false),
                    Field::new("lat", DataType::Float64, false),
                    Field::new("long", DataType::Float64, false),
                    Field::new("timestamp", timestamp_type(), false),
                ]))
            })
            .clone()
    }

    fn next_event(&mut self, rng: &mut Rng, ts_us: i64) -> SearchEvent {
        let weights: [f64; 5] = std::array::from_fn(|i| CITIES[i].2);
        let (lat, long, _) = CITIES[rng.weighted(&weights)];
        SearchEvent {
            id: rng.below(SEARCHERS) as i64 + 1,
            item: rng.below(ITEMS.len() as u64) as u8,
            lat: round6(lat + rng.uniform(-0.15, 0.15)),
            long: round6(long + rng.uniform(-0.15, 0.15)),
            ts_us,
        }
    }

    fn set_time(event: &mut SearchEvent, ts_us: i64) {
        event.ts_us = ts_us;
    }

    fn write_json(e: &SearchEvent, out: &mut Vec<u8>) {
        out.push(b'{');
        json::key(out, "id", true);
        json::int(out, e.id);
        json::key(out, "content_search", false);
        json::string(out, ITEMS[e.item as usize]);
        json::key(out, "lat", false);
        json::float(out, e.lat);
        json::key(out, "long", false);
        json::float(out, e.long);
        json::key(out, "timestamp", false);
        json::rfc3339_micros(out, e.ts_us);
        out.push(b'}');
    }

    fn write_key(e: &SearchEvent, field: usize, out: &mut Vec<u8>) {
        match field {
            0 => json::int(out, e.id),
            _ => out.extend_from_slice(ITEMS[e.item as usize].as_bytes()),
        }
    }

    fn builder(capacity: usize) -> SearchBuilder {
        SearchBuilder {
            id: Int64Builder::with_capacity(capacity),
            item: StringBuilder::with_capacity(capacity, capacity * 8),
            lat: Float64Builder::with_capacity(capacity),
            long: Float64Builder::with_capacity(capacity),
            ts: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
        }
    }
}

/// Arrow builder for [`SearchEvent`]s.
pub struct SearchBuilder {
    id: Int64Builder,
    item: StringBuilder,
    lat: Float64Builder,
    long: Float64Builder,
    ts: TimestampMicrosecondBuilder,
}

impl EventBuilder<SearchEvent> for SearchBuilder {
    fn append(&mut self, e: &SearchEvent) {
        self.id.append_value(e.id);
        self.item.append_value(ITEMS[e.item as usize]);
        self.lat.append_value(e.lat);
        self.long.append_value(e.long);
        self.ts.append_value(e.ts_us);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.item.finish()),
            Arc::new(self.lat.finish()),
            Arc::new(self.long.finish()),
            Arc::new(self.ts.finish()),
        ]
    }
}
