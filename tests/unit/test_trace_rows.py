"""The trace-merge rule is one rule wherever it is applied, and rows keep column order.

The rule (ADR 0002) is applied in three places: ``summarise_traces`` within one export,
``merge_traces`` across the exports of a group commit, and the SQL upsert of each
dialect (``trace_upsert_assignments``) against what is already stored. The property
tests hold all three to one specification, computed here from the spans themselves:
the root's name (else the earliest span's), min start, max end (a span that ends before
it starts counting as ending at its start), any error, and each
trace attribute as sent by any export that carried it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.support.fuzz import examples
from watchkeep.ingest.decoded import DecodedEvent, DecodedExport, DecodedSpan
from watchkeep.ingest.normalise import SpanNormaliser
from watchkeep.ingest.pricing import PriceTable
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.rows import (
    PAYLOAD_COLUMNS,
    RESOURCE_COLUMNS,
    SPAN_COLUMNS,
    STATUS_ERROR,
    TRACE_ATTRIBUTE_COLUMNS,
    TRACE_COLUMNS,
    Row,
    TraceRows,
    WriteBatch,
    merge_traces,
    summarise_traces,
)
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.tables import traces

ATTRIBUTE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "user_id": st.sampled_from(["u1", "u2"]),
    "session_id": st.sampled_from(["s1", "s2"]),
    "environment": st.sampled_from(["prod", "dev"]),
    "release": st.sampled_from(["1.0", "2.0"]),
    "tags": st.sampled_from(['["a"]', '["a","b"]']),
}


@dataclass(frozen=True)
class Case:
    """Spans of a few traces, sent as several exports (a span may be sent twice)."""

    spans: list[Row]
    attributes: dict[str, dict[str, Any]]  # trace id -> its attributes (None: never sent)
    # Each export: its span indexes, and the attributes it sends for some of its traces.
    exports: list[tuple[list[int], dict[str, dict[str, Any]]]]


@st.composite
def cases(draw: st.DrawFn, project_id: int = 1, *, varying: bool = False) -> Case:
    """Traces of a project; with ``varying``, exports may disagree on a trace's attributes
    (then only the order of arrival decides which are kept)."""
    spans: list[Row] = []
    attributes: dict[str, dict[str, Any]] = {}
    for _ in range(draw(st.integers(1, 3))):
        trace_id = uuid.uuid4().hex
        attributes[trace_id] = {
            c: draw(st.one_of(st.none(), strategy)) for c, strategy in ATTRIBUTE_VALUES.items()
        }
        starts = draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=5, unique=True))
        root = draw(st.sampled_from([None, *range(len(starts))]))
        for i, start in enumerate(starts):
            row = dict.fromkeys(SPAN_COLUMNS)
            end = start + draw(st.integers(-2_000, 5_000))  # some end before they start
            row.update(
                project_id=project_id,
                trace_id=trace_id,
                span_id=uuid.uuid4().hex[:16],
                parent_span_id=None if i == root else "f" * 16,
                name=f"span-{i}",
                kind=0,
                status_code=draw(st.sampled_from([0, 1, STATUS_ERROR])),
                start_time_unix_nano=start,
                end_time_unix_nano=end,
                duration_ms=(end - start) / 1e6,
                ingested_at_unix_nano=1,
            )
            spans.append(row)
    n = len(spans)
    homes = draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n))  # one export per span...
    replays = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3))
    members: dict[int, list[int]] = {}
    for span, export in [*enumerate(homes), *replays]:  # ...and some spans sent twice
        members.setdefault(export, []).append(span)
    exports = []
    for indexes in members.values():
        carried = draw(st.sets(st.sampled_from(sorted(attributes))))
        exports.append(
            (
                indexes,
                {
                    t: {c: draw(v) for c, v in ATTRIBUTE_VALUES.items()} if varying else attributes[t]
                    for t in sorted(carried)
                },
            )
        )
    return Case(spans, attributes, exports)


def export_rows(case: Case, export: tuple[list[int], dict[str, dict[str, Any]]]) -> list[Row]:
    """An export's span rows: every span of a trace shares that trace's attributes, as the
    normaliser makes them, when the export carries them at all."""
    indexes, carried = export
    out = []
    for i in indexes:
        row = dict(case.spans[i])
        sent = carried.get(row["trace_id"], {})
        row.update({c: sent.get(c) for c in TRACE_ATTRIBUTE_COLUMNS})
        out.append(row)
    return out


def specification(case: Case) -> dict[str, Row]:
    """Each trace's row, straight from its spans and exports."""
    out: dict[str, Row] = {}
    for trace_id, attributes in case.attributes.items():
        spans = [s for s in case.spans if s["trace_id"] == trace_id]
        roots = [s for s in spans if s["parent_span_id"] is None]
        first = min(spans, key=lambda s: s["start_time_unix_nano"])
        sent = any(
            trace_id in carried and any(case.spans[i]["trace_id"] == trace_id for i in indexes)
            for indexes, carried in case.exports
        )
        row = {
            "project_id": spans[0]["project_id"],
            "trace_id": trace_id,
            "name": (roots[0] if roots else first)["name"],
            "root_span_id": roots[0]["span_id"] if roots else None,
            "start_time_unix_nano": first["start_time_unix_nano"],
            # no span starts after its trace ends (revision 0026), a malformed one included
            "end_time_unix_nano": max(max(s["end_time_unix_nano"], s["start_time_unix_nano"]) for s in spans),
            "has_error": any(s["status_code"] == STATUS_ERROR for s in spans),
        }
        row.update({c: attributes[c] if sent else None for c in TRACE_ATTRIBUTE_COLUMNS})
        out[trace_id] = row
    return out


