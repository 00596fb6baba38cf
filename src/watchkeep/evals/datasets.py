"""Dataset files in and out: parse, validate, hash, split and diff items.

A version is named by the SHA-256 of its items' canonical JSON, so the same rows imported
twice are the same version; an item's ``key`` (given, or derived from its input and
expected output) is what pairs it across versions in a diff and what keeps its split
stable when the dataset grows. Parsing is all-or-nothing unless ``skip_invalid``: a bad
row is reported with its number and nothing partial is ever stored.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchkeep.evals.model import DatasetItem

FORMATS = ("jsonl", "csv", "parquet")
MAX_ITEMS_PER_VERSION = 1_000_000  # re-exported by dataset_repository
MAX_ITEM_BYTES = 1 << 20  # one item's canonical JSON
MAX_DEPTH = 64  # nesting of an item's values
MAX_KEY_CHARS = 200  # dataset_items.item_key
MAX_SPLIT_CHARS = 64  # dataset_items.split
MAX_REPORTED_ERRORS = 20
ITEM_FIELDS = ("input", "expected", "metadata", "split", "id", "key", "trace_id")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
# A CSV cell may hold a whole item (the default cap is 128 KiB); the cap is process-wide.
csv.field_size_limit(max(csv.field_size_limit(), 4 * MAX_ITEM_BYTES))


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was refused; ``row`` is the 1-based line (JSONL) or data row (CSV, Parquet)."""

    row: int
    message: str


class DatasetParseError(ValueError):
    """A file that cannot become a dataset version; ``errors`` holds the first bad rows
    (at most 20), ``total`` how many there were."""

    def __init__(self, errors: list[RowError], total: int | None = None) -> None:
        self.errors = errors[:MAX_REPORTED_ERRORS]
        count = self.total = total if total is not None else len(errors)
        first = "; ".join(f"row {e.row}: {e.message}" if e.row else e.message for e in self.errors[:3])
        more = f" (and {count - 3} more)" if count > 3 else ""
        super().__init__(f"{count} invalid row{'s' if count != 1 else ''}: {first}{more}")


@dataclass(slots=True)
class ParsedItems:
    """The valid items of a file, and the rows skipped (only with ``skip_invalid``)."""

    items: list[DatasetItem]
    skipped: list[RowError] = field(default_factory=list)


class _RowInvalid(ValueError):
    """One row's problem (internal: collected into RowError)."""


# --- canonical JSON and hashes ---------------------------------------------------------


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, no NaN: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_record(item: DatasetItem) -> dict[str, Any]:
    """An item as the plain mapping its hash and the JSONL export are made of."""
    return {
        "key": item.key,
        "input": item.input,
        "expected": item.expected,
        "metadata": dict(item.metadata),
        "split": item.split,
        "trace_id": item.trace_id,
    }


def item_key_for(input: Any, expected: Any) -> str:
    """A stable key for an item that has none: the same input and expected, the same key."""
    return _digest(canonical_json([input, expected]))[:16]


def item_hash(item: DatasetItem) -> str:
    """SHA-256 of the item's canonical JSON (key, input, expected, metadata, split, trace)."""
    return _digest(canonical_json(item_record(item)))


