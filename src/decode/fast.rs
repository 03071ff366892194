//! The fast path of [`super::JsonDecoder`]: JSON objects read once, straight
//! into typed column buffers of one known schema.
//!
//! It covers the shapes streams carry (objects of numbers, strings,
//! booleans, RFC 3339 timestamps and nested objects) and gives up on
//! anything else: a type it has no column for, a value of an unexpected
//! kind, a duplicate or escaped key, a malformed message. Giving up returns
//! `None` and the batch goes through arrow-json, which also finds the dead
//! letters. So a batch it accepts decodes to exactly what arrow-json would
//! give (the tests compare the two), and for the rest nothing changes.
//!
//! Where the time goes in arrow-json for a typical event is building its
//! tape, matching field names through it and parsing numbers from it; here
//! each key is first compared with the field that followed the previous one
//! (producers write fields in a fixed order) and numbers are converted as
//! they are scanned.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    ArrayRef, BooleanArray, BooleanBufferBuilder, Float32Array, Float64Array, Int64Array,
    ListArray, NullBufferBuilder, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, SchemaRef, TimeUnit};
use lexical_parse_float::float::extended_to_float;
use lexical_parse_float::lemire;

/// Structs with more fields than this are left to arrow-json (one bit per
/// field marks what a row has set).
const MAX_FIELDS: usize = 64;
/// Unknown values nested deeper than this are left to arrow-json.
const MAX_DEPTH: usize = 64;

#[derive(Debug)]
enum Kind {
    Bool,
    /// Any integer type: read as i64, range-checked, cast at the end.
    Int {
        min: i64,
        max: i64,
    },
    F32,
    F64,
    /// Strings; with the bytes per row of the last batch, to size the next
    /// one's buffer (growing a buffer of megabytes copies it each time).
    Utf8 {
        bytes_per_row: AtomicUsize,
    },
    /// `naive_utc`: a string without an offset is UTC (no zone, or UTC).
    Timestamp {
        unit: TimeUnit,
        naive_utc: bool,
    },
    Struct(StructPlan),
    List {
        item: Box<FieldPlan>,
        field: FieldRef,
    },
}

#[derive(Debug)]
struct FieldPlan {
    name: Box<[u8]>,
    /// `"name":`, the key as compact JSON writes it.
    quoted: Box<[u8]>,
    data_type: DataType,
    nullable: bool,
    kind: Kind,
}

#[derive(Debug)]
struct StructPlan {
    fields: Vec<FieldPlan>,
    arrow_fields: Fields,
    /// Bits of all fields.
    all: u64,
}

impl FieldPlan {
    fn new(f: &Field) -> Option<Self> {
        // Names are compared with the raw key bytes: none that JSON would escape.
        if f.name()
            .bytes()
            .any(|c| c == b'"' || c == b'\\' || c < 0x20)
        {
            return None;
        }
        let name = f.name().as_bytes();
        Some(FieldPlan {
            name: name.into(),
            quoted: [b"\"", name, b"\":"].concat().into(),
            data_type: f.data_type().clone(),
            nullable: f.is_nullable(),
            kind: Kind::of(f.data_type())?,
        })
    }
}

impl StructPlan {
    fn new(fields: &Fields) -> Option<Self> {
        if fields.is_empty() || fields.len() > MAX_FIELDS {
            return None;
        }
        // arrow-json gives a key to the first field of that name and leaves
        // the others null; not worth copying.
        let mut names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        let plans = fields
            .iter()
            .map(|f| FieldPlan::new(f))
            .collect::<Option<Vec<_>>>()?;
        Some(StructPlan {
            all: if plans.len() == 64 {
                u64::MAX
            } else {
                (1u64 << plans.len()) - 1
            },
            fields: plans,
            arrow_fields: fields.clone(),
        })
    }

    /// The field called `key`.
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.fields.iter().position(|f| *f.name == *key)
    }

    /// Empty columns for `rows` rows of `input` bytes of JSON in all.
    fn columns(&self, rows: usize, input: usize) -> Vec<Column> {
        self.fields
            .iter()
            .map(|f| Column::new(&f.kind, rows, input))
            .collect()
    }
}

