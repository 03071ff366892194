"""An in-process Kafka cluster for demos and notebooks."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from kafkalake import _kafkalake
from kafkalake._config import positive

__all__ = ["EmbeddedKafka"]

_RETENTION_MESSAGES, _RETENTION_BYTES = _kafkalake.RawEmbeddedKafka.retention()


class EmbeddedKafka:
    """librdkafka's mock Kafka cluster, running inside this process.

    It speaks the Kafka protocol on a loopback port, so kafkalake and other
    clients in the process (confluent-kafka, …) can use
    :attr:`bootstrap_servers`. It needs no install and no broker, which makes
    it right for demos and notebooks, and wrong for anything that must
    survive: it lives and dies with the process, and each partition keeps
    only its newest :attr:`RETENTION_MESSAGES` messages (100,000) or
    :attr:`RETENTION_BYTES` (5 MiB), whichever is smaller. About 6,000 ``iot``
    events fill a partition's 5 MiB, so consume as you go or spread over
    more partitions.

    Example::

        with kafkalake.EmbeddedKafka(partitions=4) as kafka:
            kafkalake.produce("iot", "telemetry", count=10_000,
                              bootstrap_servers=kafka.bootstrap_servers)
    """

    RETENTION_MESSAGES: int = _RETENTION_MESSAGES
    """Messages a partition keeps before dropping the oldest."""
    RETENTION_BYTES: int = _RETENTION_BYTES
    """Bytes a partition keeps before dropping the oldest."""

    def __init__(self, partitions: int = 4, brokers: int = 1, topics: Iterable[str] = ()) -> None:
        """Start the cluster.

        Args:
            partitions: partitions of each topic created without a count.
            brokers: number of mock brokers.
            topics: topics to create right away.
        """
        positive("partitions", partitions, integer=True)
        positive("brokers", brokers, integer=True)
        self.partitions = partitions
        self._raw = _kafkalake.RawEmbeddedKafka(brokers, partitions)
        for topic in topics:
            self.create_topic(topic)

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` list to give any Kafka client."""
        return self._raw.bootstrap_servers

    @property
    def running(self) -> bool:
        """Whether the cluster is up."""
        return self._raw.running

    def create_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` (``partitions`` defaults to the cluster's setting)."""
        positive("partitions", partitions, integer=True)
        self._raw.create_topic(topic, partitions)

    def stop(self) -> None:
        """Stop the cluster; its data is gone. Safe to call twice."""
        self._raw.stop()

    def __enter__(self) -> EmbeddedKafka:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmbeddedKafka(bootstrap_servers={self.bootstrap_servers!r}, {state})"
