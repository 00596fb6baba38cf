"""The evidence a gated promotion is judged on: finding and comparing evaluation runs.

For one ``GateRequirement`` the candidate's and the current version's newest completed runs
on the requirement's dataset are compared by ``evals.gate.compare_runs``. Both runs must be
on the same dataset version (else the paired test pairs different items): the newest
version both versions have runs on, or the version the requirement pins (``qa@3``). A run
belongs to a version when its target label is ``model:NAME@N`` / ``route:NAME@N`` (models)
or ``prompt:NAME@N`` (prompts), or when its id is in the model version's ``eval_runs``.

With no current version there is nothing to compare with: the gate is met when the
candidate has a completed run whose error rate is within the gate's ``max_error_rate``
(the requirement has no fixed thresholds, so that is the only bar a lone run can clear).
Missing evidence is an ``inconclusive`` outcome saying what is missing, never a pass.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, or_, select

from watchkeep.evals.gate import PASS_RATE, Comparison, GatePolicy, MetricDelta, compare_runs
from watchkeep.evals.run_repository import RunRepository
from watchkeep.registry.policy import GateOutcome, GateRequirement
from watchkeep.registry.repository import Kind
from watchkeep.registry.versions import parse_ref
from watchkeep.store.eval_tables import dataset_versions, datasets, eval_runs

MAX_CANDIDATE_RUNS = 200  # newest runs of one version on one dataset considered


@dataclass(frozen=True, slots=True)
class MetricEvidence:
    """One metric of a comparison: the delta (candidate minus baseline) and its p-value."""

    name: str
    baseline: float | None
    candidate: float | None
    delta: float
    p_value: float | None
    regression: bool


@dataclass(frozen=True, slots=True)
class GateEvidence:
    """One requirement's outcome with what it was computed from (the console's preview)."""

    requirement: GateRequirement
    outcome: GateOutcome
    dataset_version: int | None
    metrics: tuple[MetricEvidence, ...] = ()
    has_runs: bool = False

    def summary(self) -> str:
        """``qa (pass_rate +0.04, p=0.01)``: the dataset and the pass rate's delta."""
        main = next((m for m in self.metrics if m.name == PASS_RATE), None)
        if main is None:
            detail = "; ".join(self.outcome.reasons)
            return f"{self.requirement.dataset} ({detail})" if detail else self.requirement.dataset
        p = "" if main.p_value is None else f", p={main.p_value:.2g}"
        return f"{self.requirement.dataset} ({PASS_RATE} {main.delta:+.2f}{p})"


def version_labels(kind: Kind, name: str, version: int) -> tuple[str, ...]:
    """The run target labels that name ``name@version``."""
    if kind == "model":
        return (f"model:{name}@{version}", f"route:{name}@{version}")
    return (f"prompt:{name}@{version}",)


def _metric(m: MetricDelta) -> MetricEvidence:
    def point(value: float | None) -> float | None:
        return None if value is None or value != value else float(value)  # NaN -> None

    return MetricEvidence(
        name=m.name,
        baseline=point(m.baseline.value),
        candidate=point(m.candidate.value),
        delta=float(m.delta.delta),
        p_value=m.p_value,
        regression=m.regression,
    )


