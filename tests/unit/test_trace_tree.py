"""Span trees from stored rows, safe against hostile parent links."""

from __future__ import annotations

from typing import Any

from watchkeep.store.trace_queries import decode_cursor, encode_cursor
from watchkeep.store.trace_tree import MAX_TREE_DEPTH, build_tree


def row(span_id: str, parent: str | None) -> dict[str, Any]:
    return {"span_id": span_id, "parent_span_id": parent}


def test_nesting_and_orphans() -> None:
    roots = build_tree([row("a", None), row("b", "a"), row("c", "b"), row("d", "zz")])
    assert [r["span_id"] for r in roots] == ["a", "d"]
    assert roots[0]["children"][0]["children"][0]["span_id"] == "c"


def test_cycles_do_not_hide_spans() -> None:
    roots = build_tree([row("a", "b"), row("b", "a"), row("c", "c")])
    seen: list[str] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        seen.append(node["span_id"])
        stack += node["children"]
    assert sorted(seen) == ["a", "b", "c"]


def test_deep_chains_are_cut_into_detached_subtrees() -> None:
    n = MAX_TREE_DEPTH * 3
    rows = [row("s0", None)] + [row(f"s{i}", f"s{i - 1}") for i in range(1, n)]
    roots = build_tree(rows)
    assert len(roots) >= 3
    assert all(r.get("detached") for r in roots[1:])
    depth, node = 0, roots[0]
    while node["children"]:
        node, depth = node["children"][0], depth + 1
    assert depth < MAX_TREE_DEPTH


def test_cursor_round_trip() -> None:
    cursor = encode_cursor(123, "abc")
    assert decode_cursor(cursor, (int, str)) == [123, "abc"]
