"""Evaluation runs and their per-item results: ``/api/v1/eval-runs``.

Runs are written by the runner (``watchkeep eval run``, workers); here they are read,
compared and deleted. A comparison is computed from the two runs' stored results with the
gate of the candidate's config (``alpha`` and ``max_drop`` may be overridden), so it is
the same verdict the CLI printed, recomputable at any time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.eval_schemas import ResultPage, RunOut, RunPage, result_out, run_out
from watchkeep.api.openapi import errors
from watchkeep.api.routes.monitors import actor_of
from watchkeep.api.schemas import MAX_ROW_ID, RowIdPath
from watchkeep.evals.config import GateSpec
from watchkeep.evals.gate import GatePolicy, compare_runs
from watchkeep.evals.run_repository import RunInfo, RunNotFound
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal
from watchkeep.store.trace_queries import InvalidCursor

router = APIRouter(prefix="/api/v1", tags=["evals"])
AUTH = errors(400, 401, 403)
NOT_FOUND = errors((404, "No such run in this project"))
Reader = Annotated[Principal, Depends(require(Permission.EVALS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.EVALS_WRITE))]
MAX_RESULTS_PAGE = 500


def _run(request: Request, principal: Principal, run_id: int) -> RunInfo:
    try:
        return services(request).eval_runs.get_run(principal.project_id, run_id)
    except RunNotFound as exc:
        raise ApiError(404, "not_found", f"no run {run_id} in this project") from exc


@router.get("/eval-runs", response_model=RunPage, responses=AUTH)
def list_runs(
    request: Request,
    principal: Reader,
    dataset: Annotated[str | None, Query(max_length=200, description="Runs of this dataset only.")] = None,
    status: Annotated[Literal["running", "completed", "failed", "interrupted"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RunPage:
    """The project's runs, newest first."""
    try:
        page = services(request).eval_runs.list_runs(
            principal.project_id, limit=limit, cursor=cursor, dataset=dataset, status=status
        )
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    return RunPage(items=[run_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/eval-runs/{run_id}", response_model=RunOut, responses={**AUTH, **NOT_FOUND})
def get_run(request: Request, principal: Reader, run_id: RowIdPath) -> RunOut:
    """One run: its target, dataset version, config, progress, aggregates and gate verdict."""
    return run_out(_run(request, principal, run_id))


@router.get("/eval-runs/{run_id}/results", response_model=ResultPage, responses={**AUTH, **NOT_FOUND})
def list_results(
    request: Request,
    principal: Reader,
    run_id: RowIdPath,
    failed_only: bool = False,
    item_key: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ROW_ID, description="`next_after` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS_PAGE)] = 100,
) -> ResultPage:
    """A page of the run's per-item results in id order (``failed_only``: failed or errored)."""
    _run(request, principal, run_id)
    rows = services(request).eval_runs.results(
        principal.project_id, run_id, limit=limit, after_id=after, failed_only=failed_only, item_key=item_key
    )
    return ResultPage(
        items=[result_out(r) for r in rows], next_after=rows[-1].id if len(rows) == limit else None
    )


def _policy(run: RunInfo, alpha: float | None, max_drop: float | None) -> GatePolicy:
    """The candidate's own gate (its config), with the query's overrides."""
    spec: dict[str, Any] = dict(run.config.get("gate") or {}) if isinstance(run.config, dict) else {}
    if alpha is not None:
        spec["alpha"] = alpha
    if max_drop is not None:
        spec["max_drop"] = max_drop
    try:
        return GatePolicy.from_spec(GateSpec.model_validate(spec))
    except ValidationError:
        overrides = {k: v for k, v in (("alpha", alpha), ("max_drop", max_drop)) if v is not None}
        return GatePolicy.from_spec(GateSpec.model_validate(overrides))


@router.get(
    "/eval-runs/{run_id}/compare",
    responses={**AUTH, **NOT_FOUND, **errors((422, "Bad baseline or policy"))},
)
def compare(
    request: Request,
    principal: Reader,
    run_id: RowIdPath,
    baseline: Annotated[int, Query(ge=1, le=MAX_ROW_ID, description="The baseline run's id.")],
    alpha: Annotated[float | None, Query(gt=0, lt=0.5)] = None,
    max_drop: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> dict[str, Any]:
    """Run ``run_id`` (the candidate) against ``baseline``: paired bootstrap intervals on the
    metric deltas, McNemar's exact test on pass/fail, the verdict and per-item differences."""
    candidate = _run(request, principal, run_id)
    base = _run(request, principal, baseline)
    repo = services(request).eval_runs
    comparison = compare_runs(
        repo.all_results(principal.project_id, base.id),
        repo.all_results(principal.project_id, candidate.id),
        _policy(candidate, alpha, max_drop),
        seed=candidate.seed,
    )
    return {"baseline_run_id": base.id, "candidate_run_id": candidate.id, **comparison.to_json()}


@router.delete(
    "/eval-runs/{run_id}", status_code=204, response_class=Response, responses={**AUTH, **NOT_FOUND}
)
def delete_run(request: Request, principal: Writer, run_id: RowIdPath) -> Response:
    """Delete a run and its results."""
    svc = services(request)
    run = _run(request, principal, run_id)
    if not svc.eval_runs.delete_run(principal.project_id, run_id):
        raise ApiError(404, "not_found", f"no run {run_id} in this project")
    svc.audit.record(
        actor=actor_of(principal),
        action="run.delete",
        project_id=principal.project_id,
        target=f"run:{run_id}",
    )
    svc.activity.record(
        principal.project_id,
        actor=actor_of(principal),
        actor_user_id=None,
        verb="deleted",
        target_kind="run",
        target_id=str(run_id),
        summary=f"deleted run {run_id} ({run.name})",
    )
    return Response(status_code=204)
