"""Ingest on the real broker: Delta and Parquet, exactly once under kill -9,
two workers in one group, dead letters, read back by deltalake and pyarrow,
and by DuckDB (its delta extension and its Parquet reader) to compare."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, QueryBuilder

import kafkalake
from conftest import create_topic, duckdb_delta, duckdb_parquet, read_delta_both_ways, same_rows
from kafkalake.exceptions import TableError, TopicNotFoundError

pytestmark = pytest.mark.broker


@pytest.fixture
def broker(durable_broker: str) -> str:
    """Ingest resumes inside record batches: run on tansu's sqlite engine."""
    return durable_broker


def query(table: str | Path, sql: str) -> pa.Table:
    """Read with the deltalake package's own engine."""
    return pa.table(QueryBuilder().register("t", DeltaTable(str(table))).execute(sql))


def offsets_in_delta(table: Path) -> list[tuple[int, int]]:
    t = query(table, "SELECT _partition, _offset FROM t")
    return list(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))


def offsets_in_parquet(directory: Path) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for f in directory.rglob("*.parquet"):
        t = pq.read_table(f)
        out += zip(t.column("_partition").to_pylist(), t.column("_offset").to_pylist(), strict=True)
    return out


def produce_n(broker: str, topic: str, n: int, partitions: int = 4, **kw: object) -> dict[int, int]:
    create_topic(broker, topic, partitions)
    kafkalake.produce(
        "iot", topic, bootstrap_servers=broker, count=n, duplicate_ratio=0.0, progress=False, **kw
    )  # type: ignore[arg-type]
    # How many landed in each partition, read independently with confluent-kafka.
    from conftest import read_n

    return dict(Counter(p for p, _ in read_n(broker, topic, n)))


def expected_offsets(per_partition: dict[int, int]) -> list[tuple[int, int]]:
    return sorted((p, o) for p, n in per_partition.items() for o in range(n))


def test_delta_ingest_reads_back_with_deltalake_and_pyarrow(
    broker: str, topic: str, tmp_path: Path
) -> None:
    per_part = produce_n(broker, topic, 6000, seed=3, start_time=None)
    table = tmp_path / "iot"
    report = kafkalake.ingest(
        topic,
        table,
        bootstrap_servers=broker,
        metadata_columns=True,
        max_rows=1000,
        date_column=("createdAt", "date"),
        partition_by=["date"],
        progress=False,
    )
    assert report.messages == 6000 and report.rows == 6000 and report.dead_letters == 0
    assert report.commits >= 6
    assert sorted(offsets_in_delta(table)) == expected_offsets(per_part)
    assert read_delta_both_ways(table).num_rows == 6000
    dt = DeltaTable(str(table))
    assert dt.metadata().partition_columns == ["date"]
    schema = pa.schema(dt.schema())
    assert pa.types.is_struct(schema.field("complexData").type)
    assert schema.field("complexData").type.num_fields == 23
    assert pa.types.is_timestamp(schema.field("createdAt").type)
    # Values spot-checked against what was produced, via the pyarrow reader.
    files = [pq.read_table(f) for f in table.rglob("*.parquet")]
    rows = pa.concat_tables([f.select(["deviceId", "deviceSequenceNumber", "type"]) for f in files])
    assert rows.num_rows == 6000
    seq = Counter(rows.column("deviceId").to_pylist())
    assert sum(seq.values()) == 6000
    assert set(rows.column("type").to_pylist()) <= {"CO2", "TEMP", "HUMIDITY", "PRESSURE"}
    # A second run finds nothing new: exactly once across runs.
    again = kafkalake.ingest(topic, table, bootstrap_servers=broker, progress=False)
    assert again.rows == 0
    assert len(offsets_in_delta(table)) == 6000


