"""Oversized input: every REST body has a cap (declared or chunked), and every free-form
field a length cap, so a tenant cannot make the server buffer, parse or store without bound.

The OTLP endpoint keeps its own (larger) cap; it must not be cut to the REST one.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.apps import Api
from tests.support.servers import LiveServer

TRACE = "0af7651916cd43dd8448eb211c80319c"
MIB = 1024 * 1024
OVER = 1536 * 1024  # past the 1 MiB default REST cap
YAML_MONITOR = "monitors:\n  - {name: m1, kind: metric, metric: error_rate, condition: {alert: 0.5}}\n"


def padded_score(size: int) -> bytes:
    """A valid score whose comment-free metadata pads the body to about ``size`` bytes."""
    body = {"name": "q", "value": 1, "trace_id": TRACE, "metadata": {"pad": "x" * size}}
    return json.dumps(body).encode()


def padded_yaml(size: int) -> bytes:
    """A valid monitors file padded with a comment to about ``size`` bytes."""
    return (YAML_MONITOR + "# " + "x" * size + "\n").encode()


def assert_too_large(status: int, body: Any) -> None:
    assert status == 413, str(body)[:300]
    assert body["error"]["code"] == "request_too_large"
    assert str(MIB) in body["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/api/v1/scores", padded_score(OVER), "application/json"),
        ("/api/v1/monitors/apply", padded_yaml(OVER), "application/yaml"),
    ],
)
def test_a_declared_length_over_the_cap_is_413(api: Api, path: str, body: bytes, content_type: str) -> None:
    admin = {"Authorization": f"Bearer {api.key_for('admin')}", "Content-Type": content_type}
    response = api.client.post(path, content=body, headers=admin)
    assert_too_large(response.status_code, response.json())
    listed = api.client.get("/api/v1/scores", headers=admin).json()
    assert listed["items"] == []


def chunked_post(url: str, path: str, key: str, chunks: Iterator[bytes]) -> tuple[int, dict[str, Any]]:
    """POST ``chunks`` with Transfer-Encoding: chunked (no Content-Length) over a raw socket."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply) < reply.index(b"\r\n\r\n") + 4 + _length(reply):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    head_part, _, payload = reply.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ")[1])
    return status, json.loads(payload)


def _length(reply: bytes) -> int:
    for line in reply.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def pieces(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/v1/scores", padded_score(OVER)), ("/api/v1/monitors/apply", padded_yaml(OVER))],
)
def test_a_chunked_body_growing_past_the_cap_is_413(live_server: LiveServer, path: str, body: bytes) -> None:
    status, answer = chunked_post(live_server.url, path, live_server.api_key, pieces(body))
    assert_too_large(status, answer)
    with live_server.client as c:
        assert c.get("/api/v1/scores").json()["items"] == []


def test_bodies_under_the_cap_still_pass_chunked(live_server: LiveServer) -> None:
    status, answer = chunked_post(
        live_server.url, "/api/v1/scores", live_server.api_key, pieces(padded_score(1000))
    )
    assert status == 201, answer


def test_the_otlp_endpoint_keeps_its_own_larger_cap(api: Api) -> None:
    # 1.5 MiB of JSON that is not a valid export: anything but 413 shows the REST cap is not applied.
    body = json.dumps({"resourceSpans": [], "pad": "x" * OVER}).encode()
    response = api.client.post(
        "/v1/traces", content=body, headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code != 413


# --- free-form fields -------------------------------------------------------------------


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "extra",
    [
        {"metadata": {"pad": "x" * (64 * 1024)}},  # serialised size
        {"metadata": {f"k{i}": i for i in range(2000)}},  # key count
        {"metadata": deep(100)},  # nesting depth
        {"metadata": {"k" * 1000: 1}},  # key length
        {"comment": "x" * 20_000},
        {"label": "x" * 5000},
    ],
    ids=["metadata-size", "metadata-keys", "metadata-depth", "metadata-key-length", "comment", "label"],
)
def test_oversized_score_fields_are_422_and_not_stored(api: Api, extra: dict[str, Any]) -> None:
    body = {"name": "q", "value": 1, "trace_id": TRACE, **extra}
    response = api.client.post("/api/v1/scores", json=body, headers=api.auth)
    assert response.status_code == 422, response.text[:300]
    assert api.client.get("/api/v1/scores", headers=api.auth).json()["items"] == []


def monitor(**fields: Any) -> dict[str, Any]:
    return {"name": "m", "kind": "metric", "metric": "error_rate", "condition": {"alert": 0.5}, **fields}


@pytest.mark.parametrize(
    "spec",
    [
        monitor(filter={"model": "x" * 100_000}),
        monitor(channels=["c" * 100_000]),
        monitor(statistic="s" * 100_000),
        {**monitor(), "kind": "drift", "feature": "predicted_label", "score_name": "s" * 100_000},
        {**monitor(), "kind": "anomaly", "window": "400d", "bucket": "1s"},  # 34 million buckets
    ],
    ids=["filter", "channel-name", "statistic", "score-name", "anomaly-buckets"],
)
def test_oversized_monitor_fields_are_422_and_not_stored(api: Api, spec: dict[str, Any]) -> None:
    response = api.client.post("/api/v1/monitors", json=spec, headers=api.auth)
    assert response.status_code == 422, response.text[:300]
    assert api.client.get("/api/v1/monitors", headers=api.auth).json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "e", "evaluator": "json_schema", "params": {"schema": {"enum": ["x" * 100] * 2000}}},
        {"name": "e", "evaluator": "pii", "params": {"kinds": ["email"] * 50_000}},
        {"name": "e", "evaluator": "json_schema", "params": {"schema": deep(200)}},
    ],
    ids=["schema-size", "params-size", "schema-depth"],
)
def test_oversized_evaluator_params_are_422_and_not_stored(api: Api, body: dict[str, Any]) -> None:
    response = api.client.post("/api/v1/online-evaluators", json=body, headers=api.auth)
    assert response.status_code == 422, response.text[:300]
    assert api.client.get("/api/v1/online-evaluators", headers=api.auth).json()["items"] == []


def test_a_metrics_series_has_a_bounded_number_of_buckets(api: Api) -> None:
    """One-second buckets over a year would return (and compute) a row per second with data."""
    year = {"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    refused = api.client.get("/api/v1/metrics", params={**year, "bucket_seconds": 1}, headers=api.auth)
    assert refused.status_code == 422, refused.text
    assert "buckets" in refused.json()["error"]["message"]
    daily = api.client.get("/api/v1/metrics", params={**year, "bucket_seconds": 86400}, headers=api.auth)
    assert daily.status_code == 200, daily.text
