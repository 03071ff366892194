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


def test_assignments_decode_as_another_client_encodes_them() -> None:
    """A member's assignment is Kafka's consumer protocol bytes; aiokafka (a
    pure-Python client) encodes them here and kafkalake reads them back."""
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    for version, topics, user_data in [
        (0, [("telemetry", [2, 0, 1])], b""),
        (0, [("b", [7]), ("a", [3, 1])], b"user data"),
        (0, [], b""),
    ]:
        data = ConsumerProtocolMemberAssignment(version, topics, user_data).encode()
        want = sorted((t, p) for t, ps in topics for p in ps)
        assert kafkalake._kafkalake.parse_assignment(data) == want


@pytest.mark.broker
def test_list_groups_shows_a_live_group(broker: str, topic: str) -> None:
    """Two confluent-kafka consumers in one group: the group is listed, in its
    state, with both members. (tansu lists a group once it has committed
    offsets, and describes members by id only, without client ids or
    assignments; kafkalake reports what the broker says rather than
    inventing it, and the decoding of assignments is checked above against
    aiokafka's encoding.)"""
    from confluent_kafka import Consumer

    from conftest import create_topic, wait_until

    create_topic(broker, topic, partitions=3)
    kafkalake.produce("iot", topic, bootstrap_servers=broker, count=30, progress=False)
    group = f"g-{topic}"
    consumers = [
        Consumer(
            {
                "bootstrap.servers": broker,
                "group.id": group,
                "client.id": f"worker-{i}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        for i in range(2)
    ]
    try:
        for c in consumers:
            c.subscribe([topic])
        seen: set[tuple[int, int]] = set()

        def all_read() -> bool:  # (tansu lists a group once it has committed)
            for c in consumers:
                m = c.poll(0.1)
                if m is not None and m.error() is None:
                    seen.add((m.partition(), m.offset()))
                    c.commit(m, asynchronous=False)
            return bool(seen) and all(c.assignment() for c in consumers)

        wait_until("both members to be assigned and commit", all_read, timeout=60)
        groups = kafkalake.admin.list_groups(bootstrap_servers=broker)
        assert [g.group for g in groups if g.group == group] == [group]
        (g,) = kafkalake.admin.list_groups(group, bootstrap_servers=broker)
        assert g.group == group and g.protocol_type == "consumer"
        assert g.state == "Stable"
        # Kafka names a member after its client id.
        assert sorted(m.member_id[: len("worker-0")] for m in g.members) == [
            "worker-0",
            "worker-1",
        ]
        assigned = sorted(p for m in g.members for t, p in m.assignment if t == topic)
        assert assigned in ([], [0, 1, 2])
        table = g.assignments()
        assert table.column_names == ["member_id", "client_id", "topic", "partition"]
        assert table.num_rows == len(assigned)
    finally:
        for c in consumers:
            c.close()
    assert kafkalake.admin.list_groups(f"none-{topic}", bootstrap_servers=broker) == []


def test_list_groups_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="group must be"):
        kafkalake.admin.list_groups("", bootstrap_servers="127.0.0.1:1")
    with pytest.raises(kafkalake.exceptions.BrokerUnreachableError):
        kafkalake.admin.list_groups(bootstrap_servers="127.0.0.1:1", connect_timeout=1)


def test_topic_administration_an_embedded_cluster_lacks_fails_fast_and_says_so() -> None:
    """librdkafka's test cluster has no topic administration: deleting a topic
    of an in-process embedded cluster is refused at once; creating or deleting
    one on an embedded cluster that runs in another process (a notebook's
    cluster, the command line in a terminal) fails within connect_timeout,
    naming what to do."""
    import subprocess
    import sys
    import time

    from kafkalake.exceptions import KafkaError

    with kafkalake.EmbeddedKafka(topics=["events"]) as kafka:
        t0 = time.monotonic()
        with pytest.raises(InvalidArgumentError, match="cannot delete topics"):
            kafkalake.admin.delete_topics("events", bootstrap_servers=kafka.bootstrap_servers)
        with pytest.raises(InvalidArgumentError, match="does not describe consumer groups"):
            kafkalake.admin.list_groups(bootstrap_servers=kafka.bootstrap_servers)
        assert time.monotonic() - t0 < 5

    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, kafkalake\n"
            "k = kafkalake.EmbeddedKafka(topics=['events'])\n"
            "print(k.bootstrap_servers, flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        servers = other.stdout.readline().strip()
        assert kafkalake.admin.list_topics(bootstrap_servers=servers)["events"] >= 1
        for call, what in [
            (
                lambda: kafkalake.admin.create_topic(
                    "new", bootstrap_servers=servers, connect_timeout=2
                ),
                "create topic 'new'",
            ),
            (
                lambda: kafkalake.produce(
                    "iot", "new", bootstrap_servers=servers, count=5, connect_timeout=2
                ),
                "create topic 'new'",
            ),
            (
                lambda: kafkalake.admin.delete_topics(
                    "events", bootstrap_servers=servers, connect_timeout=2
                ),
                "delete events",
            ),
        ]:
            t0 = time.monotonic()
            with pytest.raises(KafkaError, match=f"request to {what} within 2.0 s") as err:
                call()
            assert "embedded cluster reached from another process" in str(err.value)
            assert time.monotonic() - t0 < 10
    finally:
        other.communicate("", timeout=30)