impl Kind {
    fn of(t: &DataType) -> Option<Self> {
        let int = |min: i64, max: i64| Some(Kind::Int { min, max });
        match t {
            DataType::Boolean => Some(Kind::Bool),
            DataType::Int8 => int(i8::MIN.into(), i8::MAX.into()),
            DataType::Int16 => int(i16::MIN.into(), i16::MAX.into()),
            DataType::Int32 => int(i32::MIN.into(), i32::MAX.into()),
            DataType::Int64 => int(i64::MIN, i64::MAX),
            DataType::UInt8 => int(0, u8::MAX.into()),
            DataType::UInt16 => int(0, u16::MAX.into()),
            DataType::UInt32 => int(0, u32::MAX.into()),
            DataType::UInt64 => int(0, i64::MAX),
            DataType::Float32 => Some(Kind::F32),
            DataType::Float64 => Some(Kind::F64),
            DataType::Utf8 => Some(Kind::Utf8 {
                bytes_per_row: AtomicUsize::new(16),
            }),
            // A zone arrow-json cannot read fails there before any data.
            DataType::Timestamp(_, Some(tz)) if tz.parse::<Tz>().is_err() => None,
            DataType::Timestamp(unit, tz) => Some(Kind::Timestamp {
                unit: *unit,
                naive_utc: tz.as_deref().is_none_or(|z| matches!(z, "UTC" | "+00:00")),
            }),
            DataType::Struct(fields) => Some(Kind::Struct(StructPlan::new(fields)?)),
            DataType::List(item) => Some(Kind::List {
                item: Box::new(FieldPlan::new(item)?),
                field: item.clone(),
            }),
            _ => None,
        }
    }
}

/// A column being filled.
enum Column {
    Bool(BooleanBufferBuilder, NullBufferBuilder),
    Int(Vec<i64>, NullBufferBuilder),
    F32(Vec<f32>, NullBufferBuilder),
    F64(Vec<f64>, NullBufferBuilder),
    Utf8 {
        offsets: Vec<i32>,
        data: Vec<u8>,
        nulls: NullBufferBuilder,
    },
    Timestamp(Vec<i64>, NullBufferBuilder),
    Struct(Vec<Column>, NullBufferBuilder),
    List {
        offsets: Vec<i32>,
        items: Box<Column>,
        nulls: NullBufferBuilder,
    },
}

