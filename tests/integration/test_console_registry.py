"""The console's release pages: models and prompts with versions, aliases and the alias
timeline, prompt diffs, promote and roll back by role, canaries with their live comparison
(both databases)."""

from __future__ import annotations

import re

from tests.support.apps import Api
from tests.support.console import ConsoleUser, console_user, project_of
from tests.support.keys import new_key
from tests.support.people import project_of_key
from watchkeep.registry.canary import CanaryPolicy, Counts, MetricRule, observe
from watchkeep.registry.policy import GateRequirement, PromotionPolicy
from watchkeep.registry.repository import RegistryRepository

SCRIPT = "<script>alert(1)</script>"


def pid_of(api: Api, key: str | None = None) -> int:
    return project_of_key(api.app.state.services.engine, key or api.key)[0]


def user_of(api: Api, role: str) -> ConsoleUser:
    return console_user(api.database_url, project_of(api.database_url, api.key), role=role)


def registry(api: Api) -> RegistryRepository:
    repo: RegistryRepository = api.app.state.services.registry_store
    return repo


def three_models(api: Api, pid: int | None = None) -> int:
    """clf v1..v3, production v1 → v2, staging v3."""
    pid = pid or pid_of(api)
    repo = registry(api)
    for i in range(3):
        repo.register_model(
            pid,
            "clf",
            backend="mock",
            params={"temperature": i / 10},
            metadata={"note": SCRIPT},
            parent=i or None,
            training_dataset="faq@2" if i == 2 else None,
            eval_runs=(7,) if i == 2 else (),
            created_by="tester",
        )
    repo.move_alias(pid, "model", "clf", "production", 1, actor="alice", reason="first release")
    repo.move_alias(pid, "model", "clf", "production", 2, actor="bob", reason="better recall")
    repo.move_alias(pid, "model", "clf", "staging", 3, actor="carol")
    return pid


def timeline(html: str) -> list[tuple[str, str]]:
    """(alias, kind) of each timeline entry, top first."""
    block = re.search(r'<ol id="timeline">(.*?)</ol>', html, re.S)
    assert block, "no timeline"
    return re.findall(r'<li data-alias="([^"]+)" data-seq="\d+" data-kind="([^"]+)"', block.group(1))


def test_models_list_and_page_for_a_viewer(api: Api) -> None:
    three_models(api)
    viewer = user_of(api, "viewer")
    base = f"/p/{viewer.project}/models"
    listing = viewer.get(api.client, base)
    assert listing.status_code == 200
    row = re.search(r'<tr data-name="clf">.*?</tr>', listing.text, re.S)
    assert row
    assert "v3" in row.group(0)
    assert "production → v2" in row.group(0)
    assert "staging → v3" in row.group(0)
    assert f'href="/p/{viewer.project}/models"' in listing.text  # in the sidebar

    page = viewer.get(api.client, f"{base}/clf")
    assert page.status_code == 200
    assert [int(v) for v in re.findall(r'<tr data-version="(\d+)"', page.text)] == [3, 2, 1]
    assert timeline(page.text) == [("staging", "move"), ("production", "move"), ("production", "move")]
    assert "better recall" in page.text
    assert "first release" in page.text
    assert f'href="/p/{viewer.project}/datasets/faq/versions/2"' in page.text  # training data
    assert f'href="/p/{viewer.project}/evals/7"' in page.text  # its eval run
    assert "Roll back" not in page.text
    assert "Promote" not in page.text

    version = viewer.get(api.client, f"{base}/clf/versions/3")
    assert version.status_code == 200
    assert "&#34;temperature&#34;: 0.2" in version.text
    assert SCRIPT not in version.text
    assert "&lt;script&gt;" in version.text
    assert f'href="/p/{viewer.project}/models/clf/versions/2"' in version.text  # parent
    assert "staging" in version.text


def test_another_projects_model_is_not_found(api: Api) -> None:
    three_models(api, pid_of(api, new_key(api.database_url)))
    user = user_of(api, "admin")
    base = f"/p/{user.project}/models"
    assert 'data-name="clf"' not in user.get(api.client, base).text
    for path in ("/clf", "/clf/versions/1", "/nope", "/" + "x" * 300):
        assert user.get(api.client, base + path).status_code == 404, path
    assert user.post(api.client, f"{base}/clf/aliases/production/rollback").status_code == 404
    assert (
        user.post(api.client, f"{base}/clf/promote", {"alias": "production", "version": "1"}).status_code
        == 404
    )
    assert user.get(api.client, f"/p/{user.project}/prompts/clf/diff").status_code == 404
    assert user.get(api.client, f"{base}/clf/versions/0").status_code == 400  # not a version number


