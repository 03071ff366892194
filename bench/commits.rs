//! Where a Delta commit's time goes as the table grows: many small commits
//! to one local table, each made as an ingest makes it (read the stored txn
//! versions, write the files, commit with a txn per partition, a checkpoint
//! every 10 versions), with each phase timed.
//!
//!     cargo bench --bench commits [-- --commits 1000 --partitions 4 --rows 200 --only-sink]
//!
//! Runs the same commits four ways, each on a table of its own:
//! - delta-rs' defaults: a log cleanup at every commit (it lists the whole
//!   `_delta_log`), the table state updated commit by commit;
//! - without the cleanup;
//! - without it, and the state read again from each checkpoint;
//! - kafkalake's own sink (`DeltaSink::write`, checkpoint every 10 versions):
//!   commits straight to the log with the stored txn versions and the
//!   latest version kept in memory, checkpoints written beside the commits;
//!   only its total is timed.
//!
//! and prints, per window of 100 commits, the mean milliseconds of each phase
//! and the p99 of the whole commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use kafkalake::runtime::block_on;
use kafkalake::sink::delta::{self, DeltaOptions, DeltaSink};
use kafkalake::sink::storage::Location;
use kafkalake::sink::{PartitionChunk, Sink};

const PHASES: [&str; 5] = ["txn read", "files", "commit", "checkpoint", "total"];

struct Args {
    commits: usize,
    partitions: i32,
    rows: usize,
    /// Only kafkalake's own sink (the other three slow down so much that
    /// runs of thousands of commits take hours).
    only_sink: bool,
}

fn args() -> Args {
    let mut a = Args {
        commits: 1000,
        partitions: 4,
        rows: 200,
        only_sink: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} takes a positive number"))
        };
        match flag.as_str() {
            "--commits" => a.commits = value(),
            "--partitions" => a.partitions = value() as i32,
            "--rows" => a.rows = value(),
            "--only-sink" => a.only_sink = true,
            "--bench" => {}
            other => {
                panic!("unknown argument {other}: --commits, --partitions, --rows, --only-sink")
            }
        }
    }
    a
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("deviceId", DataType::Utf8, true),
        Field::new("temperature", DataType::Float64, true),
        Field::new("n", DataType::Int64, true),
    ]))
}

fn batch(schema: &SchemaRef, rows: usize, start: i64) -> RecordBatch {
    let ids: Vec<String> = (0..rows).map(|i| format!("device-{}", i % 50)).collect();
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| 20.0 + i as f64 / 100.0),
            )),
            Arc::new(Int64Array::from_iter_values(
                (0..rows as i64).map(|i| start + i),
            )),
        ],
    )
    .unwrap()
}

