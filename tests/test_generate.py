"""Generation: seed-accurate schemas, determinism, Arrow hand-over, knobs, bad input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from itertools import pairwise

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import kafkalake
from kafkalake.exceptions import InvalidArgumentError

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def messages(profile: str, n: int, **kw: object) -> list[tuple[bytes | None, bytes]]:
    t = pa.table(kafkalake.generate(profile, n, format="messages", **kw))  # type: ignore[arg-type]
    return list(zip(t.column("key").to_pylist(), t.column("value").to_pylist(), strict=True))


@pytest.mark.parametrize("profile", kafkalake.PROFILES)
def test_same_seed_same_bytes(profile: str) -> None:
    a = messages(profile, 2000, seed=11)
    b = messages(profile, 2000, seed=11)
    c = messages(profile, 2000, seed=12)
    assert a == b
    assert a != c
    typed_a = pa.table(kafkalake.generate(profile, 2000, seed=11))
    typed_b = pa.table(kafkalake.generate(profile, 2000, seed=11, batch_size=333))
    assert typed_a.equals(typed_b)


def test_iot_matches_seed_001_field_by_field() -> None:
    msgs = messages("iot", 5000, seed=3, duplicate_ratio=0.0)
    last_seq: dict[str, int] = {}
    devices = set()
    types = set()
    for key, raw in msgs:
        text = raw.decode()
        event = json.loads(text)
        assert list(event) == [
            "eventId",
            "complexData",
            "value",
            "deviceId",
            "deviceSequenceNumber",
            "type",
            "createdAt",
        ]
        assert UUID.match(event["eventId"])
        assert list(event["complexData"]) == [f"moreData{i}" for i in range(23)]
        assert all(isinstance(v, float) for v in event["complexData"].values())
        assert isinstance(event["value"], float)
        assert re.fullmatch(r"contoso-device-id-\d{6}", event["deviceId"])
        assert key == event["deviceId"].encode()
        seq = event["deviceSequenceNumber"]
        assert seq == last_seq.get(event["deviceId"], -1) + 1, "monotonic per device"
        last_seq[event["deviceId"]] = seq
        assert RFC3339_MICROS.match(event["createdAt"])
        devices.add(event["deviceId"])
        types.add(event["type"])
    assert 990 <= len(devices) <= 1000
    assert {"CO2", "TEMP"} <= types
    schema = pa.schema(kafkalake.profile_schema("iot"))
    assert schema.names == [
        "eventId",
        "complexData",
        "value",
        "deviceId",
        "deviceSequenceNumber",
        "type",
        "createdAt",
    ]
    assert schema.field("createdAt").type == pa.timestamp("us", tz="UTC")
    assert schema.field("complexData").type.num_fields == 23


def test_iot_devices_knob() -> None:
    t = pa.table(kafkalake.generate("iot", 3000, devices=10))
    assert t.column("deviceId").unique().to_pylist() and len(t.column("deviceId").unique()) == 10


def test_iot_default_duplicates_are_one_in_a_thousand() -> None:
    msgs = messages("iot", 200_000, seed=9)
    dups = len(msgs) - len(set(msgs))
    # 0.1 % of 200,000 = 200; a binomial spread of 3 sigma is about ±42.
    assert 150 <= dups <= 250, dups


def test_duplicates_are_exact_resends_in_arrow_too() -> None:
    t = pa.table(kafkalake.generate("search", 10_000, duplicate_ratio=0.1, seed=2))
    rows = t.to_pylist()
    as_tuples = [tuple(sorted(r.items())) for r in rows]
    dups = len(as_tuples) - len(set(as_tuples))
    assert 800 <= dups <= 1200


def test_search_matches_seed_002() -> None:
    for _, raw in messages("search", 3000, seed=1):
        event = json.loads(raw)
        assert list(event) == ["id", "content_search", "lat", "long", "timestamp"]
        assert isinstance(event["id"], int)
        assert isinstance(event["lat"], float) and -90 <= event["lat"] <= 90
        assert isinstance(event["long"], float) and -180 <= event["long"] <= 180
    items = pa.table(kafkalake.generate("search", 3000)).column("content_search").unique()
    assert "Chá" in items.to_pylist()


def test_geo_matches_seed_004() -> None:
    for key, raw in messages("geo", 2000, seed=4):
        e = json.loads(raw)
        assert list(e) == [
            "location",
            "postal_cd",
            "country_cd",
            "city_name",
            "state_abbrv",
            "latitude",
            "longitude",
            "pk",
            "seq",
            "timestamp",
            "epoch",
            "sender",
        ]
        assert e["location"] == {"type": "Point", "coordinates": [e["longitude"], e["latitude"]]}
        assert re.fullmatch(r"2[78]\d{3}", e["postal_cd"]) and e["pk"] == e["postal_cd"]
        assert key == e["postal_cd"].encode()
        assert e["country_cd"] == "US" and e["state_abbrv"] == "NC"
        assert 33.5 < e["latitude"] < 37 and -85 < e["longitude"] < -75
        stamp = datetime.strptime(e["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert int(stamp.timestamp()) == e["epoch"]
    charlotte = pa.table(kafkalake.generate("geo", 20_000)).filter(
        pa.compute.equal(
            pa.table(kafkalake.generate("geo", 20_000)).column("city_name"), "Charlotte"
        )
    )
    assert charlotte.num_rows > 0


def test_clickstream_funnel() -> None:
    t = pl.DataFrame(kafkalake.generate("clickstream", 50_000, seed=5))
    counts = dict(t.group_by("action").len().iter_rows())
    assert counts["view"] > counts["add_to_cart"] > counts["checkout"] > counts["purchase"] > 0
    assert set(t.columns) >= {
        "eventId",
        "sessionId",
        "userId",
        "productId",
        "productName",
        "category",
        "price",
        "action",
        "referrer",
        "device",
        "timestamp",
    }
    assert t["price"].min() > 0


def test_start_time_and_late_events() -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    t = pa.table(
        kafkalake.generate("iot", 1000, start_time=start, event_interval=1.0, duplicate_ratio=0)
    )
    ts = t.column("createdAt").to_pylist()
    assert ts[0] == start and ts[-1] == datetime(2024, 5, 1, 12, 16, 39, tzinfo=UTC)
    late = (
        pa.table(
            kafkalake.generate("iot", 5000, start_time=start, late_ratio=0.2, max_lateness=30.0)
        )
        .column("createdAt")
        .to_pylist()
    )
    out_of_order = sum(1 for a, b in pairwise(late) if b < a)
    assert 500 < out_of_order < 1500
    assert min(late) >= datetime(2024, 5, 1, 11, 59, 30, tzinfo=UTC)


def test_malformed_messages() -> None:
    bad = 0
    for _, raw in messages("iot", 2000, malformed_ratio=0.1, duplicate_ratio=0.0):
        try:
            e = json.loads(raw)
            if not isinstance(e, dict) or not isinstance(e["value"], float):
                bad += 1
        except json.JSONDecodeError:
            bad += 1
    assert 140 <= bad <= 260
    with pytest.raises(InvalidArgumentError, match="messages"):
        kafkalake.generate("iot", 10, malformed_ratio=0.5)


def test_key_choice() -> None:
    keyed = messages("clickstream", 10, key_field="userId")
    assert all(k is not None and k.startswith(b"U") for k, _ in keyed)
    assert all(k is None for k, _ in messages("clickstream", 10, keyed=False))
    with pytest.raises(InvalidArgumentError, match="choose one of"):
        kafkalake.generate("iot", 10, key_field="nope", format="messages")


def test_arrow_consumers_read_without_copy_paths() -> None:
    t = kafkalake.generate("iot", 10_000, batch_size=4096)
    assert pa.table(t).num_rows == 10_000
    assert pl.DataFrame(t).height == 10_000
    assert duckdb.sql("SELECT count(*) FROM t").fetchall() == [(10_000,)]
    reader = pa.RecordBatchReader.from_stream(t)
    assert [b.num_rows for b in reader] == [4096, 4096, 1808]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"profile": "nope"}, "unknown profile"),
        ({"n": 0}, "n must be positive"),
        ({"n": -5}, "n must be positive"),
        ({"duplicate_ratio": -0.1}, "duplicate_ratio"),
        ({"late_ratio": 1.5}, "late_ratio"),
        ({"malformed_ratio": 2}, "malformed_ratio"),
        ({"max_lateness": -1}, "max_lateness"),
        ({"devices": 0}, "devices"),
        ({"format": "csv"}, "format"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"profile": "iot", "n": 10, **kwargs}
    with pytest.raises(InvalidArgumentError, match=match):
        kafkalake.generate(**args)  # type: ignore[arg-type]
    assert issubclass(InvalidArgumentError, ValueError)


def test_sample() -> None:
    ((key, value),) = kafkalake.sample("geo", 1)
    assert key is not None and json.loads(value)["pk"] == key.decode()
