"""The examples in README.md and docs/*.md run, so the docs cannot rot.

How a page's fenced code blocks are treated:

- ```python blocks run in one fresh interpreter per page, in page order,
  sharing their names (a later block can use what an earlier one defined),
  in a temporary working directory holding a copy of ``examples/``.
  Tracebacks name the page and its line numbers.
- ```console and ```sh blocks: each line starting with ``$ kafkalake`` is a
  command, run in that directory in page order (a trailing ``\\`` continues
  it on the next line); it must exit 0. Other lines are output and are not
  compared (timings differ from run to run).
- ```toml (or any) block preceded by ``<!-- file: NAME -->`` is written to
  ``NAME`` in the working directory when its turn comes (TOML is parsed
  first), for later blocks to use.
- A block preceded by ``<!-- not run: REASON -->`` is not run (a Databricks
  workspace, a real Azure account, ``pip install``, scripts/test.sh); the
  inventory test prints each with its reason. A block preceded by
  ``<!-- needs: azurite -->`` runs with the Azurite storage emulator started
  and ``AZURITE_BLOB_STORAGE_URL`` set.
- Every page's interpreter first starts an embedded Kafka cluster
  (``kafkalake.EmbeddedKafka``) and exports its address as
  ``KAFKALAKE_BOOTSTRAP_SERVERS`` (read by the command line) and
  ``KAFKA_BOOTSTRAP_SERVERS`` (read by the example pipeline files). Python
  examples start their own cluster where they show one.
- A block in a runnable language (python, console, sh, bash, toml) that is
  neither run nor marked fails the test, as does a marker with no reason.
  Other languages (text, json) are shown only.

Run as a script (``python tests/test_docs.py PLAN.json``) this file is the
per-page interpreter itself.
"""

from __future__ import annotations

import json
import linecache
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"python", "console", "sh", "bash", "toml"}
PAGE_TIMEOUT = 240

_FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*(not run|file|needs)\s*:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    page: str
    line: int  # line of the block's first code line (1-based)
    lang: str
    text: str
    marker: tuple[str, str] | None


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the marker before each."""
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        marker = None
        if i > 0 and (mm := _MARKER.match(lines[i - 1])):
            marker = (mm.group(1), mm.group(2))
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        out.append(Block(path.name, i + 2, lang.lower(), "\n".join(body) + "\n", marker))
        i = j + 1
    return out


def commands(block: Block) -> list[tuple[int, str]]:
    """The ``$ kafkalake …`` commands of a console/sh block, with their lines."""
    out: list[tuple[int, str]] = []
    lines = block.text.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("$ kafkalake"):
            start, cmd = block.line + k, line[2:]
            while cmd.endswith("\\") and k + 1 < len(lines):
                k += 1
                cmd = cmd[:-1] + " " + lines[k].strip()
            out.append((start, cmd))
        k += 1
    return out


def plan(path: Path) -> tuple[list[dict[str, Any]], list[Block], list[str]]:
    """Steps to run for a page, its not-run blocks, and its problems."""
    steps: list[dict[str, Any]] = []
    skipped: list[Block] = []
    problems: list[str] = []
    for b in blocks(path):
        where = f"{b.page}:{b.line - 1}"
        kind, arg = b.marker or ("", "")
        if kind == "not run":
            if not arg:
                problems.append(f"{where}: '<!-- not run: -->' needs a reason")
            skipped.append(b)
            continue
        if kind == "needs" and arg != "azurite":
            problems.append(f"{where}: unknown need {arg!r} (known: azurite)")
        needs = [arg] if kind == "needs" else []
        if kind == "file":
            if not arg or "/" in arg:
                problems.append(f"{where}: '<!-- file: NAME -->' needs a plain file name")
            steps.append({"kind": "file", "line": b.line, "name": arg, "text": b.text})
        elif b.lang == "python":
            steps.append({"kind": "python", "line": b.line, "text": b.text, "needs": needs})
        elif b.lang in ("console", "sh", "bash"):
            cmds = commands(b)
            if not cmds:
                problems.append(
                    f"{where}: a {b.lang} block with no '$ kafkalake' command: mark it "
                    "'<!-- not run: why -->' or show it as ```text"
                )
            for line, cmd in cmds:
                steps.append({"kind": "command", "line": line, "text": cmd, "needs": needs})
        elif b.lang in RUNNABLE:
            problems.append(
                f"{where}: a {b.lang} block that is not run: give it '<!-- file: NAME -->' "
                "or '<!-- not run: why -->'"
            )
    return steps, skipped, problems


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------- the tests

if __name__ != "__main__":
    import pytest

    def test_docs_inventory(capsys: pytest.CaptureFixture[str]) -> None:
        """Every runnable block is run or marked; the count is printed."""
        rows, problems = [], []
        for page in PAGES:
            steps, skipped, bad = plan(page)
            problems += bad
            rows.append((_page_id(page), len(blocks(page)), len(steps), skipped))
        with capsys.disabled():
            print("\ndocs examples: page, blocks, steps run, blocks not run (reason)")
            for name, n, run, skipped in rows:
                print(f"  {name}: {n} blocks, {run} steps run, {len(skipped)} not run")
                for b in skipped:
                    print(f"    line {b.line - 1}: {b.marker[1] if b.marker else ''}")
        assert not problems, "\n".join(problems)

    # Pages with nothing to run (benchmark figures, the testing guide) are
    # listed by the inventory above, not collected as tests.
    EXAMPLE_PAGES = [p for p in PAGES if plan(p)[0]]

    @pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=_page_id)
    def test_page_examples_run(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        steps, _, problems = plan(page)
        assert not problems, "\n".join(problems)
        assert steps
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
        if any("azurite" in s.get("needs", ()) for s in steps):
            az = request.getfixturevalue("azurite")
            env["AZURITE_BLOB_STORAGE_URL"] = az.url
        shutil.copytree(ROOT / "examples", tmp_path / "examples")
        plan_file = tmp_path / ".docs-plan.json"
        plan_file.write_text(json.dumps({"page": _page_id(page), "steps": steps}))
        started = time.monotonic()
        try:
            out = subprocess.run(
                [sys.executable, __file__, str(plan_file)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=PAGE_TIMEOUT,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(
                f"{_page_id(page)}: examples ran over {PAGE_TIMEOUT} s\n{e.stdout!s}", pytrace=False
            )
        took = time.monotonic() - started
        if out.returncode != 0:
            pytest.fail(
                f"{_page_id(page)}: an example failed (after {took:.0f} s)\n"
                f"--- stdout\n{out.stdout[-6000:]}\n--- stderr\n{out.stderr[-6000:]}",
                pytrace=False,
            )


# ------------------------------------------------- the per-page interpreter


def _kafkalake_command() -> list[str]:
    beside = Path(sys.executable).parent / "kafkalake"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "kafkalake.cli"]


def run_plan(plan_file: Path) -> None:
    """Run a page's steps in order in this interpreter (see the module docstring)."""
    import kafkalake

    spec = json.loads(plan_file.read_text())
    page = spec["page"]
    kafka = kafkalake.EmbeddedKafka()
    os.environ["KAFKALAKE_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
    names: dict[str, Any] = {"__name__": "__main__"}
    for step in spec["steps"]:
        started = time.monotonic()
        print(f"--- {page}:{step['line']} {step['kind']}", flush=True)
        if step["kind"] == "file":
            if step["name"].endswith(".toml"):
                tomllib.loads(step["text"])
            Path(step["name"]).write_text(step["text"])
        elif step["kind"] == "python":
            # Padded so that tracebacks give the page's own line numbers.
            source = "\n" * (step["line"] - 1) + step["text"]
            linecache.cache[page] = (len(source), None, source.splitlines(True), page)
            try:
                exec(compile(source, page, "exec"), names)
            except BaseException:
                # Printed here, not by the interpreter's own hook, which reads
                # source lines from disk and so would not show the page's.
                traceback.print_exc()
                raise SystemExit(f"{page}:{step['line']}: the python block failed") from None
        else:
            argv = _kafkalake_command() + shlex.split(step["text"])[1:]
            done = subprocess.run(argv, timeout=120)
            if done.returncode != 0:
                raise SystemExit(
                    f"{page}:{step['line']}: `{step['text']}` exited {done.returncode}"
                )
        print(f"    ({time.monotonic() - started:.1f} s)", flush=True)
    kafkalake.jobs.stop_all()
    kafka.stop()


if __name__ == "__main__":
    run_plan(Path(sys.argv[1]))
