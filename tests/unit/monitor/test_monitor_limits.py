"""Unit checks of the monitoring limits: the per-minute window, RE2 patterns, caller YAML."""

from __future__ import annotations

import pytest

from watchkeep.evaluators.patterns import UnsafePattern, compile_pattern, re2_validator
from watchkeep.monitor.quota import PerMinute, QuotaExceeded
from watchkeep.monitor.spec import MAX_YAML_DEPTH, load_yaml


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_minute_window_slides_and_tells_when_to_retry() -> None:
    clock = Clock()
    limit = PerMinute(2, clock)
    assert limit.take(1) is None
    clock.now += 10
    assert limit.take(1) is None
    assert limit.take(1) == pytest.approx(50.0)  # the first event leaves the window in 50 s
    assert limit.take(2) is None  # keys are independent
    clock.now += 50
    assert limit.take(1) is None
    assert limit.take(1) == pytest.approx(10.0)


def test_quota_message_names_the_setting() -> None:
    assert "quota_monitors" in QuotaExceeded("monitors", 200, "quota_monitors").message


def test_re2_patterns_match_like_re_for_ordinary_syntax() -> None:
    assert compile_pattern(r"^order #\d{3,}\b").search("order #1234 shipped")
    assert compile_pattern("HELLO", True).search("say hello")
    assert not compile_pattern("HELLO").search("say hello")
    with pytest.raises(UnsafePattern, match="RE2"):
        compile_pattern(r"(?<!x)y")


def test_json_schema_validation_runs_patterns_on_re2() -> None:
    validator = re2_validator(
        {
            "type": "object",
            "properties": {"id": {"type": "string", "pattern": "^[a-z]+-[0-9]+$"}},
            "patternProperties": {"^x-": {"type": "integer"}},
            "additionalProperties": False,
        }
    )
    assert validator.is_valid({"id": "ab-12", "x-count": 3})
    assert not validator.is_valid({"id": "AB"})
    assert not validator.is_valid({"id": "ab-1", "x-count": "three"})
    assert not validator.is_valid({"id": "ab-1", "other": 1})
    with pytest.raises(ValueError, match="invalid JSON Schema"):
        re2_validator({"type": "no-such-type"})


def test_caller_yaml_refuses_anchors_and_deep_nesting_but_reads_plain_files() -> None:
    plain = "monitors:\n  - {name: a, kind: metric, metric: error_rate, condition: {alert: 0.5}}\n"
    assert load_yaml(plain).monitors[0].name == "a"
    with pytest.raises(ValueError, match="anchors"):
        load_yaml("x: &a 1\n")
    with pytest.raises(ValueError, match="too deep"):
        load_yaml("x: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1))
    with pytest.raises(ValueError, match="not valid YAML"):
        load_yaml("x: [")
