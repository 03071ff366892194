"""Turning user arguments into what the engine takes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

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


# Names used by seed 002's .env file, and the standard names they stand for.
_ENV_ALIASES = {
    "TENANT_ID": "AZURE_TENANT_ID",
    "CLIENT_ID": "AZURE_CLIENT_ID",
    "CLIENT_SECRET": "AZURE_CLIENT_SECRET",
    "BOOTSTRAP_SERVERS": "KAFKALAKE_BOOTSTRAP_SERVERS",
}


def load_env_file(path: str | os.PathLike[str] = ".env", *, override: bool = False) -> list[str]:
    """Load ``KEY=VALUE`` lines of a ``.env`` file into the environment.

    What kafkalake reads from the environment then applies: ``AZURE_*``
    storage credentials (as delta-rs / object_store read them: account
    name and key, SAS token, service principal ``AZURE_CLIENT_ID`` /
    ``AZURE_CLIENT_SECRET`` / ``AZURE_TENANT_ID``, …),
    ``KAFKALAKE_BOOTSTRAP_SERVERS`` and
    ``KAFKALAKE_EVENTHUBS_CONNECTION_STRING``. Seed 002's names
    ``TENANT_ID``, ``CLIENT_ID``, ``CLIENT_SECRET`` and ``BOOTSTRAP_SERVERS``
    also set their standard counterparts. ``export`` prefixes, quotes and
    ``#`` comments are understood. Variables already set win unless
    ``override``.

    Returns:
        The names set (never the values).

    Raises:
        InvalidArgumentError: the file is missing or a line is not ``KEY=VALUE``
            (the line number is given, not its content).
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidArgumentError(f"env file {str(p)!r} does not exist")
    loaded: list[str] = []
    for n, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "").isalnum():
            raise InvalidArgumentError(f"{str(p)!r} line {n} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        for name in (key, _ENV_ALIASES.get(key)):
            if name and (override or name not in os.environ):
                os.environ[name] = value
                loaded.append(name)
    return loaded


_SAS_KEYS = ("azure_storage_sas_token", "azure_storage_sas_key", "sas_token", "sas_key")


def split_location(
    location: str, storage_options: Mapping[str, str] | None
) -> tuple[str, dict[str, str]]:
    """A location and its storage options, with a SAS token given in the URL
    (``https://<account>.blob.core.windows.net/<container>/<path>?sv=…&sig=…``)
    moved out of it: the token becomes ``azure_storage_sas_token`` (unless
    the options already hold one) and the location loses its query string,
    so the signature never becomes part of a name, a consumer group, a path
    or a table's log."""
    options = {str(k): str(v) for k, v in (storage_options or {}).items()}
    if "://" not in location or "?" not in location:
        return location, options
    base, _, query = location.partition("?")
    if query and not any(k.lower() in _SAS_KEYS for k in options):
        options["azure_storage_sas_token"] = query
    return base, options
