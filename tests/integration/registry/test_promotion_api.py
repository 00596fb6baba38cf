"""Gated promotion over HTTP on both databases: policies, the evidence preview, promote and the
plain alias move under a policy (passing, regressing and missing evidence; force by an admin
with a reason; a member may not force), every new route's authorisation per role, and
project isolation (another project's policy, name or evidence is never seen)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.apps import Api
from tests.support.console import project_of

from watchkeep.evals.dataset_repository import DatasetRepository
from watchkeep.evals.model import DatasetItem, ItemResult, Score
from watchkeep.evals.run_repository import RunRepository
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository

N_ITEMS = 30
POLICY = {"required_gates": [{"dataset": "qa", "evaluators": ["exact"], "alpha": 0.05, "max_drop": 0.0}]}


def call(api: Api, method: str, url: str, key: str | None = None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {key or api.key}"}
    return api.client.request(method, f"/api/v1{url}", headers=headers, **kwargs)


def seed_run(
    api: Api,
    key: str,
    label: str,
    passing: int,
    *,
    dataset: str = "qa",
    status: str = "completed",
    expected: str = "a",
) -> int:
    """A finished eval run of ``label`` on ``dataset`` in ``key``'s project: the first
    ``passing`` of ``N_ITEMS`` items pass the ``exact`` evaluator (another ``expected``: a new
    version of the dataset)."""
    engine = make_engine(api.database_url)
    try:
        found = ProjectRepository(engine).find(project_of(api.database_url, key))
        assert found is not None
        items = [DatasetItem(key=f"i{k}", input=f"q{k}", expected=expected) for k in range(N_ITEMS)]
        version, _ = DatasetRepository(engine).create_version(found.id, dataset, items)
        runs = RunRepository(engine)
        run = runs.create_run(
            found.id,
            name=f"{label} on {dataset}",
            dataset_version_id=version.id,
            target={"kind": "python"},
            target_version=label,
            config={},
            config_hash=f"h-{label}-{passing}",
            seed=0,
            cases_total=N_ITEMS,
        )
        results = [
            ItemResult(
                item_key=f"i{k}",
                repeat=0,
                variant="",
                family=None,
                messages=None,
                output="a",
                scores={"exact": Score(passed=k < passing, value=1.0 if k < passing else 0.0)},
            )
            for k in range(N_ITEMS)
        ]
        runs.add_results(found.id, run.id, results)
        runs.finish_run(found.id, run.id, status=status, aggregates={})
        return run.id
    finally:
        engine.dispose()


@pytest.fixture
def admin(api: Api) -> str:
    return api.key_for("admin", project_of(api.database_url, api.key))


def setup_bot(api: Api, admin: str) -> None:
    """bot@1..3 with production at 1 and a policy gating production on qa."""
    for temperature in (0.1, 0.2, 0.3):
        body = {"backend": "openai", "params": {"temperature": temperature}}
        assert call(api, "POST", "/models/bot/versions", json=body).status_code == 201
    assert call(api, "PUT", "/models/bot/aliases/production", json={"version": 1}).json()["kind"] == "move"
    put = call(api, "PUT", "/models/bot/aliases/production/policy", admin, json=POLICY)
    assert put.status_code == 200, put.text


def production(api: Api) -> int:
    return int(call(api, "GET", "/models/bot/aliases").json()["aliases"]["production"])


def test_without_a_policy_a_promotion_is_a_plain_move(api: Api) -> None:
    call(api, "POST", "/prompts/greet/versions", json={"template": "Hi {{ name }}"})
    assert call(api, "GET", "/prompts/greet/aliases/production/policy").status_code == 404
    preview = call(api, "GET", "/prompts/greet/aliases/production/gates", params={"version": 1}).json()
    assert (preview["gated"], preview["allowed"], preview["gates"]) == (False, True, [])
    done = call(api, "POST", "/prompts/greet/aliases/production/promote", json={"version": 1, "reason": "go"})
    assert done.status_code == 200, done.text
    assert (done.json()["kind"], done.json()["to_version"], done.json()["reason"]) == ("move", 1, "go")


def test_a_policy_without_gates_records_promotions_and_can_be_deleted(api: Api, admin: str) -> None:
    setup_bot(api, admin)
    url = "/models/bot/aliases/production/policy"
    assert call(api, "PUT", url, admin, json={"required_gates": []}).status_code == 200
    done = call(api, "POST", "/models/bot/aliases/production/promote", json={"version": 2})
    assert (done.status_code, done.json()["kind"], done.json()["reason"]) == (
        200,
        "promote",
        "no gate is required",
    )
    assert call(api, "DELETE", url, admin).status_code == 204
    assert call(api, "DELETE", url, admin).status_code == 404
    moved = call(api, "PUT", "/models/bot/aliases/production", json={"version": 3})
    assert (moved.status_code, moved.json()["kind"]) == (200, "move")
    project_id = api.app.state.services.keys.verify(api.key).project_id
    audited = api.app.state.services.audit.entries(project_id=project_id, limit=500)
    policy_actions = [e.action for e in audited if e.action.startswith("promotion_policy.")]
    assert policy_actions[-2:] == ["promotion_policy.set", "promotion_policy.delete"]


def test_passing_evidence_promotes_with_the_gate_summary(api: Api, admin: str) -> None:
    setup_bot(api, admin)
    shown = call(api, "GET", "/models/bot/aliases/production/policy").json()
    assert shown["required_gates"][0]["dataset"] == "qa"
    assert shown["required_gates"][0]["evaluators"] == ["exact"]
    base = seed_run(api, api.key, "model:bot@1", 20)
    cand = seed_run(api, api.key, "model:bot@2", 28)
    seed_run(api, api.key, "model:bot@2", 0, status="failed")  # a failed run is never evidence

    preview = call(api, "GET", "/models/bot/aliases/production/gates", params={"version": 2}).json()
    assert (preview["gated"], preview["allowed"]) == (True, True)
    (gate,) = preview["gates"]
    assert (gate["verdict"], gate["met"], gate["candidate_run"], gate["baseline_run"]) == (
        "pass",
        True,
        cand,
        base,
    )
    pass_rate = next(m for m in gate["metrics"] if m["name"] == "pass_rate")
    assert pass_rate["delta"] == pytest.approx(8 / N_ITEMS)

    done = call(api, "POST", "/models/bot/aliases/production/promote", json={"version": 2})
    assert done.status_code == 200, done.text
    event = done.json()
    assert (event["kind"], event["from_version"], event["to_version"]) == ("promote", 1, 2)
    assert event["reason"].startswith("gates passed: qa (pass_rate +0.27")
    assert production(api) == 2
    feed = call(api, "GET", "/activity").json()["items"]
    assert any("promoted model bot@production from 1 to 2" in e["summary"] for e in feed)


def test_a_regression_is_refused_with_reasons_and_the_alias_stays(api: Api, admin: str) -> None:
    setup_bot(api, admin)
    seed_run(api, api.key, "model:bot@1", 28)
    seed_run(api, api.key, "route:bot@3", 5)
    refused = call(api, "POST", "/models/bot/aliases/production/promote", json={"version": 3})
    assert refused.status_code == 409
    assert any("gate on qa: regression" in r for r in refused.json()["reasons"])
    assert production(api) == 1
    # The plain move is judged by the same gate: no way around it.
    around = call(api, "PUT", "/models/bot/aliases/production", json={"version": 3})
    assert around.status_code == 409
    assert production(api) == 1
    # Nor by removing the alias (the next move would have no baseline).
    assert call(api, "PUT", "/models/bot/aliases/production", json={"version": None}).status_code == 409
    assert production(api) == 1


def test_missing_evidence_is_an_unmet_gate(api: Api, admin: str) -> None:
    setup_bot(api, admin)
    seed_run(api, api.key, "model:bot@1", 28)
    refused = call(api, "POST", "/models/bot/aliases/production/promote", json={"version": 2})
    assert refused.status_code == 409
    assert any("no evaluation run of bot@2 on dataset qa" in r for r in refused.json()["reasons"])
    # Evidence on another dataset version only is not comparable.
    seed_run(api, api.key, "model:bot@2", 28, expected="b")  # qa@2
    preview = call(api, "GET", "/models/bot/aliases/production/gates", params={"version": 2}).json()
    assert preview["gates"][0]["met"] is False
    assert "no run on the same version of qa" in preview["gates"][0]["reasons"][0]
    seed_run(api, api.key, "model:bot@2", 28)  # qa@1, where the baseline ran
    preview = call(api, "GET", "/models/bot/aliases/production/gates", params={"version": 2}).json()
    assert (preview["gates"][0]["met"], preview["gates"][0]["dataset_version"]) == (True, 1)


def test_force_needs_registry_admin_and_a_reason(api: Api, admin: str) -> None:
    setup_bot(api, admin)
    seed_run(api, api.key, "model:bot@1", 28)
    seed_run(api, api.key, "model:bot@3", 5)
    body = {"version": 3, "force": True, "reason": "hotfix"}
    member = call(api, "POST", "/models/bot/aliases/production/promote", json=body)
    assert member.status_code == 403
    assert call(api, "PUT", "/models/bot/aliases/production", json=body).status_code == 403
    no_reason = call(
        api, "POST", "/models/bot/aliases/production/promote", admin, json={"version": 3, "force": True}
    )
    assert no_reason.status_code == 422
    assert production(api) == 1
    forced = call(api, "POST", "/models/bot/aliases/production/promote", admin, json=body)
    assert forced.status_code == 200, forced.text
    assert forced.json()["kind"] == "forced"
    assert "hotfix" in forced.json()["reason"]
    assert "gate on qa: regression" in forced.json()["reason"]
    assert production(api) == 3
    history = call(api, "GET", "/models/bot/aliases/production/history").json()["items"]
    assert [e["kind"] for e in history] == ["move", "forced"]


def test_no_baseline_gate_needs_a_clean_candidate_run(api: Api, admin: str) -> None:
    call(api, "POST", "/prompts/greet/versions", json={"template": "Hi {{ name }}"})
    assert call(api, "PUT", "/prompts/greet/aliases/production/policy", admin, json=POLICY).status_code == 200
    assert (
        call(api, "POST", "/prompts/greet/aliases/production/promote", json={"version": 1}).status_code == 409
    )
    seed_run(api, api.key, "prompt:greet@1", 10)
    done = call(api, "POST", "/prompts/greet/aliases/production/promote", json={"version": 1})
    assert done.status_code == 200, done.text
    assert done.json()["kind"] == "promote"


def test_another_projects_policy_and_names_are_invisible(api: Api, admin: str) -> None:
    setup_bot(api, admin)
    other_admin = api.key_for("admin")
    for method, suffix, body in (
        ("GET", "policy", None),
        ("PUT", "policy", POLICY),
        ("DELETE", "policy", None),
        ("POST", "promote", {"version": 2}),
    ):
        assert (
            call(api, method, f"/models/bot/aliases/production/{suffix}", other_admin, json=body).status_code
            == 404
        )
    gates = call(api, "GET", "/models/bot/aliases/production/gates", other_admin, params={"version": 2})
    assert gates.status_code == 404
    # The same name in the other project has no policy of ours.
    call(api, "POST", "/models/bot/versions", other_admin, json={"backend": "openai"})
    assert call(api, "GET", "/models/bot/aliases/production/policy", other_admin).status_code == 404
    mine = call(api, "PUT", "/models/bot/aliases/production", other_admin, json={"version": 1})
    assert (mine.status_code, mine.json()["kind"]) == (200, "move")
    assert production(api) == 1
    assert call(api, "GET", "/models/bot/aliases/production/policy").status_code == 200


@pytest.mark.parametrize(
    ("role", "read", "write", "admin_only"),
    [
        ("admin", 200, 200, 200),
        ("member", 200, 200, 403),
        ("viewer", 200, 403, 403),
        ("ingest", 403, 403, 403),
    ],
)
def test_every_route_is_authorised_per_role(
    api: Api, admin: str, role: str, read: int, write: int, admin_only: int
) -> None:
    setup_bot(api, admin)
    key = api.key_for(role, project_of(api.database_url, api.key))
    base = "/models/bot/aliases/production"
    assert call(api, "GET", f"{base}/policy", key).status_code == read
    assert call(api, "GET", f"{base}/gates", key, params={"version": 2}).status_code == read
    assert call(api, "PUT", f"{base}/policy", key, json=POLICY).status_code == admin_only
    promote = call(api, "POST", f"{base}/promote", key, json={"version": 2})
    assert promote.status_code == (409 if write == 200 else write)  # allowed in, refused by the gate
    deleted = call(api, "DELETE", f"{base}/policy", key)
    assert deleted.status_code == (204 if admin_only == 200 else admin_only)


def test_bad_policies_are_422s(api: Api, admin: str) -> None:
    setup_bot(api, admin)
    url = "/models/bot/aliases/production/policy"
    too_many = {"required_gates": [{"dataset": f"d{k}"} for k in range(17)]}
    assert call(api, "PUT", url, admin, json=too_many).status_code == 422
    evaluators = {"required_gates": [{"dataset": "qa", "evaluators": [f"e{k}" for k in range(33)]}]}
    assert call(api, "PUT", url, admin, json=evaluators).status_code == 422
    twice = {"required_gates": [{"dataset": "qa"}, {"dataset": "qa"}]}
    assert call(api, "PUT", url, admin, json=twice).status_code == 422
    assert (
        call(api, "PUT", url, admin, json={"required_gates": [{"dataset": "bad..name"}]}).status_code == 422
    )
    assert (
        call(api, "PUT", url, admin, json={"required_gates": [{"dataset": "qa", "alpha": 2}]}).status_code
        == 422
    )
    roles = {**POLICY, "allow_force_roles": ["Bad Role!"]}
    assert call(api, "PUT", url, admin, json=roles).status_code == 422
    assert call(api, "PUT", "/models/ghost/aliases/production/policy", admin, json=POLICY).status_code == 404
