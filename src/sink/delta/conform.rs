//! Rows made to fit a table's schema: the same names and types, missing
//! nullable columns as nulls, and never a value changed to fit (a lossy
//! conversion is an error naming the column, and nothing is written).

use super::*;

/// Check that `wanted` (the rows about to be written) fits `table_schema`:
/// same names, same types. Extra table columns must be nullable.
pub fn check_compatible(
    location: &str,
    table_schema: &SchemaRef,
    wanted: &SchemaRef,
) -> Result<()> {
    let mut problems = Vec::new();
    for f in wanted.fields() {
        match table_schema.field_with_name(f.name()) {
            Err(_) => problems.push(format!(
                "column '{}' ({}) is not in the table",
                f.name(),
                f.data_type()
            )),
            Ok(t) if !types_match(t.data_type(), f.data_type()) => problems.push(format!(
                "column '{}' is {} in the table but {} in the data",
                f.name(),
                t.data_type(),
                f.data_type()
            )),
            Ok(_) => {}
        }
    }
    for t in table_schema.fields() {
        if wanted.field_with_name(t.name()).is_err() && !t.is_nullable() {
            problems.push(format!(
                "required table column '{}' is missing from the data",
                t.name()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Table(format!(
            "the Delta table at '{location}' has a schema that conflicts with the data: {}; \
             write to another table or pass a schema that matches it",
            problems.join("; ")
        )))
    }
}

/// `column` as `to` when that keeps every value: the same type, struct
/// fields the column lacks as nulls, timestamps in another unit or zone
/// (Delta stores microseconds). `None` when the types differ otherwise;
/// `Some(Err)` when a value does not fit (overflow).
pub(super) fn conform_column(
    column: &ArrayRef,
    to: &arrow::datatypes::DataType,
) -> Option<Result<ArrayRef>> {
    use arrow::array::{Array, AsArray, StructArray};
    use arrow::datatypes::DataType as D;
    let from = column.data_type();
    if from == to {
        return Some(Ok(column.clone()));
    }
    match (from, to) {
        (D::Struct(have), D::Struct(want)) => {
            let s = column.as_struct();
            if have.iter().any(|f| want.find(f.name()).is_none()) {
                return None;
            }
            let mut children = Vec::with_capacity(want.len());
            for f in want.iter() {
                let child = match s.column_by_name(f.name()) {
                    Some(c) => match conform_column(c, f.data_type())? {
                        Ok(c) => c,
                        Err(e) => return Some(Err(e)),
                    },
                    None => arrow::array::new_null_array(f.data_type(), s.len()),
                };
                children.push(child);
            }
            Some(
                StructArray::try_new(want.clone(), children, s.nulls().cloned())
                    .map(|a| std::sync::Arc::new(a) as ArrayRef)
                    .map_err(Error::from),
            )
        }
        _ if same_values(from, to) => {
            let options = arrow::compute::CastOptions {
                safe: false,
                ..Default::default()
            };
            Some(arrow::compute::cast_with_options(column, to, &options).map_err(Error::from))
        }
        _ => None,
    }
}

/// Whether a cast from `a` to `b` only renames nested fields, changes
/// nullability or a timestamp's unit or zone: every value stays as it is.
pub(super) fn same_values(a: &arrow::datatypes::DataType, b: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType as D;
    let int = |t: &D| match t {
        D::Int8 | D::Int16 | D::Int32 | D::UInt8 | D::UInt16 => Some(true),
        D::UInt32 | D::Int64 => Some(false),
        _ => None,
    };
    match (a, b) {
        (D::Timestamp(_, _), D::Timestamp(_, _)) | (D::Null, _) => true,
        // One kind of value, other layouts (what query engines hand back).
        (D::Utf8 | D::LargeUtf8 | D::Utf8View, D::Utf8 | D::LargeUtf8 | D::Utf8View)
        | (
            D::Binary | D::LargeBinary | D::BinaryView,
            D::Binary | D::LargeBinary | D::BinaryView,
        )
        | (D::Float16 | D::Float32, D::Float64) => true,
        (D::Dictionary(_, v), t) => same_values(v, t),
        // Widening integers: every value fits.
        (x, D::Int64) if int(x).is_some() => true,
        (D::List(x), D::List(y))
        | (D::LargeList(x), D::LargeList(y))
        | (D::Map(x, _), D::Map(y, _)) => same_values(x.data_type(), y.data_type()),
        (D::Struct(x), D::Struct(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(f, g)| f.name() == g.name() && same_values(f.data_type(), g.data_type()))
        }
        _ => a == b,
    }
}

pub(super) fn types_match(a: &arrow::datatypes::DataType, b: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType as D;
    match (a, b) {
        (D::Struct(x), D::Struct(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(f, g)| f.name() == g.name() && types_match(f.data_type(), g.data_type()))
        }
        (D::List(x), D::List(y)) | (D::LargeList(x), D::LargeList(y)) => {
            types_match(x.data_type(), y.data_type())
        }
        // Delta stores all timestamps as microseconds.
        (D::Timestamp(_, tz1), D::Timestamp(_, tz2)) => tz1.is_some() == tz2.is_some(),
        _ => a == b,
    }
}

/// `batch` with the columns and types of the table at `location` whose
/// schema is `schema`: columns it lacks are nulls, and values are never
/// changed to fit (a lossy conversion is an error naming the column).
pub fn conform_to(location: &str, schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let col = match batch.column_by_name(f.name()) {
            Some(c) => conform_column(c, f.data_type()).ok_or_else(|| {
                Error::Table(format!(
                    "column '{}' is {} in the Delta table at '{location}' but {} in the data; \
                     the values would change to fit, so nothing was written",
                    f.name(),
                    f.data_type(),
                    c.data_type()
                ))
            })??,
            None => arrow::array::new_null_array(f.data_type(), batch.num_rows()),
        };
        cols.push(col);
    }
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}
