"""The query client's datasets and eval-runs methods against a real server, sync and async."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence

import orjson
import pytest
from pydantic import BaseModel
from tests.support.eval_api import project_id_of, stored_run
from tests.support.keys import new_key
from tests.support.servers import LiveServer

from watchkeep import client as wkc
from watchkeep.api import eval_schemas

ROWS = [{"id": f"k{i}", "input": f"q{i}", "expected": str(i)} for i in range(7)]


def upload(server: LiveServer, name: str, rows: Sequence[Mapping[str, object]]) -> None:
    with server.client as http:
        body = b"\n".join(orjson.dumps(r) for r in rows)
        response = http.post(
            f"/api/v1/datasets/{name}/versions",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 201, response.text


def test_sync_client_reads_datasets_runs_results_and_comparisons(live_server: LiveServer) -> None:
    upload(live_server, "qa", ROWS)
    upload(live_server, "qa", [*ROWS, {"id": "extra", "input": "x"}])
    pid = project_id_of(live_server.database_url, live_server.api_key)
    base = stored_run(live_server.app, pid, [True] * 30, name="base")
    cand = stored_run(live_server.app, pid, [True] * 10 + [False] * 20, name="cand")

    with wkc.Client(live_server.url, live_server.api_key) as wk:
        datasets = list(wk.datasets(page_size=1))
        assert [(d.name, d.versions) for d in datasets] == [("qa", 2)]
        assert datasets[0].latest is not None
        assert datasets[0].latest.item_count == 8
        assert wk.dataset("qa").latest is not None
        versions = wk.dataset_versions("qa")
        assert [v.version for v in versions] == [2, 1]
        assert wk.dataset_version("qa", 1).content_hash == versions[1].content_hash
        assert wk.dataset_version("qa", versions[1].content_hash[:12]).version == 1

        items = list(wk.dataset_items("qa", 1, page_size=3))  # three pages, the last short
        assert [i.key for i in items] == [f"k{i}" for i in range(7)]
        assert items[2].expected == "2"
        assert isinstance(items[2], wkc.DatasetItem)

        assert [r.name for r in wk.eval_runs()] == ["cand", "base"]
        assert [r.id for r in wk.eval_runs(page_size=1)] == [cand.id, base.id]
        run = wk.eval_run(cand.id)
        assert run.started_at <= (run.finished_at or run.started_at)
        assert (run.cases_total, run.status, run.finished_at is not None) == (30, "completed", True)

        results = list(wk.eval_results(cand.id, page_size=7))
        assert len(results) == 30
        assert len({r.id for r in results}) == 30
        failed = list(wk.eval_results(cand.id, failed_only=True))
        assert len(failed) == 20
        assert all(r.passed is False for r in failed)
        assert failed[0].scores["exact"].passed is False

        comparison = wk.compare_runs(base.id, cand.id)
        assert isinstance(comparison, wkc.RunComparison)
        assert comparison.verdict == "regression"
        assert comparison.n_paired == 30
        assert comparison.mcnemar["b"] == 20
        assert (comparison.baseline_run_id, comparison.candidate_run_id) == (base.id, cand.id)
        assert any(m.name == "pass_rate" and m.regression for m in comparison.metrics)

        with pytest.raises(wkc.NotFound):
            wk.eval_run(cand.id + 10_000)
        with pytest.raises(wkc.NotFound):
            wk.dataset("nope")
        with pytest.raises(ValueError, match="page_size"):
            list(wk.eval_results(cand.id, page_size=0))


def test_async_client_matches_the_sync_one(live_server: LiveServer) -> None:
    upload(live_server, "qa", ROWS)
    pid = project_id_of(live_server.database_url, live_server.api_key)
    base = stored_run(live_server.app, pid, [True] * 12, name="base")
    cand = stored_run(live_server.app, pid, [True] * 12, name="cand")

    async def read() -> None:
        async with wkc.AsyncClient(live_server.url, live_server.api_key) as wk:
            assert [d.name async for d in wk.datasets()] == ["qa"]
            assert [v.version for v in await wk.dataset_versions("qa")] == [1]
            assert (await wk.dataset_version("qa")).item_count == 7
            assert [i.key async for i in wk.dataset_items("qa", page_size=2)] == [f"k{i}" for i in range(7)]
            assert [r.id async for r in wk.eval_runs(status="completed")] == [cand.id, base.id]
            assert (await wk.eval_run(base.id)).name == "base"
            assert len([r async for r in wk.eval_results(base.id, page_size=5)]) == 12
            comparison = await wk.compare_runs(base.id, cand.id, alpha=0.01)
            assert comparison.verdict != "regression"
            assert comparison.alpha == 0.01
            with pytest.raises(wkc.NotFound):
                await wk.compare_runs(base.id + 10_000, cand.id)

    asyncio.run(read())


def test_another_projects_key_gets_not_found(live_server: LiveServer) -> None:
    pid = project_id_of(live_server.database_url, live_server.api_key)
    run = stored_run(live_server.app, pid, [True])
    other_key = new_key(live_server.database_url, "admin")
    with wkc.Client(live_server.url, other_key) as wk:
        with pytest.raises(wkc.NotFound):
            wk.eval_run(run.id)
        assert list(wk.eval_runs()) == []


MIRRORS: dict[type, type[BaseModel]] = {
    wkc.Dataset: eval_schemas.DatasetOut,
    wkc.DatasetVersion: eval_schemas.CreatedVersionOut,
    wkc.DatasetItem: eval_schemas.DatasetItemOut,
    wkc.EvalRun: eval_schemas.RunOut,
    wkc.EvalResult: eval_schemas.ResultOut,
    wkc.EvalScore: eval_schemas.EvalScoreOut,
}


@pytest.mark.parametrize("cls", list(MIRRORS), ids=lambda c: c.__name__)
def test_dataclasses_cover_every_field_of_the_served_schema(cls: type) -> None:
    served = set(MIRRORS[cls].model_fields) - {"skipped"}  # upload-only: rows a skip dropped
    assert served <= {f.name for f in dataclasses.fields(cls)}
