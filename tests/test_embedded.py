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
