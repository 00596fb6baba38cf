"""The console's annotation queues: list, create and fill, one queue, annotate (both databases)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.support.apps import Api
from tests.support.console import ConsoleUser, console_user, project_of
from tests.support.otlp_json import SEC, attr
from tests.support.people import people_on, project_of_key
from tests.support.query_data import llm_trace

QUEUES = "/api/v1/annotation-queues"
SCRIPT = "<script>alert(1)</script>"
HOSTILE = "e" * 32


def store(api: Api, spans: list[dict[str, Any]]) -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    response = api.client.post("/v1/traces", json=body, headers=api.auth)
    assert response.status_code == 200, response.text


def t0() -> int:
    return (time.time_ns() // SEC - 3600) * SEC


def store_traces(api: Api, n: int, start: int | None = None) -> int:
    """Traces 1..n one second apart (``llm_trace``: odd n on gpt-4o); their start."""
    start = t0() if start is None else start
    store(api, [s for k in range(1, n + 1) for s in llm_trace(k, start + k * SEC)])
    return start


def user_of(api: Api, role: str) -> ConsoleUser:
    return console_user(api.database_url, project_of(api.database_url, api.key), role=role)


def api_queues(api: Api) -> list[dict[str, Any]]:
    return list(api.client.get(QUEUES, headers=api.auth).json()["items"])


def api_items(api: Api, queue_id: int) -> list[dict[str, Any]]:
    r = api.client.get(f"{QUEUES}/{queue_id}/items", params={"limit": 500}, headers=api.auth)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def api_queue(api: Api, **spec: Any) -> int:
    """A queue over the first ``limit`` (default 3) traces, made through the API."""
    limit = spec.pop("limit", 3)
    body = {"name": "api-q", "score_name": "verdict", "labels": ["good", "bad"], **spec}
    created = api.client.post(QUEUES, json=body, headers=api.auth)
    assert created.status_code == 201, created.text
    queue_id = int(created.json()["id"])
    filled = api.client.post(f"{QUEUES}/{queue_id}/items", json={"limit": limit}, headers=api.auth)
    assert filled.status_code == 200, filled.text
    return queue_id


def new_queue(**fields: Any) -> dict[str, Any]:
    return {
        "name": "sentiment",
        "score_name": "sentiment",
        "labels": "pos\nneg\nunsure",
        "annotators_per_item": "1",
        "fill": "filter",
        "range": "24h",
        "size": "50",
        "seed": "0",
        **fields,
    }


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<div class="wk-error" id="e-{re.escape(name)}">([^<]*)</div>', html)
    assert found, f"no error shown for {name}"
    return found.group(1)


def activity_verbs(api: Api, user: ConsoleUser) -> list[str]:
    """The verbs of the queue entries ``user`` made in the project's feed, oldest first."""
    pid = project_of_key(api.app.state.services.engine, api.key)[0]
    page = api.app.state.services.activity.list(pid, actor_user_id=user.user_id)
    return [e.verb for e in reversed(page.items) if e.target_kind == "annotation_queue"]


# --- the attacks first --------------------------------------------------------------------


def test_viewer_sees_no_controls_and_is_refused(api: Api) -> None:
    store_traces(api, 3)
    queue_id = api_queue(api)
    viewer = user_of(api, "viewer")
    project = viewer.project
    listing = viewer.get(api.client, f"/p/{project}/queues")
    assert listing.status_code == 200
    assert "api-q" in listing.text
    assert "New queue" not in listing.text
    detail = viewer.get(api.client, f"/p/{project}/queues/{queue_id}")
    assert detail.status_code == 200
    assert "Delete queue" not in detail.text
    page = viewer.get(api.client, f"/p/{project}/queues/{queue_id}/annotate")
    assert page.status_code == 200
    assert 'id="read-only"' in page.text
    assert 'name="label"' not in page.text
    item = api_items(api, queue_id)[0]
    assert viewer.get(api.client, f"/p/{project}/queues/new").status_code == 403
    assert viewer.post(api.client, f"/p/{project}/queues/new", new_queue()).status_code == 403
    label = f"/p/{project}/queues/{queue_id}/items/{item['id']}/label"
    assert viewer.post(api.client, label, {"label": "good"}).status_code == 403
    assert viewer.post(api.client, f"/p/{project}/queues/{queue_id}/delete").status_code == 403
    assert [q["name"] for q in api_queues(api)] == ["api-q"]
    assert all(not i["labels"] for i in api_items(api, queue_id))


