"""Monitor queries see trace attributes whatever the export order (issue 12 items 1 and 6).

A four-call trace is exported one span per request, with environment, release and tags
on the root only. The metrics API filtered by any of them counts all four calls, as the
span list does, and so does a metric monitor scoped to the release; a call of another
service that carries its own release is counted under its own, not the trace's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.monitor import MonitorApi, monitor_api
from watchkeep.config import Settings

MS = 1_000_000
TRACE_ID = "cd" * 16
ROOT = {"watchkeep.environment": "staging", "watchkeep.release": "2.1.0", "watchkeep.tags": "beta,checkout"}


@pytest.fixture
def mon(settings: Settings, database_url: str) -> Iterator[MonitorApi]:
    with monitor_api(settings, database_url) as api:
        yield api


def attr(key: str, value: str) -> dict[str, object]:
    return {"key": key, "value": {"stringValue": value}}


def llm_span(index: int, start_ns: int, attributes: dict[str, str]) -> dict[str, object]:
    """Call ``index`` of the trace (0 is the root), a chat call of its own."""
    out: dict[str, object] = {
        "traceId": TRACE_ID,
        "spanId": f"{index + 1:016x}",
        "name": f"call-{index}",
        "startTimeUnixNano": str(start_ns + index * MS),
        "endTimeUnixNano": str(start_ns + (100 + index) * MS),
        "attributes": [
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.request.model", "gpt-4o"),
            *(attr(k, v) for k, v in attributes.items()),
        ],
    }
    if index:
        out["parentSpanId"] = f"{1:016x}"
    return out


def export_one_per_request(
    mon: MonitorApi, start_ns: int, order: tuple[int, ...] = (1, 2, 3, 0), own_release_on: int | None = None
) -> None:
    """The four calls, each in its own request, in ``order``; ``own_release_on`` has its own."""
    for index in order:
        attributes = dict(ROOT) if index == 0 else {}
        if index == own_release_on:
            attributes = {"watchkeep.release": "9.9.9"}
        body = json.dumps(
            {"resourceSpans": [{"scopeSpans": [{"spans": [llm_span(index, start_ns, attributes)]}]}]}
        )
        response = mon.client.post(
            "/v1/traces", content=body, headers={**mon.auth, "Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


def requests(mon: MonitorApi, start_ns: int, **params: Any) -> float:
    window = {"from": iso(start_ns - 60_000 * MS), "to": iso(start_ns + 60_000 * MS)}
    response = mon.client.get("/api/v1/metrics", params={**window, **params}, headers=mon.auth)
    assert response.status_code == 200, response.text
    return float(response.json()["summary"]["requests"])


def test_metrics_filters_count_every_call_of_the_trace(mon: MonitorApi) -> None:
    start = time.time_ns() - 600_000 * MS
    export_one_per_request(mon, start)
    assert requests(mon, start) == 4
    assert requests(mon, start, release="2.1.0") == 4
    assert requests(mon, start, environment="staging") == 4
    assert requests(mon, start, environment="staging", release="2.1.0", tags=["beta"]) == 4
    assert requests(mon, start, tags=["beta", "checkout"]) == 4
    assert requests(mon, start, release="2.0.0") == 0
    assert requests(mon, start, environment="prod") == 0
    assert requests(mon, start, tags=["beta", "missing"]) == 0


def test_a_call_keeps_its_own_release(mon: MonitorApi) -> None:
    start = time.time_ns() - 600_000 * MS
    # after the root: the trace keeps the first release it was given (ADR 0002)
    export_one_per_request(mon, start, order=(1, 0, 2, 3), own_release_on=2)
    assert requests(mon, start, release="2.1.0") == 3
    assert requests(mon, start, release="9.9.9") == 1
    assert requests(mon, start, release="9.9.9", environment="staging") == 1  # inherited environment


def test_a_monitor_scoped_to_the_release_sees_every_call(mon: MonitorApi) -> None:
    export_one_per_request(mon, time.time_ns() - 600_000 * MS)
    spec = {
        "name": "release-calls",
        "kind": "metric",
        "metric": "requests",
        "filter": {"release": "2.1.0", "environment": "staging"},
        "window": "1h",
        "condition": {"op": ">", "alert": 3.5},
    }
    created = mon.client.post("/api/v1/monitors", json=spec, headers=mon.auth)
    assert created.status_code == 201, created.text
    response = mon.client.post(f"/api/v1/monitors/{created.json()['id']}/evaluate", headers=mon.auth)
    assert response.status_code == 200, response.text
    row = response.json()
    assert row["last_value"] == 4
    assert row["state"] == "ALERT"
