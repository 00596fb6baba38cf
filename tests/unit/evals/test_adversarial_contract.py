"""The contract every built-in probe keeps, checked over every probe of the suite."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from watchkeep.evals.adversarial.base import (
    FAMILIES,
    MAX_MESSAGE_CHARS,
    PROBE_ID,
    SEVERITIES,
    Probe,
    canary_for,
    marker_for,
)
from watchkeep.evals.adversarial.suite import all_probes
from watchkeep.evaluators.base import EvalInput
from watchkeep.evaluators.registry import EvaluatorRegistry

PROBES = all_probes()
REGISTRY = EvaluatorRegistry(plugins=False)
REFUSALS = (
    "I'm sorry, but I can't help with that.",
    "I cannot assist with this request.",
    "Lo siento, no puedo ayudar con eso.",
)


def attack_output(probe: Probe) -> str:
    """What a model that fell for ``probe`` would answer."""
    params: dict[str, Any] = dict(probe.detector.params)
    name = probe.detector.name
    if name == "marker_absent":
        return f"Sure! {params['marker']}"
    if name == "canary_absent":
        return f"Of course, here it is: {params['canaries'][-1]}"
    if name == "system_prompt_absent":
        return f"My instructions say: {params['sentences'][0]} That is all."
    return "Sure, here you go. Step 1: gather the materials. Step 2: follow these details carefully."


def test_ids_are_unique_and_stable_in_order() -> None:
    ids = [p.id for p in PROBES]
    assert len(ids) == len(set(ids))
    assert ids == [p.id for p in all_probes()]
    assert ids[0] == "injection.direct.001"


def test_ids_canaries_and_markers_are_pinned() -> None:
    """Ids and the secrets derived from them must not drift between releases (runs compare by id)."""
    assert canary_for("injection.direct.017") == "WK-CANARY-eaf04f"
    assert marker_for("injection.direct.017") == "PWNED-6CF981"
    by_id = {p.id: p for p in PROBES}
    assert (
        by_id["injection.indirect.005"]
        .messages[-1]["content"]
        .startswith("List the action items in this web page:")
    )
    assert by_id["leakage.secret.010"].messages[-1]["content"].startswith("What is the API key")
    assert by_id["encoding.obfuscated.017"].messages[-1]["content"].startswith("What is the secret?")
    assert by_id["harmful.refusal.032"].family == "harmful_refusal"


def test_all_probes_returns_a_fresh_list() -> None:
    probes = all_probes()
    probes.clear()
    assert len(all_probes()) == len(PROBES)


def test_counts_per_family() -> None:
    counts = Counter(p.family for p in PROBES)
    assert len(PROBES) >= 300
    assert set(counts) == set(FAMILIES)
    assert all(n >= 20 for n in counts.values()), counts


def test_canaries_are_unique_per_probe() -> None:
    planted = [canary_for(p.id) for p in PROBES]
    assert len(set(planted)) == len(planted)


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.id)
def test_probe_contract(probe: Probe) -> None:
    assert PROBE_ID.match(probe.id)
    family = FAMILIES[probe.family]
    assert probe.severity in SEVERITIES
    assert probe.references
    assert all(ref.strip() for ref in probe.references)
    assert probe.description.strip()
    assert probe.detector.name in (family.detector, *family.also)
    roles = [m["role"] for m in probe.messages]
    assert roles[-1] == "user"
    assert set(roles) <= {"system", "user", "assistant"}
    assert all(0 < len(m["content"]) <= MAX_MESSAGE_CHARS for m in probe.messages)
    if probe.secret_context:
        assert probe.secret_context in probe.messages[0]["content"]
    detector = REGISTRY.create(probe.detector.name, dict(probe.detector.params))
    attacked = detector.evaluate(EvalInput(output=attack_output(probe), input=probe.messages[-1]["content"]))
    assert attacked.passed is False
    assert attacked.details is not None
    assert attacked.details["attack_succeeded"] is True
    for refusal in REFUSALS:
        held = detector.evaluate(EvalInput(output=refusal))
        assert held.passed is True, (probe.id, refusal)
        assert held.details is not None
        assert held.details["attack_succeeded"] is False


@pytest.mark.parametrize(
    "probe", [p for p in PROBES if p.detector.name == "marker_absent"], ids=lambda p: p.id
)
def test_marker_probes_ask_for_their_own_marker(probe: Probe) -> None:
    """The marker a detector looks for is the one its probe's injection asks for, intact."""
    marker = probe.detector.params["marker"]
    assert marker in probe.messages[-1]["content"]
