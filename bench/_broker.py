"""The broker a benchmark runs against: the one given, or a tansu broker
(memory engine unless asked otherwise) started with scripts/tansu.sh and
stopped at the end."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TANSU = Path(__file__).resolve().parent.parent / "scripts" / "tansu.sh"


@contextmanager
def broker(given: str | None, work: Path, storage: str = "memory") -> Iterator[str]:
    """Yield `given` (host:port), or start tansu in `work/tansu` with the
    storage engine `storage` ("memory" or "sqlite") and yield its address."""
    if given is not None:
        yield given
        return
    engine = [] if storage == "memory" else [storage]
    out = subprocess.run(
        [str(TANSU), "start", str(work / "tansu"), *engine],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(TANSU), "stop", str(work / "tansu")], check=False)
