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

mod column;
mod number;

use column::*;
use number::*;

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

/// Rows decoded one value at a time, as messages arrive: a value the fast
/// path does not take leaves no trace (the columns are cut back to the rows
/// before it), so the caller can keep that message for the full decoder.
pub struct FastRows {
    decoder: Arc<FastDecoder>,
    columns: Vec<Column>,
    rows: usize,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for FastRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastRows")
            .field("rows", &self.rows)
            .finish()
    }
}

/// Rows the column buffers of [`FastRows`] are first sized for.
const FIRST_ROWS: usize = 1024;
/// What a string column of [`FastRows`] first reserves at most (it is
/// sized from the last batch's bytes per row; one huge value there must
/// not reserve megabytes per partition here).
const FIRST_STRING_BYTES: usize = 1 << 20;

impl FastRows {
    /// No rows yet, for values of `decoder`'s schema.
    pub fn new(decoder: Arc<FastDecoder>) -> Self {
        FastRows {
            columns: decoder.plan.columns(FIRST_ROWS, FIRST_STRING_BYTES),
            decoder,
            rows: 0,
            scratch: Vec::new(),
        }
    }

    /// Append `value`'s row; `false` (and nothing appended) when the fast
    /// path does not take it.
    #[inline]
    pub fn push(&mut self, value: &[u8]) -> bool {
        if self
            .decoder
            .row(value, &mut self.columns, &mut self.scratch)
            .is_some()
        {
            self.rows += 1;
            return true;
        }
        for c in &mut self.columns {
            c.truncate(self.rows);
        }
        false
    }

    /// Rows appended.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The decoder the rows follow.
    pub fn decoder(&self) -> &Arc<FastDecoder> {
        &self.decoder
    }

    /// The rows as a batch of the decoder's schema.
    pub fn finish(self) -> Option<RecordBatch> {
        let arrays = self
            .columns
            .into_iter()
            .zip(&self.decoder.plan.fields)
            .map(|(c, f)| c.finish(f))
            .collect::<Option<Vec<_>>>()?;
        RecordBatch::try_new(self.decoder.schema.clone(), arrays).ok()
    }
}

impl FastDecoder {
    /// The schema of the values it decodes.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

#[cfg(test)]
pub(crate) mod tests;
