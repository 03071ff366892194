"""The ``kafkalake`` command."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from kafkalake import __version__
from kafkalake.embedded import EmbeddedKafka
from kafkalake.eventhubs import ENV_VAR as EVENTHUBS_ENV
from kafkalake.eventhubs import EventHubs
from kafkalake.exceptions import (
    InvalidArgumentError,
    KafkalakeError,
    ProduceInterrupted,
)
from kafkalake.generate import PROFILES, Profile, profile_schema, sample
from kafkalake.producer import ProduceReport, produce

BOOTSTRAP_ENV = "KAFKALAKE_BOOTSTRAP_SERVERS"


def _config_pairs(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"-X takes key=value (a librdkafka setting), got {pair!r}")
        out[key] = value
    return out


def _kafka_target(
    args: argparse.Namespace, topic: str | None
) -> tuple[str | None, dict[str, str], str | None]:
    """Brokers, librdkafka settings and topic from --bootstrap-servers / -X, or from
    an Event Hubs connection string (--eventhubs-connection-string, or the
    environment variable with --eventhubs)."""
    config = _config_pairs(args.config)
    cs = args.eventhubs_connection_string
    if cs is None and args.eventhubs:
        cs = os.environ.get(EVENTHUBS_ENV)
        if not cs:
            raise InvalidArgumentError(f"--eventhubs needs ${EVENTHUBS_ENV} set")
    if cs is None:
        return args.bootstrap_servers or os.environ.get(BOOTSTRAP_ENV), config, topic
    if args.bootstrap_servers:
        raise InvalidArgumentError(
            "give either --bootstrap-servers or an Event Hubs connection string, not both"
        )
    eh = EventHubs.from_connection_string(cs, eventhub=topic)
    return eh.bootstrap_servers, {**eh.config, **config}, eh.require_topic()


def _add_eventhubs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--eventhubs",
        action="store_true",
        help=f"connect to Azure Event Hubs with the connection string in ${EVENTHUBS_ENV}",
    )
    p.add_argument(
        "--eventhubs-connection-string",
        metavar="CS",
        help="connect to Azure Event Hubs (port 9093, SASL_SSL) with this connection "
        f"string; prefer ${EVENTHUBS_ENV} with --eventhubs (command lines are visible to "
        "other users)",
    )


def _profile_list(text: str) -> list[Profile]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in PROFILES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown profile(s) {', '.join(bad) or text!r}; choose from {', '.join(PROFILES)}"
        )
    return names  # type: ignore[return-value]


def _rate(text: str) -> float | None:
    value = float(text)
    return None if value == 0 else value


def _report_row(profile: str, r: ProduceReport) -> str:
    mb_s = r.bytes / 1e6 / r.elapsed_seconds if r.elapsed_seconds else 0.0
    return (
        f"{profile:<12}{r.sent:>10,}{r.acknowledged:>10,}{r.failed:>8,}"
        f"{r.rate:>14,.0f}{mb_s:>10,.1f}"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    print(f"kafkalake {__version__} demo: an embedded Kafka cluster (librdkafka's mock")
    print("cluster, inside this process: no broker, no cloud), then a few seconds of each")
    print(f"event profile at {args.rate or 'unlimited'} events/s.\n")
    with EmbeddedKafka(partitions=args.partitions) as kafka:
        print(f"embedded Kafka at {kafka.bootstrap_servers}\n")
        print(f"{'profile':<12}{'sent':>10}{'acked':>10}{'failed':>8}{'msg/s':>14}{'MB/s':>10}")
        for profile in args.profiles:
            report = produce(
                profile,
                f"demo-{profile}",
                bootstrap_servers=kafka.bootstrap_servers,
                duration=args.seconds,
                rate=args.rate,
                seed=args.seed,
                progress=False,
            )
            print(_report_row(profile, report), flush=True)
        if args.ingest:
            _demo_ingest(kafka, args)
    print("\nOne message of each profile (key, then value):")
    for profile in args.profiles:
        ((key, value),) = sample(profile, 1, seed=args.seed)
        print(f"\n[{profile}] key={key.decode() if key else None}")
        print(json.dumps(json.loads(value), indent=2, ensure_ascii=False))
    print("\nNext: kafkalake produce --help, or see README.md for the Python API.")
    return 0


def _demo_ingest(kafka: EmbeddedKafka, args: argparse.Namespace) -> None:
    import tempfile

    from kafkalake.ingest import ingest

    # Small enough for the embedded cluster's 5 MiB per partition.
    n, partitions = 20_000, 8
    topic = "demo-ingest"
    servers = kafka.bootstrap_servers
    kafka.create_topic(topic, partitions)
    print(f"\nProduce {n:,} iot events to '{topic}' ({partitions} partitions), then ingest them")
    print("into a Delta table, exactly once, and query it:")
    produce(
        "iot",
        topic,
        bootstrap_servers=servers,
        count=n,
        seed=args.seed,
        duplicate_ratio=0.0,
        progress=False,
    )
    table = args.table or tempfile.mkdtemp(prefix="kafkalake-demo-") + "/iot"
    report = ingest(
        topic,
        table,
        bootstrap_servers=servers,
        metadata_columns=True,
        date_column=("createdAt", "date"),
        partition_by=["date"],
        progress=False,
    )
    print(f"  {report}")
    from deltalake import DeltaTable

    dt = DeltaTable(table)
    data = dt.to_pyarrow_table()
    print(
        f"  table {table}: version {dt.version()}, {data.num_rows:,} rows, "
        f"{len(dt.file_uris())} files, partitioned by {dt.metadata().partition_columns}"
    )
    offsets = set(
        zip(data.column("_partition").to_pylist(), data.column("_offset").to_pylist(), strict=True)
    )
    print(f"  distinct (partition, offset) pairs: {len(offsets):,} (produced: {n:,})")
    by_type = data.group_by("type").aggregate([("value", "mean"), ("value", "count")])
    for row in sorted(by_type.to_pylist(), key=lambda r: str(r["type"])):
        print(
            f"    {row['type']:<10} {row['value_count']:>7,} events, mean value "
            f"{row['value_mean']:.2f}"
        )


def cmd_produce(args: argparse.Namespace) -> int:
    log_path = Path(args.delivery_log) if args.delivery_log else None
    if log_path is not None and log_path.suffix not in (".csv", ".parquet"):
        raise InvalidArgumentError(
            f"--delivery-log {log_path}: name a .csv or a .parquet file to write the log to"
        )
    servers, config, topic = _kafka_target(args, args.topic)
    if topic is None:
        raise InvalidArgumentError("--topic is required (or an Event Hubs EntityPath)")
    embedded = None
    if args.embedded:
        embedded = EmbeddedKafka(partitions=args.partitions or 4)
        servers = embedded.bootstrap_servers
    if not servers:
        raise InvalidArgumentError(
            f"no brokers given: pass --bootstrap-servers host:port, set {BOOTSTRAP_ENV}, "
            "or use --embedded"
        )
    try:
        report = produce(
            args.profile,
            topic,
            bootstrap_servers=servers,
            count=args.count,
            duration=args.duration,
            rate=args.rate,
            config=config,
            idempotent=not args.no_idempotence,
            compression=args.compression,
            create_topic=not args.no_create_topic,
            partitions=args.partitions,
            connect_timeout=args.connect_timeout,
            seed=args.seed,
            duplicate_ratio=args.duplicate_ratio,
            late_ratio=args.late_ratio,
            max_lateness=args.max_lateness,
            malformed_ratio=args.malformed_ratio,
            key_field=args.key_field,
            keyed=not args.no_key,
            devices=args.devices,
            start_time=None
            if args.start_time is None
            else _datetime_arg("--start-time", args.start_time),
            flush_timeout=args.flush_timeout,
            replication_factor=args.replication_factor,
            sender=args.sender,
            partition=args.partition,
            delivery_log=log_path is not None,
            raise_on_failure=False,
        )
    finally:
        if embedded is not None:
            embedded.stop()
    if log_path is not None and report.delivery_log is not None:
        _write_table(report.delivery_log, log_path)
    if args.json:
        print(json.dumps({k: v for k, v in report.__dict__.items() if k != "delivery_log"}))
    else:
        print(report)
    return 1 if report.failed else 0


def _datetime_arg(flag: str, text: str) -> Any:
    """An ISO 8601 time given on the command line (naive means UTC)."""
    from datetime import UTC, datetime

    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(
            f"{flag} takes an ISO 8601 time such as 2026-01-05T10:00:00Z, got {text!r}"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _default(fn: Any, name: str) -> Any:
    """The default of ``fn``'s parameter ``name``: a flag's default comes from
    the function it feeds, never from a second copy."""
    return inspect.signature(fn).parameters[name].default


def _write_table(table: Any, path: Path) -> None:
    """Write a pyarrow table as CSV or Parquet, by the file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pcsv  # type: ignore[import-untyped]

        pcsv.write_csv(table, path)


