"""Ingest benchmark: kafkalake against the usual Python consumer and against
kafka-delta-ingest, same broker, same topics, same rounds.

    python bench/ingest_bench.py [--broker host:port] [--iot 500000] [--search 1000000]
        [--rounds 3] [--fills kafkalake,confluent] [--digits real,short]
        [--profiles iot,search] [--skip-peer | --peer PATH] [--peer-stall 30]

Topics. Each profile's events are written to a fresh topic of 4 partitions in
each of these ways ("fills"), so the contenders meet the record batches real
producers make:

- kafkalake: kafkalake.produce (its defaults: idempotent, its own batching);
- confluent: a plain confluent_kafka.Producer with its usual settings
  (linger.ms = 20, everything else librdkafka's default), sending the same
  keys and values (kafkalake.generate(profile, n, format="messages"), the
  bytes kafkalake.produce sends).

and, for IoT, with two kinds of numbers ("digits"):

- real: as generated: 15-17 significant digits per reading, what real
  sensors' float64 readings look like once a JSON encoder wrote them;
- short: every number with a fraction rounded to 2, 3 or 4 decimals (in turn,
  by position), re-serialised with orjson in the bench before producing (for
  the kafkalake fill: kafkalake.produce_arrow of those messages).

Contenders, each ingesting the whole topic into a fresh Delta table until
caught up, in its own process (so CPU time and peak memory are its own;
peak RSS is the process's VmHWM):

- kafkalake.ingest(...) (100,000 rows or 5 s per batch);
- baseline: confluent-kafka consumer + orjson + pyarrow + deltalake.write_deltalake,
  batching the same way, fetch.wait.max.ms = 10;
- baseline+: the same with fetch.queue.backoff.ms = 10, which kafkalake sets
  by default (librdkafka's 1000 ms pauses fetching for a second whenever the
  local queue filled up while a batch was being written);
- kafka-delta-ingest (commit c6d42de, built once by bench/peers.sh into the
  cache; skipped with the reason when it cannot build, or with --skip-peer):
  `ingest TOPIC TABLE -l 5 -m 100000 -c -K fetch.wait.max.ms=10
  -K fetch.queue.backoff.ms=10` (-c: a checkpoint every 10th commit, as
  kafkalake writes). It cannot create a table: each of its tables is created
  empty first, with the schema of kafkalake's table of the same topic (from
  the first round, where kafkalake runs first), so both write the same
  columns. It has no "until caught up": its -e (end at the latest offsets)
  stops at the message whose offset equals the high watermark read at
  start and exits without writing the rows it holds in memory; tansu 0.6
  reports that watermark as the last record batch's base offset + 1, so
  there it stops before the end, and on Kafka (watermark = last offset + 1)
  no message in the topic has it. So it runs as the daemon it is, and a
  wrapper process watches its table's log and stops it (SIGTERM) once the
  table holds every event: its time is the time until its last row was
  committed (its last batch waits for its 5 s latency timer, as a running
  kafka-delta-ingest's does). With nothing new for --peer-stall seconds (30)
  it is stopped as it is and marked short. Its CPU time and peak RSS are the binary's own (wait4).

Each contender runs --rounds times (3), in a rotated order so none is always
the first after the topic was filled. The rows each contender's table holds
are counted with deltalake afterwards: a contender that wrote fewer rows
than the topic holds is marked "short", and its events/s and CPU per
million events are computed on the rows it wrote. For each topic it prints
the median of the rounds: rows, seconds, events/s, CPU-seconds per million
events, p50/p99 commit latency (kafka-delta-ingest reports none), peak RSS;
the ratios of the medians (against the baseline, and against baseline+ in
brackets) with the lowest and highest per-round ratio; then the targets with
their figures and met / NOT MET:

- IoT: at most 2.5 CPU-seconds per million events (kafkalake);
- at least 5x less CPU per event than the Python pipeline and at least 3x
  its wall-clock speed (baseline; baseline+ in brackets);
- ahead of kafka-delta-ingest on speed, CPU per event and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import _broker  # bench/_broker.py (the script's own folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent

# This process's own peak RSS: ru_maxrss of a child started with vfork/exec
# keeps the parent's peak as a floor, VmHWM does not.
VMHWM = "next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024"

FILL = """
import json, sys, time
from datetime import UTC, datetime
import kafkalake, orjson, pyarrow as pa
servers, topic, profile, n, fill, digits = sys.argv[1:7]
n = int(n)
kafkalake.admin.create_topic(topic, bootstrap_servers=servers, partitions=4)

