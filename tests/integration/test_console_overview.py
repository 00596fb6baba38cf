"""The overview page: its figures are the metrics API's for the same filter and range."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime
from typing import Any

from tests.support.apps import Api
from tests.support.console import console_user, project_of
from tests.support.otlp_json import SEC
from tests.support.query_data import llm_trace
from watchkeep.ui.templating import duration_ms, money, number, percent

MS = 1_000_000
MINUTE = 60 * SEC


def _seed(api: Api, start_ns: int, count: int = 20) -> None:
    """Traces 1..count one second apart through OTLP ingest; call n lasts 10n ms, every fifth
    fails (query_data: odd n gpt-4o, n > 10 dev, release r{n%2}, cost n/1000)."""
    spans: list[dict[str, object]] = []
    for n in range(1, count + 1):
        trace = llm_trace(n, start_ns + n * SEC, error=n % 5 == 0)
        trace[1]["endTimeUnixNano"] = str(start_ns + n * SEC + 1000 + 10 * n * MS)
        spans += trace
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    r = api.client.post("/v1/traces", json=body, headers=api.auth)
    assert r.status_code == 200, r.text


def _window() -> tuple[int, str, str]:
    """A whole-minute hour ending now (the console's custom range has minute precision)."""
    since = (time.time_ns() // MINUTE - 50) * MINUTE
    iso = [
        datetime.fromtimestamp(t / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M")
        for t in (since, since + 60 * MINUTE)
    ]
    return since, iso[0], iso[1]


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _api_summary(api: Api, since: str, until: str, **filters: str) -> dict[str, Any]:
    params = {"from": since + ":00Z", "to": until + ":00Z", **filters}
    r = api.client.get("/api/v1/metrics", params=params, headers=api.auth)
    assert r.status_code == 200, r.text
    summary: dict[str, Any] = r.json()["summary"]
    return summary


def _expected(summary: dict[str, Any]) -> list[str]:
    return [
        f"Calls {number(summary['requests'])}",
        f"Error rate {percent(summary['error_rate'], 2)}",
        f"Latency p50 {duration_ms(summary['latency_p50_ms'])}",
        f"p99 {duration_ms(summary['latency_p99_ms'])}",
        f"Latency p95 {duration_ms(summary['latency_p95_ms'])}",
        f"Tokens in / out {number(summary['input_tokens'])} / {number(summary['output_tokens'])}",
        f"Cost {money(summary['cost_usd'])}",
    ]


def test_overview_figures_match_the_metrics_api_and_follow_filters(api: Api) -> None:
    since_ns, since, until = _window()
    _seed(api, since_ns + MINUTE)
    project = project_of(api.database_url, api.key)
    user = console_user(api.database_url, project, role="viewer")
    base = f"/p/{project}/?range=custom&since={since}&until={until}"

    page = user.get(api.client, base)
    assert page.status_code == 200
    text = _text(page.text)
    summary = _api_summary(api, since, until)
    assert summary["requests"] == 20
    assert summary["errors"] == 4
    for figure in _expected(summary):
        assert figure in text, figure
    assert "Calls 20 4 with errors" in text
    assert "Cost $0.21" in text
    assert "(95%, n=20)" in text  # the error rate's Wilson interval
    assert text.count('data-chart="chart-') == 0
    assert page.text.count('class="wk-chart"') == 4
    assert "buckets of 1 min" in text

    filtered = user.get(api.client, base + "&model=gpt-4o&environment=dev")
    text = _text(filtered.text)
    narrow = _api_summary(api, since, until, model="gpt-4o", environment="dev")
    assert narrow["requests"] == 5
    assert narrow["errors"] == 1
    for figure in _expected(narrow):
        assert figure in text, figure
    assert 'value="gpt-4o"' in filtered.text  # the bar keeps the filter

    swapped = user.get(api.client, base + "&release=r0", headers={"HX-Request": "true"})
    assert swapped.text.lstrip().startswith('<div id="results">')  # htmx gets the results only
    assert "Calls 10 " in _text(swapped.text)
    nothing = _text(user.get(api.client, base + "&route=no-such-route").text)
    assert "Calls 0 " in nothing
    assert "No LLM calls match" in nothing


def test_quality_and_alerts_panels(api: Api) -> None:
    since_ns, since, until = _window()
    _seed(api, since_ns + MINUTE, count=5)
    for n, up in ((1, True), (2, True), (3, True), (4, False)):
        body = {"name": "thumbs<b>", "value": up, "trace_id": f"{n:032x}", "source": "end-user"}
        assert api.client.post("/api/v1/scores", json=body, headers=api.auth).status_code == 201
    project = project_of(api.database_url, api.key)
    admin = {"Authorization": f"Bearer {api.key_for('admin', project)}"}
    spec = {
        "name": "too-many-calls",
        "kind": "metric",
        "metric": "requests",
        "window": "1h",
        "condition": {"alert": 1},
    }
    monitor = api.client.post("/api/v1/monitors", json=spec, headers=admin).json()
    evaluated = api.client.post(f"/api/v1/monitors/{monitor['id']}/evaluate", headers=admin)
    assert evaluated.json()["state"] == "ALERT"
    user = console_user(api.database_url, project, role="viewer")

    page = user.get(api.client, f"/p/{project}/?range=custom&since={since}&until={until}")
    text = _text(page.text)
    assert "thumbs&lt;b&gt;" in page.text
    assert "thumbs<b>" not in page.text
    assert "thumbs<b> rate 75.0%" in text
    assert "(95%, n=4)" in text
    assert f'href="/p/{project}/monitors/{monitor["id"]}"' in page.text
    assert "too-many-calls ALERT" in text
    assert "No drift monitor" in text

    before = f"/p/{project}/?range=custom&since=2020-01-01T00:00&until=2020-01-02T00:00"
    quiet = _text(user.get(api.client, before).text)
    assert "No feedback or scores in this range" in quiet
    assert "No LLM calls match" in quiet


def test_empty_project_explains_how_to_send_a_trace(api: Api) -> None:
    project = project_of(api.database_url, api.key)
    user = console_user(api.database_url, project, role="member")
    page = user.get(api.client, f"/p/{project}/")
    assert page.status_code == 200
    assert "No traces yet" in page.text
    assert "/v1/traces" in page.text
    assert "wk.init(" in page.text
    assert 'class="wk-chart"' not in page.text


def test_other_projects_users_get_404(api: Api) -> None:
    project = project_of(api.database_url, api.key)
    stranger = console_user(api.database_url, project_of(api.database_url, api.key_for()), role="admin")
    assert stranger.get(api.client, f"/p/{project}/").status_code == 404
    assert stranger.get(api.client, f"/p/{stranger.project}/").status_code == 200
