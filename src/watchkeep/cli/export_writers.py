"""Span export files: JSON lines, CSV and Parquet, written page by page at constant memory.

One row per span, with its trace attributes (user, session, environment, release, tags:
the span's own, else its trace's, as the span list serves them). The columns are
``COLUMNS`` in every format; nested values (``attributes``, ``resource_attributes``,
``events``) are JSON objects in JSON lines and JSON text in CSV and Parquet; ``tags`` is
a list (JSON text in CSV). Parquet buffers at most one row group (``ROW_GROUP_ROWS``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

import orjson

from watchkeep.client import Span

if TYPE_CHECKING:
    import pyarrow as pa

Format = Literal["jsonl", "csv", "parquet"]
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Span))
NESTED = ("attributes", "resource_attributes", "events")
ROW_GROUP_ROWS = 20_000


def span_row(span: Span) -> dict[str, Any]:
    """The span as a flat row: ``start_time`` as ISO 8601 UTC, nested values as objects."""
    row = {name: getattr(span, name) for name in COLUMNS}
    row["start_time"] = span.start_time.isoformat()
    if span.tags is not None:
        row["tags"] = list(span.tags)
    return row


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class SpanWriter(Protocol):
    """Takes spans a page at a time; ``close`` finishes the file."""

    def write(self, spans: Iterable[Span]) -> None: ...

    def close(self) -> None: ...


class JsonLinesWriter:
    """One JSON object a line, in ``COLUMNS`` order."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, spans: Iterable[Span]) -> None:
        self._out.write(b"".join(orjson.dumps(span_row(s)) + b"\n" for s in spans))

    def close(self) -> None:
        self._out.flush()


class CsvWriter:
    """A header, then one line per span; nested values and tags as JSON text, None empty."""

    def __init__(self, out: IO[str]) -> None:
        self._csv = csv.writer(out)
        self._out = out
        self._csv.writerow(COLUMNS)

    def write(self, spans: Iterable[Span]) -> None:
        for span in spans:
            row = span_row(span)
            for name in (*NESTED, "tags"):
                row[name] = _json_text(row[name])
            self._csv.writerow(["" if row[c] is None else row[c] for c in COLUMNS])

    def close(self) -> None:
        self._out.flush()


def parquet_schema() -> pa.Schema:
    """The Parquet columns: typed scalars, ``tags`` as list<string>, nested values as JSON text."""
    import pyarrow as pa

    types: dict[str, pa.DataType] = {
        "kind": pa.int32(),
        "status_code": pa.int32(),
        "start_time_unix_nano": pa.int64(),
        "end_time_unix_nano": pa.int64(),
        "input_tokens": pa.int64(),
        "output_tokens": pa.int64(),
        "total_tokens": pa.int64(),
        "duration_ms": pa.float64(),
        "cost_usd": pa.float64(),
        "time_to_first_token_ms": pa.float64(),
        "tags": pa.list_(pa.string()),
        "start_time": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([pa.field(c, types.get(c, pa.string())) for c in COLUMNS])


class ParquetWriter:
    """Row groups of ``ROW_GROUP_ROWS`` spans through ``pyarrow.parquet.ParquetWriter``."""

    def __init__(self, path: Path, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        import pyarrow.parquet as pq

        self._schema = parquet_schema()
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")
        self._rows: list[dict[str, Any]] = []
        self._group = row_group_rows

    def write(self, spans: Iterable[Span]) -> None:
        for span in spans:
            row = span_row(span)
            row["start_time"] = span.start_time
            for name in NESTED:
                row[name] = _json_text(row[name])
            self._rows.append(row)
        if len(self._rows) >= self._group:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


def open_writer(fmt: Format, path: Path, stack: Any) -> SpanWriter:
    """A writer of ``fmt`` into ``path``; files it opens are closed by the ExitStack ``stack``."""
    if fmt == "parquet":
        return ParquetWriter(path)
    if fmt == "csv":
        return CsvWriter(stack.enter_context(path.open("w", newline="", encoding="utf-8")))
    return JsonLinesWriter(stack.enter_context(path.open("wb")))