def shorten(x, i):
    if isinstance(x, float):
        return round(x, 2 + i[0] % 3)
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            i[0] += 1
            out[k] = shorten(v, i)
        return out
    if isinstance(x, list):
        return [shorten(v, i) for v in x]
    return x

t0 = time.perf_counter()
if fill == "kafkalake" and digits == "real":
    r = kafkalake.produce(profile, topic, bootstrap_servers=servers, count=n,
                          start_time=datetime(2026, 1, 1, tzinfo=UTC), duplicate_ratio=0.0,
                          create_topic=False, progress=False)
    acked, size = r.acknowledged, r.bytes
else:
    msgs = pa.table(kafkalake.generate(profile, n, duplicate_ratio=0.0, format="messages"))
    keys = msgs.column("key").to_pylist()
    values = msgs.column("value").to_pylist()
    del msgs
    if digits == "short":
        values = [orjson.dumps(shorten(orjson.loads(v), [j])) for j, v in enumerate(values)]
    if fill == "kafkalake":
        r = kafkalake.produce_arrow(pa.table({"key": keys, "value": values}), topic,
                                    bootstrap_servers=servers, key_column="key",
                                    value_column="value", create_topic=False, progress=False)
        acked, size = r.acknowledged, r.bytes
    else:
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": servers, "linger.ms": 20})
        failed = []
        def delivered(err, msg):
            if err is not None:
                failed.append(str(err))
        for k, v in zip(keys, values):
            while True:
                try:
                    p.produce(topic, v, k, on_delivery=delivered)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
        unacknowledged = p.flush(120)
        acked = n - len(failed) - unacknowledged
        size = sum(map(len, values)) + sum(len(k) for k in keys if k)
print(json.dumps({"acknowledged": acked, "bytes": size, "seconds": time.perf_counter() - t0,
                  "sample": (orjson.loads(values[0]) if fill != "kafkalake" or digits != "real"
                             else None)}))
"""

KAFKALAKE = f"""
import json, sys, time, kafkalake
servers, topic, table = sys.argv[1:4]
t0 = time.perf_counter()
r = kafkalake.ingest(topic, table, bootstrap_servers=servers, max_rows=100_000, max_latency=5.0,
                     progress=False)
import resource
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"messages": r.messages, "rows": r.rows, "seconds": time.perf_counter() - t0,
                  "p50": r.commit_p50_seconds, "p99": r.commit_p99_seconds,
                  "cpu": u.ru_utime + u.ru_stime, "rss_mb": {VMHWM}}}))
"""

BASELINE = f"""
import json, math, sys, time, statistics
import orjson, pyarrow as pa
from confluent_kafka import Consumer
from deltalake import write_deltalake
servers, topic, table, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = json.loads(sys.argv[5])
c = Consumer({{"bootstrap.servers": servers, "group.id": "baseline-" + table,
              "auto.offset.reset": "earliest", "enable.auto.commit": False,
              "fetch.wait.max.ms": 10, **extra}})
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
print(json.dumps({{"messages": seen, "rows": seen, "seconds": time.perf_counter() - t0,
                  "p50": statistics.median(lat), "p99": lat[math.ceil(0.99 * len(lat)) - 1],
                  "cpu": u.ru_utime + u.ru_stime, "rss_mb": {VMHWM}}}))
"""

# kafka-delta-ingest runs as the daemon it is (without -e, see the docstring)
# while this wrapper watches its table's log; once the table holds every event
# (or nothing new came for --peer-stall seconds) it is stopped. Its CPU time
# and peak RSS come from wait4 on it (ru_maxrss's floor is this small
# wrapper's peak: deltalake is not imported here).
PEER = """
import json, os, signal, subprocess, sys, time
binary, servers, topic, table, log, n, stall = sys.argv[1:8]
n, stall = int(n), float(stall)
app = "kdi-" + os.path.basename(table)
cmd = [binary, "ingest", topic, table, "-k", servers, "-g", app, "-a", app, "-l", "5",
       "-m", "100000", "-c", "-K", "fetch.wait.max.ms=10", "-K", "fetch.queue.backoff.ms=10"]
