"""Medallion stages and pipelines: silver (SQL, dedupe, expectations) and
gold (windows, watermarks, groups) kept exactly once across reruns, kills,
compactions and concurrent runs. Each result is checked against one batch
query over the whole source, run by DuckDB's delta extension (a reader that
is not delta-rs), which must read the same rows as deltalake. Sources are
written with deltalake where the stage alone is under test, and by
kafkalake's ingest from the real broker for the seeds' chains."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import kafkalake
from conftest import duckdb_delta, read_delta_both_ways
from kafkalake.exceptions import ExpectationError, InvalidArgumentError, TableError
from kafkalake.pipeline import parse_duration

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def events(n: int, start: int = 0, *, minutes: float = 10.0, dup_every: int = 0) -> pa.Table:
    """IoT-like rows: eventId, deviceId, type, value, createdAt spread over ``minutes``."""
    rows = []
    for i in range(start, start + n):
        rows.append(
            {
                "eventId": f"e{i}",
                "deviceId": None if i % 97 == 1 else f"d{i % 13}",
                "type": ["CO2", "TEMP", "HUM"][i % 3],
                "value": float((i * 37) % 120),
                "createdAt": T0 + timedelta(seconds=(i % n) * minutes * 60 / n + start),
            }
        )
        if dup_every and i % dup_every == 0:
            rows.append(dict(rows[-1]))
    schema = pa.schema(
        [
            ("eventId", pa.string()),
            ("deviceId", pa.string()),
            ("type", pa.string()),
            ("value", pa.float64()),
            ("createdAt", pa.timestamp("us", tz="UTC")),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def stage_pipeline(src: Path, stages: dict[str, dict[str, Any]]) -> kafkalake.pipeline.Pipeline:
    """``stages`` ({"silver.x": {...}}) fed by the existing table ``src``, as a
    Pipeline whose bronze entry is not run."""
    doc: dict[str, Any] = {
        "bronze": {
            "src": {"table": str(src), "topics": ["unused"], "bootstrap_servers": "unused:1"}
        }
    }
    for key, spec in stages.items():
        kind, name = key.split(".")
        doc.setdefault(kind, {})[name] = spec
    return kafkalake.pipeline.load(doc)


def run_stages(p: kafkalake.pipeline.Pipeline) -> dict[str, kafkalake.pipeline.StageReport]:
    out = {}
    for e in p.entries:
        if e.kind != "bronze":
            r = kafkalake.pipeline.run_entry(p, e)
            assert isinstance(r, kafkalake.pipeline.StageReport)
            out[e.key] = r
    return out


def rows(table: Path, sql: str) -> list[tuple[Any, ...]]:
    t = duckdb_delta(table, sql)
    return [tuple(r.values()) for r in t.to_pylist()]


SILVER = {
    "from": "bronze.src",
    "dedupe": {"key": ["eventId"], "time": "createdAt", "within": "10m"},
    "where": "deviceId IS NOT NULL",
    "expect": {"value_in_range": {"check": "value BETWEEN 0 AND 100", "on_violation": "drop"}},
    "table_properties": {"quality": "silver"},
}
GOLD = {
    "from": "silver.iot",
    "window": {"time": "createdAt", "size": "1m", "watermark": "2m"},
    "group_by": ["type"],
    "aggregates": {"events": "count(*)", "avg_value": "avg(value)", "max_value": "max(value)"},
    "table_properties": {"quality": "gold"},
}
GOLD_QUERY = (
    "SELECT epoch_us(window_start) // 60000000 AS w, type, events, round(avg_value, 6), "
    "max_value FROM t ORDER BY ALL"
)
BATCH_QUERY = (
    'SELECT epoch_us("createdAt") // 60000000 AS w, type, count(*), round(avg(value), 6), '
    "max(value) FROM t GROUP BY ALL ORDER BY ALL"
)


def expected_silver(source: Path) -> list[tuple[Any, ...]]:
    """One batch query: the first row per eventId, filtered, in range."""
    return rows(
        source,
        'SELECT DISTINCT "eventId" FROM t WHERE "deviceId" IS NOT NULL '
        "AND value BETWEEN 0 AND 100 ORDER BY 1",
    )


def test_silver_and_gold_equal_one_batch_query_after_every_run(tmp_path: Path) -> None:
    src, silver, gold = tmp_path / "bronze", tmp_path / "silver", tmp_path / "gold"
    p = stage_pipeline(
        src,
        {"silver.iot": {**SILVER, "table": str(silver)}, "gold.iot": {**GOLD, "table": str(gold)}},
    )
    produced = 0
    for run in range(4):
        # New rows in several commits, 1 % re-sent; times move forward.
        for _ in range(3):
            write_deltalake(src, events(500, produced, dup_every=100), mode="append")
            produced += 500
        reports = run_stages(p)
        assert rows(silver, 'SELECT "eventId" FROM t ORDER BY 1') == expected_silver(src)
        # No late rows here (times only move forward): every window matches.
        assert reports["gold.iot"].late == 0
        assert rows(gold, GOLD_QUERY) == rows(silver, BATCH_QUERY), f"run {run}"
        assert read_delta_both_ways(silver).num_rows == len(expected_silver(src))
        assert read_delta_both_ways(gold).num_rows == len(rows(silver, BATCH_QUERY))
        s = reports["silver.iot"]
        assert s.deduplicated == 15, s
        assert s.expectations["value_in_range"][0] == "drop"
        assert s.expectations["value_in_range"][1] > 0
    assert DeltaTable(str(silver)).metadata().configuration["quality"] == "silver"
    assert DeltaTable(str(gold)).metadata().configuration["quality"] == "gold"
    # Data quality over time in the table's history.
    info = DeltaTable(str(silver)).history(1)[0]["kafkalake.stage"]
    assert info["expectations"]["value_in_range"]["failed"] > 0
    assert info["deduplicated"] == 15
    # A rerun with nothing new changes nothing.
    before = DeltaTable(str(gold)).version()
    reports = run_stages(p)
    assert reports["silver.iot"].versions is None
    assert DeltaTable(str(gold)).version() == before


def test_a_large_run_is_written_as_several_files_at_once(tmp_path: Path) -> None:
    """600,000 new rows (many Arrow batches, no SQL): dedupe across batches,
    and the commit split into files encoded on every core, each row once."""
    src, silver = tmp_path / "bronze", tmp_path / "silver"
    n = 600_000
    data = pa.table(kafkalake.generate("iot", n, seed=3, duplicate_ratio=0.001, batch_size=50_000))
    write_deltalake(src, data, mode="append")
    p = stage_pipeline(
        src,
        {
            "silver.iot": {
                "from": "bronze.src",
                "table": str(silver),
                "dedupe": {"key": ["eventId"], "time": "createdAt", "within": "10m"},
            }
        },
    )
    report = run_stages(p)["silver.iot"]
    distinct = rows(src, 'SELECT count(DISTINCT "eventId") FROM t')[0][0]
    assert report.rows_in == n and report.rows_out == distinct < n
    assert report.deduplicated == n - distinct
    assert rows(silver, 'SELECT count(*), count(DISTINCT "eventId") FROM t') == [
        (distinct, distinct)
    ]
    cores = len(os.sched_getaffinity(0))
    assert len(DeltaTable(str(silver)).file_uris()) == min(3, cores)


def test_dedupe_within_the_horizon_only(tmp_path: Path) -> None:
    src, silver = tmp_path / "bronze", tmp_path / "silver"
    t = events(3)
    write_deltalake(src, t)
    # e0 again 5 minutes later (a duplicate), e1 again 20 minutes later (a new event).
    again = t.slice(0, 2).to_pylist()
    again[0]["createdAt"] += timedelta(minutes=5)
    again[1]["createdAt"] += timedelta(minutes=20)
    p = stage_pipeline(
        src,
        {
            "silver.iot": {
                "from": "bronze.src",
                "dedupe": {"key": ["eventId"], "time": "createdAt", "within": "10m"},
                "table": str(silver),
            }
        },
    )
    run_stages(p)
    write_deltalake(src, pa.Table.from_pylist(again, schema=t.schema), mode="append")
    r = run_stages(p)["silver.iot"]
    assert r.deduplicated == 1
    assert rows(silver, 'SELECT "eventId", count(*) FROM t GROUP BY 1 ORDER BY 1') == [
        ("e0", 1),
        ("e1", 2),
        ("e2", 1),
    ]


def test_dedupe_over_a_source_that_gained_a_column(tmp_path: Path) -> None:
    """The source's schema evolves after the target was written: the new
    column is null in the target's rows, so `distinct` (every column is the
    key) compares the new rows against them instead of failing."""
    src, silver = tmp_path / "bronze", tmp_path / "silver"
    write_deltalake(src, pa.table({"id": [1, 2], "v": [1.0, 2.0]}))
    p = stage_pipeline(
        src, {"silver.s": {"from": "bronze.src", "distinct": True, "table": str(silver)}}
    )
    run_stages(p)
    wider = pa.table({"id": [2, 3, 3], "v": [2.0, 3.0, 3.0], "firmware": [None, "2.1", "2.1"]})
    write_deltalake(src, wider, mode="append", schema_mode="merge")
    r = run_stages(p)["silver.s"]
    assert r.deduplicated == 2  # id 2 with no firmware, as in the target; id 3 twice
    assert rows(silver, "SELECT id, firmware FROM t ORDER BY id") == [
        (1, None),
        (2, None),
        (3, "2.1"),
    ]


def test_expectations_warn_drop_quarantine_and_fail(tmp_path: Path) -> None:
    src, silver = tmp_path / "bronze", tmp_path / "silver"
    write_deltalake(src, events(300))
    expect = {
        "has_device": {"check": "deviceId IS NOT NULL", "on_violation": "quarantine"},
        "low": {"check": "value < 100", "on_violation": "drop"},
        "even": {"check": "value % 2 = 0", "on_violation": "warn"},
    }
    p = stage_pipeline(
        src, {"silver.iot": {"from": "bronze.src", "table": str(silver), "expect": expect}}
    )
    r = run_stages(p)["silver.iot"]
    no_device = rows(src, 'SELECT count(*) FROM t WHERE "deviceId" IS NULL')[0][0]
    high = rows(src, "SELECT count(*) FROM t WHERE value >= 100")[0][0]
    odd = rows(src, "SELECT count(*) FROM t WHERE value % 2 <> 0")[0][0]
    assert r.expectations == {
        "has_device": ("quarantine", no_device),
        "low": ("drop", high),
        "even": ("warn", odd),
    }
    kept = rows(silver, "SELECT count(*) FROM t")[0][0]
    both = rows(src, 'SELECT count(*) FROM t WHERE "deviceId" IS NULL OR value >= 100')[0][0]
    assert kept == 300 - both
    q = rows(Path(f"{silver}_quarantine"), 'SELECT "eventId", _failed_expectations FROM t')
    assert len(q) == no_device == r.quarantined
    assert all("has_device" in names for _, names in q)
    # fail: nothing committed, the error names the check and shows a row.
    write_deltalake(src, events(10, 1000), mode="append")
    version = DeltaTable(str(silver)).version()
    p = stage_pipeline(
        src,
        {
            "silver.iot": {
                "from": "bronze.src",
                "table": str(silver),
                "expect": {"small": {"check": "value < 5", "on_violation": "fail"}},
            }
        },
    )
    with pytest.raises(ExpectationError, match=r"expectation 'small' \(value < 5\).*eventId"):
        run_stages(p)
    assert DeltaTable(str(silver)).version() == version


def test_late_rows_within_and_beyond_the_watermark(tmp_path: Path) -> None:
    src, gold = tmp_path / "silver", tmp_path / "gold"
    schema = events(1).schema

    def at(minute: float, i: int) -> dict[str, Any]:
        return {
            "eventId": f"l{i}",
            "deviceId": "d",
            "type": "CO2",
            "value": 1.0,
            "createdAt": T0 + timedelta(minutes=minute),
        }

    window = {"time": "createdAt", "size": "1m", "watermark": "2m", "keep_late": True}
    p = stage_pipeline(
        src,
        {
            "gold.g": {
                "from": "bronze.src",
                "table": str(gold),
                "window": window,
                "aggregates": {"n": "count(*)"},
            }
        },
    )
    write_deltalake(src, pa.Table.from_pylist([at(m, m) for m in range(6)], schema=schema))
    assert run_stages(p)["gold.g"].late == 0
    # Latest event 10:05, watermark 10:03: 10:04:30 is on time, 10:01:30 is late.
    write_deltalake(
        src,
        pa.Table.from_pylist([at(4.5, 10), at(1.5, 11), at(6, 12)], schema=schema),
        mode="append",
    )
    r = run_stages(p)["gold.g"]
    assert r.late == 1
    got = dict(
        rows(
            gold,
            f"SELECT epoch_us(window_start) // 60000000 - {int(T0.timestamp()) // 60}, n FROM t",
        )
    )
    assert got == {0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 1, 6: 1}, got
    late = rows(Path(f"{gold}_late"), 'SELECT "eventId" FROM t')
    assert late == [("l11",)]


def test_gold_without_a_window_counts_per_group(tmp_path: Path) -> None:
    src, gold = tmp_path / "silver", tmp_path / "gold"
    p = stage_pipeline(
        src,
        {
            "gold.per_type": {
                "from": "bronze.src",
                "table": str(gold),
                "group_by": ["type"],
                "aggregates": {"n": "count(eventId)", "total": "sum(value)", "low": "min(value)"},
            }
        },
    )
    for i in range(3):
        write_deltalake(src, events(200, i * 200), mode="append")
        run_stages(p)
        assert rows(gold, "SELECT type, n, total, low FROM t ORDER BY 1") == rows(
            src,
            'SELECT type, count("eventId"), sum(value), min(value) FROM t GROUP BY 1 ORDER BY 1',
        )
    # One row per group, however many runs.
    assert len(DeltaTable(str(gold)).file_uris()) == 1


def test_compacted_source_between_and_before_runs(tmp_path: Path) -> None:
    src, silver = tmp_path / "bronze", tmp_path / "silver"
    p = stage_pipeline(src, {"silver.iot": {"from": "bronze.src", "table": str(silver)}})
    for i in range(4):
        write_deltalake(src, events(50, i * 50), mode="append")
    run_stages(p)
    # Compactions of files already read, then of files not read yet.
    for i in range(4, 8):
        write_deltalake(src, events(50, i * 50), mode="append")
    DeltaTable(str(src)).optimize.compact()
    for i in range(8, 12):
        write_deltalake(src, events(50, i * 50), mode="append")
    DeltaTable(str(src)).optimize.compact()
    run_stages(p)
    assert rows(silver, 'SELECT count(*), count(DISTINCT "eventId") FROM t') == [(600, 600)]


def test_a_source_that_deletes_rows_is_refused(tmp_path: Path) -> None:
    src, silver = tmp_path / "bronze", tmp_path / "silver"
    p = stage_pipeline(src, {"silver.iot": {"from": "bronze.src", "table": str(silver)}})
    write_deltalake(src, events(50))
    run_stages(p)
    DeltaTable(str(src)).delete("value > 50")
    version = DeltaTable(str(src)).version()
    with pytest.raises(TableError, match=f"version {version} of the source .* deletes or updates"):
        run_stages(p)


def test_two_runs_at_once_process_each_row_once(tmp_path: Path) -> None:
    src, silver, gold = tmp_path / "bronze", tmp_path / "silver", tmp_path / "gold"
    p = stage_pipeline(
        src,
        {"silver.iot": {**SILVER, "table": str(silver)}, "gold.iot": {**GOLD, "table": str(gold)}},
    )
    for i in range(10):
        write_deltalake(src, events(200, i * 200, dup_every=50), mode="append")
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def go() -> None:
        try:
            barrier.wait()
            run_stages(p)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert rows(silver, 'SELECT "eventId" FROM t ORDER BY 1') == expected_silver(src)
    assert rows(gold, GOLD_QUERY) == rows(silver, BATCH_QUERY)


def test_stages_read_only_the_target_files_new_rows_can_reach(tmp_path: Path) -> None:
    src, silver, gold = tmp_path / "bronze", tmp_path / "silver", tmp_path / "gold"
    p = stage_pipeline(
        src,
        {"silver.iot": {**SILVER, "table": str(silver)}, "gold.iot": {**GOLD, "table": str(gold)}},
    )
    # Ten hours, ten minutes of events each, one source version and one run
    # per hour: a silver file per hour, gold files per hour.
    for h in range(10):
        write_deltalake(src, events(400, h * 3600), mode="append")
        run_stages(p)
    silver_rows = rows(silver, "SELECT count(*) FROM t")[0][0]
    gold_rows = rows(gold, "SELECT count(*) FROM t")[0][0]
    # The next hour: no earlier hour lies within the 10-minute horizon or
    # holds one of its windows, so nothing of the targets is read.
    write_deltalake(src, events(400, 10 * 3600), mode="append")
    r = run_stages(p)
    assert r["silver.iot"].rows_in == 400 and r["silver.iot"].rows_out > 0
    assert r["silver.iot"].target_rows_read == 0 < silver_rows
    assert r["gold.iot"].target_rows_read == 0 < gold_rows
    # Hour 9 sent again: only hour 9's silver file is read, and every row of
    # it is found (nothing new lands).
    before = rows(silver, "SELECT count(*) FROM t")
    write_deltalake(src, events(400, 9 * 3600), mode="append")
    r = run_stages(p)
    hour_9 = rows(
        silver,
        "SELECT count(*) FROM t WHERE \"createdAt\" >= TIMESTAMPTZ '2026-01-05 19:00:00+00' "
        "AND \"createdAt\" < TIMESTAMPTZ '2026-01-05 20:00:00+00'",
    )[0][0]
    assert r["silver.iot"].target_rows_read == hour_9 > 0
    assert r["silver.iot"].rows_out == 0
    assert rows(silver, "SELECT count(*) FROM t") == before
    assert rows(silver, 'SELECT "eventId" FROM t ORDER BY 1') == expected_silver(src)
    assert rows(gold, GOLD_QUERY) == rows(silver, BATCH_QUERY)


def test_bad_pipelines_fail_before_any_work(tmp_path: Path) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "declares nothing"),
        ({"silver": {"s": {"table": "x"}}}, "needs from"),
        ({"silver": {"s": {"table": "x", "from": "bronze.nope"}}}, "does not declare"),
        ({"silver": {"s": {"table": "x", "from": "silver.s"}}}, "cycle"),
        ({"gold": {"g": {"table": "x", "from": "gold.g", "aggregates": {}}}}, "aggregates"),
        ({"silver": {"s": {"table": "x", "from": "silver.s", "wher": "1"}}}, "unknown key"),
        (
            {"silver": {"s": {"table": "x", "from": "s", "dedupe": {"key": ["a"], "time": "t"}}}},
            "both time and within",
        ),
        (
            {
                "silver": {
                    "s": {
                        "table": "x",
                        "from": "s",
                        "expect": {"e": {"check": "1", "on_violation": "explode"}},
                    }
                }
            },
            "on_violation",
        ),
        ({"storage_options": {"k": "${KAFKALAKE_TEST_UNSET}"}, "silver": {}}, "not set"),
        ({"nonsense": {}}, "unknown top-level"),
    ]
    for doc, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            kafkalake.pipeline.load(doc)
    assert parse_duration("10m", "x") == 600_000_000
    assert parse_duration("500ms", "x") == 500_000
    with pytest.raises(InvalidArgumentError, match="duration"):
        parse_duration("ten minutes", "x")
    # Aggregates the engine does not merge are refused by name.
    write_deltalake(tmp_path / "src", events(5))
    p = stage_pipeline(
        tmp_path / "src",
        {
            "gold.g": {
                "from": "bronze.src",
                "table": str(tmp_path / "g"),
                "aggregates": {"m": "median(value)"},
            }
        },
    )
    with pytest.raises(InvalidArgumentError, match="write one of count"):
        run_stages(p)
    assert not (tmp_path / "g").exists()


# --- The seeds' chains, from the real broker ------------------------------------------
