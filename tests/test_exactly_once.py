"""Exactly-once beyond one worker and one topic: reruns after a kill, several
topics, empty partitions, transactions, compaction races, values that do not
fit the table, bounded schemas, checkpoints of short runs, lazy dead-letter
tables, and arguments that must never reach a panic. Run on the real broker
(tansu, sqlite engine); tables read back by deltalake and by DuckDB's delta
extension, files by pyarrow or fastavro and by DuckDB."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import kafkalake
from conftest import (
    create_topic,
    duckdb_avro,
    duckdb_delta,
    duckdb_parquet,
    read_delta_both_ways,
)
from kafkalake.exceptions import (
    ConfigError,
    IncompleteError,
    InvalidArgumentError,
    KafkalakeError,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def broker(durable_broker: str) -> str:
    return durable_broker


def produce_json(
    broker: str, topic: str, values: list[object], partition: int | None = None
) -> None:
    """Write ``values`` as JSON with confluent-kafka (a client no one here wrote)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": broker})
    for v in values:
        if partition is None:
            p.produce(topic, json.dumps(v).encode())
        else:
            p.produce(topic, json.dumps(v).encode(), partition=partition)
    assert p.flush(30) == 0


def delta_offsets(table: Path) -> list[tuple[int, int]]:
    """(partition, offset) of every row, read by DuckDB's delta extension."""
    t = duckdb_delta(table, "SELECT _partition, _offset FROM t ORDER BY 1, 2")
    return list(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))


def produced_offsets(broker: str, topic: str, n: int) -> list[tuple[int, int]]:
    from conftest import read_n

    return sorted(read_n(broker, topic, n))


WORKER = """
import json, sys, kafkalake
servers, topic, table, group, options = sys.argv[1:6]
kafkalake.ingest(topic, table, bootstrap_servers=servers, group_id=group,
                 metadata_columns=True, until="forever", progress=False,
                 config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
                 **json.loads(options))
"""


def start_worker(
    broker: str, topic: str, table: Path, group: str, **options: object
) -> subprocess.Popen[bytes]:
    """An ingest in a process of its own (to be killed), until="forever"."""
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, broker, topic, str(table), group, json.dumps(options)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# 0. A rerun after a kill waits for the partitions the dead worker still holds.
@pytest.mark.slow
def test_rerun_after_kill_9_ends_only_when_every_partition_is_stored(
    broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(broker, topic, 4)
    kafkalake.produce("iot", topic, bootstrap_servers=broker, count=20_000, progress=False)
    expected = produced_offsets(broker, topic, 20_000)
    table = tmp_path / "t"
    group = f"eo-{topic}"
    worker = start_worker(broker, topic, table, group, max_rows=500, max_latency=0.2)
    try:
        # Killed once it has written something (and holds every partition).
        deadline = time.monotonic() + 120
        while not (table / "_delta_log" / "00000000000000000001.json").exists():
            assert time.monotonic() < deadline, "the worker wrote nothing"
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=30)
    before = len(delta_offsets(table))
    assert before < 20_000, "killed part-way"
    # The dead member still holds its partitions in the group: the rerun
    # catches up on its own, then waits until its group watch takes the
    # others over, and ends only when the table holds all of them.
    report = kafkalake.ingest(
        topic,
        table,
        bootstrap_servers=broker,
        group_id=group,
        metadata_columns=True,
        progress=False,
        config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
    )
    assert delta_offsets(table) == expected, "exactly the produced offsets"
    assert report.rows == 20_000 - before


