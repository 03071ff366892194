"""Delta, Parquet and Capture on Azure Blob Storage (Azurite), exactly once,
read back with the deltalake package and Microsoft's azure-storage-blob SDK;
bad credentials and locations fail before any message is consumed; throttling
and dropped connections are retried without loss or duplicates."""

from __future__ import annotations

import datetime as dt
import http.client
import http.server
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, QueryBuilder

import kafkalake
from conftest import AZURITE_KEY, Azurite, create_topic, read_n, read_topic
from kafkalake.exceptions import InvalidArgumentError, KafkalakeError, StorageError

pytestmark = pytest.mark.broker


@pytest.fixture
def broker(durable_broker: str) -> str:
    return durable_broker


def produce_n(broker: str, topic: str, n: int, partitions: int = 4, seed: int = 3) -> Counter[int]:
    create_topic(broker, topic, partitions)
    kafkalake.produce(
        "iot",
        topic,
        bootstrap_servers=broker,
        count=n,
        duplicate_ratio=0.0,
        seed=seed,
        progress=False,
    )
    return Counter(p for p, _ in read_n(broker, topic, n))


def expected(per_part: Counter[int]) -> list[tuple[int, int]]:
    return sorted((p, o) for p, n in per_part.items() for o in range(n))


def delta_offsets(uri: str, options: dict[str, str]) -> list[tuple[int, int]]:
    t = pa.table(
        QueryBuilder()
        .register("t", DeltaTable(uri, storage_options=options))
        .execute('SELECT "_partition", "_offset" FROM t')
    )
    return list(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))