def cmd_ingest(args: argparse.Namespace) -> int:
    from kafkalake.ingest import ingest

    if len(args.topics) > 1 and (args.eventhubs or args.eventhubs_connection_string):
        raise InvalidArgumentError("with Event Hubs, ingest one event hub per run")
    servers, config, topic = _kafka_target(args, args.topics[0] if args.topics else None)
    if not servers:
        raise InvalidArgumentError(
            f"no brokers given: pass --bootstrap-servers host:port, set {BOOTSTRAP_ENV}, "
            f"or use --eventhubs with ${EVENTHUBS_ENV}"
        )
    topics = args.topics or ([topic] if topic else [])
    if not topics:
        raise InvalidArgumentError("name the topics to ingest (or an Event Hubs EntityPath)")
    until: str | float = args.until
    if until not in ("caught_up", "forever"):
        try:
            until = float(until)
        except ValueError:
            raise InvalidArgumentError(
                f"--until takes caught_up, forever or a number of seconds, got {until!r}"
            ) from None
    date_column = None
    if args.date_from:
        date_column = (args.date_from, "date")
    start: Any = args.start
    if start not in ("earliest", "latest"):
        start = _datetime_arg("--start", start)
    report = ingest(
        topics,
        args.table,
        bootstrap_servers=servers,
        format=args.format,
        name=args.name,
        group_id=args.group_id,
        until=until,  # type: ignore[arg-type]
        partition_by=args.partition_by or (["date"] if args.date_from else []),
        date_column=date_column,
        metadata_columns=args.metadata_columns,
        max_rows=args.max_rows,
        max_latency=args.max_latency,
        config=config,
        storage_options=_config_pairs(args.storage_option),
        dead_letter_table=args.dead_letter_table,
        capture_namespace=args.capture_namespace,
        capture_eventhub=args.capture_eventhub,
        capture_codec=args.capture_codec,
        caught_up_timeout=args.caught_up_timeout,
        table_properties=_config_pairs(args.table_property),
        metrics_port=args.metrics_port,
        start=start,
        flatten=args.flatten,
        max_bytes=args.max_bytes,
        max_message_bytes=args.max_message_bytes,
        target_file_size=args.target_file_size,
        checkpoint_interval=args.checkpoint_interval,
        connect_timeout=args.connect_timeout,
        evolve_schema=not args.no_evolve_schema,
        compact_every=args.compact_every,
        compact_min_files=args.compact_min_files,
        max_columns=args.max_columns,
    )
    if args.json:
        print(json.dumps(report.__dict__))
    else:
        print(report)
    return 130 if report.interrupted else 0