def test_another_organisations_user_gets_404(api: Api) -> None:
    store_traces(api, 2)
    queue_id = api_queue(api, limit=2)
    ours = project_of(api.database_url, api.key)
    item = api_items(api, queue_id)[0]
    with people_on(api.database_url) as people:
        theirs = people.project(people.organisation()).name
    stranger = console_user(api.database_url, theirs, role="admin")
    for path in ("queues", f"queues/{queue_id}", f"queues/{queue_id}/annotate", "activity"):
        assert stranger.get(api.client, f"/p/{ours}/{path}").status_code == 404, path
    label = f"queues/{queue_id}/items/{item['id']}/label"
    assert stranger.post(api.client, f"/p/{ours}/{label}", {"label": "good"}).status_code == 404
    # Their own project with our queue's id: not found, and nothing changes.
    assert stranger.get(api.client, f"/p/{theirs}/queues/{queue_id}").status_code == 404
    assert stranger.get(api.client, f"/p/{theirs}/queues/{queue_id}/annotate").status_code == 404
    assert stranger.post(api.client, f"/p/{theirs}/{label}", {"label": "good"}).status_code == 404
    assert stranger.post(api.client, f"/p/{theirs}/queues/{queue_id}/delete").status_code == 404
    assert all(not i["labels"] for i in api_items(api, queue_id))
    assert [q["name"] for q in api_queues(api)] == ["api-q"]


def test_an_unknown_label_is_refused(api: Api) -> None:
    store_traces(api, 2)
    queue_id = api_queue(api, limit=2)
    member = user_of(api, "member")
    item = api_items(api, queue_id)[0]
    path = f"/p/{member.project}/queues/{queue_id}/items/{item['id']}/label"
    r = member.post(api.client, path, {"label": "excellent", "position": str(item["position"])})
    assert r.status_code == 400
    assert "unknown label" in r.text
    assert "good, bad" in r.text
    assert all(not i["labels"] for i in api_items(api, queue_id))
    other = api_queue(api, name="other", limit=1)
    foreign = api_items(api, other)[0]  # an item of another queue of the same project
    wrong = f"/p/{member.project}/queues/{queue_id}/items/{foreign['id']}/label"
    assert member.post(api.client, wrong, {"label": "good"}).status_code == 404


