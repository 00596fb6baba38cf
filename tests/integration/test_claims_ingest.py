"""Claims of the ingest and query path made in the docs, tested from outside.

- group commit: many concurrent OTLP requests share transactions, which the
  ``watchkeep_ingest_commit_requests`` histogram makes observable;
- the ``session_id`` and ``release`` filters of ``/api/v1/traces`` and ``/api/v1/spans``;
- ``log_format="json"``: app and access logs are one JSON object per line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.apps import Api
from tests.support.otlp_json import attr, two_span_trace
from tests.support.servers import LiveServer
from watchkeep.devtools.synthetic_otlp import build_request

THREADS = 16
EXPORTS_PER_THREAD = 5
SPANS_PER_EXPORT = 6
REPO = Path(__file__).resolve().parents[2]


def _export(server: LiveServer, bodies: list[bytes]) -> list[int]:
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/x-protobuf"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        return [client.post("/v1/traces", content=body).status_code for body in bodies]


def test_concurrent_requests_share_group_commits(live_server: LiveServer) -> None:
    """16 threads x 5 exports: every request is in exactly one commit, commits are fewer
    than requests, and every span is stored."""
    batches = [[build_request(SPANS_PER_EXPORT) for _ in range(EXPORTS_PER_THREAD)] for _ in range(THREADS)]
    expected = {span for batch in batches for _, ids in batch for span in ids}
    registry = live_server.app.state.services.registry
    before_sum = registry.get_sample_value("watchkeep_ingest_commit_requests_sum") or 0.0
    before_count = registry.get_sample_value("watchkeep_ingest_commit_requests_count") or 0.0

    with ThreadPoolExecutor(THREADS) as pool:
        codes = [
            code
            for result in pool.map(lambda b: _export(live_server, [body for body, _ in b]), batches)
            for code in result
        ]

    requests = THREADS * EXPORTS_PER_THREAD
    assert codes == [200] * requests
    folded = registry.get_sample_value("watchkeep_ingest_commit_requests_sum") - before_sum
    commits = registry.get_sample_value("watchkeep_ingest_commit_requests_count") - before_count
    assert folded == requests
    assert 0 < commits < requests
    with live_server.client as client:
        page = client.get("/api/v1/spans", params={"limit": 1000}).json()
    assert {(s["trace_id"], s["span_id"]) for s in page["items"]} == expected


def _trace(n: int, session: str, release: str) -> list[dict[str, object]]:
    """A two-span trace; the session and release are set on the root only."""
    return two_span_trace(n, [attr("watchkeep.session.id", session), attr("watchkeep.release", release)])


# (session, release) of traces 1..6
LAYOUT = {
    1: ("s-a", "1.0"),
    2: ("s-a", "2.0"),
    3: ("s-b", "1.0"),
    4: ("s-b", "2.0"),
    5: ("s-a", "2.0"),
    6: ("s-c", "3.0"),
}


def _load(api: Api) -> None:
    spans = [s for n, (session, release) in LAYOUT.items() for s in _trace(n, session, release)]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    response = api.client.post(
        "/v1/traces", content=body, headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def _get(api: Api, path: str, **params: str) -> list[dict[str, object]]:
    response = api.client.get(path, params={**params, "limit": 500}, headers=api.auth)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _expected(session: str | None = None, release: str | None = None) -> set[str]:
    return {
        f"{n:032x}"
        for n, (s, r) in LAYOUT.items()
        if (session is None or s == session) and (release is None or r == release)
    }


def test_session_and_release_filters_of_traces_and_spans(api: Api) -> None:
    _load(api)
    cases: list[dict[str, str]] = [
        {"session_id": "s-a"},
        {"session_id": "s-b"},
        {"release": "2.0"},
        {"release": "3.0"},
        {"session_id": "s-a", "release": "2.0"},
        {"session_id": "s-b", "release": "3.0"},
        {"session_id": "missing"},
    ]
    for params in cases:
        want = _expected(params.get("session_id"), params.get("release"))
        traces = _get(api, "/api/v1/traces", **params)
        assert {t["trace_id"] for t in traces} == want, params
        for t in traces:
            assert params.get("session_id", t["session_id"]) == t["session_id"]
            assert params.get("release", t["release"]) == t["release"]
        spans = _get(api, "/api/v1/spans", **params)
        # every span of a matching trace, the child (which carried neither) included
        assert sorted(str(s["trace_id"]) for s in spans) == sorted([*want, *want]), params
        assert {str(s["name"]) for s in spans} <= {"chat"} | {f"request-{n}" for n in LAYOUT}


LOG_SCRIPT = textwrap.dedent(
    """
    import sys, tempfile
    from pathlib import Path
    from fastapi.testclient import TestClient
    from tests.support.keys import new_key
    from watchkeep.app import create_app
    from watchkeep.config import Settings
    from watchkeep.logs import configure_logging

    url = sys.argv[1]
    settings = Settings(home=Path(tempfile.mkdtemp()), database_url=url, log_format="json",
                        ingest_decode_workers=0, key_cache_seconds=0)
    configure_logging(settings.log_level, settings.log_format)  # as `watchkeep server` does
    key = new_key(url, project=sys.argv[2])
    with TestClient(create_app(settings)) as client:
        status = client.get("/api/v1/traces", headers={"Authorization": f"Bearer {key}"}).status_code
        assert status == 200, status
    """
)


def test_json_logs_are_one_object_per_line(database_url: str) -> None:
    """``log_format="json"`` configured as the CLI does: every stderr line is a JSON object
    with ts, level, logger and msg; the access log line also has the request's fields."""
    project = f"json-logs-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", LOG_SCRIPT, database_url, project],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]
    for record in records:
        assert isinstance(record, dict)
        assert {"ts", "level", "logger", "msg"} <= record.keys(), record
    assert any(r["logger"] == "watchkeep.app" and r["msg"] == "watchkeep ready" for r in records)
    access = [r for r in records if r["logger"] == "watchkeep.access"]
    assert len(access) == 1
    (line,) = access
    assert line["level"] == "info"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/traces", 200)
    assert line["project"] == project
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
