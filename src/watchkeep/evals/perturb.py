"""Meaning-preserving perturbations of an input, for invariance under noise.

A robust target answers "wehre is my order?" as it answers "where is my order?". Each
kind here changes the surface of a text (spelling, case, spacing, an unrelated sentence,
a paraphrase template) without changing what is asked, deterministically for a given
``(text, kind, seed)`` so a rerun or another executor sends exactly the same variant. The
output is bounded: at most ``len(text) + MAX_GROWTH`` characters.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

PERTURBATIONS = ("typos", "case", "whitespace", "irrelevant", "paraphrase")
MAX_GROWTH = 200  # characters a perturbation may add to its input
MAX_TYPOS = 8
TYPO_RATE = 0.12  # typos per eligible word

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD_ROWS):
    for _c, _ch in enumerate(_row):
        _near = [_row[i] for i in (_c - 1, _c + 1) if 0 <= i < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_KEYBOARD_ROWS) and _c < len(_KEYBOARD_ROWS[_other]):
                _near.append(_KEYBOARD_ROWS[_other][_c])
        _NEIGHBOURS[_ch] = "".join(_near)

IRRELEVANT_SENTENCES = (
    "By the way, the weather has been lovely this week.",
    "I am writing this from a cafe near the station.",
    "My cat is asleep on the keyboard right now.",
    "I had a sandwich for lunch today.",
    "This is unrelated, but I just started learning the piano.",
    "Sorry if this is a basic question.",
    "I am asking on behalf of a colleague.",
    "Thanks in advance for your time.",
    "It has been a long day at work.",
    "I read about this in a magazine last month.",
    "My friend recommended asking here.",
    "Hope you are having a good day.",
)

PARAPHRASE_TEMPLATES = (
    "Could you tell me: {q}",
    "{q} Please answer briefly.",
    "I was wondering, {q_lower}",
    "Quick question: {q}",
    "Here is what I need to know. {q}",
    "{q} Thanks!",
    "Please help with the following. {q}",
    "Can you help? {q}",
)

_WORD = re.compile(r"[A-Za-z]+")


def _rng(text: str, kind: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{kind}\x1f{text}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _typo(word: str, rng: random.Random) -> str:
    """One typo inside ``word``: never its first or last character."""
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(("swap", "drop", "neighbour"))
    if op == "swap" and i + 1 < len(word) - 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "drop" or word[i].lower() not in _NEIGHBOURS:
        return word[:i] + word[i + 1 :]
    sub = rng.choice(_NEIGHBOURS[word[i].lower()])
    return word[:i] + (sub.upper() if word[i].isupper() else sub) + word[i + 1 :]


def _typos(text: str, rng: random.Random) -> str:
    words = [m for m in _WORD.finditer(text) if len(m.group(0)) >= 4]
    if not words:
        return text
    count = min(MAX_TYPOS, len(words), max(1, round(len(words) * TYPO_RATE)))
    chosen = sorted(rng.sample(words, count), key=lambda m: m.start(), reverse=True)
    for m in chosen:  # right to left, so earlier offsets stay valid
        text = text[: m.start()] + _typo(m.group(0), rng) + text[m.end() :]
    return text


def _case(text: str, rng: random.Random) -> str:
    modes: list[Callable[[str], str]] = [
        str.upper,
        str.lower,
        str.title,
        lambda t: "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in t),
    ]
    start = rng.randrange(len(modes))
    for step in range(len(modes)):
        out = modes[(start + step) % len(modes)](text)
        if out != text:
            return out
    return text


def _whitespace(text: str, rng: random.Random) -> str:
    gaps = [m.start() for m in re.finditer(r" ", text)]
    chosen = sorted(rng.sample(gaps, min(len(gaps), 6)), reverse=True)
    for pos in chosen:
        text = text[:pos] + rng.choice(("  ", "\t", "\n", "   ", " \t ")) + text[pos + 1 :]
    return rng.choice(("", " ", "\n", "\t")) + text + rng.choice((" ", "  ", "\n", " \n"))


def _irrelevant(text: str, rng: random.Random) -> str:
    sentence = rng.choice(IRRELEVANT_SENTENCES)
    return f"{sentence} {text}" if rng.random() < 0.5 else f"{text} {sentence}"


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or (len(first) > 1 and first.isupper()):
        return text
    return text[:1].lower() + text[1:]


def _paraphrase(text: str, rng: random.Random) -> str:
    template = rng.choice(PARAPHRASE_TEMPLATES)
    stripped = text.strip()
    return template.format(q=stripped, q_lower=_lower_first(stripped))


_KINDS: dict[str, Callable[[str, random.Random], str]] = {
    "typos": _typos,
    "case": _case,
    "whitespace": _whitespace,
    "irrelevant": _irrelevant,
    "paraphrase": _paraphrase,
}


def perturb(text: str, kind: str, seed: int) -> str:
    """``text`` perturbed by ``kind``: the same for the same ``(text, kind, seed)``."""
    fn = _KINDS.get(kind)
    if fn is None:
        raise ValueError(f"unknown perturbation {kind!r}; valid: {', '.join(PERTURBATIONS)}")
    if not text.strip():
        return text  # nothing to perturb; an empty prompt stays empty
    return fn(text, _rng(text, kind, seed))
