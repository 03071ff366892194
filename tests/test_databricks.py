"""The Databricks path as far as it can be proven without a workspace: the
entry point a ``python_wheel_task`` calls fails the task on failure, the
asset bundle's jobs are commands kafkalake's CLI accepts with no secret in
the file, and the Databricks notebook's Python cells run against the
embedded cluster and Azurite with only ``dbutils``, ``spark.sql`` and
``display`` stubbed."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from deltalake import DeltaTable, write_deltalake

import kafkalake
from conftest import AZURITE_KEY, Azurite
from kafkalake import cli

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "examples" / "databricks"


def run_entry_point(monkeypatch: pytest.MonkeyPatch, *parameters: str) -> int:
    """Call the ``kafkalake`` entry point as a ``python_wheel_task`` does:
    loaded from the package's metadata, parameters in ``sys.argv``, what it
    returns ignored. The exit code the task would end with."""
    (ep,) = importlib.metadata.entry_points(group="console_scripts", name="kafkalake")
    monkeypatch.setattr(sys, "argv", ["kafkalake", *parameters])
    try:
        ep.load()()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    return 0


@pytest.mark.parametrize(
    ("flags", "code", "named"),
    [
        (["--max-rows", "0"], 2, "max_rows"),  # a bad argument, before any work
        (["--connect-timeout", "2"], 1, "127.0.0.1:1"),  # no broker there
    ],
    ids=["bad-argument", "unreachable-broker"],
)
def test_the_entry_point_fails_the_task(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    flags: list[str],
    code: int,
    named: str,
) -> None:
    table = tmp_path / "t"
    args = ["ingest", "t", "--table", str(table), "--bootstrap-servers", "127.0.0.1:1"]
    assert run_entry_point(monkeypatch, *args, *flags) == code
    assert named in capsys.readouterr().err
    assert not table.exists()


def test_the_entry_point_fails_the_task_on_a_failed_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A stage whose `fail` expectation trips: exit 1, nothing committed;
    a stage of the same file without it: 0."""
    bronze = tmp_path / "bronze"
    write_deltalake(bronze, pa.table({"id": [1, 2, -3]}))
    spec = tmp_path / "p.toml"
    spec.write_text(
        f'[bronze.b]\ntopics = ["t"]\ntable = "{bronze}"\nbootstrap_servers = "127.0.0.1:1"\n'
        f'[silver.s]\nfrom = "bronze.b"\ntable = "{tmp_path / "silver"}"\n'
        'expect.positive = { check = "id > 0", on_violation = "fail" }\n'
        f'[silver.ok]\nfrom = "bronze.b"\ntable = "{tmp_path / "ok"}"\n'
    )
    run = ("pipeline", "run", str(spec), "--stage")
    assert run_entry_point(monkeypatch, *run, "silver.s") == 1
    assert "positive" in capsys.readouterr().err
    assert not (tmp_path / "silver").exists()
    assert run_entry_point(monkeypatch, *run, "silver.ok") == 0
    assert DeltaTable(tmp_path / "ok").to_pyarrow_table().num_rows == 3


def bundle() -> dict[str, Any]:
    return yaml.safe_load((BUNDLE / "databricks.yml").read_text())


def wheel_tasks() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, job in bundle()["resources"]["jobs"].items():
        for task in job["tasks"]:
            yield name, task


def resolved(parameter: str) -> str:
    """A bundle parameter with its ${…} references filled in as a deploy would."""
    values = {
        "var.lake": "abfss://lake@account.dfs.core.windows.net/kafkalake",
        "var.topic": bundle()["variables"]["topic"]["default"],
        "workspace.file_path": str(BUNDLE),
    }
    return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], parameter)


