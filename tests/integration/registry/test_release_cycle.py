"""The whole release cycle, end to end (issue 15's proof).

v1 is in production; v2 is registered; the promotion gate evaluates v2 against v1 on a
versioned dataset through the gateway (``bot@1`` / ``bot@2`` called by reference) and
promotes ``canary`` to v2; a canary sends 10 % of the route's live traffic to v2 (the
official ``openai`` client against the gateway). With a regression injected into v2
after the gate (the mock upstream fails a share of v2's calls), the canary worker rolls
``canary`` back on its own and the route's traffic is all on v1 again; without one, the
worker promotes v2 to ``production``. The alias history records every step with its
reason. On the embedded model (SmolLM2 in llama.cpp) a prompt version is promoted through
its gate and served by alias, its spans carrying the model and prompt versions. Both
databases.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import func, select
from tests.support.gateway import live_gateway, mock_upstream_args, process, wait_until
from tests.support.keys import new_key
from tests.support.servers import free_port

from watchkeep.evals.config import RunConfig
from watchkeep.evals.service import EvalService
from watchkeep.gateway.config import local_backend_available
from watchkeep.registry.canary_figures import SETTLE_NS
from watchkeep.store.tables import spans

KEY_ENV = "WK_RELEASE_CYCLE_KEY"
ITEMS = 20
BATCH = 200


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(mock_upstream_args(port), ready_url=f"{url}/_stats"):
        yield url


def _version(upstream: str, switch: str) -> dict[str, Any]:
    """A model version behind its own switch of the mock upstream, so faults hit it alone."""
    return {
        "backend": "openai_compatible",
        "params": {"base_url": f"{upstream}/switch-{switch}/v1", "model": switch},
    }


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def _gate_run(gw_url: str, project_id: int, engine: Any, settings: Any, data: Path, version: int) -> None:
    """The evaluation the gate compares: bot@N through the gateway, labelled model:bot@N."""
    config = RunConfig.model_validate(
        {
            "name": f"gate-bot-{version}",
            "dataset": {"name": "qa", "file": str(data)},
            "target": {
                "kind": "route",
                "route": f"bot@{version}",
                "url": gw_url,
                "api_key_env": KEY_ENV,
                "version": f"model:bot@{version}",
            },
            "evaluators": [{"name": "contains", "params": {"values": ["fox"], "case_insensitive": True}}],
            "concurrency": 8,
        }
    )
    outcome = asyncio.run(EvalService(engine, settings).run(config, project_id, created_by="release-test"))
    assert outcome.exit_code == 0


def _traffic(client: openai.OpenAI, n: int) -> int:
    """``n`` chat calls to the canary's route; how many failed."""

    def one(i: int) -> bool:
        try:
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"q{i}"}])
        except openai.APIStatusError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        return sum(not ok for ok in pool.map(one, range(n)))


def _stored(engine: Any, project_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(spans)
                .where(spans.c.project_id == project_id, spans.c.request_model == "chat")
            ).scalar_one()
        )


def _versions_served(engine: Any, project_id: int, since_ns: int) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(spans.c.model_version)
            .where(
                spans.c.project_id == project_id,
                spans.c.request_model == "chat",
                spans.c.start_time_unix_nano >= since_ns,
            )
            .distinct()
        ).all()
    return {str(r[0]) for r in rows}


