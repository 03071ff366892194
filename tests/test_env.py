"""Settings from a .env file (seed 002 configures everything that way)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kafkalake
from kafkalake.exceptions import InvalidArgumentError

NAMES = [
    "TENANT_ID",
    "AZURE_TENANT_ID",
    "CLIENT_ID",
    "AZURE_CLIENT_ID",
    "CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "BOOTSTRAP_SERVERS",
    "KAFKALAKE_BOOTSTRAP_SERVERS",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "TOPIC",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for n in NAMES:
        monkeypatch.delenv(n, raising=False)


def test_seed_002_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# seed 002's consumer settings\n"
        "BOOTSTRAP_SERVERS=broker-1:9092\n"
        "export TENANT_ID='tenant-guid'\n"
        'CLIENT_ID="client-guid"\n'
        "CLIENT_SECRET=s3cret-value # the app registration's secret\n"
        "AZURE_STORAGE_ACCOUNT_NAME=streamlake\n"
        "\n"
        "TOPIC=events\n"
    )
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "already-set")
    loaded = kafkalake.load_env_file(env)
    assert os.environ["KAFKALAKE_BOOTSTRAP_SERVERS"] == "broker-1:9092"
    assert os.environ["AZURE_TENANT_ID"] == os.environ["TENANT_ID"] == "tenant-guid"
    assert os.environ["AZURE_CLIENT_ID"] == "client-guid"
    assert os.environ["AZURE_CLIENT_SECRET"] == "s3cret-value"
    assert os.environ["AZURE_STORAGE_ACCOUNT_NAME"] == "already-set"
    assert "AZURE_STORAGE_ACCOUNT_NAME" not in loaded
    assert "s3cret-value" not in repr(loaded)
    kafkalake.load_env_file(env, override=True)
    assert os.environ["AZURE_STORAGE_ACCOUNT_NAME"] == "streamlake"


def test_bad_env_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        kafkalake.load_env_file(tmp_path / "missing.env")
    bad = tmp_path / "bad.env"
    bad.write_text("GOOD=1\nthis-is-the-secret-itself\n")
    with pytest.raises(InvalidArgumentError, match="line 2 is not KEY=VALUE") as info:
        kafkalake.load_env_file(bad)
    assert "secret" not in str(info.value).split("line")[1]