rows, version, ended = 0, 1, "complete"
with open(log, "wb") as out:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    progress = time.monotonic()
    while rows < n:
        path = os.path.join(table, "_delta_log", f"{version:020d}.json")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    add = json.loads(line).get("add")
                    if add and add.get("stats"):
                        rows += json.loads(add["stats"]).get("numRecords", 0)
            version, progress = version + 1, time.monotonic()
            continue
        pid, status, u = os.wait4(p.pid, os.WNOHANG)
        if pid:
            ended = f"exited by itself ({os.waitstatus_to_exitcode(status)})"
            break
        if time.monotonic() - progress > stall:
            ended = f"stalled: nothing new for {stall:g} s"
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    if not ended.startswith("exited"):
        p.send_signal(signal.SIGTERM)
        give_up = time.monotonic() + 10
        while True:
            pid, status, u = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > give_up:
                p.kill()
                _, status, u = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped above
print(json.dumps({"messages": None, "rows": rows, "seconds": seconds, "p50": None, "p99": None,
                  "cpu": u.ru_utime + u.ru_stime, "rss_mb": u.ru_maxrss / 1024, "ended": ended}))
"""


def run(code: str, *args: str) -> dict[str, Any]:
    """Run a contender (or a fill) in its own process; it reports its own
    figures as JSON on its last line of output."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        out.check_returncode()
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def table_rows(table: str) -> int:
    """Rows the Delta table holds (0 when there is no table), from its files' footers."""
    from deltalake import DeltaTable

    if not (Path(table) / "_delta_log").is_dir():
        return 0
    rows: int = DeltaTable(table).to_pyarrow_dataset().count_rows()
    return rows


def create_like(source: str, target: str) -> None:
    """An empty Delta table at ``target`` with ``source``'s schema."""
    import pyarrow as pa  # type: ignore[import-untyped]
    from deltalake import DeltaTable, write_deltalake

    schema = pa.schema(DeltaTable(source).schema().to_arrow())
    write_deltalake(target, schema.empty_table())


