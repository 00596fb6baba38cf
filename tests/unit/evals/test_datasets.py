"""Dataset files: parse each format, refuse bad rows by number, hash, split and diff."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from watchkeep.evals.datasets import (
    FORMATS,
    MAX_ITEM_BYTES,
    DatasetParseError,
    assign_splits,
    content_hash,
    detect_format,
    diff_items,
    export_items,
    item_hash,
    item_key_for,
    parse_items,
    parse_ratios,
)
from watchkeep.evals.model import DatasetItem


def _jsonl(*rows: object) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


ITEMS = [
    DatasetItem("a", "What is 2+2?", "4", {"topic": "math"}, "train", "0" * 31 + "1"),
    DatasetItem("b", [{"role": "user", "content": "hi"}], {"intent": "greet"}, {}, "test"),
    DatasetItem("c", {"city": "Paris"}, ["France", "FR"], {"n": 3, "tags": ["x"]}),
    DatasetItem("d", 'ünïcode ✓ "quoted", comma\nnewline', None),
]


def test_jsonl_fields_keys_and_extra_fields_as_metadata() -> None:
    parsed = parse_items(
        _jsonl(
            {"id": "q1", "input": "hello", "expected": "hi", "split": "train", "lang": "en"},
            {"input": {"a": 1}, "metadata": {"lang": "fr"}, "trace_id": "ab" * 16},
        )
        + b"\n\n",
        "jsonl",
    )
    first, second = parsed.items
    assert first == DatasetItem("q1", "hello", "hi", {"lang": "en"}, "train")
    assert second.key == item_key_for({"a": 1}, None)
    assert second.metadata == {"lang": "fr"}
    assert second.trace_id == "ab" * 16
    assert parsed.skipped == []


def test_csv_columns_structured_cells_and_metadata() -> None:
    data = (
        b"id,input,expected,category,notes,metadata\n"
        b'k1,"{""q"": 1}",[1],cat,,\n'
        b'k2,plain text,{"x": 1},,"{""y"": 2}","{""m"": 5}"\n'
    )
    one, two = parse_items(data, "csv").items
    assert one.input == {"q": 1}
    assert one.expected == [1]
    assert one.metadata == {"category": "cat"}
    assert two.input == "plain text"
    assert two.expected == {"x": 1}
    # A JSON-looking cell of any other column stays text; the metadata column is merged.
    assert two.metadata == {"notes": '{"y": 2}', "m": 5}


def test_csv_cell_that_only_looks_like_json_stays_text() -> None:
    (item,) = parse_items(b'input,expected\n"{not json","[also not"\n', "csv").items
    assert item.input == "{not json"
    assert item.expected == "[also not"


def test_parquet_native_columns() -> None:
    table = pa.table(
        {
            "input": ["a question", '{"k": "v"}'],
            "expected": ["an answer", None],
            "score": [1, 2],
            "split": ["train", None],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    one, two = parse_items(sink.getvalue(), "parquet").items
    assert one.input == "a question"
    assert one.expected == "an answer"
    assert one.split == "train"
    assert one.metadata == {"score": 1}
    assert two.input == {"k": "v"}
    assert two.expected is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_round_trips_through_parse(fmt: str) -> None:
    assert parse_items(export_items(ITEMS, fmt), fmt).items == ITEMS


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"expected": "x"}, "input is required"),
        ({"input": "a\u0000b"}, "NUL"),
        ({"input": "x", "metadata": [1]}, "metadata must be an object"),
        ({"input": "x", "split": {"a": 1}}, "split must be text"),
        ({"input": "x", "trace_id": "nope"}, "trace_id"),
        ({"input": "x", "id": "a", "key": "b"}, "id and key differ"),
        ({"input": "x" * (MAX_ITEM_BYTES + 1)}, "larger than"),
        ([1, 2], "must be an object"),
    ],
)
def test_bad_rows_are_reported_by_number(row: object, message: str) -> None:
    with pytest.raises(DatasetParseError) as info:
        parse_items(_jsonl({"input": "fine"}, row), "jsonl")
    assert [e.row for e in info.value.errors] == [2]
    assert message in info.value.errors[0].message
    assert "row 2" in str(info.value)


def test_raw_json_problems_are_row_errors() -> None:
    data = b'{"input": "ok"}\n{"input": NaN}\n{"input": "\\ud800"}\nnot json\n'
    with pytest.raises(DatasetParseError) as info:
        parse_items(data, "jsonl")
    assert [e.row for e in info.value.errors] == [2, 3, 4]
    assert "surrogate" in info.value.errors[1].message


def test_duplicate_keys_are_an_error_naming_the_first_row() -> None:
    with pytest.raises(DatasetParseError) as info:
        parse_items(_jsonl({"id": 1, "input": "a"}, {"input": "b"}, {"id": "1", "input": "c"}), "jsonl")
    assert info.value.errors[0].row == 3
    assert "repeats row 1" in info.value.errors[0].message
    # The same input and expected twice derive the same key: also a repeat.
    with pytest.raises(DatasetParseError):
        parse_items(_jsonl({"input": "a"}, {"input": "a"}), "jsonl")


def test_skip_invalid_keeps_the_good_rows_and_reports_the_rest() -> None:
    parsed = parse_items(_jsonl({"input": "a"}, {"nope": 1}, {"input": "b"}), "jsonl", skip_invalid=True)
    assert [i.input for i in parsed.items] == ["a", "b"]
    assert [(e.row, e.message) for e in parsed.skipped] == [(2, "input is required")]


def test_limits_and_whole_file_errors() -> None:
    with pytest.raises(DatasetParseError, match="more than 2 items"):
        parse_items(_jsonl({"input": "a"}, {"input": "b"}, {"input": "c"}), "jsonl", max_items=2)
    with pytest.raises(DatasetParseError, match="no valid items"):
        parse_items(b"\n\n", "jsonl")
    with pytest.raises(DatasetParseError, match="no input column"):
        parse_items(b"question,answer\nq,a\n", "csv")
    with pytest.raises(DatasetParseError, match="repeats a column"):
        parse_items(b"input,input\nq,a\n", "csv")
    with pytest.raises(DatasetParseError, match="not UTF-8"):
        parse_items(b'{"input": "\xff"}', "jsonl")
    with pytest.raises(DatasetParseError, match="Parquet"):
        parse_items(b"PAR1 nope", "parquet")
    with pytest.raises(DatasetParseError, match="unknown format"):
        parse_items(b"", "xml")
    with pytest.raises(DatasetParseError) as info:
        parse_items(b"input,expected\nq,a,extra\n", "csv")
    assert "more cells" in info.value.errors[0].message
    many = _jsonl(*({"nope": i} for i in range(50)))
    with pytest.raises(DatasetParseError) as info:
        parse_items(many, "jsonl")
    assert len(info.value.errors) == 20
    assert str(info.value).startswith("50 invalid rows")
    assert info.value.total == 50


def test_hashes_are_canonical_and_order_sensitive() -> None:
    a = DatasetItem("k", {"x": 1, "y": 2}, metadata={"b": 1, "a": 2})
    b = DatasetItem("k", {"y": 2, "x": 1}, metadata={"a": 2, "b": 1})
    assert item_hash(a) == item_hash(b)
    assert item_hash(a) != item_hash(dataclasses.replace(a, split="train"))
    assert content_hash([DatasetItem("k", "x")]) == content_hash(
        parse_items(b'{"id":"k","input":"x"}', "jsonl").items
    )
    assert content_hash(ITEMS) != content_hash(list(reversed(ITEMS)))
    assert item_key_for("q", "a") == item_key_for("q", "a") != item_key_for("q", "b")


def test_hashes_are_pinned() -> None:
    """The hashes are stored content addresses: they must not drift between releases."""
    canonical = b'{"expected":null,"input":"x","key":"k","metadata":{},"split":null,"trace_id":null}'
    one = hashlib.sha256(canonical).hexdigest()
    assert item_hash(DatasetItem("k", "x")) == one
    assert content_hash([DatasetItem("k", "x")]) == hashlib.sha256(f"{one}\n".encode()).hexdigest()


def test_splits_are_deterministic_stable_and_near_the_ratios() -> None:
    items = [DatasetItem(f"k{i}", f"q{i}") for i in range(2000)]
    first = assign_splits(items, {"train": 0.8, "test": 0.2}, seed=7)
    assert first == assign_splits(items, {"train": 0.8, "test": 0.2}, seed=7)
    assert first != assign_splits(items, {"train": 0.8, "test": 0.2}, seed=8)
    share = sum(i.split == "train" for i in first) / len(first)
    assert 0.75 < share < 0.85
    # An item keeps its split when the dataset grows.
    grown = assign_splits([DatasetItem("new", "n"), *items], {"train": 0.8, "test": 0.2}, seed=7)
    assert grown[1:] == first
    assert parse_ratios("train=8, test=2") == {"train": 8.0, "test": 2.0}
    for bad in ({}, {"train": 0.0}, {"": 1.0}, parse_ratios("train=x")):
        with pytest.raises(ValueError, match="split"):
            assign_splits(items, bad, seed=1)


def test_diff_pairs_by_key_and_names_changed_fields() -> None:
    old = [DatasetItem("a", "1"), DatasetItem("b", "2", "x"), DatasetItem("c", "3")]
    new = [DatasetItem("b", "2", "y", split="test"), DatasetItem("c", "3"), DatasetItem("d", "4")]
    diff = diff_items(old, new)
    assert [i.key for i in diff.added] == ["d"]
    assert [i.key for i in diff.removed] == ["a"]
    (change,) = diff.changed
    assert change.key == "b"
    assert change.fields == ["expected", "split"]
    assert change.old.expected == "x"
    assert change.new.expected == "y"
    assert diff.unchanged == 1
    assert not diff.truncated
    short = diff_items(old, new, limit=1)
    assert short.truncated
    assert len(short.added) + len(short.removed) + len(short.changed) == 1
    assert (short.added_total, short.removed_total, short.changed_total) == (1, 1, 1)


def test_detect_format() -> None:
    assert [detect_format(n) for n in ("a.JSONL", "b.csv", "c.parquet", "d.json")] == [
        "jsonl",
        "csv",
        "parquet",
        "jsonl",
    ]
    with pytest.raises(ValueError, match="format"):
        detect_format("data.xlsx")


def test_a_large_csv_cell_within_the_item_cap_is_read() -> None:
    text = "x" * 500_000
    (item,) = parse_items(f"input\n{text}\n".encode(), "csv").items
    assert item.input == text
