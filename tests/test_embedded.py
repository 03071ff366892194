"""The embedded (in-process mock) cluster used by the demo and notebooks."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

import kafkalake
from conftest import read_topic
from kafkalake.exceptions import InvalidArgumentError


def test_produce_to_embedded_and_read_back_with_confluent_kafka() -> None:
    with kafkalake.EmbeddedKafka(partitions=3) as kafka:
        report = kafkalake.produce(
            "iot",
            "telemetry",
            bootstrap_servers=kafka.bootstrap_servers,
            count=3000,
            seed=1,
            progress=False,
        )
        assert report.acknowledged == 3000
        assert report.partitions == 3, "topics take the cluster's partition count"
        got = read_topic(kafka.bootstrap_servers, "telemetry")
    assert len(got) == 3000
    assert Counter(k for _, _, k, _ in got).keys() <= {
        k
        for k in pa.table(kafkalake.generate("iot", 3000, seed=1, format="messages"))
        .column("key")
        .to_pylist()
    }
    assert not kafka.running


def test_explicit_topics_and_partitions() -> None:
    from confluent_kafka.admin import AdminClient

    with kafkalake.EmbeddedKafka(partitions=2, topics=["a"]) as kafka:
        kafka.create_topic("b", partitions=5)
        md = AdminClient({"bootstrap.servers": kafka.bootstrap_servers}).list_topics(timeout=10)
        assert len(md.topics["a"].partitions) == 2
        assert len(md.topics["b"].partitions) == 5
        report = kafkalake.produce(
            "geo",
            "b",
            bootstrap_servers=kafka.bootstrap_servers,
            count=100,
            create_topic=False,
            progress=False,
        )
        assert report.partitions == 5


def test_retention_is_documented_and_bad_arguments() -> None:
    assert kafkalake.EmbeddedKafka.RETENTION_MESSAGES == 100_000
    assert kafkalake.EmbeddedKafka.RETENTION_BYTES == 5 * 1024 * 1024
    with pytest.raises(InvalidArgumentError):
        kafkalake.EmbeddedKafka(partitions=0)
    kafka = kafkalake.EmbeddedKafka()
    kafka.stop()
    kafka.stop()
    assert "stopped" in repr(kafka)
    with pytest.raises(RuntimeError, match="stopped"):
        kafka.create_topic("x")


def test_a_topic_created_twice_and_by_two_jobs_at_once() -> None:
    """Creating a topic that exists is not an error (as with a real
    broker's admin API): a producer and an ingest started together both make
    sure of their topic."""
    with kafkalake.EmbeddedKafka(partitions=2) as kafka:
        bs = kafka.bootstrap_servers
        kafka.create_topic("events")
        kafka.create_topic("events")
        jobs = [
            kafkalake.start_produce("iot", "clicks", bootstrap_servers=bs, count=100),
            kafkalake.start_produce("iot", "clicks", bootstrap_servers=bs, count=100),
        ]
        assert [j.wait(60).acknowledged for j in jobs] == [100, 100]


def test_messages_deleted_before_they_were_read(tmp_path) -> None:
    """The embedded cluster keeps a partition's last 5 MiB: an ingest that
    stored an offset whose messages are gone since fails, saying which
    partition and offset, why, and what to do; it writes nothing."""
    from deltalake import DeltaTable

    table = tmp_path / "bronze"
    with kafkalake.EmbeddedKafka(partitions=1, topics=["telemetry"]) as kafka:
        bs = kafka.bootstrap_servers
        kafkalake.produce("iot", "telemetry", bootstrap_servers=bs, count=10, progress=False)
        assert kafkalake.ingest("telemetry", table, bootstrap_servers=bs, progress=False).rows == 10
        version = DeltaTable(str(table)).version()
        # Well past 5 MiB: offsets 0-10 are deleted.
        kafkalake.produce("iot", "telemetry", bootstrap_servers=bs, count=40_000, progress=False)
        with pytest.raises(kafkalake.exceptions.KafkaError) as e:
            kafkalake.ingest("telemetry", table, bootstrap_servers=bs, progress=False)
    message = str(e.value)
    assert "offset 10 of telemetry[0] is outside the partition's log" in message
    assert "deleted by retention" in message and "5 MiB" in message
    assert "write to a new table" in message
    assert DeltaTable(str(table)).version() == version
