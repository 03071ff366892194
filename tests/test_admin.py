"""Topic administration for the concepts labs: create with partitions and
configs, describe, list, delete; checked against confluent-kafka's admin
client where it can see the same thing. On the real broker (tansu) and the
embedded cluster."""

from __future__ import annotations

import pytest

import kafkalake
from kafkalake.exceptions import InvalidArgumentError, TopicNotFoundError


@pytest.mark.broker
def test_create_describe_list_delete_a_topic(durable_broker: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient

    kafkalake.admin.create_topic(
        topic,
        bootstrap_servers=durable_broker,
        partitions=3,
        topic_config={"retention.ms": 3_600_000, "cleanup.policy": "delete"},
    )
    theirs = AdminClient({"bootstrap.servers": durable_broker}).list_topics(timeout=30)
    assert len(theirs.topics[topic].partitions) == 3
    assert kafkalake.admin.list_topics(bootstrap_servers=durable_broker)[topic] == 3
    kafkalake.produce("iot", topic, bootstrap_servers=durable_broker, count=300, progress=False)
    d = kafkalake.admin.describe_topic(topic, bootstrap_servers=durable_broker)
    assert d.partitions.column("partition").to_pylist() == [0, 1, 2]
    assert d.messages == 300
    assert all(leader >= 0 for leader in d.partitions.column("leader").to_pylist())
    assert d.configs is not None
    assert d.configs["retention.ms"] == "3600000"
    assert d.configs["cleanup.policy"] == "delete"
    # Creating it again changes nothing.
    kafkalake.admin.create_topic(topic, bootstrap_servers=durable_broker, partitions=5)
    assert kafkalake.admin.list_topics(bootstrap_servers=durable_broker)[topic] == 3
    kafkalake.admin.delete_topics(topic, bootstrap_servers=durable_broker)
    assert topic not in kafkalake.admin.list_topics(bootstrap_servers=durable_broker)
    with pytest.raises(TopicNotFoundError, match=topic):
        kafkalake.admin.describe_topic(topic, bootstrap_servers=durable_broker)
    with pytest.raises(TopicNotFoundError, match=topic):
        kafkalake.admin.delete_topics([topic], bootstrap_servers=durable_broker)


def test_topics_on_the_embedded_cluster() -> None:
    with kafkalake.EmbeddedKafka() as kafka:
        bs = kafka.bootstrap_servers
        kafkalake.admin.create_topic("events", bootstrap_servers=bs, partitions=2)
        assert kafkalake.admin.list_topics(bootstrap_servers=bs)["events"] == 2
        kafkalake.produce("clickstream", "events", bootstrap_servers=bs, count=50, progress=False)
        d = kafkalake.admin.describe_topic("events", bootstrap_servers=bs)
        assert d.messages == 50 and d.configs is None
        with pytest.raises(InvalidArgumentError, match="keeps no topic configs"):
            kafkalake.admin.create_topic(
                "other", bootstrap_servers=bs, topic_config={"retention.ms": 1000}
            )
        assert "other" not in kafkalake.admin.list_topics(bootstrap_servers=bs)
    with pytest.raises(InvalidArgumentError, match="partitions"):
        kafkalake.admin.create_topic("x", bootstrap_servers="127.0.0.1:1", partitions=0)
