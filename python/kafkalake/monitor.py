"""Watching streams: a live chart and table in a notebook, a live text table
in a terminal (``kafkalake monitor``), for kafkalake's own jobs and for any
consumer group.

What is shown, every ``every`` seconds: messages per second into Kafka
(producers) and out of it (ingests or the group's consumption), lag per
partition, and for kafkalake ingests the commit and end-to-end latency.
"""

from __future__ import annotations

import io
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from kafkalake._config import ConfigValue
from kafkalake.admin import lag
from kafkalake.exceptions import InvalidArgumentError
from kafkalake.jobs import Job

#: Points of history a chart keeps (at one per second, ten minutes).
HISTORY = 600


@dataclass
class Snapshot:
    """One reading of everything monitored."""

    at: float
    produced_per_second: float = 0.0
    consumed_per_second: float = 0.0
    lag: dict[str, int] = field(default_factory=dict)
    commit_p99: float | None = None
    end_to_end_p99: float | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


class _Group:
    """A consumer group read from outside, with rates from successive readings."""

    def __init__(
        self,
        group: str,
        topics: Sequence[str] | None,
        bootstrap_servers: str,
        config: Mapping[str, ConfigValue] | None,
    ) -> None:
        self.group, self.topics = group, topics
        self.servers, self.config = bootstrap_servers, config
        self.last: tuple[float, int, int] | None = None

    def read(self) -> tuple[float, float, list[dict[str, Any]]]:
        t = lag(self.group, self.topics, bootstrap_servers=self.servers, config=self.config)
        rows = t.to_pylist()
        now = time.monotonic()
        committed = sum(r["committed_offset"] or r["log_start"] for r in rows)
        end = sum(r["log_end"] for r in rows)
        produced = consumed = 0.0
        if self.last is not None and now > self.last[0]:
            dt = now - self.last[0]
            produced = (end - self.last[2]) / dt
            consumed = (committed - self.last[1]) / dt
        self.last = (now, committed, end)
        for r in rows:
            r["source"] = f"group {self.group}"
        return produced, consumed, rows


