"""The Event Hubs path as far as it can be proven here: TLS (a broker behind
a TLS proxy with a self-signed CA) and SASL (SCRAM, which tansu offers),
with kafkalake's static librdkafka on one side and confluent-kafka checking.

Event Hubs itself uses SASL PLAIN over TLS; tansu does not offer PLAIN, so
the PLAIN exchange is the one piece only a real namespace can show."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

import kafkalake
from conftest import ROOT
from kafkalake.eventhubs import EventHubs
from kafkalake.exceptions import AuthenticationError, TlsError

pytestmark = pytest.mark.broker

TLS_PROXY = ROOT / "scripts" / "tls-proxy.sh"
PASSWORD = "alice-" + uuid.uuid4().hex


def start(run: Path, *args: str) -> str:
    out = subprocess.run(
        [str(TLS_PROXY), "start", str(run), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out.stdout.strip().splitlines()[-1]


def stop(run: Path) -> None:
    subprocess.run([str(TLS_PROXY), "stop", str(run)], check=False, timeout=30)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(bootstrap servers, CA file) of tansu behind a TLS proxy."""
    run = tmp_path_factory.mktemp("tls")
    servers = start(run)
    try:
        yield servers, str(run / "ca.pem")
    finally:
        stop(run)


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """tansu requiring SCRAM logins, behind TLS, with the user 'alice'.

    tansu keeps SCRAM credentials in its sqlite storage and, once
    authentication is on, refuses every request from a client that is not
    logged in: the user is created first, then the broker restarted with
    --authentication on the same storage."""
    run = tmp_path_factory.mktemp("scram")
    servers = start(run, "sqlite")
    admin = AdminClient(
        {
            "bootstrap.servers": servers,
            "security.protocol": "SSL",
            "ssl.ca.location": str(run / "ca.pem"),
        }
    )
    upsert = UserScramCredentialUpsertion(
        "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), PASSWORD.encode()
    )
    for f in admin.alter_user_scram_credentials([upsert]).values():
        f.result(timeout=30)
    stop(run)
    servers = start(run, "sqlite", "--authentication")
    try:
        yield servers, str(run / "ca.pem")  # a new CA on each start
    finally:
        stop(run)


def consume_all(servers: str, topic: str, n: int, **config: str) -> int:
    c = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 10,
            **config,
        }
    )
    c.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    try:
        while seen < n:
            assert time.monotonic() < deadline, f"read {seen} of {n}"
            for m in c.consume(num_messages=1000, timeout=0.5):
                assert not m.error(), m.error()
                seen += 1
    finally:
        c.close()
    return seen


def test_tls_with_the_ca_works_and_without_it_fails_fast(
    tls_broker: tuple[str, str], topic: str
) -> None:
    servers, ca = tls_broker
    tls = {"security.protocol": "SSL", "ssl.ca.location": ca}
    report = kafkalake.produce(
        "geo", topic, bootstrap_servers=servers, count=500, config=tls, progress=False
    )
    assert report.acknowledged == 500
    assert consume_all(servers, topic, 500, **tls) == 500

    # kafkalake reads it back through TLS too.
    got = kafkalake.ingest(
        topic, Path(ca).parent / "geo", bootstrap_servers=servers, config=tls, progress=False
    )
    assert got.rows == 500

    # The system's CAs (what Event Hubs uses) do not know this CA: refused,
    # at once and in librdkafka's words, not at the 10 s connect timeout.
    t0 = time.monotonic()
    with pytest.raises(TlsError, match="certificate verify failed") as info:
        kafkalake.produce(
            "geo",
            topic,
            bootstrap_servers=servers,
            count=1,
            config={"security.protocol": "SSL", "ssl.ca.location": "probe"},
            progress=False,
        )
    assert time.monotonic() - t0 < 5
    assert "ssl.ca.location" in str(info.value)


def test_eventhubs_tls_settings_verify_the_broker(tls_broker: tuple[str, str], topic: str) -> None:
    """The TLS part of the Event Hubs configuration (CA, host name check)
    against the TLS broker; SASL PLAIN left out, as tansu does not offer it."""
    servers, ca = tls_broker
    eh = EventHubs.from_connection_string(
        "Endpoint=sb://localhost/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0;EntityPath=h",
        ca_location=ca,
    )
    tls = {k: v for k, v in eh.config.items() if not k.startswith("sasl.")}
    tls["security.protocol"] = "SSL"
    report = kafkalake.produce(
        "geo", topic, bootstrap_servers=servers, count=100, config=tls, progress=False
    )
    assert report.acknowledged == 100


def test_scram_login(scram_broker: tuple[str, str], topic: str) -> None:
    servers, ca = scram_broker
    sasl = {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": ca,
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
    }
    report = kafkalake.produce(
        "iot", topic, bootstrap_servers=servers, count=300, config=sasl, progress=False
    )
    assert report.acknowledged == 300
    assert consume_all(servers, topic, 300, **sasl) == 300

    wrong = {**sasl, "sasl.password": "not-" + PASSWORD}
    t0 = time.monotonic()
    with pytest.raises(AuthenticationError, match="alice") as info:
        kafkalake.produce(
            "iot", topic, bootstrap_servers=servers, count=1, config=wrong, progress=False
        )
    assert time.monotonic() - t0 < 5
    message = str(info.value)
    assert PASSWORD not in message and "sasl.password" in message
    with pytest.raises(AuthenticationError):
        kafkalake.ingest(
            topic, Path(ca).parent / "t", bootstrap_servers=servers, config=wrong, progress=False
        )
