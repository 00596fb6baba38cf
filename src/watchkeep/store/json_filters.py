"""JSON predicates for the trace and span filters, compiled per dialect.

Tags are JSON arrays: SQLite reads them with ``json_each``, PostgreSQL with ``jsonb @>``;
callers build one expression for both. (Metadata are filtered through ``span_metadata``,
ADR 0028.)
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import Boolean


class ArrayHas(ColumnElement[bool]):
    """The JSON array ``array`` contains the string ``value``."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, array: ColumnElement[Any], value: str) -> None:
        self.array = array
        self.text_value = value


@compiles(ArrayHas, "sqlite")
def _array_has_sqlite(element: ArrayHas, compiler: SQLCompiler, **kw: Any) -> str:
    array = compiler.process(element.array, **kw)
    value = compiler.process(bindparam("tag", element.text_value, unique=True), **kw)
    return f"EXISTS (SELECT 1 FROM json_each({array}) WHERE json_each.value = {value})"


@compiles(ArrayHas, "postgresql")
def _array_has_postgres(element: ArrayHas, compiler: SQLCompiler, **kw: Any) -> str:
    array = compiler.process(element.array, **kw)
    value = compiler.process(bindparam("tag", orjson.dumps([element.text_value]).decode(), unique=True), **kw)
    return f"COALESCE(({array}) @> CAST({value} AS JSONB), false)"
