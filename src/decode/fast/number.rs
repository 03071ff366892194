//! Numbers and timestamps as JSON spells them: digits scanned eight at a
//! time and converted as they are read (exact below 2^53, Eisel-Lemire
//! above), and RFC 3339 timestamps in the column's unit.

use super::*;

/// A JSON number as scanned: sign, digits, exponent.
pub(super) struct Number {
    negative: bool,
    /// The digits as an integer (meaningful when `exact`).
    mantissa: u64,
    /// At most 19 digits: `mantissa` holds them all.
    exact: bool,
    exponent: i32,
    integer: bool,
    start: usize,
    end: usize,
}

/// The value of 8 digits read little-endian (first digit in the low byte),
/// each byte already less `'0'`.
#[inline]
pub(super) fn eight_values(v: u64) -> u64 {
    // Pairs of digits, then pairs of pairs, then the two halves.
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let low = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let high = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    low.wrapping_add(high) >> 32
}

pub(super) const POW10_U64: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The ASCII digits at `b[*i..]` added to `m` (wrapping), eight at a time;
/// returns how many there were, `*i` moved past them.
#[inline]
pub(super) fn digits(b: &[u8], i: &mut usize, m: &mut u64) -> usize {
    let first = *i;
    while let Some(chunk) = b.get(*i..*i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let d = v.wrapping_sub(0x3030_3030_3030_3030);
        // The lowest byte that is not a digit gets its high bit set here
        // (borrows and carries only reach the bytes above it).
        let stop = (v.wrapping_add(0x4646_4646_4646_4646) | d) & 0x8080_8080_8080_8080;
        if stop == 0 {
            *m = m.wrapping_mul(100_000_000).wrapping_add(eight_values(d));
            *i += 8;
            continue;
        }
        let n = (stop.trailing_zeros() / 8) as usize;
        if n > 0 {
            // The n digits moved to the top; the zero bytes below are zeros.
            *m = m
                .wrapping_mul(POW10_U64[n])
                .wrapping_add(eight_values(d << (64 - 8 * n)));
            *i += n;
        }
        return *i - first;
    }
    while let Some(&c) = b.get(*i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        *m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        *i += 1;
    }
    *i - first
}

pub(super) const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl<'a> Reader<'a> {
    /// A number in JSON's grammar (nothing laxer).
    #[inline(always)]
    pub(super) fn number(&mut self) -> Option<Number> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        // Digits are summed with wrapping arithmetic; the sum is used only
        // when there are at most 19 of them (below 2^64).
        let mut mantissa = 0u64;
        let int_start = i;
        let int_digits = digits(b, &mut i, &mut mantissa);
        if int_digits == 0 || (int_digits > 1 && b[int_start] == b'0') {
            return None;
        }
        let mut frac_digits = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            frac_digits = digits(b, &mut i, &mut mantissa);
            if frac_digits == 0 {
                return None;
            }
        }
        let mut exponent = 0i32;
        let mut integer = frac_digits == 0;
        if let Some(b'e' | b'E') = b.get(i) {
            integer = false;
            i += 1;
            let neg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let first = i;
            while let Some(c @ b'0'..=b'9') = b.get(i) {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i32::from(c - b'0'));
                i += 1;
            }
            if i == first {
                return None;
            }
            if neg {
                exponent = -exponent;
            }
        }
        self.i = i;
        Some(Number {
            negative,
            mantissa,
            exact: int_digits + frac_digits <= 19,
            exponent: exponent.saturating_sub(frac_digits as i32),
            integer,
            start,
            end: i,
        })
    }

    pub(super) fn text(&self, n: &Number) -> &'a str {
        // SAFETY: a scanned number is ASCII.
        unsafe { std::str::from_utf8_unchecked(&self.b[n.start..n.end]) }
    }

    pub(super) fn f64(&mut self) -> Option<f64> {
        let n = self.number()?;
        let v = if n.exact && n.mantissa <= 1 << 53 && (-22..=22).contains(&n.exponent) {
            // Exact mantissa and power of ten: one correctly rounded operation.
            let m = n.mantissa as i64 as f64; // below 2^53: exact, one instruction
            let v = if n.exponent < 0 {
                m / POW10[n.exponent.unsigned_abs() as usize]
            } else {
                m * POW10[n.exponent as usize]
            };
            Some(v)
        } else if n.exact {
            // Eisel-Lemire on all the digits: correctly rounded unless it
            // says it cannot tell (a negative exponent).
            let fp = lemire::compute_float::<f64>(i64::from(n.exponent), n.mantissa, false);
            (fp.exp >= 0).then(|| extended_to_float::<f64>(fp))
        } else {
            None
        };
        let v = match v {
            Some(v) if n.negative => -v,
            Some(v) => v,
            // More than 19 digits, or undecided: the standard library.
            None => self.text(&n).parse::<f64>().ok()?,
        };
        v.is_finite().then_some(v)
    }

    pub(super) fn f32(&mut self) -> Option<f32> {
        let n = self.number()?;
        let v = self.text(&n).parse::<f32>().ok()?;
        v.is_finite().then_some(v)
    }

    pub(super) fn int(&mut self) -> Option<i64> {
        let n = self.number()?;
        if !n.integer || !n.exact || n.exponent != 0 {
            return None;
        }
        let m = i128::from(n.mantissa);
        i64::try_from(if n.negative { -m } else { m }).ok()
    }
}

/// `YYYY-MM-DD(T| )HH:MM:SS[.f{1,9}](Z|<nothing>)` in `unit` since the
/// epoch; a string without `Z` only where it means UTC. Anything else
/// (offsets, leap seconds, dates alone) is left to arrow-json.
pub(super) fn timestamp(s: &[u8], unit: TimeUnit, naive_utc: bool) -> Option<i64> {
    pub(super) fn num(s: &[u8]) -> Option<i64> {
        s.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    }
    if s.len() < 19
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't' | b' ')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let (hour, minute, second) = (num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = num(&frac[..n])? * 10i64.pow(9 - n as u32);
        rest = &frac[n..];
    }
    match rest {
        b"Z" | b"z" => {}
        b"" if naive_utc => {}
        _ => return None,
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(match unit {
        TimeUnit::Second => secs,
        TimeUnit::Millisecond => secs * 1000 + nanos / 1_000_000,
        TimeUnit::Microsecond => secs * 1_000_000 + nanos / 1000,
        TimeUnit::Nanosecond => secs.checked_mul(1_000_000_000)?.checked_add(nanos)?,
    })
}
