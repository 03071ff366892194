"""Background jobs: a producer and an ingest running at once while the test
reads the table, stop and wait, errors that surface, bad arguments that fail
at once, Ctrl-C and process exit stopping every job, and a pipeline run in
the background. Against the real broker (tansu); tables read with DuckDB."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from deltalake import write_deltalake

import kafkalake
from conftest import create_topic, duckdb_delta, wait_until
from kafkalake.exceptions import IncompleteError, InvalidArgumentError, KafkalakeError


def table_rows(table: Path) -> int:
    if not (table / "_delta_log").exists():
        return 0
    return int(duckdb_delta(table, "SELECT count(*) AS n FROM t").column("n")[0].as_py())


@pytest.mark.broker
def test_a_producer_and_an_ingest_job_at_once(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    create_topic(durable_broker, topic, 4)
    table = tmp_path / "bronze"
    total = 60_000
    producer = kafkalake.start_produce(
        "iot", topic, bootstrap_servers=durable_broker, count=total, rate=6_000
    )
    with kafkalake.start_ingest(
        topic,
        table,
        bootstrap_servers=durable_broker,
        until="forever",
        max_latency=0.5,
        metadata_columns=True,
    ) as ingest:
        assert producer.running and ingest.running
        assert producer.report is None and ingest.report is None
        # The table fills while both run; the test reads it meanwhile.
        wait_until("rows in the table", lambda: table_rows(table) > 0)
        during = table_rows(table)
        assert producer.running, "the producer finished before the table was read"
        assert 0 < during < total
        m = ingest.metrics()
        assert m["kind"] == "ingest" and m["running"] and m["error"] is None
        assert m["messages"] >= during and m["messages_per_second"] > 0
        assert sorted(p["partition"] for p in m["partitions"]) == [0, 1, 2, 3]
        assert all(p["position"] <= p["log_end"] for p in m["partitions"])
        assert m["commit_p50_seconds"] > 0 and m["end_to_end_p99_seconds"] > 0
        pm = producer.metrics()
        assert pm["kind"] == "produce" and pm["acknowledged"] > 0
        assert pm["acknowledged_per_second"] > 0
        sent = producer.wait(300)
        assert sent.acknowledged == total and not producer.running
        wait_until("every message read", lambda: ingest.metrics()["messages"] >= total)
        report = ingest.stop()
    assert not ingest.running and report.interrupted
    assert report.messages == report.rows == total
    assert ingest.report == report
    # Exactly the produced offsets, read by a reader that is not delta-rs.
    got = duckdb_delta(
        table,
        "SELECT count(*) AS n, count(DISTINCT (_partition, _offset)) AS d FROM t",
    ).to_pylist()
    assert got == [{"n": total, "d": total}]


def test_two_long_running_workers_of_one_group_on_the_embedded_cluster(
    tmp_path: Path,
) -> None:
    """A worker that has read every partition to its end, joined by a second
    one: both keep running and share the partitions, and the rows are exactly
    the produced offsets. (The embedded cluster's consumer-group protocol
    pauses and resumes partitions at each rebalance, from where the reader
    says it is: a position past a partition's end stopped both workers.)"""
    table = tmp_path / "bronze"
    with kafkalake.EmbeddedKafka(partitions=4, topics=["telemetry"]) as kafka:
        bs = kafka.bootstrap_servers
        kafkalake.produce("iot", "telemetry", bootstrap_servers=bs, count=2_000)
        common = dict(bootstrap_servers=bs, group_id="workers", until="forever", max_latency=0.2)
        first = kafkalake.start_ingest("telemetry", table, metadata_columns=True, **common)
        wait_until("the first worker at every partition's end", lambda: table_rows(table) == 2_000)
        second = kafkalake.start_ingest("telemetry", table, metadata_columns=True, **common)

        def metrics() -> tuple[dict, dict]:
            a, b = first.metrics(), second.metrics()
            assert a["error"] is None and b["error"] is None, (a["error"], b["error"])
            return a, b

        wait_until(
            "both workers holding partitions", lambda: all(m["partitions"] for m in metrics())
        )
        kafkalake.produce("iot", "telemetry", bootstrap_servers=bs, count=2_000)
        wait_until("every message in the table", lambda: metrics() and table_rows(table) == 4_000)
        assert first.running and second.running
        first.stop()
        second.stop()
    got = duckdb_delta(
        table, "SELECT count(*) AS n, count(DISTINCT (_partition, _offset)) AS d FROM t"
    ).to_pylist()
    assert got == [{"n": 4_000, "d": 4_000}]


@pytest.mark.broker
def test_errors_in_the_background_surface_on_wait_report_and_metrics(
    durable_broker: str, topic: str
) -> None:
    job = kafkalake.start_produce(
        "iot", topic, bootstrap_servers=durable_broker, count=10, create_topic=False
    )
    with pytest.raises(KafkalakeError, match=topic):
        job.wait(120)
    assert not job.running
    assert isinstance(job.error, KafkalakeError)
    with pytest.raises(KafkalakeError):
        _ = job.report
    assert topic in job.metrics()["error"]
    assert "failed" in repr(job)


@pytest.mark.broker
def test_bad_arguments_fail_at_start_before_any_work(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgumentError, match="max_rows"):
        kafkalake.start_ingest(topic, tmp_path / "t", bootstrap_servers=durable_broker, max_rows=0)
    with pytest.raises(InvalidArgumentError, match="count"):
        kafkalake.start_produce("iot", topic, bootstrap_servers=durable_broker, count=-1)
    # An unreachable broker fails within connect_timeout, at start.
    with pytest.raises(KafkalakeError):
        kafkalake.start_ingest(
            topic, tmp_path / "t", bootstrap_servers="127.0.0.1:1", connect_timeout=2
        )
    assert kafkalake.jobs.running() == []
    assert not (tmp_path / "t").exists()


SCRIPT = """
import atexit, json, os, signal, sys, time
import kafkalake

servers, topic, table, mode = sys.argv[1:]
holder = {}

def show():
    r = holder["job"].report
    print(json.dumps({"messages": r.messages, "rows": r.rows, "interrupted": r.interrupted}))

# Registered before the job starts, so it runs after kafkalake's exit hook.
if mode == "exit":
    atexit.register(show)
holder["job"] = job = kafkalake.start_ingest(
    topic, table, bootstrap_servers=servers, until="forever", max_latency=0.3
)
while job.metrics()["rows"] < 1000:
    time.sleep(0.05)
if mode == "sigint":
    # Inside the try before saying so: the signal may come at once.
    try:
        print("running", flush=True)
        time.sleep(600)
    except KeyboardInterrupt:
        job.wait(60)
        show()
else:
    print("running", flush=True)
"""


@pytest.mark.broker
@pytest.mark.parametrize("mode", ["sigint", "exit"])
def test_ctrl_c_and_process_exit_stop_every_job(
    durable_broker: str, topic: str, tmp_path: Path, mode: str
) -> None:
    create_topic(durable_broker, topic, 2)
    kafkalake.produce("iot", topic, bootstrap_servers=durable_broker, count=5_000, progress=False)
    table = tmp_path / "bronze"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), durable_broker, topic, str(table), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "running", (
            proc.stderr.read() if proc.stderr else ""
        )
        if mode == "sigint":
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["interrupted"]
    # Stopped cleanly: what the job read is committed, once.
    assert report["rows"] == report["messages"] == table_rows(table) >= 1000


