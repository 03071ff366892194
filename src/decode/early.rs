//! Values decoded as their messages are taken from Kafka, while the bytes
//! are still in librdkafka's buffer: the message is kept without its value
//! (no copy of the bytes, no second read of them when the batch closes).
//! Values the fast path does not take keep their bytes and are decoded with
//! the batch as before; [`super::JsonDecoder::decode_with`] puts both back in
//! offset order.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Fields, SchemaRef};

use super::fast::{FastDecoder, FastRows};
use crate::error::{Error, Result};

fn schema_error(msg: String) -> Error {
    Error::Arrow(arrow::error::ArrowError::SchemaError(msg))
}

/// The early rows of one partition's buffered messages.
#[derive(Debug)]
pub struct EarlyRows {
    /// Per buffered message: the length of its value when its row was
    /// decoded here (its value is not kept), else 0.
    decoded: Vec<usize>,
    /// Rows finished so far (by a split or a new decoder), in order.
    pieces: Vec<RecordBatch>,
    current: FastRows,
    /// Largest value decoded here (larger ones are the full decoder's to refuse).
    max_bytes: usize,
}

/// What [`EarlyRows`] leaves for the full decode once its batch closes.
#[derive(Debug, Default)]
pub struct Early {
    /// Per message: whether its row is in `rows` (its value was not kept).
    pub decoded: Vec<bool>,
    /// Those rows in message order, possibly of narrower schemas than the
    /// decoder's now (fields it gained since are null in them).
    pub rows: Vec<RecordBatch>,
}

impl EarlyRows {
    /// For a buffer that already holds `buffered` messages (kept whole).
    pub fn new(decoder: Arc<FastDecoder>, max_bytes: usize, buffered: usize) -> Self {
        EarlyRows {
            decoded: vec![0; buffered],
            pieces: Vec::new(),
            current: FastRows::new(decoder),
            max_bytes,
        }
    }

    /// Decode the next message's value: `true` when its row was appended
    /// (the value need not be kept), `false` when it must be kept.
    #[inline]
    pub fn take(&mut self, value: Option<&[u8]>) -> bool {
        let len = match value {
            Some(v) if v.len() <= self.max_bytes && self.current.push(v) => v.len(),
            _ => 0,
        };
        self.decoded.push(len);
        len > 0
    }

    /// Bytes of the value of the `i`th message that were decoded here and
    /// not kept (0 when they were kept).
    pub fn value_len(&self, i: usize) -> usize {
        self.decoded.get(i).copied().unwrap_or(0)
    }

    /// The decoder of the rows to come.
    pub fn decoder(&self) -> &Arc<FastDecoder> {
        self.current.decoder()
    }

    /// Rows to come follow `decoder` (the rows so far keep their schema).
    pub fn set_decoder(&mut self, decoder: Arc<FastDecoder>, max_bytes: usize) {
        self.seal(decoder);
        self.max_bytes = max_bytes;
    }

    /// The current rows into `pieces`, and fresh columns of `decoder`.
    fn seal(&mut self, decoder: Arc<FastDecoder>) {
        let current = std::mem::replace(&mut self.current, FastRows::new(decoder));
        if !current.is_empty() {
            // The columns were filled by this decoder: finishing cannot fail.
            if let Some(rows) = current.finish() {
                self.pieces.push(rows);
            }
        }
    }

    /// The part for the messages from `at` on (as `Vec::split_off`).
    pub fn split_off(&mut self, at: usize) -> EarlyRows {
        let decoder = self.decoder().clone();
        self.seal(decoder.clone());
        let mut keep = self.decoded[..at].iter().filter(|&&n| n > 0).count();
        let decoded = self.decoded.split_off(at);
        let mut rest = Vec::new();
        for piece in std::mem::take(&mut self.pieces) {
            let n = piece.num_rows();
            if keep >= n {
                keep -= n;
                self.pieces.push(piece);
            } else {
                if keep > 0 {
                    self.pieces.push(piece.slice(0, keep));
                }
                rest.push(piece.slice(keep, n - keep));
                keep = 0;
            }
        }
        EarlyRows {
            decoded,
            pieces: rest,
            current: FastRows::new(decoder),
            max_bytes: self.max_bytes,
        }
    }

    /// The rows, once the batch is closed.
    pub fn finish(mut self) -> Early {
        let decoder = self.decoder().clone();
        self.seal(decoder);
        Early {
            decoded: self.decoded.iter().map(|&n| n > 0).collect(),
            rows: self.pieces,
        }
    }
}

