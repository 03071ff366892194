"""Pipelines run whole: the three seeds' pipeline files end to end from the
real broker (tansu) into bronze, silver and gold, kill -9 at random points,
two `kafkalake pipeline run` processes at once, the command line's report
and failures, Ctrl-C of a run that never ends, and a Python transform over
Arrow. Results are checked against one batch query over the whole source,
run by DuckDB's delta extension. The stages alone are tested in
test_pipeline.py, whose helpers these tests share."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from test_pipeline import (
    BATCH_QUERY,
    GOLD_QUERY,
    events,
    expected_silver,
    rows,
    run_stages,
    stage_pipeline,
)

import kafkalake
from conftest import create_topic, read_delta_both_ways, wait_until
from kafkalake.exceptions import InvalidArgumentError, TableError


def write_pipeline(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "pipelines"


def example(name: str, lake: Path, servers: str, topic: str) -> dict[str, Any]:
    """The lab's pipeline file from examples/, with its tables under ``lake``
    and its bronze ingest reading ``topic`` from ``servers``."""
    import tomllib

    doc = tomllib.loads((EXAMPLES / name).read_text())
    for kind in ("bronze", "silver", "gold"):
        for e in doc.get(kind, {}).values():
            e["table"] = str(lake / e["table"])
            if kind == "bronze":
                e.update(bootstrap_servers=servers, topics=[topic], max_latency=0.5)
    return doc


@pytest.mark.broker
def test_seed_001_iot_dedupe_and_per_minute_gold(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(durable_broker, topic, 4)
    doc = example("iot.toml", tmp_path, durable_broker, topic)
    lake = tmp_path / "lake"
    bronze, silver, gold = (
        lake / "bronze" / "iot",
        lake / "silver" / "iot",
        lake / "gold" / "iot_per_minute",
    )
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    for i in range(2):
        kafkalake.produce(
            "iot",
            topic,
            bootstrap_servers=durable_broker,
            count=10_000,
            duplicate_ratio=0.01,
            seed=i,
            start_time=start + timedelta(minutes=30 * i),
            progress=False,
        )
        report = kafkalake.pipeline.run(doc, progress=False)
        assert rows(bronze, "SELECT count(*) FROM t")[0][0] == 10_000 * (i + 1)
        dupes = rows(bronze, 'SELECT count(*) - count(DISTINCT "eventId") FROM t')[0][0]
        assert dupes > 0, "the generator re-sent some events"
        assert rows(silver, 'SELECT count(*) - count(DISTINCT "eventId") FROM t') == [(0,)]
        assert rows(silver, 'SELECT count(DISTINCT "eventId") FROM t') == rows(
            bronze, 'SELECT count(DISTINCT "eventId") FROM t WHERE "deviceId" IS NOT NULL'
        )
        assert rows(gold, GOLD_QUERY) == rows(silver, BATCH_QUERY)
        assert report.stages["silver.iot"].deduplicated > 0
    for table, quality in ((bronze, "bronze"), (silver, "silver"), (gold, "gold")):
        assert DeltaTable(str(table)).metadata().configuration["quality"] == quality
        assert read_delta_both_ways(table).num_rows == rows(table, "SELECT count(*) FROM t")[0][0]


@pytest.mark.broker
def test_seed_002_search_silver_without_cha_and_gold_per_searcher(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(durable_broker, topic, 2)
    doc = example("search.toml", tmp_path, durable_broker, topic)
    lake = tmp_path / "lake"
    bronze, silver, gold = (
        lake / "bronze" / "search",
        lake / "silver" / "search",
        lake / "gold" / "search",
    )
    for i in range(2):
        kafkalake.produce(
            "search", topic, bootstrap_servers=durable_broker, count=3000, seed=i, progress=False
        )
        kafkalake.pipeline.run(doc, progress=False)
        assert rows(silver, "SELECT count(*) FROM t WHERE content_search = 'Chá'") == [(0,)]
        assert rows(bronze, "SELECT count(*) FROM t WHERE content_search = 'Chá'")[0][0] > 0
        assert rows(silver, "SELECT count(*) FROM (SELECT DISTINCT * FROM t)") == rows(
            silver, "SELECT count(*) FROM t"
        )
        assert rows(silver, "SELECT count(*) FROM t") == rows(
            bronze, "SELECT count(*) FROM (SELECT DISTINCT * FROM t) WHERE content_search <> 'Chá'"
        )
        assert rows(gold, "SELECT id, total_search FROM t ORDER BY 1") == rows(
            silver, "SELECT id, count(content_search) FROM t GROUP BY 1 ORDER BY 1"
        )


@pytest.mark.broker
def test_seed_000_clickstream_gold_per_category_per_minute(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(durable_broker, topic, 2)
    doc = example("clickstream.toml", tmp_path, durable_broker, topic)
    lake = tmp_path / "lake"
    kafkalake.produce(
        "clickstream", topic, bootstrap_servers=durable_broker, count=5000, progress=False
    )
    kafkalake.pipeline.run(doc, progress=False)
    got = rows(
        lake / "gold" / "clicks_per_category",
        "SELECT epoch_us(window_start) // 60000000, category, views, "
        "carts, purchases, round(revenue, 6) FROM t ORDER BY ALL",
    )
    want = rows(
        lake / "bronze" / "clicks",
        'SELECT epoch_us("timestamp") // 60000000, category, '
        "count(*) FILTER (action = 'view'), count(*) FILTER (action = 'add_to_cart'), "
        "count(*) FILTER (action = 'purchase'), round(coalesce(sum(price) FILTER "
        "(action = 'purchase'), 0), 6) FROM t GROUP BY ALL ORDER BY ALL",
    )
    assert got == want
    assert sum(r[4] for r in got) > 0


KILL_PIPELINE = """
[bronze.iot]
topics = ["{topic}"]
table = "lake/bronze"
bootstrap_servers = "{servers}"
max_latency = 0.2
max_rows = 500

