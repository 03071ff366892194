"""Shared fixtures: the real Kafka broker (tansu) and Kafka clients no one here wrote."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TANSU = ROOT / "scripts" / "tansu.sh"


def _start_tansu(tmp_path_factory: pytest.TempPathFactory, storage: str) -> Iterator[str]:
    run = tmp_path_factory.mktemp(f"tansu-{storage.split(':')[0]}")
    out = subprocess.run(
        [str(TANSU), "start", str(run), storage],
        check=True,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    servers = out.stdout.strip().splitlines()[-1]
    try:
        yield servers
    finally:
        subprocess.run([str(TANSU), "stop", str(run)], check=False, timeout=30)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bootstrap servers of a tansu broker (memory engine) started for this session.

    The binary is built once by scripts/install-tansu.sh (scripts/test.sh
    does that first); a missing broker is an error, never a skip.
    """
    yield from _start_tansu(tmp_path_factory, "memory://tansu/")


@pytest.fixture(scope="session")
def durable_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tansu broker on its sqlite engine, for the ingest tests.

    The sqlite engine keeps one row per record, so a fetch may start at any
    offset, as on Kafka; a resumed ingest starts inside a record batch, and
    the memory engine only returns batches whose base offset is at or after
    the fetch offset. (The sqlite engine, in turn, cannot serve
    snappy-compressed batches back, so the producer tests use the memory one.)
    """
    yield from _start_tansu(tmp_path_factory, "sqlite")


@pytest.fixture
def topic() -> str:
    """A fresh topic name per test."""
    return f"t-{uuid.uuid4().hex[:12]}"


def create_topic(servers: str, name: str, partitions: int = 4) -> None:
    """Create a topic with confluent-kafka's admin client."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": servers})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    for f in futures.values():
        f.result(timeout=30)


END_MARKER = b"__end_of_test_data__"


def read_topic(
    servers: str, topic: str, timeout: float = 60.0
) -> list[tuple[int, int, bytes | None, bytes]]:
    """Everything in ``topic``, read with confluent-kafka.

    To know where "everything" ends without waiting on a timer, an end
    marker is first written to every partition (with confluent-kafka's own
    producer); reading stops once each partition's marker has arrived.
    Returns (partition, offset, key, value) tuples, markers left out.
    """
    import time

    from confluent_kafka import Consumer, Producer

    producer = Producer({"bootstrap.servers": servers})
    partitions = sorted(producer.list_topics(topic, timeout=30).topics[topic].partitions)
    for p in partitions:
        producer.produce(topic, value=END_MARKER, partition=p)
    assert producer.flush(30) == 0, "end markers not delivered"

    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # tansu holds a fetch for fetch.wait.max.ms even when data is there.
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.subscribe([topic])
    out: list[tuple[int, int, bytes | None, bytes]] = []
    ended: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(ended) < len(partitions):
            assert time.monotonic() < deadline, f"end markers of {topic} not read in {timeout} s"
            for m in consumer.consume(num_messages=10_000, timeout=0.5):
                if m.error():
                    raise AssertionError(f"consumer error: {m.error()}")
                if m.value() == END_MARKER:
                    ended.add(m.partition())
                elif m.partition() in ended:
                    raise AssertionError("data after the end marker")
                else:
                    out.append((m.partition(), m.offset(), m.key(), m.value()))
    finally:
        consumer.close()
    return out


def read_n(servers: str, topic: str, n: int, timeout: float = 60.0) -> list[tuple[int, int]]:
    """(partition, offset) of the first ``n`` messages of ``topic``, read with
    confluent-kafka without writing anything to the topic."""
    import time

    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"n-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.subscribe([topic])
    out: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n:
            assert time.monotonic() < deadline, f"only {len(out)} of {n} messages in {timeout} s"
            out += [
                (m.partition(), m.offset())
                for m in consumer.consume(10_000, timeout=0.5)
                if not m.error()
            ]
    finally:
        consumer.close()
    return out


# Azurite's published development account (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE = ROOT / "scripts" / "azurite.sh"


