"""exact_match, contains and classification compare outputs with expected answers correctly."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeep.evaluators import EvalInput, EvalResult, EvaluatorRegistry, InvalidParams, UnknownEvaluator


@pytest.fixture
def registry() -> EvaluatorRegistry:
    return EvaluatorRegistry(plugins=False)


def run(
    registry: EvaluatorRegistry, name: str, output: str | None, expected: Any = None, **params: Any
) -> EvalResult:
    return registry.create(name, params).evaluate(EvalInput(output=output, expected=expected))


def test_exact_match_normalises_both_sides(registry: EvaluatorRegistry) -> None:
    assert run(registry, "exact_match", "  Paris\n", "Paris").passed  # strip is on by default
    assert not run(registry, "exact_match", "paris", "Paris").passed
    assert run(registry, "exact_match", "paris", "Paris", case_insensitive=True).passed
    assert not run(registry, "exact_match", "New  York", "New York").passed
    assert run(registry, "exact_match", "New \t York", "New York", collapse_whitespace=True).passed
    assert run(registry, "exact_match", "Yes!", "yes.", strip_punctuation=True, case_insensitive=True).passed
    assert not run(registry, "exact_match", " x ", "x", strip=False).passed


def test_exact_match_lists_non_strings_and_missing_expected(registry: EvaluatorRegistry) -> None:
    assert run(registry, "exact_match", "Lyon", ["Paris", "Lyon"]).passed
    assert not run(registry, "exact_match", "Nice", ["Paris", "Lyon"]).passed
    assert run(registry, "exact_match", "42", 42).passed
    assert run(registry, "exact_match", "true", True).passed
    assert run(registry, "exact_match", '{"a": 1, "b": 2}', {"b": 2, "a": 1}).passed
    missing = run(registry, "exact_match", "anything", None)
    assert not missing.passed
    assert missing.comment is not None
    assert "no expected answer" in missing.comment
    assert not run(registry, "exact_match", None, "x").passed
    assert run(registry, "exact_match", "ok", None, value="ok").passed  # a configured value: usable online
    assert run(registry, "exact_match", "ok", "not this", value=["fine", "ok"]).passed


def test_exact_match_params_are_validated(registry: EvaluatorRegistry) -> None:
    with pytest.raises(InvalidParams):
        registry.create("exact_match", {"case_insensitiv": True})
    with pytest.raises(InvalidParams, match="at most 200"):
        registry.create("exact_match", {"value": ["x"] * 201})
    with pytest.raises(InvalidParams, match="characters"):
        registry.create("exact_match", {"value": "x" * 10_001})


def test_contains_any_all_and_negate(registry: EvaluatorRegistry) -> None:
    text = "The capital of France is Paris."
    assert run(registry, "contains", text, "Paris").passed
    assert not run(registry, "contains", text, "paris").passed
    assert run(registry, "contains", text, "paris", case_insensitive=True).passed
    assert run(registry, "contains", text, None, values=["Lyon", "Paris"]).passed
    both = run(registry, "contains", text, None, values=["Lyon", "Paris"], mode="all")
    assert not both.passed
    assert both.details == {"found": ["Paris"], "missing": ["Lyon"]}
    assert both.comment is not None
    assert "Lyon" in both.comment
    assert not run(registry, "contains", text, None, values=["Paris"], negate=True).passed
    assert run(registry, "contains", text, None, values=["Berlin", "Rome"], negate=True).passed
    assert run(registry, "contains", text, None, values=["Paris", "Rome"], mode="all", negate=True).passed
    assert not run(registry, "contains", text, None).passed
    assert not run(registry, "contains", None, "Paris").passed
    assert run(registry, "contains", None, "Paris", negate=True).passed
    with pytest.raises(InvalidParams):
        registry.create("contains", {"mode": "most"})


LABELS = {"labels": ["positive", "negative", "neutral"], "synonyms": {"good": "positive", "bad": "negative"}}


def test_classification_extracts_the_first_label(registry: EvaluatorRegistry) -> None:
    result = run(
        registry, "classification", "Sentiment: Positive. Not negative at all.", "positive", **LABELS
    )
    assert result.passed
    assert result.details == {"predicted": "positive", "expected": "positive"}
    wrong = run(registry, "classification", "negative", "positive", **LABELS)
    assert not wrong.passed
    assert wrong.details == {"predicted": "negative", "expected": "positive"}
    assert run(registry, "classification", "That was bad.", "negative", **LABELS).passed  # a synonym
    assert run(registry, "classification", "a GOOD film", "Good", **LABELS).details == {
        "predicted": "positive",
        "expected": "positive",  # the expected label goes through the synonyms too
    }
    none = run(registry, "classification", "positively unclear", "positive", **LABELS)  # whole words only
    assert not none.passed
    assert none.details == {"predicted": None, "expected": "positive"}
    assert run(registry, "classification", None, "positive", **LABELS).details == {
        "predicted": None,
        "expected": "positive",
    }


def test_classification_ambiguity_case_and_pattern(registry: EvaluatorRegistry) -> None:
    ambiguous = {**LABELS, "multiple": "ambiguous"}
    assert run(registry, "classification", "positive or negative", "positive", **ambiguous).details == {
        "predicted": None,
        "expected": "positive",
    }
    assert run(registry, "classification", "positive, positive", "positive", **ambiguous).passed
    strict = {**LABELS, "case_insensitive": False}
    assert run(registry, "classification", "Positive", "positive", **strict).details == {
        "predicted": None,
        "expected": "positive",
    }
    pattern = {**LABELS, "pattern": r"Label:\s*(\w+)"}
    assert run(registry, "classification", "negative words... Label: good", "positive", **pattern).passed
    assert not run(registry, "classification", "Label: maybe", "positive", **pattern).passed
    missing = run(registry, "classification", "positive", None, **LABELS)
    assert not missing.passed
    assert missing.details == {"predicted": "positive", "expected": None}
    assert run(registry, "classification", "class 1", 1, labels=["0", "1"]).passed  # non-string expected


def test_classification_params_are_validated(registry: EvaluatorRegistry) -> None:
    with pytest.raises(InvalidParams):
        registry.create("classification", {})
    with pytest.raises(InvalidParams, match="unknown labels"):
        registry.create("classification", {"labels": ["a"], "synonyms": {"x": "b"}})
    with pytest.raises(InvalidParams, match="RE2"):
        registry.create("classification", {"labels": ["a"], "pattern": r"(a)\1"})
    with pytest.raises(InvalidParams):
        registry.create("classification", {"labels": [" "]})


def test_a_typo_gets_did_you_mean(registry: EvaluatorRegistry) -> None:
    with pytest.raises(UnknownEvaluator, match="did you mean exact_match"):
        registry.get("exact_mach")
    with pytest.raises(UnknownEvaluator, match="classification"):
        registry.get("clasification")
