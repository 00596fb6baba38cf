"""The console's monitor pages: list, detail with history and chart, create and edit with the
API's validation, silences, and who may do what (both databases)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from tests.support.apps import Api
from tests.support.console import ConsoleUser, console_user, project_of
from tests.support.people import people_on
from watchkeep.monitor.state import State, Step
from watchkeep.store.projects import ProjectRepository

SCRIPT = "<script>alert(1)</script>"


def firing_spec(name: str, **fields: Any) -> dict[str, Any]:
    """A metric monitor that alerts on its first evaluation (fewer than one call)."""
    return {
        "name": name,
        "kind": "metric",
        "metric": "requests",
        "min_samples": 0,
        "severity": "critical",
        "condition": {"op": "<", "alert": 1},
        **fields,
    }


def add_monitor(api: Api, spec: dict[str, Any]) -> int:
    created = api.client.post("/api/v1/monitors", json=spec, headers=api.auth)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def evaluate(api: Api, monitor_id: int) -> dict[str, Any]:
    """Evaluate now through the API (retrying while the app's own worker holds the monitor)."""
    for _ in range(50):
        r = api.client.post(f"/api/v1/monitors/{monitor_id}/evaluate", headers=api.auth)
        if r.status_code == 200:
            return dict(r.json())
        assert r.status_code == 409, r.text
        time.sleep(0.1)
    raise AssertionError("the monitor stayed busy")


def stored(api: Api, monitor_id: int) -> dict[str, Any]:
    return dict(api.client.get(f"/api/v1/monitors/{monitor_id}", headers=api.auth).json())


def names(api: Api) -> list[str]:
    items = api.client.get("/api/v1/monitors", headers=api.auth).json()["items"]
    return sorted(m["spec"]["name"] for m in items)


def user_of(api: Api, role: str) -> ConsoleUser:
    return console_user(api.database_url, project_of(api.database_url, api.key), role=role)


def verbs(api: Api, user: ConsoleUser) -> list[str]:
    """The verbs of the project's activity entries by ``user``, oldest first."""
    page = api.app.state.services.activity.list(stored_project_id(api), actor_user_id=user.user_id)
    return [e.verb for e in reversed(page.items) if e.target_kind == "monitor"]


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<div class="wk-error" id="e-{re.escape(name)}">([^<]*)</div>', html)
    assert found, f"no error shown for {name}"
    return found.group(1)


def test_list_puts_firing_first_and_detail_shows_state_history_and_chart(api: Api) -> None:
    quiet = add_monitor(api, firing_spec("aaa-quiet", condition={"op": ">", "alert": 1_000_000}))
    loud = add_monitor(api, firing_spec("zzz-loud", description="pages the on-call"))
    assert evaluate(api, loud)["state"] == "ALERT"
    assert evaluate(api, quiet)["state"] == "OK"
    user = user_of(api, "viewer")
    page = user.get(api.client, f"/p/{user.project}/monitors")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.index("zzz-loud") < html.index("aaa-quiet")  # firing first, although z > a
    assert "wk-badge-crit" in html
    assert ">ALERT<" in html
    assert "requests" in html
    assert "alert &lt; 1" in html
    history = html[html.index('id="history"') :]
    assert "firing" in history
    assert "zzz-loud" in history

    detail = user.get(api.client, f"/p/{user.project}/monitors/{loud}?range=6h")
    assert detail.status_code == 200
    assert ">ALERT<" in detail.text
    assert "pages the on-call" in detail.text
    assert "firing" in detail.text[detail.text.index('id="history"') :]
    data = re.search(
        r'<script type="application/json" id="signal-chart-data">(.*?)</script>', detail.text, re.S
    )
    assert data, "no chart"
    chart = json.loads(data.group(1))
    labels = [s["label"] for s in chart["series"]]
    assert labels[0] == "requests"
    assert any(s.get("kind") == "threshold" and s["values"][0] == 1 for s in chart["series"])
    assert len(chart["x"]) > 1
    assert (chart["x"][-1] - chart["x"][0]) <= 6 * 3600


def test_history_pages_with_a_cursor(api: Api) -> None:
    monitor_id = add_monitor(api, firing_spec("flappy", condition={"op": "<", "alert": 1}))
    evaluate(api, monitor_id)
    svc = api.app.state.services
    row = svc.monitoring.monitors.all(stored_project_id(api))[0]
    now = time.time_ns()
    step = Step(State.ALERT, now, None, 0, "renotify", False, State.ALERT)
    for i in range(30):  # re-notifications, as the worker records them
        svc.monitoring.alerts.record(row, "renotify", step, float(i), f"event-{i:02d}", now + i)
    user = user_of(api, "member")
    first = user.get(api.client, f"/p/{user.project}/monitors/{monitor_id}").text
    assert "event-29" in first
    assert "event-05" in first
    assert "event-04" not in first
    older = re.search(r'href="([^"]*before=[^"]*)" rel="next"', first)
    assert older
    second = user.get(api.client, older.group(1).replace("&amp;", "&")).text
    assert "event-04" in second
    assert "event-05" not in second
    assert "event-29" not in second


def stored_project_id(api: Api) -> int:
    name = project_of(api.database_url, api.key)
    return ProjectRepository(api.app.state.services.engine).get_or_create(name).id


def test_invalid_monitor_shows_field_errors_and_stores_nothing(api: Api) -> None:
    user = user_of(api, "member")
    path = f"/p/{user.project}/monitors/new"
    form = user.get(api.client, path)
    assert form.status_code == 200
    assert 'name="kind"' in form.text
    bad = user.post(
        api.client,
        path,
        {"name": SCRIPT, "kind": "metric", "window": "5 parsecs", "op": ">", "alert": "lots"},
    )
    assert bad.status_code == 400
    assert "pattern" in field_error(bad.text, "name") or "match" in field_error(bad.text, "name")
    assert "duration" in field_error(bad.text, "window")
    assert field_error(bad.text, "alert")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in bad.text
    assert "<script>alert" not in bad.text
    missing = user.post(api.client, path, {"name": "no-metric", "kind": "metric", "op": ">", "alert": "1"})
    assert missing.status_code == 400
    assert "need metric" in field_error(missing.text, "metric")
    too_often = user.post(
        api.client,
        path,
        {"name": "eager", "kind": "metric", "metric": "requests", "alert": "1", "schedule": "1s"},
    )
    assert too_often.status_code == 400
    assert "minimum" in field_error(too_often.text, "schedule")
    yaml_bad = user.post(
        api.client, path, {"spec": "name: x\nkind: resource\nmetric: cpu_percent\ncondition: {alert: 1}"}
    )
    assert yaml_bad.status_code == 400
    assert "operator" in field_error(yaml_bad.text, "spec")
    assert names(api) == []


def test_create_and_edit_monitors(api: Api) -> None:
    user = user_of(api, "member")
    created = user.post(
        api.client,
        f"/p/{user.project}/monitors/new",
        {
            "name": "slow-gpt",
            "kind": "metric",
            "metric": "latency_p95_ms",
            "op": ">",
            "alert": "2000",
            "warning": "1000",
            "window": "10m",
            "schedule": "1m",
            "model": "gpt-4o",
            "enabled": "on",
            "severity": "critical",
        },
    )
    assert created.status_code == 303, created.text
    monitor_id = int(created.headers["location"].rsplit("/", 1)[1])
    spec = stored(api, monitor_id)["spec"]
    assert spec["condition"] == {"op": ">", "warning": 1000.0, "alert": 2000.0}
    assert (spec["window"], spec["filter"]["model"], spec["severity"]) == (600.0, "gpt-4o", "critical")
    duplicate = user.post(
        api.client,
        f"/p/{user.project}/monitors/new",
        {"name": "slow-gpt", "kind": "metric", "metric": "requests", "alert": "1"},
    )
    assert duplicate.status_code == 400
    assert "already" in field_error(duplicate.text, "name")

    edit = user.get(api.client, f"/p/{user.project}/monitors/{monitor_id}/edit")
    assert edit.status_code == 200
    assert 'value="gpt-4o"' in edit.text
    assert 'value="2000"' in edit.text
    saved = user.post(
        api.client,
        f"/p/{user.project}/monitors/{monitor_id}/edit",
        {
            "kind": "metric",
            "metric": "latency_p95_ms",
            "op": ">",
            "alert": "3000",
            "window": "10m",
            "schedule": "2m",
        },
    )
    assert saved.status_code == 303
    spec = stored(api, monitor_id)["spec"]
    assert spec["condition"] == {"op": ">", "warning": None, "alert": 3000.0}  # the emptied warning is gone
    assert spec["enabled"] is False  # the box was not ticked
    assert spec["filter"]["model"] is None
    assert spec["schedule"] == 120.0

    advanced = user.post(
        api.client,
        f"/p/{user.project}/monitors/new",
        {
            "spec": json.dumps(
                {
                    "name": "drift-latency",
                    "kind": "drift",
                    "feature": "latency_ms",
                    "threshold": 0.2,
                    "reference": {"duration": "3d"},
                }
            )
        },
    )
    assert advanced.status_code == 303, advanced.text
    assert sorted(names(api)) == ["drift-latency", "slow-gpt"]

    toggled = user.post(api.client, f"/p/{user.project}/monitors/{monitor_id}/enabled", {"enabled": "on"})
    assert toggled.status_code == 303
    assert stored(api, monitor_id)["spec"]["enabled"] is True
    deleted = user.post(api.client, f"/p/{user.project}/monitors/{monitor_id}/delete")
    assert deleted.status_code == 303
    assert names(api) == ["drift-latency"]
    assert verbs(api, user) == ["created", "edited", "created", "enabled", "deleted"]


def test_viewer_sees_no_controls_and_is_refused(api: Api) -> None:
    monitor_id = add_monitor(api, firing_spec("guarded"))
    viewer = user_of(api, "viewer")
    base = f"/p/{viewer.project}/monitors"
    for path in (base, f"{base}/{monitor_id}"):
        html = viewer.get(api.client, path).text
        assert "guarded" in html
        for control in ("/silence", "/edit", "/delete", "/enabled", "monitors/new", "End silence"):
            assert control not in html, control
    assert viewer.get(api.client, f"{base}/new").status_code == 403
    assert viewer.get(api.client, f"{base}/{monitor_id}/edit").status_code == 403
    before = stored(api, monitor_id)
    refused = [
        viewer.post(
            api.client,
            f"{base}/new",
            {"name": "sneaky", "kind": "metric", "metric": "requests", "alert": "1"},
        ),
        viewer.post(
            api.client, f"{base}/{monitor_id}/edit", {"kind": "metric", "metric": "errors", "alert": "9"}
        ),
        viewer.post(api.client, f"{base}/{monitor_id}/silence", {"for": "1h"}),
        viewer.post(api.client, f"{base}/{monitor_id}/unsilence"),
        viewer.post(api.client, f"{base}/{monitor_id}/enabled", {"enabled": ""}),
        viewer.post(api.client, f"{base}/{monitor_id}/delete"),
    ]
    assert [r.status_code for r in refused] == [403] * 6
    assert stored(api, monitor_id) == before
    assert names(api) == ["guarded"]


def test_silence_is_shown_and_ended(api: Api) -> None:
    monitor_id = add_monitor(api, firing_spec("noisy"))
    user = user_of(api, "member")
    path = f"/p/{user.project}/monitors/{monitor_id}"
    bad = user.post(api.client, f"{path}/silence", {"for": "forever"})
    assert bad.status_code == 400
    assert "duration" in field_error(bad.text, "for")
    both = user.post(api.client, f"{path}/silence", {"for": "1h", "until": "2099-01-01T00:00"})
    assert both.status_code == 400
    assert "either" in field_error(both.text, "for")
    too_long = user.post(api.client, f"{path}/silence", {"for": "60d"})
    assert too_long.status_code == 400
    assert "30 days" in field_error(too_long.text, "for")
    assert stored(api, monitor_id)["silenced_until"] is None

    done = user.post(api.client, f"{path}/silence", {"for": "1h", "reason": f"deploy {SCRIPT}"})
    assert done.status_code == 303
    body = stored(api, monitor_id)
    assert body["silenced_until"]
    assert body["silence_reason"] == f"deploy {SCRIPT}"
    page = user.get(api.client, path).text
    assert "End silence" in page
    assert body["silenced_until"][:16].replace("T", " ") in page
    assert "deploy &lt;script&gt;" in page
    assert "<script>alert" not in page
    listed = user.get(api.client, f"/p/{user.project}/monitors").text
    assert body["silenced_until"][:16].replace("T", " ") in listed

    until = user.post(api.client, f"{path}/silence", {"until": "2099-01-01T00:00"})
    assert until.status_code == 400
    assert "30 days" in field_error(until.text, "until")
    ended = user.post(api.client, f"{path}/unsilence")
    assert ended.status_code == 303
    assert stored(api, monitor_id)["silenced_until"] is None
    assert "End silence" not in user.get(api.client, path).text
    assert verbs(api, user) == ["silenced", "unsilenced"]


def test_another_organisations_user_gets_404(api: Api) -> None:
    monitor_id = add_monitor(api, firing_spec("private"))
    ours = project_of(api.database_url, api.key)
    with people_on(api.database_url) as people:
        theirs = people.project(people.organisation()).name
    stranger = console_user(api.database_url, theirs, role="admin")
    assert stranger.get(api.client, f"/p/{ours}/monitors").status_code == 404
    assert stranger.get(api.client, f"/p/{ours}/monitors/{monitor_id}").status_code == 404
    # Their own project, our monitor's id: not found, and nothing changes.
    assert stranger.get(api.client, f"/p/{theirs}/monitors/{monitor_id}").status_code == 404
    assert (
        stranger.post(api.client, f"/p/{theirs}/monitors/{monitor_id}/silence", {"for": "1h"}).status_code
        == 404
    )
    assert stranger.post(api.client, f"/p/{theirs}/monitors/{monitor_id}/delete").status_code == 404
    assert stranger.get(api.client, f"/p/{theirs}/monitors/99999999999999999999").status_code in (404, 422)
    assert stored(api, monitor_id)["silenced_until"] is None
    assert names(api) == ["private"]


def test_user_text_is_escaped(api: Api) -> None:
    monitor_id = add_monitor(api, firing_spec("escaped", description=SCRIPT, filter={"model": SCRIPT}))
    user = user_of(api, "member")
    for path in (
        f"/p/{user.project}/monitors",
        f"/p/{user.project}/monitors/{monitor_id}",
        f"/p/{user.project}/monitors/{monitor_id}/edit",
    ):
        html = user.get(api.client, path).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "<script>alert" not in html, path
