"""The console's datasets: list, versions, items, diff, and a dataset built from the trace
filter (both databases)."""

from __future__ import annotations

import re
import time

from tests.support.apps import Api
from tests.support.console import ConsoleUser, console_user, project_of
from tests.support.evals import items, store_version
from tests.support.keys import new_key
from tests.support.otlp_json import SEC
from tests.support.people import project_of_key
from tests.support.query_data import llm_trace
from watchkeep.evals.model import DatasetItem

SCRIPT = "<script>alert(1)</script>"


def pid_of(api: Api, key: str | None = None) -> int:
    return project_of_key(api.app.state.services.engine, key or api.key)[0]


def user_of(api: Api, role: str) -> ConsoleUser:
    return console_user(api.database_url, project_of(api.database_url, api.key), role=role)


def store_traces(api: Api, n: int) -> None:
    start = (time.time_ns() // SEC - 3600) * SEC
    spans = [s for k in range(1, n + 1) for s in llm_trace(k, start + k * SEC)]
    response = api.client.post(
        "/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}, headers=api.auth
    )
    assert response.status_code == 200, response.text


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<div class="wk-error" id="e-{re.escape(name)}">([^<]*)</div>', html)
    assert found, f"no error shown for {name}"
    return found.group(1)


def two_versions(api: Api) -> None:
    """v1: q1..q4; v2: q1 unchanged, q2 with a new expected answer, q3 moved to split test,
    q4 removed, q5 added."""
    pid = pid_of(api)
    first = items(4)
    store_version(api.database_url, pid, "faq", first, message="first cut")
    second = [
        first[0],
        DatasetItem(key="q2", input="question 2", expected="better 2"),
        DatasetItem(key="q3", input="question 3", expected="a3", split="test"),
        DatasetItem(key="q5", input=SCRIPT, expected="a5", trace_id="ab" * 16),
    ]
    store_version(api.database_url, pid, "faq", second, message="second")


def test_list_versions_and_items_for_a_viewer(api: Api) -> None:
    two_versions(api)
    viewer = user_of(api, "viewer")
    base = f"/p/{viewer.project}/datasets"
    listing = viewer.get(api.client, base)
    assert listing.status_code == 200
    row = re.search(r'<tr data-dataset="faq">.*?</tr>', listing.text, re.S)
    assert row
    assert "v2" in row.group(0)
    assert ">4<" in row.group(0)

    detail = viewer.get(api.client, f"{base}/faq")
    assert detail.status_code == 200
    assert [int(v) for v in re.findall(r'data-version="(\d+)"', detail.text)] == [2, 1]
    assert "first cut" in detail.text
    assert "Diff with v1" in detail.text
    assert "Delete this dataset" not in detail.text  # a viewer has no write controls

    version = viewer.get(api.client, f"{base}/faq/versions/2")
    assert version.status_code == 200
    assert re.findall(r'data-item="([^"]+)"', version.text) == ["q1", "q2", "q3", "q5"]
    assert SCRIPT not in version.text
    assert "&lt;script&gt;" in version.text
    assert f'href="/p/{viewer.project}/traces/{"ab" * 16}"' in version.text  # the source trace
    test_only = viewer.get(api.client, f"{base}/faq/versions/latest", params={"split": "test"})
    assert re.findall(r'data-item="([^"]+)"', test_only.text) == ["q3"]


def test_items_page_through_in_order(api: Api) -> None:
    store_version(api.database_url, pid_of(api), "big", items(60))
    viewer = user_of(api, "viewer")
    first = viewer.get(api.client, f"/p/{viewer.project}/datasets/big/versions/1")
    keys = re.findall(r'data-item="([^"]+)"', first.text)
    assert keys == [f"q{k}" for k in range(1, 51)]
    older = re.search(r'href="(\?offset=50)" rel="next"', first.text)
    assert older
    second = viewer.get(api.client, f"/p/{viewer.project}/datasets/big/versions/1{older.group(1)}")
    assert re.findall(r'data-item="([^"]+)"', second.text) == [f"q{k}" for k in range(51, 61)]
    assert 'rel="next"' not in second.text


def test_diff_shows_added_removed_and_changed_fields(api: Api) -> None:
    two_versions(api)
    viewer = user_of(api, "viewer")
    page = viewer.get(api.client, f"/p/{viewer.project}/datasets/faq/diff", params={"from": 1, "to": 2})
    assert page.status_code == 200
    html = page.text
    assert re.search(r'class="wk-diff-added" data-item="q5"', html)
    assert re.search(r'class="wk-diff-removed" data-item="q4"', html)
    assert re.search(r'data-item="q2" data-field="expected" class="wk-diff-changed"', html)
    assert re.search(r'data-item="q2" data-field="input" >', html)  # unchanged field: not marked
    assert re.search(r'data-item="q3" data-field="split" class="wk-diff-changed"', html)
    assert 'data-item="q1"' not in html  # unchanged items are only counted
    default = viewer.get(api.client, f"/p/{viewer.project}/datasets/faq/diff")  # newest vs previous
    assert 'class="wk-diff-added" data-item="q5"' in default.text


def test_another_projects_dataset_is_not_found(api: Api) -> None:
    other_key = new_key(api.database_url)
    store_version(api.database_url, pid_of(api, other_key), "secret", items(2))
    user = user_of(api, "admin")
    base = f"/p/{user.project}/datasets"
    assert "secret" not in user.get(api.client, base).text
    for path in ("/secret", "/secret/versions/1", "/secret/versions/latest", "/secret/diff?from=1&to=1"):
        assert user.get(api.client, base + path).status_code == 404, path
    assert user.post(api.client, f"{base}/secret/delete").status_code == 404
    assert user.get(api.client, f"{base}/nope/versions/not-a-ref").status_code == 404


def test_delete_needs_write_and_csrf(api: Api) -> None:
    store_version(api.database_url, pid_of(api), "doomed", items(1))
    viewer, member = user_of(api, "viewer"), user_of(api, "member")
    base = f"/p/{member.project}/datasets/doomed"
    assert viewer.post(api.client, f"{base}/delete").status_code == 403
    no_csrf = member.use(api.client).post(f"{base}/delete", follow_redirects=False)
    assert no_csrf.status_code == 403
    assert member.get(api.client, base).status_code == 200
    gone = member.post(api.client, f"{base}/delete")
    assert gone.status_code == 303
    assert gone.headers["location"] == f"/p/{member.project}/datasets"
    assert member.get(api.client, base).status_code == 404


# --- building a dataset from the trace list ------------------------------------------------


def test_build_from_the_filtered_trace_list(api: Api) -> None:
    store_traces(api, 6)
    member = user_of(api, "member")
    traces = member.get(api.client, f"/p/{member.project}/traces", params={"model": "gpt-4o"})
    assert "Build a dataset" in traces.text
    action = re.search(
        r'<form method="post" class="wk-form wk-build-dataset" id="build-dataset" action="([^"]+)"',
        traces.text,
    )
    assert action
    url = action.group(1).replace("&amp;", "&")
    assert "model=gpt-4o" in url  # the list's filter travels with the form

    built = member.post(
        api.client, url, {"dataset": "from-prod", "message": "odd ones", "limit": "10", "with_expected": "on"}
    )
    assert built.status_code == 303, built.text
    assert built.headers["location"] == f"/p/{member.project}/datasets/from-prod/versions/1"
    version = api.app.state.services.datasets.resolve(pid_of(api), "from-prod")
    stored = api.app.state.services.datasets.items(pid_of(api), version.id)
    assert sorted(i.trace_id for i in stored) == sorted(f"{n:032x}" for n in (1, 3, 5))  # gpt-4o: odd
    assert all(i.expected for i in stored)
    assert version.message == "odd ones"
    assert version.source
    assert version.source["filter"]["model"] == "gpt-4o"
    page = member.get(api.client, built.headers["location"])
    assert page.status_code == 200
    assert "odd ones" in page.text
    feed = api.app.state.services.activity.list(pid_of(api), verbs=["created"]).items
    assert [(e.target_kind, e.target_id) for e in feed] == [("dataset", "from-prod@1")]


def test_build_form_errors_keep_what_was_typed(api: Api) -> None:
    store_traces(api, 2)
    member = user_of(api, "member")
    url = f"/p/{member.project}/traces/dataset?model=gpt-4o"
    bad = member.post(api.client, url, {"dataset": "no spaces allowed", "message": "kept", "limit": "0"})
    assert bad.status_code == 400
    assert field_error(bad.text, "dataset")
    assert field_error(bad.text, "limit")
    assert 'value="kept"' in bad.text
    assert 'value="no spaces allowed"' in bad.text
    assert "model=gpt-4o" in bad.text  # the filter survives the error
    empty = member.post(api.client, f"/p/{member.project}/traces/dataset?model=none-such", {"dataset": "x"})
    assert empty.status_code == 400
    assert field_error(empty.text, "dataset") == "no traces match this filter in this time range"
    assert api.app.state.services.datasets.list_datasets(pid_of(api)).items == []


def test_build_is_refused_to_a_viewer_and_without_csrf(api: Api) -> None:
    store_traces(api, 2)
    viewer, member = user_of(api, "viewer"), user_of(api, "member")
    listing = viewer.get(api.client, f"/p/{viewer.project}/traces")
    assert "<td" in listing.text
    assert "Build a dataset" not in listing.text
    url = f"/p/{member.project}/traces/dataset"
    assert viewer.post(api.client, url, {"dataset": "v"}).status_code == 403
    forged = member.use(api.client).post(url, data={"dataset": "v"}, follow_redirects=False)
    assert forged.status_code == 403
    assert api.app.state.services.datasets.list_datasets(pid_of(api)).items == []
