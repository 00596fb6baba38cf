"""Shaping validation data for the console (ui/eval_view.py): estimates, sections, scores."""

from __future__ import annotations

from watchkeep.evals.gate import ItemDiff
from watchkeep.evals.model import DatasetItem, ItemResult, Score
from watchkeep.monitor.stats import Estimate
from watchkeep.ui import eval_view as view


def test_sections_walk_the_aggregates_and_skip_empty_ones() -> None:
    aggregates = {
        "n_cases": 40,
        "pass_rate": {"value": 0.675, "low": 0.52, "high": 0.8, "n": 40, "method": "wilson"},
        "consistency": None,
        "evaluators": {
            "exact_match": {"pass_rate": {"value": 0.5, "low": 0.3, "high": 0.7, "n": 10}, "errors": 2}
        },
        "latency_ms": {"p50": 12.5, "p95": 40.0},
    }
    sections = view.summary_sections(aggregates)
    assert [s.title for s in sections] == ["run", "evaluators", "latency ms"]
    run = {r.label: r for r in sections[0].rows}
    assert run["n cases"].value == "40"
    assert (run["pass rate"].value, run["pass rate"].interval, run["pass rate"].n) == (
        "67.5 %",
        "[52.0 %, 80.0 %]",
        "40",
    )
    labels = [(r.label, r.value) for r in sections[1].rows]
    assert labels == [("exact_match · pass_rate", "50.0 %"), ("exact_match · errors", "2")]
    assert view.summary_sections(None) == []
    assert view.run_pass_rate(aggregates) == run["pass rate"]
    assert view.run_pass_rate({"pass_rate": None}) is None


def test_estimates_deltas_and_excerpts() -> None:
    row = view.estimate_row("pass_rate", view.as_mapping(Estimate(0.9, 0.8, 0.95, 50, "wilson")))
    assert (row.value, row.interval, row.n) == ("90.0 %", "[80.0 %, 95.0 %]", "50")
    assert view.as_mapping(None) == {}
    assert view.signed(-0.275, "pass_rate") == "-27.5 pp"
    assert view.signed(0.5, "bleu_mean") == "+0.5"
    assert view.signed(None) == "—"
    assert view.excerpt("a  b\nc") == "a b c"
    assert view.excerpt({"q": "é"}) == '{"q": "é"}'
    assert view.excerpt("x" * 500, 10) == "x" * 9 + "…"


def test_scores_verdicts_and_item_fields() -> None:
    result = ItemResult(
        item_key="k", repeat=0, variant="", family=None, messages=None, output="o",
        scores={
            "exact": Score(passed=True, value=1.0),
            "sim": Score(passed=False, value=0.42),
            "judge": Score(passed=None, value=None, error="off-format"),
        },
    )  # fmt: skip
    assert view.score_text(result) == [
        ("exact", "pass", True),
        ("judge", "error: off-format", None),
        ("sim", "fail 0.42", False),
    ]
    assert view.pass_text(result) == "fail"
    errored = ItemResult("k", 0, "", None, None, None, error="boom", error_kind="timeout")
    assert view.pass_text(errored) == "error"
    item = DatasetItem(key="k", input="hi", expected=None, split="test", metadata={"a": 1})
    assert view.item_fields(item) == {
        "input": "hi", "expected": "", "split": "test", "metadata": '{"a": 1}', "trace_id": "",
    }  # fmt: skip
    assert view.splits_text({"train": 8, "test": 2}) == "test 2 · train 8"
    assert view.source_text({"kind": "traces", "filter": {"model": "m"}, "limit": 5}) == (
        'traces: filter={"model": "m"}, limit=5'
    )
    assert view.source_text(None) == ""


def test_changes_are_ordered_broken_then_fixed() -> None:
    diffs = [
        ItemDiff("a", "", 0.0, 1.0, "fixed", None, None),
        ItemDiff("b", "", 1.0, 0.0, "broken", None, None),
        ItemDiff("c", "", 1.0, 1.0, "same", None, None),
    ]
    assert [d.item_key for d in view.change_order(diffs)] == ["b", "a", "c"]
