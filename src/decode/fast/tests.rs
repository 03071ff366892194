//! The fast path against arrow-json: every accepted batch decodes to
//! exactly what arrow-json gives (shared with the fuzz tests).

use super::*;
use arrow::datatypes::Schema;
use arrow::json::reader::ReaderBuilder;

use crate::generate::{new_source, GeneratorOptions};

/// What arrow-json makes of `values` (one row each), or `None` if it fails.
pub(crate) fn reference(schema: &SchemaRef, values: &[&[u8]], strict: bool) -> Option<RecordBatch> {
    let mut d = ReaderBuilder::new(schema.clone())
        .with_batch_size(values.len() + 1)
        .with_strict_mode(strict)
        .build_decoder()
        .ok()?;
    for v in values {
        // A value holding two JSON values is not one row.
        (d.decode(v).ok()? == v.len()).then_some(())?;
        d.decode(b"\n").ok()?;
    }
    let b = d.flush().ok()??;
    (b.num_rows() == values.len()).then_some(b)
}

/// The fast decoder accepts `values` and agrees with arrow-json.
fn same(schema: &SchemaRef, values: &[&[u8]], strict: bool) -> RecordBatch {
    let fast = FastDecoder::new(schema.clone(), strict)
        .expect("schema supported")
        .decode(values)
        .unwrap_or_else(|| panic!("fast path gave up on {:?}", values_text(values)));
    let slow = reference(schema, values, strict).expect("arrow-json decodes it");
    assert_eq!(fast, slow, "for {:?}", values_text(values));
    fast
}

/// The fast decoder gives `values` up (arrow-json decides).
fn gives_up(schema: &SchemaRef, values: &[&[u8]], strict: bool) {
    let d = FastDecoder::new(schema.clone(), strict).expect("schema supported");
    assert!(
        d.decode(values).is_none(),
        "fast path accepted {:?}",
        values_text(values)
    );
}

