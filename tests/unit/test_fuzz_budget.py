"""The fuzz budget knob: scaled example counts, and a clear error for a bad scale."""

from __future__ import annotations

import pytest

from tests.support import fuzz


def test_examples_scale_and_never_reach_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fuzz, "SCALE", 10.0)
    assert fuzz.examples(15) == 150
    monkeypatch.setattr(fuzz, "SCALE", 0.01)
    assert fuzz.examples(15) == 1
    assert fuzz.property_settings(30).max_examples == 1


@pytest.mark.parametrize("raw", ["x", "0", "-2", "nan"])
def test_a_bad_scale_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(fuzz.SCALE_ENV, raw)
    with pytest.raises(ValueError, match=fuzz.SCALE_ENV):
        fuzz._scale()


def test_the_scale_defaults_to_the_written_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fuzz.SCALE_ENV, raising=False)
    assert fuzz._scale() == 1.0
    monkeypatch.setenv(fuzz.SCALE_ENV, "2.5")
    assert fuzz._scale() == 2.5
