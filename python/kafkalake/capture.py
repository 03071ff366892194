"""Reading Event Hubs Capture-format Avro files (seed 004).

Capture writes one Avro container file per partition and time window with
the record schema ``Microsoft.ServiceBus.Messaging.EventData``
(``SequenceNumber``, ``Offset``, ``EnqueuedTimeUtc``, ``SystemProperties``,
``Properties``, ``Body``). kafkalake writes the same files with
``ingest(..., format="capture")``; :func:`read_capture` reads either.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kafkalake import _kafkalake
from kafkalake._arrow import ArrowSchemaExportable, ArrowStreamExportable

__all__ = ["read_capture"]


def read_capture(
    location: str | Path,
    *,
    storage_options: Mapping[str, str] | None = None,
    decode_body: bool = False,
    body_schema: ArrowSchemaExportable | None = None,
    flatten: bool = False,
) -> ArrowStreamExportable:
    """Read Capture Avro files into an Arrow table.

    Args:
        location: one ``.avro`` file, or a directory / object-store prefix
            under which every ``.avro`` file is read (in path order, which
            for Capture's layout is partition, then time).
        storage_options: object-store options (delta-rs keys), as for
            :func:`kafkalake.ingest`.
        decode_body: replace ``Body`` by the fields of the JSON it holds.
            A body that is not JSON of the schema raises
            :class:`~kafkalake.exceptions.InvalidArgumentError` naming the
            file and sequence number.
        body_schema: schema of the JSON bodies (default: inferred).
        flatten: nested body objects become ``parent.child`` columns.

    Returns:
        A table (``pyarrow.table(t)``, ``polars.DataFrame(t)``) with
        ``SequenceNumber``, ``Offset``, ``EnqueuedTimeUtc`` (a UTC timestamp
        parsed from Capture's ``M/d/yyyy h:mm:ss AM`` text),
        ``SystemProperties`` and ``Properties`` (``map<string, binary>``:
        strings and bytes as they are, numbers as decimal text), ``Body``
        (bytes) or its decoded fields, and ``_file`` (the file each row came
        from).
    """
    uri = str(location) if isinstance(location, Path) else location
    return _kafkalake.read_capture(
        uri,
        storage_options=dict(storage_options or {}),
        decode_body=decode_body,
        body_schema=body_schema,
        flatten=flatten,
    )
