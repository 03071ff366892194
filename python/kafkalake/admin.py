"""Kafka administration for the labs: topics (create with partitions and
configs, describe, list, delete) and consumer groups seen from outside (the
groups with their members and assignments, lag for any group, kafkalake's
or not, and replay by moving a group's offsets; none of these joins the
group)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from kafkalake import _kafkalake
from kafkalake._config import ConfigValue, librdkafka_config, positive, split_location
from kafkalake.exceptions import InvalidArgumentError


def _topics(topics: str | Sequence[str] | None) -> list[str]:
    if topics is None:
        return []
    names = [topics] if isinstance(topics, str) else list(topics)
    if not all(isinstance(t, str) and t for t in names):
        raise InvalidArgumentError(f"topics must be topic names, got {topics!r}")
    return names


def _table(rows: list[tuple[str, int, int | None, int, int]]) -> Any:
    # pyarrow (and numpy with it) is imported here, not with the package:
    # its import costs more CPU than ingesting a hundred thousand events.
    import pyarrow as pa  # type: ignore[import-untyped]

    schema = pa.schema(
        [
            ("topic", pa.string()),
            ("partition", pa.int32()),
            ("committed_offset", pa.int64()),
            ("log_start", pa.int64()),
            ("log_end", pa.int64()),
            ("lag", pa.int64()),
        ]
    )
    lag = [max(end - max(c if c is not None else start, start), 0) for _, _, c, start, end in rows]
    return pa.table(
        [
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
            lag,
        ],
        schema=schema,
    )


def lag(
    group: str,
    topics: str | Sequence[str] | None = None,
    *,
    bootstrap_servers: str,
    config: Mapping[str, ConfigValue] | None = None,
    connect_timeout: float = 10.0,
    table: str | Path | None = None,
    name: str | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> Any:
    """How far ``group`` is behind, per partition, as a pyarrow Table.

    Columns: ``topic``, ``partition``, ``committed_offset`` (the next offset
    the group will read; null if it committed nothing), ``log_start``,
    ``log_end``, ``lag`` (messages not yet read). With ``table=`` (a Delta
    table a kafkalake ingest writes), also ``table_offset``: the last offset
    the table holds per partition, which is what exactly-once resumes from
    (the group's committed offset only follows it, for tools like this).

    Args:
        group: the consumer group id (any group, kafkalake's or not).
        topics: topics to report; default: every topic the group has
            committed offsets in.
        bootstrap_servers, config, connect_timeout: as for :func:`ingest`.
        table: a kafkalake Delta table fed by the group.
        name: the ingest's ``name`` if it was given one (default: the
            table's folder name, as ingest does).
        storage_options: for the table's storage.

    Raises:
        BrokerUnreachableError: no broker answered within ``connect_timeout``.
        TopicNotFoundError: a named topic does not exist.
    """
    positive("connect_timeout", connect_timeout)
    if not isinstance(group, str) or not group:
        raise InvalidArgumentError(f"group must be a consumer group id, got {group!r}")
    rows = _kafkalake.group_offsets(
        bootstrap_servers,
        group,
        _topics(topics),
        librdkafka_config(config),
        float(connect_timeout),
    )
    out = _table(rows)
    if table is not None:
        import pyarrow as pa

        out = out.append_column(
            pa.field("table_offset", pa.int64()),
            pa.array(
                _table_offsets(table, name, storage_options, [(r[0], r[1]) for r in rows]),
                pa.int64(),
            ),
        )
    return out


def _table_offsets(
    table: str | Path,
    name: str | None,
    storage_options: Mapping[str, str] | None,
    partitions: list[tuple[str, int]],
) -> list[int | None]:
    """The last offset per partition recorded in a kafkalake Delta table
    (its ``txn`` action per topic and partition)."""
    from deltalake import DeltaTable

    uri, storage = split_location(str(table), storage_options)
    app = name or uri.rstrip("/").rsplit("/", 1)[-1]
    if not DeltaTable.is_deltatable(uri, storage_options=storage or None):
        return [None] * len(partitions)
    dt = DeltaTable(uri, storage_options=storage or None)
    out: list[int | None] = []
    for topic, partition in partitions:
        version = dt.transaction_version(f"{app}-{topic}-{partition}")
        out.append(None if version is None else int(version))
    return out


def reset_offsets(
    group: str,
    topics: str | Sequence[str],
    to: Literal["earliest", "latest"] | int | datetime,
    *,
    bootstrap_servers: str,
    config: Mapping[str, ConfigValue] | None = None,
    connect_timeout: float = 10.0,
) -> Any:
    """Move ``group``'s committed offsets in every partition of ``topics``
    (replay from the start, from an offset or from a time, or skip to the end).

    The group must have no running consumers: the broker refuses commits
    from outside a live group (stop them first). A kafkalake ingest resumes
    from its table, not from the group: to replay into a kafkalake table,
    ingest into a new table (or use ``start=`` on :func:`ingest`).

    Args:
        to: ``"earliest"``, ``"latest"``, an offset (every partition), or a
            timezone-aware datetime (the first message at or after it; the
            log end where there is none).

    Returns:
        The group's new offsets, as :func:`lag` reports them.
    """
    positive("connect_timeout", connect_timeout)
    names = _topics(topics)
    if not names:
        raise InvalidArgumentError("name the topics whose offsets to reset")
    value: int | None = None
    if isinstance(to, datetime):
        if to.tzinfo is None:
            raise InvalidArgumentError("give a timezone-aware datetime (e.g. tzinfo=UTC)")
        kind, value = "timestamp", int(to.timestamp() * 1000)
    elif isinstance(to, bool) or not isinstance(to, int | str):
        raise InvalidArgumentError(
            f"to must be 'earliest', 'latest', an offset or a datetime, got {to!r}"
        )
    elif isinstance(to, int):
        if to < 0:
            raise InvalidArgumentError(f"an offset is not negative, got {to}")
        kind, value = "offset", to
    else:
        kind = to
    rows = _kafkalake.reset_offsets(
        bootstrap_servers,
        group,
        names,
        librdkafka_config(config),
        float(connect_timeout),
        kind,
        value,
    )
    return _table(rows)


def create_topic(
    topic: str,
    *,
    bootstrap_servers: str,
    partitions: int | None = None,
    replication_factor: int = 1,
    topic_config: Mapping[str, ConfigValue] | None = None,
    config: Mapping[str, ConfigValue] | None = None,
    connect_timeout: float = 10.0,
) -> None:
    """Create ``topic`` (nothing happens if it exists).

    Args:
        partitions: default 4 on a real cluster, the embedded cluster's own
            default there.
        topic_config: topic configs, e.g. ``{"retention.ms": 3_600_000,
            "cleanup.policy": "delete"}`` (not on the embedded cluster,
            which keeps none).
        config, connect_timeout: the client's librdkafka settings and how
            long to wait for the cluster.
    """
    positive("connect_timeout", connect_timeout)
    if partitions is not None:
        positive("partitions", partitions, integer=True)
    positive("replication_factor", replication_factor, integer=True)
    _kafkalake.create_topic(
        bootstrap_servers,
        topic,
        librdkafka_config(config),
        float(connect_timeout),
        partitions,
        replication_factor,
        sorted(librdkafka_config(topic_config).items()),
    )


def list_topics(
    *,
    bootstrap_servers: str,
    config: Mapping[str, ConfigValue] | None = None,
    connect_timeout: float = 10.0,
) -> dict[str, int]:
    """The cluster's topics and their partition counts (internal ``__`` topics left out)."""
    positive("connect_timeout", connect_timeout)
    return dict(
        _kafkalake.list_topics(bootstrap_servers, librdkafka_config(config), float(connect_timeout))
    )


@dataclass(frozen=True)
class TopicDescription:
    """What :func:`describe_topic` found."""

    name: str
    """The topic."""
    partitions: Any
    """A pyarrow Table: ``partition``, ``leader``, ``replicas``, ``isr``,
    ``log_start``, ``log_end`` (messages in the partition: end - start)."""
    configs: dict[str, str] | None
    """Topic configs as the broker reports them (``None`` where it does not
    describe configs, as on the embedded cluster)."""

    @property
    def messages(self) -> int:
        """Messages in the topic now (log end - log start, summed)."""
        t = self.partitions.to_pydict()
        return sum(e - s for s, e in zip(t["log_start"], t["log_end"], strict=True))


def describe_topic(
    topic: str,
    *,
    bootstrap_servers: str,
    config: Mapping[str, ConfigValue] | None = None,
    connect_timeout: float = 10.0,
) -> TopicDescription:
    """Partitions (leader, replicas, in-sync replicas, first and next offset)
    and configs of ``topic``.

    Raises:
        TopicNotFoundError: no such topic.
    """
    positive("connect_timeout", connect_timeout)
    parts, configs = _kafkalake.describe_topic(
        bootstrap_servers, topic, librdkafka_config(config), float(connect_timeout)
    )
    import pyarrow as pa

    table = pa.table(
        {
            "partition": pa.array([p[0] for p in parts], pa.int32()),
            "leader": pa.array([p[1] for p in parts], pa.int32()),
            "replicas": pa.array([p[2] for p in parts], pa.list_(pa.int32())),
            "isr": pa.array([p[3] for p in parts], pa.list_(pa.int32())),
            "log_start": pa.array([p[4] for p in parts], pa.int64()),
            "log_end": pa.array([p[5] for p in parts], pa.int64()),
        }
    )
    return TopicDescription(topic, table, None if configs is None else dict(configs))


def delete_topics(
    topics: str | Sequence[str],
    *,
    bootstrap_servers: str,
    config: Mapping[str, ConfigValue] | None = None,
    connect_timeout: float = 10.0,
) -> None:
    """Delete topics and all their messages; a missing one is an error naming
    it, before anything is deleted."""
    positive("connect_timeout", connect_timeout)
    names = _topics(topics)
    if not names:
        raise InvalidArgumentError("name the topics to delete")
    _kafkalake.delete_topics(
        bootstrap_servers, names, librdkafka_config(config), float(connect_timeout)
    )


@dataclass(frozen=True)
class GroupMember:
    """One member of a consumer group."""

    member_id: str
    """The id the group's coordinator gave the member."""
    client_id: str
    """The member's ``client.id``."""
    client_host: str
    """Where the member connects from, as the coordinator saw it."""
    assignment: list[tuple[str, int]]
    """The ``(topic, partition)`` pairs assigned to the member."""


@dataclass(frozen=True)
class GroupDescription:
    """A consumer group as its coordinator describes it."""

    group: str
    """The group id."""
    state: str
    """``Stable``, ``PreparingRebalance``, ``CompletingRebalance``, ``Empty``
    or ``Dead``."""
    protocol_type: str
    """``consumer`` for consumer groups."""
    protocol: str
    """The assignor the members agreed on (``range``, ``roundrobin``, …)."""
    members: list[GroupMember]
    """The members, by member id."""

    def assignments(self) -> Any:
        """A pyarrow Table: ``member_id``, ``client_id``, ``topic``, ``partition``."""
        import pyarrow as pa

        rows = [(m, t, p) for m in self.members for t, p in m.assignment]
        return pa.table(
            {
                "member_id": pa.array([m.member_id for m, _, _ in rows], pa.string()),
                "client_id": pa.array([m.client_id for m, _, _ in rows], pa.string()),
                "topic": pa.array([t for _, t, _ in rows], pa.string()),
                "partition": pa.array([p for _, _, p in rows], pa.int32()),
            }
        )


def list_groups(
    group: str | None = None,
    *,
    bootstrap_servers: str,
    config: Mapping[str, ConfigValue] | None = None,
    connect_timeout: float = 10.0,
) -> list[GroupDescription]:
    """The cluster's consumer groups (or only ``group``), with their state,
    members and the partitions assigned to each member, in group order.

    Any group is listed, kafkalake's or not. What the members and assignments
    hold is what the cluster reports: a broker that does not describe members
    (some Kafka-compatible brokers do not) gives empty lists.

    Raises:
        BrokerUnreachableError: no broker answered within ``connect_timeout``.
    """
    positive("connect_timeout", connect_timeout)
    if group is not None and (not isinstance(group, str) or not group):
        raise InvalidArgumentError(f"group must be a consumer group id or None, got {group!r}")
    rows = _kafkalake.list_groups(
        bootstrap_servers, group, librdkafka_config(config), float(connect_timeout)
    )
    return [
        GroupDescription(
            group=g,
            state=state,
            protocol_type=ptype,
            protocol=protocol,
            members=[
                GroupMember(mid, cid, host, list(assigned)) for mid, cid, host, assigned in members
            ],
        )
        for g, state, ptype, protocol, members in rows
    ]
