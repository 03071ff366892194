"""kafkalake: realistic event streams through Kafka, from Python, with a Rust engine.

Quick start::

    import kafkalake, pyarrow as pa

    table = pa.table(kafkalake.generate("iot", 10_000, seed=42))
    with kafkalake.EmbeddedKafka() as kafka:
        report = kafkalake.produce("iot", "telemetry", count=50_000, rate=10_000,
                                   bootstrap_servers=kafka.bootstrap_servers)
    print(report)
"""

from kafkalake import admin, exceptions, jobs, pipeline
from kafkalake._config import load_env_file
from kafkalake._kafkalake import __version__
from kafkalake.admin import lag
from kafkalake.capture import read_capture
from kafkalake.embedded import EmbeddedKafka
from kafkalake.eventhubs import EventHubs
from kafkalake.generate import PROFILES, Profile, generate, profile_schema, sample
from kafkalake.ingest import (
    BatchConsumer,
    CompactReport,
    ConsumedBatch,
    IngestReport,
    compact,
    ingest,
    start_ingest,
)
from kafkalake.jobs import Job
from kafkalake.monitor import Monitor, monitor
from kafkalake.producer import (
    Compression,
    ProduceReport,
    produce,
    produce_arrow,
    start_produce,
    start_produce_arrow,
)

__all__ = [
    "PROFILES",
    "BatchConsumer",
    "CompactReport",
    "Compression",
    "ConsumedBatch",
    "EmbeddedKafka",
    "EventHubs",
    "IngestReport",
    "Job",
    "Monitor",
    "ProduceReport",
    "Profile",
    "__version__",
    "admin",
    "compact",
    "exceptions",
    "generate",
    "ingest",
    "jobs",
    "lag",
    "load_env_file",
    "monitor",
    "pipeline",
    "produce",
    "produce_arrow",
    "profile_schema",
    "read_capture",
    "sample",
    "start_ingest",
    "start_produce",
    "start_produce_arrow",
]