# 0. ... and fails, naming them, when a live member keeps them without writing.
@pytest.mark.slow
def test_caught_up_fails_naming_partitions_held_by_a_member_that_does_not_write(
    broker: str, topic: str, tmp_path: Path
) -> None:
    from confluent_kafka import Consumer

    create_topic(broker, topic, 2)
    for p in (0, 1):
        produce_json(broker, topic, [{"p": p, "i": i} for i in range(100)], partition=p)
    group = f"held-{topic}"
    other = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 10,
        }
    )
    other.subscribe([topic])
    stop = threading.Event()
    ready = threading.Event()

    def hold() -> None:
        # Stays in the group, reads, never commits (a stuck worker).
        while not stop.is_set():
            other.poll(0.1)
            if other.assignment():
                ready.set()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert ready.wait(60), "the other member got no partition"
        table = tmp_path / "t"
        with pytest.raises(IncompleteError) as e:
            kafkalake.ingest(
                topic,
                table,
                bootstrap_servers=broker,
                group_id=group,
                metadata_columns=True,
                progress=False,
                caught_up_timeout=5,
            )
    finally:
        stop.set()
        holder.join(30)
        other.close()
    message = str(e.value)
    assert f"{topic}[" in message and "made no progress" in message, message
    assert e.value.report is not None
    # What it read itself is in the table, and only that.
    held = {int(message.split(f"{topic}[")[1].split("]")[0])}
    assert len(held) == 1
    rows = delta_offsets(table)
    assert {p for p, _ in rows} == {0, 1} - held
    assert len(rows) == 100


# 8. Several topics, one of them empty.
def test_caught_up_with_several_topics_one_empty(broker: str, tmp_path: Path) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    create_topic(broker, a, 2)
    create_topic(broker, b, 2)
    produce_json(broker, a, [{"i": i} for i in range(10)])
    table = tmp_path / "t"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kafkalake.cli",
            "ingest",
            a,
            b,
            "--table",
            str(table),
            "--bootstrap-servers",
            broker,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert duckdb_delta(table, "SELECT count(*) FROM t").column(0).to_pylist() == [10]


# 9. Transactional producers: commit markers and aborted records. tansu 0.6
# has no transactions (EndTxn is refused as "not supported by broker"), so
# this runs on librdkafka's own broker implementation, the embedded cluster.
def test_caught_up_past_transaction_markers_and_aborted_records(tmp_path: Path) -> None:
    from confluent_kafka import Producer

    with kafkalake.EmbeddedKafka(partitions=1, topics=["tx"]) as kafka:
        servers = kafka.bootstrap_servers
        p = Producer({"bootstrap.servers": servers, "transactional.id": "tx-test"})
        p.init_transactions(30)
        for n, commit in ((50, True), (20, False), (30, True)):
            p.begin_transaction()
            for i in range(n):
                p.produce("tx", json.dumps({"i": i, "kept": commit}).encode())
            if commit:
                p.commit_transaction(30)
            else:
                p.abort_transaction(30)
        table = tmp_path / "t"
        report = kafkalake.ingest(
            "tx",
            table,
            bootstrap_servers=servers,
            progress=False,
            config={"isolation.level": "read_committed"},
        )
    kept = duckdb_delta(table, "SELECT kept, count(*) AS n FROM t GROUP BY kept").to_pylist()
    assert kept == [{"kept": True, "n": 80}], kept
    assert report.rows == 80


# 10. Ingest after ingest in one process (a notebook) on the embedded cluster.
def test_repeated_ingests_on_the_embedded_cluster(tmp_path: Path) -> None:
    with kafkalake.EmbeddedKafka(partitions=2, topics=["events"]) as kafka:
        servers = kafka.bootstrap_servers
        took = []
        for run in range(3):
            kafkalake.produce(
                "search", "events", bootstrap_servers=servers, count=200, progress=False
            )
            t0 = time.monotonic()
            report = kafkalake.ingest(
                "events", tmp_path / "t", bootstrap_servers=servers, progress=False
            )
            took.append(time.monotonic() - t0)
            assert report.rows == 200, (run, report)
    # No run waits for the previous member's session (45 s) to expire in the
    # cluster's coordinator, as every run after the first used to.
    assert max(took) < 20, took