[silver.iot]
from = "bronze.iot"
table = "lake/silver"
dedupe = {{ key = ["eventId"], time = "createdAt", within = "10m" }}
max_versions = 3

[gold.iot]
from = "silver.iot"
table = "lake/gold"
window = {{ time = "createdAt", size = "1m", watermark = "1h" }}
group_by = ["type"]
aggregates = {{ events = "count(*)", avg_value = "avg(value)", max_value = "max(value)" }}
max_versions = 2
"""


@pytest.mark.broker
@pytest.mark.slow
def test_kill_9_at_random_points_ends_exact(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(durable_broker, topic, 2)
    file = write_pipeline(
        tmp_path / "p.toml", KILL_PIPELINE.format(topic=topic, servers=durable_broker)
    )
    rng = random.Random(7)
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    cmd = [sys.executable, "-m", "kafkalake.cli", "pipeline", "run", str(file)]
    killed = produced = 0
    duration = None
    # New events before every run; runs killed at random points of a run's
    # length (measured on the first, which is not killed) until ten were.
    for i in range(40):
        kafkalake.produce(
            "iot",
            topic,
            bootstrap_servers=durable_broker,
            count=1500,
            duplicate_ratio=0.01,
            seed=i,
            start_time=start + timedelta(minutes=3 * i),
            progress=False,
        )
        produced += 1500
        log = tmp_path / f"run-{i}.log"
        with log.open("wb") as err:
            began = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            try:
                wait = None if duration is None else rng.uniform(0.05, 0.95) * duration
                code = proc.wait(timeout=wait)
                assert code == 0, log.read_text()[-3000:]
                duration = duration or time.monotonic() - began
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                killed += 1
            proc.wait(timeout=30)
        if killed == 10:
            break
    assert killed == 10
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["stages"]) == {"silver.iot", "gold.iot"}
    lake = tmp_path / "lake"
    assert rows(lake / "bronze", "SELECT count(*) FROM t") == [(produced,)]
    assert rows(lake / "silver", 'SELECT count(*) - count(DISTINCT "eventId") FROM t') == [(0,)]
    assert rows(lake / "silver", 'SELECT count(DISTINCT "eventId") FROM t') == rows(
        lake / "bronze", 'SELECT count(DISTINCT "eventId") FROM t'
    )
    assert rows(lake / "gold", GOLD_QUERY) == rows(lake / "silver", BATCH_QUERY)


def test_cli_pipeline_run_reports_and_fails_loudly(tmp_path: Path) -> None:
    write_deltalake(tmp_path / "bronze", events(100))
    file = write_pipeline(
        tmp_path / "p.toml",
        """