def cmd_read_capture(args: argparse.Namespace) -> int:
    import pyarrow as pa

    from kafkalake.capture import read_capture

    table = pa.table(
        read_capture(
            args.location,
            storage_options=_config_pairs(args.storage_option),
            decode_body=args.decode_body,
        )
    )
    files = len(set(table.column("_file").to_pylist())) if table.num_rows else 0
    print(f"{table.num_rows:,} events in {files:,} files under {args.location}")
    print(table.schema)
    for row in table.slice(0, args.limit).to_pylist():
        print({k: v for k, v in row.items() if k != "_file"})
    return 0


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from kafkalake import pipeline

    report = pipeline.run(
        args.file,
        until=args.until,
        stage=args.stage or None,
        poll_interval=args.poll_interval,
        storage_options=_config_pairs(args.storage_option),
        progress=False if args.json else None,
        metrics_port=args.metrics_port,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "cycles": report.cycles,
                    "seconds": report.seconds,
                    "interrupted": report.interrupted,
                    "bronze": {k: dataclasses.asdict(r) for k, r in report.bronze.items()},
                    "stages": {k: dataclasses.asdict(r) for k, r in report.stages.items()},
                },
                default=str,
            )
        )
    else:
        print(report)
    return 130 if report.interrupted else 0


def _add_metrics_port(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics at http://<host>:PORT/metrics while running",
    )