# 1. A compaction racing another one (and an ingest) rewrites each file once.
def test_compactions_at_once_never_double_rows(broker: str, topic: str, tmp_path: Path) -> None:
    create_topic(broker, topic, 2)
    produce_json(broker, topic, [{"i": i} for i in range(400)])
    table = tmp_path / "t"
    kafkalake.ingest(
        topic, table, bootstrap_servers=broker, max_rows=10, max_latency=0.05, progress=False
    )
    assert len(DeltaTable(str(table)).file_uris()) >= 20
    barrier = threading.Barrier(3)
    results: list[object] = []

    def run() -> None:
        barrier.wait()
        results.append(kafkalake.compact(table, min_files=2))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 3
    counts = duckdb_delta(table, "SELECT count(*), count(DISTINCT i) FROM t").to_pylist()
    assert counts == [{"count_star()": 400, "count(DISTINCT i)": 400}], counts
    assert read_delta_both_ways(table).num_rows == 400


# 6. Two file sinks racing on one directory (each sure it owns every
# partition, as a stale worker is) never write overlapping files.
def file_ranges(out: Path, fmt: str) -> list[tuple[int, list[int]]]:
    """(partition, offsets) of each file, read by pyarrow or fastavro."""
    import fastavro
    import pyarrow.parquet as pq

    ranges = []
    for f in sorted(out.rglob(f"*.{'parquet' if fmt == 'parquet' else 'avro'}")):
        if fmt == "parquet":
            t = pq.read_table(f)
            parts = set(t.column("_partition").to_pylist())
            offsets = t.column("_offset").to_pylist()
        else:
            # <root>/<namespace>/<hub>/<partition>/<yyyy>/<mm>/<dd>/<hh>/<mm>/<file>
            parts = {int(f.relative_to(out).parts[2])}
            with f.open("rb") as fh:
                offsets = [r["SequenceNumber"] for r in fastavro.reader(fh)]  # type: ignore[index]
        assert len(parts) == 1, f"{f} holds one partition"
        ranges.append((parts.pop(), offsets))
    return ranges


def duckdb_file_ranges(out: Path, fmt: str) -> list[tuple[int, list[int]]]:
    """(partition, sorted offsets) of each file, read by DuckDB: read_parquet,
    or the avro extension's read_avro."""
    if fmt == "parquet":
        t = duckdb_parquet(out / "**" / "*.parquet", "SELECT filename, _partition, _offset FROM t")
    else:
        t = duckdb_avro(out / "**" / "*.avro", 'SELECT filename, NULL, "SequenceNumber" FROM t')
    files: dict[str, tuple[set[int], list[int]]] = {}
    for f, p, o in zip(*(c.to_pylist() for c in t.columns), strict=True):
        parts, offsets = files.setdefault(f, (set(), []))
        parts.add(int(Path(f).relative_to(out).parts[2]) if p is None else p)
        offsets.append(o)
    assert all(len(parts) == 1 for parts, _ in files.values())
    return sorted((parts.pop(), sorted(offsets)) for parts, offsets in files.values())


