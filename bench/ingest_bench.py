"""Ingest benchmark: kafkalake against the usual Python consumer, same broker, same run.

    python bench/ingest_bench.py [--broker host:port] [--iot 500000] [--search 1000000]

For each profile the topic is filled first, then each contender ingests it
into a fresh Delta table until caught up, in its own process (so CPU time and
peak memory are its own):

- kafkalake.ingest(...)
- baseline: confluent-kafka consumer + orjson + pyarrow + deltalake.write_deltalake,
  batching the same way (100,000 rows or 5 s), fetch.wait.max.ms = 10;
- baseline+: the same with fetch.queue.backoff.ms = 10, which kafkalake sets
  by default (librdkafka's 1000 ms pauses fetching for a second whenever the
  local queue filled up while a batch was being written).

Each contender runs --rounds times (3), in a rotated order so none is always
the first after the topic was filled; each table is fresh. It prints the
median events/s, CPU-seconds per million events, p50/p99 commit latency and
peak RSS of each, the ratios of the medians (against the baseline, and
against baseline+ in brackets) and the lowest and highest per-round ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KAFKALAKE = """
import json, sys, time, kafkalake
servers, topic, table = sys.argv[1:4]
t0 = time.perf_counter()
r = kafkalake.ingest(topic, table, bootstrap_servers=servers, max_rows=100_000, max_latency=5.0,
                     progress=False)
import resource
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"messages": r.messages, "rows": r.rows, "seconds": time.perf_counter() - t0,
                  "p50": r.commit_p50_seconds, "p99": r.commit_p99_seconds,
                  "cpu": u.ru_utime + u.ru_stime, "rss_mb": u.ru_maxrss / 1024}))
"""

BASELINE = """
import json, sys, time, statistics
import orjson, pyarrow as pa
from confluent_kafka import Consumer
from deltalake import write_deltalake
servers, topic, table, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = json.loads(sys.argv[5])
c = Consumer({"bootstrap.servers": servers, "group.id": "baseline-" + table,
              "auto.offset.reset": "earliest", "enable.auto.commit": False,
              "fetch.wait.max.ms": 10, **extra})
c.subscribe([topic])
t0 = time.perf_counter()
rows, seen, latencies, opened = [], 0, [], time.monotonic()
while seen < n:
    for m in c.consume(10_000, timeout=0.5):
        if m.error():
            continue
        rows.append(orjson.loads(m.value()))
        seen += 1
    if rows and (len(rows) >= 100_000 or time.monotonic() - opened >= 5 or seen >= n):
        t = time.perf_counter()
        write_deltalake(table, pa.Table.from_pylist(rows), mode="append")
        c.commit(asynchronous=False)
        latencies.append(time.perf_counter() - t)
        rows, opened = [], time.monotonic()
lat = sorted(latencies)
import resource
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"messages": seen, "rows": seen, "seconds": time.perf_counter() - t0,
                  "p50": statistics.median(lat), "p99": lat[int(0.99 * (len(lat) - 1))],
                  "cpu": u.ru_utime + u.ru_stime, "rss_mb": u.ru_maxrss / 1024}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    """Run a contender in its own process; it reports its own CPU time and peak
    RSS (interpreter start-up and imports included)."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    import kafkalake

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--broker", help="host:port (default: start tansu)")
    ap.add_argument("--iot", type=int, default=500_000)
    ap.add_argument("--search", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="kafkalake-ingest-bench-"))
    broker = (
        args.broker
        or subprocess.run(
            [str(ROOT / "scripts" / "tansu.sh"), "start", str(work / "tansu")],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    try:
        print(f"kafkalake {kafkalake.__version__}, broker {broker}\n")
        print(
            f"{'profile':<8} {'contender':<10} {'events':>9} {'wall s':>7} {'events/s':>10} "
            f"{'CPU s/M':>8} {'p50 ms':>7} {'p99 ms':>7} {'peak RSS MB':>11}"
        )
        for profile, n in (("iot", args.iot), ("search", args.search)):
            topic = f"bench-{profile}-{uuid.uuid4().hex[:6]}"
            kafkalake.produce(
                profile,
                topic,
                bootstrap_servers=broker,
                count=n,
                partitions=4,  # type: ignore[arg-type]
                duplicate_ratio=0.0,
                progress=False,
            )
            tuned = json.dumps({"fetch.queue.backoff.ms": 10})
            contenders = [
                ("kafkalake", KAFKALAKE, []),
                ("baseline", BASELINE, [str(n), "{}"]),
                ("baseline+", BASELINE, [str(n), tuned]),
            ]
            rounds: list[dict[str, dict[str, float]]] = []
            for i in range(args.rounds):
                shift = i % len(contenders)
                this: dict[str, dict[str, float]] = {}
                for name, code, extra in contenders[shift:] + contenders[:shift]:
                    table = str(work / f"{profile}-{name}-{i}")
                    r = run(code, broker, topic, table, *extra)
                    assert r["messages"] == n, r
                    this[name] = r
                rounds.append(this)
            keys = rounds[0]["kafkalake"].keys()
            med = {
                name: {key: statistics.median(r[name][key] for r in rounds) for key in keys}
                for name, _, _ in contenders
            }
            for name, _, _ in contenders:
                r = med[name]
                print(
                    f"{profile:<8} {name:<10} {n:>9,} {r['seconds']:>7.1f} "
                    f"{n / r['seconds']:>10,.0f} {r['cpu'] / n * 1e6:>8.1f} "
                    f"{r['p50'] * 1000:>7.0f} {r['p99'] * 1000:>7.0f} {r['rss_mb']:>11,.0f}"
                )
            k, b, t = med["kafkalake"], med["baseline"], med["baseline+"]
            wall = [r["baseline"]["seconds"] / r["kafkalake"]["seconds"] for r in rounds]
            cpu = [r["baseline"]["cpu"] / r["kafkalake"]["cpu"] for r in rounds]
            print(
                f"{profile:<8} ratios: {b['seconds'] / k['seconds']:.1f}x "
                f"({t['seconds'] / k['seconds']:.1f}x) faster wall-clock, "
                f"{b['cpu'] / k['cpu']:.1f}x ({t['cpu'] / k['cpu']:.1f}x) less CPU per event"
            )
            print(
                f"{profile:<8} per round: wall-clock {min(wall):.1f}-{max(wall):.1f}x, "
                f"CPU {min(cpu):.1f}-{max(cpu):.1f}x\n"
            )
    finally:
        if args.broker is None:
            subprocess.run(
                [str(ROOT / "scripts" / "tansu.sh"), "stop", str(work / "tansu")], check=False
            )
        # The tables (about 1 GB per profile) are of no further use.
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
