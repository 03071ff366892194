"""Event Hubs connection strings → Kafka settings (no network)."""

from __future__ import annotations

import pytest

from kafkalake import cli
from kafkalake.eventhubs import ENV_VAR, EventHubs
from kafkalake.exceptions import ConfigError, InvalidArgumentError

KEY = "c2VjcmV0LWtleS1ub3QtcmVhbC0xMjM0NTY3ODkwYWJjZGVmZ2hpams="
NS = "Endpoint=sb://streampoc.servicebus.windows.net/;SharedAccessKeyName=Root;"
CS = f"{NS}SharedAccessKey={KEY}"


def test_namespace_string_gives_sasl_ssl_settings() -> None:
    eh = EventHubs.from_connection_string(CS, eventhub="dev")
    assert eh.bootstrap_servers == "streampoc.servicebus.windows.net:9093"
    assert eh.namespace == "streampoc.servicebus.windows.net"
    assert eh.topic == "dev"
    assert eh.key_name == "Root"
    cfg = dict(eh.config)
    assert cfg["security.protocol"] == "SASL_SSL"
    assert cfg["sasl.mechanism"] == "PLAIN"
    assert cfg["sasl.username"] == "$ConnectionString"
    assert cfg["sasl.password"] == CS
    assert cfg["ssl.ca.location"] == "probe"
    assert cfg["ssl.endpoint.identification.algorithm"] == "https"
    assert int(cfg["message.max.bytes"]) <= 1_048_576
    assert eh.kafka_args() == {"bootstrap_servers": eh.bootstrap_servers, "config": eh.config}


def test_entity_path_is_the_topic_and_eventhub_overrides_it() -> None:
    assert EventHubs.from_connection_string(CS + ";EntityPath=telemetry").topic == "telemetry"
    eh = EventHubs.from_connection_string(CS + ";EntityPath=telemetry", eventhub="other")
    assert eh.topic == "other"
    assert EventHubs.from_connection_string(CS).topic is None


def test_missing_entity_path_when_needed_names_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"no EntityPath.*eventhub="):
        EventHubs.from_connection_string(CS).require_topic()


def test_secrets_never_shown() -> None:
    eh = EventHubs.from_connection_string(
        CS + ";EntityPath=dev", ca_location="/etc/ssl/certs/ca.pem"
    )
    for text in (repr(eh), str(eh), repr(eh.config), str(eh.config)):
        assert KEY not in text
    assert "***" in repr(eh.config)
    assert eh.config["ssl.ca.location"] == "/etc/ssl/certs/ca.pem"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"SharedAccessKeyName=Root;SharedAccessKey={KEY}", "no 'Endpoint="),
        (
            f"Endpoint=https://x.servicebus.windows.net/;SharedAccessKeyName=R;SharedAccessKey={KEY}",
            "Endpoint must look like",
        ),
        (NS, "neither SharedAccessKey nor SharedAccessSignature"),
        (
            f"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey={KEY}",
            "no SharedAccessKeyName",
        ),
        (f"{NS}{KEY.rstrip('=')}", "part without '='"),
        (f"{NS}SharedAccessKey=", "SharedAccessKey is empty"),
    ],
)
def test_malformed_strings_name_the_part(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        EventHubs.from_connection_string(text)
    assert KEY not in str(info.value)


def test_sas_string_and_emulator() -> None:
    sas = (
        "Endpoint=sb://ns.servicebus.windows.net/;"
        "SharedAccessSignature=SharedAccessSignature sr=x&sig=y"
    )
    assert EventHubs.from_connection_string(sas, eventhub="h").config["sasl.password"] == sas
    emu = EventHubs.from_connection_string(
        "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;EntityPath=eh1"
    )
    assert emu.emulator
    assert emu.bootstrap_servers == "localhost:9092"
    assert emu.config["security.protocol"] == "SASL_PLAINTEXT"
    assert "ssl.ca.location" not in emu.config


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match="KAFKALAKE_EVENTHUBS_CONNECTION_STRING"):
        EventHubs.from_connection_string()
    monkeypatch.setenv("KAFKALAKE_EVENTHUBS_CONNECTION_STRING", CS + ";EntityPath=dev")
    assert isinstance(EventHubs.from_connection_string(), EventHubs)
    assert EventHubs.from_connection_string().topic == "dev"


def test_cli_builds_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.parser().parse_args(
        [
            "produce",
            "geo",
            "--eventhubs-connection-string",
            CS + ";EntityPath=dev",
            "-X",
            "linger.ms=20",
        ]
    )
    servers, config, topic = cli._kafka_target(args, args.topic)
    assert servers == "streampoc.servicebus.windows.net:9093"
    assert topic == "dev"
    assert config["sasl.password"] == CS + ";EntityPath=dev"
    assert config["linger.ms"] == "20"

    monkeypatch.setenv("KAFKALAKE_EVENTHUBS_CONNECTION_STRING", CS)
    args = cli.parser().parse_args(["ingest", "dev", "--table", "/tmp/x", "--eventhubs"])
    servers, config, topic = cli._kafka_target(args, args.topics[0])
    assert (servers, topic) == ("streampoc.servicebus.windows.net:9093", "dev")

    args = cli.parser().parse_args(["ingest", "--table", "/tmp/x", "--eventhubs"])
    with pytest.raises(ConfigError, match="no EntityPath"):
        cli._kafka_target(args, None)

    args = cli.parser().parse_args(
        ["produce", "geo", "--eventhubs", "--bootstrap-servers", "localhost:9092"]
    )
    with pytest.raises(InvalidArgumentError, match="not both"):
        cli._kafka_target(args, None)
