"""Online evaluation: cheap checks on a sample of live LLM calls, written back as scores.

Each configured evaluator keeps a cursor (the last span row it has looked at). A
worker claims the next slice of spans by advancing that cursor with a compare-and-set
UPDATE before evaluating, so several workers never score the same span twice. The
sample is a deterministic hash of the span id: a span is either always or never in a
given rate's sample, whichever worker looks at it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from watchkeep.evaluators import EvalInput, EvaluatorRegistry, InvalidParams
from watchkeep.monitor.payloads import payload_text
from watchkeep.monitor.quota import QuotaExceeded
from watchkeep.semconv import ScoreDataType, ScoreSource
from watchkeep.store.clock import now_ns
from watchkeep.store.sealing import Sealer, open_text, row_aad
from watchkeep.store.tables import online_evaluators, scores, span_payloads, spans

log = logging.getLogger(__name__)
BATCH = 500


class NameTaken(ValueError):
    """An online evaluator of that name exists in the project."""


def in_sample(span_id: str, rate: float) -> bool:
    """Whether ``span_id`` falls in a ``rate`` sample (stable across workers and runs)."""
    if rate >= 1.0:
        return True
    return int(span_id[-8:], 16) < rate * 0x1_0000_0000


@dataclass(frozen=True, slots=True)
class OnlineConfig:
    """One configured online evaluator."""

    id: int
    project_id: int
    name: str
    evaluator: str
    params: dict[str, Any]
    sample_rate: float
    model: str | None
    enabled: bool
    last_span_row_id: int


class OnlineEvaluation:
    """Configuration of online evaluators and the runner that applies them."""

    def __init__(self, engine: Engine, registry: EvaluatorRegistry, *, sealer: Sealer | None = None) -> None:
        self._engine = engine
        self._registry = registry
        self._sealer = sealer  # opens encrypted payloads (None: plaintext)

    def create(
        self,
        project_id: int,
        name: str,
        evaluator: str,
        params: dict[str, Any] | None,
        sample_rate: float,
        model: str | None = None,
        *,
        from_now: bool = True,
        limit: int | None = None,
    ) -> OnlineConfig:
        """Validate and store a configuration (raises ``UnknownEvaluator``/``InvalidParams``).

        ``from_now``: only spans stored after this call are evaluated, not the backlog.
        ``limit``: the project's evaluator quota (``QuotaExceeded`` past it).
        """
        if self._registry.create(evaluator, params).requires_judge:
            raise InvalidParams(
                f"{evaluator} asks a judge model, so it runs in evaluation runs only, not on live traffic"
            )
        start = 0
        if from_now:
            with self._engine.connect() as conn:
                start = (
                    conn.execute(
                        select(spans.c.id)
                        .where(spans.c.project_id == project_id)
                        .order_by(spans.c.id.desc())
                        .limit(1)
                    ).scalar_one_or_none()
                    or 0
                )
        try:
            with self._engine.begin() as conn:
                if limit is not None:
                    count = conn.execute(
                        select(func.count())
                        .select_from(online_evaluators)
                        .where(online_evaluators.c.project_id == project_id)
                    ).scalar_one()
                    if count >= limit:
                        raise QuotaExceeded("online evaluators", limit, "quota_evaluators")
                conn.execute(
                    insert(online_evaluators).values(
                        project_id=project_id,
                        name=name,
                        evaluator=evaluator,
                        params=params or {},
                        sample_rate=sample_rate,
                        model=model,
                        enabled=True,
                        last_span_row_id=start,
                        created_at_unix_nano=now_ns(),
                    )
                )
        except IntegrityError as exc:
            raise NameTaken(f"an online evaluator named {name!r} exists") from exc
        found = [c for c in self.configs(project_id) if c.name == name]
        return found[0]

    def configs(self, project_id: int | None = None) -> list[OnlineConfig]:
        """Configurations of a project (or of all projects, for the worker)."""
        c = online_evaluators.c
        query = select(online_evaluators).order_by(c.project_id, c.name)
        if project_id is not None:
            query = query.where(c.project_id == project_id)
        with self._engine.connect() as conn:
            return [
                OnlineConfig(
                    id=int(r.id),
                    project_id=int(r.project_id),
                    name=r.name,
                    evaluator=r.evaluator,
                    params=dict(r.params or {}),
                    sample_rate=float(r.sample_rate),
                    model=r.model,
                    enabled=bool(r.enabled),
                    last_span_row_id=int(r.last_span_row_id),
                )
                for r in conn.execute(query)
            ]

    def delete(self, project_id: int, config_id: int) -> bool:
        """Remove a configuration (the scores it wrote stay)."""
        c = online_evaluators.c
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(online_evaluators).where(c.project_id == project_id, c.id == config_id)
            )
        return bool(result.rowcount)

    def run_once(self, batch: int = BATCH) -> int:
        """Advance every enabled evaluator by up to ``batch`` spans; scores written."""
        written = 0
        for config in self.configs():
            if config.enabled:
                try:
                    written += self._advance(config, batch)
                except Exception:
                    log.exception("online evaluator %s failed", config.name)
        return written

    def _advance(self, config: OnlineConfig, batch: int) -> int:
        s, p = spans.c, span_payloads.c
        cond = [s.project_id == config.project_id, s.id > config.last_span_row_id]
        if config.model is not None:
            cond.append(or_(s.request_model == config.model, s.response_model == config.model))
        else:
            cond.append(or_(s.request_model.is_not(None), s.response_model.is_not(None)))
        query = (
            select(
                s.id,
                s.trace_id,
                s.span_id,
                s.request_model,
                s.response_model,
                s.duration_ms,
                s.cost_usd,
                s.input_tokens,
                s.output_tokens,
                p.input,
                p.output,
            )
            .select_from(spans.outerjoin(span_payloads, p.span_row_id == s.id))
            .where(*cond)
            .order_by(s.id)
            .limit(batch)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return 0
        if not self._claim(config, int(rows[-1].id)):
            return 0  # another worker took this slice
        evaluator = self._registry.create(config.evaluator, config.params)
        aad_in, aad_out = (row_aad("span_payloads", side, config.project_id) for side in ("input", "output"))
        now = now_ns()
        new_scores = []
        for r in rows:
            if not in_sample(r.span_id, config.sample_rate):
                continue
            item = EvalInput(
                output=payload_text(open_text(self._sealer, r.output, aad_out)),
                input=payload_text(open_text(self._sealer, r.input, aad_in)),
                span={
                    "model": r.response_model or r.request_model,
                    "latency_ms": r.duration_ms,
                    "cost_usd": r.cost_usd,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                },
            )
            result = evaluator.evaluate(item)
            new_scores.append(
                {
                    "project_id": config.project_id,
                    "trace_id": r.trace_id,
                    "span_id": r.span_id,
                    "name": config.name,
                    "data_type": ScoreDataType.BOOLEAN.value,
                    "value": result.value,
                    "string_value": None,
                    "label": None,
                    "source": ScoreSource.EVALUATOR.value,
                    "comment": result.comment,
                    "metadata": {"evaluator": config.evaluator, "online": True},
                    "created_at_unix_nano": now,
                }
            )
        if new_scores:
            with self._engine.begin() as conn:
                conn.execute(insert(scores), new_scores)
        return len(new_scores)

    def _claim(self, config: OnlineConfig, through: int) -> bool:
        c = online_evaluators.c
        with self._engine.begin() as conn:
            won = conn.execute(
                update(online_evaluators)
                .where(c.id == config.id, c.last_span_row_id == config.last_span_row_id)
                .values(last_span_row_id=through)
            ).rowcount
        return bool(won)
