"""Long-run benchmark: thousands of small commits on one table, and the
end-to-end latency at a steady rate.

    python bench/longrun_bench.py [--broker host:port] [--commits 3600] [--batch 500]
        [--commit-rate 10] [--window 100] [--poll 0.01] [--e2e-rate 10000]
        [--e2e-seconds 180] [--only commits|e2e|upstream] [--engine sqlite|memory]
    python bench/longrun_bench.py --quick   # 300 commits of 200 rows, 20 s of e2e: to try it

Without --broker it starts a tansu broker with scripts/tansu.sh, on its
sqlite engine by default: the memory engine's fetches slow down as it holds
more records (the end-to-end p99 grew from 1.4 s to 3.9 s through a 180 s
run on it, and stayed flat on sqlite), which would be measured as the
ingest's latency. --engine memory runs on it all the same.
The producer (kafkalake.produce, IoT events, 4 partitions) and the ingest
run in processes of their own; the ingest runs as a background job
(kafkalake.start_ingest, until="forever") and is stopped once the table
holds every event produced.

1. Commits: the producer sends --commits x --batch events at
   --batch x --commit-rate events/s; the ingest (max_rows = --batch,
   max_latency = 5 s, so batches close on rows, one commit each, Delta
   checkpoint every 10 commits as by default) makes --commits small commits
   on one table. Per-commit latency is the ingest's own commit latency
   (batch in hand → Delta commit durable, checkpoint included), which the
   Python API gives only as a histogram over the run: the bench reads the
   histogram's exact sum and count from the job's Prometheus endpoint
   (metrics_port=0) every --poll seconds (10 ms; commits come every 100 ms)
   and takes each commit's latency as the growth of the sum when the count
   grew by one (when a poll saw several commits, each gets their mean; how
   many did is printed). It prints p50/p99 (nearest rank) of the first and
   the last 100 commits, of the whole run (and the engine's own histogram percentiles for
   it, within 25 %), and the ingest process's peak RSS (VmHWM), with the
   targets: last-100 p99 <= 1.5x first-100 p99, peak RSS <= 1 GB.

2. End-to-end: --e2e-rate events/s (10,000) for --e2e-seconds, ingested
   with max_latency = 1 s. It prints the ingest's end_to_end_p50/p99_seconds
   (Kafka timestamp → batch committed, the engine's histogram, within 25 %)
   with the target (p99 <= max_latency + 1 s), and, as an independent check,
   the same percentiles measured from outside: the producer's delivery log
   gives every message's partition, offset and Kafka timestamp; this process
   watches the table's _delta_log and notes when each version appears (every
   20 ms) and the offsets its txn actions carry; a row is visible from the
   first version whose txn for its partition reaches its offset. The ingest
   starts first (its partitions assigned) and the table is created by the
   first batch, which the figures include.

3. Upstream reference: the same producer, rate and length, read by a plain
   confluent-kafka consumer that notes when each message arrives: the
   latency every consumer sees before it can do anything (the producer's
   batching, the broker's write, the fetch), part of the figures of 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import _broker  # bench/_broker.py (the script's own folder is on sys.path)

INGEST = """
import json, resource, sys, time, urllib.request, kafkalake
servers, topic, table, max_rows, max_latency, total, poll, deadline = sys.argv[1:9]
total, poll = int(total), float(poll)
per_commit = poll > 0
job = kafkalake.start_ingest(topic, table, bootstrap_servers=servers, until="forever",
                             max_rows=int(max_rows), max_latency=float(max_latency),
                             metrics_port=0 if per_commit else None)
end = time.monotonic() + float(deadline)
while not job.metrics().get("partitions") and job.running and time.monotonic() < end:
    time.sleep(0.05)
print("ready", flush=True)
url = job.metrics().get("metrics_url")
name = "kafkalake_ingest_commit_latency_seconds"

