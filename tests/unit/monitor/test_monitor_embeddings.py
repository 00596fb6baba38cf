"""Text drift with the packaged MiniLM model (the ``embeddings`` extra, which make install adds)."""

from __future__ import annotations

import random

from watchkeep.monitor.embedding_drift import default_embedder, domain_classifier_drift

COOKING = [
    f"How long should I {verb} the {food} for dinner?"
    for verb in ("bake", "boil", "roast", "grill")
    for food in ("chicken", "potatoes", "salmon", "rice", "carrots")
]
TAXES = [
    f"Can I deduct {item} from my {kind} tax return?"
    for item in ("home office costs", "travel", "donations", "medical bills", "tuition")
    for kind in ("federal", "state", "2025", "joint")
]


def test_minilm_embeddings_detect_a_topic_shift_and_not_a_resample() -> None:
    embedder = default_embedder()
    assert embedder.name == "all-minilm-l6-v2"  # the real model, loaded offline from its wheel
    rng = random.Random(0)
    reference = embedder.embed([rng.choice(COOKING) for _ in range(150)])
    assert reference.shape == (150, 384)
    same_topic = embedder.embed([rng.choice(COOKING) for _ in range(150)])
    new_topic = embedder.embed([rng.choice(TAXES) for _ in range(150)])
    assert not domain_classifier_drift(reference, same_topic).drifted
    shifted = domain_classifier_drift(reference, new_topic)
    assert shifted.drifted
    assert shifted.statistic > 0.9