def test_headers_kept_only_as_metadata_columns(broker: str, topic: str, tmp_path: Path) -> None:
    """Kafka headers land in `_headers` when metadata columns are asked for
    (and are not read at all otherwise)."""
    from confluent_kafka import Producer

    create_topic(broker, topic, 1)
    p = Producer({"bootstrap.servers": broker})
    for i in range(30):
        headers = (
            [("source", b"lab"), ("seq", str(i).encode()), ("empty", None)] if i % 3 == 0 else None
        )
        p.produce(topic, json.dumps({"i": i}).encode(), headers=headers)
    assert p.flush(30) == 0
    with_meta = tmp_path / "with"
    kafkalake.ingest(
        topic, with_meta, bootstrap_servers=broker, metadata_columns=True, progress=False
    )
    rows = query(with_meta, "SELECT i, _headers FROM t ORDER BY i").to_pylist()
    assert [r["i"] for r in rows] == list(range(30))
    for r in rows:
        if r["i"] % 3 == 0:
            assert r["_headers"] == [
                ("source", b"lab"),
                ("seq", str(r["i"]).encode()),
                ("empty", None),
            ], r
        else:
            assert r["_headers"] is None, r
    without = tmp_path / "without"
    kafkalake.ingest(topic, without, bootstrap_servers=broker, progress=False)
    assert pa.schema(DeltaTable(str(without)).schema()).names == ["i"]


def test_dead_letters(broker: str, topic: str, tmp_path: Path) -> None:
    create_topic(broker, topic, 2)
    kafkalake.produce(
        "search", topic, bootstrap_servers=broker, count=3000, malformed_ratio=0.05, progress=False
    )
    table = tmp_path / "search"
    report = kafkalake.ingest(
        topic, table, bootstrap_servers=broker, progress=False, metadata_columns=True
    )
    dead = query(str(table) + "_dead_letters", "SELECT * FROM t")
    assert report.dead_letters == dead.num_rows > 50
    assert read_delta_both_ways(str(table) + "_dead_letters").num_rows == dead.num_rows
    assert read_delta_both_ways(table).num_rows == report.rows
    assert report.rows + report.dead_letters == 3000
    assert all(e for e in dead.column("error").to_pylist())
    for raw in dead.column("value").to_pylist()[:20]:
        try:
            ok = isinstance(json.loads(raw), dict) and isinstance(json.loads(raw)["lat"], float)
        except (ValueError, KeyError):
            ok = False
        assert not ok, raw
    got = offsets_in_delta(table) + list(
        zip(dead.column("partition").to_pylist(), dead.column("offset").to_pylist(), strict=True)
    )
    assert len(set(got)) == 3000


def test_schema_conflict_and_not_a_table(broker: str, topic: str, tmp_path: Path) -> None:
    produce_n(broker, topic, 100)
    table = tmp_path / "t"
    kafkalake.ingest(topic, table, bootstrap_servers=broker, progress=False)
    with pytest.raises(TableError, match="conflicts"):
        kafkalake.ingest(
            topic,
            table,
            bootstrap_servers=broker,
            progress=False,
            name="other",
            schema=pa.schema([("value", pa.string())]),
        )
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a table")
    with pytest.raises(TableError, match="not a Delta table"):
        kafkalake.ingest(topic, junk, bootstrap_servers=broker, progress=False)
    with pytest.raises(TopicNotFoundError):
        kafkalake.ingest("no-such-topic", tmp_path / "x", bootstrap_servers=broker, progress=False)


INGEST_SCRIPT = """
import sys, kafkalake
servers, topic, table, fmt = sys.argv[1:5]
config = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
if len(sys.argv) > 5:
    config["group.instance.id"] = sys.argv[5]
kafkalake.ingest(topic, table, bootstrap_servers=servers, format=fmt, metadata_columns=True,
                 max_rows=400, max_latency=0.2, until="forever", progress=False, config=config)
"""


