"""Mapping of decoded spans onto columns and payloads."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fuzz import examples
from watchkeep import semconv as sc
from watchkeep.ingest.decoded import DecodedEvent, DecodedExport, DecodedSpan
from watchkeep.ingest.normalise import SpanNormaliser, clean_text, split_attributes, to_json
from watchkeep.ingest.pricing import PriceTable
from watchkeep.store.rows import PAYLOAD_COLUMNS, SPAN_COLUMNS, TRACE_ATTRIBUTE_COLUMNS

NORMALISER = SpanNormaliser(PriceTable.load())


def span(
    attrs: dict[str, Any], *, span_id: str = "00f067aa0ba902b7", parent: str | None = None, **kw: Any
) -> DecodedSpan:
    values: dict[str, Any] = {
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": span_id,
        "parent_span_id": parent,
        "name": "op",
        "kind": 1,
        "start_time_unix_nano": 1_000_000_000,
        "end_time_unix_nano": 3_000_000_000,
        "status_code": 0,
        "status_message": None,
        "attributes": attrs,
        "resource": {"service.name": "svc"},
        "scope_name": None,
    }
    values.update(kw)
    return DecodedSpan(**values)


def rows(*spans: DecodedSpan) -> tuple[list[dict[str, Any]], list[dict[str, Any]], DecodedExport]:
    export = DecodedExport(spans=list(spans))
    batch = NORMALISER.normalise(7, export, 42)
    span_rows = [dict(zip(SPAN_COLUMNS, r, strict=True)) for r in batch.spans]
    payload_rows = [dict(zip(PAYLOAD_COLUMNS, r, strict=True)) for r in batch.payloads]
    return span_rows, payload_rows, export


def test_a_resource_is_stored_once_per_export() -> None:
    first, second = span({}, span_id="00000000000000c1"), span({}, span_id="00000000000000c2")
    second.resource = dict(first.resource)  # equal content, another object
    other = span({}, span_id="00000000000000c3", resource={"service.name": "other"})
    batch = NORMALISER.normalise(3, DecodedExport(spans=[first, second, other]), 9)
    ids = [dict(zip(SPAN_COLUMNS, r, strict=True))["resource_id"] for r in batch.spans]
    assert ids[0] == ids[1] != ids[2]
    assert {k: orjson.loads(v[2]) for k, v in batch.resources.items()} == {
        (3, ids[0]): {"service.name": "svc"},
        (3, ids[2]): {"service.name": "other"},
    }


def test_rows_come_out_in_column_order() -> None:
    batch = NORMALISER.normalise(1, DecodedExport(spans=[span({"gen_ai.input.messages": "[]"})]), 0)
    assert all(len(r) == len(SPAN_COLUMNS) for r in batch.spans)
    assert all(len(r) == len(PAYLOAD_COLUMNS) for r in batch.payloads)


def test_current_genai_names() -> None:
    (row,), (payload,), _ = rows(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 50,
                "gen_ai.response.finish_reasons": ["length"],
                "gen_ai.input.messages": '[{"role":"user","content":"q"}]',
                "gen_ai.system_instructions": "be kind",
                "gen_ai.server.time_to_first_token": 0.25,
                "custom": 1,
            }
        )
    )
    assert row["operation"] == "chat"
    assert (row["request_model"], row["response_model"]) == ("gpt-4o", "gpt-4o-2024-08-06")
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (100, 50, 150)
    assert row["cost_usd"] == (100 * 2.5 + 50 * 10.0) / 1e6
    assert row["finish_reason"] == "length"
    assert row["time_to_first_token_ms"] == 250.0
    assert row["duration_ms"] == 2000.0
    assert orjson.loads(row["attributes"]) == {"custom": 1}
    assert len(row["resource_id"]) == 16  # the resource is stored once, by content hash
    assert row["service_name"] == "svc"
    assert orjson.loads(payload["input"]) == {
        "system_instructions": "be kind",
        "messages": '[{"role":"user","content":"q"}]',
    }
    assert payload["output"] is None


def test_event_based_content_and_first_token_event() -> None:
    events = [
        DecodedEvent(1_100_000_000, "gen_ai.user.message", {"content": "hi"}),
        DecodedEvent(1_200_000_000, "watchkeep.first_token", {}),
        DecodedEvent(1_300_000_000, "gen_ai.choice", {"message": {"content": "yo"}}),
        DecodedEvent(1_400_000_000, "exception", {"exception.type": "ValueError"}),
    ]
    (row,), (payload,), _ = rows(span({}, events=events))
    assert orjson.loads(payload["input"]) == [{"role": "user", "content": "hi"}]
    assert orjson.loads(payload["output"]) == [{"message": {"content": "yo"}}]
    assert row["time_to_first_token_ms"] == 200.0
    assert [e["name"] for e in orjson.loads(row["events"])] == ["watchkeep.first_token", "exception"]


def test_trace_attributes_are_shared_within_an_export() -> None:
    root = span({"watchkeep.user.id": "u", "watchkeep.tags": ["b", "a", "a"]}, span_id="00000000000000a1")
    child = span({"session.id": "s"}, span_id="00000000000000a2", parent="00000000000000a1")
    (r, c), _, _ = rows(root, child)
    assert (r["user_id"], r["session_id"]) == ("u", "s")
    assert (c["user_id"], c["session_id"]) == ("u", "s")
    assert orjson.loads(c["tags"]) == ["a", "b"]


def test_resource_level_environment_and_release_fallbacks() -> None:
    (row,), _, _ = rows(span({}, resource={"deployment.environment": "prod", "service.version": "1.2.3"}))
    assert (row["environment"], row["release"]) == ("prod", "1.2.3")


def test_bad_values_never_reach_the_database() -> None:
    (row,), _, _ = rows(
        span(
            {
                "gen_ai.usage.input_tokens": -5,
                "gen_ai.usage.output_tokens": "many",
                "watchkeep.cost_usd": float("nan"),
                "gen_ai.request.model": "x" * 1000,
                "watchkeep.tags": "a, b,,",
            },
            kind=99,
            status_code=-1,
            name="\x00" * 2000,
        )
    )
    assert row["input_tokens"] is None
    assert row["output_tokens"] is None
    assert row["cost_usd"] is None
    assert len(row["request_model"]) == 256
    assert (row["kind"], row["status_code"]) == (0, 0)
    assert row["name"] == "\ufffd" * 1024
    assert orjson.loads(row["tags"]) == ["a", "b"]


def test_out_of_range_times_are_rejected() -> None:
    good = span({}, span_id="00000000000000b1")
    bad = span({}, span_id="00000000000000b2", end_time_unix_nano=1 << 63)
    span_rows, _, export = rows(good, bad)
    assert [r["span_id"] for r in span_rows] == ["00000000000000b1"]
    assert export.rejected == 1


def test_json_helpers_are_postgres_safe() -> None:
    assert clean_text("a\x00b", 2) == "a\ufffd"
    text = to_json({"k": "\x00", 1: float("inf")})
    assert "\\u0000" not in text
    assert orjson.loads(text) == {"k": "\ufffd", "1": None}


# Keys of fields fed by several names (best first), plus unmapped ones, in any order.
_RANKED_KEYS = [*sc.USER_ID_KEYS, *sc.INPUT_TOKEN_KEYS, *sc.PROVIDER_KEYS, "app.custom", "other"]


@given(
    items=st.lists(
        st.tuples(st.sampled_from(_RANKED_KEYS), st.sampled_from([None, "", "v1", "v2", 0, 3])),
        unique_by=lambda kv: kv[0],
    )
)
@settings(max_examples=examples(300), deadline=None)
def test_the_best_present_name_feeds_a_field_whatever_the_order(items: list[tuple[str, Any]]) -> None:
    found, rest = split_attributes(dict(items))
    for name, keys in (
        ("user_id", sc.USER_ID_KEYS),
        ("input_tokens", sc.INPUT_TOKEN_KEYS),
        ("provider", sc.PROVIDER_KEYS),
    ):
        present = [dict(items)[k] for k in keys if dict(items).get(k) not in (None, "")]
        assert found.get(name) == (present[0] if present else None)
    assert list(rest) == [k for k, _ in items if k in ("app.custom", "other")]  # order kept


_TRACE_VALUES = st.sampled_from([None, "a", "b"])


@given(
    spans=st.lists(
        st.tuples(
            st.sampled_from("12"), st.fixed_dictionaries({"user": _TRACE_VALUES, "env": _TRACE_VALUES})
        ),
        min_size=1,
        max_size=8,
    )
)
@settings(max_examples=examples(200), deadline=None)
def test_each_trace_column_takes_its_first_value_in_the_export(
    spans: list[tuple[str, dict[str, Any]]],
) -> None:
    decoded = [
        span(
            {k: v for k, v in (("watchkeep.user.id", a["user"]), ("watchkeep.environment", a["env"])) if v},
            trace_id=t * 32,
            span_id=f"{i + 1:016x}",
        )
        for i, (t, a) in enumerate(spans)
    ]
    out, _, _ = rows(*decoded)
    for (trace, attrs), row in zip(spans, out, strict=True):
        first = {c: next((a[c] for t, a in spans if t == trace and a[c]), None) for c in ("user", "env")}
        assert (row["user_id"], row["environment"]) == (
            attrs["user"] or first["user"],
            attrs["env"] or first["env"],
        )
        assert (row["session_id"], row["release"], row["tags"]) == (None, None, None)
    assert set(TRACE_ATTRIBUTE_COLUMNS) <= set(SPAN_COLUMNS)
