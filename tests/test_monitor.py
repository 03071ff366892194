"""Watching streams: lag for any group (checked against offsets committed by
confluent-kafka), resetting a group's offsets (checked by consuming with
confluent-kafka), the terminal monitor in a pseudo-terminal, the Prometheus
endpoint (scraped over HTTP, parsed by prometheus_client's own parser), and
the notebook monitor's chart. Against the real broker (tansu)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import kafkalake
from conftest import create_topic, wait_until
from kafkalake.exceptions import InvalidArgumentError, TopicNotFoundError

pytestmark = pytest.mark.broker


def consume_and_commit(servers: str, topic: str, group: str, n: int) -> dict[int, int]:
    """Read ``n`` messages of ``topic`` in ``group`` with confluent-kafka and
    commit; returns the committed offset (next to read) per partition."""
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    c.subscribe([topic])
    seen: dict[int, int] = {}
    got = 0
    deadline = time.monotonic() + 60
    try:
        while got < n:
            assert time.monotonic() < deadline, f"read {got} of {n}"
            for m in c.consume(min(n - got, 500), timeout=0.5):
                if m.error():
                    continue
                seen[m.partition()] = m.offset() + 1
                got += 1
        c.commit(asynchronous=False)
    finally:
        c.close()
    return seen


def test_lag_of_a_group_kafkalake_did_not_create(durable_broker: str, topic: str) -> None:
    create_topic(durable_broker, topic, 3)
    kafkalake.produce("iot", topic, bootstrap_servers=durable_broker, count=900, progress=False)
    group = f"g-{uuid.uuid4().hex[:8]}"
    committed = consume_and_commit(durable_broker, topic, group, 400)
    table = kafkalake.lag(group, topic, bootstrap_servers=durable_broker)
    rows = table.to_pylist()
    assert table.column_names == [
        "topic",
        "partition",
        "committed_offset",
        "log_start",
        "log_end",
        "lag",
    ]
    assert [r["partition"] for r in rows] == [0, 1, 2]
    assert sum(r["log_end"] for r in rows) == 900
    for r in rows:
        assert r["committed_offset"] == committed.get(r["partition"])
        assert r["lag"] == r["log_end"] - (r["committed_offset"] or 0)
    assert sum(r["lag"] for r in rows) == 500
    # Without topics: the topics the group has committed in, and only those.
    assert kafkalake.lag(group, bootstrap_servers=durable_broker).to_pylist() == rows
    # A group that never committed: everything is lag.
    fresh = kafkalake.lag("never-" + group, topic, bootstrap_servers=durable_broker).to_pylist()
    assert [r["committed_offset"] for r in fresh] == [None, None, None]
    assert sum(r["lag"] for r in fresh) == 900
    with pytest.raises(TopicNotFoundError):
        kafkalake.lag(group, "no-such-topic", bootstrap_servers=durable_broker)
    with pytest.raises(InvalidArgumentError):
        kafkalake.lag("", topic, bootstrap_servers=durable_broker)


def test_lag_shows_what_a_kafkalake_table_holds(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(durable_broker, topic, 2)
    kafkalake.produce("iot", topic, bootstrap_servers=durable_broker, count=600, progress=False)
    table = tmp_path / "bronze"
    kafkalake.ingest(topic, table, bootstrap_servers=durable_broker, group_id="g1", progress=False)
    rows = kafkalake.lag("g1", topic, bootstrap_servers=durable_broker, table=table).to_pylist()
    assert sum(r["log_end"] for r in rows) == 600
    for r in rows:
        # The table holds up to the last offset; the group committed after it.
        assert r["table_offset"] == r["log_end"] - 1
        assert r["committed_offset"] == r["log_end"] and r["lag"] == 0


def test_reset_offsets_replays_from_an_offset_a_time_or_the_start(
    durable_broker: str, topic: str
) -> None:
    from confluent_kafka import Producer

    create_topic(durable_broker, topic, 1)
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    p = Producer({"bootstrap.servers": durable_broker})
    for i in range(10):
        p.produce(
            topic,
            value=b"%d" % i,
            partition=0,
            timestamp=int((t0 + timedelta(seconds=i)).timestamp() * 1000),
        )
    assert p.flush(30) == 0
    group = f"g-{uuid.uuid4().hex[:8]}"
    consume_and_commit(durable_broker, topic, group, 10)

    def first_read() -> int:
        from confluent_kafka import Consumer

        c = Consumer(
            {
                "bootstrap.servers": durable_broker,
                "group.id": group,
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
            }
        )
        c.subscribe([topic])
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    return int(m.offset())
            raise AssertionError("nothing read after the reset")
        finally:
            c.close()

    at_time = kafkalake.admin.reset_offsets(
        group, topic, t0 + timedelta(seconds=6.5), bootstrap_servers=durable_broker
    )
    assert at_time.column("committed_offset").to_pylist() == [7]
    assert first_read() == 7
    kafkalake.admin.reset_offsets(group, topic, 3, bootstrap_servers=durable_broker)
    assert first_read() == 3
    back = kafkalake.admin.reset_offsets(group, topic, "earliest", bootstrap_servers=durable_broker)
    assert back.column("committed_offset").to_pylist() == [0]
    assert first_read() == 0
    with pytest.raises(InvalidArgumentError, match="outside"):
        kafkalake.admin.reset_offsets(group, topic, 99, bootstrap_servers=durable_broker)
    with pytest.raises(InvalidArgumentError, match="timezone"):
        kafkalake.admin.reset_offsets(
            group, topic, datetime(2026, 1, 1), bootstrap_servers=durable_broker
        )


def test_terminal_monitor_redraws_a_live_table(durable_broker: str, topic: str) -> None:
    create_topic(durable_broker, topic, 2)
    kafkalake.produce("iot", topic, bootstrap_servers=durable_broker, count=300, progress=False)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consume_and_commit(durable_broker, topic, group, 100)
    # A pseudo-terminal, as a user's shell gives it: the monitor clears the
    # screen and redraws in place.
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kafkalake.cli",
            "monitor",
            "--group",
            group,
            "--bootstrap-servers",
            durable_broker,
            "--every",
            "0.2",
            "--count",
            "3",
        ],
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=60) == 0, out.decode(errors="replace")
    finally:
        proc.kill()
        os.close(leader)
    text = out.decode()
    assert text.count("\x1b[H\x1b[2J") == 3
    last = text.split("\x1b[H\x1b[2J")[-1]
    assert "lag" in last and f"group {group}"[:24] in last
    rows = [line.split() for line in last.splitlines() if topic[:24] in line]
    assert len(rows) == 2
    assert sum(int(r[-1].replace(",", "")) for r in rows) == 200
    assert sum(int(r[-2].replace(",", "")) for r in rows) == 300


def scrape(url: str) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_prometheus_metrics_of_a_running_ingest(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(durable_broker, topic, 2)
    kafkalake.produce("iot", topic, bootstrap_servers=durable_broker, count=2_000, progress=False)
    with kafkalake.start_ingest(
        topic,
        tmp_path / "bronze",
        bootstrap_servers=durable_broker,
        until="forever",
        max_latency=0.2,
        metrics_port=0,
    ) as job:
        url = job.metrics()["metrics_url"]
        wait_until("every message", lambda: job.metrics()["rows"] == 2_000)
        fams = scrape(url)
        report = job.stop()
    assert fams["kafkalake_ingest_messages"].type == "counter"
    (sample,) = fams["kafkalake_ingest_messages"].samples
    assert sample.labels == {"ingest": "bronze"} and sample.value == 2_000
    assert fams["kafkalake_ingest_rows"].samples[0].value == 2_000
    assert fams["kafkalake_ingest_commits"].samples[0].value == report.commits
    lag = fams["kafkalake_ingest_lag_messages"]
    assert lag.type == "gauge"
    assert sorted(s.labels["partition"] for s in lag.samples) == ["0", "1"]
    assert all(s.value == 0 for s in lag.samples)
    for name in ("commit_latency_seconds", "end_to_end_latency_seconds"):
        h = fams[f"kafkalake_ingest_{name}"]
        assert h.type == "histogram"
        buckets = [s for s in h.samples if s.name.endswith("_bucket")]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts) and buckets[-1].labels["le"] == "+Inf"
        count = next(s.value for s in h.samples if s.name.endswith("_count"))
        assert count == counts[-1] > 0
    e2e = fams["kafkalake_ingest_end_to_end_latency_seconds"].samples
    assert next(s.value for s in e2e if s.name.endswith("_count")) == 2_000
    # The server goes with the run.
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)


def test_notebook_monitor_draws_a_chart_of_the_jobs(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    import io

    create_topic(durable_broker, topic, 2)
    producer = kafkalake.start_produce(
        "iot", topic, bootstrap_servers=durable_broker, count=6_000, rate=3_000
    )
    ingest = kafkalake.start_ingest(
        topic,
        tmp_path / "bronze",
        bootstrap_servers=durable_broker,
        until="forever",
        max_latency=0.3,
    )
    out = io.StringIO()
    # The ingest runs until stopped: the duration ends the watching.
    m = kafkalake.monitor(producer, ingest, every=0.2, duration=3, out=out)
    assert ingest.running and len(m.history) >= 3
    assert max(s.produced_per_second for s in m.history) > 0
    assert max(s.consumed_per_second for s in m.history) > 0
    assert "into Kafka" in out.getvalue() and "ingest bronze" in out.getvalue()
    png = m.png()
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    producer.wait(120)
    ingest.stop()