fn values_text(values: &[&[u8]]) -> Vec<String> {
    values
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

pub(crate) fn generated(profile: &str, n: usize) -> (SchemaRef, Vec<Vec<u8>>) {
    let mut src = new_source(profile, GeneratorOptions::default()).unwrap();
    let values = (0..n)
        .map(|_| {
            let (mut k, mut v) = (Vec::new(), Vec::new());
            src.next_message(&mut k, &mut v);
            v
        })
        .collect();
    (src.schema(), values)
}

#[test]
fn every_profile_decodes_as_arrow_json_does() {
    for profile in ["iot", "clickstream", "search", "geo"] {
        let (schema, values) = generated(profile, 2000);
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        // With the profile's own schema, and with the one inferred from the data.
        let b = same(&schema, &refs, true);
        assert_eq!(b.num_rows(), 2000);
        let inferred = crate::decode::infer_schema(refs.iter().copied())
            .unwrap()
            .unwrap();
        same(&inferred, &refs, false);
    }
}

fn schema() -> SchemaRef {
    let inner = Fields::from(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("tag", DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("n", DataType::Int64, true),
        Field::new("small", DataType::Int8, true),
        Field::new("u", DataType::UInt32, true),
        Field::new("f", DataType::Float64, true),
        Field::new("g", DataType::Float32, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("ns", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new("ms", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("inner", DataType::Struct(inner), true),
        Field::new(
            "xs",
            DataType::List(Arc::new(Field::new("item", DataType::Float64, false))),
            true,
        ),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
    ]))
}

#[test]
fn values_of_every_kind_agree() {
    let s = schema();
    let cases: &[&[u8]] = &[
        br#"{"id":"a"}"#,
        br#"  {"id" : "b" , "n" : -42 }  "#,
        br#"{"n":9223372036854775807,"id":"max","small":-128,"u":4294967295}"#,
        br#"{"id":"min","n":-9223372036854775808,"small":127,"u":0}"#,
        br#"{"id":"f","f":0,"g":0.1}"#,
        br#"{"id":"f","f":-0.0,"g":-1.5e-3}"#,
        br#"{"id":"f","f":1e22,"g":3.4028234e38}"#,
        br#"{"id":"f","f":1e23,"g":1}"#,
        br#"{"id":"f","f":123456789012345678901234567890}"#,
        br#"{"id":"f","f":0.1000000000000000055511151231257827}"#,
        br#"{"id":"f","f":9007199254740993}"#,
        br#"{"id":"f","f":2.2250738585072014e-308}"#,
        br#"{"id":"f","f":4.9e-324}"#,
        br#"{"id":"f","f":1.7976931348623157E+308}"#,
        br#"{"id":"f","f":74.71047161582187,"g":74.71047161582187}"#,
        br#"{"id":"f","f":0.000000000000000000000000012345}"#,
        br#"{"id":"f","f":1234567890123456789,"n":1234567890123456789}"#,
        br#"{"id":"f","f":12345678901234567890.5,"g":-0.00001e-5}"#,
        br#"{"id":"f","f":10.015090353378376,"n":0}"#,
        br#"{"id":"b","ok":true}"#,
        br#"{"id":"b","ok":false,"f":null,"n":null}"#,
        r#"{"id":"esc \"q\" \\ \/ \b\f\n\r\t \u00e9 \uD83D\uDE00 é 😀"}"#.as_bytes(),
        b"{\"id\":\"raw\tcontrol\x01\"}",
        br#"{"id":"t","at":"2026-01-01T00:00:00.000000Z"}"#,
        br#"{"id":"t","at":"2024-02-29 23:59:59.5Z","ns":"1970-01-01T00:00:00.000000001Z"}"#,
        br#"{"id":"t","at":"1969-12-31T23:59:59.999999Z","ms":"1900-03-01T12:00:00.1234"}"#,
        br#"{"id":"t","at":"2026-06-30t08:09:10z","ms":"2026-06-30T08:09:10.123456789Z"}"#,
        br#"{"id":"t","ns":"2262-04-11T23:47:16.854775807Z"}"#,
        br#"{"id":"s","inner":{"x":1.5,"tag":"a"}}"#,
        br#"{"id":"s","inner":null}"#,
        br#"{"id":"s","inner":{"tag":"only"}}"#,
        br#"{"inner":{"tag":"b","x":-2},"id":"out of order","n":1}"#,
        br#"{"id":"l","xs":[1.5, -2 ,3e2],"tags":["a",null,"b"]}"#,
        br#"{"id":"l","xs":[],"tags":null}"#,
        br#"{"id":"l","xs":null,"tags":[ ]}"#,
        // Whitespace wherever the grammar allows it, around keys and floats.
        b"{\"id\":\"w\",\"f\"\t:1.5 ,\"g\": -2\r\n,\"n\" :\n3 }",
        br#"{"id":"w","f": null ,"g" : null}"#,
        br#"{"id":"w","g":0.5,"f":0.25}"#,
    ];
    for v in cases {
        same(&s, &[v], true);
    }
    // And all together, in one batch.
    same(&s, cases, true);
}

#[test]
fn accepted_marks_each_value_alone() {
    let s = schema();
    let d = FastDecoder::new(s, false).unwrap();
    let values: [&[u8]; 5] = [
        br#"{"id":"a","n":1}"#,
        br#"{"id":"b","n":"2"}"#,
        br#"{"id":"c","inner":{"x":1.5,"tag":"t"},"n":3}"#,
        br#"{"id":"d","#,
        br#"{"id":"e"}"#,
    ];
    assert_eq!(d.accepted(&values), [true, false, true, false, true]);
    assert_eq!(d.accepted(&[]), Vec::<bool>::new());
}

#[test]
fn one_long_string_does_not_size_the_next_batch() {
    let s = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    let d = FastDecoder::new(s, false).unwrap();
    let long = format!(r#"{{"s":"{}"}}"#, "x".repeat(1 << 20));
    assert_eq!(d.decode(&[long.as_bytes()]).unwrap().num_rows(), 1);
    let short: Vec<&[u8]> = vec![br#"{"s":"x"}"#; 10_000];
    let b = d.decode(&short).unwrap();
    let strings = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(strings.values().len(), 10_000);
    // Sized by this batch's input (90 kB), not by the last one's strings (10 GB).
    assert!(strings.values().capacity() <= 90_000);
}

#[test]
fn unknown_fields_are_skipped_unless_strict() {
    let s = schema();
    let v: &[u8] = br#"{"id":"a","extra":{"deep":[1,{"x":"\u0041"},[],{}],"s":"\""},"more":[true,false,null,-1.5e3],"n":7}"#;
    same(&s, &[v], false);
    gives_up(&s, &[v], true);
}

#[test]
fn gives_up_on_what_it_does_not_handle() {
    let s = schema();
    for v in [
        // arrow-json decides these (some it accepts, some it refuses).
        &br#"{"id":"a","n":"5"}"#[..],
        br#"{"id":"a","n":5.0}"#,
        br#"{"id":"a","n":1e2}"#,
        br#"{"id":"a","n":9223372036854775808}"#,
        br#"{"id":"a","small":128}"#,
        br#"{"id":"a","u":-1}"#,
        br#"{"id":"a","f":"1.5"}"#,
        br#"{"id":"a","f":1e400}"#,
        br#"{"id":5}"#,
        br#"{"id":"a","ok":1}"#,
        br#"{"id":"a","at":"2026-01-01T00:00:00+01:00"}"#,
        br#"{"id":"a","at":"2026-01-01"}"#,
        br#"{"id":"a","at":"2026-02-30T00:00:00Z"}"#,
        br#"{"id":"a","at":"2026-01-01T00:00:60Z"}"#,
        br#"{"id":"a","at":"2026-01-01T00:00:00.1234567891Z"}"#,
        br#"{"id":"a","at":1767225600000000}"#,
        br#"{"id":"a","inner":{"x":1}}"#,
        br#"{"id":"a","inner":5}"#,
        br#"{"id":"a","xs":[1,null]}"#,
        br#"{"id":"a","xs":[1,]}"#,
        br#"{"id":"a","xs":{}}"#,
        br#"{"id":"a","tags":[1]}"#,
        b"{\"\xff\":1,\"id\":\"a\"}",
        br#"{"id":"a","f":00.5}"#,
        br#"{"id":"a","f":1e}"#,
        br#"{"id":"a","f":-}"#,
        br#"{"id":"a","id":"b"}"#,
        br#"{"i\u0064":"a"}"#,
        br#"{"id":null}"#,
        br#"{"n":1}"#,
        br#"{"id":"\ud800"}"#,
        // Not one JSON object.
        b"",
        b"   ",
        b"[]",
        b"null",
        br#"{"id":"a"}{"id":"b"}"#,
        br#"{"id":"a""#,
        br#"{"id":"a",}"#,
        br#"{"id":"a","n":01}"#,
        br#"{"id":"a","n":-}"#,
        br#"{"id":"a","f":1.}"#,
        br#"{"id":"a","f":.5}"#,
        br#"{"id":"a","f":+1}"#,
        br#"{"id":"a","ok":tru}"#,
        br#"{"id":"a","ok":truex}"#,
        br#"{"id":"\x"}"#,
        b"{\"id\":\"\xff\"}",
    ] {
        gives_up(&s, &[br#"{"id":"fine"}"#, v], false);
    }
}

#[test]
fn floats_parse_as_the_standard_library_does() {
    let mut rng = crate::generate::rng::Rng::new(7);
    let mut text = String::new();
    for i in 0..200_000 {
        // Any bit pattern, and measurements like the generators'.
        let v = match i % 2 {
            0 => f64::from_bits(rng.next_u64()),
            _ => rng.uniform(-100.0, 100.0),
        };
        if !v.is_finite() {
            continue;
        }
        text.clear();
        // Shortest form, scientific form, and cut to a few digits.
        match i % 3 {
            0 => text.push_str(&format!("{v}")),
            1 => text.push_str(&format!("{v:e}")),
            _ => text.push_str(&format!("{:.*e}", i % 19, v)),
        }
        let mut r = Reader {
            b: text.as_bytes(),
            i: 0,
        };
        // Out of range (rounded to infinity) is left to arrow-json.
        let expected = text.parse::<f64>().ok().filter(|v| v.is_finite());
        assert_eq!(r.f64(), expected, "{text}");
        assert_eq!(r.i, text.len(), "{text}");
    }
}

#[test]
fn short_comparisons() {
    let names = [
        "",
        "a",
        "value",
        "deviceId",
        "moreData10",
        "deviceSequenceNumber",
    ];
    for x in names {
        for y in names.iter().filter(|y| y.len() == x.len()) {
            assert_eq!(same_bytes(x.as_bytes(), y.as_bytes()), x == *y);
        }
        let mut z = x.as_bytes().to_vec();
        if let Some(last) = z.last_mut() {
            *last ^= 1;
            assert!(!same_bytes(x.as_bytes(), &z));
            z[0] ^= 2;
            assert!(!same_bytes(x.as_bytes(), &z));
        }
    }
}

#[test]
fn digits_eight_at_a_time() {
    // Runs of every length, ended by every kind of byte, at every offset
    // from the end of the input.
    for len in 0..=20 {
        let run: String = (0..len)
            .map(|i| char::from(b'0' + (i * 7 % 10) as u8))
            .collect();
        for end in [
            "", ".", ",", "e", "E", "/", ":", " ", "\"", "}", "\u{e9}", "-",
        ] {
            for pad in ["", "x", "xxxxxxxxx"] {
                let text = format!("{run}{end}{pad}");
                let (mut i, mut m) = (0, 0u64);
                assert_eq!(digits(text.as_bytes(), &mut i, &mut m), len, "{text:?}");
                assert_eq!(i, len);
                if (1..=19).contains(&len) {
                    assert_eq!(m, run.parse::<u64>().unwrap(), "{text:?}");
                }
            }
        }
    }
    // Added to what is there, from the middle of the input.
    let (mut i, mut m) = (3, 12u64);
    assert_eq!(digits(b"ab.34567890123x", &mut i, &mut m), 11);
    assert_eq!((i, m), (14, 1_234_567_890_123));
}

#[test]
fn rows_taken_one_at_a_time_reserve_little_after_a_batch_of_huge_strings() {
    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    let d = Arc::new(FastDecoder::new(schema, false).unwrap());
    // The last batch had a megabyte per row.
    let huge = format!(r#"{{"s":"{}"}}"#, "x".repeat(1 << 20));
    assert!(d.decode(&[huge.as_bytes()]).is_some());
    let rows = FastRows::new(d);
    match &rows.columns[0] {
        Column::Utf8 { data, .. } => assert!(data.capacity() <= 1 << 20, "{}", data.capacity()),
        _ => panic!("a string column"),
    }
}

#[test]
fn schemas_it_does_not_cover_are_left_to_arrow_json() {
    for t in [
        DataType::Binary,
        DataType::Date32,
        DataType::Decimal128(10, 2),
        DataType::LargeUtf8,
        DataType::LargeList(Arc::new(Field::new("item", DataType::Int64, true))),
        DataType::Struct(Fields::empty()),
    ] {
        let s = Arc::new(Schema::new(vec![Field::new("a", t, true)]));
        assert!(FastDecoder::new(s, false).is_none());
    }
    // Names used twice, and time zones arrow-json cannot read.
    let twice = Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("a", DataType::Int64, true),
    ]);
    assert!(FastDecoder::new(Arc::new(twice), false).is_none());
    for tz in ["Not/AZone", ""] {
        let t = DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into()));
        let s = Arc::new(Schema::new(vec![Field::new("t", t, true)]));
        assert!(FastDecoder::new(s, false).is_none(), "{tz:?}");
    }
    for tz in ["UTC", "+00:00", "Europe/Paris"] {
        let t = DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into()));
        let s = Arc::new(Schema::new(vec![Field::new("t", t, true)]));
        assert!(FastDecoder::new(s, false).is_some(), "{tz:?}");
    }
    // Keys are compared raw: names JSON would escape are left out too.
    for name in ["a\"b", "a\\b", "a\nb"] {
        let s = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, true)]));
        assert!(FastDecoder::new(s, false).is_none());
    }
}
