"""Exceptions raised by kafkalake.

Every error derives from :class:`KafkalakeError` and, where one fits, from the
closest built-in exception, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kafkalake.ingest import IngestReport
    from kafkalake.producer import ProduceReport

__all__ = [
    "ArrowError",
    "AuthenticationError",
    "BrokerUnreachableError",
    "ConfigError",
    "DeliveryError",
    "DeltaError",
    "ExpectationError",
    "IncompleteError",
    "InvalidArgumentError",
    "KafkaError",
    "KafkalakeError",
    "KafkalakeIOError",
    "MessageTooLargeError",
    "ProduceInterrupted",
    "StorageError",
    "TableError",
    "TlsError",
    "TopicNotFoundError",
]


class KafkalakeError(Exception):
    """Base class of kafkalake's errors.

    Errors raised part-way through a produce run carry the report of what
    was delivered up to then in ``report`` (``None`` otherwise).
    """

    report: ProduceReport | IngestReport | None = None


class InvalidArgumentError(KafkalakeError, ValueError):
    """A bad argument, caught before any work started."""


class ConfigError(KafkalakeError, ValueError):
    """A setting is wrong: librdkafka refused it (unknown key or bad value), or a
    connection string is malformed."""


class BrokerUnreachableError(KafkalakeError, ConnectionError):
    """No broker answered within the stated timeout."""


class AuthenticationError(BrokerUnreachableError, PermissionError):
    """The broker refused the SASL credentials (raised at once, not at the timeout)."""


class TlsError(BrokerUnreachableError):
    """The TLS handshake failed, e.g. the broker's certificate is not trusted
    (raised at once, not at the timeout)."""


class TopicNotFoundError(KafkalakeError, LookupError):
    """The topic does not exist and kafkalake was told not to create it."""


class MessageTooLargeError(KafkalakeError, ValueError):
    """A message is over the producer's or the broker's size limit."""


class KafkaError(KafkalakeError):
    """Any other error reported by the Kafka client or broker."""


class IncompleteError(KafkalakeError):
    """A run could not finish what it was asked: with ``until="caught_up"``,
    partitions held by another member of the consumer group made no progress
    towards the end of their log within ``caught_up_timeout`` (the message
    names them; ``report`` says what this run wrote); or a job ended before
    the counters :meth:`~kafkalake.jobs.Job.wait_for` waited for were reached
    (the message says how far it got)."""


class ExpectationError(KafkalakeError):
    """A pipeline stage's expectation with ``on_violation = "fail"`` failed:
    nothing was committed. The message names the expectation and shows a
    failing row."""


class DeliveryError(KafkaError):
    """Some messages were not acknowledged by the broker; see ``report.errors``."""


class ArrowError(KafkalakeError, ValueError):
    """Arrow data that could not be read or converted."""


class KafkalakeIOError(KafkalakeError, OSError):
    """A file or network I/O error."""


class StorageError(KafkalakeError, OSError):
    """Object storage (local disk, Blob, ADLS) could not be reached or refused a request."""


class TableError(KafkalakeError, ValueError):
    """A table that cannot be used as asked: not a Delta table, or a conflicting schema."""


class DeltaError(KafkalakeError):
    """Any other Delta Lake error."""


class ProduceInterrupted(KeyboardInterrupt):
    """Ctrl-C (or the notebook's stop button) stopped a produce run.

    ``report`` says what was delivered before it stopped.
    """

    def __init__(self, report: ProduceReport) -> None:
        super().__init__(
            f"stopped by the user: {report.acknowledged:,} of {report.sent:,} sent messages "
            f"acknowledged on topic '{report.topic}'"
        )
        self.report = report