def test_a_pipeline_job_runs_until_stopped(tmp_path: Path) -> None:
    import pyarrow as pa

    src = tmp_path / "bronze"
    write_deltalake(src, pa.table({"id": list(range(100)), "v": [i % 7 for i in range(100)]}))
    doc = {
        "bronze": {"src": {"table": str(src), "topics": ["unused"], "bootstrap_servers": "x:1"}},
        "silver": {
            "s": {"from": "bronze.src", "table": str(tmp_path / "silver"), "where": "v < 5"}
        },
    }
    job = kafkalake.pipeline.start(doc, stage="silver.s", until="forever", poll_interval=0.05)
    silver = tmp_path / "silver"

    def silver_rows() -> int:
        return table_rows(silver)

    wait_until("the first pass", lambda: silver_rows() == sum(1 for i in range(100) if i % 7 < 5))
    write_deltalake(src, pa.table({"id": [1000, 1001], "v": [1, 6]}), mode="append")
    wait_until("the new version", lambda: silver_rows() == 73)
    m = job.metrics()
    assert m["kind"] == "pipeline" and m["running"] and m["cycles"] >= 2
    report = job.stop()
    assert report.interrupted and report.cycles >= 2
    assert "silver.s" in report.stages
    assert not job.running and silver_rows() == 73


