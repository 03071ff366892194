//! Hand-rolled JSON writing for the profiles: the hot path of generation,
//! so no intermediate `serde_json::Value` per event.

/// Append `s` as a JSON string literal (quoted, escaped).
#[inline]
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append `"name":` (with a leading comma unless `first`).
#[inline]
pub fn key(out: &mut Vec<u8>, name: &str, first: bool) {
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Append a finite float in its shortest round-trip form.
#[inline]
pub fn float(out: &mut Vec<u8>, v: f64) {
    let mut buf = ryu::Buffer::new();
    out.extend_from_slice(buf.format_finite(v).as_bytes());
}

/// Append an integer.
#[inline]
pub fn int(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn push_2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

fn date_time(out: &mut Vec<u8>, ts_us: i64, sep: u8) -> i64 {
    let secs = ts_us.div_euclid(1_000_000);
    let micros = ts_us.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let mut ybuf = itoa::Buffer::new();
    let ys = ybuf.format(y);
    for _ in ys.len()..4 {
        out.push(b'0');
    }
    out.extend_from_slice(ys.as_bytes());
    out.push(b'-');
    push_2(out, m);
    out.push(b'-');
    push_2(out, d);
    out.push(sep);
    push_2(out, sod / 3600);
    out.push(b':');
    push_2(out, sod / 60 % 60);
    out.push(b':');
    push_2(out, sod % 60);
    micros
}

/// Append a quoted RFC 3339 UTC timestamp with microseconds:
/// `"2019-05-16T17:16:40.000003Z"` (seed 001's `createdAt`).
pub fn rfc3339_micros(out: &mut Vec<u8>, ts_us: i64) {
    out.push(b'"');
    let micros = date_time(out, ts_us, b'T');
    out.push(b'.');
    let mut digits = [b'0'; 6];
    let mut v = micros;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits);
    out.extend_from_slice(b"Z\"");
}

/// Append a quoted `"YYYY-MM-DD HH:MM:SS"` UTC timestamp (seed 004's format).
pub fn sql_seconds(out: &mut Vec<u8>, ts_us: i64) {
    out.push(b'"');
    date_time(out, ts_us, b' ');
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn timestamps_match_chrono() {
        for ts in [
            0i64,
            1_558_027_000_000_003,
            951_782_400_123_456,
            4_102_444_799_999_999,
        ] {
            let want = chrono::DateTime::from_timestamp_micros(ts)
                .unwrap()
                .format("\"%Y-%m-%dT%H:%M:%S%.6fZ\"")
                .to_string();
            assert_eq!(s(|o| rfc3339_micros(o, ts)), want);
            let want = chrono::DateTime::from_timestamp_micros(ts)
                .unwrap()
                .format("\"%Y-%m-%d %H:%M:%S\"")
                .to_string();
            assert_eq!(s(|o| sql_seconds(o, ts)), want);
        }
    }

    #[test]
    fn strings_are_escaped_and_parse_back() {
        let raw = "Chá \"quoted\" back\\slash\nnew\u{1}";
        let text = s(|o| string(o, raw));
        let back: String = serde_json::from_str(&text).unwrap();
        assert_eq!(back, raw);
    }
}
