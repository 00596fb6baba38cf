"""Perturbations: deterministic, meaning-preserving, bounded; unknown kinds are refused."""

from __future__ import annotations

import re

import pytest

from watchkeep.evals.perturb import (
    IRRELEVANT_SENTENCES,
    MAX_GROWTH,
    PERTURBATIONS,
    perturb,
)

QUESTIONS = (
    "Where is my order and when will it arrive?",
    "What is the capital of France?",
    "Please summarise the following paragraph about climate change in two sentences.",
    "How do I reset my password on the mobile application?",
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@pytest.mark.parametrize("kind", PERTURBATIONS)
@pytest.mark.parametrize("text", QUESTIONS)
def test_deterministic_changed_and_bounded(kind: str, text: str) -> None:
    out = perturb(text, kind, seed=7)
    assert out == perturb(text, kind, seed=7)
    assert out != text
    assert out.strip()
    assert len(out) <= len(text) + MAX_GROWTH


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_seeds_vary_the_variant(kind: str) -> None:
    text = QUESTIONS[2]
    assert len({perturb(text, kind, seed) for seed in range(20)}) > 1


@pytest.mark.parametrize("text", QUESTIONS)
def test_case_and_whitespace_keep_the_words(text: str) -> None:
    for seed in range(10):
        assert perturb(text, "case", seed).lower() == text.lower()
        assert perturb(text, "whitespace", seed).split() == text.split()


@pytest.mark.parametrize("text", QUESTIONS)
def test_irrelevant_and_paraphrase_keep_the_question(text: str) -> None:
    for seed in range(10):
        added = perturb(text, "irrelevant", seed)
        assert text in added
        rest = added.replace(text, "").strip()
        assert rest in IRRELEVANT_SENTENCES
        para = perturb(text, "paraphrase", seed)
        assert " ".join(_words(text)[1:]) in " ".join(_words(para))


def test_typos_are_small_and_spare_word_edges() -> None:
    text = QUESTIONS[2]
    for seed in range(30):
        out = perturb(text, "typos", seed)
        before, after = text.split(" "), out.split(" ")
        assert len(before) == len(after)
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert 1 <= len(changed) <= 3
        for a, b in changed:
            assert len(a) >= 4
            assert abs(len(a) - len(b)) <= 1
            assert (a[0], a[-1]) == (b[0], b[-1])


def test_short_words_and_blank_input_stay() -> None:
    assert perturb("Hi to you", "typos", 1) == "Hi to you"
    assert perturb("   ", "paraphrase", 1) == "   "
    assert perturb("", "case", 1) == ""


def test_unknown_kind_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="typos, case, whitespace, irrelevant, paraphrase"):
        perturb("hello there", "synonyms", 1)