impl Column {
    fn new(kind: &Kind, rows: usize, input: usize) -> Self {
        let nulls = NullBufferBuilder::new(rows);
        match kind {
            Kind::Bool => Column::Bool(BooleanBufferBuilder::new(rows), nulls),
            Kind::Int { .. } => Column::Int(Vec::with_capacity(rows), nulls),
            Kind::F32 => Column::F32(Vec::with_capacity(rows), nulls),
            Kind::F64 => Column::F64(Vec::with_capacity(rows), nulls),
            Kind::Utf8 { bytes_per_row } => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                // Strings cannot hold more than the JSON they come from
                // (one huge value in the last batch must not size this one).
                let per_row = bytes_per_row.load(Ordering::Relaxed);
                let guess = rows.saturating_mul(per_row + per_row / 8);
                Column::Utf8 {
                    offsets,
                    data: Vec::with_capacity(guess.min(input)),
                    nulls,
                }
            }
            Kind::Timestamp { .. } => Column::Timestamp(Vec::with_capacity(rows), nulls),
            Kind::Struct(p) => Column::Struct(p.columns(rows, input), nulls),
            Kind::List { item, .. } => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Column::List {
                    offsets,
                    items: Box::new(Column::new(&item.kind, rows, input)),
                    nulls,
                }
            }
        }
    }

    /// A null in `field`; refused where the field may not be null (arrow-json
    /// reports that). Under a null parent every child is null.
    fn push_null(&mut self, field: &FieldPlan, parent_valid: bool) -> Option<()> {
        if parent_valid && !field.nullable {
            return None;
        }
        match self {
            Column::Bool(v, n) => {
                v.append(false);
                n.append_null();
            }
            Column::Int(v, n) | Column::Timestamp(v, n) => {
                v.push(0);
                n.append_null();
            }
            Column::F32(v, n) => {
                v.push(0.0);
                n.append_null();
            }
            Column::F64(v, n) => {
                v.push(0.0);
                n.append_null();
            }
            Column::Utf8 {
                offsets,
                data,
                nulls,
            } => {
                offsets.push(data.len() as i32);
                nulls.append_null();
            }
            Column::List { offsets, nulls, .. } => {
                offsets.push(*offsets.last().unwrap_or(&0));
                nulls.append_null();
            }
            Column::Struct(children, n) => {
                let Kind::Struct(plan) = &field.kind else {
                    return None;
                };
                for (c, f) in children.iter_mut().zip(&plan.fields) {
                    c.push_null(f, false)?;
                }
                n.append_null();
            }
        }
        Some(())
    }

    fn finish(self, field: &FieldPlan) -> Option<ArrayRef> {
        Some(match (self, &field.kind) {
            (Column::Bool(mut v, mut n), _) => Arc::new(BooleanArray::new(v.finish(), n.finish())),
            (Column::Int(v, mut n), _) => {
                let a: ArrayRef = Arc::new(Int64Array::new(ScalarBuffer::from(v), n.finish()));
                if field.data_type == DataType::Int64 {
                    a
                } else {
                    // In range by construction.
                    arrow::compute::cast(&a, &field.data_type).ok()?
                }
            }
            (Column::F32(v, mut n), _) => {
                Arc::new(Float32Array::new(ScalarBuffer::from(v), n.finish()))
            }
            (Column::F64(v, mut n), _) => {
                Arc::new(Float64Array::new(ScalarBuffer::from(v), n.finish()))
            }
            (
                Column::Utf8 {
                    offsets,
                    data,
                    mut nulls,
                },
                kind,
            ) => {
                if let (Kind::Utf8 { bytes_per_row }, Some(rows)) =
                    (kind, NonZeroUsize::new(offsets.len() - 1))
                {
                    bytes_per_row.store(data.len().div_ceil(rows.get()), Ordering::Relaxed);
                }
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                // SAFETY: every string was checked to be UTF-8 as it was
                // appended; offsets only grow, starting at 0.
                Arc::new(unsafe {
                    StringArray::new_unchecked(offsets, data.into(), nulls.finish())
                })
            }
            (Column::Timestamp(v, mut n), Kind::Timestamp { unit, .. }) => {
                let tz = match &field.data_type {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                let (v, n) = (ScalarBuffer::from(v), n.finish());
                match unit {
                    TimeUnit::Second => {
                        Arc::new(TimestampSecondArray::new(v, n).with_timezone_opt(tz))
                    }
                    TimeUnit::Millisecond => {
                        Arc::new(TimestampMillisecondArray::new(v, n).with_timezone_opt(tz))
                    }
                    TimeUnit::Microsecond => {
                        Arc::new(TimestampMicrosecondArray::new(v, n).with_timezone_opt(tz))
                    }
                    TimeUnit::Nanosecond => {
                        Arc::new(TimestampNanosecondArray::new(v, n).with_timezone_opt(tz))
                    }
                }
            }
            (Column::Struct(children, mut n), Kind::Struct(plan)) => {
                let arrays = children
                    .into_iter()
                    .zip(&plan.fields)
                    .map(|(c, f)| c.finish(f))
                    .collect::<Option<Vec<_>>>()?;
                Arc::new(StructArray::try_new(plan.arrow_fields.clone(), arrays, n.finish()).ok()?)
            }
            (
                Column::List {
                    offsets,
                    items,
                    mut nulls,
                },
                Kind::List { item, field },
            ) => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                let items = items.finish(item)?;
                Arc::new(ListArray::try_new(field.clone(), offsets, items, nulls.finish()).ok()?)
            }
            _ => return None,
        })
    }
}

