"""Synthetic events as Arrow, straight from the Rust generator."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict, get_args

from kafkalake import _kafkalake
from kafkalake._arrow import ArrowSchemaExportable, ArrowStreamExportable
from kafkalake._config import micros, positive, ratio
from kafkalake.exceptions import InvalidArgumentError

Profile = Literal["clickstream", "geo", "iot", "search"]
"""The built-in event profiles."""

PROFILES: tuple[str, ...] = get_args(Profile)

__all__ = [
    "PROFILES",
    "EventOptions",
    "Profile",
    "event_options",
    "generate",
    "profile_schema",
    "sample",
]


class EventOptions(TypedDict):
    """The event knobs of :func:`generate` and :func:`kafkalake.produce`, as
    the Rust generator takes them (one declaration for both)."""

    seed: int
    start_time_us: int | None
    event_interval_s: float
    duplicate_ratio: float | None
    late_ratio: float
    max_lateness_s: float
    malformed_ratio: float
    key_field: str | None
    no_key: bool
    devices: int
    sender: str | None


def event_options(
    profile: str,
    *,
    seed: int,
    start_time: datetime | None,
    event_interval: float,
    duplicate_ratio: float | None,
    late_ratio: float,
    max_lateness: float,
    malformed_ratio: float,
    key_field: str | None,
    keyed: bool,
    devices: int,
    sender: str | None,
) -> EventOptions:
    """Check the event knobs (before any work starts) and gather them for Rust."""
    if profile not in PROFILES:
        raise InvalidArgumentError(
            f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}"
        )
    ratio("duplicate_ratio", duplicate_ratio)
    ratio("late_ratio", late_ratio)
    ratio("malformed_ratio", malformed_ratio)
    if (
        isinstance(max_lateness, bool)
        or not isinstance(max_lateness, int | float)
        or (max_lateness < 0)
    ):
        raise InvalidArgumentError(f"max_lateness must be >= 0 seconds, got {max_lateness!r}")
    if (
        isinstance(event_interval, bool)
        or not isinstance(event_interval, int | float)
        or (event_interval < 0)
    ):
        raise InvalidArgumentError(f"event_interval must be >= 0 seconds, got {event_interval!r}")
    positive("devices", devices, integer=True)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    if sender is not None:
        if profile != "geo":
            raise InvalidArgumentError(
                f"sender is a field of the geo profile only; the {profile} profile has none"
            )
        if not isinstance(sender, str) or not sender:
            raise InvalidArgumentError(f"sender must be a non-empty string, got {sender!r}")
    if key_field is not None and not isinstance(key_field, str):
        raise InvalidArgumentError(f"key_field must be a field name, got {key_field!r}")
    return EventOptions(
        seed=seed,
        start_time_us=micros(start_time),
        event_interval_s=float(event_interval),
        duplicate_ratio=duplicate_ratio,
        late_ratio=float(late_ratio),
        max_lateness_s=float(max_lateness),
        malformed_ratio=float(malformed_ratio),
        key_field=key_field,
        no_key=not keyed,
        devices=devices,
        sender=sender,
    )


def generate(
    profile: Profile,
    n: int,
    *,
    seed: int = 0,
    start_time: datetime | None = None,
    event_interval: float = 0.001,
    duplicate_ratio: float | None = None,
    late_ratio: float = 0.0,
    max_lateness: float = 60.0,
    malformed_ratio: float = 0.0,
    key_field: str | None = None,
    keyed: bool = True,
    devices: int = 1000,
    sender: str | None = None,
    format: Literal["arrow", "messages"] = "arrow",
    batch_size: int = 65_536,
) -> ArrowStreamExportable:
    """Generate ``n`` events of ``profile`` as an Arrow table.

    The result exposes ``__arrow_c_stream__``: ``pyarrow.table(t)``,
    ``polars.DataFrame(t)`` or ``duckdb.sql("FROM t")`` take it without a copy.
    The same arguments always give the same data (the event clock starts at
    ``start_time``, 2026-01-01T00:00:00Z unless given).

    Args:
        profile: ``"iot"``, ``"clickstream"``, ``"search"`` or ``"geo"``.
        n: number of events.
        seed: fixes the whole stream.
        start_time: event time of the first event (naive means UTC).
        event_interval: seconds of event time between consecutive events.
        duplicate_ratio: fraction of exact re-sends of an earlier event
            (default: 0.001 for ``iot``, as in seed 001; 0 otherwise).
        late_ratio: fraction of events whose event time lags behind.
        max_lateness: the largest lag of a late event, in seconds.
        malformed_ratio: fraction of malformed messages (only with
            ``format="messages"``; typed Arrow cannot hold them).
        key_field: the field used as message key (default: the profile's,
            e.g. ``deviceId`` for ``iot``).
        keyed: ``False`` for messages without a key.
        devices: number of devices (``iot``).
        sender: the ``sender`` field of ``geo`` events (default
            ``"kafkalake"``; seed 004's producer sends ``"python_kafka_sdk"``).
        format: ``"arrow"`` for typed columns (see :func:`profile_schema`),
            ``"messages"`` for ``key``/``value`` binary columns holding exactly
            the bytes the producer would send.
        batch_size: rows per record batch.
    """
    positive("n", n, integer=True)
    positive("batch_size", batch_size, integer=True)
    events = event_options(
        profile,
        seed=seed,
        start_time=start_time,
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
    if format not in ("arrow", "messages"):
        raise InvalidArgumentError(f"format must be 'arrow' or 'messages', got {format!r}")
    return _kafkalake.generate(
        profile, n, events, as_messages=format == "messages", batch_size=batch_size
    )


def profile_schema(profile: Profile) -> ArrowSchemaExportable:
    """The Arrow schema of ``generate(profile, …)`` (``pyarrow.schema(s)`` reads it)."""
    if profile not in PROFILES:
        raise InvalidArgumentError(
            f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}"
        )
    return _kafkalake.profile_schema(profile)


def sample(profile: Profile, n: int = 3, *, seed: int = 0) -> list[tuple[bytes | None, bytes]]:
    """The first ``n`` messages of ``profile`` as ``(key, value)`` bytes, for a look."""
    positive("n", n, integer=True)
    if profile not in PROFILES:
        raise InvalidArgumentError(
            f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}"
        )
    return _kafkalake.sample_messages(profile, n, seed=seed)
