# Stubs of the Rust extension module; checked against it by mypy.stubtest.
from collections.abc import Callable
from typing import Any, final

from kafkalake._arrow import ArrowSchemaExportable, ArrowStreamExportable
from kafkalake.generate import EventOptions
from kafkalake.ingest import ConsumerArgs, DecodeArgs, IngestArgs
from kafkalake.pipeline import StageArgs
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
    args: StageArgs,
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
    def __new__(cls, consumer: ConsumerArgs, ingest: IngestArgs) -> RawIngest: ...
    def start(self) -> None: ...
    def wait(self, timeout_s: float) -> bool: ...
    def cancel(self) -> None: ...
    def metrics(self) -> dict[str, Any]: ...
    def histograms(self) -> dict[str, tuple[list[tuple[float, int]], int, float]]: ...
    def result(self) -> tuple[dict[str, Any], BaseException | None]: ...

@final
class RawBatchConsumer:
    def __new__(cls, consumer: ConsumerArgs, decode: DecodeArgs) -> RawBatchConsumer: ...
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
