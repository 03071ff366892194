"""Each option is declared once and the rest is checked against it: the
command line's flags and their defaults against the Python signatures, the
Python signatures against the guides, the dicts handed to Rust against what
Rust reads; and the API reference builds from the code (scripts/api-docs.sh).
The type stub is checked against the extension by mypy's stubtest (lint)."""

from __future__ import annotations

import argparse
import inspect
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import kafkalake
from kafkalake import _kafkalake, cli, pipeline
from kafkalake.exceptions import BrokerUnreachableError, KafkalakeError
from kafkalake.generate import event_options
from kafkalake.producer import _produce_args

ROOT = Path(__file__).resolve().parent.parent

# How the command line spells a parameter when not as --its-name.
SPELLED = {
    "produce": {
        "config": "config",
        "keyed": "no_key",
        "idempotent": "no_idempotence",
        "create_topic": "no_create_topic",
    },
    "ingest": {
        "config": "config",
        "storage_options": "storage_option",
        "table_properties": "table_property",
        "evolve_schema": "no_evolve_schema",
        "date_column": "date_from",
    },
}
# Parameters the command line does not take, and why.
PYTHON_ONLY = {
    "produce": {
        "progress": "the command shows progress when a terminal is attached",
        "raise_on_failure": "the command exits 1 when a message failed",
    },
    "ingest": {
        "progress": "the command shows progress when a terminal is attached",
        "schema": "an Arrow schema object",
    },
}
# Flags that are about the command itself.
COMMAND_ONLY = {"json", "embedded", "eventhubs", "eventhubs_connection_string", "help"}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "produce": kafkalake.produce,
    "ingest": kafkalake.ingest,
}
GUIDES = {"produce": "docs/producing.md", "ingest": "docs/ingesting.md"}


def subcommand(name: str) -> argparse.ArgumentParser:
    actions = cli.parser()._subparsers._group_actions  # type: ignore[union-attr]
    choices: dict[str, argparse.ArgumentParser] = actions[0].choices  # type: ignore[assignment]
    return choices[name]


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_every_option_has_a_flag_with_its_default_or_a_reason(command: str) -> None:
    params = inspect.signature(FUNCTIONS[command]).parameters
    actions = {a.dest: a for a in subcommand(command)._actions}
    spelled = SPELLED[command]
    missing = [
        p for p in params if spelled.get(p, p) not in actions and p not in PYTHON_ONLY[command]
    ]
    assert not missing, f"kafkalake {command} has no flag for {missing}"
    extra = set(actions) - set(params) - set(spelled.values()) - COMMAND_ONLY
    assert not extra, f"kafkalake {command} has flags no parameter declares: {sorted(extra)}"
    # A flag's default is the parameter's (None: the function's own choice).
    for p, spec in params.items():
        a = actions.get(p)
        if a is None or a.default in (None, [], ()) or spec.default is inspect.Parameter.empty:
            continue
        assert a.default == spec.default, f"--{p.replace('_', '-')} default differs"


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_the_guide_names_every_option(command: str) -> None:
    text = (ROOT / GUIDES[command]).read_text()
    params = inspect.signature(FUNCTIONS[command]).parameters
    # Fenced blocks count as one span each, then the inline code spans.
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    inline = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    spans = fenced + re.findall(r"`([^`\n]+)`", inline)
    unnamed = [p for p in params if not any(re.search(rf"\b{p}\b", c) for c in spans)]
    assert not unnamed, f"{GUIDES[command]} does not mention {unnamed}"


def test_rust_reads_every_option_python_hands_it() -> None:
    """Each key of the produce and event dicts is one Rust requires: leaving
    one out is an error naming it (so none is declared in Python alone)."""
    produce = _produce_args(
        bootstrap_servers="127.0.0.1:1",
        topic="t",
        config=None,
        connect_timeout=1.0,
        create_topic=True,
        partitions=None,
        replication_factor=1,
        count=1,
        duration=None,
        rate=None,
        idempotent=True,
        compression="none",
        flush_timeout=1.0,
        partition=None,
        delivery_log=False,
    )
    events = event_options(
        "iot",
        seed=0,
        start_time=None,
        event_interval=0.001,
        duplicate_ratio=None,
        late_ratio=0.0,
        max_lateness=60.0,
        malformed_ratio=0.0,
        key_field=None,
        keyed=True,
        devices=10,
        sender=None,
    )
    _kafkalake.RawProduceJob.for_profile("iot", produce, events)  # all there: accepted
    for which, d in (("produce", produce), ("events", events)):
        for key in d:
            partial = {k: v for k, v in d.items() if k != key}
            args = (partial, events) if which == "produce" else (produce, partial)
            with pytest.raises(Exception, match=key):
                _kafkalake.RawProduceJob.for_profile("iot", *args)


