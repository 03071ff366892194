//! Delta → Delta stages (silver and gold): each run reads only the rows that
//! source commits added since the source version stored in the target,
//! transforms them with DataFusion, and commits the result to the target
//! together with a `txn` action (app id [`app_id`], version = the source
//! version consumed), in one atomic commit. A crash anywhere, a rerun or two
//! runs at once leave the target as if every source row had been processed
//! once: a run whose commit loses to another one reloads and finds the
//! source version already consumed, or starts over from the new target.
//!
//! Source commits that only rewrite files (`dataChange=false`, compaction)
//! are skipped; one that removes rows is an error naming its version. When a
//! compaction removed files this run has not read yet, the run reads up to
//! the version before it (whose snapshot still lists them), commits, and
//! goes on from there.

mod expect;
mod gold;
mod prune;
mod silver;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add, Remove, Transaction};
use deltalake::logstore::get_actions;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use parquet::basic::Compression;

pub use expect::{Expectation, OnViolation};
pub use gold::{Aggregate, Gold, Window};
pub use silver::{Dedupe, Silver};

use crate::error::{Error, Result};
use crate::runtime::block_on;
use crate::sink::delta::{self, delta_err, is_conflict};
use crate::sink::storage::Location;

/// What a stage does to its new source rows.
#[derive(Debug, Clone)]
pub enum Transform {
    /// Filter, project, dedupe.
    Silver(Silver),
    /// Aggregate per group and event-time window.
    Gold(Gold),
}

/// One stage: where it reads, where it writes, and what it does in between.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// The stage's name (part of its `txn` app id in the target).
    pub name: String,
    /// The source Delta table.
    pub source: Location,
    /// The target Delta table (created by the first run that has rows).
    pub target: Location,
    /// The transform.
    pub transform: Transform,
    /// Checks on the output rows.
    pub expectations: Vec<Expectation>,
    /// Delta table properties set when the target is created.
    pub table_properties: HashMap<String, String>,
    /// Target partition columns (silver only).
    pub partition_by: Vec<String>,
    /// Source versions read per commit at most (bounds memory on a long backlog).
    pub max_versions: u64,
    /// A transform of the new source rows that runs first (e.g. a Python
    /// callable over Arrow); `sql`, `where`, dedupe and aggregates see its output.
    pub rows_fn: Option<RowsFn>,
}

/// A function over a batch of rows, as one table.
#[derive(Clone)]
pub struct RowsFn(pub Arc<RowsFnBody>);

/// What a [`RowsFn`] runs: batches of one schema in, batches out.
pub type RowsFnBody = dyn Fn(Vec<RecordBatch>, SchemaRef) -> Result<Vec<RecordBatch>> + Send + Sync;

impl std::fmt::Debug for RowsFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RowsFn")
    }
}

/// What one run did.
#[derive(Debug, Clone, Default)]
pub struct StageReport {
    /// The stage.
    pub name: String,
    /// Source versions consumed by this run (`first..=last`), if any.
    pub versions: Option<(i64, i64)>,
    /// New source rows read.
    pub rows_in: u64,
    /// Rows written to the target (for gold: window/group rows written).
    pub rows_out: u64,
    /// Rows dropped as duplicates (silver dedupe).
    pub deduplicated: u64,
    /// Target rows read to check the new rows against: silver's dedupe
    /// horizon, gold's windows that the new rows touch. Stays near the new
    /// rows' count however large the target grows (file statistics prune).
    pub target_rows_read: u64,
    /// Rows later than the watermark (gold windows), not folded in.
    pub late: u64,
    /// Rows that failed each expectation (name, action, count), in declaration order.
    pub expectations: Vec<(String, OnViolation, u64)>,
    /// Rows written to the quarantine table.
    pub quarantined: u64,
    /// Target commits made.
    pub commits: u64,
    /// The target's version after the run (`None`: no target yet).
    pub target_version: Option<i64>,
    /// Seconds the run took.
    pub seconds: f64,
}

/// The `txn` app id under which `stage` records the source version it consumed.
pub fn app_id(stage: &str, source: &Location) -> String {
    format!("kafkalake-stage:{stage}:{}", source.uri)
}

