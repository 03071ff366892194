//! Differential fuzzing of the schema-specialised JSON decoder against
//! arrow-json, the reference: values of the seed schemas, then mutated
//! (cut short, wrong types, extreme numbers, escapes, unpaired surrogates,
//! deep nesting, duplicate keys). For every case the fast decoder either
//! gives up or produces exactly arrow-json's rows, each value it vouches for
//! alone decodes the same in arrow-json, and the whole decode (dead letters
//! included) never panics.
//!
//! The normal suite runs a fixed-seed sample; the long run is
//! `cargo test --release --lib fuzz_million -- --ignored` (one million
//! cases; `KAFKALAKE_FUZZ_CASES` and `KAFKALAKE_FUZZ_SEED` change them).

use arrow::datatypes::SchemaRef;

use super::fast::tests::{generated, reference};
use super::{DeadLetter, DecodeOptions, EarlyRows, FastDecoder, JsonDecoder, RawMessage};
use crate::generate::rng::Rng;

/// Snippets a mutation splices in: values of every JSON kind, edge numbers,
/// escapes and broken text.
const SNIPPETS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1",
    "-1",
    "2.7",
    "5.0",
    "1e2",
    "1E-7",
    "-1.5e300",
    "1e400",
    "-1e-400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "123456789012345678901234567890",
    "0.1000000000000000055511151231257827",
    "01",
    "1.",
    ".5",
    "+1",
    "\"\"",
    "\"text\"",
    "\"\\u0041\\n\\t\\\"\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud800\"",
    "\"\\udc00x\"",
    "\"\\u00\"",
    "\"\\x\"",
    "\"2026-01-01T00:00:00Z\"",
    "\"2026-02-30T00:00:00Z\"",
    "\"2026-01-01T00:00:00.123456789+02:00\"",
    "[]",
    "[1,2,3]",
    "[1,]",
    "[null]",
    "{}",
    "{\"a\":1}",
    "{\"a\":}",
    "{",
    "}",
    "\"\u{e9}\u{4e2d}\"",
];

fn mutate(rng: &mut Rng, value: &[u8]) -> Vec<u8> {
    let mut v = value.to_vec();
    let at = |rng: &mut Rng, v: &Vec<u8>| rng.below(v.len() as u64 + 1) as usize;
    match rng.below(9) {
        // Cut short.
        0 => v.truncate(at(rng, &v)),
        // A value replaced by a snippet: after a colon, up to the next comma.
        1 | 2 => {
            let colons: Vec<usize> = (0..v.len()).filter(|&i| v[i] == b':').collect();
            if let Some(&c) = colons.get(rng.below(colons.len().max(1) as u64) as usize) {
                let end = (c + 1..v.len())
                    .find(|&i| matches!(v[i], b',' | b'}'))
                    .unwrap_or(v.len());
                let s = rng.pick(SNIPPETS).as_bytes();
                v.splice(c + 1..end, s.iter().copied());
            }
        }
        // A snippet inserted anywhere.
        3 => {
            let i = at(rng, &v);
            let s = rng.pick(SNIPPETS).as_bytes();
            v.splice(i..i, s.iter().copied());
        }
        // A byte flipped to a JSON-significant one, or to invalid UTF-8.
        4 if !v.is_empty() => {
            let i = rng.below(v.len() as u64) as usize;
            v[i] = *rng.pick(&[b'"', b'\\', b'{', b'[', b',', b':', b' ', 0xff, 0xc3, b'0']);
        }
        // Deep nesting in place of a value.
        5 => {
            let depth = 1 + rng.below(200) as usize;
            let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            if let Some(c) = v.iter().position(|&b| b == b':') {
                v.splice(c + 1..c + 1, nested.bytes().chain(std::iter::once(b'0')));
            }
        }
        // A key given twice.
        6 => {
            if let (Some(start), Some(end)) = (
                v.iter().position(|&b| b == b'"'),
                v.iter().position(|&b| b == b','),
            ) {
                if start < end && v.last() == Some(&b'}') {
                    let pair = v[start..end].to_vec();
                    let close = v.len() - 1;
                    v.splice(close..close, std::iter::once(b',').chain(pair));
                }
            }
        }
        // Whitespace where compact JSON has none.
        7 => {
            let i = at(rng, &v);
            let ws = *rng.pick(&[" ", "\n\t", "\r\n "]);
            v.splice(i..i, ws.bytes());
        }
        // Left as generated.
        _ => {}
    }
    v
}

