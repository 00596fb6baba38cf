"""A trace's spans nested under their parents, safe against hostile parent links."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

MAX_TREE_DEPTH = 128


def build_tree(span_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest spans under their parents (in start order), without recursion.

    Spans whose parent is missing become roots; so do spans caught in a parent cycle and
    spans deeper than ``MAX_TREE_DEPTH`` (then re-rooted with ``"detached": True``), so a
    hostile trace can neither hide spans nor build a response too deep to serialise.
    """
    by_id = {row["span_id"]: row for row in span_rows}
    kids: dict[str, list[dict[str, Any]]] = defaultdict(list)
    starts: list[dict[str, Any]] = []
    for row in span_rows:
        row["children"] = []
        parent = row["parent_span_id"]
        if parent is not None and parent in by_id and parent != row["span_id"]:
            kids[parent].append(row)
        else:
            starts.append(row)
    roots: list[dict[str, Any]] = []
    placed: set[str] = set()
    pending = list(starts) + list(span_rows)  # unplaced rows after the roots are cycles
    for candidate in pending:
        if candidate["span_id"] in placed:
            continue
        placed.add(candidate["span_id"])
        roots.append(candidate)
        stack = [(candidate, 0)]
        while stack:
            node, depth = stack.pop()
            for child in kids[node["span_id"]]:
                if child["span_id"] in placed:
                    continue
                if depth + 1 >= MAX_TREE_DEPTH:
                    child["detached"] = True
                    pending.append(child)
                    continue
                placed.add(child["span_id"])
                node["children"].append(child)
                stack.append((child, depth + 1))
    return roots