def start_worker(
    broker: str, topic: str, table: Path, fmt: str, instance: str | None = None
) -> subprocess.Popen[bytes]:
    extra = [instance] if instance else []
    return subprocess.Popen(
        [sys.executable, "-c", INGEST_SCRIPT, broker, topic, str(table), fmt, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def written_offsets(table: Path, fmt: str) -> list[tuple[int, int]]:
    if fmt == "parquet":
        return offsets_in_parquet(table) if table.exists() else []
    return offsets_in_delta(table) if (table / "_delta_log").exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_exactly_once_under_kill_9(broker: str, topic: str, tmp_path: Path, fmt: str) -> None:
    per_part = produce_n(broker, topic, 20_000, seed=7)
    table = tmp_path / "out"
    rng = random.Random(fmt)
    progress = []
    for _ in range(20):
        worker = start_worker(broker, topic, table, fmt)
        # Kill at a random point of its life: start-up, group join, or writing.
        time.sleep(rng.uniform(0.5, 3.0))
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        written = written_offsets(table, fmt)
        assert len(written) == len(set(written)), "no repeats, after every kill"
        progress.append(len(written))
    # The last run joins a fresh consumer group: tansu keeps the killed workers
    # as members of theirs, holding partitions. Where to resume comes from
    # the table (or the files), not from the group, so that changes nothing.
    report = kafkalake.ingest(
        topic,
        table,
        bootstrap_servers=broker,
        format=fmt,  # type: ignore[arg-type]
        metadata_columns=True,
        group_id=f"final-{topic}",
        progress=False,
    )
    written = written_offsets(table, fmt)
    assert sorted(written) == expected_offsets(per_part), "exactly the N offsets"
    assert report.rows == 20_000 - progress[-1]
    assert progress[-1] > 0, "the killed workers made progress"


def two_workers(broker: str, topic: str, tmp_path: Path, stop: signal.Signals) -> None:
    """Two workers of one group append concurrently to one table until
    4,000 rows are in; then one of them is stopped with `stop`, and the other
    must take over its partitions from the offsets stored in the table."""
    per_part = produce_n(broker, topic, 20_000, partitions=4, seed=9)
    table = tmp_path / "shared"
    a = start_worker(broker, topic, table, "delta")
    b = start_worker(broker, topic, table, "delta")
    try:
        deadline = time.monotonic() + 240
        while len(written_offsets(table, "delta")) < 4000:
            assert time.monotonic() < deadline, "the workers made no progress"
            time.sleep(0.2)
        os.kill(a.pid, stop)
        a.wait(timeout=60)
        assert b.poll() is None, "the survivor exited"
        while len(written_offsets(table, "delta")) < 20_000:
            assert time.monotonic() < deadline, "the survivor did not finish"
            assert b.poll() is None, "the survivor exited"
            time.sleep(0.2)
    finally:
        for w in (a, b):
            w.kill()
            w.wait(timeout=30)
    written = written_offsets(table, "delta")
    assert len(written) == len(set(written)), "no repeats"
    assert sorted(written) == expected_offsets(per_part), "no gaps"


@pytest.mark.slow
def test_two_workers_one_stopped_mid_run(broker: str, topic: str, tmp_path: Path) -> None:
    """Ctrl-C: the worker writes what it has and leaves the group."""
    two_workers(broker, topic, tmp_path, signal.SIGINT)


@pytest.mark.slow
def test_two_workers_one_killed_mid_run(broker: str, topic: str, tmp_path: Path) -> None:
    """kill -9: the worker leaves half-written files and never says goodbye.
    The coordinator expires it after the session timeout; where it then
    drops it without a rebalance (tansu 0.6), the survivor sees the dead
    worker's partitions stand still with messages waiting and rejoins the
    group to have them assigned again."""
    two_workers(broker, topic, tmp_path, signal.SIGKILL)


def test_batch_consumer_resumes_from_commits(broker: str, topic: str) -> None:
    produce_n(broker, topic, 3000, partitions=2)
    group = f"resume-{topic}"
    seen = 0
    with kafkalake.BatchConsumer(
        topic, bootstrap_servers=broker, group_id=group, max_rows=500, stop_when_idle=2.0
    ) as consumer:
        for batch in consumer:
            seen += len(batch)
            batch.commit()
            if seen >= 1500:
                break
    with kafkalake.BatchConsumer(
        topic, bootstrap_servers=broker, group_id=group, stop_when_idle=2.0
    ) as again:
        rest = sum(len(b) for b in again)
    assert seen + rest == 3000


def test_replay_from_an_offset(broker: str, topic: str) -> None:
    produce_n(broker, topic, 1000, partitions=1)
    with kafkalake.BatchConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=f"r-{topic}",
        start={(topic, 0): 900},
        stop_when_idle=2.0,
        metadata_columns=True,
    ) as consumer:
        offsets = [o for b in consumer for o in pa.table(b.data).column("_offset").to_pylist()]
    assert offsets == list(range(900, 1000))


def test_batch_consumer_async_then_sync(broker: str, topic: str) -> None:
    produce_n(broker, topic, 3000, partitions=2)
    group = f"bc-{topic}"
    import asyncio

    async def read_all() -> int:
        n = 0
        consumer = kafkalake.BatchConsumer(
            topic,
            bootstrap_servers=broker,
            group_id=group,
            max_rows=500,
            stop_when_idle=2.0,
            metadata_columns=True,
        )
        async for batch in consumer:
            t = pa.table(batch.data)
            assert t.num_rows == len(batch) <= 500
            assert set(t.column("_topic").to_pylist()) == {topic}
            n += t.num_rows
            batch.commit()
        consumer.close()
        return n

    assert asyncio.run(read_all()) == 3000
    # Everything was committed: the group has nothing left to deliver.
    with kafkalake.BatchConsumer(
        topic, bootstrap_servers=broker, group_id=group, stop_when_idle=2.0
    ) as again:
        assert sum(len(b) for b in again) == 0


def test_cli_ingest(broker: str, topic: str, tmp_path: Path) -> None:
    produce_n(broker, topic, 2000)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kafkalake.cli",
            "ingest",
            topic,
            "--table",
            str(tmp_path / "cli"),
            "--bootstrap-servers",
            broker,
            "--format",
            "parquet",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == 2000
    files = sorted((tmp_path / "cli").rglob("*.parquet"))
    by_pyarrow = pa.concat_tables([pq.read_table(f) for f in files])
    assert by_pyarrow.num_rows == 2000
    same_rows(duckdb_parquet(tmp_path / "cli" / "**" / "*.parquet"), by_pyarrow, "Parquet files")


def test_start_at_a_time_flatten_and_parquet_names(broker: str, topic: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    create_topic(broker, topic, 1)
    kafkalake.produce("iot", topic, bootstrap_servers=broker, count=500, progress=False)
    middle = datetime.now(UTC)
    kafkalake.produce("iot", topic, bootstrap_servers=broker, count=300, progress=False)
    with kafkalake.BatchConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=f"t-{topic}",
        start=middle - timedelta(0),
        stop_when_idle=2.0,
        metadata_columns=True,
    ) as consumer:
        offsets = [o for b in consumer for o in pa.table(b.data).column("_offset").to_pylist()]
    assert offsets == list(range(500, 800))

    out = tmp_path / "flat"
    report = kafkalake.ingest(
        topic, out, bootstrap_servers=broker, format="parquet", flatten=True, progress=False
    )
    assert report.rows == 800
    files = sorted(out.rglob("*.parquet"))
    assert all(f.name.startswith(f"{topic}-0-") for f in files)
    names = pq.read_table(files[0]).column_names
    assert "complexData.moreData0" in names and "complexData" not in names


def test_unusable_location_fails_before_consuming(broker: str, topic: str, tmp_path: Path) -> None:
    from kafkalake.exceptions import KafkalakeError

    produce_n(broker, topic, 10)
    in_the_way = tmp_path / "table"
    in_the_way.write_text("a file where the table directory should be")
    with pytest.raises(KafkalakeError, match="table"):
        kafkalake.ingest(topic, in_the_way, bootstrap_servers=broker, progress=False)
    with pytest.raises(KafkalakeError):
        kafkalake.ingest(
            topic, in_the_way, bootstrap_servers=broker, format="parquet", progress=False
        )
    assert in_the_way.read_text().startswith("a file")


def test_new_fields_become_columns(broker: str, topic: str, tmp_path: Path) -> None:
    """Additive schema evolution: fields that appear later (top level and
    inside a struct) become nullable columns; nothing goes to dead letters."""
    from confluent_kafka import Producer

    create_topic(broker, topic, 2)
    events = [json.loads(v) for _, v in kafkalake.sample("iot", 400, seed=5)]
    p = Producer({"bootstrap.servers": broker})
    for e in events[:200]:
        p.produce(topic, json.dumps(e).encode())
    assert p.flush(30) == 0
    table = tmp_path / "evolving"
    first = kafkalake.ingest(
        topic, table, bootstrap_servers=broker, metadata_columns=True, progress=False
    )
    assert first.rows == 200
    for i, e in enumerate(events[200:]):
        e["firmware"] = f"1.{i % 3}.0"
        e["complexData"]["moreData99"] = float(i)
        if i % 2:
            e["note"] = None  # only nulls: no column yet, and not a dead letter
        p.produce(topic, json.dumps(e).encode())
    assert p.flush(30) == 0
    second = kafkalake.ingest(
        topic, table, bootstrap_servers=broker, metadata_columns=True, progress=False
    )
    assert (second.rows, second.dead_letters) == (200, 0)
    schema = DeltaTable(str(table)).schema().to_arrow()
    names = [f.name for f in pa.schema(schema)]
    assert "firmware" in names and "note" not in names
    t = query(table, """SELECT "_offset", firmware, "complexData"['moreData99'] AS m FROM t""")
    rows = list(
        zip(t.column(0).to_pylist(), t.column(1).to_pylist(), t.column(2).to_pylist(), strict=True)
    )
    old = [r for r in rows if r[1] is None]
    new = [r for r in rows if r[1] is not None]
    assert len(old) == 200 and all(m is None for _, _, m in old)
    assert len(new) == 200 and {f for _, f, _ in new} == {"1.0.0", "1.1.0", "1.2.0"}
    assert sorted(m for _, _, m in new) == [float(i) for i in range(200)]
    assert read_delta_both_ways(table).num_rows == 400

    # With an explicit schema, unknown fields are ignored instead.
    fixed = kafkalake.ingest(
        topic,
        tmp_path / "fixed",
        bootstrap_servers=broker,
        schema=pa.schema([("eventId", pa.string()), ("value", pa.float64())]),
        progress=False,
    )
    assert (fixed.rows, fixed.dead_letters) == (400, 0)


def test_fields_that_appear_mid_run_keep_every_row_at_its_offset(
    broker: str, topic: str, tmp_path: Path
) -> None:
    """From a topic's second batch on, values are decoded as they are taken;
    when new fields appear in the middle of a batch, the rows decoded before
    them, the new ones and a dead letter still land each at its own offset."""
    from confluent_kafka import Producer

    create_topic(broker, topic, 1)
    events = [json.loads(v) for _, v in kafkalake.sample("iot", 600, seed=7)]
    p = Producer({"bootstrap.servers": broker})
    for i, e in enumerate(events):
        if i >= 275:  # mid-batch: batches close every 50 rows
            e["firmware"] = f"2.{i % 4}"
            e["complexData"]["moreData99"] = float(i)
        p.produce(topic, b'{"broken": ' if i == 410 else json.dumps(e).encode())
    assert p.flush(30) == 0
    table = tmp_path / "mid_run"
    report = kafkalake.ingest(
        topic, table, bootstrap_servers=broker, max_rows=50, metadata_columns=True, progress=False
    )
    assert (report.rows, report.dead_letters) == (599, 1)
    t = query(
        table,
        """SELECT "_offset", "eventId", "value", firmware, "complexData"['moreData99'] AS m
           FROM t ORDER BY "_offset" """,
    )
    rows = list(zip(*(t.column(i).to_pylist() for i in range(5)), strict=True))
    assert [r[0] for r in rows] == [i for i in range(600) if i != 410]
    for offset, event_id, value, firmware, m in rows:
        e = events[offset]
        assert (event_id, value) == (e["eventId"], e["value"]), offset
        assert (firmware, m) == (e.get("firmware"), e["complexData"].get("moreData99")), offset
    dead = DeltaTable(str(tmp_path / "mid_run_dead_letters")).to_pyarrow_table()
    assert dead.column("offset").to_pylist() == [410]
    assert read_delta_both_ways(table).num_rows == 599


def test_stored_offsets_beyond_the_log_end(broker: str, topic: str, tmp_path: Path) -> None:
    """A table that remembers offsets the topic no longer has (the topic was
    deleted and created again): a clear error, nothing written."""
    from confluent_kafka.admin import AdminClient

    produce_n(broker, topic, 300, partitions=1)
    table = tmp_path / "t"
    assert kafkalake.ingest(topic, table, bootstrap_servers=broker, progress=False).rows == 300
    admin = AdminClient({"bootstrap.servers": broker})
    for f in admin.delete_topics([topic]).values():
        f.result(timeout=30)
    produce_n(broker, topic, 10, partitions=1)
    version = DeltaTable(str(table)).version()
    with pytest.raises(kafkalake.exceptions.KafkaError, match="deleted and created again"):
        kafkalake.ingest(
            topic, table, bootstrap_servers=broker, progress=False, group_id=f"new-{topic}"
        )
    assert DeltaTable(str(table)).version() == version


def test_compaction_keeps_rows_and_offsets(broker: str, topic: str, tmp_path: Path) -> None:
    per_part = produce_n(broker, topic, 4000, partitions=2, seed=21)
    table = tmp_path / "small-files"
    kafkalake.ingest(
        topic,
        table,
        bootstrap_servers=broker,
        metadata_columns=True,
        max_rows=150,
        progress=False,
    )
    before = DeltaTable(str(table))
    files_before = len(before.file_uris())
    sql = 'SELECT "_partition", "_offset", "eventId", "value" FROM t ORDER BY 1, 2'
    rows_before = query(table, sql)
    report = kafkalake.compact(table, min_files=4)
    after = DeltaTable(str(table))
    assert report.files_removed == files_before > report.files_added >= 1
    assert report.rows == 4000 and report.version == after.version() == before.version() + 1
    assert len(after.file_uris()) == report.files_added
    assert query(table, sql).equals(rows_before)
    assert duckdb_delta(table, sql).to_pylist() == rows_before.to_pylist()
    assert read_delta_both_ways(table).num_rows == 4000
    assert after.history(1)[0]["operation"] == "OPTIMIZE"
    assert kafkalake.compact(table, min_files=4).version is None  # nothing small left
    # The offsets stored in the table survive: a new run adds nothing.
    again = kafkalake.ingest(
        topic,
        table,
        bootstrap_servers=broker,
        metadata_columns=True,
        group_id=f"x-{topic}",
        progress=False,
    )
    assert again.rows == 0
    assert sorted(offsets_in_delta(table)) == expected_offsets(per_part)

    # Periodic compaction during an ingest.
    periodic = tmp_path / "periodic"
    r = kafkalake.ingest(
        topic,
        periodic,
        bootstrap_servers=broker,
        metadata_columns=True,
        max_rows=100,
        compact_every=5,
        compact_min_files=4,
        progress=False,
    )
    assert r.commits >= 10
    assert len(DeltaTable(str(periodic)).file_uris()) < r.files
    assert sorted(offsets_in_delta(periodic)) == expected_offsets(per_part)
    assert read_delta_both_ways(periodic).num_rows == 4000


LATEST_SCRIPT = """
import sys, kafkalake
servers, topic, table, group = sys.argv[1:5]
kafkalake.ingest(topic, table, bootstrap_servers=servers, group_id=group, start="latest",
                 until="forever", progress=False,
                 config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
"""


def test_latest_start_is_kept_by_the_group(broker: str, topic: str, tmp_path: Path) -> None:
    """start="latest" is resolved once for the group: a worker that found
    nothing new still moves the group's offsets to the end it started from,
    so what is produced before the next worker of the group starts is
    ingested, not skipped (as Kafka's auto.offset.reset=latest applies only
    where the group has no offset)."""
    from confluent_kafka import Consumer, TopicPartition

    produce_n(broker, topic, 300, partitions=2, seed=4)
    group = f"latest-{topic}"
    table = tmp_path / "latest"
    reader = Consumer({"bootstrap.servers": broker, "group.id": group})
    ends = [reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in (0, 1)]
    worker = subprocess.Popen(
        [sys.executable, "-c", LATEST_SCRIPT, broker, topic, str(table), group],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            got = [tp.offset for tp in reader.committed([TopicPartition(topic, p) for p in (0, 1)])]
            if got == ends:
                break
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, f"group offsets {got}, log ends {ends}"
            time.sleep(0.2)
        os.kill(worker.pid, signal.SIGINT)
        worker.wait(timeout=60)
    finally:
        worker.kill()
        worker.wait(timeout=30)
        reader.close()
    assert not (table / "_delta_log").exists(), "nothing new was produced, nothing written"
    kafkalake.produce(
        "iot", topic, bootstrap_servers=broker, count=500, duplicate_ratio=0.0, progress=False
    )
    report = kafkalake.ingest(
        topic,
        table,
        bootstrap_servers=broker,
        group_id=group,
        start="latest",
        metadata_columns=True,
        progress=False,
    )
    assert report.rows == 500
    written = offsets_in_delta(table)
    assert len(set(written)) == 500
    assert all(o >= ends[p] for p, o in written), "only what came after the first worker"