@pytest.mark.parametrize("fmt", ["parquet", "capture"])
def test_two_file_sinks_racing_on_one_directory(
    broker: str, topic: str, tmp_path: Path, fmt: str
) -> None:
    create_topic(broker, topic, 2)
    produce_json(broker, topic, [{"i": i} for i in range(3000)])
    expected = produced_offsets(broker, topic, 3000)
    out = tmp_path / "out"
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(group: str, max_rows: int) -> None:
        try:
            barrier.wait()
            kafkalake.ingest(
                topic,
                out,
                bootstrap_servers=broker,
                group_id=group,
                format=fmt,  # type: ignore[arg-type]
                metadata_columns=fmt == "parquet",
                max_rows=max_rows,
                max_latency=0.01,
                progress=False,
            )
        except BaseException as e:
            errors.append(e)

    # Two groups: each worker reads every partition, with its own batch edges.
    threads = [
        threading.Thread(target=run, args=(f"{topic}-a", 70)),
        threading.Thread(target=run, args=(f"{topic}-b", 130)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    ranges = file_ranges(out, fmt)
    stored = sorted((p, o) for p, offsets in ranges for o in offsets)
    assert stored == expected, "every offset in exactly one file"
    assert duckdb_file_ranges(out, fmt) == sorted((p, sorted(o)) for p, o in ranges)
    # Each file's offsets are one run of the partition's log, no file inside another.
    for p in {p for p, _ in ranges}:
        spans = sorted((min(o), max(o)) for q, o in ranges if q == p and o)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end < start, f"partition {p}: files overlap: {spans}"


# 2. Capture with one event hub for several topics is refused before any work.
def test_capture_eventhub_with_several_topics_is_refused(broker: str, tmp_path: Path) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    for t in (a, b):
        create_topic(broker, t, 1)
    with pytest.raises(InvalidArgumentError, match="capture_eventhub='hub'"):
        kafkalake.ingest(
            [a, b],
            tmp_path / "c",
            bootstrap_servers=broker,
            format="capture",
            capture_eventhub="hub",
            progress=False,
        )
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


# 3. A value that does not fit the table's type is a dead letter, never changed.
def test_values_that_do_not_fit_the_table_are_dead_letters(
    broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(broker, topic, 1)
    table = tmp_path / "t"
    produce_json(broker, topic, [{"id": 1, "extra": {"x": 1}}])
    kafkalake.ingest(topic, table, bootstrap_servers=broker, progress=False)
    produce_json(broker, topic, [{"id": 2.7, "extra": {"x": 2}}, {"id": 3, "extra": {"x": 3}}])
    report = kafkalake.ingest(topic, table, bootstrap_servers=broker, progress=False)
    assert (report.rows, report.dead_letters) == (1, 1)
    ids = duckdb_delta(table, "SELECT id FROM t ORDER BY id").column(0).to_pylist()
    assert ids == [1, 3]
    dead = duckdb_delta(f"{table}_dead_letters", "SELECT value, error FROM t").to_pylist()
    assert json.loads(dead[0]["value"]) == {"id": 2.7, "extra": {"x": 2}}
    assert "2.7" in dead[0]["error"], dead
    assert read_delta_both_ways(table).num_rows == 2
    assert read_delta_both_ways(f"{table}_dead_letters").num_rows == 1


def test_flattened_table_gets_new_nested_fields(broker: str, topic: str, tmp_path: Path) -> None:
    create_topic(broker, topic, 1)
    table = tmp_path / "t"
    produce_json(broker, topic, [{"id": 1, "extra": {"x": 1}}])
    kafkalake.ingest(topic, table, bootstrap_servers=broker, flatten=True, progress=False)
    produce_json(broker, topic, [{"id": 2, "extra": {"x": 2, "y": "new"}}])
    kafkalake.ingest(topic, table, bootstrap_servers=broker, flatten=True, progress=False)
    rows = duckdb_delta(table, 'SELECT id, "extra.x", "extra.y" FROM t ORDER BY id').to_pylist()
    assert rows == [
        {"id": 1, "extra.x": 1, "extra.y": None},
        {"id": 2, "extra.x": 2, "extra.y": "new"},
    ]
    assert read_delta_both_ways(table).num_rows == 2


def test_two_topics_create_one_table_without_changing_values(broker: str, tmp_path: Path) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    create_topic(broker, a, 1)
    create_topic(broker, b, 1)
    produce_json(broker, a, [{"v": i} for i in range(5)])
    produce_json(broker, b, [{"v": i + 0.5} for i in range(5)])
    table = tmp_path / "t"
    report = kafkalake.ingest([a, b], table, bootstrap_servers=broker, progress=False)
    # The table is created from the first topic's values (whole numbers):
    # the other topic's halves do not fit and wait in the dead letters.
    values = sorted(duckdb_delta(table, "SELECT v FROM t").column(0).to_pylist())
    assert values == [0, 1, 2, 3, 4]
    assert report.dead_letters == 5
    dead = duckdb_delta(f"{table}_dead_letters", "SELECT value FROM t").column(0).to_pylist()
    assert sorted(json.loads(v)["v"] for v in dead) == [0.5, 1.5, 2.5, 3.5, 4.5]


# 7. A poll that fails leaves the position where it was.
def test_failed_poll_reads_the_same_messages_again(broker: str, topic: str) -> None:
    create_topic(broker, topic, 1)
    # `_topic` clashes with the metadata column of the same name.
    produce_json(broker, topic, [{"_topic": "x"}] * 5 + [{"ok": True}] * 5)
    with kafkalake.BatchConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=f"g-{topic}",
        metadata_columns=True,
        max_rows=5,
    ) as consumer:
        for _ in range(2):
            with pytest.raises(InvalidArgumentError, match="_topic"):
                while consumer.poll(5.0) is None:
                    pass


# 12. Out-of-range arguments are errors, never a panic.
def test_out_of_range_arguments(broker: str, topic: str, tmp_path: Path) -> None:
    create_topic(broker, topic, 1)
    for kwargs in ({"max_latency": 1e19}, {"caught_up_timeout": 1e30}, {"until": 1e300}):
        with pytest.raises(InvalidArgumentError):
            kafkalake.ingest(
                topic,
                tmp_path / "t",
                bootstrap_servers=broker,
                progress=False,
                **kwargs,  # type: ignore[arg-type]
            )
    with pytest.raises(ConfigError):
        kafkalake.ingest(
            topic,
            tmp_path / "t",
            bootstrap_servers=broker,
            progress=False,
            config={"session.timeout.ms": str(2**64 - 1)},
        )
    with (
        kafkalake.BatchConsumer(topic, bootstrap_servers=broker, group_id="g") as c,
        pytest.raises(InvalidArgumentError),
    ):
        c.poll(1e19)
    assert not (tmp_path / "t").exists()


def test_event_times_stay_representable() -> None:
    """Virtual clocks that would run past what timestamps hold (they used to
    saturate or wrap around silently) are refused before any event."""
    for kwargs in (
        {"event_interval": 1e15},
        {"max_lateness": 1e15, "late_ratio": 1.0},
        {"event_interval": float("inf")},
    ):
        with pytest.raises(InvalidArgumentError, match=r"a day|a year"):
            kafkalake.generate("iot", 5, **kwargs)  # type: ignore[arg-type]


# 13. Keys count towards max_bytes.
def test_max_bytes_counts_keys(broker: str, topic: str) -> None:
    from confluent_kafka import Producer

    create_topic(broker, topic, 1)
    p = Producer({"bootstrap.servers": broker})
    for i in range(20):
        p.produce(topic, key=b"k" * 5000, value=json.dumps({"i": i}).encode())
    assert p.flush(30) == 0
    sizes = []
    with kafkalake.BatchConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=f"g-{topic}",
        max_bytes=10_000,
        stop_when_idle=2.0,
    ) as consumer:
        sizes = [len(b) for b in consumer]
    assert sum(sizes) == 20
    assert max(sizes) <= 3, sizes


# 14. Values with keys that keep changing do not add columns forever.
def test_dynamic_keys_are_capped_by_max_columns(broker: str, topic: str, tmp_path: Path) -> None:
    create_topic(broker, topic, 1)
    produce_json(broker, topic, [{"id": i, "counts": {f"user{i}": 1}} for i in range(300)])
    table = tmp_path / "t"
    report = kafkalake.ingest(
        topic, table, bootstrap_servers=broker, max_columns=50, progress=False
    )
    schema = pa.schema(DeltaTable(str(table)).schema())
    counts = schema.field("counts").type
    assert 1 + counts.num_fields <= 50
    assert report.rows + report.dead_letters == 300
    assert report.dead_letters >= 250
    errors = duckdb_delta(f"{table}_dead_letters", "SELECT DISTINCT error FROM t")
    assert all("max_columns (50)" in e and "map" in e for e in errors.column(0).to_pylist())


# 16. Checkpoints follow the table's version, not one run's commits.
def test_short_runs_get_checkpoints(broker: str, topic: str, tmp_path: Path) -> None:
    create_topic(broker, topic, 1)
    table = tmp_path / "t"
    for run in range(12):
        produce_json(broker, topic, [{"run": run, "i": i} for i in range(50)])
        kafkalake.ingest(
            topic, table, bootstrap_servers=broker, checkpoint_interval=5, progress=False
        )
    assert (table / "_delta_log" / "_last_checkpoint").exists()
    assert duckdb_delta(table, "SELECT count(*) FROM t").column(0).to_pylist() == [600]
    assert read_delta_both_ways(table).num_rows == 600
    # The checkpoint alone: in a copy without the commits it holds (as log
    # cleanup leaves a table), both readers still find the same 600 rows.
    copy = tmp_path / "copy"
    shutil.copytree(table, copy)
    version = json.loads((copy / "_delta_log" / "_last_checkpoint").read_text())["version"]
    for commit in (copy / "_delta_log").glob("*.json"):
        if int(commit.stem) <= version:
            commit.unlink()
    assert read_delta_both_ways(copy).num_rows == 600


# 17. No dead-letter folder until there is a dead letter.
@pytest.mark.parametrize("fmt", ["delta", "parquet", "capture"])
def test_no_empty_dead_letter_folder(broker: str, topic: str, tmp_path: Path, fmt: str) -> None:
    create_topic(broker, topic, 1)
    produce_json(broker, topic, [{"i": i} for i in range(10)])
    out = tmp_path / "out"
    kafkalake.ingest(topic, out, bootstrap_servers=broker, format=fmt, progress=False)  # type: ignore[arg-type]
    assert out.exists()
    assert not (tmp_path / "out_dead_letters").exists()


def test_incomplete_error_is_a_kafkalake_error() -> None:
    assert issubclass(IncompleteError, KafkalakeError)


# The broker stopped for 20 s in the middle of an ingest, then started again.
@pytest.mark.slow
def test_broker_restart_mid_ingest(tmp_path: Path) -> None:
    from conftest import TANSU

    run = tmp_path / "broker"
    start = [str(TANSU), "start", str(run), "sqlite"]
    servers = subprocess.run(
        start, check=True, capture_output=True, text=True, timeout=600
    ).stdout.split()[-1]
    worker = None
    try:
        topic = "restart"
        create_topic(servers, topic, 4)
        kafkalake.produce("iot", topic, bootstrap_servers=servers, count=20_000, progress=False)
        expected = produced_offsets(servers, topic, 20_000)
        table = tmp_path / "t"
        script = """
import sys, kafkalake
servers, topic, table = sys.argv[1:4]
r = kafkalake.ingest(topic, table, bootstrap_servers=servers, metadata_columns=True,
                     max_rows=500, max_latency=0.2, progress=False)
print(r)
"""
        worker = subprocess.Popen(
            [sys.executable, "-c", script, servers, topic, str(table)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not (table / "_delta_log" / "00000000000000000002.json").exists():
            assert time.monotonic() < deadline, "the ingest wrote nothing"
            assert worker.poll() is None, worker.communicate()
            time.sleep(0.02)
        subprocess.run([str(TANSU), "stop", str(run)], check=True, timeout=30)
        stopped = time.monotonic()
        written = len(delta_offsets(table))
        # The outage itself: the broker is away for 20 s.
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        assert worker.poll() is None, "the ingest gave up while the broker was away"
        port = servers.rsplit(":", 1)[1]
        subprocess.run(
            start,
            check=True,
            capture_output=True,
            timeout=600,
            env={**os.environ, "TANSU_PORT": port},
        )
        _, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-3000:]
        assert written < 20_000, "stopped mid-ingest"
        assert delta_offsets(table) == expected, "exactly the produced offsets"
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        subprocess.run([str(TANSU), "stop", str(run)], check=False, timeout=30)


# 4. Every offset in exactly one of the two tables, whatever is killed where.
def test_an_earlier_runs_dead_letters_keep_their_classification(
    broker: str, topic: str, tmp_path: Path
) -> None:
    """Killed between the dead-letter commit and the data commit (made here by
    taking the data commit out of the log), then run again with a
    `max_message_bytes` that judges a message differently: each offset still
    ends in exactly one table."""
    create_topic(broker, topic, 1)
    values: list[object] = [{"id": i, "pad": "x"} for i in range(10)]
    values[3] = {"id": 3, "pad": "x" * 200}  # over 100 bytes
    values[6] = {"id": "six", "pad": "x"}  # never fits: id is a number
    produce_json(broker, topic, values)
    for first, then in ((100, 1000), (1000, 100)):
        table = tmp_path / f"t-{first}"
        kafkalake.ingest(
            topic, table, bootstrap_servers=broker, max_message_bytes=first, progress=False
        )
        # The data commit never landed; the dead letters' did.
        last = sorted((table / "_delta_log").glob("*.json"))[-1]
        assert last.name != "00000000000000000000.json"
        last.unlink()
        kafkalake.ingest(
            topic, table, bootstrap_servers=broker, max_message_bytes=then, progress=False
        )
        rows = DeltaTable(str(table)).to_pyarrow_table().column("id").to_pylist()
        dead = duckdb_delta(f"{table}_dead_letters", 'SELECT "offset" FROM t')
        dead_offsets = dead.column(0).to_pylist()
        assert not set(rows) & set(dead_offsets), (rows, dead_offsets)
        assert sorted(rows + dead_offsets) == list(range(10)), (rows, dead_offsets)


# Two workers with compact_every and 1 % malformed messages, killed with
# kill -9 again and again: the data and the dead letters together hold each
# produced offset exactly once.
@pytest.mark.slow
def test_kill_9_two_workers_compacting_with_malformed_messages(
    broker: str, topic: str, tmp_path: Path
) -> None:
    import random

    create_topic(broker, topic, 4)
    kafkalake.produce(
        "iot",
        topic,
        bootstrap_servers=broker,
        count=20_000,
        malformed_ratio=0.01,
        duplicate_ratio=0.0,
        progress=False,
    )
    expected = produced_offsets(broker, topic, 20_000)
    table = tmp_path / "t"
    rng = random.Random(4)
    for round_ in range(8):
        workers = [
            start_worker(
                broker,
                topic,
                table,
                f"k-{topic}",
                max_rows=300,
                max_latency=0.1,
                compact_every=2,
                compact_min_files=2,
            )
            for _ in range(2)
        ]
        # Killed at a random moment of their lives: start-up, joining,
        # writing, compacting.
        time.sleep(rng.uniform(1.0, 4.0))
        for w in workers:
            os.kill(w.pid, signal.SIGKILL)
            w.wait(timeout=30)
        if (table / "_delta_log").exists():
            rows = delta_offsets(table)
            assert len(rows) == len(set(rows)), f"repeats after round {round_}"
    kafkalake.ingest(
        topic,
        table,
        bootstrap_servers=broker,
        group_id=f"final-{topic}",
        metadata_columns=True,
        progress=False,
    )
    rows = delta_offsets(table)
    dead = duckdb_delta(
        f"{table}_dead_letters", 'SELECT "partition", "offset" FROM t ORDER BY 1, 2'
    )
    dead_offsets = list(zip(dead.column(0).to_pylist(), dead.column(1).to_pylist(), strict=True))
    assert len(rows) == len(set(rows)), "no repeats in the data"
    assert len(dead_offsets) == len(set(dead_offsets)), "no repeats in the dead letters"
    assert not set(rows) & set(dead_offsets), "no offset in both tables"
    assert sorted(rows + dead_offsets) == expected, "exactly the produced offsets"
    assert 100 <= len(dead_offsets) <= 400, len(dead_offsets)
    assert len(DeltaTable(str(table)).history()) > 0
