"""Deterministic Python-callable targets and datasets for the run, CLI and Ray tests.

A question is "What is N plus zero?"; the right answer is N. ``correct`` always answers
it, ``wrong_share`` answers wrong for the items whose N is a multiple of ``WRONG_EVERY``
(a stated share of the dataset, the same on every call), ``counting`` counts its calls so
a test can prove a resume calls nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

WRONG_EVERY = 3  # items 0, 3, 6, ...: a third of them
CALLS: list[str] = []
ON_CALL: list[Callable[[], None]] = []  # hooks a test sets (e.g. to interrupt after N calls)
_NUMBER = re.compile(r"(\d+)")  # survives the typos and case perturbations


def _number(messages: Sequence[Mapping[str, str]]) -> int:
    match = _NUMBER.search(messages[-1]["content"])
    assert match is not None, messages
    return int(match.group(1))


def correct(messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]) -> str:
    """The right answer, always."""
    return str(_number(messages))


def wrong_share(messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]) -> str:
    """Wrong for every ``WRONG_EVERY``-th item, right otherwise."""
    n = _number(messages)
    return str(n + 1000) if n % WRONG_EVERY == 0 else str(n)


async def counting(messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]) -> str:
    """The right answer after a short pause, recording each call (resume tests)."""
    CALLS.append(messages[-1]["content"])
    for hook in ON_CALL:
        hook()
    await asyncio.sleep(0.02)
    return str(_number(messages))


def write_dataset(path: Path, n: int) -> Path:
    """``n`` questions as JSONL, keys ``q000``..., expected the number as text."""
    rows = [{"id": f"q{i:03d}", "input": f"What is {i} plus zero?", "expected": str(i)} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_config(path: Path, *, target: Mapping[str, Any], dataset_file: str, **extra: Any) -> Path:
    """A run config (YAML is a superset of JSON) with an ``exact_match`` evaluator."""
    config: dict[str, Any] = {
        "name": extra.pop("name", "numbers"),
        "dataset": {"name": extra.pop("dataset_name", "numbers"), "file": dataset_file},
        "target": dict(target),
        "evaluators": extra.pop("evaluators", [{"name": "exact_match"}]),
        **extra,
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def python_target(fn: Callable[..., Any]) -> dict[str, str]:
    """The ``kind: python`` target spec that calls ``fn`` of this module."""
    return {"kind": "python", "callable": f"{__name__}:{fn.__name__}"}