def test_member_rolls_back_and_the_timeline_shows_it(api: Api) -> None:
    pid = three_models(api)
    viewer, member = user_of(api, "viewer"), user_of(api, "member")
    url = f"/p/{member.project}/models/clf/aliases/production/rollback"
    assert viewer.post(api.client, url, {"reason": "no"}).status_code == 403
    no_csrf = member.use(api.client).post(url, data={"reason": "x"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    assert registry(api).aliases(pid, "model", "clf")["production"] == 2

    page = member.get(api.client, f"/p/{member.project}/models/clf")
    assert "Roll back" in page.text
    assert "Force past the gates" not in page.text
    moved = member.post(api.client, url, {"reason": "latency regression"})
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/p/{member.project}/models/clf#timeline"
    assert registry(api).aliases(pid, "model", "clf")["production"] == 1
    after = member.get(api.client, f"/p/{member.project}/models/clf")
    assert timeline(after.text)[0] == ("production", "rollback")
    assert "latency regression" in after.text
    feed = member.get(api.client, f"/p/{member.project}/activity")
    assert "rolled back model clf@production from v2 to v1: latency regression" in feed.text

    missing = member.post(api.client, f"/p/{member.project}/models/clf/aliases/nope/rollback")
    assert missing.status_code == 404
    member.post(api.client, url)  # production: back to... nothing earlier than v1
    nothing = member.post(api.client, url)
    assert nothing.status_code == 409
    assert 'id="problems"' in nothing.text


def test_promote_moves_an_alias_and_force_needs_an_admin(api: Api) -> None:
    pid = three_models(api)
    member, admin = user_of(api, "member"), user_of(api, "admin")
    url = f"/p/{member.project}/models/clf/promote"
    bad = member.post(api.client, url, {"alias": "no spaces", "version": "3"})
    assert bad.status_code == 400
    assert 'id="e-alias"' in bad.text
    done = member.post(api.client, url, {"alias": "production", "version": "3", "reason": "ship it"})
    assert done.status_code == 303, done.text
    assert registry(api).aliases(pid, "model", "clf")["production"] == 3

    api.app.state.services.promotions.set_policy(
        pid,
        "model",
        "clf",
        "production",
        PromotionPolicy((GateRequirement(dataset="faq"),)),
        actor="t",
    )
    refused = member.post(api.client, url, {"alias": "production", "version": "2"})
    assert refused.status_code == 409
    assert 'id="problems"' in refused.text
    assert registry(api).aliases(pid, "model", "clf")["production"] == 3
    forced = member.post(
        api.client, url, {"alias": "production", "version": "2", "force": "on", "reason": "x"}
    )
    assert forced.status_code == 403  # a member cannot force
    page = admin.get(api.client, f"/p/{admin.project}/models/clf")
    assert "Force past the gates" in page.text
    ok = admin.post(
        api.client, url, {"alias": "production", "version": "2", "force": "on", "reason": "hotfix"}
    )
    assert ok.status_code == 303, ok.text
    assert timeline(admin.get(api.client, f"/p/{admin.project}/models/clf").text)[0] == (
        "production",
        "forced",
    )


def two_prompts(api: Api) -> int:
    pid = pid_of(api)
    repo = registry(api)
    repo.register_prompt(pid, "greet", template="Hello {{ name }}.\nBye.", message="first", created_by="t")
    repo.register_prompt(
        pid,
        "greet",
        template=[
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Hi {{ who }} " + SCRIPT},
        ],
        model_settings={"temperature": 0.2},
        message="chat",
        parent=1,
        created_by="t",
    )
    repo.move_alias(pid, "prompt", "greet", "production", 1, actor="t")
    return pid


def test_prompt_pages_and_diff(api: Api) -> None:
    two_prompts(api)
    viewer = user_of(api, "viewer")
    base = f"/p/{viewer.project}/prompts"
    assert 'data-name="greet"' in viewer.get(api.client, base).text
    page = viewer.get(api.client, f"{base}/greet")
    assert page.status_code == 200
    assert "Diff with v1" in page.text
    assert timeline(page.text) == [("production", "move")]

    v2 = viewer.get(api.client, f"{base}/greet/versions/2")
    assert re.findall(r'<li data-role="([a-z]+)">', v2.text) == ["system", "user"]
    assert SCRIPT not in v2.text
    assert (
        '<pre class="wk-code" id="template">Hello {{ name }}.'
        in viewer.get(api.client, f"{base}/greet/versions/1").text
    )

    diff = viewer.get(api.client, f"{base}/greet/diff", params={"from": 1, "to": 2})
    assert diff.status_code == 200
    assert re.search(
        r'<tr class="wk-diff-removed" data-line="removed"><td[^>]*>-Hello \{\{ name \}\}', diff.text
    )
    assert re.search(r'<tr class="wk-diff-added" data-line="added"><td[^>]*>\+Be kind', diff.text)
    assert 'data-variable="who" data-change="added"' in diff.text
    assert 'data-variable="name" data-change="removed"' in diff.text
    assert 'data-setting="temperature"' in diff.text
    assert (
        viewer.get(api.client, f"{base}/greet/diff").text.count('data-line="added"') > 0
    )  # default: newest vs previous
    assert viewer.get(api.client, f"{base}/greet/diff", params={"from": 9, "to": 2}).status_code == 404
    assert viewer.get(api.client, f"{base}/greet/diff", params={"from": "x"}).status_code == 400


POLICY = CanaryPolicy((MetricRule("error_rate", "proportion", "lower_is_better", 0.02),), min_samples=10)


def test_canary_list_live_comparison_and_stop(api: Api) -> None:
    pid = three_models(api)
    canaries = api.app.state.services.canaries
    canary = canaries.start(
        pid,
        name="clf",
        route="chat",
        baseline_alias="production",
        candidate_alias="staging",
        mode="live",
        share=0.1,
        policy=POLICY,
        actor="t",
    )
    viewer, member = user_of(api, "viewer"), user_of(api, "member")
    base = f"/p/{viewer.project}/canaries"
    listing = viewer.get(api.client, base)
    assert re.search(rf'<tr data-canary="{canary.id}" data-status="running">', listing.text)
    page = viewer.get(api.client, f"{base}/{canary.id}")
    assert page.status_code == 200
    assert 'data-metric="error_rate"' in page.text
    assert 'data-action="continue"' in page.text
    assert 'hx-trigger="every 5s"' in page.text
    assert 'id="stop"' not in page.text  # a viewer cannot stop it
    poll = viewer.use(api.client).get(f"{base}/{canary.id}", headers={"HX-Request": "true"})
    assert poll.text.lstrip().startswith('<section class="wk-card" aria-labelledby="live-title" id="live"')

    state = observe(canary.state, {"error_rate": (Counts(400, 4), Counts(400, 80))})
    assert canaries.advance(canary, state=state, watermark_ns=canary.watermark_ns + 1)
    looked = viewer.get(api.client, f"{base}/{canary.id}").text
    row = re.search(r'<tr data-metric="error_rate"[^>]*>(.*?)</tr>', looked, re.S)
    assert row
    assert "1.00% (400)" in row.group(1)
    assert "20.00% (400)" in row.group(1)
    assert "+19.00 pts" in row.group(1)
    assert 'data-action="rollback"' in looked  # what the worker would do at its next look

    other = user_of_other_project(api)
    assert other.get(api.client, f"/p/{other.project}/canaries/{canary.id}").status_code == 404
    assert other.post(api.client, f"/p/{other.project}/canaries/{canary.id}/stop").status_code == 404
    assert viewer.post(api.client, f"{base}/{canary.id}/stop").status_code == 403
    stopped = member.post(api.client, f"{base}/{canary.id}/stop", {"reason": "enough"})
    assert stopped.status_code == 303
    after = member.get(api.client, f"{base}/{canary.id}")
    assert "hx-trigger" not in after.text
    assert 'id="stop"' not in after.text
    assert canaries.get(pid, canary.id).status == "stopped"
    again = member.post(api.client, f"{base}/{canary.id}/stop")
    assert again.status_code == 409


def user_of_other_project(api: Api) -> ConsoleUser:
    return console_user(
        api.database_url, project_of(api.database_url, new_key(api.database_url)), role="owner"
    )