def test_queue_names_and_trace_content_are_escaped(api: Api) -> None:
    start = t0()
    messages = [{"role": "user", "content": SCRIPT}]
    store(
        api,
        [
            {
                "traceId": HOSTILE,
                "spanId": "e" * 16,
                "name": "chat",
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(start + SEC),
                "attributes": [
                    attr("gen_ai.operation.name", "chat"),
                    attr("gen_ai.input.messages", json.dumps(messages)),
                ],
            }
        ],
    )
    member = user_of(api, "member")
    posted = member.post(
        api.client, f"/p/{member.project}/queues/new", new_queue(name=SCRIPT, description=SCRIPT)
    )
    assert posted.status_code == 303, posted.text
    queue_id = int(posted.headers["location"].rsplit("/", 1)[1])
    for path in ("queues", f"queues/{queue_id}", f"queues/{queue_id}/annotate", "activity"):
        html = member.get(api.client, f"/p/{member.project}/{path}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "<script>alert" not in html, path


def test_invalid_forms_show_field_errors_and_store_nothing(api: Api) -> None:
    member = user_of(api, "member")
    path = f"/p/{member.project}/queues/new"
    cases = [
        (new_queue(labels="only-one"), "labels", "at least 2"),
        (new_queue(labels="a, b, a"), "labels", "repeated: a"),
        (new_queue(name=""), "name", "at least 1"),
        (new_queue(annotators_per_item="11"), "annotators_per_item", "less than or equal to 10"),
        (new_queue(size="0"), "size", "greater than or equal to 1"),
        (new_queue(size="lots"), "size", "valid integer"),
        (new_queue(fill="everything"), "fill", "filter or a random sample"),
    ]
    for data, name, message in cases:
        r = member.post(api.client, path, data)
        assert r.status_code == 400, (data, r.text[:200])
        assert message in field_error(r.text, name), (name, field_error(r.text, name))
        assert 'value="sentiment"' in r.text  # what was typed is kept
    assert api_queues(api) == []
    assert member.post(api.client, path, new_queue()).status_code == 303
    again = member.post(api.client, path, new_queue())
    assert again.status_code == 400
    assert "already exists" in field_error(again.text, "name")
    assert [q["name"] for q in api_queues(api)] == ["sentiment"]


# --- happy paths ----------------------------------------------------------------------------


def test_create_from_a_filter_and_from_a_seeded_sample(api: Api) -> None:
    start = store_traces(api, 8)
    member = user_of(api, "member")
    path = f"/p/{member.project}/queues/new"
    page = member.get(api.client, path)
    assert page.status_code == 200
    assert 'name="labels"' in page.text
    r = member.post(api.client, path, new_queue(name="by-filter", model="gpt-4o", size="3"))
    assert r.status_code == 303
    by_filter = int(r.headers["location"].rsplit("/", 1)[1])
    # The newest three gpt-4o traces (odd n), as the API's fill by limit takes them.
    assert [i["trace_id"] for i in api_items(api, by_filter)] == [f"{n:032x}" for n in (7, 5, 3)]
    queue = next(q for q in api_queues(api) if q["id"] == by_filter)
    assert queue["labels"] == ["pos", "neg", "unsure"]
    assert queue["source"][0]["kind"] == "filter"

    r = member.post(api.client, path, new_queue(name="sampled", fill="sample", size="4", seed="7"))
    assert r.status_code == 303
    sampled = [i["trace_id"] for i in api_items(api, int(r.headers["location"].rsplit("/", 1)[1]))]
    assert len(sampled) == 4
    source = next(q for q in api_queues(api) if q["name"] == "sampled")["source"][0]
    assert source["kind"] == "sample"
    assert source["seed"] == 7
    assert source["sample"] == 4
    # The API's sample with the same seed over the same traces picks the same ones.
    created = api.client.post(
        QUEUES, json={"name": "same", "score_name": "s", "labels": ["a", "b"]}, headers=api.auth
    ).json()
    window = {
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start // SEC - 3600)),
        "until": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60)),
    }
    api.client.post(
        f"{QUEUES}/{created['id']}/items", json={"sample": 4, "seed": 7, **window}, headers=api.auth
    )
    assert sorted(i["trace_id"] for i in api_items(api, created["id"])) == sorted(sampled)
    listing = member.get(api.client, f"/p/{member.project}/queues").text
    assert "by-filter" in listing
    assert "sampled" in listing
    assert "New queue" in listing
    assert activity_verbs(api, member) == ["created", "created"]


def test_label_buttons_carry_their_shortcuts(api: Api) -> None:
    store_traces(api, 12)
    queue_id = api_queue(api, labels=[f"l{n}" for n in range(1, 11)], limit=3)
    member = user_of(api, "member")
    page = member.get(api.client, f"/p/{member.project}/queues/{queue_id}/annotate?at=1").text
    for n in range(1, 10):
        assert re.search(rf'<button[^>]*value="l{n}"[^>]*data-key="{n}"', page)
    assert re.search(r'<button[^>]*value="l10"', page)
    assert not re.search(r'<button[^>]*value="l10"[^>]*data-key', page)  # only 1..9 have keys
    for key in ("s", "j", "k"):
        assert f'data-key="{key}"' in page
    assert "Item 2" in page
    assert "question 11" in page  # position 1: the second newest trace (12, 11, 10 were queued)


