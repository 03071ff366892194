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
