"""Dataset items from production: traces that match a filter, or traces with a labelled score.

A trace becomes one item: the input messages of its LLM span (the latest one, in an agent
trace: the call that produced the answer) and, as the expected output, what that span
answered or the ground-truth label a reviewer gave. Its key is derived from the trace id,
so rebuilding a dataset from the same traces pairs the same items in a diff. Both sources
are bounded: at most ``limit`` items and a bounded number of spans scanned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select

from watchkeep.evals.datasets import MAX_ITEM_BYTES, canonical_json
from watchkeep.evals.model import DatasetItem
from watchkeep.store.sealing import Sealer, open_text, row_aad
from watchkeep.store.tables import scores, span_payloads, spans
from watchkeep.store.trace_attributes import spans_of_traces
from watchkeep.store.trace_queries import TraceFilter, TraceQueries, payload_value

MAX_SOURCE_ITEMS = 100_000
TRACE_PAGE = 200
SCAN_FACTOR = 20  # rows read per wanted item before giving up (skipped traces, repeated labels)
PAYLOAD_BATCH = 500


def trace_item_key(trace_id: str) -> str:
    """The key of the item built from a trace: stable, so rebuilt datasets diff cleanly."""
    return f"trace-{trace_id}"


def _text(content: Any) -> str | None:
    """Message content as text: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("content") or p.get("text") for p in content if isinstance(p, dict)]
        if texts and all(isinstance(t, str) for t in texts):
            return "".join(t for t in texts if isinstance(t, str))
    return None