def test_the_bundle_runs_commands_the_cli_accepts() -> None:
    (ep,) = importlib.metadata.entry_points(group="console_scripts", name="kafkalake")
    tasks = list(wheel_tasks())
    assert {name for name, _ in tasks} == {
        "kafkalake_medallion",
        "kafkalake_ingest",
        "kafkalake_load_test",
    }
    commands: dict[str, list[list[str]]] = {}
    for name, task in tasks:
        wt = task["python_wheel_task"]
        assert wt["package_name"] == "kafkalake" and wt["entry_point"] == ep.name
        assert any("whl" in lib for lib in task["libraries"]), f"{name}: no wheel installed"
        params = [resolved(str(p)) for p in wt["parameters"]]
        cli.parser().parse_args(params)  # exits (fails the test) on a flag it does not take
        commands.setdefault(name, []).append(params)
    # Scheduled: the whole pipeline up to what the topic holds (AvailableNow).
    (pipeline_run,) = commands["kafkalake_medallion"]
    assert pipeline_run[:2] == ["pipeline", "run"]
    assert pipeline_run[pipeline_run.index("--until") + 1] == "caught_up"
    assert (
        "quartz_cron_expression" in bundle()["resources"]["jobs"]["kafkalake_medallion"]["schedule"]
    )
    # Continuous: several workers of one consumer group, forever.
    workers = commands["kafkalake_ingest"]
    assert len(workers) >= 2 and all(w == workers[0] for w in workers)
    assert workers[0][workers[0].index("--until") + 1] == "forever"
    assert "--group-id" in workers[0]
    # Load test: a rate.
    (load,) = commands["kafkalake_load_test"]
    assert load[0] == "produce" and "--rate" in load


def test_the_bundle_keeps_secrets_in_the_secret_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (BUNDLE / "databricks.yml").read_text()
    for job in bundle()["resources"]["jobs"].values():
        for cluster in job["job_clusters"]:
            env = cluster["new_cluster"]["spark_env_vars"]
            for name, value in env.items():
                secret = re.fullmatch(r"\{\{secrets/\$\{var\.secret_scope\}/[a-z-]+\}\}", value)
                assert secret or value.startswith("${var."), f"{name} is not from the scope"
            assert {"AZURE_CLIENT_SECRET", "KAFKALAKE_BOOTSTRAP_SERVERS"} <= set(env)
    assert not re.search(r"(?i)(AccountKey|SharedAccessKey|client_secret)\s*[=:]\s*\w", text)
    # The scheduled job's pipeline file loads with what the cluster provides.
    monkeypatch.setenv("LAKE", "abfss://lake@account.dfs.core.windows.net/kafkalake")
    monkeypatch.setenv("KAFKALAKE_BOOTSTRAP_SERVERS", "broker:9092")
    p = kafkalake.pipeline.load(BUNDLE / "pipelines" / "iot.toml")
    assert [e.key for e in p.entries] == ["bronze.iot", "silver.iot", "gold.iot_per_minute"]
    assert all(e.table.startswith("abfss://lake@account") for e in p.entries)


class _Widgets:
    def __init__(self, given: dict[str, str]) -> None:
        self.given = given
        self.declared: dict[str, str] = {}

    def text(self, name: str, default: str, label: str = "") -> None:
        self.declared[name] = default

    def get(self, name: str) -> str:
        assert name in self.declared, f"widget {name} read before it was declared"
        return self.given.get(name, self.declared[name])


class _Secrets:
    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values
        self.read: list[tuple[str, str]] = []

    def get(self, scope: str, key: str) -> str:
        self.read.append((scope, key))
        return self.values[(scope, key)]


class _DBUtils:
    def __init__(self, widgets: dict[str, str], secrets: dict[tuple[str, str], str]) -> None:
        self.widgets = _Widgets(widgets)
        self.secrets = _Secrets(secrets)


class _Spark:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def sql(self, statement: str) -> str:
        self.statements.append(" ".join(statement.split()))
        return statement


def notebook_cells(path: Path) -> list[str]:
    text = path.read_text()
    assert text.startswith("# Databricks notebook source\n")
    return [c.strip() for c in text.split("# COMMAND ----------")]


