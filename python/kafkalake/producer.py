"""Rate-controlled production of generated events or Arrow data to Kafka."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

from kafkalake import _kafkalake, jobs
from kafkalake._arrow import ArrowArrayExportable, ArrowStreamExportable
from kafkalake._config import ConfigValue, librdkafka_config, positive
from kafkalake._progress import Progress, interactive
from kafkalake.exceptions import (
    DeliveryError,
    InvalidArgumentError,
    KafkalakeError,
    ProduceInterrupted,
)
from kafkalake.generate import Profile, event_options

__all__ = ["Compression", "ProduceReport", "produce", "produce_arrow"]

Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]

# How often the progress display and Ctrl-C are checked while waiting.
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class ProduceReport:
    """What a produce run did."""

    topic: str
    """The topic written to."""
    sent: int
    """Messages handed to the Kafka client."""
    acknowledged: int
    """Messages the broker acknowledged."""
    failed: int
    """Messages that could not be delivered (after the client's retries)."""
    errors: dict[str, int] = field(default_factory=dict)
    """Failure reasons, with how many messages each affected."""
    bytes: int = 0
    """Payload bytes acknowledged."""
    send_seconds: float = 0.0
    """Seconds spent sending."""
    elapsed_seconds: float = 0.0
    """Seconds in all, including waiting for the last acknowledgements."""
    rate: float = 0.0
    """Achieved rate: messages sent per second while sending."""
    target_rate: float | None = None
    """The requested rate (``None``: unlimited)."""
    interrupted: bool = False
    """Stopped early by Ctrl-C."""
    partitions: int = 0
    """Partitions of the topic."""
    delivery_log: Any = field(default=None, repr=False, compare=False)
    """With ``delivery_log=True``: a pyarrow Table, one row per message in
    the order sent: ``message`` (its position, from 0), ``partition``,
    ``offset``, ``timestamp`` (as the broker stored the record) and
    ``error`` (why it failed; ``offset`` and ``timestamp`` are then null)."""

    @classmethod
    def _from_raw(cls, raw: Mapping[str, Any]) -> ProduceReport:
        fields = dict(raw)
        fields["errors"] = dict(fields["errors"])
        if fields.get("delivery_log") is not None:
            import pyarrow as pa  # type: ignore[import-untyped]

            fields["delivery_log"] = pa.table(fields["delivery_log"])
        return cls(**fields)

    def __str__(self) -> str:
        target = f" (target {self.target_rate:,.0f}/s)" if self.target_rate else ""
        text = (
            f"{self.acknowledged:,} of {self.sent:,} messages acknowledged on '{self.topic}' "
            f"in {self.elapsed_seconds:.2f} s: {self.rate:,.0f} msg/s{target}, "
            f"{self.bytes / 1e6:,.1f} MB"
        )
        if self.failed:
            reasons = "; ".join(f"{n:,} x {reason}" for reason, n in self.errors.items())
            text += f"; {self.failed:,} failed: {reasons}"
        if self.interrupted:
            text += " (interrupted)"
        return text


def _run(
    job: _kafkalake.RawProduceJob, progress: Progress, raise_on_failure: bool
) -> ProduceReport:
    jobs.attach(job)
    job.start()
    try:
        while not job.wait(_POLL_SECONDS):
            sent, acked, failed, _, _ = job.progress()
            progress.update(sent, acked, failed)
    except KeyboardInterrupt:
        # Stop sending; what was sent gets a short grace to be acknowledged.
        job.cancel()
        while not job.wait(_POLL_SECONDS):
            pass
        progress.close()
        raw, _ = job.result()
        raise ProduceInterrupted(ProduceReport._from_raw(raw)) from None
    sent, acked, failed, _, _ = job.progress()
    progress.update(sent, acked, failed)
    progress.close()
    raw, error = job.result()
    report = ProduceReport._from_raw(raw)
    if error is not None:
        if isinstance(error, KafkalakeError):
            error.report = report
        raise error
    if raise_on_failure and report.failed:
        exc = DeliveryError(str(report))
        exc.report = report
        raise exc
    return report


class ProduceArgs(TypedDict):
    """The options of :func:`produce` and :func:`produce_arrow`, as the Rust
    producer takes them (one declaration for both)."""

    bootstrap_servers: str
    topic: str
    config: dict[str, str]
    connect_timeout_s: float
    create_topic: bool
    partitions: int | None
    replication_factor: int
    count: int | None
    duration_s: float | None
    rate: float | None
    idempotent: bool
    compression: str
    flush_timeout_s: float
    partition: int | None
    delivery_log: bool


def _produce_args(
    *,
    bootstrap_servers: str,
    topic: str,
    config: Mapping[str, ConfigValue] | None,
    connect_timeout: float,
    create_topic: bool,
    partitions: int | None,
    replication_factor: int,
    count: int | None,
    duration: float | None,
    rate: float | None,
    idempotent: bool,
    compression: str,
    flush_timeout: float,
    partition: int | None,
    delivery_log: bool,
) -> ProduceArgs:
    """Check the options (before any work starts) and gather them for Rust."""
    if not isinstance(bootstrap_servers, str) or not bootstrap_servers.strip():
        raise InvalidArgumentError(
            "bootstrap_servers must be 'host:port[,host:port…]' "
            "(for the embedded cluster: EmbeddedKafka().bootstrap_servers)"
        )
    if not isinstance(topic, str) or not topic:
        raise InvalidArgumentError("topic must be a non-empty string")
    positive("rate", rate)
    positive("partitions", partitions, integer=True)
    positive("replication_factor", replication_factor, integer=True)
    positive("connect_timeout", connect_timeout)
    positive("flush_timeout", flush_timeout)
    positive("count", count, integer=True)
    positive("duration", duration)
    if compression not in ("none", "gzip", "snappy", "lz4", "zstd"):
        raise InvalidArgumentError(
            f"compression must be one of none, gzip, snappy, lz4, zstd; got {compression!r}"
        )
    if partition is not None and (
        isinstance(partition, bool) or not isinstance(partition, int) or partition < 0
    ):
        raise InvalidArgumentError(
            f"partition must be a partition number (0 or more) or None, got {partition!r}"
        )
    return ProduceArgs(
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        config=librdkafka_config(config),
        connect_timeout_s=float(connect_timeout),
        create_topic=bool(create_topic),
        partitions=partitions,
        replication_factor=replication_factor,
        count=count,
        duration_s=None if duration is None else float(duration),
        rate=None if rate is None else float(rate),
        idempotent=bool(idempotent),
        compression=compression,
        flush_timeout_s=float(flush_timeout),
        partition=partition,
        delivery_log=bool(delivery_log),
    )


def produce(
    profile: Profile,
    topic: str,
    *,
    bootstrap_servers: str,
    count: int | None = None,
    duration: float | None = None,
    rate: float | None = None,
    config: Mapping[str, ConfigValue] | None = None,
    idempotent: bool = True,
    compression: Compression = "none",
    create_topic: bool = True,
    partitions: int | None = None,
    replication_factor: int = 1,
    connect_timeout: float = 10.0,
    flush_timeout: float = 30.0,
    progress: bool | None = None,
    raise_on_failure: bool = True,
    seed: int = 0,
    start_time: datetime | None = None,
    duplicate_ratio: float | None = None,
    late_ratio: float = 0.0,
    max_lateness: float = 60.0,
    malformed_ratio: float = 0.0,
    key_field: str | None = None,
    keyed: bool = True,
    devices: int = 1000,
    sender: str | None = None,
    partition: int | None = None,
    delivery_log: bool = False,
) -> ProduceReport:
    """Produce events of ``profile`` to ``topic`` at ``rate`` events/s.

    Stops after ``count`` events or ``duration`` seconds, whichever comes
    first (with neither, it runs until Ctrl-C). The rate is exact on average:
    event *i* is sent at *i / rate* seconds after the start. The event clock
    starts at ``start_time`` (default: now) and advances ``1 / rate`` seconds
    per event (1 ms when the rate is unlimited), so with a rate the event
    times track the wall clock; the same seed and start time send the same
    bytes.

    Args:
        profile: ``"iot"``, ``"clickstream"``, ``"search"`` or ``"geo"``.
        topic: the topic; created if missing unless ``create_topic=False``.
        bootstrap_servers: ``host:port[,…]`` of the cluster.
        count: stop after this many events.
        duration: stop after this many seconds.
        rate: events per second; ``None`` for as fast as possible.
        config: librdkafka settings, passed through as they are
            (``{"security.protocol": "SASL_SSL", …}``); they override
            kafkalake's defaults. Unknown keys raise :class:`ConfigError`.
        idempotent: librdkafka's idempotent producer (no duplicates or
            reordering from retries; implies ``acks=all``).
        compression: ``none``, ``gzip``, ``snappy``, ``lz4`` or ``zstd``.
        create_topic: create a missing topic (else :class:`TopicNotFoundError`).
        partitions: partitions of a created topic (default: the embedded
            cluster's setting, or 4 as in seed 001).
        replication_factor: replication of a created topic.
        connect_timeout: seconds to wait for the cluster before raising
            :class:`BrokerUnreachableError`.
        flush_timeout: seconds to wait at the end for acknowledgements; what is
            still unacknowledged then is counted as failed.
        progress: show a progress bar (default: when a terminal or notebook
            is attached and the run lasts over a second).
        raise_on_failure: raise :class:`DeliveryError` (with ``.report``) if
            any message failed; else just report it.
        seed, start_time, duplicate_ratio, late_ratio, max_lateness,
        malformed_ratio, key_field, keyed, devices, sender: as for
            :func:`generate`.
        partition: send every message to this partition (default: by key,
            with the Java client's partitioner, so one key always lands in
            one partition). A partition the topic does not have raises
            :class:`InvalidArgumentError` before anything is sent.
        delivery_log: keep where each message went; the report's
            ``delivery_log`` is then a pyarrow Table of ``message``,
            ``partition``, ``offset``, ``timestamp`` and ``error`` per message
            (about 40 bytes of memory per message: for runs of bounded size).

    Returns:
        A :class:`ProduceReport`. Ctrl-C raises :class:`ProduceInterrupted`
        (a ``KeyboardInterrupt``) whose ``report`` says what was delivered.
    """
    event_interval = 1.0 / rate if rate else 0.001
    args = _produce_args(
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        config=config,
        connect_timeout=connect_timeout,
        create_topic=create_topic,
        partitions=partitions,
        replication_factor=replication_factor,
        count=count,
        duration=duration,
        rate=rate,
        idempotent=idempotent,
        compression=compression,
        flush_timeout=flush_timeout,
        partition=partition,
        delivery_log=delivery_log,
    )
    events = event_options(
        profile,
        seed=seed,
        start_time=start_time or datetime.now(UTC),
        event_interval=event_interval,
        duplicate_ratio=duplicate_ratio,
        late_ratio=late_ratio,
        max_lateness=max_lateness,
        malformed_ratio=malformed_ratio,
        key_field=key_field,
        keyed=keyed,
        devices=devices,
        sender=sender,
    )
    job = _kafkalake.RawProduceJob.for_profile(profile, args, events)
    show = interactive() if progress is None else progress
    return _run(job, Progress(show, count, f"{profile} → {topic}"), raise_on_failure)


def produce_arrow(
    data: ArrowStreamExportable | ArrowArrayExportable,
    topic: str,
    *,
    bootstrap_servers: str,
    key_column: str | None = None,
    value_column: str | None = None,
    rate: float | None = None,
    config: Mapping[str, ConfigValue] | None = None,
    idempotent: bool = True,
    compression: Compression = "none",
    create_topic: bool = True,
    partitions: int | None = None,
    replication_factor: int = 1,
    connect_timeout: float = 10.0,
    flush_timeout: float = 30.0,
    progress: bool | None = None,
    raise_on_failure: bool = True,
    partition: int | None = None,
    delivery_log: bool = False,
) -> ProduceReport:
    """Produce one message per row of an Arrow table, batch or stream.

    ``data`` is anything with ``__arrow_c_stream__`` or ``__arrow_c_array__``
    (pyarrow, polars, duckdb results, :func:`generate` output); rows are read
    in Rust with the GIL released, never as Python objects.

    Args:
        data: the rows.
        topic: the topic.
        key_column: column whose value (as text, or raw bytes for a binary
            column) is the message key; ``None`` for no key.
        value_column: a binary or string column holding each message's value
            as it is; ``None`` sends each whole row as a JSON object.
        Other arguments: as for :func:`produce`.
    """
    args = _produce_args(
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        config=config,
        connect_timeout=connect_timeout,
        create_topic=create_topic,
        partitions=partitions,
        replication_factor=replication_factor,
        count=None,
        duration=None,
        rate=rate,
        idempotent=idempotent,
        compression=compression,
        flush_timeout=flush_timeout,
        partition=partition,
        delivery_log=delivery_log,
    )
    if not (hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__")):
        raise InvalidArgumentError(
            f"data must be Arrow data (a pyarrow/polars table, record batch or stream), "
            f"got {type(data).__name__}"
        )
    job = _kafkalake.RawProduceJob.for_arrow(
        data, args, key_column=key_column, value_column=value_column
    )
    show = interactive() if progress is None else progress
    return _run(job, Progress(show, None, f"arrow → {topic}"), raise_on_failure)


def _profile_job_name(profile: str, topic: str, **_: Any) -> str:
    return f"{profile} → {topic}"


def _arrow_job_name(data: object, topic: str, **_: Any) -> str:
    return f"arrow → {topic}"


start_produce = jobs.background("produce", produce, _profile_job_name)
start_produce_arrow = jobs.background("produce", produce_arrow, _arrow_job_name)
