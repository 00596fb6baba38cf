"""String and embedding similarity score closeness in 0..1; latency and cost bounds read the span."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import pytest

from watchkeep.evaluators import (
    EvalContext,
    EvalInput,
    EvalResult,
    EvaluatorRegistry,
    InvalidParams,
    similarity,
)


@pytest.fixture
def registry() -> EvaluatorRegistry:
    return EvaluatorRegistry(plugins=False)


def run(
    registry: EvaluatorRegistry, name: str, output: str | None, expected: Any = None, **params: Any
) -> EvalResult:
    return registry.create(name, params).evaluate(EvalInput(output=output, expected=expected))


@pytest.mark.parametrize(
    ("method", "a", "b", "value"),
    [
        ("levenshtein", "kitten", "sitting", 1 - 3 / 7),  # three edits over seven characters
        ("ratio", "kitten", "sitting", 8 / 13),  # 2 * matches / total length
        ("jaro_winkler", "martha", "marhta", 0.9611111),  # the textbook example
        ("token_sort_ratio", "red green blue", "blue red green", 1.0),
        ("token_set_ratio", "the red fox", "red fox", 1.0),
        ("partial_ratio", "hello", "oh hello world", 1.0),
    ],
)
def test_similarity_methods_are_normalised(
    registry: EvaluatorRegistry, method: str, a: str, b: str, value: float
) -> None:
    result = run(registry, "similarity", a, b, method=method, threshold=0.9)
    assert result.value == pytest.approx(value, abs=1e-6)
    assert result.passed == (value >= 0.9)
    assert result.details is not None
    assert result.details["reference"] == b


def test_similarity_best_of_a_list_case_and_edge_cases(registry: EvaluatorRegistry) -> None:
    best = run(registry, "similarity", "colour", ["flavour", "color", "hue"], threshold=0.8)
    assert best.passed
    assert best.details is not None
    assert best.details["reference"] == "color"
    assert not run(registry, "similarity", "PARIS", "paris").passed
    assert run(registry, "similarity", "PARIS", "paris", case_insensitive=True).value == 1.0
    assert run(registry, "similarity", "4", 4).value == 1.0  # non-string expected
    none = run(registry, "similarity", None, "x")
    assert (none.passed, none.value, none.comment) == (False, 0.0, "no output")
    missing = run(registry, "similarity", "x", None)
    assert not missing.passed
    assert missing.comment is not None
    assert "no expected" in missing.comment
    assert run(registry, "similarity", "abc", "zzz", value="abc").value == 1.0
    for bad in ({"method": "cosine"}, {"threshold": 1.5}, {"threshold": -0.1}):
        with pytest.raises(InvalidParams):
            registry.create("similarity", bad)


def test_embedding_similarity_with_the_local_model(registry: EvaluatorRegistry) -> None:
    evaluator = registry.create("embedding_similarity", {"threshold": 0.6})
    close = evaluator.evaluate(EvalInput("The cat sat on the mat.", expected="A cat is sitting on a mat."))
    far = evaluator.evaluate(EvalInput("Quarterly revenue rose by four percent.", expected="A cat on a mat."))
    assert close.passed
    assert not far.passed
    assert 0.0 <= far.value < close.value <= 1.0
    same = asyncio.run(
        evaluator.aevaluate(EvalInput("hello there", expected=["xyz", "hello there"]), EvalContext())
    )
    assert same.value == pytest.approx(1.0, abs=1e-4)
    assert same.details is not None
    assert same.details["reference"] == "hello there"
    assert similarity.shared_model() is similarity.shared_model()  # loaded once, shared
    assert not evaluator.evaluate(EvalInput(None, expected="x")).passed


def test_embedding_similarity_without_the_extra_is_refused_at_create(
    registry: EvaluatorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def without_sentence_transformers(name: str, *args: Any) -> Any:
        return None if name == "sentence_transformers" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_sentence_transformers)
    with pytest.raises(InvalidParams, match=r"embeddings extra \(pip install 'watchkeep\[embeddings\]'\)"):
        registry.create("embedding_similarity", {})


def test_latency_and_cost_bounds(registry: EvaluatorRegistry) -> None:
    latency = registry.create("latency", {"max_ms": 500})
    fast = latency.evaluate(EvalInput("x", span={"latency_ms": 120.5}))
    assert fast.passed
    assert fast.details == {"latency_ms": 120.5}
    slow = latency.evaluate(EvalInput("x", span={"latency_ms": 900}))
    assert not slow.passed
    assert slow.comment == "latency 900 ms > 500 ms"
    assert latency.evaluate(EvalInput("x", span={"latency_ms": 500})).passed  # the bound is inclusive
    unmeasured = latency.evaluate(EvalInput("x"))
    assert not unmeasured.passed
    assert unmeasured.comment == "no latency recorded"
    assert not latency.evaluate(EvalInput("x", span={"latency_ms": "fast"})).passed
    cost = registry.create("cost", {"max_usd": 0.01})
    assert cost.evaluate(EvalInput(None, span={"cost_usd": 0.002})).passed
    assert not cost.evaluate(EvalInput("x", span={"cost_usd": 0.5})).passed
    assert cost.evaluate(EvalInput("x", span={"cost_usd": None})).comment == "no cost recorded"
    for name, bad in (("latency", {}), ("latency", {"max_ms": 0}), ("cost", {"max_usd": -1})):
        with pytest.raises(InvalidParams):
            registry.create(name, bad)


def test_contract_odd_outputs_and_expected_values_give_a_verdict(registry: EvaluatorRegistry) -> None:
    params: dict[str, dict[str, Any]] = {
        "classification": {"labels": ["yes", "no"]},
        "latency": {"max_ms": 100},
        "cost": {"max_usd": 0.01},
    }
    names = [
        "exact_match",
        "contains",
        "classification",
        "similarity",
        "embedding_similarity",
        "latency",
        "cost",
    ]
    for name in names:
        evaluator = registry.create(name, params.get(name))
        for output in (None, "", "\x00", "{", "😀" * 1000):
            for expected in (None, "x", ["a", 1, None], {"k": 1}, 3.5, []):
                result = evaluator.evaluate(EvalInput(output=output, expected=expected))
                assert 0.0 <= result.value <= 1.0
                assert result.passed == (
                    result.value >= 0.8 if name.endswith("similarity") else result.value == 1
                )