class _Kernel:
    """A real Jupyter kernel (ipykernel) driven as a notebook front end drives it."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 120) -> tuple[str, str | None]:
        """Run a cell; its stdout and the name of the error it ended with, if any."""
        out: list[str] = []
        error: list[str] = []

        def hook(msg: dict[str, object]) -> None:
            content = msg["content"]
            assert isinstance(content, dict)
            if msg["msg_type"] == "stream" and content.get("name") == "stdout":
                out.append(str(content["text"]))
            elif msg["msg_type"] == "error":
                error.append(str(content["ename"]))

        self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        return "".join(out), (error[0] if error else None)

    def interrupt_when_running(self, code: str, timeout: float = 120) -> str | None:
        """Run a cell that prints ``blocking`` and then blocks; interrupt the
        kernel (the notebook's ■ button) once it has printed; the error the
        cell ended with."""
        msg_id = self.kc.execute(code)
        interrupted = False
        error = None
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and "blocking" in content["text"] and not interrupted:
                self.km.interrupt_kernel()
                interrupted = True
            elif kind == "error":
                error = content["ename"]
            elif kind == "status" and content["execution_state"] == "idle":
                return error

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


KERNEL_SETUP = """
import atexit, json, time
import kafkalake

def show(job, path=None):
    r = job.report
    text = json.dumps({"messages": r.messages, "rows": r.rows, "interrupted": r.interrupted})
    if path:
        open(path, "w").write(text)
    else:
        print(text)
"""


# Waits for the interrupted job; should it still run, prints what every
# thread of the kernel is doing, for the failure's message.
STOPPED_OR_WHY = """
try:
    job.wait(60)
except TimeoutError:
    import sys, traceback
    print("still running 60 s after the interrupt:", job.metrics())
    for ident, frame in sys._current_frames().items():
        print(f"thread {ident}:", "".join(traceback.format_stack(frame)))
    raise
show(job)
print(kafkalake.jobs.running())
"""


@pytest.mark.broker
def test_a_kernel_interrupt_and_a_kernel_restart_stop_every_job(
    durable_broker: str, topic: str, tmp_path: Path
) -> None:
    """In a real Jupyter kernel: interrupting a running cell (the notebook's ■
    button) stops the background jobs, each committing what it read; a
    kernel restart does too, before the kernel process goes."""
    create_topic(durable_broker, topic, 2)
    kafkalake.produce("iot", topic, bootstrap_servers=durable_broker, count=5_000, progress=False)
    kernel = _Kernel(tmp_path)

    def start(table: Path, at_exit: Path | None = None) -> None:
        _, err = kernel.run(KERNEL_SETUP)
        assert err is None
        code = ""
        if at_exit is not None:
            # Registered before kafkalake's own exit hook, so it runs after it.
            code += (
                f"holder = {{}}\natexit.register(lambda: show(holder['job'], {str(at_exit)!r}))\n"
            )
        code += f"""
holder = globals().get("holder", {{}})
job = holder["job"] = kafkalake.start_ingest({topic!r}, {str(table)!r},
    bootstrap_servers={durable_broker!r}, until="forever", max_latency=0.3)
while job.metrics()["rows"] < 1000:
    time.sleep(0.05)
print("running", job.running)
"""
        out, err = kernel.run(code)
        assert (out.strip(), err) == ("running True", None)

    try:
        # A restart: the kernel process exits, and its exit stops the job first.
        done = tmp_path / "report.json"
        start(tmp_path / "a", at_exit=done)
        kernel.km.restart_kernel(now=False)
        assert done.exists(), "the kernel went without stopping the job"
        report = json.loads(done.read_text())
        assert report["interrupted"]
        assert report["rows"] == report["messages"] == table_rows(tmp_path / "a") >= 1000

        # In the restarted kernel, a cell that would block for ten minutes,
        # interrupted as the notebook's ■ button does.
        kernel.kc.wait_for_ready(timeout=120)
        start(tmp_path / "b")
        err = kernel.interrupt_when_running('print("blocking", flush=True); time.sleep(600)')
        assert err == "KeyboardInterrupt"
        out, err = kernel.run(STOPPED_OR_WHY)
        assert err is None, out
        report_line, still_running = out.strip().splitlines()
        report = json.loads(report_line)
        assert report["interrupted"] and still_running == "[]"
        assert report["rows"] == report["messages"] == table_rows(tmp_path / "b") >= 1000
    finally:
        kernel.close()


def test_wait_for_returns_once_the_counters_reach_their_targets(tmp_path: Path) -> None:
    table = tmp_path / "bronze"
    with kafkalake.EmbeddedKafka(partitions=2, topics=["telemetry"]) as kafka:
        bs = kafka.bootstrap_servers
        ingest = kafkalake.start_ingest(
            "telemetry", table, bootstrap_servers=bs, until="forever", max_latency=0.2
        )
        producer = kafkalake.start_produce("iot", "telemetry", bootstrap_servers=bs, count=3_000)
        sent = producer.wait_for(acknowledged=3_000, timeout=120)
        assert sent["acknowledged"] == 3_000
        first = ingest.wait_for(commits=1, timeout=120)
        assert first["commits"] >= 1 and table_rows(table) > 0
        m = ingest.wait_for(rows=3_000, messages=3_000, timeout=120)
        assert m["rows"] == 3_000 and m["running"]
        assert table_rows(table) == 3_000
        # Nothing more comes: the timeout names what is behind, and the job goes on.
        with pytest.raises(TimeoutError, match="rows 3,000 of 3,001"):
            ingest.wait_for(rows=3_001, timeout=0.3)
        assert ingest.running
        report = ingest.stop()
        # A job that ended short of the target will not reach it.
        with pytest.raises(IncompleteError, match="rows 3,000 of 3,001"):
            ingest.wait_for(rows=3_001)
    assert report.rows == 3_000


def test_wait_for_checks_its_targets_before_waiting(tmp_path: Path) -> None:
    with (
        kafkalake.EmbeddedKafka(partitions=1, topics=["telemetry"]) as kafka,
        kafkalake.start_ingest(
            "telemetry", tmp_path / "t", bootstrap_servers=kafka.bootstrap_servers, until="forever"
        ) as ingest,
    ):
        with pytest.raises(InvalidArgumentError, match=r"no counter 'acknowledged'.*rows"):
            ingest.wait_for(acknowledged=1)
        with pytest.raises(InvalidArgumentError, match="needs a target"):
            ingest.wait_for()
        for bad in (-1, 1.5, True):
            with pytest.raises(InvalidArgumentError, match="whole number"):
                ingest.wait_for(rows=bad)
        with pytest.raises(InvalidArgumentError, match="timeout"):
            ingest.wait_for(rows=1, timeout=-1)
        assert ingest.running


@pytest.mark.broker
def test_wait_for_raises_the_error_of_a_job_that_failed(durable_broker: str, topic: str) -> None:
    job = kafkalake.start_produce(
        "iot", topic, bootstrap_servers=durable_broker, count=10, create_topic=False
    )
    with pytest.raises(KafkalakeError, match=topic):
        job.wait_for(acknowledged=10, timeout=120)