[bronze.src]
table = "bronze"
topics = ["unused"]
bootstrap_servers = "unused:1"

[silver.s]
from = "bronze.src"
table = "silver"
where = "value < 50"
""",
    )
    cmd = [sys.executable, "-m", "kafkalake.cli", "pipeline", "run", str(file)]
    ok = subprocess.run(
        [*cmd, "--stage", "silver.s", "--json"], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    stage = json.loads(ok.stdout)["stages"]["silver.s"]
    assert stage["rows_in"] == 100
    assert (
        stage["rows_out"]
        == rows(tmp_path / "bronze", "SELECT count(*) FROM t WHERE value < 50")[0][0]
    )
    bad = subprocess.run(
        [*cmd, "--stage", "gold.nope"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2
    assert "no stage 'gold.nope'" in bad.stderr
    (tmp_path / "broken.toml").write_text("[silver.s\n")
    bad = subprocess.run(
        [sys.executable, "-m", "kafkalake.cli", "pipeline", "run", str(tmp_path / "broken.toml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "not valid TOML" in bad.stderr


def test_a_python_transform_over_arrow(tmp_path: Path) -> None:
    import polars as pl
    import pyarrow.compute as pc

    src = tmp_path / "bronze"
    write_deltalake(src, events(100))

    def doubled(t: pa.Table) -> pa.Table:
        return t.append_column("double", pc.multiply(t["value"], 2))

    p = stage_pipeline(
        src,
        {
            "silver.a": {
                "from": "bronze.src",
                "table": str(tmp_path / "a"),
                "transform": doubled,
                "where": "double > 100",
            }
        },
    )
    run_stages(p)
    assert rows(tmp_path / "a", "SELECT count(*), min(double) FROM t") == rows(
        src, "SELECT count(*), min(value * 2) FROM t WHERE value * 2 > 100"
    )

    p = stage_pipeline(
        src,
        {
            "silver.b": {
                "from": "bronze.src",
                "table": str(tmp_path / "b"),
                "transform_input": "polars",
                "transform": lambda df: df.with_columns((pl.col("value") + 1).alias("plus")),
            }
        },
    )
    run_stages(p)
    assert rows(tmp_path / "b", "SELECT sum(plus) FROM t") == rows(
        src, "SELECT sum(value + 1) FROM t"
    )

    def broken(t: pa.Table) -> pa.Table:
        raise RuntimeError("no such sensor")

    p = stage_pipeline(
        src, {"silver.c": {"from": "bronze.src", "table": str(tmp_path / "c"), "transform": broken}}
    )
    with pytest.raises(TableError, match=r"'silver\.c': its transform raised.*no such sensor"):
        run_stages(p)
    assert not (tmp_path / "c").exists()
    with pytest.raises(InvalidArgumentError, match="transform must be a callable"):
        stage_pipeline(src, {"silver.d": {"from": "bronze.src", "table": "d", "transform": 3}})


@pytest.mark.broker
@pytest.mark.slow
def test_two_pipeline_processes_at_once_end_exact(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(durable_broker, topic, 2)
    file = write_pipeline(
        tmp_path / "p.toml", KILL_PIPELINE.format(topic=topic, servers=durable_broker)
    )
    cmd = [sys.executable, "-m", "kafkalake.cli", "pipeline", "run", str(file), "--json"]
    produced = 0
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    # Three rounds of new events, each run by two whole pipelines at once: one
    # consumer group for the bronze ingests, racing commits for the stages.
    for i in range(3):
        kafkalake.produce(
            "iot",
            topic,
            bootstrap_servers=durable_broker,
            count=3000,
            duplicate_ratio=0.01,
            seed=100 + i,
            start_time=start + timedelta(minutes=5 * i),
            progress=False,
        )
        produced += 3000
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-3000:]
            assert set(json.loads(out)["stages"]) == {"silver.iot", "gold.iot"}
    lake = tmp_path / "lake"
    assert rows(lake / "bronze", "SELECT count(*) FROM t") == [(produced,)]
    assert rows(lake / "silver", 'SELECT count(*) - count(DISTINCT "eventId") FROM t') == [(0,)]
    assert rows(lake / "silver", 'SELECT count(DISTINCT "eventId") FROM t') == rows(
        lake / "bronze", 'SELECT count(DISTINCT "eventId") FROM t'
    )
    assert rows(lake / "gold", GOLD_QUERY) == rows(lake / "silver", BATCH_QUERY)


FOREVER_PIPELINE = """
[bronze.src]
table = "bronze"
topics = ["unused"]
bootstrap_servers = "unused:1"

