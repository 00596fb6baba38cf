"""The eval-runs API on both databases: lists, one run, paged results, comparison, delete,
comments on a run, and project isolation (runs written by the runner's repository)."""

from __future__ import annotations

from tests.support.apps import Api
from tests.support.eval_api import project_id_of, stored_run

from watchkeep.api.eval_schemas import ResultPage, RunOut

BASE = [True] * 40
WORSE = [True] * 20 + [False] * 20


def test_runs_list_get_and_results_pages(api: Api) -> None:
    pid = project_id_of(api.database_url, api.key)
    older = stored_run(api.app, pid, BASE, name="base")
    newer = stored_run(api.app, pid, WORSE, name="cand")

    listed = api.client.get("/api/v1/eval-runs", headers=api.auth).json()
    assert [r["id"] for r in listed["items"]] == [newer.id, older.id]
    page = api.client.get("/api/v1/eval-runs", params={"limit": 1}, headers=api.auth).json()
    assert [r["id"] for r in page["items"]] == [newer.id]
    assert page["next_cursor"]
    rest = api.client.get(
        "/api/v1/eval-runs", params={"limit": 1, "cursor": page["next_cursor"]}, headers=api.auth
    ).json()
    assert [r["id"] for r in rest["items"]] == [older.id]
    done = api.client.get("/api/v1/eval-runs", params={"status": "running"}, headers=api.auth).json()
    assert done["items"] == []
    bad = api.client.get("/api/v1/eval-runs", params={"cursor": "garbage"}, headers=api.auth)
    assert bad.status_code == 400

    one = api.client.get(f"/api/v1/eval-runs/{newer.id}", headers=api.auth).json()
    # microseconds on the wire; a float timestamp adds up to a few hundred ns of rounding
    assert abs(RunOut.model_validate(one).started_at.timestamp() * 1e9 - newer.started_at_ns) < 2_000
    assert (one["name"], one["status"], one["cases_total"], one["seed"]) == ("cand", "completed", 40, 7)
    assert one["target"]["kind"] == "python"
    assert one["finished_at"] is not None

    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 15} | ({"after": after} if after else {})
        body = api.client.get(f"/api/v1/eval-runs/{newer.id}/results", params=params, headers=api.auth).json()
        seen += [r["item_key"] for r in body["items"]]
        after = ResultPage.model_validate(body).next_after  # the schema the API documents
        if after is None:
            break
    assert sorted(seen) == sorted(f"i{i}" for i in range(40))
    assert len(seen) == 40

    failed = api.client.get(
        f"/api/v1/eval-runs/{newer.id}/results",
        params={"failed_only": "true", "limit": 500},
        headers=api.auth,
    ).json()["items"]
    assert sorted(r["item_key"] for r in failed) == sorted(f"i{i}" for i in range(20, 40))
    assert all(r["passed"] is False and r["scores"]["exact"]["passed"] is False for r in failed)
    only = api.client.get(
        f"/api/v1/eval-runs/{newer.id}/results", params={"item_key": "i3"}, headers=api.auth
    ).json()["items"]
    assert [(r["item_key"], r["passed"], r["output"]) for r in only] == [("i3", True, "ok")]


def test_compare_reports_the_regression_and_honours_policy_overrides(api: Api) -> None:
    pid = project_id_of(api.database_url, api.key)
    base = stored_run(api.app, pid, BASE, name="base")
    cand = stored_run(api.app, pid, WORSE, name="cand")
    same = stored_run(api.app, pid, BASE, name="same")

    worse = api.client.get(
        f"/api/v1/eval-runs/{cand.id}/compare", params={"baseline": base.id}, headers=api.auth
    )
    assert worse.status_code == 200, worse.text
    body = worse.json()
    assert (body["baseline_run_id"], body["candidate_run_id"], body["n_paired"]) == (base.id, cand.id, 40)
    assert body["verdict"] == "regression"
    assert body["mcnemar"]["b"] == 20
    assert body["mcnemar"]["c"] == 0
    assert any(m["name"] == "pass_rate" and m["regression"] for m in body["metrics"])

    equal = api.client.get(
        f"/api/v1/eval-runs/{same.id}/compare",
        params={"baseline": base.id, "alpha": 0.01, "max_drop": 0.1},
        headers=api.auth,
    ).json()
    assert equal["verdict"] != "regression"
    assert equal["alpha"] == 0.01
    assert equal["max_drop"] == 0.1

    missing = api.client.get(
        f"/api/v1/eval-runs/{cand.id}/compare", params={"baseline": 10**12}, headers=api.auth
    )
    assert missing.status_code == 404
    assert api.client.get(f"/api/v1/eval-runs/{cand.id}/compare", headers=api.auth).status_code == 422


def test_delete_records_activity_and_runs_take_comments(api: Api) -> None:
    pid = project_id_of(api.database_url, api.key)
    run = stored_run(api.app, pid, BASE)
    comment = {"target_kind": "run", "target_id": str(run.id), "body": "looks good"}
    assert api.client.post("/api/v1/comments", json=comment, headers=api.auth).status_code == 201
    missing = {**comment, "target_id": str(run.id + 1000)}
    assert api.client.post("/api/v1/comments", json=missing, headers=api.auth).status_code == 404

    assert api.client.delete(f"/api/v1/eval-runs/{run.id}", headers=api.auth).status_code == 204
    assert api.client.get(f"/api/v1/eval-runs/{run.id}", headers=api.auth).status_code == 404
    assert api.client.delete(f"/api/v1/eval-runs/{run.id}", headers=api.auth).status_code == 404
    activity = api.client.get("/api/v1/activity", headers=api.auth).json()["items"]
    assert any(
        a["verb"] == "deleted" and a["target_kind"] == "run" and a["target_id"] == str(run.id)
        for a in activity
    )


def test_another_projects_key_gets_404_and_viewers_cannot_delete(api: Api) -> None:
    pid = project_id_of(api.database_url, api.key)
    run = stored_run(api.app, pid, BASE)
    other = {"Authorization": f"Bearer {api.key_for('admin')}"}
    for path in (f"/api/v1/eval-runs/{run.id}", f"/api/v1/eval-runs/{run.id}/results"):
        assert api.client.get(path, headers=other).status_code == 404
    compare = api.client.get(
        f"/api/v1/eval-runs/{run.id}/compare", params={"baseline": run.id}, headers=other
    )
    assert compare.status_code == 404
    assert api.client.get("/api/v1/eval-runs", headers=other).json()["items"] == []
    assert api.client.delete(f"/api/v1/eval-runs/{run.id}", headers=other).status_code == 404
    assert api.client.get(f"/api/v1/eval-runs/{run.id}", headers=api.auth).status_code == 200