class GateEvidenceFinder:
    """Finds each side's runs (scoped to the project) and compares them."""

    def __init__(self, engine: Engine, runs: RunRepository) -> None:
        self._engine = engine
        self._runs = runs

    def runs_on(
        self, project_id: int, dataset: str, labels: Collection[str], run_ids: Collection[int]
    ) -> dict[int, int]:
        """Dataset version -> newest completed run id of the version named by ``labels`` / ``run_ids``."""
        r, dv, d = eval_runs.c, dataset_versions.c, datasets.c
        belongs: ColumnElement[bool] = r.target_version.in_(list(labels))
        if run_ids:
            belongs = or_(belongs, r.id.in_(list(run_ids)))
        query = (
            select(r.id, dv.version)
            .select_from(
                eval_runs.join(dataset_versions, dv.id == r.dataset_version_id).join(
                    datasets, d.id == dv.dataset_id
                )
            )
            .where(r.project_id == project_id, d.project_id == project_id, d.name == dataset)
            .where(r.status == "completed", belongs)
            .order_by(r.id.desc())
            .limit(MAX_CANDIDATE_RUNS)
        )
        found: dict[int, int] = {}
        with self._engine.connect() as conn:
            for run_id, version in conn.execute(query):
                found.setdefault(int(version), int(run_id))
        return found

    def evaluate(
        self,
        project_id: int,
        requirement: GateRequirement,
        *,
        candidate: tuple[str, Collection[str], Collection[int]],
        baseline: tuple[str, Collection[str], Collection[int]] | None,
    ) -> GateEvidence:
        """One requirement: ``candidate``/``baseline`` are (display name, labels, run ids)."""
        ref = parse_ref(requirement.dataset)
        if ref.alias is not None:
            return _missing(requirement, f"dataset aliases are not supported: {requirement.dataset}")
        cand_name, cand_labels, cand_ids = candidate
        cand_runs = self.runs_on(project_id, ref.name, cand_labels, cand_ids)
        if ref.version is not None:
            cand_runs = {v: i for v, i in cand_runs.items() if v == ref.version}
        if not cand_runs:
            return _missing(requirement, f"no evaluation run of {cand_name} on dataset {requirement.dataset}")
        if baseline is None:
            return self._alone(project_id, requirement, cand_runs)
        base_name, base_labels, base_ids = baseline
        base_runs = self.runs_on(project_id, ref.name, base_labels, base_ids)
        common = set(cand_runs) & set(base_runs)
        if not common:
            why = f"no evaluation run of {base_name} on dataset {requirement.dataset}"
            if base_runs:
                why = f"{cand_name} and {base_name} have no run on the same version of {ref.name}"
            return _missing(requirement, why)
        version = max(common)
        cand_run, base_run = cand_runs[version], base_runs[version]
        comparison = compare_runs(
            self._runs.all_results(project_id, base_run),
            self._runs.all_results(project_id, cand_run),
            requirement.gate_policy(),
        )
        return _compared(requirement, comparison, version, cand_run, base_run)

    def _alone(
        self, project_id: int, requirement: GateRequirement, cand_runs: dict[int, int]
    ) -> GateEvidence:
        """No current version: the candidate's newest run stands alone (module docstring)."""
        version = max(cand_runs)
        run = self._runs.get_run(project_id, cand_runs[version])
        limit = GatePolicy().max_error_rate
        rate = run.cases_failed / run.cases_total if run.cases_total else 0.0
        ok = rate <= limit
        reason = f"no current version to compare with; run {run.id} error rate {rate:.3f}" + (
            "" if ok else f" exceeds {limit:g}"
        )
        outcome = GateOutcome(
            dataset=requirement.dataset,
            verdict="pass" if ok else "inconclusive",
            alpha=requirement.alpha,
            max_drop=requirement.max_drop,
            metrics=requirement.metrics,
            reasons=(reason,),
            candidate_run=run.id,
        )
        return GateEvidence(requirement, outcome, version, has_runs=True)


def _missing(requirement: GateRequirement, why: str) -> GateEvidence:
    outcome = GateOutcome(
        dataset=requirement.dataset,
        verdict="inconclusive",
        alpha=requirement.alpha,
        max_drop=requirement.max_drop,
        metrics=(),
        reasons=(why,),
    )
    return GateEvidence(requirement, outcome, None)


def _compared(
    requirement: GateRequirement, comparison: Comparison, version: int, cand_run: int, base_run: int
) -> GateEvidence:
    outcome = GateOutcome.from_comparison(
        requirement.dataset, comparison, candidate_run=cand_run, baseline_run=base_run
    )
    metrics = tuple(_metric(m) for m in comparison.metrics)
    return GateEvidence(requirement, outcome, version, metrics, has_runs=True)