def scrape():
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    got = {}
    for line in text.splitlines():
        for key in (name + "_sum{", name + "_count{", "kafkalake_ingest_rows_total{"):
            if line.startswith(key):
                got[key] = float(line.rsplit(" ", 1)[1])
    return got[name + "_count{"], got[name + "_sum{"], got["kafkalake_ingest_rows_total{"]

latencies, merged, count, total_s, rows, engine_100 = [], 0, 0, 0.0, 0, None
while job.running and time.monotonic() < end:
    if per_commit:
        c, s, rows = scrape()
        if c > count:
            k = int(c - count)
            latencies.extend([(s - total_s) / k] * k)
            merged += k if k > 1 else 0
            count, total_s = c, s
            if engine_100 is None and count >= 100:
                m = job.metrics()
                engine_100 = (count, m["commit_p50_seconds"], m["commit_p99_seconds"])
    else:
        rows = job.metrics()["rows"]
    if rows >= total:
        if per_commit:
            time.sleep(0.05)  # the last commit's latency is recorded just after its rows
            c, s, rows = scrape()
            if c > count:
                k = int(c - count)
                latencies.extend([(s - total_s) / k] * k)
                merged += k if k > 1 else 0
        break
    time.sleep(poll if per_commit else 0.05)
timed_out = job.running and rows < total
r = job.stop()
u = resource.getrusage(resource.RUSAGE_SELF)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"messages": r.messages, "rows": r.rows, "commits": r.commits,
                  "seconds": r.elapsed_seconds, "cpu": u.ru_utime + u.ru_stime,
                  "rss_mb": hwm / 1024, "latencies": latencies, "merged": merged,
                  "engine_100": engine_100, "timed_out": timed_out,
                  "commit_p50": r.commit_p50_seconds, "commit_p99": r.commit_p99_seconds,
                  "e2e_p50": r.end_to_end_p50_seconds, "e2e_p99": r.end_to_end_p99_seconds}))
"""

PRODUCE = """
import json, sys, kafkalake, pyarrow.parquet as pq
servers, topic, rate, count, log = sys.argv[1:6]
r = kafkalake.produce("iot", topic, bootstrap_servers=servers, rate=float(rate), count=int(count),
                      duplicate_ratio=0.0, create_topic=False, progress=False,
                      delivery_log=bool(log))
if log:
    pq.write_table(r.delivery_log, log)
print(json.dumps({"acknowledged": r.acknowledged, "failed": r.failed, "rate": r.rate,
                  "seconds": r.elapsed_seconds}))
"""


UPSTREAM = """
import json, sys, time
from confluent_kafka import Consumer, TopicPartition
servers, topic, total, deadline = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = Consumer({"bootstrap.servers": servers, "group.id": "upstream-" + topic,
              "enable.auto.commit": False, "fetch.wait.max.ms": 10,
              "fetch.queue.backoff.ms": 10})
c.assign([TopicPartition(topic, p, 0) for p in range(4)])
print("ready", flush=True)
lat, end = [], time.monotonic() + deadline
while len(lat) < total and time.monotonic() < end:
    for m in c.consume(1000, timeout=0.1):
        if not m.error():
            lat.append(time.time() - m.timestamp()[1] / 1000)