class Monitor:
    """Readings of jobs and groups over time (what both views draw)."""

    def __init__(
        self,
        jobs: Sequence[Job[Any]] = (),
        groups: Sequence[str] = (),
        *,
        topics: Sequence[str] | None = None,
        bootstrap_servers: str | None = None,
        config: Mapping[str, ConfigValue] | None = None,
    ) -> None:
        if groups and not bootstrap_servers:
            raise InvalidArgumentError("monitoring a consumer group needs bootstrap_servers")
        if not jobs and not groups:
            raise InvalidArgumentError("give jobs (from kafkalake.start_*) or consumer group ids")
        self.jobs = list(jobs)
        self.groups = [_Group(g, topics, bootstrap_servers or "", config) for g in groups]
        self.history: deque[Snapshot] = deque(maxlen=HISTORY)

    def read(self) -> Snapshot:
        s = Snapshot(at=time.monotonic())
        for job in self.jobs:
            m = job.metrics()
            if job.kind == "produce":
                s.produced_per_second += m.get("acknowledged_per_second", 0.0)
                continue
            s.consumed_per_second += m.get("messages_per_second", 0.0)
            for p in m.get("partitions", []):
                key = f"{p['topic']}[{p['partition']}]"
                s.lag[key] = s.lag.get(key, 0) + p["lag"]
                s.rows.append(
                    {
                        "source": f"{job.kind} {job.name}",
                        "topic": p["topic"],
                        "partition": p["partition"],
                        "committed_offset": p["position"],
                        "log_end": p["log_end"],
                        "lag": p["lag"],
                    }
                )
            for key, attr in (
                ("commit_p99_seconds", "commit_p99"),
                ("end_to_end_p99_seconds", "end_to_end_p99"),
            ):
                v = m.get(key)
                if v:
                    setattr(s, attr, max(getattr(s, attr) or 0.0, v))
        for g in self.groups:
            produced, consumed, rows = g.read()
            s.produced_per_second += produced if not self.jobs else 0.0
            s.consumed_per_second += consumed
            for r in rows:
                key = f"{r['topic']}[{r['partition']}]"
                s.lag[key] = s.lag.get(key, 0) + r["lag"]
            s.rows.extend(rows)
        self.history.append(s)
        return s

    @property
    def done(self) -> bool:
        """Every monitored job has finished (never, when groups are watched)."""
        return not self.groups and all(not j.running for j in self.jobs)

    # --- text -------------------------------------------------------------------

    def text(self, s: Snapshot) -> str:
        stamp = datetime.now().strftime("%H:%M:%S")
        total_lag = sum(s.lag.values())
        head = (
            f"kafkalake monitor  {stamp}\n"
            f"into Kafka {s.produced_per_second:>10,.0f} msg/s   "
            f"out {s.consumed_per_second:>10,.0f} msg/s   lag {total_lag:>10,}"
        )
        if s.commit_p99 is not None or s.end_to_end_p99 is not None:
            head += f"\ncommit p99 {_ms(s.commit_p99)}   end-to-end p99 {_ms(s.end_to_end_p99)}"
        lines = [
            head,
            "",
            f"{'source':<24} {'topic':<24} {'part':>4} {'committed':>12} {'log end':>12} "
            f"{'lag':>10}",
        ]
        for r in s.rows:
            committed = "-" if r["committed_offset"] is None else f"{r['committed_offset']:,}"
            lines.append(
                f"{r['source'][:24]:<24} {r['topic'][:24]:<24} {r['partition']:>4} "
                f"{committed:>12} {r['log_end']:>12,} {r['lag']:>10,}"
            )
        return "\n".join(lines)

    def html(self, s: Snapshot) -> str:
        import html

        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    r["source"],
                    r["topic"],
                    r["partition"],
                    "-" if r["committed_offset"] is None else f"{r['committed_offset']:,}",
                    f"{r['log_end']:,}",
                    f"{r['lag']:,}",
                )
            )
            + "</tr>"
            for r in s.rows
        )
        return (
            f"<pre>{html.escape(self.text(s).split(chr(10) + chr(10))[0])}</pre>"
            "<table><tr><th>source</th><th>topic</th><th>partition</th><th>committed</th>"
            f"<th>log end</th><th>lag</th></tr>{rows}</table>"
        )

    # --- chart ------------------------------------------------------------------

    def png(self, width: float = 11.0) -> bytes | None:
        """The chart as PNG bytes (``None`` without matplotlib)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        h = list(self.history)
        if not h:
            return None
        t0 = h[0].at
        xs = [p.at - t0 for p in h]
        fig, axes = plt.subplots(1, 3, figsize=(width, 3.2), constrained_layout=True)
        rate, lags, lat = axes
        rate.plot(xs, [p.produced_per_second for p in h], label="into Kafka")
        rate.plot(xs, [p.consumed_per_second for p in h], label="out (ingested)")
        rate.set_title("messages / s")
        rate.legend(loc="upper left", fontsize=8)
        keys = sorted({k for p in h for k in p.lag})
        for k in keys:
            lags.plot(xs, [p.lag.get(k, 0) for p in h], label=k)
        lags.set_title("lag per partition (messages)")
        if 0 < len(keys) <= 8:
            lags.legend(loc="upper left", fontsize=7)
        for attr, label in (("commit_p99", "commit p99"), ("end_to_end_p99", "end-to-end p99")):
            lat.plot(xs, [getattr(p, attr) or float("nan") for p in h], label=label)
        lat.set_title("latency (s)")
        lat.legend(loc="upper left", fontsize=8)
        for ax in axes:
            ax.set_xlabel("seconds")
            ax.grid(alpha=0.3)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        return buf.getvalue()


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:,.0f} ms"


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ != "TerminalInteractiveShell"


def monitor(
    *targets: Job[Any] | str,
    every: float = 1.0,
    duration: float | None = None,
    topics: Sequence[str] | None = None,
    bootstrap_servers: str | None = None,
    config: Mapping[str, ConfigValue] | None = None,
    out: TextIO | None = None,
) -> Monitor:
    """Watch jobs (from ``kafkalake.start_*``) and consumer groups (by id) live.

    In a notebook, a chart (messages/s into and out of Kafka, lag per
    partition, commit and end-to-end latency; needs matplotlib) and a table
    are redrawn in place; in a terminal, a text table. Returns when every
    watched job has finished, after ``duration`` seconds, or on Ctrl-C / a
    kernel interrupt (which, as anywhere, also stops the running jobs);
    watching a group goes on until ``duration`` or an interrupt.

    Returns:
        The :class:`Monitor`, whose ``history`` holds every reading.
    """
    if not every > 0:
        raise InvalidArgumentError(f"every must be positive, got {every!r}")
    jobs = [t for t in targets if isinstance(t, Job)]
    groups = [t for t in targets if isinstance(t, str)]
    m = Monitor(jobs, groups, topics=topics, bootstrap_servers=bootstrap_servers, config=config)
    deadline = None if duration is None else time.monotonic() + duration
    notebook = out is None and _in_notebook()
    handle: Any = None
    stream = out or sys.stdout
    try:
        while True:
            s = m.read()
            if notebook:
                handle = _show(m, s, handle)
            else:
                clear = "\x1b[H\x1b[2J" if stream.isatty() else ""
                stream.write(clear + m.text(s) + "\n\n")
                stream.flush()
            if m.done or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(every if deadline is None else min(every, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass
    return m


def _show(m: Monitor, s: Snapshot, handle: Any) -> Any:
    from IPython.display import HTML, Image, display

    png = m.png()
    parts: list[Any] = [HTML(m.html(s))]  # type: ignore[no-untyped-call]
    if png is not None:
        parts.insert(0, Image(data=png, format="png"))  # type: ignore[no-untyped-call]
    else:
        parts.append(HTML("<i>pip install matplotlib for the chart</i>"))  # type: ignore[no-untyped-call]
    if handle is None:
        return [display(p, display_id=True) for p in parts]  # type: ignore[no-untyped-call]
    for h, p in zip(handle, parts, strict=False):
        h.update(p)
    return handle
