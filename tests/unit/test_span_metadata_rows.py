"""Metadata rows as ingest builds them: text form, cut lengths, and values re-read from
the span row the writer stores (so redaction reaches them)."""

from __future__ import annotations

import orjson

from watchkeep.store.rows import (
    METADATA_KEY_CHARS,
    METADATA_VALUE_CHARS,
    SPAN_COLUMNS,
    final_metadata,
    metadata_rows,
    metadata_text,
)

P = "watchkeep.metadata."


def test_values_compare_as_text_and_nulls_make_no_row() -> None:
    assert [metadata_text(v) for v in ("a", 3, 1.5, True, False, [1, "x"], None)] == [
        "a",
        "3",
        "1.5",
        "true",
        "false",
        '[1,"x"]',
        None,
    ]
    rows = metadata_rows(1, "t", "s", 9, {P + "a": "x", P + "n": None, "other": "y"})
    assert rows == [(1, "t", "s", "a", "x", 9)]


def test_long_keys_and_values_are_cut_and_the_first_cut_key_wins() -> None:
    long_key = "k" * (METADATA_KEY_CHARS + 5)
    rows = metadata_rows(1, "t", "s", 0, {P + long_key: "v" * 600, P + long_key + "2": "second"})
    assert rows == [(1, "t", "s", "k" * METADATA_KEY_CHARS, "v" * METADATA_VALUE_CHARS, 0)]


def test_the_writer_reads_values_from_the_span_row_it_stores() -> None:
    span = dict.fromkeys(SPAN_COLUMNS)
    span.update(project_id=1, trace_id="t", span_id="s", start_time_unix_nano=7)
    span["attributes"] = orjson.dumps({P + "email": "<redacted>"}).decode()
    stored = tuple(span.values())
    flagged = [(1, "t", "s", "email", "bob@example.com", 7)]  # as the normaliser saw it
    assert final_metadata([stored], flagged) == [(1, "t", "s", "email", "<redacted>", 7)]
    assert final_metadata([stored], []) == []
