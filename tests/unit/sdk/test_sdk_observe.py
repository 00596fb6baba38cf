"""@observe, span(), update_current and trace-level context, through a real export."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import watchkeep as wk
from watchkeep import semconv
from watchkeep.sdk.client import Client
from watchkeep.sdk.testing import OtlpSink, ReceivedSpan


def by_name(sink: OtlpSink) -> dict[str, list[ReceivedSpan]]:
    spans: dict[str, list[ReceivedSpan]] = {}
    for span in sink.spans:
        spans.setdefault(span.name, []).append(span)
    return spans


def test_nested_functions_form_one_trace_with_parent_links(client: Client, sink: OtlpSink) -> None:
    @wk.observe
    def leaf(x: int) -> int:
        return x + 1

    @wk.observe(name="root", kind="agent")
    def root(x: int) -> int:
        return leaf(x) + leaf(x * 10)

    assert root(1) == 13
    assert wk.flush(5)
    spans = by_name(sink)
    (parent,) = spans["root"]
    leaves = spans["test_nested_functions_form_one_trace_with_parent_links.<locals>.leaf"]
    assert len(leaves) == 2
    assert {s.trace_id for s in leaves} == {parent.trace_id}
    assert {s.parent_span_id for s in leaves} == {parent.span_id}
    assert parent.parent_span_id is None
    assert parent.attributes[semconv.WK_SPAN_KIND] == "agent"
    assert parent.attributes[semconv.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert parent.attributes[semconv.WK_INPUT] == '{"x":1}'
    assert parent.attributes[semconv.WK_OUTPUT] == "13"
    assert parent.attributes[semconv.WK_ENVIRONMENT] == "test"
    assert parent.attributes[semconv.WK_RELEASE] == "r1"


def test_exception_marks_span_failed_and_propagates_unchanged(client: Client, sink: OtlpSink) -> None:
    error = KeyError("missing")

    @wk.observe(name="boom")
    def boom() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        boom()
    assert caught.value is error
    wk.flush(5)
    (span,) = by_name(sink)["boom"]
    assert span.status_code == 2
    assert "KeyError" in span.status_message
    (event,) = span.events
    assert event[0] == "exception"
    assert event[1]["exception.type"] == "KeyError"
    assert "raise error" in event[1]["exception.stacktrace"]


def test_async_generators_and_capture_flags(client: Client, sink: OtlpSink) -> None:
    @wk.observe(name="tokens")
    def tokens(n: int) -> Iterator[str]:
        for i in range(n):
            yield f"t{i}"

    @wk.observe(name="atokens", capture_input=False)
    async def atokens() -> AsyncIterator[str]:
        for part in ("a", "b"):
            await asyncio.sleep(0)
            yield part

    @wk.observe(name="acall", capture_output=False)
    async def acall(secret: str) -> str:
        return "".join([part async for part in atokens()]) + secret

    assert list(tokens(3)) == ["t0", "t1", "t2"]
    assert asyncio.run(acall("!")) == "ab!"
    wk.flush(5)
    spans = by_name(sink)
    assert spans["tokens"][0].attributes[semconv.WK_OUTPUT] == '"t0t1t2"'
    (outer,), (inner,) = spans["acall"], spans["atokens"]
    assert inner.parent_span_id == outer.span_id
    assert semconv.WK_OUTPUT not in outer.attributes
    assert outer.attributes[semconv.WK_INPUT] == '{"secret":"!"}'
    assert semconv.WK_INPUT not in inner.attributes
    assert inner.attributes[semconv.WK_OUTPUT] == '"ab"'


def test_generator_closed_early_still_ends_its_span(client: Client, sink: OtlpSink) -> None:
    @wk.observe(name="endless")
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    gen = endless()
    assert next(gen) == 0
    assert next(gen) == 1
    gen.close()
    wk.flush(5)
    (span,) = by_name(sink)["endless"]
    assert span.attributes[semconv.WK_OUTPUT] == "[0,1]"


def test_context_and_update_current_reach_every_span(client: Client, sink: OtlpSink) -> None:
    @wk.observe(name="child")
    def child() -> None:
        wk.update_current(
            model="m1",
            provider="openai",
            input_tokens=5,
            output_tokens=7,
            finish_reasons=["stop"],
            metadata={"step": 2},
            input_messages=[{"role": "user", "content": "hi"}],
        )

    async def task() -> None:
        with wk.span("in-task"):
            child()

    with (
        wk.context(user_id="u1", session_id="s1", tags=["a"], metadata={"team": "x"}),
        wk.context(tags=["b"]),
        wk.span("outer"),
    ):
        child()
        asyncio.run(task())
    with wk.span("outside"):
        pass
    wk.flush(5)
    spans = by_name(sink)
    for span in [*spans["outer"], *spans["child"], *spans["in-task"]]:
        assert span.attributes[semconv.WK_USER_ID] == "u1"
        assert span.attributes[semconv.WK_SESSION_ID] == "s1"
        assert span.attributes[semconv.WK_TAGS] == ["a", "b"]
        assert span.attributes[semconv.WK_METADATA_PREFIX + "team"] == "x"
    assert semconv.WK_USER_ID not in spans["outside"][0].attributes
    child_span = spans["child"][0]
    assert child_span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "m1"
    assert child_span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert child_span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    assert child_span.attributes[semconv.WK_METADATA_PREFIX + "step"] == 2
    assert child_span.attributes[semconv.GEN_AI_INPUT_MESSAGES] == (
        '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]'
    )
    assert spans["in-task"][0].parent_span_id == spans["outer"][0].span_id


def test_opentelemetry_context_interoperates_both_ways(client: Client, sink: OtlpSink) -> None:
    foreign = TracerProvider().get_tracer("foreign")  # another provider: context only
    ours = wk.get_tracer("third-party")

    @wk.observe(name="observed")
    def observed() -> None:
        with ours.start_as_current_span("otel-child") as otel_span:
            otel_span.set_attribute("x", 1)

    with foreign.start_as_current_span("foreign-root") as root:
        with wk.context(user_id="u9"):
            observed()
        root_ctx = root.get_span_context()
    wk.flush(5)
    spans = by_name(sink)
    (obs,), (child,) = spans["observed"], spans["otel-child"]
    assert obs.trace_id == f"{root_ctx.trace_id:032x}"
    assert obs.parent_span_id == f"{root_ctx.span_id:016x}"
    assert child.parent_span_id == obs.span_id
    assert child.trace_id == obs.trace_id
    assert child.scope == "third-party"
    assert child.attributes["x"] == 1
    assert child.attributes[semconv.WK_USER_ID] == "u9"
    assert child.attributes[semconv.WK_ENVIRONMENT] == "test"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_sdk_failure_never_reaches_the_caller(
    client: Client, sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("sdk bug")

    monkeypatch.setattr(Client, "start_span", broken)

    @wk.observe
    def work(x: int) -> int:
        return x * 2

    with wk.span("also-fine") as span:
        span.set_attribute("k", "v")
    assert work(4) == 8
    wk.update_current(model="x")
    assert client.stats().errors >= 2


def test_unserialisable_payload_degrades_to_text(client: Client, sink: OtlpSink) -> None:
    class Odd:
        def __repr__(self) -> str:
            return "Odd()"

        def __str__(self) -> str:
            return "odd-object"

    @wk.observe(name="odd")
    def odd(value: object) -> object:
        return {1, 2} if value else value

    odd(Odd())
    wk.flush(5)
    (span,) = by_name(sink)["odd"]
    assert span.attributes[semconv.WK_INPUT] == '{"value":"odd-object"}'
    assert sorted(json.loads(span.attributes[semconv.WK_OUTPUT])) == [1, 2]


def test_sample_rate_zero_sends_nothing(sink: OtlpSink, home: object) -> None:
    active = wk.init(endpoint=sink.url, api_key="test-key", home=home, sample_rate=0.0, flush_interval=0.05)
    try:

        @wk.observe
        def work() -> int:
            with wk.get_tracer().start_as_current_span("otel"):
                return 1

        assert work() == 1
        assert wk.flush(5)
        assert sink.spans == []
    finally:
        active.shutdown(2)
