"""Drift of a feature between a reference (a closed window or a pinned dataset) and now.

The reference is summarised once: its summary is kept in memory (a small LRU owned by
this service) and in ``drift_references``, keyed by a hash of everything that defines
it, so every later run — in this process, another worker, or after a restart — only
loads and bins the current window. Windows that have not closed yet are never cached.

A closed window missing from both caches is summarised for its feature's whole family
(``FeatureLoader.family``: every span-column feature, or both payload lengths) from one
scan, so the monitors watching other features of the same filter and window find their
summaries ready: the cold pass scans each (filter, window) once instead of once per
drift monitor (decision 0009). A summary does not depend on which family members were
loaded with it, so cold and warm runs give the same results.

A worker pass may also bound the time it spends summarising references
(``reference_budget``): once the budget is spent, a reference that would need a scan
raises ``ReferencePending`` and the worker leaves that monitor due for its next pass,
so the first pass after a start stays short and the references fill in over a few passes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from watchkeep.monitor.drift import (
    DriftResult,
    Method,
    ReferenceSummary,
    drift,
    summarise_categorical,
    summarise_numeric,
)
from watchkeep.monitor.embedding_drift import (
    Embedder,
    default_embedder,
    domain_classifier_drift,
    reference_vectors,
)
from watchkeep.monitor.features import FeatureLoader, FeatureRequest
from watchkeep.store.clock import now_ns
from watchkeep.store.sealing import Sealer
from watchkeep.store.tables import drift_references

CACHE_ENTRIES = 256
SETTLE_NS = 60 * 1_000_000_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReferenceSpec:
    """A closed time window [start, end), or pinned values (a dataset's column)."""

    start_ns: int | None = None
    end_ns: int | None = None
    values: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.values is None and (self.start_ns is None or self.end_ns is None):
            raise ValueError("a reference needs a window (start and end) or pinned values")


class ReferencePending(RuntimeError):
    """A reference needs a scan, but this pass has spent its reference budget."""


@dataclass(slots=True)
class ReferenceBudget:
    """Seconds a pass may spend summarising references from raw spans, and what it did."""

    seconds: float
    spent: float = 0.0
    computed: int = 0
    deferred: int = 0


_BUDGET: ContextVar[ReferenceBudget | None] = ContextVar("watchkeep_reference_budget", default=None)


@contextmanager
def reference_budget(seconds: float) -> Iterator[ReferenceBudget]:
    """Bound reference summarising inside the block (the first one always runs; it may overrun)."""
    budget = ReferenceBudget(seconds)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def budgeted(compute: Callable[[], T], what: str) -> T:
    """``compute()`` (a scan of raw spans for a reference), charged to the pass's budget.

    Outside ``reference_budget`` it always runs; inside, it raises ``ReferencePending``
    once the budget is spent, except for the pass's first scan (so every pass progresses).
    """
    budget = _BUDGET.get()
    if budget is not None and budget.computed and budget.spent >= budget.seconds:
        budget.deferred += 1
        raise ReferencePending(f"{what} deferred: this pass spent its budget")
    started = time.perf_counter()
    try:
        return compute()
    finally:
        if budget is not None:
            budget.spent += time.perf_counter() - started
            budget.computed += 1


@dataclass(frozen=True, slots=True)
class DriftReport:
    """The verdict for one feature, with what it was computed from."""

    feature: str
    kind: str
    result: DriftResult
    embedder: str | None = None
    reference_cached: bool = False


def _encode_vectors(v: np.ndarray) -> dict[str, Any]:
    data = base64.b64encode(v.astype(np.float16).tobytes()).decode("ascii")
    return {"shape": list(v.shape), "f16": data}


def _decode_vectors(d: dict[str, Any]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(d["f16"]), dtype=np.float16)
    return raw.reshape(d["shape"]).astype(np.float32)


class DriftService:
    """Computes drift reports, summarising and caching references on the way."""

    def __init__(
        self,
        engine: Engine,
        *,
        embedder_factory: Callable[[], Embedder] = default_embedder,
        clock: Callable[[], int] = now_ns,
        sealer: Sealer | None = None,
    ) -> None:
        self._engine = engine
        self._loader = FeatureLoader(engine, sealer=sealer)
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self._clock = clock
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @property
    def loader(self) -> FeatureLoader:
        """The feature loader (shared with callers that need raw values)."""
        return self._loader

    def embedder(self) -> Embedder:
        """The text embedder, created on first use (loading a model is slow)."""
        if self._embedder is None:
            self._embedder = self._embedder_factory()
        return self._embedder

    def compute(
        self,
        project_id: int,
        req: FeatureRequest,
        reference: ReferenceSpec,
        start_ns: int,
        end_ns: int,
        *,
        method: Method = "auto",
        threshold: float | None = None,
        current: Any | None = None,
    ) -> DriftReport:
        """Drift of ``req`` in [start, end) against ``reference``.

        ``current`` is the window's values when the caller already loaded them (a monitor
        pass shares one load between the monitors of the same feature, filter and window);
        it is only read, never modified.
        """
        kind = req.kind
        summary, cached = self.reference(project_id, req, reference)
        if current is None:
            current = self._loader.load(project_id, req, start_ns, end_ns)
        if kind == "text":
            vectors = self.embedder().embed(list(current)) if current else np.zeros((0, 1), np.float32)
            result = domain_classifier_drift(_decode_vectors(summary["vectors"]), vectors, threshold)
            return DriftReport(req.feature, kind, result, summary["embedder"], cached)
        ref = ReferenceSummary.from_json(summary)
        return DriftReport(req.feature, kind, drift(ref, current, method, threshold), None, cached)

    def reference(
        self, project_id: int, req: FeatureRequest, spec: ReferenceSpec
    ) -> tuple[dict[str, Any], bool]:
        """The reference summary (JSON form) and whether it came from a cache."""
        key = self._key(project_id, req, spec)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found, True
        with self._engine.connect() as conn:
            stored = conn.execute(
                select(drift_references.c.summary).where(
                    drift_references.c.project_id == project_id, drift_references.c.cache_key == key
                )
            ).scalar_one_or_none()
        if stored is not None:
            self._remember(key, stored)
            return stored, True
        if spec.values is not None:
            return self._build(project_id, req, spec, key), False
        return budgeted(lambda: self._build(project_id, req, spec, key), f"reference of {req.feature}"), False

    def _build(self, project_id: int, req: FeatureRequest, spec: ReferenceSpec, key: str) -> dict[str, Any]:
        """Summarise a reference found in no cache (and cache it once its window has closed)."""
        closed = spec.values is not None or (spec.end_ns or 0) <= self._clock() - SETTLE_NS
        if closed and spec.values is None and self._loader.family(req.feature):
            return self._summarise_family(project_id, req, spec)[key]
        values: Sequence[Any] = (
            spec.values
            if spec.values is not None
            else self._loader.load(project_id, req, spec.start_ns or 0, spec.end_ns or 0)
        )
        summary = self._summarise(req, values)
        if closed:
            self._remember(key, summary)
            self._store(project_id, key, summary)
        return summary

    def _summarise_family(
        self, project_id: int, req: FeatureRequest, spec: ReferenceSpec
    ) -> dict[str, dict[str, Any]]:
        """Summarise (and cache) ``req``'s closed window for every uncached feature of its family."""
        members = {
            name: FeatureRequest(name, req.filter, req.score_name)
            for name in self._loader.family(req.feature)
        }
        keys = {name: self._key(project_id, member, spec) for name, member in members.items()}
        with self._engine.connect() as conn:
            stored = set(
                conn.execute(
                    select(drift_references.c.cache_key).where(
                        drift_references.c.project_id == project_id,
                        drift_references.c.cache_key.in_(list(keys.values())),
                    )
                ).scalars()
            )
        wanted = [
            name
            for name, key in keys.items()
            if name == req.feature or (key not in stored and key not in self._cache)
        ]
        columns = self._loader.load_many(project_id, req.filter, wanted, spec.start_ns or 0, spec.end_ns or 0)
        out: dict[str, dict[str, Any]] = {}
        for name in wanted:
            summary = out[keys[name]] = self._summarise(members[name], columns[name])
            self._remember(keys[name], summary)
            self._store(project_id, keys[name], summary)
        return out

    def _summarise(self, req: FeatureRequest, values: Sequence[Any]) -> dict[str, Any]:
        if req.kind == "numeric":
            return summarise_numeric(np.asarray(values, dtype=float)).to_json()
        if req.kind == "categorical":
            return summarise_categorical(values).to_json()
        embedder = self.embedder()
        texts = [str(v) for v in values]
        vectors = embedder.embed(texts) if texts else np.zeros((0, 1), np.float32)
        return {
            "kind": "text",
            "n": len(texts),
            "embedder": embedder.name,
            "vectors": _encode_vectors(reference_vectors(vectors)),
        }

    def _key(self, project_id: int, req: FeatureRequest, spec: ReferenceSpec) -> str:
        pinned = None
        if spec.values is not None:
            pinned = hashlib.sha256(json.dumps(list(spec.values), default=str).encode()).hexdigest()
        embedder = self.embedder().name if req.kind == "text" else None
        identity = [
            project_id,
            req.feature,
            list(req.filter.key()),
            req.score_name,
            spec.start_ns,
            spec.end_ns,
            pinned,
            embedder,
        ]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()

    def _remember(self, key: str, summary: dict[str, Any]) -> None:
        self._cache[key] = summary
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

    def _store(self, project_id: int, key: str, summary: dict[str, Any]) -> None:
        row = {"project_id": project_id, "cache_key": key, "summary": summary}
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(drift_references).values(created_at_unix_nano=self._clock(), **row))
        except IntegrityError:
            pass  # another worker stored the same reference first