def test_annotate_three_items_then_agreement_and_quality(api: Api) -> None:
    store_traces(api, 3)
    ada, bob = user_of(api, "member"), user_of(api, "member")
    project = ada.project
    queue_id = api_queue(
        api, name="sentiment-q", score_name="sentiment", labels=["pos", "neg"], annotators_per_item=2
    )
    page = ada.get(api.client, f"/p/{project}/queues/{queue_id}/annotate")
    assert page.status_code == 200
    assert "0 of 3 done by you" in page.text
    items = api_items(api, queue_id)
    for item in items:  # the app's own predictions, scored before anyone labels
        body = {"name": "sentiment", "value": "pos", "trace_id": item["trace_id"]}
        assert api.client.post("/api/v1/scores", json=body, headers=api.auth).status_code == 201
    for n, (item, label) in enumerate(zip(items, ["pos", "neg", "pos"], strict=True)):
        shown = ada.get(api.client, f"/p/{project}/queues/{queue_id}/annotate")
        assert f"{n} of 3 done by you" in shown.text
        assert f"question {3 - n}" in shown.text  # the conversation of the item (newest first)
        path = f"/p/{project}/queues/{queue_id}/items/{item['id']}/label"
        r = ada.post(api.client, path, {"label": label, "position": str(item["position"])})
        assert r.status_code == 303
        assert "/annotate?after=" in r.headers["location"]
    done = ada.get(api.client, f"/p/{project}/queues/{queue_id}/annotate").text
    assert "3 of 3 done by you" in done
    assert "Nothing left for you" in done
    detail = ada.get(api.client, f"/p/{project}/queues/{queue_id}").text
    assert f'hx-get="/p/{project}/queues/{queue_id}/agreement"' in detail  # loaded after the page
    assert (
        "Agreement shows once two annotators"
        in ada.get(api.client, f"/p/{project}/queues/{queue_id}/agreement").text
    )
    # htmx: the panel alone comes back, showing the next item.
    first = f"/p/{project}/queues/{queue_id}/items/{items[0]['id']}/label"
    swapped = bob.post(api.client, first, {"label": "pos"}, headers={"HX-Request": "true"})
    assert swapped.status_code == 200
    assert swapped.text.lstrip().startswith("<section")
    assert "<html" not in swapped.text
    assert "1 of 3 done by you" in swapped.text
    assert "question 2" in swapped.text
    for item, label in zip(items[1:], ["pos", "pos"], strict=True):
        r = bob.post(api.client, f"/p/{project}/queues/{queue_id}/items/{item['id']}/label", {"label": label})
        assert r.status_code == 303
    detail = ada.get(api.client, f"/p/{project}/queues/{queue_id}/agreement").text
    panel = ada.get(
        api.client, f"/p/{project}/queues/{queue_id}/agreement", headers={"HX-Request": "true"}
    ).text
    assert panel.lstrip().startswith('<section class="wk-card" aria-labelledby="agreement-title"')
    assert "Cohen&#39;s kappa" in panel
    assert "Cohen&#39;s kappa" in detail or "Cohen's kappa" in detail
    assert "Percent agreement" in detail
    assert "Over 3 items" in detail
    agreement = api.client.get(f"{QUEUES}/{queue_id}/agreement", headers=api.auth).json()
    assert f"{agreement['percent_agreement']['value']:.3f}" in detail  # the API's figure
    assert ada.email.split("@")[0] in detail
    assert bob.email.split("@")[0] in detail
    statuses = re.findall(r'wk-badge-(?:ok|warn|muted)">(agreed|tied|open)<', detail)
    assert statuses == ["agreed", "tied", "agreed"]
    # The agreed labels are ground truth the quality API reads (against the app's predictions).
    report = api.client.get("/api/v1/quality", params={"name": "sentiment"}, headers=api.auth).json()
    assert report["classification"]["n"] == 2  # the tied item has no ground truth
    assert report["classification"]["accuracy"]["value"] == pytest.approx(1.0)


def test_items_page_with_a_cursor_and_delete(api: Api) -> None:
    store_traces(api, 60)
    queue_id = api_queue(api, limit=55)
    member = user_of(api, "member")
    path = f"/p/{member.project}/queues/{queue_id}"
    first = member.get(api.client, path).text
    assert len(re.findall(r"<tr data-item=", first)) == 50
    more = re.search(r'href="([^"]*cursor=[^"]*)" rel="next"', first)
    assert more
    second = member.get(api.client, more.group(1).replace("&amp;", "&")).text
    assert len(re.findall(r"<tr data-item=", second)) == 5
    assert member.get(api.client, path + "?cursor=bogus").status_code == 400
    assert 'data-confirm="Delete queue api-q' in first
    r = member.post(api.client, path + "/delete")
    assert r.status_code == 303
    assert r.headers["location"].endswith("/queues")
    assert api_queues(api) == []
    assert member.get(api.client, path).status_code == 404
    assert activity_verbs(api, member) == ["deleted"]
