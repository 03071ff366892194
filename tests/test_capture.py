"""Event Hubs Capture-format Avro: kafkalake writes it from a topic, fastavro
and DuckDB's avro extension (readers no one here wrote) read it, and
kafkalake reads it back."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from confluent_kafka import Producer

import kafkalake
from conftest import create_topic, duckdb_avro, read_n
from kafkalake.exceptions import InvalidArgumentError

pytestmark = pytest.mark.broker

CAPTURE_FIELDS = [
    "SequenceNumber",
    "Offset",
    "EnqueuedTimeUtc",
    "SystemProperties",
    "Properties",
    "Body",
]


@pytest.fixture
def broker(durable_broker: str) -> str:
    return durable_broker


def produce_geo(broker: str, topic: str, n: int) -> list[dict[str, object]]:
    """`n` geo events, keyed, every third with headers, sent by confluent-kafka."""
    create_topic(broker, topic, 2)
    events = [json.loads(v) for _, v in kafkalake.sample("geo", n, seed=4)]
    p = Producer({"bootstrap.servers": broker})
    for i, e in enumerate(events):
        headers = [("source", b"seed-004"), ("seq", str(i).encode())] if i % 3 == 0 else None
        p.produce(topic, json.dumps(e).encode(), key=str(e["pk"]).encode(), headers=headers)
    assert p.flush(30) == 0
    return events


def avro_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.avro"))


def avro_records(path: Path) -> list[dict[str, object]]:
    with path.open("rb") as fh:
        return list(fastavro.reader(fh))


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_capture_files_read_by_fastavro_and_kafkalake(
    broker: str, topic: str, tmp_path: Path, codec: str
) -> None:
    events = produce_geo(broker, topic, 500)
    out = tmp_path / "capture"
    report = kafkalake.ingest(
        topic,
        out,
        bootstrap_servers=broker,
        format="capture",
        capture_namespace="streampoc",
        capture_codec=codec,  # type: ignore[arg-type]
        max_rows=120,
        progress=False,
    )
    assert report.rows == 500
    files = avro_files(out)
    assert report.files == len(files) >= 2 * (250 // 120)

    # Capture's folder layout: namespace/event hub/partition/yyyy/mm/dd/hh/mm/ss-…
    for f in files:
        parts = f.relative_to(out).parts
        assert parts[:2] == ("streampoc", topic)
        assert parts[2] in ("0", "1")
        assert [len(x) for x in parts[3:8]] == [4, 2, 2, 2, 2]
        assert f.name[:2].isdigit() and f.name[2] == "-"

    # fastavro: Capture's schema, the right codec, every event once, in offset order.
    seen: list[dict[str, object]] = []
    per_partition: Counter[str] = Counter()
    for f in files:
        with f.open("rb") as fh:
            reader = fastavro.reader(fh)
            assert reader.codec == codec
            schema = reader.writer_schema
            assert schema["name"] == "Microsoft.ServiceBus.Messaging.EventData" or (
                schema["name"] == "EventData"
                and schema["namespace"] == "Microsoft.ServiceBus.Messaging"
            )
            assert [fld["name"] for fld in schema["fields"]] == CAPTURE_FIELDS
            records = list(reader)
        seqs = [r["SequenceNumber"] for r in records]
        assert seqs == sorted(seqs)
        assert [r["Offset"] for r in records] == [str(s) for s in seqs]
        per_partition[f.relative_to(out).parts[2]] += len(records)
        seen += records
    assert len(seen) == 500
    bodies = [json.loads(r["Body"]) for r in seen]
    assert sorted(json.dumps(b, sort_keys=True) for b in bodies) == sorted(
        json.dumps(e, sort_keys=True) for e in events
    )
    # Kafka key → x-opt-kafka-key; headers → Properties; enqueued time in Capture's format.
    r = next(r for r in seen if r["Properties"])
    body = json.loads(r["Body"])
    assert r["SystemProperties"]["x-opt-kafka-key"] == str(body["pk"]).encode()
    assert r["Properties"]["source"] == b"seed-004"
    month, day, rest = r["EnqueuedTimeUtc"].split("/", 2)
    assert 1 <= int(month) <= 12 and 1 <= int(day) <= 31 and rest[-2:] in ("AM", "PM")
    assert sum(1 for r in seen if r["Properties"]) == len(range(0, 500, 3))

    # DuckDB's avro extension: every file's records, field by field as fastavro's.
    def fields(r: dict[str, Any]) -> str:
        maps = [None if r[k] is None else sorted(dict(r[k]).items()) for k in CAPTURE_FIELDS[3:5]]
        return repr([r[k] for k in CAPTURE_FIELDS[:3]] + maps + [r["Body"]])

    by_duckdb = duckdb_avro(out / "**" / "*.avro", "SELECT * FROM t").to_pylist()
    assert sorted((r["filename"], fields(r)) for r in by_duckdb) == sorted(
        (str(f), fields(r)) for f in files for r in avro_records(f)
    )

    # kafkalake's reader: the same rows, bodies as bytes or decoded.
    t = pa.table(kafkalake.read_capture(out))
    assert t.num_rows == 500
    assert t.schema.field("EnqueuedTimeUtc").type == pa.timestamp("ms", tz="UTC")
    assert sorted(t.column("Body").to_pylist()) == sorted(r["Body"] for r in seen)
    decoded = pa.table(kafkalake.read_capture(out, decode_body=True))
    assert "Body" not in decoded.column_names
    assert sorted(decoded.column("postal_cd").to_pylist()) == sorted(
        str(e["postal_cd"]) for e in events
    )
    one = pa.table(kafkalake.read_capture(files[0]))
    assert one.num_rows == len(avro_records(files[0]))
    assert set(one.column("_file").to_pylist()) == {files[0].name}


def test_capture_resumes_without_duplicates(broker: str, topic: str, tmp_path: Path) -> None:
    produce_geo(broker, topic, 300)
    out = tmp_path / "capture"
    first = kafkalake.ingest(
        topic, out, bootstrap_servers=broker, format="capture", max_rows=50, progress=False
    )
    # A second run with a different group: where to resume comes from the files.
    again = kafkalake.ingest(
        topic,
        out,
        bootstrap_servers=broker,
        format="capture",
        group_id=f"other-{topic}",
        progress=False,
    )
    assert (first.rows, again.rows) == (300, 0)
    seqs = Counter(
        (f.relative_to(out).parts[2], r["SequenceNumber"])
        for f in avro_files(out)
        for r in avro_records(f)
    )
    assert len(seqs) == 300 and max(seqs.values()) == 1
    assert sorted(Counter(p for p, _ in read_n(broker, topic, 300)).values()) == sorted(
        Counter(p for p, _ in seqs).values()
    )


def test_reader_reads_a_file_written_by_fastavro(tmp_path: Path) -> None:
    """A file shaped like real Capture output (the seed's sample record, the
    older schema without null in Properties) written by another library."""
    schema = {
        "type": "record",
        "name": "EventData",
        "namespace": "Microsoft.ServiceBus.Messaging",
        "fields": [
            {"name": "SequenceNumber", "type": "long"},
            {"name": "Offset", "type": "string"},
            {"name": "EnqueuedTimeUtc", "type": "string"},
            {
                "name": "SystemProperties",
                "type": {"type": "map", "values": ["long", "double", "string", "bytes"]},
            },
            {
                "name": "Properties",
                "type": {"type": "map", "values": ["long", "double", "string", "bytes"]},
            },
            {"name": "Body", "type": ["null", "bytes"]},
        ],
    }
    body = b'{"postal_cd": "28557", "city_name": "Morehead City", "seq": 1}'
    record = {
        "SequenceNumber": 252,
        "Offset": "4295015048",
        "EnqueuedTimeUtc": "6/25/2020 3:47:29 PM",
        "SystemProperties": {"x-opt-enqueued-time": 1593100049000},
        "Properties": {"n": 7, "x": 1.5},
        "Body": body,
    }
    path = tmp_path / "24.avro"
    with path.open("wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(schema), [record], codec="deflate")
    t = pa.table(kafkalake.read_capture(path)).to_pylist()
    assert len(t) == 1
    row = t[0]
    assert row["SequenceNumber"] == 252 and row["Offset"] == "4295015048"
    assert row["EnqueuedTimeUtc"].isoformat() == "2020-06-25T15:47:29+00:00"
    assert dict(row["SystemProperties"]) == {"x-opt-enqueued-time": b"1593100049000"}
    assert dict(row["Properties"]) == {"n": b"7", "x": b"1.5"}
    assert row["Body"] == body
    d = pa.table(kafkalake.read_capture(path, decode_body=True)).to_pylist()[0]
    assert (d["city_name"], d["seq"]) == ("Morehead City", 1)

    (tmp_path / "bad.avro").write_bytes(b"Obj\x01 not really avro")
    with pytest.raises(InvalidArgumentError, match=r"bad.avro.*not a readable Avro file"):
        kafkalake.read_capture(tmp_path / "bad.avro")


def test_capture_rejects_decoding_options(broker: str, topic: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="keeps message values as bytes; flatten"):
        kafkalake.ingest(topic, tmp_path, bootstrap_servers=broker, format="capture", flatten=True)


def test_cli_capture_ingest_and_read(
    broker: str, topic: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kafkalake import cli

    produce_geo(broker, topic, 60)
    out = tmp_path / "cap"
    args = ["ingest", topic, "--table", str(out), "--format", "capture"]
    args += ["--bootstrap-servers", broker, "--capture-codec", "deflate", "--json"]
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 60
    assert cli.main(["read-capture", str(out), "--decode-body", "--limit", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"60 events in {len(avro_files(out))} files under {out}")
    assert "city_name" in text