def find_peer(given: str | None) -> tuple[str | None, str]:
    """(kafka-delta-ingest binary or None, why not)."""
    if given:
        return (given, "") if os.access(given, os.X_OK) else (None, f"{given} is not executable")
    print(
        "kafka-delta-ingest: bench/peers.sh (the first time, it builds it into the cache: "
        "about 15 minutes on 2 idle cores) ...",
        file=sys.stderr,
    )
    out = subprocess.run(
        [str(ROOT / "bench" / "peers.sh")],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        tail = "\n  ".join(out.stderr.strip().splitlines()[-12:])
        return None, f"bench/peers.sh could not build it:\n  {tail}"
    return out.stdout.strip().splitlines()[-1], ""


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main() -> None:
    import kafkalake

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--broker", help="host:port (default: start tansu)")
    ap.add_argument("--iot", type=int, default=500_000, help="IoT events per topic")
    ap.add_argument("--search", type=int, default=1_000_000, help="search events per topic")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profiles", default="iot,search", help="of iot, search")
    ap.add_argument("--fills", default="kafkalake,confluent", help="of kafkalake, confluent")
    ap.add_argument("--digits", default="real,short", help="of real, short (IoT topics)")
    ap.add_argument("--skip-peer", action="store_true", help="leave kafka-delta-ingest out")
    ap.add_argument("--peer", help="kafka-delta-ingest binary (default: bench/peers.sh's)")
    ap.add_argument(
        "--peer-stall",
        type=float,
        default=30.0,
        help="stop kafka-delta-ingest after this many seconds without a new commit",
    )
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    sizes = {"iot": args.iot, "search": args.search}
    profiles = [p for p in args.profiles.split(",") if p]
    fills = [f for f in args.fills.split(",") if f]
    digits = [d for d in args.digits.split(",") if d]
    for what, given, allowed in (
        ("--profiles", profiles, sizes),
        ("--fills", fills, ("kafkalake", "confluent")),
        ("--digits", digits, ("real", "short")),
    ):
        if not given or any(g not in allowed for g in given):
            ap.error(f"{what} takes a comma-separated list of {', '.join(allowed)}")
    peer, why = (None, "--skip-peer") if args.skip_peer else find_peer(args.peer)

    work = Path(tempfile.mkdtemp(prefix="kafkalake-ingest-bench-"))
    try:
        with _broker.broker(args.broker, work) as broker:
            targets: list[tuple[str, str, bool]] = []
            problems: list[str] = []
            print(f"kafkalake {kafkalake.__version__}, broker {broker}, {args.rounds} rounds")
            print(f"kafka-delta-ingest: {peer or 'skipped: ' + why}\n")
            for profile in profiles:
                n = sizes[profile]
                for fill in fills:
                    for kind in digits if profile == "iot" else ["real"]:
                        label = f"{profile}/{fill}/{kind}"
                        found, notes = bench_topic(
                            broker, work, profile, n, fill, kind, args.rounds, peer, args.peer_stall
                        )
                        targets.extend((label, text, ok) for text, ok in found)
                        problems.extend(f"{label}: {note}" for note in notes)
            print("targets (medians of the rounds):")
            for label, text, ok in targets:
                print(f"  {label:<22} {verdict(ok):<7}  {text}")
            if peer is None:
                print(
                    f"  (kafka-delta-ingest not run, {why.splitlines()[0]}: its target not checked)"
                )
            missed = sum(not ok for _, _, ok in targets)
            print(
                f"\n{len(targets) - missed} of {len(targets)} targets met"
                + (f", {missed} NOT MET" if missed else "")
            )
            for p in problems:
                print(f"note: {p}")
    finally:
        # The tables (about 1 GB per profile) are of no further use.
        shutil.rmtree(work, ignore_errors=True)


def bench_topic(
    broker: str,
    work: Path,
    profile: str,
    n: int,
    fill: str,
    kind: str,
    rounds_n: int,
    peer: str | None,
    stall: float,
) -> tuple[list[tuple[str, bool]], list[str]]:
    """Fill one topic, run every contender on it --rounds times and print its
    lines; returns the targets (text, met) and the problems found."""
    import kafkalake

    label = f"{profile}/{fill}/{kind}"
    topic = f"bench-{profile}-{fill}-{kind}-{uuid.uuid4().hex[:6]}"
    filled = run(FILL, broker, topic, profile, str(n), fill, kind)
    if filled["acknowledged"] != n:
        raise SystemExit(f"{label}: only {filled['acknowledged']:,} of {n:,} events were produced")
    tuned = json.dumps({"fetch.queue.backoff.ms": 10})
    contenders: list[tuple[str, str, list[str]]] = [
        ("kafkalake", KAFKALAKE, []),
        ("baseline", BASELINE, [str(n), "{}"]),
        ("baseline+", BASELINE, [str(n), tuned]),
    ]
    if peer:
        contenders.append(("kdi", PEER, []))
    rounds: list[dict[str, dict[str, Any]]] = []
    problems: list[str] = []
    schema_of: str | None = None  # kafkalake's first table, kept until kdi's are created
    for i in range(rounds_n):
        shift = i % len(contenders)
        this: dict[str, dict[str, Any]] = {}
        for name, code, extra in contenders[shift:] + contenders[:shift]:
            table = str(work / f"{profile}-{fill}-{kind}-{name}-{i}")
            if name == "kdi":
                assert peer is not None and schema_of is not None
                create_like(schema_of, table)
                r = run(code, peer, broker, topic, table, table + ".log", str(n), str(stall))
                if r["ended"] != "complete":
                    log = Path(table + ".log").read_text(errors="replace").strip().splitlines()
                    problems.append(
                        f"kafka-delta-ingest {r['ended']} in round {i + 1}"
                        + (f"; its last line: {log[-1]}" if log else "")
                    )
            else:
                r = run(code, broker, topic, table, *extra)
                assert r["messages"] == n, r
            r["rows"] = table_rows(table)
            this[name] = r
            if name == "kafkalake" and schema_of is None:
                schema_of = table
            else:
                shutil.rmtree(table, ignore_errors=True)
        rounds.append(this)
    if schema_of:
        shutil.rmtree(schema_of, ignore_errors=True)
    kafkalake.admin.delete_topics([topic], bootstrap_servers=broker)

    def med(name: str, key: str) -> float | None:
        values = [r[name][key] for r in rounds if r[name][key] is not None]
        return statistics.median(values) if values else None

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f}"

    print(
        f"{label}: {n:,} events, {filled['bytes'] / n:,.0f} bytes each, "
        f"filled in {filled['seconds']:.1f} s"
    )
    if filled.get("sample") and profile == "iot":
        print(f"  e.g. value {filled['sample'].get('value')!r}")
    print(
        f"  {'contender':<10} {'rows':>10} {'wall s':>7} {'events/s':>10} "
        f"{'CPU s/M':>8} {'p50 ms':>7} {'p99 ms':>7} {'peak RSS MB':>11}"
    )
    medians: dict[str, dict[str, float]] = {}
    for name, _, _ in contenders:
        rows = med(name, "rows") or 0.0
        seconds = med(name, "seconds") or 0.0
        cpu = med(name, "cpu") or 0.0
        rss = med(name, "rss_mb") or 0.0
        short = [r[name]["rows"] for r in rounds if r[name]["rows"] < n]
        mark = f"  short: {len(short)} of {len(rounds)} rounds" if short else ""
        if short:
            problems.append(
                f"{name} stopped short in {len(short)} of {len(rounds)} rounds "
                f"({', '.join(f'{s:,}' for s in short)} of {n:,} rows)"
            )
        per = max(rows, 1.0)
        medians[name] = {"rate": rows / seconds if seconds else 0.0, "cpu_m": cpu / per * 1e6}
        medians[name]["rss"] = rss
        medians[name]["seconds"] = seconds
        medians[name]["cpu"] = cpu
        print(
            f"  {name:<10} {rows:>10,.0f} {seconds:>7.1f} {medians[name]['rate']:>10,.0f} "
            f"{medians[name]['cpu_m']:>8.2f} {ms(med(name, 'p50')):>7} {ms(med(name, 'p99')):>7} "
            f"{rss:>11,.0f}{mark}"
        )
    k, b, t = medians["kafkalake"], medians["baseline"], medians["baseline+"]
    wall_b, wall_t = b["seconds"] / k["seconds"], t["seconds"] / k["seconds"]
    cpu_b, cpu_t = b["cpu_m"] / k["cpu_m"], t["cpu_m"] / k["cpu_m"]
    wall = [r["baseline"]["seconds"] / r["kafkalake"]["seconds"] for r in rounds]
    less = [r["baseline"]["cpu"] / r["kafkalake"]["cpu"] for r in rounds]
    print(
        f"  ratios: {wall_b:.1f}x ({wall_t:.1f}x) faster wall-clock, "
        f"{cpu_b:.1f}x ({cpu_t:.1f}x) less CPU per event than the baseline (baseline+)"
    )
    print(
        f"  per round: wall-clock {min(wall):.1f}-{max(wall):.1f}x, "
        f"CPU {min(less):.1f}-{max(less):.1f}x"
    )
    found: list[tuple[str, bool]] = []
    if profile == "iot":
        found.append(
            (f"kafkalake's CPU per million events {k['cpu_m']:.2f} s (<= 2.5)", k["cpu_m"] <= 2.5)
        )
    found.append(
        (
            f"less CPU per event than the Python pipeline {cpu_b:.1f}x (>= 5x; "
            f"baseline+ {cpu_t:.1f}x, {verdict(cpu_t >= 5)})",
            cpu_b >= 5,
        )
    )
    found.append(
        (
            f"wall-clock speed against the Python pipeline {wall_b:.1f}x (>= 3x; "
            f"baseline+ {wall_t:.1f}x, {verdict(wall_t >= 3)})",
            wall_b >= 3,
        )
    )
    if "kdi" in medians:
        p = medians["kdi"]
        short_rounds = sum(r["kdi"]["rows"] < n for r in rounds)
        stopped = f"; it stopped short in {short_rounds} of {len(rounds)}" if short_rounds else ""
        if p["rate"] > 0:
            speed = k["rate"] / p["rate"]
            less_cpu, less_rss = p["cpu_m"] / k["cpu_m"], p["rss"] / k["rss"]
            print(
                f"  against kafka-delta-ingest: {speed:.1f}x the events/s, {less_cpu:.1f}x less "
                f"CPU per event, {less_rss:.1f}x less peak RSS{stopped}"
            )
            found.append(
                (
                    f"ahead of kafka-delta-ingest: {speed:.1f}x speed, {less_cpu:.1f}x less CPU, "
                    f"{less_rss:.1f}x less memory (each > 1x{stopped})",
                    min(speed, less_cpu, less_rss) > 1,
                )
            )
        else:
            found.append(("ahead of kafka-delta-ingest: not measured, it wrote no rows", False))
    print()
    return found, problems


if __name__ == "__main__":
    main()