/// A JSON number as scanned: sign, digits, exponent.
struct Number {
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

/// `a == b` for slices of equal length, eight bytes at a time (field names
/// are short: a call to `memcmp` costs more than the comparison).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    debug_assert_eq!(n, b.len());
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    // The last eight bytes (overlapping the previous word when n is not a multiple of 8).
    word(a, n - 8) == word(b, n - 8)
}

/// The value of 8 digits read little-endian (first digit in the low byte),
/// each byte already less `'0'`.
#[inline]
fn eight_values(v: u64) -> u64 {
    // Pairs of digits, then pairs of pairs, then the two halves.
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let low = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let high = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    low.wrapping_add(high) >> 32
}

const POW10_U64: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The ASCII digits at `b[*i..]` added to `m` (wrapping), eight at a time;
/// returns how many there were, `*i` moved past them.
#[inline]
fn digits(b: &[u8], i: &mut usize, m: &mut u64) -> usize {
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

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    /// Whitespace skipped. Compact JSON has none: one comparison says so.
    #[inline(always)]
    fn ws(&mut self) {
        if matches!(self.b.get(self.i), Some(c) if *c > b' ') {
            return;
        }
        self.ws_slow();
    }

    #[cold]
    fn ws_slow(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    #[inline]
    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(lit)
            .then(|| self.i += lit.len())
    }

    /// After a member of an object or list: `true` past a comma (another
    /// follows), `false` past `close`, `None` on anything else.
    #[inline]
    fn more(&mut self, close: u8) -> Option<bool> {
        let mut c = self.peek()?;
        if c <= b' ' {
            self.ws_slow();
            c = self.peek()?;
        }
        self.i += 1;
        match c {
            b',' => {
                self.ws();
                Some(true)
            }
            c if c == close => Some(false),
            _ => None,
        }
    }

    /// Whether the next bytes are exactly `quoted` (a field's `"name":`);
    /// if so, they are consumed.
    #[inline]
    fn key_is(&mut self, quoted: &[u8]) -> bool {
        let end = self.i + quoted.len();
        let hit = end <= self.b.len() && same_bytes(&self.b[self.i..end], quoted);
        if hit {
            self.i = end;
        }
        hit
    }

    /// A string without escapes (keys, timestamps), quotes excluded.
    #[inline]
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let n = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[n] != b'"' {
            return None;
        }
        self.i += n + 1;
        Some(&rest[..n])
    }

    /// A string, unescaped and checked to be UTF-8, appended to `out`.
    fn string_into(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.eat(b'"')?;
        let start = out.len();
        loop {
            let rest = &self.b[self.i..];
            let n = memchr::memchr2(b'"', b'\\', rest)?;
            out.extend_from_slice(&rest[..n]);
            self.i += n + 1;
            if rest[n] == b'"' {
                return std::str::from_utf8(&out[start..]).is_ok().then_some(());
            }
            let c = self.peek()?;
            self.i += 1;
            let plain = match c {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'u' => {
                    let hi = self.hex4()?;
                    let code = match hi {
                        0xD800..=0xDBFF => {
                            self.literal(b"\\u")?;
                            let lo = self.hex4()?;
                            if !(0xDC00..=0xDFFF).contains(&lo) {
                                return None;
                            }
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        0xDC00..=0xDFFF => return None,
                        _ => hi,
                    };
                    let ch = char::from_u32(code)?;
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
                _ => return None,
            };
            out.push(plain);
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.i..self.i + 4)?;
        self.i += 4;
        h.iter()
            .try_fold(0u32, |acc, c| Some(acc * 16 + char::from(*c).to_digit(16)?))
    }

    /// A number in JSON's grammar (nothing laxer).
    #[inline(always)]
    fn number(&mut self) -> Option<Number> {
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

    fn text(&self, n: &Number) -> &'a str {
        // SAFETY: a scanned number is ASCII.
        unsafe { std::str::from_utf8_unchecked(&self.b[n.start..n.end]) }
    }

    fn f64(&mut self) -> Option<f64> {
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

    fn f32(&mut self) -> Option<f32> {
        let n = self.number()?;
        let v = self.text(&n).parse::<f32>().ok()?;
        v.is_finite().then_some(v)
    }

    fn int(&mut self) -> Option<i64> {
        let n = self.number()?;
        if !n.integer || !n.exact || n.exponent != 0 {
            return None;
        }
        let m = i128::from(n.mantissa);
        i64::try_from(if n.negative { -m } else { m }).ok()
    }

    /// Any JSON value, checked and dropped.
    fn skip(&mut self, depth: usize, scratch: &mut Vec<u8>) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => {
                scratch.clear();
                self.string_into(scratch)
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.eat(close).is_some() {
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        scratch.clear();
                        self.string_into(scratch)?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.skip(depth + 1, scratch)?;
                    if !self.more(close)? {
                        return Some(());
                    }
                }
            }
            _ => None,
        }
    }
}

