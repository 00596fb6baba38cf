"""JSON predicates for the trace and span filters, compiled per dialect.

Tags are JSON arrays and metadata sits in the span's JSON attributes (under the SDK's
``watchkeep.metadata.`` prefix). SQLite reads them with ``json_each``/``json_extract``,
PostgreSQL with ``jsonb @>`` and ``->>``; callers build one expression for both.
Values compare as text (a number ``42`` matches ``"42"``).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import Boolean

from watchkeep.semconv import WK_METADATA_PREFIX


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


class MetadataIs(ColumnElement[bool]):
    """The JSON attributes hold metadata ``key`` (SDK prefix added) with text ``value``."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, attributes: ColumnElement[Any], key: str, value: str) -> None:
        self.attributes = attributes
        self.meta_key = WK_METADATA_PREFIX + key
        self.text_value = value


@compiles(MetadataIs, "sqlite")
def _metadata_sqlite(element: MetadataIs, compiler: SQLCompiler, **kw: Any) -> str:
    attributes = compiler.process(element.attributes, **kw)
    path = '$."' + element.meta_key.replace('"', "") + '"'
    path_sql = compiler.process(bindparam("meta_path", path, unique=True), **kw)
    value = compiler.process(bindparam("meta_value", element.text_value, unique=True), **kw)
    return f"CAST(json_extract({attributes}, {path_sql}) AS TEXT) = {value}"


@compiles(MetadataIs, "postgresql")
def _metadata_postgres(element: MetadataIs, compiler: SQLCompiler, **kw: Any) -> str:
    attributes = compiler.process(element.attributes, **kw)
    key = compiler.process(bindparam("meta_key", element.meta_key, unique=True), **kw)
    value = compiler.process(bindparam("meta_value", element.text_value, unique=True), **kw)
    return f"(({attributes}) ->> {key}) = {value}"