def parquet_offsets(az: Azurite, container: str, prefix: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for name, data in az.blobs(container, prefix).items():
        if name.endswith(".parquet"):
            t = pq.read_table(pa.BufferReader(data))
            out += zip(
                t.column("_partition").to_pylist(), t.column("_offset").to_pylist(), strict=True
            )
    return out


def test_delta_on_azurite_read_back_by_deltalake(broker: str, topic: str, azurite: Azurite) -> None:
    per_part = produce_n(broker, topic, 5000)
    container = azurite.container()
    opts = azurite.storage_options()
    uri = f"az://{container}/lake/iot"
    report = kafkalake.ingest(
        topic,
        uri,
        bootstrap_servers=broker,
        storage_options=opts,
        metadata_columns=True,
        date_column=("createdAt", "date"),
        partition_by=["date"],
        max_rows=1000,
        progress=False,
    )
    assert report.rows == 5000
    assert sorted(delta_offsets(uri, opts)) == expected(per_part)
    # The same table through the abfss:// form of the same location.
    abfss = f"abfss://{container}@devstoreaccount1.dfs.core.windows.net/lake/iot"
    dt_ = DeltaTable(abfss, storage_options=opts)
    assert dt_.metadata().partition_columns == ["date"]
    # Each partition's transaction is in the log (read with Microsoft's SDK).
    blobs = azurite.blobs(container, "lake/iot/_delta_log/")
    commits = [
        json.loads(line)
        for name, data in blobs.items()
        if name.endswith(".json")
        for line in data.decode().splitlines()
    ]
    app_ids = {c["txn"]["appId"] for c in commits if "txn" in c}
    assert app_ids == {f"iot-{topic}-{p}" for p in per_part}
    # Values match what confluent-kafka reads from the topic, row for row.
    sent = {(p, o): json.loads(v) for p, o, _, v in read_topic(broker, topic)}
    rows = pa.table(
        QueryBuilder()
        .register("t", DeltaTable(uri, storage_options=opts))
        .execute('SELECT "_partition", "_offset", "eventId", "value", "deviceId" FROM t')
    ).to_pylist()
    assert len(rows) == 5000
    for r in rows:
        e = sent[(r["_partition"], r["_offset"])]
        assert (r["eventId"], r["value"], r["deviceId"]) == (
            e["eventId"],
            e["value"],
            e["deviceId"],
        )


def test_parquet_and_https_uri_on_azurite(broker: str, topic: str, azurite: Azurite) -> None:
    per_part = produce_n(broker, topic, 3000)
    container = azurite.container()
    # The https form of an Azure location, pointed at the emulator by its endpoint.
    uri = f"https://devstoreaccount1.blob.core.windows.net/{container}/raw/iot"
    report = kafkalake.ingest(
        topic,
        uri,
        format="parquet",
        bootstrap_servers=broker,
        storage_options=azurite.storage_options(),
        metadata_columns=True,
        max_rows=700,
        progress=False,
    )
    assert report.rows == 3000
    assert sorted(parquet_offsets(azurite, container, "raw/iot/")) == expected(per_part)
    names = [n for n in azurite.blobs(container, "raw/iot/") if n.endswith(".parquet")]
    assert all(n.startswith(f"raw/iot/{topic}/partition=") for n in names)


def test_capture_on_azurite(broker: str, topic: str, azurite: Azurite) -> None:
    create_topic(broker, topic, 2)
    kafkalake.produce("geo", topic, bootstrap_servers=broker, count=400, rate=None, progress=False)
    container = azurite.container()
    opts = azurite.storage_options()
    uri = f"az://{container}/capture"
    report = kafkalake.ingest(
        topic,
        uri,
        format="capture",
        capture_namespace="streampoc",
        capture_codec="deflate",
        bootstrap_servers=broker,
        storage_options=opts,
        max_rows=150,
        progress=False,
    )
    assert report.rows == 400
    blobs = azurite.blobs(container, "capture/")
    records = []
    for name, data in sorted(blobs.items()):
        assert name.startswith(f"capture/streampoc/{topic}/") and name.endswith(".avro")
        reader = fastavro.reader(io.BytesIO(data))
        assert reader.codec == "deflate"
        records += list(reader)
    assert len(records) == 400
    assert all(json.loads(r["Body"])["country_cd"] == "US" for r in records)
    t = pa.table(kafkalake.read_capture(uri, storage_options=opts, decode_body=True))
    assert t.num_rows == 400
    assert set(t.column("state_abbrv").to_pylist()) == {"NC"}


WORKER = """
import json, sys, kafkalake
servers, topic, uri, fmt, opts = sys.argv[1:6]
kafkalake.ingest(topic, uri, bootstrap_servers=servers, format=fmt, metadata_columns=True,
                 storage_options=json.loads(opts), max_rows=400, max_latency=0.2,
                 until="forever", progress=False,
                 config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
"""


def start_worker(
    broker: str, topic: str, uri: str, fmt: str, opts: dict[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """A worker process; its stderr (kafkalake's warnings) goes to `log` if given."""
    with open(log, "wb") if log else open(os.devnull, "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, broker, topic, uri, fmt, json.dumps(opts)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def logs(*paths: Path) -> str:
    """What the workers wrote to stderr, for a failure message."""
    return "\n".join(f"--- {p.name}:\n{p.read_text(errors='replace')[-4000:]}" for p in paths)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_exactly_once_under_kill_9_on_azurite(
    broker: str, topic: str, azurite: Azurite, fmt: str
) -> None:
    per_part = produce_n(broker, topic, 20_000, seed=11)
    container = azurite.container()
    opts = azurite.storage_options()
    uri = f"az://{container}/out"

    def written() -> list[tuple[int, int]]:
        if fmt == "parquet":
            return parquet_offsets(azurite, container, "out/")
        if not azurite.blobs(container, "out/_delta_log/"):
            return []
        return delta_offsets(uri, opts)

    rng = random.Random(f"azure-{fmt}")
    progress = []
    for _ in range(20):
        worker = start_worker(broker, topic, uri, fmt, opts)
        time.sleep(rng.uniform(0.5, 3.0))
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        w = written()
        assert len(w) == len(set(w)), "no repeats, after every kill"
        progress.append(len(w))
    report = kafkalake.ingest(
        topic,
        uri,
        bootstrap_servers=broker,
        format=fmt,  # type: ignore[arg-type]
        storage_options=opts,
        metadata_columns=True,
        group_id=f"final-{topic}",
        progress=False,
    )
    assert sorted(written()) == expected(per_part), "exactly the N offsets"
    assert report.rows == 20_000 - progress[-1]
    assert progress[-1] > 0, "the killed workers made progress"


@pytest.mark.slow
def test_two_concurrent_writers_on_azurite(
    broker: str, topic: str, azurite: Azurite, tmp_path: Path
) -> None:
    """Two workers of one group commit to one Delta table on Blob storage at
    the same time (conflicts retried); one leaves mid-run, the other finishes."""
    per_part = produce_n(broker, topic, 20_000, seed=13)
    container = azurite.container()
    opts = azurite.storage_options()
    uri = f"az://{container}/shared"

    def written() -> list[tuple[int, int]]:
        if not azurite.blobs(container, "shared/_delta_log/"):
            return []
        return delta_offsets(uri, opts)

    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    a = start_worker(broker, topic, uri, "delta", opts, a_log)
    b = start_worker(broker, topic, uri, "delta", opts, b_log)
    try:
        deadline = time.monotonic() + 300
        while len(written()) < 4000:
            assert time.monotonic() < deadline, "no progress\n" + logs(a_log, b_log)
            time.sleep(0.5)
        os.kill(a.pid, signal.SIGINT)
        a.wait(timeout=60)
        while len(written()) < 20_000:
            assert time.monotonic() < deadline, (
                f"the survivor did not finish ({len(written())} rows)\n" + logs(a_log, b_log)
            )
            time.sleep(0.5)
    finally:
        for w in (a, b):
            w.kill()
            w.wait(timeout=30)
    w = written()
    assert len(w) == len(set(w)), "no repeats"
    assert sorted(w) == expected(per_part), "no gaps"


def test_bad_credentials_and_locations_fail_before_consuming(
    broker: str, topic: str, azurite: Azurite
) -> None:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    produce_n(broker, topic, 100, partitions=1)
    container = azurite.container()
    group = f"g-{topic}"

    def attempt(uri: str, options: dict[str, str]) -> KafkalakeError:
        with pytest.raises(KafkalakeError) as info:
            kafkalake.ingest(
                topic,
                uri,
                bootstrap_servers=broker,
                storage_options=options,
                group_id=group,
                progress=False,
            )
        return info.value

    wrong = "A" * 86 + "=="
    e = attempt(f"az://{container}/t", azurite.storage_options(azure_storage_account_key=wrong))
    assert isinstance(e, StorageError)
    assert "refused the credentials" in str(e) and wrong not in str(e) and AZURITE_KEY not in str(e)

    e = attempt("az://no-such-container/t", azurite.storage_options())
    assert "container does not exist" in str(e)

    e = attempt(f"azz://{container}/t", azurite.storage_options())
    assert isinstance(e, InvalidArgumentError) and "unsupported scheme 'azz://'" in str(e)

    e = attempt(
        f"abfss://{container}@devstoreaccount1.dfs.core.windows.nett/t", azurite.storage_options()
    )
    assert "did not match any known pattern" in str(e) or "windows.nett" in str(e)

    base = {k: v for k, v in azurite.storage_options().items() if k != "azure_storage_account_key"}
    now = dt.datetime.now(dt.UTC)
    expired = generate_container_sas(
        "devstoreaccount1",
        container,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        start=now - dt.timedelta(hours=2),
        expiry=now - dt.timedelta(hours=1),
    )
    e = attempt(f"az://{container}/t", {**base, "azure_storage_sas_token": expired})
    assert "refused the credentials" in str(e)
    sig = dict(p.split("=", 1) for p in expired.split("&"))["sig"]
    assert sig not in str(e)

    read_only = generate_container_sas(
        "devstoreaccount1",
        container,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=now + dt.timedelta(hours=1),
    )
    e = attempt(f"az://{container}/t", {**base, "azure_storage_sas_token": read_only})
    assert "may read but not write" in str(e)

    # Nothing was consumed or written: the group has no offsets, the container is empty.
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker, "group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        c.close()
    assert committed[0].offset < 0
    assert azurite.blobs(container) == {}


class FaultyProxy:
    """An HTTP proxy in front of Azurite that answers some requests with 503
    (not forwarded: throttling) and drops the connection after forwarding
    others (applied, but the client never hears back)."""

    def __init__(self, target: str, every: int = 5) -> None:
        self.target = urlsplit(target)
        self.count = 0
        self.faults = Counter[str]()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle_any(self) -> None:
                with proxy.lock:
                    proxy.count += 1
                    n = proxy.count
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if n % every == 1:
                    proxy.faults["503"] += 1
                    self.send_response(503, "Server Busy")
                    self.send_header("Content-Length", "0")
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(
                    proxy.target.hostname, proxy.target.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = proxy.target.netloc
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if n % every == 3 and self.command == "PUT":
                    proxy.faults["dropped"] += 1
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except ConnectionError:
                    proxy.faults["client gone"] += 1

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faulty(azurite: Azurite) -> Iterator[FaultyProxy]:
    p = FaultyProxy(azurite.url)
    try:
        yield p
    finally:
        p.close()


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_throttling_and_dropped_connections_are_retried(
    broker: str,
    topic: str,
    azurite: Azurite,
    faulty: FaultyProxy,
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    per_part = produce_n(broker, topic, 4000, seed=17)
    container = azurite.container()
    opts = azurite.storage_options(init_backoff="10ms", max_backoff="100ms")
    uri = f"az://{container}/flaky"
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", faulty.url)
    report = kafkalake.ingest(
        topic,
        uri,
        bootstrap_servers=broker,
        format=fmt,  # type: ignore[arg-type]
        storage_options=opts,
        metadata_columns=True,
        max_rows=300,
        progress=False,
    )
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", azurite.url)
    assert faulty.faults["503"] > 3 and faulty.faults["dropped"] >= 1, faulty.faults
    assert report.messages == 4000
    # A commit whose response was dropped is found in the log on retry and
    # not written again; the report counts only rows it knows it wrote.
    assert 0 < report.rows <= 4000
    direct = azurite.storage_options()
    w = (
        delta_offsets(uri, direct)
        if fmt == "delta"
        else parquet_offsets(azurite, container, "flaky/")
    )
    assert sorted(w) == expected(per_part), "nothing lost, nothing twice"


def container_sas(container: str) -> str:
    """A SAS token for `container` that may read, write, delete and list for an hour."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        "devstoreaccount1",
        container,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )


def test_sas_token_and_environment_credentials(
    broker: str, topic: str, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other ways users hand over credentials: a container SAS token in
    storage_options, and the standard AZURE_* environment variables (as a
    .env file would set them) with no storage_options at all."""

    per_part = produce_n(broker, topic, 600, partitions=2)
    container = azurite.container()
    sas = container_sas(container)
    opts = {
        "azure_storage_use_emulator": "true",
        "azure_storage_account_name": "devstoreaccount1",
        "azure_storage_sas_token": sas,
    }
    r = kafkalake.ingest(
        topic,
        f"az://{container}/sas",
        bootstrap_servers=broker,
        format="parquet",
        storage_options=opts,
        metadata_columns=True,
        progress=False,
    )
    assert r.rows == 600
    assert sorted(parquet_offsets(azurite, container, "sas/")) == expected(per_part)

    env = tmp_path / ".env"
    env.write_text(
        "AZURE_STORAGE_USE_EMULATOR=true\n"
        "AZURE_STORAGE_ACCOUNT_NAME=devstoreaccount1\n"
        f"AZURE_STORAGE_ACCOUNT_KEY={AZURITE_KEY}\n"
    )
    for name in (
        "AZURE_STORAGE_USE_EMULATOR",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    loaded = kafkalake.load_env_file(env)
    try:
        assert len(loaded) == 3
        r = kafkalake.ingest(
            topic,
            f"az://{container}/env",
            bootstrap_servers=broker,
            metadata_columns=True,
            progress=False,
        )
    finally:
        for name in loaded:
            os.environ.pop(name, None)
    assert r.rows == 600
    assert sorted(delta_offsets(f"az://{container}/env", azurite.storage_options())) == expected(
        per_part
    )


def test_sas_url_never_becomes_a_name(broker: str, topic: str, azurite: Azurite) -> None:
    """A table given as a URL with a SAS token in its query string: the token
    is the credential, and the query appears in no consumer group, txn app
    id, dead-letter location or log entry."""

    create_topic(broker, topic, 2)
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": broker})
    for i in range(40):
        p.produce(topic, b"not json" if i % 10 == 0 else json.dumps({"i": i}).encode())
    assert p.flush(30) == 0
    container = azurite.container()
    sas = container_sas(container)
    report = kafkalake.ingest(
        topic,
        f"az://{container}/events?{sas}",
        bootstrap_servers=broker,
        storage_options={
            "azure_storage_use_emulator": "true",
            "azure_storage_account_name": "devstoreaccount1",
        },
        progress=False,
    )
    assert (report.rows, report.dead_letters) == (36, 4)
    blobs = azurite.blobs(container)
    signature = sas.split("sig=")[1].split("&")[0]
    assert any(b.startswith("events/_delta_log/") for b in blobs)
    assert any(b.startswith("events_dead_letters/_delta_log/") for b in blobs), sorted(blobs)
    for name, body in blobs.items():
        assert "sig=" not in name and "?" not in name, name
        assert signature.encode() not in body and b"sig=" not in body, name
    app_ids = [
        json.loads(line)["txn"]["appId"]
        for name, body in blobs.items()
        if name.startswith("events/_delta_log/") and name.endswith(".json")
        for line in body.decode().splitlines()
        if "txn" in json.loads(line)
    ]
    assert app_ids and all(a.startswith(f"events-{topic}-") for a in app_ids), app_ids
    # The consumer group is kafkalake-<name> with the plain name: its
    # committed offsets are where the ingest left off.
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker, "group.id": "kafkalake-events"})
    try:
        committed = c.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=30)
    finally:
        c.close()
    assert sum(tp.offset for tp in committed) == 40, committed
