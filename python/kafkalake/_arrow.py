"""Typing for Arrow objects exchanged through the Arrow PyCapsule interface."""

from __future__ import annotations

from typing import Any, Protocol


class ArrowStreamExportable(Protocol):
    """Anything with ``__arrow_c_stream__``: a table or stream of record batches.

    ``pyarrow.table(x)``, ``polars.DataFrame(x)`` and ``duckdb.sql("FROM x")``
    accept it without copying.
    """

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


class ArrowArrayExportable(Protocol):
    """Anything with ``__arrow_c_array__``: a single record batch."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, Any]: ...


class ArrowSchemaExportable(Protocol):
    """Anything with ``__arrow_c_schema__``: a schema (``pyarrow.schema(x)`` takes it)."""

    def __arrow_c_schema__(self) -> object: ...