/// Decodes JSON objects of one schema, or gives up (see the module docs).
#[derive(Debug)]
pub struct FastDecoder {
    schema: SchemaRef,
    plan: StructPlan,
    /// A key the schema lacks fails (arrow-json's strict mode) instead of being skipped.
    strict: bool,
}

impl FastDecoder {
    /// `None` when the schema has a type the fast path does not handle.
    pub fn new(schema: SchemaRef, strict: bool) -> Option<Self> {
        let plan = StructPlan::new(schema.fields())?;
        Some(FastDecoder {
            schema,
            plan,
            strict,
        })
    }

    /// One row per value, or `None` to leave the batch to arrow-json.
    pub fn decode(&self, values: &[&[u8]]) -> Option<RecordBatch> {
        let input = values.iter().map(|v| v.len()).sum();
        let mut columns = self.plan.columns(values.len(), input);
        let mut scratch = Vec::new();
        for v in values {
            self.row(v, &mut columns, &mut scratch)?;
        }
        let arrays = columns
            .into_iter()
            .zip(&self.plan.fields)
            .map(|(c, f)| c.finish(f))
            .collect::<Option<Vec<_>>>()?;
        RecordBatch::try_new(self.schema.clone(), arrays).ok()
    }

    /// Which of `values` the fast path takes (each on its own). Where a
    /// batch failed, only the others need arrow-json's opinion one by one.
    pub fn accepted(&self, values: &[&[u8]]) -> Vec<bool> {
        // A value given up halfway leaves its columns uneven: they are only
        // filled to be thrown away.
        let input = values.iter().map(|v| v.len()).sum();
        let mut columns = self.plan.columns(values.len(), input);
        let mut scratch = Vec::new();
        values
            .iter()
            .map(|v| self.row(v, &mut columns, &mut scratch).is_some())
            .collect()
    }

    /// One message's row appended to `columns`.
    fn row(&self, v: &[u8], columns: &mut [Column], scratch: &mut Vec<u8>) -> Option<()> {
        // UTF-8 is checked where bytes are kept or compared loosely (strings,
        // unknown keys); everything else is ASCII by the grammar.
        let mut r = Reader { b: v, i: 0 };
        r.ws();
        self.object(&mut r, &self.plan, columns, scratch)?;
        r.ws();
        (r.i == v.len()).then_some(())
    }

    fn object(
        &self,
        r: &mut Reader<'_>,
        plan: &StructPlan,
        columns: &mut [Column],
        scratch: &mut Vec<u8>,
    ) -> Option<()> {
        r.eat(b'{')?;
        r.ws();
        let mut seen = 0u64;
        if r.eat(b'}').is_none() {
            let mut hint = 0;
            loop {
                // Most keys are the field after the previous one: compare
                // it in place, and scan the key only when it is not.
                let found = match plan.fields.get(hint) {
                    Some(f) if r.key_is(&f.quoted) => Some(hint),
                    _ => {
                        let key = r.plain_string()?;
                        let k = plan.find(key);
                        if k.is_none() {
                            std::str::from_utf8(key).ok()?;
                        }
                        r.ws();
                        r.eat(b':')?;
                        k
                    }
                };
                r.ws();
                match found {
                    Some(k) => {
                        let bit = 1u64 << k;
                        if seen & bit != 0 {
                            return None;
                        }
                        seen |= bit;
                        // Floats are most of the values of the telemetry
                        // profiles: read in place, without the general match.
                        match &mut columns[k] {
                            Column::F64(v, n) if r.peek() != Some(b'n') => {
                                v.push(r.f64()?);
                                n.append_non_null();
                            }
                            c => self.value(r, &plan.fields[k], c, scratch)?,
                        }
                        hint = k + 1;
                    }
                    None if self.strict => return None,
                    None => r.skip(0, scratch)?,
                }
                if !r.more(b'}')? {
                    break;
                }
            }
        }
        if seen != plan.all {
            for (k, (f, c)) in plan.fields.iter().zip(columns.iter_mut()).enumerate() {
                if seen & (1u64 << k) == 0 {
                    c.push_null(f, true)?;
                }
            }
        }
        Some(())
    }