/// `rows` as `schema`: fields it lacks (added to the schema since they were
/// decoded, at any depth of structs) are null.
pub fn widen_to(rows: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if rows.schema().fields() == schema.fields() {
        return Ok(rows.clone());
    }
    let columns = fill(
        rows.num_rows(),
        rows.schema().fields(),
        rows.columns(),
        schema.fields(),
    )?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn fill(n: usize, have: &Fields, columns: &[ArrayRef], want: &Fields) -> Result<Vec<ArrayRef>> {
    if let Some(extra) = have.iter().find(|f| want.find(f.name()).is_none()) {
        return Err(schema_error(format!(
            "rows decoded early have a field '{}' the schema no longer has",
            extra.name()
        )));
    }
    want.iter()
        .map(|f| {
            let Some((i, h)) = have.find(f.name()) else {
                return Ok(new_null_array(f.data_type(), n));
            };
            let c = &columns[i];
            match (h.data_type(), f.data_type()) {
                (a, b) if a == b => Ok(c.clone()),
                (DataType::Struct(hf), DataType::Struct(wf)) => {
                    let s = c
                        .as_any()
                        .downcast_ref::<StructArray>()
                        .ok_or_else(|| schema_error("struct column is not a struct".into()))?;
                    let children = fill(s.len(), hf, s.columns(), wf)?;
                    Ok(Arc::new(StructArray::try_new(
                        wf.clone(),
                        children,
                        s.nulls().cloned(),
                    )?) as ArrayRef)
                }
                (a, b) => Err(schema_error(format!(
                    "rows decoded early have field '{}' as {a}, the schema now as {b}",
                    f.name()
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, Schema};
    use bytes::Bytes;

    use super::*;
    use crate::decode::{DecodeOptions, JsonDecoder, RawMessage};

    fn schema(wide: bool) -> SchemaRef {
        let mut inner = vec![Field::new("x", DataType::Float64, true)];
        let mut fields = vec![Field::new("a", DataType::Float64, true)];
        if wide {
            inner.push(Field::new("y", DataType::Utf8, true));
            fields.push(Field::new("b", DataType::Int64, true));
        }
        fields.insert(1, Field::new("s", DataType::Struct(inner.into()), true));
        Arc::new(Schema::new(fields))
    }

    fn decoder(wide: bool) -> JsonDecoder {
        let opts = DecodeOptions {
            evolve: true,
            metadata_columns: true,
            ..Default::default()
        };
        JsonDecoder::new("t", schema(wide), opts).unwrap()
    }

    #[test]
    fn rows_decoded_early_with_a_narrower_schema_come_out_as_the_wider_decoder_gives_them() {
        let values: [&[u8]; 7] = [
            br#"{"a":1.5,"s":{"x":2.5}}"#,
            br#"{"a":2,"s":{"x":3,"y":"new"},"b":7}"#,
            br#"{"a":3.25,"s":null}"#,
            br#"{"a":"not a number"}"#,
            br#"{"a":4,"s":{"x":1e3}}"#,
            br#"{"b":8}"#,
            br#"{"a":5,"s":{"x":-0.5}}"#,
        ];
        let messages: Vec<RawMessage> = values
            .iter()
            .enumerate()
            .map(|(i, v)| RawMessage {
                partition: 3,
                offset: 100 + i as i64,
                timestamp_ms: Some(1_000 + i as i64),
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::copy_from_slice(v)),
                headers: None,
            })
            .collect();
        // The narrow decoder takes the first three it can, then the wide one
        // (the schema widened meanwhile) takes what follows.
        let (narrow, max) = decoder(false).early().unwrap();
        let wide = decoder(true);
        let mut early = EarlyRows::new(narrow, max, 0);
        let mut kept = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if i == 4 {
                let (d, max) = wide.early().unwrap();
                early.set_decoder(d, max);
            }
            let taken = early.take(m.value.as_deref());
            kept.push(RawMessage {
                value: m.value.clone().filter(|_| !taken),
                ..m.clone()
            });
        }
        let decoded: Vec<bool> = kept.iter().map(|m| m.value.is_none()).collect();
        assert_eq!(
            decoded,
            [true, false, true, false, true, true, true],
            "new fields and a bad value are left for the full decode"
        );
        let (rows, dead) = wide.decode_with(&kept, Some(&early.finish())).unwrap();
        let (want_rows, want_dead) = wide.decode(&messages).unwrap();
        assert_eq!(rows, want_rows);
        assert_eq!(rows.num_rows(), 6);
        let offsets = |d: &[crate::decode::DeadLetter]| -> Vec<(i64, String)> {
            d.iter()
                .map(|d| (d.message.offset, d.error.clone()))
                .collect()
        };
        assert_eq!(offsets(&dead), offsets(&want_dead));
        assert_eq!(dead[0].message.value.as_deref(), Some(values[3]));
    }

    #[test]
    fn a_split_keeps_each_message_with_its_row() {
        let (d, max) = decoder(false).early().unwrap();
        let mut early = EarlyRows::new(d, max, 2);
        for a in 0..10 {
            let v = format!(r#"{{"a":{a}}}"#);
            assert!(early.take(Some(v.as_bytes())));
            if a == 3 {
                // Rows sealed into a piece before the split, as a new decoder does.
                let d = early.decoder().clone();
                early.set_decoder(d, max);
            }
        }
        let rest = early.split_off(7);
        let a = |e: EarlyRows| -> Vec<f64> {
            let early = e.finish();
            early
                .rows
                .iter()
                .flat_map(|r| {
                    r.column(0)
                        .as_any()
                        .downcast_ref::<arrow::array::Float64Array>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect()
        };
        assert_eq!(a(early), [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(a(rest), [5.0, 6.0, 7.0, 8.0, 9.0]);
    }
}
