"""Prometheus metrics of running ingests and pipelines (``metrics_port=``,
``--metrics-port``), in Prometheus' text exposition format at ``/metrics``.

One HTTP server per port and process; every ingest and pipeline given that
port adds its metrics while it runs, labelled by its name. A scrape reads
the Rust counters (atomics) once: nothing is computed per message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kafkalake.exceptions import InvalidArgumentError

log = logging.getLogger("kafkalake")

Lines = list[str]
Source = Callable[[], dict[str, "Family"]]


class Family:
    """One metric: its type, help text and samples (labels → value)."""

    def __init__(self, kind: str, help_text: str) -> None:
        self.kind = kind
        self.help = help_text
        self.samples: list[tuple[str, dict[str, str], float]] = []

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((suffix, labels, value))


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def _number(v: float) -> str:
    if v == float("inf"):
        return "+Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def render(families: dict[str, Family]) -> str:
    out: Lines = []
    for name, fam in sorted(families.items()):
        out.append(f"# HELP {name} {fam.help}")
        out.append(f"# TYPE {name} {fam.kind}")
        for suffix, labels, value in fam.samples:
            out.append(f"{name}{suffix}{_labels(labels)} {_number(value)}")
    return "\n".join(out) + "\n"


class _Server:
    def __init__(self, port: int) -> None:
        self.sources: dict[int, Source] = {}
        self.lock = threading.Lock()
        server = self
        # Imported when a port is asked for, not with the package.
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "metrics are at /metrics")
                    return
                body = server.scrape().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            self.http = ThreadingHTTPServer(("0.0.0.0", port), Handler)
        except OSError as e:
            raise InvalidArgumentError(
                f"cannot serve metrics on port {port}: {e.strerror or e} "
                "(choose a free port, or 0 for any)"
            ) from None
        self.port: int = self.http.server_address[1]
        self.thread = threading.Thread(
            target=self.http.serve_forever, name=f"kafkalake-metrics-{self.port}", daemon=True
        )
        self.thread.start()
        log.info("kafkalake: Prometheus metrics on http://0.0.0.0:%d/metrics", self.port)

    def scrape(self) -> str:
        with self.lock:
            sources = list(self.sources.values())
        families: dict[str, Family] = {}
        for source in sources:
            for name, fam in source().items():
                mine = families.setdefault(name, Family(fam.kind, fam.help))
                mine.samples.extend(fam.samples)
        return render(families)


_servers: dict[int, _Server] = {}
_lock = threading.Lock()


def check_port(port: int | None) -> None:
    """Refuse a ``metrics_port`` that is not a port number (before any work)."""
    if port is None:
        return
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgumentError(f"metrics_port must be a port number (0 for any), got {port!r}")


@contextmanager
def serve(port: int | None, source: Source) -> Iterator[str | None]:
    """Expose ``source``'s metrics on ``port`` while the block runs; yields
    the URL (``None`` when ``port`` is ``None``: no metrics)."""
    if port is None:
        yield None
        return
    check_port(port)
    with _lock:
        server = _servers.get(port)
        if server is None:
            server = _Server(port)
            _servers[port] = server
            _servers[server.port] = server
    key = id(source)
    with server.lock:
        server.sources[key] = source
    try:
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        with _lock, server.lock:
            server.sources.pop(key, None)
            if not server.sources:
                server.http.shutdown()
                server.http.server_close()
                for p in [p for p, s in _servers.items() if s is server]:
                    del _servers[p]


def ingest_source(name: str, raw: Any) -> Source:
    """The metrics of one ingest run (``raw``: its Rust run)."""

    def collect() -> dict[str, Family]:
        m = raw.metrics()
        labels = {"ingest": name}
        fams: dict[str, Family] = {}

        def counter(key: str, metric: str, help_text: str) -> None:
            f = fams.setdefault(metric, Family("counter", help_text))
            f.add(float(m[key]), **labels)

        counter("messages", "kafkalake_ingest_messages_total", "Kafka messages consumed.")
        counter("rows", "kafkalake_ingest_rows_total", "Rows written to the table or files.")
        counter("bytes", "kafkalake_ingest_bytes_total", "Message bytes consumed.")
        counter(
            "dead_letters",
            "kafkalake_ingest_dead_letters_total",
            "Messages written to the dead-letter table.",
        )
        counter("commits", "kafkalake_ingest_commits_total", "Table commits or file flushes.")
        counter("files", "kafkalake_ingest_files_total", "Data files written.")
        lag = fams.setdefault(
            "kafkalake_ingest_lag_messages",
            Family("gauge", "Messages in the partition not yet written, per partition."),
        )
        pos = fams.setdefault(
            "kafkalake_ingest_position_offset",
            Family("gauge", "The next offset the ingest reads, per partition."),
        )
        for topic, partition, position, end in m["partitions"]:
            part = {**labels, "topic": topic, "partition": str(partition)}
            lag.add(float(max(end - position, 0)), **part)
            pos.add(float(position), **part)
        for metric, (buckets, count, total) in raw.histograms().items():
            what = (
                "Seconds from a batch in hand to its commit."
                if metric.startswith("commit")
                else "Seconds from a message's Kafka timestamp to its row committed."
            )
            h = fams.setdefault(f"kafkalake_ingest_{metric}", Family("histogram", what))
            for le, n in buckets:
                h.add(float(n), "_bucket", **labels, le=_number(le))
            h.add(float(count), "_bucket", **labels, le="+Inf")
            h.add(float(count), "_count", **labels)
            h.add(float(total), "_sum", **labels)
        return fams

    return collect


def stages_source(
    name: str, totals: dict[str, dict[str, float]], cycles: Callable[[], int]
) -> Source:
    """Cumulative stage counters of a pipeline (``totals``: stage → counts,
    updated by the pipeline after each run of a stage)."""

    helps = {
        "rows_in": "Source rows read by the stage.",
        "rows_out": "Rows the stage wrote to its target.",
        "deduplicated": "Rows dropped as duplicates.",
        "late": "Rows behind the watermark, not folded in.",
        "quarantined": "Rows moved to the quarantine table.",
        "commits": "Target commits made.",
    }

    def collect() -> dict[str, Family]:
        fams: dict[str, Family] = {}
        for stage, counts in list(totals.items()):
            for key, help_text in helps.items():
                f = fams.setdefault(f"kafkalake_stage_{key}_total", Family("counter", help_text))
                f.add(float(counts.get(key, 0)), pipeline=name, stage=stage)
        passes = fams.setdefault(
            "kafkalake_pipeline_cycles_total", Family("counter", "Passes over the pipeline.")
        )
        passes.add(float(cycles()), pipeline=name)
        return fams

    return collect