    #[inline]
    fn value(
        &self,
        r: &mut Reader<'_>,
        field: &FieldPlan,
        column: &mut Column,
        scratch: &mut Vec<u8>,
    ) -> Option<()> {
        if r.peek()? == b'n' {
            r.literal(b"null")?;
            return column.push_null(field, true);
        }
        match (column, &field.kind) {
            (Column::F64(v, n), _) => {
                v.push(r.f64()?);
                n.append_non_null();
            }
            (Column::Int(v, n), Kind::Int { min, max }) => {
                let x = r.int()?;
                if x < *min || x > *max {
                    return None;
                }
                v.push(x);
                n.append_non_null();
            }
            (Column::F32(v, n), _) => {
                v.push(r.f32()?);
                n.append_non_null();
            }
            (
                Column::Utf8 {
                    offsets,
                    data,
                    nulls,
                },
                _,
            ) => {
                r.string_into(data)?;
                offsets.push(i32::try_from(data.len()).ok()?);
                nulls.append_non_null();
            }
            (Column::Bool(v, n), _) => {
                let b = match r.peek()? {
                    b't' => r.literal(b"true").map(|_| true)?,
                    b'f' => r.literal(b"false").map(|_| false)?,
                    _ => return None,
                };
                v.append(b);
                n.append_non_null();
            }
            (Column::Timestamp(v, n), Kind::Timestamp { unit, naive_utc }) => {
                let s = r.plain_string()?;
                v.push(timestamp(s, *unit, *naive_utc)?);
                n.append_non_null();
            }
            (Column::Struct(children, n), Kind::Struct(plan)) => {
                self.object(r, plan, children, scratch)?;
                n.append_non_null();
            }
            (
                Column::List {
                    offsets,
                    items,
                    nulls,
                },
                Kind::List { item, .. },
            ) => {
                r.eat(b'[')?;
                r.ws();
                let mut count = 0i32;
                if r.eat(b']').is_none() {
                    loop {
                        self.value(r, item, items, scratch)?;
                        count += 1;
                        if !r.more(b']')? {
                            break;
                        }
                    }
                }
                let last = *offsets.last().unwrap_or(&0);
                offsets.push(last.checked_add(count)?);
                nulls.append_non_null();
            }
            _ => return None,
        }
        Some(())
    }
}

/// `YYYY-MM-DD(T| )HH:MM:SS[.f{1,9}](Z|<nothing>)` in `unit` since the
/// epoch; a string without `Z` only where it means UTC. Anything else
/// (offsets, leap seconds, dates alone) is left to arrow-json.
fn timestamp(s: &[u8], unit: TimeUnit, naive_utc: bool) -> Option<i64> {
    fn num(s: &[u8]) -> Option<i64> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow::datatypes::Schema;
    use arrow::json::reader::ReaderBuilder;

    use crate::generate::{new_source, GeneratorOptions};

    /// What arrow-json makes of `values` (one row each), or `None` if it fails.
    pub(crate) fn reference(
        schema: &SchemaRef,
        values: &[&[u8]],
        strict: bool,
    ) -> Option<RecordBatch> {
        let mut d = ReaderBuilder::new(schema.clone())
            .with_batch_size(values.len().max(1))
            .with_strict_mode(strict)
            .build_decoder()
            .ok()?;
        for v in values {
            d.decode(v).ok()?;
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
}