/// The `txn` app id under which a windowed stage records the latest event
/// time it has seen (microseconds), the base of its watermark.
fn event_time_app_id(stage: &str, source: &Location) -> String {
    format!("{}:max-event-time", app_id(stage, source))
}

/// How many times a run starts over after losing a commit race.
const ATTEMPTS: usize = 20;

/// Run `opts` until the target holds every source version that exists at
/// the start (in commits of at most `max_versions` source versions each).
pub fn run(opts: &StageOptions) -> Result<StageReport> {
    validate(opts)?;
    let started = Instant::now();
    let mut report = StageReport {
        name: opts.name.clone(),
        expectations: opts
            .expectations
            .iter()
            .map(|e| (e.name.clone(), e.on_violation, 0))
            .collect(),
        ..Default::default()
    };
    let mut source = delta::open(&opts.source)?.ok_or_else(|| {
        Error::Table(format!(
            "stage '{}': the source table '{}' does not exist yet; run what feeds it first",
            opts.name, opts.source.uri
        ))
    })?;
    let latest = source.version().map_or(-1, |v| v as i64);
    // Source versions this run found to hold no new rows (compactions,
    // schema changes): not recorded in the target, only skipped.
    let mut skipped = -1;
    let mut attempts = 0;
    loop {
        let mut target = delta::open(&opts.target)?;
        let consumed = match &target {
            Some(t) => txn_version(t, &app_id(&opts.name, &opts.source))?.unwrap_or(-1),
            None => -1,
        };
        report.target_version = target.as_ref().and_then(|t| t.version()).map(|v| v as i64);
        let from = consumed.max(skipped);
        if from >= latest {
            break;
        }
        let plan = plan(&source, from, latest, opts.max_versions)?;
        if plan.adds.is_empty() {
            skipped = plan.last;
            continue;
        }
        if source.version() != Some(plan.last as u64) {
            block_on(source.load_version(plan.last as u64))
                .map_err(|e| delta_err(&source_error(opts, plan.last), e))?;
        }
        match process(opts, &source, &mut target, &plan)? {
            Done::Committed(step) => {
                report.add(&step);
                report.versions = Some(match report.versions {
                    Some((first, _)) => (first, plan.last),
                    None => (from + 1, plan.last),
                });
                report.target_version = target.as_ref().and_then(|t| t.version()).map(|v| v as i64);
            }
            Done::Lost => {
                attempts += 1;
                if attempts >= ATTEMPTS {
                    return Err(Error::Table(format!(
                        "stage '{}': lost {ATTEMPTS} commit races on '{}' in a row; is another \
                         writer rewriting the target?",
                        opts.name, opts.target.uri
                    )));
                }
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn source_error(opts: &StageOptions, version: i64) -> String {
    format!(
        "stage '{}': reading version {version} of the source '{}'",
        opts.name, opts.source.uri
    )
}

/// Bad options, found before any work.
fn validate(opts: &StageOptions) -> Result<()> {
    let bad = |m: String| {
        Err(Error::InvalidArgument(format!(
            "stage '{}': {m}",
            opts.name
        )))
    };
    if opts.name.trim().is_empty() {
        return Err(Error::InvalidArgument("a stage needs a name".into()));
    }
    if opts.source.uri == opts.target.uri {
        return bad(format!(
            "source and target are the same table '{}'",
            opts.target.uri
        ));
    }
    if opts.max_versions == 0 {
        return bad("max_versions must be at least 1".into());
    }
    let mut names = HashSet::new();
    for e in &opts.expectations {
        if !names.insert(&e.name) {
            return bad(format!("expectation '{}' is declared twice", e.name));
        }
        if e.check.trim().is_empty() {
            return bad(format!("expectation '{}' has an empty check", e.name));
        }
    }
    match &opts.transform {
        Transform::Silver(s) => s.validate().or_else(&bad),
        Transform::Gold(g) => {
            if !opts.partition_by.is_empty() {
                return bad("partition_by applies to silver stages only".into());
            }
            g.validate().or_else(bad)
        }
    }
}

/// The source commits one run step reads.
struct Plan {
    /// Files added with `dataChange=true` by versions `first..=last`.
    adds: Vec<Add>,
    /// The last source version read.
    last: i64,
}

/// Files added after `consumed`, up to `latest` or fewer versions.
fn plan(source: &DeltaTable, consumed: i64, latest: i64, max_versions: u64) -> Result<Plan> {
    let log_store = source.log_store();
    let mut adds: Vec<Add> = Vec::new();
    let mut added: HashSet<String> = HashSet::new();
    let mut last = consumed;
    let end = latest.min(consumed.saturating_add(max_versions as i64));
    for version in consumed + 1..=end {
        let bytes = block_on(log_store.read_commit_entry(version as u64))
            .map_err(|e| delta_err(&format!("reading source version {version}"), e))?
            .ok_or_else(|| {
                Error::Table(format!(
                    "version {version} of the source '{}' is no longer in its log \
                     (log retention removed it before the stage read it); rebuild the target \
                     from the source, or keep logs longer (delta.logRetentionDuration)",
                    source.table_url()
                ))
            })?;
        let actions = get_actions(version as u64, &bytes)
            .map_err(|e| delta_err(&format!("parsing source version {version}"), e))?;
        let mut version_adds = Vec::new();
        for action in actions {
            match action {
                Action::Remove(Remove {
                    data_change: true,
                    path,
                    ..
                }) => {
                    return Err(Error::Table(format!(
                        "version {version} of the source '{}' deletes or updates rows (it \
                         removes '{path}' with dataChange=true); stages read append-only tables",
                        source.table_url()
                    )));
                }
                Action::Remove(r) if added.contains(&r.path) => {
                    // A compaction of files not read yet: read up to the
                    // version before it, whose snapshot still lists them.
                    return Ok(Plan { adds, last });
                }
                Action::Add(a) if a.data_change => version_adds.push(a),
                _ => {}
            }
        }
        for a in version_adds {
            added.insert(a.path.clone());
            adds.push(a);
        }
        last = version;
    }
    Ok(Plan { adds, last })
}

/// How a step ended.
enum Done {
    Committed(Step),
    /// Another run committed first: start over from the target as it is.
    Lost,
}

/// What one commit did.
#[derive(Default)]
struct Step {
    rows_in: u64,
    rows_out: u64,
    deduplicated: u64,
    target_rows_read: u64,
    late: u64,
    failed: Vec<u64>,
    quarantined: u64,
}

impl StageReport {
    fn add(&mut self, s: &Step) {
        self.rows_in += s.rows_in;
        self.rows_out += s.rows_out;
        self.deduplicated += s.deduplicated;
        self.target_rows_read += s.target_rows_read;
        self.late += s.late;
        self.quarantined += s.quarantined;
        self.commits += 1;
        for (e, n) in self.expectations.iter_mut().zip(&s.failed) {
            e.2 += n;
        }
    }
}

/// A DataFusion session as stages use it: column names as written
/// (`deviceId`, not `deviceid`), strings read as plain Arrow strings.
pub(crate) fn new_context() -> SessionContext {
    let config = deltalake::datafusion::prelude::SessionConfig::new()
        .set_bool("datafusion.sql_parser.enable_ident_normalization", false)
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        );
    SessionContext::new_with_config(config)
}

/// A DataFusion session reading `tables`' stores.
fn session(tables: &[&DeltaTable]) -> Result<SessionContext> {
    let ctx = new_context();
    for t in tables {
        t.update_datafusion_session(&ctx.state())
            .map_err(|e| delta_err("preparing a query", e))?;
    }
    Ok(ctx)
}

/// The rows the plan's files hold, read through the source's snapshot.
fn read_new_rows(
    ctx: &SessionContext,
    source: &DeltaTable,
    plan: &Plan,
) -> Result<Vec<RecordBatch>> {
    block_on(async {
        let provider = source
            .table_provider()
            .with_adds(plan.adds.iter().cloned())
            .build()
            .await
            .map_err(|e| Error::Delta(format!("reading the source's new files: {e}")))?;
        let df = ctx
            .read_table(Arc::new(provider))
            .map_err(|e| Error::Delta(format!("reading the source's new files: {e}")))?;
        df.collect()
            .await
            .map_err(|e| Error::Delta(format!("reading the source's new files: {e}")))
    })
}

/// Transform the plan's rows and commit them.
fn process(
    opts: &StageOptions,
    source: &DeltaTable,
    target: &mut Option<DeltaTable>,
    plan: &Plan,
) -> Result<Done> {
    let mut tables = vec![source];
    if let Some(t) = target.as_ref() {
        tables.push(t);
    }
    let ctx = session(&tables)?;
    let mut rows = read_new_rows(&ctx, source, plan)?;
    let mut source_schema = source_arrow_schema(source)?;
    if let Some(f) = &opts.rows_fn {
        let schema = rows
            .first()
            .map_or_else(|| source_schema.clone(), |b| b.schema());
        rows = (f.0)(rows, schema)?;
        if let Some(b) = rows.first() {
            source_schema = b.schema();
        }
    }
    let rows_in: u64 = rows.iter().map(|b| b.num_rows() as u64).sum();
    let out = match &opts.transform {
        Transform::Silver(s) => silver::run(opts, s, &ctx, source_schema, rows, target.as_ref())?,
        Transform::Gold(g) => gold::run(opts, g, &ctx, source_schema, rows, target.as_ref())?,
    };
    let step = Step {
        rows_in,
        rows_out: out.rows.iter().map(|b| b.num_rows() as u64).sum(),
        deduplicated: out.deduplicated,
        target_rows_read: out.target_rows_read,
        late: out.late.iter().map(|b| b.num_rows() as u64).sum(),
        failed: out.failed.clone(),
        quarantined: out.quarantine.iter().map(|b| b.num_rows() as u64).sum(),
    };
    // Side tables first, each with the same txn: a rerun after a crash
    // between them and the target finds them written and skips them.
    let app = app_id(&opts.name, &opts.source);
    if step.quarantined > 0 {
        side_table(opts, "quarantine", &out.quarantine, &app, plan.last)?;
    }
    if let (
        true,
        Some(Window {
            keep_late: true, ..
        }),
    ) = (
        step.late > 0,
        match &opts.transform {
            Transform::Gold(g) => g.window.as_ref(),
            Transform::Silver(_) => None,
        },
    ) {
        side_table(opts, "late", &out.late, &app, plan.last)?;
    }
    let Some(table) = ready(
        target.take(),
        &opts.target,
        &out.schema,
        &opts.partition_by,
        &opts.table_properties,
    )?
    else {
        return Ok(Done::Lost);
    };
    let mut txns = vec![(app.clone(), plan.last)];
    if let Some(t) = out.max_event_time {
        txns.push((event_time_app_id(&opts.name, &opts.source), t));
    }
    let info = commit_info(opts, &step, plan);
    match commit(table, &out.rows, &out.removes, &txns, info) {
        Ok(t) => {
            *target = Some(t);
            Ok(Done::Committed(step))
        }
        Err(CommitError::Conflict) => Ok(Done::Lost),
        Err(CommitError::Other(e)) => Err(e),
    }
}

/// The source's schema as Arrow (what its scan returns).
fn source_arrow_schema(source: &DeltaTable) -> Result<SchemaRef> {
    let snapshot = source
        .snapshot()
        .map_err(|e| delta_err("source snapshot", e))?;
    Ok(snapshot.snapshot().arrow_schema())
}

/// What a transform hands back for one commit.
pub(crate) struct Output {
    /// The target's schema (for creating it).
    pub schema: SchemaRef,
    /// Rows to add.
    pub rows: Vec<RecordBatch>,
    /// Target files the rows replace (gold rewrites).
    pub removes: Vec<Remove>,
    /// Rows dropped as duplicates.
    pub deduplicated: u64,
    /// Target rows read (dedupe horizon, gold windows).
    pub target_rows_read: u64,
    /// Failing rows per expectation.
    pub failed: Vec<u64>,
    /// Rows for `<target>_quarantine`.
    pub quarantine: Vec<RecordBatch>,
    /// Rows later than the watermark.
    pub late: Vec<RecordBatch>,
    /// The latest event time seen so far (microseconds), windowed gold only.
    pub max_event_time: Option<i64>,
}

/// The custom `commitInfo` fields: counts per expectation and the rest.
fn commit_info(
    opts: &StageOptions,
    step: &Step,
    plan: &Plan,
) -> HashMap<String, serde_json::Value> {
    let expectations: serde_json::Map<String, serde_json::Value> = opts
        .expectations
        .iter()
        .zip(&step.failed)
        .map(|(e, n)| {
            (
                e.name.clone(),
                serde_json::json!({"failed": n, "on_violation": e.on_violation.as_str()}),
            )
        })
        .collect();
    HashMap::from([(
        "kafkalake.stage".to_string(),
        serde_json::json!({
            "name": opts.name,
            "source_version": plan.last,
            "rows_in": step.rows_in,
            "rows_out": step.rows_out,
            "deduplicated": step.deduplicated,
            "target_rows_read": step.target_rows_read,
            "late": step.late,
            "quarantined": step.quarantined,
            "expectations": expectations,
        }),
    )])
}

enum CommitError {
    Conflict,
    Other(Error),
}

/// One commit of `rows` (as new files), `removes` and `txns` to `table`.
/// Rows above which a batch is written as several files at once.
const SPLIT_ROWS: usize = 250_000;

fn commit(
    mut table: DeltaTable,
    rows: &[RecordBatch],
    removes: &[Remove],
    txns: &[(String, i64)],
    info: HashMap<String, serde_json::Value>,
) -> std::result::Result<DeltaTable, CommitError> {
    let uri = table.table_url().to_string();
    let other = |e: DeltaTableError| {
        CommitError::Other(delta_err(
            &format!("writing to the Delta table at '{uri}'"),
            e,
        ))
    };
    let result = block_on(async {
        let mut actions: Vec<Action> = Vec::new();
        let rows: Vec<RecordBatch> = rows.iter().filter(|b| b.num_rows() > 0).cloned().collect();
        if !rows.is_empty() {
            let schema =
                delta::arrow_schema(&table).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
            let props = crate::sink::writer_properties(&schema, Compression::SNAPPY, &rows);
            // Each batch is a file of its own (gold keeps closed windows
            // apart), a large one split in consecutive parts so that the
            // files are encoded on every core at once.
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let files = rows.iter().flat_map(|b| {
                let parts = b.num_rows().div_ceil(SPLIT_ROWS).clamp(1, cores);
                let size = b.num_rows().div_ceil(parts);
                (0..b.num_rows())
                    .step_by(size)
                    .map(|at| b.slice(at, size.min(b.num_rows() - at)))
                    .collect::<Vec<_>>()
            });
            let writes = files.map(|b| {
                let (table, schema, props, uri) =
                    (table.clone(), schema.clone(), props.clone(), uri.clone());
                tokio::spawn(async move {
                    let b = delta::conform_to(&uri, &schema, &b)
                        .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
                    let mut writer =
                        RecordBatchWriter::for_table(&table)?.with_writer_properties(props);
                    writer.write(b).await?;
                    writer.flush().await
                })
            });
            for written in futures::future::join_all(writes.collect::<Vec<_>>()).await {
                let adds = written.map_err(|e| DeltaTableError::Generic(e.to_string()))??;
                actions.extend(adds.into_iter().map(Action::Add));
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        actions.extend(removes.iter().cloned().map(|mut r| {
            r.deletion_timestamp = Some(now);
            Action::Remove(r)
        }));
        actions.extend(txns.iter().map(|(app, v)| {
            Action::Txn(Transaction::new_with_last_update(
                app.clone(),
                *v,
                Some(now),
            ))
        }));
        let snapshot = table.snapshot()?;
        let partition_by = snapshot.metadata().partition_columns().to_vec();
        let op = if removes.is_empty() {
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: (!partition_by.is_empty()).then_some(partition_by),
                predicate: None,
            }
        } else {
            DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: (!partition_by.is_empty()).then_some(partition_by),
                predicate: Some("rows of the windows and groups this run changed".into()),
            }
        };
        let finalized = CommitBuilder::from(
            delta::commit_properties()
                .with_metadata(info)
                .with_max_retries(0),
        )
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), op)
        .await?;
        Ok::<_, DeltaTableError>((finalized.version(), finalized.snapshot()))
    });
    match result {
        Ok((version, snapshot)) => {
            table.state = Some(snapshot);
            // Targets are read at every run: a checkpoint bounds what
            // opening them replays, however many runs wrote them.
            if version % checkpoint_interval(&table) == 0 {
                delta::checkpoint(&table).map_err(CommitError::Other)?;
                // A long backlog is many commits of one run.
                delta::reread(&mut table).map_err(CommitError::Other)?;
            }
            Ok(table)
        }
        Err(e) if is_conflict(&e) || matches!(e, DeltaTableError::Transaction { .. }) => {
            Err(CommitError::Conflict)
        }
        Err(e) => Err(other(e)),
    }
}

/// The table a step commits to, as the step found it (`found`), ready for
/// rows of `schema`; `None` when the step must be planned again on the
/// table as it is now:
/// - columns the source gained since the table was written are added to it
///   (nullable, as bronze does), never dropped from the rows; that changes
///   the table, so the step is planned again;
/// - a step that found no table creates it, but if another run created it
///   first, that run's commits may already hold this step's rows.
fn ready(
    found: Option<DeltaTable>,
    location: &Location,
    schema: &SchemaRef,
    partition_by: &[String],
    properties: &HashMap<String, String>,
) -> Result<Option<DeltaTable>> {
    match found {
        Some(mut t) => {
            let current = delta::arrow_schema(&t)?;
            if crate::decode::merge_additive(&current, schema).is_some() {
                delta::add_columns(&mut t, schema, &location.uri)?;
                return Ok(None);
            }
            Ok(Some(t))
        }
        None => delta::create_new(location, schema, partition_by, properties),
    }
}

/// Versions between a stage target's checkpoints: the table's
/// `delta.checkpointInterval` if it sets one, else 10 (as Spark, and as an
/// ingest by default).
fn checkpoint_interval(table: &DeltaTable) -> u64 {
    table
        .snapshot()
        .ok()
        .and_then(|s| {
            s.metadata()
                .configuration()
                .get("delta.checkpointInterval")
                .and_then(|v| v.parse::<u64>().ok())
        })
        .filter(|&n| n > 0)
        .unwrap_or(10)
}

/// Write `rows` to `<target>_<suffix>` with the stage's txn, unless a run
/// before a crash already did.
fn side_table(
    opts: &StageOptions,
    suffix: &str,
    rows: &[RecordBatch],
    app: &str,
    last: i64,
) -> Result<()> {
    let location = Location {
        uri: format!("{}_{suffix}", opts.target.uri.trim_end_matches('/')),
        options: opts.target.options.clone(),
    };
    for _ in 0..ATTEMPTS {
        let found = delta::open(&location)?;
        if let Some(t) = &found {
            if txn_version(t, app)?.is_some_and(|v| v >= last) {
                return Ok(());
            }
        }
        let Some(table) = ready(found, &location, &rows[0].schema(), &[], &HashMap::new())? else {
            continue;
        };
        match commit(table, rows, &[], &[(app.to_string(), last)], HashMap::new()) {
            Ok(_) => return Ok(()),
            Err(CommitError::Conflict) => continue,
            Err(CommitError::Other(e)) => return Err(e),
        }
    }
    Err(Error::Table(format!(
        "stage '{}': lost {ATTEMPTS} commit races on '{}'",
        opts.name, location.uri
    )))
}

/// The version `app` recorded in `table` (`None`: never).
pub(crate) fn txn_version(table: &DeltaTable, app: &str) -> Result<Option<i64>> {
    let snapshot = table
        .snapshot()
        .map_err(|e| delta_err("target snapshot", e))?;
    block_on(snapshot.transaction_version(table.log_store().as_ref(), app))
        .map_err(|e| delta_err("reading the target's transactions", e))
}

/// Run a DataFusion query and collect its batches.
pub(crate) fn collect(
    df: deltalake::datafusion::dataframe::DataFrame,
    what: &str,
) -> Result<Vec<RecordBatch>> {
    block_on(df.collect()).map_err(|e| Error::Table(format!("{what}: {e}")))
}

/// `SELECT`-ready quoting of a column name.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;

    use super::*;
    use crate::sink::delta::testing::new_table;

    /// Append `rows` to the one-column table at `location`.
    fn append(location: &Location, rows: Vec<i64>) {
        let table = delta::open(location).unwrap().unwrap();
        let schema = delta::arrow_schema(&table).unwrap();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(rows))]).unwrap();
        assert!(commit(table, &[batch], &[], &[], HashMap::new()).is_ok());
    }

    /// A silver stage over a one-column source holding `rows` in version 1.
    fn silver_over(name: &str, rows: Vec<i64>) -> StageOptions {
        let (source, _) = new_table(name);
        append(&source, rows);
        let target = Location {
            uri: format!("{}-silver", source.uri),
            options: HashMap::new(),
        };
        let _ = std::fs::remove_dir_all(&target.uri);
        StageOptions {
            name: "silver".into(),
            source,
            target,
            transform: Transform::Silver(Silver::default()),
            expectations: Vec::new(),
            table_properties: HashMap::new(),
            partition_by: Vec::new(),
            max_versions: 10,
            rows_fn: None,
        }
    }

    fn target_rows(opts: &StageOptions) -> usize {
        let table = delta::open(&opts.target).unwrap().unwrap();
        let ctx = session(&[&table]).unwrap();
        let provider = block_on(table.table_provider().build()).unwrap();
        let df = ctx.read_table(Arc::new(provider)).unwrap();
        collect(df, "target")
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum()
    }

    #[test]
    fn a_run_that_found_no_target_loses_to_the_run_that_created_it() {
        let opts = silver_over("stage-create-race", vec![1, 2, 3]);
        // This run looks, finds no target, and plans every source version...
        let source = delta::open(&opts.source).unwrap().unwrap();
        let plan = plan(&source, -1, 1, opts.max_versions).unwrap();
        // ...while another run creates the target and commits those versions.
        assert_eq!(run(&opts).unwrap().rows_out, 3);
        // The target it would create exists, with the other run's rows: it
        // must plan again on it, not commit the same rows on top.
        let mut found = None;
        let done = process(&opts, &source, &mut found, &plan).unwrap();
        assert!(
            matches!(done, Done::Lost),
            "committed on a target it did not create"
        );
        assert_eq!(target_rows(&opts), 3);
        let again = run(&opts).unwrap();
        assert_eq!((again.rows_in, again.commits), (0, 0));
        assert_eq!(target_rows(&opts), 3);
    }

    #[test]
    fn targets_are_checkpointed_and_their_expired_log_files_removed() {
        let mut opts = silver_over("stage-checkpoint", vec![0]);
        // Every log file expires at once: each checkpoint removes the ones
        // before it.
        opts.table_properties = HashMap::from([(
            "delta.logRetentionDuration".to_string(),
            "interval 0 seconds".to_string(),
        )]);
        run(&opts).unwrap(); // target versions 0 (create) and 1
        for i in 1..10 {
            append(&opts.source, vec![i]);
            run(&opts).unwrap(); // target versions 2..=10
        }
        let log = std::path::Path::new(&opts.target.uri).join("_delta_log");
        assert!(log.join("00000000000000000010.checkpoint.parquet").exists());
        assert!(!log.join("00000000000000000000.json").exists());
        assert!(log.join("00000000000000000010.json").exists());
        // The table reads whole from the checkpoint.
        assert_eq!(target_rows(&opts), 10);
        append(&opts.source, vec![10]);
        assert_eq!(run(&opts).unwrap().rows_out, 1);
        assert_eq!(target_rows(&opts), 11);
    }

    #[test]
    fn only_the_first_create_of_a_table_is_new() {
        let (location, schema) = new_table("create-new");
        assert!(delta::create_new(&location, &schema, &[], &HashMap::new())
            .unwrap()
            .is_none());
        let _ = std::fs::remove_dir_all(&location.uri);
        let first = delta::create_new(&location, &schema, &[], &HashMap::new()).unwrap();
        assert_eq!(first.and_then(|t| t.version()), Some(0));
        assert!(delta::create_new(&location, &schema, &[], &HashMap::new())
            .unwrap()
            .is_none());
    }
}