lat.sort()
q = lambda p: lat[max(int(p * len(lat) + 0.999999) - 1, 0)] if lat else float("nan")
print(json.dumps({"received": len(lat), "p50": q(0.5), "p99": q(0.99)}))
"""


def pct(values: list[float], q: float) -> float:
    """The q-quantile by nearest rank (p99 of 100 values is the 99th, of 50 the largest)."""
    s = sorted(values)
    return s[max(math.ceil(q * len(s)) - 1, 0)]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def start_ingest(
    broker: str,
    topic: str,
    table: str,
    max_rows: int,
    max_latency: float,
    total: int,
    poll: float,
    deadline: float,
) -> subprocess.Popen[str]:
    """The ingest process, once its partitions are assigned; it stops once
    the table holds ``total`` rows, or after ``deadline`` seconds."""
    knobs = [str(v) for v in (max_rows, max_latency, total, poll, deadline)]
    return spawn("the ingest", INGEST, broker, topic, table, *knobs)


def spawn(what: str, code: str, *args: str) -> subprocess.Popen[str]:
    """`code` run in a process of its own, once it prints "ready"."""
    p = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    if p.stdout.readline().strip() != "ready":
        p.wait()
        raise SystemExit(f"{what} did not start")
    return p


def finish(p: subprocess.Popen[str], what: str = "the ingest") -> dict[str, Any]:
    """The JSON line `p` printed last."""
    out, _ = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"{what} failed (exit {p.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def produce(broker: str, topic: str, rate: float, count: int, log: str = "") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PRODUCE, broker, topic, str(rate), str(count), log],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit("the producer failed")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def commits_run(broker: str, work: Path, args: argparse.Namespace) -> list[tuple[str, bool]]:
    import kafkalake

    n, window = args.commits, args.window
    total = n * args.batch
    rate = args.batch * args.commit_rate
    topic = f"longrun-commits-{uuid.uuid4().hex[:6]}"
    kafkalake.admin.create_topic(topic, bootstrap_servers=broker, partitions=4)
    print(
        f"1. commits: {n:,} commits of {args.batch:,} IoT rows on one table "
        f"({total:,} events at {rate:,.0f}/s, about {total / rate / 60:.1f} min)"
    )
    ingest = start_ingest(
        broker, topic, str(work / "commits"), args.batch, 5.0, total, args.poll, 6 * 3600
    )
    sent = produce(broker, topic, rate, total)
    r = finish(ingest)
    lat: list[float] = r["latencies"]
    print(
        f"   produced {sent['acknowledged']:,} at {sent['rate']:,.0f}/s; ingested {r['rows']:,} "
        f"rows in {r['commits']:,} commits, {r['seconds']:.0f} s, "
        f"{r['cpu'] / max(r['rows'], 1) * 1e6:.1f} CPU-s per M rows"
    )
    if r["timed_out"] or r["rows"] < total:
        print(f"   NOTE: the ingest stopped with {r['rows']:,} of {total:,} rows")
    if r["merged"]:
        print(f"   {r['merged']} commits were seen together by a poll and got their mean")
    found: list[tuple[str, bool]] = []
    if len(lat) < 2 * window:
        print(f"   only {len(lat)} commit latencies: need {2 * window} for first and last {window}")
        return [(f"{2 * window} commits measured", False)]
    first, last = lat[:window], lat[-window:]

    def line(what: str, xs: list[float]) -> str:
        return (
            f"   {what:<24} p50 {pct(xs, 0.5) * 1000:7.1f} ms   p99 {pct(xs, 0.99) * 1000:7.1f} ms"
        )

    print(line(f"first {window} commits", first))
    print(line(f"last {window} commits", last))
    print(line(f"all {len(lat):,} commits", lat))
    print(
        f"   {'engine, whole run':<24} p50 {r['commit_p50'] * 1000:7.1f} ms   "
        f"p99 {r['commit_p99'] * 1000:7.1f} ms   (its histogram, within 25 %)"
    )
    if r["engine_100"]:
        c, p50, p99 = r["engine_100"]
        print(
            f"   {f'engine, first {c:.0f}':<24} p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms"
        )
    print(f"   peak RSS {r['rss_mb']:,.0f} MB")
    growth = pct(last, 0.99) / pct(first, 0.99)
    found.append(
        (
            f"commit p99 of the last {window} {growth:.2f}x that of the first {window} (<= 1.5x)",
            growth <= 1.5,
        )
    )
    found.append((f"peak RSS {r['rss_mb']:,.0f} MB (<= 1,024 MB)", r["rss_mb"] <= 1024))
    return found


def watch(log_dir: Path, ingest: subprocess.Popen[str]) -> list[tuple[float, dict[int, int]]]:
    """(time seen, {partition: last offset}) of each table version, until the
    ingest process ends."""
    seen: list[tuple[float, dict[int, int]]] = []
    version = 0
    while True:
        path = log_dir / f"{version:020d}.json"
        if path.exists():
            t = time.time()
            offsets: dict[int, int] = {}
            for text in path.read_text().splitlines():
                action = json.loads(text)
                if "txn" in action:
                    txn = action["txn"]
                    offsets[int(txn["appId"].rsplit("-", 1)[1])] = int(txn["version"])
            seen.append((t, offsets))
            version += 1
            continue
        if ingest.poll() is not None:
            return seen
        time.sleep(0.02)


def e2e_run(broker: str, work: Path, args: argparse.Namespace) -> list[tuple[str, bool]]:
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    import kafkalake

    rate, seconds, max_latency = args.e2e_rate, args.e2e_seconds, 1.0
    total = int(rate * seconds)
    topic = f"longrun-e2e-{uuid.uuid4().hex[:6]}"
    kafkalake.admin.create_topic(topic, bootstrap_servers=broker, partitions=4)
    print(
        f"2. end-to-end: {rate:,.0f} IoT events/s for {seconds:,.0f} s, "
        f"ingested with max_latency={max_latency:g}"
    )
    table = work / "e2e"
    ingest = start_ingest(
        broker, topic, str(table), 100_000, max_latency, total, 0.0, seconds + 120
    )
    log = str(work / "delivery.parquet")
    result: dict[str, Any] = {}

    def send() -> None:
        try:
            result.update(produce(broker, topic, rate, total, log))
        except SystemExit as e:
            result["error"] = str(e)

    sender = threading.Thread(target=send)
    sender.start()
    versions = watch(table / "_delta_log", ingest)
    sender.join()
    r = finish(ingest)
    if "error" in result:
        raise SystemExit(result["error"])
    print(
        f"   produced {result['acknowledged']:,} at {result['rate']:,.0f}/s; ingested "
        f"{r['rows']:,} rows in {r['commits']:,} commits"
    )
    if r["timed_out"] or r["rows"] < total:
        print(f"   NOTE: the ingest stopped with {r['rows']:,} of {total:,} rows")
    sent = pq.read_table(log)
    delivered = sent.filter(pc.is_valid(sent["offset"]))
    found: list[tuple[str, bool]] = []
    p99 = r["e2e_p99"]
    print(
        f"   engine (Kafka timestamp → commit): p50 {r['e2e_p50']:.2f} s, p99 {p99:.2f} s "
        "(its histogram, within 25 %)"
    )
    found.append((f"end-to-end p99 {p99:.2f} s (<= {max_latency + 1:g} s)", p99 <= max_latency + 1))
    # From outside: each message's first visible version.
    latencies, stamps = [], []
    part = np.asarray(delivered["partition"])
    offset = np.asarray(delivered["offset"])
    stamp = np.asarray(pc.cast(delivered["timestamp"], pa.timestamp("us")).cast(pa.int64())) / 1e6
    unseen = 0
    for p in np.unique(part):
        mine = part == p
        at = [(t, o[int(p)]) for t, o in versions if int(p) in o]
        times = np.array([t for t, _ in at])
        last = np.array([o for _, o in at])
        idx = np.searchsorted(last, offset[mine], side="left")
        ok = idx < len(last)
        unseen += int((~ok).sum())
        latencies.append(times[idx[ok]] - stamp[mine][ok])
        stamps.append(stamp[mine][ok])
    lat = np.concatenate(latencies) if latencies else np.array([])
    if len(lat):
        q50, q99 = np.quantile(lat, [0.5, 0.99])
        print(
            f"   measured (Kafka timestamp → version seen in _delta_log, {len(lat):,} rows): "
            f"p50 {q50:.2f} s, p99 {q99:.2f} s"
            + (f"; {unseen:,} rows never seen" if unseen else "")
        )
        found.append(
            (
                f"end-to-end p99 measured from outside {q99:.2f} s (<= {max_latency + 1:g} s)",
                q99 <= max_latency + 1,
            )
        )
        # Where in the run the slow rows were: p99 by 30 s of Kafka time.
        at = np.concatenate(stamps)
        at = at - at.min()
        slices = []
        for start in range(0, math.ceil(at.max()) + 1, 30):
            inside = lat[(at >= start) & (at < start + 30)]
            if len(inside):
                slices.append(f"{start}-{start + 30} s: {np.quantile(inside, 0.99):.2f}")
        print("   p99 by 30 s of the run: " + ", ".join(slices))
    print(f"   peak RSS {r['rss_mb']:,.0f} MB")
    return found


def upstream_run(broker: str, args: argparse.Namespace) -> None:
    """What the end-to-end figure holds before any consumer: the same
    producer, rate and broker, read by a plain confluent-kafka consumer
    that only notes when each message arrives (no target: a reference)."""
    import kafkalake

    rate, seconds = args.e2e_rate, args.e2e_seconds
    total = int(rate * seconds)
    topic = f"longrun-upstream-{uuid.uuid4().hex[:6]}"
    kafkalake.admin.create_topic(topic, bootstrap_servers=broker, partitions=4)
    print(
        f"3. upstream reference: {rate:,.0f} IoT events/s for {seconds:,.0f} s, read by a plain "
        "confluent-kafka consumer"
    )
    what = "the reference consumer"
    p = spawn(what, UPSTREAM, broker, topic, str(total), str(seconds + 120))
    produce(broker, topic, rate, total)
    r = finish(p, what)
    print(
        f"   Kafka timestamp → message received ({r['received']:,} of {total:,}): "
        f"p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s"
    )
    print("   (the producer, the broker and the fetch: in every end-to-end figure above)")


def main() -> None:
    import kafkalake

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--broker", help="host:port (default: start tansu)")
    ap.add_argument("--commits", type=int, default=3600)
    ap.add_argument("--batch", type=int, default=500, help="rows per commit")
    ap.add_argument("--commit-rate", type=float, default=10.0, help="commits per second")
    ap.add_argument("--window", type=int, default=100, help="first and last commits compared")
    ap.add_argument("--poll", type=float, default=0.01, help="seconds between metric reads")
    ap.add_argument("--e2e-rate", type=float, default=10_000.0)
    ap.add_argument("--e2e-seconds", type=float, default=180.0)
    ap.add_argument("--only", choices=("commits", "e2e", "upstream"))
    ap.add_argument(
        "--engine",
        choices=("sqlite", "memory"),
        default="sqlite",
        help="tansu's storage engine when no --broker is given (default sqlite)",
    )
    ap.add_argument("--quick", action="store_true", help="scaled down: 300 commits, 20 s e2e")
    args = ap.parse_args()
    if args.quick:
        args.commits, args.batch, args.e2e_seconds = 300, 200, 20.0
    if args.commits < 2 * args.window:
        ap.error(f"--commits must be at least twice --window ({2 * args.window})")
    work = Path(tempfile.mkdtemp(prefix="kafkalake-longrun-bench-"))
    found: list[tuple[str, bool]] = []
    try:
        with _broker.broker(args.broker, work, args.engine) as broker:
            where = "given" if args.broker else f"tansu, {args.engine} engine"
            print(
                f"kafkalake {kafkalake.__version__}, broker {broker} ({where}), "
                f"{os.cpu_count()} cores\n"
            )
            if args.only in (None, "commits"):
                found += commits_run(broker, work, args)
                print()
            if args.only in (None, "e2e"):
                found += e2e_run(broker, work, args)
                print()
            if args.only in (None, "upstream"):
                upstream_run(broker, args)
                print()
            print("targets:")
            for text, ok in found:
                print(f"  {verdict(ok):<7}  {text}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
