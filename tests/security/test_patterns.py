"""Patterns a tenant supplies (regex evaluators, JSON-schema ``pattern``/``patternProperties``)
run in linear time or are refused: a catastrophic pattern cannot stall the worker.

The evaluation runs in a subprocess through the real online-evaluator path on the test's
database; a pattern that backtracks (2^40 steps) never finishes there, a linear one does.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from tests.support.apps import Api
from watchkeep.api.wiring import Services
from watchkeep.devtools.synthetic_calls import Traffic, generate, write
from watchkeep.store.projects import ProjectRepository

NS = 1_000_000_000
EVIL = "(a+)+$"
STALL_INPUT = "a" * 40 + "!"
RUN_ONLINE = textwrap.dedent(
    """
    import sys
    from watchkeep.evaluators import EvaluatorRegistry
    from watchkeep.monitor.online import OnlineEvaluation
    from watchkeep.store.engine import make_engine
    print(OnlineEvaluation(make_engine(sys.argv[1]), EvaluatorRegistry()).run_once())
    """
)


def store_call(api: Api, output: str) -> None:
    """One LLM call of the key's project whose stored reply is ``output``."""
    svc: Services = api.app.state.services
    project = next(k.project for k in svc.projects.list_keys() if api.key.startswith(k.prefix))
    project_id = ProjectRepository(svc.engine).get_or_create(project).id
    now = time.time_ns()
    batch = generate(project_id, 1, now - 2 * NS, now - NS, Traffic())
    batch.payloads = [(*p[:4], output, p[5]) for p in batch.payloads]
    write(svc.engine, batch)


def run_online_evaluation(api: Api) -> str:
    """Run one online-evaluation pass in a subprocess; fails the test if it stalls."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", RUN_ONLINE, api.database_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the online evaluation did not finish within 60 s: the pattern backtracks")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def evaluate_through_the_worker(api: Api, evaluator: str, params: dict[str, Any], output: str) -> float:
    body = {"name": "check", "evaluator": evaluator, "params": params, "sample_rate": 1.0}
    created = api.client.post("/api/v1/online-evaluators", json=body, headers=api.auth)
    assert created.status_code == 201, created.text
    store_call(api, output)
    run_online_evaluation(api)
    scores = api.client.get("/api/v1/scores", params={"name": "check"}, headers=api.auth).json()["items"]
    assert len(scores) == 1
    return float(scores[0]["value"])


def test_a_catastrophic_regex_evaluator_finishes(api: Api) -> None:
    assert evaluate_through_the_worker(api, "regex", {"pattern": EVIL}, STALL_INPUT) == 0.0


@pytest.mark.parametrize(
    ("schema", "output"),
    [
        ({"properties": {"v": {"type": "string", "pattern": EVIL}}}, f'{{"v": "{STALL_INPUT}"}}'),
        ({"patternProperties": {EVIL: {"type": "integer"}}}, f'{{"{STALL_INPUT}": "x"}}'),
        (
            {"patternProperties": {EVIL: {}}, "additionalProperties": False},
            f'{{"{STALL_INPUT}": 1}}',
        ),
    ],
    ids=["pattern", "patternProperties", "additionalProperties"],
)
def test_catastrophic_json_schema_patterns_finish(api: Api, schema: dict[str, Any], output: str) -> None:
    value = evaluate_through_the_worker(api, "json_schema", {"schema": schema}, output)
    assert value in (0.0, 1.0)


@pytest.mark.parametrize(
    ("evaluator", "params"),
    [
        ("regex", {"pattern": r"(a+)\1"}),  # backreference
        ("regex", {"pattern": r"foo(?=bar)"}),  # lookahead
        ("json_schema", {"schema": {"type": "string", "pattern": r"(?<=x)y"}}),  # lookbehind
        ("json_schema", {"schema": {"patternProperties": {r"(\w)\1": {}}}}),
    ],
    ids=["backreference", "lookahead", "schema-lookbehind", "schema-patternProperties"],
)
def test_patterns_re2_cannot_run_are_refused_with_a_clear_message(
    api: Api, evaluator: str, params: dict[str, Any]
) -> None:
    body = {"name": "check", "evaluator": evaluator, "params": params}
    response = api.client.post("/api/v1/online-evaluators", json=body, headers=api.auth)
    assert response.status_code == 422, response.text
    assert "RE2" in response.json()["error"]["message"]


def test_ordinary_patterns_still_work(api: Api) -> None:
    params = {"pattern": r"^\s*order #\d{3,}\b", "ignore_case": True}
    assert evaluate_through_the_worker(api, "regex", params, "  ORDER #12345 shipped") == 1.0
