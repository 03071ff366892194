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
from kafkalake import _kafkalake, cli
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
