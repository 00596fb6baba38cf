"""Span export files: JSON lines, CSV and Parquet, written page by page at constant memory.

One row per span, with its trace attributes (user, session, environment, release, tags:
the span's own, else its trace's, as the span list serves them). The columns are
``COLUMNS`` in every format; nested values (``attributes``, ``resource_attributes``,
``events``) are JSON objects in JSON lines and JSON text in CSV and Parquet; ``tags`` is
a list (JSON text in CSV). Parquet buffers at most one row group (``ROW_GROUP_ROWS``).
"""

from __future__ import annotations

import csv
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

import orjson

from watchkeep.client import Span

if TYPE_CHECKING:
    import pyarrow as pa

Format = Literal["jsonl", "csv", "parquet"]
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Span))
NESTED = ("attributes", "resource_attributes", "events")
JSON_AT = tuple(COLUMNS.index(c) for c in (*NESTED, "tags"))
TIME_AT = COLUMNS.index("start_time")
ROW_GROUP_ROWS = 20_000


Row = dict[str, Any]


def file_time(value: str) -> str:
    """The server's ``start_time`` (orjson's ``...Z``) as the files write it, ``datetime.isoformat``'s
    ``...+00:00``: the text ``Span.start_time.isoformat()`` gives, without building the datetime."""
    return value[:-1] + "+00:00" if value.endswith("Z") else datetime.fromisoformat(value).isoformat()


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class SpanWriter(Protocol):
    """Takes span rows (``Client.export_rows`` objects) a batch at a time; ``close`` finishes the file."""

    def write(self, rows: list[Row]) -> None: ...

    def close(self) -> None: ...


class JsonLinesWriter:
    """One JSON object a line, in ``COLUMNS`` order. A server row already in that order is
    re-encoded with only ``start_time`` rewritten (orjson round-trips everything else byte
    for byte); any other row is rebuilt column by column."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, rows: list[Row]) -> None:
        dumps, lines = orjson.dumps, []
        for row in rows:
            if tuple(row) != COLUMNS:
                row = {c: row.get(c) for c in COLUMNS}
            row["start_time"] = file_time(row["start_time"])
            lines.append(dumps(row))
        lines.append(b"")
        self._out.write(b"\n".join(lines))

    def close(self) -> None:
        self._out.flush()


class CsvWriter:
    """A header, then one line per span; nested values and tags as JSON text, None empty."""

    def __init__(self, out: IO[str]) -> None:
        self._csv = csv.writer(out)
        self._out = out
        self._csv.writerow(COLUMNS)

    def write(self, rows: list[Row]) -> None:
        self._csv.writerows(map(_csv_values, rows))

    def close(self) -> None:
        self._out.flush()


def _csv_values(row: Row) -> list[Any]:
    values = list(row.values()) if tuple(row) == COLUMNS else list(map(row.get, COLUMNS))
    for i in JSON_AT:
        if values[i] is not None:
            values[i] = orjson.dumps(values[i]).decode()
    values[TIME_AT] = file_time(row["start_time"])
    return values  # csv writes None as an empty field


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
    """Row groups of ``ROW_GROUP_ROWS`` spans through ``pyarrow.parquet.ParquetWriter``, built
    from column lists with the fixed ``parquet_schema`` (types never drift between groups)."""

    def __init__(self, path: Path, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        import pyarrow.parquet as pq

        self._schema = parquet_schema()
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")
        self._columns: list[list[Any]] = [[] for _ in COLUMNS]
        self._group = row_group_rows

    def write(self, rows: list[Row]) -> None:
        for column, name in zip(self._columns, COLUMNS, strict=True):
            if name == "start_time":
                column.extend(datetime.fromisoformat(r[name]) for r in rows)
            elif name in NESTED:
                column.extend(_json_text(r.get(name)) for r in rows)
            else:
                column.extend(r.get(name) for r in rows)
        if len(self._columns[0]) >= self._group:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._columns[0]:
            self._writer.write_batch(pa.RecordBatch.from_arrays(self._columns, schema=self._schema))
            self._columns = [[] for _ in COLUMNS]

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
