"""Azure Event Hubs through its Kafka endpoint.

An Event Hubs namespace speaks the Kafka protocol on port 9093 over TLS, with
SASL PLAIN where the user name is the literal ``$ConnectionString`` and the
password is the connection string itself. One call,
:meth:`EventHubs.from_connection_string`, turns a connection string into the
``bootstrap_servers``, ``config`` and ``topic`` that :func:`kafkalake.produce`,
:func:`kafkalake.ingest` and :class:`kafkalake.BatchConsumer` take::

    eh = kafkalake.EventHubs.from_connection_string(os.environ["EH_CONN"], eventhub="dev")
    kafkalake.produce("geo", eh.topic, rate=100, count=1_000, **eh.kafka_args())

Limits that matter when choosing settings (Standard tier; Premium and
Dedicated are higher): the Kafka endpoint is not offered on the Basic tier;
one throughput unit admits 1 MB/s or 1,000 events/s in and 2 MB/s out, and a
producer over the limit is throttled, not failed; a message is at most 1 MB
(``message.max.bytes`` is capped accordingly); partitions are fixed when the
event hub is created (at most 32 on Standard), so create event hubs ahead
(portal, ``az eventhubs eventhub create`` or ARM) with the partitions you need
and pass ``create_topic=False``; consumer groups are created on first use.
Compression: leave ``compression="none"`` or use ``"gzip"``. Idle connections
are closed by the service after 240 s, so the configuration keeps connections
alive and refreshes metadata sooner than librdkafka's defaults.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from kafkalake.exceptions import ConfigError

ENV_VAR = "KAFKALAKE_EVENTHUBS_CONNECTION_STRING"
"""Environment variable read when no connection string is passed."""

KAFKA_PORT = 9093
EMULATOR_KAFKA_PORT = 9092
MAX_MESSAGE_BYTES = 1_048_576


class SecretConfig(Mapping[str, str]):
    """librdkafka settings that hold a secret: a read-only mapping whose
    ``repr`` masks ``sasl.password`` so that printing it in a notebook or a
    log does not leak the connection string."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        self._settings = dict(settings)

    def __getitem__(self, key: str) -> str:
        return self._settings[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __repr__(self) -> str:
        shown = {
            k: ("***" if k == "sasl.password" or "secret" in k else v)
            for k, v in self._settings.items()
        }
        return f"SecretConfig({shown!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class EventHubs:
    """What kafkalake needs to reach an Event Hubs namespace over Kafka."""

    namespace: str
    """The namespace's host, e.g. ``mynamespace.servicebus.windows.net``."""
    bootstrap_servers: str
    """``<namespace host>:9093`` (``localhost:9092`` for the emulator)."""
    topic: str | None
    """The event hub: ``eventhub=`` if given, else the string's ``EntityPath``."""
    key_name: str | None
    """``SharedAccessKeyName`` (not a secret)."""
    emulator: bool
    config: SecretConfig = field(repr=False)
    """librdkafka settings: SASL_SSL, PLAIN, ``$ConnectionString``, the
    connection string as password, TLS verified against the system's CAs."""

    def kafka_args(self) -> dict[str, object]:
        """``bootstrap_servers`` and ``config``, to pass as ``**eh.kafka_args()``."""
        return {"bootstrap_servers": self.bootstrap_servers, "config": self.config}

    def require_topic(self) -> str:
        """The event hub name, or a :class:`ConfigError` saying how to give one."""
        if not self.topic:
            raise ConfigError(
                "the Event Hubs connection string has no EntityPath (it is a namespace-level "
                "string); pass eventhub='<event hub name>' (the Kafka topic), or use the "
                "connection string of the event hub itself"
            )
        return self.topic

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str | None = None,
        *,
        eventhub: str | None = None,
        env_var: str = ENV_VAR,
        ca_location: str | None = None,
    ) -> EventHubs:
        """Kafka settings for an Event Hubs namespace from its connection string.

        Args:
            connection_string: ``Endpoint=sb://<ns>.servicebus.windows.net/;
                SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=<hub>]``, or one
                with ``SharedAccessSignature=…``, or the local emulator's
                (``…;UseDevelopmentEmulator=true``). Default: the ``env_var``
                environment variable.
            eventhub: the event hub (Kafka topic); overrides ``EntityPath``.
            env_var: where to look when ``connection_string`` is not given.
            ca_location: a CA bundle to verify the service with instead of the
                system's (``ssl.ca.location``); by default librdkafka probes the
                standard system locations.

        Raises:
            ConfigError: naming the missing or malformed part; the key and the
                signature never appear in the message.
        """
        if connection_string is None:
            connection_string = os.environ.get(env_var)
            if not connection_string:
                raise ConfigError(
                    f"no Event Hubs connection string: pass one, or set {env_var} "
                    "(portal: Event Hubs namespace → Shared access policies → connection string)"
                )
        if not isinstance(connection_string, str):
            raise ConfigError(
                "the Event Hubs connection string must be a str, "
                f"got {type(connection_string).__name__}"
            )
        parts = _parse(connection_string)
        endpoint = parts.get("endpoint")
        if not endpoint:
            raise ConfigError(
                "the Event Hubs connection string has no 'Endpoint=sb://<namespace>."
                "servicebus.windows.net/' part"
            )
        url = urlsplit(endpoint)
        if url.scheme != "sb" or not url.hostname:
            raise ConfigError(
                f"the Event Hubs connection string's Endpoint must look like "
                f"'sb://<namespace>.servicebus.windows.net/', got {endpoint!r}"
            )
        emulator = parts.get("usedevelopmentemulator", "").lower() == "true"
        has_key = "sharedaccesskey" in parts
        if not emulator:
            if not (has_key or "sharedaccesssignature" in parts):
                raise ConfigError(
                    "the Event Hubs connection string has neither SharedAccessKey nor "
                    "SharedAccessSignature: copy the full string from the portal's "
                    "'Shared access policies'"
                )
            if has_key and not parts.get("sharedaccesskeyname"):
                raise ConfigError(
                    "the Event Hubs connection string has a SharedAccessKey but no "
                    "SharedAccessKeyName (e.g. 'RootManageSharedAccessKey')"
                )
            if has_key and not parts["sharedaccesskey"]:
                raise ConfigError("the Event Hubs connection string's SharedAccessKey is empty")
        host = url.hostname
        topic = eventhub or parts.get("entitypath") or None
        if eventhub is not None and (not isinstance(eventhub, str) or not eventhub):
            raise ConfigError("eventhub must be a non-empty event hub name")
        if emulator:
            servers = f"{host}:{url.port or EMULATOR_KAFKA_PORT}"
            protocol = "SASL_PLAINTEXT"
        else:
            servers = f"{host}:{KAFKA_PORT}"
            protocol = "SASL_SSL"
        settings = {
            "security.protocol": protocol,
            "sasl.mechanism": "PLAIN",
            "sasl.username": "$ConnectionString",
            "sasl.password": connection_string.strip(),
            # The service closes idle connections after 240 s; notice sooner.
            "socket.keepalive.enable": "true",
            "connections.max.idle.ms": "180000",
            "metadata.max.age.ms": "180000",
            "request.timeout.ms": "60000",
            "message.max.bytes": str(MAX_MESSAGE_BYTES),
        }
        if protocol == "SASL_SSL":
            settings["ssl.ca.location"] = ca_location or "probe"
            settings["ssl.endpoint.identification.algorithm"] = "https"
        return cls(
            namespace=host,
            bootstrap_servers=servers,
            topic=topic,
            key_name=parts.get("sharedaccesskeyname"),
            emulator=emulator,
            config=SecretConfig(settings),
        )


def _parse(connection_string: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for piece in connection_string.strip().strip(";").split(";"):
        if not piece.strip():
            continue
        key, sep, value = piece.partition("=")
        if not sep:
            # Never echo the piece: it may be a key pasted without its name.
            raise ConfigError(
                "the Event Hubs connection string has a part without '=': expected "
                "'Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=…;"
                "SharedAccessKey=…[;EntityPath=<event hub>]' (copy it from the portal's "
                "'Shared access policies')"
            )
        parts[key.strip().lower()] = value.strip()
    return parts


__all__ = ["ENV_VAR", "EventHubs", "SecretConfig"]
