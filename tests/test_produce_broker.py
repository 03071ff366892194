"""The producer against a real Kafka-protocol broker (tansu), checked with
clients no one here wrote: confluent-kafka and aiokafka."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pyarrow as pa
import pytest

import kafkalake
from conftest import create_topic, read_topic
from kafkalake.exceptions import (
    BrokerUnreachableError,
    ConfigError,
    MessageTooLargeError,
    TopicNotFoundError,
)

pytestmark = pytest.mark.broker

START = datetime(2026, 3, 1, tzinfo=UTC)


def expected_messages(profile: str, n: int, **kw: object) -> list[tuple[bytes | None, bytes]]:
    t = pa.table(
        kafkalake.generate(profile, n, start_time=START, format="messages", **kw)  # type: ignore[arg-type]
    )
    return list(zip(t.column("key").to_pylist(), t.column("value").to_pylist(), strict=True))


@pytest.mark.parametrize("profile", kafkalake.PROFILES)
def test_confluent_kafka_reads_exactly_what_was_produced(
    broker: str, topic: str, profile: str
) -> None:
    n = 5000
    report = kafkalake.produce(
        profile,
        topic,
        bootstrap_servers=broker,
        count=n,
        seed=21,
        start_time=START,
        partitions=3,
        progress=False,
    )
    assert (report.sent, report.acknowledged, report.failed) == (n, n, 0)
    assert report.partitions == 3
    got = read_topic(broker, topic)
    assert len(got) == n
    want = expected_messages(profile, n, seed=21)
    assert Counter((k, v) for _, _, k, v in got) == Counter(want)
    # Same key → same partition, and per key the order of production is kept.
    partition_of: dict[bytes | None, int] = {}
    for part, _, key, _ in got:
        assert partition_of.setdefault(key, part) == part
    # Each partition holds its keys' messages in the order they were produced.
    for part in {p for p, _, _, _ in got}:
        produced = [m for m in want if partition_of[m[0]] == part]
        consumed = [(k, v) for p, _, k, v in sorted(got) if p == part]
        assert consumed == produced


def test_aiokafka_reads_what_was_produced(broker: str, topic: str) -> None:
    """aiokafka is an independent, pure-Python implementation of the protocol."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    n = 3000
    kafkalake.produce(
        "iot",
        topic,
        bootstrap_servers=broker,
        count=n,
        seed=5,
        start_time=START,
        compression="gzip",
        progress=False,
    )

    async def read() -> list[tuple[bytes | None, bytes]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            if not parts:
                await consumer._client.force_metadata_update()
                parts = [
                    TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []
                ]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            out: list[tuple[bytes | None, bytes]] = []
            deadline = time.monotonic() + 60
            while len(out) < n and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batch.values():
                    out.extend((r.key, r.value) for r in records)
            return out
        finally:
            await consumer.stop()

    got = asyncio.run(read())
    assert Counter(got) == Counter(expected_messages("iot", n, seed=5))


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compression_codecs(broker: str, topic: str, compression: str) -> None:
    report = kafkalake.produce(
        "search",
        topic,
        bootstrap_servers=broker,
        count=2000,
        compression=compression,  # type: ignore[arg-type]
        start_time=START,
        progress=False,
    )
    assert report.acknowledged == 2000
    got = read_topic(broker, topic)
    assert Counter((k, v) for _, _, k, v in got) == Counter(expected_messages("search", 2000))


def test_duration_and_rate(broker: str, topic: str) -> None:
    report = kafkalake.produce(
        "geo", topic, bootstrap_servers=broker, duration=1.0, rate=2000, progress=False
    )
    # Pacing is exact on average; the bench checks ±2 % over 10 s runs.
    assert 1800 <= report.sent <= 2001
    assert report.acknowledged == report.sent
    assert len(read_topic(broker, topic)) == report.sent


def test_produce_arrow_table_with_key_column(broker: str, topic: str) -> None:
    table = pa.table(
        {
            "id": pa.array(range(1000), pa.int64()),
            "name": [f'naïve "{i}"\n' for i in range(1000)],
            "score": [i / 3 for i in range(1000)],
        }
    )
    report = kafkalake.produce_arrow(
        table, topic, bootstrap_servers=broker, key_column="id", progress=False
    )
    assert report.acknowledged == 1000
    got = read_topic(broker, topic)
    rows = {int(k): json.loads(v) for _, _, k, v in got}
    assert sorted(rows) == list(range(1000))
    assert rows[7] == {"id": 7, "name": 'naïve "7"\n', "score": 7 / 3}


def test_produce_arrow_value_column_round_trips_generated_messages(broker: str, topic: str) -> None:
    msgs = kafkalake.generate("clickstream", 4000, format="messages", seed=8)
    kafkalake.produce_arrow(
        msgs,
        topic,
        bootstrap_servers=broker,
        key_column="key",
        value_column="value",
        progress=False,
    )
    got = read_topic(broker, topic)
    assert Counter((k, v) for _, _, k, v in got) == Counter(
        zip(*(pa.table(msgs).column(c).to_pylist() for c in ("key", "value")), strict=True)
    )


def test_existing_topic_is_used_and_missing_topic_is_an_error(broker: str, topic: str) -> None:
    with pytest.raises(TopicNotFoundError, match="does not exist"):
        kafkalake.produce(
            "iot", topic, bootstrap_servers=broker, count=10, create_topic=False, progress=False
        )
    create_topic(broker, topic, partitions=2)
    report = kafkalake.produce(
        "iot", topic, bootstrap_servers=broker, count=10, create_topic=False, progress=False
    )
    assert report.partitions == 2 and report.acknowledged == 10


def test_unreachable_broker_fails_within_timeout() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(BrokerUnreachableError, match=r"within 2\.0 s"):
        kafkalake.produce(
            "iot",
            "x",
            bootstrap_servers=f"127.0.0.1:{port}",
            count=10,
            connect_timeout=2.0,
            progress=False,
        )
    assert time.monotonic() - t0 < 10


def test_unknown_librdkafka_key_and_secret_redaction(broker: str, topic: str) -> None:
    with pytest.raises(ConfigError, match=r"no\.such\.setting") as err:
        kafkalake.produce(
            "iot",
            topic,
            bootstrap_servers=broker,
            count=1,
            progress=False,
            config={"no.such.setting": "1"},
        )
    assert isinstance(err.value, ValueError)
    with pytest.raises(ConfigError, match="SASL mechanism") as err:
        kafkalake.produce(
            "iot",
            topic,
            bootstrap_servers=broker,
            count=1,
            progress=False,
            config={
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "NOPE",
                "sasl.username": "user",
                "sasl.password": "hunter2-secret",
            },
        )
    assert "hunter2-secret" not in str(err.value)
    assert "hunter2-secret" not in repr(err.value)


def test_message_over_the_limit(broker: str, topic: str) -> None:
    big = pa.table({"k": ["a", "b", "c"], "v": [b"x" * 10, b"y" * 2_000_000, b"z"]})
    with pytest.raises(MessageTooLargeError, match=r"message\.max\.bytes") as err:
        kafkalake.produce_arrow(
            big, topic, bootstrap_servers=broker, key_column="k", value_column="v", progress=False
        )
    assert err.value.report is not None and err.value.report.acknowledged == 1
    # Raising the client's limit lets it through to the broker.
    report = kafkalake.produce_arrow(
        big,
        topic,
        bootstrap_servers=broker,
        key_column="k",
        value_column="v",
        progress=False,
        config={"message.max.bytes": 5_000_000},
        raise_on_failure=False,
    )
    assert report.sent == 3 and report.acknowledged + report.failed == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 0}, "rate must be positive"),
        ({"rate": -10}, "rate must be positive"),
        ({"count": 0}, "count must be positive"),
        ({"duration": -1}, "duration must be positive"),
        ({"profile": "bogus"}, "unknown profile"),
        ({"compression": "brotli"}, "compression"),
        ({"late_ratio": 3}, "late_ratio"),
        ({"bootstrap_servers": ""}, "bootstrap_servers"),
        ({"partitions": 0}, "partitions"),
        ({"partition": -1}, "partition must be a partition number"),
        ({"sender": "me"}, "sender is a field of the geo profile only"),
        ({"profile": "geo", "sender": ""}, "sender must be a non-empty string"),
    ],
)
def test_bad_arguments_fail_before_connecting(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "profile": "iot",
        "topic": "t",
        "bootstrap_servers": "127.0.0.1:1",
        "count": 5,
        "connect_timeout": 60.0,
        **kwargs,
    }
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=match):
        kafkalake.produce(**args)  # type: ignore[arg-type]
    # The broker address is unreachable; failing fast shows nothing was tried.
    assert time.monotonic() - t0 < 5