def _group_target(args: argparse.Namespace) -> tuple[str, dict[str, str], list[str] | None]:
    topic = args.topic[0] if args.topic and len(args.topic) == 1 else None
    servers, config, eh_topic = _kafka_target(args, topic)
    if not servers:
        raise InvalidArgumentError(f"give --bootstrap-servers (or set ${BOOTSTRAP_ENV})")
    topics = args.topic or ([eh_topic] if eh_topic else None)
    return servers, config, topics


def cmd_lag(args: argparse.Namespace) -> int:
    from kafkalake.admin import lag

    servers, config, topics = _group_target(args)
    table = lag(
        args.group,
        topics,
        bootstrap_servers=servers,
        config=config,
        connect_timeout=args.connect_timeout,
        table=args.table,
        name=args.name,
        storage_options=_config_pairs(args.storage_option),
    )
    rows = table.to_pylist()
    if args.json:
        print(json.dumps(rows))
        return 0
    cols = table.column_names
    print("  ".join(f"{c:>16}" for c in cols))
    for r in rows:
        print("  ".join(f"{'-' if r[c] is None else r[c]:>16}" for c in cols))
    print(f"total lag: {sum(r['lag'] for r in rows):,} messages")
    return 0


def cmd_groups(args: argparse.Namespace) -> int:
    from kafkalake.admin import list_groups

    servers, config, _ = _kafka_target(args, None)
    if not servers:
        raise InvalidArgumentError(f"give --bootstrap-servers (or set ${BOOTSTRAP_ENV})")
    groups = list_groups(
        args.group, bootstrap_servers=servers, config=config, connect_timeout=args.connect_timeout
    )
    if args.json:
        print(json.dumps([dataclasses.asdict(g) for g in groups]))
        return 0
    if not groups:
        print("no consumer groups")
    for g in groups:
        print(f"{g.group}  state={g.state}  protocol={g.protocol or '-'}  members={len(g.members)}")
        for m in g.members:
            by_topic: dict[str, list[int]] = {}
            for t, p in m.assignment:
                by_topic.setdefault(t, []).append(p)
            assigned = ", ".join(f"{t}{sorted(ps)}" for t, ps in by_topic.items()) or "nothing"
            print(f"  {m.client_id} ({m.member_id}, {m.client_host}): {assigned}")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    import time

    from kafkalake.monitor import Monitor

    servers, config, topics = _group_target(args)
    if not args.every > 0:
        raise InvalidArgumentError(f"--every must be positive, got {args.every}")
    m = Monitor(groups=[args.group], topics=topics, bootstrap_servers=servers, config=config)
    n = 0
    try:
        while args.count is None or n < args.count:
            s = m.read()
            clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
            sys.stdout.write(f"{clear}{m.text(s)}\n\n")
            sys.stdout.flush()
            n += 1
            if args.count is None or n < args.count:
                time.sleep(args.every)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    for profile in get_args(Profile):
        ((key, value),) = sample(profile, 1)
        print(f"{profile}  (key: {key.decode() if key else None})")
        if args.schema:
            import pyarrow as pa

            print("  " + str(pa.schema(profile_schema(profile))).replace("\n", "\n  "))
        else:
            print(f"  {value.decode()}")
    return 0


