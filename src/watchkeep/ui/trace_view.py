"""How one trace is laid out for reading: waterfall rows, a conversation, marked mentions.

Kept apart from the page handlers so the layout rules (bounded depth and row count, the
shapes of message payloads we understand) are plain functions a test can call. Everything
here returns plain data; the templates escape it (nothing is marked safe).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from watchkeep.store.comment_repository import handles_in
from watchkeep.store.trace_tree import build_tree

MAX_ROWS = 2000  # waterfall rows rendered; a bigger trace says how many were left out
MAX_DEPTH_CLASS = 12  # wk-depth-N classes exist up to this depth
MIN_WIDTH = 0.2  # percent: a zero-length span stays visible
TEXT_PARTS = ("text", "content", "input_text", "output_text")


@dataclass(frozen=True, slots=True)
class WaterfallRow:
    """One span in tree order, with its bar's position in percent of the trace's length."""

    span: dict[str, Any]
    depth: int
    x: float
    width: float

    @property
    def depth_class(self) -> str:
        return f"wk-depth-{min(self.depth, MAX_DEPTH_CLASS)}"

    @property
    def error(self) -> bool:
        return bool(self.span.get("status_code") == 2)


@dataclass(frozen=True, slots=True)
class Waterfall:
    """The rows of a trace and its bounds."""

    rows: list[WaterfallRow]
    start_ns: int
    end_ns: int
    left_out: int

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def waterfall(span_rows: list[dict[str, Any]]) -> Waterfall:
    """The spans nested under their parents (depth first, in start order) as timed bars."""
    if not span_rows:
        return Waterfall([], 0, 0, 0)
    start = min(int(s["start_time_unix_nano"]) for s in span_rows)
    end = max(int(s["end_time_unix_nano"]) for s in span_rows)
    total = max(end - start, 1)
    rows: list[WaterfallRow] = []
    ordered = sorted(span_rows, key=lambda s: (int(s["start_time_unix_nano"]), str(s["span_id"])))
    stack = [(root, 0) for root in reversed(build_tree(ordered))]
    while stack and len(rows) < MAX_ROWS:
        node, depth = stack.pop()
        x = (int(node["start_time_unix_nano"]) - start) / total * 100
        width = max((int(node["end_time_unix_nano"]) - int(node["start_time_unix_nano"])) / total * 100, 0)
        width = min(max(width, MIN_WIDTH), 100 - min(x, 100 - MIN_WIDTH))
        rows.append(WaterfallRow(node, depth, round(x, 3), round(width, 3)))
        stack.extend((child, depth + 1) for child in reversed(node["children"]))
    return Waterfall(rows, start, end, len(span_rows) - len(rows))


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation: its role, its text and any tool calls (as JSON text)."""

    role: str
    text: str
    tool_calls: list[str] = field(default_factory=list)

    @property
    def role_class(self) -> str:
        role = re.sub(r"[^a-z]", "", self.role.lower())
        return role if role in ("system", "user", "assistant", "tool") else "other"


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def _message(raw: Any, default_role: str) -> Message:
    """A message in the GenAI ``parts`` shape, the OpenAI ``content``/``tool_calls`` shape,
    or anything else (shown as JSON)."""
    if isinstance(raw, str):
        return Message(default_role, raw)
    if not isinstance(raw, dict):
        return Message(default_role, _json(raw))
    role = str(raw.get("role") or default_role)
    texts: list[str] = []
    calls: list[str] = [_json(call) for call in raw.get("tool_calls") or []]
    content = raw.get("parts", raw.get("content"))
    for part in content if isinstance(content, list) else [content]:
        if part is None:
            continue
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") in ("tool_call", "function_call", "tool_use"):
            calls.append(_json(part))
        elif isinstance(part, dict) and any(isinstance(part.get(k), str) for k in TEXT_PARTS):
            texts.append(next(part[k] for k in TEXT_PARTS if isinstance(part.get(k), str)))
        else:
            texts.append(_json(part))
    if not texts and not calls and "content" not in raw and "parts" not in raw:
        texts.append(_json(raw))
    return Message(role, "\n".join(texts), calls)


def conversation(inputs: Any, outputs: Any) -> list[Message]:
    """A span's input then output messages, in order."""
    messages: list[Message] = []
    for payload, role in ((inputs, "user"), (outputs, "assistant")):
        if payload is None:
            continue
        items = payload if isinstance(payload, list) else [payload]
        messages.extend(_message(item, role) for item in items)
    return messages


def mention_segments(body: str) -> list[tuple[str, bool]]:
    """``body`` cut into (text, is_mention) pieces, so ``@handles`` can be marked without
    marking any of the text safe."""
    handles = handles_in(body)
    if not handles:
        return [(body, False)]
    pattern = re.compile(
        "(@(?:" + "|".join(re.escape(h) for h in sorted(handles, key=len, reverse=True)) + r"))(?![\w@])",
        re.IGNORECASE,
    )
    pieces: list[tuple[str, bool]] = []
    for n, piece in enumerate(pattern.split(body)):
        if piece:
            pieces.append((piece, n % 2 == 1))
    return pieces


def default_span(span_rows: list[dict[str, Any]]) -> str | None:
    """The span a trace opens on: the first with messages, else the first."""
    for row in span_rows:
        if row.get("input") is not None or row.get("output") is not None:
            return str(row["span_id"])
    return str(span_rows[0]["span_id"]) if span_rows else None


def totals(span_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The trace's tokens and cost summed over its spans, and its models."""
    models = sorted({m for s in span_rows if (m := s.get("response_model") or s.get("request_model"))})
    return {
        "input_tokens": sum(int(s.get("input_tokens") or 0) for s in span_rows),
        "output_tokens": sum(int(s.get("output_tokens") or 0) for s in span_rows),
        "total_tokens": sum(int(s.get("total_tokens") or 0) for s in span_rows),
        "cost_usd": sum(float(s.get("cost_usd") or 0.0) for s in span_rows),
        "errors": sum(1 for s in span_rows if s.get("status_code") == 2),
        "models": models,
    }


def pretty(value: Any) -> str:
    """A JSON value (attributes, events) indented for reading."""
    return _json(value)
