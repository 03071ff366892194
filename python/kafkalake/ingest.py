"""Kafka → Delta Lake / Parquet, exactly once; and Arrow batches to Python."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypedDict

from kafkalake import _kafkalake, _prometheus, jobs
from kafkalake._arrow import ArrowSchemaExportable, ArrowStreamExportable
from kafkalake._config import ConfigValue, librdkafka_config, positive, split_location
from kafkalake._progress import interactive
from kafkalake.exceptions import InvalidArgumentError, KafkalakeError

__all__ = [
    "BatchConsumer",
    "CompactReport",
    "ConsumedBatch",
    "IngestReport",
    "Start",
    "compact",
    "ingest",
]

Start = Literal["earliest", "latest"] | datetime | Mapping[tuple[str, int], int]
"""Where partitions with nothing stored start: the oldest message, new ones
only, the first message at or after a time, or explicit offsets per
(topic, partition)."""

_POLL_SECONDS = 0.1
_log = logging.getLogger("kafkalake")
_DEFAULT_TARGET = 128 * 1024 * 1024


@dataclass(frozen=True)
class IngestReport:
    """What an ingest run did."""

    messages: int
    """Messages consumed."""
    rows: int
    """Rows written to the table or files."""
    dead_letters: int
    """Messages written to the dead-letter table instead."""
    commits: int
    """Sink commits (Delta versions or Parquet flushes)."""
    elapsed_seconds: float
    """Duration of the run."""
    interrupted: bool = False
    """Stopped by Ctrl-C."""
    bytes: int = 0
    """Message bytes consumed (keys, values and headers)."""
    batches: int = 0
    """Batches written."""
    files: int = 0
    """Data files written."""
    group_rejoins: int = 0
    """Times the worker left and rejoined its consumer group because
    partitions assigned to another member stood still with messages waiting
    (that member stopped without leaving the group)."""
    commit_p50_seconds: float = 0.0
    """Median time from a closed batch to its durable commit."""
    commit_p99_seconds: float = 0.0
    """99th percentile of the same."""
    end_to_end_p50_seconds: float | None = None
    """Median time from a message's Kafka timestamp to its row committed
    (``None`` when messages carry no timestamp). Percentiles come from a
    histogram and are within a quarter of a bucket (25 %) of the truth."""
    end_to_end_p99_seconds: float | None = None
    """99th percentile of the same."""
    lag: list[tuple[str, int, int]] = field(default_factory=list)
    """(topic, partition, messages behind) at the end."""

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.messages / self.elapsed_seconds if self.elapsed_seconds else 0.0

    def __str__(self) -> str:
        text = (
            f"{self.messages:,} messages → {self.rows:,} rows in {self.commits:,} commits, "
            f"{self.dead_letters:,} dead letters, {self.elapsed_seconds:.2f} s "
            f"({self.rate:,.0f} msg/s, commit p50 {self.commit_p50_seconds * 1000:.0f} ms)"
        )
        return text + (" (interrupted)" if self.interrupted else "")


class ConsumerArgs(TypedDict):
    """Where and how :func:`ingest` and :class:`BatchConsumer` consume, as
    the Rust consumer takes them (one declaration for both)."""

    bootstrap_servers: str
    topics: list[str]
    group_id: str
    config: dict[str, str]
    connect_timeout_s: float
    start: str
    start_offsets: dict[tuple[str, int], int] | None
    start_timestamp_ms: int | None
    max_rows: int
    max_bytes: int
    max_latency_s: float


class DecodeArgs(TypedDict):
    """How :class:`BatchConsumer` decodes messages, as Rust takes it."""

    schema: ArrowSchemaExportable | None
    metadata_columns: bool
    flatten: bool
    max_message_bytes: int


class IngestArgs(DecodeArgs):
    """What :func:`ingest` writes where, and for how long, as Rust takes it."""

    sink: str
    uri: str
    storage_options: dict[str, str]
    name: str
    partition_by: list[str]
    date_column: tuple[str, str] | None
    target_file_size: int | None
    checkpoint_interval: int
    dead_letter_uri: str
    mode: str
    duration_s: float | None
    capture: tuple[str, str | None, bool] | None
    evolve_schema: bool
    compact: tuple[int, int, int] | None
    caught_up_timeout_s: float | None
    max_columns: int
    table_properties: dict[str, str]


def _start_args(start: Start) -> tuple[str, dict[tuple[str, int], int] | None, int | None]:
    """(start, start_offsets, start_timestamp_ms)."""
    if start in ("earliest", "latest"):
        return str(start), None, None
    if isinstance(start, datetime):
        ts = start if start.tzinfo else start.replace(tzinfo=UTC)
        return "timestamp", None, int(ts.timestamp() * 1000)
    if isinstance(start, Mapping):
        return "offsets", {(str(t), int(p)): int(o) for (t, p), o in start.items()}, None
    raise InvalidArgumentError(
        f"start must be 'earliest', 'latest', a datetime or {{(topic, partition): offset}}, "
        f"got {start!r}"
    )


def _consumer_args(
    topics: str | Sequence[str],
    bootstrap_servers: str,
    group_id: str,
    config: Mapping[str, ConfigValue] | None,
    connect_timeout: float,
    start: Start,
    max_rows: int,
    max_bytes: int,
    max_latency: float,
) -> ConsumerArgs:
    topic_list = [topics] if isinstance(topics, str) else list(topics)
    if not topic_list or not all(isinstance(t, str) and t for t in topic_list):
        raise InvalidArgumentError("topics must be a topic name or a list of them")
    if not isinstance(bootstrap_servers, str) or not bootstrap_servers.strip():
        raise InvalidArgumentError("bootstrap_servers must be 'host:port[,host:port…]'")
    if not isinstance(group_id, str) or not group_id:
        raise InvalidArgumentError("group_id must be a non-empty string")
    positive("max_rows", max_rows, integer=True)
    positive("max_bytes", max_bytes, integer=True)
    positive("max_latency", max_latency)
    positive("connect_timeout", connect_timeout)
    start_kind, start_offsets, start_timestamp_ms = _start_args(start)
    return ConsumerArgs(
        bootstrap_servers=bootstrap_servers,
        topics=topic_list,
        group_id=group_id,
        config=librdkafka_config(config),
        connect_timeout_s=float(connect_timeout),
        start=start_kind,
        start_offsets=start_offsets,
        start_timestamp_ms=start_timestamp_ms,
        max_rows=max_rows,
        max_bytes=max_bytes,
        max_latency_s=float(max_latency),
    )


def _uri(location: str | Path) -> str:
    return str(location) if isinstance(location, Path) else location


def ingest(
    topics: str | Sequence[str],
    table: str | Path,
    *,
    bootstrap_servers: str,
    format: Literal["delta", "parquet", "capture"] = "delta",
    name: str | None = None,
    group_id: str | None = None,
    until: Literal["caught_up", "forever"] | float = "caught_up",
    start: Start = "earliest",
    schema: ArrowSchemaExportable | None = None,
    partition_by: Sequence[str] = (),
    date_column: tuple[str, str] | None = None,
    metadata_columns: bool = False,
    flatten: bool = False,
    max_rows: int = 100_000,
    max_bytes: int = 64 * 1024 * 1024,
    max_latency: float = 5.0,
    max_message_bytes: int = 8 * 1024 * 1024,
    target_file_size: int | None = None,
    checkpoint_interval: int = 10,
    dead_letter_table: str | Path | None = None,
    storage_options: Mapping[str, str] | None = None,
    config: Mapping[str, ConfigValue] | None = None,
    connect_timeout: float = 10.0,
    progress: bool | None = None,
    capture_namespace: str = "kafkalake",
    capture_eventhub: str | None = None,
    capture_codec: Literal["null", "deflate"] = "null",
    evolve_schema: bool = True,
    compact_every: int | None = None,
    compact_min_files: int = 8,
    caught_up_timeout: float | None = None,
    max_columns: int = 500,
    table_properties: Mapping[str, str] | None = None,
    metrics_port: int | None = None,
) -> IngestReport:
    """Ingest Kafka topics into a Delta table (or Parquet files), exactly once.

    Each commit to the table carries, atomically, the last offset written per
    partition; on start and on every partition assignment the consumer
    resumes right after it. Killing and restarting an ingest, or running
    several with the same ``name``/``group_id`` (scale-out), never loses or
    duplicates a message.

    Args:
        topics: topic name or names.
        table: Delta table (``format="delta"``) or directory
            (``format="parquet"``): a local path or an object-store URI.
        bootstrap_servers: ``host:port[,…]``.
        format: ``"delta"``, ``"parquet"`` (one file per partition and
            batch, named after where its offset range starts) or
            ``"capture"`` (Event Hubs Capture-format Avro files, values kept
            as bytes; read them back with :func:`kafkalake.read_capture`).
        name: the ingest's name: part of each partition's transaction id in
            the table (default: the table location's last component).
        group_id: consumer group (default: ``kafkalake-<name>``).
        until: ``"caught_up"`` stops once the table holds every partition
            of the topics up to the end its log had at start (Spark's
            AvailableNow), whichever worker of the group wrote it;
            ``"forever"`` runs until Ctrl-C; a number runs that many seconds.
        caught_up_timeout: with ``until="caught_up"``: how many seconds
            partitions held by other members of the group may make no
            progress before the run fails with
            :class:`~kafkalake.exceptions.IncompleteError` naming them
            (default: the time the worker needs to take over the partitions
            of a member that died without leaving, i.e. the session timeout
            + twice ``max_latency`` + 5 s, plus 60 s: 120 s with the defaults).
        start: where partitions with nothing stored start.
        schema: Arrow schema of the JSON values (pyarrow schema or anything
            with ``__arrow_c_schema__``); default: the table's, else inferred
            from the first batch (nested objects stay structs, RFC 3339
            strings become timestamps).
        partition_by: partition columns of a created Delta table.
        date_column: ``(timestamp column, name)``: add a ``date`` column
            derived from event time (e.g. ``("createdAt", "date")``), to
            partition by.
        metadata_columns: add ``_topic``, ``_partition``, ``_offset``,
            ``_timestamp`` and ``_key``.
        flatten: nested structs become ``parent.child`` columns.
        max_rows, max_bytes, max_latency: a batch is written when any is
            reached (latency in seconds).
        max_message_bytes: larger messages go to the dead letters.
        target_file_size: target size of Delta data files in bytes.
        checkpoint_interval: a Delta checkpoint every this many commits.
        dead_letter_table: Delta table for undecodable messages (default:
            ``<table>_dead_letters``).
        storage_options: object-store options (delta-rs keys).
        config: librdkafka settings, passed through.
        connect_timeout: seconds to wait for the cluster.
        progress: show live counters (default: when someone is watching).
        capture_namespace, capture_eventhub: the ``{Namespace}`` and
            ``{EventHub}`` folders of Capture's layout (default event hub:
            the topic).
        evolve_schema: when messages carry fields the table (or the
            inferred schema) lacks, add them as nullable columns (nested
            struct fields too) in a Delta commit of their own, then write the
            rows with them; earlier rows read as null. Off, or with an
            explicit ``schema``, unknown fields are ignored.
        compact_every: every this many commits, rewrite the small files
            of each partition value (at least ``compact_min_files`` of them,
            under half of ``target_file_size``, default 128 MiB) into larger
            ones; see :func:`compact`. Off by default.
        max_columns: the most columns (nested fields counted) the table may
            have; values whose new fields would pass it (keys that keep
            changing, such as ids used as keys) go to the dead letters with
            a reason suggesting a ``map`` column in ``schema``.
        capture_codec: Avro block codec, ``"null"`` (Capture's default) or
            ``"deflate"`` (Capture's ``AvroDeflate``).
        table_properties: Delta table properties set when the table is
            created, e.g. ``{"quality": "bronze"}`` (Delta format only).
        metrics_port: serve Prometheus metrics at
            ``http://<host>:<port>/metrics`` while the run lasts (0: any free
            port; the URL is logged and in a job's ``metrics()``): messages,
            rows, bytes, dead letters, commits, lag per partition, commit and
            end-to-end latency histograms.

    Returns:
        An :class:`IngestReport`. Ctrl-C stops after writing what was read
        and returns the report with ``interrupted=True``.
    """
    uri, storage = split_location(_uri(table), storage_options)
    _prometheus.check_port(metrics_port)
    if format not in ("delta", "parquet", "capture"):
        raise InvalidArgumentError(
            f"format must be 'delta', 'parquet' or 'capture', got {format!r}"
        )
    capture = None
    if format == "capture":
        given = [
            n
            for n, v in (
                ("schema", schema),
                ("partition_by", list(partition_by)),
                ("date_column", date_column),
                ("metadata_columns", metadata_columns),
                ("flatten", flatten),
            )
            if v
        ]
        if given:
            raise InvalidArgumentError(
                f"format='capture' keeps message values as bytes; {', '.join(given)} "
                "only apply to the delta and parquet formats"
            )
        if capture_codec not in ("null", "deflate"):
            raise InvalidArgumentError(
                f"capture_codec must be 'null' or 'deflate', got {capture_codec!r}"
            )
        for what, v in (
            ("capture_namespace", capture_namespace),
            ("capture_eventhub", capture_eventhub),
        ):
            if v is not None and (not isinstance(v, str) or not v or "/" in v):
                raise InvalidArgumentError(f"{what} must be a folder name without '/', got {v!r}")
        capture = (capture_namespace, capture_eventhub, capture_codec == "deflate")
    name = name or uri.rstrip("/").rsplit("/", 1)[-1] or "kafkalake"
    group_id = group_id or f"kafkalake-{name}"
    if until == "caught_up":
        mode, duration = "available", None
    elif until == "forever":
        mode, duration = "forever", None
    else:
        positive("until", until)
        mode, duration = "duration", float(until)
    if date_column is not None and (not isinstance(date_column, tuple) or len(date_column) != 2):
        raise InvalidArgumentError("date_column must be (timestamp column, new column name)")
    positive("max_message_bytes", max_message_bytes, integer=True)
    positive("checkpoint_interval", checkpoint_interval, integer=True)
    positive("target_file_size", target_file_size, integer=True)
    positive("compact_every", compact_every, integer=True)
    if not isinstance(compact_min_files, int) or compact_min_files < 2:
        raise InvalidArgumentError(
            f"compact_min_files must be at least 2, got {compact_min_files!r}"
        )
    positive("caught_up_timeout", caught_up_timeout)
    positive("max_columns", max_columns, integer=True)
    if compact_every is not None and format != "delta":
        raise InvalidArgumentError("compact_every applies to the delta format only")
    if table_properties and format != "delta":
        raise InvalidArgumentError("table_properties apply to the delta format only")
    compact_args = (
        None
        if compact_every is None
        else (compact_every, target_file_size or _DEFAULT_TARGET, compact_min_files)
    )
    raw = _kafkalake.RawIngest(
        _consumer_args(
            topics,
            bootstrap_servers,
            group_id,
            config,
            connect_timeout,
            start,
            max_rows,
            max_bytes,
            max_latency,
        ),
        IngestArgs(
            sink=format,
            uri=uri,
            storage_options=storage,
            name=name,
            partition_by=list(partition_by),
            date_column=date_column,
            target_file_size=target_file_size,
            checkpoint_interval=checkpoint_interval,
            schema=schema,
            metadata_columns=metadata_columns,
            flatten=flatten,
            max_message_bytes=max_message_bytes,
            dead_letter_uri=split_location(_uri(dead_letter_table), None)[0]
            if dead_letter_table
            else uri.rstrip("/") + "_dead_letters",
            mode=mode,
            duration_s=duration,
            capture=capture,
            evolve_schema=evolve_schema,
            compact=compact_args,
            caught_up_timeout_s=None if caught_up_timeout is None else float(caught_up_timeout),
            max_columns=max_columns,
            table_properties={str(k): str(v) for k, v in (table_properties or {}).items()},
        ),
    )
    show = interactive() if progress is None else progress
    with _prometheus.serve(metrics_port, _prometheus.ingest_source(name, raw)) as url:
        if url is not None:
            jobs.note(metrics_url=url)
        jobs.attach(raw)
        raw.start()
        interrupted = False
        bar = _IngestProgress(show)
        try:
            while not raw.wait(_POLL_SECONDS):
                bar.update(raw.metrics())
        except KeyboardInterrupt:
            interrupted = True
            raw.cancel()
            while not raw.wait(_POLL_SECONDS):
                pass
        bar.close()
        lag = raw.metrics()["lag"]
        report_raw, error = raw.result()
    # A job's stop() cancels the run as Ctrl-C does.
    interrupted = interrupted or bool(report_raw["interrupted"])
    report = IngestReport(**{**report_raw, "lag": lag, "interrupted": interrupted})
    if error is not None:
        if isinstance(error, KafkalakeError):
            error.report = report
        raise error
    return report


def _job_name(topics: str | Sequence[str], table: str | Path, **kwargs: Any) -> str:
    name = kwargs.get("name")
    return str(name) if name else _uri(table).rstrip("/").rsplit("/", 1)[-1] or "ingest"


start_ingest = jobs.background("ingest", ingest, _job_name)


@dataclass(frozen=True)
class CompactReport:
    """What :func:`compact` did."""

    files_removed: int
    files_added: int
    rows: int
    version: int | None
    """The table version of the compaction commit (``None``: nothing to do)."""


def compact(
    table: str | Path,
    *,
    storage_options: Mapping[str, str] | None = None,
    target_file_size: int = _DEFAULT_TARGET,
    min_files: int = 8,
) -> CompactReport:
    """Rewrite a Delta table's small files into larger ones.

    Files under half of ``target_file_size`` are grouped by partition value;
    a group with at least ``min_files`` of them is rewritten into files of up
    to ``target_file_size``, in one commit that removes the old files and
    adds the new ones with ``dataChange = false`` (the rows, and the ingest's
    offsets, are unchanged; streaming readers see no new data). Safe while
    ingests append to the table. The old files stay on storage until a
    ``VACUUM`` (``deltalake.DeltaTable.vacuum``) removes them.
    """
    positive("target_file_size", target_file_size, integer=True)
    if not isinstance(min_files, int) or min_files < 2:
        raise InvalidArgumentError(f"min_files must be at least 2, got {min_files!r}")
    uri, storage = split_location(_uri(table), storage_options)
    removed, added, rows, version = _kafkalake.compact_table(
        uri,
        storage_options=storage,
        target_file_size=target_file_size,
        min_files=min_files,
    )
    return CompactReport(removed, added, rows, version)


class _IngestProgress:
    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: Any = None
        self._t0 = time.monotonic()
        self._rejoins = 0

    def update(self, m: Mapping[str, Any]) -> None:
        if m["group_rejoins"] > self._rejoins:
            self._rejoins = m["group_rejoins"]
            _log.warning(
                "partitions assigned to another member of the consumer group stood still "
                "with messages waiting (a worker stopped without leaving the group): "
                "rejoined the group so they are assigned again (%d so far)",
                self._rejoins,
            )
        if not self._enabled or time.monotonic() - self._t0 < 1.0:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc="ingest", unit="msg", unit_scale=True)
        self._bar.n = m["messages"]
        lag = sum(behind for _, _, behind in m["lag"])
        self._bar.set_postfix(
            rows=f"{m['rows']:,}",
            dead=m["dead_letters"],
            commits=m["commits"],
            lag=f"{lag:,}",
            refresh=False,
        )
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass
class ConsumedBatch:
    """One batch from a :class:`BatchConsumer`."""

    data: ArrowStreamExportable
    """The decoded rows (``pyarrow.table(batch.data)``, ``polars.DataFrame(batch.data)``)."""
    dead_letters: ArrowStreamExportable
    """Messages that could not be decoded, with raw bytes and the reason."""
    offsets: list[tuple[str, int, int]]
    """Last offset per (topic, partition) in the batch."""
    _consumer: BatchConsumer

    def __len__(self) -> int:
        """Decoded rows in the batch."""
        return _num_rows(self.data)

    def commit(self) -> None:
        """Mark the batch done: commit its offsets to the consumer group."""
        self._consumer.commit(self)

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.data.__arrow_c_stream__(requested_schema)


def _num_rows(table: ArrowStreamExportable) -> int:
    return len(table)  # type: ignore[arg-type]


class BatchConsumer:
    """Consume topics as Arrow record batches, committing when told to.

    Batches close on ``max_rows``, ``max_bytes`` or ``max_latency``. Offsets
    are committed to the consumer group only when you call
    :meth:`ConsumedBatch.commit` (or :meth:`commit`), so a crash before that
    re-delivers the batch (at-least-once; for exactly-once use
    :func:`ingest`). Iterate it, synchronously or with ``async for``.

    Example::

        with kafkalake.BatchConsumer("telemetry", bootstrap_servers=servers,
                                     group_id="analytics") as consumer:
            for batch in consumer:
                df = polars.DataFrame(batch.data)
                ...
                batch.commit()
    """

    def __init__(
        self,
        topics: str | Sequence[str],
        *,
        bootstrap_servers: str,
        group_id: str,
        start: Start = "earliest",
        schema: ArrowSchemaExportable | None = None,
        metadata_columns: bool = False,
        flatten: bool = False,
        max_rows: int = 100_000,
        max_bytes: int = 64 * 1024 * 1024,
        max_latency: float = 1.0,
        max_message_bytes: int = 8 * 1024 * 1024,
        config: Mapping[str, ConfigValue] | None = None,
        connect_timeout: float = 10.0,
        stop_when_idle: float | None = None,
    ) -> None:
        """Subscribe. ``stop_when_idle``: end iteration after that many
        seconds without a message (default: iterate forever)."""
        positive("stop_when_idle", stop_when_idle)
        self._idle = stop_when_idle
        self._raw: _kafkalake.RawBatchConsumer | None = _kafkalake.RawBatchConsumer(
            _consumer_args(
                topics,
                bootstrap_servers,
                group_id,
                config,
                connect_timeout,
                start,
                max_rows,
                max_bytes,
                max_latency,
            ),
            DecodeArgs(
                schema=schema,
                metadata_columns=metadata_columns,
                flatten=flatten,
                max_message_bytes=max_message_bytes,
            ),
        )

    def _live(self) -> _kafkalake.RawBatchConsumer:
        if self._raw is None:
            raise InvalidArgumentError("this BatchConsumer is closed")
        return self._raw

    def poll(self, timeout: float = 1.0) -> ConsumedBatch | None:
        """The next batch, or ``None`` if nothing arrived within ``timeout`` seconds."""
        got = self._live().poll(timeout)
        if got is None:
            return None
        data, dead, offsets = got
        return ConsumedBatch(data, dead, offsets, self)

    def commit(self, batch: ConsumedBatch) -> None:
        """Commit ``batch``'s offsets to the consumer group."""
        self._live().commit(batch.offsets)

    @property
    def assignment(self) -> list[tuple[str, int]]:
        """(topic, partition) pairs this member holds."""
        return self._live().assignment()

    def __iter__(self) -> Iterator[ConsumedBatch]:
        idle_since = time.monotonic()
        while True:
            batch = self.poll(0.5)
            if batch is not None:
                idle_since = time.monotonic()
                yield batch
            elif self._idle is not None and time.monotonic() - idle_since >= self._idle:
                return

    async def __aiter__(self) -> AsyncIterator[ConsumedBatch]:
        import asyncio

        idle_since = time.monotonic()
        while True:
            batch = await asyncio.to_thread(self.poll, 0.5)
            if batch is not None:
                idle_since = time.monotonic()
                yield batch
            elif self._idle is not None and time.monotonic() - idle_since >= self._idle:
                return

    def close(self) -> None:
        """Leave the consumer group."""
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def __enter__(self) -> BatchConsumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
