"""The span of a computed case: ids, GenAI and eval attributes, error status, content switch."""

from __future__ import annotations

import orjson

from watchkeep import semconv as sc
from watchkeep.evals.model import ItemResult
from watchkeep.evals.tracing import build_eval_span, new_case_ids, span_id_for


def result(**extra: object) -> ItemResult:
    trace_id, _ = new_case_ids()
    fields: dict[str, object] = {
        "item_key": "k1",
        "repeat": 2,
        "variant": "typos",
        "family": "perturbation",
        "messages": ({"role": "user", "content": "hi"},),
        "output": "hello",
        "latency_ms": 250.0,
        "input_tokens": 4,
        "output_tokens": 1,
        "cost_usd": 0.5,
        "trace_id": trace_id,
        **extra,
    }
    return ItemResult(**fields)  # type: ignore[arg-type]


def test_ids_are_derived_so_any_executor_names_the_same_span() -> None:
    trace_id, span_id = new_case_ids()
    assert len(trace_id) == 32
    assert span_id == span_id_for(trace_id)
    assert len(span_id) == 16
    assert new_case_ids()[0] != trace_id


def test_span_carries_the_case_and_its_cost() -> None:
    r = result()
    span = build_eval_span(r, run_id=9, run_name="nightly", model="m", dataset_version=3, end_ns=10**12)
    assert span.name == "eval nightly"
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        r.trace_id,
        span_id_for(r.trace_id or ""),
        None,
    )
    assert span.end_time_unix_nano - span.start_time_unix_nano == 250_000_000
    assert span.status_code == 1
    a = span.attributes
    assert a[sc.WK_EVAL_RUN_ID] == 9
    assert (a[sc.WK_EVAL_ITEM_KEY], a[sc.WK_EVAL_REPEAT], a[sc.WK_EVAL_VARIANT]) == ("k1", 2, "typos")
    assert (a[sc.WK_EVAL_FAMILY], a[sc.WK_EVAL_DATASET_VERSION]) == ("perturbation", 3)
    assert (a[sc.GEN_AI_REQUEST_MODEL], a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.WK_COST_USD]) == ("m", 4, 0.5)
    assert orjson.loads(a[sc.GEN_AI_INPUT_MESSAGES]) == [{"role": "user", "content": "hi"}]
    assert orjson.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])[0]["content"] == "hello"


def test_a_failed_case_is_an_error_span_and_content_can_be_left_out() -> None:
    r = result(output=None, error="no answer within 1 s", error_kind="timeout")
    span = build_eval_span(r, run_id=1, run_name="x", model=None, capture_content=False)
    assert span.status_code == 2
    assert span.status_message == "no answer within 1 s"
    assert span.attributes[sc.ERROR_TYPE] == "timeout"
    assert sc.GEN_AI_INPUT_MESSAGES not in span.attributes
    assert sc.GEN_AI_REQUEST_MODEL not in span.attributes