def test_the_databricks_notebook_on_the_embedded_cluster(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = azurite.container()
    # The cluster's environment as Azure gives it: here, the emulator.
    monkeypatch.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
    cells = notebook_cells(BUNDLE / "clickstream_to_delta.py")
    pip = [c for c in cells if c.startswith("# MAGIC %pip")]
    assert len(pip) == 1
    wheel = re.search(r"kafkalake-[^ ]+\.whl", pip[0])
    assert wheel and wheel.group(0).endswith("-cp311-abi3-manylinux_2_28_x86_64.whl")
    code = [c for c in cells if not c.startswith(("# MAGIC", "# Databricks notebook source"))]
    with kafkalake.EmbeddedKafka(partitions=4) as kafka:
        dbutils = _DBUtils(
            widgets={
                "storage_account": "devstoreaccount1",
                "container": container,
                "bootstrap_servers": kafka.bootstrap_servers,
            },
            secrets={("kafkalake", "storage-account-key"): AZURITE_KEY},
        )
        spark, shown = _Spark(), []
        namespace: dict[str, Any] = {
            "dbutils": dbutils,
            "spark": spark,
            "display": shown.append,
            "__name__": "__main__",
        }
        for cell in code:
            exec(compile(cell, "clickstream_to_delta.py", "exec"), namespace)
    lake = f"abfss://{container}@devstoreaccount1.dfs.core.windows.net/kafkalake/clickstream"
    assert namespace["bronze"] == f"{lake}/bronze/clicks"
    assert dbutils.secrets.read == [("kafkalake", "storage-account-key")]
    registered = "CREATE TABLE IF NOT EXISTS main.kafkalake.clicks_bronze USING DELTA LOCATION"
    assert f"{registered} '{lake}/bronze/clicks'" in spark.statements
    assert any(f"LOCATION '{lake}/gold/clicks_per_category'" in s for s in spark.statements)
    assert len(shown) == 2
    storage = namespace["storage"]
    bronze = DeltaTable(f"{lake}/bronze/clicks", storage_options=storage).to_pyarrow_table()
    assert bronze.num_rows == 40_000
    gold = DeltaTable(f"{lake}/gold/clicks_per_category", storage_options=storage)
    assert gold.to_pyarrow_table().num_rows > 0
    assert AZURITE_KEY not in repr(namespace["report"]) + repr(namespace["ingest"])


def _log_actions(table: Path) -> list[tuple[int, dict[str, Any]]]:
    """(version, action) for every action in the table's JSON commits."""
    import json

    out = []
    for commit in sorted((table / "_delta_log").glob("*.json")):
        version = int(commit.name.split(".")[0])
        out.extend((version, json.loads(line)) for line in commit.read_text().splitlines())
    return out


def test_every_table_stays_at_the_lowest_protocol_spark_reads(tmp_path: Path) -> None:
    """Bronze (with a checkpoint, a compaction and an evolved schema), its
    dead letters, silver and gold: reader 1 / writer 2 and no table features,
    which Spark, Databricks, Fabric and Synapse all read. Compaction commits
    add and remove files with dataChange=false, so a Spark stream reading the
    table is not handed the same rows again."""
    from confluent_kafka import Producer

    bronze = tmp_path / "bronze"
    with kafkalake.EmbeddedKafka(partitions=2, topics=["t"]) as kafka:
        bs = kafka.bootstrap_servers
        options = dict(
            bootstrap_servers=bs, max_rows=400, checkpoint_interval=3, compact_every=4,
            compact_min_files=2, progress=False,
        )  # fmt: skip
        kafkalake.produce("iot", "t", bootstrap_servers=bs, count=2_000, malformed_ratio=0.01)
        first = kafkalake.ingest("t", bronze, **options)
        assert first.dead_letters > 0
        # A field the table does not have yet: the schema evolves.
        p = Producer({"bootstrap.servers": bs})
        for i in range(50):
            p.produce("t", b'{"eventId": "e%d", "value": 1.5, "firmware": "2.1"}' % i)
        p.flush(30)
        kafkalake.ingest("t", bronze, **options)
        kafkalake.pipeline.run(
            {
                "bronze": {"b": {"topics": ["t"], "table": str(bronze), "bootstrap_servers": bs}},
                "silver": {
                    "s": {"from": "bronze.b", "table": str(tmp_path / "silver"), "distinct": True}
                },
                "gold": {
                    "g": {
                        "from": "silver.s",
                        "table": str(tmp_path / "gold"),
                        "group_by": ["type"],
                        "aggregates": {"n": "count(*)"},
                    }
                },
            },
            stage=["silver.s", "gold.g"],
        )
    tables = [bronze, tmp_path / "bronze_dead_letters", tmp_path / "silver", tmp_path / "gold"]
    for t in tables:
        protocol = DeltaTable(t).protocol()
        assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2), t
        assert not protocol.reader_features and not protocol.writer_features, t
    assert "firmware" in DeltaTable(bronze).schema().to_arrow().names
    assert list((bronze / "_delta_log").glob("*.checkpoint.parquet")), "no checkpoint written"
    # The compaction commits: files removed and added, none of it a data change.
    actions = _log_actions(bronze)
    compacting = {v for v, a in actions if "remove" in a}
    assert compacting, "no compaction happened"
    for v, a in actions:
        if v in compacting and ("add" in a or "remove" in a):
            assert (a.get("add") or a.get("remove"))["dataChange"] is False, (v, a)
