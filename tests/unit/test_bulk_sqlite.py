"""SQLite bulk statements come in a handful of shapes, whatever the batch sizes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watchkeep.store.bulk_sqlite import piece_sizes


@given(total=st.integers(0, 20_000), chunk=st.integers(1, 500))
def test_pieces_cover_the_rows_in_few_shapes(total: int, chunk: int) -> None:
    sizes = piece_sizes(total, chunk)
    assert sum(sizes) == total
    assert all(0 < s <= chunk for s in sizes)
    assert sizes == sorted(sizes, reverse=True)
    remainder_shapes = {s for s in sizes if s != chunk}
    assert all(s & (s - 1) == 0 for s in remainder_shapes)  # powers of two only


def test_every_batch_size_up_to_a_chunk_uses_at_most_ten_statement_shapes() -> None:
    shapes = {s for total in range(1, 2_001) for s in piece_sizes(total, 500)}
    assert len(shapes) <= 10
