"""The console's evaluation runs: the list, one run, two runs compared (both databases)."""

from __future__ import annotations

import re

from tests.support.apps import Api
from tests.support.console import ConsoleUser, console_user, project_of
from tests.support.evals import items, result, store_run, store_version
from tests.support.keys import new_key
from tests.support.people import project_of_key
from watchkeep.evals.model import ItemResult

KEYS = [f"q{k}" for k in range(1, 41)]


def pid_of(api: Api, key: str | None = None) -> int:
    return project_of_key(api.app.state.services.engine, key or api.key)[0]


def user_of(api: Api, role: str) -> ConsoleUser:
    return console_user(api.database_url, project_of(api.database_url, api.key), role=role)


def regression(api: Api) -> tuple[int, int]:
    """A baseline passing 38 of 40 and a candidate that breaks 12 of them and fixes 1."""
    pid = pid_of(api)
    version = store_version(api.database_url, pid, "faq", items(40))
    base = {k: k not in ("q1", "q2") for k in KEYS}
    cand = {k: (k == "q1") or (k != "q2" and int(k[1:]) > 14) for k in KEYS}
    b = store_run(api.database_url, pid, base, name="baseline", dataset_version_id=version.id)
    c = store_run(
        api.database_url,
        pid,
        cand,
        name="candidate",
        dataset_version_id=version.id,
        baseline_run_id=b.id,
        gate={"verdict": "regression", "reasons": ["pass rate fell by 27.5 points"]},
    )
    return b.id, c.id


def test_run_list_filters_and_links(api: Api) -> None:
    b, c = regression(api)
    store_run(api.database_url, pid_of(api), {"x": True}, name="no-dataset")
    viewer = user_of(api, "viewer")
    page = viewer.get(api.client, f"/p/{viewer.project}/evals")
    assert page.status_code == 200
    assert re.findall(r'<tr data-run="(\d+)"', page.text) == [str(c + 1), str(c), str(b)]  # newest first
    row = re.search(rf'<tr data-run="{b}">.*?</tr>', page.text, re.S)
    assert row
    assert "faq@v1" in row.group(0)
    assert "95.0 %" in row.group(0)
    assert re.search(r"\[\d+\.\d %, \d+\.\d %\]", row.group(0))
    only_faq = viewer.get(api.client, f"/p/{viewer.project}/evals", params={"dataset": "faq"})
    assert sorted(re.findall(r'<tr data-run="(\d+)"', only_faq.text)) == sorted([str(b), str(c)])
    none = viewer.get(api.client, f"/p/{viewer.project}/evals", params={"status": "failed"})
    assert "<tr data-run" not in none.text
    assert "No evaluation runs match." in none.text


def test_run_page_summary_gate_and_items(api: Api) -> None:
    b, c = regression(api)
    viewer = user_of(api, "viewer")
    page = viewer.get(api.client, f"/p/{viewer.project}/evals/{c}")
    assert page.status_code == 200
    html = page.text
    assert 'id="gate"' in html
    assert "regression" in html
    assert "pass rate fell by 27.5 points" in html
    assert f"?baseline={b}&amp;candidate={c}" in html
    assert re.search(r"<td>pass rate</td><td class=\"num\">67.5 %</td>", html)  # 27 of 40
    assert "exact_match" in html
    keys = re.findall(r'data-item="([^"]+)"', html)
    assert len(keys) == 40
    assert keys[0] == "q1"
    failed = viewer.get(api.client, f"/p/{viewer.project}/evals/{c}", params={"failed": "true"})
    shown = re.findall(r'data-item="([^"]+)"', failed.text)
    assert sorted(shown) == sorted(["q2", *[f"q{k}" for k in range(3, 15)]])


def test_items_page_by_keyset(api: Api) -> None:
    run = store_run(api.database_url, pid_of(api), {f"k{n:03}": n % 2 == 0 for n in range(60)})
    viewer = user_of(api, "viewer")
    first = viewer.get(api.client, f"/p/{viewer.project}/evals/{run.id}")
    keys = re.findall(r'data-item="([^"]+)"', first.text)
    assert len(keys) == 50
    older = re.search(r'href="(\?after=\d+)" rel="next"', first.text)
    assert older
    second = viewer.get(api.client, f"/p/{viewer.project}/evals/{run.id}{older.group(1)}")
    rest = re.findall(r'data-item="([^"]+)"', second.text)
    assert len(rest) == 10
    assert not set(rest) & set(keys)


def test_errors_and_traces_are_shown(api: Api) -> None:
    errored = ItemResult(
        item_key="boom",
        repeat=0,
        variant="",
        family=None,
        messages=None,
        output=None,
        error="the target timed out after 5 s",
        error_kind="timeout",
    )
    traced = result("ok", True, trace_id="cd" * 16)
    run = store_run(api.database_url, pid_of(api), {}, extra=[errored, traced])
    viewer = user_of(api, "viewer")
    html = viewer.get(api.client, f"/p/{viewer.project}/evals/{run.id}").text
    assert "timeout</span>: the target timed out after 5 s" in html
    assert f'href="/p/{viewer.project}/traces/{"cd" * 16}"' in html


def test_compare_shows_verdict_intervals_and_broken_items_first(api: Api) -> None:
    b, c = regression(api)
    viewer = user_of(api, "viewer")
    page = viewer.get(
        api.client, f"/p/{viewer.project}/evals/compare", params={"baseline": b, "candidate": c}
    )
    assert page.status_code == 200
    html = page.text
    verdict = re.search(r'<section class="wk-card wk-verdict wk-verdict-(\w+)" id="verdict"', html)
    assert verdict
    assert verdict.group(1) == "regression"
    assert "12 broken, 1 fixed" in html
    metric = re.search(r'<tr data-metric="pass_rate">.*?</tr>', html, re.S)
    assert metric
    assert "-27.5 pp" in metric.group(0)
    assert re.search(r"\[-\d+\.\d pp, -\d+\.\d pp\]", metric.group(0))  # the interval excludes 0
    changes = re.findall(r'data-item="([^"]+)" data-change="(\w+)"', html)
    assert [ch for _, ch in changes] == ["broken"] * 12 + ["fixed"]
    assert changes[-1][0] == "q1"
    assert "wrong q3" in html
    assert "right q3" in html


def test_compare_picker_and_refusals(api: Api) -> None:
    b, _c = regression(api)
    other = store_run(api.database_url, pid_of(api, new_key(api.database_url)), {"x": True}, name="theirs")
    viewer = user_of(api, "viewer")
    base = f"/p/{viewer.project}/evals"
    picker = viewer.get(api.client, f"{base}/compare")
    assert picker.status_code == 200
    assert f'<option value="{b}"' in picker.text
    assert 'id="verdict"' not in picker.text
    assert "theirs" not in picker.text
    assert viewer.get(api.client, f"{base}/{other.id}").status_code == 404
    assert (
        viewer.get(api.client, f"{base}/compare", params={"baseline": b, "candidate": other.id}).status_code
        == 404
    )
    assert viewer.get(api.client, f"{base}/999999999").status_code == 404
    assert viewer.get(api.client, f"{base}/not-a-number").status_code == 400
    assert viewer.get(api.client, f"{base}", params={"cursor": "garbage"}).status_code == 400
