"""Medallion pipelines: bronze ingests and the silver and gold stages fed
from them, declared in one TOML file (or a dict of the same shape).

Example::

    [bronze.iot]
    topics = ["telemetry"]
    table = "lake/bronze/iot"
    bootstrap_servers = "127.0.0.1:9092"

    [silver.iot]
    from = "bronze.iot"
    table = "lake/silver/iot"
    dedupe = { key = ["eventId"], time = "createdAt", within = "10m" }
    where = "deviceId IS NOT NULL"
    expect.value_in_range = { check = "value BETWEEN 0 AND 100", on_violation = "drop" }

    [gold.iot_per_minute]
    from = "silver.iot"
    table = "lake/gold/iot_per_minute"
    window = { time = "createdAt", size = "1m", watermark = "2m" }
    group_by = ["type"]
    aggregates = { events = "count(*)", avg_value = "avg(value)" }

Each stage reads only what its source committed since its last run, and
commits its output together with the source version it consumed: a crash,
a rerun or two runs at once leave every table as if each row had been
processed once. ``run`` runs the entries in dependency order.
"""

from __future__ import annotations

import os
import re
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from kafkalake import _kafkalake, _prometheus, jobs
from kafkalake.exceptions import InvalidArgumentError
from kafkalake.ingest import IngestReport, ingest

__all__ = ["Pipeline", "PipelineReport", "StageReport", "load", "run"]