[silver.iot]
from = "bronze.src"
table = "silver"
dedupe = { key = ["eventId"], time = "createdAt", within = "10m" }
where = "deviceId IS NOT NULL"
expect.value_in_range = { check = "value BETWEEN 0 AND 100", on_violation = "drop" }
max_versions = 2

[gold.iot]
from = "silver.iot"
table = "gold"
window = { time = "createdAt", size = "1m", watermark = "1h" }
group_by = ["type"]
aggregates = { events = "count(*)", avg_value = "avg(value)", max_value = "max(value)" }
"""


def test_ctrl_c_stops_a_forever_run_between_commits(tmp_path: Path) -> None:
    src, silver, gold = tmp_path / "bronze", tmp_path / "silver", tmp_path / "gold"
    write_deltalake(src, events(300, dup_every=40))
    file = write_pipeline(tmp_path / "p.toml", FOREVER_PIPELINE)
    cmd = [sys.executable, "-m", "kafkalake.cli", "pipeline", "run", str(file)]
    stages = ["--stage", "silver.iot", "--stage", "gold.iot"]

    def caught_up() -> bool:
        if not (gold / "_delta_log").exists():
            return False
        want = expected_silver(src)
        got = rows(silver, 'SELECT "eventId" FROM t ORDER BY 1')
        return got == want and rows(gold, GOLD_QUERY) == rows(silver, BATCH_QUERY)

    proc = subprocess.Popen(
        [*cmd, *stages, "--until", "forever", "--poll-interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until("the first pass", caught_up)
        # New source versions while it runs are picked up by the next pass.
        write_deltalake(src, events(300, 300, dup_every=40), mode="append")
        wait_until("the source's new version", caught_up)
        # Ctrl-C in the middle of work: many new versions, the signal as soon
        # as the silver stage has committed the first of them.
        before = DeltaTable(silver).version()
        for i in range(12):
            write_deltalake(src, events(100, 600 + i * 100), mode="append")
        wait_until("a silver commit", lambda: DeltaTable(silver).version() > before)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "pipeline stopped" in err and "Traceback" not in err
    assert "stopped by Ctrl-C" in out
    # Whatever was committed is whole (no row twice, none half-written) and a
    # rerun finishes the rest.
    assert rows(silver, 'SELECT count(*) - count(DISTINCT "eventId") FROM t') == [(0,)]
    done = subprocess.run([*cmd, *stages], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert caught_up()
