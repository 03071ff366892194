# Stubs of the Rust extension module; checked against it by mypy.stubtest.
from collections.abc import Callable
from typing import Any, final

from kafkalake._arrow import ArrowSchemaExportable, ArrowStreamExportable
from kafkalake.generate import EventOptions
from kafkalake.producer import ProduceArgs

__all__ = [
    "RawBatchConsumer",
    "RawEmbeddedKafka",
    "RawIngest",
    "RawProduceJob",
    "__version__",
    "compact_table",
    "create_topic",
    "delete_topics",
    "describe_topic",
    "generate",
    "group_offsets",
    "list_groups",
    "list_topics",
    "parse_assignment",
    "profile_schema",
    "profiles",
    "read_capture",
    "reset_offsets",
    "run_stage",
    "sample_messages",
]

__version__: str

def profiles() -> list[str]: ...
def profile_schema(profile: str) -> ArrowSchemaExportable: ...
def sample_messages(profile: str, n: int, *, seed: int = 0) -> list[tuple[bytes | None, bytes]]: ...
def generate(
    profile: str, n: int, events: EventOptions, *, as_messages: bool, batch_size: int
) -> ArrowStreamExportable: ...

@final
class RawProduceJob:
    @staticmethod
    def for_profile(profile: str, produce: ProduceArgs, events: EventOptions) -> RawProduceJob: ...
    @staticmethod
    def for_arrow(
        data: object,
        produce: ProduceArgs,
        *,
        key_column: str | None,
        value_column: str | None,
    ) -> RawProduceJob: ...
    def start(self) -> None: ...
    def wait(self, timeout_s: float) -> bool: ...
    def cancel(self) -> None: ...
    def progress(self) -> tuple[int, int, int, int, float]: ...
    def result(self) -> tuple[dict[str, Any], BaseException | None]: ...

@final
class RawEmbeddedKafka:
    def __new__(cls, brokers: int, partitions: int) -> RawEmbeddedKafka: ...
    @property
    def bootstrap_servers(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def create_topic(self, topic: str, partitions: int | None = None) -> None: ...
    def stop(self) -> None: ...
    @staticmethod
    def retention() -> tuple[int, int]: ...

def compact_table(
    uri: str,
    *,
    storage_options: dict[str, str],
    target_file_size: int,
    min_files: int,
) -> tuple[int, int, int, int | None]: ...
def run_stage(
    name: str,
    *,
    source: str,
    target: str,
    storage_options: dict[str, str],
    kind: str,
    sql: str | None,
    where_clause: str | None,
    dedupe_key: list[str] | None,
    dedupe_time: str | None,
    dedupe_within_us: int | None,
    window_time: str | None,
    window_size_us: int | None,
    window_watermark_us: int | None,
    keep_late: bool,
    group_by: list[str],
    aggregates: list[tuple[str, str]],
    expectations: list[tuple[str, str, str]],
    table_properties: dict[str, str],
    partition_by: list[str],
    max_versions: int,
    transform: Callable[[Any], Any] | None = None,
) -> dict[str, Any]: ...
def read_capture(
    uri: str,
    *,
    storage_options: dict[str, str],
    decode_body: bool,
    body_schema: object | None,
    flatten: bool,
) -> ArrowStreamExportable: ...

@final
class RawIngest:
    def __new__(
        cls,
        *,
        bootstrap_servers: str,
        topics: list[str],
        group_id: str,
        config: dict[str, str],
        connect_timeout_s: float,
        start: str,
        start_offsets: dict[tuple[str, int], int] | None,
        start_timestamp_ms: int | None,
        max_rows: int,
        max_bytes: int,
        max_latency_s: float,
        sink: str,
        uri: str,
        storage_options: dict[str, str],
        name: str,
        partition_by: list[str],
        date_column: tuple[str, str] | None,
        target_file_size: int | None,
        checkpoint_interval: int,
        schema: object | None,
        metadata_columns: bool,
        flatten: bool,
        max_message_bytes: int,
        dead_letter_uri: str,
        mode: str,
        duration_s: float | None,
        capture: tuple[str, str | None, bool] | None = None,
        evolve_schema: bool = True,
        compact: tuple[int, int, int] | None = None,
        caught_up_timeout_s: float | None = None,
        max_columns: int = 500,
        table_properties: dict[str, str] = ...,
    ) -> RawIngest: ...
    def start(self) -> None: ...
    def wait(self, timeout_s: float) -> bool: ...
    def cancel(self) -> None: ...
    def metrics(self) -> dict[str, Any]: ...
    def histograms(self) -> dict[str, tuple[list[tuple[float, int]], int, float]]: ...
    def result(self) -> tuple[dict[str, Any], BaseException | None]: ...

@final
class RawBatchConsumer:
    def __new__(
        cls,
        *,
        bootstrap_servers: str,
        topics: list[str],
        group_id: str,
        config: dict[str, str],
        connect_timeout_s: float,
        start: str,
        start_offsets: dict[tuple[str, int], int] | None,
        start_timestamp_ms: int | None,
        max_rows: int,
        max_bytes: int,
        max_latency_s: float,
        schema: object | None,
        metadata_columns: bool,
        flatten: bool,
        max_message_bytes: int,
    ) -> RawBatchConsumer: ...
    def poll(
        self, timeout_s: float
    ) -> tuple[ArrowStreamExportable, ArrowStreamExportable, list[tuple[str, int, int]]] | None: ...
    def commit(self, offsets: list[tuple[str, int, int]]) -> None: ...
    def assignment(self) -> list[tuple[str, int]]: ...
    def close(self) -> None: ...

def group_offsets(
    bootstrap_servers: str,
    group: str,
    topics: list[str],
    config: dict[str, str],
    connect_timeout_s: float,
) -> list[tuple[str, int, int | None, int, int]]: ...
def reset_offsets(
    bootstrap_servers: str,
    group: str,
    topics: list[str],
    config: dict[str, str],
    connect_timeout_s: float,
    to: str,
    value: int | None = None,
) -> list[tuple[str, int, int | None, int, int]]: ...
def create_topic(
    bootstrap_servers: str,
    topic: str,
    config: dict[str, str],
    connect_timeout_s: float,
    partitions: int | None,
    replication_factor: int,
    topic_config: list[tuple[str, str]],
) -> None: ...
def list_topics(
    bootstrap_servers: str, config: dict[str, str], connect_timeout_s: float
) -> list[tuple[str, int]]: ...
def describe_topic(
    bootstrap_servers: str, topic: str, config: dict[str, str], connect_timeout_s: float
) -> tuple[list[tuple[int, int, list[int], list[int], int, int]], list[tuple[str, str]] | None]: ...
def delete_topics(
    bootstrap_servers: str, topics: list[str], config: dict[str, str], connect_timeout_s: float
) -> None: ...
def list_groups(
    bootstrap_servers: str,
    group: str | None,
    config: dict[str, str],
    connect_timeout_s: float,
) -> list[tuple[str, str, str, str, list[tuple[str, str, str, list[tuple[str, int]]]]]]: ...
def parse_assignment(data: bytes) -> list[tuple[str, int]]: ...