fn check(
    schema: &SchemaRef,
    fast: &FastDecoder,
    json: &JsonDecoder,
    values: &[Vec<u8>],
    cut: usize,
) {
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    let shown = || {
        refs.iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
    };
    if let Some(batch) = fast.decode(&refs) {
        let slow = reference(schema, &refs, false);
        assert_eq!(
            Some(&batch),
            slow.as_ref(),
            "fast and arrow-json differ on {:?}",
            shown()
        );
    }
    for (v, ok) in refs.iter().zip(fast.accepted(&refs)) {
        if ok {
            let alone = fast.decode(&[v]);
            assert_eq!(
                alone,
                reference(schema, &[v], false),
                "vouched for {:?}",
                String::from_utf8_lossy(v)
            );
        }
    }
    let messages: Vec<RawMessage> = values
        .iter()
        .enumerate()
        .map(|(i, v)| RawMessage {
            partition: 0,
            offset: i as i64,
            timestamp_ms: None,
            key: None,
            value: Some(bytes::Bytes::copy_from_slice(v)),
            headers: None,
        })
        .collect();
    let (rows, dead) = json
        .decode(&messages)
        .unwrap_or_else(|e| panic!("decode failed ({e}) on {:?}", shown()));
    assert_eq!(
        rows.num_rows() + dead.len(),
        values.len(),
        "every message is a row or a dead letter: {:?}",
        shown()
    );
    // Decoded as they are taken (a value the fast path takes is not kept),
    // the batch cut in two at `cut` as a carried-over batch is: the same
    // rows in the same order and the same dead letters as decoded whole.
    let (early_decoder, max) = json.early().expect("seed schemas are covered");
    let mut early = EarlyRows::new(early_decoder, max, 0);
    let kept: Vec<RawMessage> = messages
        .iter()
        .map(|m| RawMessage {
            value: m.value.clone().filter(|v| !early.take(Some(v))),
            ..m.clone()
        })
        .collect();
    let rest = early.split_off(cut);
    let letters = |dead: Vec<DeadLetter>| -> Vec<(i64, String, Option<bytes::Bytes>)> {
        dead.into_iter()
            .map(|d| (d.message.offset, d.error, d.message.value))
            .collect()
    };
    for (part, (whole, early)) in [
        (&kept[..cut], (&messages[..cut], early.finish())),
        (&kept[cut..], (&messages[cut..], rest.finish())),
    ] {
        let (rows, dead) = json.decode(whole).expect("decoded above");
        let (early_rows, early_dead) = json
            .decode_with(part, Some(&early))
            .unwrap_or_else(|e| panic!("early decode failed ({e}) on {:?}", shown()));
        assert_eq!(early_rows, rows, "early rows differ on {:?}", shown());
        assert_eq!(letters(early_dead), letters(dead), "on {:?}", shown());
    }
}

/// `cases` batches of up to 8 values, mutated, for every seed profile.
fn run(seed: u64, cases: usize) {
    let mut rng = Rng::new(seed);
    let profiles = ["iot", "clickstream", "search", "geo"];
    let sources: Vec<(SchemaRef, Vec<Vec<u8>>)> =
        profiles.iter().map(|p| generated(p, 500)).collect();
    let decoders: Vec<(FastDecoder, JsonDecoder)> = sources
        .iter()
        .map(|(schema, _)| {
            (
                FastDecoder::new(schema.clone(), false).expect("seed schemas are covered"),
                JsonDecoder::new("t", schema.clone(), DecodeOptions::default()).unwrap(),
            )
        })
        .collect();
    let mut done = 0;
    while done < cases {
        let k = rng.below(sources.len() as u64) as usize;
        let (schema, values) = &sources[k];
        let n = 1 + rng.below(8) as usize;
        let batch: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let v = rng.pick(values);
                if rng.chance(0.7) {
                    mutate(&mut rng, v)
                } else {
                    v.clone()
                }
            })
            .collect();
        let cut = rng.below(n as u64 + 1) as usize;
        check(schema, &decoders[k].0, &decoders[k].1, &batch, cut);
        done += n;
    }
}

#[test]
fn fuzz_sample() {
    run(15, 20_000);
}

#[test]
#[ignore = "a million cases: cargo test --release --lib fuzz_million -- --ignored"]
fn fuzz_million() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    run(
        env("KAFKALAKE_FUZZ_SEED", 1),
        env("KAFKALAKE_FUZZ_CASES", 1_000_000) as usize,
    );
}
