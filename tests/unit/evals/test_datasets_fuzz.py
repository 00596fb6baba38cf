"""parse_items on arbitrary bytes: items or DatasetParseError, never anything else."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fuzz import examples
from watchkeep.evals.datasets import (
    FORMATS,
    DatasetParseError,
    ParsedItems,
    content_hash,
    export_items,
    parse_items,
)


def _parquet_seed() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"input": ["a", "b"], "expected": ["x", None]}), sink)
    return sink.getvalue()


SEEDS = {
    "jsonl": b'{"input": "a", "expected": [1]}\n{"id": 2, "input": {"x": 1}}\n',
    "csv": b'id,input,expected,extra\n1,"{""a"": 1}",b,c\n',
    "parquet": _parquet_seed(),
}


def _mutations(fmt: str) -> st.SearchStrategy[bytes]:
    """Random bytes, and the format's own valid file with bytes replaced, cut or spliced in."""
    seed = SEEDS[fmt]
    mutated = st.tuples(st.integers(0, len(seed)), st.integers(0, 16), st.binary(max_size=16)).map(
        lambda t: seed[: t[0]] + t[2] + seed[t[0] + t[1] :]
    )
    return st.one_of(st.binary(max_size=512), mutated, st.text(max_size=200).map(str.encode))


def _outcome(data: bytes, fmt: str, skip: bool) -> ParsedItems | DatasetParseError:
    try:
        return parse_items(data, fmt, skip_invalid=skip)
    except DatasetParseError as exc:  # anything else propagates and fails the test
        return exc


@pytest.mark.parametrize("fmt", FORMATS)
def test_parse_items_only_raises_dataset_parse_error(fmt: str) -> None:
    @settings(max_examples=examples(300), deadline=None)
    @given(data=_mutations(fmt), skip=st.booleans())
    def check(data: bytes, skip: bool) -> None:
        outcome = _outcome(data, fmt, skip)
        if isinstance(outcome, DatasetParseError):
            assert 0 < len(outcome.errors) <= 20
            return
        assert outcome.items
        assert len({i.key for i in outcome.items}) == len(outcome.items)
        # Whatever was accepted is storable: it hashes and re-exports to the same items.
        content_hash(outcome.items)
        assert parse_items(export_items(outcome.items, "jsonl"), "jsonl").items == outcome.items

    check()


def test_the_seeds_parse() -> None:
    """The mutation seeds are valid files, so the fuzz explores near-valid input."""
    for fmt in FORMATS:
        assert parse_items(SEEDS[fmt], fmt).items
