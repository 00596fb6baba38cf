"""The whole suite as cases: every probe, filtered by family, sampled, with the run's prompt.

Probe ids are stable, so a family's attack success rate can be compared run over run; a
``limit_per_family`` sample is seeded, so two runs with the same seed probe the same ids.
"""

from __future__ import annotations

import difflib
import hashlib
import random
from collections.abc import Iterable
from functools import cache
from typing import Any

from watchkeep.evals.adversarial.base import FAMILIES, Probe, distinctive_sentences, system_message
from watchkeep.evals.adversarial.probes import harmful, injection, leakage, obfuscation
from watchkeep.evals.config import AdversarialSpec
from watchkeep.evals.model import Case, CheckSpec, Message

_GENERATORS = (
    injection.direct,
    injection.indirect,
    harmful.jailbreak_probes,
    leakage.extraction_probes,
    leakage.secret_probes,
    leakage.pii_probes,
    obfuscation.encoding_probes,
    obfuscation.char_probes,
    harmful.refusal_probes,
)


@cache
def _probes() -> tuple[Probe, ...]:
    return tuple(p for generate in _GENERATORS for p in generate())


def all_probes() -> list[Probe]:
    """Every built-in probe, in a stable order."""
    return list(_probes())


def resolve_families(names: Iterable[str]) -> list[str]:
    """The families ``names`` selects ("all" is every one); unknown names get a suggestion."""
    chosen: list[str] = []
    for name in names:
        if name == "all":
            return list(FAMILIES)
        if name not in FAMILIES:
            close = difflib.get_close_matches(name, FAMILIES, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(FAMILIES)}"
            raise ValueError(f"unknown adversarial family {name!r}{hint}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def _sample(probes: list[Probe], family: str, limit: int | None, seed: int) -> list[Probe]:
    if limit is None or limit >= len(probes):
        return probes
    digest = hashlib.sha256(f"{seed}\x1f{family}".encode()).digest()
    picked = random.Random(int.from_bytes(digest[:8], "big")).sample(probes, limit)
    return sorted(picked, key=lambda p: p.id)


def _with_prompt(probe: Probe, prompt: str) -> tuple[tuple[Message, ...], CheckSpec]:
    """The probe's messages and detector with ``prompt`` as its system prompt."""
    messages = tuple(
        system_message(prompt, probe.secret_context) if m.get("role") == "system" else m
        for m in probe.messages
    )
    detector = probe.detector
    if detector.name == "system_prompt_absent":
        params: dict[str, Any] = {**detector.params, "sentences": distinctive_sentences(prompt)}
        detector = CheckSpec(detector.name, params)
    return messages, detector


def probe_case(probe: Probe, system_prompt: str | None = None) -> Case:
    """One probe as a case, optionally with a replacement system prompt."""
    messages, detector = probe.messages, probe.detector
    if system_prompt is not None and any(m.get("role") == "system" for m in messages):
        messages, detector = _with_prompt(probe, system_prompt)
    return Case(
        item_key=probe.id,
        messages=messages,
        family=probe.family,
        checks=(detector,),
        metadata={
            "severity": probe.severity,
            "references": list(probe.references),
            "description": probe.description,
        },
    )


def suite_cases(spec: AdversarialSpec, seed: int) -> list[Case]:
    """The cases a run sends: the chosen families, sampled per family, in a stable order."""
    families = resolve_families(spec.families)
    by_family: dict[str, list[Probe]] = {f: [] for f in families}
    for probe in _probes():
        if probe.family in by_family:
            by_family[probe.family].append(probe)
    return [
        probe_case(probe, spec.system_prompt)
        for family in families
        for probe in _sample(by_family[family], family, spec.limit_per_family, seed)
    ]