/// A new table in a fresh directory named after `name`.
fn new_table(name: &str) -> (std::path::PathBuf, Location) {
    let dir = std::env::temp_dir().join(format!(
        "kafkalake-commits-bench-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let location = Location {
        uri: dir.to_string_lossy().into_owned(),
        options: HashMap::new(),
    };
    (dir, location)
}

/// One run through kafkalake's sink: per commit, the seconds of the whole
/// write (in the last column; the phases are not seen from outside).
fn run_sink(a: &Args) -> Vec<[f64; 5]> {
    let (dir, location) = new_table("sink");
    let schema = schema();
    let table = delta::create(&location, &schema, &[]).unwrap();
    let opts = DeltaOptions {
        location,
        app_name: "bench".into(),
        partition_by: Vec::new(),
        table_properties: HashMap::new(),
        target_file_size: None,
        checkpoint_interval: 10,
        compact_interval: 0,
        compact: Default::default(),
    };
    let mut sink = DeltaSink::new(table, opts).unwrap();
    let mut out = Vec::with_capacity(a.commits);
    for i in 0..a.commits {
        let chunks = (0..a.partitions)
            .map(|p| PartitionChunk {
                partition: p,
                first_offset: (i * a.rows) as i64,
                last_offset: ((i + 1) * a.rows - 1) as i64,
                batch: batch(&schema, a.rows, (i * a.rows) as i64),
                dead_letters: Vec::new(),
            })
            .collect();
        let t0 = Instant::now();
        sink.write("bench", chunks).unwrap();
        let total = t0.elapsed().as_secs_f64();
        out.push([f64::NAN, f64::NAN, f64::NAN, f64::NAN, total]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// One run: `a.commits` commits; per commit, the seconds of each phase.
fn run(a: &Args, cleanup: bool, reload: bool) -> Vec<[f64; 5]> {
    let (dir, location) = new_table(&format!("{cleanup}-{reload}"));
    let schema = schema();
    let mut table = delta::create(&location, &schema, &[]).unwrap();
    let mut out = Vec::with_capacity(a.commits);
    for i in 0..a.commits {
        let t0 = Instant::now();
        block_on(table.update_incremental(None)).unwrap();
        let snapshot = table.snapshot().unwrap().clone();
        for p in 0..a.partitions {
            block_on(
                snapshot.transaction_version(table.log_store().as_ref(), format!("bench-{p}")),
            )
            .unwrap();
        }
        let t1 = Instant::now();
        let mut writer = RecordBatchWriter::for_table(&table).unwrap();
        for _ in 0..a.partitions {
            block_on(writer.write(batch(&schema, a.rows, (i * a.rows) as i64))).unwrap();
        }
        let mut actions: Vec<Action> = block_on(writer.flush())
            .unwrap()
            .into_iter()
            .map(Action::Add)
            .collect();
        actions.extend(
            (0..a.partitions)
                .map(|p| Action::Txn(Transaction::new(format!("bench-{p}"), i as i64))),
        );
        let t2 = Instant::now();
        let finalized = block_on(async {
            CommitBuilder::from(
                CommitProperties::default()
                    .with_create_checkpoint(false)
                    .with_cleanup_expired_logs(if cleanup { None } else { Some(false) }),
            )
            .with_actions(actions)
            .build(
                Some(table.snapshot().unwrap()),
                table.log_store(),
                DeltaOperation::Write {
                    mode: SaveMode::Append,
                    partition_by: None,
                    predicate: None,
                },
            )
            .await
        })
        .unwrap();
        let version = finalized.version();
        table.state = Some(finalized.snapshot());
        let t3 = Instant::now();
        if version % 10 == 0 {
            block_on(deltalake::checkpoints::create_checkpoint(&table, None)).unwrap();
            if reload {
                table.state = None;
                block_on(table.update_incremental(Some(version))).unwrap();
            }
        }
        let t4 = Instant::now();
        out.push([
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            (t4 - t3).as_secs_f64(),
            (t4 - t0).as_secs_f64(),
        ]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn p99(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() * 99).div_ceil(100).max(1) - 1]
}

fn main() {
    let a = args();
    println!(
        "{} commits of {} partitions × {} rows, checkpoint every 10 versions; milliseconds",
        a.commits, a.partitions, a.rows
    );
    for (cleanup, reload, own) in [
        (true, false, false),
        (false, false, false),
        (false, true, false),
        (false, true, true),
    ] {
        if a.only_sink && !own {
            continue;
        }
        if own {
            println!("\nkafkalake's sink (DeltaSink::write): total only");
        } else {
            println!(
                "\nlog cleanup at every commit: {}; table state {}",
                if cleanup {
                    "on (delta-rs default)"
                } else {
                    "off"
                },
                if reload {
                    "read again from each checkpoint"
                } else {
                    "updated commit by commit"
                }
            );
        }
        print!("{:>11}", "commits");
        for p in PHASES {
            print!(" {p:>11}");
        }
        println!(" {:>11}", "total p99");
        let times = if own {
            run_sink(&a)
        } else {
            run(&a, cleanup, reload)
        };
        for (w, window) in times.chunks(100).enumerate() {
            print!(
                "{:>11}",
                format!("{}-{}", w * 100 + 1, w * 100 + window.len())
            );
            for k in 0..PHASES.len() {
                let mean = window.iter().map(|t| t[k]).sum::<f64>() / window.len() as f64;
                if mean.is_nan() {
                    print!(" {:>11}", "-");
                } else {
                    print!(" {:>11.1}", mean * 1e3);
                }
            }
            let mut totals: Vec<f64> = window.iter().map(|t| t[4]).collect();
            println!(" {:>11.1}", p99(&mut totals) * 1e3);
        }
    }
}