def test_the_api_reference_builds_from_the_code(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(ROOT / "scripts" / "api-docs.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "warn" not in out.stderr.lower(), out.stderr
    page = (tmp_path / "kafkalake.html").read_text()
    absent = [
        n
        for n in kafkalake.__all__
        if not n.startswith("_")
        and f'id="{n}"' not in page
        and not (tmp_path / "kafkalake" / f"{n}.html").exists()
    ]
    assert not absent, f"not in the API reference: {absent}"
    # Signatures come from the code: produce's own parameters are on its page.
    for p in ("delivery_log", "partition", "sender"):
        assert p in page


class _Handed(Exception):
    """Raised in place of a Rust constructor, with what it was handed."""

    def __init__(self, *args: Any) -> None:
        super().__init__("handed")
        self.handed = args


def _hand(*args: Any) -> None:
    raise _Handed(*args)


def _each_missing(dicts: tuple[dict[str, Any], ...]) -> Any:
    """Each of ``dicts`` with each of its keys left out in turn: (key, dicts)."""
    for i, d in enumerate(dicts):
        for key in d:
            partial = {k: v for k, v in d.items() if k != key}
            yield key, (*dicts[:i], partial, *dicts[i + 1 :])


def test_rust_reads_every_ingest_and_consumer_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The dicts `ingest` and `BatchConsumer` build are the ones Rust reads:
    all there, Rust goes on (to find no broker); any key left out is an
    error naming it."""
    common = {"bootstrap_servers": "127.0.0.1:1", "connect_timeout": 1.0}
    with monkeypatch.context() as m:
        m.setattr(_kafkalake, "RawIngest", _hand)
        m.setattr(_kafkalake, "RawBatchConsumer", _hand)
        with pytest.raises(_Handed) as ingest_args:
            kafkalake.ingest("t", tmp_path / "t", progress=False, **common)
        with pytest.raises(_Handed) as consumer_args:
            kafkalake.BatchConsumer("t", group_id="g", **common)
    for cls, handed in (
        (_kafkalake.RawIngest, ingest_args.value.handed),
        (_kafkalake.RawBatchConsumer, consumer_args.value.handed),
    ):
        with pytest.raises(BrokerUnreachableError):
            cls(*handed)
        for key, partial in _each_missing(handed):
            with pytest.raises(Exception, match=key) as e:
                cls(*partial)
            assert not isinstance(e.value, KafkalakeError)


def test_rust_reads_every_stage_option(tmp_path: Path) -> None:
    """A silver and a gold stage: what the pipeline file becomes is what the
    engine reads (all there: it goes on, to find no source table)."""
    p = pipeline.load(
        {
            "bronze": {
                "b": {"table": str(tmp_path / "b"), "topics": "t", "bootstrap_servers": "x:1"}
            },
            "silver": {"s": {"from": "bronze.b", "table": str(tmp_path / "s"), "distinct": True}},
            "gold": {
                "g": {
                    "from": "silver.s",
                    "table": str(tmp_path / "g"),
                    "aggregates": {"n": "count(*)"},
                }
            },
        }
    )
    for e in p.entries:
        if e.kind == "bronze":
            continue
        args = e.options["args"]
        assert set(args) == set(pipeline.StageArgs.__annotations__)

        def run(a: dict[str, Any], e: pipeline.Entry = e) -> None:
            _kafkalake.run_stage(
                e.key,
                source="/nonexistent",
                target=e.table,
                storage_options={},
                kind=e.kind,
                args=a,
            )

        with pytest.raises(KafkalakeError):
            run(args)
        for key, (partial,) in _each_missing((args,)):
            with pytest.raises(Exception, match=key) as exc:
                run(partial)
            assert not isinstance(exc.value, KafkalakeError)


def test_the_pipeline_guide_names_every_key() -> None:
    """Every key a pipeline file's entries and their inline tables take."""
    text = (ROOT / "docs" / "pipelines.md").read_text()
    keys = (
        pipeline._SILVER_KEYS
        | pipeline._GOLD_KEYS
        | pipeline._DEDUPE_KEYS
        | pipeline._WINDOW_KEYS
        | pipeline._EXPECT_KEYS
    )
    unnamed = sorted(k for k in keys if not re.search(rf"\b{k}\b", text))
    assert not unnamed, f"docs/pipelines.md does not mention {unnamed}"


def test_a_misspelt_key_in_a_stage_table_is_an_error(tmp_path: Path) -> None:
    base = {
        "bronze": {"b": {"table": str(tmp_path / "b"), "topics": "t", "bootstrap_servers": "x:1"}}
    }
    for stage, bad in (
        ("silver", {"dedupe": {"key": ["id"], "tme": "ts"}}),
        (
            "gold",
            {
                "aggregates": {"n": "count(*)"},
                "window": {"time": "ts", "size": "1m", "wtermark": "1m"},
            },
        ),
        ("silver", {"expect": {"ok": {"check": "id > 0", "on_violaton": "drop"}}}),
    ):
        spec = {**base, stage: {"x": {"from": "bronze.b", "table": str(tmp_path / "x"), **bad}}}
        with pytest.raises(kafkalake.exceptions.InvalidArgumentError, match="unknown key"):
            pipeline.load(spec)