def content_hash_of(item_hashes: Iterable[str]) -> str:
    """The version hash from its items' hashes in order (what the store recomputes)."""
    h = hashlib.sha256()
    for one in item_hashes:
        h.update(one.encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


def content_hash(items: Sequence[DatasetItem]) -> str:
    """SHA-256 over the items' canonical JSON, in order: a version's content address."""
    return content_hash_of(item_hash(i) for i in items)


# --- validation -------------------------------------------------------------------------


def _check_value(value: Any, depth: int = 0) -> Any:
    """``value`` made JSON-able (dates to ISO text), or ``_RowInvalid``."""
    if isinstance(value, str):  # the common case first: checked with one regex pass
        bad = _BAD_CHAR.search(value)
        if bad is not None:
            raise _RowInvalid(
                "text holds a NUL character" if bad.group() == "\x00" else "text holds an unpaired surrogate"
            )
        return value
    if depth > MAX_DEPTH:
        raise _RowInvalid(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict | Mapping):
        return {_check_value(str(k), depth + 1): _check_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_check_value(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _RowInvalid("NaN and infinite numbers are not JSON")
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise _RowInvalid(f"unsupported value of type {type(value).__name__}")


def _text_field(record: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _RowInvalid(f"{name} must be text")
    text = str(value)
    if len(text) > limit:
        raise _RowInvalid(f"{name} is longer than {limit} characters")
    return text


def _item_key(record: Mapping[str, Any]) -> str | None:
    given = [_text_field(record, n, MAX_KEY_CHARS) for n in ("id", "key")]
    if given[0] is not None and given[1] is not None and given[0] != given[1]:
        raise _RowInvalid("id and key differ")
    return given[0] or given[1]


def item_from_record(record: Any) -> DatasetItem:
    """One validated item from a row's mapping; unknown fields go to its metadata."""
    if not isinstance(record, Mapping):
        raise _RowInvalid("a row must be an object")
    record = _check_value(record)
    if record.get("input") is None:
        raise _RowInvalid("input is required")
    metadata = record.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _RowInvalid("metadata must be an object")
    extra = {k: v for k, v in record.items() if k not in ITEM_FIELDS}
    trace_id = _text_field(record, "trace_id", 32)
    if trace_id is not None and not _TRACE_ID.match(trace_id):
        raise _RowInvalid("trace_id must be 32 lowercase hex digits")
    item = DatasetItem(
        key=_item_key(record) or item_key_for(record["input"], record.get("expected")),
        input=record["input"],
        expected=record.get("expected"),
        metadata={**extra, **metadata},
        split=_text_field(record, "split", MAX_SPLIT_CHARS),
        trace_id=trace_id,
    )
    if len(canonical_json(item_record(item)).encode("utf-8")) > MAX_ITEM_BYTES:
        raise _RowInvalid(f"item is larger than {MAX_ITEM_BYTES} bytes")
    return item


# --- readers: each yields (row number, record or the row's error) ------------------------

Row = tuple[int, Any]


def _refuse_constant(name: str) -> Any:
    raise _RowInvalid(f"{name} is not JSON")


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise _RowInvalid("nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise _RowInvalid(f"not JSON: {exc.msg} at column {exc.colno}") from exc


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetParseError([RowError(0, f"not UTF-8 text (byte {exc.start})")]) from exc


def _jsonl_rows(data: bytes) -> Iterator[Row]:
    for number, line in enumerate(_decode(data).split("\n"), start=1):
        if not line.strip():
            continue
        if len(line) > 4 * MAX_ITEM_BYTES:
            yield number, _RowInvalid(f"line is larger than {MAX_ITEM_BYTES} bytes")
            continue
        try:
            yield number, _loads(line)
        except _RowInvalid as exc:
            yield number, exc


def _maybe_structured(text: str) -> Any:
    """A cell that holds a JSON object or array becomes one; anything else stays text."""
    if text.lstrip()[:1] not in ("{", "["):
        return text
    try:
        value = _loads(text)
    except _RowInvalid:
        return text
    return value if isinstance(value, dict | list) else text


def _csv_record(row: Mapping[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for name, cell in row.items():
        if name is None or isinstance(cell, list):
            raise _RowInvalid("more cells than header columns")
        if cell is None:
            raise _RowInvalid("fewer cells than header columns")
        if name in ("input", "expected"):
            record[name] = _maybe_structured(cell) if cell != "" else None
        elif name == "metadata" and cell:
            value = _maybe_structured(cell)
            metadata.update(value if isinstance(value, dict) else {"metadata": value})
        elif name in ITEM_FIELDS:
            record[name] = cell or None
        elif cell != "":
            metadata[name] = cell
    record["metadata"] = metadata
    return record


def _csv_rows(data: bytes) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(_decode(data), newline=""))
    try:
        header = reader.fieldnames or []
        if len(set(header)) != len(header):
            raise DatasetParseError([RowError(0, "the header repeats a column name")])
        if "input" not in header:
            raise DatasetParseError([RowError(0, "the header has no input column")])
        for number, row in enumerate(reader, start=1):
            try:
                yield number, _csv_record(row)
            except _RowInvalid as exc:
                yield number, exc
    except csv.Error as exc:
        raise DatasetParseError([RowError(reader.line_num, f"malformed CSV: {exc}")]) from exc


def _parquet_rows(data: bytes) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
        records = table.to_pylist()
    except Exception as exc:  # pyarrow raises many types on a bad file
        raise DatasetParseError([RowError(0, f"not a readable Parquet file: {exc}")]) from exc
    if "input" not in table.column_names:
        raise DatasetParseError([RowError(0, "the file has no input column")])
    for number, record in enumerate(records, start=1):
        for name in ("input", "expected", "metadata"):
            if isinstance(record.get(name), str):
                record[name] = _maybe_structured(record[name])
        yield number, record


_READERS = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}


def parse_items(
    data: bytes, fmt: str, *, max_items: int = MAX_ITEMS_PER_VERSION, skip_invalid: bool = False
) -> ParsedItems:
    """The items of a JSONL, CSV or Parquet file. Any bad row (or a repeated key) raises
    ``DatasetParseError`` listing rows, unless ``skip_invalid``: then bad rows are left out
    and reported. More than ``max_items`` rows, or none valid, is always an error."""
    if fmt not in _READERS:
        raise DatasetParseError([RowError(0, f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")])
    items: list[DatasetItem] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, record in _READERS[fmt](data):
        if len(items) + len(errors) >= max_items:
            raise DatasetParseError([RowError(number, f"more than {max_items} items")])
        try:
            if isinstance(record, _RowInvalid):
                raise record
            item = item_from_record(record)
            if item.key in seen:
                raise _RowInvalid(f"key {item.key!r} repeats row {seen[item.key]}")
        except _RowInvalid as exc:
            errors.append(RowError(number, str(exc)))
            continue
        seen[item.key] = number
        items.append(item)
    if errors and not skip_invalid:
        raise DatasetParseError(errors, len(errors))
    if not items:
        raise DatasetParseError([*errors[: MAX_REPORTED_ERRORS - 1], RowError(0, "no valid items")])
    return ParsedItems(items, errors)


def detect_format(filename: str) -> str:
    """The format a file name's extension names (``.jsonl``/``.json``, ``.csv``, ``.parquet``)."""
    lower = filename.lower()
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"), (".csv", "csv")):
        if lower.endswith(suffix):
            return fmt
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    raise ValueError(f"cannot tell the format of {filename!r}: name one ({', '.join(FORMATS)})")


# --- export -------------------------------------------------------------------------------


def _flat(value: Any) -> str | None:
    """A value as a CSV/Parquet cell: text as is, anything else as JSON."""
    if value is None:
        return None
    return value if isinstance(value, str) else canonical_json(value)


def _export_record(item: DatasetItem) -> dict[str, Any]:
    record: dict[str, Any] = {"id": item.key, "input": item.input}
    for name, value in (
        ("expected", item.expected),
        ("metadata", dict(item.metadata) or None),
        ("split", item.split),
        ("trace_id", item.trace_id),
    ):
        if value is not None:
            record[name] = value
    return record


def export_items(items: Iterable[DatasetItem], fmt: str) -> bytes:
    """Items as a file ``parse_items`` reads back to the same items. CSV and Parquet cells
    hold text: an input or expected output that is an object or array is written as JSON."""
    columns = ["id", "input", "expected", "metadata", "split", "trace_id"]
    if fmt == "jsonl":
        return "".join(canonical_json(_export_record(i)) + "\n" for i in items).encode("utf-8")
    rows = [
        {
            "id": i.key,
            "input": _flat(i.input),
            "expected": _flat(i.expected),
            "metadata": _flat(dict(i.metadata)) if i.metadata else None,
            "split": i.split,
            "trace_id": i.trace_id,
        }
        for i in items
    ]
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode("utf-8")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: pa.array([r[c] for r in rows], type=pa.string()) for c in columns})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


# --- splits ---------------------------------------------------------------------------------


def parse_ratios(text: str) -> dict[str, float]:
    """``"train=0.8,test=0.2"`` as a mapping (checked by ``assign_splits``)."""
    ratios: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            ratios[name.strip()] = float(value) if sep else math.nan
        except ValueError:
            ratios[name.strip()] = math.nan
    return ratios


def _check_ratios(ratios: Mapping[str, float]) -> list[tuple[str, float]]:
    if not ratios:
        raise ValueError("name at least one split, e.g. train=0.8,test=0.2")
    for name, share in ratios.items():
        if not name or len(name) > MAX_SPLIT_CHARS or "\x00" in name:
            raise ValueError(f"split name {name!r} must be 1 to {MAX_SPLIT_CHARS} characters")
        if not math.isfinite(share) or share <= 0:
            raise ValueError(f"split {name!r} needs a positive ratio")
    total = sum(ratios.values())
    bounds, running = [], 0.0
    for name, share in ratios.items():
        running += share / total
        bounds.append((name, running))
    return bounds


def assign_splits(items: Iterable[DatasetItem], ratios: Mapping[str, float], seed: int) -> list[DatasetItem]:
    """Each item in a split drawn from a hash of its key and ``seed``: the same item lands in
    the same split in every version, whatever else is added. Ratios are normalised."""
    bounds = _check_ratios(ratios)
    out = []
    for item in items:
        digest = hashlib.sha256(f"{seed}\x1f{item.key}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0**64
        name = next((n for n, bound in bounds if u < bound), bounds[-1][0])
        out.append(dataclasses.replace(item, split=name))
    return out


# --- diff -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemChange:
    """An item whose key is in both versions but whose content differs (``fields``)."""

    key: str
    fields: list[str]
    old: DatasetItem
    new: DatasetItem


@dataclass(slots=True)
class DatasetDiff:
    """What changed between two versions, paired by item key; lists hold at most ``limit``
    entries in all (``truncated``); the ``*_total`` counts are always complete."""

    added: list[DatasetItem]
    removed: list[DatasetItem]
    changed: list[ItemChange]
    unchanged: int
    truncated: bool
    added_total: int = 0
    removed_total: int = 0
    changed_total: int = 0


_COMPARED = ("input", "expected", "metadata", "split", "trace_id")


def diff_items(old: Sequence[DatasetItem], new: Sequence[DatasetItem], *, limit: int = 1000) -> DatasetDiff:
    """Added, removed and changed items from ``old`` to ``new`` (by key), in file order."""
    before = {i.key: i for i in old}
    after_keys = {i.key for i in new}
    diff = DatasetDiff([], [], [], 0, False)
    room = max(limit, 0)

    def keep(bucket: list[Any], value: Any) -> None:
        nonlocal room
        if room > 0:
            bucket.append(value)
            room -= 1
        else:
            diff.truncated = True

    for item in new:
        prior = before.get(item.key)
        if prior is None:
            diff.added_total += 1
            keep(diff.added, item)
            continue
        fields = [f for f in _COMPARED if canonical_json(_field(prior, f)) != canonical_json(_field(item, f))]
        if fields:
            diff.changed_total += 1
            keep(diff.changed, ItemChange(item.key, fields, prior, item))
        else:
            diff.unchanged += 1
    for item in old:
        if item.key not in after_keys:
            diff.removed_total += 1
            keep(diff.removed, item)
    return diff


def _field(item: DatasetItem, name: str) -> Any:
    value = getattr(item, name)
    return dict(value) if name == "metadata" else value
