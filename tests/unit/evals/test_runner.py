"""``run_cases``: calls, retries, back-off on 429, evaluators, cache hits, batches; no database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import eval_targets
from tests.support.eval_targets import Calls
from watchkeep.evals import runner
from watchkeep.evals.model import Case, CheckSpec, ItemResult, RunPlan, TargetReply, case_seed
from watchkeep.evals.runner import cache_key, run_cases

MODULE = "tests.support.eval_targets"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    Calls.reset()
    monkeypatch.setattr(runner, "RETRY_BASE_S", 0.0)
    yield
    Calls.reset()


def plan(fn: Callable[..., Any], *checks: str, **extra: Any) -> RunPlan:
    return RunPlan(
        target={"kind": "python", "callable": f"{fn.__module__}:{fn.__name__}"},
        checks=tuple(CheckSpec(c) for c in checks),
        params=extra.pop("params", {"temperature": 0.2}),
        seed=extra.pop("seed", 11),
        **extra,
    )


def case(key: str, text: str | None = None, **extra: Any) -> Case:
    return Case(item_key=key, messages=({"role": "user", "content": text or key},), **extra)


def run(
    p: RunPlan, cases: list[Case], **kwargs: Any
) -> tuple[dict[tuple[str, int, str], ItemResult], list[int]]:
    batches: list[list[ItemResult]] = []

    async def sink(batch: list[ItemResult]) -> None:
        batches.append(batch)

    asyncio.run(run_cases(p, cases, sink, registry=eval_targets.registry(), **kwargs))
    results = {r.key: r for b in batches for r in b}
    assert sum(len(b) for b in batches) == len(results)  # each case exactly once
    return results, [len(b) for b in batches]


def test_cache_key_separates_what_changes_the_answer() -> None:
    a = case("k", "hello")
    base = cache_key("v1", a, {"temperature": 0})
    assert base == cache_key("v1", case("other-key", "hello"), {"temperature": 0})
    assert len(base) == 64
    assert base != cache_key("v2", a, {"temperature": 0})
    assert base != cache_key("v1", a, {"temperature": 1})
    assert base != cache_key("v1", case("k", "hello!"), {"temperature": 0})
    assert base != cache_key("v1", case("k", "hello", repeat=1), {"temperature": 0})
    seeded = cache_key("v1", a, {"temperature": 0}, seed=7)
    assert seeded == cache_key("v1", a, {"temperature": 0}, seed=7)
    assert seeded != cache_key("v1", a, {"temperature": 0}, seed=8)  # the model is sent another seed


def test_every_case_is_called_judged_and_seeded() -> None:
    cases = [case(f"i{n}", expected=f"i{n}") for n in range(5)] + [case("i9", expected="nope")]
    results, _ = run(plan(eval_targets.echo, "contains_expected"), cases)
    assert Calls.count == 6
    assert results[("i0", 0, "")].output == "echo: i0"
    assert results[("i0", 0, "")].scores["contains_expected"].passed is True
    assert results[("i9", 0, "")].passed is False
    seeds = sorted(params["seed"] for _, params in Calls.seen)
    assert seeds == sorted(case_seed(11, c) for c in cases)
    assert all(params["temperature"] == 0.2 for _, params in Calls.seen)
    assert all(r.trace_id is not None and len(r.trace_id) == 32 for r in results.values())


def test_usage_and_cost_of_a_rich_reply_are_kept() -> None:
    results, _ = run(plan(eval_targets.rich_echo), [case("a", "hi")])
    r = results[("a", 0, "")]
    assert (r.output, r.input_tokens, r.output_tokens, r.cost_usd) == ("HI", 5, 2, 0.01)
    assert r.latency_ms is not None


def test_failures_are_per_item_and_the_run_continues() -> None:
    cases = [case("ok"), case("s", "slow"), case("g", "garbage"), case("f", "fail"), case("ok2")]
    results, _ = run(plan(eval_targets.moody, timeout_s=0.2, retries=1), cases)
    assert results[("ok", 0, "")].output == "fine"
    assert results[("ok2", 0, "")].output == "fine"
    assert results[("s", 0, "")].error_kind == "timeout"
    assert results[("g", 0, "")].error_kind == "garbage"
    assert results[("f", 0, "")].error_kind == "target"
    assert "crashed" in (results[("f", 0, "")].error or "")
    assert results[("s", 0, "")].passed is None
    assert results[("s", 0, "")].scores == {}
    # a timeout is retried (2 calls), garbage and a crash are not (1 each)
    asked = [m[-1]["content"] for m, _ in Calls.seen]
    assert asked.count("slow") == 2
    assert asked.count("garbage") == 1
    assert asked.count("fail") == 1


def test_an_evaluator_that_raises_is_that_score_error() -> None:
    results, _ = run(plan(eval_targets.echo, "boom", "contains_expected"), [case("a", expected="a")])
    r = results[("a", 0, "")]
    assert r.scores["boom"].passed is None
    assert "evaluator broke" in (r.scores["boom"].error or "")
    assert r.scores["contains_expected"].passed is True
    assert r.passed is True  # an evaluator's own error is not a fail


def test_a_case_brings_its_own_checks() -> None:
    probe = case("p", expected="zzz", checks=(CheckSpec("contains_expected"),))
    bad = case("q", checks=(CheckSpec("no-such-evaluator"),))
    results, _ = run(plan(eval_targets.echo, "boom"), [probe, bad, case("n")])
    assert set(results[("p", 0, "")].scores) == {"contains_expected"}
    assert "no-such-evaluator" in (results[("q", 0, "")].scores["no-such-evaluator"].error or "")
    assert set(results[("n", 0, "")].scores) == {"boom"}


def test_rate_limits_lower_concurrency_and_every_case_still_succeeds() -> None:
    Calls.rate_limited_left = 8
    results, _ = run(
        plan(eval_targets.rate_limited, concurrency=8, retries=5), [case(f"c{n}") for n in range(12)]
    )
    assert all(r.output == "ok" for r in results.values())
    assert 1 <= Calls.peak_after_limit < 8


def test_known_replies_are_not_called_and_fresh_ones_are_reported() -> None:
    fresh: list[str] = []
    known = {("a", 0, ""): TargetReply(output="from cache", input_tokens=3)}
    results, _ = run(
        plan(eval_targets.echo, "contains_expected"),
        [case("a", expected="cache"), case("b")],
        replies=known,
        on_reply=lambda c, r: fresh.append(c.item_key),
    )
    assert Calls.count == 1
    assert fresh == ["b"]
    hit = results[("a", 0, "")]
    assert hit.cached is True
    assert hit.output == "from cache"
    assert hit.trace_id is None
    assert hit.scores["contains_expected"].passed is True  # a hit is still judged
    assert results[("b", 0, "")].cached is False


def test_judge_evaluators_ask_the_judge_target_with_the_case_seed() -> None:
    judge = {"kind": "python", "callable": f"{MODULE}:echo"}
    c = case("a", "ok")
    results, _ = run(plan(eval_targets.rich_echo, "judge_yes", judge=judge), [c])
    score = results[("a", 0, "")].scores["judge_yes"]
    assert score.passed is True
    assert score.details == {"judge": "echo: yes OK", "seed": case_seed(11, c)}
    assert Calls.count == 2  # the target, then the judge


def test_results_reach_the_sink_in_batches_and_progress_counts_them() -> None:
    done: list[int] = []
    cases = [case(f"k{n}") for n in range(450)]
    results, sizes = run(plan(eval_targets.echo, concurrency=32), cases, progress=done.append)
    assert len(results) == 450
    assert max(sizes) <= runner.BATCH_RESULTS
    assert len(sizes) >= 3
    assert sum(done) == 450


def test_repeats_and_variants_are_separate_results() -> None:
    cases = [case("a", repeat=0), case("a", repeat=1), case("a", variant="typos", family="perturbation")]
    results, _ = run(plan(eval_targets.echo), cases)
    assert set(results) == {("a", 0, ""), ("a", 1, ""), ("a", 0, "typos")}
    assert results[("a", 0, "typos")].family == "perturbation"
    assert Calls.count == 3


def test_a_bad_run_evaluator_fails_before_any_call() -> None:
    with pytest.raises(KeyError, match="unknown evaluator"):
        run(plan(eval_targets.echo, "nope"), [case("a")])
    assert Calls.count == 0
