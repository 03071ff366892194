//! Dead letters: the messages an ingest could not turn into rows, kept with
//! why, as rows of their own table (written before the data of the same
//! batch, with the same offsets, so a restart skips them alike).

use super::*;

/// Dead letters as rows of the dead-letter table.
pub fn dead_letter_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("timestamp", ts.clone(), true),
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("error", DataType::Utf8, false),
        Field::new("failed_at", ts, false),
    ]))
}

/// Dead letters as rows of [`dead_letter_schema`].
pub fn dead_letter_rows(topic: &str, dead: &[DeadLetter]) -> Result<RecordBatch> {
    let n = dead.len();
    let now = chrono::Utc::now().timestamp_micros();
    let mut keys = BinaryBuilder::new();
    let mut values = BinaryBuilder::new();
    for d in dead {
        keys.append_option(d.message.key.as_deref());
        values.append_option(d.message.value.as_deref());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![topic; n])),
        Arc::new(Int32Array::from_iter_values(
            dead.iter().map(|d| d.message.partition),
        )),
        Arc::new(Int64Array::from_iter_values(
            dead.iter().map(|d| d.message.offset),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(
                dead.iter()
                    .map(|d| d.message.timestamp_ms.map(|t| t * 1000))
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(keys.finish()),
        Arc::new(values.finish()),
        Arc::new(StringArray::from_iter_values(
            dead.iter().map(|d| d.error.as_str()),
        )),
        Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
    ];
    Ok(RecordBatch::try_new(dead_letter_schema(), cols)?)
}

pub(super) fn dead_letter_batch(topic: &str, dead: &[DeadLetter]) -> Result<RecordBatch> {
    with_offsets(
        &dead_letter_rows(topic, dead)?,
        dead.iter().map(|d| d.message.offset),
    )
}

/// `batch` plus the internal offset column used to skip stored rows.
pub(super) fn with_offsets(
    batch: &RecordBatch,
    offsets: impl Iterator<Item = i64>,
) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(OFFSET_COLUMN, DataType::Int64, false));
    let mut cols = batch.columns().to_vec();
    cols.push(Arc::new(Int64Array::from_iter_values(offsets)));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

pub(super) fn dead_letter_options(opts: &IngestOptions) -> DeltaOptions {
    let app_name = match &opts.sink {
        SinkSpec::Delta(d) => d.app_name.clone(),
        SinkSpec::Parquet(_) | SinkSpec::Capture(_) => opts.consumer.group_id.clone(),
    };
    DeltaOptions {
        location: opts.dead_letters.clone(),
        app_name,
        partition_by: Vec::new(),
        table_properties: Default::default(),
        target_file_size: None,
        checkpoint_interval: 100,
        compact_interval: 0,
        compact: Default::default(),
    }
}

/// A Delta sink whose table does not exist yet: nothing is stored.
pub(super) struct PendingDelta(pub(super) DeltaOptions);

impl Sink for PendingDelta {
    fn stored_offsets(&mut self, _topic: &str, _partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        Ok(BTreeMap::new())
    }

    fn write(
        &mut self,
        _topic: &str,
        _chunks: Vec<PartitionChunk>,
    ) -> Result<crate::sink::WriteOutcome> {
        Err(Error::Delta(format!(
            "the Delta table at '{}' was not created",
            self.0.location.uri
        )))
    }

    fn describe(&self) -> String {
        format!("Delta table {} (to be created)", self.0.location.uri)
    }
}
