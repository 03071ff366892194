//! What the producer sends: generated events, or the rows of an Arrow stream
//! a user hands over.

use arrow::array::{Array, AsArray, BinaryArray, RecordBatch, RecordBatchReader};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::json::writer::LineDelimitedWriter;

use crate::error::{Error, Result};
use crate::generate::EventSource;

/// A stream of Kafka messages.
pub trait MessageSource: Send {
    /// Write the next message into `key`/`value` (both cleared by the
    /// caller). Returns `Ok(None)` at the end, else whether there is a key.
    fn next_message(&mut self, key: &mut Vec<u8>, value: &mut Vec<u8>) -> Result<Option<bool>>;
}

impl MessageSource for Box<dyn EventSource> {
    fn next_message(&mut self, key: &mut Vec<u8>, value: &mut Vec<u8>) -> Result<Option<bool>> {
        Ok(Some(EventSource::next_message(self.as_mut(), key, value)))
    }
}

/// One message per row of an Arrow stream: the value is the row as a JSON
/// object (or the bytes of a chosen binary/string column), the key the text
/// of a chosen column.
pub struct ArrowRows {
    reader: Box<dyn RecordBatchReader + Send>,
    key_column: Option<String>,
    value_column: Option<String>,
    current: Option<Loaded>,
}

impl ArrowRows {
    /// Check the columns against the stream's schema before anything is sent.
    pub fn new(
        reader: Box<dyn RecordBatchReader + Send>,
        key_column: Option<String>,
        value_column: Option<String>,
    ) -> Result<Self> {
        let schema = reader.schema();
        let names = || {
            schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (what, col) in [("key_column", &key_column), ("value_column", &value_column)] {
            if let Some(c) = col {
                if schema.index_of(c).is_err() {
                    return Err(Error::InvalidArgument(format!(
                        "{what} '{c}' is not a column of the data; its columns are: {}",
                        names()
                    )));
                }
            }
        }
        if let Some(c) = &value_column {
            let t = schema.field_with_name(c).expect("checked").data_type();
            if !matches!(
                t,
                DataType::Binary
                    | DataType::LargeBinary
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::BinaryView
                    | DataType::Utf8View
            ) {
                return Err(Error::InvalidArgument(format!(
                    "value_column '{c}' has type {t}; it must hold bytes or strings \
                     (leave value_column unset to send each row as a JSON object)"
                )));
            }
        }
        Ok(ArrowRows {
            reader,
            key_column,
            value_column,
            current: None,
        })
    }

    fn load(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        let keys = match &self.key_column {
            None => None,
            Some(c) => Some(as_binary(batch.column_by_name(c).expect("checked"), true)?),
        };
        let values = match &self.value_column {
            Some(c) => Values::Column(as_binary(batch.column_by_name(c).expect("checked"), false)?),
            None => {
                let mut buf = Vec::with_capacity(n * 256);
                let mut w = LineDelimitedWriter::new(&mut buf);
                w.write(&batch)?;
                w.finish()?;
                drop(w);
                // The writer escapes newlines inside strings, so each line is one row.
                let ends = buf
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i)
                    .collect();
                Values::Lines { buf, ends }
            }
        };
        self.current = Some(Loaded {
            keys,
            values,
            row: 0,
            rows: n,
        });
        Ok(())
    }
}

/// The rows of one batch, sent one by one without copying them first.
struct Loaded {
    keys: Option<BinaryArray>,
    values: Values,
    row: usize,
    rows: usize,
}

enum Values {
    /// A binary column holding each value as it is.
    Column(BinaryArray),
    /// Line-delimited JSON of the whole batch and the end of each line.
    Lines { buf: Vec<u8>, ends: Vec<usize> },
}

/// A key or value column as binary: bytes as they are, anything else (for
/// keys) as its text.
fn as_binary(col: &dyn Array, allow_cast: bool) -> Result<BinaryArray> {
    let col = match col.data_type() {
        DataType::Binary => col.as_binary::<i32>().clone(),
        _ if allow_cast => cast(&cast(col, &DataType::Utf8)?, &DataType::Binary)?
            .as_binary::<i32>()
            .clone(),
        _ => cast(col, &DataType::Binary)?.as_binary::<i32>().clone(),
    };
    Ok(col)
}

impl MessageSource for ArrowRows {
    fn next_message(&mut self, key: &mut Vec<u8>, value: &mut Vec<u8>) -> Result<Option<bool>> {
        loop {
            if let Some(l) = &mut self.current {
                if l.row < l.rows {
                    let i = l.row;
                    l.row += 1;
                    match &l.values {
                        Values::Column(a) => {
                            if a.is_valid(i) {
                                value.extend_from_slice(a.value(i));
                            }
                        }
                        Values::Lines { buf, ends } => {
                            let start = if i == 0 { 0 } else { ends[i - 1] + 1 };
                            value.extend_from_slice(&buf[start..ends[i]]);
                        }
                    }
                    return Ok(Some(match &l.keys {
                        Some(k) if k.is_valid(i) => {
                            key.extend_from_slice(k.value(i));
                            true
                        }
                        _ => false,
                    }));
                }
            }
            match self.reader.next() {
                None => return Ok(None),
                Some(batch) => self.load(batch?)?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatchIterator, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn rows_become_json_with_keys() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a\nb"), None])),
            ],
        )
        .unwrap();
        let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
        let mut rows = ArrowRows::new(Box::new(reader), Some("id".into()), None).unwrap();
        let mut out = Vec::new();
        loop {
            let (mut k, mut v) = (Vec::new(), Vec::new());
            match rows.next_message(&mut k, &mut v).unwrap() {
                None => break,
                Some(has_key) => out.push((has_key, k, v)),
            }
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].1, b"1");
        let first: serde_json::Value = serde_json::from_slice(&out[0].2).unwrap();
        assert_eq!(first["name"], "a\nb");
        assert_eq!(out[1].2, br#"{"id":2}"#);
    }

    #[test]
    fn unknown_columns_fail_early() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let reader = RecordBatchIterator::new(vec![], schema);
        let err = ArrowRows::new(Box::new(reader), Some("nope".into()), None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("columns are: id"));
    }
}
