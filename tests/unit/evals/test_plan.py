"""Cases from a config and items: messages, repeats, perturbations, input errors, determinism."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeep.evals.config import parse_config
from watchkeep.evals.model import DatasetItem
from watchkeep.evals.plan import MAX_RENDERED_CHARS, InputError, build_cases, render_template


def _config(**extra: Any) -> Any:
    return parse_config(
        {"name": "t", "dataset": {"name": "d"}, "target": {"kind": "python", "callable": "m:f"}, **extra}
    )


def test_string_input_is_the_user_message_after_the_system_prompt() -> None:
    config = _config(prompt={"system": "Be brief."})
    planned = build_cases(config, [DatasetItem("a", "What is 2+2?", expected="4", metadata={"t": 1})])
    assert planned.input_errors == []
    (case,) = planned.cases
    assert case.messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
    )
    assert (case.item_key, case.repeat, case.variant, case.expected) == ("a", 0, "", "4")
    assert case.metadata == {"t": 1}


def test_message_list_is_used_as_is_and_keeps_its_own_system_prompt() -> None:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    planned = build_cases(_config(prompt={"system": "other"}), [DatasetItem("a", messages)])
    assert planned.cases[0].messages == tuple(messages)


def test_mapping_input_fills_the_template() -> None:
    config = _config(prompt={"template": "Classify: {{ review }} ({{ metadata.lang }})"})
    planned = build_cases(config, [DatasetItem("a", {"review": "great"}, metadata={"lang": "en"})])
    assert planned.cases[0].messages[-1]["content"] == "Classify: great (en)"


def test_a_bad_item_becomes_input_errors_for_each_of_its_cases_and_the_rest_runs() -> None:
    config = _config(prompt={"template": "{{ review }}"}, repeats=2, perturbations=["case"])
    items = [DatasetItem("bad", {"text": "no review"}), DatasetItem("ok", {"review": "fine"})]
    planned = build_cases(config, items)
    assert {c.item_key for c in planned.cases} == {"ok"}
    assert len(planned.cases) == 4
    assert sorted((r.repeat, r.variant) for r in planned.input_errors) == [
        (0, ""),
        (0, "case"),
        (1, ""),
        (1, "case"),
    ]
    assert all(r.error_kind == "input" and r.passed is None for r in planned.input_errors)
    assert "review" in (planned.input_errors[0].error or "")


@pytest.mark.parametrize(
    "bad_input",
    [[{"role": "wizard", "content": "x"}], [], 42, {"a": 1}],
)
def test_malformed_inputs_are_input_errors(bad_input: Any) -> None:
    planned = build_cases(_config(), [DatasetItem("x", bad_input)])
    assert planned.cases == []
    assert planned.input_errors[0].error_kind == "input"


def test_repeats_and_perturbations_expand_with_stable_keys_and_texts() -> None:
    config = _config(repeats=3, perturbations=["typos", "case"], seed=5)
    items = [
        DatasetItem("a", "where is my order number 42 please"),
        DatasetItem("b", "cancel my subscription today"),
    ]
    first = build_cases(config, items).cases
    assert len(first) == 2 * 3 * 3
    assert len({c.key for c in first}) == len(first)
    assert first == build_cases(config, items).cases  # a pure function: every executor and resume agree
    by_key = {c.key: c for c in first}
    # the repeats of a perturbed case ask the very same text, and it differs from the original
    assert by_key[("a", 0, "case")].messages == by_key[("a", 2, "case")].messages
    assert by_key[("a", 0, "case")].messages != by_key[("a", 0, "")].messages
    assert by_key[("a", 0, "typos")].family == "typos"
    other_seed = build_cases(_config(repeats=3, perturbations=["typos"], seed=6), items).cases
    assert {c.key: c.messages for c in other_seed if c.variant == "typos"} != {
        c.key: c.messages for c in first if c.variant == "typos"
    }


def test_perturbation_changes_only_the_last_user_message() -> None:
    messages = [
        {"role": "user", "content": "FIRST QUESTION STAYS"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second question changes"},
    ]
    planned = build_cases(_config(perturbations=["case"]), [DatasetItem("a", messages)])
    variant = next(c for c in planned.cases if c.variant == "case")
    assert variant.messages[0] == messages[0]
    assert variant.messages[1] == messages[1]
    assert variant.messages[2]["content"].lower() == "second question changes"


def test_templates_are_sandboxed_strict_and_bounded() -> None:
    with pytest.raises(InputError, match="undefined"):
        render_template("{{ missing }}", {})
    with pytest.raises(InputError):
        render_template("{{ ''.__class__.__mro__ }}", {})
    with pytest.raises(InputError, match="longer than"):
        render_template("{% for i in range(100000) %}{{ x }}{% endfor %}", {"x": "y" * 10})
    assert len(render_template("{{ x }}", {"x": "y" * MAX_RENDERED_CHARS})) == MAX_RENDERED_CHARS
