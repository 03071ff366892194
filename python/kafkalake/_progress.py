"""Progress display for long runs, in terminals and notebooks alike."""

from __future__ import annotations

import sys
import time
from typing import Any

# Runs shorter than this show no bar at all.
SHOW_AFTER_SECONDS = 1.0


def interactive() -> bool:
    """Whether a person is likely watching: a terminal or a notebook kernel."""
    if "ipykernel" in sys.modules:
        return True
    return sys.stderr.isatty()


class Progress:
    """A bar over ``total`` messages (or an open-ended counter), shown lazily."""

    def __init__(self, enabled: bool, total: int | None, desc: str) -> None:
        self._enabled = enabled
        self._total = total
        self._desc = desc
        self._bar: Any = None
        self._start = time.monotonic()

    def update(self, sent: int, acknowledged: int, failed: int) -> None:
        if not self._enabled:
            return
        if self._bar is None:
            if time.monotonic() - self._start < SHOW_AFTER_SECONDS:
                return
            # Imported here: tqdm (and the asyncio it pulls in) costs start-up
            # time that runs without a bar need not pay.
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self._total, desc=self._desc, unit="msg", unit_scale=True)
        self._bar.n = sent
        self._bar.set_postfix(acked=f"{acknowledged:,}", failed=f"{failed:,}", refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
