"""Annotation queues: tenant isolation first, then validation, filling, labelling, ground truth
feeding the quality API, and agreement."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.support.apps import Api
from tests.support.otlp_json import SEC
from tests.support.people import insert_user, project_of_key
from tests.support.query_data import llm_trace
from watchkeep.store.annotation_repository import (
    AnnotationError,
    AnnotationRepository,
    QueueNotFound,
)

QUEUES = "/api/v1/annotation-queues"
LABELS = ["good", "bad", "unsure"]


def store_traces(api: Api, ns: range, t0: int) -> None:
    """Traces ``ns`` (see ``llm_trace``: odd n on gpt-4o) one second apart from ``t0``."""
    spans: list[dict[str, object]] = []
    for n in ns:
        spans += llm_trace(n, t0 + n * SEC)
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    response = api.client.post("/v1/traces", json=body, headers=api.auth)
    assert response.status_code == 200, response.text


def t0() -> int:
    return (time.time_ns() // SEC - 3600) * SEC


def iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // SEC))


def create(api: Api, auth: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"name": "q1", "score_name": "verdict", "labels": LABELS, **spec}
    response = api.client.post(QUEUES, json=body, headers=auth or api.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def fill(api: Api, queue_id: int, body: dict[str, Any], auth: dict[str, str] | None = None) -> Any:
    return api.client.post(f"{QUEUES}/{queue_id}/items", json=body, headers=auth or api.auth)


def items(api: Api, queue_id: int) -> list[dict[str, Any]]:
    response = api.client.get(f"{QUEUES}/{queue_id}/items", params={"limit": 500}, headers=api.auth)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def person(api: Api, name: str) -> int:
    """A user (the database is shared: the e-mail is unique; display name ``name-xxxxxx``)."""
    return insert_user(api.app.state.services.engine, f"{name}-{uuid.uuid4().hex[:6]}@example.com")


def repo(api: Api) -> AnnotationRepository:
    found: AnnotationRepository = api.app.state.services.annotations
    return found


def project_id(api: Api, auth: dict[str, str]) -> int:
    return project_of_key(api.app.state.services.engine, auth["Authorization"][7:])[0]


def test_another_projects_key_cannot_see_fill_or_delete_a_queue(api: Api) -> None:
    start = t0()
    store_traces(api, range(1, 4), start)
    queue = create(api)
    other = {"Authorization": f"Bearer {api.key_for('admin')}"}
    store_traces_as(api, other, 50, start)
    qid = queue["id"]
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{QUEUES}/{qid}", {}),
        ("GET", f"{QUEUES}/{qid}/items", {}),
        ("GET", f"{QUEUES}/{qid}/agreement", {}),
        ("POST", f"{QUEUES}/{qid}/items", {"json": {"limit": 10}}),
        ("DELETE", f"{QUEUES}/{qid}", {}),
    ]
    for method, url, kwargs in calls:
        response = api.client.request(method, url, headers=other, **kwargs)
        assert response.status_code == 404, (method, url, response.text)
    assert api.client.get(QUEUES, headers=other).json()["items"] == []
    # Another project's trace cannot be added: the filter only ever sees this project's traces.
    added = fill(api, qid, {"filter": {"trace_id": f"{50:032x}"}, "limit": 10}).json()
    assert added == {"matched": 0, "added": 0, "skipped": 0, "items": 0}
    user = person(api, "mallory")
    with pytest.raises(QueueNotFound):
        repo(api).next_item(project_id(api, other), qid, user)
    assert api.client.get(f"{QUEUES}/{qid}", headers=api.auth).status_code == 200


def store_traces_as(api: Api, auth: dict[str, str], n: int, start: int) -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": llm_trace(n, start + n * SEC)}]}]}
    assert api.client.post("/v1/traces", json=body, headers=auth).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"labels": ["a"]}, 422, "at least 2"),
        ({"labels": [f"l{k}" for k in range(21)]}, 422, "at most 20"),
        ({"labels": ["a", "b", "a"]}, 422, "labels must be distinct; repeated: a"),
        ({"labels": ["a", "x" * 65]}, 422, "at most 64"),
        ({"annotators_per_item": 11}, 422, "less than or equal to 10"),
        ({"name": " "}, 422, "at least 1"),
    ],
)
def test_queue_validation(api: Api, body: dict[str, Any], status: int, message: str) -> None:
    spec = {"name": "q", "score_name": "verdict", "labels": LABELS, **body}
    response = api.client.post(QUEUES, json=spec, headers=api.auth)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


def test_a_taken_name_is_a_conflict_and_fill_requests_are_checked(api: Api) -> None:
    queue = create(api)
    again = api.client.post(
        QUEUES, json={"name": "q1", "score_name": "s", "labels": LABELS}, headers=api.auth
    )
    assert again.status_code == 409
    assert "already exists" in again.json()["error"]["message"]
    for body, message in (
        ({"limit": 5, "sample": 5}, "exactly one of limit"),
        ({}, "exactly one of limit"),
        ({"sample": 5, "seed": 1}, "needs since and until"),
        ({"limit": 10_001}, "less than or equal to 10000"),
        ({"limit": 5, "filter": {"colour": "red"}}, "Extra inputs"),
    ):
        response = fill(api, queue["id"], body)
        assert response.status_code == 422, body
        assert message in response.json()["error"]["message"], response.text
    user = person(api, "ann")
    pid = project_id(api, api.auth)
    store_traces(api, range(1, 2), t0())
    assert fill(api, queue["id"], {"limit": 1}).status_code == 200
    item = items(api, queue["id"])[0]
    with pytest.raises(
        AnnotationError, match="unknown label 'great'; this queue's labels are good, bad, unsure"
    ):
        repo(api).label(pid, queue["id"], item["id"], user, "great")


def test_fill_by_filter_takes_the_first_matches_and_skips_queued_traces(api: Api) -> None:
    store_traces(api, range(1, 13), t0())
    queue = create(api)
    body = {"filter": {"model": "gpt-4o"}, "limit": 3}
    assert fill(api, queue["id"], body).json() == {"matched": 3, "added": 3, "skipped": 0, "items": 3}
    assert fill(api, queue["id"], body).json()["added"] == 3
    assert fill(api, queue["id"], body).json() == {"matched": 0, "added": 0, "skipped": 0, "items": 6}
    listed = items(api, queue["id"])
    assert [x["trace_id"] for x in listed] == [f"{n:032x}" for n in (11, 9, 7, 5, 3, 1)]
    assert [x["position"] for x in listed] == list(range(6))
    page = api.client.get(f"{QUEUES}/{queue['id']}/items", params={"limit": 4}, headers=api.auth).json()
    rest = api.client.get(
        f"{QUEUES}/{queue['id']}/items", params={"limit": 4, "cursor": page["next_cursor"]}, headers=api.auth
    ).json()
    assert [x["id"] for x in page["items"] + rest["items"]] == [x["id"] for x in listed]
    assert rest["next_cursor"] is None
    got = api.client.get(f"{QUEUES}/{queue['id']}", headers=api.auth).json()
    assert got["progress"] == {"items": 6, "labels": 0, "completed": 0, "remaining_for_me": None}
    assert got["source"][0]["filter"] == {"model": "gpt-4o"}


def test_a_seeded_sample_is_reproducible(api: Api) -> None:
    start = t0()
    store_traces(api, range(1, 21), start)
    window = {"since": iso(start + 3 * SEC), "until": iso(start + 19 * SEC)}  # traces 3..18
    picked = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        queue = create(api, name=name)
        result = fill(api, queue["id"], {"sample": 5, "seed": seed, **window}).json()
        assert result == {"matched": 5, "added": 5, "skipped": 0, "items": 5}
        picked.append([x["trace_id"] for x in items(api, queue["id"])])
    assert picked[0] == picked[1]
    assert picked[0] != picked[2]
    assert all(f"{3:032x}" <= t <= f"{18:032x}" for t in picked[0] + picked[2])
    again = fill(api, queue["id"], {"sample": 5, "seed": 8, **window}).json()
    assert again == {"matched": 5, "added": 0, "skipped": 5, "items": 5}
    errors_only = create(api, name="d")
    result = fill(api, errors_only["id"], {"sample": 50, "filter": {"model": "gpt-4o"}, **window}).json()
    assert result["added"] == 8  # odd n in 3..18: the whole population when it is smaller


def labelled_queue(api: Api, n: int, **spec: Any) -> tuple[int, int, list[dict[str, Any]]]:
    """A queue over ``n`` stored traces; (project id, queue id, items)."""
    store_traces(api, range(1, n + 1), t0())
    queue = create(api, **spec)
    assert fill(api, queue["id"], {"limit": n}).status_code == 200
    return project_id(api, api.auth), int(queue["id"]), items(api, queue["id"])


def test_next_item_follows_positions_skips_and_needed_labels(api: Api) -> None:
    pid, qid, queued = labelled_queue(api, 3, annotators_per_item=2)
    a, b, c = (person(api, x) for x in "abc")
    r = repo(api)
    first = r.next_item(pid, qid, a)
    assert first is not None
    assert first["position"] == 0
    assert first["id"] == queued[0]["id"]
    skipped = r.next_item(pid, qid, a, after_position=0)
    assert skipped is not None
    assert skipped["position"] == 1
    assert r.next_item(pid, qid, a, after_position=2) is None
    state = r.label(pid, qid, queued[0]["id"], a, "good", comment="clear")
    assert state["status"] == "open"
    assert state["labels"][0]["comment"] == "clear"
    assert r.next_item(pid, qid, a)["position"] == 1  # type: ignore[index]
    assert r.next_item(pid, qid, b)["position"] == 0  # type: ignore[index]
    assert r.label(pid, qid, queued[0]["id"], b, "good")["status"] == "agreed"
    assert r.next_item(pid, qid, c)["position"] == 1  # type: ignore[index]  # item 0 has its two labels
    assert r.get_queue(pid, qid, user_id=c)["progress"] == {
        "items": 3,
        "labels": 2,
        "completed": 1,
        "remaining_for_me": 2,
    }


def annotation_scores(api: Api, name: str) -> list[dict[str, Any]]:
    listed = api.client.get("/api/v1/scores", params={"name": name}, headers=api.auth).json()["items"]
    return [s for s in listed if s["source"] == "annotation"]


def test_majority_gives_ground_truth_and_a_tie_gives_none(api: Api) -> None:
    pid, qid, queued = labelled_queue(api, 1, annotators_per_item=2)
    a, b, c = (person(api, x) for x in "abc")
    item = queued[0]["id"]
    r = repo(api)
    assert r.label(pid, qid, item, a, "good")["ground_truth"] is None  # one of two labels
    assert annotation_scores(api, "verdict") == []
    tied = r.label(pid, qid, item, b, "bad")
    assert (tied["status"], tied["ground_truth"]) == ("tied", None)
    assert annotation_scores(api, "verdict") == []
    agreed = r.label(pid, qid, item, c, "bad")
    assert (agreed["status"], agreed["ground_truth"]) == ("agreed", "bad")
    [score] = annotation_scores(api, "verdict")
    assert (score["label"], score["trace_id"], score["data_type"]) == (
        "bad",
        queued[0]["trace_id"],
        "categorical",
    )
    r.label(pid, qid, item, b, "good")  # b changes its mind: good 2, bad 1
    [score] = annotation_scores(api, "verdict")
    assert score["label"] == "good"
    r.label(pid, qid, item, a, "unsure")  # now one each: a tie removes the ground truth
    assert annotation_scores(api, "verdict") == []
    assert len(items(api, qid)[0]["labels"]) == 3  # a later label replaced the user's own


def test_the_quality_api_reads_annotated_ground_truth(api: Api) -> None:
    pid, qid, queued = labelled_queue(
        api, 5, name="sentiment-q", score_name="sentiment", labels=["pos", "neg"]
    )
    predictions = ["pos", "pos", "neg", "neg"]  # the app's own scores: a prediction, no label
    for item, predicted in zip(queued, predictions, strict=False):
        body = {"name": "sentiment", "value": predicted, "trace_id": item["trace_id"]}
        assert api.client.post("/api/v1/scores", json=body, headers=api.auth).status_code == 201
    user = person(api, "rater")
    for item, truth in zip(queued, ["pos", "neg", "neg", "neg", "pos"], strict=True):
        repo(api).label(pid, qid, item["id"], user, truth)  # the fifth has no prediction
    report = api.client.get("/api/v1/quality", params={"name": "sentiment"}, headers=api.auth).json()
    c = report["classification"]
    assert report["n"] == 4
    assert c["n"] == 4
    assert c["accuracy"]["value"] == pytest.approx(0.75)
    assert c["accuracy"]["n"] == 4
    per = {x["label"]: x for x in c["per_class"]}
    assert per["pos"]["precision"]["value"] == pytest.approx(0.5)  # predicted pos twice, right once
    assert per["pos"]["recall"]["value"] == pytest.approx(1.0)
    assert per["neg"]["recall"]["value"] == pytest.approx(2 / 3)
    assert c["macro_f1"]["value"] is not None
    assert api.client.delete(f"{QUEUES}/{qid}", headers=api.auth).status_code == 204
    gone = api.client.get("/api/v1/quality", params={"name": "sentiment"}, headers=api.auth).json()
    assert gone["n"] == 0  # the queue's ground truth went with it
    assert api.client.get(f"{QUEUES}/{qid}", headers=api.auth).status_code == 404


def test_agreement_of_two_annotators(api: Api) -> None:
    pid, qid, queued = labelled_queue(api, 6, annotators_per_item=2, labels=["p", "n"])
    a, b = person(api, "ada"), person(api, "bob")
    # Agree on 4 of 6; each says p three times: po = 4/6, pe = 0.5, kappa = 1/3.
    for item, la, lb in zip(queued, "ppnnpn", "pnnnpp", strict=True):
        repo(api).label(pid, qid, item["id"], a, la)
        repo(api).label(pid, qid, item["id"], b, lb)
    body = api.client.get(f"{QUEUES}/{qid}/agreement", headers=api.auth).json()
    assert body["n"] == 6
    kappa = body["cohen_kappa"]
    assert kappa["value"] == pytest.approx(1 / 3)
    assert kappa["n"] == 6
    assert kappa["low"] <= kappa["value"] <= kappa["high"]
    assert body["percent_agreement"]["value"] == pytest.approx(4 / 6)
    assert body["fleiss_kappa"] is None
    assert [(x["user_id"], x["name"][:4], x["labels"]) for x in body["annotators"]] == [
        (a, "ada-", 6),
        (b, "bob-", 6),
    ]
    listed = api.client.get(QUEUES, headers=api.auth).json()["items"]
    assert [q["progress"]["completed"] for q in listed] == [6]


def test_fills_are_bounded(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caps at a small scale: a queue past its item cap is a 409, a too-wide sample a 422."""
    start = t0()
    store_traces(api, range(1, 6), start)
    queue = create(api)
    monkeypatch.setattr("watchkeep.store.annotation_repository.MAX_ITEMS", 3)
    monkeypatch.setattr("watchkeep.store.annotation_repository.MAX_POPULATION", 4)
    over = fill(api, queue["id"], {"limit": 4})
    assert over.status_code == 409
    assert "at most 3 items" in over.json()["error"]["message"]
    assert items(api, queue["id"]) == []  # nothing half-added
    wide = fill(api, queue["id"], {"sample": 2, "since": iso(start), "until": iso(start + 10 * SEC)})
    assert wide.status_code == 422
    assert "more than 4 traces match; narrow" in wide.json()["error"]["message"]