KINDS = ("bronze", "silver", "gold")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)\s*$")
_UNIT_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_UNIT_US["d"] = 24 * _UNIT_US["h"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Keys each kind of entry takes (bronze entries also take ingest()'s keyword arguments).
_SILVER_KEYS = {
    "transform",
    "transform_input",
    "from",
    "table",
    "sql",
    "where",
    "dedupe",
    "distinct",
    "expect",
    "table_properties",
    "partition_by",
    "max_versions",
    "storage_options",
}
_GOLD_KEYS = {
    "transform",
    "transform_input",
    "from",
    "table",
    "window",
    "group_by",
    "aggregates",
    "expect",
    "table_properties",
    "max_versions",
    "storage_options",
}
_BRONZE_EXCLUDED = {"schema", "format", "progress", "until"}
# Keys of the inline tables within a stage.
_DEDUPE_KEYS = {"key", "time", "within"}
_WINDOW_KEYS = {"time", "size", "watermark", "keep_late"}
_EXPECT_KEYS = {"check", "on_violation"}


def _known(table: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise InvalidArgumentError(
            f"{what}: unknown key(s) {sorted(unknown)}; it takes {sorted(allowed)}"
        )


def parse_duration(value: object, what: str) -> int:
    """``"10m"``, ``"30s"``, ``"1h"``, ``"500ms"``, ``"1d"`` or seconds as a
    number, in microseconds."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{what}: expected a duration such as '10m', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise InvalidArgumentError(f"{what}: a duration cannot be negative, got {value!r}")
        return int(value * 1_000_000)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return int(float(m.group(1)) * _UNIT_US[m.group(2)])
    raise InvalidArgumentError(
        f"{what}: expected a duration such as '500ms', '30s', '10m', '1h' or '1d', got {value!r}"
    )


def _expand_env(value: object, where: str) -> object:
    """``${NAME}`` in a string replaced by the environment variable ``NAME``
    (how secrets reach a pipeline without being written in its file)."""
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise InvalidArgumentError(
                f"{where} refers to ${{{name}}}, but the environment variable {name} is not set"
            )
        return os.environ[name]

    return _ENV.sub(sub, value)


@dataclass(frozen=True)
class Entry:
    """One bronze ingest or stage of a pipeline."""

    kind: Literal["bronze", "silver", "gold"]
    name: str
    table: str
    source: str | None
    options: dict[str, Any]

    @property
    def key(self) -> str:
        """``kind.name``, as ``from`` refers to it."""
        return f"{self.kind}.{self.name}"


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline: its entries in dependency order."""

    entries: tuple[Entry, ...]
    storage_options: dict[str, str] = field(default_factory=dict, repr=False)
    base: Path | None = None

    def entry(self, key: str) -> Entry:
        """The entry named ``kind.name`` (or just ``name`` when that is unique)."""
        matches = [e for e in self.entries if key in (e.key, e.name)]
        if len(matches) == 1:
            return matches[0]
        names = ", ".join(e.key for e in self.entries)
        if not matches:
            raise InvalidArgumentError(f"no stage '{key}' in the pipeline; it has: {names}")
        raise InvalidArgumentError(f"'{key}' is ambiguous; write one of: {names}")


@dataclass(frozen=True)
class StageReport:
    """What one run of a silver or gold stage did."""

    name: str
    """``kind.name``."""
    rows_in: int
    """New source rows read."""
    rows_out: int
    """Rows written to the target (gold: window and group rows rewritten)."""
    deduplicated: int = 0
    """Rows dropped as duplicates."""
    target_rows_read: int = 0
    """Target rows read to check the new rows against (silver's dedupe
    horizon, gold's windows the new rows touch): near the new rows' count
    however large the target is, as file statistics prune the rest."""
    late: int = 0
    """Rows behind the watermark, not folded into closed windows."""
    quarantined: int = 0
    """Rows moved to ``<target>_quarantine``."""
    expectations: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Per expectation: (on_violation, rows that failed it)."""
    versions: tuple[int, int] | None = None
    """Source versions consumed (first, last), ``None`` if nothing was new."""
    target_version: int | None = None
    """The target table's version after the run."""
    commits: int = 0
    """Target commits made."""
    seconds: float = 0.0
    """Duration."""

    def __str__(self) -> str:
        parts = [f"{self.rows_in:,} rows in → {self.rows_out:,} out"]
        if self.deduplicated:
            parts.append(f"{self.deduplicated:,} duplicates dropped")
        if self.late:
            parts.append(f"{self.late:,} late")
        for name, (action, n) in self.expectations.items():
            if n:
                parts.append(f"{name}: {n:,} {action}")
        if self.quarantined:
            parts.append(f"{self.quarantined:,} quarantined")
        versions = (
            f"source versions {self.versions[0]}-{self.versions[1]}"
            if self.versions
            else "nothing new"
        )
        return f"{self.name}: {', '.join(parts)} ({versions}, {self.seconds:.1f} s)"


@dataclass
class PipelineReport:
    """What a pipeline run did, per entry (the last cycle's with ``until="forever"``)."""

    bronze: dict[str, IngestReport] = field(default_factory=dict)
    stages: dict[str, StageReport] = field(default_factory=dict)
    cycles: int = 0
    seconds: float = 0.0
    #: Stopped by Ctrl-C (``until="forever"``): every commit before it stands.
    interrupted: bool = False

    def __str__(self) -> str:
        stopped = ", stopped by Ctrl-C" if self.interrupted else ""
        lines = [f"pipeline: {self.cycles} cycle(s) in {self.seconds:.1f} s{stopped}"]
        for name, r in self.bronze.items():
            lines.append(f"  {name}: {r}")
        lines.extend(f"  {r}" for r in self.stages.values())
        return "\n".join(lines)


def load(
    source: str | Path | Mapping[str, Any],
    *,
    storage_options: Mapping[str, str] | None = None,
) -> Pipeline:
    """Read and check a pipeline file (TOML) or dict; errors name the key.

    Relative table paths in a file are relative to the file's folder.
    ``${NAME}`` in ``storage_options`` and ``bootstrap_servers`` values is
    replaced by the environment variable ``NAME``.
    """
    base: Path | None = None
    if isinstance(source, Mapping):
        doc: dict[str, Any] = dict(source)
    else:
        path = Path(source)
        try:
            with path.open("rb") as fh:
                doc = tomllib.load(fh)
        except FileNotFoundError:
            raise InvalidArgumentError(f"pipeline file '{path}' does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise InvalidArgumentError(f"pipeline file '{path}' is not valid TOML: {e}") from None
        base = path.parent
    unknown = set(doc) - {*KINDS, "storage_options"}
    if unknown:
        raise InvalidArgumentError(
            f"unknown top-level table(s) {sorted(unknown)} in the pipeline; "
            "use [bronze.NAME], [silver.NAME], [gold.NAME] and [storage_options]"
        )
    shared = {
        str(k): str(_expand_env(v, f"storage_options.{k}"))
        for k, v in dict(doc.get("storage_options", {})).items()
    }
    shared.update(storage_options or {})
    entries: dict[str, Entry] = {}
    for kind in KINDS:
        section = doc.get(kind, {})
        if not isinstance(section, Mapping):
            raise InvalidArgumentError(f"[{kind}] must hold tables such as [{kind}.NAME]")
        for name, raw in section.items():
            if not isinstance(raw, Mapping):
                raise InvalidArgumentError(f"[{kind}.{name}] must be a table of keys")
            entry = _entry(kind, str(name), dict(raw), base)
            entries[entry.key] = entry
    if not entries:
        raise InvalidArgumentError("the pipeline declares nothing to run")
    for entry in entries.values():
        if entry.kind != "bronze" and entry.source not in entries:
            raise InvalidArgumentError(
                f"[{entry.key}] reads from '{entry.source}', which the pipeline does not "
                f"declare (it has: {', '.join(entries)})"
            )
    return Pipeline(entries=tuple(_ordered(entries)), storage_options=shared, base=base)


def _entry(kind: str, name: str, raw: dict[str, Any], base: Path | None) -> Entry:
    where = f"[{kind}.{name}]"
    if "table" not in raw:
        raise InvalidArgumentError(f"{where} needs a table (a path or URI)")
    table = str(_expand_env(raw.pop("table"), f"{where} table"))
    if base is not None and "://" not in table and not Path(table).is_absolute():
        table = str(base / table)
    if kind == "bronze":
        bad = set(raw) & _BRONZE_EXCLUDED
        if bad:
            raise InvalidArgumentError(
                f"{where}: {sorted(bad)} cannot be set for a bronze ingest in a pipeline "
                "(bronze tables are Delta, and the run decides until and progress)"
            )
        if "topics" not in raw or "bootstrap_servers" not in raw:
            raise InvalidArgumentError(f"{where} needs topics and bootstrap_servers")
        raw["bootstrap_servers"] = _expand_env(
            raw["bootstrap_servers"], f"{where} bootstrap_servers"
        )
        if "date_column" in raw:
            raw["date_column"] = tuple(raw["date_column"])
        return Entry("bronze", name, table, None, raw)
    allowed = _SILVER_KEYS if kind == "silver" else _GOLD_KEYS
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidArgumentError(
            f"{where}: unknown key(s) {sorted(unknown)}; {kind} stages take {sorted(allowed)}"
        )
    if "from" not in raw:
        raise InvalidArgumentError(f'{where} needs from = "<kind>.<name>" (its source)')
    source = str(raw.pop("from"))
    opts = _stage_options(kind, where, raw)
    return Entry(kind, name, table, source, opts)  # type: ignore[arg-type]


def _strings(value: object, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgumentError(f"{what}: expected a list of column names, got {value!r}")


class StageArgs(TypedDict):
    """What a silver or gold stage does, as the Rust engine takes it (built
    from the pipeline file's keys by :func:`load`)."""

    sql: str | None
    where_clause: str | None
    dedupe_key: list[str] | None
    dedupe_time: str | None
    dedupe_within_us: int | None
    window_time: str | None
    window_size_us: int | None
    window_watermark_us: int | None
    keep_late: bool
    group_by: list[str]
    aggregates: list[tuple[str, str]]
    expectations: list[tuple[str, str, str]]
    table_properties: dict[str, str]
    partition_by: list[str]
    max_versions: int


def _stage_options(kind: str, where: str, raw: dict[str, Any]) -> dict[str, Any]:
    """``{"args": StageArgs, "storage_options": …, "transform": … or None}``."""
    args = StageArgs(
        sql=None,
        where_clause=None,
        dedupe_key=None,
        dedupe_time=None,
        dedupe_within_us=None,
        window_time=None,
        window_size_us=None,
        window_watermark_us=None,
        keep_late=False,
        group_by=[],
        aggregates=[],
        expectations=[],
        table_properties={str(k): str(v) for k, v in raw.get("table_properties", {}).items()},
        partition_by=_strings(raw.get("partition_by", []), f"{where} partition_by"),
        max_versions=int(raw.get("max_versions", 1000)),
    )
    opts: dict[str, Any] = {
        "args": args,
        "transform": None,
        "storage_options": {
            str(k): str(_expand_env(v, f"{where} storage_options.{k}"))
            for k, v in raw.get("storage_options", {}).items()
        },
    }
    if "transform" in raw:
        opts["transform"] = _transform(
            raw["transform"], raw.get("transform_input", "pyarrow"), where
        )
    expect = raw.get("expect", {})
    if not isinstance(expect, Mapping):
        raise InvalidArgumentError(f"{where}: expect must be a table of named checks")
    for name, e in expect.items():
        if isinstance(e, str):
            e = {"check": e}
        if not isinstance(e, Mapping) or "check" not in e:
            raise InvalidArgumentError(
                f'{where}: expect.{name} must be {{ check = "<SQL>", on_violation = '
                '"warn|drop|fail|quarantine" }'
            )
        _known(e, _EXPECT_KEYS, f"{where} expect.{name}")
        action = str(e.get("on_violation", "warn"))
        if action not in ("warn", "drop", "fail", "quarantine"):
            raise InvalidArgumentError(
                f"{where}: expect.{name}.on_violation must be warn, drop, fail or quarantine, "
                f"got {action!r}"
            )
        args["expectations"].append((str(name), str(e["check"]), action))
    if kind == "silver":
        args["sql"] = raw.get("sql")
        args["where_clause"] = raw.get("where")
        dedupe = raw.get("dedupe")
        if raw.get("distinct"):
            if dedupe is not None:
                raise InvalidArgumentError(f"{where}: use distinct or dedupe, not both")
            dedupe = {"key": []}
        if dedupe is not None:
            if not isinstance(dedupe, Mapping) or "key" not in dedupe:
                raise InvalidArgumentError(
                    f'{where}: dedupe must be {{ key = [...], time = "<column>", within = "10m" }}'
                )
            _known(dedupe, _DEDUPE_KEYS, f"{where} dedupe")
            args["dedupe_key"] = _strings(dedupe["key"], f"{where} dedupe.key")
            if ("time" in dedupe) != ("within" in dedupe):
                raise InvalidArgumentError(
                    f"{where}: dedupe needs both time and within (the horizon), or neither"
                )
            if "time" in dedupe:
                args["dedupe_time"] = str(dedupe["time"])
                args["dedupe_within_us"] = parse_duration(
                    dedupe["within"], f"{where} dedupe.within"
                )
    else:
        window = raw.get("window")
        if window is not None:
            if not isinstance(window, Mapping) or not {"time", "size"} <= set(window):
                raise InvalidArgumentError(
                    f'{where}: window must be {{ time = "<column>", size = "1m", '
                    'watermark = "2m" }'
                )
            _known(window, _WINDOW_KEYS, f"{where} window")
            args["window_time"] = str(window["time"])
            args["window_size_us"] = parse_duration(window["size"], f"{where} window.size")
            args["window_watermark_us"] = parse_duration(
                window.get("watermark", 0), f"{where} window.watermark"
            )
            args["keep_late"] = bool(window.get("keep_late", False))
        args["group_by"] = _strings(raw.get("group_by", []), f"{where} group_by")
        aggregates = raw.get("aggregates")
        if not isinstance(aggregates, Mapping) or not aggregates:
            raise InvalidArgumentError(
                f"{where}: aggregates must be a table such as "
                '{ events = "count(*)", avg_value = "avg(value)" }'
            )
        args["aggregates"] = [(str(k), str(v)) for k, v in aggregates.items()]
    return opts


def _transform(fn: object, kind: object, where: str) -> Callable[[Any], Any]:
    """``fn`` as the engine calls it: an Arrow table in (zero-copy, through
    the Arrow C stream interface), an Arrow-exportable object out."""
    if not callable(fn):
        raise InvalidArgumentError(
            f"{where}: transform must be a callable (pyarrow.Table or polars.DataFrame in, "
            "Arrow out), given in a dict pipeline"
        )
    if kind not in ("pyarrow", "polars"):
        raise InvalidArgumentError(
            f"{where}: transform_input must be 'pyarrow' or 'polars', got {kind!r}"
        )

    def call(rows: Any) -> Any:
        import pyarrow as pa  # type: ignore[import-untyped]

        table = pa.table(rows)
        if kind == "polars":
            import polars as pl

            out = fn(pl.from_arrow(table))
        else:
            out = fn(table)
        if not hasattr(out, "__arrow_c_stream__"):
            raise TypeError(
                f"{where}: transform returned {type(out).__name__}, not Arrow data "
                "(a pyarrow.Table, polars.DataFrame or anything with __arrow_c_stream__)"
            )
        return out

    return call


def _ordered(entries: dict[str, Entry]) -> list[Entry]:
    """Entries with each after its source (declaration order otherwise)."""
    out: list[Entry] = []
    state: dict[str, str] = {}

    def visit(e: Entry, path: list[str]) -> None:
        if state.get(e.key) == "done":
            return
        if state.get(e.key) == "visiting":
            raise InvalidArgumentError(f"the pipeline has a cycle: {' → '.join([*path, e.key])}")
        state[e.key] = "visiting"
        if e.source is not None:
            visit(entries[e.source], [*path, e.key])
        state[e.key] = "done"
        out.append(e)

    for e in entries.values():
        visit(e, [])
    return out


def run_entry(
    pipeline: Pipeline,
    entry: Entry,
    *,
    progress: bool | None = None,
    metrics_port: int | None = None,
) -> IngestReport | StageReport:
    """Run one entry until its target holds everything its source had at the start."""
    if entry.kind == "bronze":
        opts = dict(entry.options)
        topics = opts.pop("topics")
        storage = {**pipeline.storage_options, **opts.pop("storage_options", {})}
        return ingest(
            topics,
            entry.table,
            until="caught_up",
            storage_options=storage or None,
            progress=progress,
            metrics_port=metrics_port,
            **opts,
        )
    assert entry.source is not None
    source = pipeline.entry(entry.source)
    opts = entry.options
    raw = _kafkalake.run_stage(
        entry.key,
        source=source.table,
        target=entry.table,
        storage_options={**pipeline.storage_options, **opts["storage_options"]},
        kind=entry.kind,
        args=opts["args"],
        transform=opts["transform"],
    )
    return StageReport(
        name=entry.key,
        rows_in=raw["rows_in"],
        rows_out=raw["rows_out"],
        deduplicated=raw["deduplicated"],
        target_rows_read=raw["target_rows_read"],
        late=raw["late"],
        quarantined=raw["quarantined"],
        expectations={n: (a, c) for n, a, c in raw["expectations"]},
        versions=raw["versions"],
        target_version=raw["target_version"],
        commits=raw["commits"],
        seconds=raw["seconds"],
    )


def run(
    source: str | Path | Mapping[str, Any] | Pipeline,
    *,
    until: Literal["caught_up", "forever"] = "caught_up",
    stage: str | Sequence[str] | None = None,
    poll_interval: float = 5.0,
    storage_options: Mapping[str, str] | None = None,
    progress: bool | None = None,
    metrics_port: int | None = None,
) -> PipelineReport:
    """Run a pipeline: each bronze ingest, then each stage after its source.

    Args:
        source: a pipeline file (TOML), a dict of the same shape, or a
            :class:`Pipeline` from :func:`load`.
        until: ``"caught_up"`` (default): one pass, every entry ends when its
            target holds everything its source held when the entry started.
            ``"forever"``: passes one after the other, ``poll_interval``
            seconds apart, until Ctrl-C (which stops between commits).
        stage: run only these entries (``"silver.iot"`` or ``"iot"``).
        poll_interval: seconds between passes with ``until="forever"``.
        storage_options: added to the file's ``[storage_options]`` (for
            credentials kept out of the file).
        progress: progress bars for the ingests (default: on a terminal).
        metrics_port: serve Prometheus metrics while the pipeline runs: its
            ingests' (as :func:`kafkalake.ingest` does) and per stage the
            rows in, out, deduplicated, late, quarantined and commits.

    Returns:
        A :class:`PipelineReport`, per entry.

    Raises:
        InvalidArgumentError: the pipeline is not valid (before any work).
        ExpectationError: an expectation with ``on_violation = "fail"`` failed.
        KafkalakeError: an entry failed; entries after it did not run.
    """
    if until not in ("caught_up", "forever"):
        raise InvalidArgumentError(f"until must be 'caught_up' or 'forever', got {until!r}")
    if poll_interval < 0:
        raise InvalidArgumentError(f"poll_interval must not be negative, got {poll_interval!r}")
    _prometheus.check_port(metrics_port)
    pipeline = (
        source if isinstance(source, Pipeline) else load(source, storage_options=storage_options)
    )
    entries = list(pipeline.entries)
    if stage is not None:
        wanted = {pipeline.entry(s).key for s in ([stage] if isinstance(stage, str) else stage)}
        entries = [e for e in entries if e.key in wanted]
    report = PipelineReport()
    started = time.monotonic()
    totals: dict[str, dict[str, float]] = {}
    exported = _prometheus.stages_source(_name_of(source), totals, lambda: report.cycles)
    with _prometheus.serve(metrics_port, exported) as url:
        if url is not None:
            jobs.note(metrics_url=url)
        jobs.ready()
        _passes(pipeline, entries, until, poll_interval, progress, metrics_port, report, totals)
    report.seconds = time.monotonic() - started
    return report


def _passes(
    pipeline: Pipeline,
    entries: list[Entry],
    until: str,
    poll_interval: float,
    progress: bool | None,
    metrics_port: int | None,
    report: PipelineReport,
    totals: dict[str, dict[str, float]],
) -> None:
    """Run the entries once, or pass after pass until stopped."""
    try:
        while not jobs.stopping():
            for e in entries:
                jobs.note(entry=e.key)
                r = run_entry(pipeline, e, progress=progress, metrics_port=metrics_port)
                if isinstance(r, StageReport):
                    report.stages[e.key] = r
                    t = totals.setdefault(e.key, {})
                    for k in ("rows_in", "rows_out", "deduplicated", "late", "quarantined"):
                        t[k] = t.get(k, 0) + getattr(r, k)
                    t["commits"] = t.get("commits", 0) + r.commits
                else:
                    report.bronze[e.key] = r
                jobs.note(stages={k: str(v) for k, v in report.stages.items()})
                if jobs.stopping():
                    break
                if isinstance(r, IngestReport) and r.interrupted:
                    raise KeyboardInterrupt
            else:
                report.cycles += 1
                jobs.note(cycles=report.cycles)
                if until == "caught_up" or jobs.pause(poll_interval):
                    break
        # Stopped as a background job (Job.stop, or an interrupt that
        # stopped every job): the commits made stand.
        report.interrupted = jobs.stopping()
        jobs.note(entry=None)
    except KeyboardInterrupt:
        if until == "caught_up":
            raise
        report.interrupted = True
        print("\nkafkalake: pipeline stopped", file=sys.stderr)


def _name_of(source: str | Path | Mapping[str, Any] | Pipeline) -> str:
    if isinstance(source, str | Path):
        return Path(source).stem
    return "pipeline"


def _job_name(source: str | Path | Mapping[str, Any] | Pipeline, **_: Any) -> str:
    return _name_of(source)


start = jobs.background("pipeline", run, _job_name)
