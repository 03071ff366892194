//! The shape of the rows an ingest writes: the value schema learned from the
//! messages, bounded in columns, aligned with a flattened table, plus the
//! metadata columns.

use super::*;

pub(super) fn strip_columns(schema: &SchemaRef, drop: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| !drop.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect::<Vec<_>>(),
    ))
}

/// Columns of `fields` once flattened: leaves, counting inside structs.
pub(super) fn leaf_count(fields: &arrow::datatypes::Fields) -> usize {
    fields
        .iter()
        .map(|f| match f.data_type() {
            DataType::Struct(children) => leaf_count(children).max(1),
            _ => 1,
        })
        .sum()
}

/// `schema` cut to its first `budget` columns (leaves, in order; a struct
/// keeps the children that fit): an inferred schema of values with keys
/// that keep changing stays bounded, and the rest are new fields.
pub(super) fn prune_to(schema: &SchemaRef, budget: usize) -> SchemaRef {
    fn cut(fields: &arrow::datatypes::Fields, budget: &mut usize) -> Vec<Field> {
        let mut out = Vec::new();
        for f in fields.iter() {
            if *budget == 0 {
                break;
            }
            match f.data_type() {
                DataType::Struct(children) if !children.is_empty() => {
                    let kept = cut(children, budget);
                    if !kept.is_empty() {
                        out.push(
                            f.as_ref()
                                .clone()
                                .with_data_type(DataType::Struct(kept.into())),
                        );
                    }
                }
                _ => {
                    *budget -= 1;
                    out.push(f.as_ref().clone());
                }
            }
        }
        out
    }
    if leaf_count(schema.fields()) <= budget {
        return schema.clone();
    }
    let mut left = budget;
    Arc::new(Schema::new_with_metadata(
        cut(schema.fields(), &mut left),
        schema.metadata().clone(),
    ))
}

/// `inferred` (a value schema) with the type of each field that a
/// flattened table has as a `parent.child` column taken from the table.
pub(super) fn align_flattened(inferred: &SchemaRef, table: &SchemaRef) -> SchemaRef {
    fn walk(fields: &arrow::datatypes::Fields, prefix: &str, table: &Schema) -> Vec<Field> {
        fields
            .iter()
            .map(|f| {
                let name = if prefix.is_empty() {
                    f.name().clone()
                } else {
                    format!("{prefix}.{}", f.name())
                };
                match (table.field_with_name(&name), f.data_type()) {
                    (Ok(t), _) => f.as_ref().clone().with_data_type(t.data_type().clone()),
                    (Err(_), DataType::Struct(children)) => f
                        .as_ref()
                        .clone()
                        .with_data_type(DataType::Struct(walk(children, &name, table).into())),
                    (Err(_), _) => f.as_ref().clone(),
                }
            })
            .collect()
    }
    Arc::new(Schema::new_with_metadata(
        walk(inferred.fields(), "", table),
        inferred.metadata().clone(),
    ))
}

pub(super) fn output_schema(value_schema: &SchemaRef, opts: &IngestOptions) -> Result<SchemaRef> {
    let d = JsonDecoder::new("t", value_schema.clone(), opts.decode.clone())?;
    let mut fields: Vec<Field> = d
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    if let Some(dc) = &opts.date_column {
        fields.push(Field::new(&dc.name, DataType::Date32, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}