class Azurite:
    """A running Azurite blob service and the ways to reach it."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    @property
    def url(self) -> str:
        """The service root, without the account (AZURITE_BLOB_STORAGE_URL)."""
        return self.endpoint.rsplit("/", 1)[0]

    def storage_options(self, **extra: str) -> dict[str, str]:
        """delta-rs / object_store options for this emulator.

        Emulator mode, with its port in AZURITE_BLOB_STORAGE_URL (set by the
        fixture): object_store then lists the Delta log the way Azurite
        understands (Azurite ignores the `startFrom` listing parameter that
        a plain custom endpoint would use, which breaks reading the log).
        """
        return {
            "azure_storage_use_emulator": "true",
            "azure_storage_account_name": AZURITE_ACCOUNT,
            "azure_storage_account_key": AZURITE_KEY,
            **extra,
        }

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"
        )

    def service(self) -> Any:
        """An azure-storage-blob client (Microsoft's SDK: a reader no one here wrote)."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def container(self) -> str:
        """A fresh container."""
        name = f"c{uuid.uuid4().hex[:12]}"
        self.service().create_container(name)
        return name

    def blobs(self, container: str, prefix: str = "") -> dict[str, bytes]:
        """Every blob under `prefix`, downloaded."""
        c = self.service().get_container_client(container)
        return {
            b.name: c.download_blob(b.name).readall()
            for b in c.list_blobs(name_starts_with=prefix or None)
        }


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite (npm) started for this session on a free loopback port."""
    run = tmp_path_factory.mktemp("azurite")
    out = subprocess.run(
        [str(AZURITE), "start", str(run)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    az = Azurite(out.stdout.strip().splitlines()[-1])
    # Where object_store's emulator mode finds the service (inherited by workers).
    previous = os.environ.get("AZURITE_BLOB_STORAGE_URL")
    os.environ["AZURITE_BLOB_STORAGE_URL"] = az.url
    try:
        yield az
    finally:
        if previous is None:
            os.environ.pop("AZURITE_BLOB_STORAGE_URL", None)
        else:
            os.environ["AZURITE_BLOB_STORAGE_URL"] = previous
        subprocess.run([str(AZURITE), "stop", str(run)], check=False, timeout=30)


def _duckdb_offline(package: str, name: str) -> Any:
    """A DuckDB connection with the ``name`` extension loaded from the PyPI
    package ``package`` (its wheel carries the extension for exactly the
    installed duckdb version); autoinstall and autoload are off, so nothing
    is downloaded at run time."""
    import importlib

    import duckdb

    ext = (
        Path(importlib.import_module(package).__file__ or "").parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / f"{name}.duckdb_extension"
    )
    assert ext.is_file(), f"no {name} extension for duckdb {duckdb.__version__} at {ext}"
    con = duckdb.connect(
        config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    )
    con.execute(f"LOAD '{ext}'")
    return con


def duckdb_delta(table: str | Path, sql: str = "SELECT * FROM t") -> Any:
    """Run ``sql`` over the Delta table at ``table`` (as ``t``) with DuckDB's
    delta extension (delta-kernel-rs): a reader that is not delta-rs.

    The extension is loaded offline from PyPI's ``duckdb-extension-delta``
    package (its version matches the ``duckdb`` package's); nothing is
    downloaded at run time. Returns a pyarrow table.
    """
    con = _duckdb_offline("duckdb_extension_delta", "delta")
    try:
        con.execute(f"CREATE VIEW t AS SELECT * FROM delta_scan('{table}')")
        return con.execute(sql).to_arrow_table()
    finally:
        con.close()


def same_rows(duck: Any, other: Any, what: str) -> None:
    """Assert that the pyarrow tables ``duck`` (DuckDB's answer) and ``other``
    (another reader's) hold the same rows, in any order.

    ``duck`` is first cast to ``other``'s schema: the same columns, with the
    types DuckDB spells its own way (UTC as Etc/UTC) made the other's. Rows
    are compared by their repr, so that NaN equals NaN.
    """
    assert sorted(duck.column_names) == sorted(other.column_names), what
    duck = duck.select(other.column_names).cast(other.schema)
    a, b = sorted(map(repr, duck.to_pylist())), sorted(map(repr, other.to_pylist()))
    differ = sorted(set(a) ^ set(b))[:2]
    assert a == b, f"{what}: DuckDB read {len(a)} rows, the other reader {len(b)}; {differ}"


def read_delta_both_ways(table: str | Path) -> Any:
    """Every row of the Delta table at ``table``, read by deltalake (delta-rs)
    and by DuckDB's delta extension (delta-kernel-rs), checked to be the same
    rows. Returns deltalake's pyarrow table."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(table)).to_pyarrow_table()
    same_rows(duckdb_delta(table), rows, f"the Delta table {table}")
    return rows


def duckdb_avro(files: str | Path, sql: str = "SELECT * EXCLUDE (filename) FROM t") -> Any:
    """Run ``sql`` over the Avro file(s) at ``files`` (a path or a glob, as
    ``t``, with a ``filename`` column) with DuckDB's avro extension: a reader
    of Capture files that is neither kafkalake nor fastavro.

    Loaded offline from PyPI's ``duckdb-extension-avro``, as ``duckdb_delta``
    loads its extension. Returns a pyarrow table.
    """
    con = _duckdb_offline("duckdb_extension_avro", "avro")
    try:
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_avro('{files}', filename = true)")
        return con.execute(sql).to_arrow_table()
    finally:
        con.close()


def duckdb_parquet(files: str | Path, sql: str = "SELECT * EXCLUDE (filename) FROM t") -> Any:
    """Run ``sql`` over the Parquet file(s) at ``files`` (a path or a glob, as
    ``t``, with a ``filename`` column) with DuckDB's own Parquet reader (built
    in: no extension). Folders such as ``partition=0`` add no column: each
    file is read as it is. Returns a pyarrow table."""
    import duckdb

    con = duckdb.connect(
        config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    )
    try:
        read = f"read_parquet('{files}', filename = true, hive_partitioning = false)"
        con.execute(f"CREATE VIEW t AS SELECT * FROM {read}")
        return con.execute(sql).to_arrow_table()
    finally:
        con.close()


def wait_until(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    """Poll ``check()`` until it is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
