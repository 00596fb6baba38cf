"""Stored spans of a gateway route's calls for the canary tests (straight into the store, so
each test sets the exact ingest times its windows count)."""

from __future__ import annotations

import itertools
import os
from typing import Any

from sqlalchemy import Engine, insert

from tests.support.eval_api import Stage
from tests.support.span_rows import insert_spans
from tests.support.tenant import unique
from watchkeep.registry.canary_figures import NS
from watchkeep.semconv import WK_GATEWAY_SHADOW_OF
from watchkeep.store.tables import scores

_ids = itertools.count(int.from_bytes(os.urandom(6), "big"))  # unique across test sessions


def add_spans(
    engine: Engine,
    project: int,
    at_ns: int,
    n: int,
    *,
    version: str,
    errors: int = 0,
    latency: float = 100.0,
    route: str = "chat",
    shadow: bool = False,
    score: tuple[str, float] | None = None,
) -> None:
    """``n`` stored spans of a route's calls, ingested at ``at_ns`` (the first ``errors`` failed)."""
    rows: list[dict[str, Any]] = []
    score_rows: list[dict[str, Any]] = []
    for i in range(n):
        k = next(_ids)
        trace, span = f"{k:032x}", f"{k:016x}"
        rows.append(
            {
                "project_id": project,
                "trace_id": trace,
                "span_id": span,
                "name": "chat",
                "kind": 2,
                "status_code": 2 if i < errors else 1,
                "start_time_unix_nano": at_ns - NS,
                "end_time_unix_nano": at_ns,
                "duration_ms": latency,
                "request_model": route,
                "model_version": version,
                "attributes": {WK_GATEWAY_SHADOW_OF: "baseline"} if shadow else {},
                "ingested_at_unix_nano": at_ns,
            }
        )
        if score is not None:
            score_rows.append(
                {
                    "project_id": project,
                    "trace_id": trace,
                    "span_id": span,
                    "name": score[0],
                    "data_type": "BOOLEAN",
                    "value": score[1],
                    "source": "API",
                    "created_at_unix_nano": at_ns,
                }
            )
    with engine.begin() as conn:
        insert_spans(conn, rows)
        if score_rows:
            conn.execute(insert(scores), score_rows)


def stage_canary_model(t: Stage) -> str:
    """A fresh model of the tenant's project with ``production`` on version 1 and ``canary``
    on version 2 (what a canary compares), made by the tenant's admin key."""
    name = unique("canary")
    for n in (1, 2):
        t.make("POST", f"/api/v1/models/{name}/versions", json={"backend": "mock", "params": {"n": n}})
    for alias, version in (("production", 1), ("canary", 2)):
        t.make("PUT", f"/api/v1/models/{name}/aliases/{alias}", json={"version": version})
    return name


def stage_canary(t: Stage) -> int:
    """A running canary of the tenant's project (no route written), started by its admin key."""
    body = {"name": stage_canary_model(t), "route": unique("route"), "configure_route": False}
    return int(t.make("POST", "/api/v1/canaries", json=body)["id"])
