//! The typed column buffers a [`super::FastDecoder`] fills, one per field,
//! and how each becomes an Arrow array.

use super::*;

/// A column being filled.
pub(super) enum Column {
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
    pub(super) fn new(kind: &Kind, rows: usize, input: usize) -> Self {
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
    pub(super) fn push_null(&mut self, field: &FieldPlan, parent_valid: bool) -> Option<()> {
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

    /// Back to its first `rows` rows (a value given up halfway appended
    /// to some columns and not to others).
    pub(super) fn truncate(&mut self, rows: usize) {
        match self {
            Column::Bool(v, n) => {
                v.truncate(rows);
                n.truncate(rows);
            }
            Column::Int(v, n) | Column::Timestamp(v, n) => {
                v.truncate(rows);
                n.truncate(rows);
            }
            Column::F32(v, n) => {
                v.truncate(rows);
                n.truncate(rows);
            }
            Column::F64(v, n) => {
                v.truncate(rows);
                n.truncate(rows);
            }
            Column::Utf8 {
                offsets,
                data,
                nulls,
            } => {
                offsets.truncate(rows + 1);
                data.truncate(offsets[rows] as usize);
                nulls.truncate(rows);
            }
            Column::Struct(children, n) => {
                for c in children {
                    c.truncate(rows);
                }
                n.truncate(rows);
            }
            Column::List {
                offsets,
                items,
                nulls,
            } => {
                offsets.truncate(rows + 1);
                items.truncate(offsets[rows] as usize);
                nulls.truncate(rows);
            }
        }
    }

    pub(super) fn finish(self, field: &FieldPlan) -> Option<ArrayRef> {
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
