"""How the console lays out a trace: waterfall rows, conversation shapes, mention pieces."""

from __future__ import annotations

from typing import Any

from watchkeep.ui.trace_view import MAX_ROWS, conversation, default_span, mention_segments, waterfall


def span(sid: str, parent: str | None, start: int, end: int, **extra: Any) -> dict[str, Any]:
    return {
        "span_id": sid,
        "parent_span_id": parent,
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        **extra,
    }


def test_waterfall_nests_in_start_order_and_scales_bars() -> None:
    rows = waterfall(
        [
            span("r", None, 0, 1000),
            span("b", "r", 500, 1000),
            span("a", "r", 0, 250),
            span("c", "a", 100, 100),
        ]
    ).rows
    assert [(r.span["span_id"], r.depth) for r in rows] == [("r", 0), ("a", 1), ("c", 2), ("b", 1)]
    assert [(r.x, r.width) for r in rows] == [(0, 100), (0, 25), (10, 0.2), (50, 50)]
    assert rows[2].depth_class == "wk-depth-2"


def test_waterfall_survives_cycles_deep_chains_and_huge_traces() -> None:
    cyclic = waterfall([span("a", "b", 0, 10), span("b", "a", 0, 10)])
    assert sorted(r.span["span_id"] for r in cyclic.rows) == ["a", "b"]
    chain = [span("0", None, 0, 10)] + [span(str(n), str(n - 1), 0, 10) for n in range(1, 40)]
    assert waterfall(chain).rows[-1].depth_class == "wk-depth-12"
    big = waterfall([span(f"{n}", None, n, n + 1) for n in range(MAX_ROWS + 5)])
    assert (len(big.rows), big.left_out) == (MAX_ROWS, 5)


def test_conversation_reads_genai_parts_openai_tool_calls_and_plain_text() -> None:
    inputs = [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "weather", "arguments": {"city": "Oslo"}}],
        },
        {"role": "tool", "content": [{"type": "text", "text": "rain"}]},
    ]
    messages = conversation(inputs, "It rains.")
    assert [(m.role_class, m.text) for m in messages] == [
        ("system", "Be brief."),
        ("user", "Weather?"),
        ("assistant", ""),
        ("tool", "rain"),
        ("assistant", "It rains."),
    ]
    assert '"city": "Oslo"' in messages[2].tool_calls[0]
    odd = conversation({"prompt": "x"}, None)
    assert (odd[0].role, '"prompt": "x"' in odd[0].text) == ("user", True)
    assert conversation(None, None) == []
    assert conversation([{"role": "<b>", "content": "hi"}], None)[0].role_class == "other"


def test_mentions_are_cut_out_of_the_text() -> None:
    assert mention_segments("ask @Ann and @bob@example.com, not mail@x.io") == [
        ("ask ", False),
        ("@Ann", True),
        (" and ", False),
        ("@bob@example.com", True),
        (", not mail@x.io", False),
    ]
    assert mention_segments("<b>no one</b>") == [("<b>no one</b>", False)]


def test_default_span_is_the_first_with_messages() -> None:
    rows = [span("r", None, 0, 1, input=None, output=None), span("c", "r", 0, 1, input=["q"], output=None)]
    assert default_span(rows) == "c"
    assert default_span([span("r", None, 0, 1, input=None, output=None)]) == "r"