def _message(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not isinstance(value.get("role"), str):
        return None
    content = _text(value.get("content", value.get("parts")))
    return None if content is None else {"role": value["role"], "content": content}


def messages_of(payload: Any) -> Any:
    """A stored input payload as a target can replay it: ``[{"role", "content"}, ...]``
    where it is made of messages, a plain string as is, anything else unchanged."""
    if isinstance(payload, str) and payload.lstrip()[:1] in ("[", "{"):
        parsed = payload_value(payload)  # messages nested in a payload object are kept as JSON text
        return messages_of(parsed) if isinstance(parsed, list | dict) else payload
    if isinstance(payload, dict) and "system_instructions" in payload:
        system = _text(payload["system_instructions"]) or canonical_json(payload["system_instructions"])
        rest = messages_of(payload.get("messages"))
        rest = [{"role": "user", "content": rest}] if isinstance(rest, str) else rest
        if isinstance(rest, list):
            return [{"role": "system", "content": system}, *rest]
        return payload
    if isinstance(payload, list):
        converted = [_message(m) for m in payload]
        if converted and all(m is not None for m in converted):
            return converted
    return payload


def answer_of(payload: Any) -> Any:
    """A stored output payload as the expected answer: the last message's text, or as is."""
    if isinstance(payload, str) and payload.lstrip()[:1] in ("[", "{"):
        parsed = payload_value(payload)
        answer = answer_of(parsed) if isinstance(parsed, list | dict) else None
        return answer if isinstance(answer, str) else payload  # JSON answers stay text
    if isinstance(payload, list) and payload:
        last = _message(payload[-1])
        if last is not None:
            return last["content"]
    if isinstance(payload, dict):
        message = _message(payload)
        if message is not None:
            return message["content"]
    return payload


def _payloads(engine: Engine, project_id: int, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """(trace, span) -> payload row, read in batches of the project's rows."""
    p, s = span_payloads.c, spans.c
    found: dict[tuple[str, str], Any] = {}
    with engine.connect() as conn:
        for start in range(0, len(keys), PAYLOAD_BATCH):
            batch = keys[start : start + PAYLOAD_BATCH]
            rows = conn.execute(
                select(s.trace_id, s.span_id, p.input, p.output)
                .select_from(spans.join(span_payloads, p.span_row_id == s.id))
                .where(
                    spans_of_traces(project_id, sorted({t for t, _ in batch})),
                    s.span_id.in_({sid for _, sid in batch}),
                )
            )
            found.update({(r.trace_id, r.span_id): r for r in rows})
    return found


def _fits(item: DatasetItem) -> bool:
    return len(canonical_json([item.input, item.expected]).encode()) <= MAX_ITEM_BYTES


def _llm_span(trace: dict[str, Any]) -> dict[str, Any] | None:
    """The trace's latest-started LLM span that kept an input (spans come in start order)."""
    llm = [
        row
        for row in trace["spans"]
        if (row.get("operation") is not None or row.get("request_model") is not None)
        and row.get("input") is not None
    ]
    found: dict[str, Any] | None = llm[-1] if llm else None
    return found


def items_from_traces(
    traces: TraceQueries,
    project_id: int,
    filt: TraceFilter,
    *,
    limit: int = 1000,
    with_expected: bool = True,
) -> list[DatasetItem]:
    """One item per trace matching ``filt`` (the traces API's filters), newest first: the
    input messages of its LLM span and, when ``with_expected``, that span's answer. Traces
    without an LLM span that kept its input are skipped, as are items over the size cap."""
    limit = max(0, min(limit, MAX_SOURCE_ITEMS))
    items: list[DatasetItem] = []
    cursor: str | None = None
    budget = limit * SCAN_FACTOR  # traces read, matching or not: bounded work
    while len(items) < limit and budget > 0:
        page = traces.list_traces(project_id, filt, limit=min(TRACE_PAGE, budget), cursor=cursor)
        budget -= len(page.items)
        for summary in page.items:
            trace = traces.get_trace(project_id, summary.trace_id)
            span = _llm_span(trace) if trace is not None else None
            if span is None or len(items) >= limit:
                continue
            item = DatasetItem(
                key=trace_item_key(summary.trace_id),
                input=messages_of(span["input"]),
                expected=answer_of(span["output"]) if with_expected else None,
                metadata=_without_none(
                    {"span_id": span["span_id"], "model": span.get("request_model"), "source": "trace"}
                ),
                trace_id=summary.trace_id,
            )
            if _fits(item):
                items.append(item)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return items


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _input_spans(engine: Engine, project_id: int, trace_ids: Iterable[str]) -> dict[str, Any]:
    """trace -> the payload of its latest-started span that kept an input."""
    p, s = span_payloads.c, spans.c
    best: dict[str, Any] = {}
    ids = list(trace_ids)
    with engine.connect() as conn:
        for start in range(0, len(ids), PAYLOAD_BATCH):
            rows = conn.execute(
                select(s.trace_id, s.span_id, p.input, p.output, s.start_time_unix_nano)
                .select_from(spans.join(span_payloads, p.span_row_id == s.id))
                .where(
                    spans_of_traces(project_id, ids[start : start + PAYLOAD_BATCH]),
                    p.input.is_not(None),
                )
            )
            for r in rows:
                if r.trace_id not in best or r.start_time_unix_nano > best[r.trace_id].start_time_unix_nano:
                    best[r.trace_id] = r
    return best


def items_from_feedback(
    engine: Engine,
    project_id: int,
    *,
    score_name: str,
    limit: int = 1000,
    since_ns: int | None = None,
    sealer: Sealer | None = None,
) -> list[DatasetItem]:
    """One item per trace with a ground-truth ``label`` on score ``score_name`` (what the
    quality metrics compare predictions with): input = the scored span's input (else the
    trace's latest span with one), expected = the latest label. Newest labels first."""
    limit = max(0, min(limit, MAX_SOURCE_ITEMS))
    c = scores.c
    query = (
        select(c.trace_id, c.span_id, c.label, c.string_value, c.source)
        .where(c.project_id == project_id, c.name == score_name, c.label.is_not(None))
        .order_by(c.created_at_unix_nano.desc(), c.id.desc())
        .limit(limit * SCAN_FACTOR)
    )
    if since_ns is not None:
        query = query.where(c.created_at_unix_nano >= since_ns)
    labelled: dict[str, Any] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            if row.trace_id not in labelled and len(labelled) < limit:
                labelled[row.trace_id] = row
    by_trace = _input_spans(engine, project_id, labelled)
    own = _payloads(engine, project_id, [(r.trace_id, r.span_id) for r in labelled.values() if r.span_id])
    items = []
    aad = row_aad("span_payloads", "input", project_id)  # payloads are opened when encrypted
    for trace_id, score in labelled.items():
        payload = own.get((trace_id, score.span_id)) or by_trace.get(trace_id)
        if payload is None or payload.input is None:
            continue
        item = DatasetItem(
            key=trace_item_key(trace_id),
            input=messages_of(payload_value(open_text(sealer, payload.input, aad))),
            expected=score.label,
            metadata=_without_none(
                {
                    "span_id": payload.span_id,
                    "score": score_name,
                    "prediction": score.string_value,
                    "source": "feedback",
                }
            ),
            trace_id=trace_id,
        )
        if _fits(item):
            items.append(item)
    return items