def _release_cycle(
    tmp_path: Path, database_url: str, upstream: str, monkeypatch: pytest.MonkeyPatch, *, regression: bool
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    config = {"routes": [], "allowed_upstream_origins": [upstream]}
    with live_gateway(tmp_path, database_url, config, egress_allow_networks="127.0.0.0/8") as gw:
        svc = gw.app.state.services
        project_id = svc.keys.verify(gw.key).project_id
        admin = new_key(database_url, "admin", svc.keys.verify(gw.key).project_name)
        monkeypatch.setenv(KEY_ENV, gw.key)
        with httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as api:
            # v1 in production (and canary), v2 registered.
            switches = {n: f"v{n}-{uuid.uuid4().hex[:8]}" for n in (1, 2)}
            for n in (1, 2):
                _ok(api.post("/api/v1/models/bot/versions", json=_version(upstream, switches[n])))
            for alias in ("production", "canary"):
                _ok(
                    api.put(
                        f"/api/v1/models/bot/aliases/{alias}", json={"version": 1, "reason": "first release"}
                    )
                )
            # The route the canary will split, without retries so every failure shows.
            route = {"deployments": [{"name": "main", "backend": "registry", "model": "bot@production"}]}
            _ok(api.put("/api/v1/routes/chat", json={**route, "retry": {"attempts": 0}}))
            # The gate: canary moves only when v2 is no worse than v1 on dataset qa.
            _ok(
                api.put(
                    "/api/v1/models/bot/aliases/canary/policy",
                    json={"required_gates": [{"dataset": "qa", "evaluators": ["contains"]}]},
                )
            )
            refused = api.post("/api/v1/models/bot/aliases/canary/promote", json={"version": 2})
            assert refused.status_code == 409  # no evidence yet
            data = tmp_path / "qa.jsonl"
            data.write_text(
                "".join(
                    json.dumps({"key": f"q{i}", "input": f"question {i}", "expected": "fox"}) + "\n"
                    for i in range(ITEMS)
                )
            )
            for n in (1, 2):
                _gate_run(gw.url, project_id, svc.engine, svc.settings, data, n)
            promoted = _ok(
                api.post(
                    "/api/v1/models/bot/aliases/canary/promote", json={"version": 2, "reason": "v2 candidate"}
                )
            )
            assert promoted["kind"] == "promote"
            # The canary: 10 % of the route's calls to v2.
            canary = _ok(
                api.post(
                    "/api/v1/canaries",
                    json={
                        "name": "bot",
                        "route": "chat",
                        "share": 0.1,
                        "metrics": ["error_rate"],
                        "min_samples": 60,
                        "max_samples": 150,
                    },
                )
            )
            if regression:  # injected after the gate passed: a share of v2's calls now fail
                _ok(httpx.post(f"{upstream}/_control/{switches[2]}/rate-0.3"))
            client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
            sent = 0
            status = "running"
            for _ in range(40):
                _traffic(client, BATCH)
                sent += BATCH
                assert wait_until(lambda n=sent: _stored(svc.engine, project_id) >= n, timeout=30)
                time.sleep(SETTLE_NS / 1e9 + 0.1)  # the worker counts spans stored 2 s ago
                svc.canary_worker.run_once()
                status = _ok(api.get(f"/api/v1/canaries/{canary['id']}"))["status"]
                if status != "running":
                    break
            final = _ok(api.get(f"/api/v1/canaries/{canary['id']}"))
            expected = {"rolled_back": "bot@1", "promoted": "bot@2"}.get(final["status"], "?")

            def settled() -> bool:
                route = svc.gateway.table.resolve(project_id, "chat")
                return {d.spec.version for d in route.primaries} == {expected}

            assert wait_until(
                settled, timeout=15
            )  # both arms on one version: the alias moves reached the route
            after_ns = time.time_ns()
            assert _traffic(client, 100) == 0
            assert wait_until(lambda: _stored(svc.engine, project_id) >= sent + 100, timeout=30)
            served = _versions_served(svc.engine, project_id, after_ns)
            canary_history = _ok(api.get("/api/v1/models/bot/aliases/canary/history"))["items"]
            production_history = _ok(api.get("/api/v1/models/bot/aliases/production/history"))["items"]
        final["served_after"] = sorted(served)
        return final, canary_history, production_history


def test_a_regression_is_rolled_back_by_the_worker(
    tmp_path: Path, database_url: str, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    final, canary_history, production_history = _release_cycle(
        tmp_path, database_url, upstream, monkeypatch, regression=True
    )
    assert final["status"] == "rolled_back"
    assert "error_rate" in final["reason"]
    kinds = [(e["kind"], e["from_version"], e["to_version"]) for e in canary_history]
    assert kinds == [("move", None, 1), ("promote", 1, 2), ("auto_rollback", 2, 1)]
    assert "gates passed" in canary_history[1]["reason"]
    assert "error_rate" in canary_history[2]["reason"]
    assert canary_history[2]["actor"] == "canary-worker"
    assert [(e["kind"], e["to_version"]) for e in production_history] == [("move", 1)]
    assert final["served_after"] == ["bot@1"]  # traffic is back on v1


def test_a_sound_candidate_is_promoted_by_the_worker(
    tmp_path: Path, database_url: str, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    final, canary_history, production_history = _release_cycle(
        tmp_path, database_url, upstream, monkeypatch, regression=False
    )
    assert final["status"] == "promoted"
    assert [(e["kind"], e["to_version"]) for e in production_history] == [("move", 1), ("promote", 2)]
    assert production_history[1]["actor"] == "canary-worker"
    assert production_history[1]["reason"]
    assert [(e["kind"], e["to_version"]) for e in canary_history] == [("move", 1), ("promote", 2)]
    assert final["served_after"] == ["bot@2"]  # both aliases on v2 now


@pytest.mark.skipif(not local_backend_available(), reason="no embedded model or xllamacpp")
def test_a_prompt_release_on_the_embedded_model(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded SmolLM2 as a registered model, a prompt promoted through its gate: the
    route serves the new prompt version and its spans carry both versions."""
    with live_gateway(tmp_path, database_url, None) as gw:
        svc = gw.app.state.services
        principal = svc.keys.verify(gw.key)
        admin = new_key(database_url, "admin", principal.project_name)
        monkeypatch.setenv(KEY_ENV, gw.key)
        with httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as api:
            _ok(
                api.post(
                    "/api/v1/models/tiny/versions",
                    json={"backend": "llama_cpp", "params": {"model": "smollm2"}},
                )
            )
            _ok(api.put("/api/v1/models/tiny/aliases/production", json={"version": 1, "reason": "embedded"}))
            for n, style in ((1, "Answer in one word."), (2, "Answer in one short sentence.")):
                body = {
                    "template": [{"role": "system", "content": f"{style} Topic: {{{{ topic }}}}."}],
                    "model_settings": {"max_tokens": 8, "temperature": 0},
                    "message": f"style {n}",
                }
                _ok(api.post("/api/v1/prompts/greet/versions", json=body))
            for alias, n in (("production", 1), ("staging", 2)):
                _ok(api.put(f"/api/v1/prompts/greet/aliases/{alias}", json={"version": n, "reason": "start"}))
                route = {"deployments": [{"name": "m", "backend": "registry", "model": "tiny@production"}]}
                _ok(api.put(f"/api/v1/routes/assistant-{alias}", json={**route, "prompt": f"greet@{alias}"}))
            _ok(
                api.put(
                    "/api/v1/prompts/greet/aliases/production/policy",
                    json={"required_gates": [{"dataset": "hello", "evaluators": ["length"]}]},
                )
            )
            data = tmp_path / "hello.jsonl"
            data.write_text(
                "".join(json.dumps({"key": f"h{i}", "input": f"Say hello {i}"}) + "\n" for i in range(6))
            )
            for alias, n in (("production", 1), ("staging", 2)):
                config = RunConfig.model_validate(
                    {
                        "name": f"greet-{n}",
                        "dataset": {"name": "hello", "file": str(data)},
                        "target": {
                            "kind": "route",
                            "route": f"assistant-{alias}",
                            "url": gw.url,
                            "api_key_env": KEY_ENV,
                            "version": f"prompt:greet@{n}",
                        },
                        "params": {"prompt_variables": {"topic": "greetings"}},
                        "evaluators": [{"name": "length", "params": {"max_chars": 4000}}],
                        "concurrency": 2,
                    }
                )
                outcome = asyncio.run(EvalService(svc.engine, svc.settings).run(config, principal.project_id))
                assert outcome.exit_code == 0
            event = _ok(api.post("/api/v1/prompts/greet/aliases/production/promote", json={"version": 2}))
            assert event["kind"] == "promote"

            def serves_v2() -> bool:
                route = svc.gateway.table.resolve(principal.project_id, "assistant-production")
                return route is not None and route.prompt is not None and route.prompt.version == 2

            assert wait_until(serves_v2, timeout=15)
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
        reply = client.chat.completions.with_raw_response.create(
            model="assistant-production",
            messages=[{"role": "user", "content": "Hello"}],
            extra_body={"prompt_variables": {"topic": "greetings"}},
        )
        span = gw.wait_span(reply.headers["x-watchkeep-trace-id"])
        assert span["model_version"] == "tiny@1"
        assert (span["prompt_name"], span["prompt_version"]) == ("greet", "2")
