"""Turning user arguments into what the engine takes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from kafkalake.exceptions import InvalidArgumentError

ConfigValue = str | int | float | bool


def librdkafka_config(config: Mapping[str, ConfigValue] | None) -> dict[str, str]:
    """librdkafka settings as strings (``True`` → ``"true"``), keys untouched."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise InvalidArgumentError(
            f"config must be a mapping of librdkafka settings, got {type(config).__name__}"
        )
    out: dict[str, str] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(f"config keys must be strings, got {key!r}")
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[key] = str(value)
        else:
            raise InvalidArgumentError(
                f"config value for '{key}' must be a string, number or bool, "
                f"got {type(value).__name__}"
            )
    return out


def positive(name: str, value: float | None, *, integer: bool = False) -> None:
    """Reject zero, negative, NaN and wrongly typed values of ``name``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{name} must be a number, got {type(value).__name__}")
    if integer and not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be a whole number, got {value!r}")
    if not value > 0:
        raise InvalidArgumentError(f"{name} must be positive, got {value!r}")


def ratio(name: str, value: float | None) -> None:
    """Reject ratios outside [0, 1]."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidArgumentError(
            f"{name} must be a fraction between 0 and 1 (e.g. 0.001 for 0.1 %), got {value!r}"
        )


def micros(start_time: datetime | None) -> int | None:
    """Microseconds since the epoch; naive datetimes are taken as UTC."""
    if start_time is None:
        return None
    if not isinstance(start_time, datetime):
        raise InvalidArgumentError(
            f"start_time must be a datetime, got {type(start_time).__name__}"
        )
    if start_time.tzinfo is None:
        start_time = start_time.replace(tzinfo=UTC)
    delta = start_time - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