def test_ctrl_c_stops_promptly_and_reports(broker: str, topic: str) -> None:
    from confluent_kafka import Consumer

    create_topic(broker, topic, partitions=2)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kafkalake.cli",
            "produce",
            "iot",
            "--topic",
            topic,
            "--bootstrap-servers",
            broker,
            "--rate",
            "2000",
            "--duration",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"watch-{topic}",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        # Interrupt once 1,000 of its messages can be read back.
        consumer.subscribe([topic])
        seen = 0
        deadline = time.monotonic() + 60
        while seen < 1000 and time.monotonic() < deadline:
            seen += sum(1 for m in consumer.consume(1000, timeout=0.5) if not m.error())
        assert seen >= 1000
        os.kill(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 10, "stops promptly"
    finally:
        consumer.close()
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    acked = int(err.split(" of ")[0].strip().replace(",", ""))
    assert acked >= 1000
    assert len(read_topic(broker, topic)) == acked


def test_delivery_log_says_where_each_message_went(broker: str, topic: str) -> None:
    """Each row of the log names the partition and offset where confluent-kafka
    finds exactly the message sent in that position."""
    n = 400
    report = kafkalake.produce(
        "iot",
        topic,
        bootstrap_servers=broker,
        count=n,
        seed=5,
        start_time=START,
        partitions=3,
        delivery_log=True,
        progress=False,
    )
    log = report.delivery_log
    assert log is not None and log.num_rows == n
    assert log.column("message").to_pylist() == list(range(n))
    assert log.column("error").null_count == n
    assert log.column("timestamp").null_count == 0
    assert log.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    sent = expected_messages("iot", n, seed=5)
    got = {(p, o): (k, v) for p, o, k, v in read_topic(broker, topic)}
    where = list(
        zip(log.column("partition").to_pylist(), log.column("offset").to_pylist(), strict=True)
    )
    assert len(set(where)) == n and set(where) == set(got)
    assert [got[w] for w in where] == sent
    assert len(set(log.column("partition").to_pylist())) == 3
    # Without the option there is no log (and no memory spent on one).
    plain = kafkalake.produce("iot", topic, bootstrap_servers=broker, count=5, progress=False)
    assert plain.delivery_log is None


def test_produce_to_one_partition(broker: str, topic: str) -> None:
    report = kafkalake.produce(
        "geo",
        topic,
        bootstrap_servers=broker,
        count=120,
        partitions=3,
        partition=2,
        delivery_log=True,
        progress=False,
    )
    assert report.acknowledged == 120
    table = pa.table({"value": [b"a", b"b", b"c"]})
    arrow = kafkalake.produce_arrow(
        table, topic, bootstrap_servers=broker, value_column="value", partition=0, progress=False
    )
    assert arrow.acknowledged == 3
    got = read_topic(broker, topic)
    assert len(got) == 123
    assert [v for p, _, _, v in got if p == 0] == [b"a", b"b", b"c"]
    assert not [v for p, _, _, v in got if p == 1]
    in_2 = sorted(o for p, o, _, _ in got if p == 2)
    assert report.delivery_log.column("offset").to_pylist() == in_2 and len(in_2) == 120
    assert set(report.delivery_log.column("partition").to_pylist()) == {2}


def test_a_partition_the_topic_lacks_is_refused_before_sending(broker: str, topic: str) -> None:
    create_topic(broker, topic, partitions=2)
    with pytest.raises(
        kafkalake.exceptions.InvalidArgumentError, match=r"partition 2 does not exist.*2 partition"
    ):
        kafkalake.produce(
            "iot", topic, bootstrap_servers=broker, count=10, partition=2, progress=False
        )
    assert read_topic(broker, topic) == []


def test_geo_sender(broker: str, topic: str) -> None:
    """Seed 004's producer sends ``sender: python_kafka_sdk``."""
    t = pa.table(kafkalake.generate("geo", 50, sender="python_kafka_sdk"))
    assert set(t.column("sender").to_pylist()) == {"python_kafka_sdk"}
    kafkalake.produce(
        "geo",
        topic,
        bootstrap_servers=broker,
        count=50,
        sender="python_kafka_sdk",
        key_field="sender",
        progress=False,
    )
    got = read_topic(broker, topic)
    assert len(got) == 50
    assert {k for _, _, k, _ in got} == {b"python_kafka_sdk"}
    assert {json.loads(v)["sender"] for _, _, _, v in got} == {"python_kafka_sdk"}
    default = pa.table(kafkalake.generate("geo", 5))
    assert set(default.column("sender").to_pylist()) == {"kafkalake"}