def parser() -> argparse.ArgumentParser:
    from kafkalake.ingest import ingest as ingest_fn

    p = argparse.ArgumentParser(
        prog="kafkalake",
        description="Realistic event streams through Kafka, with a Rust engine.",
    )
    p.add_argument("--version", action="version", version=f"kafkalake {__version__}")
    p.add_argument(
        "--env-file",
        metavar="PATH",
        help="load KEY=VALUE lines (AZURE_*, KAFKALAKE_*) into the environment first",
    )
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="produce each profile to an embedded Kafka cluster")
    d.add_argument("--seconds", type=float, default=2.0, help="per profile (default 2)")
    d.add_argument(
        "--rate", type=_rate, default=20_000.0, help="events/s, 0 for unlimited (default 20000)"
    )
    d.add_argument(
        "--profiles",
        type=_profile_list,
        default=list(PROFILES),
        help="comma-separated (default: all)",
    )
    d.add_argument("--partitions", type=int, default=4)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument(
        "--no-ingest",
        dest="ingest",
        action="store_false",
        help="skip the produce → ingest → query step",
    )
    d.add_argument("--table", help="where the demo's Delta table goes (default: a temp dir)")
    d.set_defaults(func=cmd_demo)

    pr = sub.add_parser("produce", help="produce a profile's events to a topic")
    pr.add_argument("profile", choices=PROFILES)
    pr.add_argument("--topic", help="the topic (default with Event Hubs: its EntityPath)")
    pr.add_argument("--bootstrap-servers", help=f"host:port[,…] (or ${BOOTSTRAP_ENV})")
    _add_eventhubs_args(pr)
    pr.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded cluster for this run (for trying things)",
    )
    pr.add_argument("--count", type=int, help="stop after this many events")
    pr.add_argument("--duration", type=float, help="stop after this many seconds")
    pr.add_argument("--rate", type=_rate, help="events/s (default/0: unlimited)")
    pr.add_argument(
        "-X",
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a librdkafka setting, e.g. -X linger.ms=20 (repeatable)",
    )
    pr.add_argument(
        "--compression", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"]
    )
    pr.add_argument("--no-idempotence", action="store_true")
    pr.add_argument(
        "--no-create-topic", action="store_true", help="fail if the topic does not exist"
    )
    pr.add_argument("--partitions", type=int, help="partitions of a created topic (default 4)")
    pr.add_argument("--connect-timeout", type=float, default=10.0, help="seconds (default 10)")
    pr.add_argument("--seed", type=int, default=_default(produce, "seed"))
    pr.add_argument("--duplicate-ratio", type=float)
    pr.add_argument("--late-ratio", type=float, default=_default(produce, "late_ratio"))
    pr.add_argument(
        "--max-lateness", type=float, default=_default(produce, "max_lateness"), help="seconds"
    )
    pr.add_argument("--malformed-ratio", type=float, default=_default(produce, "malformed_ratio"))
    pr.add_argument("--key-field")
    pr.add_argument("--no-key", action="store_true")
    pr.add_argument("--devices", type=int, default=_default(produce, "devices"))
    pr.add_argument("--start-time", help="event time of the first event, ISO 8601 (default: now)")
    pr.add_argument(
        "--flush-timeout",
        type=float,
        default=_default(produce, "flush_timeout"),
        help="seconds to wait for the last acknowledgements",
    )
    pr.add_argument(
        "--replication-factor",
        type=int,
        default=_default(produce, "replication_factor"),
        help="of a created topic",
    )
    pr.add_argument("--sender", help="the sender field of geo events (default kafkalake)")
    pr.add_argument(
        "--partition", type=int, help="send every event to this partition (default: by key)"
    )
    pr.add_argument(
        "--delivery-log",
        metavar="FILE",
        help="write where each message went (partition, offset, timestamp) to a .csv "
        "or .parquet file",
    )
    pr.add_argument("--json", action="store_true", help="print the report as JSON")
    pr.set_defaults(func=cmd_produce)

    ig = sub.add_parser("ingest", help="ingest topics into a Delta table or Parquet files")
    ig.add_argument("topics", nargs="*", help="(default with Event Hubs: its EntityPath)")
    ig.add_argument("--table", required=True, help="Delta table or Parquet directory (path or URI)")
    ig.add_argument("--format", choices=["delta", "parquet", "capture"], default="delta")
    ig.add_argument(
        "--capture-namespace", default="kafkalake", help="Capture layout: {Namespace} folder"
    )
    ig.add_argument("--capture-eventhub", help="Capture layout: {EventHub} folder (default: topic)")
    ig.add_argument("--capture-codec", choices=["null", "deflate"], default="null")
    ig.add_argument("--bootstrap-servers", help=f"host:port[,…] (or ${BOOTSTRAP_ENV})")
    _add_eventhubs_args(ig)
    ig.add_argument("--name", help="ingest name (default: the table's last path component)")
    ig.add_argument("--group-id")
    ig.add_argument(
        "--until", default="caught_up", help="caught_up (default), forever, or a number of seconds"
    )
    ig.add_argument(
        "--caught-up-timeout",
        type=float,
        help="with --until caught_up: seconds partitions held by other workers may make no "
        "progress before the run fails naming them (default: takeover time + 60 s, 120 s "
        "with the defaults)",
    )
    ig.add_argument("--partition-by", action="append")
    ig.add_argument("--date-from", help="timestamp column to derive a 'date' partition from")
    ig.add_argument("--metadata-columns", action="store_true")
    ig.add_argument(
        "--start",
        default=_default(ingest_fn, "start"),
        help="where partitions with nothing stored start: earliest (default), latest, or an "
        "ISO 8601 time (the first message at or after it)",
    )
    ig.add_argument("--flatten", action="store_true", help="nested objects as column_child")
    ig.add_argument("--max-rows", type=int, default=_default(ingest_fn, "max_rows"))
    ig.add_argument(
        "--max-bytes", type=int, default=_default(ingest_fn, "max_bytes"), help="per batch"
    )
    ig.add_argument(
        "--max-latency", type=float, default=_default(ingest_fn, "max_latency"), help="seconds"
    )
    ig.add_argument(
        "--max-message-bytes",
        type=int,
        default=_default(ingest_fn, "max_message_bytes"),
        help="larger messages go to the dead letters",
    )
    ig.add_argument("--max-columns", type=int, default=_default(ingest_fn, "max_columns"))
    ig.add_argument("--target-file-size", type=int, help="bytes per data file")
    ig.add_argument(
        "--checkpoint-interval",
        type=int,
        default=_default(ingest_fn, "checkpoint_interval"),
        help="Delta checkpoint every this many commits",
    )
    ig.add_argument(
        "--no-evolve-schema", action="store_true", help="new fields go to the dead letters"
    )
    ig.add_argument("--compact-every", type=int, help="compact after this many commits")
    ig.add_argument(
        "--compact-min-files", type=int, default=_default(ingest_fn, "compact_min_files")
    )
    ig.add_argument(
        "--connect-timeout",
        type=float,
        default=_default(ingest_fn, "connect_timeout"),
        help="seconds",
    )
    ig.add_argument("--dead-letter-table")
    ig.add_argument(
        "--table-property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Delta table property of a created table (e.g. quality=bronze)",
    )
    ig.add_argument("-X", "--config", action="append", default=[], metavar="KEY=VALUE")
    ig.add_argument("-S", "--storage-option", action="append", default=[], metavar="KEY=VALUE")
    _add_metrics_port(ig)
    ig.add_argument("--json", action="store_true")
    ig.set_defaults(func=cmd_ingest)

    rc = sub.add_parser(
        "read-capture", help="show Event Hubs Capture Avro files (a file, directory or URI)"
    )
    rc.add_argument("location")
    rc.add_argument("--decode-body", action="store_true", help="JSON bodies as columns")
    rc.add_argument("--limit", type=int, default=5, help="events to print (default 5)")
    rc.add_argument("-S", "--storage-option", action="append", default=[], metavar="KEY=VALUE")
    rc.set_defaults(func=cmd_read_capture)

    pl = sub.add_parser("pipeline", help="run a medallion pipeline file (bronze → silver → gold)")
    pl_sub = pl.add_subparsers(dest="pipeline_command", required=True)
    pr_run = pl_sub.add_parser("run", help="run the pipeline's ingests and stages in order")
    pr_run.add_argument("file", help="pipeline file (TOML)")
    pr_run.add_argument(
        "--until",
        choices=["caught_up", "forever"],
        default="caught_up",
        help="caught_up (default): one pass; forever: passes until Ctrl-C",
    )
    pr_run.add_argument(
        "--stage", action="append", help="run only this entry (e.g. silver.iot); repeatable"
    )
    pr_run.add_argument(
        "--poll-interval", type=float, default=5.0, help="seconds between passes (forever)"
    )
    pr_run.add_argument("-S", "--storage-option", action="append", default=[], metavar="KEY=VALUE")
    _add_metrics_port(pr_run)
    pr_run.add_argument("--json", action="store_true", help="print the report as JSON")
    pr_run.set_defaults(func=cmd_pipeline_run)

    for name, helptext in (
        ("lag", "show a consumer group's committed offsets and lag per partition"),
        ("monitor", "watch a consumer group live: rates in and out, lag per partition"),
    ):
        g = sub.add_parser(name, help=helptext)
        g.add_argument("--group", required=True, help="consumer group id (any group)")
        g.add_argument(
            "--topic", action="append", help="topic to show (default: all the group reads)"
        )
        g.add_argument("--bootstrap-servers", help=f"host:port[,…] (or ${BOOTSTRAP_ENV})")
        _add_eventhubs_args(g)
        g.add_argument("-X", "--config", action="append", default=[], metavar="KEY=VALUE")
        g.add_argument("--connect-timeout", type=float, default=10.0, help="seconds (default 10)")
        if name == "lag":
            g.add_argument("--table", help="a kafkalake Delta table fed by the group")
            g.add_argument("--name", help="the ingest's name, if it was given one")
            g.add_argument(
                "-S", "--storage-option", action="append", default=[], metavar="KEY=VALUE"
            )
            g.add_argument("--json", action="store_true")
            g.set_defaults(func=cmd_lag)
        else:
            g.add_argument("--every", type=float, default=1.0, help="seconds between refreshes")
            g.add_argument("--count", type=int, help="stop after this many refreshes")
            g.set_defaults(func=cmd_monitor)

    gr = sub.add_parser(
        "groups", help="list consumer groups with their members and assigned partitions"
    )
    gr.add_argument("--group", help="only this group")
    gr.add_argument("--bootstrap-servers", help=f"host:port[,…] (or ${BOOTSTRAP_ENV})")
    _add_eventhubs_args(gr)
    gr.add_argument("-X", "--config", action="append", default=[], metavar="KEY=VALUE")
    gr.add_argument("--connect-timeout", type=float, default=10.0, help="seconds (default 10)")
    gr.add_argument("--json", action="store_true")
    gr.set_defaults(func=cmd_groups)

    pf = sub.add_parser("profiles", help="list the event profiles with a sample each")
    pf.add_argument("--schema", action="store_true", help="print Arrow schemas (needs pyarrow)")
    pf.set_defaults(func=cmd_profiles)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kafkalake`` command (``argv``: its arguments, else ``sys.argv``).

    Returns 0 when everything asked for is done; on any failure raises
    ``SystemExit`` with the exit code (2: a bad argument, 1: a failed run,
    130: interrupted) after printing the error. Raising rather than
    returning matters to runners that call the entry point and ignore what
    it returns, as a Databricks ``python_wheel_task`` does: the task fails.
    """
    code = _run(argv)
    if code:
        raise SystemExit(code)
    return 0


def _run(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.env_file:
            from kafkalake._config import load_env_file

            load_env_file(args.env_file)
        code: int = args.func(args)
        return code
    except ProduceInterrupted as e:
        print(f"\n{e.report}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        # Work stops between commits: what was committed stands, nothing half-written.
        print("\nkafkalake: interrupted", file=sys.stderr)
        return 130
    except InvalidArgumentError as e:
        print(f"kafkalake: error: {e}", file=sys.stderr)
        return 2
    except KafkalakeError as e:
        print(f"kafkalake: error: {e}", file=sys.stderr)
        if e.report is not None:
            print(f"before the error: {e.report}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
