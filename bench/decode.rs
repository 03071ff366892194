//! JSON decoding on its own: generated events of each profile decoded into
//! Arrow record batches by the decoder an ingest uses, as many times as fit
//! in a second or so per profile, in this process alone (no broker).
//!
//!     cargo bench --bench decode [-- iot search ...]
//!
//! Prints, per profile, nanoseconds and CPU per message and the JSON
//! throughput; the schema is the one an ingest infers from the data.

use std::time::Instant;

use bytes::Bytes;
use kafkalake::decode::{infer_schema, DecodeOptions, JsonDecoder, RawMessage};
use kafkalake::generate::{new_source, GeneratorOptions};

const BATCH: usize = 100_000;

fn main() {
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let profiles = if asked.is_empty() {
        vec![
            "iot".to_string(),
            "search".into(),
            "clickstream".into(),
            "geo".into(),
        ]
    } else {
        asked
    };
    println!(
        "{:<12} {:>9} {:>8} {:>10} {:>8}",
        "profile", "messages", "bytes", "ns/msg", "MB/s"
    );
    for profile in profiles {
        let mut src = match new_source(&profile, GeneratorOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{profile}: {e}");
                std::process::exit(2);
            }
        };
        let messages: Vec<RawMessage> = (0..BATCH)
            .map(|i| {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                src.next_message(&mut k, &mut v);
                RawMessage {
                    partition: 0,
                    offset: i as i64,
                    timestamp_ms: Some(0),
                    key: Some(Bytes::from(k)),
                    value: Some(Bytes::from(v)),
                    headers: None,
                }
            })
            .collect();
        let bytes: usize = messages
            .iter()
            .map(|m| m.value.as_ref().map_or(0, |v| v.len()))
            .sum();
        let schema = infer_schema(messages.iter().filter_map(|m| m.value.as_deref()))
            .expect("inference")
            .expect("a schema");
        let decoder = JsonDecoder::new("bench", schema, DecodeOptions::default()).expect("decoder");
        // One round to warm caches and the allocator, then timed rounds.
        let (batch, dead) = decoder.decode(&messages).expect("decode");
        assert_eq!((batch.num_rows(), dead.len()), (BATCH, 0));
        let mut rounds = 0usize;
        let started = Instant::now();
        while rounds < 3 || started.elapsed().as_secs_f64() < 1.0 {
            let (batch, _) = decoder.decode(&messages).expect("decode");
            std::hint::black_box(batch);
            rounds += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        let n = (rounds * BATCH) as f64;
        println!(
            "{:<12} {:>9} {:>8} {:>10.0} {:>8.0}",
            profile,
            BATCH,
            bytes / BATCH,
            secs / n * 1e9,
            (rounds * bytes) as f64 / secs / 1e6
        );
    }
}
