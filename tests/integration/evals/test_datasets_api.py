"""The datasets API on both databases: uploads in every format, dedupe, row errors, reads,
diff, export round-trip, building from traces and feedback, and project isolation."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from tests.support.apps import Api
from tests.support.console import project_of
from tests.support.keys import new_key
from tests.support.tenant import seed_trace

from watchkeep.api.eval_schemas import DiffOut
from watchkeep.app import create_app
from watchkeep.config import Settings

ROWS: list[dict[str, Any]] = [
    {"id": "a", "input": "2+2?", "expected": "4", "split": "test"},
    {"id": "b", "input": "capital of France?", "expected": "Paris"},
    {"id": "c", "input": [{"role": "user", "content": "hi"}], "metadata": {"lang": "en"}},
]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def upload(api: Api, name: str, content: bytes, ctype: str, **params: Any) -> Any:
    return api.client.post(
        f"/api/v1/datasets/{name}/versions",
        content=content,
        params=params,
        headers={**api.auth, "Content-Type": ctype},
    )


def test_jsonl_upload_creates_a_version_and_identical_content_is_deduplicated(api: Api) -> None:
    first = upload(api, "qa", jsonl(ROWS), "application/x-ndjson", message="first")
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert (v1["version"], v1["item_count"], v1["created"]) == (1, 3, True)
    assert v1["splits"].get("test") == 1
    assert v1["message"] == "first"
    assert v1["source"]["format"] == "jsonl"

    again = upload(api, "qa", jsonl(ROWS), "application/jsonl")
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["id"] == v1["id"]

    changed = [*ROWS[:2], {"id": "c", "input": "changed"}, {"id": "d", "input": "new"}]
    second = upload(api, "qa", jsonl(changed), "application/x-ndjson")
    assert second.status_code == 201
    assert second.json()["version"] == 2

    versions = api.client.get("/api/v1/datasets/qa/versions", headers=api.auth).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    listed = api.client.get("/api/v1/datasets", headers=api.auth).json()["items"]
    assert [(d["name"], d["versions"], d["latest"]["version"]) for d in listed] == [("qa", 2, 2)]
    one = api.client.get("/api/v1/datasets/qa", headers=api.auth).json()
    assert one["versions"] == 2
    assert one["latest"]["version"] == 2

    by_hash = api.client.get(f"/api/v1/datasets/qa/versions/{v1['content_hash'][:10]}", headers=api.auth)
    assert by_hash.status_code == 200
    assert by_hash.json()["version"] == 1
    latest = api.client.get("/api/v1/datasets/qa/versions/latest", headers=api.auth).json()
    assert latest["version"] == 2

    diff = api.client.get("/api/v1/datasets/qa/diff", params={"from": 1, "to": 2}, headers=api.auth).json()
    typed = DiffOut.model_validate(diff)
    assert (typed.from_version, typed.to_version) == (1, 2)
    assert [i["key"] for i in diff["added"]] == ["d"]
    assert diff["removed"] == []
    assert [(c["key"], c["new"]["input"]) for c in diff["changed"]] == [("c", "changed")]
    assert diff["unchanged"] == 2
    assert diff["truncated"] is False

    activity = api.client.get("/api/v1/activity", headers=api.auth).json()["items"]
    assert sum(1 for a in activity if a["target_kind"] == "dataset" and a["verb"] == "created") == 2


def test_json_body_upload_with_split_ratios_and_item_windows(api: Api) -> None:
    items = [{"id": f"k{i}", "input": f"q{i}"} for i in range(40)]
    body = {
        "items": items,
        "message": "json",
        "description": "forty questions",
        "split_by": "train=0.5,test=0.5",
        "seed": 3,
    }
    response = api.client.post("/api/v1/datasets/split/versions", json=body, headers=api.auth)
    assert response.status_code == 201, response.text
    dataset = api.client.get("/api/v1/datasets/split", headers=api.auth).json()
    assert (dataset["description"], dataset["versions"], dataset["latest"]["version"]) == (
        "forty questions",
        1,
        1,
    )
    assert api.client.get("/api/v1/datasets/none-such", headers=api.auth).status_code == 404
    splits = response.json()["splits"]
    assert set(splits) == {"train", "test"}
    assert sum(splits.values()) == 40

    page = api.client.get(
        "/api/v1/datasets/split/versions/1/items",
        params={"split": "train", "limit": 5, "offset": 0},
        headers=api.auth,
    ).json()["items"]
    assert len(page) == 5
    assert all(i["split"] == "train" for i in page)
    window = api.client.get(
        "/api/v1/datasets/split/versions/1/items", params={"limit": 3, "offset": 10}, headers=api.auth
    ).json()["items"]
    assert [i["key"] for i in window] == ["k10", "k11", "k12"]

    bad = api.client.post(
        "/api/v1/datasets/split/versions", json={**body, "split_by": "train=-1"}, headers=api.auth
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_split"


def test_csv_and_parquet_uploads_and_export_round_trips(api: Api) -> None:
    csv_body = b"id,input,expected,split\na,2+2?,4,test\nb,capital?,Paris,\n"
    created = upload(api, "csv", csv_body, "text/csv")
    assert created.status_code == 201, created.text
    assert created.json()["item_count"] == 2

    table = pa.table({"id": ["x", "y"], "input": ["one", "two"], "expected": ["1", "2"]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    parquet = upload(api, "pq", sink.getvalue(), "application/vnd.apache.parquet")
    assert parquet.status_code == 201, parquet.text
    items = api.client.get("/api/v1/datasets/pq/versions/latest/items", headers=api.auth).json()["items"]
    assert [(i["key"], i["input"], i["expected"]) for i in items] == [("x", "one", "1"), ("y", "two", "2")]

    for fmt, ctype in (
        ("jsonl", "application/x-ndjson"),
        ("csv", "text/csv"),
        ("parquet", "application/vnd.apache.parquet"),
    ):
        exported = api.client.get(
            "/api/v1/datasets/csv/versions/1/export", params={"format": fmt}, headers=api.auth
        )
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith(ctype)
        assert "attachment" in exported.headers["content-disposition"]
        back = upload(api, "csv", exported.content, ctype)
        assert back.status_code == 200, (fmt, back.text)  # same content: the same version
        assert back.json()["version"] == 1
        assert back.json()["created"] is False


def test_bad_rows_answer_422_listing_them_and_nothing_is_written(api: Api) -> None:
    body = b'{"id": "a", "input": "ok"}\nnot json\n{"id": "b"}\n'
    response = upload(api, "bad", body, "application/x-ndjson")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_dataset"
    assert [r["row"] for r in error["rows"]] == [2, 3]
    assert api.client.get("/api/v1/datasets/bad", headers=api.auth).status_code == 404

    skipped = upload(api, "bad", body, "application/x-ndjson", skip_invalid="true")
    assert skipped.status_code == 201
    assert skipped.json()["item_count"] == 1
    assert [r["row"] for r in skipped.json()["skipped"]] == [2, 3]

    assert upload(api, "bad", b"x", "text/plain").status_code == 415
    wrong = api.client.post("/api/v1/datasets/bad/versions", json={"items": "no"}, headers=api.auth)
    assert wrong.status_code == 422
    assert api.client.get("/api/v1/datasets/bad/versions/99", headers=api.auth).status_code == 404


def test_from_traces_keeps_the_trace_and_from_feedback_needs_labels(api: Api) -> None:
    ids = seed_trace(api.client, api.auth)
    trace_id = ids[0][0]
    response = api.client.post(
        "/api/v1/datasets/prod/from-traces",
        params={"trace_id": trace_id},
        json={"limit": 10, "message": "from prod"},
        headers=api.auth,
    )
    assert response.status_code == 201, response.text
    assert response.json()["source"]["kind"] == "traces"
    assert response.json()["source"]["filter"]["trace_id"] == trace_id
    items = api.client.get("/api/v1/datasets/prod/versions/1/items", headers=api.auth).json()["items"]
    assert [i["trace_id"] for i in items] == [trace_id]

    nothing = api.client.post(
        "/api/v1/datasets/prod/from-traces", params={"model": "no-such-model"}, json={}, headers=api.auth
    )
    assert nothing.status_code == 422

    no_labels = api.client.post(
        "/api/v1/datasets/fb/from-feedback", json={"score_name": "correct"}, headers=api.auth
    )
    assert no_labels.status_code == 422
    nul = api.client.post(  # PostgreSQL cannot store a NUL: refused up front, never a 500
        "/api/v1/datasets/fb/from-feedback", json={"score_name": "cor\u0000rect"}, headers=api.auth
    )
    assert nul.status_code == 422, nul.text
    score = {"name": "correct", "value": "no", "label": "yes", "trace_id": trace_id}
    assert api.client.post("/api/v1/scores", json=score, headers=api.auth).status_code == 201
    labelled = api.client.post(
        "/api/v1/datasets/fb/from-feedback", json={"score_name": "correct"}, headers=api.auth
    )
    assert labelled.status_code == 201, labelled.text
    fb_items = api.client.get("/api/v1/datasets/fb/versions/1/items", headers=api.auth).json()["items"]
    assert [(i["trace_id"], i["expected"]) for i in fb_items] == [(trace_id, "yes")]


def test_another_projects_key_sees_nothing_and_viewers_cannot_write(api: Api) -> None:
    assert upload(api, "mine", jsonl(ROWS), "application/x-ndjson").status_code == 201
    other = {"Authorization": f"Bearer {api.key_for('admin')}"}
    for path in (
        "/api/v1/datasets/mine",
        "/api/v1/datasets/mine/versions",
        "/api/v1/datasets/mine/versions/1",
    ):
        assert api.client.get(path, headers=other).status_code == 404
    assert api.client.get("/api/v1/datasets", headers=other).json()["items"] == []
    assert api.client.delete("/api/v1/datasets/mine", headers=other).status_code == 404

    viewer = {"Authorization": f"Bearer {api.key_for('viewer', project=_project_name(api))}"}
    assert api.client.get("/api/v1/datasets/mine", headers=viewer).status_code == 200
    assert api.client.delete("/api/v1/datasets/mine", headers=viewer).status_code == 403

    assert api.client.delete("/api/v1/datasets/mine", headers=api.auth).status_code == 204
    assert api.client.get("/api/v1/datasets/mine", headers=api.auth).status_code == 404
    assert api.client.delete("/api/v1/datasets/mine", headers=api.auth).status_code == 404


def _project_name(api: Api) -> str:
    return project_of(api.database_url, api.key)


def test_dataset_uploads_have_their_own_body_cap(settings: Settings, database_url: str) -> None:
    capped = settings.model_copy(update={"rest_max_body_bytes": 2048, "dataset_upload_max_bytes": 16_384})
    rows = [{"id": f"k{i}", "input": f"question {i} " + "x" * 40, "expected": "a"} for i in range(120)]
    body = jsonl(rows)
    assert 2048 < len(body) < 16_384
    with TestClient(create_app(capped), client=("127.0.0.1", 50000)) as client:
        auth = {"Authorization": f"Bearer {new_key(database_url)}"}
        ok = client.post(
            "/api/v1/datasets/big/versions",
            content=body,
            headers={**auth, "Content-Type": "application/x-ndjson"},
        )
        assert ok.status_code == 201, ok.text
        assert ok.json()["item_count"] == 120
        other = client.post(
            "/api/v1/scores",
            content=b"[" + b" " * 4096 + b"]",
            headers={**auth, "Content-Type": "application/json"},
        )
        assert other.status_code == 413
        assert "rest_max_body_bytes" in other.json()["error"]["message"]
        huge = client.post(
            "/api/v1/datasets/big/versions",
            content=body * 3,
            headers={**auth, "Content-Type": "application/x-ndjson"},
        )
        assert huge.status_code == 413
        assert "dataset_upload_max_bytes" in huge.json()["error"]["message"]
