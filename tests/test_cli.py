"""The kafkalake command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import read_topic


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kafkalake.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_on_the_embedded_cluster() -> None:
    out = run("demo", "--seconds", "0.5", "--rate", "4000")
    assert out.returncode == 0, out.stderr
    rows = [
        line.split()
        for line in out.stdout.splitlines()
        if line.split()[:1] in (["iot"], ["clickstream"], ["search"], ["geo"])
    ]
    assert [r[0] for r in rows] == ["clickstream", "geo", "iot", "search"]
    for r in rows:
        sent, acked, failed = (int(x.replace(",", "")) for x in r[1:4])
        assert sent > 1000 and acked == sent and failed == 0
    assert '"deviceId": "contoso-device-id-' in out.stdout
    assert "Chá" in out.stdout or '"content_search"' in out.stdout


@pytest.mark.broker
def test_produce_command(broker: str, topic: str) -> None:
    out = run(
        "produce",
        "search",
        "--topic",
        topic,
        "--bootstrap-servers",
        broker,
        "--count",
        "1500",
        "--compression",
        "zstd",
        "-X",
        "linger.ms=20",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["acknowledged"] == 1500 and report["failed"] == 0
    assert len(read_topic(broker, topic)) == 1500


@pytest.mark.broker
def test_produce_to_a_partition_with_a_delivery_log(broker: str, topic: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Seed 004's producer: geo events sent by ``python_kafka_sdk``, where each
    one was delivered written down."""
    import pyarrow.csv as pcsv

    log = tmp_path / "log" / "deliveries.csv"
    out = run(
        "produce", "geo", "--topic", topic, "--bootstrap-servers", broker, "--count", "40",
        "--partitions", "3", "--partition", "1", "--sender", "python_kafka_sdk",
        "--delivery-log", str(log),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    table = pcsv.read_csv(log)
    assert table.column("message").to_pylist() == list(range(40))
    assert set(table.column("partition").to_pylist()) == {1}
    got = read_topic(broker, topic)
    assert sorted(o for p, o, _, _ in got if p == 1) == table.column("offset").to_pylist()
    assert all(json.loads(v)["sender"] == "python_kafka_sdk" for _, _, _, v in got)

    groups = run("groups", "--bootstrap-servers", broker, "--group", "nobody", "--json")
    assert groups.returncode == 0, groups.stderr
    assert json.loads(groups.stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["produce", "iot", "--topic", "t", "--bootstrap-servers", "x:1", "--count", "0"],
            "count must be positive",
        ),
        (
            ["produce", "iot", "--topic", "t", "--bootstrap-servers", "x:1", "-X", "nokey"],
            "key=value",
        ),
        (["produce", "nope", "--topic", "t"], "invalid choice"),
        (
            ["produce", "geo", "--topic", "t", "--embedded", "--delivery-log", "log.txt"],
            "name a .csv or a .parquet file",
        ),
        (["demo", "--profiles", "iot,bogus"], "unknown profile"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert message in out.stderr


def test_unknown_setting_exits_1_with_clear_error() -> None:
    out = run("produce", "iot", "--topic", "t", "--embedded", "--count", "5", "-X", "bogus.key=1")
    assert out.returncode == 1
    assert "bogus.key" in out.stderr


def test_profiles_command() -> None:
    out = run("profiles")
    assert out.returncode == 0
    for p in ("iot", "clickstream", "search", "geo"):
        assert f"{p}  (key:" in out.stdout


@pytest.mark.parametrize("module", ["kafkalake", "kafkalake.cli"])
def test_importing_leaves_pyarrow_numpy_and_http_server_for_when_they_are_used(
    module: str,
) -> None:
    # Their imports cost more CPU than ingesting a hundred thousand events
    # (numpy's BLAS threads spin for a while after it loads).
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('pyarrow', 'numpy', 'http.server') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
