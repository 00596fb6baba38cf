"""Evaluation runs: the list, one run (aggregates, gate verdict, items) and two runs compared.

Runs are written by ``watchkeep eval run`` (or the API); the console only reads them
through ``RunRepository``. A comparison is ``evals.gate.compare_runs`` over both runs'
stored per-item results with the default gate policy, seeded by the candidate's seed, so
the page shows the same intervals and verdict the CLI's ``--baseline`` prints.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from watchkeep.evals.config import GateSpec
from watchkeep.evals.gate import GatePolicy, compare_runs
from watchkeep.evals.run_repository import RUN_STATUSES, RunInfo, RunNotFound
from watchkeep.security.authz import Permission
from watchkeep.store.trace_queries import InvalidCursor
from watchkeep.ui import eval_view
from watchkeep.ui.frame import Console, ConsoleRefusal, NavItem, page, render
from watchkeep.ui.templating import query

router = APIRouter(include_in_schema=False)
NAV = NavItem("Evaluations", "evals", Permission.EVALS_READ, shortcut="v")
Reader = Annotated[Console, Depends(page(Permission.EVALS_READ))]
PAGE_SIZE = 50
ITEMS_PAGE = 50
MAX_CURSOR_CHARS = 512
MAX_ID = 2**63 - 1
MAX_COMPARE_RESULTS = 200_000  # per run; bigger runs are compared with the CLI
MAX_ITEM_DIFFS = 500
PICKER_RUNS = 100


def run_of(console: Console, run_id: int) -> RunInfo:
    """The project's run ``run_id``, else a 404 page (another project's run included)."""
    if 0 < run_id <= MAX_ID:
        try:
            return console.services.eval_runs.get_run(console.project.project_id, run_id)
        except RunNotFound:
            pass
    raise ConsoleRefusal(404, "There is no such evaluation run in this project.")


@router.get("/p/{project}/evals", response_class=HTMLResponse)
def run_list(
    console: Reader,
    dataset: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> HTMLResponse:
    """Runs newest first, filtered by dataset name and status, keyset-paged."""
    dataset = (dataset or "").strip() or None
    status = status if status in RUN_STATUSES else None
    try:
        found = console.services.eval_runs.list_runs(
            console.project.project_id, limit=PAGE_SIZE, cursor=cursor, dataset=dataset, status=status
        )
    except (InvalidCursor, ValueError):
        raise ConsoleRefusal(400, "That page link is not valid; start again from the first page.") from None
    params: dict[str, object] = {"dataset": dataset, "status": status}
    next_url = query(params, cursor=found.next_cursor) if found.next_cursor else None
    return render(
        console,
        "evals/list.html",
        fragment="results",
        runs=found.items,
        dataset=dataset or "",
        chosen_status=status or "",
        statuses=RUN_STATUSES,
        next_url=next_url,
        first_page=cursor is None,
        view=eval_view,
    )


@router.get("/p/{project}/evals/compare", response_class=HTMLResponse)
def run_compare(
    console: Reader,
    baseline: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    candidate: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """Two runs side by side: metric deltas with paired bootstrap intervals, McNemar's test,
    the verdict and the per-item differences (broken first); a picker when one is missing."""
    pid = console.project.project_id
    recent = console.services.eval_runs.list_runs(pid, limit=PICKER_RUNS).items
    base = run_of(console, baseline) if baseline is not None else None
    cand = run_of(console, candidate) if candidate is not None else None
    comparison = None
    diffs: list[object] = []
    if base is not None and cand is not None:
        if max(base.cases_done, cand.cases_done) > MAX_COMPARE_RESULTS:
            raise ConsoleRefusal(
                400,
                f"These runs hold more than {MAX_COMPARE_RESULTS:,} results; compare them with "
                "`watchkeep eval compare` instead.",
            )
        comparison = compare_runs(
            console.services.eval_runs.all_results(pid, base.id),
            console.services.eval_runs.all_results(pid, cand.id),
            GatePolicy.from_spec(GateSpec()),
            seed=cand.seed,
        )
        changed = [d for d in comparison.items if d.change != "same"]
        diffs = eval_view.change_order(changed)[:MAX_ITEM_DIFFS]
    return render(
        console,
        "evals/compare.html",
        recent=recent,
        baseline=base,
        candidate=cand,
        comparison=comparison,
        diffs=diffs,
        view=eval_view,
    )


@router.get("/p/{project}/evals/{run_id}", response_class=HTMLResponse)
def run_detail(
    console: Reader,
    run_id: int,
    failed: bool = False,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> HTMLResponse:
    """A run's summary, its gate verdict when it has one, and its items (failed only on request)."""
    run = run_of(console, run_id)
    rows = console.services.eval_runs.results(
        console.project.project_id, run.id, limit=ITEMS_PAGE + 1, after_id=after, failed_only=failed
    )
    page_rows = rows[:ITEMS_PAGE]
    params: dict[str, object] = {"failed": "true" if failed else None}
    next_url = query(params, after=page_rows[-1].id) if len(rows) > ITEMS_PAGE else None
    return render(
        console,
        "evals/run.html",
        fragment="items",
        run=run,
        sections=eval_view.summary_sections(run.aggregates),
        rows=page_rows,
        failed=failed,
        next_url=next_url,
        first_page=after is None,
        view=eval_view,
    )