def chunked(items: list[Any], cuts: set[int]) -> list[list[Any]]:
    """``items`` cut before each index in ``cuts``."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(items)), len(items)]
    return [items[a:b] for a, b in pairwise(bounds)]


def keyed(rows: list[Row]) -> TraceRows:
    return {(r["project_id"], r["trace_id"]): r for r in rows}


@given(case=cases(), data=st.data())
@settings(max_examples=examples(300), deadline=None)
def test_merging_in_python_follows_the_rule_in_any_order_and_split(case: Case, data: st.DataObject) -> None:
    parts = [summarise_traces(export_rows(case, e)) for e in case.exports]
    expected = specification(case)
    at_once = merge_traces(parts)
    assert {r["trace_id"]: r for r in at_once} == expected
    order = data.draw(st.permutations(parts))
    cuts = data.draw(st.sets(st.integers(1, max(1, len(parts) - 1))))
    incrementally = merge_traces(keyed(merge_traces(chunk)) for chunk in chunked(order, cuts))
    assert incrementally == at_once
    # summarise_traces over one export holding every span applies the same rule.
    every_span = (list(range(len(case.spans))), case.attributes)
    assert {r["trace_id"]: r for r in merge_traces([summarise_traces(export_rows(case, every_span))])} == {
        t: {**row, **{c: case.attributes[t][c] for c in TRACE_ATTRIBUTE_COLUMNS}}
        for t, row in expected.items()
    }


def _batch(case: Case, export: tuple[list[int], dict[str, dict[str, Any]]]) -> WriteBatch:
    rows = export_rows(case, export)
    return WriteBatch(spans=[tuple(r.values()) for r in rows], traces=summarise_traces(rows))


def _stored(row: Any) -> Row:
    out = {c: getattr(row, c) for c in TRACE_COLUMNS}
    out["has_error"] = bool(out["has_error"])
    return out


def test_the_database_upsert_follows_the_rule_across_commits(database_url: str) -> None:
    """Exports written in separate group commits, in any order and grouping, leave the
    row the rule gives: the specification when exports agree, and exactly what
    ``merge_traces`` gives for that order of arrival when they do not (the SQL upsert of
    this database's dialect against the Python fold)."""
    engine = make_engine(database_url)
    project = ProjectRepository(engine).get_or_create(f"trace-rows-{uuid.uuid4().hex[:8]}")
    writer = SpanWriter(engine)

    @given(case=st.booleans().flatmap(lambda v: cases(project.id, varying=v)), data=st.data())
    @settings(max_examples=examples(40), deadline=None)
    def check(case: Case, data: st.DataObject) -> None:
        batches = data.draw(st.permutations([_batch(case, e) for e in case.exports]))
        in_order = {r["trace_id"]: r for r in merge_traces(b.traces for b in batches)}
        for group in chunked(batches, data.draw(st.sets(st.integers(1, max(1, len(batches) - 1))))):
            writer.write(group)
        with engine.connect() as conn:
            found = conn.execute(
                select(traces).where(
                    traces.c.project_id == project.id, traces.c.trace_id.in_(case.attributes)
                )
            ).all()
        expected = in_order
        if all(attrs == case.attributes[t] for _, carried in case.exports for t, attrs in carried.items()):
            assert expected == specification(case)
        for row in expected.values():
            if row["tags"] is not None:
                row["tags"] = orjson.loads(row["tags"])  # stored as JSON, read back decoded
        assert {r.trace_id: _stored(r) for r in found} == expected

    try:
        check()
    finally:
        writer.close()
        engine.dispose()


def test_trace_rows_are_built_in_column_order() -> None:
    """The writer binds ``tuple(row.values())``: a trace row's keys are TRACE_COLUMNS, in order,
    from the normaliser and after merging."""
    span = DecodedSpan(
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        parent_span_id=None,
        name="op",
        kind=1,
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        status_code=0,
        status_message=None,
        attributes={"gen_ai.input.messages": "[]"},
        resource={"service.name": "svc"},
        scope_name=None,
    )
    batch = SpanNormaliser(PriceTable.load()).normalise(7, DecodedExport(spans=[span]), 42)
    (trace,) = batch.traces.values()
    assert list(trace) == list(TRACE_COLUMNS)
    assert all(list(r) == list(TRACE_COLUMNS) for r in merge_traces([batch.traces, batch.traces]))
    (row,) = (dict(zip(SPAN_COLUMNS, r, strict=True)) for r in batch.spans)
    assert (row["project_id"], row["trace_id"], row["span_id"], row["name"]) == (
        7,
        span.trace_id,
        span.span_id,
        "op",
    )
    assert (row["start_time_unix_nano"], row["end_time_unix_nano"], row["ingested_at_unix_nano"]) == (
        1,
        2,
        42,
    )
    ((payload,), (resource,)) = batch.payloads, batch.resources.values()
    assert dict(zip(PAYLOAD_COLUMNS, payload, strict=True))["created_at_unix_nano"] == 42
    assert dict(zip(RESOURCE_COLUMNS, resource, strict=True))["created_at_unix_nano"] == 42


def test_the_normalisers_span_row_puts_every_column_in_its_place() -> None:
    """The normaliser builds a span row positionally, in SPAN_COLUMNS order: a span giving
    every column a value of its own shows each one lands in its column, none shifted."""
    a = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "prov",
        "gen_ai.request.model": "req-model",
        "gen_ai.response.model": "resp-model",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 22,
        "llm.token_count.total": 40,
        "watchkeep.cost_usd": 0.5,
        "watchkeep.time_to_first_token_ms": 7.0,
        "gen_ai.response.finish_reasons": ["stop"],
        "watchkeep.user.id": "user",
        "watchkeep.session.id": "session",
        "watchkeep.environment": "env",
        "watchkeep.release": "rel",
        "watchkeep.tags": ["tag"],
        "watchkeep.prompt.name": "pname",
        "watchkeep.prompt.version": "pver",
        "watchkeep.model.version": "mver",
        "custom": 1,
    }
    span = DecodedSpan(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "00f067aa0ba902b8", "name", 3,
        1_000_000, 3_000_000, 2, "status", a, {"service.name": "svc"}, None,
        [DecodedEvent(2_000_000, "exception", {"k": "v"})],
    )  # fmt: skip
    batch = SpanNormaliser(PriceTable.load()).normalise(9, DecodedExport(spans=[span]), 42)
    (row,) = [dict(zip(SPAN_COLUMNS, r, strict=True)) for r in batch.spans]
    assert row.pop("resource_id") == next(iter(batch.resources))[1]
    assert {**row, "attributes": orjson.loads(row["attributes"]), "events": orjson.loads(row["events"])} == {
        "project_id": 9,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": "name",
        "kind": 3,
        "status_code": 2,
        "status_message": "status",
        "start_time_unix_nano": 1_000_000,
        "end_time_unix_nano": 3_000_000,
        "duration_ms": 2.0,
        "service_name": "svc",
        "operation": "chat",
        "provider": "prov",
        "request_model": "req-model",
        "response_model": "resp-model",
        "input_tokens": 11,
        "output_tokens": 22,
        "total_tokens": 40,
        "cost_usd": 0.5,
        "time_to_first_token_ms": 7.0,
        "finish_reason": "stop",
        "user_id": "user",
        "session_id": "session",
        "environment": "env",
        "release": "rel",
        "tags": '["tag"]',
        "prompt_name": "pname",
        "prompt_version": "pver",
        "model_version": "mver",
        "attributes": {"custom": 1},
        "events": [{"time_unix_nano": 2_000_000, "name": "exception", "attributes": {"k": "v"}}],
        "ingested_at_unix_nano": 42,
    }
